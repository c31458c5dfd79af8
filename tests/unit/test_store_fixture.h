/*
 * test_store_fixture.h — a temporary data_dir for the store tests
 * (test_store_*.c, test_directory_*.c, test_queue_submit.c): made with
 * mkdtemp, removed afterwards; opening a store on it; and a raw connection to
 * its database, to look behind the store's API. For the tests that build a
 * small directory on an open store (archive, passwords, the mbox export): a
 * cmocka setup and teardown of it, and adding customers, domains and users.
 *
 * The same tests run on both backends. With LB_TEST_PG set in the
 * environment (the path of the url file that tests/pg/pgserver writes, or a
 * postgresql:// URL), tmp_data_dir_make also creates a fresh PostgreSQL
 * database for the test and points cfg.store at it, and tmp_data_dir_remove
 * drops it; ctest registers every test that includes this header a second
 * time as NAME_pg with LB_TEST_PG set (CMakeLists.txt), unless the test's
 * source carries the marker comment store-test: sqlite-only (a C comment of
 * its own, see CMakeLists.txt). The raw helpers (tmp_raw_count, tmp_raw_exec)
 * run their SQL on whichever backend the test has, so their SQL must be what
 * both accept; tmp_skip_on_pg skips a test case that looks at SQLite itself
 * (query plans, PRAGMAs, migrations from old SQLite versions).
 *
 * Header-only; include it after cmocka.h.
 */
#ifndef LB_TEST_STORE_FIXTURE_H
#define LB_TEST_STORE_FIXTURE_H

#include <ctype.h>
#include <dirent.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "util/config.h"

struct tmp_data_dir {
    char root[64];      /* the mkdtemp directory */
    struct config cfg;  /* defaults, data_dir = root/data (not created yet);
                           on PostgreSQL, store = the test database's URL */
    char pg_db[64];     /* the test's PostgreSQL database, "" on SQLite */
    char pg_admin[512]; /* the server's URL (database postgres), to drop pg_db */
};

static int tmp_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* The tests run on PostgreSQL (LB_TEST_PG is set). */
static inline int tmp_is_pg(const struct tmp_data_dir *t)
{
    return t->pg_db[0] != 0;
}

/* The server's URL from LB_TEST_PG (a URL, or a file whose first line is
 * one) into out; 0, 1 when LB_TEST_PG is not set, -1 after printing why. */
static inline int tmp_pg_server_url(char *out, size_t outlen)
{
    const char *v = getenv("LB_TEST_PG");
    if (!v || !*v)
        return 1;
    if (!strncmp(v, "postgres", 8)) {
        snprintf(out, outlen, "%s", v);
        return 0;
    }
    FILE *fp = fopen(v, "r");
    if (!fp || !fgets(out, (int)outlen, fp)) {
        fprintf(stderr, "LB_TEST_PG=%s: cannot read the server's URL (is the pg fixture running?)\n", v);
        if (fp)
            fclose(fp);
        return -1;
    }
    fclose(fp);
    out[strcspn(out, " \t\r\n")] = 0;
    return 0;
}

/* server's URL with its database replaced by db. */
static inline void tmp_pg_db_url(const char *server, const char *db, char *out, size_t outlen)
{
    const char *host = strstr(server, "://");
    host = host ? host + 3 : server;
    size_t end = (size_t)(host - server) + strcspn(host, "/?");
    const char *query = strchr(host, '?');
    snprintf(out, outlen, "%.*s/%s%s", (int)end, server, db, query ? query : "");
}

/* Runs one administrative statement on the server (CREATE/DROP DATABASE);
 * 0, or -1 after printing why. */
static inline int tmp_pg_admin(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "cannot connect to %s: %s", url, PQerrorMessage(c));
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

static inline int tmp_data_dir_make(struct tmp_data_dir *t, const char *name)
{
    snprintf(t->root, sizeof t->root, "/tmp/%s_XXXXXX", name);
    if (!mkdtemp(t->root))
        return -1;
    config_defaults(&t->cfg);
    snprintf(t->cfg.data_dir, sizeof t->cfg.data_dir, "%s/data", t->root);
    t->pg_db[0] = 0;
    int rc = tmp_pg_server_url(t->pg_admin, sizeof t->pg_admin);
    if (rc != 0) {
        if (rc < 0)
            rmdir(t->root);
        return rc < 0 ? -1 : 0;
    }
    /* lbt_<mkdtemp's suffix>_<pid>: unique among the tests running at once
     * (names are folded to lower case unless quoted). */
    char db[64];
    snprintf(db, sizeof db, "lbt_%s_%ld", strrchr(t->root, '_') + 1, (long)getpid());
    for (char *c = db; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    char sql[128];
    /* FILE_COPY: a checkpoint, which costs nothing on the tests' server
     * (fsync off), instead of WAL-logging the whole template. */
    snprintf(sql, sizeof sql, "CREATE DATABASE %s STRATEGY FILE_COPY", db);
    if (tmp_pg_admin(t->pg_admin, sql) != 0) {
        rmdir(t->root);
        return -1;
    }
    snprintf(t->pg_db, sizeof t->pg_db, "%s", db);
    tmp_pg_db_url(t->pg_admin, db, t->cfg.store, sizeof t->cfg.store);
    return 0;
}

static inline void tmp_data_dir_remove(struct tmp_data_dir *t)
{
    if (t->root[0])
        nftw(t->root, tmp_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (t->pg_db[0]) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->pg_db);
        tmp_pg_admin(t->pg_admin, sql);
        t->pg_db[0] = 0;
    }
}

