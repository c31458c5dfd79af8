/*
 * user_import.c — `user import FILE.csv --domain D` and the admin API's
 * POST users/import (see directory.h "user import"): the checks of every
 * line, the passwords hashed before the transaction, the good lines in one
 * transaction, and the report.
 *
 * Two steps because an argon2id hash costs tens of milliseconds and 64 MB:
 * a thousand passwords take a minute of CPU, which must not be spent while
 * the store's write lock is held (in the daemon, every SMTP session waits
 * for that lock's commit). directory_import_prepare checks what needs no
 * lock and hashes (on a few worker threads at a lower priority); then
 * directory_import_apply writes, each line in a savepoint, so a line that
 * the store's rules refuse at that moment (an alias someone took meanwhile)
 * is reported and skipped while a store failure undoes them all.
 *
 * The rules of the single-user commands are reused, not repeated: the
 * alias checks are alias add's (admin_alias_add_locked), the role names,
 * the name check and the password policy are theirs too.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>
#include <sodium.h>

#include "directory/admin_internal.h"
#include "directory/directory.h"
#include "util/log.h"
#include "util/timeutil.h"

#define HASH_THREADS_MAX 4
#define HASH_NICE 10 /* hashing is bulk work: the daemon's sessions go first */

/* One line that passed the checks of the prepare step. Strings point into
 * the file's text (trimmed and canonicalised in place). */
struct plan_row {
    unsigned line;
    const char *email;     /* canonical */
    const char *name;      /* NULL: not given */
    int role;              /* enum store_role, -1: not given */
    int active;            /* 1 yes, 0 no, -1: not given */
    const char *alt_email; /* canonical or "", NULL: not given */
    int has_aliases;       /* the file has the aliases column */
    const char *aliases;   /* canonical, each NUL-terminated, naliases of them */
    size_t naliases;
    char *password;        /* NULL: not given; wiped once hashed */
    int set_password;      /* pw_hash is to be stored */
    char pw_hash[PASSWORD_HASH_MAX];
    char old_hash[PASSWORD_HASH_MAX]; /* the existing user's, to keep a password that did not change */
};

struct directory_import {
    struct store_domain domain;
    int max_role;
    struct csv_import_file file;
    struct plan_row *rows;
    size_t nrows;
    struct directory_import_report report;
    size_t errcap;
    int oom;
};

/* ---------------------------------------------------------------- the report */

/* Cuts s to valid UTF-8 without control characters (an error quotes what the
 * file said, and goes to a terminal and into JSON). */
static void text_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t i = 0, n = strlen(s);
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                p[i] = '?';
            i++;
            continue;
        }
        size_t k = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
        int bad = k == 0 || i + k >= n;
        for (size_t j = 1; !bad && j <= k; j++)
            bad = (p[i + j] & 0xc0) != 0x80;
        if (bad) {
            p[i] = 0; /* a sequence cut by the buffer's end, or not UTF-8: end here */
            return;
        }
        i += k + 1;
    }
}

static void report_add(struct directory_import *imp, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report_add(struct directory_import *imp, unsigned line, const char *fmt, ...)
{
    struct directory_import_report *r = &imp->report;
    if (r->nerrors == imp->errcap) {
        size_t cap = imp->errcap ? imp->errcap * 2 : 16;
        struct directory_import_error *e = realloc(r->errors, cap * sizeof *e);
        if (!e) {
            imp->oom = 1;
            return;
        }
        r->errors = e;
        imp->errcap = cap;
    }
    struct directory_import_error *e = &r->errors[r->nerrors++];
    e->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->error, sizeof e->error, fmt, ap);
    va_end(ap);
    text_clean(e->error);
}

/* A value from the file quoted in an error: at most 60 bytes of it. */
struct shown {
    char s[64];
};
static struct shown shown(const char *v)
{
    struct shown out;
    snprintf(out.s, sizeof out.s, "%s", v);
    text_clean(out.s);
    return out;
}

static int error_order(const void *a, const void *b)
{
    const struct directory_import_error *x = a, *y = b;
    /* A line has at most one error: prepare's or apply's. */
    return x->line < y->line ? -1 : x->line > y->line;
}

const struct directory_import_report *directory_import_report(const struct directory_import *imp)
{
    return &imp->report;
}

