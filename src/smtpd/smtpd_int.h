/*
 * smtpd_int.h — what the files of the SMTP server share, and the seams the
 * unit tests use. Not for other modules: they use smtpd.h.
 *
 *   smtpd.c          listeners, connection limits, reload, the session list
 *   session.c        one connection: I/O, timeouts, pipelining, STARTTLS, closing
 *   session_cmd.c    the commands: the SMTP state machine and the RCPT policy
 *   session_txn.c    the mail transaction: recipients, end of data, queue_submit
 *   session_auth.c   AUTH on the submission port: the SASL exchange, the password check
 *   session_submission.c  the end of a submitted message: From rule, added fields, DKIM
 *   sasl.c           SASL PLAIN and LOGIN (pure)
 *   submission_msg.c the header checks and additions of submission (pure)
 *   workers.c        the threads that run argon2id and DKIM off the loop
 *   tls.c            the server's SSL_CTX
 *   client_table.c   sessions and message-buffer octets per client address
 *   data_budget.c    the memory message bodies in flight may hold
 */
#ifndef LB_SMTPD_SMTPD_INT_H
#define LB_SMTPD_SMTPD_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "directory/directory.h"
#include "mail/received.h"
#include "queue/queue.h"
#include "smtpd/client_table.h"
#include "smtpd/sasl.h"
#include "smtpd/smtp_data.h"
#include "smtpd/smtp_parse.h"
#include "smtpd/smtpd.h"
#include "util/config.h"
#include "util/queueid.h"

/* One AUTH attempt, for the lockout's writer jobs (directory.h, "logins"). */
enum smtpd_login_step {
    SMTPD_LOGIN_BEGIN,     /* check the lock and count the attempt, before the password */
    SMTPD_LOGIN_FAILED,    /* the password was wrong: the count stays */
    SMTPD_LOGIN_SUCCEEDED, /* the password was right: take the count back */
};
struct smtpd_login {
    enum smtpd_login_step step;
    const char *login; /* the authentication identity as typed */
    const char *ip;
    int64_t now;
    int64_t user_id; /* SUCCEEDED: whose failures go */
    const struct directory_auth *auth; /* SUCCEEDED: a directory password to cache (may be NULL) */
    /* BEGIN's answer (written by the job, read in done): */
    int gate; /* enum directory_login_gate */
    struct directory_login_attempt attempt;
};

/* The server's view of the rest of lifeboat. smtpd_start wires it to the
 * directory (recipients, relay permission, logins, the From rule, DKIM) and
 * queue_submit; the unit tests put their own in. Hooks run on the loop thread
 * unless said otherwise. */
struct smtpd_backend {
    int (*lookup_rcpt)(void *arg, const char *addr, struct rcpt_lookup *out); /* STORE_OK/ERR */
    /* directory_relay_networks' and directory_relay_sender's contracts. */
    int (*relay_networks)(void *arg, const char *client_ip, int64_t *customers, size_t max);
    int (*relay_sender)(void *arg, const int64_t *customers, size_t n, const char *sender, int64_t *customer_id);
    /* directory_customer_owns_domain's: 1, 0, STORE_ERR. */
    int (*customer_owns)(void *arg, int64_t customer_id, const char *domain);
    int (*submit)(void *arg, const struct queue_message *m, queue_submit_done done, void *done_arg);
    void *arg;

    /* The submission port. The user a login name stands for (STORE_OK,
     * STORE_NOTFOUND, STORE_ERR). */
    int (*login_user)(void *arg, const char *login, struct store_user *u);
    /* A lockout step through the writer; done runs on the loop, and l's
     * answer fields are set by then. 0, or -1 (the writer is stopping: done
     * will not run). l stays the caller's and alive until done. */
    int (*login_record)(void *arg, struct smtpd_login *l, store_done_fn done, void *done_arg);
    /* 1 if addr (canonical) is u's address or alias, 0 if not, STORE_ERR. On
     * the loop with the loop's connection, or on a worker with its own (st). */
    int (*owns_address)(void *arg, struct store *st, const struct store_user *u, const char *addr);
    /* On a worker: directory_dkim_sign's contract. */
    int (*dkim_sign)(void *arg, struct store *st, const char *domain, const unsigned char *msg, size_t len,
                     char **header, char *err, size_t errlen);
};

