/*
 * fuzz_http_request.c — libFuzzer target for what the HTTP API parses of a
 * request before and inside a handler (src/http/http_parse.c, http_route.c):
 * the method, the percent-decoding of the path and of the query's names and
 * values, the routing, the session cookie, the dates of the archive's search,
 * and the JSON body of POST /api/v1/send.
 *
 * The input is LF-separated: the method, the request target ("/path?query"),
 * the Cookie header, then the body up to the end. Each string is copied into a
 * buffer of exactly its size so ASan sees any read past it.
 *
 * Checks: a known method's name gives it back; decoding never grows a string,
 * never makes a NUL and leaves a string without '%' as it is; a path that a
 * route matches is exactly that route's pattern with the numbers it took
 * printed back (no leading zeros, no sign, no empty or extra segment), and a
 * 405's Allow list names each method once; a found cookie is shorter than its
 * buffer and holds no ';'; a valid session token is 64 lower-case hex digits;
 * an accepted date is not before 1970; a send request that parses has 1 to
 * COMPOSE_RCPTS_MAX recipients, each a valid bounded address, a valid
 * canonical From and at most HTTP_SEND_ATTACHMENTS_MAX decoded attachments.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "util/addr.h"
#include "util/timeutil.h"

static void handler(struct http_request *req, struct http_reply *rep)
{
    (void)req;
    (void)rep;
}

/* The shapes of http_routes.c's patterns (that table brings every handler
 * and so the whole daemon with it). */
static const struct http_route routes[] = {
    {HTTP_GET, "/healthz", handler, 0, 0},
    {HTTP_POST, "/api/v1/login", handler, ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_GET, "/api/v1/messages", handler, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/messages/:id", handler, ROUTE_SESSION, 0},
    {HTTP_PATCH, "/api/v1/messages/:id", handler, ROUTE_SESSION | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_DELETE, "/api/v1/messages/:id", handler, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/messages/:id/raw", handler, ROUTE_SESSION, 0},
    {HTTP_POST, "/api/v1/send", handler, ROUTE_SESSION | ROUTE_JSON, HTTP_SEND_MAX},
    {HTTP_GET, "/api/v1/messages/:id/attachments/:n", handler, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/archive/export", handler, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/archive/:id", handler, ROUTE_SESSION, 0},
    {HTTP_DELETE, "/api/v1/admin/archive/holds", handler, ROUTE_SESSION, 0},
    {HTTP_DELETE, "/api/v1/admin/archive/holds/:id", handler, ROUTE_SESSION, 0},
    {HTTP_GET, "/", handler, 0, 0},
    {HTTP_GET, "/js/:file", handler, 0, 0},
    {HTTP_GET, "/admin/", handler, 0, 0},
};
#define NROUTES (sizeof routes / sizeof routes[0])

static char *copy(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void check_decode(char *s)
{
    size_t before = strlen(s);
    int has_pct = strchr(s, '%') != NULL;
    char *orig = has_pct ? NULL : strdup(s);
    size_t after = http_percent_decode(s);
    if (after > before || strlen(s) != after)
        abort();
    if (orig && strcmp(orig, s) != 0)
        abort();
    free(orig);
}

/* The pattern with :id and :n replaced by the numbers taken, and :file by a
 * plain file name (no '/', not starting with a dot). */
static void check_match(const char *path, const struct http_route_match *m)
{
    char expect[512];
    size_t o = 0;
    for (const char *p = m->route->pattern; *p && o < sizeof expect - 24;) {
        if (!strncmp(p, ":file", 5) && !p[5]) {
            const char *name = path + o;
            if (o > strlen(path) || !*name || *name == '.' || strchr(name, '/') || strlen(name) > 128)
                abort();
            o += (size_t)snprintf(expect + o, sizeof expect - o, "%s", name);
            p += 5;
            continue;
        }
        if (!strncmp(p, ":id", 3) && (p[3] == '/' || !p[3])) {
            if (m->id <= 0)
                abort();
            o += (size_t)snprintf(expect + o, sizeof expect - o, "%" PRId64, m->id);
            p += 3;
        } else if (!strncmp(p, ":n", 2) && (p[2] == '/' || !p[2])) {
            if (m->n < 0)
                abort();
            o += (size_t)snprintf(expect + o, sizeof expect - o, "%" PRId64, m->n);
            p += 2;
        } else {
            expect[o++] = *p++;
        }
    }
    expect[o] = '\0';
    if (strcmp(expect, path) != 0)
        abort();
}

static void check_allow(const char *allow)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
    if (!allow[0])
        abort();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]), seen = 0;
        for (const char *s = allow; (s = strstr(s, names[i])) != NULL; s += n)
            if ((s == allow || s[-1] == ' ') && (s[n] == ',' || !s[n]))
                seen++;
        if (seen > 1)
            abort();
    }
}

