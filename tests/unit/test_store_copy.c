/*
 * test_store_copy.c — store_copy.h, the copy of a SQLite installation into
 * PostgreSQL (lifeboatctl migrate): one batch of one row per run, so that
 * every item is resumed after every row (keysets on rowids, on text keys that
 * sort case-insensitively and hold commas, quotes and non-ASCII letters, on
 * composite keys); NULLs, bodies from files and from blob_data, the FTS5
 * text indexed again, skipped tables, sequences moved; then the count check,
 * the finished state, and the refusals (a target with data of its own, left
 * without lifeboat's tables; a source that changed under an interrupted copy;
 * another source; a second copy at once).
 *
 * The target is the test's PostgreSQL database, so it is registered for the
 * PostgreSQL pass only (ctest test_store_copy_pg); run by hand without
 * LB_TEST_PG its cases skip themselves.
 */
/* store-test: pg-only */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "store/blob.h"
#include "store/store_copy.h"
#include "test_store_fixture.h"

struct fixture {
    struct tmp_data_dir t; /* the target: t.cfg.store is its URL */
    struct config src_cfg; /* the source: SQLite in t.root/src */
    struct store *src;
    char source_id[1200];
    char blobs_dir[1200];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || tmp_data_dir_make(&f->t, "test_store_copy") != 0)
        return -1;
    *state = f;
    if (!tmp_is_pg(&f->t))
        return 0;
    f->src_cfg = f->t.cfg;
    snprintf(f->src_cfg.store, sizeof f->src_cfg.store, "sqlite");
    snprintf(f->src_cfg.data_dir, sizeof f->src_cfg.data_dir, "%s/src", f->t.root);
    snprintf(f->source_id, sizeof f->source_id, "%s/lifeboat.db", f->src_cfg.data_dir);
    snprintf(f->blobs_dir, sizeof f->blobs_dir, "%s/blobs", f->src_cfg.data_dir);
    char err[512];
    if (store_open(&f->src_cfg, &f->src, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->src);
    tmp_data_dir_remove(&f->t);
    free(f);
    return 0;
}

#define NEED_PG(f)                                                                         \
    do {                                                                                   \
        if (!tmp_is_pg(&(f)->t)) {                                                         \
            fprintf(stderr, "skipped: the copy goes into PostgreSQL (LB_TEST_PG)\n");      \
            skip();                                                                        \
        }                                                                                  \
    } while (0)

static void src_exec(struct fixture *f, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->source_id, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* A blob written by blob.c (a real zstd file) and its row. */
static void add_blob(struct fixture *f, const char *text, char id[BLOB_ID_SIZE])
{
    struct blobstore *bs = NULL;
    char err[256];
    assert_int_equal(blobstore_open(&f->src_cfg, &bs, err, sizeof err), 0);
    uint64_t stored = 0;
    assert_int_equal(blob_put(bs, NULL, text, strlen(text), id, &stored), 0);
    blobstore_close(bs);
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO blobs (id, size, stored_size, refs) VALUES ('%s', %zu, %llu, 1)", id,
             strlen(text), (unsigned long long)stored);
    src_exec(f, sql);
}

