/*
 * test_archive_indexer.c — the archive behind a real writer: messages queued
 * through queue_submit_run's job are archived in the same transaction; the
 * indexer thread catches up with what was there before it started, is woken
 * for new mail, indexes an unreadable message without text instead of
 * stalling; the daemon's purger removes what is older than the retention and
 * the writer's GC then unlinks the blob files nothing references.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/thread.h>
#include <time.h>
#include <unistd.h>

#include "archive/archive.h"
#include "test_writer_fixture.h"

/* The queue's job, as smtpd runs it: blob, queue rows and archive entries. */
struct submit {
    char id[QUEUEID_SIZE];
    char body[512];
    const char *rcpt;
};

/* queue_submit_run is in lb_queue, after archive: the test does what it does
 * for the archive (blob, message, ingest) with the same calls. */
static int submit_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct submit *s = arg;
    size_t len = strlen(s->body);
    struct store_msg_new row = {.size = len, .sender = "alice@example.org", .prefix = "", .received = time(NULL),
                                .client_addr = "127.0.0.1", .helo = "x", .nrcpt = 1, .rcpts = &s->rcpt};
    memcpy(row.id, s->id, sizeof row.id);
    uint64_t stored = 0;
    if (blob_put(bs, st, s->body, len, row.blob, &stored) != 0)
        return STORE_ERR;
    int rc = store_blob_add(st, row.blob, len, stored);
    if (rc == STORE_OK)
        rc = store_message_insert(st, &row);
    struct archive_message m = {.queue_id = s->id, .blob = row.blob, .prefix = "", .sender = row.sender,
                                .rcpts = row.rcpts, .nrcpt = 1, .size = len, .received = row.received};
    unsigned entries = 0;
    if (rc == STORE_OK)
        rc = archive_ingest(st, &m, &entries);
    return rc == STORE_OK && entries == 1 ? STORE_OK : STORE_ERR;
}

static void submit(struct fixture *f, int n, const char *word)
{
    struct submit s = {.rcpt = "bob@acme.test"};
    queueid_new(s.id);
    snprintf(s.body, sizeof s.body,
             "From: Alice <alice@example.org>\r\nTo: bob@acme.test\r\nSubject: message %d\r\n"
             "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nThe secret word is %s.\r\n",
             n, word);
    assert_int_equal(store_writer_run_sync(f->w, submit_job, &s), STORE_OK);
}

static int setup(void **state)
{
    if (writer_fixture_setup(state, "lb_archive_indexer") != 0)
        return -1;
    struct fixture *f = *state;
    int64_t acme = 0;
    assert_int_equal(store_customer_add(f->st, "acme", &acme), STORE_OK);
    struct store_customer c;
    assert_int_equal(store_customer_get_by_id(f->st, acme, &c), STORE_OK);
    c.sub_start = time(NULL) - 3600;
    assert_int_equal(store_customer_update(f->st, &c), STORE_OK);
    struct store_domain d = {.customer_id = acme};
    snprintf(d.name, sizeof d.name, "acme.test");
    snprintf(d.routes, sizeof d.routes, "127.0.0.1:25");
    assert_int_equal(store_domain_add(f->st, &d, NULL), STORE_OK);
    return 0;
}

static uint64_t found(struct fixture *f, const char *text)
{
    struct store_archive_query q = {.text = text, .direction = -1, .has_attachment = -1};
    uint64_t total = 0;
    assert_int_equal(store_archive_search(f->st, &q, NULL, NULL, &total), STORE_OK);
    return total;
}

static int64_t unindexed(struct fixture *f)
{
    return tmp_raw_count(&f->t, "SELECT count(*) FROM archive WHERE indexed = 0");
}

/* Polls until nothing is left to index; returns the milliseconds it took. */
static int64_t wait_indexed(struct fixture *f, int64_t limit_ms)
{
    int64_t start = time_mono_ms();
    while (unindexed(f) > 0) {
        assert_true(time_mono_ms() - start < limit_ms);
        usleep(20000);
    }
    return time_mono_ms() - start;
}

