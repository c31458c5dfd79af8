/*
 * blob.c — the content-addressed, zstd-compressed message store of blob.h.
 *
 * A body is hashed first (SHA-256 through OpenSSL's EVP), so a body that is
 * already stored as a file costs no compression and no write. A new one is
 * compressed as a stream into tmp/<unique> (bounded memory whatever its size,
 * with zstd's content checksum so blob_get detects corruption), then renamed
 * into blobs/<first two hex digits>/<id>. The fan-out keeps directories small;
 * their descriptors are opened once and kept, so a put costs no path walks.
 * In the database the same frame is one row of blob_data (store_blob_data.c
 * runs the SQL).
 *
 * Durability of files comes in two flavours. Alone, blob_put fsyncs the file
 * before the rename and the directory after it (and the parent when it created
 * the fan-out directory). Inside a batch (the group-commit writer), blob_put
 * leaves that to blob_batch_sync, which makes every blob of the group durable
 * with one syncfs(2) just before the group's COMMIT: one flush per group
 * instead of two per message. Either way a blob is durable before any row that
 * names it commits. A body in the database is simply part of the transaction
 * that records it: inside a batch it is staged in memory by blob_put and
 * written by blob_batch_flush once the job has recorded it, so the blobs row
 * is always locked before the body is written (the GC's order, below).
 *
 * Readers of the database (blob_get from delivery, webmail, the drain and the
 * indexer, on several threads) share a few connections of the blob store's
 * own, opened when first needed.
 */
#include "store/blob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "store/store_internal.h"
#include "util/log.h"

/* Speed matters more than ratio on the accept path; level 1 still shrinks mail
 * (text, base64) by half or more. */
#define BLOB_ZSTD_LEVEL 1

/* Connections for reading bodies from the database: enough for the threads
 * that read at once (delivery, HTTP, drain, indexer); more wait their turn. */
#define BLOB_POOL_MAX 4

/* A body for the database, compressed, waiting for blob_batch_flush. */
struct staged {
    char id[BLOB_ID_SIZE];
    unsigned char *data;
    size_t len;
};

struct blobstore {
    enum blob_where where;
    int blobs_fd; /* data_dir/blobs or blob_dir (files) */
    int tmp_fd;   /* data_dir/tmp or blob_dir/tmp/<node_name> (files) */
    EVP_MD *sha256;
    atomic_uint tmp_seq;

    pthread_mutex_t lock; /* the fields below; held for a whole put */
    int fan_fd[256];      /* blobs/00 .. blobs/ff, -1 until first used */
    ZSTD_CCtx *cctx;
    unsigned char *outbuf; /* ZSTD_CStreamOutSize() bytes */
    int batch;             /* inside blob_batch_begin .. blob_batch_end */
    char (*created)[BLOB_ID_SIZE]; /* files the batch wrote */
    size_t ncreated, capcreated;
    struct staged *staged; /* bodies for the database since the last flush */
    size_t nstaged, capstaged;

    /* The database: the config to open connections with, and the idle ones. */
    struct config *cfg;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_free;
    struct store *idle[BLOB_POOL_MAX];
    size_t nidle, nopen;
};

/* ------------------------------------------------------------------ helpers */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int blob_id_valid(const char *id)
{
    size_t i = 0;
    for (; id[i]; i++)
        if (i >= BLOB_ID_SIZE - 1 || hexval(id[i]) < 0)
            return 0;
    return i == BLOB_ID_SIZE - 1;
}

static int fan_index(const char *id)
{
    return hexval(id[0]) * 16 + hexval(id[1]);
}