/* A small installation with the awkward cases. */
static void populate(struct fixture *f)
{
    int64_t acme = tmp_customer_add(f->src, "acme");
    int64_t dom = tmp_domain_add(f->src, acme, "acme.test");
    int64_t bob = tmp_user_add(f->src, dom, "bob@acme.test", 0, 1);
    tmp_user_add(f->src, dom, "carol@acme.test", 0, 1);
    (void)bob;
    char b1[BLOB_ID_SIZE], b2[BLOB_ID_SIZE];
    add_blob(f, "Subject: one\r\n\r\npomegranate\r\n", b1);
    add_blob(f, "Subject: two\r\n\r\nquince\r\n", b2);
    char sql[4096];
    snprintf(sql, sizeof sql,
             /* text keys: NOCASE order, commas, quotes, non-ASCII */
             "INSERT INTO aliases (alias, user_id) VALUES ('Zed@acme.test', 1), ('alpha@acme.test', 1),"
             " ('a,b@acme.test', 1), ('o''brien@acme.test', 2), ('ünï@acme.test', 2), ('Beta@acme.test', 2);"
             /* a body only in blob_data (no file) */
             "INSERT INTO blobs (id, size, stored_size, refs) VALUES ('%064d', 3, 3, 1);"
             "INSERT INTO blob_data (id, data) VALUES ('%064d', x'00ff10');"
             "INSERT INTO messages (id, blob, size, sender, prefix, received, client_addr, helo, direction, is_bounce)"
             " VALUES ('Q1', '%s', 10, 'a@x.test', '', 5, '127.0.0.1', 'x', 0, 0);"
             /* a mailbox entry without a blob (NULL), recipients with and without one */
             "INSERT INTO mailbox (user_id, domain_id, msg_id, blob, sender, rcpts, size, received)"
             " VALUES (1, 1, 'Q1', NULL, 'a@x.test', 'bob@acme.test', 10, 5),"
             " (2, 1, 'Q1', '%s', 'a@x.test', 'carol@acme.test', 10, 6);"
             "INSERT INTO recipients (msg_id, rcpt, domain, next_attempt, mailbox_entry_id)"
             " VALUES ('Q1', 'bob@acme.test', 'acme.test', 7, NULL), ('Q1', 'carol@acme.test', 'acme.test', 7, 2);"
             "INSERT INTO archive (customer_id, msg_id, blob, direction, sender, received, size, indexed, date,"
             " subject, from_hdr, to_hdr) VALUES"
             " (1, 'Q1', '%s', 0, 'alice@example.org', 5, 10, 1, 5, 'one', 'alice@example.org', 'bob@acme.test'),"
             " (1, 'Q2', '%s', 0, 'dave@example.org', 6, 10, 1, 6, 'two', 'dave@example.org', 'bob@acme.test'),"
             " (1, 'Q3', '%s', 0, 'erin@example.org', 7, 10, 0, 7, '', '', '');"
             /* composite keys: one address, several entries */
             "INSERT INTO archive_addrs (addr, entry_id, kind, pos) VALUES"
             " ('bob@acme.test', 1, 1, 0), ('bob@acme.test', 2, 1, 0), ('Bob@Acme.test', 3, 0, 0),"
             " ('alice@example.org', 1, 0, 0), ('dave@example.org', 2, 0, 0);"
             "INSERT INTO archive_fts (rowid, subject, from_hdr, to_hdr, body, attachments) VALUES"
             " (1, 'one', 'alice@example.org', 'bob@acme.test', 'pomegranate and figs', ''),"
             " (2, 'two', 'dave@example.org', 'bob@acme.test', 'quince', 'Crème brûlée.pdf');"
             "INSERT INTO login_failures (key, at) VALUES ('addr:10.0.0.1', 5), ('addr:10.0.0.1', 6);"
             "INSERT INTO password_reset_requests (client_addr, at) VALUES ('10.0.0.2', 5), ('10.0.0.2', 5);"
             "INSERT INTO nodes (name, started, heartbeat) VALUES ('old', 1, 2);",
             0, 0, b1, b2, b1, b2, b1);
    src_exec(f, sql);
}

/* Runs copies of one batch of one row each until one completes; the number of runs. */
static int copy_row_by_row(struct fixture *f)
{
    char err[512];
    int runs = 0, rc;
    do {
        struct store_copy *c = NULL;
        enum store_copy_state st;
        if (store_copy_open(f->src, &f->t.cfg, f->source_id, &c, &st, err, sizeof err) != STORE_OK)
            fail_msg("store_copy_open (run %d): %s", runs + 1, err);
        assert_int_equal(st, runs ? STORE_COPY_RESUME : STORE_COPY_NEW);
        struct store_copy_opts o = {
            .blobs_dir = f->blobs_dir, .blobs_to_db = 1, .batch_rows = 1, .stop_after = 1};
        rc = store_copy_run(c, &o, err, sizeof err);
        if (rc != STORE_OK && rc != STORE_COPY_STOPPED)
            fail_msg("store_copy_run (run %d): %s", runs + 1, err);
        store_copy_close(c);
        runs++;
    } while (rc == STORE_COPY_STOPPED && runs < 500);
    assert_int_equal(rc, STORE_OK);
    return runs;
}

static int64_t pg_int(struct fixture *f, const char *sql)
{
    return tmp_raw_count(&f->t, sql);
}

