/*
 * relay_session.h — one SMTP client connection to a destination, on libevent.
 *
 * A session finds the destination's servers (the hosts it is given in order,
 * or the domain's MX hosts, or its address when it has no MX), connects to the
 * first that answers — a refused or timed-out connection, or a greeting or EHLO
 * that is not 2xx, moves on to the next address and host — upgrades to TLS when
 * the server offers STARTTLS (opportunistic: certificates are not verified; a
 * failed handshake means connecting again without TLS) and then carries as many
 * transactions as its owner gives it (connection reuse). The protocol itself is
 * smtp_client.h's state machine; this file moves bytes, streams the message
 * (dot-stuffed by GMime's SMTP data filter, a chunk at a time, never a second
 * copy of the whole message) and keeps the timeouts.
 *
 * The owner (the queue runner) learns everything through callbacks on the loop
 * thread: ready (give me a transaction, or quit), txn_done (outcomes filled),
 * end (the session is over and freed right after the callback returns).
 * Callbacks must not free the session; relay_session_quit() and relay_session_send() are
 * allowed inside them.
 */
#ifndef LB_DELIVER_RELAY_SESSION_H
#define LB_DELIVER_RELAY_SESSION_H

#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "deliver/resolver.h"
#include "deliver/smtp_client.h"
#include "directory/directory.h"

/* Shared by every session of the engine; outlives them. */
struct relay_env {
    struct event_base *base;
    struct resolver *resolver;
    SSL_CTX *tls; /* NULL: never STARTTLS */
    const char *helo;
    unsigned timeout;         /* seconds to wait for each reply, and for each write to progress */
    unsigned connect_timeout; /* seconds for one TCP connect */
};

enum relay_target_kind {
    RELAY_HOSTS, /* the hosts as given, in order (a route, the outbound relay) */
    RELAY_MX,    /* the domain's MX hosts (or the domain itself without MX) */
};

struct relay_target {
    int kind;
    char domain[DOMAIN_MAX + 1]; /* RELAY_MX: the domain to look up */
    struct route hosts;          /* RELAY_HOSTS */
};

/* One transaction: the protocol part, plus the bytes to send after DATA. */
struct relay_txn {
    struct smtpc_txn smtp;
    const unsigned char *prefix; /* sent first (our Received: header) */
    size_t prefix_len;
    const unsigned char *body; /* then the message as received */
    size_t body_len;
};

/* Sets t up (cleared first) for one message: prefix (NUL-terminated) then
 * body, for sender and rcpts[0..nrcpt-1], with out (nrcpt entries) for the
 * outcomes. SIZE and whether the content needs 8BITMIME follow from the bytes.
 * t keeps pointers only: what they point to must outlive the transaction. */
void relay_txn_init(struct relay_txn *t, const char *prefix, const unsigned char *body, size_t body_len,
                    const char *sender, const char *const *rcpts, size_t nrcpt, struct smtpc_outcome *out);

/* The server a session talks (or last tried to talk) to, for "relay=host[addr]:port". */
struct relay_peer {
    char host[DOMAIN_MAX + 1];
    char addr[64];
    char port[8];
};

/* Why a session ended. */
struct relay_end {
    int reached_ready;            /* at least one transaction could have been started */
    struct smtpc_outcome why;     /* result SMTPC_TEMP, or SMTPC_PERM (no such domain, null MX) */
    struct relay_peer peer;     /* host "" when no server was reached */
};

struct relay_session;

struct relay_callbacks {
    void (*ready)(struct relay_session *s, void *arg);
    void (*txn_done)(struct relay_session *s, struct relay_txn *t, void *arg);
    void (*end)(struct relay_session *s, const struct relay_end *e, void *arg);
};

/* Starts finding and connecting to the target. NULL only when out of memory. */
struct relay_session *relay_session_new(const struct relay_env *env, const struct relay_target *target,
                            const struct relay_callbacks *cb, void *arg);

/* Starts a transaction on a ready session. Returns 0 when it is under way
 * (txn_done will follow), 1 when it was decided at once without the server
 * (outcomes filled, no callback, the session stays ready), -1 if the session is
 * not ready. t and what it points to stay alive until then. */
int relay_session_send(struct relay_session *s, struct relay_txn *t);

/* Ends a ready session politely (QUIT); end follows. */
void relay_session_quit(struct relay_session *s);

/* Ends the session now, whatever it is doing; the transaction in progress (its
 * outcomes are left as they are) and the end callback are not reported. */
void relay_session_free(struct relay_session *s);

const struct relay_peer *relay_session_peer(const struct relay_session *s);
int relay_session_is_ready(const struct relay_session *s);
/* Monotonic ms when the session started / when it became ready the first time (0: not yet). */
int64_t relay_session_started_ms(const struct relay_session *s);
int64_t relay_session_ready_ms(const struct relay_session *s);
/* Transactions begun on this session's current connection. */
unsigned relay_session_txn_count(const struct relay_session *s);
/* 1 while the current connection is encrypted. */
int relay_session_tls_active(const struct relay_session *s);

#endif
