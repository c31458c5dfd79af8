/*
 * test_directory_admin_del.c — user unlock, domain del and customer del on a
 * real store (admin_del.c): what is refused and why, what --force drops and
 * what it never touches (the archive, other domains' mail).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_directory_fixture.h"
#include "util/log.h"

static int setup(void **state)
{
    return directory_fixture_setup(state, "test_directory_admin_del");
}

/* acme (acme.test, acme.example), other (other.test); bob in acme.test with
 * aliases in both of acme's domains, carol in acme.example with an alias in
 * acme.test, dave in other.test. */
static void populate(struct fixture *f)
{
    assert_ok(directory_customer_add(f->st, "acme", ERR));
    assert_ok(directory_customer_add(f->st, "other", ERR));
    assert_ok(directory_domain_add(f->st, "acme.test", "acme", "mx.acme.test", ERR));
    assert_ok(directory_domain_add(f->st, "acme.example", "acme", "mx.acme.test", ERR));
    assert_ok(directory_domain_add(f->st, "other.test", "other", "mx.other.test", ERR));
    assert_ok(directory_user_add(f->st, "bob@acme.test", "Bob", NULL, NULL, 1, ERR));
    assert_ok(directory_alias_add(f->st, "bob@acme.test", "bobby@acme.test", ERR));
    assert_ok(directory_alias_add(f->st, "bob@acme.test", "bob@acme.example", ERR));
    assert_ok(directory_user_add(f->st, "carol@acme.example", "Carol", NULL, NULL, 1, ERR));
    assert_ok(directory_alias_add(f->st, "carol@acme.example", "carol@acme.test", ERR));
    assert_ok(directory_user_add(f->st, "dave@other.test", "Dave", NULL, NULL, 1, ERR));
}

static struct store_user user(struct fixture *f, const char *email)
{
    struct store_user u;
    if (store_user_get(f->st, email, &u) != STORE_OK)
        fail_msg("no user %s", email);
    return u;
}

static unsigned failures(struct fixture *f, const char *key)
{
    unsigned n = 0;
    assert_int_equal(store_login_failure_count(f->st, key, 0, &n), STORE_OK);
    return n;
}

/* ---------------------------------------------------------------- unlock */

static void test_unlock(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct store_user bob = user(f, "bob@acme.test");
    char ukey[64], nkey[ADDR_MAX + 64], akey[ADDR_MAX + 64], ipkey[128], dkey[64];
    directory_lockout_key_user(bob.id, ukey, sizeof ukey);
    directory_lockout_key_name("bobby@acme.test", nkey, sizeof nkey);
    directory_lockout_key_name("bob@acme.test", akey, sizeof akey);
    directory_lockout_key_addr("192.0.2.1", ipkey, sizeof ipkey);
    directory_lockout_key_user(user(f, "dave@other.test").id, dkey, sizeof dkey);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_login_failure_add(f->st, ukey, 100 + i, 0, NULL), STORE_OK);
        assert_int_equal(store_login_failure_add(f->st, nkey, 100 + i, 0, NULL), STORE_OK);
        assert_int_equal(store_login_failure_add(f->st, akey, 100 + i, 0, NULL), STORE_OK);
        assert_int_equal(store_login_failure_add(f->st, ipkey, 100 + i, 0, NULL), STORE_OK);
        assert_int_equal(store_login_failure_add(f->st, dkey, 100 + i, 0, NULL), STORE_OK);
    }
    assert_true(directory_lockout_locked(&directory_lockout_default, failures(f, ukey), 0));

    /* By an alias, in any case. */
    assert_ok(directory_user_unlock(f->st, "BOBBY@acme.test", ERR));
    assert_int_equal(failures(f, ukey), 0);
    assert_int_equal(failures(f, nkey), 0);
    assert_int_equal(failures(f, akey), 0);
    assert_int_equal(failures(f, ipkey), 5); /* the client address's count is not the user's */
    assert_int_equal(failures(f, dkey), 5);  /* nor another user's */

    assert_refused_as(directory_user_unlock(f->st, "nobody@acme.test", ERR), DIR_NOTFOUND,
                      "user nobody@acme.test does not exist");
    assert_refused_as(directory_user_unlock(f->st, "not an address", ERR), DIR_INVALID,
                      "user \"not an address\" is not a valid address");
}

/* ---------------------------------------------------------------- domain del */

#define BLOB_A "abababababababababababababababababababababababababababababababab"

