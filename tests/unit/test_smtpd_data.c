/*
 * test_smtpd_data.c — the DATA/BDAT reader (src/smtpd/smtp_data.c): end of
 * data only at <CRLF>.<CRLF>, dot-unstuffing, the SMTP smuggling variants in
 * both line-ending modes, control characters in the header section, limits,
 * the memory budget, BDAT chunks, and that the way the input is split never
 * matters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtp_data.h"

/* What one DATA run produced. */
struct result {
    char *body; /* copy, NUL-terminated; NULL when nothing was stored */
    size_t body_len;
    size_t consumed;
    int done;
    enum smtp_data_error error;
    uint64_t size;
};

static void result_free(struct result *r)
{
    free(r->body);
    r->body = NULL;
}

static void collect(struct smtp_data *d, size_t consumed, struct result *r)
{
    r->consumed = consumed;
    r->done = d->done;
    r->error = d->error;
    r->size = d->size;
    r->body = NULL;
    r->body_len = d->len;
    if (!d->error) {
        r->body = malloc(d->len + 1);
        assert_non_null(r->body);
        if (d->len)
            memcpy(r->body, d->buf, d->len);
        r->body[d->len] = '\0';
    }
    smtp_data_free(d);
}

/* Feeds in in pieces of at most step octets (step 0: random sizes from seed),
 * stopping like the session does when the reader stops consuming. */
static void run_dot(const char *in, size_t len, uint64_t max, size_t step, unsigned seed,
                    struct result *r)
{
    struct smtp_data d;
    smtp_data_init(&d, max, 0);
    smtp_data_start_dot(&d);
    size_t off = 0;
    srand(seed);
    while (off < len && !d.done) {
        size_t n = step ? step : (size_t)(rand() % 17) + 1;
        if (n > len - off)
            n = len - off;
        size_t used = smtp_data_feed(&d, in + off, n);
        assert_true(used <= n);
        off += used;
        if (used < n)
            assert_true(d.done); /* the reader only stops short at the end */
    }
    collect(&d, off, r);
}

static void expect_dot(const char *in, const char *body, size_t consumed,
                       enum smtp_data_error error)
{
    size_t len = strlen(in);
    struct result whole;
    run_dot(in, len, 0, len ? len : 1, 0, &whole);
    if (whole.error != error || whole.consumed != consumed || !whole.done ||
        (body && (!whole.body || strcmp(whole.body, body) != 0))) {
        print_error("input \"%s\": error %d consumed %zu done %d body \"%s\"\n", in, whole.error,
                    whole.consumed, whole.done, whole.body ? whole.body : "(null)");
        fail();
    }
    if (error)
        assert_null(whole.body); /* storing stopped, memory given back */
    /* The same, byte by byte and in random pieces. */
    for (unsigned seed = 0; seed < 20; seed++) {
        struct result split;
        run_dot(in, len, 0, seed == 0 ? 1 : 0, seed, &split);
        assert_int_equal(split.error, whole.error);
        assert_int_equal(split.consumed, whole.consumed);
        assert_int_equal(split.done, whole.done);
        assert_int_equal(split.size, whole.size);
        if (whole.body)
            assert_string_equal(split.body, whole.body);
        else
            assert_null(split.body);
        result_free(&split);
    }
    result_free(&whole);
}

static void test_simple_message(void **state)
{
    (void)state;
    const char *msg = "Subject: hi\r\n\r\nbody\r\n.\r\n";
    expect_dot(msg, "Subject: hi\r\n\r\nbody\r\n", strlen(msg), SMTP_DATA_OK);
    /* Pipelined commands after the end are left for the session. */
    const char *pipe = "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n";
    expect_dot(pipe, "Subject: hi\r\n\r\nbody\r\n", strlen(pipe) - 6, SMTP_DATA_OK);
    /* The empty message. */
    expect_dot(".\r\nRSET\r\n", "", 3, SMTP_DATA_OK);
    expect_dot("\r\n.\r\n", "\r\n", 5, SMTP_DATA_OK);
    /* Not an end: ". " and ".x" are ordinary (stuffed) lines. */
    expect_dot(". \r\n.x\r\n.\r\n", " \r\nx\r\n", 11, SMTP_DATA_OK);
}

static void test_dot_unstuffing(void **state)
{
    (void)state;
    expect_dot("..\r\n.\r\n", ".\r\n", 7, SMTP_DATA_OK);
    expect_dot("...\r\n.\r\n", "..\r\n", 8, SMTP_DATA_OK);
    expect_dot("..foo\r\nbar.\r\n.bar\r\n.\r\n", ".foo\r\nbar.\r\nbar\r\n", 22, SMTP_DATA_OK);
    expect_dot("a\r\n..\r\n.\r\n", "a\r\n.\r\n", 10, SMTP_DATA_OK);
    expect_dot("a.\r\n.\r\n", "a.\r\n", 7, SMTP_DATA_OK);
}

