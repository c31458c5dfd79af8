/*
 * test_mail_view.c — message_view: header decoding, body choice, charset
 * conversion, sanitised HTML, attachments and their bytes, and robustness
 * against broken and hostile messages. The corpus test runs every message of
 * the MIME corpora in ../shared/corpora (MimeKit, mime4j, Stalwart, Apache
 * SpamAssassin, CPython's test_email) through the parser and checks that
 * every string it returns is clean UTF-8, then spot-checks a few known ones.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/message_view.h"
#include "mail/sanitize.h"
#include "test_mail_corpora.h"

static struct message_view *parse_opts(const char *raw, const struct message_view_opts *o)
{
    struct message_view *v = NULL;
    assert_int_equal(message_view_parse((const unsigned char *)raw, strlen(raw), o, &v), 0);
    assert_non_null(v);
    return v;
}

static struct message_view *parse(const char *raw)
{
    return parse_opts(raw, NULL);
}

static void assert_header_clean(const char *s)
{
    assert_non_null(s);
    assert_true(utf8_is_clean(s, strlen(s)));
    assert_null(strpbrk(s, "\t\r\n"));
}

/* The promises of message_view.h about every string. */
static void assert_view_clean(const struct message_view *v, const char *what)
{
    const char *headers[] = {v->from, v->from_addr, v->to,         v->cc,          v->reply_to,
                             v->subject, v->date,   v->message_id, v->in_reply_to, v->references};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        if (!headers[i] || !utf8_is_clean(headers[i], strlen(headers[i])) || strpbrk(headers[i], "\t\r\n"))
            fail_msg("%s: header field %zu not clean", what, i);
    }
    if (!v->text || !utf8_is_clean(v->text, strlen(v->text)) || strchr(v->text, '\r'))
        fail_msg("%s: text not clean", what);
    if (v->html && (!utf8_is_clean(v->html, strlen(v->html)) || strcasestr(v->html, "<script") ||
                    strcasestr(v->html, "javascript:")))
        fail_msg("%s: html not clean", what);
    for (size_t i = 0; i < v->nattachments; i++) {
        const struct mail_attachment *a = &v->attachments[i];
        if (a->n != i || !a->content_type || !strchr(a->content_type, '/') ||
            strpbrk(a->content_type, " ;\"\r\n"))
            fail_msg("%s: attachment %zu: bad number or type", what, i);
        if (a->filename && (!utf8_is_clean(a->filename, strlen(a->filename)) || strpbrk(a->filename, "/\\\r\n\t") ||
                            a->filename[0] == '.' || !a->filename[0]))
            fail_msg("%s: attachment %zu: bad file name", what, i);
        if (a->content_id)
            assert_header_clean(a->content_id);
        unsigned char *bytes = NULL;
        size_t n = 0;
        if (message_view_attachment(v, i, &bytes, &n) != 0 || !bytes || n != a->size)
            fail_msg("%s: attachment %zu: %zu bytes, listed as %zu", what, i, n, a->size);
        free(bytes);
    }
}

/* ---- headers -------------------------------------------------------------- */

static void test_headers_decoded(void **state)
{
    (void)state;
    struct message_view *v = parse("From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.de>\r\n"
                                   "To: Bob <bob@acme.test>, =?ISO-8859-1?Q?Ren=E9?= <rene@example.fr>\r\n"
                                   "Cc: carol@acme.test\r\n"
                                   "Reply-To: list@example.org\r\n"
                                   "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?= =?UTF-8?B?IOKCrA==?=\r\n"
                                   "Date: Fri, 27 Nov 2026 21:53:37 +0100\r\n"
                                   "Message-ID: <abc.123@example.de>\r\n"
                                   "In-Reply-To: <parent@example.org> (comment)\r\n"
                                   "References: <root@example.org>\r\n <parent@example.org>\r\n"
                                   "\r\n"
                                   "Hallo Bob,\r\nwie geht's?\r\n");
    assert_string_equal(v->from, "Jürgen Müller <juergen@example.de>");
    assert_string_equal(v->from_addr, "juergen@example.de");
    assert_string_equal(v->to, "Bob <bob@acme.test>, René <rene@example.fr>");
    assert_string_equal(v->cc, "carol@acme.test");
    assert_string_equal(v->reply_to, "list@example.org");
    assert_string_equal(v->subject, "Grüße aus Köln €");
    assert_string_equal(v->date, "Fri, 27 Nov 2026 21:53:37 +0100");
    assert_int_equal(v->date_unix, 1795812817);
    assert_string_equal(v->message_id, "abc.123@example.de");
    assert_string_equal(v->in_reply_to, "parent@example.org");
    assert_string_equal(v->references, "<root@example.org> <parent@example.org>");
    assert_string_equal(v->text, "Hallo Bob,\nwie geht's?\n");
    assert_null(v->html);
    assert_int_equal(v->nattachments, 0);
    assert_int_equal(v->truncated, 0);
    assert_view_clean(v, "headers");
    message_view_free(v);
}

