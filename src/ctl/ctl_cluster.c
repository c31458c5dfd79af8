/*
 * ctl_cluster.c — lifeboatctl cluster status: the nodes that share the store,
 * their last heartbeat, which one leads (probes and drives the domains'
 * states) and how much queued work each holds under a live lease. A node
 * whose heartbeat is older than three beats (15 s) is shown as down: its
 * leases run out and the others take its work.
 */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "util/timeutil.h"

/* A node is down when its heartbeat is this much older than now. */
#define NODE_DOWN_AFTER 15

struct nodes_ctx {
    struct ctl_list list;
    int64_t now;
};

static int node_row(const struct store_node_info *n, void *arg)
{
    struct nodes_ctx *x = arg;
    int up = x->now - n->heartbeat <= NODE_DOWN_AFTER;
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:I, s:s, s:s}", "name", n->name, "state",
                          up ? "up" : "down", "started", (json_int_t)n->started, "heartbeat",
                          (json_int_t)n->heartbeat, "heartbeat_age", (json_int_t)(x->now - n->heartbeat), "lead",
                          n->lead && up, "claims", (json_int_t)n->claims, "version", n->version, "addr", n->addr);
    return ctl_list_add(&x->list, o);
}

int ctl_cluster_status(struct ctl *c, int argc, char **argv)
{
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, NULL, 0, 0, &n, &st);
    if (rc != CTL_OK)
        return rc;
    struct nodes_ctx x = {.list = {json_array(), NULL, 0}, .now = time_now()};
    json_t *rows = ctl_list_rows(&x.list, store_node_list(st, x.now, node_row, &x), "the nodes");
    if (!rows)
        return CTL_FAIL;
    if (json)
        return ctl_json_print(rows);
    int store_pg = strncmp(c->cfg.store, "postgres", 8) == 0;
    printf("store: %s, %zu node(s)\n", store_pg ? "PostgreSQL (several nodes)" : "SQLite (one node)",
           json_array_size(rows));
    if (json_array_size(rows) == 0) {
        printf("no node has started yet\n");
        json_decref(rows);
        return CTL_OK;
    }
    printf("%-24s %-5s %-19s %-10s %-4s %7s  %s\n", "NODE", "STATE", "STARTED", "HEARTBEAT", "LEAD", "CLAIMS",
           "ADDRESS");
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        char started[32], age[32];
        snprintf(age, sizeof age, "%llds ago", (long long)json_integer_value(json_object_get(r, "heartbeat_age")));
        printf("%-24s %-5s %-19s %-10s %-4s %7lld  %s\n", json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "state")),
               ctl_time(json_integer_value(json_object_get(r, "started")), started), age,
               json_is_true(json_object_get(r, "lead")) ? "yes" : "-",
               (long long)json_integer_value(json_object_get(r, "claims")),
               json_string_value(json_object_get(r, "addr")));
    }
    json_decref(rows);
    return CTL_OK;
}
