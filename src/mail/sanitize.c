/*
 * sanitize.c — see sanitize.h. The HTML sanitiser rebuilds a document from
 * libxml2's parse tree through allow-lists; html_to_text() walks the same tree.
 *
 * Why rebuild and not filter: a filter has to agree with every browser on how
 * a byte sequence parses (the source of mutation XSS). Here the output holds
 * only element and attribute names from our tables, text and values escaped by
 * us, no comments, no raw-text elements (script, style, textarea, ...) and no
 * foreign content (svg, math), so a browser's parse of it has nothing left to
 * disagree about. URLs and CSS are judged on the decoded value libxml2 gives
 * us, which is exactly the value the browser will see after our escaping.
 */
#include "mail/sanitize.h"

#include <ctype.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Elements nested deeper than this are unwrapped (their text is kept).
 * libxml2 itself stops nesting at 256 without HTML_PARSE_HUGE. */
#define TREE_DEPTH_MAX 200
/* Attribute values (other than style) longer than this are dropped. */
#define ATTR_VALUE_MAX 4096
#define URL_MAX 8192
#define STYLE_MAX 8192
#define CSS_VALUE_MAX 1024

/* ---- UTF-8 ---------------------------------------------------------------- */

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Length (1..4) of the well-formed UTF-8 sequence at s with its code point in
 * *cp, or 0 when the bytes there are not one (RFC 3629 table 3-7). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    uint32_t v = c & (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
    v = (v << 6) | (s[1] & 0x3F);
    for (size_t i = 2; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return need;
}

/* Code points we never pass on: what XML/HTML calls not a character. */
static int cp_unwanted(uint32_t cp)
{
    return (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7F || cp == 0xFFFE || cp == 0xFFFF;
}

/* Next character of s[0..n): its byte length (at least 1) and whether it is
 * kept as is (1) or becomes U+FFFD (0). */
static size_t utf8_next(const unsigned char *s, size_t n, int *ok)
{
    uint32_t cp;
    size_t k = utf8_decode(s, n, &cp);
    if (k == 0) {
        *ok = 0;
        return 1;
    }
    *ok = !cp_unwanted(cp);
    return k;
}

int utf8_is_clean(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        int ok;
        i += utf8_next(p + i, len - i, &ok);
        if (!ok)
            return 0;
    }
    return 1;
}

char *utf8_clean(const char *s, size_t len, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t i = 0; i < len;) {
        int ok;
        i += utf8_next(p + i, len - i, &ok);
        bad += !ok;
    }
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(len + 2 * bad + 1); /* each bad byte (1) becomes 3 */
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        int ok;
        size_t k = utf8_next(p + i, len - i, &ok);
        if (ok) {
            memcpy(out + o, p + i, k);
            o += k;
        } else {
            memcpy(out + o, REPLACEMENT, 3);
            o += 3;
        }
        i += k;
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

/* ---- output buffer -------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

/* Hands the buffer over (an empty string if nothing was written). */
static int buf_finish(struct buf *b, char **out, size_t *outlen)
{
    if (!b->oom && !b->p)
        buf_add(b, "", 0);
    if (b->oom) {
        free(b->p);
        *out = NULL;
        return -1;
    }
    *out = b->p;
    if (outlen)
        *outlen = b->len;
    return 0;
}

/* Appends s escaped for HTML text (attr=0) or a double-quoted attribute value
 * (attr=1); bytes that are not clean UTF-8 become U+FFFD. */
static void buf_add_escaped(struct buf *b, const char *s, int attr)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), run = 0;
    for (size_t i = 0; i < n;) {
        int ok;
        size_t k = utf8_next(p + i, n - i, &ok);
        const char *rep = NULL;
        if (!ok)
            rep = REPLACEMENT;
        else if (p[i] == '&')
            rep = "&amp;";
        else if (p[i] == '<')
            rep = "&lt;";
        else if (p[i] == '>')
            rep = "&gt;";
        else if (attr && p[i] == '"')
            rep = "&quot;";
        else if (attr && p[i] == '\'')
            rep = "&#39;";
        else if (p[i] == '\r') /* only from a character reference; kept, but not as a raw CR */
            rep = "&#13;";
        if (rep) {
            buf_add(b, (const char *)p + i - run, run);
            buf_adds(b, rep);
            run = 0;
        } else
            run += k;
        i += k;
    }
    buf_add(b, (const char *)p + n - run, run);
}

