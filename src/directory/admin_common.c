/*
 * admin_common.c — transaction and message helpers for the directory's
 * administration calls (see admin_internal.h).
 */
#include "directory/admin_internal.h"
#include "directory/directory.h"
#include "util/addr.h"

#include <stdio.h>
#include <string.h>

/* lifeboatctl runs a call in a transaction of its own; the daemon runs it in
 * a writer job, inside the group's transaction, where a savepoint makes the
 * call all-or-nothing without ending the other jobs' work. */
int admin_begin(struct store *st, char *err, size_t errlen)
{
    int nested = store_in_transaction(st);
    if ((nested ? store_savepoint(st) : store_begin(st)) != STORE_OK)
        return errbuf_failc(DIR_STORE, err, errlen,
                            "cannot start a store transaction (the database is busy or failing)");
    return 0;
}

int admin_end(struct store *st, int rc, char *err, size_t errlen)
{
    /* A savepoint is open on top of an outer transaction when the store is
     * still in one after releasing would end it: tell by asking which we
     * opened. store_savepoint_* act on the innermost savepoint. */
    int nested = store_savepoint_depth(st) > 0;
    if (rc != 0) {
        if (nested)
            store_savepoint_rollback(st);
        else
            store_rollback(st);
        return rc < 0 ? rc : DIR_INVALID;
    }
    if (nested)
        return store_savepoint_release(st) == STORE_OK
                   ? 0
                   : errbuf_failc(DIR_STORE, err, errlen, "cannot commit the change to the store");
    if (store_commit(st) != STORE_OK) {
        store_rollback(st);
        return errbuf_failc(DIR_STORE, err, errlen, "cannot commit the change to the store");
    }
    return 0;
}

int admin_canonical(const char *s, char *out, size_t outlen)
{
    return s ? addr_canonical(s, out, outlen) : -1;
}

int admin_text_ok(const char *s, size_t maxlen)
{
    size_t n = strlen(s);
    if (n == 0 || n >= maxlen)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}
