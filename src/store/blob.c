/*
 * blob.c — the content-addressed, zstd-compressed message store of blob.h.
 *
 * A body is hashed first (SHA-256 through OpenSSL's EVP), so a body that is
 * already stored costs no compression and no write. A new one is compressed as
 * a stream into data_dir/tmp/<unique> (bounded memory whatever its size, with
 * zstd's content checksum so blob_get detects corruption), then renamed into
 * data_dir/blobs/<first two hex digits>/<id>. The fan-out keeps directories
 * small; their descriptors are opened once and kept, so a put costs no path
 * walks.
 *
 * Durability comes in two flavours. Alone, blob_put fsyncs the file before the
 * rename and the directory after it (and the parent when it created the fan-out
 * directory). Inside a batch (the group-commit writer), blob_put leaves that to
 * blob_batch_sync, which makes every blob of the group durable with one
 * syncfs(2) just before the group's COMMIT: one flush per group instead of two
 * per message. Either way a blob is durable before any row that names it commits.
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
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "store/store_internal.h"
#include "util/log.h"

/* Speed matters more than ratio on the accept path; level 1 still shrinks mail
 * (text, base64) by half or more. */
#define BLOB_ZSTD_LEVEL 1

struct blobstore {
    int blobs_fd; /* data_dir/blobs */
    int tmp_fd;   /* data_dir/tmp */
    EVP_MD *sha256;
    atomic_uint tmp_seq;

    pthread_mutex_t lock; /* the fields below; held for a whole put */
    int fan_fd[256];      /* blobs/00 .. blobs/ff, -1 until first used */
    ZSTD_CCtx *cctx;
    unsigned char *outbuf; /* ZSTD_CStreamOutSize() bytes */
    int batch;             /* inside blob_batch_begin .. blob_batch_end */
    char (*created)[BLOB_ID_SIZE]; /* blobs the batch wrote */
    size_t ncreated, capcreated;
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

int blobstore_open(const char *data_dir, struct blobstore **out, char *err, size_t errlen)
{
    *out = NULL;
    if (store_prepare_data_dir(data_dir, err, errlen) != 0)
        return -1;
    struct blobstore *bs = calloc(1, sizeof *bs);
    if (!bs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    bs->blobs_fd = bs->tmp_fd = -1;
    for (size_t i = 0; i < 256; i++)
        bs->fan_fd[i] = -1;
    pthread_mutex_init(&bs->lock, NULL);
    *out = bs; /* from here on blobstore_close cleans up */

    char path[1100];
    snprintf(path, sizeof path, "%s/blobs", data_dir);
    bs->blobs_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bs->blobs_fd >= 0) {
        snprintf(path, sizeof path, "%s/tmp", data_dir);
        bs->tmp_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (bs->blobs_fd < 0 || bs->tmp_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
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
    EVP_MD_free(bs->sha256);
    ZSTD_freeCCtx(bs->cctx);
    free(bs->outbuf);
    free(bs->created);
    pthread_mutex_destroy(&bs->lock);
    free(bs);
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

/* A blob that is already there: someone renamed it into place after an fsync of
 * its data; make sure its directory entry is on disk too before we count on it. */
static int existing_durable(struct blobstore *bs, int dirfd, const char *id)
{
    if (bs->batch) /* blob_batch_sync covers it */
        return 0;
    int fd = openat(dirfd, id, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
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

static int put_locked(struct blobstore *bs, const void *data, size_t len, const char *id,
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

int blob_put(struct blobstore *bs, const void *data, size_t len, char id[BLOB_ID_SIZE],
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
    pthread_mutex_lock(&bs->lock);
    int rc = put_locked(bs, data, len, id, &stored);
    int e = errno;
    pthread_mutex_unlock(&bs->lock);
    if (rc == 0 && stored_size)
        *stored_size = stored;
    errno = e;
    return rc;
}

/* ------------------------------------------------------------------ batches */

void blob_batch_begin(struct blobstore *bs)
{
    pthread_mutex_lock(&bs->lock);
    bs->batch = 1;
    bs->ncreated = 0;
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
    if (bs->ncreated == 0) /* nothing new: every blob used was durable already */
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
    pthread_mutex_unlock(&bs->lock);
}

/* --------------------------------------------------------------------- get */

static int corrupt(const char *id, const char *why)
{
    log_err("blob %s: corrupt: %s", id, why);
    errno = EBADMSG;
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

    /* Exactly one frame that says how big its content is; the checksum in the
     * frame is verified by ZSTD_decompress. */
    if (ZSTD_findFrameCompressedSize(raw, rawlen) != rawlen) {
        free(raw);
        return corrupt(id, "not a single zstd frame");
    }
    unsigned long long content = ZSTD_getFrameContentSize(raw, rawlen);
    if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN ||
        content > BLOB_MAX_SIZE) {
        free(raw);
        return corrupt(id, "bad frame header");
    }
    unsigned char *out = malloc(content ? (size_t)content : 1);
    if (!out) {
        free(raw);
        errno = ENOMEM;
        return -1;
    }
    size_t n = ZSTD_decompress(out, (size_t)content, raw, rawlen);
    free(raw);
    if (ZSTD_isError(n) || n != content) {
        free(out);
        return corrupt(id, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short content");
    }
    *data = out;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------- maintenance */

int blob_unlink(struct blobstore *bs, const char *id)
{
    if (!blob_id_valid(id)) {
        errno = EINVAL;
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

void blobstore_clean_tmp(struct blobstore *bs)
{
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
