/*
 * smtp_reply.h — parsing SMTP server replies (RFC 5321 4.2), for the delivery
 * client.
 *
 * A pure function over a buffer: the client keeps what the server sent in its
 * input buffer and asks whether one complete reply sits at its start. Multi-line
 * replies ("250-a", "250-b", "250 c") come back as one reply whose text holds the
 * lines separated by '\n'. An RFC 3463 enhanced status code at the start of the
 * first line ("550 5.1.1 ...") is picked out into dsn.
 *
 * The server is not trusted: lines with no three-digit code, codes that change
 * within a reply, and replies that never end within SMTP_REPLY_MAX bytes are
 * errors (the session cannot be resynchronised and is closed). Control
 * characters in the text are replaced by '?' so the text is safe to log, store
 * and put into a DSN.
 */
#ifndef LB_DELIVER_SMTP_REPLY_H
#define LB_DELIVER_SMTP_REPLY_H

#include <stddef.h>

/* Longest reply accepted, all lines with their CRLFs (RFC 5321 allows 512 per line;
 * EHLO replies with many extensions are a few KB). */
#define SMTP_REPLY_MAX 65536
/* Text kept of one reply; longer texts are cut (the code and dsn are always kept). */
#define SMTP_REPLY_TEXT_MAX 4096

enum smtp_reply_status {
    SMTP_REPLY_ERROR = -1,     /* not SMTP: the conversation is out of sync */
    SMTP_REPLY_INCOMPLETE = 0, /* need more bytes */
    SMTP_REPLY_DONE = 1,       /* *reply filled, *consumed bytes used */
};

struct smtp_reply {
    int code;        /* 200..599 */
    char dsn[16];    /* "5.1.1", or "" when the reply carries no enhanced code */
    size_t nlines;
    char text[SMTP_REPLY_TEXT_MAX]; /* each line's text after "NNN-"/"NNN ", '\n' between lines */
};

/* Looks for one complete reply at the start of buf[0..len). */
enum smtp_reply_status smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *reply,
                                        size_t *consumed);

/* The reply on one line, as logged and stored: "550 5.1.1 text of line 1 line 2".
 * Cut to fit outlen (always NUL-terminated). */
void smtp_reply_format(const struct smtp_reply *reply, char *out, size_t outlen);

/* The RFC 3463 status for the reply: its enhanced code when it has one of the
 * right class, else the generic "2.0.0", "4.0.0" or "5.0.0". */
const char *smtp_reply_dsn(const struct smtp_reply *reply, char out[16]);

/* 1 if s starts with a well-formed enhanced status code of class cls ('2', '4' or
 * '5') followed by a space or the end; *len gets its length. */
int smtp_enhanced_code(const char *s, size_t n, char cls, size_t *len);

#endif
