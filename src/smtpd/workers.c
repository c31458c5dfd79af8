/*
 * workers.c — a small pool of threads for the work of the submission port
 * that must not run on the event loop: the argon2id password check (tens of
 * milliseconds and 64 MB on purpose) and, after DATA, reading the message's
 * header, DKIM signing and adding fields (linear in the message's size).
 *
 * A caller embeds a struct smtpd_work_item in something that lives until its
 * done callback, and submits it from the loop thread. A worker runs it with
 * its own store connection (NULL when the pool has none), then hands it back:
 * it joins the done list and the loop's wake event is made active, and the
 * loop calls done() (libevent with evthread_use_pthreads makes event_active
 * safe from another thread). Nothing a worker touches belongs to the loop
 * while the item is out, so the only lock is the pool's own.
 *
 * Stopping joins the threads once their current item is finished; items still
 * waiting are not run, and every item left gets its done callback with ran 0
 * (or 1 for those that ran but were not yet handed back), on the caller's
 * thread, so their owners can free what they hold.
 */
#include "smtpd/smtpd_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct worker {
    struct smtpd_work *pool;
    pthread_t thread;
    int started;
    struct store *st;
};

struct smtpd_work {
    struct event *wake;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct smtpd_work_item *queued, **queued_tail; /* waiting for a worker, in order */
    struct smtpd_work_item *done, **done_tail; /* ran, waiting for the loop */
    int stopping;
    size_t nworkers;
    struct worker workers[SMTPD_WORKERS];
};

static void push(struct smtpd_work_item ***tail, struct smtpd_work_item *it)
{
    it->next = NULL;
    **tail = it;
    *tail = &it->next;
}

static void *worker_main(void *arg)
{
    struct worker *me = arg;
    struct smtpd_work *w = me->pool;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->queued && !w->stopping)
            pthread_cond_wait(&w->cond, &w->mu);
        if (w->stopping)
            break;
        struct smtpd_work_item *it = w->queued;
        w->queued = it->next;
        if (!w->queued)
            w->queued_tail = &w->queued;
        pthread_mutex_unlock(&w->mu);

        it->run(it, me->st);

        pthread_mutex_lock(&w->mu);
        it->ran = 1;
        int was_empty = w->done == NULL;
        push(&w->done_tail, it);
        if (was_empty)
            event_active(w->wake, EV_READ, 0);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* On the loop: the items that ran go back to their owners. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct smtpd_work *w = arg;
    pthread_mutex_lock(&w->mu);
    struct smtpd_work_item *list = w->done;
    w->done = NULL;
    w->done_tail = &w->done;
    pthread_mutex_unlock(&w->mu);
    while (list) {
        struct smtpd_work_item *next = list->next; /* done() may free the item */
        list->done(list);
        list = next;
    }
}

struct smtpd_work *smtpd_work_start(struct event_base *base, const struct config *cfg, int with_store, char *err,
                                    size_t errlen)
{
    struct smtpd_work *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->queued_tail = &w->queued;
    w->done_tail = &w->done;
    w->wake = event_new(base, -1, 0, wake_cb, w);
    if (!w->wake) {
        snprintf(err, errlen, "out of memory");
        smtpd_work_free(w);
        return NULL;
    }
    for (size_t i = 0; i < SMTPD_WORKERS; i++) {
        struct worker *k = &w->workers[i];
        k->pool = w;
        /* Each worker reads the directory (the From rule, DKIM keys) through
         * its own connection: a connection belongs to one thread at a time. */
        if (with_store && store_open(cfg, &k->st, err, errlen) != 0) {
            smtpd_work_free(w);
            return NULL;
        }
        w->nworkers++;
        if (pthread_create(&k->thread, NULL, worker_main, k) != 0) {
            snprintf(err, errlen, "cannot start a submission worker thread");
            smtpd_work_free(w);
            return NULL;
        }
        k->started = 1;
    }
    return w;
}

int smtpd_work_submit(struct smtpd_work *w, struct smtpd_work_item *it)
{
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    it->ran = 0;
    push(&w->queued_tail, it);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void smtpd_work_free(struct smtpd_work *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < w->nworkers; i++)
        if (w->workers[i].started)
            pthread_join(w->workers[i].thread, NULL);
    /* Every item left goes back to its owner: first those that ran, then those
     * that never will (ran 0). The threads are gone: no lock needed. */
    struct smtpd_work_item *lists[2] = {w->done, w->queued};
    w->done = w->queued = NULL;
    for (int l = 0; l < 2; l++)
        for (struct smtpd_work_item *it = lists[l], *next; it; it = next) {
            next = it->next;
            it->done(it);
        }
    for (size_t i = 0; i < w->nworkers; i++)
        if (w->workers[i].st)
            store_close(w->workers[i].st);
    if (w->wake)
        event_free(w->wake);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
