/*
 * user_admin.c — users and aliases (see directory.h "administration").
 *
 * An address is either a user or an alias, never both, and an alias only
 * points into the same customer's domains: an alias is a way to receive mail,
 * so one customer must not be able to claim another customer's addresses.
 * Passwords are checked against the customer's password policy and hashed
 * before the transaction starts, so the write lock is never held for the
 * length of an argon2id computation.
 */
#include "directory/admin_internal.h"
#include "directory/directory.h"
#include "util/timeutil.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* Canonical form of a user or alias address, checked for syntax. */
static int address_canonical(const char *what, const char *addr, char out[ADDR_MAX + 1], char *err,
                             size_t errlen)
{
    if (!addr || admin_canonical(addr, out, ADDR_MAX + 1) != 0 || !addr_is_valid(out))
        return errbuf_fail(err, errlen, "%s \"%.200s\" is not a valid address", what, addr ? addr : "");
    return 0;
}

/* Checks a new password against the policy of the customer owning domain_id
 * (the message is the one the webmail gives, after "user EMAIL: "). Read
 * before the transaction, as the hash is made: a policy changed in between
 * applies from the next password on. */
static int check_policy(struct store *st, int64_t domain_id, const char *email, const char *password, char *err,
                        size_t errlen)
{
    char why[PASSWORD_POLICY_MSG_MAX];
    if (!*password)
        return 0; /* hash_new_password refuses it as empty, the clearer message */
    int rc = directory_password_check(st, domain_id, password, why, sizeof why);
    if (rc != 0)
        return errbuf_failc(rc > 0 ? DIR_POLICY : DIR_STORE, err, errlen, "user %s: %s", email, why);
    return 0;
}

/* Hashes a new password into out (a stack buffer the caller wipes). */
static int hash_new_password(const char *email, const char *password, char out[PASSWORD_HASH_MAX],
                             char *err, size_t errlen)
{
    if (!*password)
        return errbuf_fail(err, errlen, "user %s: the password is empty", email);
    if (password_hash(password, out) != 0)
        return errbuf_failc(DIR_STORE, err, errlen, "user %s: cannot hash the password (out of memory?)", email);
    return 0;
}

int directory_user_add(struct store *st, const char *email, const char *name, const char *role,
                       const char *password, int activate, char *err, size_t errlen)
{
    struct store_user u;
    memset(&u, 0, sizeof u);
    if (address_canonical("user", email, u.email, err, errlen) != 0)
        return -1;
    u.role = directory_role_parse(role ? role : "user");
    if (u.role < 0)
        return errbuf_fail(err, errlen, "user %s: unknown role \"%.40s\" (expected user, admin or operator)",
                           u.email, role);
    if (name && *name) {
        if (!admin_text_ok(name, sizeof u.name))
            return errbuf_fail(err, errlen, "user %s: the name is too long or has control characters", u.email);
        memcpy(u.name, name, strlen(name) + 1);
    }
    if (password) {
        /* An unknown domain is refused in the transaction below. */
        struct store_domain pd;
        int prc = store_domain_get(st, addr_domain(u.email), &pd);
        if (prc == STORE_ERR)
            return errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", u.email);
        int pol = prc == STORE_OK ? check_policy(st, pd.id, u.email, password, err, errlen) : 0;
        if (pol != 0)
            return pol;
        if (hash_new_password(u.email, password, u.pw_hash, err, errlen) != 0)
            return -1;
    }
    u.active = activate ? 1 : 0;
    u.created = time_now();

    const char *domain = addr_domain(u.email);
    struct store_domain d;
    int64_t owner;
    int rc;
    if (admin_begin(st, err, errlen) != 0) {
        sodium_memzero(&u, sizeof u);
        return DIR_STORE;
    }
    if ((rc = store_domain_get(st, domain, &d)) == STORE_NOTFOUND) {
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "user %s: domain %s is not hosted", u.email, domain);
    } else if (rc != STORE_OK) {
        rc = errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", u.email);
    } else if ((rc = store_alias_get(st, u.email, &owner)) != STORE_NOTFOUND) {
        rc = rc == STORE_OK ? errbuf_failc(DIR_EXISTS, err, errlen, "user %s: the address is already an alias", u.email)
                            : errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", u.email);
    } else {
        u.domain_id = d.id;
        rc = store_user_add(st, &u, NULL);
        if (rc == STORE_EXISTS)
            rc = errbuf_failc(DIR_EXISTS, err, errlen, "user %s already exists", u.email);
        else if (rc != STORE_OK)
            rc = errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", u.email);
    }
    sodium_memzero(u.pw_hash, sizeof u.pw_hash);
    return admin_end(st, rc, err, errlen);
}

