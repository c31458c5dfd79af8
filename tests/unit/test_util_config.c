/*
 * test_util_config.c — the lifeboat.conf parser (src/util/config.c): every key
 * type, units, defaults, and that each refusal names the file and the line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/config.h"
#include "util/log.h"

/* Parses text on top of the defaults; returns config_parse's result. */
static int parse(struct config *cfg, const char *text, char *err, size_t errlen)
{
    config_defaults(cfg);
    err[0] = 0;
    return config_parse(cfg, "test.conf", text, strlen(text), err, errlen);
}

/* Asserts that text is refused and that the message starts with prefix. */
#define assert_refused(text, prefix)                                                   \
    do {                                                                               \
        struct config c_;                                                              \
        char e_[512];                                                                  \
        assert_int_equal(parse(&c_, (text), e_, sizeof e_), -1);                       \
        if (strncmp(e_, (prefix), strlen(prefix)) != 0)                                \
            fail_msg("error \"%s\" does not start with \"%s\"", e_, (prefix));         \
    } while (0)

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    assert_int_equal(parse(&c, "", err, sizeof err), 0);
    assert_true(c.hostname[0] != 0);
    assert_string_equal(c.data_dir, "/var/lib/lifeboat");
    assert_int_equal(c.smtp_listen.count, 1);
    assert_string_equal(c.smtp_listen.addr[0].host, "0.0.0.0");
    assert_string_equal(c.smtp_listen.addr[0].port, "25");
    assert_int_equal(c.submission_listen.count, 0);
    assert_int_equal(c.http_listen.count, 1);
    assert_string_equal(c.http_listen.addr[0].host, "127.0.0.1");
    assert_string_equal(c.http_listen.addr[0].port, "8080");
    assert_string_equal(c.tls_cert_file, "");
    assert_string_equal(c.tls_key_file, "");
    assert_int_equal(c.smtp_max_connections, 10000);
    assert_int_equal(c.smtp_client_limit, 50);
    assert_int_equal(c.max_message_size, 25 * 1024 * 1024);
    assert_int_equal(c.max_recipients, 1000);
    assert_int_equal(c.queue_lifetime, 5 * 86400);
    assert_int_equal(c.retry_min_backoff, 300);
    assert_int_equal(c.retry_max_backoff, 3600);
    assert_int_equal(c.dr_probe_interval, 30);
    assert_int_equal(c.archive_retention, 90 * 86400);
    assert_string_equal(c.outbound_relay.host, "");
    assert_string_equal(c.store, "sqlite");
    assert_int_equal(c.smtp_timeout, 300);
    assert_int_equal(c.smtp_data_timeout, 600);
    assert_int_equal(c.delivery_concurrency, 20);
    assert_int_equal(c.delivery_timeout, 300);
    assert_int_equal(c.log_level, LOG_LEVEL_INFO);
    assert_int_equal(c.smtp_invalid_line_endings, CONFIG_LINE_ENDINGS_REJECT);
}