/* Every smuggling trick fails the message, and the reader carries on to the
 * real <CRLF>.<CRLF>, so the smuggled "commands" are never seen as commands. */
static void test_smuggling(void **state)
{
    (void)state;
    static const char *const tricks[] = {
        "\n.\n",     /* <LF>.<LF> */
        "\r\n.\n",   /* <CR><LF>.<LF> */
        "\n.\r\n",   /* <LF>.<CR><LF> */
        "\r.\r",     /* <CR>.<CR> */
        "\r\n.\r",   /* <CR><LF>.<CR> */
        "\r.\r\n",   /* <CR>.<CR><LF> */
        "\n..\n",
        "\r\n.\r\r\n", /* ".<CR>" then a bare CR */
    };
    const char *smuggled = "MAIL FROM:<admin@bank.test>\r\nRCPT TO:<victim@acme.test>\r\nDATA\r\n"
                           "From: admin@bank.test\r\n\r\nsmuggled\r\n";
    for (size_t i = 0; i < sizeof tricks / sizeof tricks[0]; i++) {
        char in[512];
        int n = snprintf(in, sizeof in, "Subject: x\r\n\r\nhello%s%s.\r\nQUIT\r\n", tricks[i],
                         smuggled);
        assert_true(n > 0 && (size_t)n < sizeof in);
        /* Consumed: everything up to and including the real end, not QUIT. */
        expect_dot(in, NULL, (size_t)n - 6, SMTP_DATA_BARE_NEWLINE);
    }
    /* Bare CR or LF anywhere. */
    expect_dot("a\rb\r\n.\r\n", NULL, 8, SMTP_DATA_BARE_NEWLINE);
    expect_dot("a\nb\r\n.\r\n", NULL, 8, SMTP_DATA_BARE_NEWLINE);
    /* A bare CR just before a genuine <CRLF>.<CRLF>: that is the end. */
    expect_dot("a\r\r\n.\r\nQUIT\r\n", NULL, 7, SMTP_DATA_BARE_NEWLINE);
}

static void test_bare_lf_at_start(void **state)
{
    (void)state;
    /* "\n.\r\n" is a bare LF followed by the text ".": no end yet. */
    struct result r;
    run_dot("\n.\r\n", 4, 0, 4, 0, &r);
    assert_int_equal(r.done, 0);
    assert_int_equal(r.consumed, 4);
    assert_int_equal(r.error, SMTP_DATA_BARE_NEWLINE);
    result_free(&r);
    /* Neither LF-only endings: a client that never sends CRLF never ends. */
    run_dot("hello\n.\n", 8, 0, 8, 0, &r);
    assert_int_equal(r.done, 0);
    assert_int_equal(r.error, SMTP_DATA_BARE_NEWLINE);
    result_free(&r);
}

static void test_line_length(void **state)
{
    (void)state;
    char in[4096];
    char want[4096];
    /* 998 octets: fine. A dot-stuffed line is 999 on the wire, 998 unstuffed. */
    memset(in, 'x', 998);
    memcpy(in + 998, "\r\n.\r\n", 6);
    memcpy(want, in, 1000);
    want[1000] = '\0';
    expect_dot(in, want, 1003, SMTP_DATA_OK);
    in[0] = '.';
    memset(in + 1, 'y', 998);
    memcpy(in + 999, "\r\n.\r\n", 6);
    expect_dot(in, NULL, 1004, SMTP_DATA_OK);
    /* 999 octets: refused, read to the end. */
    memset(in, 'x', 999);
    memcpy(in + 999, "\r\nmore\r\n.\r\nNOOP\r\n", 18);
    expect_dot(in, NULL, 999 + 11, SMTP_DATA_LINE_TOO_LONG);
    /* A 10,000-octet line. */
    char *big = malloc(10020);
    assert_non_null(big);
    memset(big, 'z', 10000);
    memcpy(big + 10000, "\r\n.\r\n", 6);
    expect_dot(big, NULL, 10005, SMTP_DATA_LINE_TOO_LONG);
    free(big);
    /* The first error is the one reported. */
    memset(in, 'x', 1200);
    memcpy(in + 1200, "\n\r\n.\r\n", 7);
    expect_dot(in, NULL, 1206, SMTP_DATA_LINE_TOO_LONG);
}

