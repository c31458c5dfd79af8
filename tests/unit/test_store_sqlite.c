/*
 * test_store_sqlite.c — the SQLite backend of store.h on a temporary data_dir:
 * opening and migrations, the directory records (case-insensitive lookups,
 * STORE_EXISTS / STORE_NOTFOUND), transactions and savepoints, the queue
 * (insert, due, update, release, flush, list, delete) and blob reference counts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <time.h>

#include "store/store.h"
#include "test_store_fixture.h"
#include "util/log.h"

struct fixture {
    struct tmp_data_dir t;
    struct store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || tmp_data_dir_make(&f->t, "test_store_sqlite") != 0 || tmp_store_open(&f->t, &f->st) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    tmp_data_dir_remove(&f->t);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ open, schema */

static void test_open_creates_layout(void **state)
{
    struct fixture *f = *state;
    struct stat sb;
    assert_int_equal(stat(f->t.cfg.data_dir, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);
    char path[1200];
    snprintf(path, sizeof path, "%s/blobs", f->t.cfg.data_dir);
    assert_int_equal(stat(path, &sb), 0);
    snprintf(path, sizeof path, "%s/tmp", f->t.cfg.data_dir);
    assert_int_equal(stat(path, &sb), 0);

    if (tmp_is_pg(&f->t))
        return; /* the rest is SQLite's journal */
    sqlite3 *db = tmp_raw_open(&f->t);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_reopen_is_idempotent(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_customer_add(f->st, "Acme", NULL), STORE_OK);
    int64_t versions = tmp_raw_count(&f->t, "SELECT count(*) FROM schema_version");
    int64_t newest = tmp_raw_count(&f->t, "SELECT max(version) FROM schema_version");
    assert_true(newest >= 1);

    /* Re-open twice, once while the first connection is still open. */
    char err[512];
    struct store *again = NULL, *third = NULL;
    assert_int_equal(store_open(&f->t.cfg, &again, err, sizeof err), STORE_OK);
    assert_int_equal(store_open(&f->t.cfg, &third, err, sizeof err), STORE_OK);
    store_close(third);
    struct store_customer c;
    assert_int_equal(store_customer_get(again, "acme", &c), STORE_OK);
    store_close(again);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM schema_version"), versions);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT max(version) FROM schema_version"), newest);
}

static void test_refuses_newer_schema(void **state)
{
    struct fixture *f = *state;
    tmp_raw_exec(&f->t, "INSERT INTO schema_version VALUES (9999)");
    char err[512] = "";
    struct store *st = NULL;
    assert_int_equal(store_open(&f->t.cfg, &st, err, sizeof err), STORE_ERR);
    assert_null(st);
    assert_non_null(strstr(err, "newer"));
}

static void test_refuses_other_backend(void **state)
{
    struct fixture *f = *state;
    struct config cfg = f->t.cfg;
    snprintf(cfg.store, sizeof cfg.store, "mysql://db/lifeboat");
    char err[512] = "";
    struct store *st = NULL;
    assert_int_equal(store_open(&cfg, &st, err, sizeof err), STORE_ERR);
    assert_non_null(strstr(err, "sqlite"));
    assert_non_null(strstr(err, "postgresql://"));
}

/* ---------------------------------------------------------------- directory */

static int collect_customer(const struct store_customer *c, void *arg)
{
    char *names = arg;
    strcat(names, c->name);
    strcat(names, ",");
    return 0;
}

