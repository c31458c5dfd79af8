/*
 * test_directory_lockout.c — login lockout counting (directory/lockout.c) over a real
 * store in a temporary data_dir, and the session rows it sits next to
 * (store_sessions.c): the window slides, accounts and addresses count apart,
 * unknown and known accounts alike, purges and clears.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_store_fixture.h"
#include "directory/directory.h"

struct fx {
    struct tmp_data_dir dir;
    struct store *st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char err[256];
    if (!f || tmp_data_dir_make(&f->dir, "lb_directory_lockout") != 0 || store_open(&f->dir.cfg, &f->st, err, sizeof err))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    tmp_data_dir_remove(&f->dir);
    free(f);
    return 0;
}

static void test_pure_decision(void **state)
{
    (void)state;
    const struct directory_lockout_policy *p = &directory_lockout_default;
    assert_int_equal(p->account_max, 5);
    assert_int_equal(p->addr_max, 20);
    assert_false(directory_lockout_locked(p, 4, 19));
    assert_true(directory_lockout_locked(p, 5, 0));
    assert_true(directory_lockout_locked(p, 0, 20));
    char k[400];
    directory_lockout_key_account("Bob@ACME.test", k, sizeof k);
    assert_string_equal(k, "account:bob@acme.test");
    directory_lockout_key_addr("192.0.2.7", k, sizeof k);
    assert_string_equal(k, "addr:192.0.2.7");
}

static void record_failure(struct store *st, const char *email, const char *ip, int64_t at)
{
    char k[400];
    directory_lockout_key_account(email, k, sizeof k);
    assert_int_equal(store_login_failure_add(st, k, at), STORE_OK);
    directory_lockout_key_addr(ip, k, sizeof k);
    assert_int_equal(store_login_failure_add(st, k, at), STORE_OK);
}

static void test_account_window(void **state)
{
    struct fx *f = *state;
    const struct directory_lockout_policy *p = &directory_lockout_default;
    int64_t t0 = 1800000000;
    for (int i = 0; i < 4; i++)
        record_failure(f->st, "bob@acme.test", "192.0.2.1", t0 + i);
    assert_int_equal(directory_lockout_check(f->st, p, "bob@acme.test", "192.0.2.9", t0 + 10), 0);
    record_failure(f->st, "BOB@acme.test", "192.0.2.2", t0 + 5); /* another spelling, another address */
    assert_int_equal(directory_lockout_check(f->st, p, "bob@acme.test", "192.0.2.9", t0 + 10), 1);
    assert_int_equal(directory_lockout_check(f->st, p, "carol@acme.test", "192.0.2.9", t0 + 10), 0);
    /* the window slides: the first failure leaves it at t0 + window + 1 */
    assert_int_equal(directory_lockout_check(f->st, p, "bob@acme.test", "192.0.2.9", t0 + p->window), 1);
    assert_int_equal(directory_lockout_check(f->st, p, "bob@acme.test", "192.0.2.9", t0 + p->window + 1), 0);
    /* a successful login clears the account */
    char k[400];
    directory_lockout_key_account("bob@acme.test", k, sizeof k);
    assert_int_equal(store_login_failure_clear(f->st, k), STORE_OK);
    assert_int_equal(directory_lockout_check(f->st, p, "bob@acme.test", "192.0.2.9", t0 + 10), 0);
}

static void test_address_and_unknown_accounts(void **state)
{
    struct fx *f = *state;
    const struct directory_lockout_policy *p = &directory_lockout_default;
    int64_t t0 = 1800000000;
    char email[64];
    for (int i = 0; i < 19; i++) {
        snprintf(email, sizeof email, "ghost%d@nowhere.test", i);
        record_failure(f->st, email, "198.51.100.7", t0);
    }
    assert_int_equal(directory_lockout_check(f->st, p, "bob@acme.test", "198.51.100.7", t0 + 1), 0);
    record_failure(f->st, "not an address", "198.51.100.7", t0);
    assert_int_equal(directory_lockout_check(f->st, p, "bob@acme.test", "198.51.100.7", t0 + 1), 1);
    assert_int_equal(directory_lockout_check(f->st, p, "bob@acme.test", "198.51.100.8", t0 + 1), 0);
    /* purge drops what no longer counts */
    unsigned n = 99;
    char k[400];
    directory_lockout_key_addr("198.51.100.7", k, sizeof k);
    assert_int_equal(store_login_failure_purge(f->st, t0 + 1), STORE_OK);
    assert_int_equal(store_login_failure_count(f->st, k, 0, &n), STORE_OK);
    assert_int_equal(n, 0);
}

static void test_session_rows(void **state)
{
    struct fx *f = *state;
    char err[256];
    assert_int_equal(directory_customer_add(f->st, "acme", err, sizeof err), 0);
    assert_int_equal(directory_domain_add(f->st, "acme.test", "acme", "127.0.0.1:25", err, sizeof err), 0);
    assert_int_equal(directory_user_add(f->st, "bob@acme.test", "Bob", NULL, NULL, 1, err, sizeof err), 0);
    struct store_user u;
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &u), STORE_OK);

    struct store_session s = {.user_id = u.id, .created = 1000, .last_seen = 1000};
    snprintf(s.token_hash, sizeof s.token_hash, "%064d", 1);
    snprintf(s.csrf, sizeof s.csrf, "%064d", 2);
    assert_int_equal(store_session_add(f->st, &s), STORE_OK);
    assert_int_equal(store_session_add(f->st, &s), STORE_EXISTS);
    struct store_session bad = s;
    snprintf(bad.token_hash, sizeof bad.token_hash, "%064d", 3);
    bad.user_id = u.id + 100;
    assert_int_equal(store_session_add(f->st, &bad), STORE_NOTFOUND);

    struct store_session got;
    assert_int_equal(store_session_get(f->st, s.token_hash, &got), STORE_OK);
    assert_string_equal(got.csrf, s.csrf);
    assert_int_equal(got.user_id, u.id);
    assert_int_equal(store_session_touch(f->st, s.token_hash, 2000), STORE_OK);
    assert_int_equal(store_session_get(f->st, s.token_hash, &got), STORE_OK);
    assert_int_equal(got.last_seen, 2000);

    unsigned purged = 9;
    assert_int_equal(store_session_purge(f->st, 1500, 0, &purged), STORE_OK);
    assert_int_equal(purged, 0);
    assert_int_equal(store_session_purge(f->st, 2001, 0, &purged), STORE_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(store_session_get(f->st, s.token_hash, &got), STORE_NOTFOUND);
    assert_int_equal(store_session_touch(f->st, s.token_hash, 3000), STORE_NOTFOUND);
    assert_int_equal(store_session_del(f->st, s.token_hash), STORE_NOTFOUND);

    /* sessions go with their user */
    assert_int_equal(store_session_add(f->st, &s), STORE_OK);
    assert_int_equal(directory_user_del(f->st, "bob@acme.test", err, sizeof err), 0);
    assert_int_equal(store_session_get(f->st, s.token_hash, &got), STORE_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pure_decision),
        cmocka_unit_test_setup_teardown(test_account_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_and_unknown_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_rows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