struct json_t *directory_import_report_json(const struct directory_import_report *r)
{
    json_t *errors = json_array();
    for (size_t i = 0; errors && i < r->nerrors; i++)
        if (json_array_append_new(errors, json_pack("{s:I, s:s}", "line", (json_int_t)r->errors[i].line, "error",
                                                    r->errors[i].error)) != 0) {
            json_decref(errors);
            return NULL;
        }
    if (!errors)
        return NULL;
    return json_pack("{s:I, s:I, s:o}", "imported", (json_int_t)r->imported, "updated", (json_int_t)r->updated,
                     "errors", errors);
}

void directory_import_free(struct directory_import *imp)
{
    if (!imp)
        return;
    if (imp->rows) /* every slot: a refused line's may hold an old hash */
        sodium_memzero(imp->rows, imp->file.nrows * sizeof *imp->rows);
    free(imp->rows);
    csv_import_file_free(&imp->file); /* wipes the text: it held the passwords */
    free(imp->report.errors);
    free(imp);
}

/* ---------------------------------------------------------------- the checks of a line */

/* Canonical address in place (lower case), and valid? */
static int address_ok(char *s)
{
    char canon[ADDR_MAX + 1];
    if (addr_canonical(s, canon, sizeof canon) != 0 || !addr_is_valid(canon))
        return 0;
    memcpy(s, canon, strlen(canon) + 1);
    return 1;
}

/* Addresses named so far in the file (emails and aliases) -> their line. */
static int claim(GHashTable *seen, const char *addr, unsigned line, unsigned *first)
{
    gpointer v = g_hash_table_lookup(seen, addr);
    if (v) {
        *first = GPOINTER_TO_UINT(v);
        return 0;
    }
    g_hash_table_insert(seen, (gpointer)addr, GUINT_TO_POINTER(line));
    return 1;
}

/* Splits the aliases field into canonical NUL-terminated addresses written
 * over the field itself (never longer), without repeats. 0, or -1 after
 * reporting the first bad one. */
static int aliases_check(struct directory_import *imp, GHashTable *seen, struct plan_row *p, char *field)
{
    /* Read from a copy: the words written back would overwrite the separators
     * still to be read. */
    char *copy = strdup(field);
    if (!copy) {
        imp->oom = 1;
        return -1;
    }
    const char *pos = copy;
    char word[ADDR_MAX + 2];
    char *out = field;
    int r, rc = 0;
    p->aliases = field;
    p->naliases = 0;
    while (rc == 0 && (r = csv_import_next_word(&pos, word, sizeof word)) != 0) {
        if (r < 0 || !address_ok(word)) {
            report_add(imp, p->line, "%s: alias \"%s\" is not a valid address", p->email,
                       shown(r < 0 ? "(too long)" : word).s);
            rc = -1;
            break;
        }
        if (!strcmp(word, p->email)) {
            report_add(imp, p->line, "%s: alias %s is the user's own address", p->email, word);
            rc = -1;
            break;
        }
        int repeat = 0;
        for (const char *a = p->aliases; a < out; a += strlen(a) + 1)
            repeat |= !strcmp(a, word);
        if (repeat)
            continue;
        size_t n = strlen(word) + 1; /* the words and their NULs fit where the field was */
        memcpy(out, word, n);
        unsigned first;
        if (!claim(seen, out, p->line, &first)) {
            report_add(imp, p->line, "%s: alias %s is already on line %u", p->email, out, first);
            rc = -1;
            break;
        }
        out += n;
        p->naliases++;
    }
    free(copy);
    return rc;
}

/* The checks of one line that need no write lock. 0 with *p filled, or -1
 * after reporting why. */