static void test_missing_and_raw_headers(void **state)
{
    (void)state;
    /* no header fields at all; then raw 8-bit ones in the body's charset */
    struct message_view *v = parse("\nbody only\n");
    assert_string_equal(v->from, "");
    assert_string_equal(v->subject, "");
    assert_int_equal(v->date_unix, 0);
    assert_string_equal(v->text, "body only\n");
    message_view_free(v);

    v = parse("From: \xc4\xe7\xec\xe7\xf4\xf1\xe7\xf2 <d@example.gr>\n"
              "Subject: \xc3\xe5\xe9\xdc \xf3\xef\xf5\n"
              "Content-Type: text/plain; charset=iso-8859-7\n\n"
              "\xc3\xe5\xe9\xdc\n");
    assert_string_equal(v->subject, "Γειά σου");
    assert_string_equal(v->from, "Δημητρης <d@example.gr>");
    assert_string_equal(v->text, "Γειά\n");
    message_view_free(v);

    /* raw UTF-8 header (RFC 6532) */
    v = parse("Subject: caf\xc3\xa9 \xe2\x98\x95\n\nx\n");
    assert_string_equal(v->subject, "café ☕");
    message_view_free(v);
}

/* ---- bodies --------------------------------------------------------------- */

static const char ALTERNATIVE[] =
    "From: a@example.org\n"
    "Subject: alt\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/alternative; boundary=\"b1\"\n"
    "\n"
    "--b1\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Plain version =E2=82=AC\n"
    "--b1\n"
    "Content-Type: text/html; charset=iso-8859-1\n"
    "\n"
    "<html><head><style>p{}</style></head><body><p onclick=\"x()\">HTML version \xe9</p>"
    "<script>alert(1)</script><img src=\"http://tracker.example/p.gif\"></body></html>\n"
    "--b1\n"
    "Content-Type: text/calendar; method=REQUEST; charset=utf-8\n"
    "\n"
    "BEGIN:VCALENDAR\n"
    "END:VCALENDAR\n"
    "--b1--\n";

static void test_alternative(void **state)
{
    (void)state;
    struct message_view *v = parse(ALTERNATIVE);
    assert_string_equal(v->text, "Plain version €");
    assert_non_null(v->html);
    assert_non_null(strstr(v->html, "<p>HTML version é</p>"));
    assert_null(strstr(v->html, "script"));
    assert_null(strstr(v->html, "onclick"));
    assert_non_null(strstr(v->html, "data-lb-src=\"http://tracker.example/p.gif\""));
    assert_int_equal(v->blocked_remote_images, 1);
    /* the invitation is offered as a file */
    assert_int_equal(v->nattachments, 1);
    assert_string_equal(v->attachments[0].content_type, "text/calendar");
    assert_view_clean(v, "alternative");
    message_view_free(v);

    struct message_view_opts o = {.load_remote_images = 1};
    v = parse_opts(ALTERNATIVE, &o);
    assert_non_null(strstr(v->html, "src=\"http://tracker.example/p.gif\""));
    assert_int_equal(v->blocked_remote_images, 0);
    message_view_free(v);
}

static void test_html_only(void **state)
{
    (void)state;
    struct message_view *v = parse("Subject: html\nContent-Type: text/html\n\n"
                                   "<h1>News</h1><p>First&nbsp;line<br>second</p><ul><li>a<li>b</ul>"
                                   "<a href=\"javascript:alert(1)\">click</a>\n");
    assert_string_equal(v->text, "News\n\nFirst\xc2\xa0line\nsecond\n\n* a\n* b\n\nclick\n");
    assert_string_equal(v->html, "<h1>News</h1><p>First\xc2\xa0line<br>second</p><ul><li>a</li><li>b</li></ul>"
                                 "<a>click</a>\n");
    assert_view_clean(v, "html only");
    message_view_free(v);
}

