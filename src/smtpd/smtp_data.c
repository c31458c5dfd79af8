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
 * In fix mode the bare <LF> (or <CR>) is stored as CRLF, and the state still
 * stays TEXT: the stored line breaks, the SMTP line does not, so a "." after it
 * is neither an end nor a stuffing dot.
 *
 * BDAT uses the same states without the dot ones; the octets of a chunk are
 * the body's own.
 */
#include "smtpd/smtp_data.h"

#include <stdlib.h>
#include <string.h>

enum { ST_BOL, ST_DOT, ST_DOT_CR, ST_TEXT, ST_CR };

/* Up-front reservation from a SIZE= hint is capped: a hint is only a claim,
 * and thousands of sessions claiming 25 MB must not reserve 25 MB each. */
#define RESERVE_MAX (4u * 1024 * 1024)
#define GROW_MIN (16u * 1024)

static void fail(struct smtp_data *d, enum smtp_data_error e);

/* Makes sure the budget has granted cap octets for the buffer. 0, or -1 when
 * it refuses (nothing changed then). */
static int reserve_to(struct smtp_data *d, size_t cap)
{
    if (!d->budget || cap <= d->reserved)
        return 0;
    if (d->budget->reserve(d->budget->arg, cap - d->reserved) != 0)
        return -1;
    d->reserved = cap;
    return 0;
}

/* Sets the buffer's capacity to cap (>= len), the budget permitting: 0, -1
 * when the budget refuses, -2 when realloc fails. On failure the buffer is as
 * it was and nothing more is reserved. */
static int resize(struct smtp_data *d, size_t cap)
{
    size_t had = d->reserved;
    if (reserve_to(d, cap) != 0)
        return -1;
    unsigned char *nb = realloc(d->buf, cap);
    if (!nb) {
        if (d->budget && d->reserved > had) {
            d->budget->release(d->budget->arg, d->reserved - had);
            d->reserved = had;
        }
        return -2;
    }
    d->buf = nb;
    d->cap = cap;
    return 0;
}

void smtp_data_init_opts(struct smtp_data *d, const struct smtp_data_opts *o)
{
    memset(d, 0, sizeof *d);
    d->max_size = o->max_size;
    d->fix_bare = o->fix_bare;
    d->budget = o->budget;
    d->state = ST_BOL;
    d->in_header = 1;
    uint64_t hint = o->size_hint;
    if (hint > 0 && (d->max_size == 0 || hint <= d->max_size)) {
        size_t want = hint + 2 > RESERVE_MAX ? RESERVE_MAX : (size_t)hint + 2;
        (void)resize(d, want); /* only a head start: refused, the buffer grows as data comes */
    }
}

void smtp_data_init(struct smtp_data *d, uint64_t max_size, uint64_t size_hint)
{
    struct smtp_data_opts o = {.max_size = max_size, .size_hint = size_hint};
    smtp_data_init_opts(d, &o);
}

void smtp_data_free(struct smtp_data *d)
{
    free(d->buf);
    d->buf = NULL;
    d->len = d->cap = 0;
    if (d->budget && d->reserved)
        d->budget->release(d->budget->arg, d->reserved);
    d->reserved = 0;
}

void smtp_data_detach_budget(struct smtp_data *d)
{
    if (d->budget && d->reserved)
        d->budget->release(d->budget->arg, d->reserved);
    d->reserved = 0;
    d->budget = NULL;
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
    /* Reserve for the chunk we know is coming, within the limit (a head
     * start only: if the budget says no, the buffer grows as data comes). */
    if (!d->error && d->len + size <= (d->max_size ? d->max_size : UINT64_MAX) &&
        d->len + size > d->cap && size <= RESERVE_MAX)
        (void)resize(d, d->len + (size_t)size + 2);
}

static void fail(struct smtp_data *d, enum smtp_data_error e)
{
    if (d->error == SMTP_DATA_OK) {
        d->error = e;
        /* Nothing of this message will be stored: give the memory back now. */
        smtp_data_free(d);
    }
}

/* Grows the buffer to hold need octets: doubling, within max_size; when the
 * budget will not grant that much, by an eighth only (still geometric, so the
 * copies stay linear), and when not even that, the message fails. */
static int grow(struct smtp_data *d, size_t need)
{
    size_t cap = d->cap < GROW_MIN ? GROW_MIN : d->cap;
    while (cap < need)
        cap *= 2;
    /* Never past the limit: everything stored so far was counted in size,
     * which emit() has just checked, so need <= max_size. */
    if (d->max_size && cap > d->max_size)
        cap = (size_t)d->max_size;
    int rc = resize(d, cap);
    if (rc == 0)
        return 0;
    size_t least = need + need / 8;
    if (d->max_size && least > d->max_size)
        least = (size_t)d->max_size;
    if (least < cap) {
        rc = resize(d, least);
        if (rc == 0)
            return 0;
    }
    fail(d, rc == -1 ? SMTP_DATA_NO_STORAGE : SMTP_DATA_NO_MEMORY);
    return -1;
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
    if (d->len + n > d->cap && grow(d, d->len + n) != 0)
        return;
    memcpy(d->buf + d->len, p, n);
    d->len += n;
}

