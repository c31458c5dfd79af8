/*
 * ctl_admin_del.c — lifeboatctl user unlock, domain del and customer del
 * (SPEC.md "Administration"): thin calls of directory's admin_del.c, which
 * the admin API runs too, printing what was done (or what stood in the way).
 */
#include "ctl/ctl.h"
#include "directory/directory.h"

#include <string.h>

int ctl_user_unlock(struct ctl *c, int argc, char **argv)
{
    return ctl_run_one(c, argc, argv, directory_user_unlock, "user", "unlocked", 1);
}

int ctl_domain_del(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int force = 0, json = c->json, n;
    const struct ctl_opt opts[] = {{"force", NULL, &force}, {"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, pos, 1, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    char err[512], canon[ADDR_MAX + 1];
    struct directory_domain_del_counts k;
    if (directory_domain_del(st, pos[0], force, &k, err, sizeof err) != 0)
        return ctl_fail("%s", err);
    ctl_canon(pos[0], canon);
    if (json)
        return ctl_json_print(directory_domain_del_json(canon, &k));
    printf("domain %s deleted: %u user(s), %u alias(es), %u mailbox message(s)", canon, k.users, k.aliases,
           k.mailbox);
    if (k.queued || k.waiting)
        printf("; dropped %u queued or held and %u waiting for re-delivery", k.queued, k.waiting);
    printf("\n");
    return CTL_OK;
}

int ctl_customer_del(struct ctl *c, int argc, char **argv)
{
    return ctl_run_one(c, argc, argv, directory_customer_del, "customer", "deleted", 0);
}
