/*
 * session.c — one SMTP connection: its bufferevent, timeouts, the input loop
 * that hands complete command lines to session_cmd.c and message bytes to the
 * DATA/BDAT reader, STARTTLS, and an orderly close.
 *
 * PIPELINING comes for free from the input loop: commands are taken from the
 * input buffer one after the other and their replies appended to the output
 * buffer, which libevent writes when the loop is idle again — so the replies to
 * a pipelined group leave together once the input is drained.
 *
 * Nothing a client does can make the session hold unbounded memory: a command
 * line is never buffered beyond SMTP_PARAM_LINE_MAX (the rest of an over-long
 * line is discarded as it arrives), the input buffer stops reading at
 * SMTPD_INPUT_MAX, and when SMTPD_OUTPUT_MAX of replies wait for a client that
 * does not read them, no further command is processed until it does (or the
 * write timeout closes the connection).
 *
 * Lifetime: a session is freed from the top of a libevent callback only (never
 * while a command is being handled). While its message is with a worker or the
 * writer (SS_SUBMIT), or its AUTH is being checked (SS_AUTH), the session must
 * stay alive: if the connection is lost then, only the socket is closed and
 * the memory is freed when the done callback arrives (session_txn.c,
 * session_submission.c, session_auth.c).
 */
#include "smtpd/smtpd_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <sodium.h>

#include "util/log.h"
#include "util/timeutil.h"

/* How long a closing session may take to deliver its last reply. */
#define CLOSE_GRACE_MS 10000
#define CLOSE_POLL_MS 50

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

static struct bufferevent *underlying(struct session *s)
{
    return s->bev ? bufferevent_get_underlying(s->bev) : NULL;
}

void session_set_timeouts(struct session *s)
{
    if (!s->bev || !s->srv)
        return;
    const struct config *cfg = &s->srv->cfg;
    int in_data = s->state == SS_DATA || s->state == SS_BDAT || s->state == SS_SKIP;
    struct timeval rd = {in_data ? cfg->smtp_data_timeout : cfg->smtp_timeout, 0};
    struct timeval wr = {cfg->smtp_timeout, 0};
    bufferevent_set_timeouts(s->bev, &rd, &wr);
    /* Under TLS the socket's own bufferevent keeps the same timeouts: the TLS
     * filter has none of its own while the handshake runs. */
    struct bufferevent *under = underlying(s);
    if (under)
        bufferevent_set_timeouts(under, &rd, &wr);
}

static void setup_bev(struct session *s)
{
    bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, SMTPD_INPUT_MAX);
    /* Message bodies arrive faster in fewer, larger reads (libevent's default is 16 KB). */
    bufferevent_set_max_single_read(s->bev, 64 * 1024);
    session_set_timeouts(s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* The DATA reader's budget calls: the server's, for this client address.
 * Once smtpd_free has let go of the session (srv NULL) its reservation has
 * already been given back (session_abort), and nothing more is granted. */
static int budget_reserve(void *arg, size_t n)
{
    struct session *s = arg;
    return s->srv ? data_budget_reserve(&s->srv->budget, s->ip, n) : -1;
}

static void budget_release(void *arg, size_t n)
{
    struct session *s = arg;
    if (s->srv)
        data_budget_release(&s->srv->budget, s->ip, n);
}

struct session *session_new(struct smtpd *srv, evutil_socket_t fd, const char *ip, int submission)
{
    struct session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->srv = srv;
    snprintf(s->ip, sizeof s->ip, "%s", ip);
    s->submission = submission;
    s->state = SS_CMD;
    s->last_verb = "CONNECT";
    s->nrelay_customers = -1;
    s->budget = (struct smtp_data_budget){.reserve = budget_reserve, .release = budget_release, .arg = s};
    s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev) {
        free(s);
        return NULL;
    }
    setup_bev(s);
    log_info("connect from [%s]", s->ip);
    session_replyf(s, "220 %s ESMTP lifeboat", srv->cfg.hostname);
    return s;
}

/* ------------------------------------------------------------------ output */

void session_reply(struct session *s, const char *text)
{
    if (!s->bev)
        return;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\r\n", 2);
}

void session_replyf(struct session *s, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    session_reply(s, text);
}

void session_error(struct session *s, const char *text)
{
    session_reply(s, text);
    session_count_error(s);
}

void session_count_error(struct session *s)
{
    s->errors++;
    if (!s->srv || !s->bev || s->closing || s->errors < s->srv->hard_error_limit)
        return;
    log_warn("too many errors after %s from [%s]", s->last_verb, s->ip);
    session_replyf(s, "421 4.7.0 %s Error: too many errors", s->srv->cfg.hostname);
    session_close_after_flush(s);
}

