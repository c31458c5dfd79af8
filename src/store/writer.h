/*
 * writer.h — the group-commit writer: the one thread of lifeboatd that writes
 * to the store.
 *
 * Callers on an event loop submit jobs. The writer takes every job waiting,
 * runs them in one transaction (each inside its own savepoint, so one failing
 * job does not undo the others), commits once — one fsync for the whole group —
 * and then hands each job's result back to the submitting loop, where done() runs.
 * While one group commits, the next one gathers: under load many SMTP sessions
 * share one fsync. A job may also write blobs (blob_put) before its rows.
 *
 * If the commit fails every job of the group reports STORE_ERR: the callers
 * answer 451 and the sender retries, nothing half-written survives.
 */
#ifndef LB_STORE_WRITER_H
#define LB_STORE_WRITER_H

#include <stdint.h>

#include <event2/event.h>

#include "store/blob.h"
#include "store/store.h"

struct store_writer;

/* Runs on the writer thread inside the group's transaction (and its own
 * savepoint: do not begin or commit). Return STORE_OK, or an error and the job's
 * writes are rolled back. Blobs it blob_put()s (with st) are made durable with
 * the group (blob.h batches; bodies for the database are written at the end of
 * the job, in its savepoint); the ones no row references in the end are
 * removed or never written. */
typedef int (*store_job_fn)(struct store *st, struct blobstore *bs, void *arg);
/* Runs on the submitting event loop with the job's final result (STORE_ERR if the
 * group's commit failed). May be NULL. */
typedef void (*store_done_fn)(int rc, void *arg);

/* Starts the writer thread with its own connection and blob store.
 * done_base: the loop on which done callbacks run (evthread must be enabled). */
struct store_writer *store_writer_start(const struct config *cfg, struct event_base *done_base,
                                        char *err, size_t errlen);

/* Queues a job. Thread-safe. Returns 0, or -1 if the writer is stopping. */
int store_writer_submit(struct store_writer *w, store_job_fn job, store_done_fn done, void *arg);

/* Runs a job and waits for its final result (as done() would get it: STORE_ERR
 * if the group's commit failed), for a thread that is not done_base's loop
 * (the archive indexer; the HTTP threads could use it too). The writer
 * signals the waiting thread itself, right after the commit, so this works
 * whatever the loop is doing. Must not be called on the writer thread (from
 * a job). Returns the job's result, or STORE_ERR without running it if the
 * writer is stopping. */
int store_writer_run_sync(struct store_writer *w, store_job_fn job, void *arg);

/* Runs every queued job, stops the thread, then calls the pending done callbacks
 * directly on the calling thread (which must be done_base's loop thread), frees w. */
void store_writer_stop(struct store_writer *w);

/* 1 while jobs wait for the writer (the next group is gathering): background
 * work such as the archive indexer holds back then, so acceptance goes
 * first. A hint, not a promise. Thread-safe. */
int store_writer_busy(struct store_writer *w);
/* The writer's blob store, for read access from other threads (blob_get is thread-safe). */
struct blobstore *store_writer_blobs(struct store_writer *w);

/* Asks for a blob GC round now instead of within the next few seconds (after
 * a bulk delete; tests). Thread-safe. */
void store_writer_gc_soon(struct store_writer *w);

/* Counters since start, for metrics and tests (jobs / groups = jobs per commit). */
struct store_writer_stats {
    uint64_t groups;        /* transactions committed or failed */
    uint64_t jobs;
    uint64_t failed_jobs;   /* rolled back alone, or with a failed group */
    uint64_t largest_group; /* jobs */
    uint64_t blobs_removed; /* by the GC */
};
void store_writer_stats(struct store_writer *w, struct store_writer_stats *out);

#endif
