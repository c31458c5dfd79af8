/*
 * test_http_export.c — the archive's mbox export stream (http_export.c) on a
 * real store: it writes every entry of the search exactly once, newest first,
 * also when entries are purged before and after its place and new ones arrive
 * while it is being read (the page is found again by entry ID); it keeps to
 * the customer; and no more than HTTP_EXPORTS_PER_CUSTOMER of a customer and
 * HTTP_EXPORTS_MAX in all run at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http/http_internal.h"
#include "test_store_fixture.h"

#define MESSAGE "Subject: x\r\n\r\nFrom here\r\n"

struct fx {
    struct tmp_store s; /* first: tmp_store_teardown frees the fx */
    int64_t acme, beta;
    char blob[BLOB_ID_SIZE];
};

static int setup(void **state)
{
    struct fx *f = tmp_store_setup(sizeof *f, "lb_http_export");
    f->acme = tmp_customer_add(f->s.st, "acme");
    f->beta = tmp_customer_add(f->s.st, "beta");
    struct blobstore *bs = NULL;
    char err[256];
    assert_int_equal(blobstore_open(&f->s.t.cfg, &bs, err, sizeof err), 0);
    uint64_t stored = 0;
    assert_int_equal(store_begin(f->s.st), STORE_OK);
    assert_int_equal(blob_put(bs, f->s.st, MESSAGE, strlen(MESSAGE), f->blob, &stored), 0);
    assert_int_equal(store_blob_add(f->s.st, f->blob, strlen(MESSAGE), stored), STORE_OK);
    assert_int_equal(store_commit(f->s.st), STORE_OK);
    blobstore_close(bs);
    *state = f;
    return 0;
}

/* Entry number k: its envelope sender is nK@example.org (how the output names it). */
static void add(struct fx *f, int64_t customer, int k, int64_t received)
{
    struct store_archive_entry e = {.customer_id = customer, .direction = DIR_INBOUND, .received = received,
                                    .size = strlen(MESSAGE)};
    snprintf(e.msg_id, sizeof e.msg_id, "Q%08d", k);
    snprintf(e.blob, sizeof e.blob, "%s", f->blob);
    snprintf(e.prefix, sizeof e.prefix, "Received: by test\r\n");
    snprintf(e.sender, sizeof e.sender, "n%d@example.org", k);
    const char *rcpt = "bob@acme.test";
    assert_int_equal(store_archive_add(f->s.st, &e, &rcpt, 1, NULL), STORE_OK);
}

static struct http_export *open_export(struct fx *f, int64_t customer)
{
    struct store_archive_query q = {.customer_id = customer, .direction = -1, .has_attachment = -1};
    struct http_export *x = NULL;
    char err[256];
    assert_int_equal(http_export_open(&f->s.t.cfg, &q, "test", &x, err, sizeof err), 0);
    return x;
}

struct out {
    char *s;
    size_t len;
};

/* Reads up to n more bytes in small pieces; 1 at the end of the stream. */
static int pull(struct http_export *x, struct out *o, size_t n)
{
    char buf[700];
    while (n > 0) {
        ssize_t got = http_export_read(x, o->len, buf, sizeof buf < n ? sizeof buf : n);
        if (got == HTTP_STREAM_END)
            return 1;
        assert_true(got > 0);
        o->s = realloc(o->s, o->len + (size_t)got + 1);
        assert_non_null(o->s);
        memcpy(o->s + o->len, buf, (size_t)got);
        o->len += (size_t)got;
        o->s[o->len] = '\0';
        n -= (size_t)got;
    }
    return 0;
}

/* The entry numbers of the "From " lines, in order. */
static size_t numbers(const struct out *o, int *ks, size_t max)
{
    size_t n = 0;
    for (const char *p = o->s; p && (p = strstr(p, "From n")); p += 6) {
        if (p != o->s && p[-1] != '\n')
            continue;
        assert_true(n < max);
        ks[n++] = atoi(p + 6);
    }
    return n;
}

