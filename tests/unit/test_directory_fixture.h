/*
 * test_directory_fixture.h — the fixture of the directory tests on a real
 * store (test_directory_admin.c, test_directory_continuity.c): a temporary
 * data_dir with an open store, an error buffer for the directory's one-line
 * errors, and assertions that show or compare that error.
 *
 * Header-only; include it after cmocka.h. It defines struct fixture.
 */
#ifndef LB_TEST_DIRECTORY_FIXTURE_H
#define LB_TEST_DIRECTORY_FIXTURE_H

#include "directory/directory.h"
#include "test_store_fixture.h"

struct fixture {
    struct tmp_data_dir t;
    struct store *st;
    char err[512];
};

/* For a test's setup: name prefixes the mkdtemp directory. */
static inline int directory_fixture_setup(void **state, const char *name)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || tmp_data_dir_make(&f->t, name) != 0 || tmp_store_open(&f->t, &f->st) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    tmp_data_dir_remove(&f->t);
    free(f);
    return 0;
}

/* Runs an administration call that must succeed, showing its error if not. */
#define assert_ok(call)                                                                \
    do {                                                                               \
        f->err[0] = 0;                                                                 \
        if ((call) != 0)                                                               \
            fail_msg("%s failed: %s", #call, f->err);                                  \
    } while (0)

/* Runs a call that must be refused with exactly the given message. */
#define assert_refused(call, message)                                                  \
    do {                                                                               \
        f->err[0] = 0;                                                                 \
        assert_true((call) < 0);                                                       \
        assert_string_equal(f->err, (message));                                        \
    } while (0)
/* The same, and the kind of refusal (enum directory_result). */
#define assert_refused_as(call, code, message)                                         \
    do {                                                                               \
        f->err[0] = 0;                                                                 \
        assert_int_equal((call), (code));                                              \
        assert_string_equal(f->err, (message));                                        \
    } while (0)

/* The error buffer arguments of a directory call. */
#define ERR f->err, sizeof f->err

#endif
