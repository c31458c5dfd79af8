/*
 * http_reset.c — POST /api/v1/password-reset/request (SPEC.md "HTTP API"): a
 * mail with a one-time link to a user's alternate address.
 *
 * Whoever knows an address may ask; the answer is always the same 202, so it
 * tells nobody whether the address exists, and it is given before anything
 * about the address is looked at: the handler only puts the request in a
 * bounded queue, and one mailer thread does the rest. So every request costs
 * the requester the same, whoever it names (the review timed the old handler,
 * which composed and queued the mail before answering, and told who has an
 * alternate address), and a flood fills a queue, not the writer.
 *
 * The mailer, per request: the per-client-address limit first (20 an hour,
 * counted in the store, so a restart resets nothing); then the user (active,
 * not suspended, with an alternate address) and the per-account limit (3 mails
 * an hour), both before anything is composed; then the mail — a random
 * 256-bit token valid for an hour, of which the store keeps only the SHA-256
 * (asking again voids the older token), a link built from the configuration
 * (web_url, or hostname and http_listen), never from the request's Host
 * header — and, in one writer job, the token and the queued mail (never
 * archived: the link is a credential).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "directory/directory.h"
#include "http/http_internal.h"
#include "mail/compose.h"
#include "queue/queue.h"
#include "util/addr.h"
#include "util/log.h"

#define RESET_TOKEN_LIFETIME 3600 /* seconds a reset link works */
#define RESET_WINDOW 3600         /* the rate limits count within this */
#define RESET_MAILS_PER_ACCOUNT 3
#define RESET_REQUESTS_PER_ADDR 20
#define RESET_QUEUE_MAX 256       /* requests waiting for the mailer; past it they are dropped (and logged) */

struct reset_request {
    struct reset_request *next;
    char email[ADDR_MAX + 1];
    char client_ip[64];
    int64_t now;
};

struct http_reset_mailer {
    struct http_server *srv;
    const struct config *cfg;
    struct store *st; /* the mailer's own read connection */
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct reset_request *head, *tail;
    size_t n;
    int stopping;
};

/* ------------------------------------------------------------------ the mail */

/* The webmail's address for links in mail: web_url, or one made from the
 * hostname and the first http_listen port ("https" when a certificate is
 * set). Never anything from the request. */
static void reset_base_url(const struct config *cfg, char *out, size_t outlen)
{
    if (cfg->web_url[0]) {
        snprintf(out, outlen, "%s", cfg->web_url);
        return;
    }
    int tls = cfg->tls_cert_file[0] != 0;
    const char *port = cfg->http_listen.count ? cfg->http_listen.addr[0].port : "";
    int default_port = !*port || strcmp(port, tls ? "443" : "80") == 0;
    snprintf(out, outlen, "%s://%s%s%s/", tls ? "https" : "http", cfg->hostname, default_port ? "" : ":",
             default_port ? "" : port);
}

/* Builds the reset mail for u (to u->alt_email) carrying token. 0 or -1. */
static int reset_mail(const struct config *cfg, const struct store_user *u, const char *token,
                      struct compose_result *out)
{
    char base[600], from[ADDR_MAX + 1], subject[ADDR_MAX + 64];
    reset_base_url(cfg, base, sizeof base);
    snprintf(from, sizeof from, "postmaster@%s", cfg->hostname);
    snprintf(subject, sizeof subject, "Password reset for %s", u->email);
    char text[2048]; /* the longest address, URL and host name fit */
    snprintf(text, sizeof text,
             "Someone, hopefully you, asked to reset the password of the webmail account\n"
             "%s.\n"
             "\n"
             "To choose a new password, open this link within an hour:\n"
             "\n"
             "%s#reset=%s\n"
             "\n"
             "The link works once. If you did not ask for this, ignore this message:\n"
             "your password stays as it is.\n"
             "\n"
             "-- \n"
             "lifeboat on %s\n",
             u->email, base, token, cfg->hostname);
    const char *to[1] = {u->alt_email};
    struct compose_msg m = {
        .from_addr = from,
        .from_name = "lifeboat",
        .to = to,
        .nto = 1,
        .subject = subject,
        .text = text,
        .message_id_domain = cfg->hostname,
    };
    const char *error = NULL;
    int rc = compose_build(&m, out, &error);
    sodium_memzero(text, sizeof text); /* it carries the token */
    if (rc != 0)
        log_err("http: cannot build the password reset mail for %s: %s", u->email, error ? error : "?");
    return rc;
}

