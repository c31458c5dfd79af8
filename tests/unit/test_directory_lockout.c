/*
 * test_directory_lockout.c — login lockout counting (directory/lockout.c) over a real
 * store in a temporary data_dir, and the session rows it sits next to
 * (store_sessions.c): attempts counted before the check, a user's aliases
 * sharing one count, the window slides, accounts and addresses count apart,
 * unknown and known accounts alike, a right password takes its count back.
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
    directory_lockout_key_name("Bob@ACME.test", k, sizeof k);
    assert_string_equal(k, "account:bob@acme.test");
    directory_lockout_key_user(42, k, sizeof k);
    assert_string_equal(k, "user:42");
    directory_lockout_key_addr("192.0.2.7", k, sizeof k);
    assert_string_equal(k, "addr:192.0.2.7");
}

static int begin(struct store *st, const char *login, const char *ip, int64_t at, struct directory_login_attempt *a)
{
    struct directory_login_attempt tmp;
    return directory_login_attempt_begin(st, &directory_lockout_default, login, ip, at, a ? a : &tmp);
}

/* One wrong password: counted, checked, settled. */
static int wrong(struct store *st, const char *login, const char *ip, int64_t at)
{
    struct directory_login_attempt a;
    int r = begin(st, login, ip, at, &a);
    if (r == DIRECTORY_LOGIN_GO)
        assert_int_equal(directory_login_attempt_failed(st, &a), STORE_OK);
    return r;
}

static int64_t make_bob(struct fx *f)
{
    char err[256];
    assert_int_equal(directory_customer_add(f->st, "acme", err, sizeof err), 0);
    assert_int_equal(directory_domain_add(f->st, "acme.test", "acme", "127.0.0.1:25", err, sizeof err), 0);
    assert_int_equal(directory_user_add(f->st, "bob@acme.test", "Bob", NULL, NULL, 1, err, sizeof err), 0);
    assert_int_equal(directory_alias_add(f->st, "bob@acme.test", "sales@acme.test", err, sizeof err), 0);
    struct store_user u;
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &u), STORE_OK);
    return u.id;
}

/* Attempts are counted before the check, and a user's aliases share one count
 * (the review found 5 more guesses per alias when the key was the name typed). */
static void test_account_counted_before_check(void **state)
{
    struct fx *f = *state;
    const struct directory_lockout_policy *p = &directory_lockout_default;
    int64_t bob = make_bob(f);
    int64_t t0 = 1800000000;
    const char *names[] = {"bob@acme.test", "SALES@acme.test", "sales@acme.test", "Bob@ACME.test", "bob@acme.test"};
    for (unsigned i = 0; i < p->account_max; i++)
        assert_int_equal(wrong(f->st, names[i], "192.0.2.1", t0 + i), DIRECTORY_LOGIN_GO);
    /* locked by any of its names, from any address; not counted again */
    assert_int_equal(begin(f->st, "sales@acme.test", "192.0.2.9", t0 + 10, NULL), DIRECTORY_LOGIN_LOCKED);
    assert_int_equal(begin(f->st, "bob@acme.test", "192.0.2.9", t0 + 10, NULL), DIRECTORY_LOGIN_LOCKED);
    char k[64];
    unsigned n = 0;
    directory_lockout_key_user(bob, k, sizeof k);
    assert_int_equal(store_login_failure_count(f->st, k, 0, &n), STORE_OK);
    assert_int_equal(n, p->account_max);
    directory_lockout_key_addr("192.0.2.9", k, sizeof k);
    assert_int_equal(store_login_failure_count(f->st, k, 0, &n), STORE_OK);
    assert_int_equal(n, 0);
    /* someone else is not locked */
    assert_int_equal(wrong(f->st, "carol@acme.test", "192.0.2.9", t0 + 10), DIRECTORY_LOGIN_GO);
    /* the window slides: the first attempt leaves it at t0 + window + 1 */
    assert_int_equal(begin(f->st, "bob@acme.test", "192.0.2.9", t0 + p->window, NULL), DIRECTORY_LOGIN_LOCKED);
    assert_int_equal(begin(f->st, "bob@acme.test", "192.0.2.9", t0 + p->window + 1, NULL), DIRECTORY_LOGIN_GO);
}

/* Attempts in flight (counted, not yet checked) fill the limit: the next one
 * waits (BUSY) rather than being checked or refused; once they fail, it is
 * refused; a pending row whose checker is gone counts as a failure. */
