/*
 * smtpd.c — the SMTP server object: listeners, connection limits, the list
 * of sessions, reload and shutdown (see smtpd.h). The protocol itself is in
 * session*.c.
 *
 * Limits are checked at accept time, before any memory is spent on the
 * client: past smtp_max_connections, or smtp_client_limit sessions from one
 * address, the client gets a 421 written straight to the new socket, which is
 * closed at once. Port 25 and submission sessions share the limits.
 *
 * Message bodies in flight share a memory budget (data_budget.c) with a share
 * per client address, on both ports: past it a message is read to its end and
 * answered 452 4.3.1.
 *
 * The submission listeners (submission_listen) need a certificate: AUTH is
 * only offered after STARTTLS, so without one they could never be used, and
 * the server refuses to start (or to reload) rather than run a port that
 * cannot work.
 */
#include "smtpd/smtpd_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mail/message_view.h"
#include "store/store.h"
#include "util/log.h"

/* Buckets of the per-client table: sized for the default 10000 connections. */
#define CLIENT_BUCKETS 4096
#define LISTEN_BACKLOG 1024
/* After accept() fails (out of file descriptors): pause accepting this long. */
#define ACCEPT_PAUSE_MS 250

/* ------------------------------------------------------------------ backend */

static int dir_lookup_rcpt(void *arg, const char *addr, struct rcpt_lookup *out)
{
    struct smtpd *s = arg;
    return directory_lookup_rcpt(s->deps.store, addr, out);
}

static int dir_relay_networks(void *arg, const char *client_ip, int64_t *customers, size_t max)
{
    struct smtpd *s = arg;
    return directory_relay_networks(s->deps.store, client_ip, customers, max);
}

static int dir_relay_sender(void *arg, const int64_t *customers, size_t n, const char *sender, int64_t *customer_id)
{
    struct smtpd *s = arg;
    return directory_relay_sender(s->deps.store, customers, n, sender, customer_id);
}

static int dir_customer_owns(void *arg, int64_t customer_id, const char *domain)
{
    struct smtpd *s = arg;
    return directory_customer_owns_domain(s->deps.store, customer_id, domain);
}

static int queue_submit_job(void *arg, const struct queue_message *m, queue_submit_done done,
                            void *done_arg)
{
    struct smtpd *s = arg;
    return queue_submit(s->deps.writer, m, done, done_arg);
}

static int dir_login_user(void *arg, const char *login, struct store_user *u)
{
    struct smtpd *s = arg;
    return directory_login_user(s->deps.store, login, u);
}

/* The lockout's writer jobs: the login's strings are copied (the session may
 * go meanwhile; its auth state, which holds l, stays until done has run). */
struct login_job {
    struct smtpd_login *l;
    char login[SASL_AUTHCID_MAX + 1];
    char ip[64];
    store_done_fn done;
    void *done_arg;
};

static int login_job_run(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct login_job *j = arg;
    struct smtpd_login *l = j->l;
    if (l->step == SMTPD_LOGIN_SUCCEEDED)
        return directory_login_succeeded(st, l->user_id, &l->attempt, l->auth, l->now);
    if (l->step == SMTPD_LOGIN_FAILED)
        return directory_login_attempt_failed(st, &l->attempt);
    int r = directory_login_attempt_begin(st, &directory_lockout_default, j->login, j->ip, l->now, &l->attempt);
    if (r < 0)
        return STORE_ERR;
    l->gate = r;
    return STORE_OK;
}

static void login_job_done(int rc, void *arg)
{
    struct login_job *j = arg;
    store_done_fn done = j->done;
    void *done_arg = j->done_arg;
    free(j);
    done(rc, done_arg);
}

static int dir_login_record(void *arg, struct smtpd_login *l, store_done_fn done, void *done_arg)
{
    struct smtpd *s = arg;
    struct login_job *j = calloc(1, sizeof *j);
    if (!j)
        return -1;
    j->l = l;
    snprintf(j->login, sizeof j->login, "%s", l->login);
    snprintf(j->ip, sizeof j->ip, "%s", l->ip);
    j->done = done;
    j->done_arg = done_arg;
    if (store_writer_submit(s->deps.writer, login_job_run, login_job_done, j) != 0) {
        free(j);
        return -1;
    }
    return 0;
}