static void test_customers(void **state)
{
    struct fixture *f = *state;
    int64_t id = 0, id2 = 0;
    assert_int_equal(store_customer_add(f->st, "Zeta", &id), STORE_OK);
    assert_true(id > 0);
    assert_int_equal(store_customer_add(f->st, "acme", &id2), STORE_OK);
    assert_int_equal(store_customer_add(f->st, "ZETA", NULL), STORE_EXISTS);

    struct store_customer c;
    assert_int_equal(store_customer_get(f->st, "zeta", &c), STORE_OK);
    assert_int_equal(c.id, id);
    assert_string_equal(c.name, "Zeta");
    assert_true(c.created > 0);
    assert_int_equal(c.sub_start, 0);
    assert_int_equal(store_customer_get(f->st, "nobody", &c), STORE_NOTFOUND);
    assert_int_equal(store_customer_get_by_id(f->st, id2, &c), STORE_OK);
    assert_string_equal(c.name, "acme");
    assert_int_equal(store_customer_get_by_id(f->st, 999, &c), STORE_NOTFOUND);

    c.sub_start = 1000;
    c.sub_end = 2000;
    assert_int_equal(store_customer_update(f->st, &c), STORE_OK);
    struct store_customer back;
    assert_int_equal(store_customer_get(f->st, "ACME", &back), STORE_OK);
    assert_int_equal(back.sub_start, 1000);
    assert_int_equal(back.sub_end, 2000);
    snprintf(c.name, sizeof c.name, "zeta"); /* rename onto another's name */
    assert_int_equal(store_customer_update(f->st, &c), STORE_EXISTS);
    c.id = 999;
    snprintf(c.name, sizeof c.name, "ghost");
    assert_int_equal(store_customer_update(f->st, &c), STORE_NOTFOUND);

    char names[256] = "";
    assert_int_equal(store_customer_list(f->st, collect_customer, names), STORE_OK);
    assert_string_equal(names, "acme,Zeta,");
}

static int64_t add_customer(struct fixture *f, const char *name)
{
    int64_t id = 0;
    assert_int_equal(store_customer_add(f->st, name, &id), STORE_OK);
    return id;
}

static int64_t add_domain(struct fixture *f, int64_t customer, const char *name)
{
    struct store_domain d = {.customer_id = customer, .recipient_check = 1};
    snprintf(d.name, sizeof d.name, "%s", name);
    snprintf(d.routes, sizeof d.routes, "mx.%s:25", name);
    int64_t id = 0;
    assert_int_equal(store_domain_add(f->st, &d, &id), STORE_OK);
    return id;
}

static int64_t add_user(struct fixture *f, int64_t domain, const char *email)
{
    struct store_user u = {.domain_id = domain, .role = ROLE_USER, .active = 1};
    snprintf(u.email, sizeof u.email, "%s", email);
    int64_t id = 0;
    assert_int_equal(store_user_add(f->st, &u, &id), STORE_OK);
    return id;
}

static int collect_domain(const struct store_domain *d, void *arg)
{
    strcat(arg, d->name);
    strcat(arg, ",");
    return 0;
}

static void test_domains(void **state)
{
    struct fixture *f = *state;
    int64_t acme = add_customer(f, "acme");
    int64_t id = add_domain(f, acme, "Acme.TEST");
    add_domain(f, acme, "acme.example");

    struct store_domain d;
    assert_int_equal(store_domain_get(f->st, "ACME.test", &d), STORE_OK);
    assert_int_equal(d.id, id);
    assert_string_equal(d.name, "acme.test"); /* stored lower-case */
    assert_string_equal(d.routes, "mx.Acme.TEST:25");
    assert_int_equal(d.recipient_check, 1);
    assert_int_equal(d.customer_id, acme);
    assert_true(d.created > 0);

    struct store_domain dup = {.customer_id = acme};
    snprintf(dup.name, sizeof dup.name, "ACME.TEST");
    assert_int_equal(store_domain_add(f->st, &dup, NULL), STORE_EXISTS);
    struct store_domain orphan = {.customer_id = 4242};
    snprintf(orphan.name, sizeof orphan.name, "orphan.test");
    assert_int_equal(store_domain_add(f->st, &orphan, NULL), STORE_NOTFOUND);

    snprintf(d.outbound_from, sizeof d.outbound_from, "192.0.2.0/24");
    d.continuity = 1;
    d.recipient_check = 0;
    assert_int_equal(store_domain_update(f->st, &d), STORE_OK);
    struct store_domain back;
    assert_int_equal(store_domain_get_by_id(f->st, id, &back), STORE_OK);
    assert_string_equal(back.outbound_from, "192.0.2.0/24");
    assert_int_equal(back.continuity, 1);
    assert_int_equal(back.recipient_check, 0);
    assert_int_equal(back.created, d.created);
    d.id = 999;
    assert_int_equal(store_domain_update(f->st, &d), STORE_NOTFOUND);
    assert_int_equal(store_domain_get(f->st, "other.test", &back), STORE_NOTFOUND);

    char names[256] = "";
    assert_int_equal(store_domain_list(f->st, collect_domain, names), STORE_OK);
    assert_string_equal(names, "acme.example,acme.test,");
}

