/*
 * ctl_continuity.c — lifeboatctl's continuity commands: enable and disable per
 * domain, status (SPEC.md's --json shape), and two extensions for operators
 * and tests: the events timeline and a user's continuity mailbox.
 *
 * The daemon's continuity engine owns the state machine; these commands only
 * change the settings (through the directory's rules) and read what the engine
 * recorded in the store, so they work with or without a running lifeboatd.
 * The --json shapes of status, events and stats are admin.h's views, the same
 * the control panel's API returns.
 * Times are shown as ISO 8601 UTC, with the epoch seconds beside them in JSON.
 */
#include "admin/admin.h"
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
    struct store_domain d;
    if (n && ctl_domain_arg(st, pos[0], &d) != CTL_OK)
        return CTL_FAIL;
    json_t *rows;
    if (admin_continuity_view(st, 0, n ? &d : NULL, &rows) != STORE_OK)
        return ctl_fail("cannot read the continuity status (store error)");
    if (json)
        return ctl_json_print(rows);
    status_print(rows);
    json_decref(rows);
    return CTL_OK;
}

/* ---------------------------------------------------------------- events */

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
    json_t *rows;
    if (admin_events_view(st, 0, d.id, (size_t)limit, &rows) != STORE_OK)
        return ctl_fail("cannot list continuity events (store error)");
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

/* ---------------------------------------------------------------- stats */

/* Mail per minute (admin.h): the minutes in which something happened, and the totals. */
static void stats_print(json_t *view)
{
    json_t *minutes = json_object_get(view, "minutes"), *o;
    json_t *domain = json_object_get(view, "domain");
    uint64_t total[STAT_NCOUNTERS] = {0};
    char t[32];
    printf("mail per minute, %s, the last %lld hour(s) (since %s)\n",
           json_is_string(domain) ? json_string_value(domain) : "all domains",
           (long long)json_integer_value(json_object_get(view, "hours")),
           iso(json_integer_value(json_object_get(view, "from")), t));
    printf("%-20s", "MINUTE");
    for (int k = 0; k < STAT_NCOUNTERS; k++)
        printf("  %11s", admin_stat_name(k));
    printf("\n");
    size_t i;
    json_array_foreach(minutes, i, o) {
        printf("%-20s", iso(json_integer_value(json_object_get(o, "t")), t));
        for (int k = 0; k < STAT_NCOUNTERS; k++) {
            json_int_t v = json_integer_value(json_object_get(o, admin_stat_name(k)));
            total[k] += (uint64_t)v;
            printf("  %11lld", (long long)v);
        }
        printf("\n");
    }
    printf("%-20s", "TOTAL");
    for (int k = 0; k < STAT_NCOUNTERS; k++)
        printf("  %11llu", (unsigned long long)total[k]);
    printf("\n");
}

int ctl_continuity_stats(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL}, *hours_arg = NULL;
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {"hours", &hours_arg, NULL}, {0}};
    if (ctl_getopt(argc, argv, opts, pos, 0, 1, &n) != CTL_OK)
        return CTL_USAGE;
    long hours = ADMIN_STATS_HOURS_DEFAULT;
    if (hours_arg && ((hours = positive(hours_arg)) < 0 || hours > ADMIN_STATS_HOURS_MAX))
        return ctl_usage_error("--hours takes a number from 1 to %d, not \"%.40s\"", ADMIN_STATS_HOURS_MAX,
                               hours_arg);
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    struct store_domain d;
    if (n && ctl_domain_arg(st, pos[0], &d) != CTL_OK)
        return CTL_FAIL;
    json_t *view;
    if (admin_stats_view(st, 0, n ? &d : NULL, (unsigned)hours, time_now(), &view) != STORE_OK)
        return ctl_fail("cannot read the statistics (store error)");
    if (json)
        return ctl_json_print(view);
    stats_print(view);
    json_decref(view);
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
