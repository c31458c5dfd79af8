/*
 * test_smtpd_harness.h — drives the real SMTP server (src/smtpd) over
 * socketpairs in one thread: a fake directory and queue behind it
 * (struct smtpd_backend), a client that pumps the server's event loop while it
 * waits, and an optional TLS client for STARTTLS. Shared by test_smtpd_session.c,
 * test_smtpd_script.c and test_smtpd_auth.c; static functions only.
 *
 * The fake directory for the submission port: alice@acme.test (alias
 * sales@acme.test) with password "alice-secret" (real argon2id hashes),
 * bob@acme.test suspended and carol@acme.test not activated (passwords
 * "bob-secret", "carol-secret"); a login is locked after FAKE_LOCKOUT_MAX
 * recorded failures.
 */
#ifndef TEST_SMTPD_HARNESS_H
#define TEST_SMTPD_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "smtpd/smtpd_int.h"
#include "store/store.h"
#include "util/log.h"

/* ------------------------------------------------------------ fake backend */

struct captured {
    char id[QUEUEID_SIZE];
    char sender[ADDR_MAX + 1];
    char rcpts[4096]; /* comma-separated */
    size_t nrcpt;
    char prefix[RECEIVED_MAX];
    char *body;
    size_t body_len;
    int direction;
    char client_addr[64];
    char helo[256];
    int has_sent_copy;
    int64_t sent_user_id, sent_domain_id;
    int64_t sender_customer_id;
};

enum fake_submit_mode {
    FAKE_SUBMIT_OK,     /* done(STORE_OK) on the next loop turn */
    FAKE_SUBMIT_FAIL,   /* done(STORE_ERR) on the next loop turn */
    FAKE_SUBMIT_REFUSE, /* queue_submit returns -1 */
    FAKE_SUBMIT_HOLD,   /* keep done until fake_complete() */
};

struct fake {
    struct event_base *base;
    enum fake_submit_mode mode;
    struct captured msgs[64];
    size_t nmsgs;
    unsigned lookups;
    unsigned relay_asks;
    /* a held or scheduled done */
    queue_submit_done done;
    void *done_arg;
    int pending_rc;
    unsigned queued_cb; /* on_queued calls */

    /* The submission port's directory. */
    struct fake_login {
        char login[SASL_AUTHCID_MAX + 1];
        unsigned failures;
    } logins[16];
    size_t nlogins;
    unsigned login_lookups, records_ok, records_failed, records_settled;
    int login_error;          /* login_user answers STORE_ERR */
    int hold_records;         /* keep login_record's done until fake_complete_record() */
    struct {
        store_done_fn done;
        void *arg;
    } held[8];
    size_t nheld;
    int dkim_mode;            /* 0 no key, 1 sign, -1 fail */
    unsigned dkim_calls;
    char dkim_domain[256];
    char *dkim_input;         /* the message as signed (malloc'd) */
};

#define FAKE_LOCKOUT_MAX 3

static __attribute__((unused)) int fake_lookup(void *arg, const char *addr, struct rcpt_lookup *out)
{
    struct fake *f = arg;
    f->lookups++;
    memset(out, 0, sizeof *out);
    const char *dom = addr_domain(addr);
    if (strcmp(dom, "fail.test") == 0)
        return STORE_ERR;
    if (strcmp(dom, "acme.test") == 0 || strcmp(dom, "open.test") == 0 || strcmp(dom, "localhost") == 0 ||
        strcmp(dom, "a") == 0 || strcmp(dom, "domain") == 0 || strcmp(dom, "foo.bar") == 0) {
        snprintf(out->domain.name, sizeof out->domain.name, "%s", dom);
        out->domain.recipient_check = strcmp(dom, "acme.test") == 0;
        if (strcmp(addr, "bob@acme.test") == 0 || strcmp(addr, "alice@acme.test") == 0) {
            out->kind = RCPT_KIND_USER;
            snprintf(out->user.email, sizeof out->user.email, "%s", addr);
        } else {
            out->kind = RCPT_KIND_UNKNOWN;
        }
        return STORE_OK;
    }
    out->kind = RCPT_KIND_NOT_HOSTED;
    return STORE_OK;
}

