/*
 * test_mail_archive_text.c — archive_text_extract: the Date, decoded header
 * fields, body text from plain, HTML and attached messages in any charset,
 * attachment names, the text bound, and robustness. The corpus test runs every
 * file of the MIME corpora in ../shared/corpora (SpamAssassin, MimeKit, mime4j,
 * CPython's test_email, Stalwart) through it: nothing crashes, every string is
 * valid UTF-8, and some known texts are found.
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

#include "mail/archive_text.h"
#include "mail/message_view.h"
#include "mail/sanitize.h"
#include "test_mail_corpora.h"

static struct archive_text extract_len(const char *raw, size_t len)
{
    struct archive_text t;
    assert_int_equal(archive_text_extract((const unsigned char *)raw, len, &t), 0);
    assert_non_null(t.subject);
    assert_non_null(t.from);
    assert_non_null(t.to);
    assert_non_null(t.body);
    assert_non_null(t.attachments);
    return t;
}

static struct archive_text extract(const char *raw)
{
    return extract_len(raw, strlen(raw));
}

static void assert_clean(const struct archive_text *t, const char *what)
{
    const char *fields[] = {t->subject, t->from, t->to, t->body, t->attachments};
    for (size_t i = 0; i < 5; i++)
        if (!utf8_is_clean(fields[i], strlen(fields[i])))
            fail_msg("%s: field %zu is not clean UTF-8", what, i);
    for (size_t i = 0; i < 3; i++)
        if (strpbrk(fields[i], "\r\n"))
            fail_msg("%s: header field %zu has a line break", what, i);
    if (strlen(t->body) > ARCHIVE_TEXT_MAX)
        fail_msg("%s: body over the bound", what);
}

static void test_headers(void **state)
{
    (void)state;
    struct archive_text t = extract("Date: Tue, 01 Oct 2024 12:00:00 +0200\r\n"
                                    "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <jm@example.org>\r\n"
                                    "To: Bob <bob@acme.test>\r\n"
                                    "Cc: =?UTF-8?B?w4lsb8Ohc2U=?= <e@acme.test>, x@y.test\r\n"
                                    "Subject: =?KOI8-R?B?8NLJ18XU?= and\r\n more\r\n"
                                    "\r\n"
                                    "Hello world\r\n");
    assert_int_equal(t.date, 1727776800);
    assert_string_equal(t.subject, "Привет and more");
    assert_string_equal(t.from, "Jörg Müller <jm@example.org>");
    assert_string_equal(t.to, "Bob <bob@acme.test>, Éloáse <e@acme.test>, x@y.test");
    assert_string_equal(t.body, "Hello world\r\n");
    assert_int_equal(t.has_attachment, 0);
    assert_string_equal(t.attachments, "");
    archive_text_free(&t);

    /* missing and broken Date: 0, the caller uses received */
    t = extract("Subject: x\r\n\r\nbody\r\n");
    assert_int_equal(t.date, 0);
    assert_string_equal(t.from, "");
    assert_string_equal(t.to, "");
    archive_text_free(&t);
    t = extract("Date: the day after tomorrow\r\nSubject: x\r\n\r\nbody\r\n");
    assert_int_equal(t.date, 0);
    archive_text_free(&t);

    /* raw 8-bit headers in the body's charset */
    t = extract("Subject: \xf0\xd2\xc9\xd7\xc5\xd4\r\n"
                "Content-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n");
    assert_string_equal(t.subject, "Привет");
    assert_string_equal(t.body, "Привет\r\n");
    archive_text_free(&t);
}

