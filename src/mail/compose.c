/*
 * compose.c — see compose.h. GMime builds the structure and does the
 * encodings (RFC 2047 header words, RFC 2231 parameters, quoted-printable or
 * base64 bodies, folding); we validate and normalise what goes in, so nothing
 * a user types can add a header line or break the MIME structure.
 */
#include "mail/compose.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "mail/message_view.h"
#include "mail/sanitize.h"
#include "util/addr.h"

#define SUBJECT_MAX 998
#define NAME_MAX_BYTES 255

/* s as clean UTF-8 on one line (line breaks and tabs become spaces), cut at
 * max bytes on a character boundary; never NULL but on out of memory. */
static char *one_line(const char *s, size_t max)
{
    char *out = utf8_clean(s ? s : "", s ? strlen(s) : 0, NULL);
    if (!out)
        return NULL;
    for (char *p = out; *p; p++)
        if (*p == '\r' || *p == '\n' || *p == '\t')
            *p = ' ';
    size_t n = strlen(out);
    if (n > max) {
        while (max > 0 && ((unsigned char)out[max] & 0xC0) == 0x80)
            max--;
        out[max] = '\0';
    }
    return out;
}

/* Body text as clean UTF-8 with LF line ends (GMime writes them as CRLF). */
static char *body_text(const char *s)
{
    return utf8_clean_lf(s ? s : "", s ? strlen(s) : 0);
}

/* A message ID without its angle brackets if it is one we can write: printable
 * ASCII without spaces or brackets; NULL otherwise. */
static char *msgid_clean(const char *s)
{
    if (!s)
        return NULL;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '<')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n > 0 && s[n - 1] == '>')
        n--;
    if (n == 0 || n > 250)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '<' || s[i] == '>')
            return NULL;
    return strndup(s, n);
}

static int mime_type_ok(const char *s)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || slash == s || !slash[1] || strlen(s) > 127)
        return 0;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isalnum(*p) && p != slash && !strchr("!#$&^_.+-", *p))
            return 0;
    return 1;
}

/* ---- addresses ------------------------------------------------------------ */

/* Adds a mailbox whose display name, if not ASCII, is encoded as UTF-8. */
static void add_mailbox(GMimeMessage *msg, GMimeAddressType type, const char *name, const char *addr)
{
    InternetAddress *ia = internet_address_mailbox_new(name && *name ? name : NULL, addr);
    internet_address_set_charset(ia, "utf-8");
    internet_address_list_add(g_mime_message_get_addresses(msg, type), ia);
    g_object_unref(ia);
}

struct rcpts {
    char **v;
    size_t n;
};

static int rcpt_add(struct rcpts *r, const char *addr)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcasecmp(r->v[i], addr))
            return 0;
    char *copy = strdup(addr);
    if (!copy)
        return -1;
    r->v[r->n++] = copy;
    return 0;
}

/*
 * Parses one recipient ("addr" or "Name <addr>") and adds it to the message's
 * list for type (none for Bcc) and to the envelope. -1 with *error set.
 */
static int add_recipient(GMimeMessage *msg, GMimeAddressType type, int in_header, const char *spec,
                         struct rcpts *env, const char **error)
{
    if (!spec || strpbrk(spec, "\r\n")) {
        *error = "invalid recipient address";
        return -1;
    }
    InternetAddressList *list = internet_address_list_parse(NULL, spec);
    int ok = list && internet_address_list_length(list) == 1;
    InternetAddress *ia = ok ? internet_address_list_get_address(list, 0) : NULL;
    const char *addr = ia && INTERNET_ADDRESS_IS_MAILBOX(ia)
                           ? internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia))
                           : NULL;
    int rc = 0;
    if (!addr || strlen(addr) > ADDR_MAX || !addr_is_valid(addr)) {
        *error = "invalid recipient address";
        rc = -1;
    } else if (rcpt_add(env, addr)) {
        *error = "out of memory";
        rc = -1;
    } else if (in_header) {
        char *name = one_line(internet_address_get_name(ia), NAME_MAX_BYTES);
        if (!name) {
            *error = "out of memory";
            rc = -1;
        } else
            add_mailbox(msg, type, name, addr);
        free(name);
    }
    if (list)
        g_object_unref(list);
    return rc;
}