/* Customer 1 is acme.test (and its subdomains), customer 2 beta.test; the
 * client 192.0.2.99 (v4 or mapped) relays for customer 1. */
static __attribute__((unused)) int fake_customer_owns(void *arg, int64_t customer_id, const char *domain)
{
    (void)arg;
    size_t n = strlen(domain);
    int acme = strcmp(domain, "acme.test") == 0 || (n > 10 && strcmp(domain + n - 10, ".acme.test") == 0);
    int beta = strcmp(domain, "beta.test") == 0;
    return (customer_id == 1 && acme) || (customer_id == 2 && beta);
}

static __attribute__((unused)) int fake_relay_networks(void *arg, const char *ip, int64_t *customers, size_t max)
{
    struct fake *f = arg;
    f->relay_asks++;
    if (strcmp(ip, "192.0.2.66") == 0)
        return STORE_ERR;
    if (strcmp(ip, "192.0.2.99") != 0 || max == 0)
        return 0;
    customers[0] = 1;
    return 1;
}

static __attribute__((unused)) int fake_relay_sender(void *arg, const int64_t *customers, size_t n,
                                                     const char *sender, int64_t *customer_id)
{
    *customer_id = 0;
    for (size_t i = 0; i < n; i++)
        if (!*sender || fake_customer_owns(arg, customers[i], addr_domain(sender))) {
            *customer_id = customers[i];
            return DIRECTORY_RELAY_OK;
        }
    return DIRECTORY_RELAY_NOT_OWNED;
}

static __attribute__((unused)) void fake_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fake *f = arg;
    queue_submit_done done = f->done;
    f->done = NULL;
    if (done)
        done(f->pending_rc, f->done_arg);
}

static __attribute__((unused)) int fake_submit(void *arg, const struct queue_message *m, queue_submit_done done, void *darg)
{
    struct fake *f = arg;
    if (f->mode == FAKE_SUBMIT_REFUSE)
        return -1;
    if (f->nmsgs < sizeof f->msgs / sizeof f->msgs[0]) {
        struct captured *c = &f->msgs[f->nmsgs++];
        memcpy(c->id, m->id, sizeof c->id);
        snprintf(c->sender, sizeof c->sender, "%s", m->sender);
        c->rcpts[0] = '\0';
        for (size_t i = 0; i < m->nrcpt; i++) {
            if (i)
                strcat(c->rcpts, ",");
            strncat(c->rcpts, m->rcpts[i], sizeof c->rcpts - strlen(c->rcpts) - 2);
        }
        c->nrcpt = m->nrcpt;
        snprintf(c->prefix, sizeof c->prefix, "%s", m->prefix);
        c->body = malloc(m->body_len + 1);
        memcpy(c->body, m->body, m->body_len);
        c->body[m->body_len] = '\0';
        c->body_len = m->body_len;
        c->direction = m->direction;
        c->sender_customer_id = m->sender_customer_id;
        snprintf(c->client_addr, sizeof c->client_addr, "%s", m->client_addr);
        snprintf(c->helo, sizeof c->helo, "%s", m->helo);
        c->has_sent_copy = m->sent_copy != NULL;
        if (m->sent_copy) {
            c->sent_user_id = m->sent_copy->user_id;
            c->sent_domain_id = m->sent_copy->domain_id;
        }
    }
    f->done = done;
    f->done_arg = darg;
    f->pending_rc = f->mode == FAKE_SUBMIT_FAIL ? STORE_ERR : STORE_OK;
    if (f->mode != FAKE_SUBMIT_HOLD)
        event_base_once(f->base, -1, EV_TIMEOUT, fake_fire, f, NULL);
    return 0;
}

static __attribute__((unused)) void fake_complete(struct fake *f, int rc)
{
    f->pending_rc = rc;
    fake_fire(-1, 0, f);
}

