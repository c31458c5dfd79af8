/*
 * test_store_blob.c — the content-addressed blob store and start-up recovery:
 * round trips (empty, small, large, incompressible), the SHA-256 name and the
 * fan-out path, deduplication, corruption detected as an error (never a crash),
 * write errors surfacing as -1/errno with nothing left behind, batches,
 * concurrent readers, the GC's step (blob_forget) and store_recover removing
 * orphans and tmp leftovers.
 *
 * On SQLite the bodies are files in data_dir/blobs; on PostgreSQL (NAME_pg)
 * they are rows of blob_data, so what looks at files directly checks the row
 * there instead or is skipped. blob_dir puts files in a directory of their
 * own: on PostgreSQL one that several nodes share, and the races between two
 * nodes (two connections and blob stores here, with explicit transactions)
 * are played out step by step for both kinds of storage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <zstd.h>

#include "store/blob.h"
#include "test_store_fixture.h"
#include "util/log.h"

struct fixture {
    struct tmp_data_dir t;
    struct store *st; /* the connection blob_put writes with */
    struct blobstore *bs;
};

static int open_fixture(void **state, const char *blob_dir)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || tmp_data_dir_make(&f->t, "test_store_blob") != 0)
        return -1;
    if (blob_dir)
        snprintf(f->t.cfg.blob_dir, sizeof f->t.cfg.blob_dir, "%s/%s", f->t.root, blob_dir);
    char err[512];
    if (tmp_store_open(&f->t, &f->st) != 0)
        return -1;
    if (blobstore_open(&f->t.cfg, &f->bs, err, sizeof err) != 0) {
        fprintf(stderr, "blobstore_open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return open_fixture(state, NULL);
}

/* Files in a blob_dir of their own (shared between nodes on PostgreSQL). */
static int setup_blob_dir(void **state)
{
    return open_fixture(state, "shared blobs");
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    blobstore_close(f->bs);
    store_close(f->st);
    tmp_data_dir_remove(&f->t);
    free(f);
    return 0;
}

static int in_db(struct fixture *f)
{
    return tmp_bodies_in_db(&f->t);
}

#define skip_in_db(f, why)                                                                         \
    do {                                                                                           \
        if (in_db(f)) {                                                                            \
            fprintf(stderr, "skipped with bodies in the database: %s\n", why);                     \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static void blob_path(struct fixture *f, const char *id, char *out, size_t outlen)
{
    tmp_blob_path(&f->t, id, out, outlen);
}

/* The stored (compressed) size of a body: its file's or its row's. */
static uint64_t stored_bytes(struct fixture *f, const char *id)
{
    if (in_db(f)) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT octet_length(data) FROM blob_data WHERE id = '%s'", id);
        return (uint64_t)tmp_raw_count(&f->t, sql);
    }
    char path[1200];
    blob_path(f, id, path, sizeof path);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (uint64_t)sb.st_size;
}

/* The stored bytes of a body, malloc'd (*len gets their number). */
static unsigned char *stored_copy(struct fixture *f, const char *id, size_t *len)
{
    *len = stored_bytes(f, id);
    unsigned char *p = malloc(*len ? *len : 1);
    assert_non_null(p);
    if (in_db(f)) {
        PGconn *c = tmp_pg_open(&f->t);
        const char *vals[1] = {id};
        PGresult *r = PQexecParams(c, "SELECT data FROM blob_data WHERE id = $1", 1, NULL, vals, NULL, NULL, 1);
        assert_int_equal(PQntuples(r), 1);
        assert_int_equal((size_t)PQgetlength(r, 0, 0), *len);
        memcpy(p, PQgetvalue(r, 0, 0), *len);
        PQclear(r);
        PQfinish(c);
        return p;
    }
    char path[1200];
    blob_path(f, id, path, sizeof path);
    int fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, p, *len), (ssize_t)*len);
    close(fd);
    return p;
}

/* Deterministic pseudo-random bytes (incompressible). */
static void fill_random(unsigned char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (unsigned char)(seed >> 24);
    }
}

static void round_trip(struct fixture *f, const void *data, size_t len)
{
    char id[BLOB_ID_SIZE];
    uint64_t stored = 0;
    assert_int_equal(blob_put(f->bs, f->st, data, len, id, &stored), 0);
    assert_true(blob_id_valid(id));
    assert_int_equal(stored_bytes(f, id), stored);
    unsigned char *back = NULL;
    size_t backlen = 99;
    assert_int_equal(blob_get(f->bs, id, &back, &backlen), 0);
    assert_int_equal(backlen, len);
    if (len)
        assert_memory_equal(back, data, len);
    free(back);
}

