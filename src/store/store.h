/*
 * store.h — the only shared state of lifeboat, behind one narrow interface.
 *
 * Everything persistent goes through these calls: the directory (customers,
 * domains, users, aliases), the queue (messages and per-recipient state) and the
 * blob references. The embedded backend is SQLite in data_dir (WAL, migrations
 * numbered in store_schema.c); a PostgreSQL backend will implement the same calls.
 *
 * A struct store is one database connection: use it from one thread at a time.
 * lifeboatd opens one per thread for reads and does all of its writes through the
 * group-commit writer (writer.h), which owns its own connection. lifeboatctl opens
 * one and writes directly (SQLite serialises it against the daemon).
 *
 * Return codes: STORE_OK (0), STORE_NOTFOUND, STORE_EXISTS, STORE_ERR (< 0; the
 * backend has logged the cause). An add or update that names a missing row
 * (a domain's customer_id, an alias's user) is STORE_NOTFOUND; an update or
 * delete that matches no row is STORE_NOTFOUND too. Listing callbacks may call
 * other store functions on the same connection. Strings are copied into fixed fields; nothing
 * returned needs freeing unless a comment says so.
 */
#ifndef LB_STORE_STORE_H
#define LB_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"
#include "util/config.h"
#include "util/queueid.h"

enum { STORE_OK = 0, STORE_NOTFOUND = 1, STORE_EXISTS = 2, STORE_ERR = -1 };

struct store;

/* Opens (creating data_dir, the database and the blob folders if needed) and
 * migrates the schema to the current version. */
int store_open(const struct config *cfg, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);

/* Explicit transactions (BEGIN IMMEDIATE). Nested calls are an error. */
int store_begin(struct store *st);
int store_commit(struct store *st);
int store_rollback(struct store *st);
/* Savepoints inside a transaction, for the writer's per-job isolation. */
int store_savepoint(struct store *st);
int store_savepoint_release(struct store *st);
int store_savepoint_rollback(struct store *st);
/* How many store_savepoint levels are open (0 outside any). */
unsigned store_savepoint_depth(const struct store *st);
/* 1 while a transaction is open on this connection. */
int store_in_transaction(struct store *st);

/* ---------------------------------------------------------------- directory */

struct store_customer {
    int64_t id;
    char name[128];
    int64_t created;
    int64_t sub_start; /* 0: never subscribed */
    int64_t sub_end;   /* end of the committed term */
    int64_t sub_cancelled; /* 0: active */
};

struct store_domain {
    int64_t id;
    int64_t customer_id;
    char name[DOMAIN_MAX + 1]; /* lower case */
    char routes[1024];         /* "host[:port],host[:port]" tried in order */
    int recipient_check;       /* 1: unknown users get 550 5.1.1 at RCPT */
    char outbound_from[1024];  /* "CIDR,CIDR": clients allowed to relay out */
    char webhook[1024];
    char dkim_selector[64];
    char dkim_key_file[1024];
    int continuity;           /* 1: enabled */
    int outgoing_to_own;      /* --outgoing-to-own-server */
    int64_t created;
    /* Continuity state: read-only here, changed with store_domain_set_state and
     * store_domain_set_continuity (store_domain_update leaves these five alone). */
    int64_t continuity_since; /* when continuity was enabled (not retroactive) */
    int state;                /* enum domain_state */
    int64_t state_since;      /* a new domain is normal since it was added */
    char state_cause[256];
    int64_t outage_id;        /* event id that started the current/last outage, 0: none */
};

enum store_role { ROLE_USER = 0, ROLE_ADMIN = 1, ROLE_OPERATOR = 2 };

struct store_user {
    int64_t id;
    int64_t domain_id;
    char email[ADDR_MAX + 1]; /* lower case */
    char name[256];
    int role;                 /* enum store_role */
    char pw_hash[256];        /* argon2id string, "" : no password */
    int active;               /* activated */
    int suspended;
    char alt_email[ADDR_MAX + 1];
    int64_t created;
};

int store_customer_add(struct store *st, const char *name, int64_t *id_out);
int store_customer_get(struct store *st, const char *name, struct store_customer *out);
int store_customer_get_by_id(struct store *st, int64_t id, struct store_customer *out);
int store_customer_update(struct store *st, const struct store_customer *c);
int store_customer_list(struct store *st, int (*cb)(const struct store_customer *, void *), void *arg);

int store_domain_add(struct store *st, const struct store_domain *d, int64_t *id_out);
int store_domain_update(struct store *st, const struct store_domain *d); /* by d->id */
int store_domain_get(struct store *st, const char *name, struct store_domain *out);
int store_domain_get_by_id(struct store *st, int64_t id, struct store_domain *out);
/* The same inside a write transaction, locking the row until it ends: what
 * several nodes changing one domain's state at once take turns on. */
int store_domain_get_locked(struct store *st, int64_t id, struct store_domain *out);
int store_domain_list(struct store *st, int (*cb)(const struct store_domain *, void *), void *arg);
/* Sets the continuity settings of a domain: enabled, --outgoing-to-own-server,
 * and continuity_since (the caller keeps the old value when it only changes
 * the flag: enabling is not retroactive). STORE_NOTFOUND for an unknown domain. */
int store_domain_set_continuity(struct store *st, int64_t domain_id, int enabled, int outgoing_to_own,
                                int64_t since);

int store_user_add(struct store *st, const struct store_user *u, int64_t *id_out);
int store_user_update(struct store *st, const struct store_user *u); /* by u->id */
int store_user_get(struct store *st, const char *email, struct store_user *out);
int store_user_get_by_id(struct store *st, int64_t id, struct store_user *out);
/* Also drops the user's aliases and continuity mailbox entries (each deleted for
 * good as store_mailbox_delete does; directory_user_del refuses while some wait
 * for re-delivery). */
int store_user_del(struct store *st, int64_t id);
/* domain_id 0: all users. */
int store_user_list(struct store *st, int64_t domain_id, int (*cb)(const struct store_user *, void *),
                    void *arg);

/* Deleting a domain or a customer (store_directory_del.c); the rules are
 * directory's. Recipients in the domain still queued (held or not). */