static void test_every_key(void **state)
{
    (void)state;
    static const char text[] =
        "# a full configuration\n"
        "hostname = mx.lifeboat.test\n"
        "data_dir = /srv/life boat/data\n"
        "smtp_listen = 127.0.0.1:2525, [::1]:2526\n"
        "submission_listen = 127.0.0.1\n"
        "http_listen = 0.0.0.0:80\n"
        "tls_cert_file = /etc/ssl/cert.pem\n"
        "tls_key_file = /etc/ssl/key.pem\n"
        "smtp_max_connections = 500\n"
        "smtp_client_limit = 0\n"
        "max_message_size = 10M\n"
        "max_recipients = 50\n"
        "queue_lifetime = 2d\n"
        "retry_min_backoff = 30s\n"
        "retry_max_backoff = 2h\n"
        "dr_probe_interval = 10\n"
        "archive_retention = 1w\n"
        "outbound_relay = smarthost.test:587\n"
        "store = postgresql://lb@db.test/lifeboat\n"
        "smtp_invalid_line_endings = fix\n"
        "smtp_timeout = 1m\n"
        "smtp_data_timeout = 3m\n"
        "delivery_concurrency = 4\n"
        "delivery_timeout = 45s\n"
        "log_level = debug\n";
    struct config c;
    char err[256];
    if (parse(&c, text, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    assert_string_equal(c.hostname, "mx.lifeboat.test");
    assert_string_equal(c.data_dir, "/srv/life boat/data"); /* paths may hold spaces */
    assert_int_equal(c.smtp_listen.count, 2);
    assert_string_equal(c.smtp_listen.addr[0].host, "127.0.0.1");
    assert_string_equal(c.smtp_listen.addr[0].port, "2525");
    assert_string_equal(c.smtp_listen.addr[1].host, "::1");
    assert_string_equal(c.smtp_listen.addr[1].port, "2526");
    assert_int_equal(c.submission_listen.count, 1);
    assert_string_equal(c.submission_listen.addr[0].port, "587"); /* its own default port */
    assert_string_equal(c.http_listen.addr[0].host, "0.0.0.0");
    assert_string_equal(c.http_listen.addr[0].port, "80");
    assert_string_equal(c.tls_cert_file, "/etc/ssl/cert.pem");
    assert_string_equal(c.tls_key_file, "/etc/ssl/key.pem");
    assert_int_equal(c.smtp_max_connections, 500);
    assert_int_equal(c.smtp_client_limit, 0);
    assert_int_equal(c.max_message_size, 10 * 1024 * 1024);
    assert_int_equal(c.max_recipients, 50);
    assert_int_equal(c.queue_lifetime, 2 * 86400);
    assert_int_equal(c.retry_min_backoff, 30);
    assert_int_equal(c.retry_max_backoff, 7200);
    assert_int_equal(c.dr_probe_interval, 10);
    assert_int_equal(c.archive_retention, 7 * 86400);
    assert_string_equal(c.outbound_relay.host, "smarthost.test");
    assert_string_equal(c.outbound_relay.port, "587");
    assert_string_equal(c.store, "postgresql://lb@db.test/lifeboat");
    assert_int_equal(c.smtp_invalid_line_endings, CONFIG_LINE_ENDINGS_FIX);
    assert_int_equal(c.smtp_timeout, 60);
    assert_int_equal(c.smtp_data_timeout, 180);
    assert_int_equal(c.delivery_concurrency, 4);
    assert_int_equal(c.delivery_timeout, 45);
    assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
}

static void test_syntax_tolerance(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    /* CRLF, tabs, no spaces around '=', trailing comments, blank lines, no final newline. */
    assert_int_equal(parse(&c, "\r\n\t# comment\r\nmax_recipients=7 # seven\r\n\n  hostname\t=\tx.test  \r\n"
                               "log_level = error",
                           err, sizeof err),
                     0);
    assert_int_equal(c.max_recipients, 7);
    assert_string_equal(c.hostname, "x.test");
    assert_int_equal(c.log_level, LOG_LEVEL_ERR);
    /* A value may contain '=' (URLs). */
    assert_int_equal(parse(&c, "store = postgres://u@h/db?sslmode=require\n", err, sizeof err), 0);
    assert_string_equal(c.store, "postgres://u@h/db?sslmode=require");
    /* Only the given length is read: the text need not be NUL-terminated. */
    config_defaults(&c);
    const char buf[] = "max_recipients = 12345";
    assert_int_equal(config_parse(&c, "t", buf, 20, err, sizeof err), 0);
    assert_int_equal(c.max_recipients, 123);
}

static void test_durations(void **state)
{
    (void)state;
    unsigned s;
    struct {
        const char *text;
        unsigned seconds;
    } good[] = {
        {"0", 0}, {"45", 45}, {"30s", 30}, {"5m", 300}, {"2h", 7200}, {"5d", 432000}, {"1w", 604800},
        {"4294967295", 4294967295u}, {"4294967295s", 4294967295u}, {"71582788m", 71582788u * 60},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        s = 12345;
        if (config_parse_duration(good[i].text, &s) != 0 || s != good[i].seconds)
            fail_msg("duration \"%s\": got %u", good[i].text, s);
    }
    static const char *bad[] = {"", "s", "-5", "+5", " 5", "5 ", "5 m", "5x", "5ms", "5M", "1.5h",
                                "4294967296", "71582789m", "99999999999999999999999", "5mm"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (config_parse_duration(bad[i], &s) != -1)
            fail_msg("duration \"%s\" was accepted", bad[i]);
    assert_int_equal(config_parse_duration(NULL, &s), -1);
}

static void test_sizes(void **state)
{
    (void)state;
    uint64_t b;
    struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        {"0", 0}, {"1000", 1000}, {"512K", 512 * 1024}, {"512k", 512 * 1024}, {"25M", 25u << 20},
        {"25MB", 25u << 20}, {"25mb", 25u << 20}, {"1G", 1u << 30}, {"3GB", 3ull << 30},
        {"18446744073709551615", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        b = 12345;
        if (config_parse_size(good[i].text, &b) != 0 || b != good[i].bytes)
            fail_msg("size \"%s\": got %llu", good[i].text, (unsigned long long)b);
    }
    static const char *bad[] = {"", "M", "-1", " 1", "1 M", "1T", "1B", "1MBs", "1.5M", "1Mx",
                                "18446744073709551616", "17179869184G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (config_parse_size(bad[i], &b) != -1)
            fail_msg("size \"%s\" was accepted", bad[i]);
    assert_int_equal(config_parse_size(NULL, &b), -1);
}

static void test_hostport(void **state)
{
    (void)state;
    struct config_listen l;
    assert_int_equal(config_parse_hostport("mx.test", "25", &l), 0);
    assert_string_equal(l.host, "mx.test");
    assert_string_equal(l.port, "25");
    assert_int_equal(config_parse_hostport("192.0.2.1:65535", "25", &l), 0);
    assert_string_equal(l.port, "65535");
    assert_int_equal(config_parse_hostport("[2001:db8::1]:1", NULL, &l), 0);
    assert_string_equal(l.host, "2001:db8::1");
    assert_string_equal(l.port, "1");
    assert_int_equal(config_parse_hostport("[::]", "587", &l), 0);
    assert_string_equal(l.host, "::");
    assert_string_equal(l.port, "587");

    static const char *bad[] = {"", ":25", "mx.test:", "mx.test:0", "mx.test:65536", "mx.test:123456",
                                "mx.test:2x", "mx.test:-1", "2001:db8::1", "[2001:db8::1", "[::1]25",
                                "[::1]:", "[]:25", "mx test:25", "mx/test:25", "mx.test:25:26"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (config_parse_hostport(bad[i], "25", &l) != -1)
            fail_msg("host:port \"%s\" was accepted", bad[i]);
    /* No port and no default. */
    assert_int_equal(config_parse_hostport("mx.test", NULL, &l), -1);
    /* Host of 255 characters fits, 256 does not. */
    char host[300];
    memset(host, 'a', 255);
    host[255] = 0;
    assert_int_equal(config_parse_hostport(host, "25", &l), 0);
    memset(host, 'a', 256);
    host[256] = 0;
    assert_int_equal(config_parse_hostport(host, "25", &l), -1);
}

static void test_listen_lists(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    assert_int_equal(parse(&c, "submission_listen = off\nhttp_listen = none\n", err, sizeof err), 0);
    assert_int_equal(c.submission_listen.count, 0);
    assert_int_equal(c.http_listen.count, 0);
    assert_int_equal(parse(&c,
                           "smtp_listen = a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8\n", err, sizeof err),
                     0);
    assert_int_equal(c.smtp_listen.count, CONFIG_MAX_LISTEN);
    assert_string_equal(c.smtp_listen.addr[7].host, "h");
    assert_int_equal(parse(&c, "smtp_listen = 127.0.0.1\n", err, sizeof err), 0);
    assert_string_equal(c.smtp_listen.addr[0].port, "25");
    assert_refused("smtp_listen = a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9\n", "test.conf:1: bad value");
    assert_refused("smtp_listen = ,\n", "test.conf:1: bad value");
    assert_refused("smtp_listen = a:25,\n", "test.conf:1: bad value");
    assert_refused("smtp_listen = off\n", "test.conf:1: bad value");
    /* A last entry long enough to have been cut by an intermediate buffer is refused, not shortened. */
    char longline[2600];
    int n = snprintf(longline, sizeof longline, "smtp_listen = ");
    for (int i = 0; i < 8; i++)
        n += snprintf(longline + n, sizeof longline - (size_t)n, "%s%0255d:2507", i ? "," : "", 0);
    snprintf(longline + n, sizeof longline - (size_t)n, "\n");
    assert_int_equal(parse(&c, longline, err, sizeof err), 0);
    assert_string_equal(c.smtp_listen.addr[7].port, "2507");
}

static void test_other_values(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    assert_int_equal(parse(&c, "outbound_relay = none\n", err, sizeof err), 0);
    assert_string_equal(c.outbound_relay.host, "");
    assert_int_equal(parse(&c, "outbound_relay = [2001:db8::25]\n", err, sizeof err), 0);
    assert_string_equal(c.outbound_relay.host, "2001:db8::25");
    assert_string_equal(c.outbound_relay.port, "25");
    assert_int_equal(parse(&c, "log_level = warning\n", err, sizeof err), 0);
    assert_int_equal(c.log_level, LOG_LEVEL_WARN);
    assert_int_equal(parse(&c, "log_level = info\n", err, sizeof err), 0);
    assert_int_equal(c.log_level, LOG_LEVEL_INFO);
    assert_int_equal(parse(&c, "smtp_max_connections = 4294967295\n", err, sizeof err), 0);
    assert_int_equal(c.smtp_max_connections, 4294967295u);
    /* Zero would mean "never" or a busy loop: refused. */
    assert_refused("delivery_concurrency = 0\n", "test.conf: delivery_concurrency, dr_probe_interval");
    assert_refused("dr_probe_interval = 0s\n", "test.conf: delivery_concurrency, dr_probe_interval");
    assert_refused("smtp_timeout = 0\n", "test.conf: delivery_concurrency, dr_probe_interval");

    assert_int_equal(parse(&c, "smtp_invalid_line_endings = reject\n", err, sizeof err), 0);
    assert_int_equal(c.smtp_invalid_line_endings, CONFIG_LINE_ENDINGS_REJECT);
    assert_refused("# x\nsmtp_invalid_line_endings = normalize\n",
                   "test.conf:2: bad value \"normalize\" for smtp_invalid_line_endings (expected reject or fix)");
    assert_refused("smtp_invalid_line_endings = Fix\n", "test.conf:1: bad value");
    assert_refused("smtp_invalid_line_endings =\n", "test.conf:1: smtp_invalid_line_endings has no value");
    assert_refused("log_level = Debug\n", "test.conf:1: bad value \"Debug\" for log_level");
    assert_refused("log_level = verbose\n", "test.conf:1: bad value");
    assert_refused("store = mysql://x\n", "test.conf:1: bad value \"mysql://x\" for store");
    assert_refused("store = SQLite\n", "test.conf:1: bad value");
    assert_refused("hostname = two words\n", "test.conf:1: bad value \"two words\" for hostname");
    assert_refused("max_recipients = -1\n", "test.conf:1: bad value");
    assert_refused("max_recipients = 10k\n", "test.conf:1: bad value");
    assert_refused("max_recipients = 4294967296\n", "test.conf:1: bad value");
    assert_refused("max_recipients = 1e3\n", "test.conf:1: bad value");
    assert_refused("smtp_client_limit = lots\n", "test.conf:1: bad value");
    assert_refused("max_message_size = 25X\n", "test.conf:1: bad value \"25X\" for max_message_size (expected a size like 25M)");
    assert_refused("queue_lifetime = 5 days\n", "test.conf:1: bad value \"5 days\" for queue_lifetime (expected a duration like 5d)");
    assert_refused("outbound_relay = [::1\n", "test.conf:1: bad value");
    /* metrics_allow: a CIDR list, "none", nothing else. */
    assert_string_equal(c.metrics_allow, "127.0.0.0/8,::1"); /* the default, kept by the parses above */
    assert_int_equal(parse(&c, "metrics_allow = 192.0.2.0/24,2001:db8::/32\n", err, sizeof err), 0);
    assert_string_equal(c.metrics_allow, "192.0.2.0/24,2001:db8::/32");
    assert_int_equal(parse(&c, "metrics_allow = none\n", err, sizeof err), 0);
    assert_string_equal(c.metrics_allow, "");
    assert_refused("metrics_allow = 10.0.0.0/33\n", "test.conf:1: bad value \"10.0.0.0/33\" for metrics_allow");
    assert_refused("metrics_allow = localhost\n", "test.conf:1: bad value");
    assert_int_equal(parse(&c, "web_root = /usr/share/lifeboat/web\nweb_url = https://mail.example.com/\n", err,
                           sizeof err), 0);
    assert_string_equal(c.web_root, "/usr/share/lifeboat/web");
    assert_string_equal(c.web_url, "https://mail.example.com/");
    assert_refused("web_url = https://mail.example.com/a b\n", "test.conf:1: bad value");
    char longpath[1100];
    snprintf(longpath, sizeof longpath, "data_dir = /%01030d\n", 0);
    assert_refused(longpath, "test.conf:1: bad value");
}

static void test_errors_name_the_line(void **state)
{
    (void)state;
    assert_refused("hostname = a.test\n\n# c\nbogus_key = 1\n", "test.conf:4: unknown key \"bogus_key\"");
    assert_refused("max_recipients = 5\nmax_recipients = 6\n", "test.conf:2: \"max_recipients\" is set twice");
    assert_refused("\n\n\nmax_recipients\n", "test.conf:4: expected \"key = value\"");
    assert_refused("max_recipients =\n", "test.conf:1: max_recipients has no value (expected a number)");
    assert_refused("max_recipients = # none\n", "test.conf:1: max_recipients has no value");
    assert_refused("= 5\n", "test.conf:1: unknown key \"\"");
    assert_refused("Hostname = a.test\n", "test.conf:1: unknown key \"Hostname\"");
    assert_refused("a\r\nb\r\nretry_min_backoff = 5q\r\n", "test.conf:1: expected");
    assert_refused("# ok\r\n\r\nretry_min_backoff = 5q\r\n", "test.conf:3: bad value \"5q\" for retry_min_backoff");

    /* A NUL byte inside the text. */
    struct config c;
    char err[256];
    config_defaults(&c);
    static const char nul[] = "hostname = a.test\nmax_recipients = 5\0\n";
    assert_int_equal(config_parse(&c, "n.conf", nul, sizeof nul - 1, err, sizeof err), -1);
    assert_string_equal(err, "n.conf:2: NUL byte in line");

    /* An overlong line. */
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'x', 4999);
    big[4999] = 0;
    memcpy(big, "\nhostname = ", 12);
    assert_int_equal(parse(&c, big, err, sizeof err), -1);
    assert_string_equal(err, "test.conf:2: line too long");
    free(big);
}

static void test_cross_checks(void **state)
{
    (void)state;
    assert_refused("retry_min_backoff = 2h\n", "test.conf: retry_min_backoff must be above 0");
    assert_refused("retry_min_backoff = 0\n", "test.conf: retry_min_backoff must be above 0");
    assert_refused("retry_min_backoff = 10m\nretry_max_backoff = 5m\n", "test.conf: retry_min_backoff");
    assert_refused("tls_cert_file = /c.pem\n", "test.conf: tls_cert_file and tls_key_file go together");
    assert_refused("tls_key_file = /k.pem\n", "test.conf: tls_cert_file and tls_key_file go together");
    assert_refused("max_recipients = 0\n", "test.conf: max_recipients, max_message_size");
    assert_refused("max_message_size = 0\n", "test.conf: max_recipients, max_message_size");
    assert_refused("smtp_max_connections = 0\n", "test.conf: max_recipients, max_message_size");
    assert_refused("submission_listen = 127.0.0.1:587\n", "test.conf: submission_listen needs tls_cert_file");
    struct config c;
    char err[256];
    assert_int_equal(parse(&c, "retry_min_backoff = 1h\n", err, sizeof err), 0); /* equal is fine */
}

static void test_load_files(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    assert_int_equal(config_load(&c, "/nonexistent/lifeboat.conf", err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent/lifeboat.conf: cannot open: No such file or directory");

    char path[] = "/tmp/test_util_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("hostname = file.test\nmax_recipients = 3\nretry_max_backoff = oops\n", f);
    fclose(f);
    assert_int_equal(config_load(&c, path, err, sizeof err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s:3: bad value \"oops\" for retry_max_backoff (expected a duration like 1h)",
             path);
    assert_string_equal(err, want);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("hostname = file.test\nmax_recipients = 3\n", f);
    fclose(f);
    assert_int_equal(config_load(&c, path, err, sizeof err), 0);
    assert_string_equal(c.hostname, "file.test");
    assert_int_equal(c.max_recipients, 3);
    assert_int_equal(c.queue_lifetime, 5 * 86400); /* the rest are defaults */

    /* An empty file is a valid, all-defaults configuration. */
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(config_load(&c, path, err, sizeof err), 0);

    /* A file bigger than any configuration is refused, not read forever. */
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 40000; i++)
        fputs("# padding padding padding padding\n", f);
    fclose(f);
    assert_int_equal(config_load(&c, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: file too large", path);
    assert_string_equal(err, want);
    unlink(path);

    /* A directory is not a configuration file. */
    assert_int_equal(config_load(&c, "/tmp", err, sizeof err), -1);
    assert_true(strncmp(err, "/tmp: ", 6) == 0);
}

static void test_shipped_local_config(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    if (config_load(&c, LB_SOURCE_DIR "/etc/lifeboat-local.conf", err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c.smtp_listen.addr[0].port, "2525");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_syntax_tolerance),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_listen_lists),
        cmocka_unit_test(test_other_values),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_cross_checks),
        cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_shipped_local_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
