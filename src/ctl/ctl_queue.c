/*
 * ctl_queue.c — lifeboatctl's queue commands: list, show, flush, hold,
 * release, delete.
 *
 * They work on the store directly while lifeboatd runs: `flush` only makes
 * queued recipients (all, or one domain's) due now and the daemon's queue
 * runner, which polls the store, picks them up; `hold` marks a message's
 * queued recipients so that the runner passes them over until `release`;
 * `delete` removes the rows and drops the blob reference, and the daemon
 * unlinks blobs nobody references. lifeboatctl is the operator's tool: it sees
 * every customer's mail (customer scope 0). `list --json` is admin.h's queue
 * view, the one the control panel's API returns.
 */
#include "admin/admin.h"
#include "ctl/ctl.h"
#include "store/blob.h"
#include "util/queueid.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Headers shown by `queue show` are cut after this many bytes. */
#define CTL_HEADERS_MAX (64 * 1024)

static const char *state_name(int state)
{
    static const char *const names[] = {
        [RCPT_QUEUED] = "queued",       [RCPT_SENT] = "sent",
        [RCPT_BOUNCED] = "bounced",     [RCPT_CONTINUITY] = "continuity",
        [RCPT_REDELIVERED] = "redelivered", [RCPT_DELETED] = "deleted",
    };
    if (state < 0 || state >= (int)(sizeof names / sizeof names[0]))
        return "unknown";
    return names[state];
}

static const char *direction_name(int d)
{
    return d == DIR_OUTBOUND ? "outbound" : "inbound";
}

/* Upper-cases a queue ID the administrator typed: CTL_OK, or CTL_FAIL after
 * saying it is not one. */
static int queue_id_arg(const char *arg, char id[QUEUEID_SIZE])
{
    size_t n = strlen(arg);
    if (n == QUEUEID_LEN) {
        for (size_t i = 0; i <= n; i++)
            id[i] = (char)toupper((unsigned char)arg[i]);
        if (queueid_is_valid(id))
            return CTL_OK;
    }
    return ctl_fail("\"%.40s\" is not a queue ID", arg);
}

/* What a store call about message id returned: CTL_OK, or CTL_FAIL after
 * saying why. */
static int msg_store_rc(int rc, const char *id)
{
    if (rc == STORE_NOTFOUND)
        return ctl_fail("%s: no such message in the queue", id);
    if (rc != STORE_OK)
        return ctl_fail("%s: store error", id);
    return CTL_OK;
}

/* ---------------------------------------------------------------- list */

int ctl_queue_list(struct ctl *c, int argc, char **argv)
{
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, opts, NULL, 0, 0, &n, &st);
    if (rc != CTL_OK)
        return rc;
    json_t *list;
    if (admin_queue_view(st, 0, &list) != STORE_OK)
        return ctl_fail("cannot list the queue (store error)");
    size_t i;
    json_t *o;
    if (json)
        return ctl_json_print(list);
    if (json_array_size(list) == 0)
        printf("queue is empty\n");
    json_array_foreach(list, i, o) {
        char t1[32], t2[32];
        const char *sender = json_string_value(json_object_get(o, "sender"));
        printf("%s  %8lld  %s  <", json_string_value(json_object_get(o, "id")),
               (long long)json_integer_value(json_object_get(o, "size")),
               ctl_time(json_integer_value(json_object_get(o, "received")), t1));
        ctl_put_safe(stdout, sender);
        printf(">\n");
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(o, "recipients"), k, r) {
            printf("    <");
            ctl_put_safe(stdout, json_string_value(r));
            printf(">\n");
        }
        printf("    attempts=%lld  next=%s%s", (long long)json_integer_value(json_object_get(o, "attempts")),
               ctl_time(json_integer_value(json_object_get(o, "next_attempt")), t2),
               json_is_true(json_object_get(o, "held")) ? "  HELD" : "");
        const char *reply = json_string_value(json_object_get(o, "last_reply"));
        if (reply && *reply) {
            printf("  (");
            ctl_put_safe(stdout, reply);
            printf(")");
        }
        printf("\n");
    }
    json_decref(list);
    return CTL_OK;
}

/* ---------------------------------------------------------------- show */

