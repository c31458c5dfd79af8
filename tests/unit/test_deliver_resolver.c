/*
 * test_deliver_resolver.c — MX and address lookups through c-ares on the
 * event loop, against a fake DNS server on 127.0.0.1 (UDP, ephemeral port):
 * MX hosts sorted by preference, RFC 7505 null MX, NXDOMAIN, no MX (NODATA),
 * server failure, numeric hosts answered at once, cancellation, and what a
 * session makes of each for RELAY_MX destinations (bounce or defer).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver/resolver.h"
#include "deliver/relay_session.h"

#define T_A 1
#define T_MX 15

/* ----------------------------------------------------------- fake DNS */

struct dns {
    int fd;
    struct event *ev;
    char servers[64];
    int queries;
};

static size_t put_name(unsigned char *p, const char *name)
{
    size_t n = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        p[n++] = (unsigned char)len;
        memcpy(p + n, name, len);
        n += len;
        name += len + (dot ? 1 : 0);
    }
    p[n++] = 0;
    return n;
}

static size_t put_rr(unsigned char *p, int type, const unsigned char *rdata, size_t rdlen)
{
    size_t n = 0;
    p[n++] = 0xc0; /* the question's name */
    p[n++] = 12;
    p[n++] = 0;
    p[n++] = (unsigned char)type;
    p[n++] = 0;
    p[n++] = 1; /* IN */
    memcpy(p + n, "\0\0\0\x3c", 4); /* TTL 60 */
    n += 4;
    p[n++] = (unsigned char)(rdlen >> 8);
    p[n++] = (unsigned char)rdlen;
    memcpy(p + n, rdata, rdlen);
    return n + rdlen;
}

static size_t put_mx(unsigned char *p, unsigned pref, const char *host)
{
    unsigned char rd[300];
    rd[0] = (unsigned char)(pref >> 8);
    rd[1] = (unsigned char)pref;
    size_t len = 2 + put_name(rd + 2, host);
    return put_rr(p, T_MX, rd, len);
}

static void on_query(evutil_socket_t fd, short what, void *arg)
{
    struct dns *d = arg;
    (void)what;
    unsigned char q[512], a[1024];
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fromlen);
    if (n < 17)
        return;
    d->queries++;
    /* The question: name labels from byte 12, then type and class. */
    char name[256] = "";
    size_t pos = 12, nl = 0;
    while (pos < (size_t)n && q[pos]) {
        size_t len = q[pos++];
        if (nl)
            name[nl++] = '.';
        memcpy(name + nl, q + pos, len);
        nl += len;
        pos += len;
    }
    name[nl] = '\0';
    pos++;
    int qtype = q[pos] << 8 | q[pos + 1];
    size_t qend = pos + 4;

    if (getenv("DNS_DEBUG"))
        fprintf(stderr, "query %s type %d\n", name, qtype);
    if (!strcmp(name, "silent.test"))
        return;
    int rcode = 0, nans = 0;
    memcpy(a, q, qend);
    size_t len = qend;
    if (!strcmp(name, "nxdomain.test")) {
        rcode = 3;
    } else if (!strcmp(name, "servfail.test")) {
        rcode = 2;
    } else if (!strcmp(name, "mx.test") && qtype == T_MX) {
        len += put_mx(a + len, 20, "b.mx.test");
        len += put_mx(a + len, 10, "a.mx.test");
        len += put_mx(a + len, 20, "c.mx.test");
        nans = 3;
    } else if (!strcmp(name, "nullmx.test") && qtype == T_MX) {
        len += put_mx(a + len, 0, "");
        nans = 1;
    } else if (!strcmp(name, "nomx.test") && qtype == T_A) {
        len += put_rr(a + len, T_A, (const unsigned char *)"\x7f\0\0\x01", 4);
        nans = 1;
    } /* anything else: NOERROR without answers (NODATA) */
    a[2] = 0x81 | (q[2] & 0x01); /* QR, RD copied */
    a[3] = (unsigned char)(0x80 | rcode);
    a[6] = 0;
    a[7] = (unsigned char)nans;
    a[8] = a[9] = a[10] = a[11] = 0;
    sendto(fd, a, len, 0, (struct sockaddr *)&from, fromlen);
}