static void test_bodies(void **state)
{
    (void)state;
    /* alternative: the plain version only; HTML elsewhere rendered as text */
    struct archive_text t = extract("Subject: s\r\n"
                                    "MIME-Version: 1.0\r\n"
                                    "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
                                    "--outer\r\n"
                                    "Content-Type: multipart/alternative; boundary=alt\r\n\r\n"
                                    "--alt\r\n"
                                    "Content-Type: text/plain; charset=iso-8859-1\r\n"
                                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                                    "Gr=FC=DFe aus K=F6ln\r\n"
                                    "--alt\r\n"
                                    "Content-Type: text/html\r\n\r\n"
                                    "<p>alternative html</p>\r\n"
                                    "--alt--\r\n"
                                    "--outer\r\n"
                                    "Content-Type: text/html; charset=windows-1251\r\n\r\n"
                                    "<html><head><style>p{}</style><script>var secret;</script></head>"
                                    "<body><p>\xcc\xee\xf1\xea\xe2\xe0</p><p>second&nbsp;para</p></body></html>\r\n"
                                    "--outer\r\n"
                                    "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
                                    "Content-Disposition: attachment; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf\r\n"
                                    "Content-Transfer-Encoding: base64\r\n\r\n"
                                    "JVBERi0xLjQK\r\n"
                                    "--outer\r\n"
                                    "Content-Type: message/rfc822\r\n\r\n"
                                    "From: Inner <inner@example.net>\r\n"
                                    "Subject: the forwarded one\r\n"
                                    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                                    "inner text ünïcode\r\n"
                                    "--outer\r\n"
                                    "Content-Type: text/plain; name=notes.txt\r\n"
                                    "Content-Disposition: attachment; filename=notes.txt\r\n\r\n"
                                    "attached text is not body\r\n"
                                    "--outer--\r\n");
    assert_non_null(strstr(t.body, "Grüße aus Köln"));
    assert_null(strstr(t.body, "alternative html"));
    assert_non_null(strstr(t.body, "Москва"));
    assert_non_null(strstr(t.body, "second"));
    assert_null(strstr(t.body, "secret"));
    assert_null(strstr(t.body, "<p>"));
    assert_non_null(strstr(t.body, "the forwarded one"));
    assert_non_null(strstr(t.body, "Inner <inner@example.net>"));
    assert_non_null(strstr(t.body, "inner text ünïcode"));
    assert_null(strstr(t.body, "attached text"));
    assert_null(strstr(t.body, "JVBER"));
    assert_int_equal(t.has_attachment, 1);
    assert_string_equal(t.attachments, "Résumé.pdf notes.txt");
    assert_clean(&t, "bodies");
    archive_text_free(&t);

    /* an HTML-only alternative; an inline cid image is no attachment */
    t = extract("Content-Type: multipart/related; boundary=r\r\n\r\n"
                "--r\r\n"
                "Content-Type: multipart/alternative; boundary=a\r\n\r\n"
                "--a\r\n"
                "Content-Type: text/html; charset=utf-8\r\n\r\n"
                "<div>only <b>html</b> here</div>\r\n"
                "--a--\r\n"
                "--r\r\n"
                "Content-Type: image/png; name=logo.png\r\n"
                "Content-ID: <logo@x>\r\n"
                "Content-Disposition: inline; filename=logo.png\r\n\r\n"
                "xx\r\n"
                "--r--\r\n");
    assert_non_null(strstr(t.body, "only html here"));
    assert_int_equal(t.has_attachment, 0);
    archive_text_free(&t);

    /* undeclared 8-bit text: windows-1252 unless it is UTF-8 */
    t = extract("Subject: s\r\n\r\ncaf\xe9 cr\xe8me\r\n");
    assert_string_equal(t.body, "café crème\r\n");
    archive_text_free(&t);
    t = extract("Content-Type: text/plain; charset=x-unknown-charset\r\n\r\ncafé\r\n");
    assert_string_equal(t.body, "café\r\n");
    archive_text_free(&t);
}

