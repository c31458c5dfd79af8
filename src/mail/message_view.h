/*
 * message_view.h — a stored message as the webmail shows it.
 *
 * message_view_parse() reads a raw RFC 5322 message with GMime and returns
 * what a reader needs: the header fields decoded to UTF-8 (RFC 2047, raw
 * 8-bit headers through fallback charsets), the best text/plain body converted
 * to UTF-8 (a text rendering of the HTML when there is none), the best
 * text/html body converted and sanitised (sanitize.h), and the list of
 * attachments with their decoded sizes. Every string in the result is valid
 * UTF-8 without NUL, CR or other control characters but TAB and LF (header
 * fields: not even those), whatever the input was: broken MIME, unknown
 * charsets, huge headers and deep nesting give a best-effort view, not an
 * error.
 *
 * Pure over a buffer (no store, no sockets); thread-safe once mail_init() ran
 * (every function here calls it).
 */
#ifndef LB_MAIL_MESSAGE_VIEW_H
#define LB_MAIL_MESSAGE_VIEW_H

#include <stddef.h>
#include <stdint.h>

/* MIME nesting deeper than this (multiparts and attached messages) is not
 * looked into. */
#define MESSAGE_VIEW_DEPTH_MAX 32
/* At most this many attachments are listed; the rest are left out. */
#define MESSAGE_VIEW_ATTACHMENTS_MAX 1000
/* A decoded header field is cut (at a character boundary) beyond this. */
#define MESSAGE_VIEW_HEADER_MAX (64 * 1024)

struct mail_attachment {
    unsigned n;           /* its index in message_view.attachments (and in URLs) */
    char *filename;       /* decoded (RFC 2231/2047), without path or control characters; NULL: none */
    char *content_type;   /* "type/subtype", lower case */
    char *content_id;     /* without the angle brackets; NULL: none */
    size_t size;          /* bytes after the transfer encoding is undone */
    int is_inline;        /* Content-Disposition: inline, or a related part (cid: image) */
    int is_message;       /* an attached message (message/rfc822): its bytes are that message */
};

struct message_view_priv;

struct message_view {
    /* Header fields, decoded; "" when absent. */
    char *from;          /* as "Name <addr>, ..." */
    char *from_addr;     /* the first From address alone (lower case not forced), or "" */
    char *to;
    char *cc;
    char *reply_to;
    char *subject;
    char *date;          /* the Date header as written */
    int64_t date_unix;   /* parsed, 0 when unparseable or absent */
    char *message_id;    /* without the angle brackets */
    char *in_reply_to;   /* the first message ID of In-Reply-To, without angle brackets */
    char *references;    /* "<id1> <id2> ...", as for a References header */

    char *text;          /* text body, UTF-8, LF line ends; "" when there is none */
    char *html;          /* sanitised HTML body; NULL when the message has none */
    unsigned blocked_remote_images; /* remote images the sanitiser replaced */

    struct mail_attachment *attachments;
    size_t nattachments;

    int truncated;       /* something was left out: nesting or attachment limits */

    struct message_view_priv *priv; /* the parsed message, for message_view_attachment() */
};

struct message_view_opts {
    int load_remote_images; /* let the sanitiser keep http(s) images */
    /*
     * When set, <img src="cid:X"> whose X is the Content-ID of attachment N
     * becomes cid_url_prefix followed by N (e.g. "/api/v1/messages/42/attachments/").
     * NULL: cid: URLs are left as they are.
     */
    const char *cid_url_prefix;
};

/* Initialises GMime and libxml2 once (thread-safe, idempotent). */
void mail_init(void);
/* Releases what mail_init() set up, for leak checkers at exit; call at most
 * once, after every other use of src/mail. */
void mail_shutdown(void);

/*
 * Parses raw[0..len) (o may be NULL). Returns 0 with a new view in *out (free
 * with message_view_free()), or -1 only when out of memory.
 */
int message_view_parse(const unsigned char *raw, size_t len, const struct message_view_opts *o,
                       struct message_view **out);

void message_view_free(struct message_view *v);

/*
 * Decoded bytes of attachment n of a parsed view: malloc'd in *out / *outlen
 * (caller frees; a valid pointer even for 0 bytes). Returns 0, or -1 when n
 * is out of range or out of memory.
 */
int message_view_attachment(const struct message_view *v, size_t n, unsigned char **out, size_t *outlen);

/* The same, straight from the raw message (parses it). */
int message_attachment_extract(const unsigned char *raw, size_t len, size_t n, unsigned char **out,
                               size_t *outlen, struct mail_attachment *info);

/* Frees the strings of an attachment record filled by message_attachment_extract(). */
void mail_attachment_clear(struct mail_attachment *a);

#endif