/* ------------------------------------------------------------------ closing */

/* "disconnect from [ip] ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/6",
 * as Postfix writes it: ok/total where some failed. */
static void log_disconnect(struct session *s)
{
    static const enum smtp_verb order[] = {SMTP_HELO, SMTP_EHLO, SMTP_STARTTLS, SMTP_AUTH,
                                           SMTP_MAIL, SMTP_RCPT, SMTP_DATA,     SMTP_BDAT,
                                           SMTP_RSET, SMTP_NOOP, SMTP_VRFY,     SMTP_EXPN,
                                           SMTP_HELP, SMTP_QUIT};
    char text[512];
    size_t len = 0;
    unsigned total = s->unknown, failed = s->unknown;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        enum smtp_verb v = order[i];
        if (!s->count[v])
            continue;
        total += s->count[v];
        failed += s->failed[v];
        char name[16];
        snprintf(name, sizeof name, "%s", smtp_verb_name(v));
        for (char *p = name; *p; p++)
            *p = (char)(*p - 'A' + 'a');
        int n = s->failed[v]
                    ? snprintf(text + len, sizeof text - len, " %s=%u/%u", name,
                               s->count[v] - s->failed[v], s->count[v])
                    : snprintf(text + len, sizeof text - len, " %s=%u", name, s->count[v]);
        if (n > 0 && (size_t)n < sizeof text - len)
            len += (size_t)n;
    }
    if (s->unknown) {
        int n = snprintf(text + len, sizeof text - len, " unknown=0/%u", s->unknown);
        if (n > 0 && (size_t)n < sizeof text - len)
            len += (size_t)n;
    }
    text[len] = '\0';
    if (failed)
        log_info("disconnect from [%s]%s commands=%u/%u", s->ip, text, total - failed, total);
    else
        log_info("disconnect from [%s]%s commands=%u", s->ip, text, total);
}

/* Frees the memory of a session whose connection is closed. */
void session_destroy(struct session *s)
{
    session_auth_abandon(s);
    free(s->user);
    txn_free(&s->txn);
    if (s->close_timer)
        event_free(s->close_timer);
    if (s->srv)
        smtpd_session_freed(s->srv, s);
    free(s);
}

/* Closes the socket; frees the session unless the writer still has its message. */
static void session_close_connection(struct session *s)
{
    if (!s->bev)
        return;
    log_disconnect(s);
    bufferevent_free(s->bev);
    s->bev = NULL;
    s->connection_closed = 1;
    if (s->close_timer)
        event_del(s->close_timer);
    if (s->srv)
        smtpd_connection_closed(s->srv, s, s->ip);
    if (!SESSION_WAITING(s))
        session_destroy(s);
}

static size_t output_pending(struct session *s)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));
    struct bufferevent *under = underlying(s);
    if (under)
        n += evbuffer_get_length(bufferevent_get_output(under));
    return n;
}

static void close_timer_cb(evutil_socket_t fd, short what, void *arg);

/* A closing session goes once its last reply has left, or after a grace period. */
static void try_close(struct session *s)
{
    if (!s->bev)
        return;
    if (output_pending(s) == 0 || time_mono_ms() >= s->close_deadline_ms) {
        session_close_connection(s);
        return;
    }
    /* Under TLS the filter's write callback only says the TLS layer took the
     * bytes: poll the socket's buffer until it is empty. */
    if (!s->close_timer && s->srv)
        s->close_timer = evtimer_new(s->srv->base, close_timer_cb, s);
    if (s->close_timer && !evtimer_pending(s->close_timer, NULL)) {
        struct timeval tv = {0, CLOSE_POLL_MS * 1000};
        evtimer_add(s->close_timer, &tv);
    }
}

static void close_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    try_close(arg);
}

void session_close_after_flush(struct session *s)
{
    if (!s->bev || s->closing)
        return;
    s->closing = 1;
    s->close_deadline_ms = time_mono_ms() + CLOSE_GRACE_MS;
    bufferevent_disable(s->bev, EV_READ);
}

/* The end of every callback into a session: a closing session may go now. */
static void session_settle(struct session *s)
{
    if (s->closing)
        try_close(s);
}

void session_drain(struct session *s)
{
    if (!s->bev || s->closing)
        return;
    if (s->state == SS_AUTH_LINE)
        session_auth_abandon(s); /* a client that types slowly does not hold up the shutdown */
    if (s->state == SS_CMD && !s->txn.active) {
        session_replyf(s, "421 4.3.2 %s Service shutting down, closing transmission channel",
                       s->srv->cfg.hostname);
        session_close_after_flush(s);
        session_settle(s);
    }
    /* Otherwise session_process says 421 when the transaction is over. */
}

