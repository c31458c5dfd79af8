/*
 * indexer.c — the archive's full-text indexer (archive.h): a thread that
 * brings the index up to date behind acceptance.
 *
 * It looks for entries not indexed yet (its own read connection; an index of
 * only those rows makes the question cheap), reads each message from the blob
 * store, extracts its text (mail/archive_text.h) and then hands the prepared
 * rows to the writer as ONE job that does nothing but insert them, and waits
 * for that job's commit (store_writer_run_sync). All parsing happens here,
 * outside the writer, so the job that SMTP sessions' commits share the writer
 * with stays short: a batch is at most INDEXER_BATCH entries and
 * INDEXER_BATCH_TEXT bytes of text. The thread runs at a lower CPU priority
 * than the event loop, so on a busy machine indexing waits, not acceptance.
 *
 * It is woken when mail was queued and otherwise polls every few seconds;
 * everything it needs to know is in the store, so after a restart (or a
 * crash) it simply carries on with whatever is left.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "archive/archive.h"
#include "mail/archive_text.h"
#include "util/log.h"

#define INDEXER_BATCH 48
#define INDEXER_BATCH_TEXT (1024 * 1024)
#define INDEXER_POLL_MS 5000
/* After a failed batch (store error), wait this long before trying again. */
#define INDEXER_BACKOFF_MS 5000
/* The indexer's nice value, relative to the daemon's other threads. */
#define INDEXER_NICE 10
/* While the writer has jobs waiting (mail being accepted), a prepared batch
 * waits in steps of INDEXER_YIELD_MS, at most INDEXER_YIELD_MAX_MS: indexing
 * stays behind acceptance under load, and still moves under a flood. */
#define INDEXER_YIELD_MS 2
#define INDEXER_YIELD_MAX_MS 1000

struct archive_indexer {
    struct store *st;     /* the thread's read connection */
    struct store_writer *w;
    struct blobstore *bs; /* the writer's; blob_get is thread-safe */
    pthread_t thread;
    int started;

    pthread_mutex_t lock; /* the three below */
    pthread_cond_t wake;
    int woken, stopping;
};

/* An entry to index, as the work list gave it. */
struct unindexed {
    int64_t id;
    int64_t received;
    char msg_id[QUEUEID_SIZE];
    char blob[BLOB_ID_SIZE];
};

struct unindexed_list {
    struct unindexed v[INDEXER_BATCH];
    size_t n;
};

/* One prepared full-text row and the strings it points into. */
struct prepared {
    struct store_archive_text row;
    struct archive_text text; /* all empty when the message could not be read */
};

struct batch {
    struct prepared v[INDEXER_BATCH];
    size_t n;
};

static int is_stopping(struct archive_indexer *ix)
{
    pthread_mutex_lock(&ix->lock);
    int s = ix->stopping;
    pthread_mutex_unlock(&ix->lock);
    return s;
}

static int collect_unindexed(const struct store_archive_entry *e, void *arg)
{
    struct unindexed_list *l = arg;
    if (l->n == INDEXER_BATCH)
        return 1;
    struct unindexed *t = &l->v[l->n++];
    t->id = e->id;
    t->received = e->received;
    memcpy(t->msg_id, e->msg_id, sizeof t->msg_id);
    memcpy(t->blob, e->blob, sizeof t->blob);
    return 0;
}

/* Reads and extracts one message. A message that cannot be read is indexed
 * without text (received as its date) rather than tried again forever. */
static int prepare(struct archive_indexer *ix, const struct unindexed *t, struct prepared *p)
{
    memset(p, 0, sizeof *p);
    unsigned char *raw = NULL;
    size_t len = 0;
    if (blob_get(ix->bs, t->blob, &raw, &len) != 0) {
        log_warn("%s: archive: cannot read the message (blob %.12s...): %s; archived without its text", t->msg_id,
                 t->blob, strerror(errno));
        raw = NULL;
        len = 0;
    }
    int rc = archive_text_extract(raw, len, &p->text);
    free(raw);
    if (rc != 0) {
        log_err("%s: archive: out of memory extracting the text", t->msg_id);
        return -1;
    }
    p->row = (struct store_archive_text){
        .id = t->id,
        .date = p->text.date ? p->text.date : t->received,
        .subject = p->text.subject,
        .from_hdr = p->text.from,
        .to_hdr = p->text.to,
        .body = p->text.body,
        .attachments = p->text.attachments,
        .has_attachment = p->text.has_attachment,
    };
    return 0;
}

/* The writer job: only inserts what was prepared. */
static int insert_job(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    const struct batch *b = arg;
    for (size_t i = 0; i < b->n; i++) {
        int rc = store_archive_index(st, &b->v[i].row);
        if (rc == STORE_ERR)
            return rc;
        /* STORE_NOTFOUND: purged meanwhile, nothing to index */
    }
    return STORE_OK;
}