static int collect_user(const struct store_user *u, void *arg)
{
    strcat(arg, u->email);
    strcat(arg, ",");
    return 0;
}

static int collect_alias(const char *alias, const char *email, void *arg)
{
    strcat(arg, alias);
    strcat(arg, "=");
    strcat(arg, email);
    strcat(arg, ",");
    return 0;
}

static void test_users_and_aliases(void **state)
{
    struct fixture *f = *state;
    int64_t acme = add_customer(f, "acme");
    int64_t d1 = add_domain(f, acme, "acme.test");
    int64_t d2 = add_domain(f, acme, "other.test");
    int64_t bob = add_user(f, d1, "Bob@Acme.Test");
    int64_t amy = add_user(f, d1, "amy@acme.test");
    add_user(f, d2, "carl@other.test");

    struct store_user u;
    assert_int_equal(store_user_get(f->st, "BOB@ACME.TEST", &u), STORE_OK);
    assert_int_equal(u.id, bob);
    assert_string_equal(u.email, "bob@acme.test");
    assert_int_equal(u.active, 1);
    assert_int_equal(store_user_get(f->st, "nobody@acme.test", &u), STORE_NOTFOUND);
    struct store_user dup = {.domain_id = d1};
    snprintf(dup.email, sizeof dup.email, "BOB@acme.test");
    assert_int_equal(store_user_add(f->st, &dup, NULL), STORE_EXISTS);

    assert_int_equal(store_user_get_by_id(f->st, bob, &u), STORE_OK);
    snprintf(u.name, sizeof u.name, "Bob Builder");
    snprintf(u.pw_hash, sizeof u.pw_hash, "$argon2id$v=19$m=65536,t=2,p=1$x$y");
    u.suspended = 1;
    u.role = ROLE_ADMIN;
    assert_int_equal(store_user_update(f->st, &u), STORE_OK);
    struct store_user back;
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &back), STORE_OK);
    assert_string_equal(back.name, "Bob Builder");
    assert_string_equal(back.pw_hash, u.pw_hash);
    assert_int_equal(back.suspended, 1);
    assert_int_equal(back.role, ROLE_ADMIN);

    char list[512] = "";
    assert_int_equal(store_user_list(f->st, d1, collect_user, list), STORE_OK);
    assert_string_equal(list, "amy@acme.test,bob@acme.test,");
    list[0] = 0;
    assert_int_equal(store_user_list(f->st, 0, collect_user, list), STORE_OK);
    assert_string_equal(list, "amy@acme.test,bob@acme.test,carl@other.test,");

    /* Aliases: any hosted domain, unique whatever the case. */
    assert_int_equal(store_alias_add(f->st, bob, "Robert@Other.Test"), STORE_OK);
    assert_int_equal(store_alias_add(f->st, bob, "builder@acme.test"), STORE_OK);
    assert_int_equal(store_alias_add(f->st, amy, "amelia@acme.test"), STORE_OK);
    assert_int_equal(store_alias_add(f->st, amy, "ROBERT@other.test"), STORE_EXISTS);
    assert_int_equal(store_alias_add(f->st, 4242, "ghost@acme.test"), STORE_NOTFOUND);
    int64_t owner = 0;
    assert_int_equal(store_alias_get(f->st, "robert@OTHER.test", &owner), STORE_OK);
    assert_int_equal(owner, bob);
    assert_int_equal(store_alias_get(f->st, "nobody@other.test", &owner), STORE_NOTFOUND);

    list[0] = 0;
    assert_int_equal(store_alias_list(f->st, bob, collect_alias, list), STORE_OK);
    assert_string_equal(list, "builder@acme.test=bob@acme.test,robert@other.test=bob@acme.test,");
    list[0] = 0;
    assert_int_equal(store_alias_list(f->st, 0, collect_alias, list), STORE_OK);
    assert_string_equal(list, "amelia@acme.test=amy@acme.test,builder@acme.test=bob@acme.test,"
                              "robert@other.test=bob@acme.test,");

    assert_int_equal(store_alias_del(f->st, "BUILDER@acme.test"), STORE_OK);
    assert_int_equal(store_alias_del(f->st, "builder@acme.test"), STORE_NOTFOUND);

    /* Deleting a user drops its aliases. */
    assert_int_equal(store_user_del(f->st, bob), STORE_OK);
    assert_int_equal(store_user_del(f->st, bob), STORE_NOTFOUND);
    assert_int_equal(store_alias_get(f->st, "robert@other.test", &owner), STORE_NOTFOUND);
    assert_int_equal(store_alias_get(f->st, "amelia@acme.test", &owner), STORE_OK);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM aliases"), 1);
}

