/*
 * submission_msg.c — the header checks and additions of the submission port
 * (see submission_msg.h): a scan of the header section that counts From, Date
 * and Message-ID and keeps the From value, GMime's address parser for the
 * mailboxes in it, and the Date and Message-ID fields RFC 6409 lets an MSA add.
 */
#include "smtpd/submission_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "mail/message_view.h"
#include "util/timeutil.h"

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int name_is(const unsigned char *name, size_t n, const char *want)
{
    if (strlen(want) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(name[i]) != ascii_lower((unsigned char)want[i]))
            return 0;
    return 1;
}

/* Appends to the kept From value; past SUBMISSION_FROM_MAX it is dropped. */
static int from_append(struct submission_headers *h, size_t *used, const unsigned char *p, size_t n)
{
    if (h->from_too_long)
        return 0;
    if (*used + n > SUBMISSION_FROM_MAX) {
        free(h->from);
        h->from = NULL;
        h->from_too_long = 1;
        return 0;
    }
    char *grown = realloc(h->from, *used + n + 1);
    if (!grown)
        return -1;
    h->from = grown;
    memcpy(h->from + *used, p, n);
    *used += n;
    h->from[*used] = '\0';
    return 0;
}

enum submission_scan_result submission_scan_headers(const unsigned char *msg, size_t len,
                                                    struct submission_headers *out)
{
    memset(out, 0, sizeof *out);
    size_t pos = 0, from_used = 0;
    int in_first_from = 0; /* continuation lines belong to the From value kept */
    while (pos < len) {
        const unsigned char *line = msg + pos;
        const unsigned char *lf = memchr(line, '\n', len - pos);
        size_t linelen = lf ? (size_t)(lf - line) + 1 : len - pos;
        size_t n = linelen; /* the text without its line end */
        if (n && line[n - 1] == '\n')
            n--;
        if (n && line[n - 1] == '\r')
            n--;
        if (n == 0) {
            out->header_len = pos;
            return SUBMISSION_SCAN_OK;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (pos == 0)
                goto malformed; /* a continuation of nothing */
            /* Unfolding (RFC 5322 2.2.3) removes the line break only. */
            if (in_first_from && from_append(out, &from_used, line, n) != 0)
                goto no_memory;
        } else {
            in_first_from = 0;
            size_t i = 0;
            while (i < n && line[i] > 32 && line[i] < 127 && line[i] != ':')
                i++;
            size_t name_len = i;
            while (i < n && (line[i] == ' ' || line[i] == '\t')) /* obs-optional (RFC 5322 4.5) */
                i++;
            if (name_len == 0 || i == n || line[i] != ':')
                goto malformed;
            i++;
            if (name_is(line, name_len, "From")) {
                if (++out->nfrom == 1) {
                    in_first_from = 1;
                    if (from_append(out, &from_used, line + i, n - i) != 0)
                        goto no_memory;
                }
            } else if (name_is(line, name_len, "Date")) {
                out->ndate++;
            } else if (name_is(line, name_len, "Message-ID")) {
                out->nmessage_id++;
            }
        }
        pos += linelen;
    }
    out->header_len = len;
    return SUBMISSION_SCAN_OK;

malformed:
    submission_headers_free(out);
    return SUBMISSION_SCAN_MALFORMED;
no_memory:
    submission_headers_free(out);
    return SUBMISSION_SCAN_NO_MEMORY;
}

void submission_headers_free(struct submission_headers *h)
{
    free(h->from);
    h->from = NULL;
}

int submission_from_addresses(const char *value, char out[][ADDR_MAX + 1], size_t max)
{
    mail_init(); /* GMime, once per process */
    InternetAddressList *list = internet_address_list_parse(NULL, value);
    if (!list)
        return -1;
    int n = internet_address_list_length(list);
    int count = 0;
    if (n <= 0 || (size_t)n > max)
        count = -1;
    for (int i = 0; count >= 0 && i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (!INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            count = -1; /* a group: RFC 5322 allows none in From */
            break;
        }
        const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
        if (!addr || !addr_is_valid(addr) || addr_canonical(addr, out[count], ADDR_MAX + 1) != 0) {
            count = -1;
            break;
        }
        count++;
    }
    g_object_unref(list);
    return count;
}

int submission_missing_headers(const struct submission_headers *h, const char *domain, time_t now, char *out,
                               size_t outlen, char *msgid, size_t msgidlen)
{
    size_t used = 0;
    int n;
    if (msgidlen)
        msgid[0] = '\0';
    if (outlen)
        out[0] = '\0';
    if (h->ndate == 0) {
        char date[64];
        time_rfc5322(now, date, sizeof date);
        n = snprintf(out, outlen, "Date: %s\r\n", date);
        if (n < 0 || (size_t)n >= outlen)
            return -1;
        used = (size_t)n;
    }
    if (h->nmessage_id == 0) {
        unsigned char raw[16];
        char hex[2 * sizeof raw + 1];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
        n = snprintf(msgid, msgidlen, "%lld.%s@%s", (long long)now, hex, domain);
        if (n < 0 || (size_t)n >= msgidlen)
            return -1;
        n = snprintf(out + used, outlen - used, "Message-ID: <%s>\r\n", msgid);
        if (n < 0 || (size_t)n >= outlen - used)
            return -1;
        used += (size_t)n;
    }
    return (int)used;
}
