/*
 * test_mail_compose.c — compose_build() and the reply helpers. Every built
 * message is read back with message_view (and checked byte by byte for the
 * wire rules: CRLF only, 7-bit, lines of at most 998 octets), so the test
 * shows that what we send is what a reader sees; hostile field values must not
 * add header lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/compose.h"
#include "mail/message_view.h"

static const char *const TO[] = {"Bob <bob@acme.test>", "=?utf-8?q?Ren=C3=A9?= <rene@example.fr>",
                                 "\"Müller, Jürgen\" <j@example.de>"};
static const char *const CC[] = {"carol@acme.test"};
static const char *const BCC[] = {"secret@acme.test", "BOB@acme.test"};

/* The wire rules for a message handed to SMTP. */
static void assert_wire_clean(const unsigned char *p, size_t n)
{
    size_t line = 0;
    assert_true(n >= 2);
    assert_memory_equal(p + n - 2, "\r\n", 2);
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x80 || p[i] == 0)
            fail_msg("8-bit or NUL byte at %zu", i);
        if (p[i] == '\r' && (i + 1 >= n || p[i + 1] != '\n'))
            fail_msg("bare CR at %zu", i);
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            fail_msg("bare LF at %zu", i);
        if (p[i] == '\n')
            line = 0;
        else if (++line > 998)
            fail_msg("line longer than 998 octets at %zu", i);
    }
}

/* The header section of a built message (up to the empty line), NUL-terminated. */
static char *header_of(const struct compose_result *r)
{
    const char *end = strstr((const char *)r->data, "\r\n\r\n");
    assert_non_null(end);
    return strndup((const char *)r->data, (size_t)(end - (const char *)r->data) + 2);
}

static void test_full_message_round_trip(void **state)
{
    (void)state;
    unsigned char bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)i;
    struct compose_attachment att[] = {
        {"Rechnung März 2026 with a name long enough to need RFC 2231 continuations.pdf", "application/pdf", bin,
         sizeof bin},
        {"../../etc/passwd", "not a type", (const unsigned char *)"hi", 2},
        {NULL, NULL, NULL, 0},
    };
    struct compose_msg m = {
        .from_addr = "alice@acme.test",
        .from_name = "Alice Ä. Example",
        .to = TO, .nto = 3,
        .cc = CC, .ncc = 1,
        .bcc = BCC, .nbcc = 2,
        .subject = "Grüße aus Köln – a subject long enough that it has to be folded at least once, surely",
        .text = "Hallo,\r\nwie geht's? ünïcödé\nline3\n",
        .html = "<p>Hallo <b>Bob</b> ✓</p>",
        .attachments = att, .nattachments = 3,
        .in_reply_to = "<parent@example.org>",
        .references = "<root@example.org> <parent@example.org>",
        .date = 1795812817,
    };
    struct compose_result r;
    const char *err = NULL;
    assert_int_equal(compose_build(&m, &r, &err), 0);
    assert_wire_clean(r.data, r.len);

    /* envelope: every recipient once, Bcc included, case-insensitively deduplicated */
    assert_int_equal(r.nrcpts, 5);
    assert_string_equal(r.rcpts[0], "bob@acme.test");
    assert_string_equal(r.rcpts[1], "rene@example.fr");
    assert_string_equal(r.rcpts[2], "j@example.de");
    assert_string_equal(r.rcpts[3], "carol@acme.test");
    assert_string_equal(r.rcpts[4], "secret@acme.test");
    /* Bcc is not in the message */
    assert_null(memmem(r.data, r.len, "secret", 6));
    assert_null(memmem(r.data, r.len, "Bcc", 3));

    char *hdr = header_of(&r);
    assert_non_null(strstr(hdr, "Date: Fri, 27 Nov 2026 "));
    assert_non_null(strstr(hdr, "MIME-Version: 1.0\r\n"));
    assert_non_null(strstr(hdr, "Subject: =?UTF-8?"));
    free(hdr);
    assert_non_null(strstr(r.message_id, "@acme.test"));
    assert_non_null(memmem(r.data, r.len, "filename*0*=UTF-8''Rechnung%20M%C3%A4rz", 39));

    struct message_view *v = NULL;
    assert_int_equal(message_view_parse(r.data, r.len, NULL, &v), 0);
    assert_string_equal(v->from, "\"Alice Ä. Example\" <alice@acme.test>");
    assert_string_equal(v->from_addr, "alice@acme.test");
    assert_string_equal(v->to, "Bob <bob@acme.test>, René <rene@example.fr>, \"Müller, Jürgen\" <j@example.de>");
    assert_string_equal(v->cc, "carol@acme.test");
    assert_string_equal(v->subject, m.subject);
    assert_int_equal(v->date_unix, 1795812817);
    assert_string_equal(v->message_id, r.message_id);
    assert_string_equal(v->in_reply_to, "parent@example.org");
    assert_string_equal(v->references, "<root@example.org> <parent@example.org>");
    assert_string_equal(v->text, "Hallo,\nwie geht's? ünïcödé\nline3\n");
    assert_string_equal(v->html, "<p>Hallo <b>Bob</b> ✓</p>");
    assert_int_equal(v->nattachments, 3);
    assert_string_equal(v->attachments[0].filename, att[0].filename);
    assert_string_equal(v->attachments[0].content_type, "application/pdf");
    unsigned char *bytes;
    size_t n;
    assert_int_equal(message_view_attachment(v, 0, &bytes, &n), 0);
    assert_int_equal(n, sizeof bin);
    assert_memory_equal(bytes, bin, sizeof bin);
    free(bytes);
    assert_string_equal(v->attachments[1].filename, "_.._etc_passwd");
    assert_string_equal(v->attachments[1].content_type, "application/octet-stream");
    assert_string_equal(v->attachments[2].filename, "attachment");
    assert_int_equal(v->attachments[2].size, 0);
    message_view_free(v);
    compose_result_free(&r);
}

