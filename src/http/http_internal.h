/*
 * http_internal.h — what the files of src/http share: the request and reply
 * records the handlers work on, the routing table, sessions, the lockout and
 * the synchronous writer wrapper.
 *
 * Handlers never see libmicrohttpd: http_server.c turns a request into a
 * struct http_request (method, path, the route's numeric ID, the body parsed
 * as JSON, the session's user), runs the handler, and turns its struct
 * http_reply into a response with the security headers. The pure parts
 * (routing, cookies, CSRF compare, expiry and lockout decisions, header
 * summaries) take plain buffers, so unit tests drive them directly.
 */
#ifndef LB_HTTP_HTTP_INTERNAL_H
#define LB_HTTP_HTTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "directory/directory.h"
#include "http/http.h"
#include "mail/compose.h"
#include "store/blob.h"
#include "store/store.h"
#include "store/writer.h"
#include "util/addr.h"

/* ------------------------------------------------------------------ limits */

#define HTTP_JSON_MAX (1u << 20)         /* request bodies of JSON routes */
#define HTTP_SEND_MAX (30u << 20)        /* POST /api/v1/send (attachments, base64) */
#define HTTP_SESSION_IDLE (30 * 60)      /* seconds without a request */
#define HTTP_SESSION_ABSOLUTE (12 * 3600) /* seconds since login, whatever the activity */
#define HTTP_SESSION_TOUCH 60            /* last_seen is written at most this often */
#define HTTP_LIST_LIMIT_MAX 200          /* messages per page */

/* ------------------------------------------------------------------ the guard (http_guard.c) */

/* Request bodies are held in memory until their handler runs: at most this
 * much of them at once, all clients together and per client address. A body
 * is counted at its announced Content-Length (a chunked one at its route's
 * limit) before a byte of it is read; over budget, the request is answered
 * 503 (all) or 429 (the address) at once. */
#define HTTP_BODY_BUDGET (256u << 20)
#define HTTP_BODY_BUDGET_PER_IP (64u << 20)

/* Deadlines of a connection's phases (libmicrohttpd's own timeout is reset by
 * every byte). A request header must be complete within HTTP_HEADER_TIMEOUT
 * of the connection's start or its previous request's end (this is also how
 * long an idle keep-alive connection stays); a body must arrive at
 * HTTP_BODY_MIN_RATE on average once HTTP_BODY_GRACE has passed; a streamed
 * response whose client takes no block for HTTP_STREAM_STALL is ended. The
 * connection is then closed without an answer. */
#define HTTP_HEADER_TIMEOUT 10    /* seconds */
#define HTTP_BODY_GRACE 10        /* seconds */
#define HTTP_BODY_MIN_RATE 8192u  /* bytes per second */
#define HTTP_STREAM_STALL 20      /* seconds */

enum http_conn_phase {
    HTTP_CONN_HEADER = 1, /* waiting for a request header */
    HTTP_CONN_BODY,       /* the header is in, the body arriving */
    HTTP_CONN_BUSY,       /* a handler runs or a buffered reply is sent: no deadline of ours */
    HTTP_CONN_STREAM,     /* a streamed reply (stream_read) is sent */
};

/* One connection as the guard sees it (owned by the guard, under its lock). */
struct http_conn {
    struct http_conn *prev, *next;
    int fd;
    char ip[64];
    int phase;        /* enum http_conn_phase */
    int64_t since;    /* monotonic ms: the phase's start */
    uint64_t bytes;   /* HTTP_CONN_BODY: bytes of the body so far */
    int64_t progress; /* HTTP_CONN_STREAM: monotonic ms of the last block taken */
    int cut;          /* shut down already */
    unsigned served;  /* requests that ended on this connection */
};

/* 0 while c is within its phase's deadline at now (monotonic ms), else the
 * phase whose deadline it missed. Pure. */
int http_conn_overdue(const struct http_conn *c, int64_t now);

/* Bytes of request bodies held, in total and per client address. */
struct http_budget {
    uint64_t total, max_total, max_per_ip;
    struct http_budget_ip {
        char ip[64];
        uint64_t bytes;
    } *ips; /* only addresses holding bytes */
    size_t n, cap;
};
enum { HTTP_BUDGET_FULL = 1, HTTP_BUDGET_IP_FULL = 2 };
/* Takes n bytes for ip: 0, HTTP_BUDGET_FULL (all clients would hold more than
 * max_total), HTTP_BUDGET_IP_FULL (ip would hold more than max_per_ip; checked
 * second), -1 out of memory. Nothing is taken unless 0. No locks, no clock. */
