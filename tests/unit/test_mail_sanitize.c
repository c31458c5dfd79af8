/*
 * test_mail_sanitize.c — the HTML sanitiser, html_to_text() and utf8_clean().
 *
 * Besides hand-written cases, every vector of the XSS corpora in
 * ../shared/corpora (DOMPurify's expect.json, H5SC's vectors.txt and items.js,
 * the OWASP XSS filter evasion cheat sheet's code blocks) is sanitised and the
 * output must be harmless: it is checked twice, once by a strict tokenizer of
 * the only grammar the sanitiser may write (so no browser can parse it into
 * something else) and once by parsing it again with libxml2 and walking the
 * tree (no script-capable element, no on* handler, no javascript:/vbscript:/
 * data: URL, no dangerous CSS). A clean clone without ../shared skips the
 * corpora with a message and still runs everything else.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <jansson.h>
#include <libxml/HTMLparser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/sanitize.h"

#define CORPORA LB_SOURCE_DIR "/../shared/corpora"

/* ---- helpers -------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    char *p = malloc(cap + 1);
    size_t r;
    while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *q = realloc(p, 2 * cap + 1);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
    }
    fclose(f);
    if (p) {
        p[n] = '\0';
        *len = n;
    }
    return p;
}

static char *sanitize(const char *html, const struct sanitize_opts *o, struct sanitize_report *rep)
{
    char *out = NULL;
    size_t n = 0;
    assert_int_equal(html_sanitize(html, strlen(html), o, &out, &n, rep), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), n);
    return out;
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, n))
            return 1;
    return 0;
}

/* ---- the safety checks ---------------------------------------------------- */

/* The sanitiser may only write these (the test keeps its own list on purpose). */
static const char *const OUTPUT_ELEMENTS[] = {
    "a",      "abbr", "acronym", "address", "article", "aside", "b",      "bdi",    "bdo",     "big",
    "blockquote", "br", "caption", "center", "cite",  "code",  "col",    "colgroup", "dd",    "del",
    "details", "dfn", "div",     "dl",      "dt",      "em",    "figcaption", "figure", "font", "footer",
    "h1",     "h2",   "h3",      "h4",      "h5",      "h6",    "header", "hr",     "i",       "img",
    "ins",    "kbd",  "li",      "main",    "mark",    "nav",   "ol",     "p",      "pre",     "q",
    "s",      "samp", "section", "small",   "span",    "strike", "strong", "sub",   "summary", "sup",
    "table",  "tbody", "td",     "tfoot",   "th",      "thead", "time",   "tr",     "tt",      "u",
    "ul",     "var",  "wbr",     NULL,
};

/* Never acceptable in the output, whatever the allow-list says. */
static const char *const FORBIDDEN_ELEMENTS[] = {
    "script", "iframe", "frame",  "frameset", "object", "embed", "applet",   "form",   "input",
    "button", "textarea", "select", "svg",    "math",   "base",  "meta",     "link",   "style",
    "template", "noscript", "xmp", "plaintext", "noembed", "noframes", "title", "isindex", "param",
    "video",  "audio",  "source", "image",    "portal", "xml",   NULL,
};

static const char *const URL_ATTRIBUTES[] = {"href", "src", "action", "formaction", "xlink:href", "background",
                                             "poster", "data", "codebase", "cite", "longdesc", "dynsrc",
                                             "lowsrc", SANITIZE_BLOCKED_SRC_ATTR, NULL};

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcasecmp(s, *list))
            return 1;
    return 0;
}

/* Lower-cased, with everything a URL or CSS parser might skip removed. */
static char *squeeze(const char *v)
{
    char *s = malloc(strlen(v) + 1), *o = s;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p > 0x20 && *p != 0x7f)
            *o++ = (char)tolower(*p);
    *o = '\0';
    return s;
}

