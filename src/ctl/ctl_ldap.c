/*
 * ctl_ldap.c — lifeboatctl's LDAP / Active Directory commands and readiness:
 *
 *   ldap set DOMAIN --url URL [--bind-dn DN --bind-password-stdin] --base DN [--filter F]
 *                   [--interval 3h] [--starttls | --no-starttls]
 *   ldap sync DOMAIN [--json]
 *   ldap status [DOMAIN] [--json]
 *   user readiness [--domain D | --customer C] [--json]
 *
 * The rules are directory's (ldap_sync.c, readiness.c): the same calls the
 * admin API makes. ldap set changes what it is given and keeps the rest (the
 * bind password too, when --bind-password-stdin is not given), so a filter
 * can be changed without typing the password again. The bind password is read
 * only from standard input and is never printed: status says whether one is
 * set. ldap sync runs here, in this process, while the daemon may be syncing
 * too (SQLite serialises the two transactions; each applies a whole search).
 */
#include "ctl/ctl.h"
#include "directory/directory.h"
#include "util/timeutil.h"

#include <string.h>

/* "3h", "90m", "45s": the interval as typed back. */
static void interval_text(int64_t s, char *out, size_t outlen)
{
    if (s % 3600 == 0)
        snprintf(out, outlen, "%lldh", (long long)(s / 3600));
    else if (s % 60 == 0)
        snprintf(out, outlen, "%lldm", (long long)(s / 60));
    else
        snprintf(out, outlen, "%llds", (long long)s);
}

/* The report's error lines as a JSON array. */
static json_t *errors_json(const char *errors)
{
    json_t *a = json_array();
    for (const char *p = errors; a && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[STORE_LDAP_ERRORS_MAX];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        json_array_append_new(a, ctl_jstr(line));
        p += n + (nl ? 1 : 0);
    }
    return a;
}

static json_t *report_json(const struct store_ldap_report *r)
{
    char at[64];
    time_iso8601((time_t)r->at, at, sizeof at);
    return json_pack("{s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "at", (json_int_t)r->at,
                     "at_iso", at, "ok", r->ok, "duration_ms", (json_int_t)r->duration_ms, "entries",
                     (json_int_t)r->entries, "added", (json_int_t)r->added, "updated", (json_int_t)r->updated,
                     "suspended", (json_int_t)r->suspended, "aliases", (json_int_t)r->aliases, "aliases_removed",
                     (json_int_t)r->aliases_removed, "error_count", (json_int_t)r->nerrors, "errors",
                     errors_json(r->errors));
}

static void print_report(const char *domain, const struct store_ldap_report *r, const char *indent)
{
    char t[32];
    printf("%sldap sync %s at %s: ", indent, domain, ctl_time(r->at, t));
    if (r->ok)
        printf("%u entries, added=%u updated=%u suspended=%u aliases=%u aliases_removed=%u errors=%u (%.1fs)\n",
               r->entries, r->added, r->updated, r->suspended, r->aliases, r->aliases_removed, r->nerrors,
               (double)r->duration_ms / 1000.0);
    else
        printf("failed, nothing changed (%.1fs)\n", (double)r->duration_ms / 1000.0);
    for (const char *p = r->errors; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[STORE_LDAP_ERRORS_MAX];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        printf("%s  error: ", indent);
        ctl_put_safe(stdout, line);
        putchar('\n');
        p += n + (nl ? 1 : 0);
    }
    if (r->nerrors > LDAP_ERRORS_KEPT)
        printf("%s  (%u more errors not kept)\n", indent, r->nerrors - LDAP_ERRORS_KEPT);
}

