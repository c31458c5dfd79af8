/*
 * ctl.h — what the command groups of lifeboatctl share: the run context, the
 * option parser, exit codes, the store and a domain named on the command line,
 * output helpers (listings built as JSON, printed as text or --json through
 * jansson) and reading a password from stdin.
 *
 * Each command is a function over the arguments after NOUN VERB. It prints its
 * result on stdout, one clear line on stderr when it fails, and returns one of
 * the CTL_* exit codes; lifeboatctl.c maps NOUN VERB to the function.
 */
#ifndef LB_CTL_CTL_H
#define LB_CTL_CTL_H

#include <jansson.h>
#include <stdio.h>

#include "store/store.h"
#include "util/config.h"

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

struct ctl {
    const char *config_path;
    struct config cfg;
    struct store *st; /* opened on first use by ctl_store */
    int json;         /* --json given before NOUN */
};

/* The store connection, opened on first use; NULL after printing why not. */
struct store *ctl_store(struct ctl *c);
/* The hosted domain named on the command line into *d; CTL_OK, or CTL_FAIL
 * after saying why not (not hosted, store error). */
int ctl_domain_arg(struct store *st, const char *arg, struct store_domain *d);

/* Prints "lifeboatctl: <message>" on stderr; returns CTL_FAIL. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "lifeboatctl: <message>" on stderr; returns CTL_USAGE. The caller adds
 * the usage line of the command. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --------------------------------------------------------------- options */

/* One option of a command: "--name VALUE" / "--name=VALUE" when value is set,
 * a flag ("--name") when flag is set. */
struct ctl_opt {
    const char *name; /* without the dashes */
    const char **value;
    int *flag;
};

/*
 * Splits argv (the words after NOUN VERB) into the options of opts and
 * positional words, which are stored in pos[0..]. Accepts options anywhere,
 * "--" ends them. Refuses an unknown or repeated option, a missing value, and a
 * positional count outside [min, max] (printing why). Returns CTL_OK or
 * CTL_USAGE; *npos gets the positional count.
 */
int ctl_getopt(int argc, char **argv, const struct ctl_opt *opts, const char **pos, int min, int max,
               int *npos);
/* ctl_getopt, then ctl_store into *st, for a command that checks nothing in
 * between: CTL_OK, CTL_USAGE or CTL_FAIL (each failure printed). */
int ctl_getopt_store(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts, const char **pos, int min,
                     int max, int *npos, struct store **st);

/* A command that is one directory call on one positional argument (customer
 * add and del, user del and unlock, alias del): runs change(st, ARG, err,
 * errlen) and prints "WHAT ARG DONE" ("user bob@acme.test deleted"), ARG in
 * its canonical (lower-case) spelling when it is an address. */
int ctl_run_one(struct ctl *c, int argc, char **argv, int (*change)(struct store *, const char *, char *, size_t),
                const char *what, const char *done, int address);

/* ---------------------------------------------------------------- output */

/* What the store callbacks of a listing fill: the rows, a lookup table (names
 * by id), and whether building them failed (out of memory). A callback that
 * fails sets failed and returns non-zero, which stops the store's iteration,
 * so the caller must check failed as well as the store's result. */
struct ctl_list {
    json_t *rows;
    json_t *map;
    int failed;
};
/* Appends o (stealing it) to l->rows; returns 0, or 1 after setting failed. */
int ctl_list_add(struct ctl_list *l, json_t *o);
/* Sets key (an id) to value (stolen) in l->map; same result as ctl_list_add. */
int ctl_list_map(struct ctl_list *l, int64_t id, json_t *value);
/* The value stored for id (borrowed), or JSON null. */
json_t *ctl_list_lookup(struct ctl_list *l, int64_t id);
void ctl_list_free(struct ctl_list *l);
/* Ends a listing: store_rc is what the store's iteration(s) returned. Returns
 * l's rows (the caller's reference), or NULL after printing "cannot list
 * <what>: ..." when the store or building the rows failed; l is freed either
 * way. */
json_t *ctl_list_rows(struct ctl_list *l, int store_rc, const char *what);
/* A ctl_list callback for store_domain_list: maps each domain's id to its
 * name, for listings that show a domain by name (arg is the ctl_list). */
int ctl_map_domain_name(const struct store_domain *d, void *arg);

/* A comma-separated list as a JSON array of strings ("" -> []); NULL when out
 * of memory. */
json_t *ctl_split_list(const char *s);
/* A JSON string for s, which need not be valid UTF-8 (bytes that are not
 * become '?'): replies from remote servers and message headers are arbitrary. */