int store_rcpt_pending_domain(struct store *st, const char *domain, unsigned *count);
/* Makes them final (RCPT_DELETED, last_reply = reason) and releases the
 * messages that have nothing pending left. *dropped (may be NULL). */
int store_rcpt_drop_domain(struct store *st, const char *domain, const char *reason, unsigned *dropped);
/* Deletes the domain and its event timeline; its users must be gone.
 * STORE_NOTFOUND: no such domain. */
int store_domain_del(struct store *st, int64_t id);
/* Deletes the customer (and its password policy); its domains, archive
 * entries and holds must be gone. STORE_NOTFOUND: no such customer. */
int store_customer_del(struct store *st, int64_t id);
/* The customer's archive entries and the oldest one's received time (0: none). */
int store_archive_count_customer(struct store *st, int64_t customer_id, uint64_t *count, int64_t *oldest);

/* Aliases map an extra address (any hosted domain) to one user. */
/* A page of the users of a customer and/or domain (0: any) whose address,
 * name or one of whose aliases contains text (case-insensitive for ASCII; ""
 * or NULL: all), in address order; *total gets the count of all matches. */
struct store_user_query {
    int64_t customer_id, domain_id;
    const char *text;
    size_t offset, limit;
};
int store_user_search(struct store *st, const struct store_user_query *q,
                      int (*cb)(const struct store_user *, void *), void *arg, uint64_t *total);

int store_alias_add(struct store *st, int64_t user_id, const char *alias);
int store_alias_del(struct store *st, const char *alias);
int store_alias_get(struct store *st, const char *alias, int64_t *user_id_out);
/* user_id 0: all aliases. */
int store_alias_list(struct store *st, int64_t user_id,
                     int (*cb)(const char *alias, const char *user_email, void *), void *arg);

/* -------------------------------------------------------------------- queue */

enum store_rcpt_state {
    RCPT_QUEUED = 0,      /* waiting for (re)delivery */
    RCPT_SENT = 1,        /* accepted by the next hop: final */
    RCPT_BOUNCED = 2,     /* permanent failure or expired, DSN queued: final */
    RCPT_CONTINUITY = 3,  /* diverted into a continuity mailbox */
    RCPT_REDELIVERED = 4, /* drained back to the customer's server: final */
    RCPT_DELETED = 5,     /* deleted by the user, never re-delivered: final */
};

enum store_direction { DIR_INBOUND = 0, DIR_OUTBOUND = 1 };

#define BLOB_ID_SIZE 65 /* sha256 hex + NUL */

struct store_msg_new {
    char id[QUEUEID_SIZE];
    char blob[BLOB_ID_SIZE];  /* already on stable storage (blob_put) */
    uint64_t size;            /* bytes of the body as received */
    const char *sender;       /* "" : null sender <> */
    const char *prefix;       /* header lines prepended on delivery (Received:), CRLF ended */
    int64_t received;         /* time(NULL) of acceptance */
    const char *client_addr;
    const char *helo;
    int direction;            /* enum store_direction */
    int is_bounce;            /* a DSN we generated: never bounce it again */
    int64_t sender_customer_id; /* outbound: the customer sending it (queue.h), 0: none */
    size_t nrcpt;
    const char *const *rcpts; /* canonical addresses */
};

struct store_msg {
    char id[QUEUEID_SIZE];
    char blob[BLOB_ID_SIZE];
    uint64_t size;
    char sender[ADDR_MAX + 1];
    char prefix[2048];
    int64_t received;
    char client_addr[64];
    char helo[256];
    int direction;
    int is_bounce;
    int64_t sender_customer_id; /* 0: none (inbound, system mail, or queued before migration 8) */
};

struct store_rcpt {
    int64_t id;
    char msg_id[QUEUEID_SIZE];
    char rcpt[ADDR_MAX + 1];
    char domain[DOMAIN_MAX + 1];
    int state;             /* enum store_rcpt_state */
    unsigned attempts;
    int64_t next_attempt;  /* time(NULL) */
    int64_t received;      /* of the message */
    char last_reply[512];
    int64_t mailbox_entry_id; /* RCPT_CONTINUITY and after: the entry holding the copy, 0: none */
    int pre_continuity;       /* 1: queued already when continuity was enabled for its domain:
                               * stays in the ordinary queue (store_rcpt_mark_pre_continuity) */
    int held;                 /* 1: on hold (store_queue_hold): not tried until released */
};

/* Inserts the message and its recipients (state queued, next_attempt = received)
 * and takes one reference on the blob, which must be recorded already
 * (store_blob_add; STORE_NOTFOUND otherwise). Recipients are stored lower-case.
 * Counts the recipients of hosted domains as accepted (statistics, below).
 * STORE_EXISTS if the queue ID is taken. Call inside a transaction. */
int store_message_insert(struct store *st, const struct store_msg_new *m);
int store_message_get(struct store *st, const char *id, struct store_msg *out);

/* Recipients in state queued and not held with next_attempt <= now, soonest
 * first, at most limit of them (0: no limit). The callback returns non-zero to
 * stop early. */
int store_rcpt_due(struct store *st, int64_t now, size_t limit,
                   int (*cb)(const struct store_rcpt *, void *), void *arg);
/* Earliest next_attempt among queued recipients not held; STORE_NOTFOUND when none. */
/* The runner's store_rcpt_due: the same rows, claimed for this node until
 * `until` (see "several nodes" below); what another node holds under a live
 * lease is left out. */
int store_rcpt_claim_due(struct store *st, int64_t now, int64_t until, size_t limit,
                         int (*cb)(const struct store_rcpt *, void *), void *arg);
int store_rcpt_next_due(struct store *st, int64_t *when_out);
int store_rcpt_get(struct store *st, int64_t id, struct store_rcpt *out);
/* Records an attempt's outcome: one transition. RCPT_SENT, RCPT_QUEUED (a
 * deferral) and RCPT_BOUNCED are counted as delivered, deferred and bounced in
 * the statistics of the recipient's domain when we host it (its own server). */
int store_rcpt_update(struct store *st, int64_t id, int state, unsigned attempts, int64_t next_attempt,
                      const char *last_reply);
