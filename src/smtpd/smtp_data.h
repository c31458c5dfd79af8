/*
 * smtp_data.h — the message reader for DATA (RFC 5321 4.1.1.4, 4.5.2) and
 * BDAT (RFC 3030).
 *
 * A pure, incremental reader: the session hands it whatever bytes arrived, in
 * any split, and it says how many it consumed. It never reads past the end of
 * the message (DATA) or of the chunk (BDAT), so the bytes after it are the next
 * pipelined commands. The result does not depend on how the input was split.
 *
 * DATA: the body ends ONLY at <CRLF>.<CRLF>; lines starting with '.' lose that
 * dot. A bare CR or bare LF anywhere (so also <LF>.<LF>, <CR>.<CR>, <LF>.<CRLF>)
 * fails the message — the SMTP smuggling defence, as Postfix's
 * smtpd_forbid_bare_newline — but reading goes on to the real end so that the
 * session stays in step with the client and nothing after a fake end is ever
 * taken for a command.
 *
 * BDAT: each chunk is exactly its announced number of octets, no dot-stuffing;
 * the same line rules and limits apply across chunk boundaries, so a body that
 * arrives by BDAT can be relayed by DATA without becoming a smuggling vehicle.
 *
 * A message over max_size, with a line over 998 octets or with a bare CR/LF is
 * refused (smtp_data_reply) but still read to its end; storing stops at the
 * first error and the memory is released at once.
 */
#ifndef LB_SMTPD_SMTP_DATA_H
#define LB_SMTPD_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_DATA_LINE_MAX 998 /* RFC 5322 2.1.1, CRLF excluded */

enum smtp_data_error {
    SMTP_DATA_OK = 0,
    SMTP_DATA_BARE_NEWLINE, /* 550 5.6.11 */
    SMTP_DATA_LINE_TOO_LONG, /* 550 5.5.2 */
    SMTP_DATA_TOO_BIG,      /* 552 5.3.4 */
    SMTP_DATA_NO_MEMORY,    /* 451 4.3.0 */
};

struct smtp_data {
    /* The body as it will be stored: CRLF line ends, dot-unstuffed. Owned. */
    unsigned char *buf;
    size_t len, cap;

    uint64_t size;      /* octets of the body as received, also past an error */
    uint64_t max_size;  /* 0: no limit */
    enum smtp_data_error error; /* the first error, or SMTP_DATA_OK */
    int done;           /* the whole message has been read */

    /* reader state, see smtp_data.c */
    int state;
    size_t line_len;
    int chunked;        /* BDAT */
    uint64_t chunk_left;
    int last_chunk;
};

/* Prepares for a new message. size_hint (MAIL FROM SIZE=, 0 if none) lets the
 * buffer be reserved up front, within reason. */
void smtp_data_init(struct smtp_data *d, uint64_t max_size, uint64_t size_hint);

/* Releases the buffer; d can be initialised again afterwards. */
void smtp_data_free(struct smtp_data *d);

/* Starts reading a DATA body (after the 354 reply). */
void smtp_data_start_dot(struct smtp_data *d);

/* Starts reading one BDAT chunk of size octets; last: it was "BDAT n LAST". */
void smtp_data_start_chunk(struct smtp_data *d, uint64_t size, int last);

/* Consumes input; returns how many of the len bytes were used (fewer only
 * when the body or the chunk ended inside the input). */
size_t smtp_data_feed(struct smtp_data *d, const void *in, size_t len);

/* 1 when the current DATA body or BDAT chunk has been read completely. */
int smtp_data_segment_done(const struct smtp_data *d);

/* Puts n octets in front of a complete body (fields the submission port adds:
 * Date, Message-ID, DKIM-Signature). 0, or -1 when out of memory (d unchanged). */
int smtp_data_prepend(struct smtp_data *d, const void *text, size_t n);

/* The reply for d->error, without CRLF (NULL when there is no error). */
const char *smtp_data_reply(const struct smtp_data *d);

#endif