static int url_bad(const char *v)
{
    char *s = squeeze(v);
    int bad = !strncmp(s, "javascript:", 11) || !strncmp(s, "vbscript:", 9) || !strncmp(s, "data:", 5) ||
              !strncmp(s, "livescript:", 11) || !strncmp(s, "mocha:", 6) || strstr(s, "javascript:") ||
              /* and positively: only what the sanitiser promises */
              !(!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) || !strncmp(s, "mailto:", 7) ||
                !strncmp(s, "cid:", 4) || s[0] == '#');
    free(s);
    return bad;
}

static int style_bad(const char *v)
{
    char *s = squeeze(v);
    int bad = strstr(s, "url(") || strstr(s, "expression") || strstr(s, "javascript") || strstr(s, "vbscript") ||
              strstr(s, "behavior") || strstr(s, "-moz-binding") || strstr(s, "@import") || strchr(s, '\\') ||
              strstr(s, "position:fixed") || strstr(s, "/*");
    free(s);
    return bad;
}

static const char *checked_input; /* for failure messages */

static void check_fail(const char *why, const char *detail, const char *out)
{
    fail_msg("%s (%s)\n  input:  %.2000s\n  output: %.2000s", why, detail ? detail : "", checked_input, out);
}

/* Walks libxml2's parse of the output. */
static void check_tree(xmlNodePtr n, const char *out)
{
    for (; n; n = n->next) {
        if (n->type == XML_COMMENT_NODE || n->type == XML_PI_NODE)
            check_fail("comment or processing instruction in output", NULL, out);
        if (n->type != XML_ELEMENT_NODE)
            continue;
        const char *name = (const char *)n->name;
        if (in_list(name, FORBIDDEN_ELEMENTS))
            check_fail("forbidden element", name, out);
        if (!in_list(name, OUTPUT_ELEMENTS) && strcmp(name, "html") && strcmp(name, "body") &&
            strcmp(name, "head"))
            check_fail("element not on the allow-list", name, out);
        for (xmlAttrPtr a = n->properties; a; a = a->next) {
            const char *an = (const char *)a->name;
            xmlChar *v = xmlNodeGetContent((xmlNodePtr)a);
            const char *value = v ? (const char *)v : "";
            if (!strncasecmp(an, "on", 2))
                check_fail("event handler attribute", an, out);
            if (in_list(an, URL_ATTRIBUTES) && url_bad(value))
                check_fail("bad URL", value, out);
            if (!strcasecmp(an, "style") && style_bad(value))
                check_fail("bad style", value, out);
            if (!strcasecmp(an, "srcdoc") || !strcasecmp(an, "srcset") || !strcasecmp(an, "formaction") ||
                !strcasecmp(an, "action") || !strcasecmp(an, "xmlns") || strchr(an, ':'))
                check_fail("attribute that should never be written", an, out);
            xmlFree(v);
        }
        check_tree(n->children, out);
    }
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/*
 * The output grammar, strictly: text without '<' or '>'; start tags
 * <name( attr="value")*> with lower-case names from the list and values
 * without '"', '<' or '>'; end tags </name>; entities only &amp; &lt; &gt;
 * &quot; &#39;. A browser parses this one way only.
 */
static void check_grammar(const char *out)
{
    const char *p = out;
    while (*p) {
        if (*p == '>')
            check_fail("bare '>' in output", p, out);
        if (*p == '&') {
            if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) &&
                strncmp(p, "&quot;", 6) && strncmp(p, "&#39;", 5) && strncmp(p, "&#13;", 5))
                check_fail("unexpected entity", p, out);
            p++;
            continue;
        }
        if (*p != '<') {
            p++;
            continue;
        }
        p++;
        int end = *p == '/';
        if (end)
            p++;
        char name[32];
        size_t k = 0;
        while (is_name_char(*p) && k + 1 < sizeof name)
            name[k++] = *p++;
        name[k] = '\0';
        if (!in_list(name, OUTPUT_ELEMENTS))
            check_fail("tag not on the allow-list", name, out);
        while (!end && *p == ' ') {
            p++;
            if (!is_name_char(*p))
                check_fail("bad attribute name", p, out);
            while (is_name_char(*p))
                p++;
            if (strncmp(p, "=\"", 2))
                check_fail("attribute without a quoted value", p, out);
            p += 2;
            while (*p && *p != '"') {
                if (*p == '<' || *p == '>')
                    check_fail("'<' or '>' in an attribute value", p, out);
                p++;
            }
            if (*p != '"')
                check_fail("unterminated attribute value", p, out);
            p++;
        }
        if (*p != '>')
            check_fail("malformed tag", p, out);
        p++;
    }
}