int http_budget_take(struct http_budget *b, const char *ip, uint64_t n);
/* Gives back n bytes that http_budget_take took for ip. */
void http_budget_give(struct http_budget *b, const char *ip, uint64_t n);
void http_budget_clear(struct http_budget *b);

/* The guard: the budget and the connections, with a watchdog thread that
 * shuts down (shutdown(2)) the socket of a connection past its deadline.
 * Thread-safe. */
struct http_guard;
struct http_guard *http_guard_new(char *err, size_t errlen);
/* Stops the watchdog. Call after the daemons are stopped. */
void http_guard_free(struct http_guard *g);
/* A new connection (phase HTTP_CONN_HEADER); NULL when out of memory (logged;
 * every call below then does nothing). Close it before its socket closes. */
struct http_conn *http_guard_conn_open(struct http_guard *g, int fd, const char *ip);
void http_guard_conn_close(struct http_guard *g, struct http_conn *c);
/* Enters a phase (its clock starts now). */
void http_guard_phase(struct http_guard *g, struct http_conn *c, int phase);
/* n more bytes of the body arrived. */
void http_guard_body(struct http_guard *g, struct http_conn *c, size_t n);
/* The client took a block of the streamed reply. */
void http_guard_progress(struct http_guard *g, struct http_conn *c);
/* http_budget_take/give on the guard's budget. */
int http_guard_reserve(struct http_guard *g, const char *ip, uint64_t n);
void http_guard_release(struct http_guard *g, const char *ip, uint64_t n);

/* ------------------------------------------------------------------ routing */

enum http_method {
    HTTP_OTHER = 0,
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_PATCH,
    HTTP_DELETE,
};

/* "GET" -> HTTP_GET ...; anything else HTTP_OTHER. */
int http_method_parse(const char *s);
const char *http_method_name(int method);
/* POST, PUT, PATCH, DELETE (and anything unknown) change state: CSRF applies. */
int http_method_changes_state(int method);

struct http_request;
struct http_reply;
typedef void (*http_handler_fn)(struct http_request *req, struct http_reply *rep);

enum http_route_flags {
    ROUTE_SESSION = 1, /* needs a logged-in session (401 without) */
    ROUTE_JSON = 2,    /* the body is a JSON object (400 if not) */
    /* An admin's or operator's session (403 for a user), checked with the
     * session, before the body and the handler: the role a route needs is
     * said here, in the table, not re-checked by hand in each handler. */
    ROUTE_ADMIN = 4 | ROUTE_SESSION,
    /* An operator's (running the service: customers, subscriptions, adding
     * and deleting domains). */
    ROUTE_OPERATOR = 8 | ROUTE_ADMIN,
};

/* Whether role may use a route with these flags with method (the roles'
 * table, http_roles.c): 0, or 403 with the stable code ("admin_only",
 * "operator_only") and message. Pure. */
int http_role_check(int role, unsigned route_flags, int method, const char **code, const char **msg);

struct http_route {
    int method;          /* enum http_method; a GET route also answers HEAD */
    const char *pattern; /* "/api/v1/messages/:id/raw": ":id" is one positive decimal; ":file"
                          * one plain file name (the web app's folders); ":s" any
                          * segment (an address, a domain, a name; at most
                          * HTTP_ROUTE_ARGS of them) */
    http_handler_fn fn;
    unsigned flags;
    size_t body_max;     /* bytes; 0: no body allowed */
};

enum { ROUTE_FOUND = 0, ROUTE_NO_PATH = 1, ROUTE_NO_METHOD = 2 };

#define HTTP_ROUTE_ARGS 2
#define HTTP_ROUTE_ARG_MAX 320 /* bytes of an ":s" segment, with its NUL (an address fits) */

struct http_route_match {
    const struct http_route *route;
    int64_t id; /* the ":id" segment, 0 if the pattern has none */
    int64_t n;  /* the ":n" segment, 0 if the pattern has none */
    /* The ":s" segments in order ("" past those of the pattern): any bytes but
     * '/' and control characters, the path already percent-decoded. */
    char arg[HTTP_ROUTE_ARGS][HTTP_ROUTE_ARG_MAX];
};

