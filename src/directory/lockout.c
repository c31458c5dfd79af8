/*
 * lockout.c — what logins share: the lockout (after too many failed logins
 * for one account, or from one client address, within a window, logins are
 * refused until the window has slid past them), finding the user an address
 * logs in as, the dummy hash for unknown users, and the From rule.
 *
 * Failures are rows in the store (store_login_failure_*), so a restart does
 * not reset the count. The account key is the user (so each alias does not
 * get a count of its own), or the name typed when it is nobody's: unknown and
 * known accounts lock out alike, so the lockout tells an attacker nothing
 * about who exists. An attempt is counted before the password is checked, in
 * the same writer transaction that checks the lock: concurrent attempts are
 * serialised there, so no more than the limit ever reach argon2id (the
 * review found 40 parallel AUTHs all checked when the count came after).
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

void directory_lockout_key_user(int64_t user_id, char *out, size_t outlen)
{
    snprintf(out, outlen, "user:%lld", (long long)user_id);
}

void directory_lockout_key_name(const char *name, char *out, size_t outlen)
{
    char canon[ADDR_MAX + 1];
    if (addr_canonical(name, canon, sizeof canon) != 0)
        snprintf(canon, sizeof canon, "%.320s", name); /* not an address: counted as typed */
    snprintf(out, outlen, "account:%s", canon);
}

void directory_lockout_key_addr(const char *ip, char *out, size_t outlen)
{
    snprintf(out, outlen, "addr:%s", ip);
}

int directory_lockout_key_account(struct store *st, const char *login, char *out, size_t outlen)
{
    struct store_user u;
    int rc = directory_login_user(st, login, &u);
    if (rc == STORE_ERR)
        return STORE_ERR;
    if (rc == STORE_OK)
        directory_lockout_key_user(u.id, out, outlen);
    else
        directory_lockout_key_name(login, out, outlen);
    return STORE_OK;
}

int directory_lockout_locked(const struct directory_lockout_policy *p, unsigned account_failures, unsigned addr_failures)
{
    return account_failures >= p->account_max || addr_failures >= p->addr_max;
}

int directory_login_attempt_begin(struct store *st, const struct directory_lockout_policy *p, const char *login,
                                  const char *ip, int64_t now, struct directory_login_attempt *out)
{
    memset(out, 0, sizeof *out);
    char account[ADDR_MAX + 64], addr[128];
    unsigned acc_done = 0, acc_pending = 0, addr_done = 0, addr_pending = 0;
    int64_t since = now - p->window, stale = now - DIRECTORY_LOGIN_PENDING_MAX;
    if (directory_lockout_key_account(st, login, account, sizeof account) != STORE_OK)
        return STORE_ERR;
    directory_lockout_key_addr(ip, addr, sizeof addr);
    if (store_login_failure_purge(st, since) != STORE_OK ||
        store_login_failure_counts(st, account, since, stale, &acc_done, &acc_pending) != STORE_OK ||
        store_login_failure_counts(st, addr, since, stale, &addr_done, &addr_pending) != STORE_OK)
        return STORE_ERR;
    /* While locked, attempts are not counted again: the lock ends when the
     * window says so, not later for every try. */
    if (directory_lockout_locked(p, acc_done, addr_done))
        return DIRECTORY_LOGIN_LOCKED;
    if (directory_lockout_locked(p, acc_done + acc_pending, addr_done + addr_pending))
        return DIRECTORY_LOGIN_BUSY;
    if (store_login_failure_add(st, account, now, 1, &out->account_row) != STORE_OK ||
        store_login_failure_add(st, addr, now, 1, &out->addr_row) != STORE_OK)
        return STORE_ERR;
    return DIRECTORY_LOGIN_GO;
}

int directory_login_attempt_failed(struct store *st, const struct directory_login_attempt *a)
{
    int rc = a->account_row ? store_login_failure_settle(st, a->account_row) : STORE_OK;
    if (rc == STORE_OK && a->addr_row)
        rc = store_login_failure_settle(st, a->addr_row);
    return rc;
}

int directory_login_attempt_succeeded(struct store *st, int64_t user_id, const struct directory_login_attempt *a)
{
    int rc = directory_lockout_clear_user(st, user_id);
    if (rc == STORE_OK && a->account_row)
        rc = store_login_failure_del(st, a->account_row);
    if (rc == STORE_OK && a->addr_row)
        rc = store_login_failure_del(st, a->addr_row);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int directory_lockout_clear_user(struct store *st, int64_t user_id)
{
    char key[64];
    directory_lockout_key_user(user_id, key, sizeof key);
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
