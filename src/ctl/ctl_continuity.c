/*
 * ctl_continuity.c — lifeboatctl's continuity commands: enable and disable per
 * domain, status (SPEC.md's --json shape), and two extensions for operators
 * and tests: the events timeline and a user's continuity mailbox.
 *
 * The daemon's continuity engine owns the state machine; these commands only
 * change the settings (through the directory's rules) and read what the engine
 * recorded in the store, so they work with or without a running lifeboatd.
 * Times are shown as ISO 8601 UTC, with the epoch seconds beside them in JSON.
 */
#include "ctl/ctl.h"
#include "directory/directory.h"
#include "util/timeutil.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "2026-11-27T21:53:37Z", or "-" for 0. */
static const char *iso(int64_t t, char buf[32])
{
    if (!t)
        return "-";
    time_iso8601((time_t)t, buf, 32);
    return buf;
}

static json_t *jiso(int64_t t)
{
    char buf[32];
    return t ? json_string(iso(t, buf)) : json_null();
}

/* ---------------------------------------------------------------- enable, disable */

int ctl_continuity_enable(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int outgoing = 0, was = 0, n;
    const struct ctl_opt opts[] = {{"outgoing-to-own-server", NULL, &outgoing}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, pos, 1, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    char err[512], t[32];
    if (directory_continuity_enable(st, pos[0], outgoing, time_now(), &was, err, sizeof err) != 0)
        return ctl_fail("%s", err);
    struct store_domain d;
    if (ctl_domain_arg(st, pos[0], &d) != CTL_OK)
        return CTL_FAIL;
    if (was)
        printf("continuity for %s was enabled already (since %s); outgoing-to-own-server %s\n", d.name,
               iso(d.continuity_since, t), d.outgoing_to_own ? "on" : "off");
    else
        printf("continuity enabled for %s since %s, outgoing-to-own-server %s; mail received from now on "
               "goes to the users' mailboxes during an outage\n",
               d.name, iso(d.continuity_since, t), d.outgoing_to_own ? "on" : "off");
    return CTL_OK;
}

int ctl_continuity_disable(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int was = 0, n;
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, NULL, pos, 1, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    char err[512];
    if (directory_continuity_disable(st, pos[0], &was, err, sizeof err) != 0)
        return ctl_fail("%s", err);
    struct store_domain d;
    struct store_continuity_counts counts;
    if (ctl_domain_arg(st, pos[0], &d) != CTL_OK)
        return CTL_FAIL;
    if (!was) {
        printf("continuity was not enabled for %s\n", d.name);
        return CTL_OK;
    }
    printf("continuity disabled for %s", d.name);
    if (store_continuity_counts(st, d.id, &counts) == STORE_OK && counts.waiting)
        printf("; %llu message(s) still wait for re-delivery and go back when the server takes mail",
               (unsigned long long)counts.waiting);
    printf("\n");
    return CTL_OK;
}

/* ---------------------------------------------------------------- status */

/* The domains a listing covers, copied out of the store's callback so that
 * the counts can be asked for afterwards. */
struct domains {
    struct store_domain *d;
    size_t n, cap;
    int failed;
};

static int domain_collect(const struct store_domain *d, void *arg)
{
    struct domains *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct store_domain *p = realloc(l->d, cap * sizeof *p);
        if (!p) {
            l->failed = 1;
            return 1;
        }
        l->d = p;
        l->cap = cap;
    }
    l->d[l->n++] = *d;
    return 0;
}

/* One domain, or all of them when name is NULL. CTL_OK or CTL_FAIL (said). */
static int domains_get(struct store *st, const char *name, struct domains *out)
{
    memset(out, 0, sizeof *out);
    if (name) {
        struct store_domain d;
        if (ctl_domain_arg(st, name, &d) != CTL_OK)
            return CTL_FAIL;
        domain_collect(&d, out);
    } else if (store_domain_list(st, domain_collect, out) != STORE_OK) {
        free(out->d);
        return ctl_fail("cannot list domains: %s", out->failed ? "out of memory" : "store error");
    }
    if (out->failed) {
        free(out->d);
        return ctl_fail("out of memory");
    }
    return CTL_OK;
}

static json_t *status_json(const struct store_domain *d, const struct store_continuity_counts *k)
{
    return json_pack("{s:o, s:s, s:o, s:I, s:o, s:I, s:I, s:I, s:I, s:b, s:o, s:b}", "domain", ctl_jstr(d->name),
                     "state", directory_state_name(d->state), "since", jiso(d->state_since), "since_epoch",
                     (json_int_t)d->state_since, "cause", ctl_jstr(d->state_cause), "held", (json_int_t)k->held,
                     "waiting", (json_int_t)k->waiting, "redelivered", (json_int_t)k->redelivered, "deleted",
                     (json_int_t)k->deleted, "continuity", d->continuity, "continuity_since",
                     jiso(d->continuity_since), "outgoing_to_own_server", d->outgoing_to_own);
}

