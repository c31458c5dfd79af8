/*
 * lockout.c — what logins share: the lockout (after too many failed logins
 * for one account, or from one client address, within a window, logins are
 * refused until the window has slid past them), finding the user an address
 * logs in as, the dummy hash for unknown users, and the From rule.
 *
 * Failures are rows in the store (store_login_failure_*), so a restart does
 * not reset the count. The account key is the address as typed, canonicalised,
 * whether or not such a user exists: unknown and known accounts lock out alike,
 * so the lockout tells an attacker nothing about who exists. While locked,
 * logins are refused before the password is checked (no guessing through the
 * lock) and are not counted again (the lock ends when the window says so).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "directory/directory.h"
#include "util/addr.h"

const struct directory_lockout_policy directory_lockout_default = {
    .account_max = 5,
    .addr_max = 20,
    .window = 15 * 60,
};

void directory_lockout_key_account(const char *email, char *out, size_t outlen)
{
    char canon[ADDR_MAX + 1];
    if (addr_canonical(email, canon, sizeof canon) != 0)
        snprintf(canon, sizeof canon, "%.320s", email); /* not an address: counted as typed */
    snprintf(out, outlen, "account:%s", canon);
}

void directory_lockout_key_addr(const char *ip, char *out, size_t outlen)
{
    snprintf(out, outlen, "addr:%s", ip);
}

int directory_lockout_locked(const struct directory_lockout_policy *p, unsigned account_failures, unsigned addr_failures)
{
    return account_failures >= p->account_max || addr_failures >= p->addr_max;
}

int directory_lockout_check(struct store *st, const struct directory_lockout_policy *p, const char *email, const char *ip,
                       int64_t now)
{
    char key[ADDR_MAX + 64];
    unsigned account = 0, addr = 0;
    directory_lockout_key_account(email, key, sizeof key);
    if (store_login_failure_count(st, key, now - p->window, &account) != STORE_OK)
        return -1;
    directory_lockout_key_addr(ip, key, sizeof key);
    if (store_login_failure_count(st, key, now - p->window, &addr) != STORE_OK)
        return -1;
    return directory_lockout_locked(p, account, addr);
}

int directory_lockout_record_failure(struct store *st, const struct directory_lockout_policy *p,
                                     const char *email, const char *ip, int64_t now)
{
    char key[ADDR_MAX + 64];
    int rc = store_login_failure_purge(st, now - p->window);
    if (rc == STORE_OK) {
        directory_lockout_key_account(email, key, sizeof key);
        rc = store_login_failure_add(st, key, now);
    }
    if (rc == STORE_OK) {
        directory_lockout_key_addr(ip, key, sizeof key);
        rc = store_login_failure_add(st, key, now);
    }
    return rc;
}

int directory_lockout_clear(struct store *st, const char *email)
{
    char key[ADDR_MAX + 64];
    directory_lockout_key_account(email, key, sizeof key);
    return store_login_failure_clear(st, key);
}

int directory_login_user(struct store *st, const char *email, struct store_user *u)
{
    char canon[ADDR_MAX + 1];
    if (!addr_is_valid(email) || addr_canonical(email, canon, sizeof canon) != 0)
        return STORE_NOTFOUND;
    int rc = store_user_get(st, canon, u);
    if (rc != STORE_NOTFOUND)
        return rc;
    int64_t uid;
    rc = store_alias_get(st, canon, &uid);
    return rc == STORE_OK ? store_user_get_by_id(st, uid, u) : rc;
}

int directory_user_owns_address(struct store *st, const struct store_user *u, const char *addr)
{
    if (strcmp(addr, u->email) == 0)
        return 1;
    int64_t uid = 0;
    return store_alias_get(st, addr, &uid) == STORE_OK && uid == u->id;
}

static char dummy_hash[PASSWORD_HASH_MAX];
static int dummy_ok;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void dummy_make(void)
{
    char pw[33];
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(pw, sizeof pw, raw, sizeof raw);
    dummy_ok = password_hash(pw, dummy_hash) == 0;
    sodium_memzero(pw, sizeof pw);
}

const char *directory_dummy_hash(void)
{
    pthread_once(&dummy_once, dummy_make);
    return dummy_ok ? dummy_hash : NULL;
}
