/*
 * test_store_writer.c — the group-commit writer on a real event loop:
 * every done() runs, on the loop thread, with its job's result; a failing job
 * is rolled back alone; jobs submitted while a group runs share the next
 * commit; stop finishes the queue; blob files (or bodies in the database) of
 * failed jobs are removed; the GC removes unreferenced blobs with their rows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

#include <event2/thread.h>

#include "store/store_internal.h" /* the raw connection, to break a commit */
#include "test_writer_fixture.h"
#include "util/log.h"

static int setup(void **state)
{
    return writer_fixture_setup(state, "test_store_writer");
}

/* Blob files in a blob_dir (shared between nodes on PostgreSQL). */
static int setup_blob_dir(void **state)
{
    return writer_fixture_setup_in(state, "test_store_writer", "blobs");
}

/* --------------------------------------------------------------- grouping */

#define NJOBS 200
#define FAILING_JOB 57

struct grouping {
    sem_t release;     /* job 0 waits on it, holding its group open */
    pthread_t loop_thread;
    int done, wrong_thread;
    int rc[NJOBS + 1];
};

struct job {
    struct grouping *g;
    int n;
};

static int add_customer_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct job *j = arg;
    if (j->n == 0)
        sem_wait(&j->g->release);
    char name[32];
    snprintf(name, sizeof name, "customer%d", j->n);
    int rc = store_customer_add(st, name, NULL);
    if (rc == STORE_OK && j->n == FAILING_JOB)
        return STORE_ERR; /* after writing: the savepoint must undo it */
    return rc;
}

static void job_done(int rc, void *arg)
{
    struct job *j = arg;
    j->g->rc[j->n] = rc;
    j->g->done++;
    if (!pthread_equal(pthread_self(), j->g->loop_thread))
        j->g->wrong_thread++;
}

static void test_jobs_share_commits(void **state)
{
    struct fixture *f = *state;
    struct grouping g = {.loop_thread = pthread_self()};
    sem_init(&g.release, 0, 0);
    struct job jobs[NJOBS + 1];
    for (int i = 0; i <= NJOBS; i++) {
        jobs[i] = (struct job){&g, i};
        g.rc[i] = 12345;
        assert_int_equal(store_writer_submit(f->w, add_customer_job, job_done, &jobs[i]), 0);
    }
    /* Everything is queued while job 0 holds the first group open. */
    sem_post(&g.release);
    run_until(f, &g.done, NJOBS + 1);
    sem_destroy(&g.release);

    assert_int_equal(g.wrong_thread, 0);
    for (int i = 0; i <= NJOBS; i++)
        assert_int_equal(g.rc[i], i == FAILING_JOB ? STORE_ERR : STORE_OK);
    struct store_customer c;
    assert_int_equal(store_customer_get(f->st, "customer0", &c), STORE_OK);
    assert_int_equal(store_customer_get(f->st, "customer56", &c), STORE_OK);
    assert_int_equal(store_customer_get(f->st, "customer57", &c), STORE_NOTFOUND);
    assert_int_equal(store_customer_get(f->st, "customer58", &c), STORE_OK);
    assert_int_equal(store_customer_get(f->st, "customer200", &c), STORE_OK);

    struct store_writer_stats s;
    store_writer_stats(f->w, &s);
    assert_int_equal(s.jobs, NJOBS + 1);
    assert_int_equal(s.failed_jobs, 1);
    /* Job 0's group, then one group for everything that queued behind it. */
    assert_true(s.groups <= 2);
    assert_true(s.largest_group >= NJOBS / 2);
}

/* Jobs submitted one after another from the loop, each after the previous
 * finished, still work (groups of one). */
struct chain {
    struct store_writer *w;
    int done;
};

static int noop_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)st, (void)bs, (void)arg;
    return STORE_OK;
}

static void chain_done(int rc, void *arg)
{
    struct chain *c = arg;
    assert_int_equal(rc, STORE_OK);
    if (++c->done < 20)
        assert_int_equal(store_writer_submit(c->w, noop_job, chain_done, c), 0);
}

static void test_chained_jobs(void **state)
{
    struct fixture *f = *state;
    struct chain c = {.w = f->w};
    assert_int_equal(store_writer_submit(f->w, noop_job, chain_done, &c), 0);
    run_until(f, &c.done, 20);
    struct store_writer_stats s;
    store_writer_stats(f->w, &s);
    assert_int_equal(s.jobs, 20);
    assert_int_equal(s.groups, 20);
}

