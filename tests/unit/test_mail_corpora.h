/*
 * test_mail_corpora.h — the MIME corpora of ../shared/corpora as the mail
 * readers' tests (test_mail_view.c, test_mail_archive_text.c) walk them: every
 * file of the MimeKit, mime4j, Stalwart, SpamAssassin and CPython test_email
 * trees but their licence notes, and single messages by relative path.
 *
 * Header-only (static functions); uses glib, as the tests do.
 */
#ifndef LB_TEST_MAIL_CORPORA_H
#define LB_TEST_MAIL_CORPORA_H

#include <ftw.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#define CORPORA LB_SOURCE_DIR "/../shared/corpora"

static GPtrArray *corpora_collecting; /* nftw has no argument for its callback */

static int corpora_collect(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    const char *base = path + ftw->base;
    if (type == FTW_F && strncmp(base, "LICENSE", 7) && strcmp(base, "SOURCE.txt") && strcmp(base, "COPYING") &&
        strcmp(base, "NOTICE"))
        g_ptr_array_add(corpora_collecting, g_strdup(path));
    return 0;
}

/* The paths of every corpus message (free with g_ptr_array_free(.., TRUE));
 * *missing counts the corpus trees not found (each noted on stdout). */
static GPtrArray *corpora_mail_files(size_t *missing)
{
    static const char *const dirs[] = {"mimekit", "james-mime4j", "stalwart-mail-parser", "spamassassin",
                                       "python-test_email"};
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    corpora_collecting = files;
    *missing = 0;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char *dir = g_strdup_printf("%s/%s", CORPORA, dirs[i]);
        if (nftw(dir, corpora_collect, 16, FTW_PHYS) != 0) {
            printf("corpus not found: %s, skipped\n", dir);
            (*missing)++;
        }
        g_free(dir);
    }
    corpora_collecting = NULL;
    return files;
}

/* The bytes of corpus file rel (g_free them), or NULL (and a note) when it is
 * not there. */
static char *corpora_read(const char *rel, size_t *len)
{
    char *path = g_strdup_printf("%s/%s", CORPORA, rel);
    gchar *raw = NULL;
    gsize n = 0;
    if (!g_file_get_contents(path, &raw, &n, NULL)) {
        printf("corpus not found: %s, skipped\n", path);
        raw = NULL;
    }
    g_free(path);
    *len = n;
    return raw;
}

#endif
