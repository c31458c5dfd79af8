/*
 * strlist.c — see strlist.h.
 */
#include "util/strlist.h"

#include <ctype.h>
#include <string.h>

int strlist_next(const char **pos, char *out, size_t outlen)
{
    const char *p = *pos;
    if (!p)
        return 0;
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    *pos = comma ? comma + 1 : NULL;
    while (len && isspace((unsigned char)*p))
        p++, len--;
    while (len && isspace((unsigned char)p[len - 1]))
        len--;
    if (len >= outlen) {
        if (outlen)
            out[0] = '\0';
        return -1;
    }
    memcpy(out, p, len);
    out[len] = '\0';
    return 1;
}