/* store_writer_stop runs what is queued and calls done() before returning. */
static int stop_done_count;
static void count_done(int rc, void *arg)
{
    (void)arg;
    if (rc == STORE_OK)
        stop_done_count++;
}

static int named_customer_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    return store_customer_add(st, arg, NULL);
}

static void test_stop_finishes_queue(void **state)
{
    struct fixture *f = *state;
    static char names[50][16];
    stop_done_count = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof names[i], "late%d", i);
        assert_int_equal(store_writer_submit(f->w, named_customer_job, count_done, names[i]), 0);
    }
    store_writer_stop(f->w);
    f->w = NULL;
    assert_int_equal(stop_done_count, 50);
    struct store_customer c;
    assert_int_equal(store_customer_get(f->st, "late0", &c), STORE_OK);
    assert_int_equal(store_customer_get(f->st, "late49", &c), STORE_OK);
    /* A new writer for teardown. */
    char err[512];
    f->w = store_writer_start(&f->t.cfg, f->base, err, sizeof err);
    assert_non_null(f->w);
}

/* ------------------------------------------------------------------ blobs */

struct blob_job {
    const char *body;
    int fail;     /* fail after writing the blob and its rows */
    char id[BLOB_ID_SIZE];
    int *done;
    int rc;
};

static int blob_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct blob_job *j = arg;
    uint64_t stored = 0;
    if (blob_put(bs, st, j->body, strlen(j->body), j->id, &stored) != 0)
        return STORE_ERR;
    int rc = store_blob_ref(st, j->id, strlen(j->body), stored);
    return rc == STORE_OK && j->fail ? STORE_ERR : rc;
}

static void blob_done(int rc, void *arg)
{
    struct blob_job *j = arg;
    j->rc = rc;
    (*j->done)++;
}

/* A file, or a row of blob_data on PostgreSQL. */
static int blob_file_exists(struct fixture *f, const char *id)
{
    return tmp_body_exists(&f->t, id);
}

static void test_blobs_of_failed_jobs_removed(void **state)
{
    struct fixture *f = *state;
    int done = 0;
    struct blob_job jobs[] = {
        {.body = "kept body", .done = &done},
        {.body = "failed body", .fail = 1, .done = &done},
        {.body = "shared body", .done = &done},
        {.body = "shared body", .fail = 1, .done = &done}, /* the other one keeps it */
    };
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(store_writer_submit(f->w, blob_job, blob_done, &jobs[i]), 0);
    run_until(f, &done, 4);
    assert_int_equal(jobs[0].rc, STORE_OK);
    assert_int_equal(jobs[1].rc, STORE_ERR);
    assert_int_equal(jobs[2].rc, STORE_OK);
    assert_int_equal(jobs[3].rc, STORE_ERR);
    assert_true(blob_file_exists(f, jobs[0].id));
    assert_false(blob_file_exists(f, jobs[1].id));
    assert_true(blob_file_exists(f, jobs[2].id));
    assert_int_equal(store_blob_known(f->st, jobs[1].id), 0);
    assert_int_equal(store_blob_known(f->st, jobs[2].id), 1);
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 0);

    /* Readers on other threads use the writer's blob store. */
    unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(store_writer_blobs(f->w), jobs[2].id, &data, &len), 0);
    assert_int_equal(len, strlen("shared body"));
    free(data);
}

/* A job that leaves a deferred foreign key violation: its savepoint releases
 * fine, but the group's COMMIT fails. (PostgreSQL's own foreign keys are not
 * deferrable: the job makes one that is, in the group's transaction.) */
static int poison_job(struct store *st, struct blobstore *bs, void *arg)
{
    struct blob_job *j = arg;
    int rc = blob_job(st, bs, j);
    if (rc != STORE_OK)
        return rc;
    const char *sql = st->kind == DB_PG
                          ? "CREATE TABLE poison (c BIGINT REFERENCES customers(id) DEFERRABLE INITIALLY DEFERRED);"
                            "INSERT INTO poison VALUES (4242);"
                            "INSERT INTO domains (customer_id, name, created) VALUES (1, 'x.test', 0)"
                          : "PRAGMA defer_foreign_keys = ON;"
                            "INSERT INTO domains (customer_id, name, created) VALUES (4242, 'x.test', 0)";
    return st->ops->exec(st, sql) == DB_DONE ? STORE_OK : STORE_ERR;
}

