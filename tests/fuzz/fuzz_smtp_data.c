/*
 * fuzz_smtp_data.c — libFuzzer target for the DATA/BDAT reader
 * (src/smtpd/smtp_data.c).
 *
 * The first input byte chooses the mode (DATA or a sequence of BDAT chunks)
 * and a split pattern; the rest is the stream. The same stream is fed twice,
 * once whole and once in pieces of varying size, and the results must agree
 * exactly (the reader's output may not depend on how TCP split the input).
 * Invariants: the reader never consumes more than it is given, stops exactly
 * at the end, stores nothing after an error, keeps every stored line at most
 * 998 octets plus CRLF, never stores a bare CR or LF, and never stores more
 * than the size limit. See tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtp_data.h"

#define MAX_SIZE 4096

struct outcome {
    size_t consumed;
    int done;
    enum smtp_data_error error;
    uint64_t size;
    unsigned char *body;
    size_t len;
};

/* DATA: feed until the reader reports the end. */
static void run_dot(const uint8_t *in, size_t len, unsigned split, struct outcome *o)
{
    struct smtp_data d;
    smtp_data_init(&d, MAX_SIZE, split & 1 ? len : 0);
    smtp_data_start_dot(&d);
    size_t off = 0;
    unsigned step = split ? split : 1;
    while (off < len && !d.done) {
        size_t n = split == 0 ? len - off : step;
        if (n > len - off)
            n = len - off;
        size_t used = smtp_data_feed(&d, in + off, n);
        if (used > n || (used < n && !d.done))
            abort();
        off += used;
        step = step * 7 % 31 + 1; /* irregular piece sizes */
    }
    o->consumed = off;
    o->done = d.done;
    o->error = d.error;
    o->size = d.size;
    o->len = d.len;
    o->body = d.buf; /* taken over */
    d.buf = NULL;
}

/* BDAT: chunk sizes come from the input itself (one byte each, then the bytes). */
static void run_bdat(const uint8_t *in, size_t len, unsigned split, struct outcome *o)
{
    struct smtp_data d;
    smtp_data_init(&d, MAX_SIZE, 0);
    size_t off = 0;
    while (off < len && !d.done) {
        size_t chunk = in[off++] % 64;
        int last = off >= len || chunk == 0 || (in[off - 1] & 0x80);
        if (chunk > len - off)
            chunk = len - off;
        smtp_data_start_chunk(&d, chunk, last);
        size_t got = 0;
        while (!smtp_data_segment_done(&d)) {
            size_t n = split ? split : chunk - got + 5; /* offer more than the chunk */
            if (n > len - off)
                n = len - off;
            size_t used = smtp_data_feed(&d, in + off, n);
            if (used > n || used > chunk - got)
                abort();
            off += used;
            got += used;
            if (used == 0)
                break;
        }
        if (got != chunk)
            abort();
    }
    o->consumed = off;
    o->done = d.done;
    o->error = d.error;
    o->size = d.size;
    o->len = d.len;
    o->body = d.buf;
    d.buf = NULL;
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
    for (size_t i = 0; i < o->len; i++) {
        unsigned char c = o->body[i];
        if (c == '\r') {
            if (i + 1 >= o->len || o->body[i + 1] != '\n')
                abort();
            i++;
            line = 0;
        } else if (c == '\n') {
            abort();
        } else if (++line > SMTP_DATA_LINE_MAX) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int bdat = data[0] & 1;
    unsigned split = (data[0] >> 1) % 13 + 1;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    struct outcome whole, pieces;
    if (bdat) {
        run_bdat(in, len, 0, &whole);
        run_bdat(in, len, split, &pieces);
    } else {
        run_dot(in, len, 0, &whole);
        run_dot(in, len, split, &pieces);
    }
    if (whole.consumed != pieces.consumed || whole.done != pieces.done ||
        whole.error != pieces.error || whole.size != pieces.size || whole.len != pieces.len ||
        (whole.len && memcmp(whole.body, pieces.body, whole.len) != 0))
        abort();
    check_body(&whole);
    if (smtp_data_reply(&(struct smtp_data){.error = whole.error}) == NULL && whole.error)
        abort();
    free(whole.body);
    free(pieces.body);
    return 0;
}
