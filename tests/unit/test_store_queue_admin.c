/*
 * test_store_queue_admin.c — store.h's queue as a customer's administrator
 * manages it: a message's share (the customer's recipient domains, or every
 * recipient of the mail it sent), the scoped listing and recipients, hold and
 * release (the runner's store_rcpt_due and store_rcpt_next_due pass a held
 * recipient over, a flush leaves it), flush of all or one domain, and delete
 * of the share only when the message is also another customer's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store/store.h"
#include "test_store_fixture.h"
#include "util/timeutil.h"

#define BLOB_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

struct fixture {
    struct tmp_store s;
    int64_t acme, beta; /* customers: acme.test and other.test are acme's, beta.test beta's */
};

static int setup(void **state)
{
    struct fixture *f = tmp_store_setup(sizeof *f, "test_store_queue_admin");
    f->acme = tmp_customer_add(f->s.st, "acme");
    f->beta = tmp_customer_add(f->s.st, "beta");
    tmp_domain_add(f->s.st, f->acme, "acme.test");
    tmp_domain_add(f->s.st, f->acme, "other.test");
    tmp_domain_add(f->s.st, f->beta, "beta.test");
    *state = f;
    return 0;
}

/* Queues a message due at `received` (far in the past: due now). */
static void queue_msg(struct fixture *f, const char *id, int64_t sender_customer, const char *const *rcpts, size_t n)
{
    assert_int_equal(store_blob_add(f->s.st, BLOB_A, 500, 300), STORE_OK);
    struct store_msg_new m = {
        .size = 500, .sender = "alice@example.org", .prefix = "", .received = 1000,
        .client_addr = "192.0.2.1", .helo = "client.example.org",
        .direction = sender_customer ? DIR_OUTBOUND : DIR_INBOUND, .sender_customer_id = sender_customer,
        .nrcpt = n, .rcpts = rcpts,
    };
    snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.blob, sizeof m.blob, "%s", BLOB_A);
    assert_int_equal(store_message_insert(f->s.st, &m), STORE_OK);
}

/* Message IDs (concatenated, in order) a listing gives. */
struct ids {
    char s[256];
};

static int add_msg_id(const struct store_msg *m, void *arg)
{
    struct ids *ids = arg;
    size_t used = strlen(ids->s);
    snprintf(ids->s + used, sizeof ids->s - used, "%s%s", used ? " " : "", m->id);
    return 0;
}

static const char *list(struct fixture *f, int64_t customer, struct ids *ids)
{
    ids->s[0] = 0;
    assert_int_equal(store_queue_list_scoped(f->s.st, customer, add_msg_id, ids), STORE_OK);
    return ids->s;
}

struct rcpts {
    struct store_rcpt r[8];
    int n;
};

static int collect_rcpt(const struct store_rcpt *r, void *arg)
{
    struct rcpts *c = arg;
    if (c->n < 8)
        c->r[c->n++] = *r;
    return 0;
}

static int share(struct fixture *f, const char *id, int64_t customer, struct rcpts *c)
{
    memset(c, 0, sizeof *c);
    return store_queue_rcpts(f->s.st, id, customer, collect_rcpt, c);
}

static int due(struct fixture *f, struct rcpts *c)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(store_rcpt_due(f->s.st, time_now(), 0, collect_rcpt, c), STORE_OK);
    return c->n;
}

