/*
 * http_server.c — the HTTP server on libmicrohttpd: listening (HTTPS when a
 * certificate is configured), request bodies under per-route limits, routing,
 * sessions and CSRF before any handler runs, JSON parsing, and every response
 * with the security headers. See http.h for the thread and write design.
 *
 * A request goes through three calls of MHD's access handler: the first, right
 * after the header, routes it and, for a route that takes a body, decides
 * whether the body may come at all, before a byte of it is read: a body
 * announced larger than the route allows gets its 413, a route that needs a
 * session its 401 (no valid session) or 403 (no CSRF token), a JSON route its
 * 415, and a body that does not fit the budget of bodies held in memory
 * (http_guard.c) its 503 (all clients) or 429 (this address). Answering then
 * makes MHD skip the body and close the connection after the answer, so what
 * a client announces costs us nothing. The middle calls collect the body up to
 * the route's limit (beyond it, or for an unknown route, the rest is read and
 * dropped, up to a bound past which the connection is closed); the last one
 * answers 404/405/413 or checks the session and the CSRF token again (the
 * first check is a gate; this one is what the handler relies on, so a session
 * ended while the body was coming is not used), parses the JSON and runs the
 * handler.
 *
 * Every connection is known to the guard (MHD_OPTION_NOTIFY_CONNECTION), which
 * gives its header, body and streamed reply deadlines that trickled bytes do
 * not extend; see http_guard.c.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "directory/directory.h"
#include "http/http_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/timeutil.h"

#define HTTP_MAX_DAEMONS (CONFIG_MAX_LISTEN * 2) /* an address may resolve to IPv4 and IPv6 */
#define HTTP_THREADS 4                           /* per listen socket */
#define HTTP_CONNECTION_LIMIT 512
#define HTTP_PER_IP_LIMIT 64
#define HTTP_CONNECTION_TIMEOUT 60    /* seconds of silence before MHD closes a connection */
#define HTTP_HEADER_MEMORY (64u << 10) /* request line and header, per connection */
/* Past its limit a body is read and dropped (so the client gets its 413) up to
 * this much more; beyond that the connection is closed without an answer. */
#define HTTP_DISCARD_MAX (4u << 20)

#define HTTP_STREAM_BLOCK (64u << 10) /* bytes asked of a streamed body per call */
#define HTTP_BUSY_RETRY 5             /* seconds, Retry-After of a 503/429 for the body budget */

/* HTTPS: TLS 1.2 and 1.3 only, forward-secret key exchange (ECDHE; TLS 1.3's
 * is always), AEAD ciphers only, our order first. GnuTLS priority syntax. */
static const char tls_priorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
                                     "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:"
                                     "%SERVER_PRECEDENCE";
_Static_assert(HTTP_STREAM_END == MHD_CONTENT_READER_END_OF_STREAM &&
                   HTTP_STREAM_ERROR == MHD_CONTENT_READER_END_WITH_ERROR,
               "http_internal.h's stream codes are libmicrohttpd's");

/* Images may come from anywhere: the reading pane's sandboxed frame inherits
 * this policy, and remote images in a mail are the user's choice ("Load
 * remote images"). The gate is the sanitiser, which writes no remote image
 * source (and no CSS url()) unless the user asked; everything else, scripts
 * first, stays 'self'. */
static const char csp[] = "default-src 'self'; img-src 'self' https: http:; frame-ancestors 'none'; "
                          "base-uri 'none'; form-action 'self'";

struct http_server {
    void (*on_queued)(void *arg, const char *queue_id); /* set before traffic; called on the loop */
    void *on_queued_arg;
    struct config cfg;
    struct store_writer *writer;
    struct blobstore *blobs; /* the writer's (blob_get is thread-safe) */
    struct MHD_Daemon *daemons[HTTP_MAX_DAEMONS];
    int listen_fds[HTTP_MAX_DAEMONS];
    size_t ndaemons;
    int tls;
    char *tls_cert, *tls_key; /* PEM, kept for MHD's lifetime */

    /* Read connections, one per thread: a request borrows one. */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    struct store **pool;
    size_t npool, nfree;
    struct store **free_list;

