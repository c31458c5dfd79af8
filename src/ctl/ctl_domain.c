/*
 * ctl_domain.c — lifeboatctl's customer, subscription and domain commands. The
 * rules live in the directory module; this file turns arguments into calls and
 * results into text or --json. Listings are built as JSON first and printed
 * from it, so the two forms always show the same data.
 */
#include "admin/admin.h"
#include "ctl/ctl.h"
#include "directory/directory.h"
#include "util/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- customers */

int ctl_customer_add(struct ctl *c, int argc, char **argv)
{
    return ctl_run_one(c, argc, argv, directory_customer_add, "customer", "added", 0);
}




int ctl_customer_list(struct ctl *c, int argc, char **argv)
{
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, NULL, 0, 0, &n, &st);
    if (rc != CTL_OK)
        return rc;
    json_t *rows = admin_customers(st, 0);
    if (!rows)
        return ctl_fail("cannot list customers: store error");
    if (json)
        return ctl_json_print(rows);
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) {
        char t1[32], t2[32], t3[32];
        json_int_t start = json_integer_value(json_object_get(o, "subscription_start"));
        json_int_t end = json_integer_value(json_object_get(o, "subscription_end"));
        json_int_t cancelled = json_integer_value(json_object_get(o, "subscription_cancelled"));
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "name")));
        printf("  created %s", ctl_time(json_integer_value(json_object_get(o, "created")), t1));
        if (!start)
            printf("  subscription none\n");
        else if (cancelled)
            printf("  subscription cancelled %s (started %s)\n", ctl_time(cancelled, t3), ctl_time(start, t2));
        else
            printf("  subscription active since %s, minimum term until %s\n", ctl_time(start, t2),
                   ctl_time(end, t3));
    }
    json_decref(rows);
    return CTL_OK;
}

/* ---------------------------------------------------------------- subscriptions */

/* --months N: digits only, or a usage error. Out of range values stay numbers
 * for the directory to refuse with its reason. */
static int parse_months(const char *s, int *out)
{
    const char *p = *s == '-' || *s == '+' ? s + 1 : s;
    if (!*p)
        return -1;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    errno = 0;
    long v = strtol(s, NULL, 10);
    if (errno == ERANGE || v > INT_MAX || v < INT_MIN)
        v = v < 0 ? INT_MIN : INT_MAX;
    *out = (int)v;
    return 0;
}

