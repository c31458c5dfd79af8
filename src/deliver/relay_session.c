/*
 * relay_session.c — see relay_session.h. The life of a session:
 *
 *   resolve MX (RELAY_MX) -> for each host: resolve addresses -> for each
 *   address: connect -> greeting, EHLO [-> STARTTLS, handshake, EHLO] -> ready
 *   -> transactions ... -> QUIT
 *
 * Anything that goes wrong before the session is first ready moves on to the
 * next address or host (a failed TLS handshake retries the same address in
 * plain text); after that, the session ends and its owner decides.
 */
#include "deliver/relay_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <gmime/gmime.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"
#include "util/timeutil.h"

#define SESSION_MAX_ADDRS 8     /* addresses tried per host */
#define SESSION_MAX_CONNECTS 10 /* connection attempts per session, all hosts together */
#define BODY_CHUNK (64 * 1024)  /* message data is stuffed and queued this much at a time */
#define BODY_QUEUED (256 * 1024) /* ... while less than this waits in the output buffer */

enum session_state {
    S_RESOLVING, /* waiting for DNS */
    S_CONNECTING,
    S_TLS,     /* TLS handshake */
    S_TALKING, /* SMTP conversation */
    S_DONE,
};

struct relay_session {
    const struct relay_env *env;
    struct relay_target target;
    struct relay_callbacks cb;
    void *arg;
    int state;
    struct event *start_ev; /* the session starts from the loop, never inside relay_session_new */
    struct resolver_req *dns;

    /* Where to go: the hosts in order, the current host's addresses in order. */
    struct route hosts;
    size_t host_i;
    struct sockaddr_storage addrs[SESSION_MAX_ADDRS];
    socklen_t addrlens[SESSION_MAX_ADDRS];
    size_t naddr, addr_i;
    unsigned connects;
    int no_tls; /* a handshake failed: plain text from now on */

    struct relay_peer peer;
    struct bufferevent *bev; /* the socket, or the TLS filter over it */
    struct smtpc proto;
    struct relay_txn *txn;
    int reached_ready;
    struct smtpc_outcome last_error; /* what went wrong last before the session was ready */
    int64_t t_start, t_ready;

    /* Message data going out. */
    GMimeFilter *stuffer;
    int body_active, body_done;
    int body_seg; /* 0: prefix, 1: body */
    size_t body_off;
    unsigned char tail[2]; /* the last two bytes sent */
};

static void try_next(struct relay_session *s);
static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* ------------------------------------------------------------------ helpers */

static void set_error(struct smtpc_outcome *o, int result, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(struct smtpc_outcome *o, int result, const char *dsn, const char *fmt, ...)
{
    memset(o, 0, sizeof *o);
    o->result = result;
    o->code = result == SMTPC_PERM ? 550 : 451;
    snprintf(o->dsn, sizeof o->dsn, "%s", dsn);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->text, sizeof o->text, fmt, ap);
    va_end(ap);
}

static void set_timeouts(struct relay_session *s, unsigned read_s, unsigned write_s)
{
    struct timeval rd = {(time_t)read_s, 0}, wr = {(time_t)write_s, 0};
    bufferevent_set_timeouts(s->bev, read_s ? &rd : NULL, write_s ? &wr : NULL);
}

static void close_conn(struct relay_session *s)
{
    if (s->bev) {
        bufferevent_free(s->bev); /* with the TLS filter: the SSL and the socket too */
        s->bev = NULL;
    }
    s->body_active = 0;
}

static void destroy(struct relay_session *s)
{
    resolver_cancel(s->dns);
    close_conn(s);
    if (s->start_ev)
        event_free(s->start_ev);
    if (s->stuffer)
        g_object_unref(s->stuffer);
    free(s);
}

/* The session is over: tell the owner, then free it. The caller returns at once. */
static void end_session(struct relay_session *s, const struct smtpc_outcome *why)
{
    struct relay_end e;
    memset(&e, 0, sizeof e);
    e.reached_ready = s->reached_ready;
    e.why = *why;
    e.peer = s->peer;
    s->state = S_DONE;
    resolver_cancel(s->dns);
    s->dns = NULL;
    close_conn(s);
    s->cb.end(s, &e, s->arg);
    destroy(s);
}

static void wire_write(void *arg, const char *data, size_t len)
{
    struct relay_session *s = arg;
    if (s->bev)
        bufferevent_write(s->bev, data, len);
}