static void test_plain_only(void **state)
{
    (void)state;
    const char *to[] = {"bob@acme.test"};
    struct compose_msg m = {.from_addr = "alice@acme.test", .to = to, .nto = 1, .subject = "hi", .text = "Hello\n"};
    struct compose_result r, r2;
    assert_int_equal(compose_build(&m, &r, NULL), 0);
    assert_wire_clean(r.data, r.len);
    char *hdr = header_of(&r);
    assert_non_null(strstr(hdr, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(hdr, "From: alice@acme.test\r\n"));
    assert_non_null(strstr(hdr, "Subject: hi\r\n"));
    assert_null(strstr(hdr, "In-Reply-To"));
    assert_null(strstr(hdr, "References"));
    free(hdr);
    assert_non_null(memmem(r.data, r.len, "\r\n\r\nHello\r\n", 11));

    /* Message-IDs are new every time; another domain can be asked for */
    m.message_id_domain = "mail.acme.test";
    assert_int_equal(compose_build(&m, &r2, NULL), 0);
    assert_string_not_equal(r.message_id, r2.message_id);
    assert_non_null(strstr(r2.message_id, "@mail.acme.test"));
    compose_result_free(&r);
    compose_result_free(&r2);

    /* a line longer than SMTP allows is encoded, not cut */
    char *long_line = malloc(3001);
    memset(long_line, 'a', 3000);
    long_line[3000] = '\0';
    m.text = long_line;
    assert_int_equal(compose_build(&m, &r, NULL), 0);
    assert_wire_clean(r.data, r.len);
    struct message_view *v = NULL;
    assert_int_equal(message_view_parse(r.data, r.len, NULL, &v), 0);
    assert_true(!strncmp(v->text, long_line, 3000) && (!v->text[3000] || !strcmp(v->text + 3000, "\n")));
    message_view_free(v);
    compose_result_free(&r);
    free(long_line);
    m.text = "Hello\n";

    /* a reply with In-Reply-To only: References is the parent alone */
    m.in_reply_to = "parent@example.org";
    m.message_id_domain = NULL;
    assert_int_equal(compose_build(&m, &r, NULL), 0);
    hdr = header_of(&r);
    assert_non_null(strstr(hdr, "In-Reply-To: <parent@example.org>\r\n"));
    assert_non_null(strstr(hdr, "References: <parent@example.org>\r\n"));
    free(hdr);
    compose_result_free(&r);
}

static void test_no_header_injection(void **state)
{
    (void)state;
    const char *to[] = {"bob@acme.test"};
    struct compose_msg m = {
        .from_addr = "alice@acme.test",
        .from_name = "Alice\r\nBcc: evil@example.org",
        .to = to, .nto = 1,
        .subject = "hello\r\nBcc: evil@example.org\r\n\r\nfake body",
        .text = "body",
    };
    struct compose_result r;
    assert_int_equal(compose_build(&m, &r, NULL), 0);
    assert_wire_clean(r.data, r.len);
    char *hdr = header_of(&r);
    assert_null(strstr(hdr, "\r\nBcc:"));
    assert_null(strstr(hdr, "\r\n\r\n"));
    free(hdr);
    struct message_view *v = NULL;
    assert_int_equal(message_view_parse(r.data, r.len, NULL, &v), 0);
    assert_string_equal(v->subject, "hello  Bcc: evil@example.org    fake body");
    assert_string_equal(v->text, "body\n");
    message_view_free(v);
    assert_int_equal(r.nrcpts, 1);
    compose_result_free(&r);

    /* MIME boundaries in the text do not split it */
    m.subject = "b";
    m.html = "<p>x</p>\n--=-boundary\nContent-Type: text/html\n\n<script>alert(1)</script>";
    m.text = "--=-\r\n--\r\n.\r\n";
    assert_int_equal(compose_build(&m, &r, NULL), 0);
    assert_int_equal(message_view_parse(r.data, r.len, NULL, &v), 0);
    assert_string_equal(v->text, "--=-\n--\n.\n");
    assert_int_equal(v->nattachments, 0);
    message_view_free(v);
    compose_result_free(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    const char *good[] = {"bob@acme.test"};
    static const char *const bad_rcpts[] = {
        "not an address", "bob@acme.test, carol@acme.test", "group: a@b.c, d@e.f;", "<bob@>", "@acme.test",
        "bob@acme.test\r\nX-Injected: 1", "", "\"\" <>",
    };
    struct compose_result r;
    const char *err;
    for (size_t i = 0; i < sizeof bad_rcpts / sizeof bad_rcpts[0]; i++) {
        const char *to[] = {"ok@acme.test", bad_rcpts[i]};
        struct compose_msg m = {.from_addr = "alice@acme.test", .to = to, .nto = 2, .text = "x"};
        err = NULL;
        if (compose_build(&m, &r, &err) == 0)
            fail_msg("recipient \"%s\" was accepted", bad_rcpts[i]);
        assert_string_equal(err, "invalid recipient address");
        assert_null(r.data);
    }
    static const char *const bad_from[] = {NULL, "", "alice", "alice@", "Alice <alice@acme.test>", "a b@acme.test"};
    for (size_t i = 0; i < sizeof bad_from / sizeof bad_from[0]; i++) {
        struct compose_msg m = {.from_addr = bad_from[i], .to = good, .nto = 1};
        assert_int_equal(compose_build(&m, &r, &err), -1);
        assert_string_equal(err, "invalid From address");
    }
    struct compose_msg m = {.from_addr = "alice@acme.test"};
    assert_int_equal(compose_build(&m, &r, &err), -1);
    assert_string_equal(err, "no recipients");

    m = (struct compose_msg){.from_addr = "alice@acme.test", .to = good, .nto = 1, .in_reply_to = "<a b@c>"};
    assert_int_equal(compose_build(&m, &r, &err), -1);
    assert_string_equal(err, "invalid In-Reply-To message ID");

    m = (struct compose_msg){.from_addr = "alice@acme.test", .to = good, .nto = 1, .message_id_domain = "bad domain"};
    assert_int_equal(compose_build(&m, &r, &err), -1);

    const char **many = calloc(COMPOSE_RCPTS_MAX + 1, sizeof *many);
    for (size_t i = 0; i <= COMPOSE_RCPTS_MAX; i++)
        many[i] = "bob@acme.test";
    m = (struct compose_msg){.from_addr = "alice@acme.test", .to = many, .nto = COMPOSE_RCPTS_MAX + 1};
    assert_int_equal(compose_build(&m, &r, &err), -1);
    assert_string_equal(err, "too many recipients");
    /* the same address 1000 times is one envelope recipient */
    m.nto = COMPOSE_RCPTS_MAX;
    assert_int_equal(compose_build(&m, &r, &err), 0);
    assert_int_equal(r.nrcpts, 1);
    compose_result_free(&r);
    free(many);
}

static void test_big_attachment(void **state)
{
    (void)state;
    size_t len = 3 * 1024 * 1024 + 7;
    unsigned char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 7919 >> 3);
    const char *to[] = {"bob@acme.test"};
    struct compose_attachment a = {"big.bin", "application/octet-stream", data, len};
    struct compose_msg m = {.from_addr = "alice@acme.test", .to = to, .nto = 1, .text = "see attachment",
                            .attachments = &a, .nattachments = 1};
    struct compose_result r;
    assert_int_equal(compose_build(&m, &r, NULL), 0);
    assert_wire_clean(r.data, r.len);
    struct message_view *v = NULL;
    assert_int_equal(message_view_parse(r.data, r.len, NULL, &v), 0);
    assert_int_equal(v->nattachments, 1);
    assert_int_equal(v->attachments[0].size, len);
    unsigned char *back;
    size_t n;
    assert_int_equal(message_view_attachment(v, 0, &back, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(back, data, len);
    free(back);
    message_view_free(v);
    compose_result_free(&r);
    free(data);
}

static void test_reply_helpers(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"Hello", "Re", "Re: Hello"},
        {"Re: Hello", "Re", "Re: Hello"},
        {"  RE: Hello", "Re", "RE: Hello"},
        {"Hello", "Fwd", "Fwd: Hello"},
        {"Fw: Hello", "Fwd", "Fw: Hello"},
        {"Re: Hello", "Fwd", "Fwd: Re: Hello"},
        {"", "Re", "Re: "},
        {"multi\r\nline", "Re", "Re: multi  line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = compose_reply_subject(cases[i][0], cases[i][1]);
        assert_string_equal(s, cases[i][2]);
        free(s);
    }
    char *s = compose_reply_subject(NULL, "Re");
    assert_string_equal(s, "Re: ");
    free(s);

    static const char *const refs[][4] = {
        {"<a@x> <b@x>", "b@x", "c@x", "<a@x> <b@x> <c@x>"},
        {"", "b@x", "c@x", "<b@x> <c@x>"},
        {NULL, NULL, "c@x", "<c@x>"},
        {NULL, NULL, NULL, ""},
        {"garbage", "", "<c@x>", "<c@x>"},
    };
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        s = compose_references(refs[i][0], refs[i][1], refs[i][2]);
        if (strcmp(s, refs[i][3]))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, s, refs[i][3]);
        free(s);
    }
    /* a long thread keeps its root and the most recent IDs */
    char long_refs[4096] = "";
    for (int i = 0; i < 30; i++)
        snprintf(long_refs + strlen(long_refs), sizeof long_refs - strlen(long_refs), "<m%d@x> ", i);
    s = compose_references(long_refs, NULL, "new@x");
    int count = 0;
    for (const char *p = s; (p = strchr(p, '<')); p++)
        count++;
    assert_int_equal(count, COMPOSE_REFERENCES_MAX);
    assert_true(!strncmp(s, "<m0@x> <m12@x> ", 15));
    assert_non_null(strstr(s, "<m29@x> <new@x>"));
    free(s);
}

int main(void)
{
    mail_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_message_round_trip),
        cmocka_unit_test(test_plain_only),
        cmocka_unit_test(test_no_header_injection),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_big_attachment),
        cmocka_unit_test(test_reply_helpers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mail_shutdown();
    return rc;
}