static void test_round_trips(void **state)
{
    struct fixture *f = *state;
    round_trip(f, "", 0);
    round_trip(f, "Subject: hi\r\n\r\nhello\r\n", 22);
    size_t big = 3 * 1024 * 1024 + 17; /* several zstd stream blocks */
    unsigned char *p = malloc(big);
    assert_non_null(p);
    fill_random(p, big, 7);
    round_trip(f, p, big);
    for (size_t i = 0; i < big; i++)
        p[i] = (unsigned char)("abcdefgh\r\n"[i % 10]);
    round_trip(f, p, big);
    free(p);
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 0);
}

static void test_name_is_sha256(void **state)
{
    struct fixture *f = *state;
    char id[BLOB_ID_SIZE];
    uint64_t stored = 0;
    assert_int_equal(blob_put(f->bs, f->st, "abc", 3, id, &stored), 0);
    assert_string_equal(id, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(tmp_body_exists(&f->t, id));
    if (!in_db(f)) {
        char path[1200];
        snprintf(path, sizeof path, "%s/blobs/ba/%s", f->t.cfg.data_dir, id);
        assert_int_equal(access(path, F_OK), 0);
    }
}

static void test_dedupe(void **state)
{
    struct fixture *f = *state;
    const char body[] = "From: a@b\r\n\r\nsame body\r\n";
    char id1[BLOB_ID_SIZE], id2[BLOB_ID_SIZE], id3[BLOB_ID_SIZE];
    uint64_t s1 = 0, s2 = 0;
    assert_int_equal(blob_put(f->bs, f->st, body, sizeof body - 1, id1, &s1), 0);
    char path[1200];
    blob_path(f, id1, path, sizeof path);
    struct stat before, after;
    if (!in_db(f))
        assert_int_equal(stat(path, &before), 0);
    assert_int_equal(blob_put(f->bs, f->st, body, sizeof body - 1, id2, &s2), 0);
    assert_string_equal(id1, id2);
    assert_int_equal(s1, s2);
    assert_int_equal(tmp_count_bodies(&f->t), 1);
    if (!in_db(f)) {
        assert_int_equal(stat(path, &after), 0);
        assert_int_equal(before.st_ino, after.st_ino); /* not rewritten */
    }
    assert_int_equal(blob_put(f->bs, f->st, body, sizeof body - 2, id3, NULL), 0);
    assert_string_not_equal(id1, id3);
    assert_int_equal(tmp_count_bodies(&f->t), 2);
    if (!in_db(f)) {
        char fan[1200];
        snprintf(fan, sizeof fan, "blobs/%.2s", id1);
        int n = tmp_count_entries(&f->t, fan);
        assert_true(n == 1 || (n == 2 && !strncmp(id1, id3, 2)));
        assert_int_equal(tmp_count_entries(&f->t, "tmp"), 0);
    }
}

/* Replaces the stored bytes of body id (its file, or its row). */
static void write_stored(struct fixture *f, const char *id, const void *data, size_t len)
{
    if (in_db(f)) {
        PGconn *c = tmp_pg_open(&f->t);
        const char *vals[2] = {data, id};
        int lens[2] = {(int)len, 0}, fmts[2] = {1, 0};
        PGresult *r = PQexecParams(c, "UPDATE blob_data SET data = $1 WHERE id = $2", 2, NULL, vals, lens, fmts, 0);
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        assert_string_equal(PQcmdTuples(r), "1");
        PQclear(r);
        PQfinish(c);
        return;
    }
    char path[1200];
    blob_path(f, id, path, sizeof path);
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void expect_corrupt(struct fixture *f, const char *id)
{
    unsigned char *data = (unsigned char *)"untouched";
    size_t len = 5;
    errno = 0;
    assert_int_equal(blob_get(f->bs, id, &data, &len), -1);
    assert_int_equal(errno, EBADMSG);
    assert_null(data);
    assert_int_equal(len, 0);
}

static void test_corruption_detected(void **state)
{
    struct fixture *f = *state;
    unsigned char body[20000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (unsigned char)("The quick brown fox\r\n"[i % 21]);
    char id[BLOB_ID_SIZE];
    uint64_t stored = 0;
    assert_int_equal(blob_put(f->bs, f->st, body, sizeof body, id, &stored), 0);
    size_t goodlen = 0;
    unsigned char *good = stored_copy(f, id, &goodlen);
    assert_int_equal(goodlen, stored);

    /* Garbage instead of a zstd frame. */
    write_stored(f, id, "this is not zstd at all", 23);
    expect_corrupt(f, id);
    /* Empty. */
    write_stored(f, id, "", 0);
    expect_corrupt(f, id);
    /* Truncated frame. */
    write_stored(f, id, good, stored / 2);
    expect_corrupt(f, id);
    /* Trailing junk after the frame. */
    unsigned char *longer = malloc(stored + 4);
    memcpy(longer, good, stored);
    memcpy(longer + stored, "junk", 4);
    write_stored(f, id, longer, stored + 4);
    expect_corrupt(f, id);
    free(longer);
    /* One flipped bit in the middle: caught by the frame checksum or the decoder. */
    good[stored / 2] ^= 0x10;
    write_stored(f, id, good, stored);
    expect_corrupt(f, id);
    good[stored / 2] ^= 0x10;
    /* A frame that does not state its content size. */
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    unsigned char frame[1024];
    ZSTD_inBuffer in = {"hello", 5, 0};
    ZSTD_outBuffer out = {frame, sizeof frame, 0};
    assert_int_equal(ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end), 0);
    ZSTD_freeCCtx(cctx);
    write_stored(f, id, frame, out.pos);
    expect_corrupt(f, id);

    /* Restored: readable again. */
    write_stored(f, id, good, stored);
    unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(f->bs, id, &data, &len), 0);
    assert_int_equal(len, sizeof body);
    assert_memory_equal(data, body, len);
    free(data);
    free(good);
}

static void test_bad_ids_and_missing(void **state)
{
    struct fixture *f = *state;
    unsigned char *data = NULL;
    size_t len = 0;
    errno = 0;
    assert_int_equal(blob_get(f->bs, "../../lifeboat.db", &data, &len), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(blob_get(f->bs, "ABCDEF", &data, &len), -1);
    assert_int_equal(blob_unlink(f->bs, "../tmp"), -1);
    assert_false(blob_id_valid("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    assert_false(blob_id_valid("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
    assert_false(blob_id_valid("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015add"));
    errno = 0;
    assert_int_equal(blob_get(f->bs, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                              &data, &len),
                     -1);
    assert_int_equal(errno, ENOENT);
    char id[BLOB_ID_SIZE];
    errno = 0;
    assert_int_equal(blob_put(f->bs, f->st, "x", (size_t)BLOB_MAX_SIZE + 1, id, NULL), -1);
    assert_int_equal(errno, EFBIG);
}

static void test_unlink(void **state)
{
    struct fixture *f = *state;
    char id[BLOB_ID_SIZE];
    assert_int_equal(blob_put(f->bs, f->st, "bye", 3, id, NULL), 0);
    assert_true(tmp_body_exists(&f->t, id));
    assert_int_equal(blob_unlink(f->bs, id), 0);
    assert_false(tmp_body_exists(&f->t, id));
    assert_int_equal(blob_unlink(f->bs, id), 0); /* already gone: fine */
    /* And it can be stored again. */
    assert_int_equal(blob_put(f->bs, f->st, "bye", 3, id, NULL), 0);
    assert_true(tmp_body_exists(&f->t, id));
}

/* A write error (here the file size limit, the way ENOSPC would hit) is -1 with
 * errno, and leaves neither a blob nor a temporary file. */
static void test_write_error_surfaces(void **state)
{
    struct fixture *f = *state;
    skip_in_db(f, "the file size limit is about files");
    size_t n = 512 * 1024;
    unsigned char *p = malloc(n);
    fill_random(p, n, 3);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    char id[BLOB_ID_SIZE];
    errno = 0;
    int rc = blob_put(f->bs, f->st, p, n, id, NULL);
    int e = errno;
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, -1);
    assert_int_equal(e, EFBIG);
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 0);
    char path[1200];
    blob_path(f, id, path, sizeof path);
    assert_int_equal(access(path, F_OK), -1);
    /* Once the condition is gone the same put works. */
    assert_int_equal(blob_put(f->bs, f->st, p, n, id, NULL), 0);
    assert_int_equal(access(path, F_OK), 0);
    free(p);
}

struct ids {
    char id[8][BLOB_ID_SIZE];
    int n;
};

static int collect_id(const char *id, void *arg)
{
    struct ids *c = arg;
    if (c->n < 8)
        memcpy(c->id[c->n], id, BLOB_ID_SIZE);
    c->n++;
    return 0;
}

static int has_id(const struct ids *c, const char *id)
{
    for (int i = 0; i < c->n && i < 8; i++)
        if (!strcmp(c->id[i], id))
            return 1;
    return 0;
}

static void test_foreach_and_clean_tmp(void **state)
{
    struct fixture *f = *state;
    char a[BLOB_ID_SIZE], b[BLOB_ID_SIZE];
    assert_int_equal(blob_put(f->bs, f->st, "one", 3, a, NULL), 0);
    assert_int_equal(blob_put(f->bs, f->st, "two", 3, b, NULL), 0);
    char path[1200];
    if (!in_db(f)) {
        /* Junk that is not a blob is ignored. */
        snprintf(path, sizeof path, "%s/blobs/%.2s/README", f->t.cfg.data_dir, a);
        fclose(fopen(path, "w"));
        snprintf(path, sizeof path, "%s/blobs/zz", f->t.cfg.data_dir);
        mkdir(path, 0700);
    }
    struct ids c = {0};
    assert_int_equal(blob_foreach(f->bs, collect_id, &c), 0);
    assert_int_equal(c.n, 2);
    assert_true(has_id(&c, a) && has_id(&c, b));
    if (in_db(f))
        return; /* no tmp/ */

    snprintf(path, sizeof path, "%s/tmp/leftover.1", f->t.cfg.data_dir);
    fclose(fopen(path, "w"));
    snprintf(path, sizeof path, "%s/tmp/leftover.2", f->t.cfg.data_dir);
    fclose(fopen(path, "w"));
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 2);
    blobstore_clean_tmp(f->bs);
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 0);
}

