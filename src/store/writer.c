/*
 * writer.c — the group-commit writer of writer.h.
 *
 * Submitters append jobs to a list under a mutex and signal a condition
 * variable. The writer thread takes every job waiting, opens one transaction
 * (BEGIN IMMEDIATE), runs each job inside its own savepoint (a failing job is
 * rolled back alone, and the bodies it staged for the database with it), makes
 * the group's new blob files durable with one sync (blob.h batches), commits
 * once, and moves the jobs to a finished list. One
 * libevent event on the submitters' loop, made active from this thread (the
 * daemon enables evthread, so that is safe and wakes the loop), drains that list
 * and runs each done() there. While a group commits the next one gathers, so
 * under load many SMTP sessions share one fsync. A job run with
 * store_writer_run_sync has a waiter instead of a done(): the writer thread
 * hands it its result itself (a condition variable), so threads without an
 * event loop can wait for a commit.
 *
 * Between groups, at most every WRITER_GC_INTERVAL_MS, the writer also removes
 * blobs whose reference count fell to zero: it lists them and, in one
 * transaction, deletes each row that is still at zero together with its body
 * (blob_forget; blob.c explains why that order is safe when other nodes take
 * new references to the same content meanwhile). A round spends at most
 * WRITER_GC_BUDGET_MS; a backlog is worked off one round per group. On
 * PostgreSQL a round or a group can lose a deadlock against another node (or
 * the connection): the statement fails with DB_RETRY, the transaction is
 * rolled back, the group's jobs report STORE_ERR (451, the client retries) and
 * the GC tries again next round.
 */
#include "store/writer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/timeutil.h"

#define WRITER_GC_INTERVAL_MS 5000
#define WRITER_GC_BATCH 256
/* Unlinking can be slow (ext4 with online discard frees blocks synchronously)
 * and happens under the write lock, between groups: a round stops after this
 * long so that accepting mail never waits much longer for it. */
#define WRITER_GC_BUDGET_MS 10

/* The waiting side of store_writer_run_sync (on the waiter's stack). */
struct sync_wait {
    int finished; /* under the writer's lock */
    int rc;
};

struct writer_job {
    store_job_fn fn;
    store_done_fn done;
    void *arg;
    struct sync_wait *sync; /* NULL: done() runs on the loop */
    int rc;
    struct writer_job *next;
};

struct store_writer {
    struct store *st;     /* the writer thread's own connection */
    struct blobstore *bs; /* its blob store; blob_get from other threads is fine */
    struct event *done_ev;
    pthread_t thread;
    int64_t next_gc_ms; /* monotonic; writer thread only */

    pthread_mutex_t lock; /* everything below */
    pthread_cond_t wake;
    pthread_cond_t sync_done; /* a store_writer_run_sync job finished */
    struct writer_job *pending, **pending_tail;
    struct writer_job *finished, **finished_tail;
    int stopping;
    int gc_requested;
    struct store_writer_stats stats;
};

/* ------------------------------------------------------------- the group */

/* Removes a blob file the group wrote when no row references it (its job
 * failed, or the whole group did). */
static int drop_unrecorded(const char *id, void *arg)
{
    struct store_writer *w = arg;
    blob_drop_unrecorded(w->bs, w->st, id);
    return 0;
}

static void run_job(struct store_writer *w, struct writer_job *job)
{
    /* After some errors (disk full, I/O) SQLite rolls the whole transaction
     * back by itself. A savepoint then would open a transaction of its own that
     * commits at RELEASE, before the group's blobs are durable: fail instead. */
    if (!store_in_transaction(w->st) || store_savepoint(w->st) != STORE_OK) {
        job->rc = STORE_ERR;
        return;
    }
    job->rc = job->fn(w->st, w->bs, job->arg);
    /* Bodies for the database go in after the job recorded them, inside its
     * savepoint: a failure there fails this job alone. */
    if (job->rc == STORE_OK && blob_batch_flush(w->bs, w->st) != 0)
        job->rc = STORE_ERR;
    if (job->rc == STORE_OK && store_savepoint_release(w->st) == STORE_OK)
        return;
    if (job->rc == STORE_OK)
        job->rc = STORE_ERR;
    blob_batch_drop(w->bs);
    store_savepoint_rollback(w->st);
}

