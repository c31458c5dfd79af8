/*
 * sanitize.h — making mail HTML safe to show, and mail text safe to hand on.
 *
 * html_sanitize() parses an HTML body with libxml2's HTML parser (no network,
 * no entity loading) and writes a NEW document from the parse tree: only the
 * elements, attributes, URL schemes and CSS properties of an allow-list, every
 * text and attribute value escaped by us. Nothing of the input text is copied
 * through, so whatever the parser made of a hostile byte sequence, the browser
 * sees only markup we wrote. The webmail still shows the result in an
 * <iframe sandbox> under a strict Content-Security-Policy (defence in depth).
 *
 * html_to_text() renders HTML as plain text (a body that has only an HTML part,
 * the archive's search index). utf8_clean() makes any bytes valid UTF-8.
 *
 * Pure functions over buffers; thread-safe (libxml2 is initialised once).
 */
#ifndef LB_MAIL_SANITIZE_H
#define LB_MAIL_SANITIZE_H

#include <stddef.h>

/* The attribute that carries the address of a blocked remote image; the web
 * client moves it to src when the user asks to load images. */
#define SANITIZE_BLOCKED_SRC_ATTR "data-lb-src"

struct sanitize_opts {
    int load_remote_images; /* 1: keep http(s) image sources; 0: block them */
    /*
     * Optional: the URL to use for <img src="cid:CID"> (a browser cannot load
     * cid: URLs), e.g. the attachment download path. Returns a malloc'd URL
     * (freed by the sanitiser) or NULL to keep "cid:CID". cid is the decoded
     * value after "cid:" (percent-escapes undone, RFC 2392).
     */
    char *(*resolve_cid)(void *arg, const char *cid);
    void *resolve_arg;
};

struct sanitize_report {
    unsigned blocked_remote_images; /* http(s) images replaced by SANITIZE_BLOCKED_SRC_ATTR */
    unsigned removed_elements;      /* elements left out (with or without their content) */
    unsigned removed_attributes;    /* attributes left out (handlers, unknown, bad values) */
    unsigned removed_urls;          /* URL values refused (scheme not allowed, relative, ...) */
    unsigned removed_styles;        /* CSS declarations refused */
};

/*
 * Sanitises html (len bytes, UTF-8; invalid bytes are replaced) into a
 * well-formed HTML fragment: malloc'd, NUL-terminated, in *out and *outlen
 * (caller frees). o may be NULL (defaults: remote images blocked, cid: kept);
 * rep may be NULL. Returns 0, or -1 on out of memory or when libxml2 gives up
 * (then *out is NULL).
 */
int html_sanitize(const char *html, size_t len, const struct sanitize_opts *o, char **out, size_t *outlen,
                  struct sanitize_report *rep);

/*
 * Renders html as plain UTF-8 text: block elements on their own lines, list
 * items marked, whitespace collapsed as a browser does (kept inside <pre>), no
 * script/style/head content. malloc'd result in *out / *outlen. Returns 0 or -1.
 */
int html_to_text(const char *html, size_t len, char **out, size_t *outlen);

/*
 * Copies s (len bytes) as valid UTF-8: every invalid or overlong sequence,
 * surrogate, NUL, C0 control other than TAB/LF/CR, DEL and U+FFFE/U+FFFF
 * becomes U+FFFD. Returns a malloc'd NUL-terminated string (length in *outlen
 * when not NULL), or NULL on out of memory.
 */
char *utf8_clean(const char *s, size_t len, size_t *outlen);
/* utf8_clean, then every line end (CRLF or a lone CR) made a single LF: body text
 * for readers and for composing. Malloc'd, caller frees; NULL when out of memory. */
char *utf8_clean_lf(const char *s, size_t len);

/* 1 if s[0..len) is valid UTF-8 as utf8_clean() would leave it unchanged. */
int utf8_is_clean(const char *s, size_t len);

/* Initialises libxml2 once (thread-safe, idempotent). The functions above call it. */
void html_init(void);

#endif