/* Files: the batch writes them at once and syncs them together; the writer
 * removes the ones no row names (blob_batch_created). */
static void batch_files(struct fixture *f)
{
    char old[BLOB_ID_SIZE], a[BLOB_ID_SIZE], b[BLOB_ID_SIZE], again[BLOB_ID_SIZE];
    assert_int_equal(blob_put(f->bs, f->st, "before", 6, old, NULL), 0);
    blob_batch_begin(f->bs);
    assert_int_equal(blob_put(f->bs, f->st, "batch one", 9, a, NULL), 0);
    assert_int_equal(blob_put(f->bs, f->st, "batch two", 9, b, NULL), 0);
    assert_int_equal(blob_put(f->bs, f->st, "before", 6, again, NULL), 0); /* existed: not created */
    assert_int_equal(blob_put(f->bs, f->st, "batch one", 9, again, NULL), 0);
    assert_int_equal(blob_batch_flush(f->bs, f->st), 0); /* nothing to do for files */
    struct ids c = {0};
    assert_int_equal(blob_batch_created(f->bs, collect_id, &c), 0);
    assert_int_equal(c.n, 2);
    assert_true(has_id(&c, a) && has_id(&c, b));
    assert_int_equal(blob_batch_sync(f->bs), 0);
    blob_batch_end(f->bs);
    c.n = 0;
    assert_int_equal(blob_batch_created(f->bs, collect_id, &c), 0);
    assert_int_equal(c.n, 0);
    unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(f->bs, b, &data, &len), 0);
    assert_int_equal(len, 9);
    assert_memory_equal(data, "batch two", 9);
    free(data);
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 0);
}

