/*
 * session_relay.c — the From rule for mail a customer's server relays out
 * through port 25 (issue 10, finding 1).
 *
 * A client in a domain's --outbound-from networks relays as that domain's
 * customer: the envelope sender was checked at RCPT (directory_relay_check);
 * here every mailbox of the message's From field must be in one of that
 * customer's domains (or a subdomain, such as the server's own host name for
 * its bounces), or the message is refused with 550 5.7.1. Without the rule
 * one customer's server could put another customer's address in front of a
 * recipient, signed by nobody and relayed by us. A message with no From field
 * claims nobody and passes; two From fields are refused as malformed, since a
 * reader shows one of them and we would have checked the other.
 *
 * The scan stops at the end of the header section and the From value is
 * bounded (SUBMISSION_FROM_MAX), so this runs on the loop.
 */
#include "smtpd/smtpd_int.h"

#include <stdio.h>

#include "smtpd/submission_msg.h"
#include "util/log.h"

#define REPLY_NOT_OWNED "550 5.7.1 Error: From header not owned by the relaying customer"

static int customer_owns(void *ctx, const char *addr)
{
    struct session *s = ctx;
    return s->srv->backend.customer_owns(s->srv->backend.arg, s->txn.relay_customer, addr_domain(addr));
}

/* NULL when the From field passes; otherwise the reply, and the address
 * refused (if one) in refused. */
static const char *check_from(struct session *s, char *refused, size_t refusedlen)
{
    struct submission_headers h;
    const char *no = smtpd_scan_headers(&s->txn.data, &h);
    if (no)
        return no;
    no = smtpd_from_rule(&h, 0, REPLY_NOT_OWNED, customer_owns, s, NULL, 0, refused, refusedlen);
    submission_headers_free(&h);
    return no;
}

int session_relay_refused(struct session *s)
{
    struct txn *t = &s->txn;
    if (s->user || t->relay != DIRECTORY_RELAY_OK || !t->relay_customer)
        return 0;
    char refused[ADDR_MAX + 32] = "";
    const char *reply = check_from(s, refused, sizeof refused);
    if (!reply)
        return 0;
    log_info("%s: reject: END-OF-MESSAGE from [%s]: %s; from=<%s> header_from=<%s>", t->queue_id, s->ip, reply,
             t->sender, refused);
    txn_reset(t);
    if (reply[0] == '5')
        session_error(s, reply);
    else
        session_reply(s, reply);
    return 1;
}
