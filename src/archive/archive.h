/*
 * archive.h — the 90-day rolling archive of all mail of subscribed customers
 * (issue 5): ingest, the full-text indexer, search scopes, release, retention.
 *
 * Ingest happens inside the transaction that queues a message
 * (queue_submit_run), so archiving costs no fsync of its own and an accepted
 * message is archived exactly when it is queued. Indexing happens behind: the
 * indexer thread parses archived messages that are not indexed yet (GMime,
 * mail/archive_text.h) and writes their full-text rows through the writer in
 * small batches; after a restart it simply carries on with what is left.
 * The records are store.h's "archive" section.
 */
#ifndef LB_ARCHIVE_ARCHIVE_H
#define LB_ARCHIVE_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "store/store.h"
#include "store/writer.h"
#include "util/config.h"

/* ---------------------------------------------------------------- ingest */

struct archive_message {
    const char *queue_id;
    const char *blob;          /* the blob the queue row references (exists in this transaction) */
    const char *prefix;        /* Received: lines */
    const char *sender;        /* envelope sender, "" for <> */
    const char *const *rcpts;  /* canonical envelope recipients */
    size_t nrcpt;
    uint64_t size;
    int64_t received;
    int direction;             /* the queue's: DIR_INBOUND (MX) or DIR_OUTBOUND (relayed, webmail, submission) */
    int64_t sender_customer_id; /* the customer sending it (queue.h; outbound for it); 0: none */
};

/*
 * Archives m for every customer involved whose subscription was running when
 * it arrived (directory_subscription_active and sub_start <= received): the
 * customers of the recipients' hosted domains (inbound for them) and, for
 * outbound mail, the sending customer (outbound for it, with all recipients;
 * never derived from the sender address). One entry per customer; none for bounces, for mail of
 * customers without a subscription, or for domains nobody hosts. Writer side,
 * inside the queueing transaction. STORE_OK (also when nothing was archived)
 * or STORE_ERR; *entries (may be NULL) gets the count.
 */
int archive_ingest(struct store *st, const struct archive_message *m, unsigned *entries);

/* ---------------------------------------------------------------- indexer */

struct archive_indexer;

/* Starts the indexer thread (its own read connection; writes go through w).
 * NULL with err on failure. */
struct archive_indexer *archive_indexer_start(const struct config *cfg, struct store_writer *w, char *err,
                                              size_t errlen);
/* New entries were committed: look now rather than at the next poll. Any thread. */
void archive_indexer_wake(struct archive_indexer *ix);
/* Stops and joins the thread (before the writer stops), frees ix. */
void archive_indexer_stop(struct archive_indexer *ix);

/* ---------------------------------------------------------------- retention */

/* One purge batch (store_archive_purge with before = now - archive_retention).
 * The daemon runs batches through the writer once a day and after start;
 * lifeboatctl archive purge runs them directly until nothing is left. */
int archive_purge_batch(struct store *st, const struct config *cfg, int64_t now, size_t limit, uint64_t *purged);

/* Entries per purge batch (one writer job each: short, acceptance shares the writer). */
#define ARCHIVE_PURGE_BATCH 500

struct archive_purger;

/* The daemon's rolling purge, on base's loop: a pass at start and every 24 h,
 * in writer jobs of ARCHIVE_PURGE_BATCH entries until nothing is left, then a
 * blob GC round; each pass is logged "archive: purged N entries older than
 * DATE". NULL with err on failure. */
struct archive_purger *archive_purger_start(struct event_base *base, const struct config *cfg,
                                            struct store_writer *w, char *err, size_t errlen);
/* A new archive_retention (SIGHUP) applies from the next pass. */
void archive_purger_reload(struct archive_purger *p, const struct config *cfg);
/* Frees p. Call after store_writer_stop: the done callback of a batch still
 * in the writer refers to p. */
void archive_purger_free(struct archive_purger *p);

/* ---------------------------------------------------------------- release */

struct archive_release {
    int64_t entry_id;
    const char *const *to;     /* canonical addresses; NULL: the entry's original recipients */
    size_t nto;
    const char *actor;         /* for the audit row and the log */
    /* out */
    char queue_id[QUEUEID_SIZE]; /* the new queue message, "" when nothing was queued */
    unsigned queued;           /* recipients queued for delivery to the customer's server */
    unsigned to_mailbox;       /* recipients whose copy went straight into their continuity mailbox */
};

/*
 * Delivers an archived message again (writer side, or lifeboatctl's own
 * transaction; one unit either way): each
 * recipient whose domain is in outage or recovering (continuity on) and who is
 * a registered, activated user gets the copy in their continuity INBOX at once
 * (never re-delivered at recovery: it is a copy of mail that was delivered
 * before); every other recipient is queued (a new queue message on the same
 * blob, DIR_INBOUND, the original envelope sender). Records an
 * "archive.release" audit row. Who may release to whom is the caller's check
 * (archive_release_allowed). to == NULL means the entry's recipients that are
 * addresses of its customer's domains (an outbound entry's outside
 * recipients are never mailed again). STORE_NOTFOUND: no such entry, or no
 * recipient left to release to (nothing is changed or recorded).
 */
int archive_release_run(struct store *st, struct archive_release *r, int64_t now);

/* 1 if a user may release entry e to addr (canonical), 0 if not (or on a
 * store error, logged). A release always stays with the entry's customer
 * (SPEC: "to the original recipients or chosen ones of the same customer"):
 * an operator may release to any address of a domain of the entry's
 * customer; an admin too, if it is their customer; a user only to their own
 * address or aliases, and only an entry of their customer they are a
 * participant of. */
int archive_release_allowed(struct store *st, const struct store_user *actor, const struct store_archive_entry *e,
                            const char *addr);

#endif
