/*
 * test_smtpd_parse.c — the SMTP command parser (src/smtpd/smtp_parse.c):
 * every command, every ESMTP parameter we accept, and every error reply.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtpd/smtp_parse.h"

static int parse(const char *line, unsigned flags, struct smtp_cmd *cmd)
{
    return smtp_parse_command(line, strlen(line), flags, cmd);
}

/* The reply of a failed parse must start with this code ("553 5.1.3"). */
static void expect_error(const char *line, unsigned flags, const char *code)
{
    struct smtp_cmd cmd;
    int rc = parse(line, flags, &cmd);
    if (rc != SMTP_PARSE_ERROR || !cmd.reply || strncmp(cmd.reply, code, strlen(code)) != 0) {
        print_error("line \"%s\": expected \"%s...\", got rc %d reply \"%s\"\n", line, code, rc,
                    cmd.reply ? cmd.reply : "(none)");
        fail();
    }
}

static void expect_ok(const char *line, unsigned flags, enum smtp_verb verb, struct smtp_cmd *cmd)
{
    int rc = parse(line, flags, cmd);
    if (rc != SMTP_PARSE_OK || cmd->verb != verb) {
        print_error("line \"%s\": expected OK verb %d, got rc %d verb %d reply \"%s\"\n", line, verb,
                    rc, cmd->verb, cmd->reply ? cmd->reply : "(none)");
        fail();
    }
}

static void test_verbs_case_insensitive(void **state)
{
    (void)state;
    struct smtp_cmd c;
    expect_ok("QUIT", 0, SMTP_QUIT, &c);
    expect_ok("quit", 0, SMTP_QUIT, &c);
    expect_ok("QuIt", 0, SMTP_QUIT, &c);
    expect_ok("rset", 0, SMTP_RSET, &c);
    expect_ok("data", 0, SMTP_DATA, &c);
    expect_ok("StartTLS", 0, SMTP_STARTTLS, &c);
    expect_ok("noop", 0, SMTP_NOOP, &c);
    assert_null(c.arg);
    expect_ok("NOOP hello there", 0, SMTP_NOOP, &c);
    assert_string_equal(c.arg, "hello there");
    expect_ok("HELP", 0, SMTP_HELP, &c);
    expect_ok("help mail", 0, SMTP_HELP, &c);
    expect_ok("VRFY postmaster", 0, SMTP_VRFY, &c);
    assert_string_equal(c.arg, "postmaster");
    expect_ok("EXPN staff", 0, SMTP_EXPN, &c);
    expect_ok("QUIT   ", 0, SMTP_QUIT, &c); /* trailing spaces are tolerated */
    assert_string_equal(smtp_verb_name(SMTP_MAIL), "MAIL");
}

static void test_not_a_command(void **state)
{
    (void)state;
    expect_error("", 0, "500 5.5.2");
    expect_error(" HELO x", 0, "500 5.5.2");
    expect_error("123", 0, "500 5.5.2");
    expect_error("FOO", 0, "500 5.5.1");
    expect_error("FOO bar", 0, "500 5.5.1");
    expect_error("MAILFROM:<a@b>", 0, "500 5.5.1");
    expect_error("MAIL:FROM:<a@b>", 0, "500 5.5.1");
    expect_error("QUITX", 0, "500 5.5.1");
    expect_error("GET / HTTP/1.1", 0, "500 5.5.1");
    /* Control bytes never belong in a command line. */
    expect_error("NOOP a\rb", 0, "500 5.5.2");
    expect_error("NOOP \x01", 0, "500 5.5.2");
    expect_error("NOOP \x7f", 0, "500 5.5.2");
    struct smtp_cmd c;
    assert_int_equal(smtp_parse_command("NOOP\0x", 6, 0, &c), SMTP_PARSE_ERROR);
    assert_string_equal(c.reply, "500 5.5.2 Error: bad syntax");
}

