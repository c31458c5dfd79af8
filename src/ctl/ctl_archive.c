/*
 * ctl_archive.c — lifeboatctl's archive commands (SPEC.md "Administration"):
 * search, release, purge and legal holds, and two documented extensions: the
 * list of holds and the audit trail.
 *
 * Like every command they work on the store directly, also while lifeboatd
 * runs: a release queues a message that the daemon's queue runner picks up at
 * its next poll (a few seconds), a purge drops entries and blob references and
 * the daemon's blob GC unlinks the files. lifeboatctl acts as an operator; each
 * release, hold and purge it makes is an audit row whose actor is
 * "lifeboatctl (uid N)", written in the same transaction as the change.
 *
 * Dates on the command line are the API's (timeutil.h's time_parse_date):
 * YYYY-MM-DD (midnight UTC) or ISO 8601 (YYYY-MM-DDTHH:MM[:SS] with Z or an
 * offset; none means UTC), or seconds since the epoch; dates shown are ISO
 * 8601 UTC, with the epoch seconds beside them in JSON.
 */
#include "archive/archive.h"
#include "ctl/ctl.h"
#include "directory/directory.h"
#include "util/timeutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The most words of search text taken from the command line. */
#define SEARCH_WORDS_MAX 32
/* The most aliases a user scope takes (store.h's search takes at most 256 addresses). */
#define USER_ADDRS_MAX 255

/* ---------------------------------------------------------------- helpers */

static void actor_name(char *out, size_t outlen)
{
    snprintf(out, outlen, "lifeboatctl (uid %u)", (unsigned)getuid());
}

static const char *iso(int64_t t, char buf[32])
{
    time_iso8601((time_t)t, buf, 32);
    return buf;
}

static json_t *jiso(int64_t t)
{
    char buf[32];
    return json_string(iso(t, buf));
}

static const char *direction_name(int d)
{
    return d == DIR_OUTBOUND ? "outbound" : "inbound";
}

/* A number in [min, max] from a command-line value; CTL_OK or CTL_USAGE. */
static int number_arg(const char *opt, const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return ctl_usage_error("%s: \"%.40s\" is not a number from %lld to %lld", opt, s, min, max);
    *out = v;
    return CTL_OK;
}

/* The user an address or alias belongs to, and the user's customer. */
static int user_arg(struct store *st, const char *arg, struct store_user *u, struct store_customer *cu)
{
    char canon[ADDR_MAX + 1];
    int rc = addr_canonical(arg, canon, sizeof canon) == 0 ? directory_login_user(st, canon, u) : STORE_NOTFOUND;
    if (rc == STORE_NOTFOUND)
        return ctl_fail("no user %.330s (address or alias)", arg);
    struct store_domain d;
    if (rc != STORE_OK || store_domain_get_by_id(st, u->domain_id, &d) != STORE_OK ||
        store_customer_get_by_id(st, d.customer_id, cu) != STORE_OK)
        return ctl_fail("user %.330s: store error", arg);
    return CTL_OK;
}

static int customer_arg(struct store *st, const char *name, struct store_customer *cu)
{
    int rc = store_customer_get(st, name, cu);
    if (rc == STORE_NOTFOUND)
        return ctl_fail("no customer %.128s", name);
    if (rc != STORE_OK)
        return ctl_fail("customer %.128s: store error", name);
    return CTL_OK;
}

/* A user's addresses: their own and their aliases. */
struct user_addrs {
    char (*v)[ADDR_MAX + 1];
    const char *ptr[USER_ADDRS_MAX + 1];
    size_t n;
};

static int add_alias(const char *alias, const char *user_email, void *arg)
{
    (void)user_email;
    struct user_addrs *a = arg;
    if (a->n <= USER_ADDRS_MAX) {
        snprintf(a->v[a->n], sizeof a->v[0], "%s", alias);
        a->ptr[a->n] = a->v[a->n];
        a->n++;
    }
    return 0;
}

/* A listing whose rows name their customer (entries, holds, the audit
 * trail): the rows, and the customers' names by id to look up. */
struct customer_rows {
    struct ctl_list l;
    struct ctl_list customers; /* map: id -> name */
};

static int map_customer(const struct store_customer *cu, void *arg)
{
    return ctl_list_map(arg, cu->id, json_string(cu->name));
}