/* Finds the route for method and path (no query string). ROUTE_NO_METHOD when
 * the path exists with other methods: allow (may be NULL) gets them,
 * "GET, HEAD, PATCH", for the 405's Allow header. Pure. */
int http_route_find(const struct http_route *table, size_t n, int method, const char *path,
                    struct http_route_match *m, char *allow, size_t allowlen);

/* Percent-decodes s in place (the path and the query's names and values,
 * libmicrohttpd's unescape callback) and returns its new length. "%00" is
 * left as it is, never a NUL that would cut the string. Pure (http_parse.c). */
size_t http_percent_decode(char *s);

/* The daemon's table (http_routes.c). */
extern const struct http_route http_routes[];
extern const size_t http_nroutes;

/* ------------------------------------------------------------------ requests and replies */

struct http_server;

struct http_request {
    struct http_server *srv;
    void *conn; /* struct MHD_Connection, for http_query/http_header only */
    int method;
    const char *path;
    int64_t id;
    int64_t n; /* the ":n" segment (an attachment number) */
    const char *arg[HTTP_ROUTE_ARGS]; /* the ":s" segments ("" when the pattern has fewer) */
    const char *body;
    size_t body_len;
    json_t *json;        /* ROUTE_JSON: the body (an object); owned by the server */
    struct store *st;    /* this thread's read connection */
    struct blobstore *blobs;
    char client_ip[64];
    int tls;
    int64_t now;
    /* ROUTE_SESSION: the session and its user, checked. */
    int authenticated;
    struct store_session session;
    struct store_user user;
};

/* A query argument (decoded) or a request header, NULL when absent. */
const char *http_query(const struct http_request *req, const char *key);
/* A whole number from min to max (digits only) in the query argument key;
 * absent or empty: dflt. 0, or -1 with a 400 (code "invalid") naming it. */
struct http_reply;
int http_query_number(const struct http_request *req, const char *key, long long dflt, long long min,
                      long long max, long long *out, struct http_reply *rep);
const char *http_header(const struct http_request *req, const char *name);

struct http_reply {
    int status;
    const char *content_type;
    char *body; /* malloc'd, freed by the server */
    size_t len;
    char set_cookie[512];   /* "" : none */
    char disposition[256];  /* Content-Disposition, "" : none */
    char allow[64];         /* 405 */
    unsigned retry_after;   /* 429, seconds; 0: none */
    /* A body made while it is sent (the archive's mbox export) instead of
     * body/len: stream_read fills buf with up to max bytes and returns how
     * many, HTTP_STREAM_END or HTTP_STREAM_ERROR (on libmicrohttpd's thread,
     * as its content reader; pos counts the bytes sent so far). stream_free
     * gets stream_arg once the response is done with, sent or not. */
    ssize_t (*stream_read)(void *arg, uint64_t pos, char *buf, size_t max);
    void (*stream_free)(void *arg);
    void *stream_arg;
};
#define HTTP_STREAM_END ((ssize_t)-1)   /* MHD_CONTENT_READER_END_OF_STREAM */
#define HTTP_STREAM_ERROR ((ssize_t)-2) /* MHD_CONTENT_READER_END_WITH_ERROR: the connection is cut */

/* Sets a JSON reply; takes the reference of value (NULL: 500). */
void http_reply_json(struct http_reply *rep, int status, json_t *value);
/* {"error": "...", "code": "..."} with the status, the code the status's own
 * ("bad_request", "not_found", "forbidden", "too_many_requests", "internal"...);
 * a path that needs a finer one says it with http_reply_error_code. */
void http_reply_error(struct http_reply *rep, int status, const char *message);
/* {"error": "...", "code": "..."}: code is a stable machine-readable word
 * (snake_case) for clients to decide on; message is for people. */
void http_reply_error_code(struct http_reply *rep, int status, const char *code, const char *message);
/* A body taken over as is (malloc'd; freed by the server). */
void http_reply_raw(struct http_reply *rep, int status, const char *content_type, char *body, size_t len);
/* A JSON string of text from outside (mail headers, SMTP replies, names):
 * invalid UTF-8 is replaced (U+FFFD) rather than refused. Never NULL but out
 * of memory (json_pack then fails and the reply is a 500). */
