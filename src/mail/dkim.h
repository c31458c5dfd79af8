/*
 * dkim.h — DKIM signatures (RFC 6376) for the mail users send, made with
 * libopendkim.
 *
 * The webmail and the submission port sign a message with the key of its
 * From domain before it is queued (directory_dkim_sign in directory.h reads
 * the domain's key file and calls this). Here is only the signing itself, a
 * pure function over buffers: the private key's bytes and the message in,
 * one folded "DKIM-Signature: ...\r\n" header out, to be put in front of the
 * message unchanged.
 *
 * The signature: rsa-sha256 with an RSA key of at least 1024 bits (RFC 8301),
 * relaxed/relaxed canonicalisation, the whole body (no l=). Ed25519 keys
 * (RFC 8463) are refused for now: the libopendkim we build with leaks memory
 * with every Ed25519 signature (see dkim.c). Signed header fields: From,
 * Sender, Reply-To, To, Cc, Subject, Date, Message-ID, In-Reply-To,
 * References, MIME-Version, Content-Type, Content-Transfer-Encoding, those
 * the message has; From is signed once more than it occurs ("over-signed"),
 * so a second From added on the way breaks the signature.
 *
 * Thread-safe: one libopendkim library handle per process, made on first use.
 */
#ifndef LB_MAIL_DKIM_H
#define LB_MAIL_DKIM_H

#include <stddef.h>

/* Upper bound of a key file we read (a 16384-bit RSA PEM key is ~13 KB). */
#define MAIL_DKIM_KEY_MAX (64 * 1024)

struct mail_dkim_signer {
    const char *domain;       /* d=, e.g. "acme.test" */
    const char *selector;     /* s=, e.g. "mail2026" (one or more DNS labels) */
    const unsigned char *key; /* the RSA private key: PEM (PKCS#1 or PKCS#8) or */
    size_t keylen;            /* DER, without a passphrase */
};

/*
 * Signs msg (a complete message, CRLF line ends, with a From header).
 * Returns 0 with *header malloc'd ("DKIM-Signature: v=1; a=...\r\n",
 * folded into lines of at most 78 characters), or -1 with a one-line reason
 * in err (not a private key, not an RSA key, RSA key too small, message
 * without From, out of memory). Never puts key material into err.
 */
int mail_dkim_sign(const struct mail_dkim_signer *s, const unsigned char *msg, size_t len, char **header,
                   char *err, size_t errlen);

/*
 * Checks a key as mail_dkim_sign would use it (a private RSA key of at
 * least 1024 bits, no passphrase): 0, or -1 with the reason in err. For
 * `domain set --dkim-key`, so a wrong file is refused there rather than at
 * the first message. Pure.
 */
int mail_dkim_key_check(const unsigned char *key, size_t keylen, char *err, size_t errlen);

/*
 * The value of tag (e.g. "s", "d", "a") in a DKIM-Signature header as
 * mail_dkim_sign makes it, white space removed, for log lines such as
 * "QUEUEID: dkim=signed d=acme.test s=mail2026". 0, or -1 when the tag is
 * missing or its value does not fit in out. Pure.
 */
int mail_dkim_header_tag(const char *header, const char *tag, char *out, size_t outlen);

#endif
