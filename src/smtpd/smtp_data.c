/*
 * smtp_data.c — see smtp_data.h.
 *
 * DATA is a small state machine over the bytes since the last line end. The
 * common case (text in the middle of a line) is handled a run at a time with
 * memchr, so the reader copies each body octet once, into the output buffer.
 *
 *   BOL     at the beginning of a line (also the very start of the body)
 *   DOT     "." at the beginning of a line
 *   DOT_CR  ".<CR>" at the beginning of a line: <LF> now ends the message
 *   TEXT    inside a line
 *   CR      <CR> inside a line: <LF> must follow
 *
 * A bare <LF> does not start a new line: it is an error and the state stays
 * TEXT, so <LF>.<LF> or <LF>.<CRLF> can never end the message, only <CRLF>.<CRLF>.
 */
#include "smtpd/smtp_data.h"

#include <stdlib.h>
#include <string.h>

enum { ST_BOL, ST_DOT, ST_DOT_CR, ST_TEXT, ST_CR };

/* Up-front reservation from a SIZE= hint is capped: a hint is only a claim,
 * and thousands of sessions claiming 25 MB must not reserve 25 MB each. */
#define RESERVE_MAX (4u * 1024 * 1024)
#define GROW_MIN (16u * 1024)

void smtp_data_init(struct smtp_data *d, uint64_t max_size, uint64_t size_hint)
{
    memset(d, 0, sizeof *d);
    d->max_size = max_size;
    d->state = ST_BOL;
    if (size_hint > 0 && (max_size == 0 || size_hint <= max_size)) {
        size_t want = size_hint + 2 > RESERVE_MAX ? RESERVE_MAX : (size_t)size_hint + 2;
        d->buf = malloc(want);
        if (d->buf)
            d->cap = want;
    }
}

void smtp_data_free(struct smtp_data *d)
{
    free(d->buf);
    d->buf = NULL;
    d->len = d->cap = 0;
}

void smtp_data_start_dot(struct smtp_data *d)
{
    d->chunked = 0;
    d->state = ST_BOL;
    d->line_len = 0;
}

static void finish_chunks(struct smtp_data *d);

void smtp_data_start_chunk(struct smtp_data *d, uint64_t size, int last)
{
    if (!d->chunked) {
        /* The first chunk: the line state starts at the beginning of a line. */
        d->chunked = 1;
        d->state = ST_BOL;
        d->line_len = 0;
    }
    d->chunk_left = size;
    d->last_chunk = last;
    if (size == 0) {
        if (last)
            finish_chunks(d);
        return;
    }
    /* Reserve for the chunk we know is coming, within the limit. */
    if (!d->error && d->len + size <= (d->max_size ? d->max_size : UINT64_MAX) &&
        d->len + size > d->cap && size <= RESERVE_MAX) {
        size_t want = d->len + (size_t)size + 2;
        unsigned char *nb = realloc(d->buf, want);
        if (nb) {
            d->buf = nb;
            d->cap = want;
        }
    }
}

static void fail(struct smtp_data *d, enum smtp_data_error e)
{
    if (d->error == SMTP_DATA_OK) {
        d->error = e;
        /* Nothing of this message will be stored: give the memory back now. */
        smtp_data_free(d);
    }
}

/* Appends n octets of body (counting them even when they are not stored). */
static void emit(struct smtp_data *d, const void *p, size_t n)
{
    d->size += n;
    if (d->error)
        return;
    if (d->max_size && d->size > d->max_size) {
        fail(d, SMTP_DATA_TOO_BIG);
        return;
    }
    if (d->len + n > d->cap) {
        size_t cap = d->cap < GROW_MIN ? GROW_MIN : d->cap;
        while (cap < d->len + n)
            cap *= 2;
        /* Never past the limit: everything stored so far was counted in size,
         * which emit() has just checked, so len + n <= max_size. */
        if (d->max_size && cap > d->max_size)
            cap = (size_t)d->max_size;
        unsigned char *nb = realloc(d->buf, cap);
        if (!nb) {
            fail(d, SMTP_DATA_NO_MEMORY);
            return;
        }
        d->buf = nb;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, p, n);
    d->len += n;
}

static void line_grows(struct smtp_data *d, size_t n)
{
    d->line_len += n;
    if (d->line_len > SMTP_DATA_LINE_MAX)
        fail(d, SMTP_DATA_LINE_TOO_LONG);
}

/* The end of the text run starting at p: the first CR or LF, or end. */
static const unsigned char *run_end(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *cr = memchr(p, '\r', (size_t)(end - p));
    const unsigned char *stop = cr ? cr : end;
    const unsigned char *lf = memchr(p, '\n', (size_t)(stop - p));
    return lf ? lf : stop;
}

