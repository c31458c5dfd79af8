/*
 * message_view.c — see message_view.h. GMime parses the message; we pick the
 * bodies, convert them to UTF-8, sanitise the HTML and list the rest as
 * attachments.
 *
 * Choosing the bodies, as mail clients do: in multipart/alternative the last
 * part with HTML and the first with plain text win (the others are the same
 * content again); elsewhere every part that is not marked as an attachment
 * and is text/plain or text/html is body text, in order; everything else is an
 * attachment, including attached messages (shown as .eml files) and the
 * images of a multipart/related HTML body (listed as inline, reachable through
 * their Content-ID). Parsing, the charset rules and telling a body from an
 * attachment are shared with the archive's text (mail_internal.h).
 */
#include "mail/message_view.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mail_internal.h"
#include "mail/sanitize.h"

#define FILENAME_MAX_BYTES 255

struct message_view_priv {
    GMimeParserOptions *options; /* parsed objects decode lazily with these */
    GMimeMessage *msg;
    GMimeObject **parts; /* attachment i is parts[i], owned by msg */
};

/* ---- strings -------------------------------------------------------------- */

/* A header field value for display: clean UTF-8 on one line, bounded. */
static char *header_clean(const char *s)
{
    return mime_field_clean(s, MESSAGE_VIEW_HEADER_MAX);
}

/* Body text: clean UTF-8 with LF line ends (CRLF and lone CR become LF). */
static char *text_clean(const char *s, size_t len)
{
    return utf8_clean_lf(s, len);
}

/* A file name safe to offer for saving: no directories, no control
 * characters, no leading dots or spaces; NULL when nothing is left. */
static char *filename_clean(const char *s)
{
    if (!s)
        return NULL;
    char *f = header_clean(s);
    if (!f)
        return NULL;
    for (char *p = f; *p; p++)
        if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '_';
    char *start = f;
    while (*start == '.' || *start == ' ')
        start++;
    memmove(f, start, strlen(start) + 1);
    size_t n = strlen(f);
    while (n > 0 && (f[n - 1] == ' ' || f[n - 1] == '.'))
        f[--n] = '\0';
    mime_cut_utf8(f, FILENAME_MAX_BYTES);
    if (!f[0]) {
        free(f);
        return NULL;
    }
    return f;
}

/* "type/subtype" in lower case if both are RFC 2045 tokens, else the safe
 * application/octet-stream (the value ends up in a Content-Type response). */
static char *mime_type_clean(const char *s)
{
    static const char FALLBACK[] = "application/octet-stream";
    const char *slash = s ? strchr(s, '/') : NULL;
    int ok = slash && slash != s && slash[1] && strlen(s) < 128;
    for (const char *p = s; ok && *p; p++)
        ok = g_ascii_isalnum(*p) || (p != slash && strchr("!#$&^_.+-", *p)) || p == slash;
    char *out = strdup(ok ? s : FALLBACK);
    if (out)
        for (char *p = out; *p; p++)
            *p = g_ascii_tolower(*p);
    return out;
}

/* ---- decoding parts ------------------------------------------------------- */

/* Copies what a mem stream holds into malloc'd memory (NUL-terminated). */
static unsigned char *stream_take(GMimeStream *mem, size_t *len)
{
    GByteArray *arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    size_t n = arr ? arr->len : 0;
    unsigned char *out = malloc(n + 1);
    if (!out)
        return NULL;
    if (n)
        memcpy(out, arr->data, n);
    out[n] = '\0';
    *len = n;
    return out;
}

/* The content of a leaf part with the transfer encoding undone. */
static unsigned char *part_decoded(GMimePart *part, size_t *len)
{
    GMimeStream *mem = g_mime_stream_mem_new();
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    if (w)
        g_mime_data_wrapper_write_to_stream(w, mem);
    unsigned char *out = stream_take(mem, len);
    g_object_unref(mem);
    return out;
}

/* The text of a text part (mail_internal.h's charset rules) as clean UTF-8
 * with LF line ends. */
static char *part_text(GMimePart *part, int html)
{
    GByteArray *utf8 = mime_part_utf8(part, html);
    char *out = text_clean((const char *)utf8->data, utf8->len);
    g_byte_array_free(utf8, TRUE);
    return out;
}

/* ---- walking the MIME tree ------------------------------------------------ */

