/*
 * test_store_cluster.c — store.h's calls for several nodes, each node a
 * store connection with its own node_name on the same database: claims and
 * their leases (taken, skipped by the other node, renewed, taken over when
 * they expire, released), outcomes recorded only under the node's claim, the
 * lead (one holder, taken over when its session ends), heartbeats. Run on
 * SQLite (one node: claims and lead implicit) and PostgreSQL (_pg).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <time.h>

#include "test_store_fixture.h"

#define BLOB "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

struct fixture {
    struct tmp_store s; /* node n1 */
    struct store *n2;
};

static int setup(void **state)
{
    struct fixture *f = tmp_store_setup(sizeof *f, "test_store_cluster");
    snprintf(f->s.t.cfg.node_name, sizeof f->s.t.cfg.node_name, "n1");
    store_close(f->s.st);
    assert_int_equal(tmp_store_open(&f->s.t, &f->s.st), 0);
    struct config c2 = f->s.t.cfg;
    snprintf(c2.node_name, sizeof c2.node_name, "n2");
    char err[512];
    assert_int_equal(store_open(&c2, &f->n2, err, sizeof err), STORE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->n2);
    return tmp_store_teardown(state);
}

static void queue_three(struct fixture *f)
{
    const char *rcpts[] = {"a@acme.test", "b@acme.test", "c@acme.test"};
    assert_int_equal(store_blob_add(f->s.st, BLOB, 10, 10), STORE_OK);
    struct store_msg_new m = {.size = 10, .sender = "x@example.org", .received = 100, .direction = DIR_INBOUND,
                              .nrcpt = 3, .rcpts = rcpts};
    snprintf(m.id, sizeof m.id, "00000000000000C1");
    snprintf(m.blob, sizeof m.blob, "%s", BLOB);
    assert_int_equal(store_message_insert(f->s.st, &m), STORE_OK);
}

struct got {
    int64_t id[8];
    size_t n;
};

static int collect(const struct store_rcpt *r, void *arg)
{
    struct got *g = arg;
    g->id[g->n++] = r->id;
    return 0;
}

static size_t claim(struct store *st, int64_t now, int64_t until, size_t limit, struct got *g)
{
    *g = (struct got){0};
    assert_int_equal(store_rcpt_claim_due(st, now, until, limit, collect, g), STORE_OK);
    return g->n;
}

static void test_claims_and_leases(void **state)
{
    struct fixture *f = *state;
    queue_three(f);
    struct got g1, g2;
    assert_string_equal(store_node(f->s.st), "n1");
    assert_string_equal(store_node(f->n2), "n2");
    if (!tmp_is_pg(&f->s.t)) {
        /* One node: the claim is the runner's own in-flight set; nothing is written. */
        assert_int_equal(claim(f->s.st, 1000, 1060, 0, &g1), 3);
        assert_int_equal(claim(f->s.st, 1000, 1060, 0, &g1), 3);
        assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM recipients WHERE claim_node <> ''"), 0);
        return;
    }
    /* n1 takes two; n2 gets only the third while n1's lease lives. */
    assert_int_equal(claim(f->s.st, 1000, 1060, 2, &g1), 2);
    assert_int_equal(claim(f->n2, 1000, 1060, 0, &g2), 1);
    assert_int_equal(claim(f->n2, 1010, 1070, 0, &g2), 1); /* its own again */
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM recipients WHERE claim_node = 'n1'"), 2);
    /* n1 renews until 1200: at 1100 n2 still cannot take them. */
    assert_int_equal(store_claims_renew(f->s.st, 1200, 0), STORE_OK);
    assert_int_equal(claim(f->n2, 1100, 1160, 0, &g2), 1);
    /* n1 dies: at 1201 its lease is over and n2 takes its work. */
    assert_int_equal(claim(f->n2, 1201, 1300, 0, &g2), 3);
    /* n1's late outcome for a recipient n2 now holds is not recorded... */
    assert_int_equal(store_rcpt_update(f->s.st, g1.id[0], RCPT_SENT, 1, 0, "250 late"), STORE_NOTFOUND);
    struct store_rcpt r;
    assert_int_equal(store_rcpt_get(f->s.st, g1.id[0], &r), STORE_OK);
    assert_int_equal(r.state, RCPT_QUEUED);
    /* ...n2's is, and frees the claim. */
    assert_int_equal(store_rcpt_update(f->n2, g1.id[0], RCPT_SENT, 1, 0, "250 ok"), STORE_OK);
    assert_int_equal(tmp_raw_count(&f->s.t, "SELECT count(*) FROM recipients WHERE claim_node = 'n2'"), 2);
    /* n2 stops: its claims are free for n1 at once. */
    assert_int_equal(store_claims_release(f->n2, 1, 1), STORE_OK);
    assert_int_equal(claim(f->s.st, 1202, 1300, 0, &g1), 2);
}

static void test_lead(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_lead_try(f->s.st), 1);
    assert_int_equal(store_lead_try(f->s.st), 1); /* still ours */
    if (!tmp_is_pg(&f->s.t)) {
        assert_int_equal(store_lead_try(f->n2), 1); /* one node: always */
        assert_int_equal(store_work_lock_try(f->n2, STORE_WORK_LDAP_SYNC, 7), 1);
        return;
    }
    assert_int_equal(store_lead_try(f->n2), 0);
    /* Work locks: one node at a time per piece of work, independent of the lead. */
    assert_int_equal(store_work_lock_try(f->n2, STORE_WORK_LDAP_SYNC, 7), 1);
    assert_int_equal(store_work_lock_try(f->s.st, STORE_WORK_LDAP_SYNC, 7), 0);
    assert_int_equal(store_work_lock_try(f->s.st, STORE_WORK_LDAP_SYNC, 8), 1);
    assert_int_equal(store_work_unlock(f->n2, STORE_WORK_LDAP_SYNC, 7), STORE_OK);
    assert_int_equal(store_work_lock_try(f->s.st, STORE_WORK_LDAP_SYNC, 7), 1);
    /* The leader's session ends (the node died): n2 takes the lead. */
    store_close(f->s.st);
    assert_int_equal(tmp_store_open(&f->s.t, &f->s.st), 0);
    assert_int_equal(store_lead_try(f->n2), 1);
    assert_int_equal(store_lead_try(f->s.st), 0);
    assert_int_equal(store_lead_release(f->n2), STORE_OK);
    assert_int_equal(store_lead_try(f->s.st), 1);
}

