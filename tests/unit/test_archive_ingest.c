/*
 * test_archive_ingest.c — archive_ingest's rules: which customers keep a copy
 * of a message, with which direction and participants. Customers acme
 * (acme.test) and beta (beta.test) are subscribed since T0; gamma
 * (gamma.test) never subscribed; delta (delta.test) cancelled.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "archive/archive.h"
#include "test_store_fixture.h"

#define T0 1700000000

struct fx {
    struct tmp_store s; /* first: tmp_store_teardown frees the fx */
    int64_t acme, beta, gamma, delta;
    char blob[BLOB_ID_SIZE];
};

static int64_t customer(struct store *st, const char *name, const char *domain, int64_t sub_start,
                        int64_t cancelled)
{
    int64_t id = tmp_customer_add(st, name);
    struct store_customer c;
    assert_int_equal(store_customer_get_by_id(st, id, &c), STORE_OK);
    c.sub_start = sub_start;
    c.sub_end = sub_start ? sub_start + 365 * 86400 : 0;
    c.sub_cancelled = cancelled;
    assert_int_equal(store_customer_update(st, &c), STORE_OK);
    tmp_domain_add(st, id, domain);
    return id;
}

static int setup(void **state)
{
    struct fx *f = tmp_store_setup(sizeof *f, "lb_archive_ingest");
    f->acme = customer(f->s.st, "acme", "acme.test", T0, 0);
    f->beta = customer(f->s.st, "beta", "beta.test", T0, 0);
    f->gamma = customer(f->s.st, "gamma", "gamma.test", 0, 0);
    f->delta = customer(f->s.st, "delta", "delta.test", T0, T0 + 10);
    snprintf(f->blob, sizeof f->blob, "%064d", 1);
    assert_int_equal(store_blob_add(f->s.st, f->blob, 10, 10), STORE_OK);
    *state = f;
    return 0;
}

/* Ingests one message; returns the number of entries made. */
static unsigned ingest_for(struct fx *f, int direction, int64_t sender_customer, const char *sender,
                           const char *const *rcpts, size_t n, int64_t received)
{
    struct archive_message m = {
        .queue_id = "QID000000001",
        .blob = f->blob,
        .prefix = "Received: x\r\n",
        .sender = sender,
        .rcpts = rcpts,
        .nrcpt = n,
        .size = 10,
        .received = received,
        .direction = direction,
        .sender_customer_id = sender_customer,
    };
    unsigned entries = 99;
    assert_int_equal(store_begin(f->s.st), STORE_OK);
    assert_int_equal(archive_ingest(f->s.st, &m, &entries), STORE_OK);
    assert_int_equal(store_commit(f->s.st), STORE_OK);
    return entries;
}

static unsigned ingest(struct fx *f, int direction, const char *sender, const char *const *rcpts, size_t n,
                       int64_t received)
{
    return ingest_for(f, direction, 0, sender, rcpts, n, received);
}

struct found {
    struct store_archive_entry e[8];
    size_t n;
};

static int collect(const struct store_archive_entry *e, void *arg)
{
    struct found *f = arg;
    if (f->n < 8)
        f->e[f->n++] = *e;
    return 0;
}

/* The entries of one customer, newest first. */
static struct found entries_of(struct fx *f, int64_t customer_id)
{
    struct found out = {0};
    struct store_archive_query q = {.customer_id = customer_id, .direction = -1, .has_attachment = -1};
    assert_int_equal(store_archive_search(f->s.st, &q, collect, &out, NULL), STORE_OK);
    return out;
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

static struct addrs rcpts_of(struct fx *f, int64_t entry)
{
    struct addrs a = {0};
    assert_int_equal(store_archive_addrs(f->s.st, entry, ARCHIVE_ADDR_TO, collect_addr, &a), STORE_OK);
    return a;
}

static int64_t blob_refs(struct fx *f)
{
    return tmp_raw_count(&f->s.t, "SELECT refs FROM blobs");
}

static void test_inbound(void **state)
{
    struct fx *f = *state;
    const char *rcpts[] = {"bob@acme.test", "carol@acme.test", "x@example.net"};
    assert_int_equal(ingest(f, DIR_INBOUND, "alice@example.org", rcpts, 3, T0 + 100), 1);
    struct found e = entries_of(f, f->acme);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.e[0].direction, DIR_INBOUND);
    assert_string_equal(e.e[0].sender, "alice@example.org");
    assert_string_equal(e.e[0].msg_id, "QID000000001");
    assert_string_equal(e.e[0].prefix, "Received: x\r\n");
    assert_int_equal(e.e[0].received, T0 + 100);
    struct addrs a = rcpts_of(f, e.e[0].id);
    assert_int_equal(a.n, 2); /* only the customer's own recipients */
    assert_string_equal(a.v[0], "bob@acme.test");
    assert_string_equal(a.v[1], "carol@acme.test");
    assert_int_equal(blob_refs(f), 1);
}

