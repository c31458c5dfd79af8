/*
 * admin_del.c — user unlock, domain del and customer del (see directory.h
 * "unlock, deletions"), shared by lifeboatctl and the admin API.
 *
 * A deletion takes nothing with it that someone still waits for unless it is
 * told to: mail queued or held for a domain, or waiting in its continuity
 * mailboxes for re-delivery to the customer's server, keeps the domain until
 * it is delivered or the operator says --force. What --force drops is
 * counted and returned, so lifeboatctl and the API can say what went. The
 * archive is never touched: its entries belong to the customer and stay for
 * the retention window (and legal holds), which is also why a customer with
 * archived mail cannot be deleted until the retention purge has taken it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <jansson.h>

#include "directory/admin_internal.h"
#include "directory/directory.h"
#include "util/timeutil.h"

/* ---------------------------------------------------------------- unlock */

struct unlock_ctx {
    struct store *st;
    int rc;
};

static int clear_name(const char *alias, const char *user_email, void *arg)
{
    (void)user_email;
    struct unlock_ctx *u = arg;
    char key[ADDR_MAX + 64];
    directory_lockout_key_name(alias, key, sizeof key);
    if (store_login_failure_clear(u->st, key) != STORE_OK) {
        u->rc = STORE_ERR;
        return 1;
    }
    return 0;
}

int directory_user_unlock(struct store *st, const char *email, char *err, size_t errlen)
{
    char canon[ADDR_MAX + 1];
    if (admin_canonical(email, canon, sizeof canon) != 0 || !addr_is_valid(canon))
        return errbuf_failc(DIR_INVALID, err, errlen, "user \"%.200s\" is not a valid address", email ? email : "");
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_user u;
    struct unlock_ctx ctx = {st, STORE_OK};
    int rc = directory_login_user(st, canon, &u);
    if (rc == STORE_NOTFOUND) {
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "user %s does not exist", canon);
    } else if (rc != STORE_OK) {
        rc = errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", canon);
    } else {
        /* The account's count, and the counts under the names the user logs
         * in with, kept from before they were the user's (a name that was
         * nobody's is counted by name). */
        rc = directory_lockout_clear_user(st, u.id);
        if (rc == STORE_OK)
            clear_name(u.email, NULL, &ctx);
        if (rc == STORE_OK && ctx.rc == STORE_OK)
            rc = store_alias_list(st, u.id, clear_name, &ctx);
        if (rc != STORE_OK || ctx.rc != STORE_OK)
            rc = errbuf_failc(DIR_STORE, err, errlen, "user %s: store error", u.email);
    }
    return admin_end(st, rc, err, errlen);
}

/* ---------------------------------------------------------------- domain del */

struct id_list {
    int64_t *v;
    size_t n, cap;
    int failed;
};

static int id_add(struct id_list *l, int64_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        int64_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->failed = 1;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return 0;
}

static int collect_user(const struct store_user *u, void *arg)
{
    return id_add(arg, u->id);
}

static int count_alias(const char *alias, const char *user_email, void *arg)
{
    (void)alias, (void)user_email;
    ++*(unsigned *)arg;
    return 0;
}

static int count_entry(const struct store_mailbox_entry *e, void *arg)
{
    (void)e;
    ++*(unsigned *)arg;
    return 0;
}

/* Aliases in a domain (of users anywhere). */
struct domain_aliases {
    const char *domain;
    char (*v)[ADDR_MAX + 1];
    size_t n, cap;
    int failed;
};

static int collect_alias(const char *alias, const char *user_email, void *arg)
{
    (void)user_email;
    struct domain_aliases *l = arg;
    if (!addr_in_domain(alias, l->domain))
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char (*v)[ADDR_MAX + 1] = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->failed = 1;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    snprintf(l->v[l->n++], ADDR_MAX + 1, "%s", alias);
    return 0;
}

/* Deletes the domain's users (counting what goes with them) and the aliases
 * left in the domain. STORE_* codes. */
static int drop_users(struct store *st, const struct store_domain *d, struct directory_domain_del_counts *c)
{
    struct id_list users = {0};
    int rc = store_user_list(st, d->id, collect_user, &users);
    if (rc == STORE_OK && users.failed)
        rc = STORE_ERR;
    for (size_t i = 0; rc == STORE_OK && i < users.n; i++) {
        rc = store_alias_list(st, users.v[i], count_alias, &c->aliases);
        if (rc == STORE_OK)
            rc = store_mailbox_list(st, users.v[i], -1, count_entry, &c->mailbox);
        /* User IDs may be given again: a new user must not inherit these. */
        if (rc == STORE_OK)
            rc = directory_lockout_clear_user(st, users.v[i]);
        if (rc == STORE_OK)
            rc = store_user_del(st, users.v[i]);
        if (rc == STORE_OK)
            c->users++;
    }
    free(users.v);
    /* Aliases in this domain of users in the customer's other domains. */
    struct domain_aliases al = {.domain = d->name};
    if (rc == STORE_OK && (rc = store_alias_list(st, 0, collect_alias, &al)) == STORE_OK && al.failed)
        rc = STORE_ERR;
    for (size_t i = 0; rc == STORE_OK && i < al.n; i++)
        if ((rc = store_alias_del(st, al.v[i])) == STORE_OK)
            c->aliases++;
    free(al.v);
    return rc;
}

