/*
 * http_session.c — session cookies, tokens and CSRF for the HTTP API.
 *
 * A session is a 256-bit random token in an HttpOnly, SameSite=Strict cookie
 * (Secure and the __Host- prefix under TLS). The store keeps only its BLAKE2b
 * hash, with the user, a CSRF token, the login time (absolute expiry) and the
 * last request's time (idle expiry). Every state-changing request must echo
 * the CSRF token, which login returned in its JSON body, in X-CSRF-Token: a
 * page on another site can make the browser send the cookie but cannot read
 * the token. Comparisons of secrets run in constant time (sodium_memcmp).
 *
 * The parsers and decisions here are pure; http_session_load reads the store
 * and, at most once a minute per session, writes last_seen through the writer.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "http/http_internal.h"
#include "util/log.h"

const char *http_cookie_name(int tls)
{
    return tls ? "__Host-lb_session" : "lb_session";
}

void http_cookie_format(char *out, size_t outlen, const char *name, const char *value, int64_t max_age,
                        int tls)
{
    snprintf(out, outlen, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s", name, value,
             (long long)max_age, tls ? "; Secure" : "");
}

void http_token_new(char out[HTTP_TOKEN_HEX + 1])
{
    unsigned char raw[HTTP_TOKEN_HEX / 2];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, HTTP_TOKEN_HEX + 1, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
}

void http_token_hash(const char *token, char out[SESSION_HASH_SIZE])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, SESSION_HASH_SIZE, h, sizeof h);
}

int http_csrf_equal(const char *expected, const char *given)
{
    if (!expected || !given)
        return 0;
    size_t n = strlen(expected);
    /* The length of a CSRF token is no secret (always 64); only its content is. */
    if (n == 0 || strlen(given) != n)
        return 0;
    return sodium_memcmp(expected, given, n) == 0;
}

int http_session_expired(const struct store_session *s, int64_t now)
{
    if (now - s->created >= HTTP_SESSION_ABSOLUTE || now < s->created - 300)
        return 2;
    if (now - s->last_seen >= HTTP_SESSION_IDLE)
        return 1;
    return 0;
}

/* ------------------------------------------------------------------ writes */

struct session_job {
    char token_hash[SESSION_HASH_SIZE];
    int64_t now;
    int del;
};

static int session_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct session_job *j = arg;
    (void)bs;
    int rc = j->del ? store_session_del(st, j->token_hash) : store_session_touch(st, j->token_hash, j->now);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int http_session_load(struct http_request *req)
{
    char token[HTTP_TOKEN_HEX + 1];
    const char *cookies = http_header(req, "Cookie");
    if (http_cookie_find(cookies, http_cookie_name(req->tls), token, sizeof token) != 1 ||
        !http_token_valid(token))
        return -1;
    struct session_job job = {.now = req->now};
    http_token_hash(token, job.token_hash);
    sodium_memzero(token, sizeof token);
    if (store_session_get(req->st, job.token_hash, &req->session) != STORE_OK)
        return -1;
    int why = http_session_expired(&req->session, req->now);
    if (why == 0) {
        if (store_user_get_by_id(req->st, req->session.user_id, &req->user) != STORE_OK)
            return -1; /* the user row goes with its sessions: a race with user del */
        if (!req->user.active || req->user.suspended) {
            why = 3;
        } else {
            if (req->now - req->session.last_seen >= HTTP_SESSION_TOUCH &&
                http_write(req->srv, session_job, &job) == STORE_OK)
                req->session.last_seen = req->now;
            req->authenticated = 1;
            return 0;
        }
    }
    log_info("http: session of user %lld ended (%s), client=%s", (long long)req->session.user_id,
             why == 1 ? "idle" : why == 2 ? "expired" : "account suspended or inactive", req->client_ip);
    job.del = 1;
    (void)http_write(req->srv, session_job, &job);
    return -1;
}