/* ---- the fake directory of the submission port */

static struct fake_login *fake_login_slot(struct fake *f, const char *login)
{
    char canon[SASL_AUTHCID_MAX + 1];
    if (addr_canonical(login, canon, sizeof canon) != 0)
        snprintf(canon, sizeof canon, "%s", login);
    for (size_t i = 0; i < f->nlogins; i++)
        if (strcmp(f->logins[i].login, canon) == 0)
            return &f->logins[i];
    if (f->nlogins == sizeof f->logins / sizeof f->logins[0])
        return NULL;
    struct fake_login *l = &f->logins[f->nlogins++];
    snprintf(l->login, sizeof l->login, "%s", canon);
    l->failures = 0;
    return l;
}

/* Hashed once per process: argon2id is slow on purpose. */
static const char *fake_hash(int who)
{
    static char hashes[3][PASSWORD_HASH_MAX];
    static const char *const passwords[3] = {"alice-secret", "bob-secret", "carol-secret"};
    if (!hashes[who][0] && password_hash(passwords[who], hashes[who]) != 0)
        return "";
    return hashes[who];
}

static __attribute__((unused)) int fake_login_user(void *arg, const char *login, struct store_user *u)
{
    struct fake *f = arg;
    f->login_lookups++;
    if (f->login_error)
        return STORE_ERR;
    char canon[ADDR_MAX + 1];
    if (!addr_is_valid(login) || addr_canonical(login, canon, sizeof canon) != 0)
        return STORE_NOTFOUND;
    int who = strcmp(canon, "alice@acme.test") == 0 || strcmp(canon, "sales@acme.test") == 0 ? 0
              : strcmp(canon, "bob@acme.test") == 0                                         ? 1
              : strcmp(canon, "carol@acme.test") == 0                                       ? 2
                                                                                            : -1;
    if (who < 0)
        return STORE_NOTFOUND;
    static const char *const emails[3] = {"alice@acme.test", "bob@acme.test", "carol@acme.test"};
    memset(u, 0, sizeof *u);
    u->id = 7 + who;
    u->domain_id = 3;
    snprintf(u->email, sizeof u->email, "%s", emails[who]);
    snprintf(u->pw_hash, sizeof u->pw_hash, "%s", fake_hash(who));
    u->active = who != 2;
    u->suspended = who == 1;
    return STORE_OK;
}

struct fake_record {
    struct fake *f;
    store_done_fn done;
    void *arg;
};

static void fake_record_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fake_record r = *(struct fake_record *)arg;
    free(arg);
    r.done(STORE_OK, r.arg);
}

/* BEGIN counts the attempt as a failure unless locked; FAILED settles it;
 * SUCCEEDED takes it back and clears the account, as directory lockout.c does
 * (the fake has no attempts in flight, so never answers BUSY). */
static __attribute__((unused)) int fake_login_record(void *arg, struct smtpd_login *l, store_done_fn done,
                                                     void *done_arg)
{
    struct fake *f = arg;
    struct fake_login *slot = fake_login_slot(f, l->login);
    if (l->step == SMTPD_LOGIN_BEGIN) {
        int locked = slot && slot->failures >= FAKE_LOCKOUT_MAX;
        l->gate = locked ? DIRECTORY_LOGIN_LOCKED : DIRECTORY_LOGIN_GO;
        if (!locked) {
            f->records_failed++;
            if (slot)
                slot->failures++;
        }
    } else if (l->step == SMTPD_LOGIN_FAILED) {
        f->records_settled++;
    } else {
        f->records_ok++;
        f->records_failed--;
        if (slot)
            slot->failures = 0;
    }
    if (f->hold_records && f->nheld < sizeof f->held / sizeof f->held[0]) {
        f->held[f->nheld].done = done;
        f->held[f->nheld++].arg = done_arg;
        return 0;
    }
    struct fake_record *r = malloc(sizeof *r);
    *r = (struct fake_record){f, done, done_arg};
    event_base_once(f->base, -1, EV_TIMEOUT, fake_record_fire, r, NULL);
    return 0;
}