json_t *http_json_text(const char *s);

/* ------------------------------------------------------------------ cookies, tokens, CSRF */

#define HTTP_TOKEN_HEX 64 /* 256-bit tokens in hex */

/* The session cookie's name: "__Host-lb_session" under TLS (the browser then
 * insists on Secure, Path=/ and no Domain), "lb_session" otherwise. */
const char *http_cookie_name(int tls);

/* Finds cookie name in a Cookie: header value ("a=1; b=2"). 1 and the value in
 * out when it occurs exactly once with a value that fits; 0 when absent; -1
 * when it occurs twice (a cookie planted for a sub-path or a parent domain
 * must not win by order) or the value does not fit. Pure (http_parse.c). */
int http_cookie_find(const char *header, const char *name, char *out, size_t outlen);

/* Set-Cookie value for the session: HttpOnly; SameSite=Strict; Path=/;
 * Secure when tls; Max-Age=max_age (0 deletes it). */
void http_cookie_format(char *out, size_t outlen, const char *name, const char *value, int64_t max_age,
                        int tls);

/* A fresh 256-bit random token in lower-case hex (libsodium). */
void http_token_new(char out[HTTP_TOKEN_HEX + 1]);
/* 1 if s is HTTP_TOKEN_HEX lower-case hex digits. Pure (http_parse.c). */
int http_token_valid(const char *s);
/* What the store keeps of a session token: hex BLAKE2b-256 of it. */
void http_token_hash(const char *token, char out[SESSION_HASH_SIZE]);
/* 1 when given equals expected; time independent of where they differ. Pure. */
int http_csrf_equal(const char *expected, const char *given);

/* 0 live, 1 idle too long, 2 past its absolute lifetime. Pure. */
int http_session_expired(const struct store_session *s, int64_t now);

/* Resolves the request's session cookie into req->session and req->user:
 * 0 when valid (a stale last_seen is refreshed), -1 when there is no valid
 * session (an expired one is deleted). Checks that the user still exists, is
 * active and not suspended. */
int http_session_load(struct http_request *req);

/* ------------------------------------------------------------------ the body of POST /api/v1/send */

#define HTTP_SEND_ATTACHMENTS_MAX 100

/* The fields of a send request. The strings point into the JSON object it was
 * parsed from; the lists and the decoded attachments are malloc'd (free with
 * http_send_req_free). */
struct http_send_req {
    char from[ADDR_MAX + 1]; /* canonical */
    const char *subject, *text, *html, *in_reply_to, *references; /* NULL when absent */
    const char **to, **cc, **bcc;
    size_t nto, ncc, nbcc;
    struct compose_attachment *atts;
    size_t natts;
};

enum {
    HTTP_SEND_OK = 0,
    HTTP_SEND_BAD_HEAD, /* from or a text field is not what it must be: 400 before any other check */
    HTTP_SEND_BAD,      /* a recipient list or an attachment: 400 */
    HTTP_SEND_NOMEM,    /* 500 */
};

/* Reads the JSON object j into r: from a valid address, the text fields
 * strings or absent, to/cc/bcc arrays of valid addresses (at least one in all,
 * at most COMPOSE_RCPTS_MAX), attachments with valid base64 data. Returns
 * HTTP_SEND_OK or a code with *why the reason for the client; r is filled as
 * far as it got either way (free it). Pure (http_parse.c). */
int http_send_parse(json_t *j, struct http_send_req *r, const char **why);
void http_send_req_free(struct http_send_req *r);

/* ------------------------------------------------------------------ writes */

/* Runs job on the writer (inside the group's transaction) and waits for its
 * commit. Returns the job's result, STORE_ERR if the commit failed, or
 * HTTP_WRITE_STOPPING when the server is shutting down (nothing was run). */
#define HTTP_WRITE_STOPPING (-100)
int http_write(struct http_server *srv, store_job_fn job, void *arg);
/* The same for a write that queues message queue_id: once committed, the
 * daemon's on_queued hook (http_set_on_queued) is told, on its loop. */