static void test_subscription_rules(void **state)
{
    struct fx *f = *state;
    const char *acme[] = {"bob@acme.test"}, *gamma[] = {"g@gamma.test"}, *delta[] = {"d@delta.test"};
    /* before the subscription started: not archived */
    assert_int_equal(ingest(f, DIR_INBOUND, "a@example.org", acme, 1, T0 - 1), 0);
    /* never subscribed, cancelled: not archived */
    assert_int_equal(ingest(f, DIR_INBOUND, "a@example.org", gamma, 1, T0 + 1), 0);
    assert_int_equal(ingest(f, DIR_INBOUND, "a@example.org", delta, 1, T0 + 100), 0);
    /* the moment it starts: archived */
    assert_int_equal(ingest(f, DIR_INBOUND, "a@example.org", acme, 1, T0), 1);
    /* the subscription starts now: what came before stays out */
    struct store_customer c;
    assert_int_equal(store_customer_get_by_id(f->s.st, f->gamma, &c), STORE_OK);
    c.sub_start = T0 + 50;
    assert_int_equal(store_customer_update(f->s.st, &c), STORE_OK);
    assert_int_equal(ingest(f, DIR_INBOUND, "a@example.org", gamma, 1, T0 + 49), 0);
    assert_int_equal(ingest(f, DIR_INBOUND, "a@example.org", gamma, 1, T0 + 50), 1);
    assert_int_equal(blob_refs(f), 2);
    /* a bounce or mail for nobody we host: nothing */
    const char *outside[] = {"x@example.net", "y@example.com"};
    assert_int_equal(ingest(f, DIR_INBOUND, "", outside, 2, T0 + 100), 0);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM archive"), 2);
}

static void test_two_customers(void **state)
{
    struct fx *f = *state;
    /* one inbound message to two customers and one unsubscribed */
    const char *rcpts[] = {"bob@acme.test", "x@beta.test", "g@gamma.test", "y@beta.test", "carol@acme.test"};
    assert_int_equal(ingest(f, DIR_INBOUND, "alice@example.org", rcpts, 5, T0 + 100), 2);
    struct found a = entries_of(f, f->acme), b = entries_of(f, f->beta);
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 1);
    assert_int_equal(a.e[0].direction, DIR_INBOUND);
    assert_int_equal(b.e[0].direction, DIR_INBOUND);
    struct addrs ar = rcpts_of(f, a.e[0].id), br = rcpts_of(f, b.e[0].id);
    assert_int_equal(ar.n, 2);
    assert_string_equal(ar.v[0], "bob@acme.test");
    assert_string_equal(ar.v[1], "carol@acme.test");
    assert_int_equal(br.n, 2);
    assert_string_equal(br.v[0], "x@beta.test");
    assert_string_equal(br.v[1], "y@beta.test");
    assert_int_equal(blob_refs(f), 2); /* one reference per entry, one blob */
    assert_int_equal(entries_of(f, f->gamma).n, 0);
}