static void test_size_limit(void **state)
{
    (void)state;
    /* "0123456789\r\n" is 12 octets; the limit counts the unstuffed body. */
    const char *in = "0123456789\r\n.\r\n";
    struct result r;
    run_dot(in, strlen(in), 12, 3, 0, &r);
    assert_int_equal(r.error, SMTP_DATA_OK);
    assert_string_equal(r.body, "0123456789\r\n");
    result_free(&r);
    run_dot(in, strlen(in), 11, 3, 0, &r);
    assert_int_equal(r.error, SMTP_DATA_TOO_BIG);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.consumed, strlen(in));
    assert_int_equal(r.size, 12); /* still counted */
    assert_null(r.body);
    result_free(&r);
    /* Dot-stuffing does not count against the limit. */
    run_dot("..23456789\r\n.\r\n", 15, 11, 15, 0, &r);
    assert_int_equal(r.error, SMTP_DATA_OK);
    result_free(&r);

    /* A big message over a small limit: memory stays bounded. */
    size_t n = 80 * 13108; /* 1 MiB of 80-octet lines */
    char *buf = malloc(n + 8);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'a';
    memcpy(buf + n, ".\r\n", 4);
    struct smtp_data d;
    smtp_data_init(&d, 64 * 1024, 0);
    smtp_data_start_dot(&d);
    size_t off = 0;
    while (off < n + 3) {
        size_t chunk = 4096 < n + 3 - off ? 4096 : n + 3 - off;
        off += smtp_data_feed(&d, buf + off, chunk);
        assert_true(d.cap <= 64 * 1024);
    }
    assert_int_equal(d.done, 1);
    assert_int_equal(d.error, SMTP_DATA_TOO_BIG);
    assert_string_equal(smtp_data_reply(&d), "552 5.3.4 Error: message file too big");
    assert_true(d.size == n);
    smtp_data_free(&d);
    free(buf);
}

static void test_replies(void **state)
{
    (void)state;
    struct smtp_data d;
    smtp_data_init(&d, 0, 0);
    assert_null(smtp_data_reply(&d));
    d.error = SMTP_DATA_BARE_NEWLINE;
    assert_string_equal(smtp_data_reply(&d), "550 5.6.11 bare LF/CR not allowed");
    d.error = SMTP_DATA_LINE_TOO_LONG;
    assert_memory_equal(smtp_data_reply(&d), "550 5.5.2 ", 10);
    d.error = SMTP_DATA_TOO_BIG;
    assert_memory_equal(smtp_data_reply(&d), "552 5.3.4 ", 10);
    d.error = SMTP_DATA_OK;
    smtp_data_free(&d);
}

/* Random valid messages: dot-stuffed on the wire, fed in random pieces, they
 * come back exactly as they were. */
static void test_random_round_trip(void **state)
{
    (void)state;
    srand(12345);
    for (int iter = 0; iter < 200; iter++) {
        size_t cap = 64 * 1024;
        char *orig = malloc(cap), *wire = malloc(2 * cap);
        assert_non_null(orig);
        assert_non_null(wire);
        size_t olen = 0, wlen = 0;
        int lines = rand() % 40;
        for (int l = 0; l < lines; l++) {
            int ll = rand() % 120;
            size_t start = olen;
            for (int i = 0; i < ll; i++) {
                int k = rand() % 10;
                orig[olen++] = k == 0 ? '.' : (char)(k == 1 ? 0xc3 : 'a' + rand() % 26);
            }
            orig[olen++] = '\r';
            orig[olen++] = '\n';
            if (orig[start] == '.')
                wire[wlen++] = '.';
            memcpy(wire + wlen, orig + start, olen - start);
            wlen += olen - start;
        }
        memcpy(wire + wlen, ".\r\nQUIT\r\n", 9);
        wlen += 9;
        struct smtp_data d;
        smtp_data_init(&d, 0, (uint64_t)(rand() % 3 ? olen : 0));
        smtp_data_start_dot(&d);
        size_t off = 0;
        while (!d.done) {
            size_t n = (size_t)(rand() % 300) + 1;
            if (n > wlen - off)
                n = wlen - off;
            off += smtp_data_feed(&d, wire + off, n);
        }
        assert_int_equal(d.error, SMTP_DATA_OK);
        assert_int_equal(off, wlen - 6);
        assert_int_equal(d.len, olen);
        if (olen)
            assert_memory_equal(d.buf, orig, olen);
        smtp_data_free(&d);
        free(orig);
        free(wire);
    }
}

/* ------------------------------------------------------------------ BDAT */

/* Feeds one chunk, checking that exactly its octets are consumed. */
static void chunk(struct smtp_data *d, const char *bytes, size_t n, int last, const char *extra)
{
    smtp_data_start_chunk(d, n, last);
    size_t extra_len = strlen(extra);
    char *in = malloc(n + extra_len + 1);
    assert_non_null(in);
    memcpy(in, bytes, n);
    memcpy(in + n, extra, extra_len + 1);
    /* In two pieces, the second running past the chunk. */
    size_t first = n / 2;
    size_t used = smtp_data_feed(d, in, first);
    assert_int_equal(used, first);
    if (n > first)
        assert_false(smtp_data_segment_done(d));
    used = smtp_data_feed(d, in + first, n - first + extra_len);
    assert_int_equal(used, n - first);
    assert_true(smtp_data_segment_done(d));
    assert_int_equal(smtp_data_feed(d, in + n, extra_len), 0);
    free(in);
}