static void test_line_too_long(void **state)
{
    (void)state;
    char line[2048];
    struct smtp_cmd c;
    /* 510 octets + CRLF = 512: the longest allowed command line. */
    memset(line, 'a', sizeof line);
    memcpy(line, "NOOP ", 5);
    line[510] = '\0';
    expect_ok(line, 0, SMTP_NOOP, &c);
    line[510] = 'a';
    line[511] = '\0';
    expect_error(line, 0, "500 5.5.2 Error: line too long");
    /* MAIL and RCPT may carry parameters beyond 512 octets (RFC 1869 4.1.2). */
    snprintf(line, sizeof line, "MAIL FROM:<a@b.test> ENVID=%0100d RET=HDRS SIZE=%0450d", 0, 1);
    assert_true(strlen(line) > 510);
    expect_ok(line, 0, SMTP_MAIL, &c);
    assert_int_equal(c.size, 1);
    snprintf(line, sizeof line, "MAIL FROM:<a@b.test> ENVID=%0101d", 0);
    expect_error(line, 0, "501 5.5.4 Bad ENVID"); /* RFC 3461: at most 100 */
    memset(line, 'x', sizeof line);
    memcpy(line, "RCPT TO:<a@b.test> ORCPT=rfc822;", 32);
    line[1022] = '\0';
    expect_ok(line, 0, SMTP_RCPT, &c);
    line[1022] = 'x';
    line[1023] = '\0';
    expect_error(line, 0, "500 5.5.2 Error: line too long");
}

static void test_helo_ehlo(void **state)
{
    (void)state;
    struct smtp_cmd c;
    expect_ok("HELO mail.example.test", 0, SMTP_HELO, &c);
    assert_string_equal(c.domain, "mail.example.test");
    expect_ok("ehlo [192.0.2.1]", 0, SMTP_EHLO, &c);
    assert_string_equal(c.domain, "[192.0.2.1]");
    expect_ok("EHLO [IPv6:2001:db8::1]", 0, SMTP_EHLO, &c);
    expect_ok("EHLO l", 0, SMTP_EHLO, &c);
    expect_ok("EHLO my_host", 0, SMTP_EHLO, &c); /* common, harmless */
    expect_ok("EHLO  spaced.test", 0, SMTP_EHLO, &c);
    assert_string_equal(c.domain, "spaced.test");
    expect_ok("HELO broken client name", 0, SMTP_HELO, &c); /* the first word is kept */
    assert_string_equal(c.domain, "broken");
    expect_error("HELO", 0, "501 5.5.4 Syntax: HELO hostname");
    expect_error("EHLO", 0, "501 5.5.4 Syntax: EHLO hostname");
    expect_error("HELO ", 0, "501 5.5.4");
    expect_error("EHLO    ", 0, "501 5.5.4");
    /* Characters that would break "Received: from NAME (...)". */
    expect_error("EHLO a(b", 0, "501 5.5.4");
    expect_error("EHLO a;b", 0, "501 5.5.4");
    expect_error("EHLO <x>", 0, "501 5.5.4");
    expect_error("EHLO h\xc3\xa9llo", 0, "501 5.5.4");
    expect_error("EHLO\tx", 0, "500 5.5.1"); /* a tab does not separate the verb */
    char line[300];
    memset(line, 'a', sizeof line);
    memcpy(line, "EHLO ", 5);
    line[5 + 255] = '\0';
    expect_ok(line, 0, SMTP_EHLO, &c);
    line[5 + 255] = 'a';
    line[5 + 256] = '\0';
    expect_error(line, 0, "501 5.5.4");
}

