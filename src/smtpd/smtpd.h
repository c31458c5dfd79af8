/*
 * smtpd.h — lifeboat's inbound SMTP server (SPEC.md "SMTP behaviour").
 *
 * ESMTP on port 25 with PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
 * ENHANCEDSTATUSCODES, STARTTLS (when a certificate is configured) and
 * CHUNKING, on the caller's libevent loop. RCPT is accepted only for hosted
 * domains, or for any domain from a client in some domain's --outbound-from
 * networks: never an open relay. At the end of a message the server adds a
 * Received: header and hands the message to queue_submit(); it answers 250 only
 * once the writer reports it on stable storage, 451 if that failed.
 *
 * Everything runs on one event loop thread (the one that owns base and
 * deps->store); deps->writer's done callbacks must arrive on that loop.
 */
#ifndef LB_SMTPD_SMTPD_H
#define LB_SMTPD_SMTPD_H

#include <stddef.h>

#include <event2/event.h>

#include "store/store.h"
#include "store/writer.h"
#include "util/config.h"

struct smtpd_deps {
    struct store *store; /* read connection of the loop thread: RCPT lookups */
    struct store_writer *writer;
    /* Called on the loop after each message is safely queued (may be NULL). */
    void (*on_queued)(void *arg, const char *queue_id);
    void *on_queued_arg;
};

struct smtpd;

/* Binds every smtp_listen address (IPv4 and IPv6) and starts accepting.
 * Returns NULL with err filled when a listener cannot be set up or the TLS
 * certificate cannot be loaded. */
struct smtpd *smtpd_start(struct event_base *base, const struct config *cfg,
                          const struct smtpd_deps *deps, char *err, size_t errlen);

/* SIGTERM: closes the listeners. Idle sessions get "421 4.3.2 ... shutting
 * down" at once; a session inside a mail transaction finishes it first. */
void smtpd_stop_accepting(struct smtpd *s);

/* Sessions still alive (including ones whose message is being stored). */
unsigned smtpd_session_count(const struct smtpd *s);

/* SIGHUP: takes the new limits, sizes, timeouts, hostname and TLS certificate
 * (for new sessions and new transactions). Listen addresses need a restart.
 * Returns 0, or -1 (nothing changed) when the new certificate cannot be loaded. */
int smtpd_reload(struct smtpd *s, const struct config *cfg);

/* Closes the listeners and every remaining session, frees s. Call after the
 * writer has been stopped (its last done callbacks still reach sessions). */
void smtpd_free(struct smtpd *s);

#endif
