/*
 * test_smtpd_auth.c — the submission port: the SASL PLAIN/LOGIN state machine
 * and base64 (sasl.c), the header checks and additions (submission_msg.c),
 * and whole sessions over socketpairs with the fake directory of
 * test_smtpd_harness.h: AUTH only after STARTTLS and never on port 25, the
 * lockout, suspended users, MAIL FROM and header From ownership, Date /
 * Message-ID / DKIM, the Sent copy, pipelining after AUTH, the loop serving
 * others while a check runs, and clients that leave in the middle.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_smtpd_harness.h"

#include <signal.h>
#include <sodium.h>

#include "smtpd/sasl.h"
#include "smtpd/submission_msg.h"

/* ------------------------------------------------------------------ helpers */

/* base64 of len bytes of data into out (static buffer per call site is enough). */
static const char *b64(const void *data, size_t len, char *out, size_t outlen)
{
    return sodium_bin2base64(out, outlen, data, len, sodium_base64_VARIANT_ORIGINAL);
}

static const char *plain(const char *authzid, const char *authcid, const char *password, char *out, size_t outlen)
{
    char msg[2048];
    size_t n = 0;
    n += (size_t)snprintf(msg + n, sizeof msg - n, "%s", authzid);
    msg[n++] = '\0';
    n += (size_t)snprintf(msg + n, sizeof msg - n, "%s", authcid);
    msg[n++] = '\0';
    memcpy(msg + n, password, strlen(password));
    n += strlen(password);
    return b64(msg, n, out, outlen);
}

/* ------------------------------------------------------------------ sasl.c */