static void dns_start(struct dns *d, struct event_base *base)
{
    memset(d, 0, sizeof *d);
    d->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(d->fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    getsockname(d->fd, (struct sockaddr *)&sin, &len);
    snprintf(d->servers, sizeof d->servers, "127.0.0.1:%d", ntohs(sin.sin_port));
    evutil_make_socket_nonblocking(d->fd);
    d->ev = event_new(base, d->fd, EV_READ | EV_PERSIST, on_query, d);
    event_add(d->ev, NULL);
}

static void dns_stop(struct dns *d)
{
    event_free(d->ev);
    close(d->fd);
}

/* ------------------------------------------------------------ fixtures */

struct env {
    struct event_base *base;
    struct dns dns;
    struct resolver *r;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    e->base = event_base_new();
    dns_start(&e->dns, e->base);
    char err[256];
    e->r = resolver_new(e->base, e->dns.servers, err, sizeof err);
    assert_non_null(e->r);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    resolver_free(e->r);
    dns_stop(&e->dns);
    event_base_free(e->base);
    free(e);
    return 0;
}

struct answer {
    struct event_base *base;
    int calls;
    int status;
    char error[128];
    struct mx_host hosts[RESOLVER_MX_MAX];
    size_t n;
    char first_addr[64];
};

static void mx_cb(void *arg, int status, const char *error, const struct mx_host *hosts, size_t n)
{
    struct answer *a = arg;
    a->calls++;
    a->status = status;
    snprintf(a->error, sizeof a->error, "%s", error ? error : "");
    memcpy(a->hosts, hosts, n * sizeof *hosts);
    a->n = n;
    event_base_loopexit(a->base, NULL);
}

static void addr_cb(void *arg, int status, const char *error, const struct ares_addrinfo *ai)
{
    struct answer *a = arg;
    a->calls++;
    a->status = status;
    snprintf(a->error, sizeof a->error, "%s", error ? error : "");
    if (ai && ai->nodes && ai->nodes->ai_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)ai->nodes->ai_addr)->sin_addr, a->first_addr,
                  sizeof a->first_addr);
    event_base_loopexit(a->base, NULL);
}

static void give_up(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static void loop(struct event_base *base, int seconds)
{
    struct event *limit = evtimer_new(base, give_up, base);
    struct timeval tv = {seconds, 0};
    evtimer_add(limit, &tv);
    event_base_dispatch(base);
    event_free(limit);
}

static void ask_mx(struct env *e, const char *domain, struct answer *a)
{
    memset(a, 0, sizeof *a);
    a->base = e->base;
    if (resolver_mx(e->r, domain, mx_cb, a))
        loop(e->base, 10);
    assert_int_equal(a->calls, 1);
}

/* ---------------------------------------------------------------- tests */

static void test_mx_sorted(void **state)
{
    struct env *e = *state;
    struct answer a;
    ask_mx(e, "mx.test", &a);
    assert_int_equal(a.status, RESOLVER_OK);
    assert_int_equal(a.n, 3);
    assert_string_equal(a.hosts[0].host, "a.mx.test");
    assert_int_equal(a.hosts[0].preference, 10);
    /* Equal preferences keep the server's order. */
    assert_string_equal(a.hosts[1].host, "b.mx.test");
    assert_string_equal(a.hosts[2].host, "c.mx.test");
}

static void test_mx_special_answers(void **state)
{
    struct env *e = *state;
    struct answer a;
    ask_mx(e, "nullmx.test", &a);
    assert_int_equal(a.status, RESOLVER_NULLMX);
    assert_int_equal(a.n, 0);
    ask_mx(e, "nxdomain.test", &a);
    assert_int_equal(a.status, RESOLVER_NXDOMAIN);
    ask_mx(e, "nomx.test", &a);
    assert_int_equal(a.status, RESOLVER_NODATA);
    ask_mx(e, "servfail.test", &a);
    assert_int_equal(a.status, RESOLVER_TEMP);
}

static void test_addresses(void **state)
{
    struct env *e = *state;
    struct answer a;
    memset(&a, 0, sizeof a);
    a.base = e->base;
    if (resolver_addrs(e->r, "nomx.test", "25", addr_cb, &a))
        loop(e->base, 10);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, RESOLVER_OK);
    assert_string_equal(a.first_addr, "127.0.0.1");

    /* A numeric host needs no DNS. It may be answered before the call returns
     * (then the call says NULL and the callback has run) or from the loop. */
    memset(&a, 0, sizeof a);
    a.base = e->base;
    int queries = e->dns.queries;
    if (resolver_addrs(e->r, "192.0.2.7", "25", addr_cb, &a))
        loop(e->base, 10);
    else
        assert_int_equal(a.calls, 1);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.first_addr, "192.0.2.7");
    assert_int_equal(e->dns.queries, queries);
}