/* ------------------------------------------------------------------ the mailer's writes */

/* The per-address limit, counted before anything else is done. */
struct addr_limit_job {
    const char *client_ip;
    int64_t now;
    int limited; /* out */
};

static int addr_limit_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct addr_limit_job *j = arg;
    (void)bs;
    unsigned n = 0;
    int64_t since = j->now - RESET_WINDOW;
    int rc = store_password_reset_request_purge(st, since);
    if (rc == STORE_OK)
        rc = store_password_reset_purge(st, j->now);
    if (rc == STORE_OK)
        rc = store_password_reset_request_count(st, j->client_ip, since, &n);
    if (rc != STORE_OK)
        return rc;
    /* Past the limit nothing more is recorded: a flood cannot grow the table. */
    if (n >= RESET_REQUESTS_PER_ADDR) {
        j->limited = 1;
        return STORE_OK;
    }
    return store_password_reset_request_add(st, j->client_ip, j->now);
}

/* The token and the mail, the account's limit checked again on the writer. */
struct send_job {
    struct store_password_reset token;
    struct queue_message *msg;
    int limited; /* out */
};

static int send_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct send_job *j = arg;
    unsigned n = 0;
    int rc = store_password_reset_count(st, j->token.user_id, j->token.created - RESET_WINDOW, &n);
    if (rc != STORE_OK)
        return rc;
    if (n >= RESET_MAILS_PER_ACCOUNT) {
        j->limited = 1;
        return STORE_OK;
    }
    rc = store_password_reset_void_user(st, j->token.user_id, j->token.created);
    if (rc == STORE_OK)
        rc = store_password_reset_add(st, &j->token);
    if (rc == STORE_OK)
        rc = queue_submit_run(st, bs, j->msg);
    return rc;
}

static void limit_reached(const struct store_user *u, const struct reset_request *r)
{
    log_warn("http: password reset for %s not sent: %d reset mails in the last hour already, client=%s", u->email,
             RESET_MAILS_PER_ACCOUNT, r->client_ip);
}

/* One request, on the mailer thread. */
static void reset_one(struct http_reset_mailer *m, const struct reset_request *r)
{
    struct addr_limit_job lj = {.client_ip = r->client_ip, .now = r->now};
    int rc = http_write(m->srv, addr_limit_job, &lj);
    if (rc != STORE_OK) {
        log_err("http: password reset request: store error %d, client=%s", rc, r->client_ip);
        return;
    }
    if (lj.limited) {
        log_warn("http: password reset request refused: more than %d from this client in an hour, client=%s",
                 RESET_REQUESTS_PER_ADDR, r->client_ip);
        return;
    }
    struct store_user u = {0};
    int found = directory_login_user(m->st, r->email, &u);
    if (found == STORE_ERR) {
        log_err("http: password reset request: cannot look the address up, client=%s", r->client_ip);
        return;
    }
    /* A directory user's password is reset in the directory, not here. */
    if (found == STORE_OK && directory_user_is_ldap(m->st, u.id) != 0) {
        log_info("http: password reset request for a directory user (or a store error): no mail, client=%s",
                 r->client_ip);
        return;
    }
    if (found != STORE_OK || !u.active || u.suspended || !u.alt_email[0]) {
        log_info("http: password reset request for no active user with an alternate address, client=%s",
                 r->client_ip);
        return;
    }
    unsigned sent = 0;
    if (store_password_reset_count(m->st, u.id, r->now - RESET_WINDOW, &sent) != STORE_OK) {
        log_err("http: password reset request: cannot count the reset mails of %s, client=%s", u.email,
                r->client_ip);
        return;
    }
    if (sent >= RESET_MAILS_PER_ACCOUNT) {
        limit_reached(&u, r);
        return;
    }

    struct send_job sj = {.token = {.user_id = u.id, .created = r->now, .expires = r->now + RESET_TOKEN_LIFETIME}};
    struct compose_result mail = {0};
    char token[HTTP_TOKEN_HEX + 1];
    http_token_new(token);
    http_reset_token_hash(token, sj.token.token_hash);
    int built = reset_mail(m->cfg, &u, token, &mail);
    sodium_memzero(token, sizeof token);
    if (built != 0) {
        compose_result_free(&mail);
        return;
    }
    struct queue_message msg = {
        .sender = "", /* like other mail of the system: a bounce of it would only loop */
        .rcpts = (const char *const *)mail.rcpts,
        .nrcpt = mail.nrcpts,
        .prefix = "Auto-Submitted: auto-generated\r\n",
        .body = mail.data,
        .body_len = mail.len,
        .client_addr = r->client_ip,
        .helo = "",
        .direction = DIR_OUTBOUND,
        .no_archive = 1, /* the link is a credential: no administrator may read it */
    };
    queueid_new(msg.id);
    sj.msg = &msg;
    rc = http_write_queued(m->srv, send_job, &sj, msg.id);
    sodium_memzero(mail.data, mail.len); /* it carries the token */
    size_t len = mail.len;
    compose_result_free(&mail);
    if (rc != STORE_OK)
        log_err("http: password reset request: store error %d, client=%s", rc, r->client_ip);
    else if (sj.limited)
        limit_reached(&u, r);
    else {
        log_info("%s: from=<>, size=%zu, nrcpt=1 (password reset mail for %s)", msg.id, len, u.email);
        log_info("http: password reset requested for %s, mail %s queued to its alternate address, client=%s",
                 u.email, msg.id, r->client_ip);
    }
}

