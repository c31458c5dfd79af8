/*
 * test_store_archive.c — store.h's archive on SQLite: entries and their
 * participants and blob references, the indexer's calls, search (every scope
 * and filter, paging, newest first, hostile text that must never act as FTS5
 * syntax), retention with legal holds, holds, and the audit trail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_fixture.h"

struct fx {
    struct tmp_store s; /* first: tmp_store_teardown frees the fx */
    int64_t acme, beta;       /* customers */
    int64_t acme_dom, beta_dom;
    int64_t bob;              /* bob@acme.test, alias sales@acme.test */
    unsigned blobs;
};

static int setup(void **state)
{
    struct fx *f = tmp_store_setup(sizeof *f, "lb_store_archive");
    struct store *st = f->s.st;
    f->acme = tmp_customer_add(st, "acme");
    f->beta = tmp_customer_add(st, "beta");
    f->acme_dom = tmp_domain_add(st, f->acme, "acme.test");
    f->beta_dom = tmp_domain_add(st, f->beta, "beta.test");
    f->bob = tmp_user_add(st, f->acme_dom, "bob@acme.test", ROLE_USER, 1);
    tmp_user_add(st, f->acme_dom, "carol@acme.test", ROLE_USER, 1);
    assert_int_equal(store_alias_add(st, f->bob, "sales@acme.test"), STORE_OK);
    *state = f;
    return 0;
}

/* A recorded blob of a made-up id, n-th of the test. */
static void new_blob(struct fx *f, char blob[BLOB_ID_SIZE])
{
    snprintf(blob, BLOB_ID_SIZE, "%064x", ++f->blobs);
    assert_int_equal(store_blob_add(f->s.st, blob, 100, 50), STORE_OK);
}

static int64_t blob_refs(struct fx *f, const char *blob)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT refs FROM blobs WHERE id = '%s'", blob);
    return tmp_raw_count(&f->s.t, sql);
}

/* Adds an entry of customer with a new blob; received = when. */
static int64_t add_entry(struct fx *f, int64_t customer, int direction, const char *sender,
                         const char *const *rcpts, size_t n, int64_t when)
{
    struct store_archive_entry e = {.customer_id = customer, .direction = direction, .received = when,
                                    .size = 100};
    snprintf(e.msg_id, sizeof e.msg_id, "MSG%09u", f->blobs + 1);
    new_blob(f, e.blob);
    snprintf(e.sender, sizeof e.sender, "%s", sender);
    snprintf(e.prefix, sizeof e.prefix, "Received: from x\r\n");
    int64_t id = 0;
    assert_int_equal(store_archive_add(f->s.st, &e, rcpts, n, &id), STORE_OK);
    assert_true(id > 0);
    return id;
}

static void index_entry(struct fx *f, int64_t id, int64_t date, const char *subject, const char *from,
                        const char *to, const char *body, const char *atts)
{
    struct store_archive_text t = {.id = id, .date = date, .subject = subject, .from_hdr = from, .to_hdr = to,
                                   .body = body, .attachments = atts, .has_attachment = atts && *atts};
    assert_int_equal(store_archive_index(f->s.st, &t), STORE_OK);
}

/* ---- collecting results ---------------------------------------------------- */

struct ids {
    int64_t v[64];
    size_t n;
};

static int collect_id(const struct store_archive_entry *e, void *arg)
{
    struct ids *ids = arg;
    if (ids->n < 64)
        ids->v[ids->n++] = e->id;
    return 0;
}

struct addrs {
    char v[8][ADDR_MAX + 1];
    size_t n;
};

static int collect_addr(const char *a, void *arg)
{
    struct addrs *l = arg;
    if (l->n < 8)
        snprintf(l->v[l->n++], sizeof l->v[0], "%s", a);
    return 0;
}

static struct store_archive_query query(void)
{
    return (struct store_archive_query){.direction = -1, .has_attachment = -1};
}

