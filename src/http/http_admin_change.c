/*
 * http_admin_change.c — what the admin API's handlers share to read a JSON
 * body and to make a change: the fields of the body, checked for their
 * types with a 400 that names the field, and a change run on the writer
 * together with its audit row (both committed or neither).
 *
 * The change itself is a directory call (the same one lifeboatctl makes); it
 * runs as a savepoint inside the writer's transaction, so a refusal undoes
 * only its own writes.
 */
#include <stdio.h>
#include <string.h>

#include "http/http_internal.h"
#include "util/log.h"

static int field_error(struct http_reply *rep, const char *key, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s must be %s", key, what);
    http_reply_error_code(rep, 400, "invalid", msg);
    return -1;
}

int http_body_string(const struct http_request *req, const char *key, const char **out, struct http_reply *rep)
{
    json_t *v = req->json ? json_object_get(req->json, key) : NULL;
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return field_error(rep, key, "a string");
    *out = json_string_value(v);
    if (strlen(*out) != json_string_length(v)) /* an embedded NUL would cut it */
        return field_error(rep, key, "a string without NUL characters");
    return 0;
}

int http_body_bool(const struct http_request *req, const char *key, int *out, struct http_reply *rep)
{
    json_t *v = req->json ? json_object_get(req->json, key) : NULL;
    *out = -1;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return field_error(rep, key, "true or false");
    *out = json_is_true(v);
    return 0;
}

int http_body_int(const struct http_request *req, const char *key, long min, long max, long *out,
                  struct http_reply *rep)
{
    json_t *v = req->json ? json_object_get(req->json, key) : NULL;
    *out = -1;
    if (!v || json_is_null(v))
        return 0;
    char what[80];
    snprintf(what, sizeof what, "a whole number from %ld to %ld", min, max);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return field_error(rep, key, what);
    *out = (long)json_integer_value(v);
    return 0;
}

int http_body_list(const struct http_request *req, const char *key, char *out, size_t outlen, int *present,
                   struct http_reply *rep)
{
    json_t *v = req->json ? json_object_get(req->json, key) : NULL;
    *present = 0;
    out[0] = '\0';
    if (!v || json_is_null(v))
        return 0;
    *present = 1;
    if (json_is_string(v)) {
        if (json_string_length(v) >= outlen || strlen(json_string_value(v)) != json_string_length(v))
            return field_error(rep, key, "a shorter list");
        memcpy(out, json_string_value(v), json_string_length(v) + 1);
        return 0;
    }
    if (!json_is_array(v))
        return field_error(rep, key, "a list of strings");
    size_t i, used = 0;
    json_t *e;
    json_array_foreach(v, i, e) {
        const char *s = json_string_value(e);
        size_t n = s ? strlen(s) : 0;
        if (!s || n != json_string_length(e) || n == 0 || strchr(s, ','))
            return field_error(rep, key, "a list of non-empty strings without commas");
        if (used + n + 2 > outlen)
            return field_error(rep, key, "a shorter list");
        if (used)
            out[used++] = ',';
        memcpy(out + used, s, n + 1);
        used += n;
    }
    return 0;
}

static int change_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct http_admin_change *c = arg;
    c->err[0] = '\0';
    c->rc = c->apply(st, c->arg, c->err, sizeof c->err);
    if (c->rc != 0)
        return STORE_ERR; /* the job's savepoint is rolled back */
    if (c->audit.action[0] && store_audit_add(st, &c->audit) != STORE_OK) {
        c->rc = DIR_STORE;
        snprintf(c->err, sizeof c->err, "cannot record the change in the audit trail");
        return STORE_ERR;
    }
    return STORE_OK;
}

void http_admin_audit_set(struct http_request *req, struct http_admin_change *c, int64_t customer_id,
                          const char *action, const char *target_fmt, const char *target)
{
    memset(&c->audit, 0, sizeof c->audit);
    c->audit.at = req->now;
    c->audit.customer_id = customer_id;
    snprintf(c->audit.actor, sizeof c->audit.actor, "%s", req->user.email);
    snprintf(c->audit.action, sizeof c->audit.action, "%s", action);
    snprintf(c->audit.target, sizeof c->audit.target, target_fmt, target);
}

int http_admin_change_run(struct http_request *req, struct http_admin_change *c, struct http_reply *rep)
{
    c->rc = DIR_STORE;
    int rc = http_write(req->srv, change_job, c);
    if (rc == STORE_OK)
        return 0;
    if (rc == HTTP_WRITE_STOPPING)
        c->rc = HTTP_WRITE_STOPPING;
    else if (c->rc == 0) /* the group's commit failed */
        c->rc = DIR_STORE;
    if (c->rc == DIR_STORE)
        log_err("http: %s by %s: %s", c->audit.action, req->user.email, c->err[0] ? c->err : "store error");
    http_reply_directory(rep, c->rc, c->err);
    return -1;
}