/* After this many error replies in one session: 421 and close (Postfix's
 * smtpd_hard_error_limit). */
#define SMTPD_HARD_ERROR_LIMIT 20
/* NOOP, RSET, VRFY, HELP... beyond this many, each counts as an error. */
#define SMTPD_JUNK_COMMAND_LIMIT 100
/* Replies waiting for a client that does not read them: past this, commands
 * are not processed until it has read some (and the write timeout applies). */
#define SMTPD_OUTPUT_MAX (64 * 1024)
/* Input read ahead of processing (pipelined commands, DATA in flight). */
#define SMTPD_INPUT_MAX (256 * 1024)

#define SMTPD_MAX_LISTENERS (2 * CONFIG_MAX_LISTEN * 4)

/* Worker threads for argon2id and DKIM (workers.c). Each argon2id check holds
 * 64 MB while it runs, so a few are enough; AUTHs beyond them wait in line. */
#define SMTPD_WORKERS 2

struct session;

/* A piece of work for the worker threads (workers.c), embedded in whatever
 * owns it; that owner stays alive until done() has run. */
struct smtpd_work_item {
    struct smtpd_work_item *next;
    void (*run)(struct smtpd_work_item *it, struct store *st); /* worker thread; st may be NULL */
    void (*done)(struct smtpd_work_item *it);                  /* loop thread */
    int ran; /* 0 in done(): the pool stopped before running it */
};

struct smtpd_work;

/* Starts SMTPD_WORKERS threads; with_store: each opens its own store
 * connection for cfg. NULL with err filled. */
struct smtpd_work *smtpd_work_start(struct event_base *base, const struct config *cfg, int with_store, char *err,
                                    size_t errlen);
/* From the loop thread. 0, or -1 when the pool is stopping (done will not run). */
int smtpd_work_submit(struct smtpd_work *w, struct smtpd_work_item *it);
/* Joins the threads (after their current item), calls done() for every item
 * left, frees w. On the loop thread. */
void smtpd_work_free(struct smtpd_work *w);

/* ------------------------------------------------------------------ data_budget.c */

/* Octets of DATA/BDAT buffers reserved by every session (used, at most limit)
 * and by each client address (in clients, at most client_limit). */
struct data_budget {
    uint64_t used, limit, client_limit;
    struct client_table *clients;
};

/* The limits that follow from max_message_size (data_budget.c says how). */
void data_budget_limits(uint64_t max_message_size, uint64_t *limit, uint64_t *client_limit);
/* Sets the limits (at start and on reload; what is reserved stays). */
void data_budget_configure(struct data_budget *b, struct client_table *clients, uint64_t max_message_size);
/* n more octets for a session of ip: 0, or -1 past a limit (nothing reserved). */
int data_budget_reserve(struct data_budget *b, const char *ip, uint64_t n);
void data_budget_release(struct data_budget *b, const char *ip, uint64_t n);

struct smtpd_listener {
    struct evconnlistener *l;
    struct smtpd *srv;
    int submission;
};

struct smtpd {
    struct event_base *base;
    struct config cfg; /* our copy: reload replaces it */
    struct smtpd_deps deps;
    struct smtpd_backend backend;
    SSL_CTX *tls; /* NULL: no certificate, no STARTTLS */
    struct smtpd_work *work; /* NULL when there is no submission port */

    struct smtpd_listener listeners[SMTPD_MAX_LISTENERS];
    size_t nlisteners;
    struct event *accept_pause; /* re-enables the listeners after accept() failed */

    struct session *sessions; /* every live session, doubly linked */
    unsigned nsessions;       /* live session structures */
    unsigned nconnections;    /* open client connections (the limit counts these) */
    struct client_table clients;
    struct data_budget budget; /* message buffers in flight */

    unsigned hard_error_limit;
    int draining; /* smtpd_stop_accepting was called */
};

/* smtpd_start with a chosen backend (NULL: the directory and the queue). */
struct smtpd *smtpd_start_with(struct event_base *base, const struct config *cfg,
                               const struct smtpd_deps *deps, const struct smtpd_backend *backend,
                               char *err, size_t errlen);

/* Takes over an accepted, connected socket as a new session, applying the
 * connection limits first (past them the client gets 421 and fd is closed).
 * Used by the listeners and by the tests (with a socketpair). 0 or -1. */
