/*
 * smtp_client.h — the SMTP client's protocol state machine, without sockets.
 *
 * The session driver (relay_session.c) feeds it the server's replies (parsed by
 * smtp_reply.h) and does what each call returns: write the commands the machine
 * produced through its write function, start TLS, send the message data, or
 * close. Everything the conversation decides — which extensions to use
 * (PIPELINING, SIZE, 8BITMIME, SMTPUTF8, STARTTLS), which commands go out in one
 * write, what each reply means for each recipient — is decided here, so the unit
 * tests can drive a whole conversation from strings.
 *
 * One connection carries several transactions (connection reuse): after the
 * first, each one starts with RSET. With PIPELINING, [RSET,] MAIL FROM and every
 * RCPT TO go out in one write (RFC 2920); DATA follows once at least one
 * recipient was accepted.
 *
 * Outcomes are classified the way the continuity engine needs them: a failure
 * is "server-level" (txn->server_level) when the server as a whole is not taking
 * mail right now — 421, a 4xx to MAIL/DATA/end of data, a 4xx for every RCPT, a
 * lost connection — and per-recipient otherwise.
 */
#ifndef LB_DELIVER_SMTP_CLIENT_H
#define LB_DELIVER_SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "deliver/smtp_reply.h"

/* The command a reply answered ("in reply to ... command"). */
enum smtpc_step {
    SMTPC_STEP_NONE = 0, /* decided locally or no command yet */
    SMTPC_STEP_GREETING,
    SMTPC_STEP_EHLO,
    SMTPC_STEP_HELO,
    SMTPC_STEP_STARTTLS,
    SMTPC_STEP_TLS, /* handshake in progress: no reply expected */
    SMTPC_STEP_READY,
    SMTPC_STEP_RSET,
    SMTPC_STEP_MAIL,
    SMTPC_STEP_RCPT,
    SMTPC_STEP_DATA,
    SMTPC_STEP_DOT, /* end of data */
    SMTPC_STEP_QUIT,
    SMTPC_STEP_CLOSED,
};

enum smtpc_result {
    SMTPC_PENDING = 0, /* not decided yet */
    SMTPC_ACCEPTED,    /* RCPT accepted, waiting for the end of data */
    SMTPC_OK,          /* delivered */
    SMTPC_TEMP,        /* temporary failure: try again later */
    SMTPC_PERM,        /* permanent failure: bounce */
};

#define SMTPC_TEXT_MAX 512

/* What happened to one recipient (or, for smtpc_failure, to the session). */
struct smtpc_outcome {
    int result;      /* enum smtpc_result */
    int step;        /* enum smtpc_step: the command whose reply decided it */
    int from_server; /* 1: text is the server's reply; 0: our own explanation */
    int code;        /* SMTP code (the server's, or the one we would have expected) */
    char dsn[16];    /* RFC 3463 status, e.g. "5.1.1" */
    char text[SMTPC_TEXT_MAX]; /* the reply on one line, or our explanation */
    int sent;        /* internal: the RCPT TO command went out */
};

/* One message to some recipients. The caller owns everything and keeps it
 * alive until the machine reports the transaction over. */
struct smtpc_txn {
    const char *sender; /* "" : null sender */
    const char *const *rcpts;
    size_t nrcpt;
    uint64_t size;  /* bytes of the message as it will be sent (SIZE=) */
    int body_8bit;  /* the message has bytes >= 0x80: BODY=8BITMIME when offered */
    int probe;      /* a continuity probe: no DATA; once every RCPT is answered, RSET ends the
                       transaction and accepted recipients stay SMTPC_ACCEPTED */
    struct smtpc_outcome *out; /* nrcpt entries, filled in by the machine */
    /* Filled in by the machine: */
    int server_level; /* the temporary failures are the server's, not single recipients' */
    int untried;      /* a reused connection failed before MAIL FROM was answered */
};

/* ESMTP extensions the server offered in its EHLO reply. */
struct smtpc_ext {
    int pipelining, starttls, eightbitmime, smtputf8, enhancedstatuscodes, chunking;
    int size;          /* SIZE offered */
    uint64_t size_max; /* its limit; 0: none announced */
};

enum smtpc_action {
    SMTPC_WAIT,      /* send what was written, wait for the next reply */
    SMTPC_STARTTLS,  /* do the TLS handshake now, then smtpc_tls_done() */
    SMTPC_READY,     /* ready for a transaction: smtpc_begin() or smtpc_quit() */
    SMTPC_SEND_BODY, /* send the message data now: dot-stuffed, ending with CRLF.CRLF */
    SMTPC_TXN_DONE,  /* transaction over, outcomes filled; the session is READY again */
    SMTPC_FAILED,    /* session failed (smtpc_failure()); outcomes filled; close after
                        sending what was written */
    SMTPC_CLOSED,    /* QUIT answered: close */
};

typedef void (*smtpc_write_fn)(void *arg, const char *data, size_t len);

struct smtpc {
    int step; /* enum smtpc_step: the reply expected next */
    char helo[256];
    int tls_allowed, tls_active;
    int ready_once; /* reached READY at least once on this connection */
    unsigned ntxn;  /* transactions begun on this connection */
    struct smtpc_ext ext;
    struct smtpc_txn *txn;
    size_t rcpt_sent, rcpt_replied, rcpt_next, naccepted, ntemp;
    int mail_failed;
    int probe_rset; /* the RSET that ends a probe is out */
    int need_utf8; /* the envelope has UTF-8 addresses: MAIL FROM ... SMTPUTF8 */
    struct smtpc_outcome failure; /* why the session failed */
    smtpc_write_fn write;
    void *write_arg;
};

/* helo: our name for EHLO/HELO; tls_allowed: use STARTTLS when offered. */
void smtpc_init(struct smtpc *c, const char *helo, int tls_allowed, smtpc_write_fn write,
                void *write_arg);

/* A complete reply from the server. */
enum smtpc_action smtpc_reply(struct smtpc *c, const struct smtp_reply *r);

/* The TLS handshake after SMTPC_STARTTLS succeeded: EHLO again. */
enum smtpc_action smtpc_tls_done(struct smtpc *c);

/* Starts a transaction on a READY session. Returns SMTPC_WAIT, or SMTPC_TXN_DONE
 * when it was decided without the server (message too big for the server's SIZE,
 * SMTPUTF8 needed but not offered, no valid recipient). */
enum smtpc_action smtpc_begin(struct smtpc *c, struct smtpc_txn *t);

/* Says goodbye on a READY session (writes QUIT). */
void smtpc_quit(struct smtpc *c);

/* The connection was lost, timed out or spoke garbage: every undecided
 * recipient of the transaction in progress fails temporarily with text. */
void smtpc_lost(struct smtpc *c, const char *dsn, const char *text);

/* Why the session failed (valid after SMTPC_FAILED or smtpc_lost()). */
const struct smtpc_outcome *smtpc_failure(const struct smtpc *c);

/* "RCPT TO", "end of DATA", ...: as in "(in reply to RCPT TO command)". */
const char *smtpc_step_name(int step);

/* Parses an EHLO reply's extension lines into ext. */
void smtpc_parse_ehlo(const struct smtp_reply *r, struct smtpc_ext *ext);

#endif
