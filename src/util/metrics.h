/*
 * metrics.h — the daemon's counters for GET /metrics (Prometheus text format).
 *
 * Counters are process-wide atomics that any thread bumps where the event
 * happens (the SMTP server, the delivery engine, continuity, HTTP). They only
 * ever go up from the daemon's start; Prometheus' rate() does the rest. What
 * is a state rather than an event (queue length, domain states, mailbox
 * counts) is not counted here: the /metrics handler reads it from the store
 * when it is scraped, so it cannot drift from the truth.
 */
#ifndef LB_UTIL_METRICS_H
#define LB_UTIL_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metric {
    METRIC_SMTP_CONNECTIONS,      /* SMTP sessions accepted (MX and submission) */
    METRIC_SMTP_MESSAGES,         /* messages accepted (250 after DATA/BDAT) */
    METRIC_SMTP_REJECTED_RCPTS,   /* RCPT refused (5xx) */
    METRIC_SMTP_AUTH_FAILURES,    /* failed AUTH on the submission port */
    METRIC_DELIVERY_SENT,         /* recipients accepted by the next hop */
    METRIC_DELIVERY_DEFERRED,     /* recipient attempts that failed temporarily */
    METRIC_DELIVERY_BOUNCED,      /* recipients bounced (DSN queued) */
    METRIC_CONTINUITY_DIVERTED,   /* recipient copies put into continuity mailboxes */
    METRIC_CONTINUITY_REDELIVERED,/* mailbox entries re-delivered to the customer's server */
    METRIC_CONTINUITY_TRANSITIONS,/* domain state changes (normal/outage/recovering) */
    METRIC_HTTP_REQUESTS,         /* HTTP requests answered */
    METRIC_HTTP_LOGINS,           /* successful webmail logins */
    METRIC_HTTP_LOGIN_FAILURES,   /* failed webmail logins (wrong password, locked out) */
    METRIC_WEBMAIL_SENT,          /* messages queued from the webmail */
    METRIC__COUNT
};

void metrics_inc(enum metric m);
void metrics_add(enum metric m, uint64_t n);
uint64_t metrics_get(enum metric m);

/* The exposition name ("lifeboat_smtp_messages_total") and HELP text. */
const char *metrics_name(enum metric m);
const char *metrics_help(enum metric m);

#endif
