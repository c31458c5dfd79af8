/*
 * dsn.c — see dsn.h. GMime builds the MIME structure and writes it with CRLF
 * line ends; the delivery-status fields are plain "Name: value" lines that we
 * format ourselves (RFC 3464 section 2), with anything a remote server put in
 * its reply made safe for a header line.
 */
#include "mail/dsn.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"

/* The returned header block is cut (at a line end) beyond this size. */
#define DSN_HEADERS_MAX (256 * 1024)

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void)
{
    g_mime_init();
}

static int has_8bit(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

/* Appends v as (part of) a one-line field value: no line breaks or control
 * characters; when the report must stay ASCII, no 8-bit bytes either. */
static void append_field(GString *s, const char *v, int allow_utf8)
{
    for (const unsigned char *p = (const unsigned char *)v; p && *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            g_string_append_c(s, ' ');
        else if (*p >= 0x80 && !allow_utf8)
            g_string_append_c(s, '?');
        else
            g_string_append_c(s, (char)*p);
    }
}

/* Length of the original's header block: up to and including the line end of
 * its last header line, without the empty line that ends it. */
static size_t header_block_len(const unsigned char *p, size_t n)
{
    if ((n >= 1 && p[0] == '\n') || (n >= 2 && p[0] == '\r' && p[1] == '\n'))
        return 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n'))
            return i + 1;
    }
    return n;
}

static GMimePart *part_with_content(const char *type, const char *subtype, const void *data, size_t len,
                                    GMimeContentEncoding encoding)
{
    GMimePart *part = g_mime_part_new_with_type(type, subtype);
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeDataWrapper *wrapper = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(part, wrapper);
    g_object_unref(wrapper);
    g_object_unref(stream);
    if (encoding == GMIME_CONTENT_ENCODING_DEFAULT)
        encoding = g_mime_part_get_best_content_encoding(part, GMIME_ENCODING_CONSTRAINT_7BIT);
    g_mime_part_set_content_encoding(part, encoding);
    return part;
}

