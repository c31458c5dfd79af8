/*
 * test_store_blob.c — the content-addressed blob store and start-up recovery:
 * round trips (empty, small, large, incompressible), the SHA-256 name and the
 * fan-out path, deduplication, corruption detected as an error (never a crash),
 * write errors surfacing as -1/errno with nothing left behind, batches,
 * concurrent readers, and store_recover removing orphans and tmp leftovers.
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
    struct blobstore *bs;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || tmp_data_dir_make(&f->t, "test_store_blob") != 0)
        return -1;
    char err[512];
    if (blobstore_open(f->t.cfg.data_dir, &f->bs, err, sizeof err) != 0) {
        fprintf(stderr, "blobstore_open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    blobstore_close(f->bs);
    tmp_data_dir_remove(&f->t);
    free(f);
    return 0;
}

static void blob_path(struct fixture *f, const char *id, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/blobs/%.2s/%s", f->t.cfg.data_dir, id, id);
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
    assert_int_equal(blob_put(f->bs, data, len, id, &stored), 0);
    assert_true(blob_id_valid(id));
    char path[1200];
    blob_path(f, id, path, sizeof path);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, stored);
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
    assert_int_equal(blob_put(f->bs, "abc", 3, id, &stored), 0);
    assert_string_equal(id, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char path[1200];
    snprintf(path, sizeof path, "%s/blobs/ba/%s", f->t.cfg.data_dir, id);
    assert_int_equal(access(path, F_OK), 0);
}

static void test_dedupe(void **state)
{
    struct fixture *f = *state;
    const char body[] = "From: a@b\r\n\r\nsame body\r\n";
    char id1[BLOB_ID_SIZE], id2[BLOB_ID_SIZE], id3[BLOB_ID_SIZE];
    uint64_t s1 = 0, s2 = 0;
    assert_int_equal(blob_put(f->bs, body, sizeof body - 1, id1, &s1), 0);
    char path[1200];
    blob_path(f, id1, path, sizeof path);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(blob_put(f->bs, body, sizeof body - 1, id2, &s2), 0);
    assert_int_equal(stat(path, &after), 0);
    assert_string_equal(id1, id2);
    assert_int_equal(s1, s2);
    assert_int_equal(before.st_ino, after.st_ino); /* not rewritten */
    assert_int_equal(blob_put(f->bs, body, sizeof body - 2, id3, NULL), 0);
    assert_string_not_equal(id1, id3);
    char fan[1200];
    snprintf(fan, sizeof fan, "blobs/%.2s", id1);
    int n = tmp_count_entries(&f->t, fan);
    assert_true(n == 1 || (n == 2 && !strncmp(id1, id3, 2)));
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
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
    assert_int_equal(blob_put(f->bs, body, sizeof body, id, &stored), 0);
    char path[1200];
    blob_path(f, id, path, sizeof path);
    unsigned char *good = malloc(stored);
    int fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, good, stored), (ssize_t)stored);
    close(fd);

    /* Garbage instead of a zstd frame. */
    write_file(path, "this is not zstd at all", 23);
    expect_corrupt(f, id);
    /* Empty file. */
    write_file(path, "", 0);
    expect_corrupt(f, id);
    /* Truncated frame. */
    write_file(path, good, stored / 2);
    expect_corrupt(f, id);
    /* Trailing junk after the frame. */
    unsigned char *longer = malloc(stored + 4);
    memcpy(longer, good, stored);
    memcpy(longer + stored, "junk", 4);
    write_file(path, longer, stored + 4);
    expect_corrupt(f, id);
    free(longer);
    /* One flipped bit in the middle: caught by the frame checksum or the decoder. */
    good[stored / 2] ^= 0x10;
    write_file(path, good, stored);
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
    write_file(path, frame, out.pos);
    expect_corrupt(f, id);

    /* Restored: readable again. */
    write_file(path, good, stored);
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
    assert_int_equal(blob_put(f->bs, "x", (size_t)BLOB_MAX_SIZE + 1, id, NULL), -1);
    assert_int_equal(errno, EFBIG);
}

