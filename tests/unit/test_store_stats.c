/*
 * test_store_stats.c — store.h's per-minute statistics on a temporary SQLite
 * store: each counter is moved by the store call that makes its change
 * (accepted by store_message_insert per hosted recipient domain, delivered,
 * deferred and bounced by store_rcpt_update, diverted by store_mailbox_divert,
 * redelivered by store_mailbox_redelivered), only when the change happens,
 * never for domains we do not host, never by a rolled-back transaction; the
 * listing by domain, customer and for all, sparse and by minute; the purge.
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
    int64_t acme_c, beta_c;     /* customers */
    int64_t acme, other, beta;  /* acme.test and other.test (acme), beta.test (beta) */
    int64_t bob, carol;         /* @acme.test */
};

static int setup(void **state)
{
    struct fixture *f = tmp_store_setup(sizeof *f, "test_store_stats");
    f->acme_c = tmp_customer_add(f->s.st, "acme");
    f->beta_c = tmp_customer_add(f->s.st, "beta");
    f->acme = tmp_domain_add(f->s.st, f->acme_c, "acme.test");
    f->other = tmp_domain_add(f->s.st, f->acme_c, "other.test");
    f->beta = tmp_domain_add(f->s.st, f->beta_c, "beta.test");
    f->bob = tmp_user_add(f->s.st, f->acme, "bob@acme.test", ROLE_USER, 1);
    f->carol = tmp_user_add(f->s.st, f->acme, "carol@acme.test", ROLE_USER, 1);
    assert_int_equal(store_alias_add(f->s.st, f->bob, "sales@acme.test"), STORE_OK);
    *state = f;
    return 0;
}

/* The sums over all minutes from `from` on, of one domain / customer / all. */
struct sums {
    uint64_t n[STAT_NCOUNTERS];
    int minutes;
    int64_t first, last;
};

static int add_minute(const struct store_stats_minute *m, void *arg)
{
    struct sums *s = arg;
    if (s->minutes && m->minute <= s->last)
        fail_msg("minutes out of order: %lld after %lld", (long long)m->minute, (long long)s->last);
    if (!s->minutes)
        s->first = m->minute;
    s->last = m->minute;
    s->minutes++;
    for (int i = 0; i < STAT_NCOUNTERS; i++)
        s->n[i] += m->n[i];
    return 0;
}

static struct sums sums(struct fixture *f, int64_t customer, int64_t domain, int64_t from)
{
    struct sums s = {0};
    assert_int_equal(store_stats_list(f->s.st, customer, domain, from, add_minute, &s), STORE_OK);
    return s;
}