/* ------------------------------------------------------------ transactions */

static void test_transactions(void **state)
{
    struct fixture *f = *state;
    struct store_customer c;
    assert_int_equal(store_in_transaction(f->st), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_in_transaction(f->st), 1);
    assert_int_equal(store_begin(f->st), STORE_ERR); /* no nesting */
    assert_int_equal(store_customer_add(f->st, "gone", NULL), STORE_OK);
    assert_int_equal(store_rollback(f->st), STORE_OK);
    assert_int_equal(store_customer_get(f->st, "gone", &c), STORE_NOTFOUND);

    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_customer_add(f->st, "kept", NULL), STORE_OK);
    assert_int_equal(store_savepoint(f->st), STORE_OK);
    assert_int_equal(store_customer_add(f->st, "undone", NULL), STORE_OK);
    assert_int_equal(store_savepoint_rollback(f->st), STORE_OK);
    assert_int_equal(store_savepoint(f->st), STORE_OK);
    assert_int_equal(store_customer_add(f->st, "released", NULL), STORE_OK);
    assert_int_equal(store_savepoint_release(f->st), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(store_in_transaction(f->st), 0);
    assert_int_equal(store_customer_get(f->st, "kept", &c), STORE_OK);
    assert_int_equal(store_customer_get(f->st, "released", &c), STORE_OK);
    assert_int_equal(store_customer_get(f->st, "undone", &c), STORE_NOTFOUND);
}

/* -------------------------------------------------------------------- queue */

static const char BLOB_A[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char BLOB_B[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static int insert_msg(struct fixture *f, const char *id, const char *blob, int64_t received,
                      const char *const *rcpts, size_t nrcpt)
{
    struct store_msg_new m = {
        .size = 1234,
        .sender = "Sender@Example.ORG",
        .prefix = "Received: from x\r\n",
        .received = received,
        .client_addr = "192.0.2.1",
        .helo = "client.example.org",
        .direction = DIR_INBOUND,
        .nrcpt = nrcpt,
        .rcpts = rcpts,
    };
    snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.blob, sizeof m.blob, "%s", blob);
    return store_message_insert(f->st, &m);
}

static int64_t blob_refs(struct fixture *f, const char *blob)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT coalesce((SELECT refs FROM blobs WHERE id = '%s'), -1)", blob);
    return tmp_raw_count(&f->t, sql);
}

struct rcpts {
    struct store_rcpt r[16];
    size_t n;
    size_t stop_after; /* 0: never */
};

static int collect_rcpt(const struct store_rcpt *r, void *arg)
{
    struct rcpts *c = arg;
    if (c->n < 16)
        c->r[c->n++] = *r;
    return c->stop_after && c->n >= c->stop_after;
}