static int row_check(struct directory_import *imp, struct store *st, GHashTable *seen,
                     const struct password_policy *policy, const struct csv_import_row *row, struct plan_row *p)
{
    memset(p, 0, sizeof *p);
    p->line = row->line;
    p->role = p->active = -1;
    if (row->error) {
        report_add(imp, row->line, "%s", row->error);
        return -1;
    }
    char *email = csv_import_trim(row->field[CSV_EMAIL]);
    if (!*email) {
        report_add(imp, row->line, "the email is missing");
        return -1;
    }
    if (!address_ok(email)) {
        report_add(imp, row->line, "\"%s\" is not a valid address", shown(email).s);
        return -1;
    }
    if (!addr_in_domain(email, imp->domain.name)) {
        report_add(imp, row->line, "%s is not in domain %s", email, imp->domain.name);
        return -1;
    }
    p->email = email;
    unsigned first;
    if (!claim(seen, email, row->line, &first)) {
        report_add(imp, row->line, "%s is already on line %u", email, first);
        return -1;
    }
    if (row->field[CSV_NAME]) {
        p->name = csv_import_trim(row->field[CSV_NAME]);
        if (*p->name && !admin_text_ok(p->name, sizeof((struct store_user *)0)->name)) {
            report_add(imp, row->line, "%s: the name is too long or has control characters", email);
            return -1;
        }
    }
    const char *role = row->field[CSV_ROLE] ? csv_import_trim(row->field[CSV_ROLE]) : "";
    if (*role) {
        if ((p->role = directory_role_parse(role)) < 0) {
            report_add(imp, row->line, "%s: unknown role \"%s\" (expected user, admin or operator)", email,
                       shown(role).s);
            return -1;
        }
        if (p->role > imp->max_role) {
            report_add(imp, row->line, "%s: only an operator can give the role %s", email, role);
            return -1;
        }
    }
    const char *active = row->field[CSV_ACTIVE] ? csv_import_trim(row->field[CSV_ACTIVE]) : "";
    if (*active) {
        if (!strcasecmp(active, "yes"))
            p->active = 1;
        else if (!strcasecmp(active, "no"))
            p->active = 0;
        else {
            report_add(imp, row->line, "%s: active must be yes or no, not \"%s\"", email, shown(active).s);
            return -1;
        }
    }
    if (row->field[CSV_ALT_EMAIL]) {
        char *alt = csv_import_trim(row->field[CSV_ALT_EMAIL]);
        if (*alt && !address_ok(alt)) {
            report_add(imp, row->line, "%s: alternate address \"%s\" is not a valid address", email, shown(alt).s);
            return -1;
        }
        if (!strcmp(alt, email)) {
            report_add(imp, row->line, "%s: the alternate address must be another address", email);
            return -1;
        }
        p->alt_email = alt;
    }
    if (row->field[CSV_ALIASES]) {
        p->has_aliases = 1;
        if (aliases_check(imp, seen, p, row->field[CSV_ALIASES]) != 0)
            return -1;
    }
    /* The password as typed: spaces around it are part of it. */
    if (row->field[CSV_PASSWORD] && *row->field[CSV_PASSWORD]) {
        char why[PASSWORD_POLICY_MSG_MAX];
        if (password_policy_check(policy, row->field[CSV_PASSWORD], why, sizeof why) != 0) {
            report_add(imp, row->line, "%s: %s", email, why);
            return -1;
        }
        p->password = row->field[CSV_PASSWORD];
        p->set_password = 1;
    }
    /* An existing user: one the caller may change, and their hash, so an
     * unchanged password is kept (apply checks all of this again). */
    struct store_user u;
    int rc = store_user_get(st, email, &u);
    if (rc == STORE_OK) {
        if (u.role > imp->max_role) {
            report_add(imp, row->line, "%s is an operator: only an operator can change them", email);
            sodium_memzero(&u, sizeof u);
            return -1;
        }
        /* The directory owns its users: a file would be undone by the next sync. */
        int ldap = directory_user_is_ldap(st, u.id);
        if (ldap != 0) {
            report_add(imp, row->line, ldap > 0 ? "%s comes from the directory (LDAP): change it there"
                                                : "%s: store error",
                       email);
            sodium_memzero(&u, sizeof u);
            return -1;
        }
        memcpy(p->old_hash, u.pw_hash, sizeof p->old_hash);
        sodium_memzero(&u, sizeof u);
    } else if (rc != STORE_NOTFOUND) {
        report_add(imp, row->line, "%s: store error", email);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- hashing */

struct hashing {
    struct plan_row *rows;
    size_t nrows;
    atomic_size_t next;
    atomic_int failed;
};

/* Hashes the password of each row that has one, taking rows in turn. A
 * password that is the user's current one keeps its hash. */
static void *hash_rows(void *arg)
{
    struct hashing *h = arg;
    size_t i;
    while ((i = atomic_fetch_add(&h->next, 1)) < h->nrows) {
        struct plan_row *p = &h->rows[i];
        if (!p->password)
            continue;
        if (p->old_hash[0] && password_verify(p->old_hash, p->password)) {
            p->set_password = 0;
        } else if (password_hash(p->password, p->pw_hash) != 0) {
            atomic_store(&h->failed, 1);
        }
        sodium_memzero(p->password, strlen(p->password));
        p->password = NULL;
        sodium_memzero(p->old_hash, sizeof p->old_hash);
    }
    return NULL;
}

/* Hashing threads of every import running in this process: two admins
 * importing at once share HASH_THREADS_MAX (each caller's own thread hashes
 * too), so imports cannot take more of the machine than that. */
static atomic_int hash_threads;

static int hash_thread_take(void)
{
    int n = atomic_load(&hash_threads);
    while (n < HASH_THREADS_MAX)
        if (atomic_compare_exchange_weak(&hash_threads, &n, n + 1))
            return 1;
    return 0;
}

static void *hash_rows_nice(void *arg)
{
    /* Linux: a thread's nice value is its own (setpriority on its tid). */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), HASH_NICE) != 0)
        log_info("user import: cannot lower the hashing thread's priority: %m");
    hash_rows(arg);
    atomic_fetch_sub(&hash_threads, 1);
    return NULL;
}