/* Applies ch to u (a local copy) after checking every value. */
static int user_apply(struct store_user *u, const struct directory_user_changes *ch, const char *pw_hash,
                      char *err, size_t errlen)
{
    if (ch->role) {
        int role = directory_role_parse(ch->role);
        if (role < 0)
            return errbuf_fail(err, errlen, "user %s: unknown role \"%.40s\" (expected user, admin or operator)",
                               u->email, ch->role);
        u->role = role;
    }
    if (ch->name) {
        if (*ch->name && !admin_text_ok(ch->name, sizeof u->name))
            return errbuf_fail(err, errlen, "user %s: the name is too long or has control characters", u->email);
        snprintf(u->name, sizeof u->name, "%s", ch->name);
    }
    if (ch->alt_email) {
        if (*ch->alt_email) {
            char alt[ADDR_MAX + 1];
            if (address_canonical("alternate address", ch->alt_email, alt, err, errlen) != 0)
                return -1;
            if (!strcmp(alt, u->email))
                return errbuf_fail(err, errlen, "user %s: the alternate address must be another address", u->email);
            memcpy(u->alt_email, alt, strlen(alt) + 1);
        } else {
            u->alt_email[0] = 0;
        }
    }
    if (ch->active == 1 && ch->suspended == 1)
        return errbuf_fail(err, errlen, "user %s: activate or suspend, not both", u->email);
    if (ch->active == 1) {
        u->active = 1;
        u->suspended = 0;
    }
    if (ch->suspended == 1)
        u->suspended = 1;
    if (pw_hash)
        memcpy(u->pw_hash, pw_hash, strlen(pw_hash) + 1);
    return 0;
}

