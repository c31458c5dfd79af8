/*
 * tls.c — the server side of STARTTLS: one SSL_CTX per loaded certificate.
 *
 * Port 25 TLS is opportunistic, but nothing older than TLS 1.2 is offered: a
 * sender that cannot do better still has plaintext. Each session's SSL holds
 * its own reference to the context, so a reload can swap the context while
 * older sessions keep theirs.
 */
#include "smtpd/smtpd_int.h"

#include <stdio.h>

#include <openssl/err.h>

static void ssl_error(char *err, size_t errlen, const char *what, const char *file)
{
    char reason[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    snprintf(err, errlen, "%s %s: %s", what, file, reason);
}

SSL_CTX *smtpd_tls_context(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    const char *key = key_file && *key_file ? key_file : cert_file; /* one PEM with both */
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_error(err, errlen, "cannot create a TLS context for", cert_file);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Thousands of idle sessions should not each keep 34 KB of TLS buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char sid_ctx[] = "lifeboat-smtpd";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        ssl_error(err, errlen, "cannot load the certificate", cert_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ssl_error(err, errlen, "cannot load the private key", key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_error(err, errlen, "the private key does not match the certificate", cert_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void smtpd_tls_describe(SSL *ssl, char *out, size_t outlen)
{
    const char *cipher = SSL_get_cipher_name(ssl);
    snprintf(out, outlen, "%s with cipher %s", SSL_get_version(ssl), cipher ? cipher : "unknown");
}