static void test_indexer(void **state)
{
    struct fixture *f = *state;
    /* a backlog from before the start (a restart): 100 messages, two batches and more */
    for (int i = 0; i < 100; i++)
        submit(f, i, i % 2 ? "odd" : "even");
    assert_int_equal(unindexed(f), 100);
    char err[256];
    struct archive_indexer *ix = archive_indexer_start(&f->t.cfg, f->w, err, sizeof err);
    assert_non_null(ix);
    wait_indexed(f, 20000);
    assert_int_equal(found(f, "even"), 50);
    assert_int_equal(found(f, "SECRET word"), 100);
    assert_int_equal(found(f, "alice"), 100); /* From: */
    struct store_archive_entry e;
    assert_int_equal(store_archive_get(f->st, 1, &e), STORE_OK);
    assert_string_equal(e.subject, "message 0");
    assert_int_equal(e.date, 1704103200); /* the Date: header */

    /* new mail wakes it: well before its 5 s poll */
    usleep(200000);
    submit(f, 100, "woken");
    archive_indexer_wake(ix);
    assert_true(wait_indexed(f, 2000) < 2000);
    assert_int_equal(found(f, "woken"), 1);

    /* a message whose body is gone is indexed without its text */
    submit(f, 101, "lost");
    int64_t id = tmp_raw_count(&f->t, "SELECT max(id) FROM archive");
    assert_int_equal(store_archive_get(f->st, id, &e), STORE_OK);
    assert_true(tmp_body_exists(&f->t, e.blob));
    assert_int_equal(blob_unlink(store_writer_blobs(f->w), e.blob), 0);
    assert_false(tmp_body_exists(&f->t, e.blob));
    archive_indexer_wake(ix);
    wait_indexed(f, 2000);
    assert_int_equal(found(f, "lost"), 0);
    assert_int_equal(store_archive_get(f->st, id, &e), STORE_OK);
    assert_int_equal(e.indexed, 1);
    assert_int_equal(e.date, e.received);
    archive_indexer_stop(ix);
}

static void test_purger(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 3; i++)
        submit(f, i, "old");
    submit(f, 3, "young");
    /* the queue is done with them: only the archive holds the blobs now */
    tmp_raw_exec(&f->t, "UPDATE blobs SET refs = refs - 1;"
                        "DELETE FROM recipients; DELETE FROM messages;"
                        "UPDATE archive SET received = received - 100 WHERE id <= 3;");

    /* one batch directly, as lifeboatctl does: nothing is that old yet */
    struct config cfg = f->t.cfg;
    cfg.archive_retention = 1000;
    uint64_t purged = 9;
    assert_int_equal(archive_purge_batch(f->st, &cfg, time(NULL), 10, &purged), STORE_OK);
    assert_int_equal(purged, 0);

    /* the daemon's purger: a pass at start */
    cfg.archive_retention = 50;
    char err[256];
    struct archive_purger *p = archive_purger_start(f->base, &cfg, f->w, err, sizeof err);
    assert_non_null(p);
    int64_t give_up = time_mono_ms() + 20000;
    while (tmp_raw_count(&f->t, "SELECT count(*) FROM blobs") > 1 && time_mono_ms() < give_up) {
        struct timeval tick = {0, 20000};
        event_base_loopexit(f->base, &tick);
        event_base_dispatch(f->base);
    }
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM archive"), 1);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM blobs"), 1); /* forgotten by the GC */
    assert_int_equal(tmp_count_bodies(&f->t), 1); /* the young message's body only */
    assert_int_equal(found(f, "young") + found(f, "old"), 0); /* not indexed in this test */
    store_writer_stop(f->w); /* the purger goes after the writer */
    f->w = NULL;
    archive_purger_free(p);
}

static int teardown_any(void **state)
{
    struct fixture *f = *state;
    if (!f->w) {
        store_close(f->st);
        event_base_free(f->base);
        tmp_data_dir_remove(&f->t);
        free(f);
        return 0;
    }
    return teardown(state);
}

int main(void)
{
    if (evthread_use_pthreads() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_indexer, setup, teardown_any),
        cmocka_unit_test_setup_teardown(test_purger, setup, teardown_any),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