static void test_message_insert_and_get(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"Bob@Acme.Test", "amy@acme.test", "carl@other.test"};
    /* The blob must be recorded first. */
    assert_int_equal(insert_msg(f, "00000000000000A1", BLOB_A, 1000, rcpts, 3), STORE_NOTFOUND);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM messages"), 0);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM recipients"), 0);

    assert_int_equal(store_blob_add(f->st, BLOB_A, 1234, 600), STORE_OK);
    assert_int_equal(blob_refs(f, BLOB_A), 0);
    assert_int_equal(insert_msg(f, "00000000000000A1", BLOB_A, 1000, rcpts, 3), STORE_OK);
    assert_int_equal(blob_refs(f, BLOB_A), 1);
    /* A second message with the same body shares the blob. */
    assert_int_equal(store_blob_add(f->st, BLOB_A, 1234, 600), STORE_OK);
    assert_int_equal(insert_msg(f, "00000000000000A2", BLOB_A, 1001, rcpts, 1), STORE_OK);
    assert_int_equal(blob_refs(f, BLOB_A), 2);
    /* A taken queue ID changes nothing, not even the count. */
    assert_int_equal(insert_msg(f, "00000000000000A1", BLOB_A, 1002, rcpts, 1), STORE_EXISTS);
    assert_int_equal(blob_refs(f, BLOB_A), 2);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM recipients"), 4);
    /* No recipients, or an over-long prefix: refused. */
    assert_int_equal(insert_msg(f, "00000000000000A3", BLOB_A, 1003, rcpts, 0), STORE_ERR);
    char longprefix[3000];
    memset(longprefix, 'x', sizeof longprefix - 1);
    longprefix[sizeof longprefix - 1] = 0;
    struct store_msg_new m = {.id = "00000000000000A4", .nrcpt = 1, .rcpts = rcpts, .prefix = longprefix};
    snprintf(m.blob, sizeof m.blob, "%s", BLOB_A);
    assert_int_equal(store_message_insert(f->st, &m), STORE_ERR);

    struct store_msg msg;
    assert_int_equal(store_message_get(f->st, "00000000000000A1", &msg), STORE_OK);
    assert_string_equal(msg.blob, BLOB_A);
    assert_int_equal(msg.size, 1234);
    assert_string_equal(msg.sender, "Sender@Example.ORG");
    assert_string_equal(msg.prefix, "Received: from x\r\n");
    assert_int_equal(msg.received, 1000);
    assert_string_equal(msg.client_addr, "192.0.2.1");
    assert_string_equal(msg.helo, "client.example.org");
    assert_int_equal(msg.direction, DIR_INBOUND);
    assert_int_equal(msg.is_bounce, 0);
    assert_int_equal(store_message_get(f->st, "FFFFFFFFFFFFFFFF", &msg), STORE_NOTFOUND);

    struct rcpts c = {0};
    assert_int_equal(store_rcpt_list(f->st, "00000000000000A1", collect_rcpt, &c), STORE_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.r[0].rcpt, "bob@acme.test"); /* canonical */
    assert_string_equal(c.r[0].domain, "acme.test");
    assert_string_equal(c.r[2].domain, "other.test");
    assert_int_equal(c.r[0].state, RCPT_QUEUED);
    assert_int_equal(c.r[0].attempts, 0);
    assert_int_equal(c.r[0].next_attempt, 1000);
    assert_int_equal(c.r[0].received, 1000);
    assert_string_equal(c.r[0].msg_id, "00000000000000A1");

    struct store_rcpt one;
    assert_int_equal(store_rcpt_get(f->st, c.r[1].id, &one), STORE_OK);
    assert_string_equal(one.rcpt, "amy@acme.test");
    assert_int_equal(store_rcpt_get(f->st, 99999, &one), STORE_NOTFOUND);
}