/* Starts r with no rows and every customer's name: the store's result. */
static int customer_rows_start(struct store *st, struct customer_rows *r)
{
    *r = (struct customer_rows){{json_array(), NULL, 0}, {json_array(), json_object(), 0}};
    return store_customer_list(st, map_customer, &r->customers);
}

/* Ends r as ctl_list_rows does (store_rc: the listing's result): the rows, or
 * NULL after saying why not. */
static json_t *customer_rows_end(struct customer_rows *r, int store_rc, const char *what)
{
    ctl_list_free(&r->customers);
    return ctl_list_rows(&r->l, store_rc, what);
}

/* ---------------------------------------------------------------- search */

static int entry_to_json(const struct store_archive_entry *e, void *arg)
{
    struct customer_rows *r = arg;
    return ctl_list_add(
        &r->l, json_pack("{s:I, s:o, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:O, s:s, s:o, s:I, s:I, s:b, s:b}", "id",
                         (json_int_t)e->id, "date", jiso(e->date), "date_epoch", (json_int_t)e->date, "direction",
                         direction_name(e->direction), "from", ctl_jstr(e->sender), "to", json_array(), "subject",
                         ctl_jstr(e->subject), "from_header", ctl_jstr(e->from_hdr), "to_header", ctl_jstr(e->to_hdr),
                         "customer", ctl_list_lookup(&r->customers, e->customer_id), "msg_id", e->msg_id, "received",
                         jiso(e->received), "received_epoch", (json_int_t)e->received, "size", (json_int_t)e->size,
                         "has_attachment", e->has_attachment, "indexed", e->indexed));
}

static int add_to(const char *addr, void *arg)
{
    return json_array_append_new(arg, ctl_jstr(addr)) != 0;
}

static void print_entries(json_t *rows, uint64_t total)
{
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) {
        printf("%-6lld %s  %-8s <", (long long)json_integer_value(json_object_get(o, "id")),
               json_string_value(json_object_get(o, "date")), json_string_value(json_object_get(o, "direction")));
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "from")));
        printf("> ->");
        size_t k;
        json_t *to;
        json_array_foreach(json_object_get(o, "to"), k, to) {
            printf(" ");
            ctl_put_safe(stdout, json_string_value(to));
        }
        printf("\n       ");
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "subject")));
        printf("\n");
    }
    if (total > ARCHIVE_COUNT_MAX)
        printf("%zu of more than %d entries\n", json_array_size(rows), ARCHIVE_COUNT_MAX);
    else
        printf("%zu of %llu entr%s\n", json_array_size(rows), (unsigned long long)total, total == 1 ? "y" : "ies");
}

