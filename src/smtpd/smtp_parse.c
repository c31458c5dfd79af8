/*
 * smtp_parse.c — see smtp_parse.h.
 *
 * The grammar is RFC 5321's, read the way experienced MTAs read it: liberal
 * where real senders deviate harmlessly (a space after "FROM:", consecutive
 * dots in a local part, a source route that is not strictly "@a,@b:", a path
 * without angle brackets), strict wherever a byte could change meaning further
 * down the line (control characters, bare CR, unbalanced quotes and brackets,
 * non-ASCII without SMTPUTF8, characters that would break the Received header).
 */
#include "smtpd/smtp_parse.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

const char smtp_reply_line_too_long[] = "500 5.5.2 Error: line too long";

static const char r_bad_syntax[] = "500 5.5.2 Error: bad syntax";
static const char r_unknown[] = "500 5.5.1 Error: command not recognized";
static const char r_bad_sender[] = "553 5.1.7 Bad sender address syntax";
static const char r_bad_rcpt[] = "553 5.1.3 Bad recipient address syntax";
static const char r_need_utf8[] = "553 5.6.7 Non-ASCII address requires SMTPUTF8";
static const char r_dup_param[] = "501 5.5.4 Duplicate parameter";
static const char r_bad_param[] = "501 5.5.4 Bad parameter syntax";

static const struct verb_def {
    const char *name;
    enum smtp_verb verb;
    const char *usage; /* the 501 reply */
} verbs[] = {
    {"HELO", SMTP_HELO, "501 5.5.4 Syntax: HELO hostname"},
    {"EHLO", SMTP_EHLO, "501 5.5.4 Syntax: EHLO hostname"},
    {"MAIL", SMTP_MAIL, "501 5.5.4 Syntax: MAIL FROM:<address>"},
    {"RCPT", SMTP_RCPT, "501 5.5.4 Syntax: RCPT TO:<address>"},
    {"DATA", SMTP_DATA, "501 5.5.4 Syntax: DATA"},
    {"BDAT", SMTP_BDAT, "501 5.5.4 Syntax: BDAT size [LAST]"},
    {"RSET", SMTP_RSET, "501 5.5.4 Syntax: RSET"},
    {"NOOP", SMTP_NOOP, NULL},
    {"QUIT", SMTP_QUIT, "501 5.5.4 Syntax: QUIT"},
    {"VRFY", SMTP_VRFY, "501 5.5.4 Syntax: VRFY address"},
    {"EXPN", SMTP_EXPN, "501 5.5.4 Syntax: EXPN list"},
    {"HELP", SMTP_HELP, NULL},
    {"STARTTLS", SMTP_STARTTLS, "501 5.5.4 Syntax: STARTTLS"},
    {"AUTH", SMTP_AUTH, "501 5.5.4 Syntax: AUTH mechanism [initial-response]"},
};

const char *smtp_verb_name(enum smtp_verb verb)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (verbs[i].verb == verb)
            return verbs[i].name;
    return "UNKNOWN";
}

/* A cursor over the line: [p, end). */
struct cur {
    const char *p;
    const char *end;
};

static int is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

static void skip_spaces(struct cur *c)
{
    while (c->p < c->end && *c->p == ' ')
        c->p++;
}

