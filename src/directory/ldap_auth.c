/*
 * ldap_auth.c — the one password check of every login (directory.h, "LDAP",
 * "Login"): the webmail login and password change, the submission port's
 * AUTH. Local users are checked against their argon2id hash; users the
 * directory sync made bind to the directory as themselves.
 *
 * SPEC.md: the cached hash of a directory user decides only "when the
 * directory cannot be reached (connection refused or timed out — not when it
 * says the password is wrong)". So a bind refused with invalidCredentials
 * (49) is a wrong password even if the cache would match an old one, and any
 * other answer of a reachable directory (a TLS failure, a refusal) is not
 * a reason to trust the cache either: only LDAP_SERVER_DOWN,
 * LDAP_CONNECT_ERROR and LDAP_TIMEOUT are (ldap_client.c). A password the
 * directory accepted is hashed here, on the caller's thread, and stored by
 * the writer job that also takes the login's count back
 * (directory_login_succeeded), so the write lock never waits for argon2id.
 *
 * Cost: every path does about one argon2id (a verify, or the hash of a
 * password the directory took), so the lockout's bound on checks is a bound
 * on work; a directory user's login also waits for the directory, which is
 * why this runs on the HTTP threads and the submission workers.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "directory/directory.h"
#include "util/log.h"

void directory_auth_clear(struct directory_auth *a)
{
    sodium_memzero(a->cache_hash, sizeof a->cache_hash);
}

/* The directory's verdict on a user of domain_id with that DN. */
static int ldap_check(struct store *st, const struct store_user *u, const struct store_ldap_user *l,
                      const char *password, struct directory_auth *out)
{
    struct store_ldap_settings s;
    char why[1024];
    int status;
    int rc = store_ldap_settings_get(st, u->domain_id, &s);
    if (rc == STORE_ERR)
        return -1;
    if (rc == STORE_NOTFOUND) {
        /* The domain's directory was taken away: no one to ask; the cache
         * is all there is, as when the directory is down. */
        status = DIRECTORY_LDAP_DOWN;
        snprintf(why, sizeof why, "the domain has no directory any more");
    } else {
        status = directory_ldap_user_bind(&s, l->dn, password, why, sizeof why);
        sodium_memzero(s.bind_password, sizeof s.bind_password);
    }
    switch (status) {
    case DIRECTORY_LDAP_OK:
        if (password_hash(password, out->cache_hash) != 0) {
            /* The login stands; only the cache misses this password. */
            log_err("ldap login %s: cannot hash the password for the cache (out of memory?)", u->email);
            out->cache_hash[0] = 0;
        }
        out->ok = 1;
        out->source = DIRECTORY_AUTH_LDAP_BIND;
        return 0;
    case DIRECTORY_LDAP_DOWN:
        out->directory_down = 1;
        out->source = DIRECTORY_AUTH_LDAP_CACHE;
        if (l->pw_cache[0]) {
            out->ok = password_verify(l->pw_cache, password) == 1;
            log_warn("ldap login %s: directory unreachable (%s); the cached password %s", u->email, why,
                     out->ok ? "matched" : "did not match");
        } else {
            const char *dummy = directory_dummy_hash(); /* the same cost as a check */
            if (dummy)
                password_verify(dummy, password);
            out->source = DIRECTORY_AUTH_NONE;
            log_warn("ldap login %s: directory unreachable (%s) and no cached password: refused", u->email, why);
        }
        return 0;
    case DIRECTORY_LDAP_INVALID:
        out->source = DIRECTORY_AUTH_LDAP_BIND;
        return 0; /* a wrong password, said by the directory: the cache does not count */
    default:
        log_warn("ldap login %s: refused: %s", u->email, why);
        out->source = DIRECTORY_AUTH_NONE;
        return 0;
    }
}

int directory_password_check_login(struct store *st, const struct store_user *u, const char *password,
                                   struct directory_auth *out)
{
    memset(out, 0, sizeof *out);
    if (u && st) {
        struct store_ldap_user l;
        int rc = store_ldap_user_get(st, u->id, &l);
        if (rc == STORE_OK) {
            int r = ldap_check(st, u, &l, password, out);
            sodium_memzero(l.pw_cache, sizeof l.pw_cache);
            if (r == 0)
                return out->ok;
            log_err("ldap login %s: store error", u->email);
            return 0;
        }
        if (rc == STORE_ERR) {
            log_err("login %s: store error reading the user's directory entry", u->email);
            return 0;
        }
    }
    /* A local user, or nobody: one argon2id check, against the dummy hash
     * when there is nothing real, so an unknown name costs what a wrong
     * password does. */
    int has = u && u->pw_hash[0];
    const char *hash = has ? u->pw_hash : directory_dummy_hash();
    int match = hash && password_verify(hash, password) == 1;
    out->ok = has && match;
    out->source = has ? DIRECTORY_AUTH_LOCAL : DIRECTORY_AUTH_NONE;
    return out->ok;
}

int directory_login_succeeded(struct store *st, int64_t user_id, const struct directory_login_attempt *a,
                              const struct directory_auth *auth, int64_t now)
{
    int rc = directory_login_attempt_succeeded(st, user_id, a);
    if (rc == STORE_OK)
        rc = store_user_set_last_login(st, user_id, now);
    if (rc == STORE_OK && auth && auth->source == DIRECTORY_AUTH_LDAP_BIND && auth->cache_hash[0])
        rc = store_ldap_user_set_cache(st, user_id, auth->cache_hash);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int directory_user_is_ldap(struct store *st, int64_t user_id)
{
    struct store_ldap_user l;
    int rc = store_ldap_user_get(st, user_id, &l);
    sodium_memzero(l.pw_cache, sizeof l.pw_cache);
    return rc == STORE_OK ? 1 : rc == STORE_NOTFOUND ? 0 : STORE_ERR;
}
