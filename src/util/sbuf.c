/*
 * sbuf.c — the growing string of sbuf.h.
 */
#include "util/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void sb_add(struct sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
}

void sb_addn(struct sbuf *b, const char *s, size_t len)
{
    sb_add(b, "%.*s", (int)len, s);
}

char *sb_take(struct sbuf *b)
{
    if (!b->oom && !b->s)
        sb_add(b, "%s", "");
    char *s = b->s;
    if (b->oom) {
        free(s);
        s = NULL;
    }
    *b = (struct sbuf){0};
    return s;
}