int ctl_subscription_start(struct ctl *c, int argc, char **argv)
{
    const char *pos[1], *months_arg = NULL;
    int n, months = SUBSCRIPTION_MIN_MONTHS;
    const struct ctl_opt opts[] = {{"months", &months_arg, NULL}, {0}};
    if (ctl_getopt(argc, argv, opts, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    if (months_arg && parse_months(months_arg, &months) != 0)
        return ctl_usage_error("--months takes a whole number of months, not \"%.40s\"", months_arg);
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    char err[512];
    if (directory_subscription_start(st, pos[0], months, time_now(), err, sizeof err) != 0)
        return ctl_fail("%s", err);
    struct store_customer cu;
    if (store_customer_get(st, pos[0], &cu) != STORE_OK)
        return ctl_fail("customer %s: subscription started, but it cannot be read back", pos[0]);
    char t1[32], t2[32];
    time_iso8601((time_t)cu.sub_start, t1, sizeof t1);
    time_iso8601((time_t)cu.sub_end, t2, sizeof t2);
    printf("subscription of customer ");
    ctl_put_safe(stdout, cu.name);
    printf(" started %s, minimum term %d months until %s; continuity and archive begin now\n", t1, months, t2);
    return CTL_OK;
}

int ctl_subscription_cancel(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int n, disabled = 0;
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, NULL, pos, 1, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    char err[512];
    if (directory_subscription_cancel(st, pos[0], time_now(), &disabled, err, sizeof err) != 0)
        return ctl_fail("%s", err);
    struct store_customer cu;
    printf("subscription of customer ");
    ctl_put_safe(stdout, store_customer_get(st, pos[0], &cu) == STORE_OK ? cu.name : pos[0]);
    printf(" cancelled; continuity disabled on %d domain(s)\n", disabled);
    return CTL_OK;
}

/* ---------------------------------------------------------------- domains */

int ctl_domain_add(struct ctl *c, int argc, char **argv)
{
    const char *pos[1], *customer = NULL, *route = NULL;
    int n;
    const struct ctl_opt opts[] = {{"customer", &customer, NULL}, {"route", &route, NULL}, {0}};
    if (ctl_getopt(argc, argv, opts, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    if (!customer || !route)
        return ctl_usage_error("domain add needs --customer and --route");
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    char err[512], canon[ADDR_MAX + 1];
    if (directory_domain_add(st, pos[0], customer, route, err, sizeof err) != 0)
        return ctl_fail("%s", err);
    printf("domain %s added\n", ctl_canon(pos[0], canon));
    return CTL_OK;
}

int ctl_domain_set(struct ctl *c, int argc, char **argv)
{
    const char *pos[1], *rcheck = NULL;
    struct directory_domain_changes ch = {.recipient_check = -1};
    int n;
    const struct ctl_opt opts[] = {
        {"route", &ch.routes, NULL},
        {"recipient-check", &rcheck, NULL},
        {"outbound-from", &ch.outbound_from, NULL},
        {"webhook", &ch.webhook, NULL},
        {"dkim-selector", &ch.dkim_selector, NULL},
        {"dkim-key", &ch.dkim_key_file, NULL},
        {0},
    };
    if (ctl_getopt(argc, argv, opts, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    if (rcheck) {
        if (!strcmp(rcheck, "on"))
            ch.recipient_check = 1;
        else if (!strcmp(rcheck, "off"))
            ch.recipient_check = 0;
        else
            return ctl_usage_error("--recipient-check takes on or off, not \"%s\"", rcheck);
    }
    if (!!ch.dkim_selector != !!ch.dkim_key_file)
        return ctl_usage_error("--dkim-selector and --dkim-key go together");
    if (!ch.routes && !rcheck && !ch.outbound_from && !ch.webhook && !ch.dkim_selector)
        return ctl_usage_error("domain set: nothing to change");
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    char err[512], canon[ADDR_MAX + 1];
    if (directory_domain_set(st, pos[0], &ch, err, sizeof err) != 0)
        return ctl_fail("%s", err);
    printf("domain %s updated\n", ctl_canon(pos[0], canon));
    return CTL_OK;
}



static void print_domain(json_t *o)
{
    size_t i;
    json_t *v;
    ctl_put_safe(stdout, json_string_value(json_object_get(o, "name")));
    printf("  customer=");
    json_t *cu = json_object_get(o, "customer");
    ctl_put_safe(stdout, json_is_string(cu) ? json_string_value(cu) : "?");
    printf("  route=");
    json_array_foreach(json_object_get(o, "routes"), i, v) printf("%s%s", i ? "," : "", json_string_value(v));
    printf("  recipient-check=%s", json_is_true(json_object_get(o, "recipient_check")) ? "on" : "off");
    printf("  outbound-from=");
    json_t *of = json_object_get(o, "outbound_from");
    if (json_array_size(of) == 0)
        printf("none");
    json_array_foreach(of, i, v) printf("%s%s", i ? "," : "", json_string_value(v));
    printf("  continuity=%s", json_is_true(json_object_get(o, "continuity")) ? "on" : "off");
    if (json_is_true(json_object_get(o, "outgoing_to_own_server")))
        printf("  outgoing-to-own-server");
    if (json_is_string(json_object_get(o, "webhook"))) {
        printf("  webhook=");
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "webhook")));
    }
    if (json_is_string(json_object_get(o, "dkim_selector"))) {
        printf("  dkim=");
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "dkim_selector")));
        printf(":");
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "dkim_key")));
    }
    printf("\n");
}

int ctl_domain_list(struct ctl *c, int argc, char **argv)
{
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, NULL, 0, 0, &n, &st);
    if (rc != CTL_OK)
        return rc;
    json_t *rows = admin_domains(st, 0);
    if (!rows)
        return ctl_fail("cannot list domains: store error");
    if (json)
        return ctl_json_print(rows);
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) print_domain(o);
    json_decref(rows);
    return CTL_OK;
}
