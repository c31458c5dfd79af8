/*
 * test_directory_dkim.c — directory_dkim_sign on a real (temporary) store:
 * no key, no signature; the key of `domain set --dkim-selector --dkim-key`
 * signs (checked with libopendkim's verifier, test_dkim_helpers.h); a key
 * replaced at the same path is used at once; a key file that went missing,
 * became a directory, grew too large or holds no key gives -1 with a reason
 * that names the file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/dkim.h"
#include "test_directory_fixture.h"
#include "test_dkim_helpers.h"

static const char MSG[] = "From: bob@acme.test\r\n"
                          "To: dave@example.net\r\n"
                          "Subject: hello\r\n"
                          "\r\n"
                          "body\r\n";

static int setup(void **state)
{
    if (directory_fixture_setup(state, "test_directory_dkim") != 0)
        return -1;
    struct fixture *f = *state;
    if (directory_customer_add(f->st, "acme", ERR) != 0 ||
        directory_domain_add(f->st, "acme.test", "acme", "mx.acme.test", ERR) != 0 ||
        directory_domain_add(f->st, "nokey.test", "acme", "mx.acme.test", ERR) != 0)
        return -1;
    return 0;
}

/* Writes a new RSA key to path; returns its DNS record (malloc'd). */
static char *write_key(const char *path, unsigned bits)
{
    EVP_PKEY *pk = tk_rsa(bits);
    size_t len;
    unsigned char *pem = tk_private(pk, TK_PKCS1_PEM, &len);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(pem, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    char *rec = tk_dns_record(pk);
    free(pem);
    EVP_PKEY_free(pk);
    return rec;
}

static void set_key(struct fixture *f, const char *selector, const char *path)
{
    struct directory_domain_changes ch = {.recipient_check = -1, .dkim_selector = selector, .dkim_key_file = path};
    assert_ok(directory_domain_set(f->st, "acme.test", &ch, ERR));
}

/* Signs MSG for domain, expecting a header; verifies it against record. */
static void signs_and_verifies(struct fixture *f, const char *domain, const char *selector, const char *record)
{
    char *h = NULL;
    assert_ok(directory_dkim_sign(f->st, domain, (const unsigned char *)MSG, strlen(MSG), &h, ERR));
    assert_non_null(h);
    char s[64];
    assert_int_equal(mail_dkim_header_tag(h, "s", s, sizeof s), 0);
    assert_string_equal(s, selector);
    assert_int_equal(mail_dkim_header_tag(h, "d", s, sizeof s), 0);
    assert_string_equal(s, "acme.test");
    struct tk_verifier v;
    tk_verifier_open(&v, selector, "acme.test", record);
    assert_int_equal(tk_verify(&v, h, (const unsigned char *)MSG, strlen(MSG), NULL), DKIM_STAT_OK);
    tk_verifier_close(&v);
    free(h);
}

static void unsigned_ok(struct fixture *f, const char *domain)
{
    char *h = (char *)"untouched";
    assert_ok(directory_dkim_sign(f->st, domain, (const unsigned char *)MSG, strlen(MSG), &h, ERR));
    assert_null(h);
}

static void fails_with(struct fixture *f, const char *want)
{
    char *h = (char *)"untouched";
    f->err[0] = 0;
    assert_int_equal(directory_dkim_sign(f->st, "acme.test", (const unsigned char *)MSG, strlen(MSG), &h, ERR), -1);
    assert_null(h);
    if (!strstr(f->err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", f->err, want);
}

static void test_no_key_no_signature(void **state)
{
    struct fixture *f = *state;
    unsigned_ok(f, "acme.test");
    unsigned_ok(f, "nokey.test");
    unsigned_ok(f, "not-hosted.example");
    unsigned_ok(f, "");
    unsigned_ok(f, NULL);
}

static void test_key_signs_and_rotation_takes_effect(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/acme.private", f->t.root);
    char *rec = write_key(path, 2048);
    set_key(f, "sel1", path);
    signs_and_verifies(f, "acme.test", "sel1", rec);
    signs_and_verifies(f, "ACME.Test", "sel1", rec); /* the domain as typed in From */
    free(rec);

    /* A new key at the same path: used for the next message, no reload. */
    rec = write_key(path, 1024);
    signs_and_verifies(f, "acme.test", "sel1", rec);
    free(rec);

    /* Cleared: unsigned again. */
    set_key(f, "", "");
    unsigned_ok(f, "acme.test");
}

static void test_broken_key_files(void **state)
{
    struct fixture *f = *state;
    char path[128], msg[256];
    snprintf(path, sizeof path, "%s/acme.private", f->t.root);
    char *rec = write_key(path, 1024);
    free(rec);
    set_key(f, "sel1", path);

    assert_int_equal(unlink(path), 0);
    snprintf(msg, sizeof msg, "cannot open key file %s: No such file or directory", path);
    fails_with(f, msg);

    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(msg, sizeof msg, "key file %s is not a regular file", path);
    fails_with(f, msg);
    assert_int_equal(rmdir(path), 0);

    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i <= MAIL_DKIM_KEY_MAX; i++)
        fputc('A', fp);
    assert_int_equal(fclose(fp), 0);
    snprintf(msg, sizeof msg, "key file %s is larger than 65536 bytes", path);
    fails_with(f, msg);

    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n", fp);
    assert_int_equal(fclose(fp), 0);
    snprintf(msg, sizeof msg, "selector sel1, key file %s: this is the DNS record", path);
    fails_with(f, msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_key_no_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_signs_and_rotation_takes_effect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_key_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
