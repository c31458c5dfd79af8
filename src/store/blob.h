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

int blobstore_open(const char *data_dir, struct blobstore **out, char *err, size_t errlen);
void blobstore_close(struct blobstore *bs);

/* Stores data durably (file and directory fsync'd) and fills id (hex sha256).
 * stored_size gets the compressed size. Returns 0, or -1 with errno set
 * (ENOSPC on a full disk). */
int blob_put(struct blobstore *bs, const void *data, size_t len, char id[BLOB_ID_SIZE],
             uint64_t *stored_size);

/* Reads and decompresses a blob into a malloc'd buffer (*data, caller frees).
 * Returns 0 or -1. */
int blob_get(struct blobstore *bs, const char *id, unsigned char **data, size_t *len);

/* Removes a blob file (no error if it is already gone). */
int blob_unlink(struct blobstore *bs, const char *id);

/* Calls cb for every blob file present, for start-up recovery. */
int blob_foreach(struct blobstore *bs, int (*cb)(const char *id, void *), void *arg);

/* Removes leftovers in data_dir/tmp from a crash. */
void blobstore_clean_tmp(struct blobstore *bs);

#endif