void session_abort(struct session *s)
{
    if (session_auth_on_timer(s)) { /* only its own timer holds it: no callback to wait for */
        session_close_connection(s);
        s->state = SS_CMD;
        session_destroy(s);
        return;
    }
    if (SESSION_WAITING(s)) {
        /* A worker or the writer still holds the session: close the socket,
         * let go of the server, and leave the memory to the done callback
         * (its octets leave the server's budget now, with the server). */
        smtp_data_detach_budget(&s->txn.data);
        session_close_connection(s);
        smtpd_session_freed(s->srv, s);
        s->srv = NULL;
        return;
    }
    if (s->bev)
        session_close_connection(s);
    else
        session_destroy(s);
}

/* ------------------------------------------------------------------ input */

/* Takes one command line from the input. Returns 1 if something was done,
 * 0 when more input is needed. */
static int next_command(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t avail = evbuffer_get_length(in);
    if (avail == 0)
        return 0;
    /* The submission port takes longer lines: AUTH with its initial response,
     * and SASL responses. */
    size_t max = s->submission ? SMTP_AUTH_LINE_MAX : SMTP_PARAM_LINE_MAX;
    size_t window = avail < max ? avail : max;
    struct evbuffer_ptr end;
    evbuffer_ptr_set(in, &end, window, EVBUFFER_PTR_SET);
    struct evbuffer_ptr lf = evbuffer_search_range(in, "\n", 1, NULL, &end);

    if (s->discarding_line) {
        if (lf.pos < 0) {
            evbuffer_drain(in, window);
            return 1;
        }
        evbuffer_drain(in, (size_t)lf.pos + 1);
        s->discarding_line = 0;
        if (s->state == SS_AUTH_LINE) { /* a SASL response no credentials need */
            s->failed[SMTP_AUTH]++;
            session_auth_abandon(s);
        }
        session_error(s, smtp_reply_line_too_long);
        return 1;
    }
    if (lf.pos < 0) {
        if (avail < max)
            return 0; /* a partial line: wait for the rest */
        /* Too long to be a command: drop it as it comes, answer at its end. */
        s->discarding_line = 1;
        evbuffer_drain(in, window);
        return 1;
    }
    char line[SMTP_AUTH_LINE_MAX + 1];
    size_t n = (size_t)lf.pos + 1;
    evbuffer_remove(in, line, n);
    n--; /* the LF */
    if (n > 0 && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    if (s->state == SS_AUTH_LINE)
        session_auth_line(s, line, n);
    else
        session_command(s, line, n);
    /* A line may hold a password (AUTH PLAIN's initial response). */
    sodium_memzero(line, n);
    return 1;
}

/* Hands buffered input to the DATA/BDAT reader. 1 if something was consumed. */
static int feed_data(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    struct evbuffer_iovec v[16];
    int nv = evbuffer_peek(in, -1, NULL, v, 16);
    if (nv > 16)
        nv = 16;
    size_t used = 0;
    int segment_done = 0;
    for (int i = 0; i < nv && !segment_done; i++) {
        size_t n = smtp_data_feed(&s->txn.data, v[i].iov_base, v[i].iov_len);
        used += n;
        segment_done = smtp_data_segment_done(&s->txn.data);
    }
    evbuffer_drain(in, used);
    if (segment_done)
        session_data_segment_done(s);
    return used > 0 || segment_done;
}

/* Discards the octets of a BDAT chunk that belongs to no transaction. */
static int skip_chunk(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t avail = evbuffer_get_length(in);
    size_t n = s->skip_left < avail ? (size_t)s->skip_left : avail;
    evbuffer_drain(in, n);
    s->skip_left -= n;
    if (s->skip_left == 0) {
        s->state = SS_CMD;
        session_set_timeouts(s);
        session_error(s, s->skip_reply);
        return 1;
    }
    return n > 0;
}

void session_process(struct session *s)
{
    while (s->bev && !s->closing) {
        if (SESSION_WAITING(s))
            return;
        /* A client that does not read its replies gets no more of them, and
         * we stop reading from it (libevent would otherwise keep calling
         * read_cb while the input sits above its high-water mark). write_cb
         * resumes once the replies have gone. */
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) >= SMTPD_OUTPUT_MAX) {
            s->output_blocked = 1;
            bufferevent_disable(s->bev, EV_READ);
            return;
        }
        int progress;
        switch (s->state) {
        case SS_CMD:
        case SS_AUTH_LINE:
            progress = next_command(s);
            break;
        case SS_DATA:
        case SS_BDAT:
            progress = feed_data(s);
            break;
        case SS_SKIP:
            progress = skip_chunk(s);
            break;
        default:
            progress = 0;
            break;
        }
        if (!progress)
            break;
    }
    if (s->bev && !s->closing && s->srv && s->srv->draining && (s->state == SS_CMD || s->state == SS_AUTH_LINE) &&
        !s->txn.active)
        session_drain(s);
}