static void assert_safe(const char *input, const char *out)
{
    checked_input = input;
    if (!utf8_is_clean(out, strlen(out)))
        check_fail("output is not clean UTF-8", NULL, out);
    if (contains_ci(out, "<script") || contains_ci(out, "<iframe") || contains_ci(out, "<svg") ||
        contains_ci(out, "<!--") || contains_ci(out, "<style"))
        check_fail("dangerous markup in the output text", NULL, out);
    check_grammar(out);
    htmlDocPtr doc = htmlReadMemory(out, (int)strlen(out), NULL, "UTF-8",
                                    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                        HTML_PARSE_NONET);
    if (doc) {
        check_tree(doc->children, out);
        xmlFreeDoc(doc);
    } else if (out[0])
        check_fail("libxml2 cannot parse the output", NULL, out);
}

static char *resolve_cid(void *arg, const char *cid)
{
    (void)arg;
    if (strcmp(cid, "known@x"))
        return NULL;
    return strdup("https://webmail.test/api/v1/messages/7/attachments/0");
}

/* Sanitises one vector with images blocked and loaded and checks both
 * outputs; also renders it as text (must not fail, must be clean UTF-8). */
static void run_vector(const char *input, size_t len)
{
    struct sanitize_opts opts[2] = {{0}, {.load_remote_images = 1, .resolve_cid = resolve_cid}};
    for (int i = 0; i < 2; i++) {
        char *out = NULL;
        size_t n;
        struct sanitize_report rep;
        assert_int_equal(html_sanitize(input, len, &opts[i], &out, &n, &rep), 0);
        assert_safe(input, out);
        if (i == 0) {
            /* a second pass finds nothing more to remove and changes nothing */
            char *again = sanitize(out, &opts[0], &rep);
            if (strcmp(out, again))
                fail_msg("not idempotent\n  input: %.1000s\n  once:  %.1000s\n  twice: %.1000s", input, out,
                         again);
            if (rep.removed_elements + rep.removed_attributes + rep.removed_urls + rep.removed_styles)
                fail_msg("second pass removed more\n  input: %.1000s\n  once:  %.1000s", input, out);
            free(again);
        }
        free(out);
    }
    char *text = NULL;
    size_t tn;
    assert_int_equal(html_to_text(input, len, &text, &tn), 0);
    assert_true(utf8_is_clean(text, tn));
    free(text);
}

/* ---- hand-written cases --------------------------------------------------- */

static void test_keeps_formatting(void **state)
{
    (void)state;
    char *out = sanitize("<p class=x id=y>Hello <b>bold</b> <i>it</i> &amp; <u>u</u><br>"
                         "<font color=\"red\" face=Arial size=2>f</font></p>"
                         "<table border=1 cellpadding=\"2\"><tr><td colspan=2 bgcolor=#fff>c</td></tr></table>"
                         "<ul><li>one<li>two</ul><blockquote>q</blockquote><pre>  x\n  y</pre><h2>h</h2>",
                         NULL, NULL);
    assert_string_equal(out, "<p>Hello <b>bold</b> <i>it</i> &amp; <u>u</u><br>"
                             "<font color=\"red\" face=\"Arial\" size=\"2\">f</font></p>"
                             "<table border=\"1\" cellpadding=\"2\"><tr><td colspan=\"2\" bgcolor=\"#fff\">c</td>"
                             "</tr></table><ul><li>one</li><li>two</li></ul><blockquote>q</blockquote>"
                             "<pre>  x\n  y</pre><h2>h</h2>");
    free(out);
}