static void test_charsets(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        const char *text;
    } cases[] = {
        {"Content-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9\n", "café\n"},
        {"Content-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n", "Привет\n"},
        {"Content-Type: text/plain; charset=shift_jis\n\n\x93\xfa\x96\x7b\n", "日本\n"},
        {"Content-Type: text/plain; charset=utf-16le\nContent-Transfer-Encoding: base64\n\nSABpACEACgA=\n",
         "Hi!\n"},
        /* unknown charset, undeclared 8-bit, a UTF-8 label on Latin-1 bytes */
        {"Content-Type: text/plain; charset=x-no-such-charset\n\ncaf\xe9\n", "café\n"},
        {"Content-Type: text/plain; charset=x-no-such-charset\n\ncaf\xc3\xa9\n", "café\n"},
        {"Content-Type: text/plain\n\ncaf\xe9 \x80\n", "café €\n"},
        {"Content-Type: text/plain; charset=us-ascii\n\ncaf\xe9\n", "café\n"},
        {"Content-Type: text/plain; charset=utf-8\n\ncaf\xc3\xa9 \xff\n", "café \xef\xbf\xbd\n"},
        /* NULs and control characters; CRLF and lone CR */
        {"Content-Type: text/plain\n\na\x01" "b\r\nc\rd\n", "a\xef\xbf\xbd" "b\nc\nd\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct message_view *v = parse(cases[i].raw);
        if (strcmp(v->text, cases[i].text))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, v->text, cases[i].text);
        assert_view_clean(v, "charsets");
        message_view_free(v);
    }
    /* a NUL inside the body */
    static const char nul[] = "Content-Type: text/plain\n\nA\0B\n";
    struct message_view *v = NULL;
    assert_int_equal(message_view_parse((const unsigned char *)nul, sizeof nul - 1, NULL, &v), 0);
    assert_string_equal(v->text, "A\xef\xbf\xbd" "B\n");
    message_view_free(v);
    /* an HTML body whose charset is only in its <meta> */
    v = parse("Content-Type: text/html\n\n<meta charset=\"koi8-r\"><p>\xf0\xd2\xc9\xd7\xc5\xd4</p>\n");
    assert_string_equal(v->html, "<p>Привет</p>\n");
    message_view_free(v);
}

/* ---- attachments ---------------------------------------------------------- */

static const char MIXED[] =
    "From: a@example.org\n"
    "Subject: files\n"
    "Content-Type: multipart/mixed; boundary=outer\n"
    "\n"
    "preamble\n"
    "--outer\n"
    "Content-Type: text/plain\n"
    "\n"
    "See attached.\n"
    "--outer\n"
    "Content-Type: application/pdf; name=\"=?UTF-8?B?UmVjaG51bmcgw6Rw?=.pdf\"\n"
    "Content-Disposition: attachment; filename*0*=UTF-8''Rechnung%20M%C3%A4;\n"
    " filename*1*=rz%202026.pdf\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "JVBERi0xLjQKJcOkw7zDtsOfCg==\n"
    "--outer\n"
    "Content-Type: text/plain; name=notes.txt\n"
    "Content-Disposition: attachment; filename=\"../../etc/passwd\"\n"
    "\n"
    "root:x:0:0\n"
    "--outer\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: b@example.org\n"
    "Subject: =?UTF-8?Q?Weitergeleitet=3A_Gr=C3=BC=C3=9Fe?=\n"
    "\n"
    "inner body\n"
    "--outer\n"
    "Content-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename=\"=?ISO-8859-1?Q?r=E9sum=E9=2Ezip?=\"\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "PK=00=01\n"
    "--outer\n"
    "Content-Type: text/plain\n"
    "\n"
    "Footer of the list.\n"
    "--outer--\n";