/* Queues a message from sender to rcpts; returns the first recipient row's id. */
static int64_t queue_msg(struct fixture *f, const char *qid, const char *sender, const char *const *rcpts, size_t n)
{
    assert_int_equal(store_blob_add(f->st, BLOB_A, 10, 10), STORE_OK);
    struct store_msg_new m = {.size = 10, .sender = sender, .received = 5, .nrcpt = n, .rcpts = rcpts};
    snprintf(m.id, sizeof m.id, "%s", qid);
    snprintf(m.blob, sizeof m.blob, "%s", BLOB_A);
    assert_int_equal(store_message_insert(f->st, &m), STORE_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT min(id) FROM recipients WHERE msg_id = '%s'", qid);
    return tmp_raw_count(&f->t, sql);
}

static int64_t count(struct fixture *f, const char *sql)
{
    return tmp_raw_count(&f->t, sql);
}

static void test_domain_del(void **state)
{
    struct fixture *f = *state;
    populate(f);
    /* Queued for acme.test (and other.test in the same message); a message
     * bob sent out; an archived copy. */
    const char *both[] = {"bob@acme.test", "dave@other.test"};
    queue_msg(f, "00000000000000A1", "x@example.org", both, 2);
    const char *one[] = {"carol@acme.test"};
    queue_msg(f, "00000000000000A2", "x@example.org", one, 1);
    const char *out[] = {"friend@example.org"};
    queue_msg(f, "00000000000000A3", "bob@acme.test", out, 1);
    struct store_archive_entry e = {.customer_id = 1, .direction = DIR_INBOUND, .received = 5, .size = 10};
    snprintf(e.msg_id, sizeof e.msg_id, "00000000000000A1");
    snprintf(e.blob, sizeof e.blob, BLOB_A);
    assert_int_equal(store_archive_add(f->st, &e, both, 1, NULL), STORE_OK);

    struct directory_domain_del_counts k;
    assert_refused_as(directory_domain_del(f->st, "Acme.Test", 0, &k, ERR), DIR_REFUSED,
                      "domain acme.test has 2 message(s) queued or held for it and 0 in continuity mailboxes waiting "
                      "for re-delivery; deliver them first, or delete with --force (which drops them)");
    assert_int_equal(k.queued, 2);
    assert_int_equal(k.users, 0);
    assert_int_equal(store_domain_get(f->st, "acme.test", &(struct store_domain){0}), STORE_OK);

    /* Delivered: the refusal is about mail still to go, not the history. */
    assert_int_equal(store_rcpt_update(f->st, queue_msg(f, "00000000000000A4", "x@example.org", one, 1), RCPT_SENT,
                                       1, 0, "250 ok"),
                     STORE_OK);

    assert_ok(directory_domain_del(f->st, "acme.test", 1, &k, ERR));
    assert_int_equal(k.users, 1);
    assert_int_equal(k.aliases, 3); /* bob's two, and carol's alias in acme.test */
    assert_int_equal(k.queued, 2);
    assert_int_equal(k.waiting, 0);
    assert_int_equal(store_domain_get(f->st, "acme.test", &(struct store_domain){0}), STORE_NOTFOUND);
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &(struct store_user){0}), STORE_NOTFOUND);
    int64_t owner;
    assert_int_equal(store_alias_get(f->st, "carol@acme.test", &owner), STORE_NOTFOUND);
    assert_int_equal(store_alias_get(f->st, "bob@acme.example", &owner), STORE_NOTFOUND);
    /* Carol (another domain) stays; dave's copy of the shared message and bob's
     * outbound message are still queued; the carol-only message is gone. */
    user(f, "carol@acme.example");
    assert_int_equal(count(f, "SELECT count(*) FROM recipients WHERE state = 0"), 2);
    assert_int_equal(count(f, "SELECT count(*) FROM recipients WHERE rcpt = 'dave@other.test' AND state = 0"), 1);
    assert_int_equal(count(f, "SELECT count(*) FROM recipients WHERE rcpt = 'friend@example.org' AND state = 0"), 1);
    assert_int_equal(count(f, "SELECT count(*) FROM messages WHERE id = '00000000000000A2'"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM archive"), 1); /* the archive keeps its entry */

    assert_refused_as(directory_domain_del(f->st, "acme.test", 1, NULL, ERR), DIR_NOTFOUND,
                      "domain acme.test is not hosted");
    assert_refused_as(directory_domain_del(f->st, "bad domain", 1, NULL, ERR), DIR_INVALID,
                      "\"bad domain\" is not a valid domain name");
}

/* Mail waiting in a continuity mailbox for re-delivery keeps the domain too. */
static void test_domain_del_waiting(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct store_user bob = user(f, "bob@acme.test");
    const char *one[] = {"bob@acme.test"};
    int64_t rcpt = queue_msg(f, "00000000000000B1", "x@example.org", one, 1);
    int64_t entry = 0;
    assert_int_equal(store_mailbox_divert(f->st, rcpt, bob.id, 0, 6, &entry), STORE_OK);
    /* and a login failure of bob's, which must not outlive him */
    char ukey[64];
    directory_lockout_key_user(bob.id, ukey, sizeof ukey);
    assert_int_equal(store_login_failure_add(f->st, ukey, 100, 0, NULL), STORE_OK);

    struct directory_domain_del_counts k;
    assert_refused_as(directory_domain_del(f->st, "acme.test", 0, &k, ERR), DIR_REFUSED,
                      "domain acme.test has 0 message(s) queued or held for it and 1 in continuity mailboxes waiting "
                      "for re-delivery; deliver them first, or delete with --force (which drops them)");
    assert_int_equal(k.waiting, 1);
    assert_ok(directory_domain_del(f->st, "acme.test", 1, &k, ERR));
    assert_int_equal(k.mailbox, 1);
    assert_int_equal(k.waiting, 1);
    assert_int_equal(count(f, "SELECT count(*) FROM mailbox"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM messages"), 0);
    assert_int_equal(failures(f, ukey), 0);

    /* A domain without mail goes without --force. */
    assert_ok(directory_domain_del(f->st, "acme.example", 0, &k, ERR));
    assert_int_equal(k.users, 1);
    assert_int_equal(count(f, "SELECT count(*) FROM users"), 1); /* dave */
}

/* ---------------------------------------------------------------- customer del */

static void test_customer_del(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_refused_as(directory_customer_del(f->st, "acme", ERR), DIR_REFUSED,
                      "customer acme still has 2 domain(s) (acme.example, acme.test); delete them first");
    assert_ok(directory_domain_del(f->st, "acme.test", 0, NULL, ERR));
    assert_ok(directory_domain_del(f->st, "acme.example", 0, NULL, ERR));
    struct directory_policy_changes ch = {.min_length = 12, .upper = -1, .lower = -1, .digit = -1, .special = -1};
    assert_ok(directory_password_policy_set(f->st, "acme", &ch, NULL, ERR));

    /* Archived mail is kept for the retention window, and so is its customer;
     * a legal hold first of all. */
    const char *rcpts[] = {"bob@acme.test"};
    assert_int_equal(store_blob_add(f->st, BLOB_A, 10, 10), STORE_OK);
    struct store_archive_entry e = {.customer_id = 1, .direction = DIR_INBOUND, .received = 86400, .size = 10};
    snprintf(e.msg_id, sizeof e.msg_id, "00000000000000C1");
    snprintf(e.blob, sizeof e.blob, BLOB_A);
    int64_t id;
    assert_int_equal(store_archive_add(f->st, &e, rcpts, 1, &id), STORE_OK);
    struct store_archive_hold h = {.customer_id = 1, .created = 1};
    assert_int_equal(store_archive_hold_add(f->st, &h, NULL), STORE_OK);
    assert_refused_as(directory_customer_del(f->st, "acme", ERR), DIR_REFUSED,
                      "customer acme has 1 legal hold(s) on its archive; release them first");
    assert_int_equal(store_archive_hold_del(f->st, 1, 0, 1), STORE_OK);
    assert_refused_as(directory_customer_del(f->st, "acme", ERR), DIR_REFUSED,
                      "customer acme still has 1 archived message(s) (the oldest from 1970-01-02T00:00:00Z), kept "
                      "for the archive retention window; it can be deleted once the retention purge has removed them");
    uint64_t purged;
    assert_int_equal(store_archive_purge(f->st, 86401, 10, &purged), STORE_OK);
    assert_int_equal(purged, 1);

    assert_ok(directory_customer_del(f->st, "acme", ERR));
    assert_int_equal(store_customer_get(f->st, "acme", &(struct store_customer){0}), STORE_NOTFOUND);
    assert_int_equal(count(f, "SELECT count(*) FROM password_policy"), 0);
    assert_refused_as(directory_customer_del(f->st, "acme", ERR), DIR_NOTFOUND, "customer acme does not exist");
    assert_refused_as(directory_customer_del(f->st, "", ERR), DIR_INVALID, "the customer name is missing");
    assert_int_equal(store_customer_get(f->st, "other", &(struct store_customer){0}), STORE_OK);
}

int main(void)
{
    log_init("test_directory_admin_del", "test", 1);
    log_set_level(LOG_LEVEL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_del_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customer_del, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