/* The database: a body is staged until its job ends; flush writes the ones
 * a row names, inside the transaction; drop forgets a failed job's. */
static void batch_db(struct fixture *f)
{
    char a[BLOB_ID_SIZE], b[BLOB_ID_SIZE], c[BLOB_ID_SIZE], again[BLOB_ID_SIZE];
    uint64_t sa = 0, sagain = 0;
    assert_int_equal(store_begin(f->st), STORE_OK);
    blob_batch_begin(f->bs);
    assert_int_equal(blob_put(f->bs, f->st, "batch one", 9, a, &sa), 0);
    assert_int_equal(blob_put(f->bs, f->st, "batch one", 9, again, &sagain), 0); /* staged once */
    assert_int_equal(sa, sagain);
    assert_int_equal(blob_put(f->bs, f->st, "batch two", 9, b, NULL), 0);
    assert_int_equal(tmp_count_bodies(&f->t), 0); /* staged, not written */
    assert_int_equal(store_blob_add(f->st, a, 9, sa), STORE_OK); /* b: recorded by nobody */
    assert_int_equal(blob_batch_flush(f->bs, f->st), 0);
    /* A job that failed. */
    assert_int_equal(blob_put(f->bs, f->st, "batch three", 11, c, NULL), 0);
    blob_batch_drop(f->bs);
    assert_int_equal(blob_batch_flush(f->bs, f->st), 0);
    struct ids ids = {0};
    assert_int_equal(blob_batch_created(f->bs, collect_id, &ids), 0);
    assert_int_equal(ids.n, 0); /* no files */
    assert_int_equal(blob_batch_sync(f->bs), 0);
    assert_int_equal(tmp_count_bodies(&f->t), 0); /* not committed yet */
    assert_int_equal(store_commit(f->st), STORE_OK);
    blob_batch_end(f->bs);
    assert_true(tmp_body_exists(&f->t, a));
    assert_false(tmp_body_exists(&f->t, b));
    assert_false(tmp_body_exists(&f->t, c));
    assert_int_equal(stored_bytes(f, a), sa);
    unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(f->bs, a, &data, &len), 0);
    assert_int_equal(len, 9);
    assert_memory_equal(data, "batch one", 9);
    free(data);
}

