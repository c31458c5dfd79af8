/*
 * archive_text.c — see archive_text.h. GMime parses the message; we walk its
 * MIME tree collecting text for the archive's index.
 *
 * Unlike the reader's view (message_view.c), the index wants every text a
 * user may search for and nothing shown: in multipart/alternative one version
 * is enough (the plain one if there is one, it costs no HTML parsing), body
 * parts elsewhere are all taken, attached messages are walked into (their
 * Subject, From and To too), and attachments give only their names. Parsing
 * and the charset rules are the reader's, shared through mail_internal.h
 * (mime_text.c): a message reads the same in the webmail and in the index.
 */
#include "mail/archive_text.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail_internal.h"
#include "mail/sanitize.h"

struct walk {
    struct archive_text *t;
    GString *body;
    GString *names;
    unsigned parts;
    int oom;
};

/* ---- strings -------------------------------------------------------------- */

/* A header value as clean UTF-8 on one line, bounded; NULL when out of memory. */
static char *field_clean(const char *s)
{
    return mime_field_clean(s, ARCHIVE_TEXT_FIELD_MAX);
}

/* Appends text to the body within ARCHIVE_TEXT_MAX (cut at a character boundary). */
static void body_add(struct walk *w, const char *text, size_t len)
{
    if (!len)
        return;
    /* the separator counts towards the bound too */
    size_t sep = w->body->len ? 2 : 0;
    size_t room = w->body->len + sep < ARCHIVE_TEXT_MAX ? ARCHIVE_TEXT_MAX - w->body->len - sep : 0;
    if (len > room) {
        w->t->truncated = 1;
        len = mime_utf8_floor(text, room);
    }
    if (!len)
        return;
    g_string_append_len(w->body, "\n\n", (gssize)sep);
    g_string_append_len(w->body, text, (gssize)len);
}

static int body_full(const struct walk *w)
{
    return w->body->len >= ARCHIVE_TEXT_MAX;
}

/* The decoded content of a text part as clean UTF-8 (malloc'd), or NULL when
 * out of memory. */
static char *part_text(GMimePart *part, int html, size_t *outlen)
{
    GByteArray *utf8 = mime_part_utf8(part, html);
    char *out = utf8_clean((const char *)utf8->data, utf8->len, outlen);
    g_byte_array_free(utf8, TRUE);
    return out;
}

/* ---- walking the MIME tree ------------------------------------------------ */

static void add_name(struct walk *w, const char *name)
{
    char *clean = name ? field_clean(name) : NULL;
    if (name && !clean) {
        w->oom = 1;
        return;
    }
    if (clean && *clean && w->names->len + strlen(clean) < ARCHIVE_TEXT_FIELD_MAX) {
        if (w->names->len)
            g_string_append_c(w->names, ' ');
        g_string_append(w->names, clean);
    }
    free(clean);
}

static void add_text_part(struct walk *w, GMimePart *part, int html)
{
    if (body_full(w)) {
        w->t->truncated = 1;
        return;
    }
    size_t len = 0;
    char *text = part_text(part, html, &len);
    if (!text) {
        w->oom = 1;
        return;
    }
    if (html) {
        char *plain = NULL;
        size_t plen = 0;
        if (html_to_text(text, len, &plain, &plen) != 0) {
            free(text);
            w->oom = 1;
            return;
        }
        free(text);
        text = plain;
        len = plen;
    }
    body_add(w, text, len);
    free(text);
}

/* "Subject / From / To" of an attached message, searchable with its body. */
static void add_message_headers(struct walk *w, GMimeMessage *m)
{
    const char *subject = g_mime_message_get_subject(m);
    InternetAddressList *lists[] = {g_mime_message_get_from(m), g_mime_message_get_to(m),
                                    g_mime_message_get_cc(m)};
    GString *s = g_string_new(subject ? subject : "");
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        if (!lists[i] || internet_address_list_length(lists[i]) == 0)
            continue;
        char *a = internet_address_list_to_string(lists[i], NULL, FALSE);
        g_string_append_printf(s, "\n%s", a ? a : "");
        g_free(a);
    }
    char *clean = utf8_clean(s->str, s->len, NULL);
    g_string_free(s, TRUE);
    if (!clean) {
        w->oom = 1;
        return;
    }
    body_add(w, clean, strlen(clean));
    free(clean);
}

static void walk(struct walk *w, GMimeObject *obj, int depth);

static void walk_alternative(struct walk *w, GMimeMultipart *mp, int depth)
{
    int n = g_mime_multipart_get_count(mp), plain = -1, html = -1;
    if (n > MIME_PARTS_MAX)
        n = MIME_PARTS_MAX;
    for (int i = 0; i < n; i++) {
        GMimeObject *child = g_mime_multipart_get_part(mp, i);
        if (plain < 0 && mime_holds_body(child, "plain", depth + 1))
            plain = i;
        if (html < 0 && mime_holds_body(child, "html", depth + 1))
            html = i;
    }
    int pick = plain >= 0 ? plain : html >= 0 ? html : n - 1;
    if (pick >= 0)
        walk(w, g_mime_multipart_get_part(mp, pick), depth + 1);
}

