/*
 * strlist.h — comma-separated lists in configuration values and command-line
 * options ("mx1.acme.test:25, [2001:db8::1]:2525", "192.0.2.0/24,::1"), one
 * entry at a time with the spaces around it trimmed. Empty entries are kept
 * ("" is one empty entry, "a,,b" three), so that a caller can refuse "a,,b"
 * as the typo it is; strtok would hide it. Pure.
 */
#ifndef LB_UTIL_STRLIST_H
#define LB_UTIL_STRLIST_H

#include <stddef.h>

/*
 * Copies the entry at *pos (set *pos to the list to begin), trimmed and
 * NUL-terminated, into out and moves *pos past it (to NULL after the last
 * entry). Returns 1 for an entry, 0 when the list is done, -1 for an entry
 * that does not fit in outlen bytes (out is "" then; *pos moved on all the
 * same).
 */
int strlist_next(const char **pos, char *out, size_t outlen);

#endif
