/*
 * fuzz_mail_archive_text.c — libFuzzer target for the archive's text
 * extraction (archive_text_extract, src/mail/archive_text.c, with the MIME
 * reading of mime_text.c and the HTML-to-text of sanitize.c behind it): what
 * the archive indexer runs on every archived message. The input is the raw
 * message, copied into a buffer of exactly its size.
 *
 * Checks archive_text.h's promises: it never fails but for memory; every
 * string is clean UTF-8 without NUL; Subject, From and To are one line and
 * within ARCHIVE_TEXT_FIELD_MAX, as is the attachment list; the body within
 * ARCHIVE_TEXT_MAX; listed attachment names mean has_attachment. The same
 * bytes (up to 8 KB) give the same result twice (nothing depends on state
 * left behind).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/archive_text.h"
#include "mail/sanitize.h"

static void check_text(const char *s, size_t max, int one_line)
{
    if (!s)
        abort();
    size_t n = strlen(s);
    if (n > max || !utf8_is_clean(s, n))
        abort();
    if (one_line && strpbrk(s, "\r\n"))
        abort();
}

static int same(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *raw = malloc(size ? size : 1);
    if (!raw)
        return 0;
    memcpy(raw, data, size);
    struct archive_text t, again;
    if (archive_text_extract(raw, size, &t) != 0) {
        free(raw);
        return 0; /* out of memory */
    }
    check_text(t.subject, ARCHIVE_TEXT_FIELD_MAX, 1);
    check_text(t.from, ARCHIVE_TEXT_FIELD_MAX, 1);
    check_text(t.to, ARCHIVE_TEXT_FIELD_MAX, 1);
    check_text(t.attachments, ARCHIVE_TEXT_FIELD_MAX, 1);
    check_text(t.body, ARCHIVE_TEXT_MAX, 0);
    if (t.date < 0 || (t.has_attachment != 0 && t.has_attachment != 1) || (t.truncated != 0 && t.truncated != 1))
        abort();
    if (t.attachments[0] && !t.has_attachment)
        abort();
    /* (on small inputs only: it halves the executions on large ones) */
    if (size <= 8192 && archive_text_extract(raw, size, &again) == 0) {
        if (again.date != t.date || again.has_attachment != t.has_attachment || again.truncated != t.truncated ||
            !same(again.subject, t.subject) || !same(again.from, t.from) || !same(again.to, t.to) ||
            !same(again.body, t.body) || !same(again.attachments, t.attachments))
            abort();
        archive_text_free(&again);
    }
    archive_text_free(&t);
    free(raw);
    return 0;
}