static void test_escapes_text_and_values(void **state)
{
    (void)state;
    char *out = sanitize("<p title='a\"b&lt;c&#39;'>1 &lt; 2 &gt; 0 &amp;&amp; &quot;q&quot; &unknown; &#x3c;</p>",
                         NULL, NULL);
    assert_string_equal(out, "<p title=\"a&quot;b&lt;c&#39;\">1 &lt; 2 &gt; 0 &amp;&amp; \"q\" &amp;unknown; "
                             "&lt;</p>");
    free(out);
}

static void test_drops_active_content(void **state)
{
    (void)state;
    struct sanitize_report rep;
    char *out = sanitize("<script>alert(1)</script><style>p{color:red}</style>A<iframe src=x>in</iframe>"
                         "<object data=x>o</object><embed src=x><form action=/x>B<input value=v>"
                         "<button>b</button><textarea>t</textarea><select><option>o</select></form>"
                         "<svg><g onload=alert(1)></g></svg><math><mi>m</mi></math><template>t</template>"
                         "<noscript><p>n</p></noscript><base href=http://e/><link rel=stylesheet href=x>"
                         "<meta http-equiv=refresh content=0><!-- comment --><?php x ?>C",
                         NULL, &rep);
    assert_string_equal(out, "ABC");
    assert_true(rep.removed_elements >= 15);
    free(out);
}

static void test_drops_handlers_and_unknown_attributes(void **state)
{
    (void)state;
    struct sanitize_report rep;
    char *out = sanitize("<div onclick=alert(1) ONMOUSEOVER='x' onerror = y data-x=1 id=i class=c "
                         "align=center title=t>d</div><b/onload=alert(1)>b</b>",
                         NULL, &rep);
    assert_string_equal(out, "<div align=\"center\" title=\"t\">d</div><b>b</b>");
    assert_true(rep.removed_attributes >= 6);
    free(out);
}

static void test_refuses_script_urls(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " \t\njavascript:alert(1)",
        "java&#x09;script:alert(1)",
        "java&#x0A;script:alert(1)",
        "java&#13;script:alert(1)",
        "&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)",
        "&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058"
        "alert(1)",
        "&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)",
        "&#x01;javascript:alert(1)",
        "javascript&colon;alert(1)",
        "vbscript:msgbox(1)",
        "VBSCRIPT:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "  DATA:text/html,<script>alert(1)</script>",
        "livescript:alert(1)",
        "//evil.example/x",
        "/relative/path",
        "file:///etc/passwd",
        "\xe2\x80\xa8javascript:alert(1)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char html[512];
        snprintf(html, sizeof html, "<a href=\"%s\">x</a><img src=\"%s\">", bad[i], bad[i]);
        struct sanitize_report rep;
        char *out = sanitize(html, NULL, &rep);
        assert_safe(html, out);
        if (strcmp(out, "<a>x</a>"))
            fail_msg("%s gave %s", html, out);
        assert_int_equal(rep.removed_urls, 2);
        free(out);
    }
}

static void test_links(void **state)
{
    (void)state;
    char *out = sanitize("<a href=\"https://example.org/a?b=1&amp;c=2\">w</a><a href=\"mailto:bob@example.org\">m"
                         "</a><a href=\"#top\">t</a><a href=\" HTTP://Example.org \">u</a>",
                         NULL, NULL);
    assert_string_equal(out, "<a href=\"https://example.org/a?b=1&amp;c=2\" target=\"_blank\" "
                             "rel=\"noopener noreferrer\">w</a>"
                             "<a href=\"mailto:bob@example.org\" target=\"_blank\" rel=\"noopener noreferrer\">m</a>"
                             "<a href=\"#top\">t</a>"
                             "<a href=\"HTTP://Example.org\" target=\"_blank\" rel=\"noopener noreferrer\">u</a>");
    free(out);
}

