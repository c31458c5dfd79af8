/*
 * test_admin_views.c — admin.h's views on a temporary store with two
 * customers: the fields of each shape (the contract lifeboatctl --json and the
 * control panel's API share), and that a customer's view never holds another
 * customer's domain, event, minute or message (nor another customer's copy of
 * a message they share), while the operator's (0) holds all.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "admin/admin.h"
#include "test_store_fixture.h"

#define BLOB_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

struct fixture {
    struct tmp_store s;
    int64_t acme_c, beta_c;
    int64_t acme, other, beta; /* acme.test, other.test: acme's; beta.test: beta's */
};

static int setup(void **state)
{
    struct fixture *f = tmp_store_setup(sizeof *f, "test_admin_views");
    f->acme_c = tmp_customer_add(f->s.st, "acme");
    f->beta_c = tmp_customer_add(f->s.st, "beta");
    f->acme = tmp_domain_add(f->s.st, f->acme_c, "acme.test");
    f->other = tmp_domain_add(f->s.st, f->acme_c, "other.test");
    f->beta = tmp_domain_add(f->s.st, f->beta_c, "beta.test");
    *state = f;
    return 0;
}

/* Every key of o, sorted and joined with ",", for comparing a shape. */
static const char *keys(json_t *o, char *buf, size_t len)
{
    const char *k[32];
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) if (n < 32) k[n++] = key;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(k[j - 1], k[j]) > 0; j--) {
            const char *t = k[j];
            k[j] = k[j - 1];
            k[j - 1] = t;
        }
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? "," : "", k[i]);
    }
    return buf;
}

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static json_int_t num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void test_continuity_status(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_domain_set_continuity(f->s.st, f->acme, 1, 1, 5000), STORE_OK);
    assert_int_equal(store_domain_set_state(f->s.st, f->acme, DOMAIN_OUTAGE, "421 down", 6000, NULL), STORE_OK);
    json_t *rows;
    char buf[512];
    assert_int_equal(admin_continuity_view(f->s.st, f->acme_c, NULL, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 2); /* acme.test, other.test; never beta.test */
    json_t *a = json_array_get(rows, 0);
    assert_string_equal(keys(a, buf, sizeof buf),
                        "cause,continuity,continuity_since,deleted,domain,held,outgoing_to_own_server,redelivered,"
                        "since,since_epoch,state,waiting");
    assert_string_equal(str(a, "domain"), "acme.test");
    assert_string_equal(str(a, "state"), "outage");
    assert_string_equal(str(a, "since"), "1970-01-01T01:40:00Z");
    assert_int_equal(num(a, "since_epoch"), 6000);
    assert_string_equal(str(a, "cause"), "421 down");
    assert_true(json_is_true(json_object_get(a, "continuity")));
    assert_true(json_is_true(json_object_get(a, "outgoing_to_own_server")));
    assert_int_equal(num(a, "held"), 0);
    json_t *o = json_array_get(rows, 1);
    assert_string_equal(str(o, "domain"), "other.test");
    assert_true(json_is_null(json_object_get(o, "continuity_since")));
    json_decref(rows);

    assert_int_equal(admin_continuity_view(f->s.st, 0, NULL, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 3);
    json_decref(rows);
    struct store_domain beta;
    assert_int_equal(store_domain_get_by_id(f->s.st, f->beta, &beta), STORE_OK);
    assert_int_equal(admin_continuity_view(f->s.st, f->beta_c, &beta, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(str(json_array_get(rows, 0), "domain"), "beta.test");
    json_decref(rows);
}

static void test_events(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_domain_set_state(f->s.st, f->acme, DOMAIN_OUTAGE, "421 down", 6000, NULL), STORE_OK);
    assert_int_equal(store_domain_set_state(f->s.st, f->beta, DOMAIN_OUTAGE, "beta down", 6001, NULL), STORE_OK);
    assert_int_equal(store_domain_set_state(f->s.st, f->acme, DOMAIN_RECOVERING, "probe passed", 6002, NULL),
                     STORE_OK);
    json_t *rows;
    char buf[256];
    assert_int_equal(admin_events_view(f->s.st, f->acme_c, 0, 0, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 2);
    json_t *e = json_array_get(rows, 0); /* newest first */
    assert_string_equal(keys(e, buf, sizeof buf), "at,at_epoch,cause,domain,from,id,state,to");
    assert_string_equal(str(e, "domain"), "acme.test");
    assert_string_equal(str(e, "state"), "recovering");
    assert_string_equal(str(e, "from"), "outage");
    assert_string_equal(str(e, "to"), "recovering");
    assert_string_equal(str(e, "at"), "1970-01-01T01:40:02Z");
    assert_int_equal(num(e, "at_epoch"), 6002);
    assert_string_equal(str(e, "cause"), "probe passed");
    assert_string_equal(str(json_array_get(rows, 1), "cause"), "421 down");
    json_decref(rows);

    /* Another customer's domain named: nothing of it. */
    assert_int_equal(admin_events_view(f->s.st, f->acme_c, f->beta, 0, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    assert_int_equal(admin_events_view(f->s.st, 0, 0, 2, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 2); /* limit */
    assert_string_equal(str(json_array_get(rows, 1), "domain"), "beta.test");
    json_decref(rows);
    assert_int_equal(admin_events_view(f->s.st, f->beta_c, f->beta, 0, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
}

static void test_stats(void **state)
{
    struct fixture *f = *state;
    const int64_t now = 1700000000 - 1700000000 % 60 + 30; /* half a minute past */
    assert_int_equal(store_stats_add(f->s.st, f->acme, STAT_ACCEPTED, now - 3600 * 2, 5), STORE_OK);
    assert_int_equal(store_stats_add(f->s.st, f->other, STAT_DIVERTED, now - 60, 2), STORE_OK);
    assert_int_equal(store_stats_add(f->s.st, f->acme, STAT_REDELIVERED, now - 60, 1), STORE_OK);
    assert_int_equal(store_stats_add(f->s.st, f->beta, STAT_BOUNCED, now - 60, 9), STORE_OK);
    assert_int_equal(store_stats_add(f->s.st, f->acme, STAT_DELIVERED, now - 3600 * 30, 1), STORE_OK);

    json_t *v;
    char buf[256];
    assert_int_equal(admin_stats_view(f->s.st, f->acme_c, NULL, 24, now, &v), STORE_OK);
    assert_string_equal(keys(v, buf, sizeof buf), "domain,from,hours,minutes");
    assert_true(json_is_null(json_object_get(v, "domain")));
    assert_int_equal(num(v, "hours"), 24);
    assert_int_equal(num(v, "from"), now - 30 - 24 * 3600);
    json_t *m = json_object_get(v, "minutes");
    assert_int_equal(json_array_size(m), 2); /* 30 h ago is outside; beta's never in */
    json_t *first = json_array_get(m, 0), *last = json_array_get(m, 1);
    assert_string_equal(keys(first, buf, sizeof buf), "accepted,bounced,deferred,delivered,diverted,redelivered,t");
    assert_int_equal(num(first, "t"), now - 30 - 7200);
    assert_int_equal(num(first, "accepted"), 5);
    assert_int_equal(num(last, "t"), now - 30 - 60);
    assert_int_equal(num(last, "diverted"), 2);
    assert_int_equal(num(last, "redelivered"), 1);
    assert_int_equal(num(last, "bounced"), 0);
    json_decref(v);

    assert_int_equal(admin_stats_view(f->s.st, 0, NULL, 48, now, &v), STORE_OK);
    m = json_object_get(v, "minutes");
    assert_int_equal(json_array_size(m), 3);
    assert_int_equal(num(json_array_get(m, 2), "bounced"), 9);
    json_decref(v);

    struct store_domain other;
    assert_int_equal(store_domain_get_by_id(f->s.st, f->other, &other), STORE_OK);
    assert_int_equal(admin_stats_view(f->s.st, f->acme_c, &other, 1, now, &v), STORE_OK);
    assert_string_equal(str(v, "domain"), "other.test");
    assert_int_equal(json_array_size(json_object_get(v, "minutes")), 1);
    json_decref(v);

    assert_int_equal(admin_stats_view(f->s.st, 0, NULL, 0, now, &v), STORE_ERR);
    assert_null(v);
    assert_int_equal(admin_stats_view(f->s.st, 0, NULL, ADMIN_STATS_HOURS_MAX + 1, now, &v), STORE_ERR);
    assert_null(v);
}

static void queue_msg(struct fixture *f, const char *id, int64_t sender_customer, const char *const *rcpts, size_t n)
{
    assert_int_equal(store_blob_add(f->s.st, BLOB_A, 500, 300), STORE_OK);
    struct store_msg_new m = {
        .size = 500, .sender = "alice@example.org", .prefix = "", .received = 1000,
        .client_addr = "192.0.2.1", .helo = "h", .direction = sender_customer ? DIR_OUTBOUND : DIR_INBOUND,
        .sender_customer_id = sender_customer, .nrcpt = n, .rcpts = rcpts,
    };
    snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.blob, sizeof m.blob, "%s", BLOB_A);
    assert_int_equal(store_message_insert(f->s.st, &m), STORE_OK);
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

static void test_queue(void **state)
{
    struct fixture *f = *state;
    const char *both[] = {"bob@acme.test", "carol@acme.test", "x@beta.test"};
    const char *out[] = {"z@example.org"};
    queue_msg(f, "00000000000000A1", 0, both, 3);
    queue_msg(f, "00000000000000A2", f->beta_c, out, 1);
    struct rcpts c = {0};
    assert_int_equal(store_rcpt_list(f->s.st, "00000000000000A1", collect_rcpt, &c), STORE_OK);
    /* bob: tried twice, carol once with a reply that is not UTF-8; beta's copy was tried 5 times. */
    assert_int_equal(store_rcpt_update(f->s.st, c.r[0].id, RCPT_QUEUED, 2, 9000, "451 4.3.0 bob later"), STORE_OK);
    assert_int_equal(store_rcpt_update(f->s.st, c.r[1].id, RCPT_QUEUED, 1, 8000, "451 \xff carol"), STORE_OK);
    assert_int_equal(store_rcpt_update(f->s.st, c.r[2].id, RCPT_QUEUED, 5, 7000, "451 beta later"), STORE_OK);
    assert_int_equal(store_queue_hold(f->s.st, "00000000000000A1", f->beta_c, 1, NULL), STORE_OK);

    json_t *rows;
    char buf[256];
    assert_int_equal(admin_queue_view(f->s.st, f->acme_c, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 1); /* not beta's outbound mail */
    json_t *m = json_array_get(rows, 0);
    assert_string_equal(keys(m, buf, sizeof buf),
                        "attempts,direction,held,id,last_reply,next_attempt,received,recipients,sender,size");
    assert_string_equal(str(m, "id"), "00000000000000A1");
    assert_string_equal(str(m, "sender"), "alice@example.org");
    assert_string_equal(str(m, "direction"), "inbound");
    json_t *r = json_object_get(m, "recipients");
    assert_int_equal(json_array_size(r), 2); /* acme's copies only */
    assert_string_equal(json_string_value(json_array_get(r, 0)), "bob@acme.test");
    assert_int_equal(num(m, "attempts"), 2); /* beta's 5 attempts are not acme's business */
    assert_string_equal(str(m, "last_reply"), "451 4.3.0 bob later");
    assert_int_equal(num(m, "next_attempt"), 8000);
    assert_false(json_is_true(json_object_get(m, "held"))); /* beta held its copy, not acme's */
    assert_int_equal(num(m, "size"), 500);
    assert_int_equal(num(m, "received"), 1000);
    json_decref(rows);

    assert_int_equal(admin_queue_view(f->s.st, f->beta_c, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 2);
    m = json_array_get(rows, 0);
    assert_int_equal(json_array_size(json_object_get(m, "recipients")), 1);
    assert_true(json_is_true(json_object_get(m, "held")));
    assert_int_equal(num(m, "attempts"), 5);
    assert_string_equal(str(json_array_get(rows, 1), "direction"), "outbound");
    json_decref(rows);

    /* The operator: every recipient; a reply that is not UTF-8 comes out valid. */
    assert_int_equal(store_rcpt_update(f->s.st, c.r[1].id, RCPT_QUEUED, 9, 8000, "451 \xff carol"), STORE_OK);
    assert_int_equal(admin_queue_view(f->s.st, 0, &rows), STORE_OK);
    assert_int_equal(json_array_size(rows), 2);
    m = json_array_get(rows, 0);
    assert_int_equal(json_array_size(json_object_get(m, "recipients")), 3);
    assert_true(json_is_true(json_object_get(m, "held")));
    assert_int_equal(num(m, "attempts"), 9);
    assert_non_null(strstr(str(m, "last_reply"), "carol"));
    json_decref(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_continuity_status, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_queue, setup, tmp_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