int http_write_queued(struct http_server *srv, store_job_fn job, void *arg, const char *queue_id);
/* The reply for a store read or a write that failed with rc: 404 notfound for
 * STORE_NOTFOUND when notfound is given, 503 while the server shuts down
 * (HTTP_WRITE_STOPPING), else 500. */
void http_reply_store_error(struct http_reply *rep, int rc, const char *notfound);
/* Counts a password check of login from req's client address towards the
 * lockout before it is made (directory lockout.c), through the writer: the
 * webmail login and the password change count alike. 0: go on (the attempt
 * is counted; directory_login_attempt_succeeded takes it back); 1: locked out,
 * 429 answered; -1: error answered. */
int http_login_attempt_begin(struct http_request *req, const char *login, struct directory_login_attempt *attempt,
                             struct http_reply *rep);
/* The password was wrong: the attempt's rows become failures. */
void http_login_attempt_failed(struct http_request *req, const struct directory_login_attempt *attempt);
/* The password was right: the user's failures go (STORE_OK or http_write's code). */
int http_login_attempt_succeeded(struct http_request *req, int64_t user_id,
                                 const struct directory_login_attempt *attempt);

/* ------------------------------------------------------------------ header summaries */

/* What a message list shows, taken from the message's header. UTF-8 (RFC 2047
 * words decoded, invalid bytes replaced), cut to the field sizes. */
struct http_summary {
    char from[512];
    char to[512];
    char subject[512];
    char message_id[256];
    int64_t date; /* the Date: header, 0 if missing or unreadable */
};

/* Parses the header of a message (up to the empty line or len). Pure. */
void http_summary_parse(const char *msg, size_t len, struct http_summary *out);
/* A small cache of summaries keyed by blob ID (blobs never change). */
struct http_summary_cache;
struct http_summary_cache *http_summary_cache_new(void);
void http_summary_cache_free(struct http_summary_cache *c);
/* The summary of a blob, from the cache or read and parsed. -1 if the blob
 * cannot be read. Thread-safe. */
int http_summary_get(struct http_summary_cache *c, struct blobstore *bs, const char *blob_id,
                     struct http_summary *out);

/* ------------------------------------------------------------------ handlers */

void http_h_healthz(struct http_request *req, struct http_reply *rep);
void http_h_metrics(struct http_request *req, struct http_reply *rep);
void http_h_login(struct http_request *req, struct http_reply *rep);
void http_h_logout(struct http_request *req, struct http_reply *rep);
void http_h_me(struct http_request *req, struct http_reply *rep);
void http_h_status(struct http_request *req, struct http_reply *rep);
void http_h_folders(struct http_request *req, struct http_reply *rep);
void http_h_messages(struct http_request *req, struct http_reply *rep);
void http_h_message_get(struct http_request *req, struct http_reply *rep);
void http_h_message_patch(struct http_request *req, struct http_reply *rep);
void http_h_message_delete(struct http_request *req, struct http_reply *rep);
void http_h_message_raw(struct http_request *req, struct http_reply *rep);
void http_h_send(struct http_request *req, struct http_reply *rep);
void http_h_message_attachment(struct http_request *req, struct http_reply *rep);
void http_h_static(struct http_request *req, struct http_reply *rep);
/* http_password.c: password change and reset (SPEC.md "HTTP API"). */
void http_h_password(struct http_request *req, struct http_reply *rep);
void http_h_password_reset_request(struct http_request *req, struct http_reply *rep);
/* What the store keeps of a password reset token: its SHA-256 in hex (http_password.c). */
void http_reset_token_hash(const char *token, char out[PASSWORD_RESET_HASH_SIZE]);
/* The password reset mailer (http_reset.c): one thread with its own read
 * connection that handles the queued reset requests. Started by http_start,
 * stopped by http_free (requests still waiting are dropped). */
struct http_reset_mailer;
struct http_reset_mailer *http_reset_mailer_start(struct http_server *srv, const struct config *cfg, char *err,
                                                  size_t errlen);
void http_reset_mailer_stop(struct http_reset_mailer *m);
struct http_reset_mailer *http_reset_mailer_of(struct http_server *srv);
void http_h_password_reset_confirm(struct http_request *req, struct http_reply *rep);

/* The webmail's files (http_static.c): url ("/" means "/index.html") to the
 * path under the web root in rel and its Content-Type; -1 for anything but
 * plain segments of [A-Za-z0-9._-] (none starting with '.') ending in a known
 * extension. Pure. */