static void *mailer_main(void *arg)
{
    struct http_reset_mailer *m = arg;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        while (!m->head && !m->stopping)
            pthread_cond_wait(&m->cond, &m->lock);
        if (m->stopping)
            break;
        struct reset_request *r = m->head;
        m->head = r->next;
        if (!m->head)
            m->tail = NULL;
        m->n--;
        pthread_mutex_unlock(&m->lock);
        reset_one(m, r);
        sodium_memzero(r, sizeof *r);
        free(r);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ------------------------------------------------------------------ start, stop */

struct http_reset_mailer *http_reset_mailer_start(struct http_server *srv, const struct config *cfg, char *err,
                                                  size_t errlen)
{
    struct http_reset_mailer *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->srv = srv;
    m->cfg = cfg;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    if (store_open(cfg, &m->st, err, errlen) != STORE_OK) {
        http_reset_mailer_stop(m);
        return NULL;
    }
    if (pthread_create(&m->thread, NULL, mailer_main, m) != 0) {
        snprintf(err, errlen, "cannot start the password reset mailer thread");
        http_reset_mailer_stop(m);
        return NULL;
    }
    m->started = 1;
    return m;
}

void http_reset_mailer_stop(struct http_reset_mailer *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stopping = 1;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    if (m->started)
        pthread_join(m->thread, NULL);
    if (m->n)
        log_warn("http: %zu password reset request(s) not handled before shutdown", m->n);
    while (m->head) {
        struct reset_request *r = m->head;
        m->head = r->next;
        sodium_memzero(r, sizeof *r);
        free(r);
    }
    if (m->st)
        store_close(m->st);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ------------------------------------------------------------------ the handler */

void http_h_password_reset_request(struct http_request *req, struct http_reply *rep)
{
    const char *email = json_string_value(json_object_get(req->json, "email"));
    if (!email) {
        http_reply_error(rep, 400, "email is required");
        return;
    }
    struct http_reset_mailer *m = http_reset_mailer_of(req->srv);
    struct reset_request *r = calloc(1, sizeof *r);
    if (r) {
        /* Too long to be anyone's: still counted against the client, like any request. */
        snprintf(r->email, sizeof r->email, "%s", strlen(email) <= ADDR_MAX ? email : "");
        snprintf(r->client_ip, sizeof r->client_ip, "%s", req->client_ip);
        r->now = req->now;
        pthread_mutex_lock(&m->lock);
        if (m->n < RESET_QUEUE_MAX && !m->stopping) {
            if (m->tail)
                m->tail->next = r;
            else
                m->head = r;
            m->tail = r;
            m->n++;
            pthread_cond_signal(&m->cond);
            r = NULL;
        }
        pthread_mutex_unlock(&m->lock);
        if (r) {
            log_warn("http: password reset request dropped: %d requests waiting already, client=%s",
                     RESET_QUEUE_MAX, req->client_ip);
            free(r);
        }
    }
    /* Whatever becomes of it, the requester learns nothing from the answer. */
    http_reply_json(rep, 202, json_pack("{s:b}", "ok", 1));
}