static void test_mail_from(void **state)
{
    (void)state;
    struct smtp_cmd c;
    expect_ok("MAIL FROM:<alice@example.test>", 0, SMTP_MAIL, &c);
    assert_string_equal(c.path, "alice@example.test");
    assert_int_equal(c.has_size, 0);
    assert_int_equal(c.body, SMTP_BODY_UNSPEC);
    expect_ok("mail from:<Alice@Example.TEST>", 0, SMTP_MAIL, &c);
    assert_string_equal(c.path, "Alice@Example.TEST"); /* case kept as sent */
    expect_ok("MAIL FROM: <alice@example.test>", 0, SMTP_MAIL, &c); /* common deviation */
    assert_string_equal(c.path, "alice@example.test");
    expect_ok("MAIL FROM:alice@example.test", 0, SMTP_MAIL, &c); /* no brackets */
    assert_string_equal(c.path, "alice@example.test");
    expect_ok("MAIL FROM:<>", 0, SMTP_MAIL, &c);
    assert_string_equal(c.path, "");
    expect_ok("MAIL FROM:<> SIZE=100", 0, SMTP_MAIL, &c);
    assert_string_equal(c.path, "");
    expect_ok("MAIL FROM:<@>", 0, SMTP_MAIL, &c); /* null sender, as OpenSMTPD reads it */
    assert_string_equal(c.path, "");
    expect_ok("MAIL FROM:<a@[192.0.2.1]>", 0, SMTP_MAIL, &c);
    expect_ok("MAIL FROM:<a@[IPv6:2001:db8::1]>", 0, SMTP_MAIL, &c);
    expect_ok("MAIL FROM:<a.b+tag@sub.example.test>", 0, SMTP_MAIL, &c);
    expect_ok("MAIL FROM:<a..b@example.test>", 0, SMTP_MAIL, &c); /* seen in the wild */
    expect_ok("MAIL FROM:<!#$%&'*+-/=?^_`{|}~@example.test>", 0, SMTP_MAIL, &c);
    /* A long SRS sender: over 64 octets of local part is carried along. */
    expect_ok("MAIL FROM:<SRS0=HHH=TT=origin.example=averyveryverylonglocalpartthatexceedssixtyfour@fwd.example>",
              0, SMTP_MAIL, &c);
}

static void test_mail_params(void **state)
{
    (void)state;
    struct smtp_cmd c;
    expect_ok("MAIL FROM:<a@b.test> SIZE=3005", 0, SMTP_MAIL, &c);
    assert_int_equal(c.has_size, 1);
    assert_int_equal(c.size, 3005);
    expect_ok("MAIL FROM:<a@b.test> size=0", 0, SMTP_MAIL, &c);
    assert_int_equal(c.has_size, 1);
    assert_int_equal(c.size, 0);
    expect_ok("MAIL FROM:<a@b.test> SIZE=99999999999999999999999", 0, SMTP_MAIL, &c);
    assert_true(c.size == UINT64_MAX); /* saturated: certainly too big */
    expect_ok("MAIL FROM:<a@b.test> BODY=7BIT", 0, SMTP_MAIL, &c);
    assert_int_equal(c.body, SMTP_BODY_7BIT);
    expect_ok("MAIL FROM:<a@b.test> body=8bitmime", 0, SMTP_MAIL, &c);
    assert_int_equal(c.body, SMTP_BODY_8BITMIME);
    expect_ok("MAIL FROM:<a@b.test>   BODY=8BITMIME   SIZE=100  ", 0, SMTP_MAIL, &c);
    assert_int_equal(c.body, SMTP_BODY_8BITMIME);
    assert_int_equal(c.size, 100);
    expect_ok("MAIL FROM:<a@b.test> SMTPUTF8", 0, SMTP_MAIL, &c);
    assert_int_equal(c.smtputf8, 1);
    expect_ok("MAIL FROM:<a@b.test> RET=FULL ENVID=QQ314159", 0, SMTP_MAIL, &c);
    assert_int_equal(c.ret, 1);
    assert_int_equal(c.has_envid, 1);
    expect_ok("MAIL FROM:<a@b.test> RET=hdrs ENVID=a+2Bb", 0, SMTP_MAIL, &c);
    assert_int_equal(c.ret, 2);
    expect_ok("MAIL FROM:<a@b.test> AUTH=<>", 0, SMTP_MAIL, &c);
    expect_ok("MAIL FROM:<a@b.test> AUTH=WHATEVER", 0, SMTP_MAIL, &c);

    expect_error("MAIL FROM:<a@b.test> SIZE=", 0, "501 5.5.4");
    expect_error("MAIL FROM:<a@b.test> SIZE=12a", 0, "501 5.5.4 Bad SIZE");
    expect_error("MAIL FROM:<a@b.test> SIZE", 0, "501 5.5.4 Bad SIZE");
    expect_error("MAIL FROM:<a@b.test> SIZE=-1", 0, "501 5.5.4 Bad SIZE");
    expect_error("MAIL FROM:<a@b.test> BODY=9BIT", 0, "501 5.5.4 Bad BODY");
    expect_error("MAIL FROM:<a@b.test> BODY=BINARYMIME", 0, "504 5.5.4");
    expect_error("MAIL FROM:<a@b.test> SMTPUTF8=yes", 0, "501 5.5.4");
    expect_error("MAIL FROM:<a@b.test> RET=ALL", 0, "501 5.5.4 Bad RET");
    expect_error("MAIL FROM:<a@b.test> ENVID=a+zz", 0, "501 5.5.4 Bad ENVID");
    expect_error("MAIL FROM:<a@b.test> ENVID=a+2", 0, "501 5.5.4 Bad ENVID");
    expect_error("MAIL FROM:<a@b.test> SIZE=1 SIZE=2", 0, "501 5.5.4 Duplicate");
    expect_error("MAIL FROM:<a@b.test> BODY=7BIT body=8BITMIME", 0, "501 5.5.4 Duplicate");
    expect_error("MAIL FROM:<a@b.test> OPT", 0, "555 5.5.4");
    expect_error("MAIL FROM:<a@b.test> NOTIFY=NEVER", 0, "555 5.5.4");
    expect_error("MAIL FROM:<a@b.test> X-FOO=bar", 0, "555 5.5.4");
    expect_error("MAIL FROM:<a@b.test> =x", 0, "501 5.5.4");
    expect_error("MAIL FROM:<a@b.test> -X", 0, "501 5.5.4");
    expect_error("MAIL FROM:<a@b.test> SIZE=1=2", 0, "501 5.5.4");
    expect_error("MAIL FROM:<a@b.test>SIZE=1", 0, "501 5.5.4 Syntax: MAIL");
}