int http_static_path(const char *url, char *rel, size_t rellen, const char **ctype);
/* Finds the web root once, before the HTTP threads start: web_root (the config
 * key) if set, else $LIFEBOAT_WEB_ROOT, else next to the executable. Logs
 * where it serves from, or that it found nothing (the API still works). */
void http_static_init(const char *web_root);

/* The server's configuration (limits such as max_recipients, max_message_size). */
const struct config *http_config(const struct http_server *srv);
struct http_summary_cache *http_summaries(struct http_server *srv);

/* "INBOX", "Sent", "Trash" <-> enum mailbox_folder; -1 for anything else. */
int http_folder_parse(const char *name);
const char *http_folder_name(int folder);

/* ------------------------------------------------------------------ message bodies, shared (http_mailbox.c) */

/* Adds the parsed view of the message in blob_id to j (decoded "headers",
 * "text", sanitised "html", "attachments", ...): cid: images point at
 * cid_url_prefix followed by the attachment number, remote images are blocked
 * unless ?images=1. 0, or -1 (logged). */
int http_view_add(struct http_request *req, const char *blob_id, const char *cid_url_prefix, json_t *j);
/* The message as delivered (prefix, then the blob) as message/rfc822, a
 * download named filename (ASCII without quotes: the caller's). */
void http_reply_message_raw(struct http_request *req, struct http_reply *rep, const char *prefix,
                            const char *blob_id, const char *filename);
/* Attachment n of the message in blob_id, with a type a browser cannot run and
 * an RFC 6266 file name (id names the fallback). 404 when there is no such part. */
void http_reply_attachment(struct http_request *req, struct http_reply *rep, const char *blob_id, int64_t id,
                           int64_t n);

/* ------------------------------------------------------------------ the archive (http_archive/_export/_admin.c) */

#define HTTP_ARCHIVE_TEXT_MAX 256    /* bytes of q, from, to */
#define HTTP_AUDIT_LIMIT_MAX 1000    /* rows per GET /api/v1/admin/audit */
#define HTTP_EXPORTS_MAX 8           /* mbox exports streaming at once, all customers */
#define HTTP_EXPORTS_PER_CUSTOMER 2  /* ... and of one customer (an operator's of all counts as one) */

/* Who sees what of the archive (issue 5): a user the mail to or from their
 * address and aliases in their customer's archive, an admin their customer's,
 * an operator everything (or one customer with ?customer=NAME). */
struct http_archive_scope {
    int role;              /* enum store_role */
    int64_t customer_id;   /* the customer seen; 0: all (an operator) */
    char customer[128];    /* its name, "" for all */
    char **addrs;          /* the user's own addresses (email first, then aliases), whatever the role */
    size_t naddrs;
};

/* Fills s for req->user (and an operator's ?customer=). 0, or -1 with the
 * error reply set (400 unknown customer, 403 for an admin naming another
 * customer, 500). Free with http_archive_scope_clear. */
int http_archive_scope_load(struct http_request *req, struct http_archive_scope *s, struct http_reply *rep);
void http_archive_scope_clear(struct http_archive_scope *s);
/* 1 if entry e is in s (ignoring an operator's ?customer=), 0 if not, -1 on a store error. */
int http_archive_in_scope(struct store *st, const struct http_archive_scope *s, const struct store_archive_entry *e);

/* The scope (http_archive_scope_load) and a search within it from the query
 * string: q, from, to, after, before, direction, has_attachment, offset, limit
 * into q (its strings point into the request and s). 0, or -1 with the error
 * reply set (a 400 names the parameter) and s cleared. */
int http_archive_search_load(struct http_request *req, struct http_archive_scope *s, struct store_archive_query *q,
                             struct http_reply *rep);

/* ------------------------------------------------------------------ the admin API's scope (http_admin_scope.c) */

/* Which customer's objects a control panel request sees: an operator all
 * (customer_id 0) or the one named by ?customer=NAME, an admin their own. */
struct http_admin_scope {
    int role;            /* enum store_role */
    int64_t customer_id; /* 0: all customers (an operator) */
    char customer[128];  /* its name, "" for all */
};
/* Fills s for req->user and the query's customer=. 0, or -1 with the reply
 * set: 404 for a customer that does not exist or is not the admin's own. */