static void test_b64(void **state)
{
    (void)state;
    unsigned char out[64];
    size_t n = 99;
    assert_int_equal(sasl_b64_decode("=", 1, out, sizeof out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(sasl_b64_decode("", 0, out, sizeof out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(sasl_b64_decode("YQ==", 4, out, sizeof out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 'a');
    assert_int_equal(sasl_b64_decode("AGFAYgBw", 8, out, sizeof out, &n), 0);
    assert_memory_equal(out, "\0a@b\0p", 6);
    assert_int_equal(sasl_b64_decode("YQ=", 3, out, sizeof out, &n), -1);     /* padding missing */
    assert_int_equal(sasl_b64_decode("Y Q==", 5, out, sizeof out, &n), -1);   /* a space */
    assert_int_equal(sasl_b64_decode("YQ==YQ==", 8, out, sizeof out, &n), -1); /* data after padding */
    assert_int_equal(sasl_b64_decode("YQ\r\n", 4, out, sizeof out, &n), -1);
    assert_int_equal(sasl_b64_decode("*", 1, out, sizeof out, &n), -1);
    assert_int_equal(sasl_b64_decode("YWJjZA==", 8, out, 3, &n), -1); /* does not fit */
    assert_int_equal(n, 0);
}

static enum sasl_plain_result split(const char *msg, size_t len, struct sasl *x)
{
    memset(x, 0, sizeof *x);
    return sasl_plain_split((const unsigned char *)msg, len, x);
}

static void test_plain_split(void **state)
{
    (void)state;
    struct sasl x;
    assert_int_equal(split("\0a@b.test\0pw", 12, &x), SASL_PLAIN_OK);
    assert_string_equal(x.authcid, "a@b.test");
    assert_string_equal(x.password, "pw");
    assert_int_equal(split("a@b.test\0a@b.test\0pw", 20, &x), SASL_PLAIN_OK);
    assert_int_equal(split("A@B.test\0a@b.test\0pw", 20, &x), SASL_PLAIN_OK); /* the same, another case */
    assert_int_equal(split("x@b.test\0a@b.test\0pw", 20, &x), SASL_PLAIN_AUTHZID);
    assert_string_equal(x.authcid, "");
    assert_string_equal(x.password, "");
    assert_int_equal(split("a@b.test\0pw", 11, &x), SASL_PLAIN_MALFORMED);   /* one NUL */
    assert_int_equal(split("\0\0pw", 4, &x), SASL_PLAIN_MALFORMED);          /* no authcid */
    assert_int_equal(split("\0a@b\0", 5, &x), SASL_PLAIN_MALFORMED);         /* no password */
    assert_int_equal(split("\0a@b\0p\0w", 8, &x), SASL_PLAIN_MALFORMED);     /* NUL in the password */
    assert_int_equal(split("\0a\nb\0pw", 7, &x), SASL_PLAIN_MALFORMED);      /* a line break into logs */
    assert_int_equal(split("", 0, &x), SASL_PLAIN_MALFORMED);

    char big[SASL_AUTHCID_MAX + SASL_PASSWORD_MAX + 8];
    memset(big, 'p', sizeof big);
    big[0] = '\0';
    memcpy(big + 1, "a@b", 3);
    big[4] = '\0';
    assert_int_equal(split(big, 5 + SASL_PASSWORD_MAX, &x), SASL_PLAIN_OK);
    assert_int_equal(strlen(x.password), SASL_PASSWORD_MAX);
    assert_int_equal(split(big, 5 + SASL_PASSWORD_MAX + 1, &x), SASL_PLAIN_MALFORMED);
    memset(big, 'a', sizeof big);
    big[0] = '\0';
    big[SASL_AUTHCID_MAX + 1] = '\0';
    assert_int_equal(split(big, SASL_AUTHCID_MAX + 4, &x), SASL_PLAIN_OK);
    big[SASL_AUTHCID_MAX + 1] = 'a';
    big[SASL_AUTHCID_MAX + 2] = '\0';
    assert_int_equal(split(big, SASL_AUTHCID_MAX + 5, &x), SASL_PLAIN_MALFORMED);
}

static void test_exchanges(void **state)
{
    (void)state;
    struct sasl x;
    const char *reply;
    char enc[256];

    /* PLAIN with an initial response. */
    plain("", "alice@acme.test", "s3cret", enc, sizeof enc);
    assert_int_equal(sasl_start(&x, "PLAIN", enc, strlen(enc), &reply), SASL_DONE);
    assert_string_equal(x.authcid, "alice@acme.test");
    assert_string_equal(x.password, "s3cret");
    sasl_clear(&x);
    assert_string_equal(x.password, "");

    /* PLAIN through the "334 " continuation; the mechanism in any case. */
    assert_int_equal(sasl_start(&x, "plain", NULL, 0, &reply), SASL_CONTINUE);
    assert_string_equal(reply, "334 ");
    assert_int_equal(sasl_step(&x, enc, strlen(enc), &reply), SASL_DONE);
    assert_string_equal(x.password, "s3cret");

    /* LOGIN: user name, then password. */
    assert_int_equal(sasl_start(&x, "LOGIN", NULL, 0, &reply), SASL_CONTINUE);
    assert_string_equal(reply, "334 VXNlcm5hbWU6");
    b64("bob@acme.test", 13, enc, sizeof enc);
    assert_int_equal(sasl_step(&x, enc, strlen(enc), &reply), SASL_CONTINUE);
    assert_string_equal(reply, "334 UGFzc3dvcmQ6");
    b64("pw", 2, enc, sizeof enc);
    assert_int_equal(sasl_step(&x, enc, strlen(enc), &reply), SASL_DONE);
    assert_string_equal(x.authcid, "bob@acme.test");
    assert_string_equal(x.password, "pw");

    /* LOGIN with the user name as initial response. */
    b64("bob@acme.test", 13, enc, sizeof enc);
    assert_int_equal(sasl_start(&x, "LOGIN", enc, strlen(enc), &reply), SASL_CONTINUE);
    assert_string_equal(reply, "334 UGFzc3dvcmQ6");

    /* "*" cancels, at any step. */
    assert_int_equal(sasl_step(&x, "*", 1, &reply), SASL_FAILED);
    assert_string_equal(reply, "501 5.0.0 Authentication aborted");
    assert_string_equal(x.authcid, "");
    assert_int_equal(sasl_start(&x, "PLAIN", NULL, 0, &reply), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, "*", 1, &reply), SASL_FAILED);
    assert_string_equal(reply, "501 5.0.0 Authentication aborted");

    /* Bad base64, an empty or malformed message. */
    assert_int_equal(sasl_start(&x, "PLAIN", NULL, 0, &reply), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, "%%%%", 4, &reply), SASL_FAILED);
    assert_string_equal(reply, "501 5.5.2 Invalid base64 data");
    assert_int_equal(sasl_start(&x, "PLAIN", "=", 1, &reply), SASL_FAILED);
    assert_string_equal(reply, "501 5.5.2 Malformed authentication data");
    assert_int_equal(sasl_start(&x, "LOGIN", NULL, 0, &reply), SASL_CONTINUE);
    assert_int_equal(sasl_step(&x, "", 0, &reply), SASL_FAILED); /* empty user name */
    assert_string_equal(reply, "501 5.5.2 Malformed authentication data");

    /* Someone else's authorization identity. */
    plain("ceo@acme.test", "alice@acme.test", "s3cret", enc, sizeof enc);
    assert_int_equal(sasl_start(&x, "PLAIN", enc, strlen(enc), &reply), SASL_FAILED);
    assert_string_equal(reply, "535 5.7.8 Authentication credentials invalid");
    assert_string_equal(x.password, "");

    /* Mechanisms we do not offer. */
    assert_int_equal(sasl_start(&x, "CRAM-MD5", NULL, 0, &reply), SASL_FAILED);
    assert_string_equal(reply, "504 5.5.4 Unrecognized authentication type");
    assert_int_equal(sasl_start(&x, "PLAINX", NULL, 0, &reply), SASL_FAILED);
    assert_int_equal(sasl_mech_parse("login"), SASL_MECH_LOGIN);
    assert_string_equal(sasl_mech_name(SASL_MECH_PLAIN), "PLAIN");
}

/* ------------------------------------------------------------------ submission_msg.c */

static enum submission_scan_result scan(const char *msg, struct submission_headers *h)
{
    return submission_scan_headers((const unsigned char *)msg, strlen(msg), h);
}

static void test_scan_headers(void **state)
{
    (void)state;
    struct submission_headers h;
    assert_int_equal(scan("From: Alice <alice@acme.test>\r\nTo: x@y.test\r\nSubject: hi\r\n\r\nFrom: body@x.test\r\n",
                          &h),
                     SUBMISSION_SCAN_OK);
    assert_int_equal(h.nfrom, 1);
    assert_int_equal(h.ndate, 0);
    assert_int_equal(h.nmessage_id, 0);
    assert_string_equal(h.from, " Alice <alice@acme.test>");
    assert_int_equal(h.header_len, 58);
    submission_headers_free(&h);

    /* Folded, odd case, white space before the colon, Date and Message-ID. */
    assert_int_equal(scan("FROM : \"Alice\"\r\n\t<alice@acme.test>\r\nDATE: x\r\nmessage-id: <a@b>\r\n\r\n", &h),
                     SUBMISSION_SCAN_OK);
    assert_int_equal(h.nfrom, 1);
    assert_int_equal(h.ndate, 1);
    assert_int_equal(h.nmessage_id, 1);
    assert_string_equal(h.from, " \"Alice\"\t<alice@acme.test>");
    submission_headers_free(&h);

    /* Two From fields: counted (the caller refuses), the first kept. */
    assert_int_equal(scan("From: a@acme.test\r\nX-A: 1\r\nFrom: ceo@bank.test\r\n\r\n", &h), SUBMISSION_SCAN_OK);
    assert_int_equal(h.nfrom, 2);
    assert_string_equal(h.from, " a@acme.test");
    submission_headers_free(&h);

    /* A header without a body, and no From at all. */
    assert_int_equal(scan("Subject: only\r\n", &h), SUBMISSION_SCAN_OK);
    assert_int_equal(h.nfrom, 0);
    assert_null(h.from);
    assert_int_equal(h.header_len, 15);
    assert_int_equal(scan("", &h), SUBMISSION_SCAN_OK);
    assert_int_equal(h.nfrom, 0);

    /* Lines that are no fields: a reader might still see a From after them. */
    assert_int_equal(scan("From: a@acme.test\r\nno colon here\r\nFrom: ceo@bank.test\r\n\r\n", &h),
                     SUBMISSION_SCAN_MALFORMED);
    assert_null(h.from);
    assert_int_equal(scan(" From: a@acme.test\r\n\r\n", &h), SUBMISSION_SCAN_MALFORMED);
    assert_int_equal(scan(": x\r\n\r\n", &h), SUBMISSION_SCAN_MALFORMED);
    assert_int_equal(scan("From\r\n\r\n", &h), SUBMISSION_SCAN_MALFORMED);

    /* A From too long to be anyone's. */
    size_t n = 2 * SUBMISSION_FROM_MAX;
    char *big = malloc(n + 64);
    strcpy(big, "From: a@acme.test");
    size_t len = strlen(big);
    while (len < n) {
        memcpy(big + len, "\r\n a@acme.test,", 15);
        len += 15;
    }
    memcpy(big + len, "\r\n\r\n", 5);
    assert_int_equal(scan(big, &h), SUBMISSION_SCAN_OK);
    assert_int_equal(h.nfrom, 1);
    assert_true(h.from_too_long);
    assert_null(h.from);
    free(big);
}

static void test_from_addresses(void **state)
{
    (void)state;
    char a[4][ADDR_MAX + 1];
    assert_int_equal(submission_from_addresses(" Alice Example <Alice@ACME.test>", a, 4), 1);
    assert_string_equal(a[0], "alice@acme.test");
    assert_int_equal(submission_from_addresses(" alice@acme.test", a, 4), 1);
    assert_int_equal(submission_from_addresses(" =?utf-8?q?Gr=C3=BC=C3=9Fe?= <sales@acme.test>", a, 4), 1);
    assert_string_equal(a[0], "sales@acme.test");
    assert_int_equal(submission_from_addresses(" a@acme.test, \"B, C\" <b@acme.test>", a, 4), 2);
    assert_string_equal(a[1], "b@acme.test");
    assert_int_equal(submission_from_addresses(" a@x.test, b@x.test, c@x.test", a, 2), -1); /* too many */
    assert_int_equal(submission_from_addresses(" undisclosed-recipients:;", a, 4), -1);     /* a group */
    assert_int_equal(submission_from_addresses(" friends: a@acme.test;", a, 4), -1);
    assert_int_equal(submission_from_addresses("", a, 4), -1);
    assert_int_equal(submission_from_addresses(" Alice", a, 4), -1); /* no address */
}

static void test_missing_headers(void **state)
{
    (void)state;
    struct submission_headers h = {0};
    char out[SUBMISSION_ADDED_MAX], id[300];
    int n = submission_missing_headers(&h, "acme.test", 1795000000, out, sizeof out, id, sizeof id);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(out));
    assert_memory_equal(out, "Date: ", 6);
    char *mid = strstr(out, "\r\nMessage-ID: <");
    assert_non_null(mid);
    assert_non_null(strstr(id, "@acme.test"));
    assert_memory_equal(id, "1795000000.", 11);
    assert_int_equal(strlen(id), 11 + 32 + 10);
    char expect[400];
    snprintf(expect, sizeof expect, "\r\nMessage-ID: <%s>\r\n", id);
    assert_string_equal(mid, expect);

    char id2[300];
    submission_missing_headers(&h, "acme.test", 1795000000, out, sizeof out, id2, sizeof id2);
    assert_string_not_equal(id, id2); /* random */

    h.ndate = h.nmessage_id = 1;
    assert_int_equal(submission_missing_headers(&h, "acme.test", 0, out, sizeof out, id, sizeof id), 0);
    assert_string_equal(out, "");
    assert_string_equal(id, "");
    h.ndate = 0;
    assert_int_equal(submission_missing_headers(&h, "acme.test", 0, out, 10, id, sizeof id), -1);
}

/* ------------------------------------------------------------------ sessions */

static char cert_dir[64];

static struct harness *H;

static int setup(void **state)
{
    (void)state;
    H = harness_new(harness_with_cert);
    return H ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    harness_free(H);
    H = NULL;
    return 0;
}

/* Greeting, EHLO, STARTTLS, EHLO again: ready for AUTH. The second EHLO's
 * reply goes to ehlo when given. */
static struct client *tls_session(struct harness *h, int submission, char *ehlo, size_t ehlolen)
{
    struct client *c = submission ? client_connect_submission(h, "192.0.2.20") : client_connect(h, "192.0.2.20");
    assert_non_null(c);
    expect_reply(c, "220 ");
    client_send(c, "STARTTLS\r\n");
    expect_reply(c, "220 2.0.0");
    assert_int_equal(client_start_tls(c), 0);
    client_send(c, "EHLO client.test\r\n");
    char r[4096];
    client_reply(c, r, sizeof r);
    assert_memory_equal(r, "250-mx.lifeboat.test", 20);
    if (ehlo)
        snprintf(ehlo, ehlolen, "%s", r);
    return c;
}

static void send_auth_plain(struct client *c, const char *authcid, const char *password)
{
    char enc[3000], line[3100];
    plain("", authcid, password, enc, sizeof enc);
    snprintf(line, sizeof line, "AUTH PLAIN %s\r\n", enc);
    client_send(c, line);
}

static struct client *logged_in(struct harness *h)
{
    struct client *c = tls_session(h, 1, NULL, 0);
    send_auth_plain(c, "alice@acme.test", "alice-secret");
    expect_reply(c, "235 2.7.0 Authentication successful");
    return c;
}

static void test_auth_only_after_starttls(void **state)
{
    (void)state;
    /* Submission, before TLS: no AUTH offered, AUTH and MAIL refused. */
    struct client *c = client_connect_submission(H, "192.0.2.20");
    expect_reply(c, "220 ");
    client_send(c, "EHLO client.test\r\n");
    char r[4096];
    client_reply(c, r, sizeof r);
    assert_non_null(strstr(r, "250-STARTTLS\r\n"));
    assert_null(strstr(r, "AUTH"));
    char enc[256], line[400];
    plain("", "alice@acme.test", "alice-secret", enc, sizeof enc);
    snprintf(line, sizeof line, "AUTH PLAIN %s\r\nAUTH LOGIN\r\nMAIL FROM:<alice@acme.test>\r\n", enc);
    client_send(c, line);
    expect_reply(c, "530 5.7.0 Must issue a STARTTLS command first");
    expect_reply(c, "530 5.7.0 Must issue a STARTTLS command first");
    expect_reply(c, "530 5.7.0 Authentication required");
    assert_int_equal(H->fake.login_lookups, 0);
    client_free(c);

    /* After STARTTLS: offered; MAIL still needs AUTH. */
    c = tls_session(H, 1, r, sizeof r);
    assert_non_null(strstr(r, "250-AUTH PLAIN LOGIN\r\n"));
    assert_null(strstr(r, "STARTTLS"));
    client_send(c, "MAIL FROM:<alice@acme.test>\r\nRCPT TO:<x@example.net>\r\n");
    expect_reply(c, "530 5.7.0 Authentication required");
    expect_reply(c, "503 5.5.1");
    client_free(c);

    /* Port 25, even under TLS: never. */
    c = tls_session(H, 0, r, sizeof r);
    assert_null(strstr(r, "AUTH"));
    client_send(c, line);
    expect_reply(c, "503 5.5.1 Error: authentication not enabled");
    client_free(c);
    pump_for(H, 20);
    assert_int_equal(H->fake.login_lookups, 0);
}

static void test_plain_and_login(void **state)
{
    (void)state;
    /* PLAIN with an initial response; a second AUTH is refused. */
    struct client *c = logged_in(H);
    send_auth_plain(c, "alice@acme.test", "alice-secret");
    expect_reply(c, "503 5.5.1");
    client_free(c);
    assert_int_equal(H->fake.records_ok, 1);

    /* PLAIN through the continuation, the login being an alias in capitals. */
    c = tls_session(H, 1, NULL, 0);
    client_send(c, "AUTH PLAIN\r\n");
    expect_reply(c, "334 ");
    char enc[256], line[400];
    plain("", "Sales@ACME.test", "alice-secret", enc, sizeof enc);
    snprintf(line, sizeof line, "%s\r\n", enc);
    client_send(c, line);
    expect_reply(c, "235 2.7.0");
    client_send(c, "MAIL FROM:<alice@acme.test>\r\n");
    expect_reply(c, "250 2.1.0");
    client_free(c);

    /* LOGIN, then LOGIN with the name as initial response. */
    c = tls_session(H, 1, NULL, 0);
    client_send(c, "AUTH LOGIN\r\n");
    expect_reply(c, "334 VXNlcm5hbWU6");
    snprintf(line, sizeof line, "%s\r\n", b64("alice@acme.test", 15, enc, sizeof enc));
    client_send(c, line);
    expect_reply(c, "334 UGFzc3dvcmQ6");
    snprintf(line, sizeof line, "%s\r\n", b64("alice-secret", 12, enc, sizeof enc));
    client_send(c, line);
    expect_reply(c, "235 2.7.0");
    client_free(c);
    c = tls_session(H, 1, NULL, 0);
    snprintf(line, sizeof line, "AUTH LOGIN %s\r\n", b64("alice@acme.test", 15, enc, sizeof enc));
    client_send(c, line);
    expect_reply(c, "334 UGFzc3dvcmQ6");
    snprintf(line, sizeof line, "%s\r\n", b64("wrong", 5, enc, sizeof enc));
    client_send(c, line);
    expect_reply(c, "535 5.7.8 Authentication credentials invalid");
    client_free(c);
    assert_int_equal(H->fake.records_ok, 3);
    assert_int_equal(H->fake.records_failed, 1);
}

static void test_exchange_errors(void **state)
{
    (void)state;
    struct client *c = tls_session(H, 1, NULL, 0);
    client_send(c, "AUTH LOGIN\r\n");
    expect_reply(c, "334 ");
    client_send(c, "*\r\n");
    expect_reply(c, "501 5.0.0 Authentication aborted");
    client_send(c, "AUTH PLAIN\r\n");
    expect_reply(c, "334 ");
    client_send(c, "not base64!\r\n");
    expect_reply(c, "501 5.5.2 Invalid base64 data");
    client_send(c, "AUTH PLAIN ####\r\n"); /* the parser's check */
    expect_reply(c, "501 5.5.2");
    client_send(c, "AUTH CRAM-MD5\r\n");
    expect_reply(c, "504 5.5.4");
    char enc[256], line[400];
    plain("ceo@acme.test", "alice@acme.test", "alice-secret", enc, sizeof enc);
    snprintf(line, sizeof line, "AUTH PLAIN %s\r\n", enc);
    client_send(c, line);
    expect_reply(c, "535 5.7.8");
    /* A SASL line too long for any credentials. */
    client_send(c, "AUTH PLAIN\r\n");
    expect_reply(c, "334 ");
    char *longline = malloc(SMTP_AUTH_LINE_MAX + 200);
    memset(longline, 'A', SMTP_AUTH_LINE_MAX + 196);
    memcpy(longline + SMTP_AUTH_LINE_MAX + 196, "\r\n", 3);
    client_send(c, longline);
    free(longline);
    expect_reply(c, "500 5.5.2 Error: line too long");
    /* Not a SASL line any more: a command again. */
    client_send(c, "NOOP\r\n");
    expect_reply(c, "250 2.0.0");
    /* A long but real password fits. */
    char pw[SASL_PASSWORD_MAX + 1];
    memset(pw, 'x', SASL_PASSWORD_MAX);
    pw[SASL_PASSWORD_MAX] = '\0';
    send_auth_plain(c, "alice@acme.test", pw);
    expect_reply(c, "535 5.7.8");
    client_free(c);
    /* Nothing of it was a password check but the last (and only one failure). */
    assert_int_equal(H->fake.login_lookups, 1);
    assert_int_equal(H->fake.records_failed, 1);
}

static void test_users_refused(void **state)
{
    (void)state;
    struct client *c = tls_session(H, 1, NULL, 0);
    send_auth_plain(c, "bob@acme.test", "bob-secret"); /* suspended */
    expect_reply(c, "535 5.7.8");
    send_auth_plain(c, "carol@acme.test", "carol-secret"); /* not activated */
    expect_reply(c, "535 5.7.8");
    send_auth_plain(c, "nobody@acme.test", "whatever"); /* unknown: the dummy hash */
    expect_reply(c, "535 5.7.8");
    send_auth_plain(c, "not an address", "whatever");
    expect_reply(c, "535 5.7.8");
    client_send(c, "MAIL FROM:<bob@acme.test>\r\n");
    expect_reply(c, "530 5.7.0");
    client_free(c);
    /* Every refused login counts (a right password of a suspended or not
     * activated account too: it is counted before the check, and not taken back). */
    assert_int_equal(H->fake.records_failed, 4);
    assert_int_equal(H->fake.records_ok, 0);

    H->fake.login_error = 1;
    c = tls_session(H, 1, NULL, 0);
    send_auth_plain(c, "alice@acme.test", "alice-secret");
    expect_reply(c, "454 4.7.0 Temporary authentication failure");
    client_free(c);
}

static void test_lockout(void **state)
{
    (void)state;
    struct client *c = tls_session(H, 1, NULL, 0);
    for (int i = 0; i < FAKE_LOCKOUT_MAX; i++) {
        send_auth_plain(c, "alice@acme.test", "guess");
        expect_reply(c, "535 5.7.8");
    }
    unsigned lookups = H->fake.login_lookups;
    /* Locked: refused before the password is looked at, even the right one. */
    send_auth_plain(c, "Alice@acme.test", "alice-secret");
    expect_reply(c, "454 4.7.0 Too many failed logins, try again later");
    assert_int_equal(H->fake.login_lookups, lookups);
    assert_int_equal(H->fake.records_failed, FAKE_LOCKOUT_MAX);
    client_free(c);
}

static const char MSG[] = "From: Alice <alice@acme.test>\r\n"
                          "To: Dave <dave@example.net>\r\n"
                          "Subject: hello\r\n"
                          "\r\n"
                          "Hi Dave.\r\n";

static void test_send(void **state)
{
    (void)state;
    H->fake.dkim_mode = 1;
    struct client *c = logged_in(H);
    /* Anywhere (authenticated relay), and a hosted recipient alike. */
    client_send(c, "MAIL FROM:<Alice@acme.test>\r\nRCPT TO:<dave@example.net>\r\nRCPT TO:<bob@acme.test>\r\n"
                   "DATA\r\n");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    client_send(c, MSG);
    client_send(c, ".\r\n");
    expect_reply(c, "250 2.0.0 Ok: queued as ");
    assert_int_equal(H->fake.nmsgs, 1);
    struct captured *m = &H->fake.msgs[0];
    assert_string_equal(m->sender, "Alice@acme.test");
    assert_string_equal(m->rcpts, "dave@example.net,bob@acme.test");
    assert_int_equal(m->direction, DIR_OUTBOUND);
    assert_true(m->has_sent_copy);
    assert_int_equal(m->sent_user_id, 7);
    assert_int_equal(m->sent_domain_id, 3);
    assert_non_null(strstr(m->prefix, " with ESMTPSA id "));
    assert_null(strstr(m->prefix, "alice")); /* nothing of the login in the trace */
    /* DKIM-Signature, then the added Date and Message-ID, then the message. */
    assert_memory_equal(m->body, "DKIM-Signature: v=1; d=acme.test; s=fake;\r\n\tb=c2lnbmF0dXJl\r\nDate: ", 64);
    char *mid = strstr(m->body, "\r\nMessage-ID: <");
    assert_non_null(mid);
    assert_non_null(strstr(mid, "@acme.test>\r\nFrom: Alice <alice@acme.test>\r\n"));
    size_t n = strlen(m->body);
    assert_string_equal(m->body + n - strlen(MSG), MSG);
    /* What was signed: the message with the added fields. */
    assert_int_equal(H->fake.dkim_calls, 1);
    assert_string_equal(H->fake.dkim_domain, "acme.test");
    assert_memory_equal(H->fake.dkim_input, "Date: ", 6);
    assert_string_equal(strchr(m->body, '\n') + 1 + strlen("\tb=c2lnbmF0dXJl\r\n"), H->fake.dkim_input);

    /* From an alias, with a Date and Message-ID of its own: nothing added;
     * DKIM fails: sent unsigned. */
    H->fake.dkim_mode = -1;
    static const char MSG2[] = "Message-ID: <x@acme.test>\r\nDate: Fri, 27 Nov 2026 22:00:00 +0000\r\n"
                               "From: sales@acme.test\r\n\r\nbody\r\n.\r\n";
    client_send(c, "MAIL FROM:<sales@acme.test>\r\nRCPT TO:<dave@example.net>\r\nDATA\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    client_send(c, MSG2);
    expect_reply(c, "250 2.0.0 Ok: queued");
    assert_int_equal(H->fake.nmsgs, 2);
    assert_string_equal(H->fake.msgs[1].body, "Message-ID: <x@acme.test>\r\nDate: Fri, 27 Nov 2026 22:00:00 +0000\r\n"
                                              "From: sales@acme.test\r\n\r\nbody\r\n");
    client_send(c, "QUIT\r\n");
    expect_reply(c, "221");
    client_free(c);
    assert_int_equal(H->fake.queued_cb, 2);
}

/* One message with the header From given; the reply after the data. */
static void send_with_from(struct client *c, const char *header, const char *expect)
{
    client_send(c, "MAIL FROM:<alice@acme.test>\r\nRCPT TO:<dave@example.net>\r\nDATA\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    client_send(c, header);
    client_send(c, "Subject: x\r\n\r\nbody\r\n.\r\n");
    expect_reply(c, expect);
}

static void test_spoofing_refused(void **state)
{
    (void)state;
    struct client *c = logged_in(H);
    client_send(c, "MAIL FROM:<bob@acme.test>\r\nMAIL FROM:<>\r\nMAIL FROM:<ceo@example.com>\r\n"
                   "MAIL FROM:<fail@acme.test>\r\n");
    expect_reply(c, "553 5.7.1 <bob@acme.test>: Sender address rejected: not owned by user alice@acme.test");
    expect_reply(c, "553 5.7.1 <>: Sender address rejected: not owned by user alice@acme.test");
    expect_reply(c, "553 5.7.1 <ceo@example.com>");
    expect_reply(c, "451 4.3.0");
    send_with_from(c, "From: CEO <ceo@example.com>\r\n", "550 5.7.1 From header not owned by user");
    send_with_from(c, "From: alice@acme.test, ceo@example.com\r\n", "550 5.7.1 From header not owned by user");
    send_with_from(c, "From: friends: alice@acme.test;\r\n", "550 5.7.1 From header not owned by user");
    send_with_from(c, "To: x@y.test\r\n", "550 5.6.0 Error: message has no From header");
    send_with_from(c, "From: alice@acme.test\r\nFrom: ceo@example.com\r\n",
                   "550 5.6.0 Error: message has more than one From header");
    send_with_from(c, "From: alice@acme.test\r\nnot a field\r\nFrom: ceo@example.com\r\n",
                   "550 5.6.0 Error: malformed message header");
    send_with_from(c, "From: fail@acme.test\r\n", "451 4.3.0");
    /* A NUL hides the rest of the field from every C string that reads it. */
    client_send(c, "MAIL FROM:<alice@acme.test>\r\nRCPT TO:<dave@example.net>\r\nDATA\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    static const char nul_from[] = "From: alice@acme.test\0<ceo@example.com>\r\nSubject: x\r\n\r\nbody\r\n.\r\n";
    client_send_n(c, nul_from, sizeof nul_from - 1);
    expect_reply(c, "550 5.6.0 Error: control character in message header");
    assert_int_equal(H->fake.nmsgs, 0);
    /* The session goes on: the user's own alias works. */
    send_with_from(c, "From: \"Sales\" <Sales@Acme.Test>\r\n", "250 2.0.0 Ok: queued");
    assert_int_equal(H->fake.nmsgs, 1);
    client_free(c);
}

static void test_pipelined_after_auth(void **state)
{
    (void)state;
    struct client *c = tls_session(H, 1, NULL, 0);
    char enc[256], line[600];
    plain("", "alice@acme.test", "alice-secret", enc, sizeof enc);
    /* Everything in one write: MAIL must wait for the AUTH's answer. */
    snprintf(line, sizeof line,
             "AUTH PLAIN %s\r\nMAIL FROM:<alice@acme.test>\r\nRCPT TO:<dave@example.net>\r\nDATA\r\n", enc);
    client_send(c, line);
    expect_reply(c, "235 2.7.0");
    expect_reply(c, "250 2.1.0");
    expect_reply(c, "250 2.1.5");
    expect_reply(c, "354");
    client_send(c, "From: alice@acme.test\r\n\r\nx\r\n.\r\nQUIT\r\n");
    expect_reply(c, "250 2.0.0 Ok: queued");
    expect_reply(c, "221");
    client_free(c);
}

/* While a login is out, the loop serves everyone else. The lockout step of
 * the first session is held, so its answer cannot come before the release,
 * whatever the timing. */
static void test_loop_not_stalled(void **state)
{
    (void)state;
    H->fake.hold_records = 1;
    struct client *a = tls_session(H, 1, NULL, 0);
    send_auth_plain(a, "alice@acme.test", "wrong");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!H->fake.nheld && elapsed_ms(&t0) < 5000)
        pump(H);
    assert_int_equal(H->fake.nheld, 1); /* a's attempt is being counted */
    struct client *c = client_connect_submission(H, "192.0.2.30");
    expect_reply(c, "220 ");
    client_send(c, "EHLO other.test\r\n");
    expect_reply(c, "250-mx.lifeboat.test");
    client_fill(a);
    assert_int_equal(a->inlen, 0); /* still waiting */
    fake_complete_record(&H->fake);
    /* then argon2id on a worker, and the failure settled: held again */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!H->fake.nheld && elapsed_ms(&t0) < 5000)
        pump(H);
    assert_int_equal(H->fake.nheld, 1);
    client_fill(a);
    assert_int_equal(a->inlen, 0);
    fake_complete_record(&H->fake);
    H->fake.hold_records = 0;
    expect_reply(a, "535 5.7.8");
    client_free(a);
    client_free(c);
}

/* A client that leaves in the middle of its check: the session lives until
 * the check is back, then goes (ASan watches). */
static void wait_no_sessions(struct harness *h)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (smtpd_session_count(h->srv) && elapsed_ms(&t0) < 5000) {
        pump(h);
        usleep(1000);
    }
    assert_int_equal(smtpd_session_count(h->srv), 0);
}

static void test_disconnect_during_check(void **state)
{
    (void)state;
    /* Gone while argon2id runs. */
    struct client *a = tls_session(H, 1, NULL, 0);
    send_auth_plain(a, "alice@acme.test", "wrong");
    pump(H);
    client_free(a);
    wait_no_sessions(H);
    assert_int_equal(H->fake.records_failed, 1); /* still counted */

    /* Gone while the outcome is being written. */
    H->fake.hold_records = 1;
    struct client *b = tls_session(H, 1, NULL, 0);
    send_auth_plain(b, "alice@acme.test", "alice-secret");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!H->fake.nheld && elapsed_ms(&t0) < 5000)
        pump(H);
    assert_int_equal(H->fake.nheld, 1); /* counted before the check */
    fake_complete_record(&H->fake);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!H->fake.nheld && elapsed_ms(&t0) < 5000)
        pump(H);
    assert_int_equal(H->fake.nheld, 1); /* the right password's count taken back */
    client_free(b);
    pump_for(H, 50);
    assert_int_equal(smtpd_session_count(H->srv), 1);
    fake_complete_record(&H->fake);
    wait_no_sessions(H);

    /* Gone while the message is on a worker (or already with the queue). */
    H->fake.hold_records = 0;
    H->fake.dkim_mode = 1;
    struct client *c = logged_in(H);
    client_send(c, "MAIL FROM:<alice@acme.test>\r\nRCPT TO:<dave@example.net>\r\nDATA\r\n");
    expect_reply(c, "250");
    expect_reply(c, "250");
    expect_reply(c, "354");
    client_send(c, "From: alice@acme.test\r\n\r\nx\r\n.\r\n");
    pump(H);
    client_free(c);
    wait_no_sessions(H);
}

