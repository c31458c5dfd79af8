/*
 * archive_text.h — what the archive's full-text index needs from a message.
 *
 * archive_text_extract() reads a raw RFC 5322 message with GMime and returns
 * its Date as Unix time, Subject, From and To+Cc decoded to UTF-8 (RFC 2047,
 * raw 8-bit headers through fallback charsets), the text of its body parts
 * (text/plain converted from its charset, text/html rendered as text, the
 * bodies and headers of attached messages included), the file names of its
 * attachments, and whether it has any. Every string is valid UTF-8 without
 * NUL (sanitize.h's utf8_clean), whatever the input: broken MIME, unknown
 * charsets and deep nesting give a best effort, never an error. The text is
 * bounded (ARCHIVE_TEXT_MAX), so one huge message costs the index no more
 * than that.
 *
 * Pure over a buffer (no store, no sockets); thread-safe (mail_init() runs once).
 */
#ifndef LB_MAIL_ARCHIVE_TEXT_H
#define LB_MAIL_ARCHIVE_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* At most this many bytes of body text are extracted per message. */
#define ARCHIVE_TEXT_MAX (256 * 1024)
/* Header fields and the attachment list are cut beyond this. */
#define ARCHIVE_TEXT_FIELD_MAX (16 * 1024)

struct archive_text {
    int64_t date;        /* the Date: header as Unix time; 0 when missing or unparseable */
    char *subject;       /* decoded, one line; "" when absent */
    char *from;          /* From:, decoded ("Name <addr>, ..."); "" when absent */
    char *to;            /* To: and Cc:, decoded, comma-separated; "" when absent */
    char *body;          /* body text, parts separated by blank lines */
    char *attachments;   /* file names of the attachments, space-separated */
    int has_attachment;  /* 1: a part that is a file (attachment, attached message) */
    int truncated;       /* something was left out: the text bound, nesting or part limits */
};

/* Fills *out (free with archive_text_free). Returns 0, or -1 only when out of
 * memory (then *out holds nothing to free). */
int archive_text_extract(const unsigned char *raw, size_t len, struct archive_text *out);

void archive_text_free(struct archive_text *t);

#endif
