/*
 * dkim.c — see dkim.h. libopendkim computes the hashes, the signature and
 * the folded header; we check the key (type, size) first with OpenSSL
 * (libopendkim only says "PEM_read_bio_PrivateKey() failed" at the end of
 * the message) and turn every failure into one line an administrator can
 * act on.
 *
 * The key goes to libopendkim as PKCS#8 PEM re-encoded from the parsed key,
 * whatever form the file had: libopendkim tells PEM from DER by a leading
 * "-----" and wants a NUL-terminated string, which a PEM file with a comment
 * line or a DER file would not give it.
 */
#include "mail/dkim.h"

#include <opendkim/dkim.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errbuf.h"

/* RFC 8301 3.2: signers MUST use RSA keys of at least 1024 bits. */
#define RSA_MIN_BITS 1024
/* Where the first line of the header value starts ("DKIM-Signature: "),
 * for libopendkim's folding at its margin (75 columns). */
#define FIELD_NAME "DKIM-Signature: "

/* The header fields signed when present (libopendkim adds From, which
 * RFC 6376 requires, to any list), and the ones signed once more than they
 * occur. libopendkim copies both lists. */
static const char *sign_headers[] = {
    "From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
    "MIME-Version", "Content-Type", "Content-Transfer-Encoding", NULL,
};
static const char *oversign_headers[] = {"From", NULL};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static DKIM_LIB *lib;         /* for the life of the process */
static const char *lib_error; /* why lib is NULL */

static void lib_init(void)
{
    DKIM_LIB *l = dkim_init(NULL, NULL);
    if (!l) {
        lib_error = "cannot initialise libopendkim (out of memory)";
        return;
    }
    if (dkim_options(l, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, sign_headers, sizeof(char **)) != DKIM_STAT_OK ||
        dkim_options(l, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, oversign_headers, sizeof(char **)) !=
            DKIM_STAT_OK) {
        dkim_close(l);
        lib_error = "cannot set libopendkim's header lists";
        return;
    }
    lib = l;
}

/* d= and s= go into the header as they are: DNS names only, so nothing can
 * add a tag. */
static int dns_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_' || *p == '.'))
            return 0;
    return 1;
}

/* A key with a passphrase cannot be used unattended: refuse it instead of
 * letting OpenSSL ask on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag;
    *(int *)u = 1;
    return -1;
}

/* The private key in key (PEM or DER), or NULL with the reason in err. */
static EVP_PKEY *key_parse(const unsigned char *key, size_t keylen, char *err, size_t errlen)
{
    if (!key || keylen == 0) {
        errbuf_fail(err, errlen, "the key is empty");
        return NULL;
    }
    if (keylen > MAIL_DKIM_KEY_MAX) {
        errbuf_fail(err, errlen, "the key is larger than %d bytes", MAIL_DKIM_KEY_MAX);
        return NULL;
    }
    int encrypted = 0;
    EVP_PKEY *pk = NULL;
    BIO *b = BIO_new_mem_buf(key, (int)keylen);
    if (b) {
        pk = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, &encrypted);
        BIO_free(b);
    }
    if (!pk && !encrypted) {
        const unsigned char *p = key;
        pk = d2i_AutoPrivateKey(NULL, &p, (long)keylen);
    }
    if (!pk) {
        if (encrypted)
            errbuf_fail(err, errlen, "the key is protected by a passphrase");
        else if (memmem(key, keylen, "v=DKIM1", 7))
            errbuf_fail(err, errlen, "this is the DNS record (SELECTOR.txt), not the private key (SELECTOR.private)");
        else if (memmem(key, keylen, "PUBLIC KEY-----", 15))
            errbuf_fail(err, errlen, "this is a public key, not the private key");
        else
            errbuf_fail(err, errlen, "not a private key (PEM or DER expected)");
    }
    return pk;
}

/* The key as a NUL-terminated PKCS#8 PEM string for libopendkim, in a
 * memory BIO that wipes itself when freed. */
static BIO *key_pem(EVP_PKEY *pk, const char **pem)
{
    BIO *b = BIO_new(BIO_s_secmem());
    char *data;
    if (!b || PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) != 1 || BIO_write(b, "", 1) != 1 ||
        BIO_get_mem_data(b, &data) <= 0) {
        BIO_free(b);
        return NULL;
    }
    *pem = data;
    return b;
}

/* Runs one signature over msg; *value gets the header's value (malloc'd,
 * folded, without the field name and the final CRLF). */
static int sign_with(const char *pem, int alg, const struct mail_dkim_signer *s, const unsigned char *msg,
                     size_t len, char **value, char *err, size_t errlen)
{
    DKIM_STAT st;
    DKIM *d = dkim_sign(lib, (const unsigned char *)"lifeboat", NULL, (dkim_sigkey_t)pem,
                        (const unsigned char *)s->selector, (const unsigned char *)s->domain, DKIM_CANON_RELAXED,
                        DKIM_CANON_RELAXED, alg, -1, &st);
    if (!d)
        return errbuf_fail(err, errlen, "libopendkim: %s", dkim_getresultstr(st));
    /* dkim_chunk takes a non-const buffer but only reads it. */
    st = dkim_chunk(d, (u_char *)msg, len);
    if (st == DKIM_STAT_OK)
        st = dkim_chunk(d, NULL, 0);
    if (st == DKIM_STAT_OK)
        st = dkim_eom(d, NULL);
    u_char *hdr = NULL;
    size_t hdrlen = 0;
    if (st == DKIM_STAT_OK)
        st = dkim_getsighdr_d(d, strlen(FIELD_NAME), &hdr, &hdrlen);
    int rc = 0;
    if (st != DKIM_STAT_OK) {
        const char *why = dkim_geterror(d);
        rc = errbuf_fail(err, errlen, "%s", why && *why ? why : dkim_getresultstr(st));
    } else if (!(*value = strndup((const char *)hdr, hdrlen))) {
        rc = errbuf_fail(err, errlen, "out of memory");
    }
    dkim_free(d);
    return rc;
}