/* "while ..." in lost-connection and timeout messages. */
static void while_doing(const struct relay_session *s, char *out, size_t outlen)
{
    switch (s->proto.step) {
    case SMTPC_STEP_GREETING: snprintf(out, outlen, "receiving the initial server greeting"); break;
    case SMTPC_STEP_TLS: snprintf(out, outlen, "performing the TLS handshake"); break;
    case SMTPC_STEP_READY: snprintf(out, outlen, "waiting to send a message"); break;
    case SMTPC_STEP_DOT:
        snprintf(out, outlen, "%s", s->body_active && !s->body_done
                                        ? "sending message body"
                                        : "sending end of data -- message may be sent more than once");
        break;
    default: snprintf(out, outlen, "sending %s", smtpc_step_name(s->proto.step)); break;
    }
}

/* ----------------------------------------------------------- message data */

static void body_fill(struct relay_session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    const struct relay_txn *t = s->txn;
    while (!s->body_done && evbuffer_get_length(out) < BODY_QUEUED) {
        const unsigned char *seg = s->body_seg == 0 ? t->prefix : t->body;
        size_t seglen = s->body_seg == 0 ? t->prefix_len : t->body_len;
        if (s->body_off >= seglen) {
            if (s->body_seg == 0) {
                s->body_seg = 1;
                s->body_off = 0;
                continue;
            }
            /* The data must end with CRLF before the final dot (RFC 5321 4.1.1.4). */
            if (s->tail[0] != '\r' || s->tail[1] != '\n')
                evbuffer_add(out, "\r\n", 2);
            evbuffer_add(out, ".\r\n", 3);
            s->body_done = 1;
            bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
            set_timeouts(s, s->env->timeout, s->env->timeout);
            break;
        }
        size_t n = seglen - s->body_off < BODY_CHUNK ? seglen - s->body_off : BODY_CHUNK;
        char *stuffed;
        size_t stuffed_len, prespace;
        /* The filter only reads its input (and keeps the beginning-of-line state
         * across chunks, and from the prefix into the body). */
        g_mime_filter_filter(s->stuffer, (char *)(seg + s->body_off), n, 0, &stuffed, &stuffed_len,
                             &prespace);
        evbuffer_add(out, stuffed, stuffed_len);
        if (n >= 2) {
            s->tail[0] = seg[s->body_off + n - 2];
            s->tail[1] = seg[s->body_off + n - 1];
        } else {
            s->tail[0] = s->tail[1];
            s->tail[1] = seg[s->body_off];
        }
        s->body_off += n;
    }
}

static void body_start(struct relay_session *s)
{
    if (!s->stuffer)
        s->stuffer = g_mime_filter_smtp_data_new();
    else
        g_mime_filter_reset(s->stuffer);
    s->body_active = 1;
    s->body_done = 0;
    s->body_seg = 0;
    s->body_off = 0;
    s->tail[0] = '\r';
    s->tail[1] = '\n'; /* empty data still ends with CRLF.CRLF */
    /* While the data goes out the server is silent: only the writes are timed,
     * and more is queued each time the output runs low. */
    set_timeouts(s, 0, s->env->timeout);
    bufferevent_setwatermark(s->bev, EV_WRITE, BODY_CHUNK, 0);
    body_fill(s);
}

/* ----------------------------------------------------------------- TLS */

