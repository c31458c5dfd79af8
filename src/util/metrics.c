/*
 * metrics.c — process-wide event counters (metrics.h). Relaxed atomics: a
 * scrape needs each counter to be monotonic, not a consistent snapshot of all.
 */
#include <stdatomic.h>

#include "util/metrics.h"

static _Atomic uint64_t counters[METRIC__COUNT];

static const struct {
    const char *name;
    const char *help;
} defs[METRIC__COUNT] = {
    [METRIC_SMTP_CONNECTIONS] = {"lifeboat_smtp_connections_total", "SMTP sessions accepted (MX and submission)."},
    [METRIC_SMTP_MESSAGES] = {"lifeboat_smtp_messages_total", "Messages accepted over SMTP and safely queued."},
    [METRIC_SMTP_REJECTED_RCPTS] = {"lifeboat_smtp_rejected_recipients_total", "RCPT commands refused."},
    [METRIC_SMTP_AUTH_FAILURES] = {"lifeboat_smtp_auth_failures_total", "Failed AUTH attempts on submission."},
    [METRIC_DELIVERY_SENT] = {"lifeboat_delivery_sent_total", "Recipients accepted by the next hop."},
    [METRIC_DELIVERY_DEFERRED] = {"lifeboat_delivery_deferred_total", "Recipient attempts that failed temporarily."},
    [METRIC_DELIVERY_BOUNCED] = {"lifeboat_delivery_bounced_total", "Recipients bounced with a DSN."},
    [METRIC_CONTINUITY_DIVERTED] = {"lifeboat_continuity_diverted_total",
                                    "Recipient copies put into continuity mailboxes."},
    [METRIC_CONTINUITY_REDELIVERED] = {"lifeboat_continuity_redelivered_total",
                                       "Continuity mailbox entries re-delivered to the customer's server."},
    [METRIC_CONTINUITY_TRANSITIONS] = {"lifeboat_continuity_transitions_total", "Domain continuity state changes."},
    [METRIC_HTTP_REQUESTS] = {"lifeboat_http_requests_total", "HTTP requests answered."},
    [METRIC_HTTP_LOGINS] = {"lifeboat_http_logins_total", "Successful webmail logins."},
    [METRIC_HTTP_LOGIN_FAILURES] = {"lifeboat_http_login_failures_total", "Failed or locked-out webmail logins."},
    [METRIC_WEBMAIL_SENT] = {"lifeboat_webmail_sent_total", "Messages queued from the webmail."},
};

void metrics_inc(enum metric m)
{
    metrics_add(m, 1);
}

void metrics_add(enum metric m, uint64_t n)
{
    if ((unsigned)m < METRIC__COUNT)
        atomic_fetch_add_explicit(&counters[m], n, memory_order_relaxed);
}

uint64_t metrics_get(enum metric m)
{
    return (unsigned)m < METRIC__COUNT ? atomic_load_explicit(&counters[m], memory_order_relaxed) : 0;
}

const char *metrics_name(enum metric m)
{
    return (unsigned)m < METRIC__COUNT ? defs[m].name : "";
}

const char *metrics_help(enum metric m)
{
    return (unsigned)m < METRIC__COUNT ? defs[m].help : "";
}
