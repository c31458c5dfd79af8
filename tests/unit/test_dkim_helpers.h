/*
 * test_dkim_helpers.h — what the DKIM tests (test_mail_dkim.c,
 * test_directory_dkim.c) need besides the code under test: keys made at test
 * time with OpenSSL, their public half as a DKIM DNS record, and a verifier:
 * libopendkim's own verify API with its key lookup answered from a file
 * (DKIM_QUERY_FILE: "sel._domainkey.domain v=DKIM1; k=rsa; p=..."), so no DNS
 * is asked.
 *
 * Header-only; include it after cmocka.h.
 */
#ifndef LB_TEST_DKIM_HELPERS_H
#define LB_TEST_DKIM_HELPERS_H

#include <opendkim/dkim.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline EVP_PKEY *tk_rsa(unsigned bits)
{
    EVP_PKEY *pk = EVP_RSA_gen(bits);
    assert_non_null(pk);
    return pk;
}

static inline EVP_PKEY *tk_ed25519(void)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(pk);
    return pk;
}

enum tk_form { TK_PKCS8_PEM, TK_PKCS1_PEM, TK_DER };

/* The private key in the given form; malloc'd, NUL-terminated for PEM. */
static inline unsigned char *tk_private(EVP_PKEY *pk, enum tk_form form, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    int ok = form == TK_PKCS8_PEM   ? PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)
             : form == TK_PKCS1_PEM ? PEM_write_bio_PrivateKey_traditional(b, pk, NULL, NULL, 0, NULL, NULL)
                                    : i2d_PrivateKey_bio(b, pk);
    assert_int_equal(ok, 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    assert_true(n > 0);
    unsigned char *out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = 0;
    *len = (size_t)n;
    BIO_free(b);
    return out;
}

/* "v=DKIM1; k=rsa; p=BASE64" (the SubjectPublicKeyInfo, RFC 6376 3.6.1); malloc'd. */
static inline char *tk_dns_record(EVP_PKEY *pk)
{
    int n = i2d_PUBKEY(pk, NULL);
    assert_true(n > 0);
    unsigned char *der = malloc((size_t)n);
    assert_non_null(der);
    unsigned char *p = der;
    assert_int_equal(i2d_PUBKEY(pk, &p), n);
    char *rec = malloc(32 + (size_t)n * 2);
    assert_non_null(rec);
    int off = sprintf(rec, "v=DKIM1; k=rsa; p=");
    EVP_EncodeBlock((unsigned char *)rec + off, der, n);
    free(der);
    return rec;
}

struct tk_verifier {
    DKIM_LIB *lib;
    char path[64];
};

/* A libopendkim verifier whose key lookups read one record from a file. */
static inline void tk_verifier_open(struct tk_verifier *v, const char *selector, const char *domain,
                                    const char *record)
{
    strcpy(v->path, "/tmp/lb-dkim-keys-XXXXXX");
    int fd = mkstemp(v->path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    assert_non_null(fp);
    fprintf(fp, "%s._domainkey.%s %s\n", selector, domain, record);
    assert_int_equal(fclose(fp), 0);
    v->lib = dkim_init(NULL, NULL);
    assert_non_null(v->lib);
    dkim_query_t method = DKIM_QUERY_FILE;
    assert_int_equal(dkim_options(v->lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &method, sizeof method),
                     DKIM_STAT_OK);
    assert_int_equal(dkim_options(v->lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, v->path, strlen(v->path)),
                     DKIM_STAT_OK);
}

static inline void tk_verifier_close(struct tk_verifier *v)
{
    dkim_close(v->lib);
    unlink(v->path);
}

/* Verifies header + msg: DKIM_STAT_OK when the signature is good (and its
 * body hash matches), DKIM_STAT_BADSIG or another DKIM_STAT_* if not.
 * *bh (may be NULL) gets the body hash result (DKIM_SIGBH_*). */
static inline DKIM_STAT tk_verify(struct tk_verifier *v, const char *header, const unsigned char *msg, size_t len,
                                  int *bh)
{
    DKIM_STAT st;
    DKIM *d = dkim_verify(v->lib, (const unsigned char *)"test", NULL, &st);
    assert_non_null(d);
    st = dkim_chunk(d, (unsigned char *)header, strlen(header));
    if (st == DKIM_STAT_OK)
        st = dkim_chunk(d, (unsigned char *)msg, len);
    if (st == DKIM_STAT_OK)
        st = dkim_chunk(d, NULL, 0);
    if (st == DKIM_STAT_OK)
        st = dkim_eom(d, NULL);
    DKIM_SIGINFO *sig = dkim_getsignature(d);
    if (bh)
        *bh = sig ? dkim_sig_getbh(sig) : DKIM_SIGBH_UNTESTED;
    if (st == DKIM_STAT_OK && (!sig || !DKIM_SIG_CHECK(sig)))
        st = DKIM_STAT_BADSIG;
    dkim_free(d);
    return st;
}

#endif
