/*
 * sasl.h — the server side of the two SASL mechanisms the submission port
 * offers, as SMTP AUTH carries them (RFC 4954): PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login: "Username:" and "Password:" challenges).
 *
 * A pure state machine over the client's lines: no sockets, no store, no
 * allocation. The session feeds it the AUTH command's mechanism and initial
 * response, then each continuation line, and sends the reply it is told to;
 * once the exchange is DONE it checks authcid and password itself (directory
 * rules, argon2id on a worker thread). Unit tests and the fuzz target drive it
 * directly.
 *
 * Only an empty authorization identity, or one equal to the authentication
 * identity, is accepted: nobody may act for another user.
 */
#ifndef LB_SMTPD_SASL_H
#define LB_SMTPD_SASL_H

#include <stddef.h>

#include "util/addr.h"

/* The longest login name and password taken (the webmail takes the same:
 * longer ones are refused before any hashing). */
#define SASL_AUTHCID_MAX ADDR_MAX
#define SASL_PASSWORD_MAX 1024
/* A base64 response line long enough for the longest PLAIN message
 * (authzid + authcid + password + 2 NULs), and the AUTH command carrying it
 * as its initial response. RFC 4954 4 allows up to 12288 octets; no real
 * credentials come near this. */
#define SASL_LINE_MAX 4096

enum sasl_mech { SASL_MECH_NONE = 0, SASL_MECH_PLAIN, SASL_MECH_LOGIN };

enum sasl_status {
    SASL_CONTINUE, /* send *reply (a 334 challenge) and feed the next line to sasl_step */
    SASL_DONE,     /* authcid and password are filled in: check them */
    SASL_FAILED,   /* send *reply; the exchange is over, nothing was checked */
};

struct sasl {
    enum sasl_mech mech;
    int step; /* LOGIN: 0 expects the user name, 1 the password */
    char authcid[SASL_AUTHCID_MAX + 1];
    char password[SASL_PASSWORD_MAX + 1];
};

/* The replies (without CRLF), for callers and tests. */
extern const char sasl_reply_plain_challenge[];    /* "334 " */
extern const char sasl_reply_login_user[];         /* "334 VXNlcm5hbWU6" */
extern const char sasl_reply_login_password[];     /* "334 UGFzc3dvcmQ6" */
extern const char sasl_reply_cancelled[];          /* 501 5.0.0 */
extern const char sasl_reply_bad_base64[];         /* 501 5.5.2 */
extern const char sasl_reply_malformed[];          /* 501 5.5.2 */
extern const char sasl_reply_unknown_mech[];       /* 504 5.5.4 */
extern const char sasl_reply_invalid[];            /* 535 5.7.8 */

/* "PLAIN" / "LOGIN" (case-insensitive) or SASL_MECH_NONE; and back. */
enum sasl_mech sasl_mech_parse(const char *name);
const char *sasl_mech_name(enum sasl_mech mech);

/*
 * Begins an exchange for the AUTH command: mech as the client named it,
 * initial the initial response (NULL when there is none, "=" for an empty
 * one) of initial_len bytes. *reply is static text.
 */
enum sasl_status sasl_start(struct sasl *x, const char *mech, const char *initial, size_t initial_len,
                            const char **reply);

/* One continuation line from the client (CRLF removed): base64, or "*" to cancel. */
enum sasl_status sasl_step(struct sasl *x, const char *line, size_t len, const char **reply);

/* Wipes the password (and the rest) from memory. */
void sasl_clear(struct sasl *x);

/* ---- the building blocks, for the tests and the fuzz target */

/* Strict base64 (RFC 4648 alphabet, padding required, nothing else allowed)
 * into out. 0 with *outlen, or -1 (bad input, or more than outcap bytes). "="
 * alone is the empty string (RFC 4954's empty initial response). */
int sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t outcap, size_t *outlen);

enum sasl_plain_result {
    SASL_PLAIN_OK = 0,
    SASL_PLAIN_MALFORMED, /* not authzid NUL authcid NUL password, an empty or too long field,
                             a control character in authcid */
    SASL_PLAIN_AUTHZID,   /* asks to act as someone else */
};

/* Splits a decoded PLAIN message into x->authcid and x->password. */
enum sasl_plain_result sasl_plain_split(const unsigned char *msg, size_t len, struct sasl *x);

#endif
