/*
 * http_reply.c — how handlers say what to answer: JSON values, JSON errors
 * ({"error": "..."}, SPEC.md "HTTP API") and raw bodies, into a struct
 * http_reply that http_server.c sends with the security headers. Also the
 * folder names of the API.
 */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "admin/admin.h"
#include "http/http_internal.h"
#include "util/log.h"

void http_reply_raw(struct http_reply *rep, int status, const char *content_type, char *body, size_t len)
{
    free(rep->body);
    rep->status = status;
    rep->content_type = content_type;
    rep->body = body;
    rep->len = len;
}

void http_reply_json(struct http_reply *rep, int status, json_t *value)
{
    char *text = value ? json_dumps(value, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(value);
    if (!text) {
        static const char oom[] = "{\"error\":\"internal error\"}";
        char *copy = strdup(oom);
        if (!copy)
            log_err("http: out of memory building a reply");
        http_reply_raw(rep, 500, "application/json", copy, copy ? sizeof oom - 1 : 0);
        return;
    }
    http_reply_raw(rep, status, "application/json", text, strlen(text));
}

/* The code an error gets when its path names none: one per status, so that
 * a client can always decide on "code", never on the text of "error". */
static const char *status_code(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "not_logged_in";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 413: return "too_large";
    case 415: return "not_json";
    case 429: return "too_many_requests";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal" : "error";
    }
}

void http_reply_error(struct http_reply *rep, int status, const char *message)
{
    http_reply_error_code(rep, status, status_code(status), message);
}

void http_reply_error_code(struct http_reply *rep, int status, const char *code, const char *message)
{
    http_reply_json(rep, status, json_pack("{s:s, s:s}", "error", message, "code", code));
}

void http_reply_store_error(struct http_reply *rep, int rc, const char *notfound)
{
    if (rc == STORE_NOTFOUND && notfound)
        http_reply_error(rep, 404, notfound);
    else if (rc == HTTP_WRITE_STOPPING)
        http_reply_error(rep, 503, "shutting down");
    else
        http_reply_error(rep, 500, "internal error");
}

json_t *http_json_text(const char *s)
{
    return admin_jstr(s);
}

static const char *const folder_names[] = {[FOLDER_INBOX] = "INBOX", [FOLDER_SENT] = "Sent",
                                           [FOLDER_TRASH] = "Trash"};

int http_folder_parse(const char *name)
{
    for (int f = 0; name && f < (int)(sizeof folder_names / sizeof folder_names[0]); f++)
        if (strcmp(name, folder_names[f]) == 0)
            return f;
    return -1;
}

const char *http_folder_name(int folder)
{
    return folder >= 0 && folder < (int)(sizeof folder_names / sizeof folder_names[0]) ? folder_names[folder]
                                                                                        : "INBOX";
}

int http_query_number(const struct http_request *req, const char *key, long long dflt, long long min,
                      long long max, long long *out, struct http_reply *rep)
{
    const char *v = http_query(req, key);
    *out = dflt;
    if (!v || !*v)
        return 0;
    /* Digits only: no sign, no space, no hex, nothing after. */
    size_t n = strspn(v, "0123456789");
    long long x = n && n <= 18 && !v[n] ? strtoll(v, NULL, 10) : -1;
    if (x < min || x > max) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s: a whole number from %lld to %lld", key, min, max);
        http_reply_error_code(rep, 400, "invalid", msg);
        return -1;
    }
    *out = x;
    return 0;
}
