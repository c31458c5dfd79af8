/*
 * test_store_writer_sync.c — store_writer_run_sync: a thread without an event
 * loop runs writer jobs and gets each one's committed result, while the loop
 * of the done() callbacks is not running at all; failures come back; it
 * shares groups with ordinary jobs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/thread.h>
#include <pthread.h>

#include "test_writer_fixture.h"

static int setup(void **state)
{
    return writer_fixture_setup(state, "lb_writer_sync");
}

static int add_customer_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    return store_customer_add(st, arg, NULL);
}

static int failing_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    (void)arg;
    store_customer_add(st, "rolled-back", NULL); /* then the job fails: undone */
    return STORE_ERR;
}

struct worker {
    struct store_writer *w;
    int n;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *k = arg;
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof name, "w%d-%d", k->n, i);
        if (store_writer_run_sync(k->w, add_customer_job, name) == STORE_OK)
            k->ok++;
    }
    return NULL;
}

/* A loop job: its name, and the counter its done() adds to. */
struct loop_job {
    char name[16];
    int *done;
};

static int loop_job(struct store *st, struct blobstore *bs, void *arg)
{
    return add_customer_job(st, bs, ((struct loop_job *)arg)->name);
}

static void loop_done(int rc, void *arg)
{
    if (rc == STORE_OK)
        (*((struct loop_job *)arg)->done)++;
}

static void test_run_sync(void **state)
{
    struct fixture *f = *state;
    /* the loop is not running: the result still comes back */
    assert_int_equal(store_writer_run_sync(f->w, add_customer_job, "acme"), STORE_OK);
    struct store_customer c;
    assert_int_equal(store_customer_get(f->st, "acme", &c), STORE_OK); /* committed */
    assert_int_equal(store_writer_run_sync(f->w, add_customer_job, "acme"), STORE_EXISTS);
    assert_int_equal(store_writer_run_sync(f->w, failing_job, NULL), STORE_ERR);
    assert_int_equal(store_customer_get(f->st, "rolled-back", &c), STORE_NOTFOUND);
    /* nothing waits for the writer now: background work may go ahead */
    assert_int_equal(store_writer_busy(f->w), 0);

    /* four threads at once, with loop jobs in between */
    struct worker k[4];
    pthread_t t[4];
    int done = 0;
    for (int i = 0; i < 4; i++) {
        k[i] = (struct worker){f->w, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &k[i]), 0);
    }
    struct loop_job jobs[10];
    for (int i = 0; i < 10; i++) {
        snprintf(jobs[i].name, sizeof jobs[i].name, "loop%d", i);
        jobs[i].done = &done;
        assert_int_equal(store_writer_submit(f->w, loop_job, loop_done, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(k[i].ok, 20);
    }
    run_until(f, &done, 10);
    assert_int_equal(tmp_raw_count(&f->t, "SELECT count(*) FROM customers"), 1 + 80 + 10);
    struct store_writer_stats s;
    store_writer_stats(f->w, &s);
    assert_int_equal(s.jobs, 3 + 80 + 10);
}

int main(void)
{
    if (evthread_use_pthreads() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_run_sync, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