static void status_print(json_t *rows)
{
    size_t i, width = strlen("DOMAIN");
    json_t *o;
    json_array_foreach(rows, i, o) {
        size_t len = strlen(json_string_value(json_object_get(o, "domain")));
        if (len > width)
            width = len;
    }
    if (json_array_size(rows) == 0) {
        printf("no hosted domains\n");
        return;
    }
    printf("%-*s  %-10s  %-10s  %-20s  %6s  %7s  %11s  %7s  %s\n", (int)width, "DOMAIN", "CONTINUITY", "STATE",
           "SINCE", "HELD", "WAITING", "REDELIVERED", "DELETED", "CAUSE");
    json_array_foreach(rows, i, o) {
        const char *name = json_string_value(json_object_get(o, "domain"));
        const char *cause = json_string_value(json_object_get(o, "cause"));
        json_t *since = json_object_get(o, "since");
        ctl_put_safe(stdout, name);
        printf("%*s  %-10s  %-10s  %-20s  %6lld  %7lld  %11lld  %7lld  ", (int)(width - strlen(name)), "",
               json_is_true(json_object_get(o, "continuity")) ? "on" : "off",
               json_string_value(json_object_get(o, "state")), json_is_string(since) ? json_string_value(since) : "-",
               (long long)json_integer_value(json_object_get(o, "held")),
               (long long)json_integer_value(json_object_get(o, "waiting")),
               (long long)json_integer_value(json_object_get(o, "redelivered")),
               (long long)json_integer_value(json_object_get(o, "deleted")));
        ctl_put_safe(stdout, cause && *cause ? cause : "-");
        printf("\n");
    }
}

int ctl_continuity_status(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, pos, 0, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    struct domains l;
    if (domains_get(st, n ? pos[0] : NULL, &l) != CTL_OK)
        return CTL_FAIL;
    json_t *rows = json_array();
    rc = rows ? CTL_OK : ctl_fail("out of memory");
    for (size_t i = 0; rc == CTL_OK && i < l.n; i++) {
        struct store_continuity_counts k;
        if (store_continuity_counts(st, l.d[i].id, &k) != STORE_OK)
            rc = ctl_fail("domain %s: cannot read the continuity counts (store error)", l.d[i].name);
        else if (json_array_append_new(rows, status_json(&l.d[i], &k)) != 0)
            rc = ctl_fail("out of memory");
    }
    free(l.d);
    if (rc != CTL_OK) {
        json_decref(rows);
        return rc;
    }
    if (json)
        return ctl_json_print(rows);
    status_print(rows);
    json_decref(rows);
    return CTL_OK;
}

/* ---------------------------------------------------------------- events */

static int event_to_json(const struct store_event *e, void *arg)
{
    struct ctl_list *l = arg;
    return ctl_list_add(l, json_pack("{s:I, s:O, s:o, s:I, s:s, s:s, s:o}", "id", (json_int_t)e->id, "domain",
                                     ctl_list_lookup(l, e->domain_id), "at", jiso(e->at), "at_epoch",
                                     (json_int_t)e->at, "from", directory_state_name(e->from_state), "to",
                                     directory_state_name(e->to_state), "cause", ctl_jstr(e->cause)));
}

/* A positive whole number, or -1. */
static long positive(const char *s)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    long v = strtol(s, &end, 10);
    return *end || v <= 0 ? -1 : v;
}

int ctl_continuity_events(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL}, *limit_arg = NULL;
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {"limit", &limit_arg, NULL}, {0}};
    if (ctl_getopt(argc, argv, opts, pos, 0, 1, &n) != CTL_OK)
        return CTL_USAGE;
    long limit = 0;
    if (limit_arg && (limit = positive(limit_arg)) < 0)
        return ctl_usage_error("--limit takes a positive number, not \"%.40s\"", limit_arg);
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    struct store_domain d = {0};
    if (n && ctl_domain_arg(st, pos[0], &d) != CTL_OK)
        return CTL_FAIL;
    struct ctl_list l = {json_array(), json_object(), 0};
    int rc = store_domain_list(st, ctl_map_domain_name, &l);
    if (rc == STORE_OK)
        rc = store_event_list(st, d.id, (size_t)limit, event_to_json, &l);
    json_t *rows = ctl_list_rows(&l, rc, "continuity events");
    if (!rows)
        return CTL_FAIL;
    if (json)
        return ctl_json_print(rows);
    if (json_array_size(rows) == 0)
        printf("no continuity events\n");
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) {
        json_t *dom = json_object_get(o, "domain");
        printf("%s  ", json_string_value(json_object_get(o, "at")));
        ctl_put_safe(stdout, json_is_string(dom) ? json_string_value(dom) : "?");
        printf("  %s -> %s  ", json_string_value(json_object_get(o, "from")),
               json_string_value(json_object_get(o, "to")));
        const char *cause = json_string_value(json_object_get(o, "cause"));
        ctl_put_safe(stdout, *cause ? cause : "-");
        printf("\n");
    }
    json_decref(rows);
    return CTL_OK;
}