static void test_bdat_chunks(void **state)
{
    (void)state;
    struct smtp_data d;
    smtp_data_init(&d, 0, 0);
    chunk(&d, "Subject: a\r\n\r\n", 14, 0, "BDAT 5 LAST\r\n");
    assert_int_equal(d.done, 0);
    /* No dot-stuffing: a line "." or ".." is the body's own. */
    chunk(&d, ".\r\n..x", 6, 0, "");
    chunk(&d, "\r\n", 2, 1, "QUIT\r\n");
    assert_int_equal(d.done, 1);
    assert_int_equal(d.error, SMTP_DATA_OK);
    assert_int_equal(d.len, 22);
    assert_memory_equal(d.buf, "Subject: a\r\n\r\n.\r\n..x\r\n", 22);
    smtp_data_free(&d);

    /* BDAT 0 LAST ends at once. */
    smtp_data_init(&d, 0, 0);
    chunk(&d, "abc\r\n", 5, 0, "");
    smtp_data_start_chunk(&d, 0, 1);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.len, 5);
    smtp_data_free(&d);

    /* CRLF split across chunks is fine; a missing final CRLF is added. */
    smtp_data_init(&d, 0, 0);
    chunk(&d, "abc\r", 4, 0, "");
    chunk(&d, "\ndef", 4, 1, "");
    assert_int_equal(d.error, SMTP_DATA_OK);
    assert_int_equal(d.len, 10);
    assert_memory_equal(d.buf, "abc\r\ndef\r\n", 10);
    smtp_data_free(&d);
}

static void test_bdat_errors(void **state)
{
    (void)state;
    struct smtp_data d;
    /* Bare LF, bare CR, a CR at the very end. */
    smtp_data_init(&d, 0, 0);
    chunk(&d, "a\nb\r\n", 5, 0, "");
    assert_int_equal(d.error, SMTP_DATA_BARE_NEWLINE);
    assert_null(d.buf);
    chunk(&d, "more\r\n", 6, 1, "");
    assert_int_equal(d.done, 1);
    assert_int_equal(d.error, SMTP_DATA_BARE_NEWLINE);
    smtp_data_free(&d);

    smtp_data_init(&d, 0, 0);
    chunk(&d, "a\rb\r\n", 5, 1, "");
    assert_int_equal(d.error, SMTP_DATA_BARE_NEWLINE);
    smtp_data_free(&d);

    smtp_data_init(&d, 0, 0);
    chunk(&d, "a\r\nb\r", 5, 1, "");
    assert_int_equal(d.error, SMTP_DATA_BARE_NEWLINE);
    smtp_data_free(&d);

    smtp_data_init(&d, 0, 0);
    chunk(&d, "a\r", 2, 0, "");
    chunk(&d, "b\r\n", 3, 1, "");
    assert_int_equal(d.error, SMTP_DATA_BARE_NEWLINE);
    smtp_data_free(&d);

    /* A long line across chunk boundaries. */
    char line[1000];
    memset(line, 'q', sizeof line);
    smtp_data_init(&d, 0, 0);
    chunk(&d, line, 500, 0, "");
    chunk(&d, line, 498, 0, "");
    assert_int_equal(d.error, SMTP_DATA_OK);
    chunk(&d, line, 1, 0, "");
    assert_int_equal(d.error, SMTP_DATA_LINE_TOO_LONG);
    chunk(&d, "\r\n", 2, 1, "");
    assert_int_equal(d.done, 1);
    smtp_data_free(&d);

    /* The size limit over several chunks; the chunks are still read whole. */
    smtp_data_init(&d, 10, 0);
    chunk(&d, "12345\r\n", 7, 0, "");
    assert_int_equal(d.error, SMTP_DATA_OK);
    chunk(&d, "6789\r\n", 6, 1, "NOOP\r\n");
    assert_int_equal(d.error, SMTP_DATA_TOO_BIG);
    assert_int_equal(d.done, 1);
    assert_true(d.size == 13);
    smtp_data_free(&d);
}

/* ------------------------------------------------------------------ fix mode, header, budget */

/* A budget like the server's, with a limit and a record of what happened. */
struct fake_budget {
    size_t used, limit;
    unsigned refusals;
};

static int fb_reserve(void *arg, size_t n)
{
    struct fake_budget *b = arg;
    if (n > b->limit - b->used) {
        b->refusals++;
        return -1;
    }
    b->used += n;
    return 0;
}

static void fb_release(void *arg, size_t n)
{
    struct fake_budget *b = arg;
    assert_true(n <= b->used);
    b->used -= n;
}

