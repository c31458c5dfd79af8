/*
 * http_lockout.c — login lockout: after too many failed logins for one account,
 * or from one client address, within a window, logins answer 429 until the
 * window has slid past them.
 *
 * Failures are rows in the store (store_login_failure_*), so a restart does
 * not reset the count. The account key is the address as typed, canonicalised,
 * whether or not such a user exists: unknown and known accounts lock out alike,
 * so the lockout tells an attacker nothing about who exists. While locked,
 * logins are refused before the password is checked (no guessing through the
 * lock) and are not counted again (the lock ends when the window says so).
 */
#include <stdio.h>

#include "http/http_internal.h"
#include "util/addr.h"

const struct http_lockout_policy http_lockout_default = {
    .account_max = 5,
    .addr_max = 20,
    .window = 15 * 60,
};

void http_lockout_key_account(const char *email, char *out, size_t outlen)
{
    char canon[ADDR_MAX + 1];
    if (addr_canonical(email, canon, sizeof canon) != 0)
        snprintf(canon, sizeof canon, "%.320s", email); /* not an address: counted as typed */
    snprintf(out, outlen, "account:%s", canon);
}

void http_lockout_key_addr(const char *ip, char *out, size_t outlen)
{
    snprintf(out, outlen, "addr:%s", ip);
}

int http_lockout_locked(const struct http_lockout_policy *p, unsigned account_failures, unsigned addr_failures)
{
    return account_failures >= p->account_max || addr_failures >= p->addr_max;
}

int http_lockout_check(struct store *st, const struct http_lockout_policy *p, const char *email, const char *ip,
                       int64_t now)
{
    char key[ADDR_MAX + 64];
    unsigned account = 0, addr = 0;
    http_lockout_key_account(email, key, sizeof key);
    if (store_login_failure_count(st, key, now - p->window, &account) != STORE_OK)
        return -1;
    http_lockout_key_addr(ip, key, sizeof key);
    if (store_login_failure_count(st, key, now - p->window, &addr) != STORE_OK)
        return -1;
    return http_lockout_locked(p, account, addr);
}
