/*
 * test_store_password.c — store_password.c (migration 4) on a temporary
 * data_dir: policies per customer (upsert, missing customer), setting a
 * password ending every session of the user but one, reset tokens (single
 * use, expiry, voiding, counting, purging, going with their user) and the
 * per-address request rows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_fixture.h"

struct fx {
    struct tmp_store s; /* first: tmp_store_teardown frees the fx */
    int64_t customer, domain, bob, carol;
};

static int64_t add_user(struct store *st, int64_t domain, const char *email)
{
    struct store_user u = {.domain_id = domain, .active = 1};
    snprintf(u.email, sizeof u.email, "%s", email);
    snprintf(u.pw_hash, sizeof u.pw_hash, "old-hash");
    int64_t id = 0;
    assert_int_equal(store_user_add(st, &u, &id), STORE_OK);
    return id;
}

static int setup(void **state)
{
    struct fx *f = tmp_store_setup(sizeof *f, "lb_store_password");
    f->customer = tmp_customer_add(f->s.st, "acme");
    f->domain = tmp_domain_add(f->s.st, f->customer, "acme.test");
    f->bob = add_user(f->s.st, f->domain, "bob@acme.test");
    f->carol = add_user(f->s.st, f->domain, "carol@acme.test");
    *state = f;
    return 0;
}

static void test_policy(void **state)
{
    struct fx *f = *state;
    struct store_password_policy p;
    assert_int_equal(store_password_policy_get(f->s.st, f->customer, &p), STORE_NOTFOUND);
    struct store_password_policy in = {.customer_id = f->customer, .min_length = 12, .upper = 1, .digit = 1};
    assert_int_equal(store_password_policy_set(f->s.st, &in), STORE_OK);
    assert_int_equal(store_password_policy_get(f->s.st, f->customer, &p), STORE_OK);
    assert_int_equal(p.min_length, 12);
    assert_true(p.upper && p.digit);
    assert_false(p.lower || p.special);
    /* Setting again replaces, one row per customer. */
    in = (struct store_password_policy){.customer_id = f->customer, .min_length = 9, .lower = 1, .special = 1};
    assert_int_equal(store_password_policy_set(f->s.st, &in), STORE_OK);
    assert_int_equal(store_password_policy_get(f->s.st, f->customer, &p), STORE_OK);
    assert_int_equal(p.min_length, 9);
    assert_true(p.lower && p.special);
    assert_false(p.upper || p.digit);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM password_policy"), 1);
    /* A missing customer is refused by the foreign key. */
    in.customer_id = 999;
    assert_int_equal(store_password_policy_set(f->s.st, &in), STORE_NOTFOUND);
}

static void add_session(struct fx *f, int64_t user, const char *hash)
{
    struct store_session s = {.user_id = user, .created = 100, .last_seen = 100};
    snprintf(s.token_hash, sizeof s.token_hash, "%s", hash);
    snprintf(s.csrf, sizeof s.csrf, "csrf");
    assert_int_equal(store_session_add(f->s.st, &s), STORE_OK);
}

static void test_set_password_ends_other_sessions(void **state)
{
    struct fx *f = *state;
    add_session(f, f->bob, "bob-1");
    add_session(f, f->bob, "bob-2");
    add_session(f, f->bob, "bob-3");
    add_session(f, f->carol, "carol-1");
    assert_int_equal(store_user_set_password(f->s.st, f->bob, "new-hash", "bob-2"), STORE_OK);
    struct store_user u;
    assert_int_equal(store_user_get_by_id(f->s.st, f->bob, &u), STORE_OK);
    assert_string_equal(u.pw_hash, "new-hash");
    struct store_session s;
    assert_int_equal(store_session_get(f->s.st, "bob-1", &s), STORE_NOTFOUND);
    assert_int_equal(store_session_get(f->s.st, "bob-2", &s), STORE_OK);
    assert_int_equal(store_session_get(f->s.st, "bob-3", &s), STORE_NOTFOUND);
    assert_int_equal(store_session_get(f->s.st, "carol-1", &s), STORE_OK); /* another user's */
    /* NULL keeps none. */
    assert_int_equal(store_user_set_password(f->s.st, f->bob, "newer-hash", NULL), STORE_OK);
    assert_int_equal(store_session_get(f->s.st, "bob-2", &s), STORE_NOTFOUND);
    assert_int_equal(store_session_get(f->s.st, "carol-1", &s), STORE_OK);
    assert_int_equal(store_user_get_by_id(f->s.st, f->carol, &u), STORE_OK);
    assert_string_equal(u.pw_hash, "old-hash");
    assert_int_equal(store_user_set_password(f->s.st, 999, "x", NULL), STORE_NOTFOUND);
    /* Inside a caller's transaction, a failure is undone with it. */
    assert_int_equal(store_begin(f->s.st), STORE_OK);
    assert_int_equal(store_user_set_password(f->s.st, f->carol, "in-tx", NULL), STORE_OK);
    assert_int_equal(store_rollback(f->s.st), STORE_OK);
    assert_int_equal(store_user_get_by_id(f->s.st, f->carol, &u), STORE_OK);
    assert_string_equal(u.pw_hash, "old-hash");
    assert_int_equal(store_session_get(f->s.st, "carol-1", &s), STORE_OK);
}