static void test_outbound(void **state)
{
    struct fx *f = *state;
    /* acme sends to the outside, to beta and to itself */
    const char *rcpts[] = {"x@example.net", "z@beta.test", "carol@acme.test"};
    assert_int_equal(ingest_for(f, DIR_OUTBOUND, f->acme, "bob@acme.test", rcpts, 3, T0 + 100), 2);
    struct found a = entries_of(f, f->acme), b = entries_of(f, f->beta);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.e[0].direction, DIR_OUTBOUND);
    struct addrs ar = rcpts_of(f, a.e[0].id);
    assert_int_equal(ar.n, 3); /* the sender's customer keeps every recipient */
    assert_string_equal(ar.v[0], "x@example.net");
    assert_string_equal(ar.v[2], "carol@acme.test");
    assert_int_equal(b.n, 1);
    assert_int_equal(b.e[0].direction, DIR_INBOUND);
    struct addrs br = rcpts_of(f, b.e[0].id);
    assert_int_equal(br.n, 1);
    assert_string_equal(br.v[0], "z@beta.test");

    /* within one customer: one outbound entry */
    const char *own[] = {"carol@acme.test"};
    assert_int_equal(ingest_for(f, DIR_OUTBOUND, f->acme, "bob@acme.test", own, 1, T0 + 200), 1);
    a = entries_of(f, f->acme);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.e[0].direction, DIR_OUTBOUND);

    /* an unsubscribed sender's customer keeps nothing; the recipient's does */
    const char *to_acme[] = {"bob@acme.test"};
    assert_int_equal(ingest_for(f, DIR_OUTBOUND, f->gamma, "g@gamma.test", to_acme, 1, T0 + 300), 1);
    a = entries_of(f, f->acme);
    assert_int_equal(a.e[0].direction, DIR_INBOUND);
    assert_int_equal(entries_of(f, f->gamma).n, 0);
    /* outbound mail of nobody (the system's, from <>): the recipients' customers only */
    assert_int_equal(ingest(f, DIR_OUTBOUND, "", to_acme, 1, T0 + 400), 1);
    /* a customer's server relays a bounce (<>): that customer's outbound mail */
    const char *ext[] = {"x@example.net"};
    assert_int_equal(ingest_for(f, DIR_OUTBOUND, f->beta, "", ext, 1, T0 + 500), 1);
    b = entries_of(f, f->beta);
    assert_int_equal(b.e[0].direction, DIR_OUTBOUND);
}

/* The sending customer is the one the queue names, never the one of the
 * sender address: acme's server writing beta's domain in MAIL FROM files the
 * message in acme's archive, not beta's (issue 10, finding 1). */
static void test_outbound_sender_address_not_trusted(void **state)
{
    struct fx *f = *state;
    const char *ext[] = {"x@example.net"};
    assert_int_equal(ingest_for(f, DIR_OUTBOUND, f->acme, "carol@beta.test", ext, 1, T0 + 100), 1);
    assert_int_equal(entries_of(f, f->beta).n, 0);
    struct found a = entries_of(f, f->acme);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.e[0].direction, DIR_OUTBOUND);
    /* no sending customer: an outbound sender address alone files it nowhere */
    assert_int_equal(ingest(f, DIR_OUTBOUND, "carol@beta.test", ext, 1, T0 + 200), 0);
    assert_int_equal(entries_of(f, f->beta).n, 0);
}

static void test_inbound_sender_not_trusted(void **state)
{
    struct fx *f = *state;
    /* inbound mail claiming an acme sender, addressed to beta: beta's only */
    const char *rcpts[] = {"x@beta.test"};
    assert_int_equal(ingest(f, DIR_INBOUND, "bob@acme.test", rcpts, 1, T0 + 100), 1);
    assert_int_equal(entries_of(f, f->acme).n, 0);
    assert_int_equal(entries_of(f, f->beta).n, 1);
    /* and a user of acme searching their own address sees nothing of it */
    const char *bob[] = {"bob@acme.test"};
    struct store_archive_query q = {.customer_id = f->acme, .user_addrs = bob, .nuser_addrs = 1, .direction = -1,
                                    .has_attachment = -1};
    uint64_t total = 9;
    assert_int_equal(store_archive_search(f->s.st, &q, NULL, NULL, &total), STORE_OK);
    assert_int_equal(total, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inbound, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_subscription_rules, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_two_customers, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_outbound, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_inbound_sender_not_trusted, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_outbound_sender_address_not_trusted, setup, tmp_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