/* Every line of body ends in CRLF and there is no other CR or LF. */
static int crlf_clean(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '\r' && (i + 1 >= len || body[i + 1] != '\n'))
            return 0;
        if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r'))
            return 0;
    }
    return 1;
}

/* DATA with options, in pieces of step octets (0: random from seed). While
 * it reads, a budget (if any) has always granted at least the buffer. */
static void run_dot_opts(const char *in, size_t len, const struct smtp_data_opts *o, size_t step,
                         unsigned seed, struct result *r)
{
    struct smtp_data d;
    smtp_data_init_opts(&d, o);
    smtp_data_start_dot(&d);
    const struct fake_budget *fb = o->budget ? o->budget->arg : NULL;
    size_t off = 0;
    srand(seed);
    while (off < len && !d.done) {
        size_t n = step ? step : (size_t)(rand() % 17) + 1;
        if (n > len - off)
            n = len - off;
        size_t used = smtp_data_feed(&d, in + off, n);
        assert_true(used <= n);
        off += used;
        if (used < n)
            assert_true(d.done);
        if (fb)
            assert_true(d.cap <= fb->used && d.reserved == fb->used);
    }
    collect(&d, off, r);
    if (fb)
        assert_int_equal(fb->used, 0); /* smtp_data_free gave it all back */
}

/* Like expect_dot, with options and a body that may hold NULs (body_len). */
static void expect_opts(const char *in, size_t len, const struct smtp_data_opts *o, const char *body,
                        size_t body_len, size_t consumed, enum smtp_data_error error)
{
    struct result whole;
    run_dot_opts(in, len, o, len ? len : 1, 0, &whole);
    if (whole.error != error || whole.consumed != consumed || !whole.done ||
        (body && (whole.body_len != body_len || memcmp(whole.body, body, body_len) != 0))) {
        print_error("input \"%s\": error %d consumed %zu done %d body \"%s\"\n", in, whole.error, whole.consumed,
                    whole.done, whole.body ? whole.body : "(null)");
        fail();
    }
    if (error)
        assert_null(whole.body);
    else
        assert_true(crlf_clean(whole.body, whole.body_len));
    for (unsigned seed = 0; seed < 20; seed++) {
        struct result split;
        run_dot_opts(in, len, o, seed == 0 ? 1 : 0, seed, &split);
        assert_int_equal(split.error, whole.error);
        assert_int_equal(split.consumed, whole.consumed);
        assert_int_equal(split.size, whole.size);
        assert_int_equal(split.body_len, whole.body_len);
        if (whole.body)
            assert_memory_equal(split.body, whole.body, whole.body_len);
        else
            assert_null(split.body);
        result_free(&split);
    }
    result_free(&whole);
}

static const struct smtp_data_opts FIX = {.fix_bare = 1};
static const struct smtp_data_opts REJECT = {.fix_bare = 0};

#define EXPECT_FIX(in, body, consumed) \
    expect_opts(in, sizeof(in) - 1, &FIX, body, sizeof(body) - 1, consumed, SMTP_DATA_OK)

/* smtp_invalid_line_endings = fix: bare CR and LF are stored as CRLF, but they
 * never start an SMTP line: the end is still only <CRLF>.<CRLF>, and a "."
 * after a bare line end is text (neither an end nor a stuffing dot). */