static void walk(struct walk *w, GMimeObject *obj, int depth)
{
    if (!obj || w->oom)
        return;
    if (depth > MIME_DEPTH_MAX || ++w->parts > MIME_PARTS_MAX) {
        w->t->truncated = 1;
        return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        if (ct && g_mime_content_type_is_type(ct, "multipart", "alternative")) {
            walk_alternative(w, mp, depth);
            return;
        }
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && !w->oom; i++)
            walk(w, g_mime_multipart_get_part(mp, i), depth + 1);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        /* an attached (forwarded, bounced) message: a file, and text to find */
        w->t->has_attachment = 1;
        add_name(w, g_mime_object_get_content_disposition_parameter(obj, "filename"));
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m) {
            add_message_headers(w, m);
            walk(w, g_mime_message_get_mime_part(m), depth + 1);
        }
        return;
    }
    if (mime_is_body(obj, "plain")) {
        add_text_part(w, GMIME_PART(obj), 0);
        return;
    }
    if (mime_is_body(obj, "html")) {
        add_text_part(w, GMIME_PART(obj), 1);
        return;
    }
    if (!GMIME_IS_PART(obj))
        return;
    const char *name = g_mime_part_get_filename(GMIME_PART(obj));
    const char *disp = g_mime_object_get_disposition(obj);
    const char *cid = g_mime_object_get_content_id(obj);
    /* an inline image of an HTML body (named or not) is no attachment */
    int inline_image = (!disp || !g_ascii_strcasecmp(disp, "inline")) && cid && *cid;
    if (mime_is_attachment_disposition(obj) || (name && *name && !inline_image)) {
        w->t->has_attachment = 1;
        add_name(w, name);
    }
}

/* ---- header fields and the message ---------------------------------------- */

static char *addresses(GMimeObject *obj, InternetAddressList *list, const char *header)
{
    return mime_addresses(obj, list, header, ARCHIVE_TEXT_FIELD_MAX);
}

static int fill(struct archive_text *t, GMimeMessage *msg)
{
    GMimeObject *obj = GMIME_OBJECT(msg);
    GDateTime *date = g_mime_message_get_date(msg);
    t->date = date ? g_date_time_to_unix(date) : 0;
    if (t->date < 0)
        t->date = 0;
    t->subject = field_clean(g_mime_message_get_subject(msg));
    t->from = addresses(obj, g_mime_message_get_from(msg), "From");
    char *to = addresses(obj, g_mime_message_get_to(msg), "To");
    char *cc = addresses(obj, g_mime_message_get_cc(msg), "Cc");
    if (to && cc && *cc) {
        char *both = g_strdup_printf("%s%s%s", to, *to ? ", " : "", cc);
        t->to = field_clean(both);
        g_free(both);
    } else if (to) {
        t->to = to;
        to = NULL;
    }
    free(to);
    free(cc);
    return t->subject && t->from && t->to ? 0 : -1;
}

void archive_text_free(struct archive_text *t)
{
    if (!t)
        return;
    free(t->subject);
    free(t->from);
    free(t->to);
    free(t->body);
    free(t->attachments);
    memset(t, 0, sizeof *t);
}

int archive_text_extract(const unsigned char *raw, size_t len, struct archive_text *out)
{
    mail_init();
    memset(out, 0, sizeof *out);
    if (!raw) {
        raw = (const unsigned char *)"";
        len = 0;
    }
    mime_skip_mbox_from(&raw, &len);
    GMimeParserOptions *options;
    GMimeMessage *msg = mime_parse(raw, len, &options);
    struct walk w = {.t = out, .body = g_string_new(""), .names = g_string_new("")};
    int rc = 0;
    if (msg) {
        rc = fill(out, msg);
        if (rc == 0)
            walk(&w, g_mime_message_get_mime_part(msg), 0);
    } else {
        /* no message at all: the bytes as text */
        out->subject = field_clean(NULL);
        out->from = field_clean(NULL);
        out->to = field_clean(NULL);
        rc = out->subject && out->from && out->to ? 0 : -1;
        char *text = utf8_clean((const char *)raw, len < ARCHIVE_TEXT_MAX ? len : ARCHIVE_TEXT_MAX, NULL);
        if (text)
            body_add(&w, text, strlen(text));
        else
            rc = -1;
        free(text);
    }
    if (w.oom)
        rc = -1;
    /* body_add cut at a character boundary of clean text: still clean */
    if (rc == 0 && !(out->body = utf8_clean(w.body->str, w.body->len, NULL)))
        rc = -1;
    if (rc == 0 && !(out->attachments = strdup(w.names->str)))
        rc = -1;
    g_string_free(w.body, TRUE);
    g_string_free(w.names, TRUE);
    if (msg)
        g_object_unref(msg);
    g_mime_parser_options_free(options);
    if (rc != 0)
        archive_text_free(out);
    return rc;
}
