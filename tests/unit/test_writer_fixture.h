/*
 * test_writer_fixture.h — the fixture of the tests that drive the group-commit
 * writer on a real event loop (test_store_writer.c, test_queue_submit.c): a
 * temporary data_dir, the writer and its loop, and a reader connection of the
 * test thread; run_until turns the loop until the done() callbacks counted.
 *
 * Header-only; include it after cmocka.h. It defines struct fixture.
 */
#ifndef LB_TEST_WRITER_FIXTURE_H
#define LB_TEST_WRITER_FIXTURE_H

#include <event2/event.h>

#include "store/writer.h"
#include "test_store_fixture.h"
#include "util/timeutil.h"

struct fixture {
    struct tmp_data_dir t;
    struct event_base *base;
    struct store_writer *w;
    struct store *st; /* a reader connection of the test thread */
};

/* For a test's setup: name prefixes the mkdtemp directory; blob_dir, if not
 * NULL, is the config's blob_dir, a directory of that name in it. */
static inline int writer_fixture_setup_in(void **state, const char *name, const char *blob_dir)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || tmp_data_dir_make(&f->t, name) != 0)
        return -1;
    if (blob_dir)
        snprintf(f->t.cfg.blob_dir, sizeof f->t.cfg.blob_dir, "%s/%s", f->t.root, blob_dir);
    f->base = event_base_new();
    char err[512];
    if (!f->base || store_open(&f->t.cfg, &f->st, err, sizeof err) != STORE_OK ||
        !(f->w = store_writer_start(&f->t.cfg, f->base, err, sizeof err))) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int writer_fixture_setup(void **state, const char *name)
{
    return writer_fixture_setup_in(state, name, NULL);
}

static inline int teardown(void **state)
{
    struct fixture *f = *state;
    store_writer_stop(f->w);
    store_close(f->st);
    event_base_free(f->base);
    tmp_data_dir_remove(&f->t);
    free(f);
    return 0;
}

/* Runs the loop until *counter reaches target (or 20 s pass: a failure). */
static inline void run_until(struct fixture *f, const int *counter, int target)
{
    int64_t give_up = time_mono_ms() + 20000;
    while (*counter < target && time_mono_ms() < give_up) {
        struct timeval tick = {0, 10000};
        event_base_loopexit(f->base, &tick);
        event_base_dispatch(f->base);
    }
    assert_int_equal(*counter, target);
}

#endif