    /* Writes: no new ones once stopping; the loop waits for inflight == 0. */
    pthread_mutex_t lock;
    int stopping;
    unsigned writes_inflight;

    struct http_summary_cache *summaries;
    struct http_reset_mailer *reset_mailer;
    struct http_guard *guard; /* deadlines and the body budget */
};

/* Per request, MHD's con_cls. */
struct request_state {
    int method;
    struct http_route_match match;
    char *body;
    size_t len, cap, max;
    size_t dropped; /* bytes read past the limit */
    int too_big;
    int error;       /* 404 or 405: answered once the request is read (keeps the connection) */
    char allow[64];  /* 405 */
    struct http_conn *conn; /* the guard's view of the connection (may be NULL) */
    char ip[64];
    uint64_t reserved; /* bytes of the body budget held for this body */
};

static struct http_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Frees the body and gives its budget back: once its handler is done, or
 * when the request ends otherwise. */
static void body_release(struct http_server *srv, struct request_state *rs)
{
    free(rs->body);
    rs->body = NULL;
    rs->len = rs->cap = 0;
    if (rs->reserved)
        http_guard_release(srv->guard, rs->ip, rs->reserved);
    rs->reserved = 0;
}


struct http_summary_cache *http_summaries(struct http_server *srv)
{
    return srv->summaries;
}

struct http_reset_mailer *http_reset_mailer_of(struct http_server *srv)
{
    return srv->reset_mailer;
}

/* ------------------------------------------------------------------ store pool */

static struct store *pool_acquire(struct http_server *srv)
{
    pthread_mutex_lock(&srv->pool_lock);
    while (srv->nfree == 0)
        pthread_cond_wait(&srv->pool_cond, &srv->pool_lock);
    struct store *st = srv->free_list[--srv->nfree];
    pthread_mutex_unlock(&srv->pool_lock);
    return st;
}

static void pool_release(struct http_server *srv, struct store *st)
{
    pthread_mutex_lock(&srv->pool_lock);
    srv->free_list[srv->nfree++] = st;
    pthread_cond_signal(&srv->pool_cond);
    pthread_mutex_unlock(&srv->pool_lock);
}

/* ------------------------------------------------------------------ writes */

/* One write of a request: the job and its argument, and the wait for its commit. */
struct write_wait {
    struct http_server *srv;
    const char *queued_id; /* a message this write queues, to announce once committed */
    store_job_fn job;
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, rc;
};

/* On the writer thread, inside the group's transaction. */
static int write_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct write_wait *w = arg;
    return w->job(st, bs, w->arg);
}