static void test_bounds_and_garbage(void **state)
{
    (void)state;
    /* the text bound: a 1 MB body gives ARCHIVE_TEXT_MAX bytes, cut at a character */
    GString *s = g_string_new("Content-Type: text/plain; charset=utf-8\r\n\r\n");
    while (s->len < 1024 * 1024)
        g_string_append(s, "ééééééé word ");
    struct archive_text t = extract_len(s->str, s->len);
    assert_true(strlen(t.body) <= ARCHIVE_TEXT_MAX);
    assert_true(strlen(t.body) > ARCHIVE_TEXT_MAX - 8);
    assert_int_equal(t.truncated, 1);
    assert_clean(&t, "big");
    archive_text_free(&t);
    g_string_free(s, TRUE);

    /* a part that ends one byte short of the bound: the next part's separator
     * ("\n\n") does not take the body past it */
    s = g_string_new("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n");
    for (size_t i = 0; i < ARCHIVE_TEXT_MAX - 1; i++)
        g_string_append_c(s, 'a');
    g_string_append(s, "\r\n--b\r\n\r\nmore\r\n--b--\r\n");
    t = extract_len(s->str, s->len);
    assert_int_equal(strlen(t.body), ARCHIVE_TEXT_MAX - 1);
    assert_int_equal(t.truncated, 1);
    assert_clean(&t, "separator");
    archive_text_free(&t);
    g_string_free(s, TRUE);

    /* deep nesting stops at the limit */
    s = g_string_new("");
    for (int i = 0; i < 100; i++)
        g_string_append_printf(s, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    g_string_append(s, "Content-Type: text/plain\r\n\r\ndeep\r\n");
    t = extract_len(s->str, s->len);
    assert_int_equal(t.truncated, 1);
    assert_clean(&t, "deep");
    archive_text_free(&t);
    g_string_free(s, TRUE);

    /* nothing, NULs and binary junk */
    static const char junk[] = "\0\xff\xfe\x01Subject: \0x\r\n\r\n\xc3\x28\0body";
    t = extract_len(junk, sizeof junk - 1);
    assert_clean(&t, "junk");
    archive_text_free(&t);
    t = extract_len("", 0);
    assert_string_equal(t.body, "");
    archive_text_free(&t);
    assert_int_equal(archive_text_extract(NULL, 0, &t), 0);
    archive_text_free(&t);
    /* an mbox From_ line */
    t = extract("From someone@example.org Mon Jan  1 00:00:00 2024\nSubject: mbox\n\ntext\n");
    assert_string_equal(t.subject, "mbox");
    archive_text_free(&t);
}

/* ---- the corpora ---------------------------------------------------------- */

/* The text of one corpus message, or 0 (and a note) when it is not there. */
static int corpus_text(const char *rel, struct archive_text *t)
{
    size_t len;
    char *raw = corpora_read(rel, &len);
    if (!raw)
        return 0;
    *t = extract_len(raw, len);
    assert_clean(t, rel);
    g_free(raw);
    return 1;
}

static void test_corpora(void **state)
{
    (void)state;
    size_t missing;
    GPtrArray *corpus_files = corpora_mail_files(&missing);
    size_t total = 0, dated = 0, with_atts = 0, text_bytes = 0;
    for (guint i = 0; i < corpus_files->len; i++) {
        const char *path = g_ptr_array_index(corpus_files, i);
        gchar *raw = NULL;
        gsize len = 0;
        assert_true(g_file_get_contents(path, &raw, &len, NULL));
        struct archive_text t = extract_len(raw, len);
        assert_clean(&t, path);
        dated += t.date != 0;
        with_atts += t.has_attachment;
        text_bytes += strlen(t.body);
        archive_text_free(&t);
        g_free(raw);
        total++;
    }
    g_ptr_array_free(corpus_files, TRUE);
    if (total)
        printf("mail corpora: %zu files, %zu with a Date, %zu with attachments, %zu bytes of text, all clean\n",
               total, dated, with_atts, text_bytes);
    if (missing == 0)
        assert_true(total >= 800);

    /* known texts */
    struct archive_text t;
    if (corpus_text("mimekit/UnitTests/TestData/messages/japanese.txt", &t)) {
        assert_string_equal(t.subject, "日本語メールテスト (testing Japanese emails)");
        archive_text_free(&t);
    }
    if (corpus_text("mimekit/UnitTests/TestData/compliance/raw-koi8r-header.eml", &t)) {
        assert_string_equal(t.subject, "Откуда он появился?");
        assert_non_null(strstr(t.body, "Откуда он появился?"));
        archive_text_free(&t);
    }
    if (corpus_text("spamassassin/t/data/spam/utf16.eml", &t)) {
        assert_string_equal(t.subject, "Design and manufacturing");
        assert_non_null(strstr(t.body, "Dear potencial partner,"));
        assert_int_equal(t.has_attachment, 0); /* two inline cid images */
        archive_text_free(&t);
    }
    if (corpus_text("james-mime4j/core/src/test/resources/mimetools-testmsgs/attachment-filename-encoding-Latin1.msg",
                    &t)) {
        assert_int_equal(t.has_attachment, 1);
        assert_string_equal(t.attachments, "attachment.äöü");
        archive_text_free(&t);
    }
    if (corpus_text("python-test_email/msg_02.txt", &t)) {
        assert_string_equal(t.subject, "Ppp digest, Vol 1 #2 - 5 msgs");
        assert_int_equal(t.has_attachment, 1);
        assert_non_null(strstr(t.body, "[Ppp] testing #1")); /* an attached message's subject */
        archive_text_free(&t);
    }
    if (corpus_text("james-mime4j/core/src/test/resources/mimetools-testmsgs/intl.msg", &t)) {
        assert_non_null(strstr(t.to, "Keld Jørn Simonsen <keld@dkuug.dk>"));
        archive_text_free(&t);
    }
    if (corpus_text("stalwart-mail-parser/resources/eml/thirdparty/010.eml", &t)) {
        assert_string_equal(t.subject, "こんにちは");
        archive_text_free(&t);
    }
}

int main(void)
{
    mail_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_bounds_and_garbage),
        cmocka_unit_test(test_corpora),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mail_shutdown();
    return rc;
}