/* ---- parsing and walking -------------------------------------------------- */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_start(void)
{
    xmlInitParser();
}

void html_init(void)
{
    pthread_once(&xml_once, xml_start);
}

/*
 * Parses UTF-8 HTML (made clean first, so libxml2 never falls back to guessing
 * another encoding) as the content of a <body>: without an open element
 * libxml2 wraps leading text in an implied <p>, which would make the
 * sanitiser's output parse differently from its input. NULL on failure.
 */
static htmlDocPtr html_parse(const char *html, size_t len)
{
    static const char PREFIX[] = "<body>";
    html_init();
    size_t clen;
    char *clean = utf8_clean(html ? html : "", html ? len : 0, &clen);
    if (!clean)
        return NULL;
    const char *text = clean;
    if (clen >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) { /* a byte order mark */
        text += 3;
        clen -= 3;
    }
    htmlDocPtr doc = NULL;
    char *input = clen <= INT_MAX - sizeof PREFIX ? malloc(sizeof PREFIX + clen) : NULL;
    if (input) {
        memcpy(input, PREFIX, sizeof PREFIX - 1);
        memcpy(input + sizeof PREFIX - 1, text, clen + 1);
        doc = htmlReadMemory(input, (int)(sizeof PREFIX - 1 + clen), NULL, "UTF-8",
                             HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                                 HTML_PARSE_IGNORE_ENC | HTML_PARSE_COMPACT);
        free(input);
    }
    free(clean);
    return doc;
}

/*
 * Depth-first walk without recursion (trees can be deep). enter() says
 * whether to go into the node's children; leave() runs for every node after
 * its children (at once when they were skipped). What enter() decided for a
 * node is kept in node->_private: the document is ours alone.
 */
struct walker {
    int (*enter)(void *ctx, xmlNodePtr n, int depth);
    void (*leave)(void *ctx, xmlNodePtr n, int depth);
    void *ctx;
};

static void walk(const struct walker *w, xmlNodePtr top)
{
    xmlNodePtr n = top ? top->children : NULL;
    int depth = 0;
    while (n) {
        if (w->enter(w->ctx, n, depth) && n->children) {
            n = n->children;
            depth++;
            continue;
        }
        w->leave(w->ctx, n, depth);
        while (!n->next) {
            n = n->parent;
            depth--;
            if (!n || n == top)
                return;
            w->leave(w->ctx, n, depth);
        }
        n = n->next;
    }
}

static int name_in(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (!strcasecmp(name, *list))
            return 1;
    return 0;
}

/* Elements dropped together with everything inside them: active content,
 * raw-text elements, forms' controls, document metadata, foreign content. */
static const char *const SKIP_ELEMENTS[] = {
    "applet",   "audio",  "button",   "canvas",   "datalist", "frameset", "head",     "iframe",
    "math",     "noembed", "noframes", "noscript", "object",  "optgroup", "option",   "plaintext",
    "portal",   "script", "select",   "style",    "svg",      "template", "textarea", "title",
    "video",    "xml",    "xmp",      NULL,
};

/* Elements dropped on their own. They are empty in HTML5, so whatever libxml2
 * (which does not know all of them as empty) hangs below them is really what
 * follows them, and is walked as such. */
static const char *const DROP_ELEMENTS[] = {
    "area",  "base",  "basefont", "bgsound", "embed", "frame", "image", "input", "isindex",
    "keygen", "link", "meta",     "param",   "source", "track", NULL,
};

/* ---- the sanitiser's allow-lists ------------------------------------------ */

enum attr_kind { ATTR_TEXT, ATTR_HREF, ATTR_SRC, ATTR_STYLE };

#define EL_VOID 1u

struct elem_rule {
    const char *name;
    unsigned flags;
    const char *const *attrs; /* beyond GLOBAL_ATTRS, NULL-terminated */
};