static void start_tls(struct relay_session *s)
{
    SSL *ssl = SSL_new(s->env->tls);
    struct bufferevent *tls = NULL;
    if (ssl) {
        struct in6_addr a6;
        struct in_addr a4;
        if (inet_pton(AF_INET, s->peer.host, &a4) != 1 && inet_pton(AF_INET6, s->peer.host, &a6) != 1)
            SSL_set_tlsext_host_name(ssl, s->peer.host);
        bufferevent_set_timeouts(s->bev, NULL, NULL);
        tls = bufferevent_openssl_filter_new(s->env->base, s->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (!tls)
            SSL_free(ssl); /* libevent 2.1 does not take it over when it fails */
    }
    if (!tls) {
        log_err("cannot set up TLS with %s[%s]:%s (out of memory?)", s->peer.host, s->peer.addr,
                s->peer.port);
        set_error(&s->last_error, SMTPC_TEMP, "4.7.5", "cannot set up TLS with %s[%s]", s->peer.host,
                  s->peer.addr);
        close_conn(s);
        s->no_tls = 1;
        s->addr_i--; /* this address again, in plain text */
        try_next(s);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    s->bev = tls;
    s->state = S_TLS;
    bufferevent_setcb(tls, on_read, on_write, on_event, s);
    set_timeouts(s, s->env->timeout, s->env->timeout);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
}

static void tls_established(struct relay_session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    log_info("Untrusted TLS connection established to %s[%s]:%s: %s with cipher %s", s->peer.host,
             s->peer.addr, s->peer.port, ssl ? SSL_get_version(ssl) : "?",
             ssl ? SSL_get_cipher_name(ssl) : "?");
}

static void tls_failed(struct relay_session *s)
{
    char reason[256] = "handshake failed";
    unsigned long e = bufferevent_get_openssl_error(s->bev);
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    else if (EVUTIL_SOCKET_ERROR())
        snprintf(reason, sizeof reason, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    log_warn("TLS handshake with %s[%s]:%s failed: %s; trying again without TLS", s->peer.host, s->peer.addr,
             s->peer.port, reason);
    set_error(&s->last_error, SMTPC_TEMP, "4.7.5", "TLS handshake with %s[%s] failed: %s", s->peer.host,
              s->peer.addr, reason);
    close_conn(s);
    s->no_tls = 1;
    s->addr_i--;
    try_next(s);
}

/* ---------------------------------------------------------- conversation */

/* The conversation is over (failed, lost, or out of step). Before the first
 * ready: next address. After: the session ends. */
static void conversation_over(struct relay_session *s, const struct smtpc_outcome *why)
{
    close_conn(s);
    if (!s->reached_ready) {
        s->last_error = *why;
        try_next(s);
        return;
    }
    end_session(s, why);
}

static int has_8bit(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80)
            return 1;
    return 0;
}

void relay_txn_init(struct relay_txn *t, const char *prefix, const unsigned char *body, size_t body_len,
                    const char *sender, const char *const *rcpts, size_t nrcpt, struct smtpc_outcome *out)
{
    memset(t, 0, sizeof *t);
    t->prefix = (const unsigned char *)prefix;
    t->prefix_len = strlen(prefix);
    t->body = body;
    t->body_len = body_len;
    t->smtp.sender = sender;
    t->smtp.rcpts = rcpts;
    t->smtp.nrcpt = nrcpt;
    t->smtp.size = t->prefix_len + t->body_len;
    t->smtp.body_8bit = has_8bit(t->prefix, t->prefix_len) || has_8bit(t->body, t->body_len);
    t->smtp.out = out;
}

/* Formats into a fixed field; a long reply is cut, which is fine for a log line. */
static void text_printf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void text_printf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

/* A failure the machine reported with the server's reply: say who said it. */
static void describe_failure(struct relay_session *s, struct smtpc_outcome *o)
{
    if (!o->from_server)
        return;
    char reply[SMTPC_TEXT_MAX];
    memcpy(reply, o->text, sizeof reply);
    if (o->step == SMTPC_STEP_GREETING)
        text_printf(o->text, sizeof o->text, "host %s[%s] refused to talk to me: %s", s->peer.host,
                    s->peer.addr, reply);
    else
        text_printf(o->text, sizeof o->text, "host %s[%s] said: %s (in reply to %s command)", s->peer.host,
                    s->peer.addr, reply, smtpc_step_name(o->step));
    o->from_server = 0;
}

/* Does what the state machine asked. Returns 0 to go on reading replies, or
 * non-zero when the caller must stop touching the connection (or the session). */
static int handle_action(struct relay_session *s, enum smtpc_action act)
{
    struct relay_txn *t;
    struct smtpc_outcome why;
    switch (act) {
    case SMTPC_WAIT:
        return 0;

    case SMTPC_STARTTLS:
        /* Nothing may follow the 220 in the clear: it would be taken as coming
         * from inside TLS (STARTTLS command injection, CVE-2011-0411 style). */
        if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
            log_warn("%s[%s]:%s sent data after its STARTTLS reply; trying again without TLS", s->peer.host,
                     s->peer.addr, s->peer.port);
            set_error(&s->last_error, SMTPC_TEMP, "4.5.0",
                      "protocol error: %s[%s] sent data after its STARTTLS reply", s->peer.host,
                      s->peer.addr);
            close_conn(s);
            s->no_tls = 1;
            s->addr_i--; /* this address again, in plain text */
            try_next(s);
            return -1;
        }
        start_tls(s);
        return -1;

    case SMTPC_READY:
        if (!s->reached_ready) {
            s->reached_ready = 1;
            s->t_ready = time_mono_ms();
        }
        s->cb.ready(s, s->arg);
        return 0;

    case SMTPC_SEND_BODY:
        body_start(s);
        return 0;

    case SMTPC_TXN_DONE: {
        t = s->txn;
        s->txn = NULL;
        int early = s->body_active && !s->body_done;
        s->body_active = 0;
        if (early) {
            /* An answer before our final dot cannot be about the whole message. */
            for (size_t i = 0; i < t->smtp.nrcpt; i++)
                if (t->smtp.out[i].result == SMTPC_OK) {
                    char reply[SMTPC_TEXT_MAX];
                    snprintf(reply, sizeof reply, "%s", t->smtp.out[i].text);
                    set_error(&t->smtp.out[i], SMTPC_TEMP, "4.5.0",
                              "protocol error: %s[%s] answered before the end of the data: %.300s",
                              s->peer.host, s->peer.addr, reply);
                    t->smtp.server_level = 1;
                }
        }
        s->cb.txn_done(s, t, s->arg);
        if (early) {
            set_error(&why, SMTPC_TEMP, "4.5.0", "protocol error: %s[%s] answered before the end of the data",
                      s->peer.host, s->peer.addr);
            end_session(s, &why);
            return -1;
        }
        s->cb.ready(s, s->arg);
        return 0;
    }

    case SMTPC_FAILED:
        t = s->txn;
        s->txn = NULL;
        s->body_active = 0;
        if (t)
            s->cb.txn_done(s, t, s->arg);
        why = *smtpc_failure(&s->proto);
        describe_failure(s, &why);
        conversation_over(s, &why);
        return -1;

    case SMTPC_CLOSED:
    default:
        memset(&why, 0, sizeof why);
        end_session(s, &why);
        return -1;
    }
}

enum lost_how { LOST_CLOSED, LOST_TIMEOUT, LOST_GARBAGE };

/* The connection broke, timed out or the server spoke garbage. */
static void connection_lost(struct relay_session *s, enum lost_how how)
{
    if (s->proto.step == SMTPC_STEP_QUIT) {
        struct smtpc_outcome none;
        memset(&none, 0, sizeof none);
        end_session(s, &none); /* it was going to close anyway */
        return;
    }
    char doing[128], text[SMTPC_TEXT_MAX];
    while_doing(s, doing, sizeof doing);
    const char *h = s->peer.host, *a = s->peer.addr;
    if (how == LOST_TIMEOUT)
        text_printf(text, sizeof text, "conversation with %s[%s] timed out while %s", h, a, doing);
    else if (how == LOST_GARBAGE)
        text_printf(text, sizeof text, "protocol error: %s[%s] sent something that is not SMTP while %s", h,
                    a, doing);
    else
        text_printf(text, sizeof text, "lost connection with %s[%s] while %s", h, a, doing);
    smtpc_lost(&s->proto, how == LOST_GARBAGE ? "4.5.0" : "4.4.2", text);
    struct relay_txn *t = s->txn;
    s->txn = NULL;
    s->body_active = 0;
    if (t)
        s->cb.txn_done(s, t, s->arg);
    struct smtpc_outcome why = *smtpc_failure(&s->proto);
    conversation_over(s, &why);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct relay_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (s->state == S_TALKING) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return;
        size_t look = len < SMTP_REPLY_MAX ? len : SMTP_REPLY_MAX;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
        struct smtp_reply reply;
        size_t used = 0;
        enum smtp_reply_status st = smtp_reply_parse(p, look, &reply, &used);
        if (st == SMTP_REPLY_INCOMPLETE)
            return;
        if (st == SMTP_REPLY_ERROR) {
            connection_lost(s, LOST_GARBAGE);
            return;
        }
        evbuffer_drain(in, used);
        if (handle_action(s, smtpc_reply(&s->proto, &reply)) != 0)
            return;
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct relay_session *s = arg;
    (void)bev;
    if (s->state == S_TALKING && s->body_active && !s->body_done)
        body_fill(s);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct relay_session *s = arg;
    (void)bev;
    switch (s->state) {
    case S_CONNECTING:
        if (what & BEV_EVENT_CONNECTED) {
            s->state = S_TALKING;
            smtpc_init(&s->proto, s->env->helo, s->env->tls && !s->no_tls, wire_write, s);
            set_timeouts(s, s->env->timeout, s->env->timeout);
            bufferevent_enable(s->bev, EV_READ | EV_WRITE);
            log_debug("connected to %s[%s]:%s", s->peer.host, s->peer.addr, s->peer.port);
            return;
        }
        int err = EVUTIL_SOCKET_ERROR();
        set_error(&s->last_error, SMTPC_TEMP, "4.4.1", "connect to %s[%s]:%s: %s", s->peer.host, s->peer.addr,
                  s->peer.port,
                  (what & BEV_EVENT_TIMEOUT) || !err ? "Connection timed out"
                                                     : evutil_socket_error_to_string(err));
        close_conn(s);
        try_next(s);
        return;

    case S_TLS:
        if (what & BEV_EVENT_CONNECTED) {
            s->state = S_TALKING;
            tls_established(s);
            if (handle_action(s, smtpc_tls_done(&s->proto)) == 0)
                on_read(s->bev, s); /* the server may have spoken already */
            return;
        }
        tls_failed(s);
        return;

    case S_TALKING:
        if (what & BEV_EVENT_TIMEOUT)
            connection_lost(s, LOST_TIMEOUT);
        else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
            connection_lost(s, LOST_CLOSED);
        return;

    default:
        return;
    }
}

/* ----------------------------------------------------------- connecting */

/* Opens a connection to the next address. 0: under way; -1: failed at once
 * (last_error says why). */
static int connect_next_addr(struct relay_session *s)
{
    size_t i = s->addr_i++;
    s->connects++;
    const struct sockaddr *sa = (const struct sockaddr *)&s->addrs[i];
    const void *raw = sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                                               : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    inet_ntop(sa->sa_family, raw, s->peer.addr, sizeof s->peer.addr);

    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || (connect(fd, sa, s->addrlens[i]) != 0 && errno != EINPROGRESS)) {
        set_error(&s->last_error, SMTPC_TEMP, "4.4.1", "connect to %s[%s]:%s: %s", s->peer.host, s->peer.addr,
                  s->peer.port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    s->bev = bufferevent_socket_new(s->env->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev) {
        close(fd);
        set_error(&s->last_error, SMTPC_TEMP, "4.3.0", "out of memory connecting to %s[%s]", s->peer.host,
                  s->peer.addr);
        return -1;
    }
    bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
    set_timeouts(s, s->env->connect_timeout, s->env->connect_timeout);
    /* The connect is already under way: libevent reports its end as CONNECTED or ERROR. */
    if (bufferevent_socket_connect(s->bev, NULL, 0) != 0) {
        close_conn(s);
        set_error(&s->last_error, SMTPC_TEMP, "4.4.1", "connect to %s[%s]:%s: failed", s->peer.host,
                  s->peer.addr, s->peer.port);
        return -1;
    }
    s->state = S_CONNECTING;
    return 0;
}

static void on_addrs(void *arg, int status, const char *error, const struct ares_addrinfo *ai)
{
    struct relay_session *s = arg;
    s->dns = NULL;
    s->naddr = s->addr_i = 0;
    if (status != RESOLVER_OK) {
        set_error(&s->last_error, SMTPC_TEMP, "4.4.3",
                  "Host or domain name not found. Name service error for name=%s type=A: %s", s->peer.host,
                  error);
    } else {
        for (const struct ares_addrinfo_node *n = ai->nodes; n && s->naddr < SESSION_MAX_ADDRS;
             n = n->ai_next) {
            if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
                (size_t)n->ai_addrlen > sizeof s->addrs[0])
                continue;
            memcpy(&s->addrs[s->naddr], n->ai_addr, (size_t)n->ai_addrlen);
            s->addrlens[s->naddr] = (socklen_t)n->ai_addrlen;
            s->naddr++;
        }
    }
    try_next(s);
}

/* Moves on: next address of this host, next host, or the end. */
static void try_next(struct relay_session *s)
{
    for (;;) {
        if (s->connects >= SESSION_MAX_CONNECTS)
            break;
        if (s->addr_i < s->naddr) {
            if (connect_next_addr(s) == 0)
                return;
            continue;
        }
        if (s->host_i < s->hosts.count) {
            const struct route_host *h = &s->hosts.hosts[s->host_i++];
            snprintf(s->peer.host, sizeof s->peer.host, "%s", h->host);
            snprintf(s->peer.port, sizeof s->peer.port, "%s", h->port);
            s->peer.addr[0] = '\0';
            s->naddr = s->addr_i = 0;
            s->state = S_RESOLVING;
            /* The answer may come before resolver_addrs returns, and may even end
             * the session: touch s only if the question is still pending. */
            struct resolver_req *q = resolver_addrs(s->env->resolver, h->host, h->port, on_addrs, s);
            if (q)
                s->dns = q;
            return;
        }
        break;
    }
    if (!s->last_error.text[0])
        set_error(&s->last_error, SMTPC_TEMP, "4.4.1", "no server to connect to");
    end_session(s, &s->last_error);
}

static void on_mx(void *arg, int status, const char *error, const struct mx_host *hosts, size_t n)
{
    struct relay_session *s = arg;
    s->dns = NULL;
    const char *d = s->target.domain;
    switch (status) {
    case RESOLVER_OK:
        for (size_t i = 0; i < n && s->hosts.count < ROUTE_MAX_HOSTS; i++) {
            struct route_host *h = &s->hosts.hosts[s->hosts.count++];
            snprintf(h->host, sizeof h->host, "%s", hosts[i].host);
            snprintf(h->port, sizeof h->port, "25");
        }
        break;
    case RESOLVER_NODATA:
        /* No MX: the domain itself is the mail host (RFC 5321 5.1). */
        snprintf(s->hosts.hosts[0].host, sizeof s->hosts.hosts[0].host, "%s", d);
        snprintf(s->hosts.hosts[0].port, sizeof s->hosts.hosts[0].port, "25");
        s->hosts.count = 1;
        break;
    case RESOLVER_NULLMX:
        set_error(&s->last_error, SMTPC_PERM, "5.1.10", "Domain %s does not accept mail (nullMX)", d);
        end_session(s, &s->last_error);
        return;
    case RESOLVER_NXDOMAIN:
        set_error(&s->last_error, SMTPC_PERM, "5.4.4",
                  "Host or domain name not found. Name service error for name=%s type=MX: %s", d, error);
        end_session(s, &s->last_error);
        return;
    default:
        set_error(&s->last_error, SMTPC_TEMP, "4.4.3",
                  "Host or domain name not found. Name service error for name=%s type=MX: %s", d, error);
        end_session(s, &s->last_error);
        return;
    }
    try_next(s);
}

/* ------------------------------------------------------------------ API */

static void on_start(evutil_socket_t fd, short what, void *arg)
{
    struct relay_session *s = arg;
    (void)fd;
    (void)what;
    if (s->target.kind == RELAY_MX) {
        snprintf(s->peer.host, sizeof s->peer.host, "%s", s->target.domain);
        struct resolver_req *q = resolver_mx(s->env->resolver, s->target.domain, on_mx, s);
        if (q)
            s->dns = q;
    } else {
        s->hosts = s->target.hosts;
        try_next(s);
    }
}

struct relay_session *relay_session_new(const struct relay_env *env, const struct relay_target *target,
                            const struct relay_callbacks *cb, void *arg)
{
    struct relay_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->env = env;
    s->target = *target;
    s->cb = *cb;
    s->arg = arg;
    s->state = S_RESOLVING;
    s->t_start = time_mono_ms();
    /* Everything, even a failure found at once, is reported from the loop, after
     * the owner has recorded the session. */
    s->start_ev = evtimer_new(env->base, on_start, s);
    struct timeval now = {0, 0};
    if (!s->start_ev || evtimer_add(s->start_ev, &now) != 0) {
        destroy(s);
        return NULL;
    }
    return s;
}

int relay_session_send(struct relay_session *s, struct relay_txn *t)
{
    if (!relay_session_is_ready(s))
        return -1;
    s->txn = t;
    if (smtpc_begin(&s->proto, &t->smtp) == SMTPC_TXN_DONE) {
        s->txn = NULL;
        return 1;
    }
    return 0;
}

void relay_session_quit(struct relay_session *s)
{
    if (relay_session_is_ready(s))
        smtpc_quit(&s->proto);
}

void relay_session_free(struct relay_session *s)
{
    if (s)
        destroy(s);
}

int relay_session_is_ready(const struct relay_session *s)
{
    return s->state == S_TALKING && s->proto.step == SMTPC_STEP_READY && !s->txn;
}

const struct relay_peer *relay_session_peer(const struct relay_session *s)
{
    return &s->peer;
}

int64_t relay_session_started_ms(const struct relay_session *s)
{
    return s->t_start;
}

int64_t relay_session_ready_ms(const struct relay_session *s)
{
    return s->t_ready;
}

unsigned relay_session_txn_count(const struct relay_session *s)
{
    return s->proto.ntxn;
}

int relay_session_tls_active(const struct relay_session *s)
{
    return s->proto.tls_active;
}
