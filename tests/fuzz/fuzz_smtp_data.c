/*
 * fuzz_smtp_data.c — libFuzzer target for the DATA/BDAT reader
 * (src/smtpd/smtp_data.c).
 *
 * The first input byte chooses the mode (DATA or a sequence of BDAT chunks),
 * the line-ending mode (reject, or fix: bare CR/LF stored as CRLF), a split
 * pattern and a memory budget; the rest is the stream. The same stream is fed
 * twice without a budget, once whole and once in pieces of varying size, and
 * the results must agree exactly (the reader's output may not depend on how
 * TCP split the input). Invariants: the reader never consumes more than it is
 * given, stops exactly at the end, stores nothing after an error, keeps every
 * stored line at most 998 octets plus CRLF, never stores a bare CR or LF (in
 * either mode), never stores a control character other than TAB in the header
 * section, and never stores more than the size limit.
 *
 * A third run, in pieces, has a small budget: the buffer never holds more than
 * the budget granted, everything granted is given back, the run reads exactly
 * as far as the others, and the budget only ever adds a 452 (NO_STORAGE):
 * without one, the outcome and the stored body are the same as without a
 * budget. See tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtp_data.h"

#define MAX_SIZE 4096

struct budget {
    size_t used, limit;
};

static int budget_reserve(void *arg, size_t n)
{
    struct budget *b = arg;
    if (n > b->limit - b->used)
        return -1;
    b->used += n;
    return 0;
}

static void budget_release(void *arg, size_t n)
{
    struct budget *b = arg;
    if (n > b->used)
        abort(); /* given back more than was granted */
    b->used -= n;
}

struct outcome {
    size_t consumed;
    int done;
    enum smtp_data_error error;
    uint64_t size;
    unsigned char *body;
    size_t len;
};

/* The budget's books match the reader's after every step. */
static void check_budget(const struct smtp_data *d, const struct budget *b)
{
    if (b && (d->reserved != b->used || d->cap > b->used))
        abort();
}

/* Hands the body over to o and frees the reader (which gives the budget back). */
static void take(struct smtp_data *d, size_t consumed, struct outcome *o)
{
    o->consumed = consumed;
    o->done = d->done;
    o->error = d->error;
    o->size = d->size;
    o->len = d->len;
    o->body = NULL;
    if (d->len) {
        o->body = malloc(d->len);
        if (!o->body)
            abort();
        memcpy(o->body, d->buf, d->len);
    } else if (d->error && d->buf) {
        abort(); /* storing stops at the first error */
    }
    if (d->error && d->buf)
        abort();
    smtp_data_free(d);
}

/* DATA: feed until the reader reports the end. */
static void run_dot(const uint8_t *in, size_t len, unsigned split, const struct smtp_data_opts *opts,
                    struct budget *b, struct outcome *o)
{
    struct smtp_data d;
    smtp_data_init_opts(&d, opts);
    smtp_data_start_dot(&d);
    check_budget(&d, b);
    size_t off = 0;
    unsigned step = split ? split : 1;
    while (off < len && !d.done) {
        size_t n = split == 0 ? len - off : step;
        if (n > len - off)
            n = len - off;
        size_t used = smtp_data_feed(&d, in + off, n);
        if (used > n || (used < n && !d.done))
            abort();
        check_budget(&d, b);
        off += used;
        step = step * 7 % 31 + 1; /* irregular piece sizes */
    }
    take(&d, off, o);
}

/* BDAT: chunk sizes come from the input itself (one byte each, then the bytes). */
static void run_bdat(const uint8_t *in, size_t len, unsigned split, const struct smtp_data_opts *opts,
                     struct budget *b, struct outcome *o)
{
    struct smtp_data d;
    smtp_data_init_opts(&d, opts);
    size_t off = 0;
    while (off < len && !d.done) {
        size_t chunk = in[off++] % 64;
        int last = off >= len || chunk == 0 || (in[off - 1] & 0x80);
        if (chunk > len - off)
            chunk = len - off;
        smtp_data_start_chunk(&d, chunk, last);
        check_budget(&d, b);
        size_t got = 0;
        while (!smtp_data_segment_done(&d)) {
            size_t n = split ? split : chunk - got + 5; /* offer more than the chunk */
            if (n > len - off)
                n = len - off;
            size_t used = smtp_data_feed(&d, in + off, n);
            if (used > n || used > chunk - got)
                abort();
            check_budget(&d, b);
            off += used;
            got += used;
            if (used == 0)
                break;
        }
        if (got != chunk)
            abort();
    }
    take(&d, off, o);
}

static void check_body(const struct outcome *o)
{
    if (o->error) {
        if (o->body)
            abort(); /* storing stops at the first error */
        return;
    }
    if (!o->done)
        return; /* an unfinished body may end in a CR whose LF is still to come */
    if (o->len > MAX_SIZE)
        abort();
    size_t line = 0;
    int header = 1;
    for (size_t i = 0; i < o->len; i++) {
        unsigned char c = o->body[i];
        if (c == '\r') {
            if (i + 1 >= o->len || o->body[i + 1] != '\n')
                abort();
            i++;
            if (line == 0)
                header = 0; /* the first empty line ends the header section */
            line = 0;
        } else if (c == '\n') {
            abort();
        } else if (++line > SMTP_DATA_LINE_MAX) {
            abort();
        } else if (header && ((c < 0x20 && c != '\t') || c == 0x7f)) {
            abort();
        }
    }
}

static int same(const struct outcome *a, const struct outcome *b)
{
    return a->consumed == b->consumed && a->done == b->done && a->error == b->error && a->size == b->size &&
           a->len == b->len && (a->len == 0 || memcmp(a->body, b->body, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int bdat = data[0] & 1;
    int fix = (data[0] >> 1) & 1;
    unsigned split = (data[0] >> 2) % 13 + 1;
    size_t limit = (size_t)64 << ((data[0] >> 5) & 7); /* 64 octets to 8 KB */
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    void (*run)(const uint8_t *, size_t, unsigned, const struct smtp_data_opts *, struct budget *,
                struct outcome *) = bdat ? run_bdat : run_dot;

    struct smtp_data_opts opts = {.max_size = MAX_SIZE, .fix_bare = fix};
    struct outcome whole, pieces, budgeted;
    run(in, len, 0, &opts, NULL, &whole);
    opts.size_hint = split & 1 ? len : 0;
    run(in, len, split, &opts, NULL, &pieces);
    if (!same(&whole, &pieces))
        abort();
    check_body(&whole);
    if (smtp_data_reply(&(struct smtp_data){.error = whole.error}) == NULL && whole.error)
        abort();

    struct budget b = {.limit = limit};
    const struct smtp_data_budget budget = {.reserve = budget_reserve, .release = budget_release, .arg = &b};
    opts.budget = &budget;
    run(in, len, split, &opts, &b, &budgeted);
    if (b.used != 0)
        abort(); /* everything granted was given back */
    if (budgeted.consumed != whole.consumed || budgeted.done != whole.done || budgeted.size != whole.size)
        abort(); /* read to the same end, refused or not */
    if (budgeted.error != SMTP_DATA_NO_STORAGE && !same(&whole, &budgeted))
        abort();
    free(whole.body);
    free(pieces.body);
    free(budgeted.body);
    return 0;
}
