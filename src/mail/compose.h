/*
 * compose.h — building the MIME message a webmail user sends.
 *
 * compose_build() turns the fields of POST /api/v1/send into a complete
 * RFC 5322 message built with GMime: From (one mailbox), To, Cc, Subject
 * (RFC 2047-encoded when not ASCII), Date, a new Message-ID at the sender's
 * domain, In-Reply-To and References for replies, a text/plain body (with an
 * optional text/html alternative) and base64 attachments whose file names are
 * RFC 2231-encoded. Bcc recipients are only returned as envelope recipients,
 * never written into the message. The bytes have CRLF line ends, ready for
 * the queue (and for DKIM signing by the caller).
 *
 * The caller decides what the user may do (that from_addr is one of the
 * user's addresses, size limits); compose refuses only what cannot make a
 * valid message. Pure over buffers; thread-safe.
 */
#ifndef LB_MAIL_COMPOSE_H
#define LB_MAIL_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

/* To + Cc + Bcc at most. */
#define COMPOSE_RCPTS_MAX 1000
/* References keeps the first and the last IDs up to this many (RFC 5322 3.6.4 allows trimming). */
#define COMPOSE_REFERENCES_MAX 20

struct compose_attachment {
    const char *filename;     /* UTF-8; NULL or "": "attachment" */
    const char *content_type; /* "type/subtype"; NULL or not that form: application/octet-stream */
    const unsigned char *data;
    size_t len;
};

struct compose_msg {
    const char *from_addr;      /* required: local@domain */
    const char *from_name;      /* display name, or NULL */
    const char *const *to;      /* each "addr" or "Name <addr>" (one mailbox per entry) */
    size_t nto;
    const char *const *cc;
    size_t ncc;
    const char *const *bcc;     /* envelope only */
    size_t nbcc;
    const char *subject;        /* UTF-8, or NULL */
    const char *text;           /* the text/plain body (UTF-8), or NULL for "" */
    const char *html;           /* optional text/html alternative, or NULL */
    const struct compose_attachment *attachments;
    size_t nattachments;
    const char *in_reply_to;    /* the parent's Message-ID (with or without <>), or NULL */
    const char *references;     /* the References to write ("<a> <b>"), or NULL: <in_reply_to> alone */
    int64_t date;               /* time(); 0: now */
    const char *message_id_domain; /* right-hand side of the new Message-ID; NULL: from_addr's domain */
};

struct compose_result {
    unsigned char *data; /* the message, CRLF line ends */
    size_t len;
    char *message_id;    /* without angle brackets */
    char **rcpts;        /* envelope recipients: every To, Cc and Bcc address once, in that order */
    size_t nrcpts;
};

/*
 * Builds the message. Returns 0 and fills *r (free with compose_result_free()),
 * or -1 with a short reason in *error (static text, fit for an API error
 * message): a bad or missing From, no recipients, a bad address, too many
 * recipients, a bad In-Reply-To, out of memory.
 */
int compose_build(const struct compose_msg *m, struct compose_result *r, const char **error);

void compose_result_free(struct compose_result *r);

/*
 * "Re: subject" for a reply (prefix "Re") or "Fwd: subject" for a forward
 * (prefix "Fwd"), unless the subject already starts that way (also "RE:",
 * "Fw:", after white space). malloc'd; NULL on out of memory.
 */
char *compose_reply_subject(const char *subject, const char *prefix);

/*
 * The References of a reply (RFC 5322 3.6.4): the parent's References (or,
 * without them, its single In-Reply-To) followed by the parent's Message-ID,
 * trimmed to COMPOSE_REFERENCES_MAX IDs by dropping the second-oldest ones.
 * Arguments in the forms of struct message_view (IDs with or without <>; any
 * may be NULL or ""). malloc'd "<a> <b> ..." ("" when there are none); NULL on
 * out of memory.
 */
char *compose_references(const char *parent_references, const char *parent_in_reply_to,
                         const char *parent_message_id);

#endif
