/*
 * ldap_sync.c — a domain's directory settings and the sync (directory.h,
 * "LDAP"): what lifeboatctl ldap set|sync, the admin API and the daemon's
 * periodic sync all call.
 *
 * A sync is two steps. The search (ldap_client.c) runs on the caller's thread
 * and touches no store; only when it has every entry does the second step, one
 * write transaction (the daemon's writer, an HTTP writer job, or lifeboatctl's
 * own), apply the difference and store the report. So a directory that fails
 * half-way changes nothing, and the write lock is never held while the
 * network is waited for. The apply re-reads every user inside its
 * transaction, so what it decides holds against concurrent changes.
 *
 * The rules: a user is made by the sync or is local (a row in ldap_users says
 * which) and the sync never touches a local user, nor takes an address that
 * is a local user's or another user's alias (each such case is an error line
 * of the report, the rest of the sync goes on). A directory user gone from the
 * directory, or disabled there, is suspended (never deleted: their mail stays);
 * a suspension the sync made is lifted when the entry is back and enabled, one
 * an administrator made is not. Aliases come from the entry; those the sync
 * made go when the entry no longer has them; aliases into domains that are
 * not hosted, or not the same customer's, are left out without a word (Active
 * Directory lists every address of a mailbox, most of them not ours).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "directory/admin_internal.h"
#include "directory/directory.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/timeutil.h"

/* ------------------------------------------------------------------ settings */