/* Runs q and checks the result is exactly the ids given (newest first). */
static void expect(struct fx *f, const struct store_archive_query *q, size_t n, ...)
{
    struct ids got = {0};
    uint64_t total = 12345;
    assert_int_equal(store_archive_search(f->s.st, q, collect_id, &got, &total), STORE_OK);
    va_list ap;
    va_start(ap, n);
    size_t want_n = n;
    int64_t want[64];
    for (size_t i = 0; i < n; i++)
        want[i] = va_arg(ap, int64_t);
    va_end(ap);
    if (got.n != want_n) {
        for (size_t i = 0; i < got.n; i++)
            print_message("got %lld\n", (long long)got.v[i]);
    }
    assert_int_equal(got.n, want_n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got.v[i], want[i]);
    if (!q->limit && !q->offset)
        assert_int_equal(total, want_n);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_add_get_addrs(void **state)
{
    struct fx *f = *state;
    const char *rcpts[] = {"bob@acme.test", "carol@acme.test", "bob@acme.test"};
    int64_t id = add_entry(f, f->acme, DIR_INBOUND, "alice@example.org", rcpts, 3, 1000);
    struct store_archive_entry e;
    assert_int_equal(store_archive_get(f->s.st, id, &e), STORE_OK);
    assert_int_equal(e.customer_id, f->acme);
    assert_int_equal(e.direction, DIR_INBOUND);
    assert_string_equal(e.sender, "alice@example.org");
    assert_string_equal(e.prefix, "Received: from x\r\n");
    assert_int_equal(e.received, 1000);
    assert_int_equal(e.date, 1000); /* until indexed: received */
    assert_int_equal(e.indexed, 0);
    assert_int_equal(blob_refs(f, e.blob), 1);

    struct addrs to = {0}, from = {0};
    assert_int_equal(store_archive_addrs(f->s.st, id, ARCHIVE_ADDR_TO, collect_addr, &to), STORE_OK);
    assert_int_equal(to.n, 2); /* the duplicate is one participant */
    assert_string_equal(to.v[0], "bob@acme.test");
    assert_string_equal(to.v[1], "carol@acme.test");
    assert_int_equal(store_archive_addrs(f->s.st, id, ARCHIVE_ADDR_FROM, collect_addr, &from), STORE_OK);
    assert_int_equal(from.n, 1);
    assert_string_equal(from.v[0], "alice@example.org");

    /* the null sender is no participant */
    int64_t id2 = add_entry(f, f->acme, DIR_INBOUND, "", rcpts, 1, 1001);
    from.n = 0;
    assert_int_equal(store_archive_addrs(f->s.st, id2, ARCHIVE_ADDR_FROM, collect_addr, &from), STORE_OK);
    assert_int_equal(from.n, 0);
    assert_true(id2 > id);

    assert_int_equal(store_archive_get(f->s.st, 999999, &e), STORE_NOTFOUND);

    /* a blob nobody recorded: refused, nothing left behind */
    struct store_archive_entry bad = {.customer_id = f->acme, .received = 1};
    snprintf(bad.msg_id, sizeof bad.msg_id, "NOBLOB");
    snprintf(bad.blob, sizeof bad.blob, "%064d", 7);
    assert_int_equal(store_archive_add(f->s.st, &bad, rcpts, 1, NULL), STORE_NOTFOUND);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM archive"), 2);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM archive_addrs"), 4);
}