/* Indexes one batch. Returns the number of entries it took from the work
 * list (INDEXER_BATCH: there may be more), or -1 on a store error. */
static int index_batch(struct archive_indexer *ix)
{
    struct unindexed_list *unindexed = malloc(sizeof *unindexed);
    struct batch *b = malloc(sizeof *b);
    int taken = -1;
    if (!unindexed || !b) {
        log_err("archive: indexer out of memory");
        goto out;
    }
    unindexed->n = b->n = 0;
    if (store_archive_unindexed(ix->st, INDEXER_BATCH, collect_unindexed, unindexed) != STORE_OK)
        goto out;
    size_t text = 0;
    for (size_t i = 0; i < unindexed->n && text < INDEXER_BATCH_TEXT && !is_stopping(ix); i++) {
        if (prepare(ix, &unindexed->v[i], &b->v[b->n]) != 0)
            break;
        text += strlen(b->v[b->n].text.body);
        b->n++;
    }
    if (b->n == 0) {
        taken = 0;
        goto out;
    }
    for (int waited = 0; waited < INDEXER_YIELD_MAX_MS && store_writer_busy(ix->w) && !is_stopping(ix);
         waited += INDEXER_YIELD_MS)
        nanosleep(&(struct timespec){.tv_nsec = INDEXER_YIELD_MS * 1000000L}, NULL);
    if (store_writer_run_sync(ix->w, insert_job, b) != STORE_OK) {
        log_err("archive: indexing %zu entries failed; trying again later", b->n);
        goto out;
    }
    log_debug("archive: indexed %zu entries", b->n);
    /* a batch cut short by the text bound: more may be waiting */
    taken = b->n < unindexed->n ? INDEXER_BATCH : (int)b->n;
out:
    if (b)
        for (size_t i = 0; i < b->n; i++)
            archive_text_free(&b->v[i].text);
    free(b);
    free(unindexed);
    return taken;
}

static void wait_ms(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *indexer_main(void *arg)
{
    struct archive_indexer *ix = arg;
    /* Linux: a thread's nice value is its own. Failure only costs priority. */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), INDEXER_NICE) != 0)
        log_debug("archive: indexer keeps its priority: %s", strerror(errno));
    int64_t pause_ms = 0; /* 0: look at once (start-up: catch up with what is left) */
    for (;;) {
        pthread_mutex_lock(&ix->lock);
        if (pause_ms > 0 && !ix->woken && !ix->stopping) {
            struct timespec ts;
            wait_ms(&ts, pause_ms);
            while (!ix->woken && !ix->stopping)
                if (pthread_cond_timedwait(&ix->wake, &ix->lock, &ts) == ETIMEDOUT)
                    break;
        }
        int stop = ix->stopping;
        ix->woken = 0;
        pthread_mutex_unlock(&ix->lock);
        if (stop)
            break;
        int n = index_batch(ix);
        pause_ms = n == INDEXER_BATCH ? 0 : n < 0 ? INDEXER_BACKOFF_MS : INDEXER_POLL_MS;
    }
    return NULL;
}

static void indexer_free(struct archive_indexer *ix)
{
    if (ix->st)
        store_close(ix->st);
    pthread_cond_destroy(&ix->wake);
    pthread_mutex_destroy(&ix->lock);
    free(ix);
}

struct archive_indexer *archive_indexer_start(const struct config *cfg, struct store_writer *w, char *err,
                                              size_t errlen)
{
    struct archive_indexer *ix = calloc(1, sizeof *ix);
    if (!ix) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ix->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ix->wake, &ca);
    pthread_condattr_destroy(&ca);
    ix->w = w;
    ix->bs = store_writer_blobs(w);
    if (store_open(cfg, &ix->st, err, errlen) != STORE_OK) {
        indexer_free(ix);
        return NULL;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&ix->thread, NULL, indexer_main, ix);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the archive indexer thread: %s", strerror(rc));
        indexer_free(ix);
        return NULL;
    }
    ix->started = 1;
    return ix;
}

void archive_indexer_wake(struct archive_indexer *ix)
{
    if (!ix)
        return;
    pthread_mutex_lock(&ix->lock);
    ix->woken = 1;
    pthread_cond_signal(&ix->wake);
    pthread_mutex_unlock(&ix->lock);
}

void archive_indexer_stop(struct archive_indexer *ix)
{
    if (!ix)
        return;
    pthread_mutex_lock(&ix->lock);
    ix->stopping = 1;
    pthread_cond_signal(&ix->wake);
    pthread_mutex_unlock(&ix->lock);
    if (ix->started)
        pthread_join(ix->thread, NULL);
    indexer_free(ix);
}
