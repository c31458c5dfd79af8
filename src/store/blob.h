/*
 * blob.h — the content-addressed message store in data_dir/blobs.
 *
 * One file per distinct message body, named by the SHA-256 of the raw bytes
 * (blobs/ab/abcdef...), zstd-compressed. Writing is crash-safe: the data goes to
 * a temporary file in data_dir/tmp, is fsync'd, renamed into place and the
 * directory is fsync'd, so a blob either exists whole or not at all. Identical
 * content is stored once. Reference counts live in the store (store_blob_*).
 */
#ifndef LB_STORE_BLOB_H
#define LB_STORE_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct blobstore;

/* The largest body a blob may hold (and blob_get will believe a file claims). */
#define BLOB_MAX_SIZE (1ull << 30)

int blobstore_open(const char *data_dir, struct blobstore **out, char *err, size_t errlen);
void blobstore_close(struct blobstore *bs);

/* Stores data durably (file and directory fsync'd) and fills id (hex sha256).
 * stored_size gets the compressed size (may be NULL). Returns 0, or -1 with
 * errno set (ENOSPC on a full disk, EFBIG over BLOB_MAX_SIZE). Thread-safe.
 *
 * Outside the writer, call it inside the write transaction (store_begin) that
 * records the blob: the daemon's blob GC and start-up recovery hold the write
 * lock while they delete files, so they cannot race a put that holds it too. */
int blob_put(struct blobstore *bs, const void *data, size_t len, char id[BLOB_ID_SIZE],
             uint64_t *stored_size);

/* Reads and decompresses a blob into a malloc'd buffer (*data, caller frees).
 * Returns 0 or -1 with errno (EBADMSG: the file is corrupt, which is logged).
 * Thread-safe. */
int blob_get(struct blobstore *bs, const char *id, unsigned char **data, size_t *len);

/* Removes a blob file (no error if it is already gone). */
int blob_unlink(struct blobstore *bs, const char *id);

/* Calls cb for every blob file present, for start-up recovery. cb returns 0 to
 * go on; anything else stops the walk and is returned. -1 on a listing error. */
int blob_foreach(struct blobstore *bs, int (*cb)(const char *id, void *), void *arg);

/* Removes leftovers in data_dir/tmp from a crash. */
void blobstore_clean_tmp(struct blobstore *bs);

/* 1 if id is 64 lower-case hex digits (what blob_put makes). */
int blob_id_valid(const char *id);

/*
 * Group durability, for the group-commit writer (one thread owns the batch).
 * Between blob_batch_begin and blob_batch_end, blob_put writes and renames but
 * does not fsync; blob_batch_sync then makes every blob of the batch durable at
 * once with syncfs(2) of the blob file system, and must succeed before the
 * COMMIT that references them. blob_batch_created lists the blobs the batch
 * wrote (cb as for blob_foreach), so the writer can remove the ones no row
 * ended up referencing.
 */
void blob_batch_begin(struct blobstore *bs);
int blob_batch_created(struct blobstore *bs, int (*cb)(const char *id, void *), void *arg);
int blob_batch_sync(struct blobstore *bs);
void blob_batch_end(struct blobstore *bs);

/*
 * Start-up recovery (recover.c), before the daemon accepts mail: empties
 * data_dir/tmp and deletes blob files that have no row in the store. A row never
 * exists without its blob, so such files are what a crash left between a blob's
 * fsync and the commit of its rows. Holds the store's write lock meanwhile.
 * Returns 0 or -1 (logged).
 */
int store_recover(struct store *st, struct blobstore *bs);

#endif
