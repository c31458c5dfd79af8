/*
 * ctl_user.c — lifeboatctl's user and alias commands. Passwords come only from
 * standard input (--password-stdin), never from the command line, where every
 * user of the machine could read them in the process list.
 */
#include "admin/admin.h"
#include "ctl/ctl.h"
#include "directory/directory.h"

#include <string.h>

/* ---------------------------------------------------------------- users */

int ctl_user_add(struct ctl *c, int argc, char **argv)
{
    const char *pos[1], *name = NULL, *role = NULL;
    int pw_stdin = 0, activate = 0, n;
    const struct ctl_opt opts[] = {
        {"name", &name, NULL},
        {"role", &role, NULL},
        {"password-stdin", NULL, &pw_stdin},
        {"activate", NULL, &activate},
        {0},
    };
    if (ctl_getopt(argc, argv, opts, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    char *pw = NULL;
    if (pw_stdin && !(pw = ctl_read_password()))
        return CTL_FAIL;
    struct store *st = ctl_store(c);
    char err[512], canon[ADDR_MAX + 1];
    int rc = st ? directory_user_add(st, pos[0], name, role, pw, activate, err, sizeof err) : -1;
    ctl_password_free(pw);
    if (!st)
        return CTL_FAIL;
    if (rc != 0)
        return ctl_fail("%s", err);
    printf("user %s added%s\n", ctl_canon(pos[0], canon), activate ? " (active)" : "");
    return CTL_OK;
}

int ctl_user_set(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int pw_stdin = 0, activate = 0, suspend = 0, n;
    struct directory_user_changes ch = {.active = -1, .suspended = -1};
    const struct ctl_opt opts[] = {
        {"password-stdin", NULL, &pw_stdin},
        {"activate", NULL, &activate},
        {"suspend", NULL, &suspend},
        {"alt-email", &ch.alt_email, NULL},
        {"role", &ch.role, NULL},
        {"name", &ch.name, NULL},
        {0},
    };
    if (ctl_getopt(argc, argv, opts, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    if (activate && suspend)
        return ctl_usage_error("--activate and --suspend exclude each other");
    if (!pw_stdin && !activate && !suspend && !ch.alt_email && !ch.role)
        return ctl_usage_error("user set: nothing to change");
    ch.active = activate ? 1 : -1;
    ch.suspended = suspend ? 1 : -1;
    char *pw = NULL;
    if (pw_stdin && !(pw = ctl_read_password()))
        return CTL_FAIL;
    ch.password = pw;
    struct store *st = ctl_store(c);
    char err[512], canon[ADDR_MAX + 1];
    int rc = st ? directory_user_set(st, pos[0], &ch, err, sizeof err) : -1;
    ctl_password_free(pw);
    if (!st)
        return CTL_FAIL;
    if (rc != 0)
        return ctl_fail("%s", err);
    printf("user %s updated\n", ctl_canon(pos[0], canon));
    return CTL_OK;
}

int ctl_user_del(struct ctl *c, int argc, char **argv)
{
    return ctl_run_one(c, argc, argv, directory_user_del, "user", "deleted", 1);
}


int ctl_user_list(struct ctl *c, int argc, char **argv)
{
    const char *domain = NULL;
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"domain", &domain, NULL}, {"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, NULL, 0, 0, &n, &st);
    if (rc != CTL_OK)
        return rc;
    struct store_domain d = {0}; /* id 0: every domain */
    if (domain && ctl_domain_arg(st, domain, &d) != CTL_OK)
        return CTL_FAIL;
    struct store_user_query q = {.domain_id = d.id, .limit = (size_t)INT64_MAX};
    json_t *page = admin_users(st, &q);
    json_t *rows = page ? json_incref(json_object_get(page, "users")) : NULL;
    json_decref(page);
    if (!rows)
        return ctl_fail("cannot list users: store error");
    if (json)
        return ctl_json_print(rows);
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) {
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "email")));
        printf("  %s  %s  %s", json_string_value(json_object_get(o, "role")),
               json_is_true(json_object_get(o, "suspended")) ? "suspended"
               : json_is_true(json_object_get(o, "active"))  ? "active"
                                                             : "inactive",
               json_is_true(json_object_get(o, "password")) ? "password" : "no-password");
        json_t *alt = json_object_get(o, "alt_email");
        if (json_is_string(alt)) {
            printf("  alt=");
            ctl_put_safe(stdout, json_string_value(alt));
        }
        const char *name = json_string_value(json_object_get(o, "name"));
        if (name && *name) {
            printf("  name=\"");
            ctl_put_safe(stdout, name);
            printf("\"");
        }
        printf("\n");
    }
    json_decref(rows);
    return CTL_OK;
}

/* ---------------------------------------------------------------- aliases */

int ctl_alias_add(struct ctl *c, int argc, char **argv)
{
    const char *pos[2];
    int n;
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, NULL, pos, 2, 2, &n, &st);
    if (rc != CTL_OK)
        return rc;
    char err[512], canon[ADDR_MAX + 1];
    if (directory_alias_add(st, pos[0], pos[1], err, sizeof err) != 0)
        return ctl_fail("%s", err);
    printf("alias %s added for ", ctl_canon(pos[1], canon));
    printf("%s\n", ctl_canon(pos[0], canon));
    return CTL_OK;
}

int ctl_alias_del(struct ctl *c, int argc, char **argv)
{
    return ctl_run_one(c, argc, argv, directory_alias_del, "alias", "deleted", 1);
}

static int alias_to_json(const char *alias, const char *user_email, void *arg)
{
    return ctl_list_add(arg, json_pack("{s:o, s:o}", "alias", ctl_jstr(alias), "user", ctl_jstr(user_email)));
}

int ctl_alias_list(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, pos, 0, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    int64_t user_id = 0;
    if (n == 1) {
        char canon[ADDR_MAX + 1];
        struct store_user u;
        if (addr_canonical(pos[0], canon, sizeof canon) != 0)
            return ctl_fail("user %.100s does not exist", pos[0]);
        rc = store_user_get(st, canon, &u);
        if (rc == STORE_NOTFOUND)
            return ctl_fail("user %s does not exist", canon);
        if (rc != STORE_OK)
            return ctl_fail("user %s: store error", canon);
        user_id = u.id;
    }
    struct ctl_list l = {json_array(), NULL, 0};
    json_t *rows = ctl_list_rows(&l, store_alias_list(st, user_id, alias_to_json, &l), "aliases");
    if (!rows)
        return CTL_FAIL;
    if (json)
        return ctl_json_print(rows);
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o) {
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "alias")));
        printf(" -> ");
        ctl_put_safe(stdout, json_string_value(json_object_get(o, "user")));
        printf("\n");
    }
    json_decref(rows);
    return CTL_OK;
}