static void test_attachments(void **state)
{
    (void)state;
    struct message_view *v = parse(MIXED);
    assert_string_equal(v->text, "See attached.\n\nFooter of the list.");
    assert_int_equal(v->nattachments, 4);

    assert_string_equal(v->attachments[0].filename, "Rechnung März 2026.pdf");
    assert_string_equal(v->attachments[0].content_type, "application/pdf");
    assert_int_equal(v->attachments[0].size, 19);
    assert_false(v->attachments[0].is_inline);
    unsigned char *bytes;
    size_t n;
    assert_int_equal(message_view_attachment(v, 0, &bytes, &n), 0);
    assert_int_equal(n, 19);
    assert_memory_equal(bytes, "%PDF-1.4\n%\xc3\xa4\xc3\xbc\xc3\xb6\xc3\x9f\n", 19);
    free(bytes);

    assert_string_equal(v->attachments[1].filename, "_.._etc_passwd");
    assert_string_equal(v->attachments[1].content_type, "text/plain");

    assert_true(v->attachments[2].is_message);
    assert_string_equal(v->attachments[2].content_type, "message/rfc822");
    assert_string_equal(v->attachments[2].filename, "Weitergeleitet: Grüße.eml");
    assert_int_equal(message_view_attachment(v, 2, &bytes, &n), 0);
    assert_non_null(memmem(bytes, n, "inner body", 10));
    free(bytes);

    assert_string_equal(v->attachments[3].filename, "résumé.zip");
    assert_int_equal(v->attachments[3].size, 4);
    assert_int_equal(message_view_attachment(v, 3, &bytes, &n), 0);
    assert_memory_equal(bytes, "PK\0\1", 4);
    free(bytes);

    assert_int_equal(message_view_attachment(v, 4, &bytes, &n), -1);
    assert_null(bytes);
    assert_view_clean(v, "mixed");

    /* the same numbering and bytes straight from the raw message */
    for (size_t i = 0; i < v->nattachments; i++) {
        unsigned char *b1, *b2;
        size_t n1, n2;
        struct mail_attachment info;
        assert_int_equal(message_view_attachment(v, i, &b1, &n1), 0);
        assert_int_equal(
            message_attachment_extract((const unsigned char *)MIXED, strlen(MIXED), i, &b2, &n2, &info), 0);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        assert_string_equal(info.content_type, v->attachments[i].content_type);
        assert_string_equal(info.filename, v->attachments[i].filename);
        mail_attachment_clear(&info);
        free(b1);
        free(b2);
    }
    assert_int_equal(message_attachment_extract((const unsigned char *)MIXED, strlen(MIXED), 4, &bytes, &n, NULL),
                     -1);
    message_view_free(v);
}

static const char RELATED[] =
    "Subject: newsletter\n"
    "Content-Type: multipart/related; boundary=r; type=\"text/html\"\n"
    "\n"
    "--r\n"
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<p>Logo: <img src=\"cid:logo@example.org\" alt=\"logo\"><img src=\"cid:missing@x\"></p>\n"
    "--r\n"
    "Content-Type: image/png\n"
    "Content-ID: <logo@example.org>\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "iVBORw0KGgo=\n"
    "--r--\n";

static void test_related_cid(void **state)
{
    (void)state;
    struct message_view_opts o = {.cid_url_prefix = "/api/v1/messages/42/attachments/"};
    struct message_view *v = parse_opts(RELATED, &o);
    assert_int_equal(v->nattachments, 1);
    assert_string_equal(v->attachments[0].content_id, "logo@example.org");
    assert_true(v->attachments[0].is_inline);
    assert_null(v->attachments[0].filename);
    assert_int_equal(v->attachments[0].size, 8);
    assert_string_equal(v->html, "<p>Logo: <img alt=\"logo\" src=\"/api/v1/messages/42/attachments/0\">"
                                 "<img src=\"cid:missing@x\"></p>");
    assert_string_equal(v->text, "Logo: [logo]\n");
    message_view_free(v);

    v = parse(RELATED); /* no prefix: cid: stays */
    assert_non_null(strstr(v->html, "src=\"cid:logo@example.org\""));
    message_view_free(v);
}

/* ---- hostile and broken messages ------------------------------------------ */