static void test_remote_images(void **state)
{
    (void)state;
    const char *html = "<img src=\"https://tracker.example/p.gif\" alt=\"pixel\" width=1>"
                       "<img src=\"http://cdn.example/logo.png\"><img src=\"cid:logo@x\"><img src=\"cid:known@x\">"
                       "<img src=\"data:image/png;base64,AAAA\">";
    struct sanitize_report rep;
    char *out = sanitize(html, NULL, &rep);
    assert_string_equal(out, "<img alt=\"pixel\" width=\"1\" data-lb-src=\"https://tracker.example/p.gif\">"
                             "<img data-lb-src=\"http://cdn.example/logo.png\"><img src=\"cid:logo@x\">"
                             "<img src=\"cid:known@x\">");
    assert_int_equal(rep.blocked_remote_images, 2);
    assert_int_equal(rep.removed_urls, 1);
    free(out);

    struct sanitize_opts o = {.load_remote_images = 1, .resolve_cid = resolve_cid};
    out = sanitize(html, &o, &rep);
    assert_string_equal(out, "<img alt=\"pixel\" width=\"1\" src=\"https://tracker.example/p.gif\">"
                             "<img src=\"http://cdn.example/logo.png\"><img src=\"cid:logo@x\">"
                             "<img src=\"https://webmail.test/api/v1/messages/7/attachments/0\">");
    assert_int_equal(rep.blocked_remote_images, 0);
    free(out);

    /* percent-escapes in cid: URLs are undone before the lookup (RFC 2392) */
    out = sanitize("<img src=\"cid:known%40x\">", &o, NULL);
    assert_string_equal(out, "<img src=\"https://webmail.test/api/v1/messages/7/attachments/0\">");
    free(out);
}

