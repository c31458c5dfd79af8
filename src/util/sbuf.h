/*
 * sbuf.h — a growing string for text built piece by piece (SQL assembled at
 * run time, summaries). Out of memory is sticky: the first failed append sets
 * oom and every later one does nothing, so a builder checks once at the end.
 */
#ifndef LB_UTIL_SBUF_H
#define LB_UTIL_SBUF_H

#include <stddef.h>

struct sbuf {
    char *s; /* NUL-terminated once anything was appended; the owner frees it */
    size_t len, cap;
    int oom;
};

void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends len bytes of s. */
void sb_addn(struct sbuf *b, const char *s, size_t len);
/* The string built ("" when nothing was appended), handed to the caller, who
 * frees it; NULL when out of memory. b is empty again either way. */
char *sb_take(struct sbuf *b);

#endif