static void test_attempts_in_flight(void **state)
{
    struct fx *f = *state;
    const struct directory_lockout_policy *p = &directory_lockout_default;
    int64_t bob = make_bob(f);
    int64_t t0 = 1800000000;
    struct directory_login_attempt a[5];
    for (unsigned i = 0; i < p->account_max; i++)
        assert_int_equal(begin(f->st, "sales@acme.test", "192.0.2.1", t0, &a[i]), DIRECTORY_LOGIN_GO);
    assert_int_equal(begin(f->st, "bob@acme.test", "192.0.2.1", t0, NULL), DIRECTORY_LOGIN_BUSY);
    /* one of them had the right password: room for one more */
    assert_int_equal(directory_login_attempt_succeeded(f->st, bob, &a[0]), STORE_OK);
    assert_int_equal(begin(f->st, "bob@acme.test", "192.0.2.1", t0, &a[0]), DIRECTORY_LOGIN_GO);
    for (unsigned i = 0; i < p->account_max; i++)
        assert_int_equal(directory_login_attempt_failed(f->st, &a[i]), STORE_OK);
    assert_int_equal(begin(f->st, "bob@acme.test", "192.0.2.1", t0 + 1, NULL), DIRECTORY_LOGIN_LOCKED);

    /* carol's checker died with her attempts pending: busy for a while, then locked */
    char err[256];
    assert_int_equal(directory_user_add(f->st, "carol@acme.test", "Carol", NULL, NULL, 1, err, sizeof err), 0);
    for (unsigned i = 0; i < p->account_max; i++)
        assert_int_equal(begin(f->st, "carol@acme.test", "192.0.2.2", t0, NULL), DIRECTORY_LOGIN_GO);
    assert_int_equal(begin(f->st, "carol@acme.test", "192.0.2.2", t0 + DIRECTORY_LOGIN_PENDING_MAX, NULL),
                     DIRECTORY_LOGIN_BUSY);
    assert_int_equal(begin(f->st, "carol@acme.test", "192.0.2.2", t0 + DIRECTORY_LOGIN_PENDING_MAX + 1, NULL),
                     DIRECTORY_LOGIN_LOCKED);
}

/* A right password takes its attempt back: the user's count goes, and the
 * address's row of this attempt (but not its other failures). */
static void test_success_takes_the_count_back(void **state)
{
    struct fx *f = *state;
    int64_t bob = make_bob(f);
    int64_t t0 = 1800000000;
    assert_int_equal(wrong(f->st, "ghost@acme.test", "192.0.2.1", t0), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(wrong(f->st, "sales@acme.test", "192.0.2.1", t0 + 1), 0);
    struct directory_login_attempt a;
    assert_int_equal(begin(f->st, "bob@acme.test", "192.0.2.1", t0 + 2, &a), 0);
    assert_true(a.account_row > 0 && a.addr_row > 0);
    assert_int_equal(directory_login_attempt_succeeded(f->st, bob, &a), STORE_OK);
    char k[64];
    unsigned n = 99;
    directory_lockout_key_user(bob, k, sizeof k);
    assert_int_equal(store_login_failure_count(f->st, k, 0, &n), STORE_OK);
    assert_int_equal(n, 0);
    directory_lockout_key_addr("192.0.2.1", k, sizeof k);
    assert_int_equal(store_login_failure_count(f->st, k, 0, &n), STORE_OK);
    assert_int_equal(n, 4); /* ghost's and the three wrong ones stay */
    /* a new password clears too */
    assert_int_equal(wrong(f->st, "bob@acme.test", "192.0.2.1", t0 + 3), 0);
    assert_int_equal(directory_lockout_clear_user(f->st, bob), STORE_OK);
    directory_lockout_key_user(bob, k, sizeof k);
    assert_int_equal(store_login_failure_count(f->st, k, 0, &n), STORE_OK);
    assert_int_equal(n, 0);
}

static void test_address_and_unknown_accounts(void **state)
{
    struct fx *f = *state;
    const struct directory_lockout_policy *p = &directory_lockout_default;
    int64_t t0 = 1800000000;
    char email[64];
    for (unsigned i = 0; i < p->addr_max - 1; i++) {
        snprintf(email, sizeof email, "ghost%u@nowhere.test", i);
        assert_int_equal(wrong(f->st, email, "198.51.100.7", t0), DIRECTORY_LOGIN_GO);
    }
    assert_int_equal(wrong(f->st, "not an address", "198.51.100.7", t0), DIRECTORY_LOGIN_GO);
    assert_int_equal(begin(f->st, "bob@acme.test", "198.51.100.7", t0 + 1, NULL), DIRECTORY_LOGIN_LOCKED);
    assert_int_equal(wrong(f->st, "bob@acme.test", "198.51.100.8", t0 + 1), DIRECTORY_LOGIN_GO);
    /* unknown names lock out like known ones */
    for (unsigned i = 1; i < p->account_max; i++)
        assert_int_equal(wrong(f->st, "ghost0@nowhere.test", "198.51.100.9", t0 + 1), DIRECTORY_LOGIN_GO);
    assert_int_equal(begin(f->st, "GHOST0@nowhere.test", "198.51.100.10", t0 + 1, NULL), DIRECTORY_LOGIN_LOCKED);
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
        cmocka_unit_test_setup_teardown(test_account_counted_before_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_takes_the_count_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_and_unknown_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_rows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
