/*
 * archive_text.c — see archive_text.h. GMime parses the message; we walk its
 * MIME tree collecting text for the archive's index.
 *
 * Unlike the reader's view (message_view.c), the index wants every text a
 * user may search for and nothing shown: in multipart/alternative one version
 * is enough (the plain one if there is one, it costs no HTML parsing), body
 * parts elsewhere are all taken, attached messages are walked into (their
 * Subject, From and To too), and attachments give only their names. The
 * charset rules are the reader's: the declared charset when iconv knows it,
 * otherwise UTF-8 if the bytes look like it, else windows-1252.
 */
#include "mail/archive_text.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#include "mail/message_view.h"
#include "mail/sanitize.h"

#define DEPTH_MAX 32
#define PARTS_MAX 10000
#define META_SCAN_MAX 4096

struct walk {
    struct archive_text *t;
    GString *body;
    GString *names;
    unsigned parts;
    int oom;
};

/* ---- strings -------------------------------------------------------------- */

/* Cuts s (valid UTF-8) to at most max bytes at a character boundary. */
static void cut_utf8(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    s[max] = '\0';
}

/* A header value as clean UTF-8 on one line, bounded; NULL when out of memory. */
static char *field_clean(const char *s)
{
    char *out = utf8_clean(s ? s : "", s ? strlen(s) : 0, NULL);
    if (!out)
        return NULL;
    for (char *p = out; *p; p++)
        if (*p == '\t' || *p == '\r' || *p == '\n')
            *p = ' ';
    cut_utf8(out, ARCHIVE_TEXT_FIELD_MAX);
    return out;
}

/* Appends text to the body within ARCHIVE_TEXT_MAX (cut at a character boundary). */
static void body_add(struct walk *w, const char *text, size_t len)
{
    if (!len)
        return;
    if (w->body->len)
        g_string_append(w->body, "\n\n");
    size_t room = w->body->len < ARCHIVE_TEXT_MAX ? ARCHIVE_TEXT_MAX - w->body->len : 0;
    if (len > room) {
        w->t->truncated = 1;
        len = room;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    g_string_append_len(w->body, text, (gssize)len);
}

static int body_full(const struct walk *w)
{
    return w->body->len >= ARCHIVE_TEXT_MAX;
}

/* ---- charsets ------------------------------------------------------------- */

static int charset_is_utf8(const char *cs)
{
    return !g_ascii_strcasecmp(cs, "utf-8") || !g_ascii_strcasecmp(cs, "utf8") ||
           !g_ascii_strcasecmp(cs, "us-ascii") || !g_ascii_strcasecmp(cs, "ascii");
}

/* bytes converted from charset to UTF-8 by GMime's filter (a g_malloc'd
 * GByteArray's data moved into *out), or 0 when iconv does not know charset. */
static int charset_convert(const guint8 *bytes, size_t len, const char *charset, GByteArray **out)
{
    GMimeFilter *cf = g_mime_filter_charset_new(charset, "UTF-8");
    if (!cf)
        return 0;
    GByteArray *arr = g_byte_array_new();
    GMimeStream *mem = g_mime_stream_mem_new_with_byte_array(arr);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    GMimeStream *f = g_mime_stream_filter_new(mem);
    g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), cf);
    g_object_unref(cf);
    if (len)
        g_mime_stream_write(f, (const char *)bytes, len);
    g_mime_stream_flush(f);
    g_object_unref(f);
    g_object_unref(mem);
    *out = arr;
    return 1;
}

/* Whether bytes are UTF-8 (with a few broken sequences at most) rather than
 * an 8-bit charset: well-formed multi-byte sequences outnumber bad bytes. */
static int looks_like_utf8(const guint8 *b, size_t len)
{
    size_t good = 0, bad = 0;
    for (size_t i = 0; i < len;) {
        if (b[i] < 0x80) {
            i++;
            continue;
        }
        gunichar c = g_utf8_get_char_validated((const char *)b + i, (gssize)(len - i));
        if (c == (gunichar)-1 || c == (gunichar)-2) {
            bad++;
            i++;
        } else {
            good++;
            i += (size_t)g_unichar_to_utf8(c, NULL);
        }
    }
    return good >= bad;
}

/* The charset an HTML document names in a <meta> near its start, or NULL. */
static char *html_meta_charset(const guint8 *b, size_t len)
{
    size_t n = len < META_SCAN_MAX ? len : META_SCAN_MAX;
    for (size_t i = 0; i + 8 < n; i++) {
        if (g_ascii_strncasecmp((const char *)b + i, "charset=", 8))
            continue;
        size_t s = i + 8, e;
        while (s < n && (b[s] == '"' || b[s] == '\'' || b[s] == ' '))
            s++;
        for (e = s; e < n && e - s < 40 && (g_ascii_isalnum(b[e]) || strchr("-_.:", b[e])); e++)
            ;
        if (e > s)
            return g_strndup((const char *)b + s, e - s);
    }
    return NULL;
}

/* The decoded content of a text part as clean UTF-8 (malloc'd), or NULL when
 * out of memory. */
static char *part_text(GMimePart *part, int html, size_t *outlen)
{
    GByteArray *raw = g_byte_array_new();
    GMimeStream *mem = g_mime_stream_mem_new_with_byte_array(raw);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    if (dw)
        g_mime_data_wrapper_write_to_stream(dw, mem);
    g_object_unref(mem);

    const char *declared = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
    char *meta = NULL;
    if (!declared && html)
        declared = meta = html_meta_charset(raw->data, raw->len);
    GByteArray *conv = NULL;
    if (declared && !charset_is_utf8(declared))
        charset_convert(raw->data, raw->len, declared, &conv);
    if (!conv && !looks_like_utf8(raw->data, raw->len))
        charset_convert(raw->data, raw->len, "windows-1252", &conv);
    g_free(meta);
    GByteArray *use = conv ? conv : raw;
    char *out = utf8_clean((const char *)use->data, use->len, outlen);
    if (conv)
        g_byte_array_free(conv, TRUE);
    g_byte_array_free(raw, TRUE);
    return out;
}