/* Lets the oldest held record finish. */
static __attribute__((unused)) void fake_complete_record(struct fake *f)
{
    if (!f->nheld)
        return;
    store_done_fn done = f->held[0].done;
    void *arg = f->held[0].arg;
    memmove(&f->held[0], &f->held[1], --f->nheld * sizeof f->held[0]);
    done(STORE_OK, arg);
}

/* Runs on the loop (MAIL FROM) and on a worker (the From header). */
static __attribute__((unused)) int fake_owns_address(void *arg, struct store *st, const struct store_user *u,
                                                     const char *addr)
{
    (void)arg;
    (void)st;
    if (strcmp(addr, "fail@acme.test") == 0)
        return STORE_ERR;
    if (strcmp(u->email, "alice@acme.test") == 0)
        return strcmp(addr, "alice@acme.test") == 0 || strcmp(addr, "sales@acme.test") == 0;
    return strcmp(addr, u->email) == 0;
}

/* On a worker. */
static __attribute__((unused)) int fake_dkim_sign(void *arg, struct store *st, const char *domain,
                                                  const unsigned char *msg, size_t len, char **header, char *err,
                                                  size_t errlen)
{
    (void)st;
    struct fake *f = arg;
    f->dkim_calls++;
    snprintf(f->dkim_domain, sizeof f->dkim_domain, "%s", domain);
    free(f->dkim_input);
    f->dkim_input = malloc(len + 1);
    memcpy(f->dkim_input, msg, len);
    f->dkim_input[len] = '\0';
    *header = NULL;
    if (f->dkim_mode < 0) {
        snprintf(err, errlen, "key file unreadable");
        return -1;
    }
    if (f->dkim_mode > 0)
        *header = strdup("DKIM-Signature: v=1; d=acme.test; s=fake;\r\n\tb=c2lnbmF0dXJl\r\n");
    return 0;
}

static __attribute__((unused)) void fake_on_queued(void *arg, const char *id)
{
    (void)id;
    struct fake *f = arg;
    f->queued_cb++;
}

/* ------------------------------------------------------------ the server */

struct harness {
    struct event_base *base;
    struct config cfg;
    struct smtpd *srv;
    struct fake fake;
};

/* cfg_tweak may change the configuration before the server starts. */
static __attribute__((unused)) struct harness *harness_new(void (*cfg_tweak)(struct config *))
{
    struct harness *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    /* The submission workers hand their results to the loop from their own
     * threads, as in lifeboatd. */
    evthread_use_pthreads();
    h->base = event_base_new();
    config_defaults(&h->cfg);
    snprintf(h->cfg.hostname, sizeof h->cfg.hostname, "mx.lifeboat.test");
    h->cfg.smtp_listen.count = 0; /* sessions come from socketpairs */
    if (cfg_tweak)
        cfg_tweak(&h->cfg);
    h->fake.base = h->base;
    struct smtpd_deps deps = {.on_queued = fake_on_queued, .on_queued_arg = &h->fake};
    struct smtpd_backend be = {
        .lookup_rcpt = fake_lookup,
        .relay_networks = fake_relay_networks,
        .relay_sender = fake_relay_sender,
        .customer_owns = fake_customer_owns,
        .submit = fake_submit,
        .arg = &h->fake,
        .login_user = fake_login_user,
        .login_record = fake_login_record,
        .owns_address = fake_owns_address,
        .dkim_sign = fake_dkim_sign,
    };
    char err[512];
    h->srv = smtpd_start_with(h->base, &h->cfg, &deps, &be, err, sizeof err);
    if (!h->srv) {
        fprintf(stderr, "smtpd_start_with: %s\n", err);
        event_base_free(h->base);
        free(h);
        return NULL;
    }
    return h;
}