static void queue_msg(struct fixture *f, const char *id, int64_t received, const char *const *rcpts, size_t n)
{
    assert_int_equal(store_blob_add(f->s.st, BLOB_A, 500, 300), STORE_OK);
    struct store_msg_new m = {
        .size = 500, .sender = "alice@example.org", .prefix = "", .received = received,
        .client_addr = "192.0.2.1", .helo = "client.example.org", .direction = DIR_INBOUND,
        .nrcpt = n, .rcpts = rcpts,
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

static struct rcpts rcpts_of(struct fixture *f, const char *msg_id)
{
    struct rcpts c = {0};
    assert_int_equal(store_rcpt_list(f->s.st, msg_id, collect_rcpt, &c), STORE_OK);
    return c;
}

static void test_accepted_per_hosted_domain(void **state)
{
    struct fixture *f = *state;
    int64_t now = time_now();
    /* Runs of one domain, a domain met twice, and one we do not host. */
    const char *rcpts[] = {"bob@acme.test", "Carol@ACME.test", "x@example.org", "d@other.test", "sales@acme.test"};
    queue_msg(f, "00000000000000A1", now, rcpts, 5);
    assert_int_equal(sums(f, 0, f->acme, 0).n[STAT_ACCEPTED], 3);
    assert_int_equal(sums(f, 0, f->other, 0).n[STAT_ACCEPTED], 1);
    assert_int_equal(sums(f, 0, f->beta, 0).n[STAT_ACCEPTED], 0);
    assert_int_equal(sums(f, f->acme_c, 0, 0).n[STAT_ACCEPTED], 4);
    assert_int_equal(sums(f, 0, 0, 0).n[STAT_ACCEPTED], 4); /* example.org is not ours: not counted */
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM stats_minute"), 2);

    /* A refused insert (its queue ID is taken) counts nothing. */
    assert_int_equal(store_blob_add(f->s.st, BLOB_A, 500, 300), STORE_OK);
    struct store_msg_new dup = {.size = 1, .sender = "", .prefix = "", .received = now, .client_addr = "",
                                .helo = "", .nrcpt = 1, .rcpts = rcpts};
    snprintf(dup.id, sizeof dup.id, "00000000000000A1");
    snprintf(dup.blob, sizeof dup.blob, "%s", BLOB_A);
    assert_int_equal(store_message_insert(f->s.st, &dup), STORE_EXISTS);
    assert_int_equal(sums(f, 0, f->acme, 0).n[STAT_ACCEPTED], 3);
}

static void test_outcomes(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"bob@acme.test", "carol@acme.test", "nobody@acme.test", "x@example.org"};
    queue_msg(f, "00000000000000B1", time_now(), rcpts, 4);
    struct rcpts r = rcpts_of(f, "00000000000000B1");
    assert_int_equal(r.n, 4);
    assert_int_equal(store_rcpt_update(f->s.st, r.r[0].id, RCPT_SENT, 1, 0, "250 ok"), STORE_OK);
    assert_int_equal(store_rcpt_update(f->s.st, r.r[1].id, RCPT_QUEUED, 1, 0, "451 later"), STORE_OK);
    assert_int_equal(store_rcpt_update(f->s.st, r.r[1].id, RCPT_QUEUED, 2, 0, "451 later"), STORE_OK);
    assert_int_equal(store_rcpt_update(f->s.st, r.r[2].id, RCPT_BOUNCED, 1, 0, "550 no"), STORE_OK);
    /* Mail to the internet is not counted; a recipient that is gone neither. */
    assert_int_equal(store_rcpt_update(f->s.st, r.r[3].id, RCPT_SENT, 1, 0, "250 ok"), STORE_OK);
    assert_int_equal(store_rcpt_update(f->s.st, 99999, RCPT_SENT, 1, 0, "250 ok"), STORE_NOTFOUND);
    struct sums s = sums(f, 0, 0, 0);
    assert_int_equal(s.n[STAT_ACCEPTED], 3);
    assert_int_equal(s.n[STAT_DELIVERED], 1);
    assert_int_equal(s.n[STAT_DEFERRED], 2); /* each deferral counts */
    assert_int_equal(s.n[STAT_BOUNCED], 1);
    assert_int_equal(s.n[STAT_DIVERTED], 0);
    assert_int_equal(s.n[STAT_REDELIVERED], 0);
}

static void test_divert_and_redeliver(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"bob@acme.test", "sales@acme.test", "carol@acme.test"};
    queue_msg(f, "00000000000000C1", time_now(), rcpts, 3);
    struct rcpts r = rcpts_of(f, "00000000000000C1");
    int64_t bob = 0, carol = 0, again = 0;
    assert_int_equal(store_mailbox_divert(f->s.st, r.r[0].id, f->bob, 0, time_now(), &bob), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->s.st, r.r[1].id, f->bob, 0, time_now(), NULL), STORE_OK);
    assert_int_equal(store_mailbox_divert(f->s.st, r.r[2].id, f->carol, 0, time_now(), &carol), STORE_OK);
    /* Diverted already: nothing changes, nothing is counted. */
    assert_int_equal(store_mailbox_divert(f->s.st, r.r[0].id, f->bob, 0, time_now(), &again), STORE_OK);
    assert_int_equal(again, bob);
    assert_int_equal(sums(f, 0, f->acme, 0).n[STAT_DIVERTED], 3);

    /* bob's entry stands for two of his addresses: two copies go back. */
    assert_int_equal(store_mailbox_redelivered(f->s.st, bob), STORE_OK);
    assert_int_equal(sums(f, 0, f->acme, 0).n[STAT_REDELIVERED], 2);
    assert_int_equal(store_mailbox_redelivered(f->s.st, bob), STORE_OK); /* done already: not again */
    assert_int_equal(sums(f, 0, f->acme, 0).n[STAT_REDELIVERED], 2);
    /* carol deleted hers: it is never re-delivered, so never counted. */
    assert_int_equal(store_mailbox_delete(f->s.st, carol), STORE_OK);
    assert_int_equal(store_mailbox_redelivered(f->s.st, carol), STORE_NOTFOUND);
    assert_int_equal(sums(f, 0, f->acme, 0).n[STAT_REDELIVERED], 2);
}