struct vctx {
    struct message_view *v;
    int want_bodies;   /* 0: only the attachment list is wanted */
    GString *text;
    GPtrArray *html;   /* raw HTML bodies (UTF-8, g_free'd) */
    GPtrArray *parts;  /* the attachments' objects */
    GArray *atts;      /* struct mail_attachment */
    unsigned seen;
    int oom;
};

/* Bytes of an attachment: a part's decoded content, or an attached message. */
static unsigned char *attachment_bytes(GMimeObject *obj, size_t *len)
{
    if (GMIME_IS_PART(obj))
        return part_decoded(GMIME_PART(obj), len);
    GMimeStream *mem = g_mime_stream_mem_new();
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m)
            g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, mem);
    }
    unsigned char *out = stream_take(mem, len);
    g_object_unref(mem);
    return out;
}

static size_t attachment_size(GMimeObject *obj)
{
    GMimeStream *ns = g_mime_stream_null_new();
    if (GMIME_IS_PART(obj)) {
        GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(obj));
        if (w)
            g_mime_data_wrapper_write_to_stream(w, ns);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m)
            g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, ns);
    }
    size_t n = GMIME_STREAM_NULL(ns)->written;
    g_object_unref(ns);
    return n;
}

static void add_attachment(struct vctx *c, GMimeObject *obj)
{
    if (c->atts->len >= MESSAGE_VIEW_ATTACHMENTS_MAX) {
        c->v->truncated = 1;
        return;
    }
    struct mail_attachment a = {.n = c->atts->len};
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    char *mime = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    a.content_type = mime_type_clean(mime);
    g_free(mime);
    a.is_message = GMIME_IS_MESSAGE_PART(obj);
    const char *name = GMIME_IS_PART(obj) ? g_mime_part_get_filename(GMIME_PART(obj)) : NULL;
    if (!name)
        name = g_mime_object_get_content_disposition_parameter(obj, "filename");
    if (!name)
        name = g_mime_object_get_content_type_parameter(obj, "name");
    if (name)
        a.filename = filename_clean(name);
    if (!a.filename && a.is_message) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        const char *subject = m ? g_mime_message_get_subject(m) : NULL;
        char *eml = g_strdup_printf("%.200s.eml", subject && *subject ? subject : "message");
        a.filename = filename_clean(eml);
        g_free(eml);
    }
    const char *cid = g_mime_object_get_content_id(obj);
    if (cid && *cid)
        a.content_id = header_clean(cid);
    const char *disp = g_mime_object_get_disposition(obj);
    a.is_inline = disp ? !g_ascii_strcasecmp(disp, "inline") : a.content_id != NULL;
    a.size = attachment_size(obj);
    if (!a.content_type || (cid && *cid && !a.content_id)) {
        c->oom = 1;
        mail_attachment_clear(&a);
        return;
    }
    g_array_append_val(c->atts, a);
    g_ptr_array_add(c->parts, obj);
}

static void add_text(struct vctx *c, GMimePart *part)
{
    char *t = part_text(part, 0);
    if (!t) {
        c->oom = 1;
        return;
    }
    if (*t) {
        if (c->text->len && c->text->str[c->text->len - 1] != '\n')
            g_string_append_c(c->text, '\n');
        if (c->text->len)
            g_string_append_c(c->text, '\n');
        g_string_append(c->text, t);
    }
    free(t);
}

static void add_html(struct vctx *c, GMimePart *part)
{
    char *h = part_text(part, 1);
    if (!h) {
        c->oom = 1;
        return;
    }
    g_ptr_array_add(c->html, g_strdup(h));
    free(h);
}

static void walk(struct vctx *c, GMimeObject *obj, int depth, int text_only);