int ctl_archive_search(struct ctl *c, int argc, char **argv)
{
    const char *domain = NULL, *user = NULL, *from = NULL, *to = NULL, *after = NULL, *before = NULL, *limit = NULL,
               *offset = NULL, *pos[SEARCH_WORDS_MAX];
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"domain", &domain, NULL}, {"user", &user, NULL},     {"from", &from, NULL},
                                   {"to", &to, NULL},         {"after", &after, NULL},   {"before", &before, NULL},
                                   {"limit", &limit, NULL},   {"offset", &offset, NULL}, {"json", NULL, &json},
                                   {0}};
    if (ctl_getopt(argc, argv, opts, pos, 0, SEARCH_WORDS_MAX, &n) != CTL_OK)
        return CTL_USAGE;
    if (domain && user)
        return ctl_usage_error("--domain and --user are two different scopes: give one");
    struct store_archive_query q = {.direction = -1, .has_attachment = -1, .from = from, .to = to};
    long long v;
    if (after && time_parse_date(after, &q.after) != 0)
        return ctl_usage_error("--after: \"%.40s\" is no date (YYYY-MM-DD or ISO 8601)", after);
    if (before && time_parse_date(before, &q.before) != 0)
        return ctl_usage_error("--before: \"%.40s\" is no date (YYYY-MM-DD or ISO 8601)", before);
    if (limit) {
        if (number_arg("--limit", limit, 0, 1000000000, &v) != CTL_OK)
            return CTL_USAGE;
        q.limit = (unsigned)v;
    }
    if (offset) {
        if (number_arg("--offset", offset, 0, 1000000000000LL, &v) != CTL_OK)
            return CTL_USAGE;
        q.offset = (uint64_t)v;
    }
    char text[4096] = "";
    for (int i = 0, used = 0; i < n && used < (int)sizeof text; i++)
        used += snprintf(text + used, sizeof text - (size_t)used, "%s%s", i ? " " : "", pos[i]);
    q.text = text;

    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    struct store_domain d;
    char dom[DOMAIN_MAX + 1];
    struct user_addrs ua = {calloc(USER_ADDRS_MAX + 1, sizeof *ua.v), {0}, 0};
    if (!ua.v)
        return ctl_fail("out of memory");
    int rc = CTL_OK;
    if (domain && (rc = ctl_domain_arg(st, domain, &d)) == CTL_OK) {
        snprintf(dom, sizeof dom, "%s", d.name);
        q.customer_id = d.customer_id;
        q.domain = dom;
    }
    struct store_user u;
    struct store_customer cu;
    if (rc == CTL_OK && user && (rc = user_arg(st, user, &u, &cu)) == CTL_OK) {
        add_alias(u.email, NULL, &ua);
        if (store_alias_list(st, u.id, add_alias, &ua) != STORE_OK)
            rc = ctl_fail("user %s: store error", u.email);
        q.customer_id = cu.id;
        q.user_addrs = ua.ptr;
        q.nuser_addrs = ua.n;
    }
    if (rc != CTL_OK) {
        free(ua.v);
        return rc;
    }

    struct customer_rows r;
    uint64_t total = 0;
    int src = customer_rows_start(st, &r);
    if (src == STORE_OK)
        src = store_archive_search(st, &q, entry_to_json, &r, &total);
    free(ua.v);
    json_t *rows = customer_rows_end(&r, src, "the archive");
    if (!rows)
        return CTL_FAIL;
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) {
        if (store_archive_addrs(st, json_integer_value(json_object_get(o, "id")), ARCHIVE_ADDR_TO, add_to,
                                json_object_get(o, "to")) != STORE_OK) {
            json_decref(rows);
            return ctl_fail("cannot list the archive: store error");
        }
    }
    if (json)
        return ctl_json_print(rows);
    print_entries(rows, total);
    json_decref(rows);
    return CTL_OK;
}

/* ---------------------------------------------------------------- release */