/* The index of the first control character other than TAB (C0 or DEL) in
 * p[0..n), or n; CR and LF never reach here. */
static size_t first_control(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
            return i;
    return n;
}

/* A run of text inside a line (no CR, no LF): line length, header rule, size
 * limit, store. The octet that breaks a rule first decides the error, so the
 * outcome does not depend on where the input was split (at the same octet:
 * line length, then control character, then size). */
static void text(struct smtp_data *d, const unsigned char *p, size_t n)
{
    if (!d->error) {
        size_t at = n;
        enum smtp_data_error e = SMTP_DATA_OK;
        size_t line_room = d->line_len < SMTP_DATA_LINE_MAX ? SMTP_DATA_LINE_MAX - d->line_len : 0;
        if (line_room < at) {
            at = line_room;
            e = SMTP_DATA_LINE_TOO_LONG;
        }
        size_t ctl = d->in_header ? first_control(p, n) : n;
        if (ctl < at) {
            at = ctl;
            e = SMTP_DATA_HEADER_CONTROL;
        }
        if (d->max_size) {
            uint64_t size_room = d->size < d->max_size ? d->max_size - d->size : 0;
            if (size_room < at) {
                at = (size_t)size_room;
                e = SMTP_DATA_TOO_BIG;
            }
        }
        if (e != SMTP_DATA_OK)
            fail(d, e);
    }
    d->line_len += n;
    emit(d, p, n);
}

/* The end of a stored line: CRLF; the first empty line ends the header section. */
static void end_line(struct smtp_data *d)
{
    emit(d, "\r\n", 2);
    if (d->line_len == 0)
        d->in_header = 0;
    d->line_len = 0;
}

/* A bare CR or LF: refused, or (fix mode) stored as a line end. */
static void bare(struct smtp_data *d)
{
    if (d->fix_bare)
        end_line(d);
    else
        fail(d, SMTP_DATA_BARE_NEWLINE);
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
            /* ".<CR>x": the line had more than the dot, so the dot was a
             * stuffing dot; the CR is bare. x is looked at again as text. */
            bare(d);
            d->state = ST_TEXT;
            break;
        case ST_CR:
            if (*p == '\n') {
                end_line(d);
                d->state = ST_BOL;
                p++;
            } else {
                bare(d); /* x after a bare CR is looked at again as text */
                d->state = ST_TEXT;
            }
            break;
        case ST_TEXT: {
            const unsigned char *q = run_end(p, end);
            if (q > p) {
                text(d, p, (size_t)(q - p));
                p = q;
            }
            if (p == end)
                break;
            if (*p == '\r') {
                d->state = ST_CR;
            } else {
                /* A bare LF is not a line end: stay inside the line so that
                 * no "." after it can end the message. */
                bare(d);
            }
            p++;
            break;
        }
        }
    }
    return len;
}

/* BDAT: the octets are the body as they are, under the same line rules. A CR
 * is held back until the next octet (maybe in the next chunk) says whether
 * it was a line end. */
static void feed_chunk_octets(struct smtp_data *d, const unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        if (d->state == ST_CR) {
            if (*p == '\n') {
                end_line(d);
                d->state = ST_BOL;
                p++;
                continue;
            }
            bare(d);
            d->state = ST_TEXT;
        }
        const unsigned char *q = run_end(p, end);
        if (q > p) {
            text(d, p, (size_t)(q - p));
            d->state = ST_TEXT;
            p = q;
        }
        if (p == end)
            break;
        if (*p == '\r') {
            d->state = ST_CR;
        } else {
            bare(d);
            d->state = ST_TEXT;
        }
        p++;
    }
}

/* After the LAST chunk: a CR at the very end is bare; an unfinished last line
 * gets its CRLF, so that the body can be relayed by DATA. */
static void finish_chunks(struct smtp_data *d)
{
    if (d->state == ST_CR)
        bare(d);
    else if (d->state == ST_TEXT && d->line_len > 0)
        end_line(d);
    d->done = 1;
}

static size_t feed_chunk(struct smtp_data *d, const unsigned char *in, size_t len)
{
    size_t n = d->chunk_left < len ? (size_t)d->chunk_left : len;
    feed_chunk_octets(d, in, in + n);
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
    case SMTP_DATA_NO_STORAGE:
        return "452 4.3.1 Error: insufficient system storage, try again later";
    case SMTP_DATA_HEADER_CONTROL:
        return "550 5.6.0 Error: control character in message header";
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
