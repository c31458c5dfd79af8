/*
 * sasl.c — SASL PLAIN and LOGIN, server side, as a pure state machine (see
 * sasl.h). Base64 is libsodium's strict decoder; the decoded bytes go into
 * fixed buffers that are wiped when the exchange ends.
 */
#include "smtpd/sasl.h"

#include <string.h>

#include <sodium.h>

const char sasl_reply_plain_challenge[] = "334 ";
const char sasl_reply_login_user[] = "334 VXNlcm5hbWU6";     /* "Username:" */
const char sasl_reply_login_password[] = "334 UGFzc3dvcmQ6"; /* "Password:" */
const char sasl_reply_cancelled[] = "501 5.0.0 Authentication aborted";
const char sasl_reply_bad_base64[] = "501 5.5.2 Invalid base64 data";
const char sasl_reply_malformed[] = "501 5.5.2 Malformed authentication data";
const char sasl_reply_unknown_mech[] = "504 5.5.4 Unrecognized authentication type";
const char sasl_reply_invalid[] = "535 5.7.8 Authentication credentials invalid";

/* The largest decoded response: the longest PLAIN message, with room to
 * notice that a field is too long rather than truncate it. */
#define DECODED_MAX (SASL_LINE_MAX / 4 * 3)

static int ascii_upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static int ascii_caseeq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (ascii_upper((unsigned char)a[i]) != ascii_upper((unsigned char)b[i]))
            return 0;
    return 1;
}

enum sasl_mech sasl_mech_parse(const char *name)
{
    size_t n = strlen(name);
    if (ascii_caseeq(name, n, "PLAIN", 5))
        return SASL_MECH_PLAIN;
    if (ascii_caseeq(name, n, "LOGIN", 5))
        return SASL_MECH_LOGIN;
    return SASL_MECH_NONE;
}

const char *sasl_mech_name(enum sasl_mech mech)
{
    switch (mech) {
    case SASL_MECH_PLAIN:
        return "PLAIN";
    case SASL_MECH_LOGIN:
        return "LOGIN";
    default:
        return "NONE";
    }
}

int sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t outcap, size_t *outlen)
{
    *outlen = 0;
    if (len == 1 && in[0] == '=')
        return 0;
    if (len % 4 != 0)
        return -1;
    if (len == 0)
        return 0;
    const char *end = NULL;
    /* No characters to ignore: a space or line break inside is an error. */
    if (sodium_base642bin(out, outcap, in, len, NULL, outlen, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != in + len) {
        sodium_memzero(out, outcap);
        *outlen = 0;
        return -1;
    }
    return 0;
}

/* A login name goes into logs and store keys: printable text only. */
static int authcid_ok(const unsigned char *p, size_t n)
{
    if (n == 0 || n > SASL_AUTHCID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 32 || p[i] == 127)
            return 0;
    return 1;
}

static int password_ok(const unsigned char *p, size_t n)
{
    return n > 0 && n <= SASL_PASSWORD_MAX && !memchr(p, '\0', n);
}

enum sasl_plain_result sasl_plain_split(const unsigned char *msg, size_t len, struct sasl *x)
{
    /* message = [authzid] UTF8NUL authcid UTF8NUL passwd (RFC 4616 2) */
    const unsigned char *nul1 = memchr(msg, '\0', len);
    if (!nul1)
        return SASL_PLAIN_MALFORMED;
    const unsigned char *authcid = nul1 + 1;
    const unsigned char *nul2 = memchr(authcid, '\0', len - (size_t)(authcid - msg));
    if (!nul2)
        return SASL_PLAIN_MALFORMED;
    const unsigned char *passwd = nul2 + 1;
    size_t zlen = (size_t)(nul1 - msg), clen = (size_t)(nul2 - authcid);
    size_t plen = len - (size_t)(passwd - msg);
    if (!authcid_ok(authcid, clen) || !password_ok(passwd, plen))
        return SASL_PLAIN_MALFORMED;
    if (zlen && !ascii_caseeq((const char *)msg, zlen, (const char *)authcid, clen))
        return SASL_PLAIN_AUTHZID;
    memcpy(x->authcid, authcid, clen);
    x->authcid[clen] = '\0';
    memcpy(x->password, passwd, plen);
    x->password[plen] = '\0';
    return SASL_PLAIN_OK;
}

static enum sasl_status fail(struct sasl *x, const char *why, const char **reply)
{
    sasl_clear(x);
    *reply = why;
    return SASL_FAILED;
}

/* One decoded response of the current mechanism and step. */
static enum sasl_status take(struct sasl *x, const unsigned char *msg, size_t len, const char **reply)
{
    if (x->mech == SASL_MECH_PLAIN) {
        switch (sasl_plain_split(msg, len, x)) {
        case SASL_PLAIN_OK:
            *reply = NULL;
            return SASL_DONE;
        case SASL_PLAIN_AUTHZID:
            return fail(x, sasl_reply_invalid, reply);
        default:
            return fail(x, sasl_reply_malformed, reply);
        }
    }
    if (x->step == 0) {
        if (!authcid_ok(msg, len))
            return fail(x, sasl_reply_malformed, reply);
        memcpy(x->authcid, msg, len);
        x->authcid[len] = '\0';
        x->step = 1;
        *reply = sasl_reply_login_password;
        return SASL_CONTINUE;
    }
    if (!password_ok(msg, len))
        return fail(x, sasl_reply_malformed, reply);
    memcpy(x->password, msg, len);
    x->password[len] = '\0';
    *reply = NULL;
    return SASL_DONE;
}

static enum sasl_status take_b64(struct sasl *x, const char *b64, size_t len, const char **reply)
{
    unsigned char buf[DECODED_MAX];
    size_t n;
    if (len > SASL_LINE_MAX || sasl_b64_decode(b64, len, buf, sizeof buf, &n) != 0)
        return fail(x, sasl_reply_bad_base64, reply);
    enum sasl_status st = take(x, buf, n, reply);
    sodium_memzero(buf, sizeof buf);
    return st;
}

enum sasl_status sasl_start(struct sasl *x, const char *mech, const char *initial, size_t initial_len,
                            const char **reply)
{
    memset(x, 0, sizeof *x);
    x->mech = sasl_mech_parse(mech);
    if (x->mech == SASL_MECH_NONE)
        return fail(x, sasl_reply_unknown_mech, reply);
    if (initial)
        return take_b64(x, initial, initial_len, reply);
    *reply = x->mech == SASL_MECH_PLAIN ? sasl_reply_plain_challenge : sasl_reply_login_user;
    return SASL_CONTINUE;
}

enum sasl_status sasl_step(struct sasl *x, const char *line, size_t len, const char **reply)
{
    if (x->mech == SASL_MECH_NONE)
        return fail(x, sasl_reply_malformed, reply);
    if (len == 1 && line[0] == '*')
        return fail(x, sasl_reply_cancelled, reply);
    return take_b64(x, line, len, reply);
}

void sasl_clear(struct sasl *x)
{
    sodium_memzero(x, sizeof *x);
}
