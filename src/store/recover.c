/*
 * recover.c — start-up recovery of the blob store (blob.h, store_recover).
 *
 * The accept path writes a body, makes it durable, then commits the rows that
 * name it (in the database both happen in one transaction). A crash in
 * between leaves a body nobody references, and a crash inside blob_put leaves
 * a file in tmp/. Both are garbage: the sender got no 250 and will retry.
 * Rows whose count dropped to zero are not recovery's business; the writer's
 * GC removes those (and their bodies) while running.
 *
 * On one node (SQLite) the whole walk holds the store's write lock, so no
 * writer can be between a blob_put and its commit while files are judged.
 * Other nodes of a cluster keep running while one starts, so there:
 * - bodies in the database: one DELETE of the bodies no row names, which
 *   cannot hit another node's body in flight because a body and its row
 *   commit together (an uncommitted body is invisible to the DELETE);
 * - shared files: a file without a row may be another node's that is between
 *   its write and its commit. Such a put holds the blob's advisory lock
 *   (blob.c), so a file goes only when recovery gets that lock and the row
 *   is still absent, and only when it is older than BLOB_SHARED_ORPHAN_AGE
 *   (a put that finds a file renews its time). tmp/ is this node's own.
 */
#include "store/blob.h"
#include "store/store_internal.h"
#include "util/log.h"

struct orphan_scan {
    struct store *st;
    struct blobstore *bs;
    int shared;
    unsigned seen, removed, young;
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
    if (known)
        return 0;
    if (scan->shared) {
        /* Maybe another node's, not committed yet (or gone already). The
         * lock alone would do (a put holds it until its commit); the age
         * also covers a put made against blob.h's contract, outside a
         * transaction. Taken after the look at the row, the lock makes
         * sure no put began meanwhile either. */
        int64_t age = blob_file_age(scan->bs, id);
        int locked = age >= BLOB_SHARED_ORPHAN_AGE ? store_blob_remove_lock(scan->st, id) : STORE_EXISTS;
        if (locked == STORE_ERR) {
            scan->failed = 1;
            return -1;
        }
        if (locked == STORE_OK && (known = store_blob_known(scan->st, id)) < 0) {
            scan->failed = 1;
            return -1;
        }
        if (locked != STORE_OK || known) {
            scan->young++;
            return 0;
        }
    }
    /* A file we cannot remove only wastes space: logged, not fatal. */
    if (blob_unlink(scan->bs, id) == 0)
        scan->removed++;
    return 0;
}

static int recover_db(struct store *st)
{
    unsigned removed = 0;
    if (store_begin(st) != STORE_OK || store_blob_data_orphans_delete(st, &removed) != STORE_OK ||
        store_commit(st) != STORE_OK) {
        store_rollback(st);
        log_err("recovery: the message bodies in the database could not be checked");
        return -1;
    }
    if (removed)
        log_info("recovery: removed %u message body(ies) that no message references (a crash before "
                 "their commit)",
                 removed);
    return 0;
}

int store_recover(struct store *st, struct blobstore *bs)
{
    if (blobstore_where(bs) == BLOB_IN_DB)
        return recover_db(st);
    if (store_begin(st) != STORE_OK) {
        log_err("recovery: cannot lock the store");
        return -1;
    }
    blobstore_clean_tmp(bs);
    struct orphan_scan scan = {.st = st, .bs = bs, .shared = blobstore_where(bs) == BLOB_IN_SHARED_FILES};
    int rc = blob_foreach(bs, drop_if_orphan, &scan);
    /* Nothing was written; ending the transaction just releases the lock. */
    store_rollback(st);
    if (scan.removed)
        log_info("recovery: removed %u of %u blob(s) that no message references (a crash before "
                 "their commit)",
                 scan.removed, scan.seen);
    if (scan.young)
        log_info("recovery: kept %u blob file(s) without a message that are younger than %d s or in "
                 "use (another node may be about to commit them)",
                 scan.young, BLOB_SHARED_ORPHAN_AGE);
    if (rc != 0 || scan.failed) {
        log_err("recovery: the blob store could not be checked completely");
        return -1;
    }
    return 0;
}