static const char *const GLOBAL_ATTRS[] = {"dir", "lang", "title", "style", "align", NULL};
static const char *const NO_ATTRS[] = {NULL};
static const char *const A_ATTRS[] = {"href", NULL};
static const char *const IMG_ATTRS[] = {"src", "alt", "width", "height", "border", "hspace", "vspace", NULL};
static const char *const FONT_ATTRS[] = {"color", "face", "size", NULL};
static const char *const TABLE_ATTRS[] = {"border", "cellpadding", "cellspacing", "width", "height",
                                          "bgcolor", "summary", "frame", "rules", NULL};
static const char *const ROW_ATTRS[] = {"bgcolor", "height", "valign", NULL};
static const char *const CELL_ATTRS[] = {"colspan", "rowspan", "width", "height", "bgcolor",
                                         "valign", "nowrap", "scope", "abbr", NULL};
static const char *const COL_ATTRS[] = {"span", "width", "valign", NULL};
static const char *const OL_ATTRS[] = {"start", "type", "reversed", NULL};
static const char *const UL_ATTRS[] = {"type", NULL};
static const char *const LI_ATTRS[] = {"value", "type", NULL};
static const char *const HR_ATTRS[] = {"width", "size", "noshade", "color", NULL};
static const char *const DATE_ATTRS[] = {"datetime", NULL};
static const char *const TSECT_ATTRS[] = {"valign", NULL};

/* Sorted by name (bsearch). */
static const struct elem_rule ALLOWED[] = {
    {"a", 0, A_ATTRS}, {"abbr", 0, NO_ATTRS}, {"acronym", 0, NO_ATTRS}, {"address", 0, NO_ATTRS},
    {"article", 0, NO_ATTRS}, {"aside", 0, NO_ATTRS}, {"b", 0, NO_ATTRS}, {"bdi", 0, NO_ATTRS},
    {"bdo", 0, NO_ATTRS}, {"big", 0, NO_ATTRS}, {"blockquote", 0, NO_ATTRS}, {"br", EL_VOID, NO_ATTRS},
    {"caption", 0, NO_ATTRS}, {"center", 0, NO_ATTRS}, {"cite", 0, NO_ATTRS}, {"code", 0, NO_ATTRS},
    {"col", EL_VOID, COL_ATTRS}, {"colgroup", 0, COL_ATTRS}, {"dd", 0, NO_ATTRS}, {"del", 0, DATE_ATTRS},
    {"details", 0, NO_ATTRS}, {"dfn", 0, NO_ATTRS}, {"div", 0, NO_ATTRS}, {"dl", 0, NO_ATTRS}, {"dt", 0, NO_ATTRS},
    {"em", 0, NO_ATTRS}, {"figcaption", 0, NO_ATTRS}, {"figure", 0, NO_ATTRS}, {"font", 0, FONT_ATTRS},
    {"footer", 0, NO_ATTRS}, {"h1", 0, NO_ATTRS}, {"h2", 0, NO_ATTRS}, {"h3", 0, NO_ATTRS}, {"h4", 0, NO_ATTRS},
    {"h5", 0, NO_ATTRS}, {"h6", 0, NO_ATTRS}, {"header", 0, NO_ATTRS}, {"hr", EL_VOID, HR_ATTRS},
    {"i", 0, NO_ATTRS}, {"img", EL_VOID, IMG_ATTRS}, {"ins", 0, DATE_ATTRS}, {"kbd", 0, NO_ATTRS},
    {"li", 0, LI_ATTRS}, {"main", 0, NO_ATTRS}, {"mark", 0, NO_ATTRS}, {"nav", 0, NO_ATTRS}, {"ol", 0, OL_ATTRS},
    {"p", 0, NO_ATTRS}, {"pre", 0, NO_ATTRS}, {"q", 0, NO_ATTRS}, {"s", 0, NO_ATTRS}, {"samp", 0, NO_ATTRS},
    {"section", 0, NO_ATTRS}, {"small", 0, NO_ATTRS}, {"span", 0, NO_ATTRS}, {"strike", 0, NO_ATTRS},
    {"strong", 0, NO_ATTRS}, {"sub", 0, NO_ATTRS}, {"summary", 0, NO_ATTRS}, {"sup", 0, NO_ATTRS},
    {"table", 0, TABLE_ATTRS}, {"tbody", 0, TSECT_ATTRS}, {"td", 0, CELL_ATTRS}, {"tfoot", 0, TSECT_ATTRS},
    {"th", 0, CELL_ATTRS}, {"thead", 0, TSECT_ATTRS}, {"time", 0, DATE_ATTRS}, {"tr", 0, ROW_ATTRS},
    {"tt", 0, NO_ATTRS}, {"u", 0, NO_ATTRS}, {"ul", 0, UL_ATTRS}, {"var", 0, NO_ATTRS}, {"wbr", EL_VOID, NO_ATTRS},
};

