/*
 * deliver_internal.h — the queue runner's records, shared by deliver.c (the
 * scheduler: what is due, where it goes, which session carries it) and
 * outcome.c (what an attempt's result means for each recipient). Private to
 * src/deliver.
 */
#ifndef LB_DELIVER_DELIVER_INTERNAL_H
#define LB_DELIVER_DELIVER_INTERNAL_H

#include <glib.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/queue.h>

#include "deliver/deliver.h"
#include "deliver/resolver.h"
#include "deliver/relay_session.h"
#include "queue/queue.h"
#include "store/blob.h"

/* Recipients per transaction (servers commonly accept 100; Postfix sends 50). */
#define DELIVERY_RCPT_LIMIT 50

enum dest_kind {
    DEST_ROUTE, /* a hosted domain: its route, the customer's own servers */
    DEST_RELAY, /* outbound_relay */
    DEST_MX,    /* a domain on the internet: its MX hosts */
};

struct job;
struct dsession;
TAILQ_HEAD(job_list, job);
TAILQ_HEAD(dsession_list, dsession);

/* Where mail goes: one per hosted domain, one for the relay, one per MX domain. */
struct dest {
    char key[DOMAIN_MAX + 8];
    int kind;                  /* enum dest_kind */
    char name[DOMAIN_MAX + 1]; /* the domain (DEST_ROUTE, DEST_MX) or "relay" */
    struct relay_target target;
    int route_ok; /* DEST_ROUTE: the stored route parsed */
    struct job_list pending; /* transactions waiting for a session */
    size_t npending;
    struct dsession_list sessions;
    unsigned nsessions, nready;
    unsigned njobs; /* jobs that point here (pending, running or being recorded) */
};

/* The runner's side of one session. */
struct dsession {
    TAILQ_ENTRY(dsession) link;
    struct delivery *d;
    struct dest *dest;
    struct relay_session *s;
    struct job *job;        /* the transaction under way */
    struct event *idle_ev;  /* a ready session without work waits this long for more */
    int ready;
};

struct job_rcpt {
    int64_t id;
    char addr[ADDR_MAX + 1];
    unsigned attempts;
    int pre_continuity; /* queued before continuity was enabled for its domain */
};

struct rcpt_update {
    int64_t id;
    int state;
    unsigned attempts;
    int64_t next_attempt;
    char reply[512];
    /* Non-NULL: diverted into user_id's continuity mailbox with this hook
     * (delivery_hooks.divert, copied so the writer thread never reads the
     * engine's hooks); the fields above hold the deferral to record if it fails. */
    int (*divert)(struct store *st, int64_t rcpt_id, int64_t user_id, int64_t now);
    int64_t user_id;
};

/* One transaction: one message, one destination, its due recipients there. */
struct job {
    TAILQ_ENTRY(job) link; /* in dest->pending */
    struct delivery *d;
    struct dest *dest;
    struct store_msg msg;
    size_t nrcpt, cap;
    struct job_rcpt *rcpts;
    const char **addrs;          /* rcpts[i].addr, for the SMTP transaction */
    struct smtpc_outcome *out;   /* per recipient */
    struct relay_txn txn;
    unsigned char *body; /* the blob, while the transaction needs it */
    size_t body_len;
    int requeued; /* tried once on a reused connection that failed before MAIL */
    int held;     /* failed without a connection: the route is held (continuity outage) */

    /* For the log: who we talked to and how long each part took. */
    struct relay_peer peer;
    int64_t t_created_wall; /* time(): picked from the queue */
    int64_t t_created, t_txn_start, t_done; /* monotonic ms */
    int64_t conn_ms; /* connection set-up charged to this job (0 on a reused one) */

    /* The outcome, on its way to the store. */
    struct rcpt_update *updates;
    size_t nupdates;
    int any_final;
    int released;
    unsigned char *dsn;
    size_t dsn_len;
    struct queue_message dsn_msg;
    const char *dsn_rcpt[1];
};

struct delivery {
    struct event_base *base;
    const struct config *cfg;
    struct store *st;
    struct store_writer *writer;
    struct blobstore *blobs;
    struct resolver *resolver;
    SSL_CTX *tls;
    struct relay_env env;
    GHashTable *dests;    /* key -> struct dest */
    GHashTable *inflight; /* recipient id (int64_t *) -> struct job */
    struct event *kick_ev, *timer_ev;
    unsigned nsessions;
    unsigned njobs;
    int64_t last_scan_ms; /* monotonic */
    int stopping;
    int scan_truncated; /* the last scan left due work behind: look again when a job ends */
    struct delivery_hooks hooks; /* all NULL: no continuity engine */
};

/* outcome.c: records what the attempt meant for each recipient (log, store,
 * DSN) and then frees the job. The job's outcomes (job->out) are filled. */
void delivery_job_finish(struct job *job);
/* deliver.c: forgets a job (in-flight set, destination) and frees it. */
void delivery_job_free(struct job *job);
/* Re-arms the poll timer for the earliest due recipient (after an outcome is recorded). */
void delivery_reschedule(struct delivery *d);
/* deliver.c: loads the message data of a job (blob_get); 0 or -1. */
int delivery_job_load_body(struct job *job);

#endif
