/*
 * store_copy.h — copying a single-node installation's database (SQLite, with
 * its blob files) into PostgreSQL: what lifeboatctl migrate --to runs.
 *
 * The copy works from the schemas, not from a list of tables: every table of
 * the source goes to the table of the same name in the target, column by
 * column by name, tables in foreign-key order, rows in key order (the rowid,
 * or a WITHOUT ROWID table's primary key), a batch of rows per transaction on
 * the target. What is not copied as rows: schema_version (each side has its
 * own), SQLite's internal tables, nodes (the heartbeats of processes that ran
 * on the old database), blob_data (bodies come from the files, below) and the
 * FTS5 index, whose text is read and indexed again with PostgreSQL's own
 * (item "archive_fts"). Webmail sessions are copied: users stay logged in.
 * The bodies (item "blob_data"): one row per row of the blobs table, holding
 * the blob file's bytes as they are (zstd, as blob.c writes them).
 *
 * Resumable: the target keeps a table migrate_progress (one row per item: rows
 * copied, the source key of the last one, done; and a row "" for the whole
 * copy: where it comes from, a summary of the source when it began, done).
 * Each batch's rows and its progress row commit together, so an interrupted
 * copy (killed, a lost connection) goes on after the last committed batch
 * when run again. A target with data that is not such a copy is refused, as
 * is a source that changed since the copy began (counts or highest rowids
 * differ: the daemon ran in between). At the end every identity sequence is
 * moved past the largest id copied.
 *
 * The source must not change meanwhile: the caller holds runlock.h's
 * exclusive lock on its data_dir. The target is locked against a second
 * concurrent copy (an advisory lock, held until dst is closed).
 */
#ifndef LB_STORE_STORE_COPY_H
#define LB_STORE_STORE_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct store_copy;

enum store_copy_state {
    STORE_COPY_NEW,    /* an empty database: the copy starts */
    STORE_COPY_RESUME, /* a copy from the same source was interrupted: it goes on */
    STORE_COPY_DONE,   /* a copy from the same source finished: nothing to do */
};

/* store_copy_run's result when it stopped at opts.stop_after. */
#define STORE_COPY_STOPPED 3

/* What store_copy_run reports after each batch and when an item is complete. */
struct store_copy_progress {
    const char *item;  /* a table, "archive_fts" (the full-text index) or "blob_data" (bodies) */
    uint64_t copied;   /* rows of the item in the target (earlier runs included) */
    uint64_t total;    /* rows of the item in the source */
    uint64_t run_rows; /* rows this run copied */
    uint64_t run_bytes; /* bytes of values this run copied */
    double seconds;    /* this run's time on the item */
    int finished;      /* the item is complete */
};

struct store_copy_opts {
    /* The directory of the source's blob files (data_dir/blobs, or blob_dir). */
    const char *blobs_dir;
    /* 1: the files' bytes go into the target's blob_data (PostgreSQL without
     * blob_dir). 0: the bodies stay files in blobs_dir, which the nodes mount
     * as their blob_dir; the count check then counts the files present. */
    int blobs_to_db;
    unsigned batch_rows; /* rows per transaction on the target; 0: STORE_COPY_BATCH */
    unsigned stop_after; /* tests: stop after this many batches (STORE_COPY_STOPPED); 0: never */
    void (*progress)(const struct store_copy_progress *p, void *arg);
    void *arg;
};
#define STORE_COPY_BATCH 1000

/* One line of the count check. */
struct store_copy_count {
    char item[64];
    int64_t source, target;
};

/*
 * Plans a copy from src (a SQLite store) into the PostgreSQL database that
 * target->store names. Connects to it and, unless it holds a copy begun
 * earlier, refuses it when any table has a row, before its schema is made
 * (store_migrate, as store_open does); then reads both schemas, takes the
 * target's copy lock and finds in what state the target is. source_id names
 * the source (its database file), so that a copy is only ever resumed from
 * where it began. *state says what store_copy_run will do (for
 * STORE_COPY_DONE nothing: no plan is made, close it). STORE_OK, or
 * STORE_ERR with err (the target holds other data or a copy of elsewhere,
 * another copy runs, the schemas differ, no connection...).
 */
int store_copy_open(struct store *src, const struct config *target, const char *source_id,
                    struct store_copy **out, enum store_copy_state *state, char *err, size_t errlen);
/* Closes the target's connection too. */
void store_copy_close(struct store_copy *c);

/* Copies what is left to copy, then moves the identity sequences. STORE_OK,
 * STORE_COPY_STOPPED (opts.stop_after), or STORE_ERR with err (what was
 * committed stays: run again to go on). */
int store_copy_run(struct store_copy *c, const struct store_copy_opts *o, char *err, size_t errlen);

/* Counts the rows of every item on both sides, in copy order, into *out (n
 * lines, the caller frees it). The bodies: the source's blobs rows against
 * the target's blob_data rows, or (o->blobs_to_db 0) against the files
 * present in o->blobs_dir (item "blob files"). STORE_OK or STORE_ERR with err. */
int store_copy_counts(struct store_copy *c, const struct store_copy_opts *o, struct store_copy_count **out,
                      size_t *n, char *err, size_t errlen);

/* Marks the copy complete (after a count check that matched): a later
 * store_copy_open finds STORE_COPY_DONE. */
int store_copy_finish(struct store_copy *c, char *err, size_t errlen);

#endif