int ctl_archive_release(struct ctl *c, int argc, char **argv)
{
    const char *to = NULL, *pos[1];
    int n;
    const struct ctl_opt opts[] = {{"to", &to, NULL}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, pos, 1, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    long long id;
    if (number_arg("ID", pos[0], 1, INT64_MAX, &id) != CTL_OK)
        return CTL_USAGE;
    struct store_archive_entry *e = malloc(sizeof *e);
    json_t *list = to ? ctl_split_list(to) : NULL;
    const char **addrs = NULL;
    char(*canon)[ADDR_MAX + 1] = NULL;
    size_t naddrs = list ? json_array_size(list) : 0;
    if (!e || (to && (!list || !(addrs = calloc(naddrs + 1, sizeof *addrs)) ||
                      !(canon = calloc(naddrs + 1, sizeof *canon))))) {
        rc = ctl_fail("out of memory");
        goto out;
    }
    int src = store_archive_get(st, id, e);
    if (src != STORE_OK) {
        rc = src == STORE_NOTFOUND ? ctl_fail("archive entry %lld: no such entry (purged, or never there)", id)
                                   : ctl_fail("archive entry %lld: store error", id);
        goto out;
    }
    /* lifeboatctl acts as an operator: any address of the entry's customer */
    struct store_user op = {.role = ROLE_OPERATOR};
    if (to && naddrs == 0) {
        rc = ctl_usage_error("--to needs at least one address");
        goto out;
    }
    for (size_t i = 0; i < naddrs; i++) {
        const char *a = json_string_value(json_array_get(list, i));
        if (!addr_is_valid(a) || addr_canonical(a, canon[i], sizeof canon[i]) != 0) {
            rc = ctl_usage_error("--to: \"%.330s\" is no address", a);
            goto out;
        }
        if (!archive_release_allowed(st, &op, e, canon[i])) {
            rc = ctl_fail("%s is not an address of the entry's customer: a release stays with its customer",
                          canon[i]);
            goto out;
        }
        addrs[i] = canon[i];
    }
    char actor[64];
    actor_name(actor, sizeof actor);
    struct archive_release r = {.entry_id = id, .to = to ? addrs : NULL, .nto = naddrs, .actor = actor};
    src = archive_release_run(st, &r, time_now());
    if (src == STORE_NOTFOUND) {
        rc = ctl_fail("archive entry %lld: no recipient of its customer to release it to (give --to)", id);
    } else if (src != STORE_OK) {
        rc = ctl_fail("archive entry %lld: release failed: store error", id);
    } else {
        printf("archive entry %lld released as %s: %u recipient(s) queued for delivery, %u copied into "
               "continuity mailboxes\n",
               id, r.queue_id, r.queued, r.to_mailbox);
        rc = CTL_OK;
    }
out:
    free(e);
    free(addrs);
    free(canon);
    json_decref(list);
    return rc;
}

/* ---------------------------------------------------------------- purge */

int ctl_archive_purge(struct ctl *c, int argc, char **argv)
{
    int n;
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, NULL, NULL, 0, 0, &n, &st);
    if (rc != CTL_OK)
        return rc;
    int64_t now = time_now();
    uint64_t total = 0, purged = 0;
    /* one transaction per batch, so the daemon's writer never waits long */
    do {
        if (archive_purge_batch(st, &c->cfg, now, ARCHIVE_PURGE_BATCH, &purged) != STORE_OK)
            return ctl_fail("purge stopped after %llu entries: store error", (unsigned long long)total);
        total += purged;
    } while (purged == ARCHIVE_PURGE_BATCH);
    char date[32];
    iso(now - (int64_t)c->cfg.archive_retention, date);
    struct store_audit a = {.at = now};
    actor_name(a.actor, sizeof a.actor);
    snprintf(a.action, sizeof a.action, "archive.purge");
    snprintf(a.target, sizeof a.target, "archive");
    snprintf(a.detail, sizeof a.detail, "%llu entries older than %s", (unsigned long long)total, date);
    if (store_audit_add(st, &a) != STORE_OK)
        return ctl_fail("purged %llu entries, but the audit row could not be written", (unsigned long long)total);
    printf("purged %llu entries older than %s\n", (unsigned long long)total, date);
    return CTL_OK;
}

/* ---------------------------------------------------------------- holds */

int ctl_archive_hold(struct ctl *c, int argc, char **argv)
{
    const char *user = NULL, *customer = NULL;
    int release = 0, n;
    const struct ctl_opt opts[] = {{"user", &user, NULL}, {"customer", &customer, NULL}, {"release", NULL, &release},
                                   {0}};
    if (ctl_getopt(argc, argv, opts, NULL, 0, 0, &n) != CTL_OK)
        return CTL_USAGE;
    if (!user == !customer)
        return ctl_usage_error("give either --user EMAIL or --customer NAME");
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    struct store_user u = {0};
    struct store_customer cu;
    int rc = user ? user_arg(st, user, &u, &cu) : customer_arg(st, customer, &cu);
    if (rc != CTL_OK)
        return rc;
    char what[ADDR_MAX + 160];
    if (user)
        snprintf(what, sizeof what, "user %s (customer %s)", u.email, cu.name);
    else
        snprintf(what, sizeof what, "customer %s", cu.name);

    struct store_audit a = {.at = time_now(), .customer_id = cu.id};
    actor_name(a.actor, sizeof a.actor);
    snprintf(a.action, sizeof a.action, release ? "archive.hold.release" : "archive.hold");
    snprintf(a.target, sizeof a.target, user ? "user:%s" : "customer:%s", user ? u.email : cu.name);
    /* lifeboatctl runs on the server: its holds are the operator's. */
    struct store_archive_hold h = {.customer_id = cu.id, .user_id = u.id, .created = a.at, .by_operator = 1};
    memcpy(h.created_by, a.actor, sizeof h.created_by);
    /* the hold and its audit row: one transaction */
    if (store_begin(st) != STORE_OK)
        return ctl_fail("%s: store error", what);
    int src = release ? store_archive_hold_del(st, cu.id, u.id, 1) : store_archive_hold_add(st, &h, NULL);
    if (src == STORE_OK)
        src = store_audit_add(st, &a) == STORE_OK ? STORE_OK : STORE_ERR;
    if (src == STORE_OK && store_commit(st) != STORE_OK)
        src = STORE_ERR;
    if (src != STORE_OK)
        store_rollback(st);
    if (src == STORE_EXISTS)
        return ctl_fail("%s is under a legal hold already", what);
    if (src == STORE_NOTFOUND)
        return ctl_fail("%s is under no legal hold of its own", what);
    if (src != STORE_OK)
        return ctl_fail("%s: store error", what);
    printf(release ? "legal hold on %s released: retention applies again\n"
                   : "legal hold placed on %s: their archive is kept until the hold is released\n",
           what);
    return CTL_OK;
}