static void test_index(void **state)
{
    struct fx *f = *state;
    const char *rcpts[] = {"bob@acme.test"};
    int64_t a = add_entry(f, f->acme, DIR_INBOUND, "alice@example.org", rcpts, 1, 1000);
    int64_t b = add_entry(f, f->acme, DIR_INBOUND, "alice@example.org", rcpts, 1, 1001);
    struct ids un = {0};
    assert_int_equal(store_archive_unindexed(f->s.st, 10, collect_id, &un), STORE_OK);
    assert_int_equal(un.n, 2);
    assert_int_equal(un.v[0], a); /* oldest first */

    /* a subject longer than the field: cut at a character boundary */
    char subject[600];
    memset(subject, 'x', 510);
    strcpy(subject + 510, "éé tail");
    index_entry(f, a, 777, subject, "Alice <alice@example.org>", "Bob <bob@acme.test>", "hello", "");
    struct store_archive_entry e;
    assert_int_equal(store_archive_get(f->s.st, a, &e), STORE_OK);
    assert_int_equal(e.indexed, 1);
    assert_int_equal(e.date, 777);
    assert_int_equal(strlen(e.subject), 510);
    assert_string_equal(e.from_hdr, "Alice <alice@example.org>");
    assert_int_equal(e.has_attachment, 0);
    /* indexing again changes nothing (no second full-text row) */
    index_entry(f, a, 5, "other", "", "", "other", "");
    assert_int_equal(store_archive_get(f->s.st, a, &e), STORE_OK);
    assert_int_equal(e.date, 777);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM archive_fts"), 1);
    /* an entry that is gone */
    struct store_archive_text gone = {.id = 424242, .subject = "x"};
    assert_int_equal(store_archive_index(f->s.st, &gone), STORE_NOTFOUND);

    un.n = 0;
    assert_int_equal(store_archive_unindexed(f->s.st, 10, collect_id, &un), STORE_OK);
    assert_int_equal(un.n, 1);
    assert_int_equal(un.v[0], b);
}

/* Fixture of the search tests:
 *  e1 acme inbound  alice@example.org -> bob          date 100 "Quarterly report" (attachment report.pdf)
 *  e2 acme outbound bob -> dan@example.net            date 200 "Lunch" body "café tomorrow"
 *  e3 acme inbound  eve@example.com -> carol          date 300 "Invoice" body "NEAR(x) \" OR * subject:secret"
 *  e4 beta inbound  alice@example.org -> x@beta.test  date 400 "Quarterly report"
 *  e5 acme inbound  mallory@example.com -> sales@     date 500 not indexed yet (date = received 500)
 */
struct world {
    int64_t e1, e2, e3, e4, e5;
};

static struct world make_world(struct fx *f)
{
    struct world w;
    const char *bob[] = {"bob@acme.test"}, *dan[] = {"dan@example.net"}, *carol[] = {"carol@acme.test"},
               *x[] = {"x@beta.test"}, *sales[] = {"sales@acme.test"};
    w.e1 = add_entry(f, f->acme, DIR_INBOUND, "alice@example.org", bob, 1, 100);
    index_entry(f, w.e1, 100, "Quarterly report", "Alice Smith <alice@example.org>", "Bob <bob@acme.test>",
                "Numbers attached.", "report.pdf");
    w.e2 = add_entry(f, f->acme, DIR_OUTBOUND, "bob@acme.test", dan, 1, 200);
    index_entry(f, w.e2, 200, "Lunch", "Bob <bob@acme.test>", "dan@example.net", "Café tomorrow?", "");
    w.e3 = add_entry(f, f->acme, DIR_INBOUND, "eve@example.com", carol, 1, 300);
    index_entry(f, w.e3, 300, "Invoice", "Eve <eve@example.com>", "Carol <carol@acme.test>, Secret Agent <agent@x.org>",
                "NEAR(x) \" OR * subject:secret", "");
    w.e4 = add_entry(f, f->beta, DIR_INBOUND, "alice@example.org", x, 1, 400);
    index_entry(f, w.e4, 400, "Quarterly report", "Alice <alice@example.org>", "x@beta.test", "Numbers.", "");
    w.e5 = add_entry(f, f->acme, DIR_INBOUND, "mallory@example.com", sales, 1, 500);
    return w;
}

static void test_search_scopes(void **state)
{
    struct fx *f = *state;
    struct world w = make_world(f);
    struct store_archive_query q = query();
    expect(f, &q, 5, w.e5, w.e4, w.e3, w.e2, w.e1); /* operator: all, newest first */
    q.customer_id = f->acme;
    expect(f, &q, 4, w.e5, w.e3, w.e2, w.e1);
    q.customer_id = f->beta;
    expect(f, &q, 1, w.e4);

    /* bob (address and alias) within acme */
    const char *bob[] = {"bob@acme.test", "SALES@acme.test"};
    q.customer_id = f->acme;
    q.user_addrs = bob;
    q.nuser_addrs = 2;
    expect(f, &q, 3, w.e5, w.e2, w.e1);
    /* alice is a participant of both customers' copies: the customer bounds it */
    const char *alice[] = {"alice@example.org"};
    q.user_addrs = alice;
    q.nuser_addrs = 1;
    expect(f, &q, 1, w.e1);
    q.customer_id = 0;
    expect(f, &q, 2, w.e4, w.e1);
    /* a user without addresses sees nothing */
    q.customer_id = f->acme;
    q.nuser_addrs = 0;
    expect(f, &q, 0);
}