/* Matches a case-insensitive literal and advances past it. */
static int eat_ci(struct cur *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || strncasecmp(c->p, lit, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* RFC 5322 atext (the characters of a dot-atom other than '.'). */
static int is_atext(unsigned char c)
{
    return is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* ------------------------------------------------------------------ addresses */

enum path_status { PATH_OK, PATH_BAD, PATH_NEEDS_UTF8 };

/*
 * Validates the characters of [p, end) against a class, stepping over UTF-8
 * sequences. Returns PATH_OK, PATH_BAD, or PATH_NEEDS_UTF8 when the text is
 * otherwise fine but non-ASCII and utf8 is off.
 */
static enum path_status check_utf8_run(const unsigned char *p, const unsigned char *end, int utf8,
                                       int (*ascii_ok)(unsigned char))
{
    int non_ascii = 0;
    while (p < end) {
        if (*p < 0x80) {
            if (!ascii_ok(*p))
                return PATH_BAD;
            p++;
            continue;
        }
        size_t n = utf8_seq(p, end);
        if (n == 0)
            return PATH_BAD;
        non_ascii = 1;
        p += n;
    }
    return non_ascii && !utf8 ? PATH_NEEDS_UTF8 : PATH_OK;
}

static int is_dot_string_char(unsigned char c)
{
    return is_atext(c) || c == '.';
}

/* RFC 5321 qtextSMTP plus the escaped characters of quoted-pairSMTP. */
static int is_qtext(unsigned char c)
{
    return c >= 32 && c <= 126;
}

static enum path_status check_local(const unsigned char *p, const unsigned char *end, int utf8)
{
    if (p == end)
        return PATH_BAD;
    if (*p != '"')
        return check_utf8_run(p, end, utf8, is_dot_string_char);
    /* Quoted-string: the closing quote must be the last byte. */
    if (end - p < 2 || end[-1] != '"')
        return PATH_BAD;
    int non_ascii = 0;
    for (const unsigned char *q = p + 1; q < end - 1;) {
        if (*q == '\\') {
            if (q + 1 >= end - 1 || !is_qtext(q[1]))
                return PATH_BAD;
            q += 2;
        } else if (*q == '"') {
            return PATH_BAD;
        } else if (*q >= 0x80) {
            size_t n = utf8_seq(q, end - 1);
            if (n == 0)
                return PATH_BAD;
            non_ascii = 1;
            q += n;
        } else if (is_qtext(*q)) {
            q++;
        } else {
            return PATH_BAD;
        }
    }
    return non_ascii && !utf8 ? PATH_NEEDS_UTF8 : PATH_OK;
}

static int is_label_char(unsigned char c)
{
    return is_alnum(c) || c == '-';
}

/* A domain name (LDH labels, or U-labels with SMTPUTF8) or an address literal. */
static enum path_status check_domain(const unsigned char *p, const unsigned char *end, int utf8)
{
    size_t len = (size_t)(end - p);
    if (len == 0 || len > SMTP_DOMAIN_MAX)
        return PATH_BAD;
    if (*p == '[') {
        if (end[-1] != ']' || len < 3 || len > 64)
            return PATH_BAD;
        char lit[64];
        memcpy(lit, p + 1, len - 2);
        lit[len - 2] = '\0';
        unsigned char bin[16];
        if (strncasecmp(lit, "IPv6:", 5) == 0)
            return inet_pton(AF_INET6, lit + 5, bin) == 1 ? PATH_OK : PATH_BAD;
        return inet_pton(AF_INET, lit, bin) == 1 ? PATH_OK : PATH_BAD;
    }
    enum path_status worst = PATH_OK;
    const unsigned char *label = p;
    for (const unsigned char *q = p;; q++) {
        if (q == end || *q == '.') {
            size_t n = (size_t)(q - label);
            if (n == 0 || n > 63 || label[0] == '-' || q[-1] == '-')
                return PATH_BAD;
            enum path_status st = check_utf8_run(label, q, utf8, is_label_char);
            if (st == PATH_BAD)
                return PATH_BAD;
            if (st == PATH_NEEDS_UTF8)
                worst = PATH_NEEDS_UTF8;
            if (q == end)
                break;
            label = q + 1;
        }
    }
    return worst;
}

/*
 * Finds the extent of a path starting at c->p: "<...>" (the closing bracket
 * found outside quotes) or, leniently, a bare address up to the next space.
 * Sets [*in, *in_end) to the text inside the brackets and advances c.
 * Returns 0, or -1 when the brackets or quotes do not balance.
 */
static int find_path(struct cur *c, const char **in, const char **in_end)
{
    if (c->p < c->end && *c->p == '<') {
        int quoted = 0;
        for (const char *q = c->p + 1; q < c->end; q++) {
            if (quoted && *q == '\\' && q + 1 < c->end) {
                q++;
            } else if (*q == '"') {
                quoted = !quoted;
            } else if (!quoted && *q == '>') {
                *in = c->p + 1;
                *in_end = q;
                c->p = q + 1;
                return 0;
            } else if (!quoted && *q == '<') {
                return -1;
            }
        }
        return -1;
    }
    const char *start = c->p;
    while (c->p < c->end && *c->p != ' ')
        c->p++;
    if (c->p == start)
        return -1;
    *in = start;
    *in_end = c->p;
    return 0;
}

/*
 * Validates the text inside the brackets and copies the mailbox (source route
 * removed) into out. is_mail allows the null path ("" or "@", the latter as
 * OpenSMTPD does). Sets *null_path for the null sender.
 */
static enum path_status parse_mailbox(const char *in, const char *in_end, int is_mail, int utf8,
                                      char out[ADDR_MAX + 1], int *null_path)
{
    *null_path = 0;
    out[0] = '\0';
    if (in == in_end || (is_mail && in_end - in == 1 && *in == '@')) {
        if (!is_mail)
            return PATH_BAD;
        *null_path = 1;
        return PATH_OK;
    }
    /* Source route: RFC 5321 says "@a,@b:" and tells servers to ignore it;
     * like OpenSMTPD we drop whatever precedes an unquoted ':' (a ':' cannot
     * appear in an unquoted local part or in a domain name). */
    const char *at = NULL;
    for (const char *q = in_end; q > in; q--)
        if (q[-1] == '@') {
            at = q - 1;
            break;
        }
    if (!at)
        return PATH_BAD;
    if (*in != '"') {
        /* Only before the mailbox's '@': an IPv6 literal has colons too. */
        const char *colon = NULL;
        for (const char *q = in; q < at && *q != '"'; q++)
            if (*q == ':') {
                colon = q;
                break;
            }
        if (colon)
            in = colon + 1;
    }
    if (at <= in || at + 1 == in_end)
        return PATH_BAD; /* no local part ("@a", "a:@a") or no domain */
    size_t len = (size_t)(in_end - in);
    if (len > ADDR_MAX)
        return PATH_BAD;
    /* A recipient must fit the RFC limit because we look it up and store it;
     * senders (SRS, VERP) often exceed 64 octets and are only carried along. */
    if (!is_mail && at - in > 64)
        return PATH_BAD;
    enum path_status local = check_local((const unsigned char *)in, (const unsigned char *)at, utf8);
    if (local == PATH_BAD)
        return PATH_BAD;
    enum path_status dom =
        check_domain((const unsigned char *)at + 1, (const unsigned char *)in_end, utf8);
    if (dom == PATH_BAD)
        return PATH_BAD;
    if (local == PATH_NEEDS_UTF8 || dom == PATH_NEEDS_UTF8)
        return PATH_NEEDS_UTF8;
    memcpy(out, in, len);
    out[len] = '\0';
    return PATH_OK;
}

/* ------------------------------------------------------------ ESMTP parameters */

struct param {
    const char *key;
    size_t key_len;
    const char *val; /* NULL: no '=' */
    size_t val_len;
};

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); esmtp-value is any
 * printable character but '=' (and UTF-8 under RFC 6531). Returns 0 or -1. */
static int next_param(struct cur *c, struct param *pm)
{
    pm->key = c->p;
    while (c->p < c->end && (is_alnum((unsigned char)*c->p) || (*c->p == '-' && c->p > pm->key)))
        c->p++;
    pm->key_len = (size_t)(c->p - pm->key);
    if (pm->key_len == 0)
        return -1;
    pm->val = NULL;
    pm->val_len = 0;
    if (c->p < c->end && *c->p == '=') {
        pm->val = ++c->p;
        while (c->p < c->end && *c->p != ' ') {
            unsigned char ch = (unsigned char)*c->p;
            if (ch == '=' || ch < 33 || ch == 127)
                return -1;
            c->p++;
        }
        pm->val_len = (size_t)(c->p - pm->val);
        if (pm->val_len == 0)
            return -1;
    }
    if (c->p < c->end && *c->p != ' ')
        return -1;
    return 0;
}

static int key_is(const struct param *pm, const char *name)
{
    return pm->key_len == strlen(name) && strncasecmp(pm->key, name, pm->key_len) == 0;
}

static int val_is(const struct param *pm, const char *v)
{
    return pm->val && pm->val_len == strlen(v) && strncasecmp(pm->val, v, pm->val_len) == 0;
}

/* RFC 3461 xtext: printable ASCII except '+' and '=', or "+" 2HEXCHAR. */
static int is_upper_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'F');
}