static int dir_owns_address(void *arg, struct store *st, const struct store_user *u, const char *addr)
{
    (void)arg;
    if (!st)
        return STORE_ERR;
    return directory_user_owns_address(st, u, addr);
}

static int dir_dkim_sign(void *arg, struct store *st, const char *domain, const unsigned char *msg, size_t len,
                         char **header, char *err, size_t errlen)
{
    (void)arg;
    *header = NULL;
    if (!st) {
        snprintf(err, errlen, "no store connection");
        return -1;
    }
    return directory_dkim_sign(st, domain, msg, len, header, err, errlen);
}

/* ------------------------------------------------------------------ accepting */

/* Numeric text of a peer address; an IPv4-mapped IPv6 address as plain IPv4. */
static void peer_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    snprintf(out, outlen, "unknown");
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6))
            inet_ntop(AF_INET, &a6->s6_addr[12], out, (socklen_t)outlen);
        else
            inet_ntop(AF_INET6, a6, out, (socklen_t)outlen);
    }
}

/* A one-line refusal on a socket we will not serve. The socket is new, so its
 * send buffer is empty and the write does not block; if it fails, so be it. */
static void refuse_fd(evutil_socket_t fd, const char *reply)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s\r\n", reply);
    if (n > 0) {
        ssize_t w = send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    evutil_closesocket(fd);
}

int smtpd_accept_fd(struct smtpd *s, evutil_socket_t fd, const struct sockaddr *sa, socklen_t salen,
                    int submission)
{
    (void)salen;
    char ip[64];
    peer_text(sa, ip, sizeof ip);
    char reply[512];
    if (s->draining) {
        snprintf(reply, sizeof reply, "421 4.3.2 %s Service shutting down", s->cfg.hostname);
        refuse_fd(fd, reply);
        return -1;
    }
    if (s->nconnections >= s->cfg.smtp_max_connections) {
        log_warn("connect from [%s]: %u connections open, smtp_max_connections reached", ip,
                 s->nconnections);
        snprintf(reply, sizeof reply, "421 4.7.0 %s Error: too many connections", s->cfg.hostname);
        refuse_fd(fd, reply);
        return -1;
    }
    if (s->cfg.smtp_client_limit &&
        client_table_count(&s->clients, ip) >= s->cfg.smtp_client_limit) {
        log_warn("connect from [%s]: %u connections from this address, smtp_client_limit reached",
                 ip, client_table_count(&s->clients, ip));
        snprintf(reply, sizeof reply, "421 4.7.0 %s Error: too many connections from [%s]",
                 s->cfg.hostname, ip);
        refuse_fd(fd, reply);
        return -1;
    }
    if (evutil_make_socket_nonblocking(fd) != 0 || client_table_add(&s->clients, ip) == 0) {
        evutil_closesocket(fd);
        return -1;
    }
    struct session *sess = session_new(s, fd, ip, submission);
    if (!sess) {
        log_err("out of memory for a session from [%s]", ip);
        client_table_remove(&s->clients, ip);
        evutil_closesocket(fd);
        return -1;
    }
    sess->next = s->sessions;
    if (s->sessions)
        s->sessions->prev = sess;
    s->sessions = sess;
    s->nsessions++;
    s->nconnections++;
    return 0;
}

void smtpd_connection_closed(struct smtpd *s, struct session *sess, const char *ip)
{
    (void)sess;
    s->nconnections--;
    client_table_remove(&s->clients, ip);
}

void smtpd_session_freed(struct smtpd *s, struct session *sess)
{
    if (sess->prev)
        sess->prev->next = sess->next;
    else
        s->sessions = sess->next;
    if (sess->next)
        sess->next->prev = sess->prev;
    sess->prev = sess->next = NULL;
    s->nsessions--;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    struct smtpd_listener *li = arg;
    smtpd_accept_fd(li->srv, fd, sa, (socklen_t)salen, li->submission);
}

