/*
 * http.h — lifeboat's HTTP API (SPEC.md "HTTP API"): the webmail's JSON
 * endpoints, sessions and login, /healthz.
 *
 * Threads. The server runs on libmicrohttpd's own threads (a small pool per
 * listen address: MHD_USE_INTERNAL_POLLING_THREAD + MHD_OPTION_THREAD_POOL_SIZE),
 * not on the daemon's event loop, so a slow request (an argon2id check takes
 * tens of milliseconds and 64 MB on purpose) never delays SMTP. Each request
 * borrows one read connection of the store from a pool sized to the number of
 * threads, so a request never waits for one.
 *
 * Writes. Every write goes through the group-commit writer like the rest of
 * the daemon: the request's thread submits a job and blocks on a condition
 * variable until the job's done callback (which runs on the daemon's loop)
 * reports the commit. Only that HTTP thread waits; the loop only signals. The
 * job itself re-checks what it changes (a mailbox entry's owner, its folder) on
 * the writer's connection, so a check and its change are one transaction.
 *
 * Shutdown order (lifeboatd): http_stop_accepting on SIGTERM (the listen
 * sockets close and no new write is submitted; requests that would write get
 * 503), the loop runs until the writes in flight are done (http_idle), then the
 * writer stops, and http_free ends the threads last. Calling http_free while
 * the writer still runs is fine too; calling it from the loop thread while a
 * write is in flight and the writer's done callbacks need that loop is not:
 * stop accepting first and wait for http_idle.
 */
#ifndef LB_HTTP_HTTP_H
#define LB_HTTP_HTTP_H

#include <stddef.h>

#include "store/writer.h"
#include "util/config.h"

struct http_server;

/* Starts listening on cfg->http_listen (HTTPS when cfg->tls_cert_file is set)
 * with the writer for every change (its blob store serves message bodies).
 * NULL with err filled on failure. An empty http_listen gives a server that
 * listens nowhere (every other call still works). */
struct http_server *http_start(const struct config *cfg, struct store_writer *writer, char *err,
                               size_t errlen);

/* Who to tell, on the daemon's loop, when a request has queued a message (the
 * webmail's send): lifeboatd kicks the delivery engine, as for SMTP. Call before
 * traffic arrives. */
void http_set_on_queued(struct http_server *srv, void (*fn)(void *arg, const char *queue_id), void *arg);

/* Closes the listen sockets and refuses new writes (503); requests on open
 * connections still get answers. Does not block. Idempotent. */
void http_stop_accepting(struct http_server *srv);

/* 1 when no write of a request is waiting for the writer. */
int http_idle(struct http_server *srv);

/* SIGHUP: takes the new configuration's settings that can change at run time
 * (none of the listen addresses or the certificate: those say so in the log). */
void http_reload(struct http_server *srv, const struct config *cfg);

/* Stops the threads (open connections are closed) and frees everything.
 * Calls http_stop_accepting first if nobody did. */
void http_free(struct http_server *srv);

#endif
