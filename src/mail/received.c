/*
 * received.c — see received.h. Pure string building; the date comes from
 * util/timeutil (English names, numeric zone, whatever the locale).
 */
#include "mail/received.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/timeutil.h"

const char *received_protocol(const struct received_info *ri)
{
    /* Index: utf8 * 8 + esmtp * 4 + tls * 2 + auth. RFC 6531 only defines the
     * UTF8 names for ESMTP; a HELO session cannot use SMTPUTF8. */
    static const char *const names[16] = {
        "SMTP",     "SMTP",      "SMTP",      "SMTP",
        "ESMTP",    "ESMTPA",    "ESMTPS",    "ESMTPSA",
        "SMTP",     "SMTP",      "SMTP",      "SMTP",
        "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA",
    };
    unsigned i = (ri->smtputf8 ? 8u : 0u) | (ri->esmtp ? 4u : 0u) | (ri->tls ? 2u : 0u) |
                 (ri->auth ? 1u : 0u);
    return names[i];
}

/* Header text may hold UTF-8 (RFC 6532) but no control characters. */
static int header_safe(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

struct out {
    char *p;
    size_t len, cap;
    int overflow;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->overflow = 1;
        return;
    }
    o->len += (size_t)n;
}

int received_build(const struct received_info *ri, char *out, size_t outlen)
{
    if (!out || outlen == 0 || !ri->client_ip || !ri->hostname || !ri->queue_id)
        return -1;
    out[0] = '\0';
    if (!header_safe(ri->helo) || !header_safe(ri->client_ip) || !header_safe(ri->hostname) ||
        !header_safe(ri->queue_id) || !header_safe(ri->rcpt) || !header_safe(ri->tls_info))
        return -1;

    struct out o = {out, 0, outlen, 0};
    /* RFC 5321 address literal: IPv6 addresses carry the "IPv6:" tag. */
    const char *tag = strchr(ri->client_ip, ':') ? "IPv6:" : "";
    if (ri->helo && *ri->helo)
        put(&o, "Received: from %s ([%s%s])\r\n", ri->helo, tag, ri->client_ip);
    else
        put(&o, "Received: from [%s%s] ([%s%s])\r\n", tag, ri->client_ip, tag, ri->client_ip);
    put(&o, "\tby %s (lifeboat) with %s id %s", ri->hostname, received_protocol(ri), ri->queue_id);
    if (ri->tls && ri->tls_info && *ri->tls_info)
        put(&o, "\r\n\t(using %s)", ri->tls_info);
    char date[64];
    time_rfc5322(ri->when, date, sizeof date);
    if (ri->rcpt)
        put(&o, "\r\n\tfor <%s>; %s\r\n", ri->rcpt, date);
    else
        put(&o, ";\r\n\t%s\r\n", date);
    if (o.overflow) {
        out[0] = '\0';
        return -1;
    }
    return (int)o.len;
}

unsigned received_count_hops(const unsigned char *msg, size_t len)
{
    static const char name[] = "received:";
    const size_t nl = sizeof name - 1;
    unsigned hops = 0;
    size_t pos = 0;
    while (pos < len) {
        /* An empty line ends the header section. */
        if (msg[pos] == '\r' || msg[pos] == '\n')
            break;
        if (len - pos >= nl && strncasecmp((const char *)msg + pos, name, nl) == 0)
            hops++;
        const unsigned char *eol = memchr(msg + pos, '\n', len - pos);
        if (!eol)
            break;
        pos = (size_t)(eol - msg) + 1;
    }
    return hops;
}