/* All recipients of one message. */
int store_rcpt_list(struct store *st, const char *msg_id, int (*cb)(const struct store_rcpt *, void *),
                    void *arg);
/* Makes every queued recipient that is not held due now (lifeboatctl queue flush). */
int store_queue_flush(struct store *st);
/* Marks every queued recipient of the domain (recipient address's domain)
 * pre_continuity, for directory_continuity_enable in its transaction: mail
 * accepted before continuity was enabled is never diverted, whatever the
 * resolution of the clocks (received and continuity_since are seconds, and a
 * deferral and an enable can fall into the same one). *marked (may be NULL)
 * gets the count. */
int store_rcpt_mark_pre_continuity(struct store *st, const char *domain, unsigned *marked);

/* When no recipient of the message is left in a non-final state, deletes the
 * message and drops its blob reference. *released is set to 1 when that
 * happened. Call inside a transaction. */
int store_message_release_if_done(struct store *st, const char *id, int *released);
/* Deletes a message and all of its recipients regardless of state (queue delete). */
int store_message_delete(struct store *st, const char *id);

/* Messages that still have queued recipients, oldest first (queue list). */
int store_queue_list(struct store *st, int (*cb)(const struct store_msg *, void *), void *arg);

/*
 * The queue as one customer's administrator sees and manages it. A message's
 * share for customer_id is its recipients in that customer's domains, and all
 * of its recipients when that customer sent it (sender_customer_id); for
 * customer_id 0 (an operator) it is every recipient. A message without a
 * recipient in the share is not there for that customer: STORE_NOTFOUND, as
 * for a missing one. A message addressed to two customers is held, released
 * or deleted only in the asking customer's share.
 */
/* Messages with a queued recipient in the share, oldest first. */
int store_queue_list_scoped(struct store *st, int64_t customer_id, int (*cb)(const struct store_msg *, void *),
                            void *arg);
/* The message's recipients in the share (any state), in insertion order. */
int store_queue_rcpts(struct store *st, const char *msg_id, int64_t customer_id,
                      int (*cb)(const struct store_rcpt *, void *), void *arg);
/* Holds (hold = 1) or releases (0) the queued recipients in the share. A held
 * recipient is not tried (store_rcpt_due skips it), not made due by a flush,
 * and does not expire while held (what Postfix's hold queue does): a release
 * makes it due now, and one past queue_lifetime then bounces at its next
 * temporary failure. *changed (may be NULL) gets how many changed. */
int store_queue_hold(struct store *st, const char *msg_id, int64_t customer_id, int hold, unsigned *changed);
/* Deletes the message from the queue: all of it (as store_message_delete)
 * when the share is every recipient, else the share's queued recipients (the
 * message goes when nothing is left pending). */
int store_queue_delete(struct store *st, const char *msg_id, int64_t customer_id);
/* Makes the queued, not held recipients in customer_id's share due now; only
 * those of recipient domain `domain` when it is not NULL. *flushed (may be
 * NULL) gets how many. */
int store_queue_flush_scoped(struct store *st, int64_t customer_id, const char *domain, unsigned *flushed);

/* The queue's size for /metrics: messages in the queue, recipients waiting
 * (RCPT_QUEUED), of those the ones that failed at least once, and recipients
 * held in continuity mailboxes (RCPT_CONTINUITY). */
struct store_queue_stats {
    uint64_t messages;
    uint64_t queued;
    uint64_t deferred;
    uint64_t continuity;
};
int store_queue_stats(struct store *st, struct store_queue_stats *out);

/* -------------------------------------------------------------------- blobs */

/* Reference counts of blobs (the bodies live in blob.h's store).
 *
 * store_blob_add records a blob just written by blob_put (no reference yet; a
 * no-op when it is known). The row that uses it must then take its reference
 * in the same transaction (store_message_insert does), or the GC collects it.
 * store_blob_ref records it if new and takes one reference, for rows that keep
 * their own count (mailbox and archive entries). */
int store_blob_add(struct store *st, const char *blob_id, uint64_t size, uint64_t stored_size);
int store_blob_ref(struct store *st, const char *blob_id, uint64_t size, uint64_t stored_size);
int store_blob_unref(struct store *st, const char *blob_id);
/* Blobs whose count fell to zero, and the deletion of such a row (refs = 0
 * still): the writer's GC, through blob.h's blob_forget, which removes the
 * body too. */
int store_blob_unreferenced(struct store *st, size_t limit, int (*cb)(const char *blob_id, void *),
                            void *arg);
int store_blob_forget(struct store *st, const char *blob_id);
/* 1 if the store has a row for the blob (used by start-up recovery). */
int store_blob_known(struct store *st, const char *blob_id);

/* --------------------------------------------------------------- continuity */

/*
 * Continuity mailboxes and the per-domain state (SPEC.md "Continuity
 * behaviour"). Every call that changes several rows is one unit (a savepoint
 * inside the caller's transaction, its own transaction outside one), so a crash
 * leaves each entry and its recipients either before or after a transition.
 */

enum domain_state { DOMAIN_NORMAL = 0, DOMAIN_OUTAGE = 1, DOMAIN_RECOVERING = 2 };

struct store_event {
    int64_t id;
    int64_t domain_id;
    int64_t at;
    int from_state, to_state; /* enum domain_state */
    char cause[256];
};

/* Moves a domain to a new state and records the event, in one statement group
 * (call inside a transaction). Entering DOMAIN_OUTAGE from DOMAIN_NORMAL sets
 * outage_id to the new event's id (a new outage: its counts start at zero, and
 * the tombstones of earlier outages are pruned). Asking for the state the
 * domain is in already changes nothing and gives *event_id_out = 0 (no event,
 * no alert). The cause is cut to 255 bytes. STORE_NOTFOUND for an unknown
 * domain. event_id_out may be NULL. */
int store_domain_set_state(struct store *st, int64_t domain_id, int state, const char *cause, int64_t now,
                           int64_t *event_id_out);
/* Newest first, at most limit (0: all); domain_id 0: all domains. */
int store_event_list(struct store *st, int64_t domain_id, size_t limit,
                     int (*cb)(const struct store_event *, void *), void *arg);