/* ---- parts ---------------------------------------------------------------- */

/* A text part in UTF-8 (GMime's own set_text would pick ISO-8859-1 where it
 * can), quoted-printable or base64 when it is not 7-bit. */
static GMimeObject *text_part(const char *subtype, const char *text)
{
    GMimeTextPart *part = g_mime_text_part_new_with_subtype(subtype);
    g_mime_text_part_set_charset(part, "utf-8");
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(text, strlen(text));
    GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(GMIME_PART(part), w);
    g_object_unref(w);
    g_object_unref(stream);
    g_mime_part_set_content_encoding(GMIME_PART(part), g_mime_part_get_best_content_encoding(
                                                           GMIME_PART(part), GMIME_ENCODING_CONSTRAINT_7BIT));
    return GMIME_OBJECT(part);
}

static GMimeObject *attachment_part(const struct compose_attachment *a)
{
    const char *type = mime_type_ok(a->content_type) ? a->content_type : "application/octet-stream";
    const char *slash = strchr(type, '/');
    char *media = g_strndup(type, (gsize)(slash - type));
    GMimePart *part = g_mime_part_new_with_type(media, slash + 1);
    g_free(media);
    /* a file name, not a path (nor a hidden file); never empty */
    char *name = one_line(a->filename, NAME_MAX_BYTES);
    if (name) {
        for (char *p = name; *p; p++)
            if (*p == '/' || *p == '\\')
                *p = '_';
        const char *base = name;
        while (*base == '.' || *base == ' ')
            base++;
        g_mime_part_set_filename(part, *base ? base : "attachment");
        free(name);
        /* RFC 2231-encode it in UTF-8 (GMime would pick ISO-8859-1 where it can) */
        GMimeContentDisposition *d = g_mime_object_get_content_disposition(GMIME_OBJECT(part));
        GMimeParam *p = d ? g_mime_param_list_get_parameter(g_mime_content_disposition_get_parameters(d), "filename")
                          : NULL;
        if (p)
            g_mime_param_set_charset(p, "utf-8");
        GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
        p = ct ? g_mime_param_list_get_parameter(g_mime_content_type_get_parameters(ct), "name") : NULL;
        if (p)
            g_mime_param_set_charset(p, "utf-8");
    }
    g_mime_object_set_disposition(GMIME_OBJECT(part), GMIME_DISPOSITION_ATTACHMENT);
    const char *data = a->data ? (const char *)a->data : "";
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, a->data ? a->len : 0);
    GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(part, w);
    g_object_unref(w);
    g_object_unref(stream);
    g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
    return GMIME_OBJECT(part);
}

static GMimeObject *body(const struct compose_msg *m, const char **error)
{
    char *text = body_text(m->text);
    char *html = m->html ? body_text(m->html) : NULL;
    if (!text || (m->html && !html)) {
        free(text);
        free(html);
        *error = "out of memory";
        return NULL;
    }
    GMimeObject *root = text_part("plain", text);
    if (html) {
        GMimeMultipart *alt = g_mime_multipart_new_with_subtype("alternative");
        g_mime_multipart_add(alt, root);
        g_object_unref(root);
        GMimeObject *h = text_part("html", html);
        g_mime_multipart_add(alt, h);
        g_object_unref(h);
        root = GMIME_OBJECT(alt);
    }
    free(text);
    free(html);
    if (m->nattachments == 0)
        return root;
    GMimeMultipart *mixed = g_mime_multipart_new_with_subtype("mixed");
    g_mime_multipart_add(mixed, root);
    g_object_unref(root);
    for (size_t i = 0; i < m->nattachments; i++) {
        GMimeObject *a = attachment_part(&m->attachments[i]);
        g_mime_multipart_add(mixed, a);
        g_object_unref(a);
    }
    return GMIME_OBJECT(mixed);
}

/* ---- headers -------------------------------------------------------------- */

