/*
 * recover.c — start-up recovery of the blob store (blob.h, store_recover).
 *
 * The accept path writes a blob, makes it durable, then commits the rows that
 * name it. A crash in between leaves a blob file nobody references, and a crash
 * inside blob_put leaves a file in tmp/. Both are garbage: the sender got no 250
 * and will retry. Rows whose count dropped to zero are not recovery's business;
 * the writer's GC removes those (and their files) while running.
 *
 * The whole walk holds the store's write lock, so no writer can be between a
 * blob_put and its commit while files are judged.
 */
#include "store/blob.h"
#include "util/log.h"

struct orphan_scan {
    struct store *st;
    struct blobstore *bs;
    unsigned seen, removed;
    int failed;
};

static int drop_if_orphan(const char *id, void *arg)
{
    struct orphan_scan *scan = arg;
    scan->seen++;
    int known = store_blob_known(scan->st, id);
    if (known < 0) {
        scan->failed = 1;
        return -1;
    }
    if (!known) {
        /* A file we cannot remove only wastes space: logged, not fatal. */
        if (blob_unlink(scan->bs, id) == 0)
            scan->removed++;
    }
    return 0;
}

int store_recover(struct store *st, struct blobstore *bs)
{
    if (store_begin(st) != STORE_OK) {
        log_err("recovery: cannot lock the store");
        return -1;
    }
    blobstore_clean_tmp(bs);
    struct orphan_scan scan = {.st = st, .bs = bs};
    int rc = blob_foreach(bs, drop_if_orphan, &scan);
    /* Nothing was written; ending the transaction just releases the lock. */
    store_rollback(st);
    if (scan.removed)
        log_info("recovery: removed %u of %u blob(s) that no message references (a crash before "
                 "their commit)",
                 scan.removed, scan.seen);
    if (rc != 0 || scan.failed) {
        log_err("recovery: the blob store could not be checked completely");
        return -1;
    }
    return 0;
}