static void walk_alternative(struct vctx *c, GMimeMultipart *mp, int depth, int text_only)
{
    int n = g_mime_multipart_get_count(mp), html_i = -1, text_i = -1, body_i = -1;
    if (n > MIME_PARTS_MAX)
        n = MIME_PARTS_MAX;
    for (int i = 0; i < n; i++) {
        GMimeObject *child = g_mime_multipart_get_part(mp, i);
        if (mime_holds_body(child, "html", depth + 1))
            html_i = i;
        if (text_i < 0 && mime_holds_body(child, "plain", depth + 1))
            text_i = i;
    }
    if (text_only) {
        if (text_i >= 0)
            walk(c, g_mime_multipart_get_part(mp, text_i), depth + 1, 1);
        return;
    }
    body_i = html_i >= 0 ? html_i : text_i >= 0 ? text_i : n - 1;
    if (body_i >= 0) {
        size_t before = c->text->len;
        walk(c, g_mime_multipart_get_part(mp, body_i), depth + 1, 0);
        /* the plain version, unless the HTML branch brought its own text */
        if (text_i >= 0 && text_i != body_i && c->text->len == before)
            walk(c, g_mime_multipart_get_part(mp, text_i), depth + 1, 1);
    }
    /* alternatives that are files of their own (text/calendar invitations) */
    for (int i = 0; i < n; i++) {
        GMimeObject *child = g_mime_multipart_get_part(mp, i);
        if (i != body_i && i != text_i && GMIME_IS_PART(child) && !mime_is_body(child, "plain") &&
            !mime_is_body(child, "html") && !mime_is_body(child, "enriched") && !mime_is_body(child, "richtext"))
            add_attachment(c, child);
    }
}

static void walk(struct vctx *c, GMimeObject *obj, int depth, int text_only)
{
    if (!obj || c->oom)
        return;
    if (depth > MESSAGE_VIEW_DEPTH_MAX || ++c->seen > MIME_PARTS_MAX) {
        c->v->truncated = 1;
        return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        if (ct && g_mime_content_type_is_type(ct, "multipart", "alternative")) {
            walk_alternative(c, mp, depth, text_only);
            return;
        }
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && !c->oom; i++)
            walk(c, g_mime_multipart_get_part(mp, i), depth + 1, text_only);
        return;
    }
    if (c->want_bodies && mime_is_body(obj, "plain")) {
        add_text(c, GMIME_PART(obj));
        return;
    }
    if (text_only)
        return;
    if (c->want_bodies && mime_is_body(obj, "html")) {
        add_html(c, GMIME_PART(obj));
        return;
    }
    if (!c->want_bodies && (mime_is_body(obj, "plain") || mime_is_body(obj, "html")))
        return;
    if (GMIME_IS_PART(obj) || GMIME_IS_MESSAGE_PART(obj))
        add_attachment(c, obj);
}

/* ---- header fields -------------------------------------------------------- */

static char *addresses(GMimeObject *obj, InternetAddressList *list, const char *header)
{
    return mime_addresses(obj, list, header, MESSAGE_VIEW_HEADER_MAX);
}

static const char *first_mailbox(InternetAddressList *list, int depth)
{
    int n = list ? internet_address_list_length(list) : 0;
    for (int i = 0; i < n && depth < 4; i++) {
        InternetAddress *a = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(a))
            return internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
        if (INTERNET_ADDRESS_IS_GROUP(a)) {
            const char *m = first_mailbox(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), depth + 1);
            if (m)
                return m;
        }
    }
    return NULL;
}

/* "<a> <b>" from a References-like header, or the first ID alone. */
static char *message_ids(GMimeParserOptions *options, const char *value, int first_only)
{
    GString *s = g_string_new("");
    GMimeReferences *refs = value ? g_mime_references_parse(options, value) : NULL;
    int n = refs ? g_mime_references_length(refs) : 0;
    for (int i = 0; i < n; i++) {
        const char *id = g_mime_references_get_message_id(refs, i);
        if (!id || !*id)
            continue;
        if (first_only) {
            g_string_append(s, id);
            break;
        }
        if (s->len + strlen(id) + 3 > MESSAGE_VIEW_HEADER_MAX)
            break;
        g_string_append_printf(s, "%s<%s>", s->len ? " " : "", id);
    }
    if (refs)
        g_mime_references_free(refs);
    char *out = header_clean(s->str);
    g_string_free(s, TRUE);
    return out;
}