/* The same within one customer's domains (customer_id 0: all customers). */
int store_event_list_scoped(struct store *st, int64_t customer_id, int64_t domain_id, size_t limit,
                            int (*cb)(const struct store_event *, void *), void *arg);

enum mailbox_folder { FOLDER_INBOX = 0, FOLDER_SENT = 1, FOLDER_TRASH = 2 };

enum redeliver_state {
    REDELIVER_NONE = 0,    /* not to be re-delivered (e.g. released from the archive) */
    REDELIVER_WAITING = 1, /* to go back to the customer's server when it recovers */
    REDELIVER_DONE = 2,    /* re-delivered: final */
    REDELIVER_DELETED = 3, /* deleted by the user before re-delivery: never re-delivered */
};

/* A message in a user's continuity mailbox. It references the message's blob
 * (its own reference) and keeps the envelope recipients it stands for, so the
 * drain sends it to the same addresses the sender used. */
struct store_mailbox_entry {
    int64_t id;
    int64_t user_id;
    int64_t domain_id;         /* the user's domain: whose drain re-delivers it */
    char msg_id[QUEUEID_SIZE]; /* the queue ID it came in with */
    char blob[BLOB_ID_SIZE];
    char prefix[2048];         /* Received: lines, as on the queued message */
    char sender[ADDR_MAX + 1];
    char rcpts[1024];          /* comma-separated envelope recipients of this user */
    uint64_t size;
    int64_t received;          /* when it entered the mailbox */
    int folder;                /* enum mailbox_folder */
    int seen, flagged;
    int redeliver;             /* enum redeliver_state */
    int64_t outage_id;         /* the outage it was diverted in, 0: none */
    int direction;             /* DIR_INBOUND, or DIR_OUTBOUND for mail the user sent */
};

/* Diverts one queued recipient into its user's INBOX: creates the user's entry
 * for this message (one per user and message, whatever the number of their
 * addresses among the recipients; the entry takes a blob reference, starts
 * REDELIVER_WAITING, received = now) or adds the address to the existing one,
 * and sets the recipient to RCPT_CONTINUITY, linked to the entry
 * (store_rcpt.mailbox_entry_id). Then releases the message if nothing else is
 * pending. Call inside a transaction. entry_id_out may be NULL.
 * A recipient diverted already gives STORE_OK and its entry again (nothing
 * changes). If the user deleted this message for good meanwhile, the recipient
 * becomes RCPT_DELETED instead. STORE_NOTFOUND: no such recipient or user;
 * STORE_ERR: the recipient is final, or the entry's rcpts would not fit. */
int store_mailbox_divert(struct store *st, int64_t rcpt_id, int64_t user_id, int64_t outage_id,
                         int64_t now, int64_t *entry_id_out);
/* Adds an entry that is not a diverted recipient: the Sent copy of mail a user
 * sent from continuity (FOLDER_SENT, DIR_OUTBOUND; REDELIVER_WAITING when the
 * domain has --outgoing-to-own-server), or a message released from the archive.
 * Uses every field of e but id and domain_id (the user's domain is taken); takes
 * a reference on e->blob (recorded if new, with stored_size). STORE_NOTFOUND: no such user or domain; STORE_EXISTS: the
 * user has an entry for this msg_id and direction already. */
int store_mailbox_add(struct store *st, const struct store_mailbox_entry *e, uint64_t stored_size,
                      int64_t *id_out);
/* Entries deleted for good are STORE_NOTFOUND in get and never listed. */
int store_mailbox_get(struct store *st, int64_t entry_id, struct store_mailbox_entry *out);
/* A user's entries in one folder, newest first; folder -1: all folders. */
int store_mailbox_list(struct store *st, int64_t user_id, int folder,
                       int (*cb)(const struct store_mailbox_entry *, void *), void *arg);
/* Entries of a domain's users waiting for re-delivery, oldest first (received,
 * then id), at most limit (0: all). Of every outage, and whatever their folder. */
int store_mailbox_redelivery_due(struct store *st, int64_t domain_id, size_t limit,
                                 int (*cb)(const struct store_mailbox_entry *, void *), void *arg);
/* The drain delivered the entry: REDELIVER_DONE, and its recipients RCPT_REDELIVERED
 * (releasing the queued message when that was the last one). One transaction's work.
 * STORE_OK also when it was done already; STORE_NOTFOUND when there is no such
 * entry or it is not waiting (deleted or marked meanwhile: nothing changes). */
int store_mailbox_redelivered(struct store *st, int64_t entry_id);
/* The drain's store_mailbox_redelivery_due: the same entries, claimed for this
 * node until `until`; what another node holds under a live lease is left out. */
int store_mailbox_claim_redelivery(struct store *st, int64_t domain_id, int64_t now, int64_t until, size_t limit,
                                   int (*cb)(const struct store_mailbox_entry *, void *), void *arg);
/* Moves an entry between folders; moving to Trash keeps it re-deliverable. */
int store_mailbox_move(struct store *st, int64_t entry_id, int folder);
/* Sets seen and flagged (-1: leave alone). */
int store_mailbox_set_flags(struct store *st, int64_t entry_id, int seen, int flagged);
/* Deleted for good: the entry goes (and its blob reference); if it was waiting,
 * it is counted as deleted (REDELIVER_DELETED) and its recipients RCPT_DELETED.
 * An entry of an outage (outage_id != 0) stays behind as an invisible tombstone
 * so that outage's counts do not change. STORE_NOTFOUND if it is gone already. */
int store_mailbox_delete(struct store *st, int64_t entry_id);
/* Marks / unmarks an entry as never to be re-delivered (delete to Trash, restore):
 * REDELIVER_NONE, _WAITING or _DELETED. Its recipients stay RCPT_CONTINUITY
 * until it is re-delivered or deleted for good. REDELIVER_DONE is final: asking
 * to change it is STORE_OK and changes nothing (never a second delivery). */
int store_mailbox_set_redeliver(struct store *st, int64_t entry_id, int redeliver);

/* Per folder of one user (webmail's folder list). */
struct store_folder_counts {
    uint64_t total[3], unread[3]; /* by enum mailbox_folder */
};
int store_mailbox_folder_counts(struct store *st, int64_t user_id, struct store_folder_counts *out);