/* "ab/abcdef..." relative to blobs_fd. */
static void blob_relpath(const char *id, char out[BLOB_ID_SIZE + 3])
{
    snprintf(out, BLOB_ID_SIZE + 3, "%.2s/%s", id, id);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO; /* shrank under us */
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_fd(int fd, const char *what, const char *id)
{
    if (fsync(fd) == 0)
        return 0;
    int e = errno;
    log_err("blob %s: fsync of %s failed: %s", id, what, strerror(e));
    errno = e;
    return -1;
}

/* ------------------------------------------------------------ open and close */

/* Opens the directories of file mode: blobs_dir and tmp_dir (created as needed). */
static int open_dirs(struct blobstore *bs, const struct config *cfg, char *err, size_t errlen)
{
    char blobs[1100], tmp[1200];
    if (cfg->blob_dir[0]) {
        const char *node = cfg->node_name[0] ? cfg->node_name : "node";
        snprintf(blobs, sizeof blobs, "%s", cfg->blob_dir);
        /* Per node: the files of a node's unfinished writes are its own to
         * clean up after a crash, and the rename stays on blob_dir's file system. */
        snprintf(tmp, sizeof tmp, "%s/tmp/%s", cfg->blob_dir, node);
        if (store_make_dir(tmp, err, errlen) != 0)
            return -1;
    } else {
        if (store_prepare_data_dir(cfg->data_dir, err, errlen) != 0)
            return -1;
        snprintf(blobs, sizeof blobs, "%s/blobs", cfg->data_dir);
        snprintf(tmp, sizeof tmp, "%s/tmp", cfg->data_dir);
    }
    const char *path = blobs;
    bs->blobs_fd = open(blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bs->blobs_fd >= 0) {
        path = tmp;
        bs->tmp_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (bs->blobs_fd < 0 || bs->tmp_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int blobstore_open(const struct config *cfg, struct blobstore **out, char *err, size_t errlen)
{
    *out = NULL;
    struct blobstore *bs = calloc(1, sizeof *bs);
    if (!bs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    bs->blobs_fd = bs->tmp_fd = -1;
    for (size_t i = 0; i < 256; i++)
        bs->fan_fd[i] = -1;
    pthread_mutex_init(&bs->lock, NULL);
    pthread_mutex_init(&bs->pool_lock, NULL);
    pthread_cond_init(&bs->pool_free, NULL);
    *out = bs; /* from here on blobstore_close cleans up */

    if (!store_config_is_pg(cfg))
        bs->where = BLOB_IN_FILES;
    else
        bs->where = cfg->blob_dir[0] ? BLOB_IN_SHARED_FILES : BLOB_IN_DB;
    if (bs->where == BLOB_IN_DB) {
        bs->cfg = malloc(sizeof *bs->cfg);
        if (!bs->cfg) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        *bs->cfg = *cfg;
    } else if (open_dirs(bs, cfg, err, errlen) != 0) {
        goto fail;
    }
    bs->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    bs->cctx = ZSTD_createCCtx();
    bs->outbuf = malloc(ZSTD_CStreamOutSize());
    if (!bs->sha256 || !bs->cctx || !bs->outbuf) {
        snprintf(err, errlen, "cannot set up SHA-256 and zstd for the blob store");
        goto fail;
    }
    if (ZSTD_isError(ZSTD_CCtx_setParameter(bs->cctx, ZSTD_c_compressionLevel, BLOB_ZSTD_LEVEL)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(bs->cctx, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(bs->cctx, ZSTD_c_contentSizeFlag, 1))) {
        snprintf(err, errlen, "cannot configure zstd for the blob store");
        goto fail;
    }
    return 0;
fail:
    blobstore_close(bs);
    *out = NULL;
    return -1;
}

static void staged_clear(struct blobstore *bs)
{
    for (size_t i = 0; i < bs->nstaged; i++)
        free(bs->staged[i].data);
    bs->nstaged = 0;
}

void blobstore_close(struct blobstore *bs)
{
    if (!bs)
        return;
    for (size_t i = 0; i < 256; i++)
        if (bs->fan_fd[i] >= 0)
            close(bs->fan_fd[i]);
    if (bs->blobs_fd >= 0)
        close(bs->blobs_fd);
    if (bs->tmp_fd >= 0)
        close(bs->tmp_fd);
    /* Every reader has given its connection back by now. */
    for (size_t i = 0; i < bs->nidle; i++)
        store_close(bs->idle[i]);
    EVP_MD_free(bs->sha256);
    ZSTD_freeCCtx(bs->cctx);
    free(bs->outbuf);
    free(bs->created);
    staged_clear(bs);
    free(bs->staged);
    free(bs->cfg);
    pthread_cond_destroy(&bs->pool_free);
    pthread_mutex_destroy(&bs->pool_lock);
    pthread_mutex_destroy(&bs->lock);
    free(bs);
}

enum blob_where blobstore_where(const struct blobstore *bs)
{
    return bs->where;
}

/* ------------------------------------------------------ database connections */

/* A connection for reading, from the pool or newly opened; NULL (logged) if
 * none can be had. */
static struct store *pool_take(struct blobstore *bs)
{
    pthread_mutex_lock(&bs->pool_lock);
    for (;;) {
        if (bs->nidle) {
            struct store *st = bs->idle[--bs->nidle];
            pthread_mutex_unlock(&bs->pool_lock);
            return st;
        }
        if (bs->nopen < BLOB_POOL_MAX)
            break;
        pthread_cond_wait(&bs->pool_free, &bs->pool_lock);
    }
    bs->nopen++; /* ours: opened without the lock held */
    pthread_mutex_unlock(&bs->pool_lock);
    struct store *st = NULL;
    char err[512];
    if (store_open(bs->cfg, &st, err, sizeof err) == STORE_OK)
        return st;
    log_err("blob: cannot open a connection to read message bodies: %s", err);
    pthread_mutex_lock(&bs->pool_lock);
    bs->nopen--;
    pthread_cond_signal(&bs->pool_free);
    pthread_mutex_unlock(&bs->pool_lock);
    return NULL;
}

/* Gives a connection back (a lost one reconnects at its next statement). */
static void pool_give(struct blobstore *bs, struct store *st)
{
    pthread_mutex_lock(&bs->pool_lock);
    bs->idle[bs->nidle++] = st;
    pthread_cond_signal(&bs->pool_free);
    pthread_mutex_unlock(&bs->pool_lock);
}

/* --------------------------------------------------------------------- put */

/* The fan-out directory's descriptor, creating the directory on first use.
 * *made is set when this call created it. Called with bs->lock held. */
static int fan_dir(struct blobstore *bs, const char *id, int *made)
{
    int i = fan_index(id);
    *made = 0;
    if (bs->fan_fd[i] >= 0)
        return bs->fan_fd[i];
    char name[3] = {id[0], id[1], '\0'};
    if (mkdirat(bs->blobs_fd, name, 0700) == 0)
        *made = 1;
    else if (errno != EEXIST)
        return -1;
    bs->fan_fd[i] = openat(bs->blobs_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return bs->fan_fd[i];
}

/* Compresses data as one zstd frame (content size and checksum in it) into fd. */
static int compress_into(struct blobstore *bs, int fd, const void *data, size_t len, uint64_t *written)
{
    ZSTD_CCtx_reset(bs->cctx, ZSTD_reset_session_only);
    if (ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(bs->cctx, len))) {
        errno = EINVAL;
        return -1;
    }
    ZSTD_inBuffer in = {data, len, 0};
    size_t remaining;
    *written = 0;
    do {
        ZSTD_outBuffer out = {bs->outbuf, ZSTD_CStreamOutSize(), 0};
        remaining = ZSTD_compressStream2(bs->cctx, &out, &in, ZSTD_e_end);
        if (ZSTD_isError(remaining)) {
            log_err("blob: zstd compression failed: %s", ZSTD_getErrorName(remaining));
            errno = EIO;
            return -1;
        }
        if (write_all(fd, bs->outbuf, out.pos) != 0)
            return -1;
        *written += out.pos;
    } while (remaining != 0);
    return 0;
}

/* The same frame in memory (for the database): a malloc'd buffer, or NULL
 * with errno. Called with bs->lock held. */
static unsigned char *compress_mem(struct blobstore *bs, const void *data, size_t len, size_t *outlen)
{
    size_t bound = ZSTD_compressBound(len);
    unsigned char *buf = malloc(bound);
    if (!buf) {
        errno = ENOMEM;
        return NULL;
    }
    size_t n = ZSTD_compress2(bs->cctx, buf, bound, data, len);
    if (ZSTD_isError(n)) {
        log_err("blob: zstd compression failed: %s", ZSTD_getErrorName(n));
        free(buf);
        errno = EIO;
        return NULL;
    }
    unsigned char *fit = realloc(buf, n);
    *outlen = n;
    return fit ? fit : buf;
}

/* A blob file that is already there: someone renamed it into place after an
 * fsync of its data; make sure its directory entry is on disk too before we
 * count on it. A shared directory's file may be another node's whose group
 * has not synced yet, so it is fsync'd even in a batch, and its time is
 * renewed: start-up recovery judges files without a row by their age. */
static int existing_durable(struct blobstore *bs, int dirfd, const char *id)
{
    int shared = bs->where == BLOB_IN_SHARED_FILES;
    if (bs->batch && !shared) /* blob_batch_sync covers it */
        return 0;
    int fd = openat(dirfd, id, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (shared && futimens(fd, NULL) != 0)
        log_warn("blob %s: cannot renew its time: %s", id, strerror(errno));
    int rc = fsync_fd(fd, "the existing file", id);
    close(fd);
    return rc == 0 ? fsync_fd(dirfd, "its directory", id) : -1;
}

static int remember_created(struct blobstore *bs, const char *id)
{
    if (bs->ncreated == bs->capcreated) {
        size_t cap = bs->capcreated ? bs->capcreated * 2 : 64;
        void *p = realloc(bs->created, cap * sizeof *bs->created);
        if (!p)
            return -1;
        bs->created = p;
        bs->capcreated = cap;
    }
    memcpy(bs->created[bs->ncreated++], id, BLOB_ID_SIZE);
    return 0;
}

static int put_file_locked(struct blobstore *bs, const void *data, size_t len, const char *id,
                           uint64_t *stored_size)
{
    int made;
    int dirfd = fan_dir(bs, id, &made);
    if (dirfd < 0) {
        int e = errno;
        log_err("blob %s: cannot open its directory: %s", id, strerror(e));
        errno = e;
        return -1;
    }
    struct stat sb;
    if (fstatat(dirfd, id, &sb, 0) == 0) {
        *stored_size = (uint64_t)sb.st_size;
        return existing_durable(bs, dirfd, id);
    }

    char tmpname[BLOB_ID_SIZE + 32];
    int fd = -1;
    while (fd < 0) {
        snprintf(tmpname, sizeof tmpname, "%.16s.%ld.%u", id, (long)getpid(),
                 atomic_fetch_add(&bs->tmp_seq, 1));
        fd = openat(bs->tmp_fd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            int e = errno;
            log_err("blob %s: cannot create a temporary file: %s", id, strerror(e));
            errno = e;
            return -1;
        }
    }
    uint64_t written = 0;
    int rc = compress_into(bs, fd, data, len, &written);
    if (rc != 0)
        log_err("blob %s: cannot write: %s", id, strerror(errno));
    if (rc == 0 && !bs->batch)
        rc = fsync_fd(fd, "the new file", id);
    int e = errno;
    if (close(fd) != 0 && rc == 0) { /* NFS and friends report write errors here */
        e = errno;
        log_err("blob %s: cannot write: %s", id, strerror(e));
        rc = -1;
    }
    if (rc == 0 && renameat(bs->tmp_fd, tmpname, dirfd, id) != 0) {
        e = errno;
        log_err("blob %s: cannot move into place: %s", id, strerror(e));
        rc = -1;
    }
    if (rc != 0) {
        unlinkat(bs->tmp_fd, tmpname, 0);
        errno = e;
        return -1;
    }
    *stored_size = written;
    if (bs->batch) {
        if (remember_created(bs, id) != 0) {
            /* Without the record the batch could not clean it up: undo now. */
            unlinkat(dirfd, id, 0);
            errno = ENOMEM;
            return -1;
        }
        return 0;
    }
    if (fsync_fd(dirfd, "its directory", id) != 0)
        return -1;
    return made ? fsync_fd(bs->blobs_fd, "the blobs directory", id) : 0;
}

static int put_file(struct blobstore *bs, struct store *st, const void *data, size_t len, const char *id,
                    uint64_t *stored_size)
{
    if (bs->where == BLOB_IN_SHARED_FILES) {
        /* Another node's GC, a failed job's clean-up or start-up recovery
         * may be about to unlink this very file: the blob's lock, shared, until
         * our rows commit, keeps them off (blob_forget); taken before we look
         * at the file, so one that was removing it has finished by then. */
        if (!st) {
            errno = EINVAL;
            return -1;
        }
        if (store_blob_use_lock(st, id) != STORE_OK) {
            errno = EIO;
            return -1;
        }
    }
    pthread_mutex_lock(&bs->lock);
    int rc = put_file_locked(bs, data, len, id, stored_size);
    int e = errno;
    pthread_mutex_unlock(&bs->lock);
    errno = e;
    return rc;
}

static int stage(struct blobstore *bs, const char *id, unsigned char *data, size_t len)
{
    if (bs->nstaged == bs->capstaged) {
        size_t cap = bs->capstaged ? bs->capstaged * 2 : 16;
        void *p = realloc(bs->staged, cap * sizeof *bs->staged);
        if (!p)
            return -1;
        bs->staged = p;
        bs->capstaged = cap;
    }
    struct staged *s = &bs->staged[bs->nstaged++];
    memcpy(s->id, id, BLOB_ID_SIZE);
    s->data = data;
    s->len = len;
    return 0;
}

static int put_db(struct blobstore *bs, struct store *st, const void *data, size_t len, const char *id,
                  uint64_t *stored_size)
{
    pthread_mutex_lock(&bs->lock);
    int batch = bs->batch;
    if (!batch && !st) {
        pthread_mutex_unlock(&bs->lock);
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; batch && i < bs->nstaged; i++)
        if (!strcmp(bs->staged[i].id, id)) { /* the same body twice in one job */
            *stored_size = bs->staged[i].len;
            pthread_mutex_unlock(&bs->lock);
            return 0;
        }
    size_t n = 0;
    unsigned char *frame = compress_mem(bs, data, len, &n);
    int rc = frame ? 0 : -1;
    if (frame && batch) {
        rc = stage(bs, id, frame, n);
        if (rc != 0) {
            free(frame);
            errno = ENOMEM;
        }
    }
    int e = errno;
    pthread_mutex_unlock(&bs->lock);
    if (rc == 0 && !batch) {
        if (store_blob_data_put(st, id, frame, n, 0) != STORE_OK) {
            rc = -1;
            e = EIO;
        }
        free(frame);
    }
    if (rc == 0) {
        *stored_size = n;
        return 0;
    }
    errno = e;
    return -1;
}

int blob_put(struct blobstore *bs, struct store *st, const void *data, size_t len, char id[BLOB_ID_SIZE],
             uint64_t *stored_size)
{
    if (len > BLOB_MAX_SIZE) {
        errno = EFBIG;
        return -1;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, bs->sha256, NULL) || mdlen != 32) {
        log_err("blob: SHA-256 failed");
        errno = EIO;
        return -1;
    }
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        id[2 * i] = hex[md[i] >> 4];
        id[2 * i + 1] = hex[md[i] & 15];
    }
    id[64] = '\0';
    uint64_t stored = 0;
    int rc = bs->where == BLOB_IN_DB ? put_db(bs, st, data, len, id, &stored)
                                     : put_file(bs, st, data, len, id, &stored);
    if (rc == 0 && stored_size)
        *stored_size = stored;
    return rc;
}

/* ------------------------------------------------------------------ batches */

void blob_batch_begin(struct blobstore *bs)
{
    pthread_mutex_lock(&bs->lock);
    bs->batch = 1;
    bs->ncreated = 0;
    staged_clear(bs);
    pthread_mutex_unlock(&bs->lock);
}

int blob_batch_flush(struct blobstore *bs, struct store *st)
{
    if (bs->where != BLOB_IN_DB)
        return 0;
    /* Only the batch's owner stages and flushes: no lock needed for the list.
     * Bodies no row names (the job put them but recorded nothing) are not
     * written. */
    int rc = 0;
    for (size_t i = 0; i < bs->nstaged && rc == 0; i++) {
        struct staged *s = &bs->staged[i];
        if (store_blob_data_put(st, s->id, s->data, s->len, 1) != STORE_OK) {
            log_err("blob %s: cannot write the body into the database", s->id);
            rc = -1;
        }
    }
    pthread_mutex_lock(&bs->lock);
    staged_clear(bs);
    pthread_mutex_unlock(&bs->lock);
    if (rc != 0)
        errno = EIO;
    return rc;
}

void blob_batch_drop(struct blobstore *bs)
{
    pthread_mutex_lock(&bs->lock);
    staged_clear(bs);
    pthread_mutex_unlock(&bs->lock);
}

int blob_batch_created(struct blobstore *bs, int (*cb)(const char *id, void *), void *arg)
{
    /* Only the batch's owner adds to the list, so no lock is needed to walk it. */
    for (size_t i = 0; i < bs->ncreated; i++) {
        int rc = cb(bs->created[i], arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int blob_batch_sync(struct blobstore *bs)
{
    if (bs->ncreated == 0) /* nothing new (or no files): every blob used was durable already */
        return 0;
    if (syncfs(bs->blobs_fd) == 0)
        return 0;
    int e = errno;
    log_err("blob: syncfs of the blob store failed, %zu new blob(s) not durable: %s", bs->ncreated,
            strerror(e));
    errno = e;
    return -1;
}

void blob_batch_end(struct blobstore *bs)
{
    pthread_mutex_lock(&bs->lock);
    bs->batch = 0;
    bs->ncreated = 0;
    staged_clear(bs);
    pthread_mutex_unlock(&bs->lock);
}

/* --------------------------------------------------------------------- get */

static int corrupt(const char *id, const char *why)
{
    log_err("blob %s: corrupt: %s", id, why);
    errno = EBADMSG;
    return -1;
}

/* Checks and decompresses one stored frame into a malloc'd buffer. */
static int decode(const char *id, const unsigned char *raw, size_t rawlen, unsigned char **data, size_t *len)
{
    /* Exactly one frame that says how big its content is; the checksum in the
     * frame is verified by ZSTD_decompress. */
    if (ZSTD_findFrameCompressedSize(raw, rawlen) != rawlen)
        return corrupt(id, "not a single zstd frame");
    unsigned long long content = ZSTD_getFrameContentSize(raw, rawlen);
    if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN ||
        content > BLOB_MAX_SIZE)
        return corrupt(id, "bad frame header");
    unsigned char *out = malloc(content ? (size_t)content : 1);
    if (!out) {
        errno = ENOMEM;
        return -1;
    }
    size_t n = ZSTD_decompress(out, (size_t)content, raw, rawlen);
    if (ZSTD_isError(n) || n != content) {
        free(out);
        return corrupt(id, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short content");
    }
    *data = out;
    *len = n;
    return 0;
}

static int get_file(struct blobstore *bs, const char *id, unsigned char **data, size_t *len)
{
    char rel[BLOB_ID_SIZE + 3];
    blob_relpath(id, rel);
    int fd = openat(bs->blobs_fd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        log_err("blob %s: cannot open: %s", id, strerror(e));
        errno = e;
        return -1;
    }
    struct stat sb;
    unsigned char *raw = NULL;
    int rc = fstat(fd, &sb);
    if (rc == 0 && (uint64_t)sb.st_size > ZSTD_compressBound(BLOB_MAX_SIZE)) {
        errno = EFBIG;
        rc = -1;
    }
    size_t rawlen = rc == 0 ? (size_t)sb.st_size : 0;
    if (rc == 0 && !(raw = malloc(rawlen ? rawlen : 1)))
        rc = -1;
    if (rc == 0)
        rc = read_all(fd, raw, rawlen);
    int e = errno;
    close(fd);
    if (rc != 0) {
        log_err("blob %s: cannot read: %s", id, strerror(e));
        free(raw);
        errno = e;
        return -1;
    }
    rc = decode(id, raw, rawlen, data, len);
    e = errno;
    free(raw);
    errno = e;
    return rc;
}

struct db_read {
    const char *id;
    unsigned char **data;
    size_t *len;
    int rc, err;
};

static int decode_row(const void *frame, size_t n, void *arg)
{
    struct db_read *r = arg;
    r->rc = decode(r->id, frame, n, r->data, r->len);
    r->err = errno;
    return 0;
}

static int get_db(struct blobstore *bs, const char *id, unsigned char **data, size_t *len)
{
    struct store *st = pool_take(bs);
    if (!st) {
        errno = EIO;
        return -1;
    }
    struct db_read r = {id, data, len, -1, EIO};
    int rc = store_blob_data_get(st, id, decode_row, &r);
    pool_give(bs, st);
    if (rc == STORE_OK) {
        errno = r.err;
        return r.rc;
    }
    if (rc == STORE_NOTFOUND) {
        log_err("blob %s: cannot open: not in the database", id);
        errno = ENOENT;
    } else {
        errno = EIO;
    }
    return -1;
}

int blob_get(struct blobstore *bs, const char *id, unsigned char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (!blob_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    return bs->where == BLOB_IN_DB ? get_db(bs, id, data, len) : get_file(bs, id, data, len);
}

/* ------------------------------------------------------------- maintenance */

int blob_unlink(struct blobstore *bs, const char *id)
{
    if (!blob_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    if (bs->where == BLOB_IN_DB) {
        struct store *st = pool_take(bs);
        int rc = st ? store_blob_data_delete(st, id) : STORE_ERR;
        if (st)
            pool_give(bs, st);
        if (rc != STORE_ERR)
            return 0;
        errno = EIO;
        return -1;
    }
    char rel[BLOB_ID_SIZE + 3];
    blob_relpath(id, rel);
    if (unlinkat(bs->blobs_fd, rel, 0) == 0 || errno == ENOENT)
        return 0;
    int e = errno;
    log_err("blob %s: cannot remove: %s", id, strerror(e));
    errno = e;
    return -1;
}

/*
 * The GC and content addressing across nodes. Several nodes may use the same
 * body (the same id) at the same time, and any node's GC may collect it when
 * its count falls to zero.
 *
 * Bodies in the database. The GC (G) runs, in one transaction:
 *   g1 DELETE FROM blobs WHERE id = ? AND refs = 0     (locks the row)
 *   g2 only if g1 deleted it: DELETE the blob_data row
 *   g3 COMMIT
 * A writer group that uses the blob (P, on another node) runs:
 *   p1 the job takes its reference (store_blob_ref, or the refs + 1 of
 *      store_message_insert after store_blob_add: an UPDATE or an INSERT ...
 *      ON CONFLICT DO UPDATE, both of which lock the row; an INSERT that meets
 *      a row being deleted waits for that transaction to end)
 *   p2 blob_batch_flush writes the body unless it is there (DO NOTHING)
 *   p3 COMMIT
 * With PostgreSQL's READ COMMITTED:
 * - p1 before g1: g1 waits for P's row lock; after p3 it reads the row again,
 *   finds refs > 0 and deletes nothing, so g2 does nothing. (If P failed, its
 *   lock went with it and G collects the blob as if P had never come.)
 * - g1 before p1: p1 waits for G; after g3 the row is gone, so P's INSERT
 *   makes a new one (a plain refs + 1 finds nothing: that job fails, 451, the
 *   client retries) and p2 finds no body and writes it. Rows and body commit
 *   together at p3.
 * - Outside the writer the body comes first (blob_put upserts it, which locks
 *   the body's row, then the caller records the blob): if G is between g1 and
 *   g2 then, G waits for the body's row and P for the blobs row; PostgreSQL
 *   aborts one of the two (a deadlock), which is tried again: the GC next
 *   round, the job by its client.
 * So a body is never removed under a committed reference.
 *
 * Files in a shared blob_dir. A put takes the blob's advisory lock shared
 * before it looks at the file and holds it until its rows commit
 * (put_file); whoever removes a file takes it exclusive first, without
 * waiting: the GC (below), a failed job's clean-up (blob_drop_unrecorded) and
 * start-up recovery. A remover that gets the lock knows no put is between its
 * look at the file and its commit: it checks the row and unlinks while it
 * holds the lock, and a put that comes later waits for it, finds no file and
 * writes it again. A remover that does not get it leaves the file alone (the
 * put will reference it; a GC tries again next round). The row lock orders a
 * GC against a refs + 1 as above. A file unlinked by a GC whose commit then
 * fails leaves the row at zero without its file, which is harmless: a put
 * writes the file again, the next round collects the row.
 *
 * On one node (SQLite) there is nothing to interleave: the write transaction
 * holds the whole database.
 */
int blob_forget(struct blobstore *bs, struct store *st, const char *id)
{
    int rc;
    if (bs->where == BLOB_IN_SHARED_FILES && (rc = store_blob_remove_lock(st, id)) != STORE_OK)
        return rc == STORE_EXISTS ? STORE_NOTFOUND : rc; /* in use right now */
    if ((rc = store_blob_forget(st, id)) != STORE_OK)
        return rc;
    if (bs->where == BLOB_IN_DB)
        return store_blob_data_delete(st, id) == STORE_ERR ? STORE_ERR : STORE_OK;
    /* The row is gone for good: a file that cannot be removed now (logged)
     * is an orphan, which start-up recovery removes. */
    blob_unlink(bs, id);
    return STORE_OK;
}

/* The lock-check-unlink of a removal in a shared blob_dir, in st's
 * transaction; 1 if the file went. */
static int remove_unrecorded_locked(struct blobstore *bs, struct store *st, const char *id)
{
    if (store_blob_remove_lock(st, id) != STORE_OK || store_blob_known(st, id) != 0)
        return 0;
    return blob_unlink(bs, id) == 0;
}

int blob_drop_unrecorded(struct blobstore *bs, struct store *st, const char *id)
{
    switch (bs->where) {
    case BLOB_IN_DB:
        return 0; /* a body without a row was never written */
    case BLOB_IN_FILES:
        return store_blob_known(st, id) == 0 && blob_unlink(bs, id) == 0;
    case BLOB_IN_SHARED_FILES:
        break;
    }
    if (store_in_transaction(st))
        return remove_unrecorded_locked(bs, st, id);
    if (store_begin(st) != STORE_OK)
        return 0;
    int gone = remove_unrecorded_locked(bs, st, id);
    store_rollback(st); /* nothing written: ending it releases the lock */
    return gone;
}

/* Opens a directory stream on name relative to dirfd (its own descriptor). */
static DIR *open_dir_at(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (!d)
        close(fd);
    return d;
}

int blob_foreach(struct blobstore *bs, int (*cb)(const char *id, void *), void *arg)
{
    if (bs->where == BLOB_IN_DB) {
        struct store *st = pool_take(bs);
        if (!st)
            return -1;
        int rc = store_blob_data_each(st, cb, arg);
        pool_give(bs, st);
        return rc == STORE_ERR ? -1 : 0;
    }
    DIR *top = open_dir_at(bs->blobs_fd, ".");
    if (!top) {
        log_err("blob: cannot list the blob store: %s", strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(top)) != NULL) {
        const char *fan = de->d_name;
        if (strlen(fan) != 2 || hexval(fan[0]) < 0 || hexval(fan[1]) < 0)
            continue;
        DIR *sub = open_dir_at(bs->blobs_fd, fan);
        if (!sub) {
            log_err("blob: cannot list blobs/%s: %s", fan, strerror(errno));
            rc = -1;
            break;
        }
        struct dirent *ce;
        while (rc == 0 && (ce = readdir(sub)) != NULL)
            if (blob_id_valid(ce->d_name) && !strncmp(ce->d_name, fan, 2))
                rc = cb(ce->d_name, arg);
        closedir(sub);
    }
    closedir(top);
    return rc;
}

int64_t blob_file_age(struct blobstore *bs, const char *id)
{
    if (bs->where == BLOB_IN_DB || !blob_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    char rel[BLOB_ID_SIZE + 3];
    blob_relpath(id, rel);
    struct stat sb;
    if (fstatat(bs->blobs_fd, rel, &sb, 0) != 0)
        return -1;
    int64_t age = (int64_t)time(NULL) - (int64_t)sb.st_mtime;
    return age < 0 ? 0 : age;
}

void blobstore_clean_tmp(struct blobstore *bs)
{
    if (bs->where == BLOB_IN_DB)
        return;
    DIR *d = open_dir_at(bs->tmp_fd, ".");
    if (!d) {
        log_err("blob: cannot list the tmp directory: %s", strerror(errno));
        return;
    }
    unsigned removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (unlinkat(bs->tmp_fd, de->d_name, 0) == 0)
            removed++;
        else
            log_warn("blob: cannot remove tmp/%s: %s", de->d_name, strerror(errno));
    }
    closedir(d);
    if (removed)
        log_info("recovery: removed %u unfinished file(s) from tmp", removed);
}