static void test_fix_mode(void **state)
{
    (void)state;
    EXPECT_FIX("a\nb\r\n.\r\n", "a\r\nb\r\n", 8);
    EXPECT_FIX("a\rb\r\n.\r\n", "a\r\nb\r\n", 8);
    EXPECT_FIX("a\r\r\n.\r\nQUIT\r\n", "a\r\n\r\n", 7);
    EXPECT_FIX("a\n\n\r\n.\r\n", "a\r\n\r\n\r\n", 8);
    EXPECT_FIX("\n.\r\n.\r\n", "\r\n.\r\n", 7);
    EXPECT_FIX("x\n..\n.\r\n.\r\n", "x\r\n..\r\n.\r\n", 11);
    /* Ordinary messages are unchanged. */
    EXPECT_FIX("Subject: hi\r\n\r\n..dot\r\n.\r\n", "Subject: hi\r\n\r\n.dot\r\n", 25);

    /* Every smuggling variant: one message, read to the real end, holding
     * the would-be commands as text, CRLF only (expect_opts checks). */
#define TRICK(t, s) {t, sizeof(t) - 1, s, sizeof(s) - 1}
    static const struct {
        const char *trick;
        size_t tlen;
        const char *stored;
        size_t slen;
    } tricks[] = {
        TRICK("\n.\n", "\r\n.\r\n"),
        TRICK("\r\n.\n", "\r\n\r\n"), /* ".<LF>": a stuffing dot, then a bare LF */
        TRICK("\n.\r\n", "\r\n.\r\n"),
        TRICK("\r.\r", "\r\n.\r\n"),
        TRICK("\r\n.\r", "\r\n\r\n"), /* ".<CR>M": a stuffing dot, then a bare CR */
        TRICK("\r.\r\n", "\r\n.\r\n"),
        TRICK("\n..\n", "\r\n..\r\n"),
        TRICK("\r\n.\r\r\n", "\r\n\r\n\r\n"),
        TRICK("\r\n\0.\r\n", "\r\n\0.\r\n"), /* a NUL in the body is the body's own */
    };
#undef TRICK
    const size_t nul_trick = 8;
    const char *smuggled = "MAIL FROM:<admin@bank.test>\r\nRCPT TO:<victim@acme.test>\r\nDATA\r\n"
                           "From: admin@bank.test\r\n\r\nsmuggled\r\n";
    for (size_t i = 0; i < sizeof tricks / sizeof tricks[0]; i++) {
        size_t tlen = tricks[i].tlen, slen = tricks[i].slen;
        char in[512], want[512];
        size_t n = 0, w = 0;
        const char *head = "Subject: x\r\n\r\nhello";
        memcpy(in + n, head, strlen(head));
        n += strlen(head);
        memcpy(in + n, tricks[i].trick, tlen);
        n += tlen;
        memcpy(in + n, smuggled, strlen(smuggled));
        n += strlen(smuggled);
        memcpy(in + n, ".\r\nQUIT\r\n", 9);
        n += 9;
        memcpy(want + w, head, strlen(head));
        w += strlen(head);
        memcpy(want + w, tricks[i].stored, slen);
        w += slen;
        memcpy(want + w, smuggled, strlen(smuggled));
        w += strlen(smuggled);
        expect_opts(in, n, &FIX, want, w, n - 6, SMTP_DATA_OK);
        /* In reject mode the same is refused, except the NUL one, which has
         * no bare line end at all and is carried as it is. */
        if (i == nul_trick)
            expect_opts(in, n, &REJECT, want, w, n - 6, SMTP_DATA_OK);
        else
            expect_opts(in, n, &REJECT, NULL, 0, n - 6, SMTP_DATA_BARE_NEWLINE);
    }

    /* Fixed lines are lines: 998 octets each is fine, 999 is not. */
    char in[3000];
    memset(in, 'x', 998);
    in[998] = '\n';
    memset(in + 999, 'y', 998);
    memcpy(in + 1997, "\r\n.\r\n", 5);
    expect_opts(in, 2002, &FIX, NULL, 0, 2002, SMTP_DATA_OK);
    memset(in, 'x', 999);
    in[999] = '\r';
    memcpy(in + 1000, "z\r\n.\r\n", 6);
    expect_opts(in, 1006, &FIX, NULL, 0, 1006, SMTP_DATA_LINE_TOO_LONG);
}

static void test_fix_mode_bdat(void **state)
{
    (void)state;
    struct smtp_data d;
    smtp_data_init_opts(&d, &FIX);
    chunk(&d, "a\nb", 3, 0, "");
    chunk(&d, "\rc\r", 3, 1, "QUIT\r\n"); /* a CR at the very end too */
    assert_int_equal(d.error, SMTP_DATA_OK);
    assert_int_equal(d.len, 9);
    assert_memory_equal(d.buf, "a\r\nb\r\nc\r\n", 9);
    smtp_data_free(&d);

    /* A CR at the end of a chunk: the next chunk says what it was. */
    smtp_data_init_opts(&d, &FIX);
    chunk(&d, "abc\r", 4, 0, "");
    chunk(&d, "\ndef\r", 5, 0, "");
    chunk(&d, "x", 1, 1, "");
    assert_int_equal(d.error, SMTP_DATA_OK);
    assert_int_equal(d.len, 13);
    assert_memory_equal(d.buf, "abc\r\ndef\r\nx\r\n", 13);
    smtp_data_free(&d);

    /* No dot-stuffing in BDAT: "\n.\n" is a stored line ".". */
    smtp_data_init_opts(&d, &FIX);
    chunk(&d, "a\n.\nb\r\n", 7, 1, "");
    assert_int_equal(d.len, 9);
    assert_memory_equal(d.buf, "a\r\n.\r\nb\r\n", 9);
    smtp_data_free(&d);
}

/* No control character but TAB in the header section, in either mode; the
 * body may hold anything; the message is still read to its real end. */