static void test_styles(void **state)
{
    (void)state;
    struct sanitize_report rep;
    char *out = sanitize("<p style=\"COLOR: Red; background-color:#fff;font-family:'Segoe UI', Arial;"
                         "margin:0 0 1em 0 !important; color: rgb(1, 2, 3)\">a</p>",
                         NULL, &rep);
    assert_string_equal(out, "<p style=\"color: Red; background-color: #fff; font-family: &#39;Segoe UI&#39;, "
                             "Arial; margin: 0 0 1em 0 !important; color: rgb(1, 2, 3);\">a</p>");
    assert_int_equal(rep.removed_styles, 0);
    free(out);

    /* each: a style, and what of it must not come through */
    static const char *const bad[][2] = {
        {"background:url(http://x/y.png)", "url"},
        {"background-color: url(javascript:alert(1))", "url"},
        {"width: expression(alert(1))", "expression"},
        {"width: EXPRESSION(alert(1))", "EXPRESSION"},
        {"color: red; behavior: url(x.htc)", "behavior"},
        {"-moz-binding: url(x.xml#y)", "binding"},
        {"color: \\72 ed", "72"},
        {"color: e\\78pression(alert(1))", "pression"},
        {"font-family: x; @import 'evil.css'", "evil"},
        {"color: red /* x */", "/*"},
        {"position: fixed; top: 0", "position"},
        {"color: var(--x)", "var"},
        {"width: calc(100% - javascript)", "calc"},
        {"color: image(x)", "image"},
        {"color: red}body{background:red", "body"},
        {"font-family: 'unterminated", "unterminated"},
        {"color: red !evil", "evil"},
        {"color:\nred;x:expression(1)", "expression"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char html[256];
        snprintf(html, sizeof html, "<p style=\"%s\">x</p>", bad[i][0]);
        out = sanitize(html, NULL, &rep);
        assert_safe(html, out);
        assert_true(rep.removed_styles >= 1);
        if (strstr(out, bad[i][1]))
            fail_msg("%s gave %s", html, out);
        free(out);
    }
}

static void test_mxss_classics(void **state)
{
    (void)state;
    static const char *const v[] = {
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
        "<svg></p><style><a id=\"</style><img src=1 onerror=alert(1)>\">",
        "<math><mtext><table><mglyph><style><!--</style><img title=\"--&gt;&lt;img src=1 onerror=alert(1)&gt;\">",
        "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
        "<textarea></textarea><img src=x onerror=alert(1)>",
        "<title><img src=x onerror=alert(1)></title>",
        "<xmp><img src=x onerror=alert(1)></xmp>",
        "<a href=\"javascript:alert(1)\"<b>x</b>",
        "<img src=\"x` `<script>alert(1)</script>\"` `>",
        "<!--[if gte IE 4]><script>alert(1)</script><![endif]-->",
        "<![CDATA[<script>alert(1)</script>]]>",
        "<p>a</p\n><script\n>alert(1)</script\n>",
        "<scr<script>ipt>alert(1)</scr</script>ipt>",
        "<<script>script>alert(1)<</script>/script>",
        "<div\x00onclick=alert(1)>x</div>",
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        run_vector(v[i], strlen(v[i]));
}

static void test_hostile_input(void **state)
{
    (void)state;
    /* invalid UTF-8, NULs and control characters become U+FFFD */
    static const char bytes[] = "a\x00" "b\xff\xfe<p>\xc0\xaf\xed\xa0\x80\x01\xe2\x82\xac</p>";
    char *out = NULL;
    size_t n;
    assert_int_equal(html_sanitize(bytes, sizeof bytes - 1, NULL, &out, &n, NULL), 0);
    assert_true(utf8_is_clean(out, n));
    assert_non_null(strstr(out, "\xe2\x82\xac"));
    assert_null(memchr(out, '\x01', n));
    free(out);

    /* empty input */
    assert_int_equal(html_sanitize("", 0, NULL, &out, &n, NULL), 0);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(html_sanitize(NULL, 0, NULL, &out, &n, NULL), 0);
    assert_string_equal(out, "");
    free(out);

    /* very deep nesting: bounded output, still balanced and safe */
    size_t depth = 100000;
    char *deep = malloc(depth * 5 + 64);
    char *p = deep;
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, i % 2 ? "<div>" : "<b>");
    strcpy(p, "<img src=x onerror=alert(1)>deep");
    memcpy(deep, "top", 3); /* replaces the first "<b>" */
    out = sanitize(deep, NULL, NULL);
    assert_true(!strncmp(out, "top", 3)); /* libxml2 gives up nesting at 256; what it kept is safe */
    assert_safe("(deep nesting)", out);
    free(out);
    assert_int_equal(html_to_text(deep, strlen(deep), &out, &n), 0);
    assert_true(!strncmp(out, "top", 3));
    free(out);
    free(deep);

    /* a huge attribute and many attributes */
    size_t big = 1 << 20;
    char *h = malloc(big + 64);
    strcpy(h, "<p title=\"");
    memset(h + 10, 'A', big);
    strcpy(h + 10 + big, "\">x</p>");
    out = sanitize(h, NULL, NULL);
    assert_string_equal(out, "<p>x</p>");
    free(out);
    free(h);
}

static void test_html_to_text(void **state)
{
    (void)state;
    static const char html[] = "<html><head><title>T</title><style>p{}</style></head><body>"
                               "<h1>Title</h1><p>First   para\n with  spaces.</p><p>Second<br>line</p>"
                               "<ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr></table>"
                               "<pre>  keep\n   this</pre><script>alert(1)</script><img src=x alt=\"logo\">"
                               "&lt;tag&gt; &amp; caf&eacute;</body></html>";
    char *out = NULL;
    size_t n;
    assert_int_equal(html_to_text(html, sizeof html - 1, &out, &n), 0);
    assert_string_equal(out, "Title\n\nFirst para with spaces.\n\nSecond\nline\n\n* one\n* two\n\na\tb\n\n"
                             "  keep\n   this\n\n[logo]<tag> & caf\xc3\xa9\n");
    assert_int_equal(strlen(out), n);
    free(out);
    assert_int_equal(html_to_text("", 0, &out, &n), 0);
    assert_string_equal(out, "");
    free(out);
}

static void test_utf8_clean(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 5, "plain"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"a\0b", 3, "a\xef\xbf\xbd" "b"},
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},             /* overlong */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
        {"x\xe2\x82", 3, "x\xef\xbf\xbd\xef\xbf\xbd"},           /* truncated */
        {"\t\r\n\x01\x7f", 5, "\t\r\n\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xef\xbf\xbe", 3, "\xef\xbf\xbd"},                     /* U+FFFE */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *out = utf8_clean(cases[i].in, cases[i].len, &n);
        assert_non_null(out);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(n, strlen(cases[i].out));
        assert_true(utf8_is_clean(out, n));
        assert_int_equal(utf8_is_clean(cases[i].in, cases[i].len), !strcmp(cases[i].in, cases[i].out) &&
                                                                       cases[i].len == strlen(cases[i].out));
        free(out);
    }
}

