/*
 * test_smtpd_script.c — replays OpenSMTPD's regress scripts (smtpscript,
 * ../shared/corpora/opensmtpd-smtpscript) against the real SMTP server over
 * socketpairs (test_smtpd_harness.h): every "writeln" goes to the server and
 * every "expect smtp ok|helo|permfail|tempfail" / "expect disconnect" is
 * checked against its replies.
 *
 * A small interpreter for the part of the smtpscript language these files use:
 * proc, test-case (name, no-autoconnect, expect fail, skip), call, repeat,
 * blocks, writeln, expect, starttls. Where lifeboat's policy differs from
 * OpenSMTPD's on purpose, the case is listed in `deviations` with the reason.
 * The scripts run with OpenSMTPD's hard error limit (5), which they assume.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_smtpd_harness.h"

#include <dirent.h>
#include <signal.h>

#define CORPUS_DIR LB_SOURCE_DIR "/../shared/corpora/opensmtpd-smtpscript/regress/smtp"

/* ------------------------------------------------------------------ parsing */

enum node_kind {
    N_BLOCK,
    N_WRITELN,
    N_EXPECT_SMTP,
    N_EXPECT_DISCONNECT,
    N_REPEAT,
    N_CALL,
    N_STARTTLS,
    N_OTHER, /* sleep, random, fail, connect, noop: the script engine's own statements */
};

struct node {
    enum node_kind kind;
    int line;
    char *str;          /* writeln text, expect class, call name */
    int count;          /* repeat */
    struct node **kids; /* block items, repeat body */
    size_t nkids;
};

struct proc {
    char *name;
    struct node *body;
};

struct testcase {
    char *name;
    int line;
    int no_autoconnect, expect_fail, skip;
    struct node *body;
};

struct script {
    const char *file;
    char *text;
    size_t pos, len;
    int line;
    struct proc procs[16];
    size_t nprocs;
    struct testcase cases[64];
    size_t ncases;
    char error[256];
};

/* Tokens: words, "strings", '{', '}'. Returns 0 at the end. */
static int next_token(struct script *sc, char *tok, size_t toklen, int *is_string)
{
    *is_string = 0;
    for (;;) {
        while (sc->pos < sc->len && strchr(" \t\r\n", sc->text[sc->pos])) {
            if (sc->text[sc->pos] == '\n')
                sc->line++;
            sc->pos++;
        }
        if (sc->pos < sc->len && sc->text[sc->pos] == '#') {
            while (sc->pos < sc->len && sc->text[sc->pos] != '\n')
                sc->pos++;
            continue;
        }
        break;
    }
    if (sc->pos >= sc->len)
        return 0;
    size_t n = 0;
    char ch = sc->text[sc->pos];
    if (ch == '{' || ch == '}') {
        tok[n++] = ch;
        sc->pos++;
    } else if (ch == '"') {
        *is_string = 1;
        sc->pos++;
        while (sc->pos < sc->len && sc->text[sc->pos] != '"') {
            char c = sc->text[sc->pos++];
            if (c == '\\' && sc->pos < sc->len)
                c = sc->text[sc->pos++];
            if (c == '\n')
                sc->line++;
            if (n + 1 < toklen)
                tok[n++] = c;
        }
        sc->pos++; /* the closing quote */
    } else {
        while (sc->pos < sc->len && !strchr(" \t\r\n{}\"#", sc->text[sc->pos]))
            if (n + 1 < toklen)
                tok[n++] = sc->text[sc->pos++];
            else
                sc->pos++;
    }
    tok[n] = '\0';
    return 1;
}

/* Peeks at the next token without consuming it. */
static int peek_token(struct script *sc, char *tok, size_t toklen, int *is_string)
{
    size_t pos = sc->pos;
    int line = sc->line;
    int r = next_token(sc, tok, toklen, is_string);
    sc->pos = pos;
    sc->line = line;
    return r;
}

static struct node *new_node(enum node_kind kind, int line)
{
    struct node *n = calloc(1, sizeof *n);
    n->kind = kind;
    n->line = line;
    return n;
}