/* The server goes away while checks are out: smtpd_free hands them back. */
static void test_free_during_check(void **state)
{
    (void)state;
    struct harness *h = harness_new(harness_with_cert);
    assert_non_null(h);
    struct client *a = tls_session(h, 1, NULL, 0);
    struct client *b = tls_session(h, 1, NULL, 0);
    struct client *c = tls_session(h, 1, NULL, 0);
    send_auth_plain(a, "alice@acme.test", "wrong");
    send_auth_plain(b, "alice@acme.test", "wrong");
    send_auth_plain(c, "alice@acme.test", "wrong");
    for (int i = 0; i < 5; i++) /* the AUTHs are read: with the workers, or waiting for one */
        pump(h);
    harness_free(h);
    client_free(a);
    client_free(b);
    client_free(c);
}

/* SIGTERM while a client is in the middle of its SASL exchange: 421. */
static void test_shutdown_mid_exchange(void **state)
{
    (void)state;
    struct client *c = tls_session(H, 1, NULL, 0);
    client_send(c, "AUTH LOGIN\r\n");
    expect_reply(c, "334 ");
    smtpd_stop_accepting(H->srv);
    expect_reply(c, "421 4.3.2");
    assert_true(client_wait_eof(c, 2000));
    client_free(c);
}

/* submission_listen without a certificate: no start, a clear reason. */
static void test_needs_certificate(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct config cfg;
    config_defaults(&cfg);
    cfg.smtp_listen.count = 0;
    cfg.submission_listen.count = 1;
    snprintf(cfg.submission_listen.addr[0].host, sizeof cfg.submission_listen.addr[0].host, "127.0.0.1");
    snprintf(cfg.submission_listen.addr[0].port, sizeof cfg.submission_listen.addr[0].port, "0");
    struct smtpd_deps deps = {0};
    char err[512] = "";
    assert_null(smtpd_start(base, &cfg, &deps, err, sizeof err));
    assert_non_null(strstr(err, "submission_listen needs tls_cert_file"));

    /* With one, a reload that drops it is refused. */
    struct harness *h = harness_new(harness_with_cert);
    h->srv->cfg.submission_listen = cfg.submission_listen;
    struct config fresh = h->cfg;
    fresh.tls_cert_file[0] = '\0';
    assert_int_equal(smtpd_reload(h->srv, &fresh), -1);
    assert_non_null(h->srv->tls);
    harness_free(h);
    event_base_free(base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_init("test_smtpd_auth", "mx.lifeboat.test", 1);
    if (!getenv("LB_TEST_VERBOSE"))
        log_set_level(LOG_LEVEL_ERR + 1);
    if (getenv("LB_TEST_FILTER"))
        cmocka_set_test_filter(getenv("LB_TEST_FILTER"));
    if (sodium_init() < 0)
        return 1;
    snprintf(cert_dir, sizeof cert_dir, "/tmp/lb-smtpd-auth-XXXXXX");
    if (!mkdtemp(cert_dir))
        return 1;
    snprintf(harness_cert_path, sizeof harness_cert_path, "%s/cert.pem", cert_dir);
    if (make_cert(harness_cert_path) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_plain_split),
        cmocka_unit_test(test_exchanges),
        cmocka_unit_test(test_scan_headers),
        cmocka_unit_test(test_from_addresses),
        cmocka_unit_test(test_missing_headers),
        cmocka_unit_test_setup_teardown(test_auth_only_after_starttls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_and_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spoofing_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_after_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_not_stalled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_during_check, setup, teardown),
        cmocka_unit_test(test_free_during_check),
        cmocka_unit_test_setup_teardown(test_shutdown_mid_exchange, setup, teardown),
        cmocka_unit_test(test_needs_certificate),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(harness_cert_path);
    rmdir(cert_dir);
    return rc;
}