/* The key parsed and checked: the libopendkim algorithm for it (*pk set,
 * the caller frees it), or -1 with the reason in err. */
static int key_load(const unsigned char *key, size_t keylen, EVP_PKEY **pk, char *err, size_t errlen)
{
    *pk = key_parse(key, keylen, err, errlen);
    if (!*pk)
        return -1;
    switch (EVP_PKEY_get_base_id(*pk)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(*pk) >= RSA_MIN_BITS)
            return DKIM_SIGN_RSASHA256;
        errbuf_fail(err, errlen, "the RSA key has %d bits, at least %d are needed", EVP_PKEY_get_bits(*pk),
                    RSA_MIN_BITS);
        break;
    case EVP_PKEY_ED25519:
        /* libopendkim 2.11.0 signs with Ed25519, but its dkim_free() leaves
         * the key and buffers behind (fixed upstream by OpenDKIM PR #321,
         * not in Debian's package): about 1.3 KB lost per message. */
        errbuf_fail(err, errlen, "Ed25519 keys are not supported yet (libopendkim 2.11.0 leaks memory with them); "
                    "use an RSA key");
        break;
    default:
        errbuf_fail(err, errlen, "unsupported key type %s (RSA expected)", EVP_PKEY_get0_type_name(*pk));
        break;
    }
    EVP_PKEY_free(*pk);
    *pk = NULL;
    return -1;
}

int mail_dkim_key_check(const unsigned char *key, size_t keylen, char *err, size_t errlen)
{
    EVP_PKEY *pk;
    int alg = key_load(key, keylen, &pk, err, errlen);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return alg >= 0 ? 0 : -1;
}

int mail_dkim_sign(const struct mail_dkim_signer *s, const unsigned char *msg, size_t len, char **header,
                   char *err, size_t errlen)
{
    *header = NULL;
    if (!dns_name_ok(s->domain))
        return errbuf_fail(err, errlen, "bad signing domain \"%.100s\"", s->domain ? s->domain : "");
    if (!dns_name_ok(s->selector) || strlen(s->selector) > 63)
        return errbuf_fail(err, errlen, "bad selector \"%.100s\"", s->selector ? s->selector : "");
    pthread_once(&lib_once, lib_init);
    if (!lib)
        return errbuf_fail(err, errlen, "%s", lib_error);

    EVP_PKEY *pk;
    int alg = key_load(s->key, s->keylen, &pk, err, errlen);
    const char *pem = NULL;
    BIO *pembio = alg >= 0 ? key_pem(pk, &pem) : NULL;
    EVP_PKEY_free(pk);
    int rc = -1;
    char *value = NULL;
    if (alg >= 0 && !pembio)
        errbuf_fail(err, errlen, "cannot encode the key for libopendkim (out of memory)");
    else if (alg >= 0)
        rc = sign_with(pem, alg, s, msg, len, &value, err, errlen);
    BIO_free(pembio);
    /* Leave nothing in this thread's OpenSSL error queue: a TLS connection
     * served by the same thread would read it as its own error. */
    ERR_clear_error();
    if (rc != 0)
        return -1;

    size_t n = strlen(FIELD_NAME) + strlen(value) + 3;
    *header = malloc(n);
    if (!*header) {
        free(value);
        return errbuf_fail(err, errlen, "out of memory");
    }
    snprintf(*header, n, "%s%s\r\n", FIELD_NAME, value);
    free(value);
    return 0;
}

/* ---------------------------------------------------------------- reading our header */

static int is_fws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int mail_dkim_header_tag(const char *header, const char *tag, char *out, size_t outlen)
{
    const char *p = strchr(header, ':');
    size_t taglen = strlen(tag);
    if (!p || taglen == 0 || outlen == 0)
        return -1;
    p++;
    while (*p) {
        while (is_fws(*p))
            p++;
        const char *name = p;
        while (*p && *p != '=' && *p != ';' && !is_fws(*p))
            p++;
        size_t namelen = (size_t)(p - name);
        while (is_fws(*p))
            p++;
        if (*p != '=') { /* not tag=value: skip to the next one */
            while (*p && *p != ';')
                p++;
            if (*p)
                p++;
            continue;
        }
        p++;
        int want = namelen == taglen && memcmp(name, tag, taglen) == 0;
        size_t n = 0;
        for (; *p && *p != ';'; p++) {
            if (!want || is_fws(*p))
                continue;
            if (n + 1 >= outlen)
                return -1;
            out[n++] = *p;
        }
        if (want) {
            out[n] = '\0';
            return 0;
        }
        if (*p)
            p++;
    }
    return -1;
}