int smtpd_accept_fd(struct smtpd *s, evutil_socket_t fd, const struct sockaddr *sa, socklen_t salen,
                    int submission);

/* Called by a session when its connection closes, and when it is freed. */
void smtpd_connection_closed(struct smtpd *s, struct session *sess, const char *ip);
void smtpd_session_freed(struct smtpd *s, struct session *sess);

/* ------------------------------------------------------------------ tls.c */

/* A server context for cert_file/key_file (PEM). NULL with err filled. */
SSL_CTX *smtpd_tls_context(const char *cert_file, const char *key_file, char *err, size_t errlen);
/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384" for the Received header and logs. */
void smtpd_tls_describe(SSL *ssl, char *out, size_t outlen);

/* ------------------------------------------------------------------ sessions */

/* The mail transaction, from MAIL to the 250 after the data. */
struct txn {
    int active;                  /* MAIL was accepted */
    char sender[ADDR_MAX + 1];   /* "" : null sender */
    uint64_t size_hint;
    int smtputf8;
    char queue_id[QUEUEID_SIZE]; /* "" until the first accepted recipient */

    /* Recipients (canonical): strings in one arena, found by offset. */
    char *arena;
    size_t arena_len, arena_cap;
    size_t *rcpt_off;
    size_t nrcpt, rcpt_cap;
    uint32_t *slots;      /* hash set of recipient indexes, for duplicates */
    size_t nslots;
    size_t nhosted;       /* distinct recipients in hosted domains */
    int relay;            /* relay_sender's answer for this sender; -1: not asked yet */
    int64_t relay_customer; /* the customer this client relays for (DIRECTORY_RELAY_OK) */
    size_t accepted;      /* RCPT commands accepted, duplicates included */
    unsigned overshoot;   /* RCPTs refused for max_recipients */

    int data_used;        /* DATA was given */
    int bdat_used;        /* BDAT was given */
    struct smtp_data data;

    /* Submission: the end-of-data work (session_submission.c), alive from the
     * end of the data until the message is queued or refused. */
    struct submission_job *sub;

    /* Alive from queue_submit until its done callback. */
    const char **rcpt_ptrs;
    char prefix[RECEIVED_MAX];
    struct queue_message qm;
    struct queue_sent_copy sent;
};

enum session_state {
    SS_CMD,     /* reading commands */
    SS_DATA,    /* reading a DATA body */
    SS_BDAT,    /* reading a BDAT chunk */
    SS_SKIP,    /* reading a BDAT chunk that has no transaction, to discard it */
    SS_SUBMIT,  /* the message is with a worker or the writer; input is not read */
    SS_AUTH_LINE, /* reading a SASL response line */
    SS_AUTH,    /* the credentials are being checked; commands wait */
};

/* The session must stay alive for a callback (the writer, a worker): closing
 * the connection then leaves the memory to that callback. */
#define SESSION_WAITING(s) ((s)->state == SS_SUBMIT || (s)->state == SS_AUTH)

struct session {
    struct session *prev, *next;
    struct smtpd *srv;  /* NULL once smtpd_free has let go of a session still submitting */
    struct bufferevent *bev; /* NULL once the connection is closed */
    struct event *close_timer;
    int64_t close_deadline_ms;

    char ip[64];
    int submission;      /* the submission port: AUTH required */
    int tls;
    int authenticated;
    /* The customers whose --outbound-from networks hold the client: asked
     * once a connection (a scan of the domains), not once a message. */
    int nrelay_customers; /* -1: not asked yet */
    int64_t relay_customers[DIRECTORY_RELAY_CUSTOMERS_MAX];
    char tls_info[128];
    struct session_auth *auth;  /* an AUTH exchange in progress (session_auth.c) */
    struct store_user *user;    /* after AUTH: who the client is */
    enum sasl_mech auth_mech;

    enum session_state state;
    int helo;            /* 0: none yet, 1: HELO, 2: EHLO */
    char helo_name[SMTP_DOMAIN_MAX + 1];
    int closing;         /* the last reply is being flushed, then the connection goes */
    int output_blocked;  /* reading paused until the client reads its replies */
    int discarding_line; /* inside a command line that was too long */
    uint64_t chunk_size; /* the current BDAT chunk, for its reply */
    uint64_t skip_left;  /* SS_SKIP: octets still to discard */
    const char *skip_reply;
    int connection_closed; /* the socket is gone; free when the writer is done */

