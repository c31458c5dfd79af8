/*
 * http_guard.c — what keeps one HTTP client from holding the server's memory
 * or its connections: the budget of request-body bytes held at once (all
 * clients, and per client address), and the deadlines of a connection's
 * phases, enforced by a watchdog thread.
 *
 * libmicrohttpd's own connection timeout is an idle timeout: every byte that
 * arrives resets it, so a client trickling one byte every few seconds keeps a
 * connection (and up to HTTP_HEADER_MEMORY of header) for ever. Here a request
 * header has an absolute deadline from the connection's start (or its previous
 * request's end), a body must keep up a minimum average rate after a grace
 * period, and a streamed response (the mbox export) must take a block every so
 * often. libmicrohttpd 0.9.75 has no per-phase timeouts and no way to close a
 * connection from outside its threads, so the watchdog shuts the socket down
 * (shutdown(2), never close): libmicrohttpd then sees the end of the stream
 * and closes the connection itself, cleanly, on its own thread. The socket
 * stays valid while we may shut it down because libmicrohttpd tells us of a
 * closed connection (http_guard_conn_close, under our lock) before it closes
 * the socket.
 *
 * The decisions (http_conn_overdue, http_budget_take) are pure over their
 * structs; the locking and the thread are around them.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http/http_internal.h"
#include "util/log.h"
#include "util/timeutil.h"

#define GUARD_TICK_MS 250 /* how often the watchdog looks */

/* ------------------------------------------------------------------ the budget (pure) */

static struct http_budget_ip *budget_find(struct http_budget *b, const char *ip)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->ips[i].ip, ip) == 0)
            return &b->ips[i];
    return NULL;
}

int http_budget_take(struct http_budget *b, const char *ip, uint64_t n)
{
    if (n > b->max_total || b->total > b->max_total - n)
        return HTTP_BUDGET_FULL;
    struct http_budget_ip *e = budget_find(b, ip);
    uint64_t held = e ? e->bytes : 0;
    if (n > b->max_per_ip || held > b->max_per_ip - n)
        return HTTP_BUDGET_IP_FULL;
    if (!e) {
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 16;
            struct http_budget_ip *ips = realloc(b->ips, cap * sizeof *ips);
            if (!ips)
                return -1;
            b->ips = ips;
            b->cap = cap;
        }
        e = &b->ips[b->n++];
        snprintf(e->ip, sizeof e->ip, "%s", ip);
        e->bytes = 0;
    }
    e->bytes += n;
    b->total += n;
    return 0;
}

void http_budget_give(struct http_budget *b, const char *ip, uint64_t n)
{
    struct http_budget_ip *e = budget_find(b, ip);
    if (!e || e->bytes < n || b->total < n) { /* a bug: give what was taken, once */
        log_err("http: request-body budget: %llu bytes given back for %s that were not taken",
                (unsigned long long)n, ip);
        return;
    }
    e->bytes -= n;
    b->total -= n;
    if (e->bytes == 0) /* the table holds only addresses with bodies in flight */
        *e = b->ips[--b->n];
}

void http_budget_clear(struct http_budget *b)
{
    free(b->ips);
    b->ips = NULL;
    b->n = b->cap = 0;
    b->total = 0;
}

/* ------------------------------------------------------------------ deadlines (pure) */

int http_conn_overdue(const struct http_conn *c, int64_t now)
{
    int64_t elapsed = now - c->since;
    switch (c->phase) {
    case HTTP_CONN_HEADER:
        return elapsed > (int64_t)HTTP_HEADER_TIMEOUT * 1000 ? HTTP_CONN_HEADER : 0;
    case HTTP_CONN_BODY: {
        /* After the grace, the body must have come at HTTP_BODY_MIN_RATE on
         * average since the grace ended: a slow start is forgiven, a trickle
         * is not, and a large body gets the time its size needs. */
        int64_t late = elapsed - (int64_t)HTTP_BODY_GRACE * 1000;
        if (late <= 0)
            return 0;
        return c->bytes < (uint64_t)late * HTTP_BODY_MIN_RATE / 1000 ? HTTP_CONN_BODY : 0;
    }
    case HTTP_CONN_STREAM:
        return now - c->progress > (int64_t)HTTP_STREAM_STALL * 1000 ? HTTP_CONN_STREAM : 0;
    default:
        return 0; /* a handler running, a buffered reply: libmicrohttpd's idle timeout */
    }
}

/* ------------------------------------------------------------------ the guard */

struct http_guard {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int running, stop;
    struct http_conn *conns; /* every open connection, a doubly linked list */
    struct http_budget budget;
};