static int fill_headers(struct message_view *v, GMimeMessage *msg, GMimeParserOptions *options)
{
    GMimeObject *obj = GMIME_OBJECT(msg);
    InternetAddressList *from = g_mime_message_get_from(msg);
    v->from = addresses(obj, from, "From");
    v->from_addr = header_clean(first_mailbox(from, 0));
    v->to = addresses(obj, g_mime_message_get_to(msg), "To");
    v->cc = addresses(obj, g_mime_message_get_cc(msg), "Cc");
    v->reply_to = addresses(obj, g_mime_message_get_reply_to(msg), "Reply-To");
    v->subject = header_clean(g_mime_message_get_subject(msg));
    v->date = header_clean(g_mime_object_get_header(obj, "Date"));
    GDateTime *date = g_mime_message_get_date(msg);
    v->date_unix = date ? g_date_time_to_unix(date) : 0;
    v->message_id = header_clean(g_mime_message_get_message_id(msg));
    v->in_reply_to = message_ids(options, g_mime_object_get_header(obj, "In-Reply-To"), 1);
    v->references = message_ids(options, g_mime_object_get_header(obj, "References"), 0);
    return v->from && v->from_addr && v->to && v->cc && v->reply_to && v->subject && v->date && v->message_id &&
                   v->in_reply_to && v->references
               ? 0
               : -1;
}

/* ---- the view ------------------------------------------------------------- */

#define HEADER_FIELDS 10

/* The view's header field strings, for loops over them. */
static void header_fields(struct message_view *v, char **f[HEADER_FIELDS])
{
    char **all[HEADER_FIELDS] = {&v->from,    &v->from_addr, &v->to,         &v->cc,          &v->reply_to,
                                 &v->subject, &v->date,      &v->message_id, &v->in_reply_to, &v->references};
    memcpy(f, all, sizeof all);
}

struct cid_map {
    const struct message_view *v;
    const char *prefix;
};

/* sanitize_opts.resolve_cid: the download URL of the attachment with that Content-ID. */
static char *resolve_cid(void *arg, const char *cid)
{
    const struct cid_map *m = arg;
    for (size_t i = 0; i < m->v->nattachments; i++) {
        const struct mail_attachment *a = &m->v->attachments[i];
        if (!a->content_id || strcmp(a->content_id, cid))
            continue;
        size_t n = strlen(m->prefix) + 16;
        char *url = malloc(n);
        if (url)
            snprintf(url, n, "%s%u", m->prefix, a->n);
        return url;
    }
    return NULL;
}

/* Sets v->text and v->html from what the walk collected. */
static int finish_bodies(struct message_view *v, struct vctx *c, const struct message_view_opts *o)
{
    struct cid_map map = {v, o->cid_url_prefix};
    struct sanitize_opts so = {.load_remote_images = o->load_remote_images};
    if (o->cid_url_prefix) {
        so.resolve_cid = resolve_cid;
        so.resolve_arg = &map;
    }
    GString *html = c->html->len ? g_string_new("") : NULL;
    GString *alt_text = g_string_new("");
    int rc = 0;
    for (guint i = 0; i < c->html->len && rc == 0; i++) {
        const char *raw = g_ptr_array_index(c->html, i);
        char *out = NULL;
        size_t n;
        struct sanitize_report rep;
        if (html_sanitize(raw, strlen(raw), &so, &out, &n, &rep) == 0) {
            g_string_append_len(html, out, (gssize)n);
            v->blocked_remote_images += rep.blocked_remote_images;
            free(out);
        } else
            rc = -1;
        if (c->text->len == 0 && rc == 0) {
            if (html_to_text(raw, strlen(raw), &out, &n) == 0) {
                if (alt_text->len && n)
                    g_string_append_c(alt_text, '\n');
                g_string_append_len(alt_text, out, (gssize)n);
                free(out);
            } else
                rc = -1;
        }
    }
    const GString *text = c->text->len ? c->text : alt_text;
    if (rc == 0 && !(v->text = text_clean(text->str, text->len)))
        rc = -1;
    if (rc == 0 && html && !(v->html = utf8_clean(html->str, html->len, NULL)))
        rc = -1;
    if (html)
        g_string_free(html, TRUE);
    g_string_free(alt_text, TRUE);
    return rc;
}