static void check_target(const char *target, int method)
{
    char *t = strdup(target);
    if (!t)
        abort();
    char *q = strchr(t, '?');
    if (q)
        *q++ = '\0';
    check_decode(t);
    struct http_route_match m;
    char allow[64];
    int r = http_route_find(routes, NROUTES, method, t, &m, allow, sizeof allow);
    if (r == ROUTE_FOUND)
        check_match(t, &m);
    else if (r == ROUTE_NO_METHOD)
        check_allow(allow);
    else if (r != ROUTE_NO_PATH)
        abort();
    /* The query as libmicrohttpd splits it: "&" between arguments, the first
     * "=" between name and value, each decoded on its own. */
    for (char *arg = q, *next; arg; arg = next) {
        next = strchr(arg, '&');
        if (next)
            *next++ = '\0';
        char *v = strchr(arg, '=');
        if (v)
            *v++ = '\0';
        check_decode(arg);
        if (v) {
            check_decode(v);
            int64_t when;
            if (time_parse_date(v, &when) == 0 && when < 0)
                abort(); /* "nothing before 1970" (timeutil.h) */
        }
    }
    free(t);
}

static void check_cookie(const char *header)
{
    static const char *const names[] = {"lb_session", "__Host-lb_session"};
    for (size_t i = 0; i < 2; i++) {
        char *out = malloc(HTTP_TOKEN_HEX + 1);
        if (!out)
            abort();
        int r = http_cookie_find(header, names[i], out, HTTP_TOKEN_HEX + 1);
        if (r < -1 || r > 1)
            abort();
        if (r == 1) {
            if (strnlen(out, HTTP_TOKEN_HEX + 1) > HTTP_TOKEN_HEX || strchr(out, ';'))
                abort();
            if (http_token_valid(out)) {
                if (strlen(out) != HTTP_TOKEN_HEX || strspn(out, "0123456789abcdef") != HTTP_TOKEN_HEX)
                    abort();
            }
        }
        free(out);
    }
}

static void check_addr(const char *a)
{
    if (!a || strlen(a) > ADDR_MAX || !addr_is_valid(a))
        abort();
}

static void check_send(json_t *j)
{
    struct http_send_req r;
    const char *why = NULL;
    int rc = http_send_parse(j, &r, &why);
    if (rc == HTTP_SEND_OK) {
        size_t n = r.nto + r.ncc + r.nbcc;
        if (n == 0 || n > COMPOSE_RCPTS_MAX || r.natts > HTTP_SEND_ATTACHMENTS_MAX)
            abort();
        check_addr(r.from);
        char canon[ADDR_MAX + 1];
        if (addr_canonical(r.from, canon, sizeof canon) != 0 || strcmp(canon, r.from) != 0)
            abort();
        for (size_t i = 0; i < r.nto; i++)
            check_addr(r.to[i]);
        for (size_t i = 0; i < r.ncc; i++)
            check_addr(r.cc[i]);
        for (size_t i = 0; i < r.nbcc; i++)
            check_addr(r.bcc[i]);
        for (size_t i = 0; i < r.natts; i++)
            if (!r.atts[i].data)
                abort();
    } else if (!why || !*why || (rc != HTTP_SEND_BAD_HEAD && rc != HTTP_SEND_BAD && rc != HTTP_SEND_NOMEM)) {
        abort();
    }
    http_send_req_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *part[3];
    for (int i = 0; i < 3; i++) {
        const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
        size_t n = lf ? (size_t)(lf - p) : (size_t)(end - p);
        part[i] = copy(p, n);
        p = lf ? lf + 1 : end;
    }
    int method = http_method_parse(part[0]);
    if (method != HTTP_OTHER && strcmp(http_method_name(method), part[0]) != 0)
        abort();
    check_target(part[1], method);
    check_cookie(part[2]);

    /* The body as the server reads a JSON route's (json_loadb, duplicates refused). */
    size_t blen = (size_t)(end - p);
    char *body = malloc(blen ? blen : 1);
    if (!body)
        abort();
    memcpy(body, p, blen);
    json_error_t jerr;
    json_t *j = json_loadb(body, blen, JSON_REJECT_DUPLICATES, &jerr);
    if (j && json_is_object(j))
        check_send(j);
    json_decref(j);
    free(body);
    for (int i = 0; i < 3; i++)
        free(part[i]);
    return 0;
}
