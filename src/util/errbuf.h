/*
 * errbuf.h — the err/errlen convention of calls that explain a refusal: the
 * caller passes a buffer (err may be NULL, errlen 0), the call writes one line
 * saying why into it and fails. Used where the reason goes back to a person
 * (lifeboatctl, the HTTP API), not only to the log.
 */
#ifndef LB_UTIL_ERRBUF_H
#define LB_UTIL_ERRBUF_H

#include <stddef.h>

/* Formats the reason into err (cut to errlen - 1 bytes; nothing when err is
 * NULL or errlen 0) and returns -1, for "return errbuf_fail(...)". */
int errbuf_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same, returning code (a caller's negative error code, for callers that
 * decide on the kind of refusal: the HTTP API picks its status by it). */
int errbuf_failc(int code, char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