/* "This outage" is the domain's outage_id (the current one, or the last one
 * once the domain is normal again); all zero but waiting when it never had one.
 * held = redelivered + deleted + still waiting or marked from that outage. */
struct store_continuity_counts {
    uint64_t held;        /* entries diverted during the domain's current/last outage (deleted ones too) */
    uint64_t waiting;     /* of all entries, still to re-deliver */
    uint64_t redelivered; /* of this outage's entries */
    uint64_t deleted;     /* of this outage's entries */
};
/* STORE_NOTFOUND for an unknown domain. */
int store_continuity_counts(struct store *st, int64_t domain_id, struct store_continuity_counts *out);

/* --------------------------------------------------------------- statistics */

/*
 * Per-minute counters per hosted domain (store_stats.c, migration 8), for the
 * outage dashboard. Every counter counts recipients (copies: a message to
 * three users of a domain is three), because every change of the queue is per
 * recipient. Each is moved by the store call that makes the change, inside its
 * transaction, so the counts are exact and survive a crash:
 *   accepted     store_message_insert: a recipient in a hosted domain queued
 *                (SMTP, webmail, submission, our DSNs, a release from the archive)
 *   delivered    store_rcpt_update to RCPT_SENT: handed to the domain's own server
 *   deferred     store_rcpt_update to RCPT_QUEUED: a temporary failure, each attempt
 *   bounced      store_rcpt_update to RCPT_BOUNCED (refused, or expired)
 *   diverted     store_mailbox_divert: a recipient moved into a continuity mailbox
 *   redelivered  store_mailbox_redelivered: the addresses of a mailbox entry the
 *                drain handed back to the customer's server
 * All under the recipient's domain; redelivered under the entry's domain, whose
 * server took it. Mail to domains we do not host (outbound mail to the
 * internet) is not counted: the chart is about the customers' own servers.
 */
enum store_stat {
    STAT_ACCEPTED = 0,
    STAT_DELIVERED,
    STAT_DIVERTED,
    STAT_REDELIVERED,
    STAT_DEFERRED,
    STAT_BOUNCED,
    STAT_NCOUNTERS
};

/* How long minutes are kept (the daemon's daily retention pass purges older ones). */
#define STATS_RETENTION (48 * 3600)

struct store_stats_minute {
    int64_t minute;                /* the minute's first second (unix time) */
    uint64_t n[STAT_NCOUNTERS];    /* by enum store_stat */
};

/* Adds n to a counter of the domain for the minute of at (tests, tools). */
int store_stats_add(struct store *st, int64_t domain_id, int counter, int64_t at, uint64_t n);
/* The minutes from the one holding `from` on, oldest first, only those in
 * which something was counted: one domain's (domain_id != 0; the caller checked
 * that it is the customer's), else one customer's domains summed (customer_id
 * != 0), else all domains summed. */
int store_stats_list(struct store *st, int64_t customer_id, int64_t domain_id, int64_t from,
                     int (*cb)(const struct store_stats_minute *, void *), void *arg);
/* Deletes the minutes before `before`; *purged (may be NULL) gets the count. */
int store_stats_purge(struct store *st, int64_t before, unsigned *purged);

/* ------------------------------------------------------------------ archive */

/*
 * The 90-day archive (store_archive.c, migration 5). One entry per message and
 * customer involved (a message between two customers is archived for each,
 * inbound for one, outbound for the other); each entry holds one reference on
 * the message's blob (single instance: nothing is copied). Its participants
 * (envelope sender and the customer's envelope recipients) are rows of their
 * own, so "mail to or from my addresses" is an index lookup. The full-text
 * index is filled behind acceptance by the indexer (archive.h): an entry is
 * searchable by its envelope at once and by its text once indexed.
 */

enum archive_addr_kind { ARCHIVE_ADDR_FROM = 0, ARCHIVE_ADDR_TO = 1 };

struct store_archive_entry {
    int64_t id;                /* increases with arrival: newest first is id DESC */
    int64_t customer_id;
    char msg_id[QUEUEID_SIZE]; /* the queue ID it came in with */
    char blob[BLOB_ID_SIZE];
    char prefix[2048];         /* Received: lines, as queued (raw = prefix + blob) */
    int direction;             /* DIR_INBOUND or DIR_OUTBOUND, as seen by this customer */
    char sender[ADDR_MAX + 1]; /* envelope sender, "" for <> */
    int64_t received;          /* when lifeboat accepted it: retention counts from here */
    uint64_t size;
    /* Filled by the indexer (indexed = 1); until then empty/0. */
    int indexed;
    int64_t date;              /* the Date: header, or received when it has none or a bad one */
    char subject[512];         /* decoded, UTF-8 */
    char from_hdr[512];        /* the From: header, decoded */
    char to_hdr[1024];         /* To: and Cc:, decoded, cut to fit */
    int has_attachment;
};

/* Adds an entry (e->id ignored) with its participants: sender as
 * ARCHIVE_ADDR_FROM (unless ""), each of rcpts as ARCHIVE_ADDR_TO, and takes a
 * blob reference (the blob row must exist: call inside the transaction that
 * stored it or that holds another reference). */
int store_archive_add(struct store *st, const struct store_archive_entry *e, const char *const *rcpts,
                      size_t nrcpt, int64_t *id_out);
/* STORE_NOTFOUND when purged or never there. */
int store_archive_get(struct store *st, int64_t id, struct store_archive_entry *out);
/* The same inside a write transaction, keeping the entry (and so its blob
 * reference) from a purge on another node until the transaction ends: what a
 * release that takes new references on the blob needs. */
int store_archive_get_locked(struct store *st, int64_t id, struct store_archive_entry *out);
/* The entry's participants of one kind, in insertion order. */
int store_archive_addrs(struct store *st, int64_t id, int kind, int (*cb)(const char *addr, void *), void *arg);

/* Entries not yet indexed, oldest first, at most limit. */
int store_archive_unindexed(struct store *st, size_t limit,
                            int (*cb)(const struct store_archive_entry *, void *), void *arg);