/* Runs one group; returns the number of jobs that failed. */
static size_t run_group(struct store_writer *w, struct writer_job *jobs, size_t njobs)
{
    if (store_begin(w->st) != STORE_OK) {
        log_err("writer: cannot start a transaction; %zu job(s) fail", njobs);
        for (struct writer_job *j = jobs; j; j = j->next)
            j->rc = STORE_ERR;
        return njobs;
    }
    blob_batch_begin(w->bs);
    for (struct writer_job *j = jobs; j; j = j->next)
        run_job(w, j);
    blob_batch_created(w->bs, drop_unrecorded, w);

    int ok = store_in_transaction(w->st) && blob_batch_sync(w->bs) == 0 &&
             store_commit(w->st) == STORE_OK;
    size_t failed = 0;
    if (!ok) {
        log_err("writer: commit of a group of %zu job(s) failed; all of them fail", njobs);
        store_rollback(w->st);
        blob_batch_created(w->bs, drop_unrecorded, w);
    }
    for (struct writer_job *j = jobs; j; j = j->next) {
        if (!ok)
            j->rc = STORE_ERR;
        if (j->rc != STORE_OK)
            failed++;
    }
    blob_batch_end(w->bs);
    return failed;
}

/* ----------------------------------------------------------------- the GC */

struct gc_batch {
    char ids[WRITER_GC_BATCH][BLOB_ID_SIZE];
    size_t n;
};

static int gc_collect(const char *id, void *arg)
{
    struct gc_batch *b = arg;
    if (b->n < WRITER_GC_BATCH)
        memcpy(b->ids[b->n++], id, BLOB_ID_SIZE);
    return 0;
}

static void writer_gc(struct store_writer *w)
{
    w->next_gc_ms = time_mono_ms() + WRITER_GC_INTERVAL_MS;
    struct gc_batch *b = malloc(sizeof *b);
    if (!b)
        return;
    b->n = 0;
    size_t forgotten = 0;
    if (store_begin(w->st) != STORE_OK) {
        free(b);
        return;
    }
    int rc = store_blob_unreferenced(w->st, WRITER_GC_BATCH, gc_collect, b);
    int64_t stop_at = time_mono_ms() + WRITER_GC_BUDGET_MS;
    size_t visited = 0;
    for (size_t i = 0; rc == STORE_OK && i < b->n; i++, visited++) {
        if (i > 0 && time_mono_ms() >= stop_at)
            break; /* the rest waits for the next round */
        int f = blob_forget(w->bs, w->st, b->ids[i]);
        if (f == STORE_OK)
            forgotten++;
        else if (f == STORE_ERR)
            rc = STORE_ERR; /* on PostgreSQL the transaction is over: stop */
    }
    /* A file is gone even if this commit fails: the row stays at zero and the
     * next round forgets it (unlinking a missing file is not an error). */
    if (rc != STORE_OK || store_commit(w->st) != STORE_OK) {
        log_warn("writer: a blob GC round failed; the next one tries again");
        store_rollback(w->st);
        forgotten = 0;
    }
    if (b->n == WRITER_GC_BATCH || visited < b->n)
        w->next_gc_ms = time_mono_ms(); /* more waiting: go on after the next group */
    free(b);
    if (forgotten) {
        log_debug("writer: removed %zu unreferenced blob(s)", forgotten);
        pthread_mutex_lock(&w->lock);
        w->stats.blobs_removed += forgotten;
        pthread_mutex_unlock(&w->lock);
    }
}

/* ---------------------------------------------------------------- threads */

static void deadline(struct timespec *ts, int64_t mono_ms)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static void *writer_main(void *arg)
{
    struct store_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->pending && !w->stopping && !w->gc_requested) {
            struct timespec ts;
            deadline(&ts, w->next_gc_ms);
            if (pthread_cond_timedwait(&w->wake, &w->lock, &ts) == ETIMEDOUT)
                break; /* idle: time for the GC */
        }
        struct writer_job *jobs = w->pending;
        w->pending = NULL;
        w->pending_tail = &w->pending;
        int stopping = w->stopping, gc = w->gc_requested;
        w->gc_requested = 0;
        pthread_mutex_unlock(&w->lock);

        if (jobs) {
            size_t njobs = 0;
            for (struct writer_job *j = jobs; j; j = j->next)
                njobs++;
            size_t failed = run_group(w, jobs, njobs);

            /* Synchronous jobs get their result here; the others go to the loop. */
            int to_loop = 0, synced = 0;
            pthread_mutex_lock(&w->lock);
            for (struct writer_job *j = jobs, *next; j; j = next) {
                next = j->next;
                if (j->sync) {
                    j->sync->rc = j->rc;
                    j->sync->finished = 1;
                    free(j);
                    synced = 1;
                    continue;
                }
                j->next = NULL;
                *w->finished_tail = j;
                w->finished_tail = &j->next;
                to_loop = 1;
            }
            w->stats.groups++;
            w->stats.jobs += njobs;
            w->stats.failed_jobs += failed;
            if (njobs > w->stats.largest_group)
                w->stats.largest_group = njobs;
            if (synced)
                pthread_cond_broadcast(&w->sync_done);
            pthread_mutex_unlock(&w->lock);
            if (to_loop)
                event_active(w->done_ev, EV_READ, 0);
        }
        if (!stopping && (gc || time_mono_ms() >= w->next_gc_ms))
            writer_gc(w);

        pthread_mutex_lock(&w->lock);
        if (stopping && !w->pending)
            break; /* every job is done */
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Runs done() for every finished job; on the submitters' loop thread. */
static void run_finished(struct store_writer *w)
{
    pthread_mutex_lock(&w->lock);
    struct writer_job *jobs = w->finished;
    w->finished = NULL;
    w->finished_tail = &w->finished;
    pthread_mutex_unlock(&w->lock);
    while (jobs) {
        struct writer_job *next = jobs->next;
        if (jobs->done)
            jobs->done(jobs->rc, jobs->arg);
        free(jobs);
        jobs = next;
    }
}