static void test_broken_mime(void **state)
{
    (void)state;
    static const char *const raws[] = {
        "",
        "\n",
        "garbage without any header structure \x01\x02\xff",
        "Content-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\nno boundary parameter\n",
        "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nno end boundary",
        "Content-Type: multipart/mixed; boundary=x\n\n--x--\n",
        "Content-Type: multipart/alternative; boundary=x\n\n--x\nContent-Type: image/gif\n\nGIF\n--x--\n",
        "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!\n",
        "Content-Type: text/plain\nContent-Transfer-Encoding: x-unknown\n\nbody\n",
        "Content-Type: ;;;/\n\nbody\n",
        "Content-Type: text/plain; charset=\"\n\nbody\n",
        "Content-Type: message/rfc822\n\n",
        "Content-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=q\n\n--q\n",
        "Content-Type: multipart/mixed; boundary=\"a\"\n\n--a\nContent-Type: multipart/mixed; boundary=\"a\"\n\n"
        "--a\n\n--a--\n--a--\n",
        "From: <<<@@@>>>, \"unterminated\nTo: ;;;\nSubject: =?utf-8?B?invalid base64?=\n"
        "Date: yesterday\nMessage-ID: <<<>>>\nReferences: <a> garbage <b\n\nx\n",
        "Subject: =?x-unknown?Q?=FF=FE?= =?utf-8?Q?=ff?=\n\nx\n",
        "Content-Disposition: attachment; filename*=x-bogus''%FF%00%2F..%2Fx\nContent-Type: text/plain\n\nx\n",
        "Content-Type: application/octet-stream\nContent-Disposition: inline; filename=\"\\0\\0\"\n\nx\n",
    };
    for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
        struct message_view *v = parse(raws[i]);
        char what[32];
        snprintf(what, sizeof what, "broken %zu", i);
        assert_view_clean(v, what);
        message_view_free(v);
    }
}