static int rule_cmp(const void *key, const void *elem)
{
    return strcasecmp(key, ((const struct elem_rule *)elem)->name);
}

static const struct elem_rule *elem_lookup(const char *name)
{
    return bsearch(name, ALLOWED, sizeof ALLOWED / sizeof ALLOWED[0], sizeof ALLOWED[0], rule_cmp);
}

/* CSS properties a mail may set: text, colour, box and table layout; nothing
 * that positions content over the page, loads anything or runs anything. */
static const char *const CSS_PROPERTIES[] = {
    "background-color", "border", "border-bottom", "border-bottom-color", "border-bottom-left-radius",
    "border-bottom-right-radius", "border-bottom-style", "border-bottom-width", "border-collapse",
    "border-color", "border-left", "border-left-color", "border-left-style", "border-left-width",
    "border-radius", "border-right", "border-right-color", "border-right-style", "border-right-width",
    "border-spacing", "border-style", "border-top", "border-top-color", "border-top-left-radius",
    "border-top-right-radius", "border-top-style", "border-top-width", "border-width", "caption-side", "clear",
    "color", "direction", "display", "empty-cells", "float", "font", "font-family", "font-size", "font-style",
    "font-variant", "font-weight", "height", "letter-spacing", "line-height", "list-style-position",
    "list-style-type", "margin", "margin-bottom", "margin-left", "margin-right", "margin-top", "max-height",
    "max-width", "min-height", "min-width", "overflow-wrap", "padding", "padding-bottom", "padding-left",
    "padding-right", "padding-top", "table-layout", "text-align", "text-decoration", "text-indent",
    "text-transform", "vertical-align", "white-space", "width", "word-break", "word-spacing", "word-wrap", NULL,
};

/* The only CSS functions allowed in a value. */
static const char *const CSS_FUNCTIONS[] = {"rgb", "rgba", "hsl", "hsla", NULL};

/* Words that have no business in an allowed value whatever the context. */
static const char *const CSS_BAD_WORDS[] = {"expression", "javascript", "vbscript", "behavior",
                                            "behaviour",  "binding",    NULL};

static int css_value_ok(const char *v, size_t n)
{
    if (n == 0 || n > CSS_VALUE_MAX)
        return 0;
    char quote = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (quote) {
            /* strings are font names: nothing a parser could take for more */
            if (c == (unsigned char)quote)
                quote = 0;
            else if (!(c >= 0x80 || isalnum(c) || strchr(" -_.,", c)))
                return 0;
            continue;
        }
        if (c == '"' || c == '\'') {
            quote = (char)c;
            continue;
        }
        if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (!strchr(" #%.,+-_!/)", c) && c != '(')
            return 0;
        if (c == '(') {
            /* the function name right before it must be on the list */
            size_t e = i, s = i;
            while (s > 0 && (isalnum((unsigned char)v[s - 1]) || v[s - 1] == '-'))
                s--;
            char fn[16];
            if (e - s == 0 || e - s >= sizeof fn)
                return 0;
            memcpy(fn, v + s, e - s);
            fn[e - s] = '\0';
            if (!name_in(fn, CSS_FUNCTIONS))
                return 0;
        }
        if (c == '!' && (n - i - 1 < 9 || strncasecmp(v + i + 1, "important", 9) != 0))
            return 0;
    }
    if (quote)
        return 0;
    for (const char *const *w = CSS_BAD_WORDS; *w; w++) {
        size_t wl = strlen(*w);
        for (size_t i = 0; i + wl <= n; i++)
            if (!strncasecmp(v + i, *w, wl))
                return 0;
    }
    return 1;
}

static void trim(const char **s, size_t *n)
{
    while (*n && ((unsigned char)**s <= 0x20)) {
        (*s)++;
        (*n)--;
    }
    while (*n && (unsigned char)(*s)[*n - 1] <= 0x20)
        (*n)--;
}