static GMimeObject *human_part(const struct dsn_envelope *env, const struct dsn_failure *f, size_t n)
{
    GString *s = g_string_new(NULL);
    g_string_append_printf(s,
                           "This is the mail system at host %s.\n\n"
                           "Your message could not be delivered to one or more recipients.\n"
                           "The reasons are listed below; the header of your message is attached.\n\n"
                           "For further assistance, please write to postmaster@%s\n"
                           "and include this report.\n\n",
                           env->reporting_mta, env->reporting_mta);
    for (size_t i = 0; i < n; i++) {
        g_string_append_c(s, '<');
        append_field(s, f[i].rcpt, 1);
        g_string_append(s, ">: ");
        append_field(s, f[i].text && *f[i].text ? f[i].text : f[i].status, 1);
        g_string_append(s, "\n\n");
    }
    /* UTF-8 as it is (recipient addresses, server replies), encoded for 7-bit transport. */
    int utf8 = has_8bit(s->str);
    GMimePart *text = part_with_content("text", "plain", s->str, s->len, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_object_set_content_type_parameter(GMIME_OBJECT(text), "charset", utf8 ? "utf-8" : "us-ascii");
    g_mime_object_set_disposition(GMIME_OBJECT(text), "inline");
    g_string_free(s, TRUE);
    return GMIME_OBJECT(text);
}

/* The message/delivery-status body: per-message fields, then one block per recipient. */
static GString *status_fields(const struct dsn_envelope *env, const struct dsn_failure *f, size_t n,
                              int global)
{
    char date[64];
    GString *s = g_string_new(NULL);
    g_string_append(s, "Reporting-MTA: dns; ");
    append_field(s, env->reporting_mta, 0);
    if (env->queue_id && *env->queue_id) {
        g_string_append(s, "\nX-Lifeboat-Queue-ID: ");
        append_field(s, env->queue_id, 0);
    }
    g_string_append_printf(s, "\nX-Lifeboat-Sender: %s; ",
                           global && has_8bit(env->sender) ? "utf-8" : "rfc822");
    append_field(s, env->sender, global);
    if (env->arrival > 0) {
        time_rfc5322((time_t)env->arrival, date, sizeof date);
        g_string_append_printf(s, "\nArrival-Date: %s", date);
    }
    g_string_append_c(s, '\n');

    for (size_t i = 0; i < n; i++) {
        g_string_append_printf(s, "\nFinal-Recipient: %s; ",
                               global && has_8bit(f[i].rcpt) ? "utf-8" : "rfc822");
        append_field(s, f[i].rcpt, global);
        g_string_append(s, "\nAction: failed\nStatus: ");
        append_field(s, f[i].status, 0);
        if (f[i].remote_mta && *f[i].remote_mta) {
            g_string_append(s, "\nRemote-MTA: dns; ");
            append_field(s, f[i].remote_mta, 0);
        }
        if (f[i].smtp_reply && *f[i].smtp_reply) {
            g_string_append(s, "\nDiagnostic-Code: smtp; ");
            append_field(s, f[i].smtp_reply, global);
        } else if (f[i].text && *f[i].text) {
            g_string_append(s, "\nDiagnostic-Code: X-Lifeboat; ");
            append_field(s, f[i].text, global);
        }
        if (f[i].last_attempt > 0) {
            time_rfc5322((time_t)f[i].last_attempt, date, sizeof date);
            g_string_append_printf(s, "\nLast-Attempt-Date: %s", date);
        }
        g_string_append_c(s, '\n');
    }
    return s;
}

int dsn_build(const unsigned char *original, size_t original_len, const struct dsn_envelope *env,
              const struct dsn_failure *failures, size_t nfailures, unsigned char **out, size_t *outlen)
{
    if (!env->sender || !*env->sender || nfailures == 0)
        return -1;
    pthread_once(&gmime_once, gmime_start);

    int global = has_8bit(env->sender);
    for (size_t i = 0; i < nfailures; i++)
        global |= has_8bit(failures[i].rcpt);

    GMimeMessage *msg = g_mime_message_new(TRUE);
    char from[512];
    snprintf(from, sizeof from, "MAILER-DAEMON@%s", env->reporting_mta);
    internet_address_list_add(g_mime_message_get_from(msg),
                              internet_address_mailbox_new("Mail Delivery System", from));
    internet_address_list_add(g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_TO),
                              internet_address_mailbox_new(NULL, env->sender));
    g_mime_message_set_subject(msg, "Undelivered Mail Returned to Sender", NULL);
    GDateTime *now = g_date_time_new_now_local();
    g_mime_message_set_date(msg, now);
    g_date_time_unref(now);
    char msgid[512];
    snprintf(msgid, sizeof msgid, "%s.dsn@%s", env->dsn_id && *env->dsn_id ? env->dsn_id : env->queue_id,
             env->reporting_mta);
    g_mime_message_set_message_id(msg, msgid);
    g_mime_object_append_header(GMIME_OBJECT(msg), "Auto-Submitted", "auto-replied", NULL);

    GMimeMultipart *report = g_mime_multipart_new_with_subtype("report");
    g_mime_object_set_content_type_parameter(GMIME_OBJECT(report), "report-type", "delivery-status");
    g_mime_multipart_set_prologue(report, "This is a MIME-encapsulated message.");

    GMimeObject *human = human_part(env, failures, nfailures);
    g_mime_multipart_add(report, human);
    g_object_unref(human);

    GString *fields = status_fields(env, failures, nfailures, global);
    GMimePart *status = part_with_content("message", global ? "global-delivery-status" : "delivery-status",
                                          fields->str, fields->len,
                                          global ? GMIME_CONTENT_ENCODING_8BIT : GMIME_CONTENT_ENCODING_7BIT);
    g_string_free(fields, TRUE);
    g_mime_multipart_add(report, GMIME_OBJECT(status));
    g_object_unref(status);

    /* Our own Received: line first, then the original header as received. */
    size_t hlen = header_block_len(original, original_len);
    if (hlen > DSN_HEADERS_MAX) {
        hlen = DSN_HEADERS_MAX;
        while (hlen > 0 && original[hlen - 1] != '\n')
            hlen--;
    }
    GByteArray *headers = g_byte_array_new();
    if (env->prefix)
        g_byte_array_append(headers, (const guint8 *)env->prefix, (guint)strlen(env->prefix));
    g_byte_array_append(headers, original, (guint)hlen);
    GMimePart *orig =
        part_with_content(global ? "message" : "text", global ? "global-headers" : "rfc822-headers",
                          headers->data, headers->len, GMIME_CONTENT_ENCODING_DEFAULT);
    g_byte_array_free(headers, TRUE);
    g_mime_multipart_add(report, GMIME_OBJECT(orig));
    g_object_unref(orig);

    g_mime_message_set_mime_part(msg, GMIME_OBJECT(report));
    g_object_unref(report);

    GMimeFormatOptions *options = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(options, GMIME_NEWLINE_FORMAT_DOS);
    GMimeStream *stream = g_mime_stream_mem_new();
    ssize_t written = g_mime_object_write_to_stream(GMIME_OBJECT(msg), options, stream);
    g_mime_format_options_free(options);
    g_object_unref(msg);

    int rc = -1;
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
    if (written > 0 && bytes && bytes->len > 0) {
        *out = malloc(bytes->len);
        if (*out) {
            memcpy(*out, bytes->data, bytes->len);
            *outlen = bytes->len;
            rc = 0;
        }
    }
    g_object_unref(stream);
    return rc;
}