/* Hashes every row's password on the calling thread and up to one thread
 * more per processor (HASH_THREADS_MAX in the process at most). 0 or -1 (out
 * of memory). */
static int hash_all(struct plan_row *rows, size_t nrows)
{
    struct hashing h = {.rows = rows, .nrows = nrows};
    size_t todo = 0;
    for (size_t i = 0; i < nrows; i++)
        todo += rows[i].password != NULL;
    if (!todo)
        return 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t want = cpus < 1 ? 1 : cpus > HASH_THREADS_MAX ? HASH_THREADS_MAX : (size_t)cpus;
    if (want > todo)
        want = todo;
    pthread_t tids[HASH_THREADS_MAX];
    size_t started = 0;
    while (started + 1 < want && hash_thread_take()) {
        if (pthread_create(&tids[started], NULL, hash_rows_nice, &h) != 0) {
            atomic_fetch_sub(&hash_threads, 1);
            break;
        }
        started++;
    }
    hash_rows(&h); /* the caller works too (and alone when no thread started) */
    for (size_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    return atomic_load(&h.failed) ? -1 : 0;
}

/* ---------------------------------------------------------------- prepare */

int directory_import_prepare(struct store *st, const char *domain, const char *csv, size_t len, int max_role,
                             struct directory_import **out, char *err, size_t errlen)
{
    *out = NULL;
    struct directory_import *imp = calloc(1, sizeof *imp);
    if (!imp)
        return errbuf_failc(DIR_STORE, err, errlen, "user import: out of memory");
    imp->max_role = max_role;
    char name[DOMAIN_MAX + 1];
    int rc;
    struct password_policy policy;
    if (admin_canonical(domain, name, sizeof name) != 0 || !domain_is_valid(name)) {
        rc = errbuf_failc(DIR_INVALID, err, errlen, "\"%.200s\" is not a valid domain name", domain ? domain : "");
    } else if ((rc = store_domain_get(st, name, &imp->domain)) != STORE_OK) {
        rc = rc == STORE_NOTFOUND ? errbuf_failc(DIR_NOTFOUND, err, errlen, "domain %s is not hosted", name)
                                  : errbuf_failc(DIR_STORE, err, errlen, "domain %s: store error", name);
    } else if (directory_password_policy_get(st, imp->domain.customer_id, &policy, NULL) != STORE_OK) {
        rc = errbuf_failc(DIR_STORE, err, errlen, "domain %s: cannot read the password policy (store error)", name);
    } else if (csv_import_parse(csv, len, &imp->file, err, errlen) != 0) {
        rc = DIR_INVALID;
    } else if (imp->file.nrows && !(imp->rows = calloc(imp->file.nrows, sizeof *imp->rows))) {
        rc = errbuf_failc(DIR_STORE, err, errlen, "user import: out of memory");
    }
    if (rc != 0) {
        directory_import_free(imp);
        return rc;
    }

    /* Keys point into the file's text, which outlives the table. */
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = 0; i < imp->file.nrows; i++)
        if (row_check(imp, st, seen, &policy, &imp->file.rows[i], &imp->rows[imp->nrows]) == 0)
            imp->nrows++;
    g_hash_table_destroy(seen);
    if (imp->oom || hash_all(imp->rows, imp->nrows) != 0) {
        directory_import_free(imp);
        return errbuf_failc(DIR_STORE, err, errlen, "user import: out of memory");
    }
    *out = imp;
    return 0;
}

