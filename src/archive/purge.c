/*
 * purge.c — the archive's retention (archive.h): entries older than
 * archive_retention go, unless a legal hold keeps them, and with them their
 * participants, full-text rows and blob references (the writer's blob GC
 * then unlinks the bodies nothing else uses).
 *
 * In the daemon a pass runs at start and then every 24 hours on the event
 * loop: a writer job deletes at most ARCHIVE_PURGE_BATCH entries, its done
 * callback submits the next one until a batch comes back short. Each job is
 * short, so the SMTP sessions' commits that share the writer never wait long;
 * between batches other groups get their turn. The cut-off is fixed at the
 * start of a pass and logged at its end.
 *
 * The first batch of a pass also drops the per-minute statistics older than
 * STATS_RETENTION (store.h): the one daily housekeeping pass serves both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"
#include "util/log.h"
#include "util/timeutil.h"

#define PURGE_INTERVAL_SECONDS (24 * 3600)

int archive_purge_batch(struct store *st, const struct config *cfg, int64_t now, size_t limit, uint64_t *purged)
{
    return store_archive_purge(st, now - (int64_t)cfg->archive_retention, limit, purged);
}

struct archive_purger {
    struct event_base *base;
    struct store_writer *w;
    struct event *timer;
    unsigned retention;  /* seconds; from the config, changed by reload */
    /* the pass in progress */
    int running;
    int64_t now;         /* when the pass started */
    int64_t before;      /* entries received before this go */
    uint64_t batch_purged; /* written by the job (writer thread), read in done (loop) */
    uint64_t total;
    int failed;
};

static void schedule(struct archive_purger *p, int seconds)
{
    struct timeval tv = {seconds, 0};
    evtimer_add(p->timer, &tv);
}

static int purge_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct archive_purger *p = arg;
    if (p->total == 0) { /* the pass's first batch (a pass goes on only after a full one) */
        int rc = store_stats_purge(st, p->now - STATS_RETENTION, NULL);
        if (rc != STORE_OK)
            return rc;
    }
    return store_archive_purge(st, p->before, ARCHIVE_PURGE_BATCH, &p->batch_purged);
}

static void pass_end(struct archive_purger *p)
{
    char date[32];
    time_iso8601((time_t)p->before, date, sizeof date);
    if (p->failed)
        log_err("archive: purge stopped after %llu entries older than %s (store error); next pass in 24h",
                (unsigned long long)p->total, date);
    else
        log_info("archive: purged %llu entries older than %s", (unsigned long long)p->total, date);
    if (p->total)
        store_writer_gc_soon(p->w);
    p->running = 0;
    schedule(p, PURGE_INTERVAL_SECONDS);
}

static void batch_done(int rc, void *arg)
{
    struct archive_purger *p = arg;
    if (rc != STORE_OK) {
        p->failed = 1;
        pass_end(p);
        return;
    }
    p->total += p->batch_purged;
    if (p->batch_purged < ARCHIVE_PURGE_BATCH) {
        pass_end(p);
        return;
    }
    if (store_writer_submit(p->w, purge_job, batch_done, p) != 0)
        p->running = 0; /* the writer is stopping: so are we */
}

static void pass_start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct archive_purger *p = arg;
    if (p->running)
        return;
    p->running = 1;
    p->failed = 0;
    p->total = 0;
    p->batch_purged = 0;
    p->now = time_now();
    p->before = p->now - (int64_t)p->retention;
    if (store_writer_submit(p->w, purge_job, batch_done, p) != 0)
        p->running = 0;
}

struct archive_purger *archive_purger_start(struct event_base *base, const struct config *cfg,
                                            struct store_writer *w, char *err, size_t errlen)
{
    struct archive_purger *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->base = base;
    p->w = w;
    p->retention = cfg->archive_retention;
    p->timer = evtimer_new(base, pass_start, p);
    if (!p->timer) {
        snprintf(err, errlen, "cannot create the archive purge timer");
        free(p);
        return NULL;
    }
    schedule(p, 0); /* the first pass as soon as the loop runs */
    return p;
}

void archive_purger_reload(struct archive_purger *p, const struct config *cfg)
{
    if (p)
        p->retention = cfg->archive_retention;
}

void archive_purger_free(struct archive_purger *p)
{
    if (!p)
        return;
    event_free(p->timer);
    free(p);
}
