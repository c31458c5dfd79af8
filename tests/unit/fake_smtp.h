/*
 * fake_smtp.h — an in-process SMTP server for the delivery tests, on the
 * test's event loop: it listens on 127.0.0.1 (ephemeral port), answers from a
 * small script (greeting, 4xx/5xx by recipient name, DATA replies, dropping
 * the connection at a command, STARTTLS real or broken) and records what it
 * saw: the commands, the messages (dot-unstuffed), the connections.
 *
 * Header-only (static functions), included by one test file each.
 */
#ifndef LB_TEST_FAKE_SMTP_H
#define LB_TEST_FAKE_SMTP_H

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <glib.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum tls_mode {
    TLS_NONE,
    TLS_REAL,   /* a real handshake with a self-signed certificate */
    TLS_BROKEN, /* answers the client hello with garbage */
    TLS_INJECT, /* sends more after its 220 (STARTTLS command injection) */
};

struct fake {
    struct event_base *base;
    struct evconnlistener *listener;
    char port[8];
    /* script */
    const char *greeting;  /* NULL: say nothing (a stalled server) */
    int pipelining;
    int tls;               /* enum tls_mode */
    SSL_CTX *ssl_ctx;
    const char *mail_reply;
    const char *data_reply;
    const char *dot_reply;
    const char *drop_on;   /* close the connection on receiving this command */
    const char *rcpt_all;  /* the reply to every RCPT (default: by name, see rcpt_reply) */
    /* what happened */
    int connections;
    int open_now, max_open; /* connections open at the same time */
    int tls_sessions;
    GString *log;          /* every command line received, '\n' separated */
    GString *data;         /* the last message as received, un-stuffed */
    int messages;
    GList *conns; /* open connections, closed by fake_stop */
};

struct fake_conn {
    struct fake *f;
    struct bufferevent *bev;
    int in_data;
    int closing;
    int broken_tls; /* waiting for the client hello to answer it with garbage */
    GString *data;
};

static inline void conn_free(struct fake_conn *c)
{
    c->f->conns = g_list_remove(c->f->conns, c);
    c->f->open_now--;
    bufferevent_free(c->bev);
    g_string_free(c->data, TRUE);
    free(c);
}

static inline void conn_write(struct fake_conn *c, const char *s)
{
    bufferevent_write(c->bev, s, strlen(s));
}

/* Returns 1: the caller must stop touching c. */
static inline int conn_close_when_flushed(struct fake_conn *c)
{
    c->closing = 1;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c);
    return 1;
}

static inline void conn_read(struct bufferevent *bev, void *arg);
static inline void conn_event(struct bufferevent *bev, short what, void *arg);

