/*
 * test_store_fixture.h — a temporary data_dir for the store tests
 * (test_store_*.c, test_queue_submit.c): made with mkdtemp, removed afterwards.
 */
#ifndef LB_TEST_STORE_FIXTURE_H
#define LB_TEST_STORE_FIXTURE_H

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

#endif