static int is_xtext(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '+') {
            if (n - i < 3 || !is_upper_hex((unsigned char)p[i + 1]) ||
                !is_upper_hex((unsigned char)p[i + 2]))
                return 0;
            i += 2;
        } else if (ch < 33 || ch > 126 || ch == '=') {
            return 0;
        }
    }
    return 1;
}

static int parse_size(const char *p, size_t n, uint64_t *out)
{
    if (n == 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)p[i]))
            return -1;
        unsigned d = (unsigned)(p[i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return 0;
}

static int mail_param(struct smtp_cmd *cmd, const struct param *pm, unsigned *seen)
{
    enum { S_SIZE = 1, S_BODY = 2, S_UTF8 = 4, S_RET = 8, S_ENVID = 16, S_AUTH = 32 };
    unsigned bit;
    if (key_is(pm, "SIZE")) {
        bit = S_SIZE;
        if (!pm->val || parse_size(pm->val, pm->val_len, &cmd->size) != 0) {
            cmd->reply = "501 5.5.4 Bad SIZE syntax";
            return -1;
        }
        cmd->has_size = 1;
    } else if (key_is(pm, "BODY")) {
        bit = S_BODY;
        if (val_is(pm, "7BIT"))
            cmd->body = SMTP_BODY_7BIT;
        else if (val_is(pm, "8BITMIME"))
            cmd->body = SMTP_BODY_8BITMIME;
        else if (val_is(pm, "BINARYMIME")) {
            cmd->reply = "504 5.5.4 BODY=BINARYMIME is not supported";
            return -1;
        } else {
            cmd->reply = "501 5.5.4 Bad BODY syntax";
            return -1;
        }
    } else if (key_is(pm, "SMTPUTF8")) {
        bit = S_UTF8;
        if (pm->val) {
            cmd->reply = "501 5.5.4 SMTPUTF8 takes no value";
            return -1;
        }
        cmd->smtputf8 = 1;
    } else if (key_is(pm, "RET")) {
        bit = S_RET;
        if (val_is(pm, "FULL"))
            cmd->ret = 1;
        else if (val_is(pm, "HDRS"))
            cmd->ret = 2;
        else {
            cmd->reply = "501 5.5.4 Bad RET syntax";
            return -1;
        }
    } else if (key_is(pm, "ENVID")) {
        bit = S_ENVID;
        if (!pm->val || pm->val_len > SMTP_ENVID_MAX || !is_xtext(pm->val, pm->val_len)) {
            cmd->reply = "501 5.5.4 Bad ENVID syntax";
            return -1;
        }
        cmd->has_envid = 1;
    } else if (key_is(pm, "AUTH")) {
        /* RFC 4954 5: the original submitter; we do not trust it, only accept it. */
        bit = S_AUTH;
        if (!pm->val || !(val_is(pm, "<>") || is_xtext(pm->val, pm->val_len))) {
            cmd->reply = "501 5.5.4 Bad AUTH parameter syntax";
            return -1;
        }
    } else {
        cmd->reply = "555 5.5.4 Unsupported MAIL parameter";
        return -1;
    }
    if (*seen & bit) {
        cmd->reply = r_dup_param;
        return -1;
    }
    *seen |= bit;
    return 0;
}

static int notify_ok(const char *p, size_t n)
{
    if (n == 5 && strncasecmp(p, "NEVER", 5) == 0)
        return 1;
    unsigned seen = 0;
    while (n > 0) {
        const char *comma = memchr(p, ',', n);
        size_t w = comma ? (size_t)(comma - p) : n;
        unsigned bit;
        if (w == 7 && strncasecmp(p, "SUCCESS", 7) == 0)
            bit = 1;
        else if (w == 7 && strncasecmp(p, "FAILURE", 7) == 0)
            bit = 2;
        else if (w == 5 && strncasecmp(p, "DELAY", 5) == 0)
            bit = 4;
        else
            return 0;
        if (seen & bit)
            return 0;
        seen |= bit;
        if (!comma)
            return 1;
        if (w + 1 == n)
            return 0; /* trailing comma */
        p += w + 1;
        n -= w + 1;
    }
    return 0;
}

static int rcpt_param(struct smtp_cmd *cmd, const struct param *pm, unsigned *seen)
{
    unsigned bit;
    if (key_is(pm, "NOTIFY")) {
        bit = 1;
        if (!pm->val || !notify_ok(pm->val, pm->val_len)) {
            cmd->reply = "501 5.5.4 Bad NOTIFY syntax";
            return -1;
        }
        cmd->has_notify = 1;
    } else if (key_is(pm, "ORCPT")) {
        /* addr-type ";" xtext (RFC 3461 4.2); utf-8-addr-xtext is a superset we
         * do not decode, so only the shape is checked. */
        bit = 2;
        const char *semi = pm->val ? memchr(pm->val, ';', pm->val_len) : NULL;
        if (!semi || semi == pm->val || semi + 1 == pm->val + pm->val_len) {
            cmd->reply = "501 5.5.4 Bad ORCPT syntax";
            return -1;
        }
        for (const char *q = pm->val; q < semi; q++)
            if (!is_alnum((unsigned char)*q) && *q != '-') {
                cmd->reply = "501 5.5.4 Bad ORCPT syntax";
                return -1;
            }
        cmd->has_orcpt = 1;
    } else {
        cmd->reply = "555 5.5.4 Unsupported RCPT parameter";
        return -1;
    }
    if (*seen & bit) {
        cmd->reply = r_dup_param;
        return -1;
    }
    *seen |= bit;
    return 0;
}

/* -------------------------------------------------------------------- commands */

/* Parses "FROM:<path> params" or "TO:<path> params". */
static int parse_mail_rcpt(struct cur *c, struct smtp_cmd *cmd, const char *usage, unsigned flags)
{
    int is_mail = cmd->verb == SMTP_MAIL;
    skip_spaces(c);
    if (!eat_ci(c, is_mail ? "FROM:" : "TO:")) {
        cmd->reply = usage;
        return -1;
    }
    skip_spaces(c);
    const char *in, *in_end;
    if (find_path(c, &in, &in_end) != 0) {
        cmd->reply = usage;
        return -1;
    }
    if (c->p < c->end && *c->p != ' ') {
        cmd->reply = usage;
        return -1;
    }
    unsigned seen = 0;
    for (;;) {
        skip_spaces(c);
        if (c->p == c->end)
            break;
        struct param pm;
        if (next_param(c, &pm) != 0) {
            cmd->reply = r_bad_param;
            return -1;
        }
        if ((is_mail ? mail_param(cmd, &pm, &seen) : rcpt_param(cmd, &pm, &seen)) != 0)
            return -1;
    }
    /* The address is checked last: SMTPUTF8 on the same MAIL line allows UTF-8 in it. */
    int utf8 = (flags & SMTP_PARSE_UTF8) || cmd->smtputf8;
    int null_path;
    switch (parse_mailbox(in, in_end, is_mail, utf8, cmd->path, &null_path)) {
    case PATH_OK:
        return 0;
    case PATH_NEEDS_UTF8:
        cmd->reply = r_need_utf8;
        return -1;
    default:
        cmd->reply = is_mail ? r_bad_sender : r_bad_rcpt;
        return -1;
    }
}

/* HELO/EHLO take one name; characters that could break the Received header
 * ("from NAME (...)") are refused. Anything after the name is ignored, as
 * Postfix does for broken clients. */
static int is_helo_char(unsigned char c)
{
    return c > 32 && c < 127 && !strchr("()<>;\"\\,", c);
}

static int parse_helo(struct cur *c, struct smtp_cmd *cmd, const char *usage)
{
    skip_spaces(c);
    const char *start = c->p;
    while (c->p < c->end && *c->p != ' ') {
        if (!is_helo_char((unsigned char)*c->p)) {
            cmd->reply = usage;
            return -1;
        }
        c->p++;
    }
    size_t n = (size_t)(c->p - start);
    if (n == 0 || n > SMTP_DOMAIN_MAX) {
        cmd->reply = usage;
        return -1;
    }
    memcpy(cmd->domain, start, n);
    cmd->domain[n] = '\0';
    return 0;
}

static int parse_bdat(struct cur *c, struct smtp_cmd *cmd, const char *usage)
{
    if (c->p == c->end || *c->p != ' ') {
        cmd->reply = usage;
        return -1;
    }
    skip_spaces(c);
    const char *start = c->p;
    while (c->p < c->end && is_digit((unsigned char)*c->p))
        c->p++;
    /* 20 digits would overflow; nobody sends a chunk of 10^19 octets. */
    if (c->p == start || c->p - start > 19 || parse_size(start, (size_t)(c->p - start), &cmd->chunk_size) != 0) {
        cmd->reply = usage;
        return -1;
    }
    if (c->p < c->end && *c->p != ' ') {
        cmd->reply = usage;
        return -1;
    }
    skip_spaces(c);
    if (c->p < c->end) {
        if (!eat_ci(c, "LAST")) {
            cmd->reply = usage;
            return -1;
        }
        cmd->last = 1;
        skip_spaces(c);
    }
    if (c->p != c->end) {
        cmd->reply = usage;
        return -1;
    }
    return 0;
}

static int is_b64(unsigned char c)
{
    return is_alnum(c) || c == '+' || c == '/';
}

static int parse_auth(struct cur *c, struct smtp_cmd *cmd, const char *usage)
{
    skip_spaces(c);
    size_t n = 0;
    while (c->p < c->end && *c->p != ' ') {
        unsigned char ch = (unsigned char)*c->p;
        if (n == SMTP_AUTH_MECH_MAX || !(is_alnum(ch) || ch == '-' || ch == '_')) {
            cmd->reply = usage;
            return -1;
        }
        cmd->auth_mech[n++] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
        c->p++;
    }
    cmd->auth_mech[n] = '\0';
    if (n == 0) {
        cmd->reply = usage;
        return -1;
    }
    skip_spaces(c);
    if (c->p == c->end)
        return 0;
    /* initial-response = base64 / "=" (RFC 4954 4) */
    const char *start = c->p;
    if (c->end - start == 1 && *start == '=') {
        cmd->auth_initial = start;
        return 0;
    }
    size_t pad = 0, len = (size_t)(c->end - start);
    for (const char *q = start; q < c->end; q++) {
        if (*q == '=')
            pad++;
        else if (pad || !is_b64((unsigned char)*q)) {
            cmd->reply = "501 5.5.2 Invalid base64 data";
            return -1;
        }
    }
    if (pad > 2 || len % 4 != 0) {
        cmd->reply = "501 5.5.2 Invalid base64 data";
        return -1;
    }
    cmd->auth_initial = start;
    return 0;
}

/* The rest of the line after the verb must be empty (spaces tolerated). */
static int no_args(struct cur *c, struct smtp_cmd *cmd, const char *usage)
{
    skip_spaces(c);
    if (c->p != c->end) {
        cmd->reply = usage;
        return -1;
    }
    return 0;
}

static const char *optional_arg(struct cur *c)
{
    skip_spaces(c);
    return c->p < c->end ? c->p : NULL;
}

int smtp_parse_command(const char *line, size_t len, unsigned flags, struct smtp_cmd *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    struct cur c = {line, line + len};

    /* A command line is printable text: a control byte (NUL, bare CR, ...)
     * never belongs in one, and letting it through would reach logs and headers. */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if ((ch < 32 && ch != '\t') || ch == 127) {
            cmd->reply = r_bad_syntax;
            return SMTP_PARSE_ERROR;
        }
    }
    const char *vstart = c.p;
    while (c.p < c.end && is_alpha((unsigned char)*c.p))
        c.p++;
    size_t vlen = (size_t)(c.p - vstart);
    if (vlen == 0 || (c.p < c.end && *c.p != ' ')) {
        cmd->reply = vlen == 0 ? r_bad_syntax : r_unknown;
        return SMTP_PARSE_ERROR;
    }
    const struct verb_def *def = NULL;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strlen(verbs[i].name) == vlen && strncasecmp(verbs[i].name, vstart, vlen) == 0) {
            def = &verbs[i];
            break;
        }
    if (!def) {
        cmd->reply = r_unknown;
        return SMTP_PARSE_ERROR;
    }
    cmd->verb = def->verb;
    size_t limit = def->verb == SMTP_MAIL || def->verb == SMTP_RCPT ? SMTP_PARAM_LINE_MAX
                   : def->verb == SMTP_AUTH                         ? SMTP_AUTH_LINE_MAX
                                                                    : SMTP_CMD_LINE_MAX;
    if (len + 2 > limit) {
        cmd->reply = smtp_reply_line_too_long;
        return SMTP_PARSE_ERROR;
    }
    /* Tabs are tolerated only where the line is free text. */
    if (memchr(line, '\t', len) && def->verb != SMTP_NOOP && def->verb != SMTP_HELP &&
        def->verb != SMTP_VRFY && def->verb != SMTP_EXPN) {
        cmd->reply = def->usage;
        return SMTP_PARSE_ERROR;
    }
    int rc = 0;
    switch (def->verb) {
    case SMTP_HELO:
    case SMTP_EHLO:
        rc = parse_helo(&c, cmd, def->usage);
        break;
    case SMTP_MAIL:
    case SMTP_RCPT:
        rc = parse_mail_rcpt(&c, cmd, def->usage, flags);
        break;
    case SMTP_BDAT:
        rc = parse_bdat(&c, cmd, def->usage);
        break;
    case SMTP_AUTH:
        rc = parse_auth(&c, cmd, def->usage);
        break;
    case SMTP_VRFY:
    case SMTP_EXPN:
        cmd->arg = optional_arg(&c);
        if (!cmd->arg) {
            cmd->reply = def->usage;
            rc = -1;
        }
        break;
    case SMTP_NOOP:
    case SMTP_HELP:
        cmd->arg = optional_arg(&c);
        break;
    default:
        rc = no_args(&c, cmd, def->usage);
        break;
    }
    return rc == 0 ? SMTP_PARSE_OK : SMTP_PARSE_ERROR;
}