struct san_ctx {
    const struct sanitize_opts *o;
    struct sanitize_report *rep;
    struct buf out;
};

/* Rebuilds a style attribute from the declarations that pass; "" if none. */
static void style_filter(struct san_ctx *c, const char *in, struct buf *out)
{
    size_t len = strlen(in);
    if (len > STYLE_MAX) {
        c->rep->removed_styles++;
        return;
    }
    /* CSS treats every ASCII white space alike; newlines would only get in the way */
    char *v = malloc(len + 1);
    if (!v) {
        out->oom = 1;
        return;
    }
    for (size_t i = 0; i <= len; i++)
        v[i] = (in[i] == '\t' || in[i] == '\n' || in[i] == '\r' || in[i] == '\f') ? ' ' : in[i];
    size_t start = 0;
    while (start < len) {
        /* a declaration ends at a ';' outside quotes */
        size_t end = start;
        char quote = 0;
        for (; end < len; end++) {
            if (quote) {
                if (v[end] == quote)
                    quote = 0;
            } else if (v[end] == '"' || v[end] == '\'')
                quote = v[end];
            else if (v[end] == ';')
                break;
        }
        const char *decl = v + start;
        size_t dn = end - start;
        start = end + 1;
        trim(&decl, &dn);
        if (dn == 0)
            continue;
        const char *colon = memchr(decl, ':', dn);
        if (!colon) {
            c->rep->removed_styles++;
            continue;
        }
        const char *name = decl, *val = colon + 1;
        size_t nn = (size_t)(colon - decl), vn = dn - nn - 1;
        trim(&name, &nn);
        trim(&val, &vn);
        char pname[32];
        if (nn == 0 || nn >= sizeof pname) {
            c->rep->removed_styles++;
            continue;
        }
        memcpy(pname, name, nn);
        pname[nn] = '\0';
        if (!name_in(pname, CSS_PROPERTIES) || !css_value_ok(val, vn)) {
            c->rep->removed_styles++;
            continue;
        }
        for (size_t i = 0; i < nn; i++)
            buf_addc(out, (char)tolower((unsigned char)pname[i]));
        buf_adds(out, ": ");
        buf_add(out, val, vn);
        buf_adds(out, "; ");
    }
    if (out->len >= 2)
        out->len -= 1; /* drop the last space */
    if (out->p)
        out->p[out->len] = '\0';
    free(v);
}

/*
 * Normalises a URL the way a browser's URL parser starts out (leading and
 * trailing C0 controls and spaces dropped, tabs and newlines removed anywhere)
 * and returns a malloc'd copy with its lower-cased scheme in scheme[] ("" for a
 * same-document "#fragment"), or NULL when it is not an absolute URL we can
 * judge: relative, protocol-relative, other control characters, too long.
 */