json_t *ctl_jstr(const char *s);
/* Dumps j (indented) and a newline on stdout, then releases it. CTL_OK, or
 * CTL_FAIL if it could not be written. */
int ctl_json_print(json_t *j);
/* Writes s to f with control characters (other than \n and \t) shown as '?',
 * so a hostile header cannot drive the administrator's terminal. */
void ctl_put_safe(FILE *f, const char *s);
/* The canonical (lower-case) spelling of an address or domain, as the
 * directory stored it, for confirmation messages. Returns buf, or s if it
 * does not fit. */
const char *ctl_canon(const char *s, char buf[ADDR_MAX + 1]);
/* "2026-11-27 21:53:37" in local time, or "-" for 0. */
const char *ctl_time(int64_t t, char buf[32]);

/* ---------------------------------------------------------------- input */

/* Reads one line from stdin for --password-stdin (without echo and with a
 * prompt when stdin is a terminal), without its line end. Returns a malloc'd
 * string the caller wipes and frees with ctl_password_free, or NULL after
 * printing why. */
char *ctl_read_password(void);
void ctl_password_free(char *pw);

/* ---------------------------------------------------------------- commands */

int ctl_customer_add(struct ctl *c, int argc, char **argv);
int ctl_customer_list(struct ctl *c, int argc, char **argv);
int ctl_subscription_start(struct ctl *c, int argc, char **argv);
int ctl_subscription_cancel(struct ctl *c, int argc, char **argv);
int ctl_domain_add(struct ctl *c, int argc, char **argv);
int ctl_domain_set(struct ctl *c, int argc, char **argv);
int ctl_domain_list(struct ctl *c, int argc, char **argv);
int ctl_user_add(struct ctl *c, int argc, char **argv);
int ctl_user_set(struct ctl *c, int argc, char **argv);
int ctl_user_del(struct ctl *c, int argc, char **argv);
int ctl_user_list(struct ctl *c, int argc, char **argv);
int ctl_alias_add(struct ctl *c, int argc, char **argv);
int ctl_alias_del(struct ctl *c, int argc, char **argv);
int ctl_alias_list(struct ctl *c, int argc, char **argv);
int ctl_queue_list(struct ctl *c, int argc, char **argv);
int ctl_queue_show(struct ctl *c, int argc, char **argv);
int ctl_queue_flush(struct ctl *c, int argc, char **argv);
int ctl_queue_delete(struct ctl *c, int argc, char **argv);
int ctl_queue_hold(struct ctl *c, int argc, char **argv);
int ctl_queue_release(struct ctl *c, int argc, char **argv);
int ctl_continuity_enable(struct ctl *c, int argc, char **argv);
int ctl_continuity_disable(struct ctl *c, int argc, char **argv);
int ctl_continuity_status(struct ctl *c, int argc, char **argv);
int ctl_continuity_events(struct ctl *c, int argc, char **argv);
int ctl_continuity_stats(struct ctl *c, int argc, char **argv);
int ctl_mailbox_list(struct ctl *c, int argc, char **argv);
int ctl_policy_set(struct ctl *c, int argc, char **argv);
int ctl_policy_show(struct ctl *c, int argc, char **argv);
int ctl_archive_search(struct ctl *c, int argc, char **argv);
int ctl_archive_release(struct ctl *c, int argc, char **argv);
int ctl_archive_purge(struct ctl *c, int argc, char **argv);
int ctl_archive_hold(struct ctl *c, int argc, char **argv);
int ctl_archive_holds(struct ctl *c, int argc, char **argv);
int ctl_audit_list(struct ctl *c, int argc, char **argv);
int ctl_config_check(struct ctl *c, int argc, char **argv);
int ctl_ldap_set(struct ctl *c, int argc, char **argv);
int ctl_ldap_sync(struct ctl *c, int argc, char **argv);
int ctl_ldap_status(struct ctl *c, int argc, char **argv);
int ctl_cluster_status(struct ctl *c, int argc, char **argv);
int ctl_user_readiness(struct ctl *c, int argc, char **argv);
int ctl_user_import(struct ctl *c, int argc, char **argv);
int ctl_user_unlock(struct ctl *c, int argc, char **argv);
int ctl_domain_del(struct ctl *c, int argc, char **argv);
int ctl_customer_del(struct ctl *c, int argc, char **argv);
int ctl_migrate(struct ctl *c, int argc, char **argv);

#endif