static int rcpt_to_json(const struct store_rcpt *r, void *arg)
{
    return ctl_list_add(arg, json_pack("{s:o, s:s, s:I, s:I, s:o, s:o, s:b}", "rcpt", ctl_jstr(r->rcpt), "state",
                          state_name(r->state), "attempts", (json_int_t)r->attempts, "next_attempt",
                          (json_int_t)r->next_attempt, "last_reply", ctl_jstr(r->last_reply), "mailbox_entry",
                          r->mailbox_entry_id ? json_integer(r->mailbox_entry_id) : json_null(), "held", r->held));
}

/* The header section of a message: the prefix lifeboat adds on delivery and
 * the body's lines up to the first empty one, with LF line ends. malloc'd. */
static char *header_section(const char *prefix, const unsigned char *body, size_t len)
{
    /* The section ends at the '\n' of the first empty line ("\n" or "\r\n"). */
    size_t plen = strlen(prefix), hlen = 0;
    for (; hlen < len; hlen++) {
        if (body[hlen] != '\n')
            continue;
        size_t line_start = hlen;
        while (line_start > 0 && body[line_start - 1] != '\n')
            line_start--;
        if (hlen - line_start == 0 || (hlen - line_start == 1 && body[line_start] == '\r'))
            break;
    }
    if (plen + hlen > CTL_HEADERS_MAX)
        hlen = plen < CTL_HEADERS_MAX ? CTL_HEADERS_MAX - plen : 0;
    char *out = malloc(plen + hlen + 1), *w = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < plen + hlen; i++) {
        char ch = i < plen ? prefix[i] : (char)body[i - plen];
        if (ch != '\r')
            *w++ = ch == 0 ? '?' : ch;
    }
    *w = 0;
    return out;
}

/* Adds "headers" to o from the message's blob; -1 with a reason in err. */
static int add_headers(struct ctl *c, const struct store_msg *m, json_t *o, char *err, size_t errlen)
{
    struct blobstore *bs;
    if (blobstore_open(&c->cfg, &bs, err, errlen) != 0)
        return -1;
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = blob_get(bs, m->blob, &data, &len);
    blobstore_close(bs);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot read the message body (blob %s)", m->id, m->blob);
        return -1;
    }
    char *headers = header_section(m->prefix, data, len);
    free(data);
    if (!headers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_object_set_new(o, "headers", ctl_jstr(headers));
    free(headers);
    return 0;
}

static void print_message(json_t *o)
{
    char t[32];
    printf("id: %s\n", json_string_value(json_object_get(o, "id")));
    printf("received: %s from [", ctl_time(json_integer_value(json_object_get(o, "received")), t));
    ctl_put_safe(stdout, json_string_value(json_object_get(o, "client_addr")));
    printf("] helo=");
    ctl_put_safe(stdout, json_string_value(json_object_get(o, "helo")));
    printf("\nsender: <");
    ctl_put_safe(stdout, json_string_value(json_object_get(o, "sender")));
    printf(">\nsize: %lld\ndirection: %s%s\nrecipients:\n",
           (long long)json_integer_value(json_object_get(o, "size")),
           json_string_value(json_object_get(o, "direction")),
           json_is_true(json_object_get(o, "is_bounce")) ? " (bounce)" : "");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(o, "recipients"), i, r) {
        printf("  <");
        ctl_put_safe(stdout, json_string_value(json_object_get(r, "rcpt")));
        printf(">  %s%s  attempts=%lld", json_string_value(json_object_get(r, "state")),
               json_is_true(json_object_get(r, "held")) ? " (held)" : "",
               (long long)json_integer_value(json_object_get(r, "attempts")));
        if (!strcmp(json_string_value(json_object_get(r, "state")), "queued"))
            printf("  next=%s", ctl_time(json_integer_value(json_object_get(r, "next_attempt")), t));
        if (json_is_integer(json_object_get(r, "mailbox_entry")))
            printf("  mailbox-entry=%lld", (long long)json_integer_value(json_object_get(r, "mailbox_entry")));
        const char *reply = json_string_value(json_object_get(r, "last_reply"));
        if (reply && *reply) {
            printf("  (");
            ctl_put_safe(stdout, reply);
            printf(")");
        }
        printf("\n");
    }
    const char *headers = json_string_value(json_object_get(o, "headers"));
    if (headers) {
        printf("headers:\n");
        for (const char *p = headers; *p;) {
            size_t len = strcspn(p, "\n");
            char line[1024];
            snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
            printf("  ");
            ctl_put_safe(stdout, line);
            printf("%s\n", len >= sizeof line ? "..." : "");
            p += len;
            if (*p)
                p++;
        }
    }
}

