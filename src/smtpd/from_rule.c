/*
 * from_rule.c — the From rule that the submission port (a user's own
 * addresses) and relaying clients (their customer's domains) share: read the
 * header section, then every mailbox of the message's one From field must be
 * owned, as the caller's predicate says. Only the predicate and whether a
 * From field is required differ; the replies are the same.
 */
#include "smtpd/smtpd_int.h"

#include <stdio.h>

#include "smtpd/submission_msg.h"

#define REPLY_NO_FROM "550 5.6.0 Error: message has no From header"
#define REPLY_TWO_FROM "550 5.6.0 Error: message has more than one From header"
#define REPLY_MALFORMED "550 5.6.0 Error: malformed message header"
#define REPLY_DIRECTORY "451 4.3.0 Error: temporary directory failure, try again later"

const char smtpd_reply_resources[] = "451 4.3.0 Error: insufficient system resources";

const char *smtpd_scan_headers(const struct smtp_data *d, struct submission_headers *h)
{
    switch (submission_scan_headers(d->buf ? d->buf : (const unsigned char *)"", d->len, h)) {
    case SUBMISSION_SCAN_OK:
        return NULL;
    case SUBMISSION_SCAN_MALFORMED:
        return REPLY_MALFORMED;
    default:
        return smtpd_reply_resources;
    }
}

const char *smtpd_from_rule(const struct submission_headers *h, int required, const char *not_owned,
                            int (*owns)(void *ctx, const char *addr), void *ctx, char *from_domain,
                            size_t from_domain_len, char *refused, size_t refused_len)
{
    if (h->nfrom == 0)
        return required ? REPLY_NO_FROM : NULL;
    if (h->nfrom > 1)
        return REPLY_TWO_FROM;
    char addrs[SUBMISSION_FROM_ADDRS_MAX][ADDR_MAX + 1];
    int n = h->from ? submission_from_addresses(h->from, addrs, SUBMISSION_FROM_ADDRS_MAX) : -1;
    if (n < 0) {
        snprintf(refused, refused_len, "(not a list of addresses)");
        return not_owned;
    }
    for (int i = 0; i < n; i++) {
        int own = owns(ctx, addrs[i]);
        if (own == STORE_ERR)
            return REPLY_DIRECTORY;
        if (own != 1) {
            snprintf(refused, refused_len, "%.*s", (int)refused_len - 1, addrs[i]);
            return not_owned;
        }
    }
    if (from_domain)
        snprintf(from_domain, from_domain_len, "%s", addr_domain(addrs[0]));
    return NULL;
}
