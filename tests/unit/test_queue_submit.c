/*
 * test_queue_submit.c — queue_submit through a real group-commit writer: the
 * body lands in one blob (shared by identical bodies, the prefix kept in the
 * row), the envelope and recipients in the queue, and done() reports failures
 * (a taken queue ID, no recipients) without leaving anything behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <unistd.h>

#include <event2/thread.h>

#include "queue/queue.h"
#include "test_writer_fixture.h"
#include "util/log.h"

static int setup(void **state)
{
    return writer_fixture_setup(state, "test_queue_submit");
}

struct result {
    int rc;
    int *done;
};

static void submitted(int rc, void *arg)
{
    struct result *r = arg;
    r->rc = rc;
    (*r->done)++;
}

static const char BODY[] = "From: a@example.org\r\nSubject: hello\r\n\r\nHi there.\r\n.dot\r\n";

static int collect_rcpt(const struct store_rcpt *r, void *arg)
{
    strcat(arg, r->rcpt);
    strcat(arg, ",");
    return 0;
}

static void test_submit_and_share_body(void **state)
{
    struct fixture *f = *state;
    const char *rcpts1[] = {"Bob@Acme.Test", "amy@acme.test"};
    const char *rcpts2[] = {"carl@other.test"};
    struct queue_message m1 = {
        .sender = "a@example.org",
        .rcpts = rcpts1,
        .nrcpt = 2,
        .prefix = "Received: from one\r\n",
        .body = (const unsigned char *)BODY,
        .body_len = sizeof BODY - 1,
        .client_addr = "192.0.2.7",
        .helo = "one.example.org",
        .direction = DIR_INBOUND,
    };
    struct queue_message m2 = m1;
    m2.rcpts = rcpts2;
    m2.nrcpt = 1;
    m2.prefix = "Received: from two\r\n";
    m2.sender = "";
    queueid_new(m1.id);
    queueid_new(m2.id);
    assert_string_not_equal(m1.id, m2.id);

    int done = 0;
    struct result r1 = {-99, &done}, r2 = {-99, &done};
    assert_int_equal(queue_submit(f->w, &m1, submitted, &r1), 0);
    assert_int_equal(queue_submit(f->w, &m2, submitted, &r2), 0);
    run_until(f, &done, 2);
    assert_int_equal(r1.rc, STORE_OK);
    assert_int_equal(r2.rc, STORE_OK);

    struct store_msg a, b;
    assert_int_equal(store_message_get(f->st, m1.id, &a), STORE_OK);
    assert_int_equal(store_message_get(f->st, m2.id, &b), STORE_OK);
    assert_string_equal(a.blob, b.blob); /* one body, one blob */
    assert_string_equal(a.prefix, "Received: from one\r\n");
    assert_string_equal(b.prefix, "Received: from two\r\n");
    assert_string_equal(a.sender, "a@example.org");
    assert_string_equal(b.sender, "");
    assert_int_equal(a.size, sizeof BODY - 1);
    assert_string_equal(a.client_addr, "192.0.2.7");
    assert_string_equal(a.helo, "one.example.org");
    assert_true(a.received > 0);

    char list[256] = "";
    assert_int_equal(store_rcpt_list(f->st, m1.id, collect_rcpt, list), STORE_OK);
    assert_string_equal(list, "bob@acme.test,amy@acme.test,");

    /* The blob holds the body exactly as received. */
    unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(store_writer_blobs(f->w), a.blob, &data, &len), 0);
    assert_int_equal(len, sizeof BODY - 1);
    assert_memory_equal(data, BODY, len);
    free(data);
    assert_int_equal(tmp_count_bodies(&f->t), 1);

    /* Two references: deleting one message keeps the blob referenced. */
    assert_int_equal(store_message_delete(f->st, m1.id), STORE_OK);
    assert_int_equal(store_blob_forget(f->st, a.blob), STORE_NOTFOUND);
    assert_int_equal(store_message_delete(f->st, m2.id), STORE_OK);
    assert_int_equal(store_blob_forget(f->st, a.blob), STORE_OK);
}

static int count_blob(const char *id, void *arg)
{
    (void)id;
    (*(int *)arg)++;
    return 0;
}

static void test_failures_leave_nothing(void **state)
{
    struct fixture *f = *state;
    const char *rcpts[] = {"bob@acme.test"};
    struct queue_message ok = {
        .sender = "a@example.org",
        .rcpts = rcpts,
        .nrcpt = 1,
        .prefix = "",
        .body = (const unsigned char *)"first",
        .body_len = 5,
        .client_addr = "192.0.2.7",
        .helo = "h",
    };
    queueid_new(ok.id);
    struct queue_message dup = ok; /* same queue ID, new body */
    dup.body = (const unsigned char *)"second body";
    dup.body_len = 11;
    struct queue_message none = ok; /* no recipients */
    queueid_new(none.id);
    none.nrcpt = 0;
    none.body = (const unsigned char *)"third body";
    none.body_len = 10;

    int done = 0;
    struct result r1 = {-99, &done}, r2 = {-99, &done}, r3 = {-99, &done};
    assert_int_equal(queue_submit(f->w, &ok, submitted, &r1), 0);
    assert_int_equal(queue_submit(f->w, &dup, submitted, &r2), 0);
    assert_int_equal(queue_submit(f->w, &none, submitted, &r3), 0);
    run_until(f, &done, 3);
    assert_int_equal(r1.rc, STORE_OK);
    assert_int_equal(r2.rc, STORE_EXISTS);
    assert_int_equal(r3.rc, STORE_ERR);

    struct store_msg m;
    assert_int_equal(store_message_get(f->st, ok.id, &m), STORE_OK);
    assert_int_equal(m.size, 5);
    assert_int_equal(store_message_get(f->st, none.id, &m), STORE_NOTFOUND);
    /* Only the first body's blob remains, on disk and in the store. */
    int blobs = 0;
    assert_int_equal(blob_foreach(store_writer_blobs(f->w), count_blob, &blobs), 0);
    assert_int_equal(blobs, 1);
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 0);
}

int main(void)
{
    log_init("test_queue_submit", "test", 1);
    log_set_level(LOG_LEVEL_WARN);
    if (evthread_use_pthreads() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_and_share_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_leave_nothing, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    libevent_global_shutdown();
    return rc;
}
