/*
 * mail_internal.h — what the two message readers of src/mail share
 * (mime_text.c): the reader's view (message_view.c) and the archive's text
 * extraction (archive_text.c) parse a message the same way, read its text
 * parts by the same charset rules and tell bodies from attachments alike, so
 * a message reads the same in the webmail and in the archive's index.
 *
 * Internal to src/mail; other modules use message_view.h and archive_text.h.
 * Everything here is pure over GMime objects and buffers, thread-safe once
 * mail_init() ran.
 */
#ifndef LB_MAIL_MAIL_INTERNAL_H
#define LB_MAIL_MAIL_INTERNAL_H

#include <gmime/gmime.h>
#include <stddef.h>

#include "mail/message_view.h"

/* MIME nesting deeper than this is not looked into (message_view.h's promise). */
#define MIME_DEPTH_MAX MESSAGE_VIEW_DEPTH_MAX
/* Parts looked at in one message at most (a message of 100000 empty parts
 * should not cost more than a normal one). */
#define MIME_PARTS_MAX 10000

/* ---- strings -------------------------------------------------------------- */

/* The largest character boundary at or before at in UTF-8 s (s holds more than
 * at bytes): where s can be cut without splitting a character. */
size_t mime_utf8_floor(const char *s, size_t at);
/* Cuts NUL-terminated UTF-8 s to at most max bytes at a character boundary. */
void mime_cut_utf8(char *s, size_t max);
/* A header field value as clean UTF-8 (sanitize.h's utf8_clean) on one line
 * (TAB, CR, LF become spaces), cut to max bytes; s NULL gives "". malloc'd;
 * NULL only when out of memory. */
char *mime_field_clean(const char *s, size_t max);
/* An address header (From, To, Cc, ...) for display: list decoded when GMime
 * could parse it, else the header's text as it is; through mime_field_clean. */
char *mime_addresses(GMimeObject *obj, InternetAddressList *list, const char *header, size_t max);

/* ---- parsing -------------------------------------------------------------- */

/* Skips an mbox "From " line in front of a message: it is no part of it. */
void mime_skip_mbox_from(const unsigned char **raw, size_t *len);
/*
 * Parses raw[0..len) as an RFC 5322 message with loose RFC 2047, parameter and
 * address rules. Raw 8-bit header text is read as UTF-8 if it is that, else in
 * the charset the first text part declares (the sender's software most likely
 * wrote its headers in it too), else windows-1252. *options gets the parser
 * options the message was read with: its objects decode lazily with them, so
 * free them (g_mime_parser_options_free) only after the message. Returns the
 * message, or NULL when GMime finds none in the bytes (*options set anyway).
 */
GMimeMessage *mime_parse(const unsigned char *raw, size_t len, GMimeParserOptions **options);

/* ---- walking the MIME tree ------------------------------------------------ */

/* Content-Disposition: attachment. */
int mime_is_attachment_disposition(GMimeObject *obj);
/* A text/SUBTYPE leaf part not marked as an attachment ("*": any text). */
int mime_is_body(GMimeObject *obj, const char *subtype);
/* Whether obj is or holds (not inside attached messages) a text/SUBTYPE body;
 * depth is obj's nesting, for MIME_DEPTH_MAX. */
int mime_holds_body(GMimeObject *obj, const char *subtype, int depth);

/*
 * The content of a text part, its transfer encoding undone, converted to UTF-8
 * but not yet cleaned: in the declared charset when iconv knows it (for HTML
 * without one, a charset its <meta> names); otherwise (none, unknown, or a
 * label of UTF-8/ASCII) as UTF-8 if the bytes look like that, else as
 * windows-1252, the usual undeclared 8-bit charset. What cannot be converted
 * is skipped. Free with g_byte_array_free(.., TRUE).
 */
GByteArray *mime_part_utf8(GMimePart *part, int html);

#endif
