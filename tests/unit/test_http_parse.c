/*
 * test_http_parse.c — the pure request parsers of http_parse.c that
 * tests/fuzz/fuzz_http_request.c also drives: the percent-decoding of paths
 * and queries ("%00" never becomes a NUL) and the fields of POST
 * /api/v1/send's body, with the codes the handler decides on (a bad From or
 * text field before the ownership check, out of memory apart from a 400).
 * The cookie parser is tested in test_http_session.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/http_internal.h"

static void decoded(const char *in, const char *want)
{
    char s[256];
    snprintf(s, sizeof s, "%s", in);
    size_t n = http_percent_decode(s);
    assert_string_equal(s, want);
    assert_int_equal(n, strlen(want));
}

static void test_percent_decode(void **state)
{
    (void)state;
    decoded("/api/v1/messages", "/api/v1/messages");
    decoded("/a%2Fb%20c", "/a/b c");
    decoded("caf%C3%A9", "caf\xc3\xa9");
    decoded("%41%61", "Aa");
    decoded("/index.html%00.js", "/index.html%00.js"); /* never a NUL that cuts the path */
    decoded("%zz%4", "%zz%4");
    decoded("100%", "100%");
    decoded("%%41", "%A");
    decoded("%2541", "%41"); /* one pass only */
    decoded("", "");
}

static int parse(const char *json, struct http_send_req *r, const char **why)
{
    json_error_t err;
    json_t *j = json_loads(json, JSON_REJECT_DUPLICATES, &err);
    assert_non_null(j);
    int rc = http_send_parse(j, r, why);
    /* r's strings point into j: compare what is needed before it goes */
    if (rc == HTTP_SEND_OK && r->subject)
        assert_string_equal(r->subject, "hi");
    if (rc == HTTP_SEND_OK && r->nto)
        assert_string_equal(r->to[0], "bob@beta.test");
    json_decref(j);
    return rc;
}

static void test_send_ok(void **state)
{
    (void)state;
    struct http_send_req r;
    const char *why = NULL;
    assert_int_equal(parse("{\"from\":\"Alice@Acme.test\",\"to\":[\"bob@beta.test\"],\"cc\":null,"
                           "\"bcc\":[\"c@d.test\",\"e@f.test\"],\"subject\":\"hi\",\"attachments\":"
                           "[{\"filename\":\"a.txt\",\"data_base64\":\"aGVs\\r\\nbG8=\"}]}",
                           &r, &why),
                     HTTP_SEND_OK);
    assert_string_equal(r.from, "alice@acme.test"); /* canonical (addr_canonical) */
    assert_int_equal(r.nto, 1);
    assert_int_equal(r.ncc, 0);
    assert_int_equal(r.nbcc, 2);
    assert_int_equal(r.natts, 1);
    assert_int_equal(r.atts[0].len, 5);
    assert_memory_equal(r.atts[0].data, "hello", 5);
    http_send_req_free(&r);
}

static void test_send_refused(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int rc;
        const char *why;
    } cases[] = {
        {"{}", HTTP_SEND_BAD_HEAD, "from must be one of your addresses"},
        {"{\"from\":\"not an address\",\"to\":[\"b@c.d\"]}", HTTP_SEND_BAD_HEAD, "from must be one of your addresses"},
        {"{\"from\":\"a@b.c\",\"subject\":7,\"to\":[\"b@c.d\"]}", HTTP_SEND_BAD_HEAD,
         "subject, text, html, in_reply_to and references must be strings"},
        {"{\"from\":\"a@b.c\"}", HTTP_SEND_BAD, "at least one recipient is needed"},
        {"{\"from\":\"a@b.c\",\"to\":[]}", HTTP_SEND_BAD, "at least one recipient is needed"},
        {"{\"from\":\"a@b.c\",\"to\":\"b@c.d\"}", HTTP_SEND_BAD, "to, cc and bcc must be arrays of addresses"},
        {"{\"from\":\"a@b.c\",\"to\":[\"b@c.d\", 5]}", HTTP_SEND_BAD, "invalid recipient address"},
        {"{\"from\":\"a@b.c\",\"to\":[\"b@c.d\"],\"attachments\":{}}", HTTP_SEND_BAD, "attachments must be an array"},
        {"{\"from\":\"a@b.c\",\"to\":[\"b@c.d\"],\"attachments\":[{\"data_base64\":\"a b\"}]}", HTTP_SEND_BAD,
         "attachment data is not valid base64"},
        {"{\"from\":\"a@b.c\",\"to\":[\"b@c.d\"],\"attachments\":[{\"filename\":\"x\"}]}", HTTP_SEND_BAD,
         "each attachment needs data_base64 (and may have filename, content_type as strings)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_send_req r;
        const char *why = NULL;
        int rc = parse(cases[i].json, &r, &why);
        if (rc != cases[i].rc || !why || strcmp(why, cases[i].why) != 0)
            fail_msg("%s: %d \"%s\"", cases[i].json, rc, why ? why : "(null)");
        http_send_req_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_send_ok),
        cmocka_unit_test(test_send_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