static void test_mail_syntax_errors(void **state)
{
    (void)state;
    expect_error("MAIL", 0, "501 5.5.4 Syntax: MAIL FROM:<address>");
    expect_error("MAIL FROM", 0, "501 5.5.4");
    expect_error("MAIL FROM:", 0, "501 5.5.4");
    expect_error("MAIL FROM:   ", 0, "501 5.5.4");
    expect_error("MAIL TO:<a@b.test>", 0, "501 5.5.4");
    expect_error("MAIL FROM <a@b.test>", 0, "501 5.5.4");
    expect_error("MAIL FROM:<a@b.test", 0, "501 5.5.4");
    expect_error("MAIL FROM:<<a@b.test>>", 0, "501 5.5.4");
    expect_error("MAIL FROM:<\"a>@b.test", 0, "501 5.5.4"); /* unbalanced quote */
}

static void test_bad_addresses(void **state)
{
    (void)state;
    /* The cases of the OpenSMTPD regress suite, and more. */
    expect_error("MAIL FROM: <a>", 0, "553 5.1.7");
    expect_error("MAIL FROM: <a@>", 0, "553 5.1.7");
    expect_error("MAIL FROM: <@a>", 0, "553 5.1.7");
    expect_error("MAIL FROM: <a:@a>", 0, "553 5.1.7");
    expect_error("MAIL FROM: < @a>", 0, "553 5.1.7");
    expect_error("MAIL FROM: <a@ >", 0, "553 5.1.7");
    expect_error("RCPT TO: <>", 0, "553 5.1.3");
    expect_error("RCPT TO: <@>", 0, "553 5.1.3");
    expect_error("RCPT TO: <a>", 0, "553 5.1.3");
    expect_error("RCPT TO: <a@>", 0, "553 5.1.3");
    expect_error("RCPT TO: <@a>", 0, "553 5.1.3");
    expect_error("RCPT TO: <a:@a>", 0, "553 5.1.3");
    expect_error("RCPT TO: < @a>", 0, "553 5.1.3");
    expect_error("RCPT TO: <a@ >", 0, "553 5.1.3");
    expect_error("RCPT TO:<a@b..test>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a@.b.test>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a@b.test.>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a@-b.test>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a@b-.test>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a@b_c.test>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a@[192.0.2.300]>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a@[IPv6:zz::1]>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a@[192.0.2.1>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a b@c.test>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a(b)@c.test>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a\\b@c.test>", 0, "553 5.1.3");
    expect_error("RCPT TO:<a@b@c.test>", 0, "553 5.1.3");
    expect_error("RCPT TO:<\"a\"b@c.test>", 0, "553 5.1.3");
    expect_error("RCPT TO:<\"a\\\"@c.test>", 0, "501 5.5.4"); /* the quote never closes */
    /* Length limits: 64 octets of local part for recipients, 255 of domain. */
    char line[600];
    char local[80];
    memset(local, 'l', 65);
    local[65] = '\0';
    snprintf(line, sizeof line, "RCPT TO:<%s@b.test>", local);
    expect_error(line, 0, "553 5.1.3");
    local[64] = '\0';
    snprintf(line, sizeof line, "RCPT TO:<%s@b.test>", local);
    struct smtp_cmd c;
    expect_ok(line, 0, SMTP_RCPT, &c);
    char dom[300];
    memset(dom, 'a', 255); /* four labels of 63 octets: 255 in all */
    dom[63] = dom[127] = dom[191] = '.';
    dom[255] = '\0';
    assert_int_equal(strlen(dom), 255);
    snprintf(line, sizeof line, "RCPT TO:<a@%s>", dom);
    expect_ok(line, 0, SMTP_RCPT, &c);
    snprintf(line, sizeof line, "RCPT TO:<a@x%s>", dom);
    expect_error(line, 0, "553 5.1.3");
    memset(dom, 'a', 64);
    dom[64] = '\0';
    snprintf(line, sizeof line, "RCPT TO:<a@%s.test>", dom); /* a 64-octet label */
    expect_error(line, 0, "553 5.1.3");
}

