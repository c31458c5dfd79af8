/*
 * dsn.h — building delivery status notifications (bounces), RFC 3464.
 *
 * When recipients of a message fail permanently, or the message outlives
 * queue_lifetime, the delivery engine tells the envelope sender with a
 * multipart/report; report-type=delivery-status message:
 *   1. a human-readable explanation (text/plain),
 *   2. the machine-readable report (message/delivery-status: Reporting-MTA,
 *      Arrival-Date, and per recipient Final-Recipient, Action: failed, Status,
 *      Remote-MTA, Diagnostic-Code),
 *   3. the header of the original message (text/rfc822-headers), not its body.
 * When an envelope address is not ASCII (SMTPUTF8 mail) the RFC 6533 types
 * message/global-delivery-status and message/global-headers are used instead.
 *
 * A pure function over buffers (GMime builds the MIME structure): the caller
 * queues the result with the null sender and is_bounce set, and never asks for
 * a DSN to the null sender or about a bounce (RFC 5321 6.1, no bounce loops).
 */
#ifndef LB_MAIL_DSN_H
#define LB_MAIL_DSN_H

#include <stddef.h>
#include <stdint.h>

struct dsn_envelope {
    const char *reporting_mta; /* our host name */
    const char *queue_id;      /* the original message's queue ID */
    const char *dsn_id;        /* the DSN's own queue ID (for its Message-ID) */
    const char *sender;        /* the original envelope sender: the DSN goes to it */
    int64_t arrival;           /* when the original was received (time()) */
    const char *prefix;        /* header lines we added to the original (Received:), or NULL */
};

struct dsn_failure {
    const char *rcpt;       /* the recipient that failed */
    const char *status;     /* RFC 3463 status, e.g. "5.1.1" (a 4.x.x one for an expired message) */
    const char *remote_mta; /* host name of the server that refused it, or NULL */
    const char *smtp_reply; /* that server's reply ("550 5.1.1 ..."), or NULL when it was not one */
    const char *text;       /* the reason in words, as in the log */
    int64_t last_attempt;   /* time(), 0: not known */
};

/*
 * Builds the DSN for the failures of one message. original/original_len: the
 * message as received (only its header is used). Returns 0 and a malloc'd
 * message with CRLF line ends in *out and *outlen (caller frees), or -1 (null sender,
 * no failures, out of memory).
 */
int dsn_build(const unsigned char *original, size_t original_len, const struct dsn_envelope *env,
              const struct dsn_failure *failures, size_t nfailures, unsigned char **out, size_t *outlen);

#endif
