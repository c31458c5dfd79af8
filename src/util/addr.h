/*
 * addr.h — mail address helpers (no mail logic, no allocation).
 *
 * Addresses are compared case-insensitively as a whole, as mail administrators
 * expect from hosted mailboxes ("Bob@Acme.test" is "bob@acme.test"); the
 * canonical form stored everywhere is the lower-cased one (ASCII folding only;
 * UTF-8 bytes pass through unchanged).
 */
#ifndef LB_UTIL_ADDR_H
#define LB_UTIL_ADDR_H

#include <stddef.h>

#define ADDR_MAX 320   /* 64 local + @ + 255 domain, RFC 5321 4.5.3.1 */
#define DOMAIN_MAX 255

/* 1 if s is a plausible "local@domain": both sides non-empty, no spaces or
 * brackets, one @ (a quoted local part, "a@b"@domain, may hold more). */
int addr_is_valid(const char *s);

/* Lower-cases s into out (outlen bytes). Returns 0, or -1 if it does not fit. */
int addr_canonical(const char *s, char *out, size_t outlen);

/* Points at the domain part after the last '@' (or "" when there is none). */
const char *addr_domain(const char *s);

/* 1 if the address's domain equals domain, case-insensitively. */
int addr_in_domain(const char *addr, const char *domain);

/* 1 if s is a syntactically valid domain name (letters, digits, '-', '.', UTF-8). */
int domain_is_valid(const char *s);

#endif