static __attribute__((unused)) void harness_free(struct harness *h)
{
    if (!h)
        return;
    smtpd_free(h->srv);
    event_base_free(h->base);
    for (size_t i = 0; i < h->fake.nmsgs; i++)
        free(h->fake.msgs[i].body);
    free(h->fake.dkim_input);
    free(h);
}

/* ------------------------------------------------------------ the client */

struct client {
    struct harness *h;
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char in[256 * 1024];
    size_t inlen;
    int eof;
};

static __attribute__((unused)) void pump(struct harness *h)
{
    event_base_loop(h->base, EVLOOP_NONBLOCK);
}

/* A new session from ip, as if accepted by a listener. NULL if refused (then
 * refused_reply, if given, receives what the server wrote). */
static __attribute__((unused)) struct client *client_connect_port(struct harness *h, const char *ip,
                                                                   char *refused_reply, size_t rlen, int submission)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &a->sin_addr);
        sl = sizeof *a;
    }
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    if (smtpd_accept_fd(h->srv, sv[0], (struct sockaddr *)&ss, sl, submission) != 0) {
        if (refused_reply) {
            ssize_t n = recv(sv[1], refused_reply, rlen - 1, 0);
            refused_reply[n > 0 ? n : 0] = '\0';
        }
        close(sv[1]);
        return NULL;
    }
    struct client *c = calloc(1, sizeof *c);
    c->h = h;
    c->fd = sv[1];
    return c;
}

static __attribute__((unused)) struct client *client_connect_ex(struct harness *h, const char *ip,
                                                                 char *refused_reply, size_t rlen)
{
    return client_connect_port(h, ip, refused_reply, rlen, 0);
}

static __attribute__((unused)) struct client *client_connect(struct harness *h, const char *ip)
{
    return client_connect_ex(h, ip, NULL, 0);
}

/* A session on the submission port. */
static __attribute__((unused)) struct client *client_connect_submission(struct harness *h, const char *ip)
{
    return client_connect_port(h, ip, NULL, 0, 1);
}

static __attribute__((unused)) void client_free(struct client *c)
{
    if (!c)
        return;
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static __attribute__((unused)) void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static __attribute__((unused)) long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Reads what is there (through TLS when on), without blocking. */
static __attribute__((unused)) void client_fill(struct client *c)
{
    while (c->inlen < sizeof c->in - 1 && !c->eof) {
        ssize_t n;
        if (c->ssl) {
            int r = SSL_read(c->ssl, c->in + c->inlen, (int)(sizeof c->in - 1 - c->inlen));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    return;
                c->eof = 1;
                return;
            }
            n = r;
        } else {
            n = recv(c->fd, c->in + c->inlen, sizeof c->in - 1 - c->inlen, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (n <= 0) {
                c->eof = 1;
                return;
            }
        }
        c->inlen += (size_t)n;
    }
}

/* Writes everything, pumping the server while the socket is full. */
static __attribute__((unused)) void client_send_n(struct client *c, const char *data, size_t len)
{
    size_t off = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (off < len) {
        ssize_t n;
        if (c->ssl) {
            int r = SSL_write(c->ssl, data + off, (int)(len - off));
            n = r > 0 ? r : -1;
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    return;
                errno = EAGAIN;
            }
        } else {
            n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
        }
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return; /* the server closed */
        pump(c->h);
        client_fill(c); /* keep replies flowing so the server does not stall */
        if (elapsed_ms(&t0) > 20000)
            return;
        usleep(200);
    }
}

static __attribute__((unused)) void client_send(struct client *c, const char *s)
{
    client_send_n(c, s, strlen(s));
}

/* Length of the first complete reply in buf (multi-line: up to the line
 * "NNN " ), or 0. */
static __attribute__((unused)) size_t reply_len(const char *buf, size_t len)
{
    size_t start = 0;
    while (start < len) {
        const char *nl = memchr(buf + start, '\n', len - start);
        if (!nl)
            return 0;
        size_t end = (size_t)(nl - buf) + 1;
        if (end - start >= 4 && buf[start + 3] == ' ')
            return end;
        if (end - start < 4 || buf[start + 3] != '-')
            return end; /* not SMTP: return the line as it is */
        start = end;
    }
    return 0;
}

