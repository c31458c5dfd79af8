/*
 * queue.h — putting messages into the queue, and the queue's policy.
 *
 * queue_submit is the one way a message enters lifeboat's queue: smtpd after
 * DATA, the bounce generator, later the webmail. It hands a job to the
 * group-commit writer that stores the body as a blob (fsync'd) and records the
 * message and its recipients in one transaction; done() runs on the caller's
 * loop once that is on stable storage (rc STORE_OK) or has failed (answer 451).
 *
 * The policy half says when to try again and when to give up.
 */
#ifndef LB_QUEUE_QUEUE_H
#define LB_QUEUE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "store/writer.h"

/* The Sent copy of a message an authenticated user sends (webmail or the
 * submission port): an entry in the user's Sent folder, added in the same
 * transaction as the queued message, so either both exist or neither. It is
 * marked for re-delivery to the customer's server when the domain sends its
 * outgoing mail there (continuity --outgoing-to-own-server) and is not normal. */
struct queue_sent_copy {
    int64_t user_id;
    int64_t domain_id;
    int64_t entry_id; /* out: the new Sent entry */
};

struct queue_message {
    char id[QUEUEID_SIZE];        /* set by the caller (queueid_new) so it can log it */
    const char *sender;           /* "" for the null sender */
    const char *const *rcpts;     /* canonical addresses */
    size_t nrcpt;
    const char *prefix;           /* header lines to prepend on delivery, CRLF ended, may be "" */
    const unsigned char *body;    /* the message as received (CRLF lines, dot-unstuffed) */
    size_t body_len;
    const char *client_addr;
    const char *helo;
    int direction;                /* enum store_direction */
    int is_bounce;
    struct queue_sent_copy *sent_copy; /* NULL: none */
    /* Outbound mail: the customer it is sent for, whose archive keeps it as
     * outbound — the customer whose --outbound-from the relaying client
     * matched. 0: a user's mail (the customer of sent_copy's domain) or mail
     * of the system (no sending customer). Never taken from the sender
     * address, which the client chose. */
    int64_t sender_customer_id;
    /* System mail that carries a credential (a password reset link): never
     * archived, so no administrator can read it. */
    int no_archive;
};

typedef void (*queue_submit_done)(int rc, void *arg);

/* The caller keeps m and everything it points to alive until done runs.
 * Returns 0, or -1 if the writer refused the job (done will not run). */
int queue_submit(struct store_writer *w, const struct queue_message *m, queue_submit_done done,
                 void *arg);

/* The writer job itself, for a caller that runs it through its own writer
 * wrapper (the HTTP threads wait for the commit instead of a loop callback).
 * Call on the writer thread inside a transaction; a STORE_* code. */
int queue_submit_run(struct store *st, struct blobstore *bs, const struct queue_message *m);

/* When to try a recipient again after its attempts-th failed attempt:
 * retry_min_backoff doubled per attempt, capped at retry_max_backoff. */
int64_t queue_next_attempt(const struct config *cfg, unsigned attempts, int64_t now);

/* 1 once a message received at `received` has outlived queue_lifetime. */
int queue_expired(const struct config *cfg, int64_t received, int64_t now);

#endif