static void test_search_filters(void **state)
{
    struct fx *f = *state;
    struct world w = make_world(f);
    struct store_archive_query q = query();
    q.customer_id = f->acme;

    q.text = "quarterly";
    expect(f, &q, 1, w.e1);
    q.text = "  REPORT   quarterly ";
    expect(f, &q, 1, w.e1);
    q.text = "quarterly lunch"; /* words are ANDed */
    expect(f, &q, 0);
    q.text = "cafe"; /* diacritics removed */
    expect(f, &q, 1, w.e2);
    q.text = "report.pdf"; /* attachment names */
    expect(f, &q, 1, w.e1);
    q.text = "smith"; /* From: */
    expect(f, &q, 1, w.e1);
    q.text = "agent"; /* To:/Cc: */
    expect(f, &q, 1, w.e3);

    q.text = NULL;
    q.from = "alice@example.org"; /* envelope participant */
    expect(f, &q, 1, w.e1);
    q.from = "Smith"; /* in the From: header */
    expect(f, &q, 1, w.e1);
    q.from = "Smi"; /* words, not parts of them */
    expect(f, &q, 0);
    q.from = "alice@example.org"; /* the envelope and the header: once */
    q.customer_id = 0;
    expect(f, &q, 2, w.e4, w.e1);
    q.customer_id = f->acme;
    q.from = "mallory@example.com"; /* not indexed yet: found by its envelope */
    expect(f, &q, 1, w.e5);
    q.from = "%"; /* no syntax of any kind */
    expect(f, &q, 0);
    q.from = "_";
    expect(f, &q, 0);
    q.from = NULL;
    q.to = "carol@acme.test";
    expect(f, &q, 1, w.e3);
    q.to = "agent@x.org"; /* only in the header */
    expect(f, &q, 1, w.e3);
    q.to = "sales@acme.test";
    expect(f, &q, 1, w.e5);
    q.to = NULL;

    q.domain = "example.net"; /* a participant in the domain */
    expect(f, &q, 1, w.e2);
    q.domain = "EXAMPLE.org";
    expect(f, &q, 1, w.e1);
    q.domain = "ample.org"; /* whole domains only */
    expect(f, &q, 0);
    q.domain = "%";
    expect(f, &q, 0);
    q.domain = NULL;

    q.after = 200;
    expect(f, &q, 3, w.e5, w.e3, w.e2);
    q.before = 300;
    expect(f, &q, 1, w.e2);
    q.after = 0;
    expect(f, &q, 2, w.e2, w.e1);
    q.before = 0;

    q.direction = DIR_OUTBOUND;
    expect(f, &q, 1, w.e2);
    q.direction = DIR_INBOUND;
    expect(f, &q, 3, w.e5, w.e3, w.e1);
    q.direction = -1;
    q.has_attachment = 1;
    expect(f, &q, 1, w.e1);
    q.has_attachment = 0;
    expect(f, &q, 3, w.e5, w.e3, w.e2);
    q.has_attachment = -1;

    /* keyset paging: only the entries older than the last one seen */
    q.before_id = w.e3;
    expect(f, &q, 2, w.e2, w.e1);
    q.before_id = w.e1;
    expect(f, &q, 0);
    q.before_id = 0;

    /* paging: total counts every match */
    struct ids got = {0};
    uint64_t total = 0;
    q.offset = 1;
    q.limit = 2;
    assert_int_equal(store_archive_search(f->s.st, &q, collect_id, &got, &total), STORE_OK);
    assert_int_equal(total, 4);
    assert_int_equal(got.n, 2);
    assert_int_equal(got.v[0], w.e3);
    assert_int_equal(got.v[1], w.e2);
    /* the count alone */
    total = 0;
    assert_int_equal(store_archive_search(f->s.st, &q, NULL, NULL, &total), STORE_OK);
    assert_int_equal(total, 4);
}