static char *url_normalise(const char *in, char *scheme, size_t schemelen)
{
    const char *s = in;
    size_t n = strlen(in);
    trim(&s, &n);
    if (n == 0 || n > URL_MAX)
        return NULL;
    char *u = malloc(n + 1);
    if (!u)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t' || c == '\n' || c == '\r')
            continue;
        if (c < 0x20 || c == 0x7F) {
            free(u);
            return NULL;
        }
        u[o++] = (char)c;
    }
    u[o] = '\0';
    if (u[0] == '#') {
        scheme[0] = '\0';
        return u;
    }
    size_t i = 0;
    if (!isalpha((unsigned char)u[0]))
        goto refuse;
    while (isalnum((unsigned char)u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.')
        i++;
    if (u[i] != ':' || i >= schemelen)
        goto refuse;
    for (size_t k = 0; k < i; k++)
        scheme[k] = (char)tolower((unsigned char)u[k]);
    scheme[i] = '\0';
    return u;
refuse:
    free(u);
    return NULL;
}

/* http(s) with an authority: "http://host...". */
static int url_is_web(const char *scheme, const char *u)
{
    if (strcmp(scheme, "http") && strcmp(scheme, "https"))
        return 0;
    const char *rest = u + strlen(scheme) + 1;
    return (rest[0] == '/' || rest[0] == '\\') && (rest[1] == '/' || rest[1] == '\\') && rest[2] &&
           rest[2] != '/' && rest[2] != '\\';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The Content-ID of a cid: URL, percent-decoded (RFC 2392); NULL if empty. */
static char *cid_decode(const char *u)
{
    const char *s = u + 4;
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else
            out[o++] = s[i];
    }
    out[o] = '\0';
    if (o == 0 || memchr(out, '\0', o)) {
        free(out);
        return NULL;
    }
    return out;
}

static void emit_attr(struct buf *b, const char *name, const char *value)
{
    buf_addc(b, ' ');
    buf_adds(b, name);
    buf_adds(b, "=\"");
    buf_add_escaped(b, value, 1);
    buf_addc(b, '"');
}

/* Works out an <img>'s source: 1 and the attribute to write in *attr / *url
 * (malloc'd), or 0 when the image has no source we allow. */
static int img_source(struct san_ctx *c, xmlNodePtr n, const char **attr, char **url)
{
    xmlChar *src = xmlGetProp(n, (const xmlChar *)"src");
    if (!src)
        return 0;
    char scheme[16];
    char *u = url_normalise((const char *)src, scheme, sizeof scheme);
    xmlFree(src);
    if (!u) {
        c->rep->removed_urls++;
        return 0;
    }
    if (url_is_web(scheme, u)) {
        *url = u;
        if (c->o->load_remote_images)
            *attr = "src";
        else {
            *attr = SANITIZE_BLOCKED_SRC_ATTR;
            c->rep->blocked_remote_images++;
        }
        return 1;
    }
    if (!strcmp(scheme, "cid")) {
        char *cid = cid_decode(u);
        char *resolved = cid && c->o->resolve_cid ? c->o->resolve_cid(c->o->resolve_arg, cid) : NULL;
        free(cid);
        if (resolved) {
            free(u);
            u = resolved;
        }
        *attr = "src";
        *url = u;
        return 1;
    }
    free(u);
    c->rep->removed_urls++;
    return 0;
}

enum { ACT_NONE = 0, ACT_EMIT, ACT_UNWRAP };

static void open_tag(struct san_ctx *c, xmlNodePtr n, const struct elem_rule *r, const char *img_attr,
                     const char *img_url)
{
    struct buf *b = &c->out;
    int link = 0, had_href = 0;
    buf_addc(b, '<');
    buf_adds(b, r->name);
    for (xmlAttrPtr a = n->properties; a; a = a->next) {
        const char *an = (const char *)a->name;
        if (!strcasecmp(an, "src") && img_url)
            continue; /* written below */
        if (!name_in(an, r->attrs) && !name_in(an, GLOBAL_ATTRS)) {
            /* a link's target and rel are always ours: not worth reporting */
            if (strcmp(r->name, "a") || (strcasecmp(an, "target") && strcasecmp(an, "rel")))
                c->rep->removed_attributes++;
            continue;
        }
        xmlChar *raw = xmlNodeGetContent((xmlNodePtr)a);
        const char *v = raw ? (const char *)raw : "";
        if (!strcasecmp(an, "style")) {
            struct buf css = {0};
            style_filter(c, v, &css);
            if (css.oom)
                b->oom = 1;
            else if (css.len)
                emit_attr(b, "style", css.p);
            else
                c->rep->removed_attributes++;
            free(css.p);
        } else if (!strcasecmp(an, "href")) {
            char scheme[16];
            char *u = url_normalise(v, scheme, sizeof scheme);
            if (u && !had_href && (url_is_web(scheme, u) || !strcmp(scheme, "mailto") || !scheme[0])) {
                emit_attr(b, "href", u);
                had_href = 1;
                link = scheme[0] != '\0';
            } else {
                c->rep->removed_urls++;
                c->rep->removed_attributes++;
            }
            free(u);
        } else if (strlen(v) > ATTR_VALUE_MAX) {
            c->rep->removed_attributes++;
        } else {
            char lower[32];
            size_t k = 0;
            for (; an[k] && k + 1 < sizeof lower; k++)
                lower[k] = (char)tolower((unsigned char)an[k]);
            lower[k] = '\0';
            emit_attr(b, lower, v);
        }
        xmlFree(raw);
    }
    if (img_url)
        emit_attr(b, img_attr, img_url);
    if (link) {
        emit_attr(b, "target", "_blank");
        emit_attr(b, "rel", "noopener noreferrer");
    }
    buf_addc(b, '>');
}

static int san_enter(void *ctx, xmlNodePtr n, int depth)
{
    struct san_ctx *c = ctx;
    n->_private = (void *)(intptr_t)ACT_NONE;
    switch (n->type) {
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
        if (n->content)
            buf_add_escaped(&c->out, (const char *)n->content, 0);
        return 0;
    case XML_ELEMENT_NODE:
        break;
    default: /* comments, processing instructions, DTDs: never passed on */
        return 0;
    }
    const char *name = (const char *)n->name;
    if (name_in(name, SKIP_ELEMENTS)) {
        c->rep->removed_elements++;
        return 0;
    }
    if (name_in(name, DROP_ELEMENTS)) {
        c->rep->removed_elements++;
        return 1;
    }
    const struct elem_rule *r = elem_lookup(name);
    if (!r || depth >= TREE_DEPTH_MAX) {
        /* html and body are the parser's own wrapping, not worth counting */
        if (strcasecmp(name, "html") && strcasecmp(name, "body"))
            c->rep->removed_elements++;
        n->_private = (void *)(intptr_t)ACT_UNWRAP;
        return 1;
    }
    const char *img_attr = NULL;
    char *img_url = NULL;
    if (!strcmp(r->name, "img") && !img_source(c, n, &img_attr, &img_url)) {
        c->rep->removed_elements++;
        return 1; /* an empty element: any children are misplaced siblings */
    }
    open_tag(c, n, r, img_attr, img_url);
    free(img_url);
    n->_private = (void *)(intptr_t)ACT_EMIT;
    return 1;
}

static void san_leave(void *ctx, xmlNodePtr n, int depth)
{
    (void)depth;
    struct san_ctx *c = ctx;
    if (n->type != XML_ELEMENT_NODE || (intptr_t)n->_private != ACT_EMIT)
        return;
    const struct elem_rule *r = elem_lookup((const char *)n->name);
    if (r && !(r->flags & EL_VOID)) {
        buf_adds(&c->out, "</");
        buf_adds(&c->out, r->name);
        buf_addc(&c->out, '>');
    }
}

int html_sanitize(const char *html, size_t len, const struct sanitize_opts *o, char **out, size_t *outlen,
                  struct sanitize_report *rep)
{
    static const struct sanitize_opts defaults = {0};
    struct sanitize_report dummy;
    *out = NULL;
    if (outlen)
        *outlen = 0;
    struct san_ctx c = {.o = o ? o : &defaults, .rep = rep ? rep : &dummy};
    memset(c.rep, 0, sizeof *c.rep);
    htmlDocPtr doc = html_parse(html, len);
    if (!doc)
        return (html && len) ? -1 : buf_finish(&c.out, out, outlen);
    struct walker w = {san_enter, san_leave, &c};
    walk(&w, (xmlNodePtr)doc);
    xmlFreeDoc(doc);
    return buf_finish(&c.out, out, outlen);
}

/* ---- HTML to text --------------------------------------------------------- */

static const char *const BLOCK_ELEMENTS[] = {
    "address", "article", "aside", "blockquote", "caption", "center", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "legend", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot",
    "thead", "tr", "ul", NULL,
};

/* Paragraph-like blocks get an empty line around them. */
static const char *const PARA_ELEMENTS[] = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
                                            "pre", "table", "ul", "ol", "dl", NULL};