static void test_limits(void **state)
{
    (void)state;
    /* deep multipart nesting */
    GString *s = g_string_new("Subject: deep\n");
    for (int i = 0; i < 2000; i++)
        g_string_append_printf(s, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
    g_string_append(s, "Content-Type: text/plain\n\nbottom\n");
    struct message_view *v = parse(s->str);
    assert_true(v->truncated);
    assert_view_clean(v, "deep multipart");
    message_view_free(v);
    g_string_free(s, TRUE);

    /* deep attached messages */
    s = g_string_new("");
    for (int i = 0; i < 1000; i++)
        g_string_append(s, "Subject: level\nContent-Type: message/rfc822\n\n");
    g_string_append(s, "Subject: bottom\n\nbottom\n");
    v = parse(s->str);
    assert_string_equal(v->subject, "level");
    assert_view_clean(v, "deep rfc822");
    message_view_free(v);
    g_string_free(s, TRUE);

    /* a huge header field */
    s = g_string_new("Subject: ");
    for (int i = 0; i < 200000; i++)
        g_string_append(s, i % 10 ? "\xc3\xa9" : "\n ");
    g_string_append(s, "\nTo: ");
    for (int i = 0; i < 20000; i++)
        g_string_append_printf(s, "%su%d@example.org", i ? ", " : "", i);
    g_string_append(s, "\n\nbody\n");
    v = parse(s->str);
    assert_true(strlen(v->subject) <= MESSAGE_VIEW_HEADER_MAX);
    assert_true(strlen(v->subject) > 1000);
    assert_true(strlen(v->to) <= MESSAGE_VIEW_HEADER_MAX);
    assert_view_clean(v, "huge header");
    message_view_free(v);
    g_string_free(s, TRUE);

    /* more attachments than listed */
    s = g_string_new("Content-Type: multipart/mixed; boundary=m\n\n");
    for (int i = 0; i < MESSAGE_VIEW_ATTACHMENTS_MAX + 50; i++)
        g_string_append_printf(s, "--m\nContent-Type: image/gif\nContent-Disposition: attachment; "
                                  "filename=f%d.gif\n\nGIF89a\n",
                               i);
    g_string_append(s, "--m--\n");
    v = parse(s->str);
    assert_int_equal(v->nattachments, MESSAGE_VIEW_ATTACHMENTS_MAX);
    assert_true(v->truncated);
    assert_string_equal(v->attachments[999].filename, "f999.gif");
    message_view_free(v);
    g_string_free(s, TRUE);
}

/* ---- the corpora ---------------------------------------------------------- */

/* The view of one corpus message, or NULL (and a note) when it is not there. */
static struct message_view *corpus_view(const char *rel)
{
    size_t len;
    char *raw = corpora_read(rel, &len);
    if (!raw)
        return NULL;
    struct message_view *v = NULL;
    assert_int_equal(message_view_parse((const unsigned char *)raw, len, NULL, &v), 0);
    g_free(raw);
    return v;
}

static void test_corpora(void **state)
{
    (void)state;
    size_t missing;
    GPtrArray *corpus_files = corpora_mail_files(&missing);
    size_t eml = 0, total = 0, atts = 0, html = 0;
    for (guint i = 0; i < corpus_files->len; i++) {
        const char *path = g_ptr_array_index(corpus_files, i);
        gchar *raw = NULL;
        gsize len = 0;
        assert_true(g_file_get_contents(path, &raw, &len, NULL));
        struct message_view *v = NULL;
        if (message_view_parse((const unsigned char *)raw, len, NULL, &v) != 0)
            fail_msg("%s: message_view_parse failed", path);
        assert_view_clean(v, path);
        atts += v->nattachments;
        html += v->html != NULL;
        message_view_free(v);
        g_free(raw);
        total++;
        if (g_str_has_suffix(path, ".eml") || g_str_has_suffix(path, ".msg"))
            eml++;
    }
    g_ptr_array_free(corpus_files, TRUE);
    if (total)
        printf("mail corpora: %zu files parsed (%zu .eml/.msg), %zu with HTML, %zu attachments, all clean\n",
               total, eml, html, atts);
    if (missing == 0)
        assert_true(eml >= 200);

    /* spot checks on known messages */
    struct message_view *v;
    if ((v = corpus_view("mimekit/UnitTests/TestData/messages/japanese.txt"))) {
        assert_string_equal(v->subject, "日本語メールテスト (testing Japanese emails)");
        message_view_free(v);
    }

    if ((v = corpus_view("mimekit/UnitTests/TestData/compliance/raw-koi8r-header.eml"))) {
        assert_string_equal(v->subject, "Откуда он появился?");
        assert_string_equal(v->text, "Откуда он появился?\n");
        message_view_free(v);
    }

    if ((v = corpus_view("stalwart-mail-parser/resources/eml/thirdparty/010.eml"))) {
        assert_string_equal(v->subject, "こんにちは");
        message_view_free(v);
    }

    if ((v = corpus_view("spamassassin/t/data/spam/utf16.eml"))) {
        assert_string_equal(v->subject, "Design and manufacturing");
        assert_non_null(strstr(v->text, "Dear potencial partner,"));
        assert_non_null(v->html);
        assert_int_equal(v->nattachments, 2);
        assert_string_equal(v->attachments[0].filename, "x9pji0tnw4sl3w.jpg");
        assert_string_equal(v->attachments[0].content_id, "zzx5jmosz3buce");
        message_view_free(v);
    }

    static const char *const latin[] = {
        "james-mime4j/core/src/test/resources/mimetools-testmsgs/attachment-filename-encoding-UTF8.msg",
        "james-mime4j/core/src/test/resources/mimetools-testmsgs/attachment-filename-encoding-Latin1.msg",
    };
    for (size_t i = 0; i < 2; i++) {
        if ((v = corpus_view(latin[i]))) {
            assert_int_equal(v->nattachments, 1);
            assert_string_equal(v->attachments[0].filename, "attachment.äöü");
            message_view_free(v);
        }
    }

    if ((v = corpus_view("python-test_email/msg_02.txt"))) {
        assert_string_equal(v->subject, "Ppp digest, Vol 1 #2 - 5 msgs");
        assert_int_equal(v->nattachments, 5);
        assert_true(v->attachments[0].is_message);
        assert_string_equal(v->attachments[0].filename, "[Ppp] testing #1.eml");
        message_view_free(v);
    }

    if ((v = corpus_view("james-mime4j/core/src/test/resources/mimetools-testmsgs/intl.msg"))) {
        assert_string_equal(v->to, "Keld Jørn Simonsen <keld@dkuug.dk>");
        message_view_free(v);
    }
}

int main(void)
{
    mail_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_decoded),
        cmocka_unit_test(test_missing_and_raw_headers),
        cmocka_unit_test(test_alternative),
        cmocka_unit_test(test_html_only),
        cmocka_unit_test(test_charsets),
        cmocka_unit_test(test_attachments),
        cmocka_unit_test(test_related_cid),
        cmocka_unit_test(test_broken_mime),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_corpora),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mail_shutdown();
    return rc;
}
