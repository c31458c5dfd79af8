/*
 * ctl_common.c — option parsing, the store and domain arguments, output and
 * password input for lifeboatctl's commands (see ctl.h).
 */
#include "ctl/ctl.h"
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

struct store *ctl_store(struct ctl *c)
{
    if (c->st)
        return c->st;
    char err[512];
    if (store_open(&c->cfg, &c->st, err, sizeof err) != STORE_OK) {
        c->st = NULL;
        ctl_fail("cannot open the store in %s: %s", c->cfg.data_dir, err);
        return NULL;
    }
    return c->st;
}

int ctl_domain_arg(struct store *st, const char *arg, struct store_domain *d)
{
    char canon[DOMAIN_MAX + 1];
    if (addr_canonical(arg, canon, sizeof canon) != 0)
        return ctl_fail("domain %.100s is not hosted", arg);
    int rc = store_domain_get(st, canon, d);
    if (rc == STORE_NOTFOUND)
        return ctl_fail("domain %s is not hosted", canon);
    if (rc != STORE_OK)
        return ctl_fail("domain %s: store error", canon);
    return CTL_OK;
}

static void vwarn(const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "lifeboatctl: %s\n", line);
}

int ctl_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwarn(fmt, ap);
    va_end(ap);
    return CTL_FAIL;
}

int ctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwarn(fmt, ap);
    va_end(ap);
    return CTL_USAGE;
}

/* ---------------------------------------------------------------- options */

int ctl_getopt(int argc, char **argv, const struct ctl_opt *opts, const char **pos, int min, int max,
               int *npos)
{
    unsigned long long seen = 0; /* one bit per entry of opts */
    int n = 0, options_done = 0;
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || !a[1]) {
            if (n == max)
                return ctl_usage_error("unexpected argument \"%s\"", a);
            pos[n++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = 1;
            continue;
        }
        if (a[1] != '-')
            return ctl_usage_error("unknown option \"%s\"", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        int k;
        for (k = 0; opts && opts[k].name; k++)
            if (strlen(opts[k].name) == nl && !strncmp(opts[k].name, name, nl))
                break;
        if (!opts || !opts[k].name)
            return ctl_usage_error("unknown option \"--%.*s\"", (int)nl, name);
        if (seen & (1ull << k))
            return ctl_usage_error("option --%s given twice", opts[k].name);
        seen |= 1ull << k;
        if (opts[k].flag) {
            if (eq)
                return ctl_usage_error("option --%s takes no value", opts[k].name);
            *opts[k].flag = 1;
        } else if (eq) {
            *opts[k].value = eq + 1;
        } else if (i + 1 < argc) {
            *opts[k].value = argv[++i];
        } else {
            return ctl_usage_error("option --%s needs a value", opts[k].name);
        }
    }
    if (n < min)
        return ctl_usage_error("missing argument");
    *npos = n;
    return CTL_OK;
}

int ctl_getopt_store(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts, const char **pos, int min,
                     int max, int *npos, struct store **st)
{
    *st = NULL;
    if (ctl_getopt(argc, argv, opts, pos, min, max, npos) != CTL_OK)
        return CTL_USAGE;
    *st = ctl_store(c);
    return *st ? CTL_OK : CTL_FAIL;
}

/* ---------------------------------------------------------------- output */

int ctl_list_add(struct ctl_list *l, json_t *o)
{
    if (!o || !l->rows || json_array_append_new(l->rows, o) != 0) {
        l->failed = 1;
        return 1;
    }
    return 0;
}

int ctl_list_map(struct ctl_list *l, int64_t id, json_t *value)
{
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)id);
    if (!value || !l->map || json_object_set_new(l->map, key, value) != 0) {
        l->failed = 1;
        return 1;
    }
    return 0;
}

json_t *ctl_list_lookup(struct ctl_list *l, int64_t id)
{
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)id);
    json_t *v = l->map ? json_object_get(l->map, key) : NULL;
    return v ? v : json_null();
}

void ctl_list_free(struct ctl_list *l)
{
    json_decref(l->rows);
    json_decref(l->map);
    l->rows = l->map = NULL;
}

json_t *ctl_list_rows(struct ctl_list *l, int store_rc, const char *what)
{
    json_t *rows = NULL;
    if (store_rc == STORE_OK && !l->failed && l->rows)
        rows = json_incref(l->rows);
    else
        ctl_fail("cannot list %s: %s", what, l->failed ? "out of memory" : "store error");
    ctl_list_free(l);
    return rows;
}

int ctl_map_domain_name(const struct store_domain *d, void *arg)
{
    return ctl_list_map(arg, d->id, ctl_jstr(d->name));
}

json_t *ctl_split_list(const char *s)
{
    json_t *a = json_array();
    while (a && *s) {
        size_t len = strcspn(s, ",");
        json_array_append_new(a, json_stringn(s, len));
        s += len;
        if (*s == ',')
            s++;
    }
    return a;
}

json_t *ctl_jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    /* Not UTF-8: keep the ASCII, mark the rest. */
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

int ctl_json_print(json_t *j)
{
    if (!j)
        return ctl_fail("out of memory");
    int rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (rc != 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
        return ctl_fail("cannot write the output: %s", strerror(errno));
    return CTL_OK;
}

void ctl_put_safe(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        fputc((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f ? '?' : *p, f);
}

const char *ctl_canon(const char *s, char buf[ADDR_MAX + 1])
{
    return addr_canonical(s, buf, ADDR_MAX + 1) == 0 ? buf : s;
}

const char *ctl_time(int64_t t, char buf[32])
{
    if (t == 0)
        return "-";
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm) || !strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, 32, "%lld", (long long)t);
    return buf;
}

/* ---------------------------------------------------------------- input */

char *ctl_read_password(void)
{
    int tty = isatty(STDIN_FILENO);
    struct termios saved, quiet;
    if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
        quiet = saved;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        fputs("Password: ", stderr);
        fflush(stderr);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    } else {
        tty = 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        ctl_fail("--password-stdin: no password on standard input");
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    if ((size_t)n != strlen(line)) {
        sodium_memzero(line, cap);
        free(line);
        ctl_fail("--password-stdin: the password contains a NUL byte");
        return NULL;
    }
    if (n == 0) {
        free(line);
        ctl_fail("--password-stdin: the password is empty");
        return NULL;
    }
    /* A right-sized copy, so ctl_password_free knows how much to wipe. */
    char *pw = malloc((size_t)n + 1);
    if (pw)
        memcpy(pw, line, (size_t)n + 1);
    sodium_memzero(line, cap);
    free(line);
    if (!pw)
        ctl_fail("out of memory");
    return pw;
}

void ctl_password_free(char *pw)
{
    if (pw) {
        sodium_memzero(pw, strlen(pw));
        free(pw);
    }
}

int ctl_run_one(struct ctl *c, int argc, char **argv, int (*change)(struct store *, const char *, char *, size_t),
                const char *what, const char *done, int address)
{
    const char *pos[1];
    int n;
    struct store *st;
    int rc = ctl_getopt_store(c, argc, argv, NULL, pos, 1, 1, &n, &st);
    if (rc != CTL_OK)
        return rc;
    char err[512], canon[ADDR_MAX + 1];
    if (change(st, pos[0], err, sizeof err) != 0)
        return ctl_fail("%s", err);
    printf("%s %s %s\n", what, address ? ctl_canon(pos[0], canon) : pos[0], done);
    return CTL_OK;
}