/* ---- the corpora ---------------------------------------------------------- */

static int corpus_missing(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        return 0;
    }
    printf("corpus not found: %s, skipped\n", path);
    return 1;
}

static void test_corpus_dompurify(void **state)
{
    (void)state;
    const char *path = CORPORA "/dompurify/expect.json";
    if (corpus_missing(path))
        return;
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    assert_non_null(root);
    assert_true(json_is_array(root));
    size_t i, n = 0;
    json_t *item;
    json_array_foreach(root, i, item) {
        json_t *payload = json_object_get(item, "payload");
        assert_true(json_is_string(payload));
        run_vector(json_string_value(payload), json_string_length(payload));
        n++;
    }
    json_decref(root);
    printf("dompurify: %zu vectors sanitised, all safe\n", n);
    assert_true(n >= 200);
}

static void test_corpus_h5sc_vectors(void **state)
{
    (void)state;
    const char *path = CORPORA "/h5sc/vectors.txt";
    if (corpus_missing(path))
        return;
    size_t len;
    char *all = read_file(path, &len);
    assert_non_null(all);
    /* every vector is <div id="N">VECTOR//["'`-->]]>]</div> */
    static const char END[] = "//[\"'`-->]]>]</div>";
    size_t n = 0;
    for (char *p = strstr(all, "<div id=\""); p; p = strstr(p, "<div id=\"")) {
        char *start = strstr(p, "\">");
        char *end = start ? strstr(start, END) : NULL;
        if (!end)
            break;
        start += 2;
        run_vector(start, (size_t)(end - start));
        n++;
        p = end + sizeof END - 1;
    }
    run_vector(all, len); /* and all of them as one document */
    free(all);
    printf("h5sc vectors.txt: %zu vectors sanitised, all safe\n", n);
    assert_true(n >= 130);
}

/* Decodes the JavaScript single- or double-quoted string literal at *p
 * (pointing at the quote) and moves *p past it. Returns a malloc'd string. */
static char *js_string(const char **p)
{
    char q = **p;
    const char *s = *p + 1;
    char *out = malloc(strlen(s) * 4 + 1), *o = out;
    while (*s && *s != q) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        s++;
        unsigned cp;
        switch (*s) {
        case 'n': *o++ = '\n'; s++; break;
        case 'r': *o++ = '\r'; s++; break;
        case 't': *o++ = '\t'; s++; break;
        case 'u':
        case 'x': {
            int digits = *s == 'u' ? 4 : 2;
            char hex[5] = {0};
            memcpy(hex, s + 1, (size_t)digits);
            cp = (unsigned)strtoul(hex, NULL, 16);
            s += 1 + digits;
            if (cp >= 0xD800 && cp <= 0xDBFF && s[0] == '\\' && s[1] == 'u') {
                char lo[5] = {0};
                memcpy(lo, s + 2, 4);
                unsigned l = (unsigned)strtoul(lo, NULL, 16);
                if (l >= 0xDC00 && l <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (l - 0xDC00);
                    s += 6;
                }
            }
            if (cp < 0x80)
                *o++ = (char)cp;
            else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            if (*s)
                *o++ = *s++;
        }
    }
    *o = '\0';
    *p = *s ? s + 1 : s;
    return out;
}

