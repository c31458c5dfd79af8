/*
 * admin_internal.h — helpers shared by the administration files of the
 * directory module (customer_admin.c, user_admin.c). Not a public interface.
 */
#ifndef LB_DIRECTORY_ADMIN_INTERNAL_H
#define LB_DIRECTORY_ADMIN_INTERNAL_H

#include <stddef.h>

#include "store/store.h"
#include "util/errbuf.h" /* errbuf_fail: the one-line reason into err */

/* BEGIN IMMEDIATE, or -1 with a reason. */
int admin_begin(struct store *st, char *err, size_t errlen);
/* Commits when rc is 0, rolls back otherwise; returns the final 0 or -1. */
int admin_end(struct store *st, int rc, char *err, size_t errlen);

/* Lower-cases an address or a domain into out; -1 if it does not fit. */
int admin_canonical(const char *s, char *out, size_t outlen);

/* 1 if s is 1..maxlen-1 bytes with no control characters (a display name,
 * a customer name). */
int admin_text_ok(const char *s, size_t maxlen);

/* alias add's checks and the insert, inside the caller's transaction: the
 * user (canonical address) must exist, the alias (canonical) be in a domain
 * of the same customer and be nobody's address or alias yet. 0 or an enum
 * directory_result with err. Also the CSV import's (user_import.c). */
int admin_alias_add_locked(struct store *st, const char *user_email, const char *alias, char *err, size_t errlen);

/* 0 if path holds a private key that DKIM signing can use (dkim.c), else -1
 * with the reason: domain set checks it so that a wrong file fails there. */
int directory_dkim_key_file_check(const char *path, char *err, size_t errlen);

#endif