/* ---------------------------------------------------------------- apply */

struct alias_list {
    char (*v)[ADDR_MAX + 1];
    size_t n, cap;
    int oom;
};

static int alias_collect(const char *alias, const char *user_email, void *arg)
{
    (void)user_email;
    struct alias_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char (*v)[ADDR_MAX + 1] = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    snprintf(l->v[l->n++], ADDR_MAX + 1, "%s", alias);
    return 0;
}

/* The user's aliases become exactly the row's: those not listed go, the new
 * ones are added with alias add's checks. */
static int aliases_apply(struct store *st, const struct plan_row *p, int64_t user_id, char *why, size_t whylen)
{
    struct alias_list have = {0};
    int rc = store_alias_list(st, user_id, alias_collect, &have);
    if (rc != STORE_OK || have.oom) {
        free(have.v);
        return errbuf_failc(DIR_STORE, why, whylen, "%s: store error", p->email);
    }
    for (size_t i = 0; rc == 0 && i < have.n; i++) {
        int keep = 0;
        const char *a = p->aliases;
        for (size_t k = 0; k < p->naliases; k++, a += strlen(a) + 1)
            keep |= !strcmp(a, have.v[i]);
        if (!keep && store_alias_del(st, have.v[i]) != STORE_OK)
            rc = errbuf_failc(DIR_STORE, why, whylen, "%s: store error", p->email);
    }
    const char *a = p->aliases;
    for (size_t k = 0; rc == 0 && k < p->naliases; k++, a += strlen(a) + 1) {
        int had = 0;
        for (size_t i = 0; i < have.n; i++)
            had |= !strcmp(a, have.v[i]);
        if (!had)
            rc = admin_alias_add_locked(st, p->email, a, why, whylen);
    }
    free(have.v);
    return rc;
}

/* One line, inside its savepoint: 0 (*created tells which), a rule's
 * refusal, or DIR_STORE. */