/* Replaces every %name% of payloads.js in data. */
static char *h5sc_expand(const char *data, const char *payloads)
{
    size_t cap = strlen(data) * 2 + 4096;
    char *out = malloc(cap), *o = out;
    const char *s = data;
    while (*s) {
        const char *pct = s[0] == '%' ? strchr(s + 1, '%') : NULL;
        if (pct && pct - s > 1 && pct - s < 40) {
            char key[48];
            snprintf(key, sizeof key, "'%.*s'", (int)(pct - s - 1), s + 1);
            const char *k = strstr(payloads, key);
            const char *v = k ? strchr(k + strlen(key), '\'') : NULL;
            if (v) {
                char *val = js_string(&v);
                size_t vl = strlen(val), used = (size_t)(o - out);
                if (used + vl + strlen(pct) + 1 > cap) {
                    cap = (used + vl + strlen(pct) + 1) * 2;
                    out = realloc(out, cap);
                    o = out + used;
                }
                memcpy(o, val, vl);
                o += vl;
                free(val);
                s = pct + 1;
                continue;
            }
        }
        *o++ = *s++;
    }
    *o = '\0';
    return out;
}

static void test_corpus_h5sc_items(void **state)
{
    (void)state;
    const char *path = CORPORA "/h5sc/items.js", *ppath = CORPORA "/h5sc/payloads.js";
    if (corpus_missing(path) || corpus_missing(ppath))
        return;
    size_t len, plen;
    char *items = read_file(path, &len), *payloads = read_file(ppath, &plen);
    assert_non_null(items);
    assert_non_null(payloads);
    size_t n = 0;
    for (const char *p = strstr(items, "'data'"); p; p = strstr(p, "'data'")) {
        const char *q = p + 6;
        while (*q == ' ' || *q == '\t' || *q == ':')
            q++;
        if (*q != '\'' && *q != '"') {
            p = q;
            continue;
        }
        char *data = js_string(&q);
        char *vector = h5sc_expand(data, payloads);
        run_vector(vector, strlen(vector));
        free(vector);
        free(data);
        n++;
        p = q;
    }
    free(items);
    free(payloads);
    printf("h5sc items.js: %zu vectors sanitised, all safe\n", n);
    assert_true(n >= 140);
}

static void test_corpus_owasp(void **state)
{
    (void)state;
    const char *path = CORPORA "/owasp-xss-evasion/cheatsheets/XSS_Filter_Evasion_Cheat_Sheet.md";
    if (corpus_missing(path))
        return;
    size_t len;
    char *md = read_file(path, &len);
    assert_non_null(md);
    size_t n = 0;
    char *p = md;
    /* fenced code blocks: a line starting with ``` opens, the next one closes */
    while ((p = strstr(p, "```"))) {
        if (p != md && p[-1] != '\n') {
            p += 3;
            continue;
        }
        char *body = strchr(p, '\n');
        if (!body)
            break;
        body++;
        char *end = strstr(body, "\n```");
        if (!end)
            break;
        run_vector(body, (size_t)(end - body));
        n++;
        p = strchr(end + 1, '\n');
        if (!p)
            break;
    }
    run_vector(md, len); /* the whole page, too */
    free(md);
    printf("owasp-xss-evasion: %zu code blocks sanitised, all safe\n", n);
    assert_true(n >= 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_formatting),
        cmocka_unit_test(test_escapes_text_and_values),
        cmocka_unit_test(test_drops_active_content),
        cmocka_unit_test(test_drops_handlers_and_unknown_attributes),
        cmocka_unit_test(test_refuses_script_urls),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_remote_images),
        cmocka_unit_test(test_styles),
        cmocka_unit_test(test_mxss_classics),
        cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_html_to_text),
        cmocka_unit_test(test_utf8_clean),
        cmocka_unit_test(test_corpus_dompurify),
        cmocka_unit_test(test_corpus_h5sc_vectors),
        cmocka_unit_test(test_corpus_h5sc_items),
        cmocka_unit_test(test_corpus_owasp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
