/*
 * mime_text.c — see mail_internal.h: GMime set up once for the module, and
 * the parsing, charset and MIME-walk rules that the reader's view
 * (message_view.c) and the archive's text (archive_text.c) share.
 */
#include "mail/mail_internal.h"

#include <libxml/parser.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mail/sanitize.h"

/* A charset named in <meta> is looked for this far into an HTML body. */
#define META_SCAN_MAX 4096

/* ---- set-up (message_view.h) ---------------------------------------------- */

static pthread_once_t mail_once = PTHREAD_ONCE_INIT;
static int mail_shut;

static void mail_start(void)
{
    g_mime_init();
    html_init();
}

void mail_init(void)
{
    pthread_once(&mail_once, mail_start);
}

void mail_shutdown(void)
{
    if (mail_shut++)
        return;
    g_mime_shutdown();
    xmlCleanupParser();
}

/* ---- strings -------------------------------------------------------------- */

size_t mime_utf8_floor(const char *s, size_t at)
{
    while (at > 0 && ((unsigned char)s[at] & 0xC0) == 0x80)
        at--;
    return at;
}

void mime_cut_utf8(char *s, size_t max)
{
    if (strlen(s) > max)
        s[mime_utf8_floor(s, max)] = '\0';
}

char *mime_field_clean(const char *s, size_t max)
{
    char *out = utf8_clean(s ? s : "", s ? strlen(s) : 0, NULL);
    if (!out)
        return NULL;
    for (char *p = out; *p; p++)
        if (*p == '\t' || *p == '\r' || *p == '\n')
            *p = ' ';
    mime_cut_utf8(out, max);
    return out;
}

char *mime_addresses(GMimeObject *obj, InternetAddressList *list, const char *header, size_t max)
{
    if (list && internet_address_list_length(list) > 0) {
        char *s = internet_address_list_to_string(list, NULL, FALSE);
        char *out = mime_field_clean(s, max);
        g_free(s);
        return out;
    }
    /* unparseable: what is there, decoded */
    return mime_field_clean(g_mime_object_get_header(obj, header), max);
}

/* ---- charsets ------------------------------------------------------------- */

static int charset_is_utf8(const char *cs)
{
    return !g_ascii_strcasecmp(cs, "utf-8") || !g_ascii_strcasecmp(cs, "utf8") ||
           !g_ascii_strcasecmp(cs, "us-ascii") || !g_ascii_strcasecmp(cs, "ascii");
}

/* bytes converted from charset to UTF-8 by GMime's charset filter (which
 * skips what cannot be converted) into a new array; NULL when iconv does not
 * know charset. */
static GByteArray *charset_convert(const guint8 *bytes, size_t len, const char *charset)
{
    GMimeFilter *cf = g_mime_filter_charset_new(charset, "UTF-8");
    if (!cf)
        return NULL;
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
    return arr;
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

GByteArray *mime_part_utf8(GMimePart *part, int html)
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
        conv = charset_convert(raw->data, raw->len, declared);
    if (!conv && !looks_like_utf8(raw->data, raw->len))
        conv = charset_convert(raw->data, raw->len, "windows-1252");
    g_free(meta);
    if (!conv)
        return raw;
    g_byte_array_free(raw, TRUE);
    return conv;
}

/* ---- walking the MIME tree ------------------------------------------------ */

int mime_is_attachment_disposition(GMimeObject *obj)
{
    const char *d = g_mime_object_get_disposition(obj);
    return d && !g_ascii_strcasecmp(d, "attachment");
}

int mime_is_body(GMimeObject *obj, const char *subtype)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    return GMIME_IS_PART(obj) && ct && g_mime_content_type_is_type(ct, "text", subtype) &&
           !mime_is_attachment_disposition(obj);
}

int mime_holds_body(GMimeObject *obj, const char *subtype, int depth)
{
    if (depth > MIME_DEPTH_MAX)
        return 0;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && i < MIME_PARTS_MAX; i++)
            if (mime_holds_body(g_mime_multipart_get_part(mp, i), subtype, depth + 1))
                return 1;
        return 0;
    }
    return mime_is_body(obj, subtype);
}

/* ---- parsing -------------------------------------------------------------- */

void mime_skip_mbox_from(const unsigned char **raw, size_t *len)
{
    if (*len >= 5 && !memcmp(*raw, "From ", 5)) {
        const unsigned char *nl = memchr(*raw, '\n', *len);
        if (nl) {
            *len -= (size_t)(nl + 1 - *raw);
            *raw = nl + 1;
        }
    }
}

/* hint: a charset to try for raw 8-bit header text before windows-1252, or NULL. */
static GMimeParserOptions *parser_options(const char *hint)
{
    /* raw 8-bit header text: UTF-8 if it is that, else the hint or the usual Windows charset */
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
 * UTF-8/ASCII. */
static const char *body_charset(GMimeObject *obj, int depth)
{
    if (depth > MIME_DEPTH_MAX)
        return NULL;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && i < MIME_PARTS_MAX; i++) {
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

GMimeMessage *mime_parse(const unsigned char *raw, size_t len, GMimeParserOptions **options)
{
    *options = parser_options(NULL);
    GMimeMessage *msg = parse(raw, len, *options);
    const char *hint = msg && header_has_8bit(raw, len) ? body_charset(g_mime_message_get_mime_part(msg), 0) : NULL;
    if (hint) {
        /* headers in raw 8-bit: read them again, trying the body's charset first */
        char *cs = g_strdup(hint);
        g_object_unref(msg);
        g_mime_parser_options_free(*options);
        *options = parser_options(cs);
        msg = parse(raw, len, *options);
        g_free(cs);
    }
    return msg;
}