/* Skips the current test case on PostgreSQL: it looks at SQLite itself. */
#define tmp_skip_on_pg(t, why)                                                      \
    do {                                                                            \
        if (tmp_is_pg(t)) {                                                         \
            fprintf(stderr, "skipped on PostgreSQL: %s\n", why);                    \
            skip();                                                                 \
        }                                                                           \
    } while (0)

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

/* A second, raw connection to the same SQLite database, for what only
 * SQLite has (a test that uses it skips itself on PostgreSQL first). */
static inline sqlite3 *tmp_raw_open(const struct tmp_data_dir *t)
{
    if (tmp_is_pg(t))
        fail_msg("tmp_raw_open: the test runs on PostgreSQL; use tmp_raw_count/tmp_raw_exec or tmp_skip_on_pg");
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

/* A connection of its own to the test's PostgreSQL database. */
static inline PGconn *tmp_pg_open(const struct tmp_data_dir *t)
{
    PGconn *c = PQconnectdb(t->cfg.store);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", t->cfg.store, PQerrorMessage(c));
    return c;
}

/* The first column of the first row of sql (which must give one), on a
 * connection of its own, on either backend. NULL is 0 (as SQLite's
 * column_int64 has it) and a PostgreSQL boolean 1 or 0. */
static inline int64_t tmp_raw_count(const struct tmp_data_dir *t, const char *sql)
{
    if (!tmp_is_pg(t)) {
        sqlite3 *db = tmp_raw_open(t);
        int64_t n = tmp_raw_int(db, sql);
        sqlite3_close(db);
        return n;
    }
    PGconn *c = tmp_pg_open(t);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1 || PQnfields(r) < 1)
        fail_msg("%s: %s", sql, PQresultStatus(r) == PGRES_TUPLES_OK ? "no row\n" : PQresultErrorMessage(r));
    const char *v = PQgetvalue(r, 0, 0);
    int64_t n = PQgetisnull(r, 0, 0) ? 0 : !strcmp(v, "t") ? 1 : !strcmp(v, "f") ? 0 : strtoll(v, NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

/* Runs sql (one or more statements) on a connection of its own, on either
 * backend, to fake a state the API would not make. */
static inline void tmp_raw_exec(const struct tmp_data_dir *t, const char *sql)
{
    if (!tmp_is_pg(t)) {
        sqlite3 *db = tmp_raw_open(t);
        char *msg = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
            fail_msg("%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_close(db);
        return;
    }
    PGconn *c = tmp_pg_open(t);
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
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

/* ---- message bodies, wherever blob.h keeps them ---------------------------- */

/* The bodies are rows of blob_data (PostgreSQL without blob_dir), not files. */
static inline int tmp_bodies_in_db(const struct tmp_data_dir *t)
{
    return tmp_is_pg(t) && !t->cfg.blob_dir[0];
}

/* The file of blob id (when bodies are files). */
static inline void tmp_blob_path(const struct tmp_data_dir *t, const char *id, char *out, size_t outlen)
{
    if (t->cfg.blob_dir[0])
        snprintf(out, outlen, "%s/%.2s/%s", t->cfg.blob_dir, id, id);
    else
        snprintf(out, outlen, "%s/blobs/%.2s/%s", t->cfg.data_dir, id, id);
}

/* 1 if the body of blob id is stored (a file or a blob_data row). */
static inline int tmp_body_exists(const struct tmp_data_dir *t, const char *id)
{
    if (tmp_bodies_in_db(t)) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM blob_data WHERE id = '%.64s'", id);
        return tmp_raw_count(t, sql) == 1;
    }
    char path[1200];
    tmp_blob_path(t, id, path, sizeof path);
    return access(path, F_OK) == 0;
}

/* How many bodies are stored (blob_data rows, or files in the fan-out
 * directories of data_dir/blobs or blob_dir). */
static inline int tmp_count_bodies(const struct tmp_data_dir *t)
{
    if (tmp_bodies_in_db(t))
        return (int)tmp_raw_count(t, "SELECT count(*) FROM blob_data");
    char top[1100];
    if (t->cfg.blob_dir[0])
        snprintf(top, sizeof top, "%s", t->cfg.blob_dir);
    else
        snprintf(top, sizeof top, "%s/blobs", t->cfg.data_dir);
    DIR *d = opendir(top);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 2 || !isxdigit((unsigned char)de->d_name[0]) ||
            !isxdigit((unsigned char)de->d_name[1]))
            continue;
        char sub[1400];
        snprintf(sub, sizeof sub, "%s/%s", top, de->d_name);
        DIR *f = opendir(sub);
        struct dirent *fe;
        while (f && (fe = readdir(f)) != NULL)
            if (strlen(fe->d_name) == 64)
                n++;
        if (f)
            closedir(f);
    }
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
