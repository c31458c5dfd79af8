/*
 * queue_submit.c — the one way a message enters the queue (queue.h).
 *
 * The message becomes one writer job: on the writer thread it stores the body
 * as a blob, records the blob, then the message row (envelope and prefix) and
 * its recipient rows, inside the group's transaction. The prefix (Received:)
 * lives in the row, not in the blob, so identical bodies share one file. The
 * caller's done() runs on its loop once the group has committed (STORE_OK:
 * the message is on stable storage, answer 250) or failed (answer 451).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue/queue.h"
#include "util/log.h"

struct submit {
    const struct queue_message *m; /* the caller keeps it alive until done */
    queue_submit_done done;
    void *arg;
};

static int submit_job(struct store *st, struct blobstore *bs, void *arg)
{
    const struct queue_message *m = ((struct submit *)arg)->m;
    struct store_msg_new row = {
        .size = m->body_len,
        .sender = m->sender,
        .prefix = m->prefix,
        .received = time(NULL),
        .client_addr = m->client_addr,
        .helo = m->helo,
        .direction = m->direction,
        .is_bounce = m->is_bounce,
        .nrcpt = m->nrcpt,
        .rcpts = m->rcpts,
    };
    memcpy(row.id, m->id, sizeof row.id);
    uint64_t stored = 0;
    if (blob_put(bs, m->body, m->body_len, row.blob, &stored) != 0) {
        log_err("%s: cannot store the message body (%zu bytes): %s", m->id, m->body_len,
                strerror(errno));
        return STORE_ERR;
    }
    int rc = store_blob_add(st, row.blob, m->body_len, stored);
    if (rc == STORE_OK)
        rc = store_message_insert(st, &row);
    return rc;
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