/* The writer's done callback is over: read again. */
void session_resume(struct session *s)
{
    if (!s->bev)
        return;
    s->output_blocked = 0;
    bufferevent_enable(s->bev, EV_READ);
    session_set_timeouts(s);
    session_process(s);
    session_settle(s);
}

/* ------------------------------------------------------------------ STARTTLS */

int session_start_tls(struct session *s)
{
    /* Anything the client sent after STARTTLS, before the handshake, was sent
     * in the clear and could have been injected by a man in the middle
     * (CVE-2011-0411, CVE-2021-38371): it is thrown away, never executed. */
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t junk = evbuffer_get_length(in);
    if (junk) {
        log_warn("discarding %zu octets sent in plaintext after STARTTLS from [%s]", junk, s->ip);
        evbuffer_drain(in, junk);
    }
    SSL *ssl = SSL_new(s->srv->tls);
    if (!ssl) {
        log_err("SSL_new failed for [%s]", s->ip);
        return -1;
    }
    struct bufferevent *plain = s->bev;
    /* The filter stops producing ciphertext while the socket's buffer is this
     * full, so the output bound of session_process holds under TLS too. The
     * socket side gets no read limit of its own: the filter suspends its
     * reading when the cleartext side is full, and a limit there would make
     * libevent re-run the filter's read callback in a loop. */
    bufferevent_setwatermark(plain, EV_WRITE, 0, SMTPD_OUTPUT_MAX);
    bufferevent_setwatermark(plain, EV_READ, 0, 0);
    /* On failure libevent may or may not have taken ssl; leaking it on an
     * out-of-memory path beats freeing it twice. */
    struct bufferevent *tls = bufferevent_openssl_filter_new(s->srv->base, plain, ssl,
                                                             BUFFEREVENT_SSL_ACCEPTING,
                                                             BEV_OPT_CLOSE_ON_FREE);
    if (!tls) {
        log_err("cannot start TLS for [%s]", s->ip);
        return -1;
    }
    /* A client that closes without close_notify has still said all it had to. */
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    s->bev = tls;
    setup_bev(s);
    s->tls = 1;
    /* RFC 3207 4.2: back to the state after the greeting; the client must EHLO again. */
    s->helo = 0;
    s->helo_name[0] = '\0';
    txn_reset(&s->txn);
    return 0;
}

static void log_tls_error(struct session *s)
{
    unsigned long e;
    char buf[256];
    int any = 0;
    while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        log_info("TLS error from [%s]: %s", s->ip, buf);
        any = 1;
    }
    if (!any && s->tls && !s->tls_info[0])
        log_info("TLS handshake with [%s] did not complete", s->ip);
}

/* ------------------------------------------------------------------ callbacks */

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct session *s = arg;
    session_process(s);
    session_settle(s);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct session *s = arg;
    if (s->closing) {
        try_close(s);
        return;
    }
    /* The output drained: commands held back by SMTPD_OUTPUT_MAX can go on. */
    if (s->output_blocked && !SESSION_WAITING(s)) {
        s->output_blocked = 0;
        bufferevent_enable(s->bev, EV_READ);
    }
    session_process(s);
    session_settle(s);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct session *s = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* The TLS handshake is complete. */
        SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
        if (ssl)
            smtpd_tls_describe(ssl, s->tls_info, sizeof s->tls_info);
        log_info("TLS connection established from [%s]: %s", s->ip, s->tls_info);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (SESSION_WAITING(s))
            return; /* the client waits for us, not we for it; resume re-arms */
        if ((what & BEV_EVENT_READING) && !s->closing) {
            log_info("timeout after %s from [%s]", s->last_verb, s->ip);
            session_replyf(s, "421 4.4.2 %s Error: timeout exceeded", s->srv->cfg.hostname);
            session_close_after_flush(s);
            session_settle(s);
            return;
        }
        /* A client that does not read what we write. */
        if (!s->closing)
            log_info("timeout while writing to [%s]", s->ip);
        session_close_connection(s);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (what & BEV_EVENT_ERROR)
            log_tls_error(s);
        if (!s->closing && (s->state != SS_CMD || s->txn.active))
            log_info("lost connection after %s from [%s]", s->last_verb, s->ip);
        session_close_connection(s);
    }
}
