/*
 * ctl_policy.c — lifeboatctl's password policy commands:
 *
 *   policy set CUSTOMER [--min-length N] [--upper] [--lower] [--digit] [--special]
 *                       [--no-upper] [--no-lower] [--no-digit] [--no-special]
 *   policy show CUSTOMER [--json]
 *
 * set changes only the rules it names (SPEC.md gives the flags that require a
 * class; the --no-* flags, which drop a requirement, and policy show are our
 * extensions); the rest stay as they were, or at the defaults for a customer
 * that had no policy. The rules themselves are directory's (password_policy.c).
 */
#include "admin/admin.h"
#include "ctl/ctl.h"
#include "directory/directory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One class: --X and --no-X exclude each other. 1, 0, -1 (unchanged), or -2 for both. */
static int class_change(int on, int off)
{
    if (on && off)
        return -2;
    return on ? 1 : off ? 0 : -1;
}

static void print_policy(const char *customer, const struct password_policy *p, int is_default)
{
    char text[256];
    password_policy_describe(p, text, sizeof text);
    printf("password policy of customer ");
    ctl_put_safe(stdout, customer);
    printf(": %s%s\n", text, is_default ? " (the defaults)" : "");
}

int ctl_policy_set(struct ctl *c, int argc, char **argv)
{
    const char *pos[1], *min_length = NULL;
    int up = 0, lo = 0, di = 0, sp = 0, no_up = 0, no_lo = 0, no_di = 0, no_sp = 0, n;
    const struct ctl_opt opts[] = {
        {"min-length", &min_length, NULL},
        {"upper", NULL, &up},
        {"lower", NULL, &lo},
        {"digit", NULL, &di},
        {"special", NULL, &sp},
        {"no-upper", NULL, &no_up},
        {"no-lower", NULL, &no_lo},
        {"no-digit", NULL, &no_di},
        {"no-special", NULL, &no_sp},
        {0},
    };
    if (ctl_getopt(argc, argv, opts, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    struct directory_policy_changes ch = {
        .min_length = -1,
        .upper = class_change(up, no_up),
        .lower = class_change(lo, no_lo),
        .digit = class_change(di, no_di),
        .special = class_change(sp, no_sp),
    };
    if (ch.upper == -2 || ch.lower == -2 || ch.digit == -2 || ch.special == -2)
        return ctl_usage_error("--CLASS and --no-CLASS exclude each other");
    if (min_length) {
        char *end;
        errno = 0;
        long v = strtol(min_length, &end, 10);
        if (errno || end == min_length || *end || v < 1 || v > PASSWORD_POLICY_LENGTH_MAX)
            return ctl_usage_error("--min-length wants a number from 1 to %d", PASSWORD_POLICY_LENGTH_MAX);
        ch.min_length = v;
    }
    if (!min_length && ch.upper == -1 && ch.lower == -1 && ch.digit == -1 && ch.special == -1)
        return ctl_usage_error("policy set: nothing to change");
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    char err[512];
    struct password_policy p;
    if (directory_password_policy_set(st, pos[0], &ch, &p, err, sizeof err) != 0)
        return ctl_fail("%s", err);
    print_policy(pos[0], &p, 0);
    return CTL_OK;
}

int ctl_policy_show(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, pos, 1, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    struct store_customer cu;
    rc = store_customer_get(st, pos[0], &cu);
    if (rc == STORE_NOTFOUND)
        return ctl_fail("customer %.128s does not exist", pos[0]);
    struct password_policy p;
    int is_default = 0;
    if (rc != STORE_OK || directory_password_policy_get(st, cu.id, &p, &is_default) != STORE_OK)
        return ctl_fail("policy of customer %.128s: store error", pos[0]);
    if (json) {
        json_t *o = admin_policy_json(st, &cu);
        if (!o)
            return ctl_fail("policy of customer %.128s: store error", pos[0]);
        return ctl_json_print(o);
    }
    print_policy(cu.name, &p, is_default);
    return CTL_OK;
}
