/*
 * ldap_syncer.c — the daemon's periodic directory sync (directory.h, "LDAP"):
 * one thread with its own read connection that, every few seconds, looks at
 * each domain with a directory and syncs it when its interval has passed
 * since its last report, or its settings changed since (so a new ldap set is
 * picked up at once, and a restart does not sync everything again).
 *
 * The search blocks this thread only (every operation has a timeout); the
 * changes go through the writer with store_writer_run_sync, which the writer
 * answers itself, so no event loop is involved. Domains are synced one after
 * the other: a directory that is down costs its timeouts once per interval,
 * and a failed sync is tried again at the next interval like a good one.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "directory/directory.h"
#include "util/log.h"
#include "util/timeutil.h"

#define SYNCER_POLL_MS 2000

struct directory_ldap_syncer {
    struct store *st;
    struct store_writer *w;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
};

struct due {
    int64_t *ids;
    size_t n, cap;
    struct store *st;
    int64_t now;
};

/* 1 when the domain's directory is due for a sync, 0 if not, -1 on a store error. */
static int is_due(struct store *st, const struct store_ldap_settings *s, int64_t now)
{
    struct store_ldap_report r;
    int rc = store_ldap_report_get(st, s->domain_id, &r);
    if (rc == STORE_ERR)
        return -1;
    return rc == STORE_NOTFOUND || s->updated > r.at || now - r.at >= s->interval;
}

static int collect_due(const struct store_ldap_settings *s, void *arg)
{
    struct due *d = arg;
    int due = is_due(d->st, s, d->now);
    if (due < 0)
        return 1;
    if (!due)
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        int64_t *v = realloc(d->ids, cap * sizeof *v);
        if (!v)
            return 1;
        d->ids = v;
        d->cap = cap;
    }
    d->ids[d->n++] = s->domain_id;
    return 0;
}

static int writer_run(void *ctx, store_job_fn job, void *arg)
{
    return store_writer_run_sync(ctx, job, arg);
}

static int stopping(struct directory_ldap_syncer *s)
{
    pthread_mutex_lock(&s->lock);
    int v = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return v;
}

static void sync_due(struct directory_ldap_syncer *s)
{
    struct due d = {.st = s->st, .now = time_now()};
    if (store_ldap_settings_list(s->st, collect_due, &d) != STORE_OK) {
        log_err("ldap: cannot read the directories to sync");
        free(d.ids);
        return;
    }
    struct directory_writer w = {writer_run, s->w};
    for (size_t i = 0; i < d.n && !stopping(s); i++) {
        /* With several nodes, one syncs a domain; the others see its report. */
        if (store_work_lock_try(s->st, STORE_WORK_LDAP_SYNC, d.ids[i]) != 1)
            continue;
        struct store_domain dom;
        struct store_ldap_settings set;
        if (store_domain_get_by_id(s->st, d.ids[i], &dom) == STORE_OK &&
            store_ldap_settings_get(s->st, d.ids[i], &set) == STORE_OK && is_due(s->st, &set, time_now()) == 1) {
            struct store_ldap_report rep;
            char err[512];
            /* directory_ldap_sync logs the outcome and stores the report. */
            directory_ldap_sync(s->st, &w, dom.name, &rep, err, sizeof err);
        }
        memset(set.bind_password, 0, sizeof set.bind_password);
        store_work_unlock(s->st, STORE_WORK_LDAP_SYNC, d.ids[i]);
    }
    free(d.ids);
}

static void *syncer_main(void *arg)
{
    struct directory_ldap_syncer *s = arg;
    for (;;) {
        if (stopping(s))
            break;
        sync_due(s);
        pthread_mutex_lock(&s->lock);
        if (!s->stopping) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += SYNCER_POLL_MS / 1000;
            pthread_cond_timedwait(&s->wake, &s->lock, &until);
        }
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

struct directory_ldap_syncer *directory_ldap_syncer_start(const struct config *cfg, struct store_writer *w,
                                                          char *err, size_t errlen)
{
    struct directory_ldap_syncer *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->w = w;
    if (store_open(cfg, &s->st, err, errlen) != 0) {
        directory_ldap_syncer_stop(s);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, syncer_main, s) != 0) {
        snprintf(err, errlen, "cannot start the LDAP sync thread");
        directory_ldap_syncer_stop(s);
        return NULL;
    }
    s->started = 1;
    return s;
}

void directory_ldap_syncer_stop(struct directory_ldap_syncer *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    if (s->started)
        pthread_join(s->thread, NULL);
    if (s->st)
        store_close(s->st);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