/* What the indexer extracted from one message (mail/ does the parsing). */
struct store_archive_text {
    int64_t id;
    int64_t date;
    const char *subject, *from_hdr, *to_hdr; /* to_hdr: To and Cc */
    const char *body;                        /* text of the body parts, HTML turned to text */
    const char *attachments;                 /* attachment file names, space-separated */
    int has_attachment;
};
/* Writes the full-text row and the header fields, sets indexed = 1. An entry
 * purged meanwhile is STORE_NOTFOUND (nothing written). Inside a transaction
 * it opens no savepoint of its own (FTS5 flushes at each): on STORE_ERR the
 * caller must roll back (a writer job just returns the error). */
int store_archive_index(struct store *st, const struct store_archive_text *t);

/* A search. Scope: customer_id (an admin: the customer's entries; 0: every
 * customer, an operator), narrowed by user_addrs when given (a user: entries
 * where one of these addresses is a participant; pass the user's customer_id
 * too, or they would also see the copies other customers keep of mail they
 * exchanged). Filters are ANDed; NULL/""/0/-1 means "any". text is split into
 * words at white space; each word is matched as an FTS5 string (a phrase of
 * its tokens), never as query syntax. */
struct store_archive_query {
    int64_t customer_id;
    const char *const *user_addrs;
    size_t nuser_addrs;
    const char *text;      /* words, all of which must occur (subject, from, to, body, attachment names) */
    const char *from;      /* a participant of kind FROM (exact address), or its words in From: */
    const char *to;        /* a participant of kind TO (exact address), or its words in To:/Cc: */
    const char *domain;    /* a participant's address is in this domain (lifeboatctl --domain) */
    int64_t after, before; /* date >= after, date < before (0: open) */
    int direction;         /* -1 any */
    int has_attachment;    /* -1 any */
    int64_t before_id;     /* id < before_id, 0: no bound (keyset paging: the last id seen) */
    uint64_t offset;
    unsigned limit;
};
/* Calls cb for each matching entry, newest first (id DESC), offset/limit
 * applied; *total (may be NULL) gets the number of matches, counted up to
 * ARCHIVE_COUNT_MAX: more than that gives ARCHIVE_COUNT_MAX + 1 ("10000+"). */
#define ARCHIVE_COUNT_MAX 10000
int store_archive_search(struct store *st, const struct store_archive_query *q,
                         int (*cb)(const struct store_archive_entry *, void *), void *arg, uint64_t *total);

/* Retention: deletes at most limit entries received before `before` that no
 * hold keeps (their participants and full-text rows go too; blob references
 * are dropped, so the blob GC frees what nothing else uses). *purged gets the
 * count; call again while it equals limit. */
int store_archive_purge(struct store *st, int64_t before, size_t limit, uint64_t *purged);

/* Legal holds: per customer (user_id 0) or per user (their address and aliases
 * at purge time; the address is kept in the hold, so it still holds after the
 * user is deleted). A held entry is kept past the retention window until the
 * hold is released. */
struct store_archive_hold {
    int64_t id;
    int64_t customer_id;
    int64_t user_id; /* 0: the whole customer */
    char email[ADDR_MAX + 1]; /* the user's address (set by hold_add), "" for a customer hold */
    int64_t created;
    char created_by[ADDR_MAX + 64];
    int by_operator; /* placed by an operator (or lifeboatctl): a customer admin cannot lift it */
};
/* STORE_EXISTS when the same hold is in place already; STORE_NOTFOUND when
 * the customer or the user (user_id != 0) does not exist. */
int store_archive_hold_add(struct store *st, const struct store_archive_hold *h, int64_t *id_out);
/* Lifts a hold. STORE_NOTFOUND when there was no such hold; by a customer
 * admin (operator = 0), an operator's hold stays and the answer is
 * STORE_EXISTS (it is there, but not theirs to lift). */
int store_archive_hold_del(struct store *st, int64_t customer_id, int64_t user_id, int operator);
int store_archive_hold_list(struct store *st, int64_t customer_id /* 0: all */,
                            int (*cb)(const struct store_archive_hold *, void *), void *arg);

/* The audit trail: every admin view, export, release and hold (who, when, what). */
struct store_audit {
    int64_t id;
    int64_t at;
    int64_t customer_id;             /* whose data, 0: none/global */
    char actor[ADDR_MAX + 64];       /* "alice@acme.test" or "lifeboatctl (uid 0)" */
    char action[64];                 /* "archive.view", "archive.export", "archive.release", "archive.hold", ... */
    char target[256];                /* "archive:123", "user:bob@acme.test", "customer:acme" */
    char detail[512];                /* e.g. the search of an export, the recipients of a release */
};
int store_audit_add(struct store *st, const struct store_audit *a);
/* Newest first, at most limit (0: all), of one customer (0: all). */
int store_audit_list(struct store *st, int64_t customer_id, size_t limit,
                     int (*cb)(const struct store_audit *, void *), void *arg);

/* ------------------------------------------------------ webmail sessions (http) */

/*
 * Sessions of the HTTP API and the login failures its lockout counts
 * (store_sessions.c, migration 3). The session token itself is never stored:
 * token_hash is the hex BLAKE2b of the cookie's 256-bit token (http computes
 * it), so a copy of the database opens no session. A session goes with its
 * user (store_user_del).
 */

#define SESSION_HASH_SIZE 65 /* 32-byte hash in hex + NUL */
#define SESSION_CSRF_SIZE 65 /* 32 random bytes in hex + NUL */

struct store_session {
    char token_hash[SESSION_HASH_SIZE];
    int64_t user_id;
    char csrf[SESSION_CSRF_SIZE];
    int64_t created;   /* absolute expiry counts from here */
    int64_t last_seen; /* idle expiry counts from here */
    char client_addr[64];
};

/* STORE_EXISTS if the hash is taken, STORE_NOTFOUND if the user is not. */
int store_session_add(struct store *st, const struct store_session *s);
int store_session_get(struct store *st, const char *token_hash, struct store_session *out);
/* Sets last_seen. STORE_NOTFOUND if the session is gone. */
int store_session_touch(struct store *st, const char *token_hash, int64_t now);
/* STORE_NOTFOUND if the session is gone already. */
int store_session_del(struct store *st, const char *token_hash);
/* Deletes every session of a user (password change, suspension). */
int store_session_del_user(struct store *st, int64_t user_id);
/* Deletes sessions idle since before idle_before or created before
 * created_before; *purged (may be NULL) gets the count. */