static void test_source_routes_and_quotes(void **state)
{
    (void)state;
    struct smtp_cmd c;
    expect_ok("RCPT TO:<@relay1.test,@relay2.test:bob@example.test>", 0, SMTP_RCPT, &c);
    assert_string_equal(c.path, "bob@example.test");
    expect_ok("RCPT TO:<@relay1.test:bob@example.test>", 0, SMTP_RCPT, &c);
    assert_string_equal(c.path, "bob@example.test");
    expect_ok("MAIL FROM: <whatever:a@a>", 0, SMTP_MAIL, &c);
    assert_string_equal(c.path, "a@a");
    expect_ok("RCPT TO: <whatever:a@a>", 0, SMTP_RCPT, &c);
    assert_string_equal(c.path, "a@a");
    expect_ok("RCPT TO:<\"john doe\"@example.test>", 0, SMTP_RCPT, &c);
    assert_string_equal(c.path, "\"john doe\"@example.test");
    expect_ok("RCPT TO:<\"a>b\"@example.test>", 0, SMTP_RCPT, &c);
    assert_string_equal(c.path, "\"a>b\"@example.test");
    expect_ok("RCPT TO:<\"a@b\"@example.test>", 0, SMTP_RCPT, &c);
    assert_string_equal(c.path, "\"a@b\"@example.test");
    expect_ok("RCPT TO:<\"a\\\"q\"@example.test>", 0, SMTP_RCPT, &c);
    assert_string_equal(c.path, "\"a\\\"q\"@example.test");
    expect_ok("RCPT TO:<\"a:b\"@example.test>", 0, SMTP_RCPT, &c); /* ':' in quotes: no route */
    assert_string_equal(c.path, "\"a:b\"@example.test");
    expect_error("RCPT TO:<\"a\x01\"@example.test>", 0, "500 5.5.2");
}