int http_admin_scope_load(struct http_request *req, struct http_admin_scope *s, struct http_reply *rep);
/* 1 if objects of customer_id are in s. */
int http_admin_customer_visible(const struct http_admin_scope *s, int64_t customer_id);
/* The domain (name as typed, any case) or user (address, not an alias) named
 * in a request, within s: 0, or -1 with 404 set for one that is missing or
 * another customer's (the same answer), 500 on a store error. */
int http_admin_domain(struct http_request *req, const struct http_admin_scope *s, const char *name,
                      struct store_domain *d, struct http_reply *rep);
/* The scope and the domain of ?domain= within it (d->id 0 when there is
 * none): 0, or -1 with the reply set (404 for a domain outside the scope). */
int http_admin_scope_domain(struct http_request *req, struct http_admin_scope *s, struct store_domain *d,
                            struct http_reply *rep);
int http_admin_user(struct http_request *req, const struct http_admin_scope *s, const char *email,
                    struct store_user *u, struct http_reply *rep);
/* The reply for a refused directory call (enum directory_result, or
 * HTTP_WRITE_STOPPING): 400 invalid, 404 not_found, 409 exists, 409 refused,
 * 400 password_policy, 503 unavailable; err (the directory's reason) is the
 * message. */
void http_reply_directory(struct http_reply *rep, int rc, const char *err);

/* ------------------------------------------------------------------ the admin API's bodies and changes (http_admin_change.c) */

/* The fields of a JSON body (req->json): absent or null leaves *out NULL / -1
 * and returns 0; the wrong type answers 400 naming the field and returns -1. */
int http_body_string(const struct http_request *req, const char *key, const char **out, struct http_reply *rep);
int http_body_bool(const struct http_request *req, const char *key, int *out, struct http_reply *rep);
int http_body_int(const struct http_request *req, const char *key, long min, long max, long *out,
                  struct http_reply *rep);
/* A list of strings (or one string, already comma-separated) joined with
 * commas into out, the form of the directory's lists (routes, networks). */
int http_body_list(const struct http_request *req, const char *key, char *out, size_t outlen, int *present,
                   struct http_reply *rep);

/* A change of the admin API: apply (a directory call on the writer's
 * connection, inside a savepoint) and, if it succeeds, the audit row, in one
 * writer job. apply returns 0 or an enum directory_result with the reason in
 * err. */
struct http_admin_change {
    int (*apply)(struct store *st, void *arg, char *err, size_t errlen);
    void *arg;
    struct store_audit audit; /* http_admin_audit_set; action "" records nothing */
    int rc;                   /* apply's result */
    char err[512];
};
/* The audit row of a change made by req->user: action ("user.add") on target
 * (target_fmt with one %s, e.g. "user:%s"). */
void http_admin_audit_set(struct http_request *req, struct http_admin_change *c, int64_t customer_id,
                          const char *action, const char *target_fmt, const char *target);
/* Runs c: 0 when done, or -1 with the reply set (http_reply_directory). */
int http_admin_change_run(struct http_request *req, struct http_admin_change *c, struct http_reply *rep);

/* Writes one audit row (who is req->user) through the writer: STORE_OK or the
 * http_write code. */
int http_audit(struct http_request *req, int64_t customer_id, const char *action, const char *target,
               const char *detail);

/* One message as an mboxrd record (http_export.c): the "From " line (envelope
 * sender or MAILER-DAEMON, asctime of received in UTC), prefix and body with
 * CRLF turned into LF and every line matching ^>*From  quoted with one more
 * '>', a final LF if missing and the empty line that ends a record. malloc'd
 * (*outlen bytes), NULL when out of memory. Pure. */
char *http_mbox_record(const char *sender, int64_t received, const char *prefix, const unsigned char *body,
                       size_t len, size_t *outlen);

/* An mbox export of what q finds (http_export.c): its own store connection and
 * blob store, q's strings copied (user_addrs are not: exports are for admins and
 * operators, scoped by customer). 0, 1 when HTTP_EXPORTS_MAX are running
 * already or HTTP_EXPORTS_PER_CUSTOMER of q->customer_id's (err says which),
 * -1 with err. http_export_read and http_export_free are the
 * response's stream_read and stream_free. */