int store_session_purge(struct store *st, int64_t idle_before, int64_t created_before, unsigned *purged);

/* Records one failed login under key ("user:ID", "account:EMAIL", "addr:IP");
 * pending: an attempt whose password is still being checked. *id_out (may be
 * NULL) gets its row, for store_login_failure_settle and _del. */
int store_login_failure_add(struct store *st, const char *key, int64_t at, int pending, int64_t *id_out);
/* The attempt failed: its row is an ordinary failure now. */
int store_login_failure_settle(struct store *st, int64_t id);
/* Forgets one row (an attempt counted in advance that succeeded). */
int store_login_failure_del(struct store *st, int64_t id);
/* Rows of key at or after since: settled ones into *settled, pending ones
 * into *pending (a pending row from before stale_before counts as settled: its
 * checker is gone). */
int store_login_failure_counts(struct store *st, const char *key, int64_t since, int64_t stale_before,
                               unsigned *settled, unsigned *pending);
/* Failures of key at or after since, pending or not. */
int store_login_failure_count(struct store *st, const char *key, int64_t since, unsigned *count);
/* Forgets the failures of key (a successful login); attempts still being
 * checked stay (they settle or go themselves). */
int store_login_failure_clear(struct store *st, const char *key);
/* Forgets every failure before before (they no longer count). */
int store_login_failure_purge(struct store *st, int64_t before);

/* ------------------------------------------------------ passwords (policy, reset) */

/*
 * Password policies per customer and password reset tokens (store_password.c,
 * migration 4). The rules (defaults, what a password must contain) are
 * directory's; here only their records. A reset token is never stored: token_hash
 * is the hex SHA-256 of the token mailed to the user (http computes it).
 */

struct store_password_policy {
    int64_t customer_id;
    unsigned min_length; /* in characters (UTF-8 code points) */
    int upper, lower, digit, special; /* 1: at least one of that class is required */
};

/* STORE_NOTFOUND when the customer has no policy of its own. */
int store_password_policy_get(struct store *st, int64_t customer_id, struct store_password_policy *out);
/* Creates or replaces the customer's policy. STORE_NOTFOUND: no such customer. */
int store_password_policy_set(struct store *st, const struct store_password_policy *p);

/* Sets a user's password hash and deletes the user's sessions but the one
 * whose token hash is keep_session (NULL or "": all of them), in one unit.
 * STORE_NOTFOUND: no such user. */
int store_user_set_password(struct store *st, int64_t user_id, const char *pw_hash, const char *keep_session);

#define PASSWORD_RESET_HASH_SIZE 65 /* SHA-256 in hex + NUL */

struct store_password_reset {
    char token_hash[PASSWORD_RESET_HASH_SIZE];
    int64_t user_id;
    int64_t created;
    int64_t expires;
    int64_t used; /* when it was used or voided; 0: usable until expires */
};

/* STORE_EXISTS if the hash is taken, STORE_NOTFOUND if the user is not. */
int store_password_reset_add(struct store *st, const struct store_password_reset *r);
/* Any state (used, expired): the caller decides. */
int store_password_reset_get(struct store *st, const char *token_hash, struct store_password_reset *out);
/* Uses a token: only an unused one that has not expired at now.
 * STORE_NOTFOUND when there is none such (unknown, used, voided, expired). */
int store_password_reset_use(struct store *st, const char *token_hash, int64_t now);
/* Voids every unused token of the user (a newer request, a reset done). */
int store_password_reset_void_user(struct store *st, int64_t user_id, int64_t now);
/* Tokens made for the user at or after since, used or not (reset mails sent). */
int store_password_reset_count(struct store *st, int64_t user_id, int64_t since, unsigned *count);
/* Deletes the tokens that expired before before. */
int store_password_reset_purge(struct store *st, int64_t before);

/* Reset requests per client address, for their rate limit: one row each;
 * count those at or after since; forget those before before. */
int store_password_reset_request_add(struct store *st, const char *client_addr, int64_t at);
int store_password_reset_request_count(struct store *st, const char *client_addr, int64_t since,
                                       unsigned *count);
int store_password_reset_request_purge(struct store *st, int64_t before);

/* ------------------------------------------------------------------ LDAP */

/*
 * LDAP / Active Directory records (store_ldap.c, migration 7): per domain the
 * directory's settings and the last sync's report; per user made by the sync
 * its DN, the cached argon2id hash of the last password the directory
 * accepted, and whether the sync suspended it; aliases the sync made; every
 * user's last successful login. What a sync does is directory's.
 */

struct store_ldap_settings {
    int64_t domain_id;
    char url[512];           /* ldap://host[:port] or ldaps://host[:port] */
    char bind_dn[1024];
    char bind_password[512]; /* a secret: never logged, never shown */
    char base[1024];
    char filter[1024];
    int64_t interval;        /* seconds between periodic syncs */
    int starttls;            /* ldap:// with StartTLS */
    int64_t updated;
};
/* STORE_NOTFOUND: the domain has no directory. */
int store_ldap_settings_get(struct store *st, int64_t domain_id, struct store_ldap_settings *out);
/* Creates or replaces. STORE_NOTFOUND: no such domain. */
int store_ldap_settings_set(struct store *st, const struct store_ldap_settings *s);
int store_ldap_settings_list(struct store *st, int (*cb)(const struct store_ldap_settings *, void *), void *arg);

#define STORE_LDAP_ERRORS_MAX 4096 /* the report's error lines, cut there */

struct store_ldap_report {
    int64_t domain_id;
    int64_t at;          /* when the sync ended; 0: never ran */
    int ok;              /* 0: failed, nothing changed */
    int64_t duration_ms;
    unsigned entries;    /* entries of the domain found */
    unsigned added, updated, suspended, aliases, aliases_removed;
    unsigned nerrors;
    char errors[STORE_LDAP_ERRORS_MAX]; /* one reason a line */
};
int store_ldap_report_get(struct store *st, int64_t domain_id, struct store_ldap_report *out);
int store_ldap_report_set(struct store *st, const struct store_ldap_report *r);

