/*
 * test_store_fixture.h — a temporary data_dir for the store tests
 * (test_store_*.c, test_directory_*.c, test_queue_submit.c): made with
 * mkdtemp, removed afterwards; opening a store on it; and a raw SQLite
 * connection to its database, to look behind the store's API. For the tests
 * that build a small directory on an open store (archive, passwords, the mbox
 * export): a cmocka setup and teardown of it, and adding customers, domains
 * and users.
 *
 * Header-only; include it after cmocka.h.
 */
#ifndef LB_TEST_STORE_FIXTURE_H
#define LB_TEST_STORE_FIXTURE_H

#include <dirent.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"
#include "util/config.h"

struct tmp_data_dir {
    char root[64];      /* the mkdtemp directory */
    struct config cfg;  /* defaults, data_dir = root/data (not created yet) */
};

static int tmp_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline int tmp_data_dir_make(struct tmp_data_dir *t, const char *name)
{
    snprintf(t->root, sizeof t->root, "/tmp/%s_XXXXXX", name);
    if (!mkdtemp(t->root))
        return -1;
    config_defaults(&t->cfg);
    snprintf(t->cfg.data_dir, sizeof t->cfg.data_dir, "%s/data", t->root);
    return 0;
}

static inline void tmp_data_dir_remove(struct tmp_data_dir *t)
{
    if (t->root[0])
        nftw(t->root, tmp_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* store_open on t's data_dir; 0, or -1 after printing why. */
static inline int tmp_store_open(struct tmp_data_dir *t, struct store **st)
{
    char err[512];
    if (store_open(&t->cfg, st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    return 0;
}

/* A second, raw connection to the same database, to look behind the API. */
static inline sqlite3 *tmp_raw_open(const struct tmp_data_dir *t)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/lifeboat.db", t->cfg.data_dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* The first column of the first row of sql (which must give one). */
static inline int64_t tmp_raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* tmp_raw_int on a connection of its own. */
static inline int64_t tmp_raw_count(const struct tmp_data_dir *t, const char *sql)
{
    sqlite3 *db = tmp_raw_open(t);
    int64_t n = tmp_raw_int(db, sql);
    sqlite3_close(db);
    return n;
}

/* Number of entries (other than . and ..) in data_dir/sub. */
static inline int tmp_count_entries(const struct tmp_data_dir *t, const char *sub)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", t->cfg.data_dir, sub);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* ---- an open store with customers, domains and users ---------------------- */

/* The first member of a test's fixture struct, so that tmp_store_teardown can
 * free the whole fixture. */
struct tmp_store {
    struct tmp_data_dir t;
    struct store *st;
};

/* For a test's setup: the fixture (size bytes, zeroed, a struct tmp_store
 * first) with a new data_dir (name prefixes it) and a store open on it. */
static inline void *tmp_store_setup(size_t size, const char *name)
{
    struct tmp_store *s = calloc(1, size);
    assert_non_null(s);
    assert_int_equal(tmp_data_dir_make(&s->t, name), 0);
    assert_int_equal(tmp_store_open(&s->t, &s->st), 0);
    return s;
}

/* The cmocka teardown of a fixture made by tmp_store_setup. */
static inline int tmp_store_teardown(void **state)
{
    struct tmp_store *s = *state;
    store_close(s->st);
    tmp_data_dir_remove(&s->t);
    free(s);
    return 0;
}

static inline int64_t tmp_customer_add(struct store *st, const char *name)
{
    int64_t id = 0;
    assert_int_equal(store_customer_add(st, name, &id), STORE_OK);
    return id;
}

/* A domain of customer, routed to 127.0.0.1:25. */
static inline int64_t tmp_domain_add(struct store *st, int64_t customer, const char *name)
{
    struct store_domain d = {.customer_id = customer};
    snprintf(d.name, sizeof d.name, "%s", name);
    snprintf(d.routes, sizeof d.routes, "127.0.0.1:25");
    int64_t id = 0;
    assert_int_equal(store_domain_add(st, &d, &id), STORE_OK);
    return id;
}

/* A user without a password; role: enum store_role. */
static inline int64_t tmp_user_add(struct store *st, int64_t domain, const char *email, int role, int active)
{
    struct store_user u = {.domain_id = domain, .role = role, .active = active};
    snprintf(u.email, sizeof u.email, "%s", email);
    int64_t id = 0;
    assert_int_equal(store_user_add(st, &u, &id), STORE_OK);
    return id;
}

#endif