static void add_token(struct fx *f, const char *hash, int64_t user, int64_t created)
{
    struct store_password_reset r = {.user_id = user, .created = created, .expires = created + 3600};
    snprintf(r.token_hash, sizeof r.token_hash, "%s", hash);
    assert_int_equal(store_password_reset_add(f->s.st, &r), STORE_OK);
}

static void test_reset_tokens(void **state)
{
    struct fx *f = *state;
    add_token(f, "t1", f->bob, 1000);
    struct store_password_reset r;
    assert_int_equal(store_password_reset_get(f->s.st, "t1", &r), STORE_OK);
    assert_int_equal(r.user_id, f->bob);
    assert_int_equal(r.created, 1000);
    assert_int_equal(r.expires, 4600);
    assert_int_equal(r.used, 0);
    assert_int_equal(store_password_reset_get(f->s.st, "nope", &r), STORE_NOTFOUND);
    struct store_password_reset dup = r;
    assert_int_equal(store_password_reset_add(f->s.st, &dup), STORE_EXISTS);
    dup.user_id = 999;
    snprintf(dup.token_hash, sizeof dup.token_hash, "t-orphan");
    assert_int_equal(store_password_reset_add(f->s.st, &dup), STORE_NOTFOUND);

    /* Expired at expires: not usable from that second on. */
    assert_int_equal(store_password_reset_use(f->s.st, "t1", 4600), STORE_NOTFOUND);
    /* Single use. */
    assert_int_equal(store_password_reset_use(f->s.st, "t1", 4599), STORE_OK);
    assert_int_equal(store_password_reset_use(f->s.st, "t1", 4599), STORE_NOTFOUND);
    assert_int_equal(store_password_reset_get(f->s.st, "t1", &r), STORE_OK);
    assert_int_equal(r.used, 4599);
    assert_int_equal(store_password_reset_use(f->s.st, "nope", 2000), STORE_NOTFOUND);

    /* Voiding touches only the user's unused tokens. */
    add_token(f, "t2", f->bob, 2000);
    add_token(f, "t3", f->bob, 2001);
    add_token(f, "c1", f->carol, 2000);
    assert_int_equal(store_password_reset_void_user(f->s.st, f->bob, 2002), STORE_OK);
    assert_int_equal(store_password_reset_use(f->s.st, "t2", 2003), STORE_NOTFOUND);
    assert_int_equal(store_password_reset_use(f->s.st, "t3", 2003), STORE_NOTFOUND);
    assert_int_equal(store_password_reset_get(f->s.st, "t1", &r), STORE_OK);
    assert_int_equal(r.used, 4599); /* kept its own time */
    assert_int_equal(store_password_reset_use(f->s.st, "c1", 2003), STORE_OK);

    /* Counting: every token made since, used or not. */
    unsigned n = 99;
    assert_int_equal(store_password_reset_count(f->s.st, f->bob, 1000, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(store_password_reset_count(f->s.st, f->bob, 2000, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_password_reset_count(f->s.st, f->bob, 2002, &n), STORE_OK);
    assert_int_equal(n, 0);

    /* Purge by expiry. */
    assert_int_equal(store_password_reset_purge(f->s.st, 5601), STORE_OK);
    assert_int_equal(store_password_reset_get(f->s.st, "t1", &r), STORE_NOTFOUND);
    assert_int_equal(store_password_reset_get(f->s.st, "t2", &r), STORE_NOTFOUND);
    assert_int_equal(store_password_reset_get(f->s.st, "t3", &r), STORE_OK);

    assert_int_equal(store_password_reset_get(f->s.st, "c1", &r), STORE_NOTFOUND); /* expired at 5600 too */

    /* The tokens go with their user, and only theirs. */
    add_token(f, "c2", f->carol, 3000);
    assert_int_equal(store_user_del(f->s.st, f->bob), STORE_OK);
    assert_int_equal(store_password_reset_get(f->s.st, "t3", &r), STORE_NOTFOUND);
    assert_int_equal(store_password_reset_get(f->s.st, "c2", &r), STORE_OK);
}

static void test_reset_requests(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 5; i++)
        assert_int_equal(store_password_reset_request_add(f->s.st, "192.0.2.1", 1000 + i), STORE_OK);
    assert_int_equal(store_password_reset_request_add(f->s.st, "192.0.2.2", 1000), STORE_OK);
    unsigned n = 0;
    assert_int_equal(store_password_reset_request_count(f->s.st, "192.0.2.1", 1000, &n), STORE_OK);
    assert_int_equal(n, 5);
    assert_int_equal(store_password_reset_request_count(f->s.st, "192.0.2.1", 1003, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_password_reset_request_count(f->s.st, "192.0.2.9", 0, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_password_reset_request_purge(f->s.st, 1003), STORE_OK);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM password_reset_requests"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_policy, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_set_password_ends_other_sessions, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_reset_tokens, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_reset_requests, setup, tmp_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