struct store_ldap_user {
    int64_t user_id;
    char dn[1024];
    char pw_cache[256];  /* argon2id, "" : never logged in while the directory answered */
    int sync_suspended;
};
/* STORE_NOTFOUND: a local user (or none). */
int store_ldap_user_get(struct store *st, int64_t user_id, struct store_ldap_user *out);
/* Creates or replaces the row, keeping pw_cache when the row exists. */
int store_ldap_user_set(struct store *st, int64_t user_id, const char *dn, int sync_suspended);
int store_ldap_user_set_cache(struct store *st, int64_t user_id, const char *pw_hash);
int store_ldap_user_set_suspended(struct store *st, int64_t user_id, int sync_suspended);
/* The directory users of a domain with their user rows. */
int store_ldap_user_list(struct store *st, int64_t domain_id,
                         int (*cb)(const struct store_user *, const struct store_ldap_user *, void *), void *arg);
/* An alias made by the sync (from_ldap); the rules are the caller's. */
int store_ldap_alias_add(struct store *st, int64_t user_id, const char *alias);
/* The aliases the sync made for a user. */
int store_ldap_alias_list(struct store *st, int64_t user_id, int (*cb)(const char *alias, void *), void *arg);

/* Records a successful login. */
int store_user_set_last_login(struct store *st, int64_t user_id, int64_t at);

/* What readiness needs of a user, without any hash. */
struct store_user_readiness {
    int64_t user_id, domain_id;
    char email[ADDR_MAX + 1];
    int has_password;    /* a local password hash is set */
    int active, suspended;
    int64_t last_login;  /* 0: never */
    int ldap;            /* made by the directory sync */
    int ldap_cached;     /* a cached directory password */
    int sync_suspended;
};
/* One user's (STORE_NOTFOUND if none). */
int store_user_readiness_get(struct store *st, int64_t user_id, struct store_user_readiness *out);
/* Users of a domain (domain_id), else of a customer (customer_id), else all;
 * by address. */
int store_user_readiness_list(struct store *st, int64_t domain_id, int64_t customer_id,
                              int (*cb)(const struct store_user_readiness *, void *), void *arg);

/* ------------------------------------------------------------ several nodes */

/*
 * With PostgreSQL any number of lifeboatd nodes share the store. Work is
 * claimed: store_rcpt_due and store_mailbox_redelivery_due mark what they
 * return with this connection's node (config node_name) and a lease expiry
 * (`until`), skip what another node holds under a live lease, and take over
 * expired ones (a dead node's work); the node renews its leases while it lives
 * (store_claims_renew). The outcome of a claimed row (store_rcpt_update,
 * store_mailbox_redelivered) is recorded only while the claim is still this
 * node's or free, and frees it. One node at a time leads (store_lead_try):
 * it probes routes and drives the domains' states. With the embedded SQLite
 * store there is one node: the claims and the lead are implicit (nothing is
 * written, store_lead_try is always 1, store_notify does nothing).
 */

/* This connection's node name. */
const char *store_node(const struct store *st);

/* 1 when this connection holds the lead (taking it if free), 0 when another
 * node does, STORE_ERR when the database cannot tell. On PostgreSQL a
 * session-level advisory lock: it is released when the node's connection
 * ends, so a node that dies loses it at once. */
int store_lead_try(struct store *st);
/* Gives the lead up (a node stopping). */
int store_lead_release(struct store *st);

/* A long piece of work that one node at a time does (an LDAP sync of a
 * domain): 1 when this connection now holds it, 0 when another node does.
 * Held until store_work_unlock or the end of the session. Always 1 on the
 * embedded store. */
enum store_work { STORE_WORK_LDAP_SYNC = 1, STORE_WORK_ARCHIVE_PURGE = 2 };
int store_work_lock_try(struct store *st, enum store_work kind, int64_t id);
int store_work_unlock(struct store *st, enum store_work kind, int64_t id);
/* The same for the rest of the caller's transaction (released at its end). */
int store_work_xact_try(struct store *st, enum store_work kind);

/* Renews this node's leases on recipients and, when mailbox is set (the node
 * leads and drains), on mailbox entries, until `until`. */
int store_claims_renew(struct store *st, int64_t until, int mailbox);
/* Frees this node's claims: all of them at start-up (a restarted node takes
 * its work again), its mailbox entries when it stops leading. */
int store_claims_release(struct store *st, int recipients, int mailbox);

/* A node's row in the nodes table (lifeboatctl cluster status). */
struct store_node_info {
    char name[64];
    int64_t started;
    int64_t heartbeat;
    char version[32];
    char addr[128];
    int lead;        /* holds the lead now */
    unsigned claims; /* recipients and mailbox entries it holds under a live lease */
};
/* Records this node's heartbeat (the row is made on the first one). */
int store_node_heartbeat(struct store *st, int64_t started, int64_t now, const char *version,
                         const char *addr);
/* Every node that ever ran, by name; lead and claims as of now. */
int store_node_list(struct store *st, int64_t now, int (*cb)(const struct store_node_info *, void *),
                    void *arg);
/* Forgets a node's row (a node retired for good); STORE_NOTFOUND if none. */
int store_node_del(struct store *st, const char *name);

/* Wake-ups between nodes: store_notify sends `what` ("queue", "domain",
 * "config") to every node's listener when the caller's transaction commits
 * (at once outside one). Nothing on SQLite. */
int store_notify(struct store *st, const char *what);

/* A node's listener: its own connection that LISTENs. store_listen_open gives
 * NULL in *out (and STORE_OK) with the embedded store, which has no other
 * nodes. The file descriptor becomes readable when something arrived;
 * store_listen_read calls cb for each wake-up, and returns STORE_ERR when the
 * connection was lost (close it and open a new one later: what was sent
 * meanwhile is lost, so the caller then acts as if everything arrived). */
struct store_listener;
int store_listen_open(const struct config *cfg, struct store_listener **out, char *err, size_t errlen);
int store_listen_fd(const struct store_listener *l);
int store_listen_read(struct store_listener *l, void (*cb)(const char *what, void *arg), void *arg);
void store_listen_close(struct store_listener *l);

#endif
