/*
 * http_parse.c — the pure parsers of what a client sends: the percent-decoding
 * of the path and the query, the session cookie in a Cookie header, and the
 * fields of POST /api/v1/send's JSON body. Pure functions over strings and
 * jansson values (no server, no store), so the unit tests and the fuzzer
 * (tests/fuzz/fuzz_http_request.c) drive them directly.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "http/http_internal.h"
#include "util/addr.h"

/* ------------------------------------------------------------------ the URL */

/* Unlike libmicrohttpd's own decoding, "%00" stays as it is: a decoded NUL
 * would silently cut the path ("/index.html%00.js" served as "/index.html"),
 * so such a URL matches no route. */
size_t http_percent_decode(char *s)
{
    char *out = s;
    for (const char *in = s; *in;) {
        if (in[0] == '%' && isxdigit((unsigned char)in[1]) && isxdigit((unsigned char)in[2])) {
            char hex[3] = {in[1], in[2], 0};
            char v = (char)strtol(hex, NULL, 16);
            if (v != 0) {
                *out++ = v;
                in += 3;
                continue;
            }
        }
        *out++ = *in++;
    }
    *out = 0;
    return (size_t)(out - s);
}

/* ------------------------------------------------------------------ the session cookie */

/* RFC 6265 4.2.1: cookie-string = cookie-pair *( ";" SP cookie-pair ). Browsers
 * are lax about the spaces, so any run of spaces and tabs around pairs is skipped. */
int http_cookie_find(const char *header, const char *name, char *out, size_t outlen)
{
    if (!header || !name || !*name || outlen == 0)
        return 0;
    size_t nlen = strlen(name);
    int found = 0;
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        if (!*p)
            break;
        size_t pair = strcspn(p, ";");
        const char *eq = memchr(p, '=', pair);
        if (eq) {
            size_t klen = (size_t)(eq - p);
            while (klen > 0 && (p[klen - 1] == ' ' || p[klen - 1] == '\t'))
                klen--;
            if (klen == nlen && memcmp(p, name, nlen) == 0) {
                if (found)
                    return -1; /* twice: refuse rather than guess which one */
                const char *v = eq + 1;
                while (v < p + pair && (*v == ' ' || *v == '\t'))
                    v++;
                size_t vlen = pair - (size_t)(v - p);
                while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                    vlen--;
                if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') { /* DQUOTE *cookie-octet DQUOTE */
                    v++;
                    vlen -= 2;
                }
                if (vlen >= outlen)
                    return -1;
                memcpy(out, v, vlen);
                out[vlen] = '\0';
                found = 1;
            }
        }
        p += pair;
    }
    return found;
}

int http_token_valid(const char *s)
{
    if (!s)
        return 0;
    size_t i = 0;
    for (; s[i]; i++)
        if (i >= HTTP_TOKEN_HEX || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == HTTP_TOKEN_HEX;
}

/* ------------------------------------------------------------------ POST /api/v1/send */

static const char nomem[] = "out of memory"; /* told apart by address, not by text */

void http_send_req_free(struct http_send_req *r)
{
    free(r->to);
    free(r->cc);
    free(r->bcc);
    for (size_t i = 0; i < r->natts; i++)
        free((void *)r->atts[i].data);
    free(r->atts);
    memset(r, 0, sizeof *r);
}

/* An optional string field: 0 and *out (NULL when absent or null), -1 if it
 * is something else. */
static int opt_string(json_t *obj, const char *key, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

/* An optional array of addresses (bare local@domain, as the client sends
 * them). NULL with the reason on a bad field; *list is malloc'd. */
static const char *address_list(json_t *obj, const char *key, const char ***list, size_t *n)
{
    json_t *a = json_object_get(obj, key);
    *list = NULL;
    *n = 0;
    if (!a || json_is_null(a))
        return NULL;
    if (!json_is_array(a))
        return "to, cc and bcc must be arrays of addresses";
    if (json_array_size(a) > COMPOSE_RCPTS_MAX)
        return "too many recipients";
    if (json_array_size(a) == 0)
        return NULL;
    *list = calloc(json_array_size(a), sizeof **list);
    if (!*list)
        return nomem;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || strlen(s) > ADDR_MAX || !addr_is_valid(s))
            return "invalid recipient address";
        (*list)[(*n)++] = s;
    }
    return NULL;
}

/* Decodes the attachments. NULL, or the reason for a 400. */
static const char *attachments(json_t *obj, struct http_send_req *r)
{
    json_t *a = json_object_get(obj, "attachments");
    if (!a || json_is_null(a))
        return NULL;
    if (!json_is_array(a))
        return "attachments must be an array";
    if (json_array_size(a) > HTTP_SEND_ATTACHMENTS_MAX)
        return "too many attachments";
    if (json_array_size(a) == 0)
        return NULL;
    r->atts = calloc(json_array_size(a), sizeof *r->atts);
    if (!r->atts)
        return nomem;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        const char *filename, *ctype;
        json_t *data = json_is_object(v) ? json_object_get(v, "data_base64") : NULL;
        if (!data || !json_is_string(data) || opt_string(v, "filename", &filename) != 0 ||
            opt_string(v, "content_type", &ctype) != 0)
            return "each attachment needs data_base64 (and may have filename, content_type as strings)";
        const char *b64 = json_string_value(data);
        size_t b64len = json_string_length(data);
        size_t cap = b64len / 4 * 3 + 3;
        unsigned char *bin = malloc(cap ? cap : 1);
        if (!bin)
            return nomem;
        size_t binlen = 0;
        const char *end = NULL;
        /* Line breaks are tolerated (clients wrap base64 at 76); nothing else. */
        if (sodium_base642bin(bin, cap, b64, b64len, "\r\n", &binlen, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            end != b64 + b64len) {
            free(bin);
            return "attachment data is not valid base64";
        }
        r->atts[r->natts++] = (struct compose_attachment){
            .filename = filename, .content_type = ctype, .data = bin, .len = binlen};
    }
    return NULL;
}

int http_send_parse(json_t *j, struct http_send_req *r, const char **why)
{
    memset(r, 0, sizeof *r);
    const char *from_in;
    *why = "from must be one of your addresses";
    if (opt_string(j, "from", &from_in) != 0 || !from_in || !addr_is_valid(from_in) ||
        addr_canonical(from_in, r->from, sizeof r->from) != 0)
        return HTTP_SEND_BAD_HEAD;
    *why = "subject, text, html, in_reply_to and references must be strings";
    if (opt_string(j, "subject", &r->subject) != 0 || opt_string(j, "text", &r->text) != 0 ||
        opt_string(j, "html", &r->html) != 0 || opt_string(j, "in_reply_to", &r->in_reply_to) != 0 ||
        opt_string(j, "references", &r->references) != 0)
        return HTTP_SEND_BAD_HEAD;
    *why = address_list(j, "to", &r->to, &r->nto);
    if (!*why)
        *why = address_list(j, "cc", &r->cc, &r->ncc);
    if (!*why)
        *why = address_list(j, "bcc", &r->bcc, &r->nbcc);
    if (!*why && r->nto + r->ncc + r->nbcc == 0)
        *why = "at least one recipient is needed";
    if (!*why && r->nto + r->ncc + r->nbcc > COMPOSE_RCPTS_MAX)
        *why = "too many recipients";
    if (!*why)
        *why = attachments(j, r);
    if (!*why)
        return HTTP_SEND_OK;
    return *why == nomem ? HTTP_SEND_NOMEM : HTTP_SEND_BAD;
}