static void test_rolled_back_counts_nothing(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"bob@acme.test"};
    assert_int_equal(store_begin(f->s.st), STORE_OK);
    queue_msg(f, "00000000000000D1", time_now(), rcpts, 1);
    struct rcpts r = rcpts_of(f, "00000000000000D1");
    assert_int_equal(store_rcpt_update(f->s.st, r.r[0].id, RCPT_SENT, 1, 0, "250 ok"), STORE_OK);
    assert_int_equal(store_rollback(f->s.st), STORE_OK);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM stats_minute"), 0);
}

static void test_list_scopes_minutes_and_purge(void **state)
{
    struct fixture *f = *state;
    const int64_t t0 = 1700000000 - 1700000000 % 60; /* a minute's start */
    assert_int_equal(store_stats_add(f->s.st, f->acme, STAT_ACCEPTED, t0 + 5, 2), STORE_OK);
    assert_int_equal(store_stats_add(f->s.st, f->acme, STAT_ACCEPTED, t0 + 59, 1), STORE_OK); /* same minute */
    assert_int_equal(store_stats_add(f->s.st, f->other, STAT_DIVERTED, t0 + 60, 4), STORE_OK);
    assert_int_equal(store_stats_add(f->s.st, f->beta, STAT_BOUNCED, t0 + 600, 7), STORE_OK);
    assert_int_equal(store_stats_add(f->s.st, f->acme, STAT_DELIVERED, t0 + 3600, 0), STORE_OK); /* nothing */
    assert_int_equal(store_stats_add(f->s.st, f->acme, 42, t0, 1), STORE_ERR);
    assert_int_equal(store_stats_add(f->s.st, 4242, STAT_ACCEPTED, t0, 1), STORE_NOTFOUND); /* no such domain */

    struct sums all = sums(f, 0, 0, t0);
    assert_int_equal(all.minutes, 3); /* sparse: only minutes in which something happened */
    assert_int_equal(all.first, t0);
    assert_int_equal(all.last, t0 + 600);
    assert_int_equal(all.n[STAT_ACCEPTED], 3);
    assert_int_equal(all.n[STAT_DIVERTED], 4);
    assert_int_equal(all.n[STAT_BOUNCED], 7);

    /* A customer sees its own domains summed, never another customer's. */
    struct sums acme = sums(f, f->acme_c, 0, t0);
    assert_int_equal(acme.minutes, 2);
    assert_int_equal(acme.n[STAT_ACCEPTED], 3);
    assert_int_equal(acme.n[STAT_DIVERTED], 4);
    assert_int_equal(acme.n[STAT_BOUNCED], 0);
    struct sums beta = sums(f, f->beta_c, 0, t0);
    assert_int_equal(beta.minutes, 1);
    assert_int_equal(beta.n[STAT_BOUNCED], 7);
    assert_int_equal(beta.n[STAT_ACCEPTED], 0);
    struct sums one = sums(f, 0, f->other, t0);
    assert_int_equal(one.minutes, 1);
    assert_int_equal(one.first, t0 + 60);

    /* from: the minute that holds it counts whole. */
    struct sums later = sums(f, 0, 0, t0 + 61);
    assert_int_equal(later.minutes, 2);
    assert_int_equal(later.first, t0 + 60);

    unsigned purged = 0;
    assert_int_equal(store_stats_purge(f->s.st, t0 + 60, &purged), STORE_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(sums(f, 0, 0, 0).minutes, 2);
    assert_int_equal(store_stats_purge(f->s.st, t0 + 100000, &purged), STORE_OK);
    assert_int_equal(purged, 2);
    assert_int_equal(sums(f, 0, 0, 0).minutes, 0);
}

static void test_domain_delete_takes_its_minutes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_stats_add(f->s.st, f->beta, STAT_ACCEPTED, 6000, 1), STORE_OK);
    /* SQLite enforces foreign keys only on a connection that asks for it. */
    tmp_raw_exec(&f->s.t, tmp_is_pg(&f->s.t) ? "DELETE FROM domains WHERE name = 'beta.test'"
                                             : "PRAGMA foreign_keys=ON; DELETE FROM domains WHERE name = 'beta.test'");
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM stats_minute"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accepted_per_hosted_domain, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_outcomes, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_divert_and_redeliver, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_rolled_back_counts_nothing, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_list_scopes_minutes_and_purge, setup, tmp_store_teardown),
        cmocka_unit_test_setup_teardown(test_domain_delete_takes_its_minutes, setup, tmp_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