/* On the daemon's loop (or in store_writer_stop): wakes the waiting request. */
static void write_done(int rc, void *arg)
{
    struct write_wait *w = arg;
    /* On the loop thread: the delivery engine may be told right here. */
    if (rc == STORE_OK && w->queued_id && w->srv->on_queued)
        w->srv->on_queued(w->srv->on_queued_arg, w->queued_id);
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int http_write(struct http_server *srv, store_job_fn job, void *arg)
{
    return http_write_queued(srv, job, arg, NULL);
}

int http_write_queued(struct http_server *srv, store_job_fn job, void *arg, const char *queue_id)
{
    struct write_wait w = {.srv = srv, .queued_id = queue_id, .job = job, .arg = arg, .rc = STORE_ERR};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    /* The stopping check and the submit are one step under srv->lock, so once
     * http_stop_accepting returns nothing new reaches the writer. */
    pthread_mutex_lock(&srv->lock);
    int rc = HTTP_WRITE_STOPPING;
    if (!srv->stopping && store_writer_submit(srv->writer, write_job, write_done, &w) == 0) {
        srv->writes_inflight++;
        rc = STORE_OK;
    }
    pthread_mutex_unlock(&srv->lock);
    if (rc == STORE_OK) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        rc = w.rc;
        pthread_mutex_unlock(&w.lock);
        pthread_mutex_lock(&srv->lock);
        srv->writes_inflight--;
        pthread_mutex_unlock(&srv->lock);
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return rc;
}

int http_idle(struct http_server *srv)
{
    if (!srv)
        return 1;
    pthread_mutex_lock(&srv->lock);
    int idle = srv->writes_inflight == 0;
    pthread_mutex_unlock(&srv->lock);
    return idle;
}

/* ------------------------------------------------------------------ request access */

const char *http_query(const struct http_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static void client_ip(struct MHD_Connection *c, char *out, size_t outlen)
{
    snprintf(out, outlen, "unknown");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    char host[64]; /* numeric only (NI_NUMERICHOST): an IPv6 address with a scope fits */
    if (getnameinfo(ci->client_addr, len, host, sizeof host, NULL, 0, NI_NUMERICHOST) != 0)
        return;
    /* A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d: count them as a.b.c.d. */
    snprintf(out, outlen, "%s", strncasecmp(host, "::ffff:", 7) == 0 && strchr(host + 7, '.') ? host + 7 : host);
}

/* ------------------------------------------------------------------ responses */

/* A streamed body as MHD sees it: the handler's reader, and the connection
 * whose stall clock every block taken resets. MHD calls the reader only while
 * the connection is open, so conn is valid there; the free callback may come
 * after the connection closed and does not touch it. */
struct stream_wrap {
    struct http_guard *guard;
    struct http_conn *conn;
    ssize_t (*read)(void *arg, uint64_t pos, char *buf, size_t max);
    void (*free)(void *arg);
    void *arg;
};

static ssize_t stream_wrap_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_wrap *w = cls;
    http_guard_progress(w->guard, w->conn);
    return w->read(w->arg, pos, buf, max);
}

static void stream_wrap_free(void *cls)
{
    struct stream_wrap *w = cls;
    w->free(w->arg);
    free(w);
}

static enum MHD_Result send_reply(struct http_server *srv, struct MHD_Connection *c, struct http_reply *rep)
{
    if (rep->status == 0)
        http_reply_error(rep, 500, "internal error");
    struct MHD_Response *resp;
    struct http_conn *conn = conn_of(c);
    int streamed = 0;
    if (rep->stream_read) { /* made while sent (chunked): MHD calls stream_free when done */
        struct stream_wrap *w = malloc(sizeof *w);
        resp = NULL;
        if (w) {
            *w = (struct stream_wrap){srv->guard, conn, rep->stream_read, rep->stream_free, rep->stream_arg};
            resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK, stream_wrap_read, w,
                                                     stream_wrap_free);
            if (!resp)
                free(w);
        }
        if (!resp)
            rep->stream_free(rep->stream_arg);
        rep->stream_read = NULL;
        streamed = 1;
    } else {
        resp = rep->body ? MHD_create_response_from_buffer(rep->len, rep->body, MHD_RESPMEM_MUST_FREE)
                         : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) {
        free(rep->body);
        rep->body = NULL;
        return MHD_NO;
    }
    rep->body = NULL; /* MHD's now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rep->content_type ? rep->content_type : "application/json");
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (srv->tls)
        MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
    if (rep->set_cookie[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, rep->set_cookie);
    if (rep->disposition[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, rep->disposition);
    if (rep->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
    if (rep->retry_after) {
        char s[24];
        snprintf(s, sizeof s, "%u", rep->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, s);
    }
    metrics_inc(METRIC_HTTP_REQUESTS);
    http_guard_phase(srv->guard, conn, streamed ? HTTP_CONN_STREAM : HTTP_CONN_BUSY);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rep->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* An answer before the body was read (or while dropping it): a JSON error,
 * with a code when given. */
static enum MHD_Result send_error_code(struct http_server *srv, struct MHD_Connection *c, int status,
                                       const char *code, const char *message, const char *allow,
                                       unsigned retry_after)
{
    struct http_reply rep = {0};
    if (code)
        http_reply_error_code(&rep, status, code, message);
    else
        http_reply_error(&rep, status, message);
    rep.retry_after = retry_after;
    if (allow)
        snprintf(rep.allow, sizeof rep.allow, "%s", allow);
    char ip[64];
    client_ip(c, ip, sizeof ip);
    log_info("http: client=%s, status=%d (%s)", ip, status, message);
    return send_reply(srv, c, &rep);
}

static enum MHD_Result send_error(struct http_server *srv, struct MHD_Connection *c, int status,
                                  const char *message, const char *allow)
{
    return send_error_code(srv, c, status, NULL, message, allow, 0);
}

/* 1 if the request says its body is JSON (application/json, any parameters). */
static int is_json_type(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* A request record of what the header says (no body yet). */
static void request_init(struct http_server *srv, struct MHD_Connection *c, const struct request_state *rs,
                         const char *url, struct http_request *req)
{
    *req = (struct http_request){
        .srv = srv,
        .conn = c,
        .method = rs->method,
        .path = url,
        .id = rs->match.id,
        .n = rs->match.n,
        .arg = {rs->match.arg[0], rs->match.arg[1]},
        .body = "",
        .blobs = srv->blobs,
        .tls = srv->tls,
        .now = time_now(),
    };
    snprintf(req->client_ip, sizeof req->client_ip, "%s", rs->ip);
}

/* What the route asks of the header: a session (401), an admin's or
 * operator's (403), the CSRF token for a state change (403), a JSON body type
 * (415). 0 when all is well, else the status with its stable code and message
 * in *code and *msg. Loads req's session and user. */
static int header_checks(const struct http_route *route, struct http_request *req, const char **code,
                         const char **msg)
{
    if ((route->flags & ROUTE_SESSION) && http_session_load(req) != 0) {
        *code = "not_logged_in";
        *msg = "not logged in";
        return 401;
    }
    int denied = (route->flags & ROUTE_SESSION) ? http_role_check(req->user.role, route->flags, req->method, code, msg)
                                                : 0;
    if (denied)
        return denied;
    if ((route->flags & ROUTE_SESSION) && http_method_changes_state(req->method) &&
        !http_csrf_equal(req->session.csrf, http_header(req, "X-CSRF-Token"))) {
        *code = "csrf";
        *msg = "missing or wrong CSRF token";
        return 403;
    }
    if ((route->flags & ROUTE_JSON) && !is_json_type(http_header(req, "Content-Type"))) {
        *code = "not_json";
        *msg = "the body must be application/json";
        return 415;
    }
    return 0;
}

/* The last call: session, CSRF, JSON, handler. */
static enum MHD_Result dispatch(struct http_server *srv, struct MHD_Connection *c, struct request_state *rs,
                                const char *url)
{
    const struct http_route *route = rs->match.route;
    struct http_request req;
    request_init(srv, c, rs, url, &req);
    req.body = rs->body ? rs->body : "";
    req.body_len = rs->len;
    struct http_reply rep = {0};
    req.st = pool_acquire(srv);

    /* Again, whatever the first call found: the session may have ended (or
     * the user been suspended) while the body was coming. */
    const char *code = NULL, *msg = NULL;
    int status = header_checks(route, &req, &code, &msg);
    if (status) {
        http_reply_error_code(&rep, status, code, msg);
    } else {
        int ok = 1;
        if (route->flags & ROUTE_JSON) {
            json_error_t jerr;
            req.json = json_loadb(req.body, req.body_len, JSON_REJECT_DUPLICATES, &jerr);
            if (!req.json || !json_is_object(req.json)) {
                http_reply_error(&rep, 400, req.json ? "the body must be a JSON object" : "bad JSON");
                ok = 0;
            }
        }
        if (ok)
            route->fn(&req, &rep);
    }
    pool_release(srv, req.st);
    json_decref(req.json);
    body_release(srv, rs); /* the handler is done with it */

    if (rep.status >= 400 || http_method_changes_state(req.method))
        log_info("http: client=%s, %s %s, user=%s, status=%d", req.client_ip, http_method_name(req.method),
                 route->pattern, req.authenticated ? req.user.email : "-", rep.status ? rep.status : 500);
    return send_reply(srv, c, &rep);
}

/* The first call, for a route that takes a body: may the body come? The
 * header checks (a gate: dispatch checks again), then the body budget for
 * what is announced: Content-Length, or the route's limit for a chunked body.
 * MHD_YES to read the body, else the answer was queued (MHD skips the body
 * and closes the connection after the answer). */
static enum MHD_Result body_gate(struct http_server *srv, struct MHD_Connection *c, struct request_state *rs,
                                 const char *url, int has_length, uint64_t length)
{
    const struct http_route *route = rs->match.route;
    if (route->flags & (ROUTE_SESSION | ROUTE_JSON)) {
        struct http_request req;
        request_init(srv, c, rs, url, &req);
        req.st = pool_acquire(srv);
        const char *code = NULL, *msg = NULL;
        int status = header_checks(route, &req, &code, &msg);
        pool_release(srv, req.st);
        if (status)
            return send_error_code(srv, c, status, code, msg, NULL, 0);
    }
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    uint64_t want = has_length ? length : te ? rs->max : 0;
    if (want == 0)
        return MHD_YES;
    int rc = http_guard_reserve(srv->guard, rs->ip, want);
    if (rc == HTTP_BUDGET_IP_FULL)
        return send_error_code(srv, c, 429, "too_many_uploads",
                               "too many request bodies in flight from your address, try again later", NULL,
                               HTTP_BUSY_RETRY);
    if (rc != 0)
        return send_error_code(srv, c, 503, "server_busy",
                               "too many request bodies in flight, try again later", NULL, HTTP_BUSY_RETRY);
    rs->reserved = want;
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_size,
                                 void **con_cls)
{
    struct http_server *srv = cls;
    struct request_state *rs = *con_cls;
    (void)version;

    if (!rs) { /* the header is in: route it */
        rs = calloc(1, sizeof *rs);
        if (!rs)
            return MHD_NO;
        *con_cls = rs;
        rs->conn = conn_of(c);
        http_guard_phase(srv->guard, rs->conn, HTTP_CONN_BODY);
        client_ip(c, rs->ip, sizeof rs->ip);
        rs->method = http_method_parse(method);
        int found = http_route_find(http_routes, http_nroutes, rs->method, url, &rs->match, rs->allow,
                                    sizeof rs->allow);
        if (found != ROUTE_FOUND) {
            rs->error = found == ROUTE_NO_PATH ? 404 : 405;
            rs->too_big = 1; /* whatever body comes is dropped */
            return MHD_YES;
        }
        rs->max = rs->match.route->body_max;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long n = 0;
        if (cl) {
            char *end;
            errno = 0;
            n = strtoull(cl, &end, 10);
            if (errno || end == cl || *end || n > rs->max)
                return send_error(srv, c, 413, "request body too large", NULL);
        }
        if (rs->max == 0) /* no body allowed: a chunked one is dropped, nothing to hold */
            return MHD_YES;
        return body_gate(srv, c, rs, url, cl != NULL, n);
    }

    if (*upload_size) { /* a piece of the body */
        size_t n = *upload_size;
        *upload_size = 0;
        http_guard_body(srv->guard, rs->conn, n);
        if (!rs->too_big && n > rs->max - rs->len) {
            rs->too_big = 1;
            body_release(srv, rs);
        }
        if (rs->too_big) {
            rs->dropped += n;
            return rs->dropped > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        if (rs->len + n + 1 > rs->cap) {
            /* Never more than the budget holds for it (plus the NUL): MHD
             * delivers no more than the Content-Length announced, and a
             * chunked body was counted at the route's limit. */
            size_t limit = (size_t)(rs->reserved ? rs->reserved : rs->max) + 1;
            size_t cap = rs->cap ? rs->cap : 4096;
            while (cap < rs->len + n + 1)
                cap *= 2;
            if (cap > limit)
                cap = limit;
            if (cap < rs->len + n + 1)
                return MHD_NO; /* cannot happen: the body is larger than what was counted */
            char *b = realloc(rs->body, cap);
            if (!b)
                return MHD_NO;
            rs->body = b;
            rs->cap = cap;
        }
        memcpy(rs->body + rs->len, upload_data, n);
        rs->len += n;
        rs->body[rs->len] = '\0';
        return MHD_YES;
    }

    http_guard_phase(srv->guard, rs->conn, HTTP_CONN_BUSY);
    if (rs->error == 404)
        return send_error(srv, c, 404, "not found", NULL);
    if (rs->error == 405)
        return send_error(srv, c, 405, "method not allowed", rs->allow);
    if (rs->too_big)
        return send_error(srv, c, 413, "request body too large", NULL);
    return dispatch(srv, c, rs, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    (void)toe;
    struct request_state *rs = *con_cls;
    if (rs) {
        body_release(srv, rs);
        free(rs);
        *con_cls = NULL;
    }
    /* The next request's header is due within HTTP_HEADER_TIMEOUT from now. */
    http_guard_phase(srv->guard, conn_of(c), HTTP_CONN_HEADER);
}

/* Every connection is registered with the guard before its first byte is
 * read, and unregistered before MHD closes its socket. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        char ip[64];
        client_ip(c, ip, sizeof ip);
        *socket_context = ci ? http_guard_conn_open(srv->guard, ci->connect_fd, ip) : NULL;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_guard_conn_close(srv->guard, *socket_context);
        *socket_context = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_warn("http: %s", msg);
}

/* ------------------------------------------------------------------ start and stop */

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len + 1 < cap || cap >= (1u << 20))
            break;
        char *b = realloc(buf, cap * 2);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf(err, errlen, "cannot read %s", path);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* Percent-decoding of the path and the query: http_percent_decode (http_parse.c). */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return http_percent_decode(s);
}

static int start_daemon(struct http_server *srv, int fd, char *err, size_t errlen)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (srv->tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_LISTEN_SOCKET, fd, NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTION_LIMIT, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_PER_IP_LIMIT, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONNECTION_TIMEOUT, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_HEADER_MEMORY, NULL},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls ? srv->tls_cert : NULL},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls ? srv->tls_key : NULL},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)tls_priorities},
        {MHD_OPTION_END, 0, NULL},
    };
    if (!srv->tls) /* the TLS options are for TLS daemons only */
        opts[6] = opts[7] = opts[8] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    /* MHD's threads inherit this thread's signal mask: signals are the loop's business. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
                         on_connection, srv, MHD_OPTION_UNESCAPE_CALLBACK,
                         unescape_keep_nul, NULL, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!d) {
        snprintf(err, errlen, "cannot start the HTTP server (libmicrohttpd refused its options%s)",
                 srv->tls ? "; is the certificate and key valid?" : "");
        return -1;
    }
    srv->daemons[srv->ndaemons] = d;
    srv->listen_fds[srv->ndaemons] = fd;
    srv->ndaemons++;
    return 0;
}

/* Binds every address host:port resolves to and starts a daemon on each. */
static int listen_on(struct http_server *srv, const struct config_listen *la, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(la->host, la->port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve HTTP listen address %s:%s: %s", la->host, la->port,
                 gai_strerror(gai));
        return -1;
    }
    int rc = 0;
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        char ip[NI_MAXHOST] = "?";
        getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof ip, NULL, 0, NI_NUMERICHOST);
        if (srv->ndaemons == HTTP_MAX_DAEMONS) {
            snprintf(err, errlen, "too many HTTP listen addresses");
            rc = -1;
            break;
        }
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            snprintf(err, errlen, "cannot listen for HTTP on [%s]:%s: %s", ip, la->port, strerror(errno));
            if (fd >= 0)
                close(fd);
            rc = -1;
            break;
        }
        if (start_daemon(srv, fd, err, errlen) != 0) {
            close(fd);
            rc = -1;
            break;
        }
        log_info("listening for HTTP%s on [%s]:%s", srv->tls ? "S" : "", ip, la->port);
    }
    freeaddrinfo(res);
    return rc;
}