int ctl_ldap_set(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int pw_stdin = 0, starttls = 0, no_starttls = 0, n;
    struct directory_ldap_changes ch = {.starttls = -1};
    const struct ctl_opt opts[] = {
        {"url", &ch.url, NULL},
        {"bind-dn", &ch.bind_dn, NULL},
        {"bind-password-stdin", NULL, &pw_stdin},
        {"base", &ch.base, NULL},
        {"filter", &ch.filter, NULL},
        {"interval", &ch.interval, NULL},
        {"starttls", NULL, &starttls},
        {"no-starttls", NULL, &no_starttls},
        {0},
    };
    if (ctl_getopt(argc, argv, opts, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    if (starttls && no_starttls)
        return ctl_usage_error("--starttls and --no-starttls exclude each other");
    ch.starttls = starttls ? 1 : no_starttls ? 0 : -1;
    if (!ch.url && !ch.bind_dn && !pw_stdin && !ch.base && !ch.filter && !ch.interval && ch.starttls < 0)
        return ctl_usage_error("ldap set: nothing to change");
    char *pw = NULL;
    if (pw_stdin && !(pw = ctl_read_password()))
        return CTL_FAIL;
    ch.bind_password = pw;
    struct store *st = ctl_store(c);
    char err[512], canon[ADDR_MAX + 1];
    int rc = st ? directory_ldap_set(st, pos[0], &ch, time_now(), err, sizeof err) : -1;
    ctl_password_free(pw);
    if (!st)
        return CTL_FAIL;
    if (rc != 0)
        return ctl_fail("%s", err);
    printf("ldap settings of %s stored; the daemon syncs within seconds (or: lifeboatctl ldap sync %s)\n",
           ctl_canon(pos[0], canon), canon);
    return CTL_OK;
}

int ctl_ldap_sync(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, pos, 1, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    struct store_ldap_report r;
    char err[1024], canon[ADDR_MAX + 1];
    rc = directory_ldap_sync(st, NULL, pos[0], &r, err, sizeof err);
    if (rc != 0 && !r.at) /* nothing ran: no domain, no settings, a store error */
        return ctl_fail("%s", err);
    if (json) {
        json_t *o = report_json(&r);
        if (!o)
            return ctl_fail("out of memory");
        json_object_set_new(o, "domain", ctl_jstr(ctl_canon(pos[0], canon)));
        int prc = ctl_json_print(o);
        return rc != 0 ? CTL_FAIL : prc;
    }
    print_report(ctl_canon(pos[0], canon), &r, "");
    return rc != 0 ? CTL_FAIL : CTL_OK;
}

struct status_ctx {
    struct store *st;
    int json;
    json_t *rows;
    unsigned count;
    int failed;
};

static int status_one(const struct store_ldap_settings *s, void *arg)
{
    struct status_ctx *x = arg;
    struct store_domain d;
    struct store_ldap_report r;
    if (store_domain_get_by_id(x->st, s->domain_id, &d) != STORE_OK) {
        x->failed = 1;
        return 1;
    }
    int have = store_ldap_report_get(x->st, s->domain_id, &r);
    if (have == STORE_ERR) {
        x->failed = 1;
        return 1;
    }
    char iv[32];
    interval_text(s->interval, iv, sizeof iv);
    x->count++;
    if (x->json) {
        /* Never the password itself: only whether there is one. */
        json_t *o = json_pack("{s:o, s:o, s:o, s:b, s:o, s:o, s:I, s:s, s:b, s:I, s:o}", "domain", ctl_jstr(d.name),
                              "url", ctl_jstr(s->url), "bind_dn", ctl_jstr(s->bind_dn), "bind_password_set",
                              s->bind_password[0] != 0, "base", ctl_jstr(s->base), "filter", ctl_jstr(s->filter),
                              "interval", (json_int_t)s->interval, "interval_text", iv, "starttls", s->starttls,
                              "updated", (json_int_t)s->updated,
                              "last_sync", have == STORE_OK ? report_json(&r) : json_null());
        if (!o || json_array_append_new(x->rows, o) != 0) {
            x->failed = 1;
            return 1;
        }
        return 0;
    }
    printf("%s: %s%s, base ", d.name, s->url, s->starttls ? " (StartTLS)" : "");
    ctl_put_safe(stdout, s->base);
    printf(", filter ");
    ctl_put_safe(stdout, s->filter);
    printf(", bind ");
    ctl_put_safe(stdout, s->bind_dn[0] ? s->bind_dn : "(anonymous)");
    printf(", password %s, every %s\n", s->bind_password[0] ? "set" : "not set", iv);
    if (have == STORE_OK)
        print_report(d.name, &r, "  ");
    else
        printf("  never synced\n");
    return 0;
}

int ctl_ldap_status(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, pos, 0, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    struct status_ctx x = {.st = st, .json = json, .rows = json_array()};
    if (!x.rows)
        return ctl_fail("out of memory");
    if (n == 1) {
        struct store_domain d;
        if ((rc = ctl_domain_arg(st, pos[0], &d)) != CTL_OK) {
            json_decref(x.rows);
            return rc;
        }
        struct store_ldap_settings s;
        int src = store_ldap_settings_get(st, d.id, &s);
        if (src == STORE_NOTFOUND) {
            json_decref(x.rows);
            return ctl_fail("domain %s has no directory (ldap set)", d.name);
        }
        if (src == STORE_OK)
            status_one(&s, &x);
        else
            x.failed = 1;
        memset(s.bind_password, 0, sizeof s.bind_password);
    } else if (store_ldap_settings_list(st, status_one, &x) != STORE_OK) {
        x.failed = 1;
    }
    if (x.failed) {
        json_decref(x.rows);
        return ctl_fail("ldap status: store error");
    }
    if (json)
        return ctl_json_print(x.rows);
    if (x.count == 0)
        printf("no domain has a directory\n");
    json_decref(x.rows);
    return CTL_OK;
}

/* ---------------------------------------------------------------- readiness */

struct readiness_ctx {
    int json;
    json_t *users;
    unsigned total, ready;
    int failed;
};

static int readiness_one(const struct store_user_readiness *u, unsigned reasons, void *arg)
{
    struct readiness_ctx *x = arg;
    x->total++;
    if (!reasons)
        x->ready++;
    json_t *rs = json_array();
    if (!rs) {
        x->failed = 1;
        return 1;
    }
    if (!x->json)
        printf("%s: %s", u->email, reasons ? "not ready" : "ready");
    for (unsigned bit = 1; bit < (1u << READINESS_REASONS); bit <<= 1) {
        if (!(reasons & bit))
            continue;
        struct directory_readiness_text t;
        directory_readiness_describe(bit, u, &t);
        if (x->json)
            json_array_append_new(rs, json_pack("{s:s, s:s, s:s}", "code", t.code, "text", t.text, "fix", t.fix));
        else
            printf("\n  %s (%s): %s", t.text, t.code, t.fix);
    }
    if (!x->json) {
        putchar('\n');
        json_decref(rs);
        return 0;
    }
    json_t *o = json_pack("{s:o, s:b, s:b, s:o}", "email", ctl_jstr(u->email), "ready", reasons == 0, "ldap", u->ldap,
                          "reasons", rs);
    if (!o || json_array_append_new(x->users, o) != 0) {
        x->failed = 1;
        return 1;
    }
    return 0;
}

int ctl_user_readiness(struct ctl *c, int argc, char **argv)
{
    const char *pos[1], *domain = NULL, *customer = NULL;
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"domain", &domain, NULL}, {"customer", &customer, NULL}, {"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, pos, 0, 0, &n, &st);
    if (rc != CTL_OK)
        return rc;
    if (domain && customer)
        return ctl_usage_error("--domain and --customer exclude each other");
    int64_t domain_id = 0, customer_id = 0;
    if (domain) {
        struct store_domain d;
        if ((rc = ctl_domain_arg(st, domain, &d)) != CTL_OK)
            return rc;
        domain_id = d.id;
    } else if (customer) {
        struct store_customer cu;
        rc = store_customer_get(st, customer, &cu);
        if (rc == STORE_NOTFOUND)
            return ctl_fail("customer %.128s does not exist", customer);
        if (rc != STORE_OK)
            return ctl_fail("customer %.128s: store error", customer);
        customer_id = cu.id;
    }
    struct readiness_ctx x = {.json = json, .users = json_array()};
    if (!x.users)
        return ctl_fail("out of memory");
    rc = directory_readiness(st, domain_id, customer_id, readiness_one, &x);
    if (rc != STORE_OK || x.failed) {
        json_decref(x.users);
        return ctl_fail("user readiness: %s", x.failed ? "out of memory" : "store error");
    }
    if (json) {
        json_t *o = json_pack("{s:o, s:I, s:I}", "users", x.users, "total", (json_int_t)x.total, "ready",
                              (json_int_t)x.ready);
        return o ? ctl_json_print(o) : ctl_fail("out of memory");
    }
    json_decref(x.users);
    printf("%u of %u users ready for continuity\n", x.ready, x.total);
    return CTL_OK;
}