static void add_kid(struct node *parent, struct node *kid)
{
    parent->kids = realloc(parent->kids, (parent->nkids + 1) * sizeof *parent->kids);
    parent->kids[parent->nkids++] = kid;
}

static void free_node(struct node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        free_node(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

static struct node *parse_block(struct script *sc);

static struct node *parse_stmt(struct script *sc)
{
    char tok[4096];
    int str;
    if (!next_token(sc, tok, sizeof tok, &str))
        return NULL;
    int line = sc->line;
    if (!str && strcmp(tok, "{") == 0) {
        sc->pos--; /* let parse_block see the brace */
        return parse_block(sc);
    }
    if (strcmp(tok, "writeln") == 0) {
        struct node *n = new_node(N_WRITELN, line);
        next_token(sc, tok, sizeof tok, &str);
        n->str = strdup(tok);
        return n;
    }
    if (strcmp(tok, "expect") == 0) {
        next_token(sc, tok, sizeof tok, &str);
        if (strcmp(tok, "disconnect") == 0)
            return new_node(N_EXPECT_DISCONNECT, line);
        struct node *n = new_node(N_EXPECT_SMTP, line);
        char next[64];
        if (peek_token(sc, next, sizeof next, &str) && !str &&
            (!strcmp(next, "ok") || !strcmp(next, "helo") || !strcmp(next, "permfail") ||
             !strcmp(next, "tempfail"))) {
            next_token(sc, next, sizeof next, &str);
            n->str = strdup(next);
        } else {
            n->str = strdup("any");
        }
        return n;
    }
    if (strcmp(tok, "repeat") == 0) {
        struct node *n = new_node(N_REPEAT, line);
        next_token(sc, tok, sizeof tok, &str);
        n->count = atoi(tok);
        struct node *body = parse_stmt(sc);
        if (body)
            add_kid(n, body);
        return n;
    }
    if (strcmp(tok, "call") == 0) {
        struct node *n = new_node(N_CALL, line);
        next_token(sc, tok, sizeof tok, &str);
        n->str = strdup(tok);
        return n;
    }
    if (strcmp(tok, "starttls") == 0)
        return new_node(N_STARTTLS, line);
    if (strcmp(tok, "noop") == 0)
        return new_node(N_OTHER, line);
    if (strcmp(tok, "random") == 0) {
        struct node *n = new_node(N_OTHER, line);
        free_node(parse_block(sc));
        return n;
    }
    if (strcmp(tok, "sleep") == 0 || strcmp(tok, "fail") == 0) {
        next_token(sc, tok, sizeof tok, &str);
        return new_node(N_OTHER, line);
    }
    if (strcmp(tok, "connect") == 0) {
        next_token(sc, tok, sizeof tok, &str); /* host */
        next_token(sc, tok, sizeof tok, &str); /* "port" */
        next_token(sc, tok, sizeof tok, &str); /* number */
        return new_node(N_OTHER, line);
    }
    snprintf(sc->error, sizeof sc->error, "%s:%d: unknown statement \"%.100s\"", sc->file, line, tok);
    return NULL;
}

static struct node *parse_block(struct script *sc)
{
    char tok[64];
    int str;
    if (!next_token(sc, tok, sizeof tok, &str) || strcmp(tok, "{") != 0) {
        snprintf(sc->error, sizeof sc->error, "%s:%d: expected {", sc->file, sc->line);
        return NULL;
    }
    struct node *b = new_node(N_BLOCK, sc->line);
    for (;;) {
        if (!peek_token(sc, tok, sizeof tok, &str)) {
            snprintf(sc->error, sizeof sc->error, "%s: unterminated block", sc->file);
            return b;
        }
        if (!str && strcmp(tok, "}") == 0) {
            next_token(sc, tok, sizeof tok, &str);
            return b;
        }
        struct node *n = parse_stmt(sc);
        if (!n)
            return b;
        add_kid(b, n);
    }
}

static int parse_script(struct script *sc)
{
    char tok[256];
    int str;
    while (!sc->error[0] && next_token(sc, tok, sizeof tok, &str)) {
        if (strcmp(tok, "proc") == 0) {
            struct proc *p = &sc->procs[sc->nprocs++];
            next_token(sc, tok, sizeof tok, &str);
            p->name = strdup(tok);
            /* Parameters (%foo) are declared but not used by these scripts. */
            while (peek_token(sc, tok, sizeof tok, &str) && tok[0] == '%')
                next_token(sc, tok, sizeof tok, &str);
            p->body = parse_block(sc);
        } else if (strcmp(tok, "test-case") == 0) {
            struct testcase *t = &sc->cases[sc->ncases++];
            t->line = sc->line;
            while (peek_token(sc, tok, sizeof tok, &str) && strcmp(tok, "{") != 0) {
                next_token(sc, tok, sizeof tok, &str);
                if (strcmp(tok, "name") == 0) {
                    next_token(sc, tok, sizeof tok, &str);
                    t->name = strdup(tok);
                } else if (strcmp(tok, "no-autoconnect") == 0) {
                    t->no_autoconnect = 1;
                } else if (strcmp(tok, "skip") == 0) {
                    t->skip = 1;
                } else if (strcmp(tok, "expect") == 0) {
                    next_token(sc, tok, sizeof tok, &str); /* "fail" */
                    t->expect_fail = 1;
                }
            }
            t->body = parse_block(sc);
        } else {
            snprintf(sc->error, sizeof sc->error, "%s:%d: unexpected \"%.100s\"", sc->file, sc->line, tok);
        }
    }
    return sc->error[0] ? -1 : 0;
}

static void free_script(struct script *sc)
{
    for (size_t i = 0; i < sc->nprocs; i++) {
        free(sc->procs[i].name);
        free_node(sc->procs[i].body);
    }
    for (size_t i = 0; i < sc->ncases; i++) {
        free(sc->cases[i].name);
        free_node(sc->cases[i].body);
    }
    free(sc->text);
}

/* ------------------------------------------------------------------ running */

struct run {
    struct script *sc;
    struct client *c;
    char error[512];
};

static int reply_class_ok(const char *want, const char *reply)
{
    char c = reply[0];
    if (!strcmp(want, "any"))
        return c >= '2' && c <= '5';
    if (!strcmp(want, "ok"))
        return c == '2' || c == '3';
    if (!strcmp(want, "helo"))
        return strncmp(reply, "250", 3) == 0;
    if (!strcmp(want, "permfail"))
        return c == '5';
    if (!strcmp(want, "tempfail"))
        return c == '4';
    return 0;
}

static int exec(struct run *r, const struct node *n)
{
    char reply[8192];
    switch (n->kind) {
    case N_BLOCK:
        for (size_t i = 0; i < n->nkids; i++)
            if (exec(r, n->kids[i]) != 0)
                return -1;
        return 0;
    case N_WRITELN: {
        size_t len = strlen(n->str);
        char *line = malloc(len + 3);
        memcpy(line, n->str, len);
        memcpy(line + len, "\r\n", 3);
        client_send_n(r->c, line, len + 2);
        free(line);
        return 0;
    }
    case N_EXPECT_SMTP:
        if (client_reply(r->c, reply, sizeof reply) != 0 || !reply_class_ok(n->str, reply)) {
            snprintf(r->error, sizeof r->error, "line %d: expect smtp %s, got \"%.200s\"", n->line, n->str,
                     reply);
            return -1;
        }
        return 0;
    case N_EXPECT_DISCONNECT:
        /* Error replies (the last 5xx, a 421) may come before the close. */
        while (client_reply(r->c, reply, sizeof reply) == 0) {
            if (reply[0] != '4' && reply[0] != '5') {
                snprintf(r->error, sizeof r->error, "line %d: expect disconnect, got \"%.200s\"", n->line,
                         reply);
                return -1;
            }
        }
        if (strcmp(reply, "EOF") != 0) {
            snprintf(r->error, sizeof r->error, "line %d: expect disconnect: %.200s", n->line, reply);
            return -1;
        }
        return 0;
    case N_REPEAT:
        for (int i = 0; i < n->count; i++)
            if (n->nkids && exec(r, n->kids[0]) != 0)
                return -1;
        return 0;
    case N_CALL:
        for (size_t i = 0; i < r->sc->nprocs; i++)
            if (!strcmp(r->sc->procs[i].name, n->str))
                return exec(r, r->sc->procs[i].body);
        snprintf(r->error, sizeof r->error, "line %d: no proc %s", n->line, n->str);
        return -1;
    case N_STARTTLS:
        if (client_start_tls(r->c) != 0) {
            snprintf(r->error, sizeof r->error, "line %d: TLS handshake failed", n->line);
            return -1;
        }
        return 0;
    case N_OTHER:
        return 0;
    }
    return -1;
}

/* Cases where lifeboat differs from OpenSMTPD on purpose. */
static const struct deviation {
    const char *file;
    int index; /* 1-based test-case number in the file; 0: the whole file */
    const char *why;
} deviations[] = {
    {"test.base", 0, "tests the script engine's grammar, no SMTP"},
    {"test.smtp0", 8, "its writeln string spans two lines (the fixed copy is in test.smtp1)"},
    {"test.smtp2", 3, "lifeboat does not limit messages per session (OpenSMTPD: 100)"},
};

static const char *deviation(const char *file, int index)
{
    for (size_t i = 0; i < sizeof deviations / sizeof deviations[0]; i++)
        if (!strcmp(deviations[i].file, file) && (deviations[i].index == 0 || deviations[i].index == index))
            return deviations[i].why;
    return NULL;
}

static int file_exists(const char *path)
{
    return access(path, R_OK) == 0;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

static void test_replay_corpus(void **state)
{
    (void)state;
    if (!file_exists(CORPUS_DIR "/test.smtp1")) {
        printf("corpus not found, skipped: %s\n", CORPUS_DIR);
        return;
    }
    char dir[] = "/tmp/lb-smtpd-script-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(harness_cert_path, sizeof harness_cert_path, "%s/cert.pem", dir);
    assert_int_equal(make_cert(harness_cert_path), 0);

    static const char *const files[] = {"test.base",     "test.smtp0",  "test.smtp1", "test.smtp2",
                                        "test.smtp4",    "test.mailfrom", "test.rcptto", "test.tls"};
    unsigned passed = 0, failed = 0, excluded = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, files[f]);
        struct script sc = {.file = files[f], .line = 1};
        sc.text = read_all(path);
        assert_non_null(sc.text);
        sc.len = strlen(sc.text);
        if (parse_script(&sc) != 0) {
            print_error("%s\n", sc.error);
            free_script(&sc);
            fail();
        }
        for (size_t i = 0; i < sc.ncases; i++) {
            struct testcase *t = &sc.cases[i];
            const char *why = deviation(files[f], (int)i + 1);
            if (why || t->skip || t->no_autoconnect) {
                if (deviation(files[f], 0) && i == 0)
                    printf("  %s: not replayed (%s)\n", files[f], why);
                else if (!deviation(files[f], 0))
                    printf("  %s case %zu: not replayed (%s)\n", files[f], i + 1,
                           why ? why : t->skip ? "marked skip" : "no-autoconnect");
                excluded++;
                continue;
            }
            struct harness *h = harness_new(harness_with_cert);
            assert_non_null(h);
            h->srv->hard_error_limit = 5;
            struct run r = {.sc = &sc};
            r.c = client_connect(h, "192.0.2.10");
            assert_non_null(r.c);
            int rc = exec(&r, t->body);
            if ((rc == 0) == !t->expect_fail) {
                passed++;
            } else {
                failed++;
                print_error("%s #%zu (%s, line %d): %s\n", files[f], i + 1, t->name ? t->name : "-",
                            t->line, r.error[0] ? r.error : "passed but expected to fail");
            }
            client_free(r.c);
            harness_free(h);
        }
        free_script(&sc);
    }
    printf("  opensmtpd-smtpscript: %u cases passed, %u failed, %u not replayed\n", passed, failed,
           excluded);
    unlink(harness_cert_path);
    rmdir(dir);
    assert_int_equal(failed, 0);
    assert_true(passed >= 40); /* the corpus really ran */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_init("test_smtpd_script", "mx.lifeboat.test", 1);
    if (!getenv("LB_TEST_VERBOSE"))
        log_set_level(LOG_LEVEL_ERR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