    unsigned errors, junk;
    unsigned messages;
    unsigned count[SMTP_AUTH + 1], failed[SMTP_AUTH + 1]; /* per verb, for the disconnect line */
    unsigned unknown;
    const char *last_verb; /* for "lost connection after X" */

    struct smtp_data_budget budget; /* the reader's way to srv->budget for this client */
    struct txn txn;
};

/* session.c */
struct session *session_new(struct smtpd *srv, evutil_socket_t fd, const char *ip, int submission);
/* Graceful shutdown: 421 now if idle, else after the current transaction. */
void session_drain(struct session *s);
/* Closes the connection at once (smtpd_free). Frees s unless a submit is pending. */
void session_abort(struct session *s);
/* Frees a session whose connection is already closed. */
void session_destroy(struct session *s);
/* Output helpers: a reply line (without CRLF), counted as an error if it is one. */
void session_reply(struct session *s, const char *text);
void session_replyf(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void session_error(struct session *s, const char *text);
/* One more error; at the hard limit: 421 and close. */
void session_count_error(struct session *s);
/* Flush what is queued, then close (QUIT, 421). */
void session_close_after_flush(struct session *s);
/* Starts the DATA/BDAT reader of the transaction under the server's limits. */
void session_data_init(struct session *s);
/* Read timeout for the current state (commands or data). */
void session_set_timeouts(struct session *s);
/* Processes buffered input until it runs out or the session must wait. */
void session_process(struct session *s);
/* After the writer's done callback: read and process again. */
void session_resume(struct session *s);
int session_start_tls(struct session *s);

/* session_cmd.c */
void session_command(struct session *s, const char *line, size_t len);

/* session_auth.c */
int session_cmd_auth(struct session *s, const struct smtp_cmd *cmd);
/* A line of the SASL exchange (state SS_AUTH_LINE). */
void session_auth_line(struct session *s, const char *line, size_t len);
/* Ends an exchange waiting for the client's line (shutdown); frees s->auth. */
void session_auth_abandon(struct session *s);
/* The From rule (from_rule.c). smtpd_scan_headers: NULL, or the reply for a
 * header section that cannot be read (h is then empty). smtpd_from_rule:
 * NULL when every mailbox of h's one From field is owned (owns: 1, 0 or
 * STORE_ERR) — and from_domain (may be NULL) gets the first one's domain —
 * else the reply (not_owned for an address that is not, with it in refused).
 * required: a message without a From field is refused. */
struct submission_headers;
extern const char smtpd_reply_resources[];
const char *smtpd_scan_headers(const struct smtp_data *d, struct submission_headers *h);
const char *smtpd_from_rule(const struct submission_headers *h, int required, const char *not_owned,
                            int (*owns)(void *ctx, const char *addr), void *ctx, char *from_domain,
                            size_t from_domain_len, char *refused, size_t refused_len);
/* At the end of a message a client relays out for a customer
 * (session_relay.c): 1 if its From field is not the customer's (refused and
 * answered; the transaction is reset), 0 to go on. */
int session_relay_refused(struct session *s);
/* 1 while the AUTH waits on its own retry timer (nothing outside holds the session). */
int session_auth_on_timer(const struct session *s);
/* The user's MAIL FROM: 0, or -1 with the reply sent. */
int session_auth_check_sender(struct session *s, const char *path);

/* session_submission.c */
/* The end of a message on the submission port: checks and completes it on a
 * worker, then queues it (txn_submit). */
void session_submission_finish(struct session *s);
void submission_job_free(struct submission_job *j);

/* session_txn.c */
/* Hands the message to the queue (state SS_SUBMIT until its done callback);
 * on failure the client has its 451 and the state is SS_CMD again. */
void txn_submit(struct session *s);
void txn_reset(struct txn *t);
void txn_free(struct txn *t);
/* Adds a canonical address: 1 added, 0 already there, -1 out of memory. */
int txn_add_rcpt(struct txn *t, const char *addr, int hosted);
const char *txn_rcpt(const struct txn *t, size_t i);
/* The body (or the current BDAT chunk) has been read completely. */
void session_data_segment_done(struct session *s);

#endif