int directory_domain_del(struct store *st, const char *domain, int force, struct directory_domain_del_counts *counts,
                         char *err, size_t errlen)
{
    struct directory_domain_del_counts c = {0};
    if (counts)
        *counts = c;
    char name[DOMAIN_MAX + 1];
    if (admin_canonical(domain, name, sizeof name) != 0 || !domain_is_valid(name))
        return errbuf_failc(DIR_INVALID, err, errlen, "\"%.200s\" is not a valid domain name", domain ? domain : "");
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_domain d;
    struct store_continuity_counts cc;
    int rc = store_domain_get(st, name, &d);
    if (rc == STORE_NOTFOUND) {
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "domain %s is not hosted", name);
    } else if (rc != STORE_OK || store_rcpt_pending_domain(st, name, &c.queued) != STORE_OK ||
               store_continuity_counts(st, d.id, &cc) != STORE_OK) {
        rc = errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", name);
    } else if ((c.waiting = (unsigned)cc.waiting, c.queued || c.waiting) && !force) {
        rc = errbuf_failc(DIR_REFUSED, err, errlen,
                          "domain %s has %u message(s) queued or held for it and %u in continuity mailboxes "
                          "waiting for re-delivery; deliver them first, or delete with --force (which drops them)",
                          name, c.queued, c.waiting);
    } else if ((c.queued && store_rcpt_drop_domain(st, name, "dropped: domain deleted", NULL) != STORE_OK) ||
               drop_users(st, &d, &c) != STORE_OK || store_domain_del(st, d.id) != STORE_OK) {
        rc = errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", name);
    }
    rc = admin_end(st, rc, err, errlen);
    if (counts && (rc == 0 || rc == DIR_REFUSED)) /* refused: only what stood in the way */
        *counts = c;
    return rc;
}

struct json_t *directory_domain_del_json(const char *domain, const struct directory_domain_del_counts *c)
{
    /* domain_is_valid lets any byte over 0x7f through: JSON wants UTF-8. */
    gchar *name = g_utf8_make_valid(domain, -1);
    json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "domain", name, "users", (json_int_t)c->users, "aliases",
                     (json_int_t)c->aliases, "mailbox", (json_int_t)c->mailbox, "dropped_queued",
                     (json_int_t)c->queued, "dropped_waiting", (json_int_t)c->waiting);
    g_free(name);
    return j;
}

/* ---------------------------------------------------------------- customer del */

struct customer_domains {
    int64_t customer_id;
    unsigned n;
    char names[200];
};

static int customer_domain(const struct store_domain *d, void *arg)
{
    struct customer_domains *l = arg;
    if (d->customer_id != l->customer_id)
        return 0;
    size_t used = strlen(l->names);
    if (l->n++ < 5)
        snprintf(l->names + used, sizeof l->names - used, "%s%s", used ? ", " : "", d->name);
    return 0;
}

static int count_hold(const struct store_archive_hold *h, void *arg)
{
    (void)h;
    ++*(unsigned *)arg;
    return 0;
}

int directory_customer_del(struct store *st, const char *name, char *err, size_t errlen)
{
    if (!name || !*name)
        return errbuf_failc(DIR_INVALID, err, errlen, "the customer name is missing");
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    struct store_customer c;
    struct customer_domains doms = {0};
    unsigned holds = 0;
    uint64_t archived = 0;
    int64_t oldest = 0;
    int rc = store_customer_get(st, name, &c);
    if (rc == STORE_NOTFOUND) {
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "customer %.128s does not exist", name);
    } else if (rc != STORE_OK || (doms.customer_id = c.id, store_domain_list(st, customer_domain, &doms)) != STORE_OK ||
               store_archive_hold_list(st, c.id, count_hold, &holds) != STORE_OK ||
               store_archive_count_customer(st, c.id, &archived, &oldest) != STORE_OK) {
        rc = errbuf_failc(DIR_STORE, err, errlen, "customer %.128s: store error", name);
    } else if (doms.n) {
        rc = errbuf_failc(DIR_REFUSED, err, errlen, "customer %s still has %u domain(s) (%s%s); delete them first",
                          c.name, doms.n, doms.names, doms.n > 5 ? ", ..." : "");
    } else if (holds) {
        rc = errbuf_failc(DIR_REFUSED, err, errlen,
                          "customer %s has %u legal hold(s) on its archive; release them first", c.name, holds);
    } else if (archived) {
        char when[64];
        time_iso8601((time_t)oldest, when, sizeof when);
        rc = errbuf_failc(DIR_REFUSED, err, errlen,
                          "customer %s still has %llu archived message(s) (the oldest from %s), kept for the "
                          "archive retention window; it can be deleted once the retention purge has removed them",
                          c.name, (unsigned long long)archived, when);
    } else if ((rc = store_customer_del(st, c.id)) != STORE_OK) {
        rc = rc == STORE_NOTFOUND ? errbuf_failc(DIR_NOTFOUND, err, errlen, "customer %s does not exist", c.name)
                                  : errbuf_failc(DIR_STORE, err, errlen, "customer %s: store error", c.name);
    }
    return admin_end(st, rc, err, errlen);
}
