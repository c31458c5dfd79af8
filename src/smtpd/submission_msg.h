/*
 * submission_msg.h — what the submission port reads in, and adds to, the
 * header of a message a user sends (RFC 6409 section 8).
 *
 * The From rule: every mailbox in the message's one From field must be an
 * address the authenticated user owns (checked by the caller against the
 * directory; here the addresses are found). A message without a From field,
 * with two of them, or with a header section that is not a list of fields is
 * refused outright: a recipient's mail reader must not see a From that we did
 * not check. Missing Date and Message-ID fields are added (RFC 6409 8.2, 8.3).
 *
 * Pure functions over buffers; submission_from_addresses uses GMime's address
 * parser (set up once through mail_init()). Thread-safe: the session runs them
 * on a worker thread, since the message may be large.
 */
#ifndef LB_SMTPD_SUBMISSION_MSG_H
#define LB_SMTPD_SUBMISSION_MSG_H

#include <stddef.h>
#include <time.h>

#include "util/addr.h"

/* A From field longer than this (unfolded) is not taken: no sender has that
 * many addresses of their own. */
#define SUBMISSION_FROM_MAX 8192
/* At most this many mailboxes in From. */
#define SUBMISSION_FROM_ADDRS_MAX 16
/* Date and Message-ID fields as submission_missing_headers writes them. */
#define SUBMISSION_ADDED_MAX 512

enum submission_scan_result {
    SUBMISSION_SCAN_OK = 0,
    SUBMISSION_SCAN_MALFORMED, /* a line in the header section that is no field */
    SUBMISSION_SCAN_NO_MEMORY,
};

struct submission_headers {
    unsigned nfrom, ndate, nmessage_id;
    char *from;        /* the first From field's value, unfolded (malloc'd), NULL if none */
    int from_too_long; /* longer than SUBMISSION_FROM_MAX: from is NULL */
    size_t header_len; /* octets of the header section, its empty line excluded */
};

/* Reads the header section of msg (CRLF lines): up to the first empty line,
 * or the whole message if it has none. */
enum submission_scan_result submission_scan_headers(const unsigned char *msg, size_t len,
                                                    struct submission_headers *out);
void submission_headers_free(struct submission_headers *h);

/* The mailboxes of a From value, canonical (lower case), into out. Returns
 * their number (at least 1), or -1 when the value is no mailbox-list (empty,
 * a group, an address that is not local@domain, more than max). */
int submission_from_addresses(const char *value, char out[][ADDR_MAX + 1], size_t max);

/* Writes the fields the message lacks ("Date: ...\r\n", "Message-ID:
 * <...@domain>\r\n") into out, and the new Message-ID (without brackets) into
 * msgid when it made one ("" otherwise). Returns the length written, or -1
 * when it does not fit. The ID is random (libsodium) and the date local time. */
int submission_missing_headers(const struct submission_headers *h, const char *domain, time_t now, char *out,
                               size_t outlen, char *msgid, size_t msgidlen);

#endif