static void test_search_hostile_text(void **state)
{
    struct fx *f = *state;
    struct world w = make_world(f);
    struct store_archive_query q = query();
    /* FTS5 syntax in the user's words is only ever text */
    static const char *const nothing[] = {
        "\" OR *", "*", "\"", "\"\"", "OR", "AND", "NOT quarterly", "quarterly OR lunch", "subject:secret",
        "{subject}: invoice", "^invoice", "NEAR(invoice lunch)", "lunc*", "(", ")", "\\", "'", "x\"y",
        "\x01\x02", "\xff\xfe",
    };
    for (size_t i = 0; i < sizeof nothing / sizeof nothing[0]; i++) {
        q.text = nothing[i];
        struct ids got = {0};
        uint64_t total = 0;
        assert_int_equal(store_archive_search(f->s.st, &q, collect_id, &got, &total), STORE_OK);
        /* every word has to be in the text: "or", "near", "subject secret" are only in e3 */
        for (size_t k = 0; k < got.n; k++)
            assert_int_equal(got.v[k], w.e3);
    }
    /* and where the words are text of a message, they find it */
    static const char *const e3[] = {"NEAR(", "near(x)", "\" OR *", "OR", "subject:secret", "invoice\""};
    for (size_t i = 0; i < sizeof e3 / sizeof e3[0]; i++) {
        q.text = e3[i];
        expect(f, &q, 1, w.e3);
    }
    /* operators are words: NOT does not negate, a trailing * is no prefix query */
    static const char *const quarterly[] = {"-quarterly", "quarterly*", "quarterly \"", "+quarterly"};
    for (size_t i = 0; i < sizeof quarterly / sizeof quarterly[0]; i++) {
        q.text = quarterly[i];
        expect(f, &q, 2, w.e4, w.e1);
    }
    q.text = "subject:invoice"; /* not a column filter: the phrase "subject invoice" is nowhere */
    expect(f, &q, 0);
    q.text = "quarterly OR lunch"; /* OR is a word to find, not an operator */
    expect(f, &q, 0);
}