static void test_rcpt_params(void **state)
{
    (void)state;
    struct smtp_cmd c;
    expect_ok("RCPT TO:<b@c.test>", 0, SMTP_RCPT, &c);
    assert_string_equal(c.path, "b@c.test");
    expect_ok("rcpt to:<b@c.test> NOTIFY=SUCCESS,FAILURE", 0, SMTP_RCPT, &c);
    assert_int_equal(c.has_notify, 1);
    expect_ok("RCPT TO:<b@c.test> NOTIFY=never", 0, SMTP_RCPT, &c);
    expect_ok("RCPT TO:<b@c.test> NOTIFY=DELAY ORCPT=rfc822;b@c.test", 0, SMTP_RCPT, &c);
    assert_int_equal(c.has_orcpt, 1);
    expect_ok("RCPT TO:<b@c.test> ORCPT=utf-8;b@c.test", 0, SMTP_RCPT, &c);
    expect_error("RCPT TO:<b@c.test> NOTIFY=NEVER,SUCCESS", 0, "501 5.5.4 Bad NOTIFY");
    expect_error("RCPT TO:<b@c.test> NOTIFY=SUCCESS,", 0, "501 5.5.4 Bad NOTIFY");
    expect_error("RCPT TO:<b@c.test> NOTIFY=SUCCESS,SUCCESS", 0, "501 5.5.4 Bad NOTIFY");
    expect_error("RCPT TO:<b@c.test> NOTIFY", 0, "501 5.5.4 Bad NOTIFY");
    expect_error("RCPT TO:<b@c.test> ORCPT=rfc822", 0, "501 5.5.4 Bad ORCPT");
    expect_error("RCPT TO:<b@c.test> ORCPT=;x", 0, "501 5.5.4 Bad ORCPT");
    expect_error("RCPT TO:<b@c.test> ORCPT=rfc822;", 0, "501 5.5.4 Bad ORCPT");
    expect_error("RCPT TO:<b@c.test> NOTIFY=NEVER NOTIFY=NEVER", 0, "501 5.5.4 Duplicate");
    /* MAIL parameters are not RCPT parameters. */
    expect_error("RCPT TO:<user@domain> OPT", 0, "555 5.5.4");
    expect_error("RCPT TO:<user@domain> SIZE=3005", 0, "555 5.5.4");
    expect_error("RCPT TO:<user@domain> BODY=8BITMIME", 0, "555 5.5.4");
    expect_error("RCPT TO:<user@domain> AUTH=WHATEVER", 0, "555 5.5.4");
    expect_error("RCPT", 0, "501 5.5.4 Syntax: RCPT TO:<address>");
    expect_error("RCPT TO:", 0, "501 5.5.4");
    expect_error("RCPT FROM:<a@b.test>", 0, "501 5.5.4");
}

static void test_utf8_addresses(void **state)
{
    (void)state;
    struct smtp_cmd c;
    /* UTF-8 only with SMTPUTF8: on the MAIL line itself, or for RCPT the flag. */
    expect_error("MAIL FROM:<j\xc3\xb6rg@example.test>", 0, "553 5.6.7");
    expect_ok("MAIL FROM:<j\xc3\xb6rg@example.test> SMTPUTF8", 0, SMTP_MAIL, &c);
    assert_string_equal(c.path, "j\xc3\xb6rg@example.test");
    expect_ok("MAIL FROM:<a@b\xc3\xbc" "cher.test> SMTPUTF8", 0, SMTP_MAIL, &c);
    expect_error("RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@example.test>", 0, "553 5.6.7");
    expect_ok("RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@example.test>", SMTP_PARSE_UTF8, SMTP_RCPT, &c);
    expect_ok("RCPT TO:<\"\xc3\xa9 x\"@example.test>", SMTP_PARSE_UTF8, SMTP_RCPT, &c);
    expect_error("RCPT TO:<\"\xc3\xa9 x\"@example.test>", 0, "553 5.6.7");
    /* Malformed UTF-8 is refused even with SMTPUTF8. */
    expect_error("RCPT TO:<\xc3@example.test>", SMTP_PARSE_UTF8, "553 5.1.3");
    expect_error("RCPT TO:<\xc0\xaf@example.test>", SMTP_PARSE_UTF8, "553 5.1.3"); /* overlong */
    expect_error("RCPT TO:<\xed\xa0\x80@example.test>", SMTP_PARSE_UTF8, "553 5.1.3"); /* surrogate */
    expect_error("RCPT TO:<\xf4\x90\x80\x80@example.test>", SMTP_PARSE_UTF8, "553 5.1.3");
    expect_error("RCPT TO:<\xff@example.test>", SMTP_PARSE_UTF8, "553 5.1.3");
    expect_error("RCPT TO:<a@b.t\xc3>", SMTP_PARSE_UTF8, "553 5.1.3");
}