struct text_ctx {
    struct buf out;
    int pre;            /* inside <pre>: white space kept */
    int space;          /* a collapsed space is pending */
    int newlines;       /* line breaks pending (the most asked for wins) */
    int cell;           /* a cell separator is pending */
};

static void text_break(struct text_ctx *t, int lines)
{
    if (t->newlines < lines)
        t->newlines = lines;
    t->space = 0;
    t->cell = 0;
}

/* Writes what is pending before the next visible character. */
static void text_flush(struct text_ctx *t)
{
    if (t->out.len > 0) {
        for (int i = 0; i < t->newlines; i++)
            buf_addc(&t->out, '\n');
        if (!t->newlines && t->cell)
            buf_addc(&t->out, '\t');
        else if (!t->newlines && t->space)
            buf_addc(&t->out, ' ');
    }
    t->newlines = t->space = t->cell = 0;
}

static void text_add(struct text_ctx *t, const char *s)
{
    for (; *s; s++) {
        char ch = *s;
        if (t->pre) {
            if (ch == '\r')
                continue;
            if (ch == '\n') {
                buf_addc(&t->out, '\n');
                continue;
            }
            text_flush(t);
            buf_addc(&t->out, ch);
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f') {
            t->space = 1;
            continue;
        }
        text_flush(t);
        buf_addc(&t->out, ch);
    }
}

