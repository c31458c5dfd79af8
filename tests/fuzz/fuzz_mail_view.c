/*
 * fuzz_mail_view.c — libFuzzer target for the message reader
 * (src/mail/message_view.c, with the sanitiser behind it). The input is a raw
 * message. Checks message_view.h's promises: parsing never fails but for
 * memory; every header field is clean UTF-8 on one line; the text is clean
 * UTF-8 without CR; the HTML holds no <script; every listed attachment gives
 * back exactly its listed size, also through message_attachment_extract().
 * Built and run by scripts/run-fuzz.sh, seeded with the messages of
 * ../shared/corpora (tests/fuzz/README.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/message_view.h"
#include "mail/sanitize.h"

static void check_header(const char *s)
{
    if (!s || !utf8_is_clean(s, strlen(s)) || strpbrk(s, "\t\r\n"))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct message_view *v = NULL;
    struct message_view_opts o = {.cid_url_prefix = "/a/"};
    if (message_view_parse(data, size, &o, &v) != 0)
        return 0; /* out of memory */
    const char *headers[] = {v->from, v->from_addr, v->to,         v->cc,          v->reply_to,
                             v->subject, v->date,   v->message_id, v->in_reply_to, v->references};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        check_header(headers[i]);
    if (!v->text || !utf8_is_clean(v->text, strlen(v->text)) || strchr(v->text, '\r'))
        abort();
    if (v->html && (!utf8_is_clean(v->html, strlen(v->html)) || strcasestr(v->html, "<script")))
        abort();
    for (size_t i = 0; i < v->nattachments; i++) {
        const struct mail_attachment *a = &v->attachments[i];
        if (a->n != i || !a->content_type || !strchr(a->content_type, '/'))
            abort();
        if (a->filename && (!utf8_is_clean(a->filename, strlen(a->filename)) || strpbrk(a->filename, "/\\\r\n")))
            abort();
        unsigned char *b;
        size_t n;
        if (message_view_attachment(v, i, &b, &n) != 0 || n != a->size)
            abort();
        free(b);
    }
    if (v->nattachments > 0) {
        size_t last = v->nattachments - 1;
        unsigned char *b;
        size_t n;
        struct mail_attachment info;
        if (message_attachment_extract(data, size, last, &b, &n, &info) != 0 || n != v->attachments[last].size ||
            strcmp(info.content_type, v->attachments[last].content_type))
            abort();
        mail_attachment_clear(&info);
        free(b);
    }
    message_view_free(v);
    return 0;
}
