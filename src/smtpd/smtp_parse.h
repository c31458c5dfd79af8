/*
 * smtp_parse.h — the SMTP command parser (RFC 5321 section 4.1, with the ESMTP
 * parameters of RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461
 * DSN, RFC 3030 CHUNKING and RFC 4954 AUTH).
 *
 * A pure function over one command line (without its CRLF): no sockets, no
 * allocation, no session state beyond the flags passed in. The session feeds it
 * every line it reads; the unit tests and the fuzz target call it directly.
 *
 * On failure the parser says exactly which reply the client gets, so the reply
 * codes of every syntax error live in one place (smtp_parse.c):
 *   500 5.5.2  the line is not a command (empty, control bytes, too long)
 *   500 5.5.1  unknown command
 *   501 5.5.4  a known command with bad or missing arguments
 *   504 5.5.4  a known parameter with a value we do not implement (BODY=BINARYMIME)
 *   555 5.5.4  an unknown MAIL/RCPT parameter
 *   553 5.1.7  bad sender address, 553 5.1.3 bad recipient address
 *   553 5.6.7  a non-ASCII address without SMTPUTF8
 */
#ifndef LB_SMTPD_SMTP_PARSE_H
#define LB_SMTPD_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

/* The longest command line RFC 5321 4.5.3.1.4 allows, CRLF included. */
#define SMTP_CMD_LINE_MAX 512
/* MAIL and RCPT lines may be longer by the parameters they carry (RFC 1869
 * 4.1.2, RFC 3461 5): we allow this many octets, CRLF included. */
#define SMTP_PARAM_LINE_MAX 1024
/* AUTH may carry a SASL initial response (RFC 4954 4 allows 12288 octets);
 * the submission port takes lines up to this long (smtpd/sasl.h). */
#define SMTP_AUTH_LINE_MAX 4128

#define SMTP_DOMAIN_MAX 255
#define SMTP_AUTH_MECH_MAX 20   /* RFC 4422 3.1: 1 to 20 characters */
#define SMTP_ENVID_MAX 100      /* RFC 3461 4.4 */

enum smtp_verb {
    SMTP_VERB_NONE = 0, /* not parsed (error) */
    SMTP_HELO,
    SMTP_EHLO,
    SMTP_MAIL,
    SMTP_RCPT,
    SMTP_DATA,
    SMTP_BDAT,
    SMTP_RSET,
    SMTP_NOOP,
    SMTP_QUIT,
    SMTP_VRFY,
    SMTP_EXPN,
    SMTP_HELP,
    SMTP_STARTTLS,
    SMTP_AUTH,
};

enum smtp_body { SMTP_BODY_UNSPEC = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

/* Flags for smtp_parse_command. */
#define SMTP_PARSE_UTF8 0x1 /* the transaction said SMTPUTF8: allow UTF-8 in RCPT addresses */

struct smtp_cmd {
    enum smtp_verb verb;

    /* HELO/EHLO: the client's name or address literal, as sent. */
    char domain[SMTP_DOMAIN_MAX + 1];

    /* MAIL/RCPT: the mailbox with any source route stripped; "" for the null
     * sender <>. Local-part case and quoting are kept as the client sent them. */
    char path[ADDR_MAX + 1];

    /* MAIL parameters. */
    int has_size;
    uint64_t size;         /* SIZE=, saturated at UINT64_MAX */
    enum smtp_body body;   /* BODY= */
    int smtputf8;          /* SMTPUTF8 */
    int ret;               /* RET=: 0 none, 1 FULL, 2 HDRS (accepted, not acted on) */
    int has_envid;         /* ENVID= (accepted, not acted on) */

    /* RCPT parameters, accepted and validated; delivery status notifications
     * beyond failures are not offered, so they are not acted on. */
    int has_notify;
    int has_orcpt;

    /* BDAT */
    uint64_t chunk_size;
    int last;

    /* AUTH: mechanism (upper-cased) and the optional initial response, which
     * points into the parsed line (NULL when absent). */
    char auth_mech[SMTP_AUTH_MECH_MAX + 1];
    const char *auth_initial;

    /* VRFY/EXPN/HELP/NOOP argument: points into the parsed line, or NULL. */
    const char *arg;

    /* On error: the complete reply line to send, without CRLF. Static text. */
    const char *reply;
};

enum smtp_parse_result { SMTP_PARSE_OK = 0, SMTP_PARSE_ERROR = -1 };

/*
 * Parses one command line of len bytes (the CRLF or LF already removed; the
 * line need not be NUL-terminated, but auth_initial and arg point into it, so
 * they are only NUL-terminated if the line is). flags: SMTP_PARSE_*.
 * Returns SMTP_PARSE_OK with *cmd filled, or SMTP_PARSE_ERROR with cmd->reply set
 * (cmd->verb says which command it was when the verb itself was recognised).
 */
int smtp_parse_command(const char *line, size_t len, unsigned flags, struct smtp_cmd *cmd);

/* The reply for a line longer than the session buffers (SMTP_PARAM_LINE_MAX). */
extern const char smtp_reply_line_too_long[];

/* The verb's name ("MAIL"), for logs. */
const char *smtp_verb_name(enum smtp_verb verb);

#endif
