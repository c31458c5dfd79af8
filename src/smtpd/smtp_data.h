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
 * With fix_bare (smtp_invalid_line_endings = fix) a bare CR or LF is stored as
 * CRLF instead, but it still does not start a line as far as SMTP is concerned:
 * a "." after it is text, never an end or a stuffing dot. So the end is still
 * only <CRLF>.<CRLF>, and a stored line that reads "." after the fix is an
 * ordinary line that the relay dot-stuffs like any other.
 *
 * BDAT: each chunk is exactly its announced number of octets, no dot-stuffing;
 * the same line rules and limits apply across chunk boundaries, so a body that
 * arrives by BDAT can be relayed by DATA without becoming a smuggling vehicle.
 *
 * The header section (up to the first empty line, or the whole message if it
 * has none) may hold no control character but TAB: a NUL would cut a header
 * field short for every C string that reads it (the From rule, DKIM), and the
 * others are no text either. The body may hold any octet (8BITMIME).
 *
 * Memory: the buffer grows only with octets granted by an optional budget
 * (struct smtp_data_budget), reserved before each growth and given back by
 * smtp_data_free; a refusal fails the message with 452 4.3.1.
 *
 * A message over max_size, with a line over 998 octets, with a bare CR/LF (in
 * reject mode), with a control character in its header section or over the
 * budget is refused (smtp_data_reply) but still read to its end; storing stops
 * at the first error and the memory is released at once.
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
    SMTP_DATA_NO_STORAGE,   /* 452 4.3.1: the budget refused more memory */
    SMTP_DATA_HEADER_CONTROL, /* 550 5.6.0: a control character in the header section */
};

/* Who grants the memory of message buffers (the server's budget for DATA in
 * flight). reserve returns 0 when n more octets may be held, -1 when not;
 * release gives n octets back. Called on the thread that feeds the reader. */
struct smtp_data_budget {
    int (*reserve)(void *arg, size_t n);
    void (*release)(void *arg, size_t n);
    void *arg;
};

struct smtp_data_opts {
    uint64_t max_size;  /* 0: no limit */
    uint64_t size_hint; /* MAIL FROM SIZE=, 0 if none: reserved up front, within reason */
    int fix_bare;       /* store bare CR/LF as CRLF instead of failing the message */
    const struct smtp_data_budget *budget; /* NULL: no accounting; must outlive the reader */
};

struct smtp_data {
    /* The body as it will be stored: CRLF line ends, dot-unstuffed. Owned. */
    unsigned char *buf;
    size_t len, cap;

    uint64_t size;      /* octets of the body as stored (counted also past an error) */
    uint64_t max_size;  /* 0: no limit */
    enum smtp_data_error error; /* the first error, or SMTP_DATA_OK */
    int done;           /* the whole message has been read */
    int fix_bare;
    const struct smtp_data_budget *budget;
    size_t reserved;    /* octets the budget granted for buf (cap, until a prepend) */

    /* reader state, see smtp_data.c */
    int state;
    size_t line_len;
    int in_header;      /* still inside the header section */
    int chunked;        /* BDAT */
    uint64_t chunk_left;
    int last_chunk;
};

/* Prepares for a new message (d holds nothing yet). */
void smtp_data_init_opts(struct smtp_data *d, const struct smtp_data_opts *o);

/* The same with only a limit and a size hint: reject mode, no budget. */
void smtp_data_init(struct smtp_data *d, uint64_t max_size, uint64_t size_hint);

/* Releases the buffer and gives its octets back to the budget; d can be
 * initialised again afterwards. */
void smtp_data_free(struct smtp_data *d);

/* Gives the buffer's octets back to the budget now and stops accounting (the
 * budget's owner goes away while the buffer is still in use). */
void smtp_data_detach_budget(struct smtp_data *d);

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
 * Date, Message-ID, DKIM-Signature). 0, or -1 when out of memory (d unchanged).
 * The growth is not charged to the budget (it may run on another thread, and
 * it is a kilobyte or two); smtp_data_free gives back what was charged. */
int smtp_data_prepend(struct smtp_data *d, const void *text, size_t n);

/* The reply for d->error, without CRLF (NULL when there is no error). */
const char *smtp_data_reply(const struct smtp_data *d);

#endif