static void test_purge_and_holds(void **state)
{
    struct fx *f = *state;
    const char *bob[] = {"bob@acme.test"}, *sales[] = {"sales@acme.test"}, *carol[] = {"carol@acme.test"},
               *x[] = {"x@beta.test"};
    int64_t old_bob = add_entry(f, f->acme, DIR_INBOUND, "a@example.org", bob, 1, 100);
    int64_t old_alias = add_entry(f, f->acme, DIR_INBOUND, "a@example.org", sales, 1, 101);
    int64_t old_carol = add_entry(f, f->acme, DIR_INBOUND, "a@example.org", carol, 1, 102);
    int64_t old_beta = add_entry(f, f->beta, DIR_INBOUND, "a@example.org", x, 1, 103);
    int64_t young = add_entry(f, f->acme, DIR_INBOUND, "a@example.org", carol, 1, 5000);
    index_entry(f, old_carol, 100, "s", "", "", "body", "");
    index_entry(f, young, 100, "s", "", "", "body", "");
    struct store_archive_entry e;
    assert_int_equal(store_archive_get(f->s.st, old_carol, &e), STORE_OK);
    char carol_blob[BLOB_ID_SIZE];
    memcpy(carol_blob, e.blob, sizeof carol_blob);

    /* holds: bob (user: address and alias) and the whole of beta */
    struct store_archive_hold h = {.customer_id = f->acme, .user_id = f->bob, .created = 1};
    snprintf(h.created_by, sizeof h.created_by, "test");
    int64_t hid = 0;
    assert_int_equal(store_archive_hold_add(f->s.st, &h, &hid), STORE_OK);
    assert_true(hid > 0);
    assert_int_equal(store_archive_hold_add(f->s.st, &h, NULL), STORE_EXISTS);
    struct store_archive_hold hb = {.customer_id = f->beta, .created = 2};
    assert_int_equal(store_archive_hold_add(f->s.st, &hb, NULL), STORE_OK);
    /* a user of another customer, an unknown user or customer */
    struct store_archive_hold bad = {.customer_id = f->beta, .user_id = f->bob};
    assert_int_equal(store_archive_hold_add(f->s.st, &bad, NULL), STORE_NOTFOUND);
    bad.customer_id = f->acme;
    bad.user_id = 99999;
    assert_int_equal(store_archive_hold_add(f->s.st, &bad, NULL), STORE_NOTFOUND);
    bad.customer_id = 99999;
    bad.user_id = 0;
    assert_int_equal(store_archive_hold_add(f->s.st, &bad, NULL), STORE_NOTFOUND);

    uint64_t purged = 99;
    assert_int_equal(store_archive_purge(f->s.st, 1000, 100, &purged), STORE_OK);
    assert_int_equal(purged, 1); /* only carol's old entry */
    assert_int_equal(store_archive_get(f->s.st, old_carol, &e), STORE_NOTFOUND);
    assert_int_equal(blob_refs(f, carol_blob), 0); /* for the GC to collect */
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM archive_fts"), 1);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM archive_addrs WHERE addr = 'carol@acme.test'"), 1);
    assert_int_equal(store_archive_get(f->s.st, young, &e), STORE_OK);

    /* the user's hold survives the user's deletion (by the address it keeps) */
    assert_int_equal(store_user_del(f->s.st, f->bob), STORE_OK);
    assert_int_equal(store_archive_purge(f->s.st, 1000, 100, &purged), STORE_OK);
    assert_int_equal(purged, 1); /* the alias went with the user: that entry is free now */
    assert_int_equal(store_archive_get(f->s.st, old_alias, &e), STORE_NOTFOUND);
    assert_int_equal(store_archive_get(f->s.st, old_bob, &e), STORE_OK);

    /* releasing the holds frees the rest, in batches of the limit */
    assert_int_equal(store_archive_hold_del(f->s.st, f->acme, f->bob, 0), STORE_OK);
    assert_int_equal(store_archive_hold_del(f->s.st, f->acme, f->bob, 0), STORE_NOTFOUND);
    assert_int_equal(store_archive_hold_del(f->s.st, f->beta, 0, 1), STORE_OK);
    /* an operator's hold: not a customer admin's to lift (issue 10, finding 7) */
    struct store_archive_hold op = {.customer_id = f->beta, .created = 1700000000, .by_operator = 1};
    assert_int_equal(store_archive_hold_add(f->s.st, &op, NULL), STORE_OK);
    assert_int_equal(store_archive_hold_del(f->s.st, f->beta, 0, 0), STORE_EXISTS);
    assert_int_equal(store_archive_hold_del(f->s.st, f->beta, 0, 1), STORE_OK);
    assert_int_equal(store_archive_purge(f->s.st, 1000, 1, &purged), STORE_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(store_archive_purge(f->s.st, 1000, 1, &purged), STORE_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(store_archive_purge(f->s.st, 1000, 1, &purged), STORE_OK);
    assert_int_equal(purged, 0);
    assert_int_equal(store_archive_get(f->s.st, old_beta, &e), STORE_NOTFOUND);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM archive"), 1);
    assert_int_equal(store_archive_get(f->s.st, young, &e), STORE_OK);
}

struct hold_rows {
    struct store_archive_hold v[4];
    size_t n;
};

static int collect_hold(const struct store_archive_hold *h, void *arg)
{
    struct hold_rows *r = arg;
    if (r->n < 4)
        r->v[r->n++] = *h;
    return 0;
}

static void test_hold_list(void **state)
{
    struct fx *f = *state;
    struct store_archive_hold h = {.customer_id = f->acme, .user_id = f->bob, .created = 7};
    snprintf(h.created_by, sizeof h.created_by, "lifeboatctl (uid 0)");
    assert_int_equal(store_archive_hold_add(f->s.st, &h, NULL), STORE_OK);
    struct store_archive_hold hb = {.customer_id = f->beta, .created = 8};
    assert_int_equal(store_archive_hold_add(f->s.st, &hb, NULL), STORE_OK);
    struct hold_rows r = {0};
    assert_int_equal(store_archive_hold_list(f->s.st, 0, collect_hold, &r), STORE_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[0].customer_id, f->acme);
    assert_int_equal(r.v[0].user_id, f->bob);
    assert_string_equal(r.v[0].email, "bob@acme.test");
    assert_string_equal(r.v[0].created_by, "lifeboatctl (uid 0)");
    assert_int_equal(r.v[0].created, 7);
    assert_string_equal(r.v[1].email, "");
    r.n = 0;
    assert_int_equal(store_archive_hold_list(f->s.st, f->beta, collect_hold, &r), STORE_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.v[0].user_id, 0);
}

struct audit_rows {
    struct store_audit v[8];
    size_t n;
};

static int collect_audit(const struct store_audit *a, void *arg)
{
    struct audit_rows *r = arg;
    if (r->n < 8)
        r->v[r->n++] = *a;
    return 0;
}

static void test_audit(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 5; i++) {
        struct store_audit a = {.at = 100 + i, .customer_id = i % 2 ? f->beta : f->acme};
        snprintf(a.actor, sizeof a.actor, "admin%d@acme.test", i);
        snprintf(a.action, sizeof a.action, "archive.view");
        snprintf(a.target, sizeof a.target, "archive:%d", i);
        snprintf(a.detail, sizeof a.detail, "detail %d", i);
        assert_int_equal(store_audit_add(f->s.st, &a), STORE_OK);
    }
    struct audit_rows r = {0};
    assert_int_equal(store_audit_list(f->s.st, 0, 0, collect_audit, &r), STORE_OK);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.v[0].at, 104); /* newest first */
    assert_string_equal(r.v[0].actor, "admin4@acme.test");
    assert_string_equal(r.v[0].target, "archive:4");
    assert_string_equal(r.v[0].detail, "detail 4");
    r.n = 0;
    assert_int_equal(store_audit_list(f->s.st, f->beta, 0, collect_audit, &r), STORE_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[0].at, 103);
    assert_int_equal(r.v[1].at, 101);
    r.n = 0;
    assert_int_equal(store_audit_list(f->s.st, f->acme, 2, collect_audit, &r), STORE_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.v[0].at, 104);
    assert_int_equal(r.v[1].at, 102);
}