/* Waits up to timeout_ms for one complete reply; copies it to out (without the
 * final CRLF). Returns 0, or -1 on EOF/timeout (out gets "EOF" or "TIMEOUT"). */
static __attribute__((unused)) int client_reply_wait(struct client *c, char *out, size_t outlen, long timeout_ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        size_t n = reply_len(c->in, c->inlen);
        if (n) {
            size_t copy = n - 2 < outlen - 1 ? n - 2 : outlen - 1;
            if (n >= 2 && c->in[n - 2] != '\r')
                copy = n - 1 < outlen - 1 ? n - 1 : outlen - 1;
            memcpy(out, c->in, copy);
            out[copy] = '\0';
            memmove(c->in, c->in + n, c->inlen - n);
            c->inlen -= n;
            return 0;
        }
        if (c->eof || c->fd < 0) {
            snprintf(out, outlen, "EOF");
            return -1;
        }
        if (elapsed_ms(&t0) > timeout_ms) {
            snprintf(out, outlen, "TIMEOUT");
            return -1;
        }
        pump(c->h);
        client_fill(c);
        if (!reply_len(c->in, c->inlen)) {
            struct pollfd p = {c->fd, POLLIN, 0};
            poll(&p, 1, 1);
        }
    }
}

static __attribute__((unused)) int client_reply(struct client *c, char *out, size_t outlen)
{
    return client_reply_wait(c, out, outlen, 5000);
}

/* The next reply must start with prefix (e.g. "250 2.1.5" or "354"). */
#define expect_reply(c, prefix)                                                                    \
    do {                                                                                           \
        char reply_[8192];                                                                         \
        client_reply((c), reply_, sizeof reply_);                                                  \
        if (strncmp(reply_, (prefix), strlen(prefix)) != 0) {                                      \
            print_error("%s:%d: expected \"%s...\", got \"%s\"\n", __FILE__, __LINE__, (prefix),   \
                        reply_);                                                                   \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* The server closes the connection within timeout_ms (replies before it are
 * skipped). Returns 1 if it did. */
static __attribute__((unused)) int client_wait_eof(struct client *c, long timeout_ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!c->eof && elapsed_ms(&t0) < timeout_ms) {
        pump(c->h);
        c->inlen = 0;
        client_fill(c);
        struct pollfd p = {c->fd, POLLIN, 0};
        poll(&p, 1, 1);
    }
    return c->eof;
}

/* Runs the loop for a while (for timers and deferred callbacks). */
static __attribute__((unused)) void pump_for(struct harness *h, long ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (elapsed_ms(&t0) < ms) {
        pump(h);
        usleep(1000);
    }
}

/* ------------------------------------------------------------ TLS */

/* Writes a throw-away self-signed certificate and key (one PEM) into path. */
static __attribute__((unused)) int make_cert(const char *path)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!pkey || !x)
        return -1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"mx.lifeboat.test", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, pkey, EVP_sha256());
    FILE *f = fopen(path, "w");
    int rc = -1;
    if (f) {
        if (PEM_write_X509(f, x) == 1 && PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1)
            rc = 0;
        fclose(f);
    }
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}

/* Where the tests keep their certificate (make_cert writes it there), and the
 * config tweak for harness_new that makes the server offer STARTTLS with it. */
static __attribute__((unused)) char harness_cert_path[256];

static __attribute__((unused)) void harness_with_cert(struct config *cfg)
{
    snprintf(cfg->tls_cert_file, sizeof cfg->tls_cert_file, "%s", harness_cert_path);
}

/* Client side of STARTTLS after the 220: handshake while pumping the server. */
static __attribute__((unused)) int client_start_tls(struct client *c)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "mx.lifeboat.test");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return -1;
        if (elapsed_ms(&t0) > 5000)
            return -1;
        pump(c->h);
        usleep(200);
    }
}

#endif