static int hold_to_json(const struct store_archive_hold *h, void *arg)
{
    struct customer_rows *r = arg;
    return ctl_list_add(&r->l, json_pack("{s:I, s:O, s:o, s:o, s:I, s:o}", "id", (json_int_t)h->id, "customer",
                                         ctl_list_lookup(&r->customers, h->customer_id), "user",
                                         h->user_id ? ctl_jstr(h->email) : json_null(), "created", jiso(h->created),
                                         "created_epoch", (json_int_t)h->created, "created_by",
                                         ctl_jstr(h->created_by)));
}

int ctl_archive_holds(struct ctl *c, int argc, char **argv)
{
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, NULL, 0, 0, &n, &st);
    if (rc != CTL_OK)
        return rc;
    struct customer_rows r;
    int src = customer_rows_start(st, &r);
    if (src == STORE_OK)
        src = store_archive_hold_list(st, 0, hold_to_json, &r);
    json_t *rows = customer_rows_end(&r, src, "the legal holds");
    if (!rows)
        return CTL_FAIL;
    if (json)
        return ctl_json_print(rows);
    if (json_array_size(rows) == 0)
        printf("no legal holds\n");
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) {
        json_t *user = json_object_get(o, "user");
        printf("customer ");
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "customer")));
        if (json_is_string(user)) {
            printf("  user ");
            ctl_put_safe(stdout, json_string_value(user));
        } else {
            printf("  (all users)");
        }
        printf("  since %s by ", json_string_value(json_object_get(o, "created")));
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "created_by")));
        printf("\n");
    }
    json_decref(rows);
    return CTL_OK;
}

/* ---------------------------------------------------------------- audit */

static int audit_to_json(const struct store_audit *a, void *arg)
{
    struct customer_rows *r = arg;
    return ctl_list_add(&r->l, json_pack("{s:I, s:o, s:I, s:O, s:o, s:o, s:o, s:o}", "id", (json_int_t)a->id, "at",
                                         jiso(a->at), "at_epoch", (json_int_t)a->at, "customer",
                                         ctl_list_lookup(&r->customers, a->customer_id), "actor", ctl_jstr(a->actor),
                                         "action", ctl_jstr(a->action), "target", ctl_jstr(a->target), "detail",
                                         ctl_jstr(a->detail)));
}

int ctl_audit_list(struct ctl *c, int argc, char **argv)
{
    const char *customer = NULL, *limit = NULL;
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"customer", &customer, NULL}, {"limit", &limit, NULL}, {"json", NULL, &json}, {0}};
    if (ctl_getopt(argc, argv, opts, NULL, 0, 0, &n) != CTL_OK)
        return CTL_USAGE;
    long long max = 0;
    if (limit && number_arg("--limit", limit, 0, 1000000000, &max) != CTL_OK)
        return CTL_USAGE;
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    struct store_customer cu = {0};
    if (customer && customer_arg(st, customer, &cu) != CTL_OK)
        return CTL_FAIL;
    struct customer_rows r;
    int src = customer_rows_start(st, &r);
    if (src == STORE_OK)
        src = store_audit_list(st, cu.id, (size_t)max, audit_to_json, &r);
    json_t *rows = customer_rows_end(&r, src, "the audit trail");
    if (!rows)
        return CTL_FAIL;
    if (json)
        return ctl_json_print(rows);
    if (json_array_size(rows) == 0)
        printf("the audit trail is empty\n");
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) {
        printf("%s  ", json_string_value(json_object_get(o, "at")));
        static const char *const fields[] = {"actor", "action", "target", "detail"};
        for (size_t k = 0; k < 4; k++) {
            ctl_put_safe(stdout, json_string_value(json_object_get(o, fields[k])));
            printf(k < 3 ? "  " : "\n");
        }
    }
    json_decref(rows);
    return CTL_OK;
}