struct http_export;
int http_export_open(const struct config *cfg, const struct store_archive_query *q, const char *actor,
                     struct http_export **out, char *err, size_t errlen);
ssize_t http_export_read(void *export, uint64_t pos, char *buf, size_t max);
void http_export_free(void *export);

void http_h_archive_list(struct http_request *req, struct http_reply *rep);
void http_h_archive_get(struct http_request *req, struct http_reply *rep);
void http_h_archive_raw(struct http_request *req, struct http_reply *rep);
void http_h_archive_attachment(struct http_request *req, struct http_reply *rep);
void http_h_archive_release(struct http_request *req, struct http_reply *rep);
void http_h_archive_export(struct http_request *req, struct http_reply *rep);
void http_h_admin_holds(struct http_request *req, struct http_reply *rep);
void http_h_admin_hold_add(struct http_request *req, struct http_reply *rep);
void http_h_admin_hold_del(struct http_request *req, struct http_reply *rep);
void http_h_admin_audit(struct http_request *req, struct http_reply *rep);
/* http_admin_directory.c: customers, subscriptions, domains, continuity settings, policy. */
void http_h_admin_customers(struct http_request *req, struct http_reply *rep);
void http_h_admin_customer_add(struct http_request *req, struct http_reply *rep);
void http_h_admin_subscription_start(struct http_request *req, struct http_reply *rep);
void http_h_admin_subscription_cancel(struct http_request *req, struct http_reply *rep);
void http_h_admin_domains(struct http_request *req, struct http_reply *rep);
void http_h_admin_domain_add(struct http_request *req, struct http_reply *rep);
void http_h_admin_domain_get(struct http_request *req, struct http_reply *rep);
void http_h_admin_domain_patch(struct http_request *req, struct http_reply *rep);
void http_h_admin_continuity_put(struct http_request *req, struct http_reply *rep);
void http_h_admin_policy_get(struct http_request *req, struct http_reply *rep);
void http_h_admin_policy_put(struct http_request *req, struct http_reply *rep);
/* http_admin_users.c: users and aliases. */
void http_h_admin_users(struct http_request *req, struct http_reply *rep);
void http_h_admin_user_add(struct http_request *req, struct http_reply *rep);
void http_h_admin_user_get(struct http_request *req, struct http_reply *rep);
void http_h_admin_user_patch(struct http_request *req, struct http_reply *rep);
void http_h_admin_user_del(struct http_request *req, struct http_reply *rep);
void http_h_admin_alias_add(struct http_request *req, struct http_reply *rep);
void http_h_admin_alias_del(struct http_request *req, struct http_reply *rep);
/* http_admin_ldap.c: a domain's directory and readiness. */
void http_h_admin_ldap_get(struct http_request *req, struct http_reply *rep);
void http_h_admin_ldap_put(struct http_request *req, struct http_reply *rep);
void http_h_admin_ldap_sync(struct http_request *req, struct http_reply *rep);
void http_h_admin_ldap_test(struct http_request *req, struct http_reply *rep);
void http_h_admin_readiness(struct http_request *req, struct http_reply *rep);
/* http_admin_import.c: user import, unlock, domain and customer deletion. */
void http_h_admin_users_import(struct http_request *req, struct http_reply *rep);
void http_h_admin_user_unlock(struct http_request *req, struct http_reply *rep);
void http_h_admin_domain_del(struct http_request *req, struct http_reply *rep);
void http_h_admin_customer_del(struct http_request *req, struct http_reply *rep);
/* http_admin_ops.c: the outage dashboard and the queue page (admin.h's views). */
void http_h_admin_continuity(struct http_request *req, struct http_reply *rep);
void http_h_admin_events(struct http_request *req, struct http_reply *rep);
void http_h_admin_stats(struct http_request *req, struct http_reply *rep);
void http_h_admin_queue(struct http_request *req, struct http_reply *rep);
void http_h_admin_queue_flush(struct http_request *req, struct http_reply *rep);
void http_h_admin_queue_hold(struct http_request *req, struct http_reply *rep);
void http_h_admin_queue_release(struct http_request *req, struct http_reply *rep);
void http_h_admin_queue_delete(struct http_request *req, struct http_reply *rep);

#endif