/* ---- walking the MIME tree ------------------------------------------------ */

static int is_attachment_disposition(GMimeObject *obj)
{
    const char *d = g_mime_object_get_disposition(obj);
    return d && !g_ascii_strcasecmp(d, "attachment");
}

static int is_body(GMimeObject *obj, const char *subtype)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    return GMIME_IS_PART(obj) && ct && g_mime_content_type_is_type(ct, "text", subtype) &&
           !is_attachment_disposition(obj);
}

/* Whether obj is or holds (outside attached messages) a text/SUBTYPE body. */
static int holds_body(GMimeObject *obj, const char *subtype, int depth)
{
    if (depth > DEPTH_MAX)
        return 0;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && i < PARTS_MAX; i++)
            if (holds_body(g_mime_multipart_get_part(mp, i), subtype, depth + 1))
                return 1;
        return 0;
    }
    return is_body(obj, subtype);
}

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
    if (n > PARTS_MAX)
        n = PARTS_MAX;
    for (int i = 0; i < n; i++) {
        GMimeObject *child = g_mime_multipart_get_part(mp, i);
        if (plain < 0 && holds_body(child, "plain", depth + 1))
            plain = i;
        if (html < 0 && holds_body(child, "html", depth + 1))
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
    if (depth > DEPTH_MAX || ++w->parts > PARTS_MAX) {
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
    if (is_body(obj, "plain")) {
        add_text_part(w, GMIME_PART(obj), 0);
        return;
    }
    if (is_body(obj, "html")) {
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
    if (is_attachment_disposition(obj) || (name && *name && !inline_image)) {
        w->t->has_attachment = 1;
        add_name(w, name);
    }
}

/* ---- header fields and the message ---------------------------------------- */

static char *addresses(GMimeObject *obj, InternetAddressList *list, const char *header)
{
    if (list && internet_address_list_length(list) > 0) {
        char *s = internet_address_list_to_string(list, NULL, FALSE);
        char *out = field_clean(s);
        g_free(s);
        return out;
    }
    return field_clean(g_mime_object_get_header(obj, header)); /* unparseable: what is there */
}

static GMimeParserOptions *parser_options(const char *hint)
{
    /* raw 8-bit header text: UTF-8 if it is that, else the body's or the usual Windows charset */
    const char *fallback[] = {"utf-8", hint ? hint : "windows-1252", "windows-1252", NULL};
    GMimeParserOptions *opt = g_mime_parser_options_new();
    g_mime_parser_options_set_fallback_charsets(opt, fallback);
    g_mime_parser_options_set_rfc2047_compliance_mode(opt, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(opt, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(opt, GMIME_RFC_COMPLIANCE_LOOSE);
    return opt;
}

static GMimeMessage *parse(const unsigned char *raw, size_t len, GMimeParserOptions *options)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer((const char *)raw, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, options);
    g_object_unref(parser);
    g_object_unref(stream);
    return msg;
}

/* Whether the header section holds raw 8-bit bytes. */
static int header_has_8bit(const unsigned char *raw, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (raw[i] >= 0x80)
            return 1;
        if (raw[i] == '\n' && (i + 1 == len || raw[i + 1] == '\n' ||
                               (raw[i + 1] == '\r' && i + 2 < len && raw[i + 2] == '\n')))
            return 0;
    }
    return 0;
}

/* The first charset iconv knows that a text part declares, other than
 * UTF-8/ASCII: the sender's software most likely wrote raw headers in it too. */
static const char *body_charset(GMimeObject *obj, int depth)
{
    if (depth > DEPTH_MAX)
        return NULL;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && i < PARTS_MAX; i++) {
            const char *cs = body_charset(g_mime_multipart_get_part(mp, i), depth + 1);
            if (cs)
                return cs;
        }
        return NULL;
    }
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    if (!GMIME_IS_PART(obj) || !ct || !g_mime_content_type_is_type(ct, "text", "*"))
        return NULL;
    const char *cs = g_mime_object_get_content_type_parameter(obj, "charset");
    if (!cs || charset_is_utf8(cs))
        return NULL;
    GMimeFilter *f = g_mime_filter_charset_new(cs, "UTF-8");
    if (!f)
        return NULL;
    g_object_unref(f);
    return cs;
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
    /* an mbox "From " line in front is no part of the message */
    if (len >= 5 && !memcmp(raw, "From ", 5)) {
        const unsigned char *nl = memchr(raw, '\n', len);
        if (nl) {
            len -= (size_t)(nl + 1 - raw);
            raw = nl + 1;
        }
    }
    GMimeParserOptions *options = parser_options(NULL);
    GMimeMessage *msg = parse(raw, len, options);
    const char *hint = msg && header_has_8bit(raw, len) ? body_charset(g_mime_message_get_mime_part(msg), 0) : NULL;
    if (hint) {
        /* headers in raw 8-bit: read them again, trying the body's charset first */
        char *cs = g_strdup(hint);
        g_object_unref(msg);
        g_mime_parser_options_free(options);
        options = parser_options(cs);
        msg = parse(raw, len, options);
        g_free(cs);
    }
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
