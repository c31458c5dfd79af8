/*
 * store_listen.c — a node's listener for wake-ups from the other nodes
 * (store.h's store_listen_*): its own libpq connection that LISTENs on the
 * channel "lifeboat" (store_notify sends on it). The daemon watches the
 * socket with its event loop and reads what arrived without blocking, so no
 * node polls rows in a loop to learn that another queued mail, changed a
 * domain or its configuration. The embedded SQLite store has no other nodes
 * and no listener.
 */
#include "store/store_internal.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct store_listener {
    PGconn *conn;
};

int store_listen_open(const struct config *cfg, struct store_listener **out, char *err, size_t errlen)
{
    *out = NULL;
    if (strncmp(cfg->store, "postgresql://", 13) != 0 && strncmp(cfg->store, "postgres://", 11) != 0)
        return STORE_OK;
    struct store_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERR;
    }
    char app[96];
    snprintf(app, sizeof app, "lifeboat-listen@%s", cfg->node_name);
    const char *keys[] = {"connect_timeout", "application_name", "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "dbname", NULL};
    const char *vals[] = {"10", app, "10", "5", "3", cfg->store, NULL};
    l->conn = PQconnectdbParams(keys, vals, 1);
    PGresult *res = NULL;
    if (!l->conn || PQstatus(l->conn) != CONNECTION_OK ||
        PQresultStatus(res = PQexec(l->conn, "LISTEN lifeboat")) != PGRES_COMMAND_OK) {
        const char *why = l->conn ? PQerrorMessage(l->conn) : "out of memory";
        snprintf(err, errlen, "cannot listen for the other nodes: %.*s", (int)strcspn(why, "\n"), why);
        PQclear(res);
        store_listen_close(l);
        return STORE_ERR;
    }
    PQclear(res);
    if (PQsetnonblocking(l->conn, 1) != 0) {
        snprintf(err, errlen, "cannot listen for the other nodes: no non-blocking mode");
        store_listen_close(l);
        return STORE_ERR;
    }
    *out = l;
    return STORE_OK;
}

int store_listen_fd(const struct store_listener *l)
{
    return PQsocket(l->conn);
}

int store_listen_read(struct store_listener *l, void (*cb)(const char *what, void *arg), void *arg)
{
    if (!PQconsumeInput(l->conn) || PQstatus(l->conn) != CONNECTION_OK) {
        log_warn("store: the listener's connection to PostgreSQL was lost: %.*s",
                 (int)strcspn(PQerrorMessage(l->conn), "\n"), PQerrorMessage(l->conn));
        return STORE_ERR;
    }
    PGnotify *n;
    while ((n = PQnotifies(l->conn)) != NULL) {
        cb(n->extra ? n->extra : "", arg);
        PQfreemem(n);
    }
    return STORE_OK;
}

void store_listen_close(struct store_listener *l)
{
    if (!l)
        return;
    PQfinish(l->conn);
    free(l);
}