static void phase_what(int phase, char *out, size_t outlen)
{
    if (phase == HTTP_CONN_HEADER)
        snprintf(out, outlen, "request header not complete within %d s", HTTP_HEADER_TIMEOUT);
    else if (phase == HTTP_CONN_BODY)
        snprintf(out, outlen, "request body slower than %u bytes/s after %d s", HTTP_BODY_MIN_RATE,
                 HTTP_BODY_GRACE);
    else
        snprintf(out, outlen, "the client took nothing of a streamed response for %d s", HTTP_STREAM_STALL);
}

static void *watchdog(void *arg)
{
    struct http_guard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        int64_t now = time_mono_ms();
        for (struct http_conn *c = g->conns; c; c = c->next) {
            int why = c->cut ? 0 : http_conn_overdue(c, now);
            if (!why)
                continue;
            /* Under the lock: libmicrohttpd has not closed the socket yet
             * (http_guard_conn_close waits for the lock first). */
            c->cut = 1;
            if (shutdown(c->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
                log_warn("http: client=%s, cannot shut a connection down: %s", c->ip, strerror(errno));
            char what[128];
            phase_what(why, what, sizeof what);
            if (why == HTTP_CONN_HEADER && c->served) /* most likely a browser's idle keep-alive connection */
                log_debug("http: client=%s, connection closed after %u requests: %s", c->ip, c->served, what);
            else
                log_info("http: client=%s, connection closed: %s", c->ip, what);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += GUARD_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cond, &g->lock, &ts);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

struct http_guard *http_guard_new(char *err, size_t errlen)
{
    struct http_guard *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->budget.max_total = HTTP_BODY_BUDGET;
    g->budget.max_per_ip = HTTP_BODY_BUDGET_PER_IP;
    /* Signals are the daemon loop's business: the thread blocks them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&g->thread, NULL, watchdog, g);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the HTTP watchdog thread: %s", strerror(rc));
        http_guard_free(g);
        return NULL;
    }
    g->running = 1;
    return g;
}

void http_guard_free(struct http_guard *g)
{
    if (!g)
        return;
    if (g->running) {
        pthread_mutex_lock(&g->lock);
        g->stop = 1;
        pthread_cond_signal(&g->cond);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->thread, NULL);
    }
    /* Connections still listed belong to daemons stopped already (they were
     * told of every close) or never stopped: not ours to free. */
    http_budget_clear(&g->budget);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

struct http_conn *http_guard_conn_open(struct http_guard *g, int fd, const char *ip)
{
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) {
        log_err("http: client=%s: out of memory: the connection has no deadlines", ip);
        return NULL;
    }
    c->fd = fd;
    snprintf(c->ip, sizeof c->ip, "%s", ip);
    c->phase = HTTP_CONN_HEADER;
    c->since = c->progress = time_mono_ms();
    pthread_mutex_lock(&g->lock);
    c->next = g->conns;
    if (g->conns)
        g->conns->prev = c;
    g->conns = c;
    pthread_mutex_unlock(&g->lock);
    return c;
}

void http_guard_conn_close(struct http_guard *g, struct http_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&g->lock);
    free(c);
}

void http_guard_phase(struct http_guard *g, struct http_conn *c, int phase)
{
    if (!c)
        return;
    int64_t now = time_mono_ms();
    pthread_mutex_lock(&g->lock);
    if (phase == HTTP_CONN_HEADER && c->phase != HTTP_CONN_HEADER)
        c->served++; /* a request ended: the connection waits for the next one */
    c->phase = phase;
    c->since = c->progress = now;
    c->bytes = 0;
    pthread_mutex_unlock(&g->lock);
}

void http_guard_body(struct http_guard *g, struct http_conn *c, size_t n)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    c->bytes += n;
    pthread_mutex_unlock(&g->lock);
}

void http_guard_progress(struct http_guard *g, struct http_conn *c)
{
    if (!c)
        return;
    int64_t now = time_mono_ms();
    pthread_mutex_lock(&g->lock);
    c->progress = now;
    pthread_mutex_unlock(&g->lock);
}

int http_guard_reserve(struct http_guard *g, const char *ip, uint64_t n)
{
    pthread_mutex_lock(&g->lock);
    int rc = http_budget_take(&g->budget, ip, n);
    pthread_mutex_unlock(&g->lock);
    return rc;
}

void http_guard_release(struct http_guard *g, const char *ip, uint64_t n)
{
    pthread_mutex_lock(&g->lock);
    http_budget_give(&g->budget, ip, n);
    pthread_mutex_unlock(&g->lock);
}
