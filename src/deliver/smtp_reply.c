/* smtp_reply.c — see smtp_reply.h. No allocation, no I/O. */
#include "deliver/smtp_reply.h"

#include <stdio.h>
#include <string.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* 1-3 digits at s[*i]; advances *i. */
static int digits_1_3(const char *s, size_t n, size_t *i)
{
    size_t start = *i;
    while (*i < n && is_digit(s[*i]) && *i - start < 3)
        (*i)++;
    return *i > start && !(*i < n && is_digit(s[*i]));
}

int smtp_enhanced_code(const char *s, size_t n, char cls, size_t *len)
{
    /* class "." subject "." detail, RFC 3463 section 2 */
    size_t i = 0;
    if (n < 5 || s[0] != cls || s[1] != '.')
        return 0;
    i = 2;
    if (!digits_1_3(s, n, &i) || i >= n || s[i] != '.')
        return 0;
    i++;
    if (!digits_1_3(s, n, &i))
        return 0;
    if (i < n && s[i] != ' ')
        return 0;
    *len = i;
    return 1;
}

/* Appends line text to the reply, '\n' between lines, control characters made
 * harmless, cut at the end of the buffer. */
static void append_text(struct smtp_reply *r, size_t *used, const char *s, size_t n)
{
    if (r->nlines > 0 && *used + 1 < sizeof r->text)
        r->text[(*used)++] = '\n';
    for (size_t i = 0; i < n && *used + 1 < sizeof r->text; i++) {
        unsigned char c = (unsigned char)s[i];
        r->text[(*used)++] = c == '\t' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    r->text[*used] = '\0';
}

enum smtp_reply_status smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *reply,
                                        size_t *consumed)
{
    size_t pos = 0, used = 0;
    reply->code = 0;
    reply->dsn[0] = '\0';
    reply->nlines = 0;
    reply->text[0] = '\0';

    for (;;) {
        const char *nl = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;
        if (!nl)
            return len >= SMTP_REPLY_MAX ? SMTP_REPLY_ERROR : SMTP_REPLY_INCOMPLETE;
        size_t eol = (size_t)(nl - buf);
        if (eol + 1 > SMTP_REPLY_MAX)
            return SMTP_REPLY_ERROR;
        const char *line = buf + pos;
        size_t n = eol - pos;
        if (n > 0 && line[n - 1] == '\r')
            n--;

        if (n < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
            line[0] < '2' || line[0] > '5')
            return SMTP_REPLY_ERROR;
        if (n > 3 && line[3] != ' ' && line[3] != '-')
            return SMTP_REPLY_ERROR;
        int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (reply->nlines > 0 && code != reply->code)
            return SMTP_REPLY_ERROR;
        reply->code = code;
        int last = n == 3 || line[3] == ' ';

        const char *text = n > 4 ? line + 4 : "";
        size_t tlen = n > 4 ? n - 4 : 0;
        if (reply->nlines == 0) {
            size_t dlen;
            if (smtp_enhanced_code(text, tlen, line[0], &dlen) && dlen < sizeof reply->dsn) {
                memcpy(reply->dsn, text, dlen);
                reply->dsn[dlen] = '\0';
            }
        }
        append_text(reply, &used, text, tlen);
        reply->nlines++;
        pos = eol + 1;
        if (last) {
            *consumed = pos;
            return SMTP_REPLY_DONE;
        }
    }
}

void smtp_reply_format(const struct smtp_reply *reply, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    int n = snprintf(out, outlen, "%03d%s", reply->code, reply->text[0] ? " " : "");
    if (n < 0 || (size_t)n >= outlen)
        return;
    size_t o = (size_t)n;
    for (const char *p = reply->text; *p && o + 1 < outlen; p++)
        out[o++] = *p == '\n' ? ' ' : *p;
    out[o] = '\0';
}

const char *smtp_reply_dsn(const struct smtp_reply *reply, char out[16])
{
    if (reply->dsn[0]) {
        snprintf(out, 16, "%s", reply->dsn);
        return out;
    }
    snprintf(out, 16, "%d.0.0", reply->code / 100);
    return out;
}