struct http_server *http_start(const struct config *cfg, struct store_writer *writer, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot be initialised");
        return NULL;
    }
    struct http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->cfg = *cfg;
    srv->writer = writer;
    srv->blobs = store_writer_blobs(writer);
    pthread_mutex_init(&srv->pool_lock, NULL);
    pthread_cond_init(&srv->pool_cond, NULL);
    pthread_mutex_init(&srv->lock, NULL);
    srv->guard = http_guard_new(err, errlen);
    if (!srv->guard)
        goto fail;

    /* One read connection per thread that can run a handler. */
    size_t addrs = cfg->http_listen.count ? cfg->http_listen.count * 2 : 1;
    srv->npool = addrs * HTTP_THREADS;
    srv->pool = calloc(srv->npool, sizeof *srv->pool);
    srv->free_list = calloc(srv->npool, sizeof *srv->free_list);
    srv->summaries = http_summary_cache_new();
    if (!srv->pool || !srv->free_list || !srv->summaries) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < srv->npool; i++) {
        if (store_open(cfg, &srv->pool[i], err, errlen) != STORE_OK)
            goto fail;
        srv->free_list[srv->nfree++] = srv->pool[i];
    }

    /* Unknown users' logins check their password against this, so they take
     * as long as known users' (no user enumeration by timing); computed now
     * rather than on the first login. */
    http_static_init(cfg->web_root);
    if (!directory_dummy_hash()) {
        snprintf(err, errlen, "cannot compute a password hash (out of memory?)");
        goto fail;
    }
    srv->reset_mailer = http_reset_mailer_start(srv, &srv->cfg, err, errlen);
    if (!srv->reset_mailer)
        goto fail;

    if (cfg->tls_cert_file[0]) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(err, errlen, "tls_cert_file is set but libmicrohttpd was built without TLS");
            goto fail;
        }
        srv->tls_cert = read_file(cfg->tls_cert_file, err, errlen);
        if (!srv->tls_cert)
            goto fail;
        srv->tls_key = read_file(cfg->tls_key_file[0] ? cfg->tls_key_file : cfg->tls_cert_file, err, errlen);
        if (!srv->tls_key)
            goto fail;
        srv->tls = 1;
    }
    for (size_t i = 0; i < cfg->http_listen.count; i++)
        if (listen_on(srv, &cfg->http_listen.addr[i], err, errlen) != 0)
            goto fail;
    return srv;