static sem_t hold, holding;
static int hold_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)st, (void)bs, (void)arg;
    sem_post(&holding);
    sem_wait(&hold);
    return STORE_OK;
}

static void test_failed_commit_fails_group(void **state)
{
    struct fixture *f = *state;
    int done = 0;
    if (tmp_is_pg(&f->t)) /* the domain the poison job adds needs a customer */
        assert_int_equal(store_customer_add(f->st, "someone", NULL), STORE_OK);
    sem_init(&hold, 0, 0);
    sem_init(&holding, 0, 0);
    struct blob_job first = {.done = &done};
    struct blob_job normal = {.body = "innocent body", .done = &done};
    struct blob_job poison = {.body = "poison body", .done = &done};
    assert_int_equal(store_writer_submit(f->w, hold_job, blob_done, &first), 0);
    /* The writer runs the first group now: the next two wait and form one
     * group together (submitted before, they could be split between two). */
    sem_wait(&holding);
    assert_int_equal(store_writer_submit(f->w, blob_job, blob_done, &normal), 0);
    assert_int_equal(store_writer_submit(f->w, poison_job, blob_done, &poison), 0);
    sem_post(&hold);
    run_until(f, &done, 3);
    sem_destroy(&hold);
    sem_destroy(&holding);

    struct store_writer_stats s;
    store_writer_stats(f->w, &s);
    assert_int_equal(normal.rc, STORE_ERR);
    assert_int_equal(poison.rc, STORE_ERR);
    /* The first job fails only if it shared their group. */
    assert_int_equal(first.rc, s.groups == 2 ? STORE_OK : STORE_ERR);
    assert_false(blob_file_exists(f, normal.id));
    assert_false(blob_file_exists(f, poison.id));
    assert_int_equal(store_blob_known(f->st, normal.id), 0);
    struct store_domain d;
    assert_int_equal(store_domain_get(f->st, "x.test", &d), STORE_NOTFOUND);

    /* The writer goes on. */
    struct blob_job after = {.body = "after the failure", .done = &done};
    assert_int_equal(store_writer_submit(f->w, blob_job, blob_done, &after), 0);
    run_until(f, &done, 4);
    assert_int_equal(after.rc, STORE_OK);
    assert_true(blob_file_exists(f, after.id));
}

static void test_gc_removes_unreferenced(void **state)
{
    struct fixture *f = *state;
    int done = 0;
    struct blob_job a = {.body = "to be collected", .done = &done};
    struct blob_job b = {.body = "still used", .done = &done};
    assert_int_equal(store_writer_submit(f->w, blob_job, blob_done, &a), 0);
    assert_int_equal(store_writer_submit(f->w, blob_job, blob_done, &b), 0);
    run_until(f, &done, 2);
    assert_true(blob_file_exists(f, a.id));

    /* Drop a's last reference (as release_if_done would), then ask for a GC. */
    assert_int_equal(store_blob_unref(f->st, a.id), STORE_OK);
    store_writer_gc_soon(f->w);
    int64_t give_up = time_mono_ms() + 10000;
    struct store_writer_stats s = {0};
    while (s.blobs_removed < 1 && time_mono_ms() < give_up) {
        usleep(10000);
        store_writer_stats(f->w, &s);
    }
    assert_int_equal(s.blobs_removed, 1);
    assert_false(blob_file_exists(f, a.id));
    assert_int_equal(store_blob_known(f->st, a.id), 0);
    assert_true(blob_file_exists(f, b.id));
    assert_int_equal(store_blob_known(f->st, b.id), 1);
}

int main(void)
{
    log_init("test_store_writer", "test", 1);
    log_set_level(LOG_LEVEL_WARN);
    if (evthread_use_pthreads() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_share_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chained_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_finishes_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blobs_of_failed_jobs_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_fails_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_removes_unreferenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blobs_of_failed_jobs_removed, setup_blob_dir, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_fails_group, setup_blob_dir, teardown),
        cmocka_unit_test_setup_teardown(test_gc_removes_unreferenced, setup_blob_dir, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    libevent_global_shutdown();
    return rc;
}