static void test_batch(void **state)
{
    struct fixture *f = *state;
    if (in_db(f))
        batch_db(f);
    else
        batch_files(f);
}

struct reader {
    struct blobstore *bs;
    const char (*ids)[BLOB_ID_SIZE];
    int failures;
};

static void *read_many(void *arg)
{
    struct reader *r = arg;
    for (int i = 0; i < 200; i++) {
        unsigned char *data = NULL;
        size_t len = 0;
        if (blob_get(r->bs, r->ids[i % 4], &data, &len) != 0 || len != 4096)
            r->failures++;
        free(data);
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    struct fixture *f = *state;
    char ids[4][BLOB_ID_SIZE];
    unsigned char body[4096];
    for (int i = 0; i < 4; i++) {
        fill_random(body, sizeof body, (uint32_t)i + 100);
        assert_int_equal(blob_put(f->bs, f->st, body, sizeof body, ids[i], NULL), 0);
    }
    pthread_t th[4];
    struct reader r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct reader){.bs = f->bs, .ids = (const char(*)[BLOB_ID_SIZE])ids};
        assert_int_equal(pthread_create(&th[i], NULL, read_many, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].failures, 0);
    }
}

/* store_recover: bodies without rows go, bodies with rows (any count) stay, tmp empties. */
static void test_recover_removes_orphans(void **state)
{
    struct fixture *f = *state;
    struct store *st = NULL;
    char err[512];
    assert_int_equal(store_open(&f->t.cfg, &st, err, sizeof err), STORE_OK);
    char kept[BLOB_ID_SIZE], zero[BLOB_ID_SIZE], orphan[BLOB_ID_SIZE];
    /* Each put outside a transaction commits its body alone, as a crash
     * before the rows' commit would leave it. */
    assert_int_equal(blob_put(f->bs, f->st, "referenced", 10, kept, NULL), 0);
    assert_int_equal(blob_put(f->bs, f->st, "count zero", 10, zero, NULL), 0);
    assert_int_equal(blob_put(f->bs, f->st, "crashed before commit", 21, orphan, NULL), 0);
    assert_int_equal(store_blob_ref(st, kept, 10, 10), STORE_OK);
    assert_int_equal(store_blob_add(st, zero, 10, 10), STORE_OK);
    if (!in_db(f)) {
        char path[1200];
        snprintf(path, sizeof path, "%s/tmp/%.16s.123.0", f->t.cfg.data_dir, orphan);
        fclose(fopen(path, "w"));
    }

    assert_int_equal(store_recover(st, f->bs), 0);
    assert_int_equal(store_in_transaction(st), 0);
    struct ids c = {0};
    assert_int_equal(blob_foreach(f->bs, collect_id, &c), 0);
    assert_int_equal(c.n, 2);
    assert_true(has_id(&c, kept));
    assert_true(has_id(&c, zero)); /* the writer's GC removes it, with its row */
    assert_false(has_id(&c, orphan));
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 0);
    /* Idempotent. */
    assert_int_equal(store_recover(st, f->bs), 0);
    c.n = 0;
    assert_int_equal(blob_foreach(f->bs, collect_id, &c), 0);
    assert_int_equal(c.n, 2);
    store_close(st);
}

static int64_t refs_of(struct fixture *f, const char *id)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT coalesce(max(refs), -1) FROM blobs WHERE id = '%s'", id);
    return tmp_raw_count(&f->t, sql);
}