static void test_due_update_release(void **state)
{
    struct fixture *f = *state;
    const char *r1[] = {"a@acme.test", "b@acme.test"};
    const char *r2[] = {"c@acme.test"};
    assert_int_equal(store_blob_add(f->st, BLOB_A, 10, 10), STORE_OK);
    assert_int_equal(store_blob_add(f->st, BLOB_B, 10, 10), STORE_OK);
    assert_int_equal(insert_msg(f, "00000000000000B1", BLOB_A, 100, r1, 2), STORE_OK);
    assert_int_equal(insert_msg(f, "00000000000000B2", BLOB_B, 50, r2, 1), STORE_OK);

    int64_t when = 0;
    assert_int_equal(store_rcpt_next_due(f->st, &when), STORE_OK);
    assert_int_equal(when, 50);

    /* Soonest first, only what is due, limit and early stop respected. */
    struct rcpts c = {0};
    assert_int_equal(store_rcpt_due(f->st, 75, 0, collect_rcpt, &c), STORE_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.r[0].rcpt, "c@acme.test");
    c.n = 0;
    assert_int_equal(store_rcpt_due(f->st, 1000, 0, collect_rcpt, &c), STORE_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.r[0].rcpt, "c@acme.test");
    assert_string_equal(c.r[1].rcpt, "a@acme.test");
    assert_string_equal(c.r[2].rcpt, "b@acme.test");
    struct store_rcpt a = c.r[1], b = c.r[2], cc = c.r[0];
    c.n = 0;
    assert_int_equal(store_rcpt_due(f->st, 1000, 2, collect_rcpt, &c), STORE_OK);
    assert_int_equal(c.n, 2);
    c.n = 0;
    c.stop_after = 1;
    assert_int_equal(store_rcpt_due(f->st, 1000, 0, collect_rcpt, &c), STORE_OK);
    assert_int_equal(c.n, 1);

    /* a: deferred; b: sent. The message still waits for a. */
    assert_int_equal(store_rcpt_update(f->st, a.id, RCPT_QUEUED, 1, 400, "451 4.3.0 try later"), STORE_OK);
    assert_int_equal(store_rcpt_update(f->st, b.id, RCPT_SENT, 1, 0, "250 ok"), STORE_OK);
    assert_int_equal(store_rcpt_update(f->st, 99999, RCPT_SENT, 1, 0, "250 ok"), STORE_NOTFOUND);
    struct store_rcpt back;
    assert_int_equal(store_rcpt_get(f->st, a.id, &back), STORE_OK);
    assert_int_equal(back.attempts, 1);
    assert_int_equal(back.next_attempt, 400);
    assert_string_equal(back.last_reply, "451 4.3.0 try later");
    c = (struct rcpts){0};
    assert_int_equal(store_rcpt_due(f->st, 399, 0, collect_rcpt, &c), STORE_OK);
    assert_int_equal(c.n, 1); /* only c@ */
    int released = -1;
    assert_int_equal(store_message_release_if_done(f->st, "00000000000000B1", &released), STORE_OK);
    assert_int_equal(released, 0);

    /* Continuity is not final either. */
    assert_int_equal(store_rcpt_update(f->st, a.id, RCPT_CONTINUITY, 1, 0, ""), STORE_OK);
    assert_int_equal(store_message_release_if_done(f->st, "00000000000000B1", &released), STORE_OK);
    assert_int_equal(released, 0);
    assert_int_equal(store_rcpt_update(f->st, a.id, RCPT_REDELIVERED, 2, 0, "250 ok"), STORE_OK);
    assert_int_equal(store_message_release_if_done(f->st, "00000000000000B1", &released), STORE_OK);
    assert_int_equal(released, 1);
    assert_int_equal(store_message_get(f->st, "00000000000000B1", &(struct store_msg){0}), STORE_NOTFOUND);
    assert_int_equal(store_rcpt_get(f->st, a.id, &back), STORE_NOTFOUND);
    assert_int_equal(blob_refs(f, BLOB_A), 0);
    assert_int_equal(store_message_release_if_done(f->st, "00000000000000B1", &released),
                     STORE_NOTFOUND);
    assert_int_equal(released, 0);

    /* Bounced is final. */
    assert_int_equal(store_rcpt_update(f->st, cc.id, RCPT_BOUNCED, 3, 0, "550 5.1.1 no"), STORE_OK);
    assert_int_equal(store_rcpt_next_due(f->st, &when), STORE_NOTFOUND);
    assert_int_equal(store_message_release_if_done(f->st, "00000000000000B2", &released), STORE_OK);
    assert_int_equal(released, 1);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM recipients"), 0);
}