static void test_row_by_row_copy_counts_and_values(void **state)
{
    struct fixture *f = *state;
    NEED_PG(f);
    populate(f);
    int runs = copy_row_by_row(f);

    /* The count check, the end, and nothing to do after it. */
    char err[512];
    struct store_copy *c = NULL;
    enum store_copy_state st;
    assert_int_equal(store_copy_open(f->src, &f->t.cfg, f->source_id, &c, &st, err, sizeof err), STORE_OK);
    assert_int_equal(st, STORE_COPY_RESUME);
    struct store_copy_opts o = {.blobs_dir = f->blobs_dir, .blobs_to_db = 1};
    struct store_copy_count *k = NULL;
    size_t n = 0, rows = 0;
    assert_int_equal(store_copy_counts(c, &o, &k, &n, err, sizeof err), STORE_OK);
    int seen_fts = 0, seen_blobs = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i].source != k[i].target)
            fail_msg("%s: %lld in SQLite, %lld in PostgreSQL", k[i].item, (long long)k[i].source,
                     (long long)k[i].target);
        assert_true(strcmp(k[i].item, "nodes") && strcmp(k[i].item, "schema_version"));
        seen_fts |= !strcmp(k[i].item, "archive_fts") && k[i].source == 2;
        seen_blobs |= !strcmp(k[i].item, "blob_data") && k[i].source == 3;
        rows += (size_t)k[i].source;
    }
    free(k);
    assert_true(seen_fts && seen_blobs);
    assert_int_equal(runs, (int)rows + 1); /* one row a run, and a last one that finds the ends */
    assert_int_equal(store_copy_finish(c, err, sizeof err), STORE_OK);
    store_copy_close(c);
    assert_int_equal(store_copy_open(f->src, &f->t.cfg, f->source_id, &c, &st, err, sizeof err), STORE_OK);
    assert_int_equal(st, STORE_COPY_DONE);
    store_copy_close(c);

    /* Values. */
    assert_int_equal(pg_int(f, "SELECT count(*) FROM aliases WHERE alias IN ('a,b@acme.test', 'o''brien@acme.test',"
                               " 'ünï@acme.test', 'zed@ACME.test')"), 4);
    assert_int_equal(pg_int(f, "SELECT count(*) FROM mailbox WHERE blob IS NULL AND user_id = 1"), 1);
    assert_int_equal(pg_int(f, "SELECT count(*) FROM recipients WHERE mailbox_entry_id IS NULL"), 1);
    assert_int_equal(pg_int(f, "SELECT mailbox_entry_id FROM recipients WHERE rcpt = 'carol@acme.test'"), 2);
    assert_int_equal(pg_int(f, "SELECT count(*) FROM archive_addrs WHERE addr = 'bob@acme.test'"), 3);
    assert_int_equal(pg_int(f, "SELECT count(*) FROM nodes"), 0);
    assert_int_equal(pg_int(f, "SELECT count(*) FROM password_reset_requests"), 2);
    assert_int_equal(pg_int(f, "SELECT (data = '\\x00ff10'::bytea)::int FROM blob_data WHERE id = repeat('0', 64)"),
                     1);
    /* The files' bytes as they are: zstd frames (magic 28 b5 2f fd). */
    assert_int_equal(pg_int(f, "SELECT count(*) FROM blob_data WHERE substr(data, 1, 4) = '\\x28b52ffd'::bytea"), 2);
    /* The full-text index answers on PostgreSQL: words, From:, an attachment's name. */
    assert_int_equal(pg_int(f, "SELECT id FROM archive_fts WHERE tsv @@ archive_fts_phrase('pomegranate', '')"), 1);
    assert_int_equal(pg_int(f, "SELECT id FROM archive_fts WHERE tsv @@ archive_fts_phrase('dave', 'B')"), 2);
    assert_int_equal(pg_int(f, "SELECT id FROM archive_fts WHERE tsv @@ archive_fts_phrase('creme brulee', '')"), 2);
    assert_int_equal(pg_int(f, "SELECT count(*) FROM archive_fts WHERE tsv @@ archive_fts_phrase('bob', 'B')"), 0);
    /* Sequences past the copied ids. */
    assert_int_equal(pg_int(f, "SELECT nextval(pg_get_serial_sequence('archive', 'id'))"), 4);
    assert_int_equal(pg_int(f, "SELECT nextval(pg_get_serial_sequence('login_failures', 'id'))"), 3);
    assert_int_equal(pg_int(f, "SELECT nextval(pg_get_serial_sequence('audit', 'id'))"), 1);
}

static void test_refusals(void **state)
{
    struct fixture *f = *state;
    NEED_PG(f);
    populate(f);
    char err[512];
    struct store_copy *c = NULL, *c2 = NULL;
    enum store_copy_state st;

    /* Data of its own: refused before lifeboat's schema is made there. */
    tmp_raw_exec(&f->t, "CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)");
    assert_int_equal(store_copy_open(f->src, &f->t.cfg, f->source_id, &c, &st, err, sizeof err), STORE_ERR);
    assert_non_null(strstr(err, "not empty (table invoices has rows)"));
    assert_null(c);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), 1);
    tmp_raw_exec(&f->t, "DROP TABLE invoices");

    /* Two copies at once: the second is refused. */
    assert_int_equal(store_copy_open(f->src, &f->t.cfg, f->source_id, &c, &st, err, sizeof err), STORE_OK);
    assert_int_equal(st, STORE_COPY_NEW);
    assert_int_equal(store_copy_open(f->src, &f->t.cfg, f->source_id, &c2, &st, err, sizeof err), STORE_ERR);
    assert_non_null(strstr(err, "another lifeboatctl migrate"));
    struct store_copy_opts o = {.blobs_dir = f->blobs_dir, .blobs_to_db = 1, .batch_rows = 2, .stop_after = 3};
    assert_int_equal(store_copy_run(c, &o, err, sizeof err), STORE_COPY_STOPPED);
    store_copy_close(c);

    /* Another source: refused. */
    assert_int_equal(store_copy_open(f->src, &f->t.cfg, "/elsewhere/lifeboat.db", &c, &st, err, sizeof err),
                     STORE_ERR);
    assert_non_null(strstr(err, "another installation"));

    /* The source changed under the interrupted copy: refused. */
    tmp_customer_add(f->src, "latecomer");
    assert_int_equal(store_copy_open(f->src, &f->t.cfg, f->source_id, &c, &st, err, sizeof err), STORE_ERR);
    assert_non_null(strstr(err, "changed since the interrupted copy began"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_row_by_row_copy_counts_and_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