int ctl_queue_show(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"json", NULL, &json}, {0}};
    if (ctl_getopt(argc, argv, opts, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    char id[QUEUEID_SIZE];
    if (queue_id_arg(pos[0], id) != CTL_OK)
        return CTL_FAIL;
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    struct store_msg m;
    int rc = store_message_get(st, id, &m);
    if (msg_store_rc(rc, id) != CTL_OK)
        return CTL_FAIL;
    json_t *o = json_pack("{s:s, s:o, s:I, s:I, s:o, s:o, s:s, s:b, s:s, s:o}", "id", m.id, "sender",
                          ctl_jstr(m.sender), "size", (json_int_t)m.size, "received", (json_int_t)m.received,
                          "client_addr", ctl_jstr(m.client_addr), "helo", ctl_jstr(m.helo), "direction",
                          direction_name(m.direction), "is_bounce", m.is_bounce, "blob", m.blob,
                          "recipients", json_array());
    if (!o)
        return ctl_fail("out of memory");
    struct ctl_list rcpts = {json_incref(json_object_get(o, "recipients")), NULL, 0};
    rc = store_rcpt_list(st, id, rcpt_to_json, &rcpts);
    ctl_list_free(&rcpts);
    if (rc != STORE_OK || rcpts.failed) {
        json_decref(o);
        return ctl_fail("%s: %s", id, rcpts.failed ? "out of memory" : "store error");
    }
    /* Envelope and recipients are shown even when the body cannot be read;
     * the failure is still reported, and the exit status says so. */
    char err[512];
    int body_ok = add_headers(c, &m, o, err, sizeof err) == 0;
    int out = json ? ctl_json_print(o) : (print_message(o), json_decref(o), CTL_OK);
    if (!body_ok)
        return ctl_fail("%s", err);
    return out;
}

/* ---------------------------------------------------------------- flush, hold, release, delete */

int ctl_queue_flush(struct ctl *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    int n;
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, NULL, pos, 0, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    struct store_domain d;
    if (n && ctl_domain_arg(st, pos[0], &d) != CTL_OK)
        return CTL_FAIL;
    unsigned flushed = 0;
    if (store_queue_flush_scoped(st, 0, n ? d.name : NULL, &flushed) != STORE_OK)
        return ctl_fail("cannot flush the queue: store error");
    printf("queue flushed: %u recipient(s)%s%s due now (held mail stays held)\n", flushed, n ? " of " : "",
           n ? d.name : "");
    return CTL_OK;
}

/* hold (1) or release (0) the message named by the one argument. */
static int hold_or_release(struct ctl *c, int argc, char **argv, int hold)
{
    const char *pos[1];
    int n;
    if (ctl_getopt(argc, argv, NULL, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    char id[QUEUEID_SIZE];
    if (queue_id_arg(pos[0], id) != CTL_OK)
        return CTL_FAIL;
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    unsigned changed = 0;
    if (msg_store_rc(store_queue_hold(st, id, 0, hold, &changed), id) != CTL_OK)
        return CTL_FAIL;
    if (hold)
        printf("%s: %u recipient(s) put on hold; not tried until released\n", id, changed);
    else
        printf("%s: %u recipient(s) released; due now\n", id, changed);
    return CTL_OK;
}

int ctl_queue_hold(struct ctl *c, int argc, char **argv)
{
    return hold_or_release(c, argc, argv, 1);
}

int ctl_queue_release(struct ctl *c, int argc, char **argv)
{
    return hold_or_release(c, argc, argv, 0);
}

int ctl_queue_delete(struct ctl *c, int argc, char **argv)
{
    const char *pos[1];
    int n;
    if (ctl_getopt(argc, argv, NULL, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    char id[QUEUEID_SIZE];
    if (queue_id_arg(pos[0], id) != CTL_OK)
        return CTL_FAIL;
    struct store *st = ctl_store(c);
    if (!st)
        return CTL_FAIL;
    if (msg_store_rc(store_queue_delete(st, id, 0), id) != CTL_OK)
        return CTL_FAIL;
    printf("%s: deleted\n", id);
    return CTL_OK;
}