static void test_header_control(void **state)
{
    (void)state;
    static const char nul_from[] = "From: bob@acme.test\0<alice@acme.test>\r\n\r\nbody\r\n.\r\nQUIT\r\n";
    expect_opts(nul_from, sizeof nul_from - 1, &REJECT, NULL, 0, sizeof nul_from - 7, SMTP_DATA_HEADER_CONTROL);
    expect_opts(nul_from, sizeof nul_from - 1, &FIX, NULL, 0, sizeof nul_from - 7, SMTP_DATA_HEADER_CONTROL);
    static const char *const bad[] = {"\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char in[128];
        int n = snprintf(in, sizeof in, "To: x@y.test\r\nSubject: a%sb\r\n\r\nbody\r\n.\r\n", bad[i]);
        expect_opts(in, (size_t)n, &REJECT, NULL, 0, (size_t)n, SMTP_DATA_HEADER_CONTROL);
        /* A folded line is in the header too. */
        n = snprintf(in, sizeof in, "Subject: a\r\n\tb%s\r\n\r\nbody\r\n.\r\n", bad[i]);
        expect_opts(in, (size_t)n, &REJECT, NULL, 0, (size_t)n, SMTP_DATA_HEADER_CONTROL);
        /* In the body: the body's own. */
        n = snprintf(in, sizeof in, "Subject: a\r\n\r\nb%so\r\n.\r\n", bad[i]);
        expect_opts(in, (size_t)n, &REJECT, in, (size_t)n - 3, (size_t)n, SMTP_DATA_OK);
    }
    static const char body_nul[] = "Subject: a\tb\r\n\tfolded\r\n\r\n\0x\x7f\x1b\r\n.\r\n";
    expect_opts(body_nul, sizeof body_nul - 1, &REJECT, body_nul, sizeof body_nul - 4, sizeof body_nul - 1,
                SMTP_DATA_OK);
    /* 8-bit text in a header is not a control character. */
    expect_dot("Subject: Gr\xc3\xbc\xc3\x9f\x65\r\n\r\nx\r\n.\r\n", "Subject: Gr\xc3\xbc\xc3\x9f\x65\r\n\r\nx\r\n", 26,
               SMTP_DATA_OK);
    /* Without an empty line the whole message is header. */
    static const char all_head[] = "Subject: a\r\nx\0y\r\n.\r\n";
    expect_opts(all_head, sizeof all_head - 1, &REJECT, NULL, 0, sizeof all_head - 1, SMTP_DATA_HEADER_CONTROL);
    /* In fix mode a bare empty line ends the header as a CRLF one would. */
    static const char fixed[] = "Subject: a\n\nb\0\r\n.\r\n";
    expect_opts(fixed, sizeof fixed - 1, &FIX, "Subject: a\r\n\r\nb\0\r\n", 18, sizeof fixed - 1, SMTP_DATA_OK);
    /* A dot-stuffed header line is checked as stored. */
    static const char stuffed[] = "..X-A: \x02\r\n\r\n.\r\n";
    expect_opts(stuffed, sizeof stuffed - 1, &REJECT, NULL, 0, sizeof stuffed - 1, SMTP_DATA_HEADER_CONTROL);

    /* The first octet that breaks a rule decides, however the input is split
     * (found by fuzz_smtp_data: a NUL early in an over-long header line). */
    char *longline = malloc(1100);
    assert_non_null(longline);
    memcpy(longline, "Subject: ", 9);
    memset(longline + 9, 'x', 1040);
    longline[500] = '\0';
    memcpy(longline + 1049, "\r\n\r\n.\r\n", 7);
    expect_opts(longline, 1056, &REJECT, NULL, 0, 1056, SMTP_DATA_HEADER_CONTROL);
    longline[500] = 'x';
    longline[1020] = '\0';
    expect_opts(longline, 1056, &REJECT, NULL, 0, 1056, SMTP_DATA_LINE_TOO_LONG);
    longline[1020] = 'x';
    longline[998] = '\x01'; /* the 999th octet is both: the length counts first */
    expect_opts(longline, 1056, &REJECT, NULL, 0, 1056, SMTP_DATA_LINE_TOO_LONG);
    longline[997] = '\x01';
    expect_opts(longline, 1056, &REJECT, NULL, 0, 1056, SMTP_DATA_HEADER_CONTROL);
    /* ...and against the size limit. */
    struct smtp_data_opts limited = {.max_size = 600};
    longline[997] = longline[998] = 'x';
    longline[700] = '\0';
    expect_opts(longline, 1056, &limited, NULL, 0, 1056, SMTP_DATA_TOO_BIG);
    longline[700] = 'x';
    longline[599] = '\0';
    expect_opts(longline, 1056, &limited, NULL, 0, 1056, SMTP_DATA_HEADER_CONTROL);
    free(longline);

    /* BDAT, across chunks. */
    struct smtp_data d;
    smtp_data_init(&d, 0, 0);
    chunk(&d, "Subject: a", 10, 0, "");
    chunk(&d, "\0\r\n\r\n", 5, 0, "");
    assert_int_equal(d.error, SMTP_DATA_HEADER_CONTROL);
    chunk(&d, "x\r\n", 3, 1, "");
    assert_int_equal(d.done, 1);
    assert_string_equal(smtp_data_reply(&d), "550 5.6.0 Error: control character in message header");
    smtp_data_free(&d);
    smtp_data_init(&d, 0, 0);
    chunk(&d, "Subject: a\r\n\r", 13, 0, "");
    chunk(&d, "\n\0\x01\r\n", 5, 1, "");
    assert_int_equal(d.error, SMTP_DATA_OK);
    assert_int_equal(d.len, 18);
    smtp_data_free(&d);
}