/* A new Message-ID: the time and 128 random bits, at domain. */
static char *new_message_id(const char *domain, int64_t when)
{
    unsigned char rnd[16];
    size_t got = 0;
    while (got < sizeof rnd) {
        ssize_t k = getrandom(rnd + got, sizeof rnd - got, 0);
        if (k <= 0)
            return NULL;
        got += (size_t)k;
    }
    char hex[2 * sizeof rnd + 1];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    size_t n = strlen(domain) + sizeof hex + 32;
    char *id = malloc(n);
    if (id)
        snprintf(id, n, "%lld.%s@%s", (long long)when, hex, domain);
    return id;
}

/* "<a> <b> ..." from References-like text, trimmed (see compose_references()). */
static char *references_join(GMimeReferences *refs)
{
    int n = refs ? g_mime_references_length(refs) : 0;
    GString *s = g_string_new("");
    for (int i = 0; i < n; i++) {
        /* keep the first (the thread's root) and the most recent ones */
        if (i > 0 && n > COMPOSE_REFERENCES_MAX && i <= n - COMPOSE_REFERENCES_MAX)
            continue;
        char *id = msgid_clean(g_mime_references_get_message_id(refs, i));
        if (id)
            g_string_append_printf(s, "%s<%s>", s->len ? " " : "", id);
        free(id);
    }
    char *out = strdup(s->str);
    g_string_free(s, TRUE);
    return out;
}

static int set_threading(GMimeMessage *msg, const struct compose_msg *m, const char **error)
{
    if (!m->in_reply_to || !*m->in_reply_to)
        return 0;
    char *parent = msgid_clean(m->in_reply_to);
    if (!parent) {
        *error = "invalid In-Reply-To message ID";
        return -1;
    }
    char *bracketed = g_strdup_printf("<%s>", parent);
    g_mime_object_set_header(GMIME_OBJECT(msg), "In-Reply-To", bracketed, NULL);
    char *refs = NULL;
    if (m->references && *m->references) {
        GMimeReferences *parsed = g_mime_references_parse(NULL, m->references);
        refs = references_join(parsed);
        if (parsed)
            g_mime_references_free(parsed);
    }
    g_mime_object_set_header(GMIME_OBJECT(msg), "References", refs && *refs ? refs : bracketed, NULL);
    free(refs);
    g_free(bracketed);
    free(parent);
    return 0;
}

/* ---- building ------------------------------------------------------------- */

