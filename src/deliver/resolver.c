/*
 * resolver.c — see resolver.h. c-ares tells us which sockets it wants watched
 * (sock_state_cb); each gets a persistent libevent event that hands readiness
 * back to ares_process_fd. One timer follows ares_timeout() so retransmissions
 * and timeouts happen without any socket activity.
 */
#include "deliver/resolver.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/log.h"

struct watched_sock {
    struct watched_sock *next;
    ares_socket_t fd;
    int readable, writable;
    struct event *ev;
};

struct resolver {
    struct event_base *base;
    ares_channel channel;
    struct event *timer;
    struct watched_sock *socks;
    int destroying;
};

struct resolver_req {
    struct resolver *r;
    resolver_mx_cb mx_cb;
    resolver_addr_cb addr_cb;
    void *arg;
    char name[DOMAIN_MAX + 1];
    int cancelled;
    int starting;  /* inside the call that asked: the answer may come right away */
    int completed; /* answered while starting */
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_rc;

static void ares_start(void)
{
    ares_init_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

static void arm_timer(struct resolver *r)
{
    struct timeval tv, *tvp;
    if (r->destroying)
        return;
    tvp = ares_timeout(r->channel, NULL, &tv);
    if (tvp)
        evtimer_add(r->timer, tvp);
    else
        evtimer_del(r->timer);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct resolver *r = arg;
    (void)fd;
    (void)what;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    arm_timer(r);
}

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
    struct resolver *r = arg;
    ares_process_fd(r->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    arm_timer(r);
}

/* c-ares opens, changes and closes its sockets: follow with events. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct resolver *r = data;
    struct watched_sock **pp = &r->socks, *w;
    while ((w = *pp) && w->fd != fd)
        pp = &w->next;
    if (w && (!readable && !writable)) {
        *pp = w->next;
        event_free(w->ev);
        free(w);
        return;
    }
    if (!readable && !writable)
        return;
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) {
            log_err("resolver: out of memory watching a DNS socket");
            return;
        }
        w->fd = fd;
        w->next = r->socks;
        r->socks = w;
    } else if (w->readable == readable && w->writable == writable) {
        return;
    } else {
        event_free(w->ev);
    }
    w->readable = readable;
    w->writable = writable;
    w->ev = event_new(r->base, fd, EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0),
                      on_sock, r);
    if (w->ev)
        event_add(w->ev, NULL);
    else
        log_err("resolver: cannot watch DNS socket %d", (int)fd);
}

struct resolver *resolver_new(struct event_base *base, const char *servers, char *err, size_t errlen)
{
    pthread_once(&ares_once, ares_start);
    if (ares_init_rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(ares_init_rc));
        return NULL;
    }
    struct resolver *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->base = base;
    struct ares_options opts;
    memset(&opts, 0, sizeof opts);
    opts.sock_state_cb = sock_state_cb;
    opts.sock_state_cb_data = r;
    int rc = ares_init_options(&r->channel, &opts, ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        free(r);
        return NULL;
    }
    if (servers && *servers && (rc = ares_set_servers_ports_csv(r->channel, servers)) != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: bad DNS servers \"%s\": %s", servers, ares_strerror(rc));
        ares_destroy(r->channel);
        free(r);
        return NULL;
    }
    r->timer = evtimer_new(base, on_timer, r);
    if (!r->timer) {
        snprintf(err, errlen, "cannot create the resolver timer");
        ares_destroy(r->channel);
        free(r);
        return NULL;
    }
    return r;
}

void resolver_free(struct resolver *r)
{
    if (!r)
        return;
    /* Pending queries end with ARES_EDESTRUCTION: their requests are freed, no
     * callbacks run (see finish()). */
    r->destroying = 1;
    ares_destroy(r->channel);
    while (r->socks) {
        struct watched_sock *w = r->socks;
        r->socks = w->next;
        event_free(w->ev);
        free(w);
    }
    event_free(r->timer);
    free(r);
}

void resolver_cancel(struct resolver_req *q)
{
    if (q)
        q->cancelled = 1;
}

/* The end of a request's life: its answer has been delivered (or dropped). */
static void finish(struct resolver_req *q)
{
    if (q->starting)
        q->completed = 1; /* the asking call frees it */
    else
        free(q);
}

static int classify(int status, const char **error)
{
    *error = ares_strerror(status);
    switch (status) {
    case ARES_SUCCESS: return RESOLVER_OK;
    case ARES_ENODATA: return RESOLVER_NODATA;
    case ARES_ENOTFOUND: *error = "Host not found"; return RESOLVER_NXDOMAIN;
    default: return RESOLVER_TEMP;
    }
}

static int mx_cmp(const void *a, const void *b)
{
    const struct mx_host *x = a, *y = b;
    return (int)x->preference - (int)y->preference;
}

static void mx_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct resolver_req *q = arg;
    (void)timeouts;
    if (q->cancelled || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        finish(q);
        return;
    }
    const char *error;
    int st = classify(status, &error);
    struct mx_host hosts[RESOLVER_MX_MAX];
    size_t n = 0;
    if (st == RESOLVER_OK) {
        struct ares_mx_reply *mx = NULL;
        int prc = ares_parse_mx_reply(abuf, alen, &mx);
        if (prc == ARES_ENODATA) {
            st = RESOLVER_NODATA;
            error = ares_strerror(prc);
        } else if (prc != ARES_SUCCESS) {
            st = RESOLVER_TEMP;
            error = "malformed MX answer";
        } else {
            for (struct ares_mx_reply *m = mx; m; m = m->next) {
                /* RFC 7505: "0 ." — the root as exchange — means no mail at all. */
                if (m->host[0] == '\0' || strcmp(m->host, ".") == 0) {
                    st = RESOLVER_NULLMX;
                    error = "null MX";
                    n = 0;
                    break;
                }
                size_t len = strlen(m->host);
                if (n == RESOLVER_MX_MAX || len >= sizeof hosts[n].host)
                    continue;
                memcpy(hosts[n].host, m->host, len + 1);
                if (len > 1 && hosts[n].host[len - 1] == '.')
                    hosts[n].host[len - 1] = '\0';
                hosts[n].preference = m->priority;
                n++;
            }
            ares_free_data(mx);
            if (st == RESOLVER_OK && n == 0) {
                st = RESOLVER_NODATA;
                error = "no usable MX record";
            }
            /* Stable: equal preferences keep the name server's (usually shuffled) order. */
            if (n > 1) {
                for (size_t i = 1; i < n; i++) { /* insertion sort is stable */
                    struct mx_host h = hosts[i];
                    size_t j = i;
                    while (j > 0 && mx_cmp(&hosts[j - 1], &h) > 0) {
                        hosts[j] = hosts[j - 1];
                        j--;
                    }
                    hosts[j] = h;
                }
            }
        }
    }
    q->mx_cb(q->arg, st, error, hosts, n);
    finish(q);
}