static void test_every_entry_once_while_the_archive_changes(void **state)
{
    struct fx *f = *state;
    int64_t now = 1800000000;
    assert_int_equal(store_begin(f->s.st), STORE_OK);
    for (int k = 1; k <= 250; k++) {
        /* 1..10 and 211..250 are old enough for the purge below */
        add(f, f->acme, k, k <= 10 || k > 210 ? 1000 : now);
        if (k % 10 == 0)
            add(f, f->beta, 1000 + k, now); /* another customer's, in between */
    }
    assert_int_equal(store_commit(f->s.st), STORE_OK);

    struct http_export *x = open_export(f, f->acme);
    struct out o = {0};
    int ks[400];
    while (numbers(&o, ks, 400) < 60)
        assert_int_equal(pull(x, &o, 500), 0);

    /* The 40 newest (written already: the page shifts back) and the 10 oldest
     * (not yet written) go; 30 new ones arrive in front (the page shifts on). */
    uint64_t purged = 0;
    assert_int_equal(store_archive_purge(f->s.st, 2000, 100, &purged), STORE_OK);
    assert_int_equal(purged, 50);
    for (int k = 301; k <= 330; k++)
        add(f, f->acme, k, now);

    while (!pull(x, &o, 100000))
        ;
    assert_int_equal(http_export_read(x, o.len, (char[8]){0}, 8), HTTP_STREAM_END);
    http_export_free(x);

    size_t n = numbers(&o, ks, 400);
    assert_int_equal(n, 240);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ks[i], 250 - (int)i); /* 250 down to 11, once each */
    /* Every record is mboxrd: body From_ lines quoted, LF only. */
    assert_null(strchr(o.s, '\r'));
    assert_non_null(strstr(o.s, " 1970\nReceived: by test\nSubject: x\n\n>From here\n\nFrom n"));
    free(o.s);
}

static int try_open(struct fx *f, int64_t customer, struct http_export **x)
{
    struct store_archive_query q = {.customer_id = customer, .direction = -1, .has_attachment = -1};
    char err[256];
    *x = NULL;
    return http_export_open(&f->s.t.cfg, &q, "test", x, err, sizeof err);
}

/* One customer's admins cannot take every slot (issue 10): a customer has
 * HTTP_EXPORTS_PER_CUSTOMER, others still get theirs, and HTTP_EXPORTS_MAX
 * bounds them all. */
static void test_empty_result_and_the_limits_on_running_exports(void **state)
{
    struct fx *f = *state;
    int64_t nobody = 0;
    assert_int_equal(store_customer_add(f->s.st, "empty", &nobody), STORE_OK);
    struct http_export *mine[HTTP_EXPORTS_PER_CUSTOMER], *more = NULL;
    for (size_t i = 0; i < HTTP_EXPORTS_PER_CUSTOMER; i++)
        mine[i] = open_export(f, nobody);
    assert_int_equal(try_open(f, nobody, &more), 1); /* this customer's share is taken */
    assert_null(more);
    struct http_export *other = open_export(f, f->beta); /* another customer's is not */
    char buf[64];
    assert_int_equal(http_export_read(mine[0], 0, buf, sizeof buf), HTTP_STREAM_END);
    http_export_free(mine[0]);
    mine[0] = open_export(f, nobody); /* one ended: room for another */

    /* Every slot: nobody's two, beta's one, and one each of customers that
     * have none running yet; then even a new customer waits. */
    struct http_export *rest[HTTP_EXPORTS_MAX];
    size_t nrest = 0;
    for (int64_t c = 1000; HTTP_EXPORTS_PER_CUSTOMER + 1 + nrest < HTTP_EXPORTS_MAX; c++)
        rest[nrest++] = open_export(f, c);
    assert_int_equal(try_open(f, 5000, &more), 1);
    assert_null(more);
    http_export_free(other);
    struct http_export *last = open_export(f, 5000);
    http_export_free(last);
    for (size_t i = 0; i < nrest; i++)
        http_export_free(rest[i]);
    for (size_t i = 0; i < HTTP_EXPORTS_PER_CUSTOMER; i++)
        http_export_free(mine[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_entry_once_while_the_archive_changes, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_empty_result_and_the_limits_on_running_exports, setup, tmp_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
