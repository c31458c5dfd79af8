/*
 * views_queue.c — the queue page's view (admin.h): the messages with queued
 * recipients in a scope's share, each summarised from those recipients.
 */
#include <string.h>

#include "admin/views_internal.h"
#include "util/log.h"

struct msgs {
    json_t *rows;
    int oom;
};

static int msg_row(const struct store_msg *m, void *arg)
{
    struct msgs *l = arg;
    json_t *o = json_pack("{s:s, s:o, s:[], s:I, s:I, s:s, s:b, s:I, s:I, s:s}", "id", m->id, "sender",
                          admin_jstr(m->sender), "recipients", "attempts", (json_int_t)0, "next_attempt",
                          (json_int_t)0, "last_reply", "", "held", 0, "size", (json_int_t)m->size, "received",
                          (json_int_t)m->received, "direction", m->direction == DIR_OUTBOUND ? "outbound" : "inbound");
    if (json_array_append_new(l->rows, o) != 0) {
        l->oom = 1;
        return 1;
    }
    return 0;
}

struct summary {
    json_t *msg;
    unsigned attempts; /* of the recipient whose reply is shown */
    int reply_set;
    int oom;
};

/* Folds one recipient into the message's summary: queued ones only; the most
 * attempts and that recipient's last reply (a reply wins a tie against none),
 * the soonest next attempt, held if any is. */
static int rcpt_into(const struct store_rcpt *r, void *arg)
{
    struct summary *s = arg;
    json_t *o = s->msg;
    if (r->state != RCPT_QUEUED)
        return 0;
    if (json_array_append_new(json_object_get(o, "recipients"), admin_jstr(r->rcpt)) != 0) {
        s->oom = 1;
        return 1;
    }
    json_int_t next = json_integer_value(json_object_get(o, "next_attempt"));
    if (next == 0 || r->next_attempt < next)
        json_object_set_new(o, "next_attempt", json_integer(r->next_attempt));
    if (r->attempts > s->attempts || (r->attempts == s->attempts && !s->reply_set && r->last_reply[0])) {
        s->attempts = r->attempts;
        s->reply_set = r->last_reply[0] != 0;
        json_object_set_new(o, "attempts", json_integer(r->attempts));
        json_object_set_new(o, "last_reply", admin_jstr(r->last_reply));
    }
    if (r->held)
        json_object_set_new(o, "held", json_true());
    return 0;
}

int admin_queue_view(struct store *st, int64_t customer_id, json_t **out)
{
    struct msgs l = {json_array(), 0};
    if (!l.rows)
        return admin_done(STORE_OK, NULL, out, "the queue");
    /* Messages first, recipients after: no store call inside another's callback. */
    int rc = store_queue_list_scoped(st, customer_id, msg_row, &l);
    for (size_t i = 0; rc == STORE_OK && !l.oom && i < json_array_size(l.rows);) {
        json_t *o = json_array_get(l.rows, i);
        struct summary s = {.msg = o};
        rc = store_queue_rcpts(st, json_string_value(json_object_get(o, "id")), customer_id, rcpt_into, &s);
        if (rc == STORE_NOTFOUND)
            rc = STORE_OK;
        l.oom = s.oom;
        /* Delivered between the two reads (lifeboatctl reads outside a transaction): not queued any more. */
        if (rc == STORE_OK && json_array_size(json_object_get(o, "recipients")) == 0)
            json_array_remove(l.rows, i);
        else
            i++;
    }
    if (l.oom) {
        json_decref(l.rows);
        l.rows = NULL;
    }
    return admin_done(rc, l.rows, out, "the queue");
}