/* The count stops past ARCHIVE_COUNT_MAX: "more than that" rather than a
 * scan of every match; the page itself is unaffected. */
static void test_search_count_cap(void **state)
{
    struct fx *f = *state;
    const char *rcpt[] = {"bob@acme.test"};
    assert_int_equal(store_begin(f->s.st), STORE_OK);
    int64_t last = 0;
    for (int i = 0; i < ARCHIVE_COUNT_MAX + 5; i++)
        last = add_entry(f, f->acme, DIR_INBOUND, "a@example.org", rcpt, 1, 1000 + i);
    assert_int_equal(store_commit(f->s.st), STORE_OK);
    struct store_archive_query q = query();
    q.customer_id = f->acme;
    q.limit = 3;
    struct ids got = {0};
    uint64_t total = 0;
    assert_int_equal(store_archive_search(f->s.st, &q, collect_id, &got, &total), STORE_OK);
    assert_int_equal(total, ARCHIVE_COUNT_MAX + 1);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.v[0], last);
    q.limit = 0;
    q.before_id = last - 8; /* ARCHIVE_COUNT_MAX - 4 entries left: exact again */
    total = 0;
    assert_int_equal(store_archive_search(f->s.st, &q, NULL, NULL, &total), STORE_OK);
    assert_int_equal(total, ARCHIVE_COUNT_MAX - 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_get_addrs, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_index, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_search_scopes, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_search_filters, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_search_hostile_text, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_purge_and_holds, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_hold_list, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_search_count_cap, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, tmp_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