struct nodes {
    struct store_node_info n[4];
    size_t count;
};

static int collect_node(const struct store_node_info *n, void *arg)
{
    struct nodes *x = arg;
    x->n[x->count++] = *n;
    return 0;
}

static void test_heartbeats(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_node_heartbeat(f->s.st, 500, 510, "0.12.0", "127.0.0.1:25"), STORE_OK);
    assert_int_equal(store_node_heartbeat(f->n2, 505, 511, "0.12.0", "127.0.0.2:25"), STORE_OK);
    assert_int_equal(store_node_heartbeat(f->s.st, 500, 520, "0.12.0", "127.0.0.1:25"), STORE_OK);
    assert_int_equal(store_lead_try(f->n2), 1);
    struct nodes x = {0};
    assert_int_equal(store_node_list(f->s.st, 520, collect_node, &x), STORE_OK);
    assert_int_equal(x.count, 2);
    assert_string_equal(x.n[0].name, "n1");
    assert_int_equal(x.n[0].started, 500);
    assert_int_equal(x.n[0].heartbeat, 520);
    assert_string_equal(x.n[1].addr, "127.0.0.2:25");
    if (tmp_is_pg(&f->s.t)) {
        assert_int_equal(x.n[0].lead, 0);
        assert_int_equal(x.n[1].lead, 1);
    }
    assert_int_equal(store_node_del(f->s.st, "n2"), STORE_OK);
    assert_int_equal(store_node_del(f->s.st, "n2"), STORE_NOTFOUND);
    /* A wake-up outside a transaction goes at once; inside, with the commit. */
    assert_int_equal(store_notify(f->s.st, "queue"), STORE_OK);
}

/* The server ends a node's session (a restart, a failover): outside a
 * transaction the next statement runs on a new connection; inside one the
 * transaction fails as a whole and nothing of it stays. */
static void test_reconnect(void **state)
{
    struct fixture *f = *state;
    if (!tmp_is_pg(&f->s.t))
        skip();
    static const char kill_n1[] =
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'lifeboat@n1'";
    int64_t id = 0;
    assert_int_equal(store_customer_add(f->s.st, "before", &id), STORE_OK);
    assert_int_equal(tmp_raw_count(&f->s.t, kill_n1), 1);
    struct store_customer c;
    assert_int_equal(store_customer_get(f->s.st, "before", &c), STORE_OK); /* reconnected */
    assert_int_equal(store_lead_try(f->s.st), 1);

    assert_int_equal(store_begin(f->s.st), STORE_OK);
    assert_int_equal(store_customer_add(f->s.st, "lost", NULL), STORE_OK);
    assert_int_equal(tmp_raw_count(&f->s.t, kill_n1), 1);
    assert_true(store_customer_add(f->s.st, "after", NULL) != STORE_OK);
    assert_true(store_customer_add(f->s.st, "after", NULL) != STORE_OK); /* still the dead transaction */
    assert_true(store_commit(f->s.st) != STORE_OK);
    store_rollback(f->s.st);
    assert_int_equal(store_customer_get(f->s.st, "lost", &c), STORE_NOTFOUND);
    assert_int_equal(store_customer_get(f->s.st, "after", &c), STORE_NOTFOUND);
    assert_int_equal(store_customer_add(f->s.st, "after", NULL), STORE_OK);
    /* The lead went with the old session; another node could take it meanwhile. */
    assert_int_equal(store_lead_try(f->n2), 1);
    assert_int_equal(store_lead_try(f->s.st), 0);
}

static void heard(const char *what, void *arg)
{
    char *got = arg;
    strncat(got, what, 63 - strlen(got));
    strncat(got, ";", 63 - strlen(got));
}

static void test_listener(void **state)
{
    struct fixture *f = *state;
    struct store_listener *l = NULL;
    char err[512];
    assert_int_equal(store_listen_open(&f->s.t.cfg, &l, err, sizeof err), STORE_OK);
    if (!tmp_is_pg(&f->s.t)) {
        assert_null(l); /* one node: nobody to hear from */
        return;
    }
    assert_non_null(l);
    /* Inside a transaction the wake-up waits for the commit. */
    assert_int_equal(store_begin(f->n2), STORE_OK);
    assert_int_equal(store_notify(f->n2, "domain"), STORE_OK);
    char got[64] = "";
    assert_int_equal(store_listen_read(l, heard, got), STORE_OK);
    assert_string_equal(got, "");
    assert_int_equal(store_commit(f->n2), STORE_OK);
    assert_int_equal(store_notify(f->n2, "queue"), STORE_OK);
    for (int i = 0; i < 100 && strcmp(got, "domain;queue;") != 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        assert_int_equal(store_listen_read(l, heard, got), STORE_OK);
    }
    assert_string_equal(got, "domain;queue;");
    assert_true(store_listen_fd(l) >= 0);
    store_listen_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claims_and_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