static void resume_accepting(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct smtpd *s = arg;
    for (size_t i = 0; i < s->nlisteners; i++)
        evconnlistener_enable(s->listeners[i].l);
}

/* accept() failed, typically EMFILE: libevent would retry at once, in a loop.
 * Pause all listeners for a moment instead; sessions closing free descriptors. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    struct smtpd_listener *li = arg;
    struct smtpd *s = li->srv;
    int e = EVUTIL_SOCKET_ERROR();
    log_warn("accept failed: %s; pausing new connections for %d ms",
             evutil_socket_error_to_string(e), ACCEPT_PAUSE_MS);
    for (size_t i = 0; i < s->nlisteners; i++)
        evconnlistener_disable(s->listeners[i].l);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(s->accept_pause, &tv);
}

/* Binds every address host:port resolves to (IPv6 sockets are IPv6 only, so
 * "0.0.0.0:25" and "[::]:25" can be listed side by side). */
static int listen_on(struct smtpd *s, const struct config_listen *la, int submission, char *err,
                     size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(la->host, la->port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s:%s: %s", la->host, la->port,
                 gai_strerror(gai));
        return -1;
    }
    int rc = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (s->nlisteners == SMTPD_MAX_LISTENERS) {
            snprintf(err, errlen, "too many listen addresses");
            rc = -1;
            break;
        }
        unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
        if (ai->ai_family == AF_INET6)
            flags |= LEV_OPT_BIND_IPV6ONLY;
        struct smtpd_listener *li = &s->listeners[s->nlisteners];
        li->srv = s;
        li->submission = submission;
        li->l = evconnlistener_new_bind(s->base, accept_cb, li, flags, LISTEN_BACKLOG, ai->ai_addr,
                                        (int)ai->ai_addrlen);
        if (!li->l) {
            char ip[64];
            peer_text(ai->ai_addr, ip, sizeof ip);
            snprintf(err, errlen, "cannot listen on [%s]:%s: %s", ip, la->port, strerror(errno));
            rc = -1;
            break;
        }
        evconnlistener_set_error_cb(li->l, accept_error_cb);
        s->nlisteners++;
        char ip[64];
        peer_text(ai->ai_addr, ip, sizeof ip);
        log_info("listening for %s on [%s]:%s", submission ? "submission" : "SMTP", ip, la->port);
    }
    freeaddrinfo(res);
    return rc;
}

static void close_listeners(struct smtpd *s)
{
    for (size_t i = 0; i < s->nlisteners; i++)
        evconnlistener_free(s->listeners[i].l);
    s->nlisteners = 0;
    if (s->accept_pause)
        evtimer_del(s->accept_pause);
}

/* ------------------------------------------------------------------ public */