static void on_finished(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_finished(arg);
}

/* ------------------------------------------------------------------ API */

static void writer_free(struct store_writer *w)
{
    if (w->done_ev)
        event_free(w->done_ev);
    store_close(w->st);
    blobstore_close(w->bs);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->sync_done);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

struct store_writer *store_writer_start(const struct config *cfg, struct event_base *done_base,
                                        char *err, size_t errlen)
{
    struct store_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the GC timer ignores wall-clock jumps */
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->sync_done, NULL);
    w->pending_tail = &w->pending;
    w->finished_tail = &w->finished;
    w->next_gc_ms = time_mono_ms() + WRITER_GC_INTERVAL_MS;

    if (store_open(cfg, &w->st, err, errlen) != STORE_OK ||
        blobstore_open(cfg, &w->bs, err, errlen) != 0) {
        writer_free(w);
        return NULL;
    }
    w->done_ev = event_new(done_base, -1, 0, on_finished, w);
    if (!w->done_ev) {
        snprintf(err, errlen, "cannot create the writer's completion event");
        writer_free(w);
        return NULL;
    }
    /* Signals are the main loop's business: the thread starts with all blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the writer thread: %s", strerror(rc));
        writer_free(w);
        return NULL;
    }
    return w;
}

/* Appends j to the pending jobs; the caller holds the lock. -1 if the
 * writer is stopping. */
static int enqueue_locked(struct store_writer *w, struct writer_job *j)
{
    if (w->stopping)
        return -1;
    int was_idle = !w->pending;
    *w->pending_tail = j;
    w->pending_tail = &j->next;
    if (was_idle) /* otherwise the writer is busy and will look again */
        pthread_cond_signal(&w->wake);
    return 0;
}

int store_writer_submit(struct store_writer *w, store_job_fn job, store_done_fn done, void *arg)
{
    struct writer_job *j = malloc(sizeof *j);
    if (!j)
        return -1;
    *j = (struct writer_job){.fn = job, .done = done, .arg = arg, .rc = STORE_ERR};
    pthread_mutex_lock(&w->lock);
    int rc = enqueue_locked(w, j);
    pthread_mutex_unlock(&w->lock);
    if (rc != 0)
        free(j);
    return rc;
}

int store_writer_run_sync(struct store_writer *w, store_job_fn job, void *arg)
{
    struct sync_wait wait = {0, STORE_ERR};
    struct writer_job *j = malloc(sizeof *j);
    if (!j)
        return STORE_ERR;
    *j = (struct writer_job){.fn = job, .arg = arg, .sync = &wait, .rc = STORE_ERR};
    pthread_mutex_lock(&w->lock);
    if (enqueue_locked(w, j) != 0) {
        pthread_mutex_unlock(&w->lock);
        free(j);
        return STORE_ERR;
    }
    /* The writer sets wait and frees j under the lock: j is not touched here again. */
    while (!wait.finished)
        pthread_cond_wait(&w->sync_done, &w->lock);
    pthread_mutex_unlock(&w->lock);
    return wait.rc;
}

void store_writer_stop(struct store_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    run_finished(w);
    writer_free(w);
}

void store_writer_gc_soon(struct store_writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->gc_requested = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

int store_writer_busy(struct store_writer *w)
{
    pthread_mutex_lock(&w->lock);
    int busy = w->pending != NULL;
    pthread_mutex_unlock(&w->lock);
    return busy;
}

struct blobstore *store_writer_blobs(struct store_writer *w)
{
    return w->bs;
}

void store_writer_stats(struct store_writer *w, struct store_writer_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}