int compose_build(const struct compose_msg *m, struct compose_result *r, const char **error)
{
    static const char *dummy;
    if (!error)
        error = &dummy;
    memset(r, 0, sizeof *r);
    mail_init();
    if (!m->from_addr || strlen(m->from_addr) > ADDR_MAX || !addr_is_valid(m->from_addr)) {
        *error = "invalid From address";
        return -1;
    }
    size_t total = m->nto + m->ncc + m->nbcc;
    if (total == 0) {
        *error = "no recipients";
        return -1;
    }
    if (total > COMPOSE_RCPTS_MAX) {
        *error = "too many recipients";
        return -1;
    }
    const char *domain = m->message_id_domain ? m->message_id_domain : addr_domain(m->from_addr);
    if (!domain_is_valid(domain)) {
        *error = "invalid domain for the Message-ID";
        return -1;
    }
    struct rcpts env = {.v = calloc(total, sizeof(char *))};
    GMimeMessage *msg = g_mime_message_new(TRUE);
    char *name = one_line(m->from_name, NAME_MAX_BYTES);
    char *subject = one_line(m->subject, SUBJECT_MAX);
    int64_t when = m->date ? m->date : (int64_t)time(NULL);
    char *msgid = new_message_id(domain, when);
    int rc = -1;
    if (!env.v || !name || !subject || !msgid) {
        *error = "out of memory";
        goto done;
    }
    add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, name, m->from_addr);
    for (size_t i = 0; i < m->nto; i++)
        if (add_recipient(msg, GMIME_ADDRESS_TYPE_TO, 1, m->to[i], &env, error))
            goto done;
    for (size_t i = 0; i < m->ncc; i++)
        if (add_recipient(msg, GMIME_ADDRESS_TYPE_CC, 1, m->cc[i], &env, error))
            goto done;
    for (size_t i = 0; i < m->nbcc; i++)
        if (add_recipient(msg, GMIME_ADDRESS_TYPE_BCC, 0, m->bcc[i], &env, error))
            goto done;
    g_mime_message_set_subject(msg, subject, "utf-8");
    GDateTime *date = g_date_time_new_from_unix_local(when);
    g_mime_message_set_date(msg, date);
    g_date_time_unref(date);
    g_mime_message_set_message_id(msg, msgid);
    if (set_threading(msg, m, error))
        goto done;
    GMimeObject *root = body(m, error);
    if (!root)
        goto done;
    g_mime_message_set_mime_part(msg, root);
    g_object_unref(root);

    GMimeFormatOptions *fo = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
    g_mime_format_options_set_param_encoding_method(fo, GMIME_PARAM_ENCODING_METHOD_RFC2231);
    GMimeStream *mem = g_mime_stream_mem_new();
    ssize_t written = g_mime_object_write_to_stream(GMIME_OBJECT(msg), fo, mem);
    g_mime_format_options_free(fo);
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    if (written > 0 && bytes && (r->data = malloc(bytes->len + 3))) {
        memcpy(r->data, bytes->data, bytes->len);
        r->len = bytes->len;
        if (r->len < 2 || memcmp(r->data + r->len - 2, "\r\n", 2)) {
            memcpy(r->data + r->len, "\r\n", 2);
            r->len += 2;
        }
        r->data[r->len] = '\0';
        rc = 0;
    } else
        *error = "out of memory";
    g_object_unref(mem);
done:
    g_object_unref(msg);
    free(name);
    free(subject);
    if (rc == 0) {
        r->message_id = msgid;
        r->rcpts = env.v;
        r->nrcpts = env.n;
    } else {
        free(msgid);
        for (size_t i = 0; i < env.n; i++)
            free(env.v[i]);
        free(env.v);
    }
    return rc;
}

void compose_result_free(struct compose_result *r)
{
    if (!r)
        return;
    free(r->data);
    free(r->message_id);
    for (size_t i = 0; i < r->nrcpts; i++)
        free(r->rcpts[i]);
    free(r->rcpts);
    memset(r, 0, sizeof *r);
}

/* ---- replies -------------------------------------------------------------- */

char *compose_reply_subject(const char *subject, const char *prefix)
{
    char *s = one_line(subject, SUBJECT_MAX);
    if (!s)
        return NULL;
    const char *p = s;
    while (*p == ' ')
        p++;
    int fwd = !strcasecmp(prefix, "Fwd") || !strcasecmp(prefix, "Fw");
    int has = fwd ? (!strncasecmp(p, "fwd:", 4) || !strncasecmp(p, "fw:", 3)) : !strncasecmp(p, "re:", 3);
    char *out = NULL;
    if (has)
        out = strdup(p);
    else if (asprintf(&out, "%s: %s", prefix, p) < 0)
        out = NULL;
    free(s);
    return out;
}

char *compose_references(const char *parent_references, const char *parent_in_reply_to,
                         const char *parent_message_id)
{
    mail_init();
    GMimeReferences *refs = NULL;
    if (parent_references && *parent_references)
        refs = g_mime_references_parse(NULL, parent_references);
    if ((!refs || g_mime_references_length(refs) == 0) && parent_in_reply_to && *parent_in_reply_to) {
        /* RFC 5322: the parent's In-Reply-To when it has no References but one ID */
        if (refs)
            g_mime_references_free(refs);
        char *id = msgid_clean(parent_in_reply_to);
        refs = g_mime_references_new();
        if (id)
            g_mime_references_append(refs, id);
        free(id);
    }
    if (!refs)
        refs = g_mime_references_new();
    char *mid = msgid_clean(parent_message_id);
    if (mid)
        g_mime_references_append(refs, mid);
    free(mid);
    char *out = references_join(refs);
    g_mime_references_free(refs);
    return out;
}