/* ---------------------------------------------------------------- mailbox */

static const char *const folder_names[] = {[FOLDER_INBOX] = "INBOX", [FOLDER_SENT] = "Sent",
                                           [FOLDER_TRASH] = "Trash"};

static const char *folder_name(int folder)
{
    return folder >= FOLDER_INBOX && folder <= FOLDER_TRASH ? folder_names[folder] : "unknown";
}

static const char *redeliver_name(int r)
{
    static const char *const names[] = {[REDELIVER_NONE] = "none", [REDELIVER_WAITING] = "waiting",
                                        [REDELIVER_DONE] = "redelivered", [REDELIVER_DELETED] = "deleted"};
    return r >= REDELIVER_NONE && r <= REDELIVER_DELETED ? names[r] : "unknown";
}

static int entry_to_json(const struct store_mailbox_entry *e, void *arg)
{
    return ctl_list_add(arg, json_pack("{s:I, s:s, s:o, s:o, s:o, s:I, s:s, s:b, s:b, s:s, s:s, s:I, s:I}", "id",
                                       (json_int_t)e->id, "msg_id", e->msg_id, "sender", ctl_jstr(e->sender),
                                       "rcpts", ctl_split_list(e->rcpts), "received", jiso(e->received),
                                       "received_epoch", (json_int_t)e->received, "folder", folder_name(e->folder),
                                       "seen", e->seen, "flagged", e->flagged, "redeliver",
                                       redeliver_name(e->redeliver), "direction",
                                       e->direction == DIR_OUTBOUND ? "outbound" : "inbound", "size",
                                       (json_int_t)e->size, "outage_id", (json_int_t)e->outage_id));
}

int ctl_mailbox_list(struct ctl *c, int argc, char **argv)
{
    const char *pos[1], *folder_arg = NULL;
    int json = c->json, n, folder = -1;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {"folder", &folder_arg, NULL}, {0}};
    if (ctl_getopt(argc, argv, opts, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    if (folder_arg) {
        for (int k = FOLDER_INBOX; k <= FOLDER_TRASH; k++)
            if (!strcasecmp(folder_arg, folder_names[k]))
                folder = k;
        if (folder < 0)
            return ctl_usage_error("--folder takes INBOX, Sent or Trash, not \"%.40s\"", folder_arg);
    }
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    /* An alias shows its user's mailbox. */
    struct rcpt_lookup who;
    char canon[ADDR_MAX + 1];
    if (directory_lookup_rcpt(st, pos[0], &who) != STORE_OK)
        return ctl_fail("%.100s: store error", pos[0]);
    if (who.kind != RCPT_KIND_USER || !who.user.id)
        return ctl_fail("%s is not a user or an alias of one", ctl_canon(pos[0], canon));
    struct ctl_list l = {json_array(), NULL, 0};
    char what[ADDR_MAX + 32];
    snprintf(what, sizeof what, "the mailbox of %s", who.user.email);
    json_t *rows = ctl_list_rows(&l, store_mailbox_list(st, who.user.id, folder, entry_to_json, &l), what);
    if (!rows)
        return CTL_FAIL;
    if (json)
        return ctl_json_print(rows);
    if (json_array_size(rows) == 0)
        printf("mailbox of %s: %s is empty\n", who.user.email, folder >= 0 ? folder_names[folder] : "every folder");
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) {
        printf("%lld  %s  %-5s  %-6s  %-11s  %s  <", (long long)json_integer_value(json_object_get(o, "id")),
               json_string_value(json_object_get(o, "msg_id")), json_string_value(json_object_get(o, "folder")),
               json_is_true(json_object_get(o, "seen")) ? "seen" : "unseen",
               json_string_value(json_object_get(o, "redeliver")), json_string_value(json_object_get(o, "received")));
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "sender")));
        printf("> ->");
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(o, "rcpts"), k, r) {
            printf("%s", k ? "," : " ");
            ctl_put_safe(stdout, json_string_value(r));
        }
        printf("\n");
    }
    json_decref(rows);
    return CTL_OK;
}
