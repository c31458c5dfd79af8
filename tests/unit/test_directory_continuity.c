/*
 * test_directory_continuity.c — subscriptions and continuity settings on a real
 * (temporary) SQLite store: calendar months, the minimum term, refusing
 * continuity without a subscription, non-retroactive enabling, cancelling
 * disabling continuity, and user deletion while mail waits for re-delivery.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <time.h>

#include "test_directory_fixture.h"
#include "util/log.h"

static int setup(void **state)
{
    return directory_fixture_setup(state, "test_directory_continuity");
}

/* UTC calendar time to seconds. */
static int64_t utc(int y, int mon, int d, int h, int min, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h, .tm_min = min, .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static void populate(struct fixture *f)
{
    assert_ok(directory_customer_add(f->st, "acme", ERR));
    assert_ok(directory_customer_add(f->st, "other", ERR));
    assert_ok(directory_domain_add(f->st, "acme.test", "acme", "mx.acme.test", ERR));
    assert_ok(directory_domain_add(f->st, "acme.example", "acme", "mx.acme.test", ERR));
    assert_ok(directory_domain_add(f->st, "other.test", "other", "mx.other.test", ERR));
}

static struct store_customer customer(struct fixture *f, const char *name)
{
    struct store_customer c;
    assert_int_equal(store_customer_get(f->st, name, &c), STORE_OK);
    return c;
}

static struct store_domain domain(struct fixture *f, const char *name)
{
    struct store_domain d;
    assert_int_equal(store_domain_get(f->st, name, &d), STORE_OK);
    return d;
}

static void test_add_months(void **state)
{
    (void)state;
    assert_int_equal(directory_add_months(utc(2026, 11, 27, 21, 53, 37), 12), utc(2027, 11, 27, 21, 53, 37));
    assert_int_equal(directory_add_months(utc(2026, 1, 31, 8, 0, 0), 1), utc(2026, 2, 28, 8, 0, 0));
    assert_int_equal(directory_add_months(utc(2024, 1, 31, 8, 0, 0), 1), utc(2024, 2, 29, 8, 0, 0));
    assert_int_equal(directory_add_months(utc(2023, 2, 28, 0, 0, 0), 12), utc(2024, 2, 28, 0, 0, 0));
    assert_int_equal(directory_add_months(utc(2024, 2, 29, 0, 0, 0), 12), utc(2025, 2, 28, 0, 0, 0));
    assert_int_equal(directory_add_months(utc(2026, 12, 15, 0, 0, 0), 13), utc(2028, 1, 15, 0, 0, 0));
    assert_int_equal(directory_add_months(utc(2026, 8, 31, 0, 0, 0), 18), utc(2028, 2, 29, 0, 0, 0));
    assert_int_equal(directory_add_months(utc(2026, 5, 1, 0, 0, 0), 1200), utc(2126, 5, 1, 0, 0, 0));
}

static void test_subscription_start(void **state)
{
    struct fixture *f = *state;
    populate(f);
    int64_t now = utc(2026, 11, 27, 21, 53, 37);
    assert_refused(directory_subscription_start(f->st, "acme", 11, now, ERR),
                   "customer acme: a subscription runs for at least 12 months (the minimum term), not 11");
    assert_refused(directory_subscription_start(f->st, "acme", 0, now, ERR),
                   "customer acme: a subscription runs for at least 12 months (the minimum term), not 0");
    assert_refused(directory_subscription_start(f->st, "acme", 1201, now, ERR),
                   "customer acme: a term of 1201 months is too long (at most 1200)");
    assert_refused(directory_subscription_start(f->st, "nosuch", 12, now, ERR), "customer nosuch does not exist");
    assert_int_equal(customer(f, "acme").sub_start, 0);

    assert_ok(directory_subscription_start(f->st, "ACME", 12, now, ERR));
    struct store_customer c = customer(f, "acme");
    assert_int_equal(c.sub_start, now);
    assert_int_equal(c.sub_end, utc(2027, 11, 27, 21, 53, 37));
    assert_int_equal(c.sub_cancelled, 0);
    assert_true(directory_subscription_active(&c));
    assert_false(directory_subscription_active(&(struct store_customer){0}));

    assert_refused(directory_subscription_start(f->st, "acme", 24, now + 10, ERR),
                   "customer acme already has an active subscription (since 2026-11-27T21:53:37Z, "
                   "minimum term until 2027-11-27T21:53:37Z)");
    assert_ok(directory_subscription_start(f->st, "other", 36, now, ERR));
    assert_int_equal(customer(f, "other").sub_end, utc(2029, 11, 27, 21, 53, 37));
}

static void test_subscription_cancel(void **state)
{
    struct fixture *f = *state;
    populate(f);
    int64_t now = utc(2026, 3, 31, 12, 0, 0);
    int disabled = -1;
    assert_refused(directory_subscription_cancel(f->st, "acme", now, &disabled, ERR),
                   "customer acme has no active subscription to cancel");
    assert_refused(directory_subscription_cancel(f->st, "nosuch", now, NULL, ERR), "customer nosuch does not exist");

    assert_ok(directory_subscription_start(f->st, "acme", 12, now, ERR));
    assert_ok(directory_subscription_start(f->st, "other", 12, now, ERR));
    assert_ok(directory_continuity_enable(f->st, "acme.test", 0, now, NULL, ERR));
    assert_ok(directory_continuity_enable(f->st, "acme.example", 1, now, NULL, ERR));
    assert_ok(directory_continuity_enable(f->st, "other.test", 0, now, NULL, ERR));

    /* Inside the term, up to its last second: refused, naming when it can be. */
    const char *inside = "customer acme: the subscription cannot be cancelled inside its minimum term; "
                         "it can be cancelled from 2027-03-31T12:00:00Z";
    assert_refused(directory_subscription_cancel(f->st, "acme", now + 86400, &disabled, ERR), inside);
    assert_refused(directory_subscription_cancel(f->st, "acme", utc(2027, 3, 31, 11, 59, 59), &disabled, ERR),
                   inside);
    assert_int_equal(customer(f, "acme").sub_cancelled, 0);
    assert_int_equal(domain(f, "acme.test").continuity, 1);

    /* From the end of the term on: cancelled, continuity ends on its domains. */
    int64_t end = utc(2027, 3, 31, 12, 0, 0);
    assert_ok(directory_subscription_cancel(f->st, "acme", end, &disabled, ERR));
    assert_int_equal(disabled, 2);
    struct store_customer c = customer(f, "acme");
    assert_int_equal(c.sub_cancelled, end);
    assert_false(directory_subscription_active(&c));
    assert_int_equal(domain(f, "acme.test").continuity, 0);
    assert_int_equal(domain(f, "acme.example").continuity, 0);
    assert_int_equal(domain(f, "acme.example").outgoing_to_own, 1); /* the setting is kept */
    assert_int_equal(domain(f, "other.test").continuity, 1);        /* another customer's */
    assert_refused(directory_subscription_cancel(f->st, "acme", end + 1, NULL, ERR),
                   "customer acme has no active subscription to cancel");
    assert_refused(directory_continuity_enable(f->st, "acme.test", 0, end + 1, NULL, ERR),
                   "domain acme.test: customer acme has no active subscription; continuity needs one "
                   "(subscription start acme)");

    /* A new subscription can start again, with a new term. */
    assert_ok(directory_subscription_start(f->st, "acme", 12, end + 100, ERR));
    c = customer(f, "acme");
    assert_int_equal(c.sub_start, end + 100);
    assert_int_equal(c.sub_cancelled, 0);
    assert_int_equal(c.sub_end, directory_add_months(end + 100, 12));
    assert_ok(directory_subscription_cancel(f->st, "other", utc(2030, 1, 1, 0, 0, 0), &disabled, ERR));
    assert_int_equal(disabled, 1);
}

static void test_continuity_enable_disable(void **state)
{
    struct fixture *f = *state;
    populate(f);
    int64_t now = 1000000;
    int was = -1;
    assert_refused(directory_continuity_enable(f->st, "acme.test", 0, now, &was, ERR),
                   "domain acme.test: customer acme has no active subscription; continuity needs one "
                   "(subscription start acme)");
    assert_int_equal(domain(f, "acme.test").continuity, 0);
    assert_refused(directory_continuity_enable(f->st, "nosuch.test", 0, now, NULL, ERR),
                   "domain nosuch.test is not hosted");
    assert_refused(directory_continuity_enable(f->st, "bad domain", 0, now, NULL, ERR),
                   "\"bad domain\" is not a valid domain name");

    assert_ok(directory_subscription_start(f->st, "acme", 12, now, ERR));
    assert_ok(directory_continuity_enable(f->st, "Acme.Test", 0, now + 5, &was, ERR));
    assert_int_equal(was, 0);
    struct store_domain d = domain(f, "acme.test");
    assert_int_equal(d.continuity, 1);
    assert_int_equal(d.outgoing_to_own, 0);
    assert_int_equal(d.continuity_since, now + 5);
    assert_int_equal(domain(f, "acme.example").continuity, 0); /* one domain at a time */

    /* Again, with the outgoing flag: the start stays where it was. */
    assert_ok(directory_continuity_enable(f->st, "acme.test", 1, now + 50, &was, ERR));
    assert_int_equal(was, 1);
    d = domain(f, "acme.test");
    assert_int_equal(d.outgoing_to_own, 1);
    assert_int_equal(d.continuity_since, now + 5);

    assert_ok(directory_continuity_disable(f->st, "ACME.test", &was, ERR));
    assert_int_equal(was, 1);
    d = domain(f, "acme.test");
    assert_int_equal(d.continuity, 0);
    assert_int_equal(d.continuity_since, 0);
    assert_ok(directory_continuity_disable(f->st, "acme.test", &was, ERR));
    assert_int_equal(was, 0);
    assert_refused(directory_continuity_disable(f->st, "nosuch.test", NULL, ERR), "domain nosuch.test is not hosted");

    /* Enabled again later: continuity starts then, not before (not retroactive). */
    assert_ok(directory_continuity_enable(f->st, "acme.test", 0, now + 500, &was, ERR));
    assert_int_equal(domain(f, "acme.test").continuity_since, now + 500);

    /* The state machine's fields are not the administrator's. */
    assert_int_equal(domain(f, "acme.test").state, DOMAIN_NORMAL);
    assert_string_equal(directory_state_name(DOMAIN_NORMAL), "normal");
    assert_string_equal(directory_state_name(DOMAIN_OUTAGE), "outage");
    assert_string_equal(directory_state_name(DOMAIN_RECOVERING), "recovering");
    assert_string_equal(directory_state_name(9), "unknown");
}

/* Queues one message for rcpt and returns its recipient row. */
static struct store_rcpt queue_one(struct fixture *f, const char *qid, const char *rcpt)
{
    const char *blob = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
    const char *rcpts[] = {rcpt};
    assert_int_equal(store_blob_add(f->st, blob, 10, 10), STORE_OK);
    struct store_msg_new m = {.size = 10, .sender = "a@example.org", .received = 5, .nrcpt = 1, .rcpts = rcpts};
    snprintf(m.id, sizeof m.id, "%s", qid);
    snprintf(m.blob, sizeof m.blob, "%s", blob);
    assert_int_equal(store_message_insert(f->st, &m), STORE_OK);
    struct store_rcpt r;
    int64_t id = 0;
    for (int64_t i = 1; i < 100 && !id; i++)
        if (store_rcpt_get(f->st, i, &r) == STORE_OK && !strcmp(r.msg_id, qid))
            id = i;
    assert_true(id > 0);
    return r;
}

static int pre_continuity(struct fixture *f, int64_t rcpt_id)
{
    struct store_rcpt r;
    assert_int_equal(store_rcpt_get(f->st, rcpt_id, &r), STORE_OK);
    return r.pre_continuity;
}

/* What was queued when continuity was enabled stays in the ordinary queue,
 * also when it came in the same second (the mark is exact, the clock is not). */
static void test_enable_marks_what_is_queued(void **state)
{
    struct fixture *f = *state;
    populate(f);
    int64_t now = 2000000;
    struct store_rcpt before = queue_one(f, "00000000000000B1", "bob@acme.test");
    struct store_rcpt elsewhere = queue_one(f, "00000000000000B2", "dave@other.test");
    /* Refused: nothing is marked. */
    assert_refused(directory_continuity_enable(f->st, "acme.test", 0, now, NULL, ERR),
                   "domain acme.test: customer acme has no active subscription; continuity needs one "
                   "(subscription start acme)");
    assert_int_equal(pre_continuity(f, before.id), 0);

    assert_ok(directory_subscription_start(f->st, "acme", 12, now, ERR));
    assert_ok(directory_continuity_enable(f->st, "acme.test", 0, now, NULL, ERR));
    assert_int_equal(pre_continuity(f, before.id), 1);
    assert_int_equal(pre_continuity(f, elsewhere.id), 0); /* another domain's */

    /* Queued afterwards, in the same second: not marked. Enabling again (only
     * the flag changes) marks nothing either. */
    struct store_rcpt after = queue_one(f, "00000000000000B3", "bob@acme.test");
    assert_ok(directory_continuity_enable(f->st, "acme.test", 1, now, NULL, ERR));
    assert_int_equal(pre_continuity(f, after.id), 0);
    /* Disabled and enabled again: what is queued then is marked. */
    assert_ok(directory_continuity_disable(f->st, "acme.test", NULL, ERR));
    assert_ok(directory_continuity_enable(f->st, "acme.test", 0, now + 1, NULL, ERR));
    assert_int_equal(pre_continuity(f, after.id), 1);
}

static void test_user_del_waits_for_redelivery(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_ok(directory_user_add(f->st, "bob@acme.test", NULL, NULL, NULL, 1, ERR));
    struct store_user bob;
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &bob), STORE_OK);

    /* A message of bob's in continuity, waiting to go back. */
    const char *blob = "abababababababababababababababababababababababababababababababab";
    const char *rcpts[] = {"bob@acme.test"};
    assert_int_equal(store_blob_add(f->st, blob, 10, 10), STORE_OK);
    struct store_msg_new m = {.id = "00000000000000A1", .size = 10, .sender = "a@example.org", .received = 5,
                              .nrcpt = 1, .rcpts = rcpts};
    snprintf(m.blob, sizeof m.blob, "%s", blob);
    assert_int_equal(store_message_insert(f->st, &m), STORE_OK);
    struct store_rcpt r;
    assert_int_equal(store_rcpt_get(f->st, 1, &r), STORE_OK);
    int64_t entry = 0;
    assert_int_equal(store_mailbox_divert(f->st, r.id, bob.id, 0, 6, &entry), STORE_OK);

    assert_refused(directory_user_del(f->st, "bob@acme.test", ERR),
                   "user bob@acme.test has 1 message(s) in continuity waiting for re-delivery to the "
                   "customer's server; delete the user once they are re-delivered");
    assert_int_equal(store_mailbox_redelivered(f->st, entry), STORE_OK);
    assert_ok(directory_user_del(f->st, "bob@acme.test", ERR));
    struct store_mailbox_entry e;
    assert_int_equal(store_mailbox_get(f->st, entry, &e), STORE_NOTFOUND);
}

int main(void)
{
    log_init("test_directory_continuity", "test", 1);
    log_set_level(LOG_LEVEL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_months),
        cmocka_unit_test_setup_teardown(test_subscription_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscription_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_continuity_enable_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_marks_what_is_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_del_waits_for_redelivery, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