static int text_ok(const char *s, size_t max)
{
    if (strlen(s) >= max)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static int set_field(char *dst, size_t dstlen, const char *v, const char *what, const char *domain, char *err,
                     size_t errlen)
{
    if (!text_ok(v, dstlen))
        return errbuf_fail(err, errlen, "ldap %s: the %s is too long or has control characters", domain, what);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int directory_ldap_settings_apply(struct store_ldap_settings *n, const struct directory_ldap_changes *ch, int is_new,
                                  const char *domain, char *err, size_t errlen)
{
    if (is_new && (!ch->url || !ch->base))
        return errbuf_fail(err, errlen, "ldap %s: the URL and the base DN are required", domain);
    if ((ch->url && set_field(n->url, sizeof n->url, ch->url, "URL", domain, err, errlen) != 0) ||
        (ch->bind_dn && set_field(n->bind_dn, sizeof n->bind_dn, ch->bind_dn, "bind DN", domain, err, errlen) != 0) ||
        (ch->base && set_field(n->base, sizeof n->base, ch->base, "base DN", domain, err, errlen) != 0) ||
        (ch->filter && set_field(n->filter, sizeof n->filter, ch->filter, "filter", domain, err, errlen) != 0))
        return -1;
    if (ch->bind_password) {
        if (strlen(ch->bind_password) >= sizeof n->bind_password)
            return errbuf_fail(err, errlen, "ldap %s: the bind password is too long", domain);
        memcpy(n->bind_password, ch->bind_password, strlen(ch->bind_password) + 1);
    }
    if (ch->interval && ldap_interval_parse(ch->interval, &n->interval) != 0)
        return errbuf_fail(err, errlen, "ldap %s: the interval must be a duration like 3h, 30m or 600s (at least %ds)",
                           domain, LDAP_INTERVAL_MIN);
    if (ch->starttls >= 0)
        n->starttls = ch->starttls != 0;
    /* A URL that no longer fits the flag (ldaps:// now) drops StartTLS
     * only when the flag was not given with it. */
    if (ch->url && ch->starttls < 0 && !strncasecmp(n->url, "ldaps://", 8))
        n->starttls = 0;
    char why[256];
    if (ldap_url_check(n->url, n->starttls, why, sizeof why) != 0)
        return errbuf_fail(err, errlen, "ldap %s: %s", domain, why);
    if (!*n->base)
        return errbuf_fail(err, errlen, "ldap %s: the base DN is empty", domain);
    if (ldap_filter_check(n->filter) != 0)
        return errbuf_fail(err, errlen, "ldap %s: the filter \"%.200s\" is not an LDAP filter like %s", domain,
                           n->filter, LDAP_FILTER_DEFAULT);
    if (*n->bind_dn && !*n->bind_password)
        return errbuf_fail(err, errlen, "ldap %s: a bind DN needs its password (an empty one would be an "
                                        "anonymous bind)", domain);
    return 0;
}

void directory_ldap_settings_default(struct store_ldap_settings *n, int64_t domain_id)
{
    memset(n, 0, sizeof *n);
    n->domain_id = domain_id;
    snprintf(n->filter, sizeof n->filter, "%s", LDAP_FILTER_DEFAULT);
    n->interval = LDAP_INTERVAL_DEFAULT;
}

int directory_ldap_set(struct store *st, const char *domain, const struct directory_ldap_changes *ch, int64_t now,
                       char *err, size_t errlen)
{
    char name[DOMAIN_MAX + 1];
    if (admin_canonical(domain, name, sizeof name) != 0 || !domain_is_valid(name))
        return errbuf_fail(err, errlen, "ldap: \"%.200s\" is not a domain name", domain ? domain : "");
    if (admin_begin(st, err, errlen) != 0)
        return -1;
    struct store_domain d;
    struct store_ldap_settings n;
    int rc = store_domain_get(st, name, &d);
    if (rc == STORE_NOTFOUND) {
        rc = errbuf_failc(DIR_NOTFOUND, err, errlen, "ldap: domain %s is not hosted", name);
    } else if (rc != STORE_OK) {
        rc = errbuf_failc(DIR_STORE, err, errlen, "ldap %s: store error", name);
    } else if ((rc = store_ldap_settings_get(st, d.id, &n)) == STORE_ERR) {
        rc = errbuf_failc(DIR_STORE, err, errlen, "ldap %s: store error", name);
    } else {
        int is_new = rc == STORE_NOTFOUND;
        if (is_new)
            directory_ldap_settings_default(&n, d.id);
        rc = directory_ldap_settings_apply(&n, ch, is_new, name, err, errlen);
        n.updated = now;
        if (rc == 0 && store_ldap_settings_set(st, &n) != STORE_OK)
            rc = errbuf_failc(DIR_STORE, err, errlen, "ldap %s: store error", name);
    }
    sodium_memzero(&n, sizeof n);
    return admin_end(st, rc, err, errlen);
}

/* ------------------------------------------------------------------ the report */

static void report_error(struct store_ldap_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report_error(struct store_ldap_report *rep, const char *fmt, ...)
{
    if (rep->nerrors++ >= LDAP_ERRORS_KEPT)
        return;
    size_t used = strlen(rep->errors);
    if (used + 2 >= sizeof rep->errors)
        return;
    if (used)
        rep->errors[used++] = '\n';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->errors + used, sizeof rep->errors - used, fmt, ap);
    va_end(ap);
    /* One reason a line: a line end inside one (a DN can hold anything) is not. */
    for (char *p = rep->errors + used; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* ------------------------------------------------------------------ apply */

struct apply {
    struct store *st;
    const struct store_domain *d;
    struct store_ldap_report *rep;
    int64_t now;
    int64_t *seen; /* user ids found in the directory */
    size_t nseen, capseen;
    int failed;    /* a store error: the whole apply is rolled back */
};

static int seen_add(struct apply *a, int64_t id)
{
    if (a->nseen == a->capseen) {
        size_t cap = a->capseen ? a->capseen * 2 : 256;
        int64_t *v = realloc(a->seen, cap * sizeof *v);
        if (!v)
            return -1;
        a->seen = v;
        a->capseen = cap;
    }
    a->seen[a->nseen++] = id;
    return 0;
}

static int cmp_id(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

/* 1 if the alias's domain is hosted for the same customer as the user's. */
static int alias_domain_ours(struct apply *a, const char *alias)
{
    struct store_domain ad;
    int rc = store_domain_get(a->st, addr_domain(alias), &ad);
    if (rc == STORE_ERR)
        a->failed = 1;
    return rc == STORE_OK && ad.customer_id == a->d->customer_id;
}

struct alias_list {
    char (*v)[ADDR_MAX + 1];
    size_t n, cap;
    int oom;
};

static int alias_collect(const char *alias, void *arg)
{
    struct alias_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char(*v)[ADDR_MAX + 1] = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    snprintf(l->v[l->n++], ADDR_MAX + 1, "%s", alias);
    return 0;
}

/* The user's aliases become the entry's (those the sync may give). */
static void sync_aliases(struct apply *a, const struct store_user *u, const struct ldap_person *p)
{
    struct alias_list have = {0};
    if (store_ldap_alias_list(a->st, u->id, alias_collect, &have) != STORE_OK || have.oom) {
        a->failed = 1;
        free(have.v);
        return;
    }
    char (*want)[ADDR_MAX + 1] = p->aliases;
    size_t nwant = 0;
    int *keep = calloc(p->naliases + 1, sizeof *keep); /* which of p's aliases may be ours */
    if (!keep) {
        a->failed = 1;
        free(have.v);
        return;
    }
    for (size_t i = 0; i < p->naliases && !a->failed; i++)
        if ((keep[i] = alias_domain_ours(a, want[i])))
            nwant++;
    /* Take away what the entry no longer has. */
    for (size_t j = 0; j < have.n && !a->failed; j++) {
        int wanted = 0;
        for (size_t i = 0; i < p->naliases && !wanted; i++)
            wanted = keep[i] && !strcmp(want[i], have.v[j]);
        if (wanted)
            continue;
        if (store_alias_del(a->st, have.v[j]) == STORE_ERR)
            a->failed = 1;
        else
            a->rep->aliases_removed++;
    }
    /* Add what is new. */
    for (size_t i = 0; i < p->naliases && !a->failed; i++) {
        if (!keep[i])
            continue;
        struct store_user other;
        int64_t owner;
        int rc = store_user_get(a->st, want[i], &other);
        if (rc == STORE_OK) {
            report_error(a->rep, "%s: alias %s is the address of user %s; left out", p->email, want[i], other.email);
            continue;
        }
        if (rc == STORE_ERR || (rc = store_alias_get(a->st, want[i], &owner)) == STORE_ERR) {
            a->failed = 1;
            break;
        }
        if (rc == STORE_OK) {
            if (owner != u->id) {
                struct store_user o;
                report_error(a->rep, "%s: alias %s belongs to %s already; left out", p->email, want[i],
                             store_user_get_by_id(a->st, owner, &o) == STORE_OK ? o.email : "another user");
            }
            continue; /* the user's already (made by the sync, or by an administrator) */
        }
        if (store_ldap_alias_add(a->st, u->id, want[i]) != STORE_OK)
            a->failed = 1;
        else
            a->rep->aliases++;
    }
    (void)nwant;
    free(keep);
    free(have.v);
}

static int suspend_user(struct apply *a, struct store_user *u)
{
    u->suspended = 1;
    if (store_user_update(a->st, u) != STORE_OK || store_session_del_user(a->st, u->id) == STORE_ERR)
        return -1;
    a->rep->suspended++;
    return 0;
}

/* One directory entry of the domain. */
static void apply_person(struct apply *a, const struct ldap_person *p)
{
    struct store_user u;
    int rc = store_user_get(a->st, p->email, &u);
    if (rc == STORE_ERR) {
        a->failed = 1;
        return;
    }
    if (rc == STORE_NOTFOUND) {
        int64_t owner;
        if ((rc = store_alias_get(a->st, p->email, &owner)) == STORE_ERR) {
            a->failed = 1;
            return;
        }
        if (rc == STORE_OK) {
            report_error(a->rep, "%s: the address is another user's alias; not imported", p->email);
            return;
        }
        memset(&u, 0, sizeof u);
        u.domain_id = a->d->id;
        snprintf(u.email, sizeof u.email, "%s", p->email);
        snprintf(u.name, sizeof u.name, "%s", p->name);
        u.role = ROLE_USER;
        u.active = 1; /* the directory says who may have mail */
        u.suspended = p->disabled;
        u.created = a->now;
        if (store_user_add(a->st, &u, &u.id) != STORE_OK ||
            store_ldap_user_set(a->st, u.id, p->dn, p->disabled) != STORE_OK) {
            a->failed = 1;
            return;
        }
        a->rep->added++;
    } else {
        struct store_ldap_user l;
        if ((rc = store_ldap_user_get(a->st, u.id, &l)) == STORE_ERR) {
            a->failed = 1;
            return;
        }
        if (rc == STORE_NOTFOUND) {
            report_error(a->rep, "%s: a local user has this address; left alone", p->email);
            return;
        }
        sodium_memzero(l.pw_cache, sizeof l.pw_cache);
        int changed = strcmp(u.name, p->name) != 0 || strcmp(l.dn, p->dn) != 0;
        int sync_suspended = l.sync_suspended;
        snprintf(u.name, sizeof u.name, "%s", p->name);
        if (p->disabled && !u.suspended) {
            if (suspend_user(a, &u) != 0) {
                a->failed = 1;
                return;
            }
            sync_suspended = 1;
        } else if (!p->disabled && u.suspended && l.sync_suspended) {
            u.suspended = 0; /* back, enabled: the sync's own suspension ends */
            sync_suspended = 0;
            changed = 1;
        }
        if (changed || sync_suspended != l.sync_suspended) {
            if (store_user_update(a->st, &u) != STORE_OK ||
                store_ldap_user_set(a->st, u.id, p->dn, sync_suspended) != STORE_OK) {
                a->failed = 1;
                return;
            }
        }
        if (changed)
            a->rep->updated++;
    }
    sodium_memzero(u.pw_hash, sizeof u.pw_hash);
    if (seen_add(a, u.id) != 0) {
        a->failed = 1;
        return;
    }
    sync_aliases(a, &u, p);
}

struct gone {
    int64_t *ids;
    size_t n, cap;
    const struct apply *a;
    int oom;
};

static int gone_collect(const struct store_user *u, const struct store_ldap_user *l, void *arg)
{
    struct gone *g = arg;
    (void)l;
    if (u->suspended || bsearch(&u->id, g->a->seen, g->a->nseen, sizeof *g->a->seen, cmp_id))
        return 0;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        int64_t *v = realloc(g->ids, cap * sizeof *v);
        if (!v) {
            g->oom = 1;
            return 1;
        }
        g->ids = v;
        g->cap = cap;
    }
    g->ids[g->n++] = u->id;
    return 0;
}

static int cmp_person(const void *x, const void *y, void *arg)
{
    const struct ldap_person_list *people = arg;
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    int c = strcmp(people->v[i].email, people->v[j].email);
    return c ? c : (i > j) - (i < j);
}

int directory_ldap_apply(struct store *st, const struct store_domain *d, const struct ldap_person_list *people,
                         struct store_ldap_report *rep)
{
    struct apply a = {.st = st, .d = d, .rep = rep, .now = time_now()};
    /* The same address twice: the first entry is the user (an order by
     * address, then by position, finds the repeats in one pass). */
    size_t *order = people->n ? malloc(people->n * sizeof *order) : NULL;
    if (people->n && !order)
        return STORE_ERR;
    for (size_t i = 0; i < people->n; i++)
        order[i] = i;
    qsort_r(order, people->n, sizeof *order, cmp_person, (void *)people);
    unsigned char *dup = calloc(people->n + 1, 1);
    if (!dup) {
        free(order);
        return STORE_ERR;
    }
    for (size_t k = 1; k < people->n; k++)
        if (!strcmp(people->v[order[k]].email, people->v[order[k - 1]].email))
            dup[order[k]] = 1;
    free(order);
    for (size_t i = 0; i < people->n && !a.failed; i++) {
        if (dup[i])
            report_error(rep, "%s: more than one entry has this address (%.300s); the first one counts",
                         people->v[i].email, people->v[i].dn);
        else
            apply_person(&a, &people->v[i]);
    }
    free(dup);
    /* Directory users of the domain not found: suspended. */
    if (!a.failed) {
        qsort(a.seen, a.nseen, sizeof *a.seen, cmp_id);
        struct gone g = {.a = &a};
        if (store_ldap_user_list(st, d->id, gone_collect, &g) != STORE_OK || g.oom)
            a.failed = 1;
        for (size_t i = 0; i < g.n && !a.failed; i++) {
            struct store_user u;
            if (store_user_get_by_id(st, g.ids[i], &u) != STORE_OK || suspend_user(&a, &u) != 0 ||
                store_ldap_user_set_suspended(st, u.id, 1) != STORE_OK)
                a.failed = 1;
            sodium_memzero(u.pw_hash, sizeof u.pw_hash);
        }
        free(g.ids);
    }
    free(a.seen);
    return a.failed ? STORE_ERR : STORE_OK;
}

/* ------------------------------------------------------------------ a sync */

/* One sync at a time in this process: the periodic one and one asked for
 * over HTTP would otherwise search twice and apply twice. */
static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct sync_job {
    const struct store_domain *d;
    const struct ldap_person_list *people; /* NULL: the search failed, only the report */
    struct store_ldap_report *rep;
    int64_t started_ms;
};

static void report_finish(struct sync_job *j)
{
    j->rep->domain_id = j->d->id;
    j->rep->at = time_now();
    j->rep->duration_ms = mono_ms() - j->started_ms;
}

static int sync_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct sync_job *j = arg;
    if (j->people) {
        int rc = directory_ldap_apply(st, j->d, j->people, j->rep);
        if (rc != STORE_OK)
            return rc;
    }
    report_finish(j);
    return store_ldap_report_set(st, j->rep);
}

static int run_job(struct store *st, const struct directory_writer *w, store_job_fn job, void *arg)
{
    if (w)
        return w->run(w->ctx, job, arg);
    if (store_begin(st) != STORE_OK)
        return STORE_ERR;
    int rc = job(st, NULL, arg);
    if (rc == STORE_OK && store_commit(st) == STORE_OK)
        return STORE_OK;
    store_rollback(st);
    return rc == STORE_OK ? STORE_ERR : rc;
}

static void log_report(const char *domain, const struct store_ldap_report *r)
{
    if (r->ok)
        log_info("ldap sync %s: added=%u updated=%u suspended=%u aliases=%u errors=%u (%.1fs)", domain, r->added,
                 r->updated, r->suspended, r->aliases, r->nerrors, (double)r->duration_ms / 1000.0);
    else
        log_warn("ldap sync %s: failed, nothing changed: %.500s (%.1fs)", domain, r->errors,
                 (double)r->duration_ms / 1000.0);
}

int directory_ldap_sync(struct store *st, const struct directory_writer *w, const char *domain,
                        struct store_ldap_report *rep, char *err, size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    char name[DOMAIN_MAX + 1];
    struct store_domain d;
    struct store_ldap_settings s;
    if (admin_canonical(domain, name, sizeof name) != 0)
        return errbuf_fail(err, errlen, "ldap: \"%.200s\" is not a domain name", domain ? domain : "");
    int rc = store_domain_get(st, name, &d);
    if (rc == STORE_NOTFOUND)
        return errbuf_failc(DIR_NOTFOUND, err, errlen, "ldap: domain %s is not hosted", name);
    if (rc != STORE_OK)
        return errbuf_failc(DIR_STORE, err, errlen, "ldap %s: store error", name);
    rc = store_ldap_settings_get(st, d.id, &s);
    if (rc == STORE_NOTFOUND)
        return errbuf_failc(DIR_NOTFOUND, err, errlen, "ldap %s: the domain has no directory (ldap set)", name);
    if (rc != STORE_OK)
        return errbuf_failc(DIR_STORE, err, errlen, "ldap %s: store error", name);

    pthread_mutex_lock(&sync_lock);
    struct ldap_person_list people = {0};
    unsigned entries = 0;
    char why[STORE_LDAP_ERRORS_MAX / 2];
    struct sync_job j = {.d = &d, .people = &people, .rep = rep, .started_ms = mono_ms()};
    int status = directory_ldap_search(&s, d.name, &people, &entries, why, sizeof why);
    sodium_memzero(s.bind_password, sizeof s.bind_password);
    rep->entries = entries;
    if (status == DIRECTORY_LDAP_OK) {
        rep->ok = 1;
        rc = run_job(st, w, sync_job, &j);
        if (rc != STORE_OK) {
            /* The changes were rolled back: say so in a report of its own. */
            memset(rep, 0, sizeof *rep);
            rep->entries = entries;
            snprintf(why, sizeof why, "the changes could not be stored (store error %d); nothing changed", rc);
            status = DIRECTORY_LDAP_FAILED;
        }
    }
    if (status != DIRECTORY_LDAP_OK) {
        rep->ok = 0;
        rep->nerrors = 0;
        rep->errors[0] = 0;
        report_error(rep, "%s", why);
        j.people = NULL;
        if (run_job(st, w, sync_job, &j) != STORE_OK)
            log_err("ldap sync %s: cannot store the report", d.name);
    }
    ldap_person_list_free(&people);
    pthread_mutex_unlock(&sync_lock);
    log_report(d.name, rep);
    if (!rep->ok)
        return errbuf_failc(DIR_REFUSED, err, errlen, "ldap sync %s: %s", d.name, why);
    return 0;
}

int directory_ldap_test(const struct store_ldap_settings *s, const char *domain, unsigned *entries, unsigned *users,
                        char *err, size_t errlen)
{
    struct ldap_person_list people = {0};
    int status = directory_ldap_search(s, domain, &people, entries, err, errlen);
    *users = (unsigned)people.n;
    ldap_person_list_free(&people);
    return status;
}