fail:
    http_free(srv);
    return NULL;
}

void http_stop_accepting(struct http_server *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->lock);
    int was = srv->stopping;
    srv->stopping = 1;
    pthread_mutex_unlock(&srv->lock);
    if (was)
        return;
    for (size_t i = 0; i < srv->ndaemons; i++) {
        /* After quiescing the listen socket is ours to close. */
        MHD_socket fd = MHD_quiesce_daemon(srv->daemons[i]);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
        srv->listen_fds[i] = -1;
    }
}

void http_reload(struct http_server *srv, const struct config *cfg)
{
    if (!srv)
        return;
    if (memcmp(&cfg->http_listen, &srv->cfg.http_listen, sizeof cfg->http_listen) != 0 ||
        strcmp(cfg->tls_cert_file, srv->cfg.tls_cert_file) != 0 ||
        strcmp(cfg->tls_key_file, srv->cfg.tls_key_file) != 0)
        log_warn("reload: http_listen and the HTTPS certificate take effect after a restart");
    else if (srv->tls)
        log_info("reload: the HTTPS certificate is read at start; restart to use a renewed one");
}

void http_free(struct http_server *srv)
{
    if (!srv)
        return;
    http_stop_accepting(srv);
    for (size_t i = 0; i < srv->ndaemons; i++)
        MHD_stop_daemon(srv->daemons[i]);
    http_reset_mailer_stop(srv->reset_mailer);
    http_guard_free(srv->guard); /* after the daemons: they told it of every close */
    for (size_t i = 0; i < srv->npool; i++)
        if (srv->pool[i])
            store_close(srv->pool[i]);
    free(srv->pool);
    free(srv->free_list);
    http_summary_cache_free(srv->summaries);
    if (srv->tls_key) {
        sodium_memzero(srv->tls_key, strlen(srv->tls_key));
        free(srv->tls_key);
    }
    free(srv->tls_cert);
    pthread_mutex_destroy(&srv->pool_lock);
    pthread_cond_destroy(&srv->pool_cond);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

const struct config *http_config(const struct http_server *srv)
{
    return &srv->cfg;
}

void http_set_on_queued(struct http_server *srv, void (*fn)(void *arg, const char *queue_id), void *arg)
{
    srv->on_queued = fn;
    srv->on_queued_arg = arg;
}