static void test_unlink(void **state)
{
    struct fixture *f = *state;
    char id[BLOB_ID_SIZE];
    assert_int_equal(blob_put(f->bs, "bye", 3, id, NULL), 0);
    assert_int_equal(blob_unlink(f->bs, id), 0);
    char path[1200];
    blob_path(f, id, path, sizeof path);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(blob_unlink(f->bs, id), 0); /* already gone: fine */
    /* And it can be stored again. */
    assert_int_equal(blob_put(f->bs, "bye", 3, id, NULL), 0);
    assert_int_equal(access(path, F_OK), 0);
}

/* A write error (here the file size limit, the way ENOSPC would hit) is -1 with
 * errno, and leaves neither a blob nor a temporary file. */
static void test_write_error_surfaces(void **state)
{
    struct fixture *f = *state;
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
    int rc = blob_put(f->bs, p, n, id, NULL);
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
    assert_int_equal(blob_put(f->bs, p, n, id, NULL), 0);
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
    assert_int_equal(blob_put(f->bs, "one", 3, a, NULL), 0);
    assert_int_equal(blob_put(f->bs, "two", 3, b, NULL), 0);
    /* Junk that is not a blob is ignored. */
    char path[1200];
    snprintf(path, sizeof path, "%s/blobs/%.2s/README", f->t.cfg.data_dir, a);
    fclose(fopen(path, "w"));
    snprintf(path, sizeof path, "%s/blobs/zz", f->t.cfg.data_dir);
    mkdir(path, 0700);
    struct ids c = {0};
    assert_int_equal(blob_foreach(f->bs, collect_id, &c), 0);
    assert_int_equal(c.n, 2);
    assert_true(has_id(&c, a) && has_id(&c, b));

    snprintf(path, sizeof path, "%s/tmp/leftover.1", f->t.cfg.data_dir);
    fclose(fopen(path, "w"));
    snprintf(path, sizeof path, "%s/tmp/leftover.2", f->t.cfg.data_dir);
    fclose(fopen(path, "w"));
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 2);
    blobstore_clean_tmp(f->bs);
    assert_int_equal(tmp_count_entries(&f->t, "tmp"), 0);
}

static void test_batch(void **state)
{
    struct fixture *f = *state;
    char old[BLOB_ID_SIZE], a[BLOB_ID_SIZE], b[BLOB_ID_SIZE], again[BLOB_ID_SIZE];
    assert_int_equal(blob_put(f->bs, "before", 6, old, NULL), 0);
    blob_batch_begin(f->bs);
    assert_int_equal(blob_put(f->bs, "batch one", 9, a, NULL), 0);
    assert_int_equal(blob_put(f->bs, "batch two", 9, b, NULL), 0);
    assert_int_equal(blob_put(f->bs, "before", 6, again, NULL), 0); /* existed: not created */
    assert_int_equal(blob_put(f->bs, "batch one", 9, again, NULL), 0);
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
        assert_int_equal(blob_put(f->bs, body, sizeof body, ids[i], NULL), 0);
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

/* store_recover: blobs without rows go, blobs with rows (any count) stay, tmp empties. */
static void test_recover_removes_orphans(void **state)
{
    struct fixture *f = *state;
    struct store *st = NULL;
    char err[512];
    assert_int_equal(store_open(&f->t.cfg, &st, err, sizeof err), STORE_OK);
    char kept[BLOB_ID_SIZE], zero[BLOB_ID_SIZE], orphan[BLOB_ID_SIZE];
    assert_int_equal(blob_put(f->bs, "referenced", 10, kept, NULL), 0);
    assert_int_equal(blob_put(f->bs, "count zero", 10, zero, NULL), 0);
    assert_int_equal(blob_put(f->bs, "crashed before commit", 21, orphan, NULL), 0);
    assert_int_equal(store_blob_ref(st, kept, 10, 10), STORE_OK);
    assert_int_equal(store_blob_add(st, zero, 10, 10), STORE_OK);
    char path[1200];
    snprintf(path, sizeof path, "%s/tmp/%.16s.123.0", f->t.cfg.data_dir, orphan);
    fclose(fopen(path, "w"));

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
