/*
 * http_route.c — the router: a method and a path to a handler of the table in
 * http_routes.c. Pure functions over strings, so the unit tests and fuzzers
 * need no server.
 *
 * A pattern is literal segments, ":id" and ":n" segments; ":id" takes one
 * positive decimal number without leading zeros that fits an int64 (mailbox
 * entry IDs), so "/api/v1/messages/007", "/api/v1/messages/-1" or ".../1e3"
 * never reach a handler; ":n" is the same but may be 0 (attachment numbers);
 * ":s" is any segment of the admin API's names (an address, a domain, a
 * customer, a queue ID), which the handler checks. Matching is exact: no
 * trailing slash, no empty segments.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/http_internal.h"

static const struct {
    const char *name;
    int method;
} methods[] = {
    {"GET", HTTP_GET},   {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
    {"PUT", HTTP_PUT},   {"PATCH", HTTP_PATCH},   {"DELETE", HTTP_DELETE},
};

int http_method_parse(const char *s)
{
    for (size_t i = 0; s && i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(s, methods[i].name) == 0) /* methods are case-sensitive (RFC 9110 9.1) */
            return methods[i].method;
    return HTTP_OTHER;
}

const char *http_method_name(int method)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (methods[i].method == method)
            return methods[i].name;
    return "OTHER";
}

int http_method_changes_state(int method)
{
    return method != HTTP_GET && method != HTTP_HEAD;
}

/* Parses an ":id" segment of len bytes: 1..18 digits, no leading zero (zero
 * itself only when allow_zero, for ":n"). */
static int parse_id(const char *s, size_t len, int allow_zero, int64_t *out)
{
    if (len == 0 || len > 18 || (s[0] == '0' && !(allow_zero && len == 1)))
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* A ":file" segment: one plain file name, [A-Za-z0-9._-], not starting with
 * a dot (so never "." or ".."), at most 128 bytes. */
static int file_ok(const char *s, size_t len)
{
    if (len == 0 || len > 128 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* An ":s" segment: 1..HTTP_ROUTE_ARG_MAX-1 bytes, no control characters
 * (the path is decoded: "%0A" must not reach a name or a log line). */
static int arg_ok(const char *s, size_t len)
{
    if (len == 0 || len >= HTTP_ROUTE_ARG_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* 1 if path matches pattern, filling m's id for an ":id" segment, n for ":n"
 * and arg for ":s" (":file" takes any plain file name). */
static int path_matches(const char *pattern, const char *path, struct http_route_match *m)
{
    int64_t *id = &m->id, *n = &m->n;
    size_t nargs = 0;
    *id = 0;
    *n = 0;
    for (size_t i = 0; i < HTTP_ROUTE_ARGS; i++)
        m->arg[i][0] = '\0';
    const char *p = pattern, *q = path;
    if (*p != '/' || *q != '/')
        return 0;
    while (*p && *q) {
        /* both at a '/' here */
        p++;
        q++;
        size_t plen = strcspn(p, "/"), qlen = strcspn(q, "/");
        if (plen == 3 && strncmp(p, ":id", 3) == 0) {
            if (parse_id(q, qlen, 0, id) != 0)
                return 0;
        } else if (plen == 2 && strncmp(p, ":n", 2) == 0) {
            if (parse_id(q, qlen, 1, n) != 0)
                return 0;
        } else if (plen == 5 && strncmp(p, ":file", 5) == 0) {
            if (!file_ok(q, qlen))
                return 0;
        } else if (plen == 2 && strncmp(p, ":s", 2) == 0) {
            if (nargs == HTTP_ROUTE_ARGS || !arg_ok(q, qlen))
                return 0;
            memcpy(m->arg[nargs], q, qlen);
            m->arg[nargs++][qlen] = '\0';
        } else if (plen != qlen || strncmp(p, q, plen) != 0) {
            return 0;
        }
        p += plen;
        q += qlen;
    }
    return *p == '\0' && *q == '\0';
}

static void allow_add(char *allow, size_t allowlen, const char *name)
{
    if (!allow || allowlen == 0)
        return;
    size_t used = strlen(allow);
    /* each method once ("GET" routes also bring HEAD) */
    char needle[16];
    snprintf(needle, sizeof needle, "%s", name);
    for (const char *s = allow; (s = strstr(s, needle)) != NULL; s += strlen(needle)) {
        size_t n = strlen(needle);
        if ((s == allow || s[-1] == ' ') && (s[n] == ',' || s[n] == '\0'))
            return;
    }
    snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", name);
}

int http_route_find(const struct http_route *table, size_t n, int method, const char *path,
                    struct http_route_match *m, char *allow, size_t allowlen)
{
    if (allow && allowlen)
        allow[0] = '\0';
    int path_known = 0;
    if (!path)
        return ROUTE_NO_PATH;
    for (size_t i = 0; i < n; i++) {
        if (!path_matches(table[i].pattern, path, m))
            continue;
        if (table[i].method == method || (method == HTTP_HEAD && table[i].method == HTTP_GET)) {
            m->route = &table[i];
            return ROUTE_FOUND;
        }
        path_known = 1;
        allow_add(allow, allowlen, http_method_name(table[i].method));
        if (table[i].method == HTTP_GET)
            allow_add(allow, allowlen, "HEAD");
    }
    return path_known ? ROUTE_NO_METHOD : ROUTE_NO_PATH;
}
