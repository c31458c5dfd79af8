/*
 * readiness.c — who could sign in to their continuity mailbox if the
 * customer's server failed now (directory.h, "Readiness"): lifeboatctl user
 * readiness and the panel's readiness list.
 *
 * A user is ready when they have a password that works without the
 * customer's own systems and have used it: a local user with a password who
 * has logged in, or a directory user whose password is cached (which needs
 * one login while the directory answered). The reasons are decided by a pure
 * function over the store's facts (no hash ever leaves the store), each with
 * what the administrator can do about it.
 */
#include <string.h>

#include "directory/directory.h"

unsigned directory_readiness_reasons(const struct store_user_readiness *u)
{
    unsigned r = 0;
    if (!u->ldap && !u->has_password)
        r |= READINESS_NO_PASSWORD;
    if (u->ldap && !u->ldap_cached)
        r |= READINESS_LDAP_NO_CACHE;
    if (!u->last_login)
        r |= READINESS_NEVER_LOGGED_IN;
    if (u->suspended)
        r |= READINESS_SUSPENDED;
    if (!u->active)
        r |= READINESS_NOT_ACTIVATED;
    return r;
}

void directory_readiness_describe(unsigned reason, const struct store_user_readiness *u,
                                  struct directory_readiness_text *out)
{
    switch (reason) {
    case READINESS_NO_PASSWORD:
        *out = (struct directory_readiness_text){
            "no_password", "has no password",
            "set a password for the user (Users > Set password, or lifeboatctl user set EMAIL --password-stdin)"};
        return;
    case READINESS_LDAP_NO_CACHE:
        *out = (struct directory_readiness_text){
            "ldap_no_cached_password", "is a directory user whose password is not cached yet",
            "ask the user to sign in to the webmail once while the directory is reachable: the password is "
            "cached then and works during an outage"};
        return;
    case READINESS_NEVER_LOGGED_IN:
        *out = (struct directory_readiness_text){
            "never_logged_in", "has never signed in",
            u->ldap ? "ask the user to sign in to the webmail once, so they know the address and their password "
                      "is cached"
                    : "ask the user to sign in to the webmail once, so they know the address and the password works"};
        return;
    case READINESS_SUSPENDED:
        *out = (struct directory_readiness_text){
            "suspended",
            u->ldap && u->sync_suspended ? "is suspended: disabled in or gone from the directory" : "is suspended",
            u->ldap && u->sync_suspended
                ? "enable the account in the directory (the next sync lifts the suspension) if the user should "
                  "have mail"
                : "activate the user (Users > Activate, or lifeboatctl user set EMAIL --activate) if they should "
                  "have mail"};
        return;
    case READINESS_NOT_ACTIVATED:
        *out = (struct directory_readiness_text){
            "not_activated", "is not activated",
            "activate the user (Users > Activate, or lifeboatctl user set EMAIL --activate)"};
        return;
    default:
        *out = (struct directory_readiness_text){"unknown", "is not ready", ""};
        return;
    }
}

struct readiness_each {
    int (*cb)(const struct store_user_readiness *, unsigned, void *);
    void *arg;
};

static int readiness_each(const struct store_user_readiness *u, void *arg)
{
    struct readiness_each *e = arg;
    return e->cb(u, directory_readiness_reasons(u), e->arg);
}

int directory_readiness(struct store *st, int64_t domain_id, int64_t customer_id,
                        int (*cb)(const struct store_user_readiness *u, unsigned reasons, void *arg), void *arg)
{
    struct readiness_each e = {cb, arg};
    return store_user_readiness_list(st, domain_id, customer_id, readiness_each, &e);
}