static void test_bdat(void **state)
{
    (void)state;
    struct smtp_cmd c;
    expect_ok("BDAT 1000", 0, SMTP_BDAT, &c);
    assert_int_equal(c.chunk_size, 1000);
    assert_int_equal(c.last, 0);
    expect_ok("bdat 0 last", 0, SMTP_BDAT, &c);
    assert_int_equal(c.chunk_size, 0);
    assert_int_equal(c.last, 1);
    expect_ok("BDAT 5 LAST ", 0, SMTP_BDAT, &c);
    assert_int_equal(c.last, 1);
    expect_error("BDAT", 0, "501 5.5.4 Syntax: BDAT");
    expect_error("BDAT ", 0, "501 5.5.4");
    expect_error("BDAT x", 0, "501 5.5.4");
    expect_error("BDAT -1", 0, "501 5.5.4");
    expect_error("BDAT 10 FIRST", 0, "501 5.5.4");
    expect_error("BDAT 10 LAST x", 0, "501 5.5.4");
    expect_error("BDAT 10LAST", 0, "501 5.5.4");
    expect_error("BDAT 99999999999999999999", 0, "501 5.5.4");
}

static void test_no_argument_commands(void **state)
{
    (void)state;
    expect_error("DATA x", 0, "501 5.5.4 Syntax: DATA");
    expect_error("RSET now", 0, "501 5.5.4 Syntax: RSET");
    expect_error("QUIT please", 0, "501 5.5.4 Syntax: QUIT");
    expect_error("STARTTLS 1", 0, "501 5.5.4 Syntax: STARTTLS");
    expect_error("VRFY", 0, "501 5.5.4 Syntax: VRFY");
    expect_error("VRFY   ", 0, "501 5.5.4");
    expect_error("EXPN", 0, "501 5.5.4");
}

static void test_auth(void **state)
{
    (void)state;
    struct smtp_cmd c;
    expect_ok("AUTH plain", 0, SMTP_AUTH, &c);
    assert_string_equal(c.auth_mech, "PLAIN");
    assert_null(c.auth_initial);
    expect_ok("AUTH PLAIN AGFsaWNlAHNlY3JldA==", 0, SMTP_AUTH, &c);
    assert_string_equal(c.auth_initial, "AGFsaWNlAHNlY3JldA==");
    expect_ok("AUTH PLAIN =", 0, SMTP_AUTH, &c);
    assert_string_equal(c.auth_initial, "=");
    expect_ok("AUTH LOGIN", 0, SMTP_AUTH, &c);
    expect_ok("AUTH SCRAM-SHA-256", 0, SMTP_AUTH, &c);
    expect_error("AUTH", 0, "501 5.5.4 Syntax: AUTH");
    expect_error("AUTH PL@IN", 0, "501 5.5.4");
    expect_error("AUTH ABCDEFGHIJKLMNOPQRSTU", 0, "501 5.5.4"); /* 21 characters */
    expect_error("AUTH PLAIN abc", 0, "501 5.5.2");
    expect_error("AUTH PLAIN ab=c", 0, "501 5.5.2");
    expect_error("AUTH PLAIN a===", 0, "501 5.5.2");
    expect_error("AUTH PLAIN ab*d", 0, "501 5.5.2");
}

/* Parsing never depends on bytes past len: the line need not be NUL-terminated. */
static void test_not_nul_terminated(void **state)
{
    (void)state;
    const char buf[] = "RCPT TO:<a@b.test>XXXXXXXX";
    struct smtp_cmd c;
    assert_int_equal(smtp_parse_command(buf, 18, 0, &c), SMTP_PARSE_OK);
    assert_string_equal(c.path, "a@b.test");
    assert_int_equal(smtp_parse_command(buf, 17, 0, &c), SMTP_PARSE_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verbs_case_insensitive),
        cmocka_unit_test(test_not_a_command),
        cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_helo_ehlo),
        cmocka_unit_test(test_mail_from),
        cmocka_unit_test(test_mail_params),
        cmocka_unit_test(test_mail_syntax_errors),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_source_routes_and_quotes),
        cmocka_unit_test(test_rcpt_params),
        cmocka_unit_test(test_utf8_addresses),
        cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_no_argument_commands),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_not_nul_terminated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