static inline void conn_written(struct bufferevent *bev, void *arg)
{
    struct fake_conn *c = arg;
    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

/* "temp..." recipients get a 4xx, "perm..." ones a 5xx, the others 250. */
static inline const char *rcpt_reply(const char *line)
{
    if (strstr(line, "temp"))
        return "450 4.2.0 <temp>: mailbox busy\r\n";
    if (strstr(line, "perm"))
        return "550 5.1.1 <perm>: no such user\r\n";
    return "250 2.1.5 Ok\r\n";
}

/* One line from the client. Returns 1 when c is gone or changed its transport. */
static inline int handle_line(struct fake_conn *c, char *line)
{
    struct fake *f = c->f;
    if (c->in_data) {
        if (strcmp(line, ".") == 0) {
            c->in_data = 0;
            g_string_assign(f->data, c->data->str);
            g_string_truncate(c->data, 0);
            f->messages++;
            conn_write(c, f->dot_reply ? f->dot_reply : "250 2.0.0 Ok: queued as FAKE\r\n");
            return 0;
        }
        g_string_append(c->data, line[0] == '.' ? line + 1 : line);
        g_string_append(c->data, "\r\n");
        return 0;
    }
    g_string_append_printf(f->log, "%s\n", line);
    if (f->drop_on && g_ascii_strncasecmp(line, f->drop_on, strlen(f->drop_on)) == 0) {
        conn_free(c);
        return 1;
    }
    if (!g_ascii_strncasecmp(line, "EHLO", 4)) {
        GString *r = g_string_new("250-fake.test\r\n");
        if (f->pipelining)
            g_string_append(r, "250-PIPELINING\r\n");
        if (f->tls != TLS_NONE && !bufferevent_openssl_get_ssl(c->bev))
            g_string_append(r, "250-STARTTLS\r\n");
        g_string_append(r, "250-8BITMIME\r\n250-SIZE 100000000\r\n250 ENHANCEDSTATUSCODES\r\n");
        conn_write(c, r->str);
        g_string_free(r, TRUE);
    } else if (!g_ascii_strncasecmp(line, "STARTTLS", 8)) {
        conn_write(c, "220 2.0.0 Ready to start TLS\r\n");
        if (f->tls == TLS_BROKEN) {
            c->broken_tls = 1;
            return 1;
        }
        if (f->tls == TLS_INJECT) {
            conn_write(c, "250 injected\r\n");
            return 0;
        }
        SSL *ssl = SSL_new(f->ssl_ctx);
        struct bufferevent *tls = bufferevent_openssl_filter_new(
            f->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
        assert_non_null(tls);
        c->bev = tls;
        bufferevent_setcb(tls, conn_read, conn_written, conn_event, c);
        bufferevent_enable(tls, EV_READ | EV_WRITE);
        f->tls_sessions++;
        return 1;
    } else if (!g_ascii_strncasecmp(line, "MAIL", 4)) {
        conn_write(c, f->mail_reply ? f->mail_reply : "250 2.1.0 Ok\r\n");
    } else if (!g_ascii_strncasecmp(line, "RCPT", 4)) {
        conn_write(c, f->rcpt_all ? f->rcpt_all : rcpt_reply(line));
    } else if (!g_ascii_strncasecmp(line, "DATA", 4)) {
        const char *r = f->data_reply ? f->data_reply : "354 End data with <CR><LF>.<CR><LF>\r\n";
        conn_write(c, r);
        c->in_data = r[0] == '3';
    } else if (!g_ascii_strncasecmp(line, "RSET", 4)) {
        conn_write(c, "250 2.0.0 Ok\r\n");
    } else if (!g_ascii_strncasecmp(line, "QUIT", 4)) {
        conn_write(c, "221 2.0.0 Bye\r\n");
        return conn_close_when_flushed(c);
    } else {
        conn_write(c, "502 5.5.2 Error: command not recognized\r\n");
    }
    return 0;
}

static inline void conn_read(struct bufferevent *bev, void *arg)
{
    struct fake_conn *c = arg;
    char *line;
    size_t len;
    if (c->broken_tls) {
        struct evbuffer *in = bufferevent_get_input(bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        conn_write(c, "this is not a TLS server hello\r\n");
        conn_close_when_flushed(c);
        return;
    }
    while (!c->closing &&
           (line = evbuffer_readln(bufferevent_get_input(bev), &len, EVBUFFER_EOL_CRLF_STRICT))) {
        int stop = handle_line(c, line);
        free(line);
        if (stop)
            return;
    }
}

static inline void conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct fake_conn *c = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_free(c);
}

static inline void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                             void *arg)
{
    struct fake *f = arg;
    (void)l;
    (void)sa;
    (void)salen;
    f->connections++;
    if (++f->open_now > f->max_open)
        f->max_open = f->open_now;
    struct fake_conn *c = calloc(1, sizeof *c);
    c->f = f;
    c->data = g_string_new(NULL);
    c->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
    f->conns = g_list_prepend(f->conns, c);
    bufferevent_setcb(c->bev, conn_read, conn_written, conn_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (f->greeting)
        conn_write(c, f->greeting);
}

static inline void fake_start(struct fake *f, struct event_base *base)
{
    memset(f, 0, sizeof *f);
    f->base = base;
    f->greeting = "220 fake.test ESMTP\r\n";
    f->pipelining = 1;
    f->log = g_string_new(NULL);
    f->data = g_string_new(NULL);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->listener = evconnlistener_new_bind(base, on_accept, f, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
                                          (struct sockaddr *)&sin, sizeof sin);
    assert_non_null(f->listener);
    socklen_t len = sizeof sin;
    getsockname(evconnlistener_get_fd(f->listener), (struct sockaddr *)&sin, &len);
    snprintf(f->port, sizeof f->port, "%d", ntohs(sin.sin_port));
}

static inline void fake_stop(struct fake *f)
{
    while (f->conns)
        conn_free(f->conns->data);
    evconnlistener_free(f->listener);
    g_string_free(f->log, TRUE);
    g_string_free(f->data, TRUE);
}

/* A port nobody listens on: bind, learn the port, close. */
static inline void closed_port(char out[8])
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    snprintf(out, 8, "%d", ntohs(sin.sin_port));
    close(fd);
}

/* A self-signed certificate for the fake server's real TLS. */
static inline SSL_CTX *server_tls(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fake.test", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, key, EVP_sha256());
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

#endif