static int view_build(const unsigned char *raw, size_t len, const struct message_view_opts *o, int want_bodies,
                      struct message_view **out)
{
    static const struct message_view_opts defaults;
    mail_init();
    *out = NULL;
    if (!o)
        o = &defaults;
    struct message_view *v = calloc(1, sizeof *v);
    if (!v)
        return -1;
    if (!(v->priv = calloc(1, sizeof *v->priv))) {
        free(v);
        return -1;
    }
    struct message_view_priv *p = v->priv;
    if (!raw) {
        raw = (const unsigned char *)"";
        len = 0;
    }
    const unsigned char *msg_raw = raw; /* raw itself stays for the no-message fallback below */
    size_t msg_len = len;
    mime_skip_mbox_from(&msg_raw, &msg_len);
    p->msg = mime_parse(msg_raw, msg_len, &p->options);
    struct vctx c = {
        .v = v,
        .want_bodies = want_bodies,
        .text = g_string_new(""),
        .html = g_ptr_array_new_with_free_func(g_free),
        .parts = g_ptr_array_new(),
        .atts = g_array_new(FALSE, TRUE, sizeof(struct mail_attachment)),
    };
    int rc = 0;
    if (p->msg) {
        rc = fill_headers(v, p->msg, p->options);
        if (rc == 0)
            walk(&c, g_mime_message_get_mime_part(p->msg), 0, 0);
    } else {
        /* GMime found no message at all: no header fields, the bytes as text */
        char **fields[HEADER_FIELDS];
        header_fields(v, fields);
        for (size_t i = 0; i < HEADER_FIELDS && rc == 0; i++)
            if (!(*fields[i] = header_clean(NULL)))
                rc = -1;
        g_string_append_len(c.text, (const char *)raw, (gssize)len);
    }
    if (c.oom)
        rc = -1;
    /* the attachment list first: the HTML's cid: links point into it */
    v->nattachments = c.atts->len;
    v->attachments = calloc(c.atts->len + 1, sizeof *v->attachments);
    p->parts = calloc(c.parts->len + 1, sizeof *p->parts);
    if (!v->attachments || !p->parts)
        rc = -1;
    for (guint i = 0; i < c.atts->len; i++) {
        struct mail_attachment *a = &g_array_index(c.atts, struct mail_attachment, i);
        if (v->attachments)
            v->attachments[i] = *a;
        else
            mail_attachment_clear(a);
        if (p->parts)
            p->parts[i] = g_ptr_array_index(c.parts, i);
    }
    if (!v->attachments)
        v->nattachments = 0;
    if (rc == 0 && want_bodies)
        rc = finish_bodies(v, &c, o);
    if (rc == 0 && !v->text && !(v->text = header_clean(NULL)))
        rc = -1;
    g_string_free(c.text, TRUE);
    g_ptr_array_free(c.html, TRUE);
    g_ptr_array_free(c.parts, TRUE);
    g_array_free(c.atts, TRUE);
    if (rc) {
        message_view_free(v);
        return -1;
    }
    *out = v;
    return 0;
}

int message_view_parse(const unsigned char *raw, size_t len, const struct message_view_opts *o,
                       struct message_view **out)
{
    return view_build(raw, len, o, 1, out);
}

void mail_attachment_clear(struct mail_attachment *a)
{
    free(a->filename);
    free(a->content_type);
    free(a->content_id);
    a->filename = a->content_type = a->content_id = NULL;
}

void message_view_free(struct message_view *v)
{
    if (!v)
        return;
    char **fields[HEADER_FIELDS];
    header_fields(v, fields);
    for (size_t i = 0; i < HEADER_FIELDS; i++)
        free(*fields[i]);
    free(v->text);
    free(v->html);
    for (size_t i = 0; i < v->nattachments; i++)
        mail_attachment_clear(&v->attachments[i]);
    free(v->attachments);
    if (v->priv) {
        if (v->priv->msg)
            g_object_unref(v->priv->msg);
        if (v->priv->options)
            g_mime_parser_options_free(v->priv->options);
        free(v->priv->parts);
        free(v->priv);
    }
    free(v);
}

int message_view_attachment(const struct message_view *v, size_t n, unsigned char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (!v || n >= v->nattachments || !v->priv || !v->priv->parts)
        return -1;
    *out = attachment_bytes(v->priv->parts[n], outlen);
    return *out ? 0 : -1;
}

int message_attachment_extract(const unsigned char *raw, size_t len, size_t n, unsigned char **out,
                               size_t *outlen, struct mail_attachment *info)
{
    struct message_view *v;
    *out = NULL;
    *outlen = 0;
    if (view_build(raw, len, NULL, 0, &v))
        return -1;
    int rc = message_view_attachment(v, n, out, outlen);
    if (rc == 0 && info) {
        *info = v->attachments[n];
        memset(&v->attachments[n], 0, sizeof v->attachments[n]);
    }
    message_view_free(v);
    return rc;
}