/* Every growth of the buffer is granted first; past the budget the message
 * fails with 452 4.3.1, is read to its end, and its octets go back at once. */
static void test_budget(void **state)
{
    (void)state;
    struct fake_budget fb = {.limit = 64 * 1024};
    const struct smtp_data_budget budget = {.reserve = fb_reserve, .release = fb_release, .arg = &fb};
    struct smtp_data_opts o = {.budget = &budget};

    /* 200 KB of 80-octet lines over a 64 KB budget. */
    size_t n = 80 * 2560;
    char *buf = malloc(n + 16);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'a';
    memcpy(buf + n, ".\r\nNOOP\r\n", 9);
    struct result r;
    run_dot_opts(buf, n + 9, &o, 4096, 0, &r); /* checks used >= cap throughout */
    assert_int_equal(r.error, SMTP_DATA_NO_STORAGE);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.consumed, n + 3);
    assert_true(r.size == n);
    assert_true(fb.refusals > 0);
    result_free(&r);
    assert_string_equal(smtp_data_reply(&(struct smtp_data){.error = SMTP_DATA_NO_STORAGE}),
                        "452 4.3.1 Error: insufficient system storage, try again later");

    /* 40 KB fits a 64 KB budget, and a 48 KB one (the last growths by an
     * eighth instead of doubling). */
    n = 80 * 512;
    memcpy(buf + n, ".\r\n", 3);
    fb = (struct fake_budget){.limit = 64 * 1024};
    run_dot_opts(buf, n + 3, &o, 4096, 0, &r);
    assert_int_equal(r.error, SMTP_DATA_OK);
    assert_int_equal(r.body_len, n);
    result_free(&r);
    fb = (struct fake_budget){.limit = 48 * 1024};
    run_dot_opts(buf, n + 3, &o, 4096, 0, &r);
    assert_int_equal(r.error, SMTP_DATA_OK);
    assert_int_equal(r.body_len, n);
    assert_true(fb.refusals > 0);
    result_free(&r);

    /* A SIZE= hint the budget will not grant is no error: the buffer grows
     * as the data comes. */
    fb = (struct fake_budget){.limit = 64 * 1024};
    o.size_hint = 1024 * 1024;
    struct smtp_data d;
    smtp_data_init_opts(&d, &o);
    assert_int_equal(fb.refusals, 1);
    assert_null(d.buf);
    assert_int_equal(fb.used, 0);
    smtp_data_free(&d);
    o.size_hint = 1000; /* granted */
    smtp_data_init_opts(&d, &o);
    assert_int_equal(fb.used, 1002);
    assert_int_equal(d.reserved, 1002);
    smtp_data_free(&d);
    assert_int_equal(fb.used, 0);
    o.size_hint = 0;

    /* BDAT: a chunk bigger than the budget. */
    smtp_data_init_opts(&d, &o);
    char *big = malloc(100 * 1024);
    assert_non_null(big);
    for (size_t i = 0; i < 100 * 1024; i++)
        big[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'b';
    chunk(&d, big, 100 * 1024, 0, "BDAT 0 LAST\r\n");
    assert_int_equal(d.error, SMTP_DATA_NO_STORAGE);
    assert_null(d.buf);
    assert_int_equal(fb.used, 0);
    smtp_data_start_chunk(&d, 0, 1);
    assert_int_equal(d.done, 1);
    smtp_data_free(&d);
    free(big);

    /* Detached (the server goes away first): given back once, not twice. */
    smtp_data_init_opts(&d, &o);
    smtp_data_start_dot(&d);
    assert_int_equal(smtp_data_feed(&d, buf, 4000), 4000);
    assert_true(fb.used >= 4000);
    smtp_data_detach_budget(&d);
    assert_int_equal(fb.used, 0);
    assert_int_equal(smtp_data_prepend(&d, "X: y\r\n", 6), 0);
    smtp_data_free(&d); /* fb_release would fail on a second release */
    assert_int_equal(fb.used, 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_message),
        cmocka_unit_test(test_dot_unstuffing),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_bare_lf_at_start),
        cmocka_unit_test(test_line_length),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_random_round_trip),
        cmocka_unit_test(test_bdat_chunks),
        cmocka_unit_test(test_bdat_errors),
        cmocka_unit_test(test_fix_mode),
        cmocka_unit_test(test_fix_mode_bdat),
        cmocka_unit_test(test_header_control),
        cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