static int text_enter(void *ctx, xmlNodePtr n, int depth)
{
    (void)depth;
    struct text_ctx *t = ctx;
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        if (n->content)
            text_add(t, (const char *)n->content);
        return 0;
    }
    if (n->type != XML_ELEMENT_NODE)
        return 0;
    const char *name = (const char *)n->name;
    if (name_in(name, SKIP_ELEMENTS))
        return 0;
    /* empty elements: whatever libxml2 put below them follows them */
    if (!strcasecmp(name, "br")) {
        t->newlines++;
        t->space = t->cell = 0;
        return 1;
    }
    if (!strcasecmp(name, "hr")) {
        text_break(t, 1);
        text_flush(t);
        buf_adds(&t->out, "----------");
        text_break(t, 1);
        return 1;
    }
    if (!strcasecmp(name, "td") || !strcasecmp(name, "th")) {
        if (!t->newlines)
            t->cell = 1;
        return 1;
    }
    if (name_in(name, BLOCK_ELEMENTS))
        text_break(t, name_in(name, PARA_ELEMENTS) ? 2 : 1);
    if (!strcasecmp(name, "li")) {
        text_flush(t);
        buf_adds(&t->out, "* ");
    }
    if (!strcasecmp(name, "pre"))
        t->pre++;
    if (!strcasecmp(name, "img")) {
        xmlChar *alt = xmlGetProp(n, (const xmlChar *)"alt");
        if (alt && *alt) {
            text_add(t, "[");
            text_add(t, (const char *)alt);
            text_add(t, "]");
        }
        xmlFree(alt);
    }
    return 1;
}

static void text_leave(void *ctx, xmlNodePtr n, int depth)
{
    (void)depth;
    struct text_ctx *t = ctx;
    if (n->type != XML_ELEMENT_NODE)
        return;
    const char *name = (const char *)n->name;
    if (name_in(name, SKIP_ELEMENTS))
        return;
    if (!strcasecmp(name, "pre") && t->pre > 0)
        t->pre--;
    if (name_in(name, BLOCK_ELEMENTS))
        text_break(t, name_in(name, PARA_ELEMENTS) ? 2 : 1);
}

int html_to_text(const char *html, size_t len, char **out, size_t *outlen)
{
    struct text_ctx t = {0};
    *out = NULL;
    if (outlen)
        *outlen = 0;
    htmlDocPtr doc = html_parse(html, len);
    if (!doc)
        return (html && len) ? -1 : buf_finish(&t.out, out, outlen);
    struct walker w = {text_enter, text_leave, &t};
    walk(&w, (xmlNodePtr)doc);
    xmlFreeDoc(doc);
    /* character references can bring back what utf8_clean() took out */
    if (t.out.len > 0 && !t.out.oom && !utf8_is_clean(t.out.p, t.out.len)) {
        char *clean = utf8_clean(t.out.p, t.out.len, &t.out.len);
        free(t.out.p);
        t.out.p = clean;
        t.out.cap = t.out.len + 1;
        t.out.oom = !clean;
    }
    if (t.out.len > 0 && !t.out.oom) {
        /* one line end at the end, no trailing blank lines or spaces */
        while (t.out.len > 0 && strchr(" \t\n", t.out.p[t.out.len - 1]))
            t.out.len--;
        t.out.p[t.out.len] = '\0';
        buf_addc(&t.out, '\n');
    }
    return buf_finish(&t.out, out, outlen);
}

char *utf8_clean_lf(const char *s, size_t len)
{
    size_t n;
    char *out = utf8_clean(s, len, &n);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '\r') {
            if (i + 1 < n && out[i + 1] == '\n')
                continue;
            out[o++] = '\n';
        } else
            out[o++] = out[i];
    }
    out[o] = '\0';
    return out;
}