/* A cancelled question's answer is dropped. */
static void test_cancel(void **state)
{
    struct env *e = *state;
    struct answer a;
    memset(&a, 0, sizeof a);
    a.base = e->base;
    struct resolver_req *q = resolver_mx(e->r, "mx.test", mx_cb, &a);
    assert_non_null(q);
    resolver_cancel(q);
    loop(e->base, 1);
    assert_int_equal(a.calls, 0);
    assert_true(e->dns.queries >= 1); /* it was asked, and answered */
}

/* Freeing the resolver with a question pending (a silent server) runs no callback. */
static void test_free_pending(void **state)
{
    struct env *e = *state;
    struct answer a;
    memset(&a, 0, sizeof a);
    a.base = e->base;
    assert_non_null(resolver_mx(e->r, "silent.test", mx_cb, &a));
    struct event *limit = evtimer_new(e->base, give_up, e->base);
    struct timeval tv = {0, 200000};
    evtimer_add(limit, &tv);
    event_base_dispatch(e->base);
    event_free(limit);
    resolver_free(e->r);
    e->r = NULL;
    assert_int_equal(a.calls, 0);
    char err[256];
    e->r = resolver_new(e->base, e->dns.servers, err, sizeof err);
}

/* What a session makes of it: a null MX and a missing domain bounce, a DNS
 * failure defers. */
struct run {
    struct event_base *base;
    int ended;
    struct relay_end end;
};

static void s_ready(struct relay_session *s, void *arg)
{
    (void)arg;
    relay_session_quit(s);
}

static void s_txn(struct relay_session *s, struct relay_txn *t, void *arg)
{
    (void)s;
    (void)t;
    (void)arg;
}

static void s_end(struct relay_session *s, const struct relay_end *e, void *arg)
{
    struct run *r = arg;
    (void)s;
    r->ended = 1;
    r->end = *e;
    event_base_loopexit(r->base, NULL);
}

static void session_for(struct env *e, const char *domain, struct run *r)
{
    static const struct relay_callbacks cb = {s_ready, s_txn, s_end};
    struct relay_env env = {
        .base = e->base, .resolver = e->r, .helo = "lb.test", .timeout = 2, .connect_timeout = 2};
    struct relay_target t = {.kind = RELAY_MX};
    snprintf(t.domain, sizeof t.domain, "%s", domain);
    memset(r, 0, sizeof *r);
    r->base = e->base;
    assert_non_null(relay_session_new(&env, &t, &cb, r));
    loop(e->base, 10);
    assert_true(r->ended);
}

static void test_session_mx_outcomes(void **state)
{
    struct env *e = *state;
    struct run r;
    session_for(e, "nullmx.test", &r);
    assert_false(r.end.reached_ready);
    assert_int_equal(r.end.why.result, SMTPC_PERM);
    assert_string_equal(r.end.why.dsn, "5.1.10");
    assert_non_null(strstr(r.end.why.text, "nullMX"));

    session_for(e, "nxdomain.test", &r);
    assert_int_equal(r.end.why.result, SMTPC_PERM);
    assert_string_equal(r.end.why.dsn, "5.4.4");

    session_for(e, "servfail.test", &r);
    assert_int_equal(r.end.why.result, SMTPC_TEMP);
    assert_string_equal(r.end.why.dsn, "4.4.3");
}

int main(void)
{
    g_mime_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mx_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mx_special_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_mx_outcomes, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_mime_shutdown();
    libevent_global_shutdown();
    return rc;
}
