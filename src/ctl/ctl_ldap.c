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
#include "admin/admin.h"
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
        json_t *o = admin_ldap_report_json(&r);
        if (!o)
            return ctl_fail("out of memory");
        json_object_set_new(o, "domain", admin_jstr(ctl_canon(pos[0], canon)));
        int prc = ctl_json_print(o);
        return rc != 0 ? CTL_FAIL : prc;
    }
    print_report(ctl_canon(pos[0], canon), &r, "");
    return rc != 0 ? CTL_FAIL : CTL_OK;
}

struct status_ctx {
    struct store *st;
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
    /* Never the password itself: only whether there is one. */
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
    struct store_domain d;
    struct store_ldap_settings s;
    if (n == 1) {
        if ((rc = ctl_domain_arg(st, pos[0], &d)) != CTL_OK)
            return rc;
        int src = store_ldap_settings_get(st, d.id, &s);
        if (src == STORE_NOTFOUND)
            return ctl_fail("domain %s has no directory (ldap set)", d.name);
        if (src != STORE_OK)
            return ctl_fail("ldap status: store error");
    }
    if (json) {
        json_t *rows = json_array();
        if (rows && n == 1)
            json_array_append_new(rows, admin_ldap_json(st, &d, &s));
        else if (rows) {
            json_decref(rows);
            rows = admin_ldap_list(st, 0);
        }
        memset(s.bind_password, 0, sizeof s.bind_password);
        if (!rows)
            return ctl_fail("ldap status: store error");
        return ctl_json_print(rows);
    }
    struct status_ctx x = {.st = st};
    if (n == 1)
        status_one(&s, &x);
    else if (store_ldap_settings_list(st, status_one, &x) != STORE_OK)
        x.failed = 1;
    memset(s.bind_password, 0, sizeof s.bind_password);
    if (x.failed)
        return ctl_fail("ldap status: store error");
    if (x.count == 0)
        printf("no domain has a directory\n");
    return CTL_OK;
}

/* ---------------------------------------------------------------- readiness */

struct readiness_ctx {
    unsigned total, ready;
};

static int readiness_one(const struct store_user_readiness *u, unsigned reasons, void *arg)
{
    struct readiness_ctx *x = arg;
    x->total++;
    x->ready += reasons == 0;
    printf("%s: %s", u->email, reasons ? "not ready" : "ready");
    for (unsigned bit = 1; bit < (1u << READINESS_REASONS); bit <<= 1) {
        if (!(reasons & bit))
            continue;
        struct directory_readiness_text t;
        directory_readiness_describe(bit, u, &t);
        printf("\n  %s (%s): %s", t.text, t.code, t.fix);
    }
    putchar('\n');
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
    if (json) {
        json_t *o = admin_readiness(st, domain_id, customer_id);
        return o ? ctl_json_print(o) : ctl_fail("user readiness: store error");
    }
    struct readiness_ctx x = {0};
    if (directory_readiness(st, domain_id, customer_id, readiness_one, &x) != STORE_OK)
        return ctl_fail("user readiness: store error");
    printf("%u of %u users ready for continuity\n", x.ready, x.total);
    return CTL_OK;
}