struct smtpd *smtpd_start_with(struct event_base *base, const struct config *cfg,
                               const struct smtpd_deps *deps, const struct smtpd_backend *backend,
                               char *err, size_t errlen)
{
    struct smtpd *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base = base;
    s->cfg = *cfg;
    s->deps = *deps;
    s->hard_error_limit = SMTPD_HARD_ERROR_LIMIT;
    if (backend) {
        s->backend = *backend;
    } else {
        s->backend.lookup_rcpt = dir_lookup_rcpt;
        s->backend.relay_networks = dir_relay_networks;
        s->backend.relay_sender = dir_relay_sender;
        s->backend.customer_owns = dir_customer_owns;
        s->backend.submit = queue_submit_job;
        s->backend.login_user = dir_login_user;
        s->backend.login_record = dir_login_record;
        s->backend.owns_address = dir_owns_address;
        s->backend.dkim_sign = dir_dkim_sign;
        s->backend.arg = s;
    }
    mail_init(); /* GMime, for the From rule on the workers: once per process, thread-safe */
    s->accept_pause = evtimer_new(base, resume_accepting, s);
    if (!s->accept_pause || client_table_init(&s->clients, CLIENT_BUCKETS) != 0) {
        snprintf(err, errlen, "out of memory");
        smtpd_free(s);
        return NULL;
    }
    data_budget_configure(&s->budget, &s->clients, cfg->max_message_size);
    log_info("message memory budget: %llu MB, %llu MB per client address",
             (unsigned long long)(s->budget.limit >> 20), (unsigned long long)(s->budget.client_limit >> 20));
    if (cfg->submission_listen.count && !cfg->tls_cert_file[0]) {
        snprintf(err, errlen, "submission_listen needs tls_cert_file and tls_key_file: AUTH is only offered "
                              "after STARTTLS");
        smtpd_free(s);
        return NULL;
    }
    if (cfg->tls_cert_file[0]) {
        s->tls = smtpd_tls_context(cfg->tls_cert_file, cfg->tls_key_file, err, errlen);
        if (!s->tls) {
            smtpd_free(s);
            return NULL;
        }
    }
    /* The submission port's workers (argon2id, DKIM). The unit tests, with a
     * backend of their own, get them without store connections. */
    if (cfg->submission_listen.count || backend) {
        s->work = smtpd_work_start(base, cfg, !backend, err, errlen);
        if (!s->work) {
            smtpd_free(s);
            return NULL;
        }
    }
    for (size_t i = 0; i < cfg->smtp_listen.count; i++)
        if (listen_on(s, &cfg->smtp_listen.addr[i], 0, err, errlen) != 0) {
            smtpd_free(s);
            return NULL;
        }
    for (size_t i = 0; i < cfg->submission_listen.count; i++)
        if (listen_on(s, &cfg->submission_listen.addr[i], 1, err, errlen) != 0) {
            smtpd_free(s);
            return NULL;
        }
    return s;
}

struct smtpd *smtpd_start(struct event_base *base, const struct config *cfg,
                          const struct smtpd_deps *deps, char *err, size_t errlen)
{
    return smtpd_start_with(base, cfg, deps, NULL, err, errlen);
}

void smtpd_stop_accepting(struct smtpd *s)
{
    close_listeners(s);
    s->draining = 1;
    struct session *next;
    for (struct session *sess = s->sessions; sess; sess = next) {
        next = sess->next;
        session_drain(sess);
    }
}

unsigned smtpd_session_count(const struct smtpd *s)
{
    return s->nsessions;
}

int smtpd_reload(struct smtpd *s, const struct config *cfg)
{
    if (s->cfg.submission_listen.count && !cfg->tls_cert_file[0]) {
        log_err("reload: the submission port is open and needs tls_cert_file");
        return -1;
    }
    SSL_CTX *tls = NULL;
    if (cfg->tls_cert_file[0]) {
        char err[512];
        tls = smtpd_tls_context(cfg->tls_cert_file, cfg->tls_key_file, err, sizeof err);
        if (!tls) {
            log_err("reload: %s", err);
            return -1;
        }
    }
    if (s->tls)
        SSL_CTX_free(s->tls);
    s->tls = tls;
    /* The listeners stay as they are; everything else applies from now on. */
    struct config_listen_list listen = s->cfg.smtp_listen, submission = s->cfg.submission_listen;
    s->cfg = *cfg;
    s->cfg.smtp_listen = listen;
    s->cfg.submission_listen = submission;
    data_budget_configure(&s->budget, &s->clients, cfg->max_message_size);
    return 0;
}

void smtpd_free(struct smtpd *s)
{
    if (!s)
        return;
    close_listeners(s);
    while (s->sessions)
        session_abort(s->sessions);
    /* Sessions whose AUTH or message a worker still holds are freed by the
     * done callbacks this runs. */
    smtpd_work_free(s->work);
    client_table_free(&s->clients);
    if (s->accept_pause)
        event_free(s->accept_pause);
    if (s->tls)
        SSL_CTX_free(s->tls);
    free(s);
}
