/*
 * queue_submit.c — the one way a message enters the queue (queue.h).
 *
 * The message becomes one writer job: on the writer thread it stores the body
 * as a blob, records the blob, then the message row (envelope and prefix) and
 * its recipient rows, inside the group's transaction. The prefix (Received:)
 * lives in the row, not in the blob, so identical bodies share one file. The
 * caller's done() runs on its loop once the group has committed (STORE_OK:
 * the message is on stable storage, answer 250) or failed (answer 451).
 * Mail an authenticated user sends also gets its Sent copy in the same job,
 * and the archive its entries (archive_ingest; not for our own bounces).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/archive.h"
#include "queue/queue.h"
#include "util/log.h"

struct submit {
    const struct queue_message *m; /* the caller keeps it alive until done */
    queue_submit_done done;
    void *arg;
};

/* Whether the Sent copy goes back to the customer's server when it recovers:
 * only when the domain sends its outgoing mail there too and is not normal now,
 * i.e. the copy stands for mail the customer's server did not see. */
static int sent_redeliver(struct store *st, int64_t domain_id)
{
    struct store_domain d;
    if (store_domain_get_by_id(st, domain_id, &d) != STORE_OK)
        return REDELIVER_NONE;
    if (d.continuity && d.outgoing_to_own && d.state != DOMAIN_NORMAL)
        return REDELIVER_WAITING;
    return REDELIVER_NONE;
}

/* The envelope recipients as the mailbox entry keeps them: comma-separated,
 * cut at the last whole address that fits (the queue rows have all of them). */
static void rcpts_list(const struct queue_message *m, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->nrcpt; i++) {
        size_t need = strlen(m->rcpts[i]) + (used ? 1 : 0);
        if (used + need >= outlen)
            break;
        snprintf(out + used, outlen - used, "%s%s", used ? "," : "", m->rcpts[i]);
        used += need;
    }
}

static int add_sent_copy(struct store *st, const struct queue_message *m, const char *blob, int64_t now,
                         uint64_t stored)
{
    struct queue_sent_copy *c = m->sent_copy;
    struct store_mailbox_entry e = {
        .user_id = c->user_id,
        .size = m->body_len,
        .received = now,
        .folder = FOLDER_SENT,
        .seen = 1,
        .redeliver = sent_redeliver(st, c->domain_id),
        .direction = DIR_OUTBOUND,
    };
    memcpy(e.msg_id, m->id, sizeof e.msg_id);
    memcpy(e.blob, blob, sizeof e.blob);
    snprintf(e.sender, sizeof e.sender, "%s", m->sender);
    snprintf(e.prefix, sizeof e.prefix, "%s", m->prefix ? m->prefix : "");
    rcpts_list(m, e.rcpts, sizeof e.rcpts);
    return store_mailbox_add(st, &e, stored, &c->entry_id);
}

/* The customer sending the message: the relaying client's (the caller's), or
 * the user's for a Sent copy; 0 for none. STORE_OK or STORE_ERR. */
static int sender_customer(struct store *st, const struct queue_message *m, int64_t *out)
{
    *out = m->sender_customer_id;
    if (!*out && m->sent_copy && m->direction == DIR_OUTBOUND) {
        struct store_domain d;
        int rc = store_domain_get_by_id(st, m->sent_copy->domain_id, &d);
        if (rc == STORE_ERR)
            return rc;
        *out = rc == STORE_OK ? d.customer_id : 0;
    }
    return STORE_OK;
}

/* The archive's copies, in the same transaction: an accepted message is
 * archived exactly when it is queued, at no cost of its own in fsyncs. */
static int archive_message(struct store *st, const struct queue_message *m, const struct store_msg_new *row)
{
    struct archive_message a = {
        .queue_id = m->id,
        .blob = row->blob,
        .prefix = m->prefix,
        .sender = m->sender,
        .rcpts = m->rcpts,
        .nrcpt = m->nrcpt,
        .size = m->body_len,
        .received = row->received,
        .direction = m->direction,
        .sender_customer_id = row->sender_customer_id,
    };
    return archive_ingest(st, &a, NULL);
}

int queue_submit_run(struct store *st, struct blobstore *bs, const struct queue_message *m)
{
    int64_t now = time(NULL);
    struct store_msg_new row = {
        .size = m->body_len,
        .sender = m->sender,
        .prefix = m->prefix,
        .received = now,
        .client_addr = m->client_addr,
        .helo = m->helo,
        .direction = m->direction,
        .is_bounce = m->is_bounce,
        .nrcpt = m->nrcpt,
        .rcpts = m->rcpts,
    };
    memcpy(row.id, m->id, sizeof row.id);
    uint64_t stored = 0;
    if (blob_put(bs, st, m->body, m->body_len, row.blob, &stored) != 0) {
        log_err("%s: cannot store the message body (%zu bytes): %s", m->id, m->body_len,
                strerror(errno));
        return STORE_ERR;
    }
    /* The queue keeps the sending customer too: its admin manages the queued mail. */
    int rc = sender_customer(st, m, &row.sender_customer_id);
    if (rc == STORE_OK)
        rc = store_blob_add(st, row.blob, m->body_len, stored);
    if (rc == STORE_OK)
        rc = store_message_insert(st, &row);
    if (rc == STORE_OK && m->sent_copy)
        rc = add_sent_copy(st, m, row.blob, now, stored);
    if (rc == STORE_OK && !m->is_bounce && !m->no_archive)
        rc = archive_message(st, m, &row);
    return rc;
}

static int submit_job(struct store *st, struct blobstore *bs, void *arg)
{
    return queue_submit_run(st, bs, ((struct submit *)arg)->m);
}

static void submit_done(int rc, void *arg)
{
    struct submit *s = arg;
    if (s->done)
        s->done(rc, s->arg);
    free(s);
}

int queue_submit(struct store_writer *w, const struct queue_message *m, queue_submit_done done,
                 void *arg)
{
    struct submit *s = malloc(sizeof *s);
    if (!s) {
        log_err("%s: out of memory queueing the message", m->id);
        return -1;
    }
    *s = (struct submit){.m = m, .done = done, .arg = arg};
    if (store_writer_submit(w, submit_job, submit_done, s) != 0) {
        free(s);
        return -1;
    }
    return 0;
}