static size_t feed_dot(struct smtp_data *d, const unsigned char *in, size_t len)
{
    const unsigned char *p = in, *end = in + len;
    while (p < end) {
        switch (d->state) {
        case ST_BOL:
            if (*p == '.') {
                d->state = ST_DOT;
                p++;
            } else {
                d->state = ST_TEXT;
            }
            break;
        case ST_DOT:
            if (*p == '\r') {
                d->state = ST_DOT_CR;
                p++;
            } else {
                /* Dot-stuffing: the leading dot is dropped, the line goes on. */
                d->state = ST_TEXT;
            }
            break;
        case ST_DOT_CR:
            if (*p == '\n') {
                d->done = 1;
                return (size_t)(p + 1 - in);
            }
            fail(d, SMTP_DATA_BARE_NEWLINE); /* ".<CR>x": a bare CR */
            d->state = ST_TEXT;              /* x is looked at again as text */
            break;
        case ST_CR:
            if (*p == '\n') {
                emit(d, "\r\n", 2);
                d->line_len = 0;
                d->state = ST_BOL;
                p++;
            } else {
                fail(d, SMTP_DATA_BARE_NEWLINE);
                d->state = ST_TEXT;
            }
            break;
        case ST_TEXT: {
            const unsigned char *q = run_end(p, end);
            if (q > p) {
                line_grows(d, (size_t)(q - p));
                emit(d, p, (size_t)(q - p));
                p = q;
            }
            if (p == end)
                break;
            if (*p == '\r') {
                d->state = ST_CR;
            } else {
                /* A bare LF is not a line end: stay inside the line so that
                 * no "." after it can end the message. */
                fail(d, SMTP_DATA_BARE_NEWLINE);
            }
            p++;
            break;
        }
        }
    }
    return len;
}

/* BDAT: the octets are the body as they are; only the line rules are checked. */
static void check_chunk(struct smtp_data *d, const unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        if (d->state == ST_CR) {
            if (*p == '\n') {
                d->line_len = 0;
                d->state = ST_BOL;
                p++;
                continue;
            }
            fail(d, SMTP_DATA_BARE_NEWLINE);
            d->state = ST_TEXT;
        }
        const unsigned char *q = run_end(p, end);
        if (q > p) {
            line_grows(d, (size_t)(q - p));
            d->state = ST_TEXT;
            p = q;
        }
        if (p == end)
            break;
        if (*p == '\r')
            d->state = ST_CR;
        else
            fail(d, SMTP_DATA_BARE_NEWLINE);
        p++;
    }
}

/* After the LAST chunk: a CR at the very end is bare; an unfinished last line
 * gets its CRLF, so that the body can be relayed by DATA. */
static void finish_chunks(struct smtp_data *d)
{
    if (d->state == ST_CR)
        fail(d, SMTP_DATA_BARE_NEWLINE);
    else if (d->state == ST_TEXT && d->line_len > 0)
        emit(d, "\r\n", 2);
    d->done = 1;
}

static size_t feed_chunk(struct smtp_data *d, const unsigned char *in, size_t len)
{
    size_t n = d->chunk_left < len ? (size_t)d->chunk_left : len;
    check_chunk(d, in, in + n);
    emit(d, in, n);
    d->chunk_left -= n;
    if (d->chunk_left == 0 && d->last_chunk)
        finish_chunks(d);
    return n;
}

size_t smtp_data_feed(struct smtp_data *d, const void *in, size_t len)
{
    if (d->done || len == 0)
        return 0;
    if (d->chunked)
        return d->chunk_left ? feed_chunk(d, in, len) : 0;
    return feed_dot(d, in, len);
}

int smtp_data_segment_done(const struct smtp_data *d)
{
    return d->done || (d->chunked && d->chunk_left == 0);
}

const char *smtp_data_reply(const struct smtp_data *d)
{
    switch (d->error) {
    case SMTP_DATA_BARE_NEWLINE:
        return "550 5.6.11 bare LF/CR not allowed";
    case SMTP_DATA_LINE_TOO_LONG:
        return "550 5.5.2 Error: message line longer than 998 octets";
    case SMTP_DATA_TOO_BIG:
        return "552 5.3.4 Error: message file too big";
    case SMTP_DATA_NO_MEMORY:
        return "451 4.3.0 Error: insufficient system resources";
    default:
        return NULL;
    }
}

int smtp_data_prepend(struct smtp_data *d, const void *text, size_t n)
{
    if (n == 0)
        return 0;
    if (d->len + n > d->cap) {
        unsigned char *nb = realloc(d->buf, d->len + n);
        if (!nb)
            return -1;
        d->buf = nb;
        d->cap = d->len + n;
    }
    if (d->len)
        memmove(d->buf + n, d->buf, d->len);
    memcpy(d->buf, text, n);
    d->len += n;
    return 0;
}
