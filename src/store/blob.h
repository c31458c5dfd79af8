/*
 * blob.h — the content-addressed message store: one body per distinct
 * message, named by the SHA-256 of the raw bytes, kept zstd-compressed (one
 * frame with its content size and checksum). Identical content is stored once.
 * Reference counts live in the store (store_blob_*).
 *
 * Where the bodies live follows the config (blobstore_open):
 * - files in data_dir/blobs (SQLite, the default): blobs/ab/abcdef..., written
 *   to data_dir/tmp, fsync'd, renamed into place, the directory fsync'd, so a
 *   body either exists whole or not at all;
 * - files in blob_dir when it is set, the same layout, with unfinished writes
 *   in blob_dir/tmp/<node_name>/ (a rename cannot cross file systems). With
 *   PostgreSQL this is a directory that every node mounts: shared;
 * - the database (PostgreSQL without blob_dir): table blob_data, one row per
 *   body holding the same frame, written in the transaction that records the
 *   blob, so the commit makes rows and body durable at once.
 * Changing blob_dir (or the store) under an installation leaves its bodies
 * behind: they are not moved.
 *
 * Whatever the place, a body is durable no later than the commit of the first
 * row that names it, and the writer's GC removes a body only after deleting
 * its row (refs = 0) in the same transaction (blob.c has the reasoning for
 * several nodes).
 */
#ifndef LB_STORE_BLOB_H
#define LB_STORE_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct blobstore;

/* The largest body a blob may hold (and blob_get will believe a file claims). */
#define BLOB_MAX_SIZE (1ull << 30)

/* Opens the blob store that cfg describes (above), creating its directories. */
int blobstore_open(const struct config *cfg, struct blobstore **out, char *err, size_t errlen);
void blobstore_close(struct blobstore *bs);

enum blob_where {
    BLOB_IN_FILES,        /* data_dir/blobs, or blob_dir with SQLite: one node */
    BLOB_IN_SHARED_FILES, /* blob_dir with PostgreSQL: other nodes write there too */
    BLOB_IN_DB,           /* table blob_data */
};
enum blob_where blobstore_where(const struct blobstore *bs);

/* Stores data durably and fills id (hex sha256). stored_size gets the
 * compressed size (may be NULL). Returns 0, or -1 with errno set (ENOSPC on a
 * full disk, EFBIG over BLOB_MAX_SIZE, EIO when the database failed).
 * Thread-safe.
 *
 * st is the caller's connection, inside the write transaction that then
 * records the blob (store_blob_add or _ref): the body goes into that
 * transaction (database), or the blob's row is locked in it first (shared
 * files), and the GC and start-up recovery cannot race the put. Files on one
 * node do not need st (it may be NULL there). Inside a batch (below) a body
 * for the database is only staged: blob_batch_flush writes it. */
int blob_put(struct blobstore *bs, struct store *st, const void *data, size_t len, char id[BLOB_ID_SIZE],
             uint64_t *stored_size);

/* Reads and decompresses a blob into a malloc'd buffer (*data, caller frees).
 * Returns 0 or -1 with errno (ENOENT: no such body; EBADMSG: it is corrupt,
 * which is logged; EIO: the database failed). Thread-safe: from the database
 * it reads over a small pool of connections of the blob store's own. */
int blob_get(struct blobstore *bs, const char *id, unsigned char **data, size_t *len);

/* Removes a body (no error if it is already gone), whatever its row says:
 * for tests and for files nothing names. The GC uses blob_forget. */
int blob_unlink(struct blobstore *bs, const char *id);

/* The GC's step for one blob whose count fell to zero, inside st's write
 * transaction: deletes its row if the count is still zero and then, only if
 * the row went, the body. STORE_OK: removed; STORE_NOTFOUND: referenced again
 * or already gone, nothing removed; STORE_ERR (logged). A file is unlinked
 * before the transaction commits: if the commit fails, the row stays at zero
 * without its file, which is harmless (a put writes the file again, the next
 * round forgets the row). */
int blob_forget(struct blobstore *bs, struct store *st, const char *id);

/* For the writer, after a job or a group failed: removes a file the batch
 * wrote (blob_batch_created) if no row names it, unless another node is
 * using the same file right now (shared blob_dir). In st's transaction if one
 * is open, else in one of its own. 1 if it was removed. */
int blob_drop_unrecorded(struct blobstore *bs, struct store *st, const char *id);

/* Calls cb for every body present, for start-up recovery and tests. cb
 * returns 0 to go on; anything else stops the walk and is returned. -1 on a
 * listing error. */
int blob_foreach(struct blobstore *bs, int (*cb)(const char *id, void *), void *arg);

/* Seconds since the file of blob id was written or last found by a put
 * (shared files: start-up recovery leaves young files alone); -1 with errno. */
int64_t blob_file_age(struct blobstore *bs, const char *id);

/* Removes this node's leftovers in tmp/ from a crash (files only). */
void blobstore_clean_tmp(struct blobstore *bs);

/* 1 if id is 64 lower-case hex digits (what blob_put makes). */
int blob_id_valid(const char *id);

/*
 * Group durability, for the group-commit writer (one thread owns the batch).
 * Between blob_batch_begin and blob_batch_end:
 * - files: blob_put writes and renames but does not fsync; blob_batch_sync
 *   then makes every new file of the batch durable at once with syncfs(2) of
 *   the blob file system, and must succeed before the COMMIT that references
 *   them. blob_batch_created lists the files the batch wrote (cb as for
 *   blob_foreach), so the writer can remove the ones no row ended up
 *   referencing.
 * - database: blob_put compresses and stages the body in memory; after each
 *   job that succeeded the writer calls blob_batch_flush with its connection,
 *   which writes the staged bodies that a blobs row names (so after the job
 *   recorded and referenced them, in the job's savepoint and the group's
 *   transaction) and forgets the rest; after a job that failed it calls
 *   blob_batch_drop. blob_batch_sync and blob_batch_created have nothing to do.
 * flush and drop are no-ops for files.
 */
void blob_batch_begin(struct blobstore *bs);
int blob_batch_flush(struct blobstore *bs, struct store *st);
void blob_batch_drop(struct blobstore *bs);
int blob_batch_created(struct blobstore *bs, int (*cb)(const char *id, void *), void *arg);
int blob_batch_sync(struct blobstore *bs);
void blob_batch_end(struct blobstore *bs);

/*
 * Start-up recovery (recover.c), before the daemon accepts mail: removes what
 * a crash left between a body's write and the commit of its rows, which the
 * sender got no 250 for.
 * - files on one node: empties tmp/ and deletes every file without a row,
 *   holding the store's write lock meanwhile;
 * - shared files: empties this node's tmp/ and deletes files without a row
 *   that are older than BLOB_SHARED_ORPHAN_AGE and that no put of another
 *   node holds (its advisory lock, blob.c): such a file may belong to a
 *   transaction that has not committed yet;
 * - database: deletes bodies no row names (one statement).
 * Returns 0 or -1 (logged).
 */
#define BLOB_SHARED_ORPHAN_AGE 3600
int store_recover(struct store *st, struct blobstore *bs);

#endif
