/*
 * admin_common.c — transaction and message helpers for the directory's
 * administration calls (see admin_internal.h).
 */
#include "directory/admin_internal.h"
#include "util/addr.h"

#include <stdio.h>
#include <string.h>

int admin_begin(struct store *st, char *err, size_t errlen)
{
    if (store_begin(st) != STORE_OK)
        return errbuf_fail(err, errlen, "cannot start a store transaction (the database is busy or failing)");
    return 0;
}

int admin_end(struct store *st, int rc, char *err, size_t errlen)
{
    if (rc != 0) {
        store_rollback(st);
        return -1;
    }
    if (store_commit(st) != STORE_OK) {
        store_rollback(st);
        return errbuf_fail(err, errlen, "cannot commit the change to the store");
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