static int collect_msg(const struct store_msg *m, void *arg)
{
    strcat(arg, m->id);
    strcat(arg, ",");
    return 0;
}

static void test_flush_list_delete(void **state)
{
    struct fixture *f = *state;
    const char *r[] = {"a@acme.test", "b@acme.test"};
    assert_int_equal(store_blob_add(f->st, BLOB_A, 10, 10), STORE_OK);
    assert_int_equal(insert_msg(f, "00000000000000C2", BLOB_A, 200, r, 2), STORE_OK);
    assert_int_equal(insert_msg(f, "00000000000000C1", BLOB_A, 100, r, 1), STORE_OK);
    assert_int_equal(insert_msg(f, "00000000000000C3", BLOB_A, 300, r, 1), STORE_OK);
    assert_int_equal(blob_refs(f, BLOB_A), 3);

    /* Far in the future, then flushed: due now. */
    int64_t far = time(NULL) + 100000;
    struct rcpts c = {0};
    assert_int_equal(store_rcpt_list(f->st, "00000000000000C2", collect_rcpt, &c), STORE_OK);
    assert_int_equal(store_rcpt_update(f->st, c.r[0].id, RCPT_QUEUED, 1, far, "451"), STORE_OK);
    assert_int_equal(store_rcpt_update(f->st, c.r[1].id, RCPT_SENT, 1, 0, "250"), STORE_OK);
    struct rcpts due = {0};
    assert_int_equal(store_rcpt_due(f->st, time(NULL), 0, collect_rcpt, &due), STORE_OK);
    assert_int_equal(due.n, 2);
    assert_int_equal(store_queue_flush(f->st), STORE_OK);
    due.n = 0;
    assert_int_equal(store_rcpt_due(f->st, time(NULL), 0, collect_rcpt, &due), STORE_OK);
    assert_int_equal(due.n, 3);
    struct store_rcpt back;
    assert_int_equal(store_rcpt_get(f->st, c.r[1].id, &back), STORE_OK);
    assert_int_equal(back.state, RCPT_SENT); /* final ones untouched */

    /* Listing: oldest first, only messages with queued recipients. */
    assert_int_equal(store_rcpt_list(f->st, "00000000000000C3", collect_rcpt, &(struct rcpts){0}),
                     STORE_OK);
    struct rcpts c3 = {0};
    assert_int_equal(store_rcpt_list(f->st, "00000000000000C3", collect_rcpt, &c3), STORE_OK);
    assert_int_equal(store_rcpt_update(f->st, c3.r[0].id, RCPT_CONTINUITY, 1, 0, ""), STORE_OK);
    char ids[256] = "";
    assert_int_equal(store_queue_list(f->st, collect_msg, ids), STORE_OK);
    assert_string_equal(ids, "00000000000000C1,00000000000000C2,");

    /* Delete regardless of state. */
    assert_int_equal(store_message_delete(f->st, "00000000000000C3"), STORE_OK);
    assert_int_equal(store_message_delete(f->st, "00000000000000C3"), STORE_NOTFOUND);
    assert_int_equal(blob_refs(f, BLOB_A), 2);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM recipients WHERE msg_id = '00000000000000C3'"), 0);
}

/* A listing callback that queries the same listing again (a re-entrant statement). */
struct nested {
    struct store *st;
    int outer, inner;
};

static int nested_inner(const struct store_rcpt *r, void *arg)
{
    (void)r;
    ((struct nested *)arg)->inner++;
    return 0;
}

static int nested_outer(const struct store_rcpt *r, void *arg)
{
    struct nested *n = arg;
    n->outer++;
    assert_int_equal(store_rcpt_list(n->st, r->msg_id, nested_inner, n), STORE_OK);
    return 0;
}