static void test_scoped_list_and_recipients(void **state)
{
    struct fixture *f = *state;
    const char *in_both[] = {"bob@acme.test", "x@beta.test"};
    const char *in_beta[] = {"y@beta.test"};
    const char *out_acme[] = {"z@example.org", "w@beta.test"};
    const char *out_none[] = {"v@example.org"};
    queue_msg(f, "00000000000000A1", 0, in_both, 2);
    queue_msg(f, "00000000000000A2", 0, in_beta, 1);
    queue_msg(f, "00000000000000A3", f->acme, out_acme, 2);
    queue_msg(f, "00000000000000A4", 0, out_none, 1);
    struct ids ids;
    assert_string_equal(list(f, 0, &ids), "00000000000000A1 00000000000000A2 00000000000000A3 00000000000000A4");
    assert_string_equal(list(f, f->acme, &ids), "00000000000000A1 00000000000000A3");
    assert_string_equal(list(f, f->beta, &ids), "00000000000000A1 00000000000000A2 00000000000000A3");

    struct rcpts c;
    assert_int_equal(share(f, "00000000000000A1", f->acme, &c), STORE_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.r[0].rcpt, "bob@acme.test");
    assert_int_equal(share(f, "00000000000000A1", 0, &c), STORE_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(share(f, "00000000000000A3", f->acme, &c), STORE_OK); /* acme sent it: all of it */
    assert_int_equal(c.n, 2);
    assert_int_equal(share(f, "00000000000000A3", f->beta, &c), STORE_OK); /* beta: its recipient only */
    assert_int_equal(c.n, 1);
    assert_string_equal(c.r[0].rcpt, "w@beta.test");
    assert_int_equal(share(f, "00000000000000A2", f->acme, &c), STORE_NOTFOUND);
    assert_int_equal(share(f, "00000000000000A4", f->acme, &c), STORE_NOTFOUND);
    assert_int_equal(share(f, "NOSUCHMESSAGE000", 0, &c), STORE_NOTFOUND);

    struct store_msg m;
    assert_int_equal(store_message_get(f->s.st, "00000000000000A3", &m), STORE_OK);
    assert_int_equal(m.sender_customer_id, f->acme);
}

static void test_hold_and_release(void **state)
{
    struct fixture *f = *state;
    const char *in_both[] = {"bob@acme.test", "x@beta.test"};
    queue_msg(f, "00000000000000B1", 0, in_both, 2);
    struct rcpts c;
    assert_int_equal(due(f, &c), 2);

    /* Another customer's message is not there for beta... */
    const char *in_acme[] = {"carol@acme.test"};
    queue_msg(f, "00000000000000B2", 0, in_acme, 1);
    unsigned changed = 9;
    assert_int_equal(store_queue_hold(f->s.st, "00000000000000B2", f->beta, 1, &changed), STORE_NOTFOUND);
    assert_int_equal(changed, 0);
    assert_int_equal(due(f, &c), 3);

    /* ...and beta's hold of the shared one holds beta's copy only. */
    assert_int_equal(store_queue_hold(f->s.st, "00000000000000B1", f->beta, 1, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(due(f, &c), 2);
    for (int i = 0; i < c.n; i++)
        assert_string_not_equal(c.r[i].rcpt, "x@beta.test");
    assert_int_equal(store_queue_hold(f->s.st, "00000000000000B1", f->beta, 1, &changed), STORE_OK);
    assert_int_equal(changed, 0); /* held already */

    /* The operator holds everything: nothing is due, and no next attempt either. */
    assert_int_equal(store_queue_hold(f->s.st, "00000000000000B1", 0, 1, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(store_queue_hold(f->s.st, "00000000000000B2", 0, 1, NULL), STORE_OK);
    assert_int_equal(due(f, &c), 0);
    int64_t when = 0;
    assert_int_equal(store_rcpt_next_due(f->s.st, &when), STORE_NOTFOUND);
    /* A flush does not release a hold. */
    assert_int_equal(store_queue_flush(f->s.st), STORE_OK);
    assert_int_equal(due(f, &c), 0);
    /* Held mail still shows in the queue (and says so). */
    assert_int_equal(share(f, "00000000000000B1", 0, &c), STORE_OK);
    assert_int_equal(c.r[0].held, 1);
    assert_int_equal(c.r[1].held, 1);
    struct ids ids;
    assert_string_equal(list(f, f->beta, &ids), "00000000000000B1");

    assert_int_equal(store_queue_hold(f->s.st, "00000000000000B1", f->acme, 0, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(due(f, &c), 1);
    assert_string_equal(c.r[0].rcpt, "bob@acme.test");
    assert_int_equal(store_rcpt_next_due(f->s.st, &when), STORE_OK);
    assert_int_equal(when, 1000);
    assert_int_equal(store_queue_hold(f->s.st, "NOSUCHMESSAGE000", 0, 0, NULL), STORE_NOTFOUND);

    /* A release makes a recipient due now, even one that waited for a retry in an hour. */
    assert_int_equal(store_rcpt_update(f->s.st, c.r[0].id, RCPT_QUEUED, 1, time_now() + 3600, "451 later"),
                     STORE_OK);
    assert_int_equal(due(f, &c), 0);
    assert_int_equal(store_queue_hold(f->s.st, "00000000000000B1", 0, 1, NULL), STORE_OK);
    assert_int_equal(store_queue_hold(f->s.st, "00000000000000B1", 0, 0, &changed), STORE_OK);
    assert_int_equal(changed, 2);
    assert_int_equal(due(f, &c), 2);
}

static void test_flush_scoped(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"a@acme.test", "o@other.test", "b@beta.test", "n@example.org"};
    queue_msg(f, "00000000000000C1", 0, rcpts, 4);
    int64_t later = time_now() + 3600;
    struct rcpts c;
    assert_int_equal(share(f, "00000000000000C1", 0, &c), STORE_OK);
    for (int i = 0; i < c.n; i++)
        assert_int_equal(store_rcpt_update(f->s.st, c.r[i].id, RCPT_QUEUED, 1, later, "451 later"), STORE_OK);
    assert_int_equal(due(f, &c), 0);

    unsigned n = 9;
    assert_int_equal(store_queue_flush_scoped(f->s.st, f->acme, "OTHER.test", &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(due(f, &c), 1);
    assert_string_equal(c.r[0].rcpt, "o@other.test");
    /* A domain outside the customer flushes nothing of it. */
    assert_int_equal(store_queue_flush_scoped(f->s.st, f->acme, "beta.test", &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_queue_flush_scoped(f->s.st, f->acme, NULL, &n), STORE_OK);
    assert_int_equal(n, 1); /* a@acme.test */
    assert_int_equal(due(f, &c), 2);
    assert_int_equal(store_queue_flush_scoped(f->s.st, 0, NULL, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(due(f, &c), 4);
}

static int64_t rows(struct fixture *f, const char *sql)
{
    return tmp_raw_count(&f->s.t, sql);
}

static void test_delete_scoped(void **state)
{
    struct fixture *f = *state;
    const char *in_both[] = {"bob@acme.test", "x@beta.test"};
    queue_msg(f, "00000000000000D1", 0, in_both, 2);
    /* beta deletes its copy; acme's stays queued. */
    assert_int_equal(store_queue_delete(f->s.st, "00000000000000D1", f->beta), STORE_OK);
    struct rcpts c;
    assert_int_equal(share(f, "00000000000000D1", 0, &c), STORE_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.r[0].rcpt, "bob@acme.test");
    assert_int_equal(store_queue_delete(f->s.st, "00000000000000D1", f->beta), STORE_NOTFOUND);
    /* acme's share is the whole message now: it goes with its blob reference. */
    assert_int_equal(store_queue_delete(f->s.st, "00000000000000D1", f->acme), STORE_OK);
    assert_int_equal(rows(f, "SELECT count(*) FROM messages"), 0);
    assert_int_equal(rows(f, "SELECT refs FROM blobs"), 0);

    /* Outbound mail of acme: acme deletes all of it, beta (a recipient) only its copy. */
    const char *out_acme[] = {"z@example.org", "w@beta.test"};
    queue_msg(f, "00000000000000D2", f->acme, out_acme, 2);
    assert_int_equal(store_queue_delete(f->s.st, "00000000000000D2", f->beta), STORE_OK);
    assert_int_equal(rows(f, "SELECT count(*) FROM recipients"), 1);
    assert_int_equal(store_queue_delete(f->s.st, "00000000000000D2", f->acme), STORE_OK);
    assert_int_equal(rows(f, "SELECT count(*) FROM messages"), 0);

    /* A copy delivered already stays a delivered copy; the queued one goes. */
    const char *two[] = {"a@acme.test", "b@beta.test"};
    queue_msg(f, "00000000000000D3", 0, two, 2);
    assert_int_equal(share(f, "00000000000000D3", f->acme, &c), STORE_OK);
    assert_int_equal(store_rcpt_update(f->s.st, c.r[0].id, RCPT_SENT, 1, 0, "250 ok"), STORE_OK);
    assert_int_equal(store_queue_delete(f->s.st, "00000000000000D3", f->beta), STORE_OK);
    assert_int_equal(rows(f, "SELECT count(*) FROM messages"), 0); /* nothing left pending: released */
    assert_int_equal(store_queue_delete(f->s.st, "NOSUCHMESSAGE000", 0), STORE_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scoped_list_and_recipients, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_hold_and_release, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_flush_scoped, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_delete_scoped, setup, tmp_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