/* Records a body with no reference (committed): what the GC finds. */
static void record_unreferenced(struct fixture *f, const char *body, char id[BLOB_ID_SIZE])
{
    uint64_t stored = 0;
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(blob_put(f->bs, f->st, body, strlen(body), id, &stored), 0);
    assert_int_equal(store_blob_add(f->st, id, strlen(body), stored), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
}

static void expect_body(struct fixture *f, const char *id, const char *body)
{
    unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(blob_get(f->bs, id, &data, &len), 0);
    assert_int_equal(len, strlen(body));
    assert_memory_equal(data, body, len);
    free(data);
}

/* blob_forget, the GC's step: a referenced blob stays; one at zero goes with its body. */
static void test_forget(void **state)
{
    struct fixture *f = *state;
    char kept[BLOB_ID_SIZE], zero[BLOB_ID_SIZE];
    record_unreferenced(f, "kept body", kept);
    record_unreferenced(f, "zero body", zero);
    assert_int_equal(store_blob_ref(f->st, kept, 9, 9), STORE_OK);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(blob_forget(f->bs, f->st, kept), STORE_NOTFOUND);
    assert_int_equal(blob_forget(f->bs, f->st, zero), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_true(tmp_body_exists(&f->t, kept));
    assert_int_equal(refs_of(f, kept), 1);
    assert_false(tmp_body_exists(&f->t, zero));
    assert_int_equal(refs_of(f, zero), -1);
    assert_int_equal(blob_forget(f->bs, f->st, zero), STORE_NOTFOUND);
    expect_body(f, kept, "kept body");
}

/* blob_dir: the files live there (and tmp/<node_name>), not in data_dir. */
static void test_blob_dir(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(blobstore_where(f->bs), tmp_is_pg(&f->t) ? BLOB_IN_SHARED_FILES : BLOB_IN_FILES);
    char id[BLOB_ID_SIZE];
    uint64_t stored = 0;
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(blob_put(f->bs, f->st, "in blob_dir", 11, id, &stored), 0);
    assert_int_equal(store_blob_add(f->st, id, 11, stored), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    char path[1200];
    snprintf(path, sizeof path, "%s/%.2s/%s", f->t.cfg.blob_dir, id, id);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/tmp/%s", f->t.cfg.blob_dir, f->t.cfg.node_name);
    DIR *d = opendir(path);
    assert_non_null(d);
    closedir(d);
    assert_int_equal(tmp_count_bodies(&f->t), 1);
    assert_int_equal(tmp_count_entries(&f->t, "blobs"), 0);
    expect_body(f, id, "in blob_dir");
    /* A put in a shared directory needs the caller's transaction. */
    errno = 0;
    assert_int_equal(blob_put(f->bs, NULL, "x", 1, id, NULL), tmp_is_pg(&f->t) ? -1 : 0);
}

static void set_old(struct fixture *f, const char *id)
{
    char path[1200];
    blob_path(f, id, path, sizeof path);
    struct timespec two_hours_ago[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, two_hours_ago, 0), 0);
}

/* Recovery in blob_dir: on one node every orphan goes; shared, only old ones
 * that no put of another node holds. */
static void test_blob_dir_recover(void **state)
{
    struct fixture *f = *state;
    char young[BLOB_ID_SIZE], old[BLOB_ID_SIZE], held[BLOB_ID_SIZE];
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(blob_put(f->bs, f->st, "young orphan", 12, young, NULL), 0);
    assert_int_equal(blob_put(f->bs, f->st, "old orphan", 10, old, NULL), 0);
    assert_int_equal(blob_put(f->bs, f->st, "held orphan", 11, held, NULL), 0);
    assert_int_equal(store_rollback(f->st), STORE_OK); /* files without rows */
    set_old(f, old);
    set_old(f, held);
    char tmpfile[1200];
    snprintf(tmpfile, sizeof tmpfile, "%s/tmp/%s/leftover", f->t.cfg.blob_dir, f->t.cfg.node_name);
    fclose(fopen(tmpfile, "w"));

    if (!tmp_is_pg(&f->t)) { /* one node: every orphan goes */
        assert_int_equal(store_recover(f->st, f->bs), 0);
        assert_int_equal(access(tmpfile, F_OK), -1);
        assert_int_equal(tmp_count_bodies(&f->t), 0);
        return;
    }
    /* Another node is between its put of "held orphan" and its commit (its put
     * renewed the file's time; make it old again to see the lock at work). */
    struct store *other = NULL;
    assert_int_equal(tmp_store_open(&f->t, &other), 0);
    assert_int_equal(store_begin(other), STORE_OK);
    char again[BLOB_ID_SIZE];
    assert_int_equal(blob_put(f->bs, other, "held orphan", 11, again, NULL), 0);
    set_old(f, held);

    assert_int_equal(store_recover(f->st, f->bs), 0);
    assert_int_equal(access(tmpfile, F_OK), -1);
    assert_false(tmp_body_exists(&f->t, old));
    assert_true(tmp_body_exists(&f->t, young));
    assert_true(tmp_body_exists(&f->t, held));
    assert_int_equal(store_rollback(other), STORE_OK);
    store_close(other);
    assert_int_equal(store_recover(f->st, f->bs), 0);
    assert_false(tmp_body_exists(&f->t, held)); /* old and free now */
    assert_true(tmp_body_exists(&f->t, young));
}

/* ---------------------------------------------------- two nodes, one blob */

struct node {
    struct store *st;
    struct blobstore *bs;
};

static void node_open(struct fixture *f, struct node *n)
{
    char err[512];
    assert_int_equal(tmp_store_open(&f->t, &n->st), 0);
    assert_int_equal(blobstore_open(&f->t.cfg, &n->bs, err, sizeof err), 0);
}

static void node_close(struct node *n)
{
    blobstore_close(n->bs);
    store_close(n->st);
}

/* Waits until some connection to the test's database waits for a lock. */
static void wait_for_lock_wait(struct fixture *f)
{
    for (int i = 0; i < 2000; i++) {
        if (tmp_raw_count(&f->t, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND wait_event_type = 'Lock'") > 0)
            return;
        usleep(5000);
    }
    fail_msg("no connection waits for a lock");
}

/* What a writer group on a node does with a body: in a transaction, put it,
 * take a reference, flush (and, commit = 1, commit). */
struct group {
    struct node *n;
    const char *body;
    int commit;
    char id[BLOB_ID_SIZE];
    int rc;
};

static int group_run(struct group *g)
{
    uint64_t stored = 0;
    if (store_begin(g->n->st) != STORE_OK)
        return STORE_ERR;
    blob_batch_begin(g->n->bs);
    int rc = blob_put(g->n->bs, g->n->st, g->body, strlen(g->body), g->id, &stored) == 0 ? STORE_OK : STORE_ERR;
    if (rc == STORE_OK)
        rc = store_blob_ref(g->n->st, g->id, strlen(g->body), stored);
    if (rc == STORE_OK && blob_batch_flush(g->n->bs, g->n->st) != 0)
        rc = STORE_ERR;
    if (rc == STORE_OK && blob_batch_sync(g->n->bs) != 0)
        rc = STORE_ERR;
    if (g->commit)
        rc = rc == STORE_OK ? store_commit(g->n->st) : (store_rollback(g->n->st), rc);
    blob_batch_end(g->n->bs);
    return rc;
}

static void *group_thread(void *arg)
{
    struct group *g = arg;
    g->rc = group_run(g);
    return NULL;
}

/* The GC of one blob on node n, in a transaction left open. */
struct gc {
    struct node *n;
    const char *id;
    int rc;
};

static void *gc_thread(void *arg)
{
    struct gc *g = arg;
    g->rc = store_begin(g->n->st) == STORE_OK ? blob_forget(g->n->bs, g->n->st, g->id) : STORE_ERR;
    return NULL;
}

static void skip_unless_shared(struct fixture *f, int shared)
{
    if (!tmp_is_pg(&f->t) || (blobstore_where(f->bs) == BLOB_IN_SHARED_FILES) != shared) {
        fprintf(stderr, "skipped: needs PostgreSQL with bodies %s\n", shared ? "in a shared blob_dir" : "in the database");
        skip();
    }
}

/* Node P takes a reference first: node G's GC waits for it, then leaves the
 * blob alone. */
static void race_use_first(struct fixture *f)
{
    char id[BLOB_ID_SIZE];
    record_unreferenced(f, "raced body", id);
    struct node p, g;
    node_open(f, &p);
    node_open(f, &g);
    struct group use = {.n = &p, .body = "raced body"};
    assert_int_equal(group_run(&use), STORE_OK); /* open: row locked */
    struct gc gc = {.n = &g, .id = id};
    pthread_t th;
    if (blobstore_where(f->bs) == BLOB_IN_SHARED_FILES) {
        gc_thread(&gc); /* the lock is taken without waiting: in use, skipped */
    } else {
        assert_int_equal(pthread_create(&th, NULL, gc_thread, &gc), 0);
        wait_for_lock_wait(f);
    }
    assert_int_equal(store_commit(p.st), STORE_OK);
    if (blobstore_where(f->bs) != BLOB_IN_SHARED_FILES)
        pthread_join(th, NULL);
    assert_int_equal(gc.rc, STORE_NOTFOUND);
    assert_int_equal(store_commit(g.st), STORE_OK);
    assert_int_equal(refs_of(f, id), 1);
    assert_true(tmp_body_exists(&f->t, id));
    expect_body(f, id, "raced body");
    node_close(&p);
    node_close(&g);
}

/* Node G's GC deletes first: node P's group waits for it and then stores the
 * blob again, row and body. */
static void race_gc_first(struct fixture *f)
{
    char id[BLOB_ID_SIZE];
    record_unreferenced(f, "collected body", id);
    struct node p, g;
    node_open(f, &p);
    node_open(f, &g);
    struct gc gc = {.n = &g, .id = id};
    gc_thread(&gc);
    assert_int_equal(gc.rc, STORE_OK); /* row and body deleted, not committed */
    if (blobstore_where(f->bs) == BLOB_IN_SHARED_FILES)
        assert_false(tmp_body_exists(&f->t, id)); /* unlinked already */
    struct group use = {.n = &p, .body = "collected body", .commit = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, group_thread, &use), 0);
    wait_for_lock_wait(f);
    assert_int_equal(store_commit(g.st), STORE_OK);
    pthread_join(th, NULL);
    assert_int_equal(use.rc, STORE_OK);
    assert_int_equal(refs_of(f, id), 1);
    assert_true(tmp_body_exists(&f->t, id));
    expect_body(f, id, "collected body");
    node_close(&p);
    node_close(&g);
}

static void test_race_db(void **state)
{
    struct fixture *f = *state;
    skip_unless_shared(f, 0);
    race_use_first(f);
    race_gc_first(f);
}

static void test_race_shared_files(void **state)
{
    struct fixture *f = *state;
    skip_unless_shared(f, 1);
    race_use_first(f);
    race_gc_first(f);
}

/* Outside the writer the body comes before the row: a GC between its two
 * deletes and such a put deadlock, PostgreSQL aborts one, and either way no
 * row is left without its body. */
static void test_race_db_deadlock(void **state)
{
    struct fixture *f = *state;
    skip_unless_shared(f, 0);
    char id[BLOB_ID_SIZE];
    record_unreferenced(f, "deadlocked body", id);
    struct node p, g;
    node_open(f, &p);
    node_open(f, &g);
    assert_int_equal(store_begin(p.st), STORE_OK);
    uint64_t stored = 0;
    assert_int_equal(blob_put(p.bs, p.st, "deadlocked body", 15, id, &stored), 0); /* body row locked */
    struct gc gc = {.n = &g, .id = id};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, gc_thread, &gc), 0); /* deletes the row, waits for the body */
    wait_for_lock_wait(f);
    int rc = store_blob_ref(p.st, id, 15, stored); /* waits for G's row: a deadlock */
    if (rc == STORE_OK)
        assert_int_equal(store_commit(p.st), STORE_OK);
    else
        store_rollback(p.st);
    pthread_join(th, NULL);
    if (gc.rc == STORE_OK)
        assert_int_equal(store_commit(g.st), STORE_OK);
    else
        store_rollback(g.st);
    assert_true((rc == STORE_OK) != (gc.rc == STORE_OK)); /* exactly one of them went through */
    if (rc == STORE_OK) {
        assert_int_equal(refs_of(f, id), 1);
        expect_body(f, id, "deadlocked body");
    } else {
        assert_int_equal(refs_of(f, id), -1);
        assert_false(tmp_body_exists(&f->t, id));
    }
    node_close(&p);
    node_close(&g);
}

/* A failed job's clean-up on one node leaves a file alone that another node
 * has just found and is about to reference. */
static void test_race_shared_drop(void **state)
{
    struct fixture *f = *state;
    skip_unless_shared(f, 1);
    struct node a, b;
    node_open(f, &a);
    node_open(f, &b);
    char id[BLOB_ID_SIZE], same[BLOB_ID_SIZE];
    uint64_t stored = 0;
    assert_int_equal(store_begin(a.st), STORE_OK);
    blob_batch_begin(a.bs);
    assert_int_equal(blob_put(a.bs, a.st, "fresh body", 10, id, &stored), 0); /* A wrote the file */
    assert_int_equal(store_begin(b.st), STORE_OK);
    assert_int_equal(blob_put(b.bs, b.st, "fresh body", 10, same, NULL), 0); /* B found it */
    /* A's job fails: its clean-up must not take B's file. */
    assert_int_equal(blob_drop_unrecorded(a.bs, a.st, id), 0);
    assert_true(tmp_body_exists(&f->t, id));
    blob_batch_end(a.bs);
    assert_int_equal(store_rollback(a.st), STORE_OK);
    assert_int_equal(store_blob_ref(b.st, same, 10, stored), STORE_OK);
    assert_int_equal(store_commit(b.st), STORE_OK);
    expect_body(f, id, "fresh body");

    /* Alone, a failed job's file goes (outside a transaction too). */
    char lonely[BLOB_ID_SIZE];
    assert_int_equal(store_begin(a.st), STORE_OK);
    assert_int_equal(blob_put(a.bs, a.st, "lonely body", 11, lonely, NULL), 0);
    assert_int_equal(store_rollback(a.st), STORE_OK);
    assert_int_equal(blob_drop_unrecorded(a.bs, a.st, lonely), 1);
    assert_false(tmp_body_exists(&f->t, lonely));
    node_close(&a);
    node_close(&b);
}

int main(void)
{
    log_init("test_store_blob", "test", 1);
    log_set_level(LOG_LEVEL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_is_sha256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ids_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_surfaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_and_clean_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_removes_orphans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trips, setup_blob_dir, teardown),
        cmocka_unit_test_setup_teardown(test_forget, setup_blob_dir, teardown),
        cmocka_unit_test_setup_teardown(test_blob_dir, setup_blob_dir, teardown),
        cmocka_unit_test_setup_teardown(test_blob_dir_recover, setup_blob_dir, teardown),
        cmocka_unit_test_setup_teardown(test_race_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_race_db_deadlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_race_shared_files, setup_blob_dir, teardown),
        cmocka_unit_test_setup_teardown(test_race_shared_drop, setup_blob_dir, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