static void test_reentrant_listing(void **state)
{
    struct fixture *f = *state;
    const char *r[] = {"a@acme.test", "b@acme.test", "c@acme.test"};
    assert_int_equal(store_blob_add(f->st, BLOB_A, 10, 10), STORE_OK);
    assert_int_equal(insert_msg(f, "00000000000000D1", BLOB_A, 100, r, 3), STORE_OK);
    struct nested n = {.st = f->st};
    assert_int_equal(store_rcpt_list(f->st, "00000000000000D1", nested_outer, &n), STORE_OK);
    assert_int_equal(n.outer, 3);
    assert_int_equal(n.inner, 9);
    /* And the cached statement still works afterwards. */
    n.outer = n.inner = 0;
    assert_int_equal(store_rcpt_list(f->st, "00000000000000D1", nested_outer, &n), STORE_OK);
    assert_int_equal(n.outer, 3);
}

/* The due query must walk recipients_due, not sort the table. */
static void test_due_query_uses_index(void **state)
{
    struct fixture *f = *state;
    tmp_skip_on_pg(&f->t, "SQLite's query plan");
    sqlite3 *db = tmp_raw_open(&f->t);
    sqlite3_stmt *s;
    const char *sql =
        "EXPLAIN QUERY PLAN SELECT r.id, r.msg_id, r.rcpt, r.domain, r.state, r.attempts, "
        "r.next_attempt, m.received, r.last_reply FROM recipients r JOIN messages m ON m.id = r.msg_id "
        "WHERE r.state = 0 AND r.next_attempt <= ?1 ORDER BY r.next_attempt, r.id LIMIT ?2";
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    char plan[1024] = "";
    while (sqlite3_step(s) == SQLITE_ROW) {
        strncat(plan, (const char *)sqlite3_column_text(s, 3), sizeof plan - strlen(plan) - 2);
        strcat(plan, ";");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    if (!strstr(plan, "recipients_due") || strstr(plan, "TEMP B-TREE"))
        fail_msg("due query plan: %s", plan);
}

/* -------------------------------------------------------------------- blobs */

static int collect_blob(const char *id, void *arg)
{
    strcat(arg, id);
    strcat(arg, ",");
    return 0;
}

static void test_blob_refcounts(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_blob_known(f->st, BLOB_A), 0);
    assert_int_equal(store_blob_ref(f->st, BLOB_A, 100, 50), STORE_OK);
    assert_int_equal(store_blob_known(f->st, BLOB_A), 1);
    assert_int_equal(store_blob_ref(f->st, BLOB_A, 100, 50), STORE_OK);
    assert_int_equal(blob_refs(f, BLOB_A), 2);
    assert_int_equal(store_blob_add(f->st, BLOB_A, 100, 50), STORE_OK); /* no-op when known */
    assert_int_equal(blob_refs(f, BLOB_A), 2);
    assert_int_equal(store_blob_add(f->st, BLOB_B, 100, 50), STORE_OK);

    char list[512] = "";
    assert_int_equal(store_blob_unreferenced(f->st, 10, collect_blob, list), STORE_OK);
    assert_string_equal(list, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb,");
    /* Still referenced: cannot be forgotten. */
    assert_int_equal(store_blob_forget(f->st, BLOB_A), STORE_NOTFOUND);
    assert_int_equal(store_blob_unref(f->st, BLOB_A), STORE_OK);
    assert_int_equal(store_blob_unref(f->st, BLOB_A), STORE_OK);
    assert_int_equal(store_blob_unref(f->st, BLOB_A), STORE_NOTFOUND); /* never below zero */
    list[0] = 0;
    assert_int_equal(store_blob_unreferenced(f->st, 1, collect_blob, list), STORE_OK);
    assert_int_equal(strlen(list), 65); /* the limit holds */
    assert_int_equal(store_blob_forget(f->st, BLOB_A), STORE_OK);
    assert_int_equal(store_blob_forget(f->st, BLOB_B), STORE_OK);
    assert_int_equal(store_blob_known(f->st, BLOB_A), 0);
    list[0] = 0;
    assert_int_equal(store_blob_unreferenced(f->st, 10, collect_blob, list), STORE_OK);
    assert_string_equal(list, "");
}

int main(void)
{
    log_init("test_store_sqlite", "test", 1);
    log_set_level(LOG_LEVEL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_other_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_customers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_and_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_insert_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_update_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reentrant_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_query_uses_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_refcounts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