int directory_user_set(struct store *st, const char *email, const struct directory_user_changes *ch,
                       char *err, size_t errlen)
{
    char canon[ADDR_MAX + 1];
    char pw_hash[PASSWORD_HASH_MAX];
    if (address_canonical("user", email, canon, err, errlen) != 0)
        return -1;
    if (ch->password) {
        /* An unknown user is refused in the transaction below. */
        struct store_user pu;
        int prc = store_user_get(st, canon, &pu);
        if (prc == STORE_ERR)
            return errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", canon);
        int pol = prc == STORE_OK ? check_policy(st, pu.domain_id, canon, ch->password, err, errlen) : 0;
        if (pol != 0)
            return pol;
        if (hash_new_password(canon, ch->password, pw_hash, err, errlen) != 0)
            return -1;
    }
    if (admin_begin(st, err, errlen) != 0) {
        sodium_memzero(pw_hash, sizeof pw_hash);
        return DIR_STORE;
    }
    struct store_user u;
    int rc = store_user_get(st, canon, &u);
    if (rc == STORE_NOTFOUND)
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "user %s does not exist", canon);
    else if (rc != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", canon);
    else if ((rc = user_apply(&u, ch, ch->password ? pw_hash : NULL, err, errlen)) == 0 &&
             store_user_update(st, &u) != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", canon);
    /* A password set by an administrator (a leaked one, a user who left)
     * ends the user's webmail sessions, as the user's own change does. */
    else if (rc == 0 && ch->password && store_user_set_password(st, u.id, pw_hash, NULL) != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", canon);
    sodium_memzero(&u, sizeof u);
    sodium_memzero(pw_hash, sizeof pw_hash);
    return admin_end(st, rc, err, errlen);
}

static int count_waiting(const struct store_mailbox_entry *e, void *arg)
{
    if (e->redeliver == REDELIVER_WAITING)
        ++*(unsigned long *)arg;
    return 0;
}

int directory_user_del(struct store *st, const char *email, char *err, size_t errlen)
{
    char canon[ADDR_MAX + 1];
    if (address_canonical("user", email, canon, err, errlen) != 0)
        return -1;
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_user u;
    unsigned long waiting = 0;
    int rc = store_user_get(st, canon, &u);
    if (rc == STORE_NOTFOUND)
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "user %s does not exist", canon);
    else if (rc != STORE_OK || store_mailbox_list(st, u.id, -1, count_waiting, &waiting) != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", canon);
    else if (waiting)
        rc = errbuf_failc(DIR_REFUSED, err, errlen,
                         "user %s has %lu message(s) in continuity waiting for re-delivery to the customer's "
                         "server; delete the user once they are re-delivered",
                         canon, waiting);
    else if (store_user_del(st, u.id) != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", canon);
    return admin_end(st, rc, err, errlen);
}

/* The checks of alias add, inside the transaction (admin_internal.h). */
int admin_alias_add_locked(struct store *st, const char *user_email, const char *alias, char *err, size_t errlen)
{
    struct store_user u, other;
    struct store_domain user_domain, alias_domain;
    int64_t owner;
    const char *domain = addr_domain(alias);

    int rc = store_user_get(st, user_email, &u);
    if (rc == STORE_NOTFOUND)
        return errbuf_failc(DIR_NOTFOUND, err, errlen, "alias %s: user %s does not exist", alias, user_email);
    if (rc != STORE_OK)
        return errbuf_failc(DIR_STORE, err, errlen, "alias %s: store error", alias);
    rc = store_domain_get(st, domain, &alias_domain);
    if (rc == STORE_NOTFOUND)
        return errbuf_failc(DIR_NOTFOUND, err, errlen, "alias %s: domain %s is not hosted", alias, domain);
    if (rc != STORE_OK || store_domain_get_by_id(st, u.domain_id, &user_domain) != STORE_OK)
        return errbuf_failc(DIR_STORE, err, errlen, "alias %s: store error", alias);
    if (alias_domain.customer_id != user_domain.customer_id)
        return errbuf_fail(err, errlen, "alias %s: domain %s belongs to another customer than user %s", alias,
                           domain, u.email);
    rc = store_user_get(st, alias, &other);
    if (rc == STORE_OK)
        return errbuf_failc(DIR_EXISTS, err, errlen, "alias %s: the address is a user's own address", alias);
    if (rc != STORE_NOTFOUND)
        return errbuf_failc(DIR_STORE, err, errlen, "alias %s: store error", alias);
    rc = store_alias_get(st, alias, &owner);
    if (rc == STORE_OK) {
        if (store_user_get_by_id(st, owner, &other) == STORE_OK)
            return errbuf_failc(DIR_EXISTS, err, errlen, "alias %s already exists (for %s)", alias, other.email);
        return errbuf_failc(DIR_EXISTS, err, errlen, "alias %s already exists", alias);
    }
    if (rc != STORE_NOTFOUND)
        return errbuf_failc(DIR_STORE, err, errlen, "alias %s: store error", alias);
    rc = store_alias_add(st, u.id, alias);
    if (rc == STORE_EXISTS)
        return errbuf_failc(DIR_EXISTS, err, errlen, "alias %s already exists", alias);
    if (rc != STORE_OK)
        return errbuf_failc(DIR_STORE, err, errlen, "alias %s: store error", alias);
    return 0;
}

int directory_alias_add(struct store *st, const char *user_email, const char *alias, char *err,
                        size_t errlen)
{
    char user_c[ADDR_MAX + 1], alias_c[ADDR_MAX + 1];
    if (address_canonical("user", user_email, user_c, err, errlen) != 0 ||
        address_canonical("alias", alias, alias_c, err, errlen) != 0)
        return -1;
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    int rc = admin_alias_add_locked(st, user_c, alias_c, err, errlen);
    return admin_end(st, rc, err, errlen);
}

int directory_alias_del(struct store *st, const char *alias, char *err, size_t errlen)
{
    char canon[ADDR_MAX + 1];
    if (address_canonical("alias", alias, canon, err, errlen) != 0)
        return -1;
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    int rc = store_alias_del(st, canon);
    if (rc == STORE_NOTFOUND)
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "alias %s does not exist", canon);
    else if (rc != STORE_OK)
        rc = errbuf_failc(DIR_STORE, err, errlen, "alias %s: store error", canon);
    return admin_end(st, rc, err, errlen);
}