static void addr_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct resolver_req *q = arg;
    (void)timeouts;
    if (q->cancelled || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        if (res)
            ares_freeaddrinfo(res);
        finish(q);
        return;
    }
    const char *error;
    int st = classify(status, &error);
    if (st == RESOLVER_OK && (!res || !res->nodes)) {
        st = RESOLVER_NODATA;
        error = "no address";
    }
    q->addr_cb(q->arg, st, error, st == RESOLVER_OK ? res : NULL);
    if (res)
        ares_freeaddrinfo(res);
    finish(q);
}

static struct resolver_req *req_new(struct resolver *r, const char *name, void *arg)
{
    struct resolver_req *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->r = r;
    q->arg = arg;
    q->starting = 1;
    snprintf(q->name, sizeof q->name, "%s", name);
    return q;
}

/* After asking: NULL if the answer already came (or nothing could be asked). */
static struct resolver_req *req_started(struct resolver_req *q)
{
    q->starting = 0;
    if (q->completed) {
        free(q);
        return NULL;
    }
    arm_timer(q->r);
    return q;
}

struct resolver_req *resolver_mx(struct resolver *r, const char *domain, resolver_mx_cb cb, void *arg)
{
    struct resolver_req *q = req_new(r, domain, arg);
    if (!q) {
        cb(arg, RESOLVER_TEMP, "out of memory", NULL, 0);
        return NULL;
    }
    q->mx_cb = cb;
    ares_query(r->channel, q->name, ns_c_in, ns_t_mx, mx_done, q);
    return req_started(q);
}

struct resolver_req *resolver_addrs(struct resolver *r, const char *host, const char *port,
                                    resolver_addr_cb cb, void *arg)
{
    struct resolver_req *q = req_new(r, host, arg);
    if (!q) {
        cb(arg, RESOLVER_TEMP, "out of memory", NULL);
        return NULL;
    }
    q->addr_cb = cb;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NUMERICSERV;
    /* An address literal (a route like "192.0.2.9" or "2001:db8::25") must not
     * depend on DNS at all. Its own family, not AF_UNSPEC: c-ares 1.18 only
     * recognises an IPv4 literal when asked for AF_INET. */
    unsigned char raw[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, raw) == 1) {
        hints.ai_family = AF_INET;
        hints.ai_flags |= ARES_AI_NUMERICHOST;
    } else if (inet_pton(AF_INET6, host, raw) == 1) {
        hints.ai_family = AF_INET6;
        hints.ai_flags |= ARES_AI_NUMERICHOST;
    }
    ares_getaddrinfo(r->channel, q->name, port, &hints, addr_done, q);
    return req_started(q);
}