static int row_apply_locked(struct store *st, const struct directory_import *imp, const struct plan_row *p,
                            int *created, char *why, size_t whylen)
{
    struct store_user u;
    int64_t owner;
    int rc = store_user_get(st, p->email, &u);
    *created = rc == STORE_NOTFOUND;
    if (rc == STORE_NOTFOUND) {
        struct store_domain d;
        struct store_user other;
        if ((rc = store_domain_get_by_id(st, imp->domain.id, &d)) != STORE_OK)
            return rc == STORE_NOTFOUND
                       ? errbuf_failc(DIR_NOTFOUND, why, whylen, "domain %s is no longer hosted", imp->domain.name)
                       : errbuf_failc(DIR_STORE, why, whylen, "%s: store error", p->email);
        if ((rc = store_alias_get(st, p->email, &owner)) == STORE_OK)
            return errbuf_failc(DIR_EXISTS, why, whylen, "%s is already an alias of %s", p->email,
                                store_user_get_by_id(st, owner, &other) == STORE_OK ? other.email
                                                                                    : "another user");
        if (rc != STORE_NOTFOUND)
            return errbuf_failc(DIR_STORE, why, whylen, "%s: store error", p->email);
        memset(&u, 0, sizeof u);
        u.domain_id = d.id;
        snprintf(u.email, sizeof u.email, "%s", p->email);
        u.role = p->role >= 0 ? p->role : ROLE_USER;
        u.active = p->active == 1;
        u.created = time_now();
    } else if (rc != STORE_OK) {
        return errbuf_failc(DIR_STORE, why, whylen, "%s: store error", p->email);
    } else if (u.role > imp->max_role) {
        return errbuf_failc(DIR_REFUSED, why, whylen, "%s is an operator: only an operator can change them",
                            p->email);
    } else if ((rc = directory_user_is_ldap(st, u.id)) != 0) {
        return rc > 0 ? errbuf_failc(DIR_REFUSED, why, whylen, "%s comes from the directory (LDAP): change it there",
                                     p->email)
                      : errbuf_failc(DIR_STORE, why, whylen, "%s: store error", p->email);
    } else {
        if (p->role >= 0)
            u.role = p->role;
        if (p->active == 1)
            u.active = 1, u.suspended = 0; /* as user set --activate */
        else if (p->active == 0)
            u.active = 0;
    }
    if (p->name)
        snprintf(u.name, sizeof u.name, "%s", p->name);
    if (p->alt_email)
        snprintf(u.alt_email, sizeof u.alt_email, "%s", p->alt_email);

    int64_t id = u.id;
    if (*created) {
        if (p->set_password)
            memcpy(u.pw_hash, p->pw_hash, sizeof u.pw_hash);
        rc = store_user_add(st, &u, &id);
    } else {
        rc = store_user_update(st, &u);
        /* A new password ends the user's sessions, as user set's does. */
        if (rc == STORE_OK && p->set_password)
            rc = store_user_set_password(st, id, p->pw_hash, NULL);
    }
    sodium_memzero(&u, sizeof u);
    if (rc == STORE_EXISTS)
        return errbuf_failc(DIR_EXISTS, why, whylen, "%s exists already", p->email);
    if (rc != STORE_OK)
        return errbuf_failc(DIR_STORE, why, whylen, "%s: store error", p->email);
    return p->has_aliases ? aliases_apply(st, p, id, why, whylen) : 0;
}

int directory_import_apply(struct store *st, struct directory_import *imp, char *err, size_t errlen)
{
    struct directory_import_report *r = &imp->report;
    r->imported = r->updated = 0;
    int64_t t0 = time_mono_ms();
    if (admin_begin(st, err, errlen) != 0)
        return DIR_STORE;
    int rc = 0;
    unsigned imported = 0, updated = 0;
    size_t nerrors = r->nerrors; /* prepare's */
    for (size_t i = 0; rc == 0 && i < imp->nrows; i++) {
        const struct plan_row *p = &imp->rows[i];
        char why[DIRECTORY_IMPORT_ERROR_MAX];
        int created = 0, lrc;
        why[0] = 0;
        if ((lrc = admin_begin(st, why, sizeof why)) == 0)
            lrc = admin_end(st, row_apply_locked(st, imp, p, &created, why, sizeof why), why, sizeof why);
        if (lrc == DIR_STORE) {
            rc = errbuf_failc(DIR_STORE, err, errlen, "user import into %s: line %u: %s; nothing was imported",
                              imp->domain.name, p->line, why);
        } else if (lrc != 0) {
            report_add(imp, p->line, "%s", why);
        } else if (created) {
            imported++;
        } else {
            updated++;
        }
    }
    if (rc == 0 && imp->oom)
        rc = errbuf_failc(DIR_STORE, err, errlen, "user import: out of memory; nothing was imported");
    rc = admin_end(st, rc, err, errlen);
    if (rc != 0) {
        r->nerrors = nerrors; /* the lines apply refused were not, in the end, looked at */
        return rc;
    }
    r->imported = imported;
    r->updated = updated;
    if (r->nerrors)
        qsort(r->errors, r->nerrors, sizeof *r->errors, error_order);
    log_info("user import into %s: %u imported, %u updated, %zu line(s) refused; written in %lld ms",
             imp->domain.name, imported, updated, r->nerrors, (long long)(time_mono_ms() - t0));
    return 0;
}

int directory_user_import(struct store *st, const char *domain, const char *csv, size_t len, int max_role,
                          struct directory_import **out, char *err, size_t errlen)
{
    int rc = directory_import_prepare(st, domain, csv, len, max_role, out, err, errlen);
    if (rc == 0 && (rc = directory_import_apply(st, *out, err, errlen)) != 0) {
        directory_import_free(*out);
        *out = NULL;
    }
    return rc;
}
