/*
 * ctl_migrate.c — lifeboatctl migrate --to postgresql://... [--batch N] [--json]
 * (SPEC.md "Administration"; docs/OPERATIONS.md "Moving to PostgreSQL").
 *
 * Copies the single-node installation that the config names (store = sqlite,
 * data_dir) into a PostgreSQL database: an empty one, or one an interrupted
 * migrate was copying into, which it goes on with. The daemon must be
 * stopped: the data_dir's run lock (store/runlock.h) is taken for the whole
 * copy. The copy, the target's schema and its checks are store/store_copy.h. Progress lines while it copies, then the count
 * check: each table's rows on both sides (and the bodies), which must match
 * before the copy is marked complete. Run again after success, it says there
 * is nothing to do.
 *
 * The bodies go into the database (blob_data) unless the config sets
 * blob_dir, a directory every node will mount: then they stay there.
 *
 * Exit status: 0 copied (or nothing to do), 1 refused, failed or the counts
 * differ, 2 bad usage. LIFEBOAT_MIGRATE_STOP_AFTER=N (tests only) stops after
 * N batches, as an interruption would.
 */
#include "ctl/ctl.h"
#include "store/runlock.h"
#include "store/store_copy.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The URL without its password, for messages. */
static void url_redact(const char *url, char *out, size_t outlen)
{
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = scheme && at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (!colon)
        snprintf(out, outlen, "%s", url);
    else
        snprintf(out, outlen, "%.*s:***%s", (int)(colon - url), url, at);
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Progress lines: one when an item is complete, and about one a second in
 * between for a long one. */
static void on_progress(const struct store_copy_progress *p, void *arg)
{
    FILE *f = arg;
    double rate = p->seconds > 0.001 ? (double)p->run_rows / p->seconds : 0;
    if (p->finished && p->run_rows == 0) {
        fprintf(f, "  %-24s %10llu rows%s\n", p->item, (unsigned long long)p->copied,
                p->copied ? " (copied before)" : "");
    } else {
        fprintf(f, "  %-24s %10llu of %llu rows, %.0f rows/s", p->item, (unsigned long long)p->copied,
                (unsigned long long)p->total, rate);
        if (p->run_bytes >= (1u << 20) && p->seconds > 0.001)
            fprintf(f, ", %.1f MB/s", (double)p->run_bytes / (1 << 20) / p->seconds);
        fprintf(f, "%s\n", p->finished ? "" : " ...");
    }
    fflush(f);
}

/* Prints the count check (text or as rows of *rows). 1 when every line matches. */
static int print_counts(const struct store_copy_count *k, size_t n, int json, json_t *rows)
{
    int ok = 1;
    if (!json)
        printf("\n%-26s %12s %12s\n", "count check", "sqlite", "postgresql");
    for (size_t i = 0; i < n; i++) {
        int same = k[i].source == k[i].target;
        ok &= same;
        if (json)
            json_array_append_new(rows, json_pack("{s:s, s:I, s:I, s:b}", "table", k[i].item, "source",
                                                  (json_int_t)k[i].source, "target", (json_int_t)k[i].target,
                                                  "match", same));
        else
            printf("%-26s %12lld %12lld%s\n", k[i].item, (long long)k[i].source, (long long)k[i].target,
                   same ? "" : "   <- differs");
    }
    return ok;
}

int ctl_migrate(struct ctl *c, int argc, char **argv)
{
    const char *to = NULL, *batch_arg = NULL;
    int json = c->json, npos;
    const struct ctl_opt opts[] = {{"to", &to, NULL}, {"batch", &batch_arg, NULL}, {"json", NULL, &json}, {0}};
    if (ctl_getopt(argc, argv, opts, NULL, 0, 0, &npos) != CTL_OK)
        return CTL_USAGE;
    if (!to)
        return ctl_usage_error("migrate: --to postgresql://... is required");
    if (strncmp(to, "postgresql://", 13) != 0 && strncmp(to, "postgres://", 11) != 0)
        return ctl_usage_error("migrate: --to takes a postgresql:// URL");
    unsigned batch = 0, stop_after = 0;
    if (batch_arg && parse_uint(batch_arg, 1, 100000, &batch) != 0)
        return ctl_usage_error("migrate: --batch takes a number of rows from 1 to 100000");
    const char *stop = getenv("LIFEBOAT_MIGRATE_STOP_AFTER");
    if (stop && *stop && parse_uint(stop, 1, UINT_MAX, &stop_after) != 0)
        return ctl_usage_error("LIFEBOAT_MIGRATE_STOP_AFTER takes a number of batches");

    const char *data_dir = c->cfg.data_dir;
    if (strcmp(c->cfg.store, "sqlite") != 0)
        return ctl_fail("migrate copies a SQLite installation (store = sqlite) into PostgreSQL, and %s has "
                        "store = %.60s...: run it with the installation's old config",
                        c->config_path, c->cfg.store);
    char shown[1100];
    url_redact(to, shown, sizeof shown);

    char dbpath[1100], source[PATH_MAX];
    snprintf(dbpath, sizeof dbpath, "%s/lifeboat.db", data_dir);
    struct stat sb;
    if (stat(dbpath, &sb) != 0)
        return ctl_fail("no installation to copy in %s: %s: %s", data_dir, dbpath, strerror(errno));
    if (!realpath(dbpath, source))
        return ctl_fail("%s: %s", dbpath, strerror(errno));

    char err[1024];
    int lock = runlock_exclusive(data_dir, err, sizeof err);
    if (lock < 0)
        return ctl_fail("%s", err);
    struct store *src = ctl_store(c);
    if (!src) {
        runlock_release(lock);
        return CTL_FAIL;
    }
    struct config tcfg = c->cfg;
    snprintf(tcfg.store, sizeof tcfg.store, "%s", to);

    int rc = CTL_FAIL;
    struct store_copy *cp = NULL;
    enum store_copy_state state;
    json_t *out = NULL;
    struct store_copy_count *counts = NULL;
    size_t ncounts = 0;
    if (store_copy_open(src, &tcfg, source, &cp, &state, err, sizeof err) != STORE_OK) {
        ctl_fail("cannot copy into %s: %s", shown, err);
        goto done;
    }
    if (state == STORE_COPY_DONE) {
        if (json)
            rc = ctl_json_print(json_pack("{s:s, s:s, s:s}", "source", source, "target", shown, "state", "done"));
        else {
            printf("nothing to do: %s already holds a complete copy of %s\n", shown, source);
            rc = CTL_OK;
        }
        goto done;
    }

    FILE *progress = json ? stderr : stdout;
    fprintf(progress, "%s %s into %s\n", state == STORE_COPY_RESUME ? "resuming the copy of" : "copying", source,
            shown);
    fflush(progress);
    char blobs_dir[1100];
    if (c->cfg.blob_dir[0])
        snprintf(blobs_dir, sizeof blobs_dir, "%s", c->cfg.blob_dir);
    else
        snprintf(blobs_dir, sizeof blobs_dir, "%s/blobs", data_dir);
    struct store_copy_opts o = {
        .blobs_dir = blobs_dir,
        .blobs_to_db = !c->cfg.blob_dir[0],
        .batch_rows = batch,
        .stop_after = stop_after,
        .progress = on_progress,
        .arg = progress,
    };
    int crc = store_copy_run(cp, &o, err, sizeof err);
    if (crc == STORE_COPY_STOPPED) {
        ctl_fail("stopped after %u batches (LIFEBOAT_MIGRATE_STOP_AFTER): run the same command again to go on",
                 stop_after);
        goto done;
    }
    if (crc != STORE_OK) {
        ctl_fail("%s; what was copied stays: run the same command again to go on", err);
        goto done;
    }
    if (store_copy_counts(cp, &o, &counts, &ncounts, err, sizeof err) != STORE_OK) {
        ctl_fail("count check: %s", err);
        goto done;
    }
    json_t *rows = json ? json_array() : NULL;
    int same = print_counts(counts, ncounts, json, rows);
    if (json)
        out = json_pack("{s:s, s:s, s:s, s:o, s:b}", "source", source, "target", shown, "state",
                        state == STORE_COPY_RESUME ? "resumed" : "copied", "counts", rows, "complete", same);
    if (!same) {
        if (json)
            ctl_json_print(out);
        out = NULL;
        for (size_t i = 0; i < ncounts; i++)
            if (!strcmp(counts[i].item, "blob files") && counts[i].source != counts[i].target)
                ctl_fail("blob_dir = %s lacks bodies: the nodes read them there; copy the files of %s/blobs "
                         "into it (same layout, e.g. cp -a %s/blobs/. %s/) and run migrate again",
                         c->cfg.blob_dir, data_dir, data_dir, c->cfg.blob_dir);
        ctl_fail("the counts differ: the copy is not complete (run again to retry; the rows above name the "
                 "tables)");
        goto done;
    }
    if (store_copy_finish(cp, err, sizeof err) != STORE_OK) {
        ctl_fail("%s", err);
        goto done;
    }
    if (json) {
        rc = ctl_json_print(out);
        out = NULL;
    } else {
        printf("\ncopy complete. Next: set store = %s in %s, then start lifeboatd on every node.\n", shown,
               c->config_path);
        if (c->cfg.blob_dir[0])
            printf("The message bodies stay files in blob_dir = %s: every node must mount it there.\n",
                   c->cfg.blob_dir);
        else
            printf("The message bodies were copied into the database (table blob_data).\n");
        rc = CTL_OK;
    }
done:
    json_decref(out);
    free(counts);
    store_copy_close(cp);
    runlock_release(lock);
    return rc;
}
