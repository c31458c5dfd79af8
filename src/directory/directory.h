/*
 * directory.h — customers, subscriptions, domains, users, aliases and passwords:
 * the rules on top of store.h's records.
 *
 * Used by lifeboatctl (administration), smtpd (who may receive, who may relay)
 * and later http (login). All functions take a store connection of the caller's
 * thread; the ones that change things are meant for lifeboatctl or the writer.
 * Errors: 0 on success, -1 with a one-line reason in err (for lifeboatctl to
 * print), or the STORE_* code where noted.
 */
#ifndef LB_DIRECTORY_DIRECTORY_H
#define LB_DIRECTORY_DIRECTORY_H

#include <stddef.h>

#include "store/store.h"
#include "store/writer.h"
#include "util/cidr.h"
#include "util/config.h"

/* ---------------------------------------------------------------- passwords */

#define PASSWORD_HASH_MAX 256

/* argon2id (libsodium crypto_pwhash_str, interactive limits). 0 or -1. */
int password_hash(const char *password, char out[PASSWORD_HASH_MAX]);
/* 1 when password matches hash, 0 otherwise (constant-time in the hash check). */
int password_verify(const char *hash, const char *password);

/* ---------------------------------------------------------------- logins
 *
 * What the webmail login, the password change and the submission port's AUTH
 * share (lockout.c): after too many failures for one account, or from one
 * client address, within a window, logins are refused (HTTP 429, SMTP 454)
 * until the window has slid past them. Failures are store rows, so a restart
 * does not reset them.
 *
 * The account is the user the name stands for (address or alias: a user's
 * aliases share one count), or, for a name that is nobody's, the name typed,
 * canonicalised: unknown and known accounts lock out alike, so the lockout
 * tells nobody who exists.
 *
 * An attempt is counted before its password is checked: the check-and-count
 * is one writer transaction (directory_login_attempt_begin), so attempts made
 * at the same time are serialised by the writer and at most account_max of
 * them reach argon2id, on one node or many (the rows are in the shared store).
 * A wrong password settles its rows as failures, a right one takes them back. */

struct directory_lockout_policy {
    unsigned account_max; /* failures per account within window before refusal */
    unsigned addr_max;    /* failures per client address within window */
    int64_t window;       /* seconds */
};
extern const struct directory_lockout_policy directory_lockout_default;

/* Store keys: "user:ID" for a user, "account:NAME" (canonical) for a name that
 * is nobody's, "addr:IP". Pure. */
void directory_lockout_key_user(int64_t user_id, char *out, size_t outlen);
void directory_lockout_key_name(const char *name, char *out, size_t outlen);
void directory_lockout_key_addr(const char *ip, char *out, size_t outlen);
/* The account key of a login name (looks the name up). STORE_OK or STORE_ERR. */
int directory_lockout_key_account(struct store *st, const char *login, char *out, size_t outlen);
/* 1 if these counts lock the login out. Pure. */
int directory_lockout_locked(const struct directory_lockout_policy *p, unsigned account_failures,
                             unsigned addr_failures);

/* An attempt counted in advance: its rows, settled if it fails, taken back
 * if it succeeds. */
struct directory_login_attempt {
    int64_t account_row, addr_row;
};
enum directory_login_gate {
    DIRECTORY_LOGIN_GO = 0,     /* counted (pending): check the password now */
    DIRECTORY_LOGIN_LOCKED = 1, /* refuse; nothing counted */
    DIRECTORY_LOGIN_BUSY = 2,   /* attempts in flight fill the limit: ask again shortly */
};
/* A pending attempt older than this is a failure (its checker is gone). */
#define DIRECTORY_LOGIN_PENDING_MAX 60
/* How long a caller keeps asking again while BUSY, and how often. */
#define DIRECTORY_LOGIN_BUSY_WAIT_MS 5000
#define DIRECTORY_LOGIN_BUSY_RETRY_MS 100
/* Writer side (inside a transaction): an enum directory_login_gate, or
 * STORE_ERR. Locked when the settled failures reach a limit; busy when those
 * and the attempts in flight do (so at most the limit are ever checked, and a
 * user's own parallel logins wait for each other instead of failing). On GO
 * the attempt is a pending failure of the account and the address (rows older
 * than the window are purged first). */
int directory_login_attempt_begin(struct store *st, const struct directory_lockout_policy *p, const char *login,
                                  const char *ip, int64_t now, struct directory_login_attempt *out);
/* Writer side: the password was wrong; the attempt's rows stay as failures. */
int directory_login_attempt_failed(struct store *st, const struct directory_login_attempt *a);
/* Writer side: the password was right. The user's failures are forgotten and
 * the attempt's row of the address taken back (a good login from a shared
 * address does not count against it). STORE_* codes. */
int directory_login_attempt_succeeded(struct store *st, int64_t user_id, const struct directory_login_attempt *a);
/* Writer side: forgets a user's failures (a new password). */
int directory_lockout_clear_user(struct store *st, int64_t user_id);

/* The user an address or one of their aliases logs in as: STORE_OK,
 * STORE_NOTFOUND (also for a string that is no address) or STORE_ERR. */
int directory_login_user(struct store *st, const char *email, struct store_user *u);

/* The argon2id hash of a random password, computed once per process: unknown
 * users' passwords are checked against it so they take as long as known
 * ones. NULL if it could not be computed (out of memory). Thread-safe. */
const char *directory_dummy_hash(void);

/* 1 if addr (canonical) is the user's own address or one of their aliases:
 * the From rule of the webmail and the submission port. */
int directory_user_owns_address(struct store *st, const struct store_user *u, const char *addr);

/* ---------------------------------------------------------------- LDAP / Active Directory
 *
 * SPEC.md "LDAP / Active Directory". A domain may take its users from a
 * directory (ldap set): the entries under base matching filter whose mail
 * (or, without one, userPrincipalName) is in the domain. A sync (ldap_sync.c)
 * adds and updates those users and their aliases (proxyAddresses smtp:
 * values, mailAlternateAddress, only into hosted domains of the same
 * customer), suspends the ones gone from the directory or disabled there
 * (userAccountControl bit 2), never deletes a user and never touches a user it
 * did not make. All of a sync's changes are one transaction: a search that
 * fails changes nothing. Login of a directory user binds as that user
 * (ldap_auth.c); the argon2id hash of a password the directory accepted is
 * cached, and decides only while the directory cannot be reached. Everything
 * that talks to the directory blocks (with timeouts): call it from a worker,
 * an HTTP thread, the syncer's thread or lifeboatctl, never from an event loop. */

#define LDAP_FILTER_DEFAULT "(&(objectClass=person)(mail=*))"
#define LDAP_INTERVAL_DEFAULT (3 * 3600)
#define LDAP_INTERVAL_MIN 5          /* seconds; shorter would hammer the directory */
#define LDAP_PAGE_SIZE 500           /* simple paged results (RFC 2696) page */
#define LDAP_CONNECT_TIMEOUT 5       /* seconds: TCP connect */
#define LDAP_OP_TIMEOUT 10           /* seconds: each StartTLS, bind and search page */
#define LDAP_PERSON_ALIASES_MAX 64   /* aliases taken from one entry */
#define LDAP_ERRORS_KEPT 50          /* reasons kept in a report (all are counted) */

/* The pure parts (ldap_entry.c). */

/* An address value of proxyAddresses: "smtp:a@b" (an alias) or "SMTP:a@b"
 * (the primary address), the prefix case-insensitive. 1 with the canonical
 * address in out and *primary set; 0 for other types (x500:, sip:, X400:...)
 * and for values that are no valid address. */
int ldap_proxy_address(const char *value, char *out, size_t outlen, int *primary);
/* 1 if a userAccountControl value has ACCOUNTDISABLE (bit 2, 0x2) set. */
int ldap_uac_disabled(const char *value);
/* 0 if url is ldap://host[:port][/] or ldaps://host[:port][/] (host a name,
 * an IPv4 or a [v6] address) and starttls is only asked for ldap://; -1 with
 * the reason. */
int ldap_url_check(const char *url, int starttls, char *err, size_t errlen);
/* 0 if f looks like one LDAP filter: "(...)" with balanced parentheses, no
 * control characters. The server judges the rest. */
int ldap_filter_check(const char *f);
/* "3h", "90m", "3600" (seconds) -> seconds, at least LDAP_INTERVAL_MIN; -1. */
int ldap_interval_parse(const char *s, int64_t *seconds);

/* One directory entry that is a user of the domain. */
struct ldap_person {
    char *dn;                       /* malloc'd */
    char email[ADDR_MAX + 1];       /* canonical */
    char name[256];                 /* displayName, else cn; "" */
    int disabled;                   /* userAccountControl ACCOUNTDISABLE */
    size_t naliases;
    char (*aliases)[ADDR_MAX + 1];  /* malloc'd; canonical, without email, no repeats */
};
/* An entry's values (NULL-terminated arrays; NULL: attribute absent). */
struct ldap_entry_values {
    const char *dn;
    char **mail, **upn, **display_name, **cn, **proxy, **alt, **uac;
};
/* 1 and *out filled (free with ldap_person_free) when the entry is a user of
 * domain: its mail, or without a mail its userPrincipalName, is a valid
 * address in the domain; 0 when not; -1 out of memory. Aliases are every
 * smtp:/SMTP: value of proxyAddresses and every mailAlternateAddress (at most
 * LDAP_PERSON_ALIASES_MAX); whose domains may take them is the sync's
 * question. Pure. */
int ldap_person_from_entry(const struct ldap_entry_values *e, const char *domain, struct ldap_person *out);
void ldap_person_free(struct ldap_person *p);

struct ldap_person_list {
    struct ldap_person *v;
    size_t n, cap;
};
void ldap_person_list_free(struct ldap_person_list *l);

/* The network (ldap_client.c). Settings as stored. */
enum directory_ldap_status {
    DIRECTORY_LDAP_OK = 0,
    DIRECTORY_LDAP_INVALID = 1, /* a bind's credentials were refused (49) */
    DIRECTORY_LDAP_DOWN = 2,    /* unreachable: refused, timed out, connection lost */
    DIRECTORY_LDAP_FAILED = 3,  /* anything else: TLS, a refused search, bad settings */
};
/* Binds as the settings' bind_dn and searches base with filter in pages of
 * LDAP_PAGE_SIZE; the users of domain go into out (which the caller frees
 * with ldap_person_list_free, also after a failure). *entries: every entry the
 * search gave. An enum directory_ldap_status, with the reason in err. */
int directory_ldap_search(const struct store_ldap_settings *s, const char *domain, struct ldap_person_list *out,
                          unsigned *entries, char *err, size_t errlen);
/* Binds as dn with password (never an empty one: that would be an anonymous
 * bind, and succeed). An enum directory_ldap_status. */
int directory_ldap_user_bind(const struct store_ldap_settings *s, const char *dn, const char *password, char *err,
                             size_t errlen);

/* Settings and syncs (ldap_sync.c). */

/* ldap set and PUT .../ldap: NULL leaves a value (or takes the default when
 * the domain has no directory yet: url and base are required then); starttls
 * -1 leaves it. bind_password "" binds without one (anonymous) only with an
 * empty bind_dn. */
struct directory_ldap_changes {
    const char *url, *bind_dn, *bind_password, *base, *filter, *interval;
    int starttls;
};
/* The settings a domain starts with (the default filter and interval). */
void directory_ldap_settings_default(struct store_ldap_settings *n, int64_t domain_id);
/* Applies ch to n (stored settings, or the defaults when is_new) and checks
 * the result: 0 or DIR_INVALID with the reason. Pure (the "test connection"
 * of settings not stored yet uses it too). */
int directory_ldap_settings_apply(struct store_ldap_settings *n, const struct directory_ldap_changes *ch, int is_new,
                                  const char *domain, char *err, size_t errlen);
/* 0 or an enum directory_result (DIR_INVALID, DIR_NOTFOUND: no such domain,
 * DIR_STORE) with the reason; a savepoint inside a caller's transaction. */
int directory_ldap_set(struct store *st, const char *domain, const struct directory_ldap_changes *ch, int64_t now,
                       char *err, size_t errlen);

/* How a sync's changes are written: run(ctx, job, arg) runs job in one write
 * transaction and returns its result (the daemon's writer, an HTTP writer
 * job). A NULL writer runs it on st in a transaction of its own (lifeboatctl). */
struct directory_writer {
    int (*run)(void *ctx, store_job_fn job, void *arg);
    void *ctx;
};
/* One sync of the domain: search (with st's settings), then the changes and
 * the report in one transaction; a failed search stores a failed report and
 * changes nothing else. 0 with *rep the report (saved), or an enum
 * directory_result with the reason in err: DIR_NOTFOUND (no such domain, or
 * no directory), DIR_STORE, DIR_REFUSED when the directory failed (then
 * rep->at is set and the failed report saved). One sync at a time per
 * process. Not inside a transaction (it searches first). */
int directory_ldap_sync(struct store *st, const struct directory_writer *w, const char *domain,
                        struct store_ldap_report *rep, char *err, size_t errlen);
/* The writer side of a sync, for tests: applies people (the users of d found
 * in the directory) and fills rep. Inside a transaction. STORE_* code. */
int directory_ldap_apply(struct store *st, const struct store_domain *d, const struct ldap_person_list *people,
                         struct store_ldap_report *rep);
/* "test connection": the search without the changes: an enum
 * directory_ldap_status, the counts (entries, users of the domain) and, when
 * not OK, the reason. */
int directory_ldap_test(const struct store_ldap_settings *s, const char *domain, unsigned *entries,
                        unsigned *users, char *err, size_t errlen);

/* The daemon's periodic sync (ldap_syncer.c): a thread with its own read
 * connection that syncs each domain when its interval has passed since its
 * last report (or its settings changed), writing through w. */
struct directory_ldap_syncer;
struct directory_ldap_syncer *directory_ldap_syncer_start(const struct config *cfg, struct store_writer *w,
                                                          char *err, size_t errlen);
/* Stops the thread (a sync in progress finishes first: its operations time
 * out) and frees it. Before the writer stops. NULL is a no-op. */
void directory_ldap_syncer_stop(struct directory_ldap_syncer *s);

/* Login (ldap_auth.c): the one password check of the webmail login, the
 * password change and the submission port's AUTH. */
enum directory_auth_source {
    DIRECTORY_AUTH_NONE = 0,       /* unknown user, or no password of any kind */
    DIRECTORY_AUTH_LOCAL = 1,      /* the user's own argon2id hash */
    DIRECTORY_AUTH_LDAP_BIND = 2,  /* the directory accepted the bind */
    DIRECTORY_AUTH_LDAP_CACHE = 3, /* the directory could not be reached: the cached hash */
};
struct directory_auth {
    int ok;             /* the password is right */
    int source;         /* enum directory_auth_source */
    int directory_down; /* a directory user whose directory could not be reached */
    char cache_hash[PASSWORD_HASH_MAX]; /* set after a bind: directory_login_succeeded caches it */
};
/* u: the user the name stands for, NULL for nobody. Local users: their hash
 * (a dummy one without: the same cost). Directory users: a bind as their DN;
 * a wrong password (49) is wrong; only an unreachable directory lets the
 * cached hash decide; no cache refuses. Blocking. st: a read connection of
 * the caller's thread (NULL: local passwords only). Returns out->ok. */
int directory_password_check_login(struct store *st, const struct store_user *u, const char *password,
                                   struct directory_auth *out);
/* Wipes out's hash. */
void directory_auth_clear(struct directory_auth *a);
/* Writer side, for a login that succeeded: directory_login_attempt_succeeded,
 * the user's last login, and the directory password's new cached hash (auth
 * may be NULL). */
int directory_login_succeeded(struct store *st, int64_t user_id, const struct directory_login_attempt *a,
                              const struct directory_auth *auth, int64_t now);
/* 1 if the user was made by the directory sync, 0 if not, STORE_ERR. */
int directory_user_is_ldap(struct store *st, int64_t user_id);

/* Readiness for continuity (readiness.c): per user, ready or why not. */
enum directory_readiness_reason {
    READINESS_NO_PASSWORD = 1u << 0,     /* a local user without a password */
    READINESS_NEVER_LOGGED_IN = 1u << 1,
    READINESS_SUSPENDED = 1u << 2,
    READINESS_NOT_ACTIVATED = 1u << 3,
    READINESS_LDAP_NO_CACHE = 1u << 4,   /* a directory user without a cached password */
};
#define READINESS_REASONS 5
/* The reasons of one user (0: ready). Pure. */
unsigned directory_readiness_reasons(const struct store_user_readiness *u);
/* The code ("no_password"...), a sentence and what to do, of one reason bit
 * for u. Pure. */
struct directory_readiness_text {
    const char *code, *text, *fix;
};
void directory_readiness_describe(unsigned reason, const struct store_user_readiness *u,
                                  struct directory_readiness_text *out);
/* Every user of the domain (domain_id), else of the customer (customer_id),
 * else all, with their reasons. STORE_* code. */
int directory_readiness(struct store *st, int64_t domain_id, int64_t customer_id,
                        int (*cb)(const struct store_user_readiness *u, unsigned reasons, void *arg), void *arg);

/* ---------------------------------------------------------------- DKIM
 *
 * Mail a user sends (webmail, submission port) is signed with the key of the
 * From domain when that domain has one (domain set --dkim-selector S
 * --dkim-key FILE). The signing itself is mail/dkim.h's (libopendkim). */

/* Signs msg (a complete message, CRLF line ends) for from_domain. Returns 0
 * with *header malloc'd ("DKIM-Signature: ...\r\n", folded, to put in front
 * of the message); 0 with *header NULL when the domain has no key; -1 with a
 * one-line reason in err when it has one but signing failed (key file
 * unreadable or not a private key): the caller logs it and sends unsigned.
 * Thread-safe; takes the caller's store connection. */
int directory_dkim_sign(struct store *st, const char *from_domain, const unsigned char *msg, size_t len,
                        char **header, char *err, size_t errlen);

/* Keeps a DKIM private key uploaded as PEM text (the control panel) in
 * data_dir/dkim/DOMAIN.SELECTOR.pem (mode 0600, written whole, then renamed
 * into place), for domain set to use as its key file; path gets its name.
 * The key is checked first: nothing is written for one that cannot sign.
 * 0 or an enum directory_result; the key is never put into err. */
int directory_dkim_key_save(const char *data_dir, const char *domain, const char *selector, const char *pem,
                            char *path, size_t pathlen, char *err, size_t errlen);

/* ---------------------------------------------------------------- routes */

#define ROUTE_MAX_HOSTS 8

struct route_host {
    char host[DOMAIN_MAX + 1];
    char port[8];
};

struct route {
    size_t count;
    struct route_host hosts[ROUTE_MAX_HOSTS];
};

/* Parses "host[:port],host[:port]" (default port 25; "[v6]:port" for IPv6
 * literals; spaces around commas allowed). Host names are lower-cased.
 * 0 or -1 (empty list, empty entry, bad host or port, more than ROUTE_MAX_HOSTS). */
int route_parse(const char *s, struct route *out);
/* Writes the canonical text of a route ("mx1.acme.test:25,[2001:db8::1]:2525"),
 * the form store_domain.routes keeps. 0, or -1 if it does not fit. */
int route_format(const struct route *r, char *out, size_t outlen);

/* CIDR lists (a domain's --outbound-from) are util/cidr.h's. */

/* ---------------------------------------------------------------- recipients */

enum rcpt_kind {
    RCPT_KIND_NOT_HOSTED = 0, /* domain is not ours */
    RCPT_KIND_UNKNOWN,        /* hosted domain, no such user or alias */
    RCPT_KIND_USER,           /* a registered user (maybe inactive or suspended) */
};

struct rcpt_lookup {
    int kind;                 /* enum rcpt_kind */
    struct store_domain domain;  /* valid unless NOT_HOSTED */
    struct store_user user;      /* valid when USER: the owner of the address or alias */
    int via_alias;
};

/* Classifies one recipient address (case-insensitive). STORE_OK or STORE_ERR. */
int directory_lookup_rcpt(struct store *st, const char *addr, struct rcpt_lookup *out);

/*
 * Relaying out (port 25): a client may send mail to domains we do not host
 * when its address is in a hosted domain's --outbound-from networks, and then
 * only as the customer those networks belong to: the envelope sender must be
 * in one of that customer's domains (or a subdomain of one), or the null
 * sender. Another customer's domain in MAIL FROM is refused, so one
 * customer's server cannot send as, nor file mail in the archive of, another.
 */
enum directory_relay {
    DIRECTORY_RELAY_DENIED = 0,    /* the client is in no --outbound-from network */
    DIRECTORY_RELAY_OK = 1,        /* *customer_id: the customer it relays for */
    DIRECTORY_RELAY_NOT_OWNED = 2, /* a relaying client, but the sender is not its customer's */
};
#define DIRECTORY_RELAY_CUSTOMERS_MAX 16 /* customers sharing one network: past this, not considered */
/* The customers whose --outbound-from networks hold client_ip, into
 * customers (at most max): their count (0: the client may not relay), or
 * STORE_ERR. One scan of the domains: a caller asks once per connection. */
int directory_relay_networks(struct store *st, const char *client_ip, int64_t *customers, size_t max);
/* Which of those customers (n > 0) a transaction from sender relays for: an
 * enum directory_relay (never DENIED), or STORE_ERR. sender: canonical, ""
 * for <>. Several customers may share a network (one outbound gateway): the
 * sender's domain says which of them; the null sender goes to the first (in
 * domain-name order). */
int directory_relay_sender(struct store *st, const int64_t *customers, size_t n, const char *sender,
                           int64_t *customer_id);
/* Both in one: an enum directory_relay, or STORE_ERR. */
int directory_relay_check(struct store *st, const char *client_ip, const char *sender, int64_t *customer_id);
/* 1 if domain, or a domain it is a subdomain of, is one of customer_id's; 0
 * if not; STORE_ERR. */
int directory_customer_owns_domain(struct store *st, int64_t customer_id, const char *domain);

/* ---------------------------------------------------------------- administration */

/* What an administration call returns: 0, or the kind of refusal (with the
 * one-line reason in err), so that the HTTP API picks its status and code by
 * kind and lifeboatctl prints the reason. Every refusal is negative. */
enum directory_result {
    DIR_OK = 0,
    DIR_INVALID = -1,  /* bad input: an address, a name, a value out of range */
    DIR_NOTFOUND = -2, /* the customer, domain, user or alias named does not exist */
    DIR_EXISTS = -3,   /* it exists already */
    DIR_REFUSED = -4,  /* a rule refuses it now: the minimum term, mail waiting, ... */
    DIR_POLICY = -5,   /* the password does not satisfy the customer's policy */
    DIR_STORE = -6,    /* the store failed or is busy: try again */
};

/* Each of these validates its inputs, checks and changes the store inside one
 * transaction (so a check and the change it guards cannot be split by another
 * writer), and returns 0 or an enum directory_result with a one-line reason
 * in err, e.g. "domain acme.test: customer acme does not exist". Called on a
 * connection inside a transaction (a writer job), the call is a savepoint in
 * it instead. Addresses and domains are
 * canonicalised (lower case) before anything is looked up or stored. */

/* "user", "admin", "operator" -> enum store_role; -1 for anything else. */
int directory_role_parse(const char *s);
const char *directory_role_name(int role);

int directory_customer_add(struct store *st, const char *name, char *err, size_t errlen);

/* domain add: customer must exist, route must parse. */
int directory_domain_add(struct store *st, const char *domain, const char *customer,
                         const char *routes, char *err, size_t errlen);

/* domain set: NULL (or -1) leaves a setting alone. "" clears outbound_from,
 * webhook and the DKIM pair; the DKIM selector and key file are set together. */
struct directory_domain_changes {
    const char *routes;
    int recipient_check;        /* 0, 1, or -1: unchanged */
    const char *outbound_from;  /* CIDR list */
    const char *webhook;        /* http:// or https:// URL */
    const char *dkim_selector;
    const char *dkim_key_file;  /* must be a readable file; stored as an absolute path */
};
int directory_domain_set(struct store *st, const char *domain, const struct directory_domain_changes *ch,
                         char *err, size_t errlen);

/* User creation and changes: the domain must be hosted; password (may be NULL)
 * is hashed here. role: "user", "admin" or "operator" (NULL: "user"). */
int directory_user_add(struct store *st, const char *email, const char *name, const char *role,
                       const char *password, int activate, char *err, size_t errlen);

/* user set: NULL (or -1) leaves a setting alone. active 1 also lifts a
 * suspension (--activate); suspended 1 suspends (--suspend). alt_email "" clears. */
struct directory_user_changes {
    const char *password;
    int active;          /* 1 or -1 */
    int suspended;       /* 1 or -1 */
    const char *alt_email;
    const char *role;
    const char *name;    /* "" clears */
};
int directory_user_set(struct store *st, const char *email, const struct directory_user_changes *ch,
                       char *err, size_t errlen);
/* Deletes the user, the user's aliases and continuity mailbox. Refused while
 * some of the user's messages wait for re-delivery to the customer's server
 * (deleting them would lose mail the server never got). */
int directory_user_del(struct store *st, const char *email, char *err, size_t errlen);

/* The alias's domain must be hosted and the alias must not be a user's address. */
int directory_alias_add(struct store *st, const char *user_email, const char *alias, char *err,
                        size_t errlen);
int directory_alias_del(struct store *st, const char *alias, char *err, size_t errlen);

/* ---------------------------------------------------------------- subscriptions and continuity */

/* The minimum term of a subscription, and a sanity bound on it. */
#define SUBSCRIPTION_MIN_MONTHS 12
#define SUBSCRIPTION_MAX_MONTHS 1200

/* 1 if the customer's subscription runs: started and not cancelled. It goes on
 * after its minimum term (sub_end) until it is cancelled. */
int directory_subscription_active(const struct store_customer *c);
/* t plus months calendar months in UTC; a day past the end of the target month
 * becomes its last day (31 January + 1 month = 28 or 29 February). */
int64_t directory_add_months(int64_t t, int months);

/* subscription start: months from SUBSCRIPTION_MIN_MONTHS to _MAX_MONTHS;
 * refused while a subscription is active. Sets sub_start = now, sub_end = now +
 * months (the minimum term), clears sub_cancelled. Continuity and the archive
 * begin now. */
int directory_subscription_start(struct store *st, const char *customer, int months, int64_t now, char *err,
                                 size_t errlen);
/* subscription cancel: refused without an active subscription and inside the
 * minimum term (now < sub_end; the reason names the time it can be cancelled
 * from). Sets sub_cancelled = now and disables continuity on every domain of
 * the customer; *disabled (may be NULL) gets how many were enabled. */
int directory_subscription_cancel(struct store *st, const char *customer, int64_t now, int *disabled, char *err,
                                  size_t errlen);

/* continuity enable: refused unless the domain's customer has an active
 * subscription. Sets continuity on (for all users of the domain) and
 * --outgoing-to-own-server as given. continuity_since becomes now, unless it
 * was enabled already (then only the flag changes): enabling is not
 * retroactive, the engine diverts only mail received at or after
 * continuity_since, and never a recipient queued before (store_rcpt.
 * pre_continuity, marked here in the same transaction, since seconds cannot
 * order a deferral and an enable within one). *was_enabled (may be NULL) tells
 * which case it was. */
int directory_continuity_enable(struct store *st, const char *domain, int outgoing_to_own, int64_t now,
                                int *was_enabled, char *err, size_t errlen);
/* continuity disable: new mail is no longer diverted. The domain's state and
 * its mailboxes stay: entries waiting are still re-delivered when the server
 * takes mail again. Disabling a domain that is not enabled is not an error. */
int directory_continuity_disable(struct store *st, const char *domain, int *was_enabled, char *err,
                                 size_t errlen);

/* "normal", "outage", "recovering" (SPEC's names for enum domain_state). */
const char *directory_state_name(int state);

/* ---------------------------------------------------------------- password policy
 *
 * What a new password must look like (password_policy.c), per customer
 * (lifeboatctl policy set), applied wherever a password is set: the webmail's
 * password change and reset, lifeboatctl user add/set. A customer without a
 * policy of its own gets password_policy_default: at least 8 characters, no
 * class of characters required. Length is counted in characters (UTF-8 code
 * points). Always refused, whatever the policy: more than PASSWORD_BYTES_MAX
 * bytes, invalid UTF-8, control characters. */

#define PASSWORD_BYTES_MAX 1024
#define PASSWORD_POLICY_DEFAULT_LENGTH 8
#define PASSWORD_POLICY_LENGTH_MAX 256 /* the largest minimum a policy may ask for */
#define PASSWORD_POLICY_MSG_MAX 256    /* room for the longest message of the check */

struct password_policy {
    unsigned min_length;              /* characters */
    int upper, lower, digit, special; /* 1: at least one of that class */
};
extern const struct password_policy password_policy_default;

/* 0 when password satisfies p, else -1 with one message naming every rule it
 * fails, e.g. "password must be at least 12 characters and contain an
 * upper-case letter and a digit". msg may be NULL. Pure. */
int password_policy_check(const struct password_policy *p, const char *password, char *msg, size_t msglen);
/* "at least 12 characters, with an upper-case letter and a digit". Pure. */
void password_policy_describe(const struct password_policy *p, char *out, size_t outlen);

/* The customer's policy, or the defaults (*is_default = 1; may be NULL).
 * STORE_OK or STORE_ERR. */
int directory_password_policy_get(struct store *st, int64_t customer_id, struct password_policy *out,
                                  int *is_default);
/* Checks a new password of a user of domain_id against their customer's
 * policy: 0 acceptable, 1 refused (msg says why, as password_policy_check),
 * -1 on a store error (msg says so). */
int directory_password_check(struct store *st, int64_t domain_id, const char *password, char *msg,
                             size_t msglen);

/* policy set: min_length -1 leaves it, else 1..PASSWORD_POLICY_LENGTH_MAX;
 * each class 1 (required), 0 (not required) or -1 (unchanged). Starts from the
 * customer's policy or the defaults. result (may be NULL) gets the new policy. */
struct directory_policy_changes {
    long min_length;
    int upper, lower, digit, special;
};
int directory_password_policy_set(struct store *st, const char *customer, const struct directory_policy_changes *ch,
                                  struct password_policy *result, char *err, size_t errlen);

/* ---------------------------------------------------------------- user import (CSV)
 *
 * `user import FILE.csv --domain D` and POST /api/v1/admin/users/import
 * (SPEC.md "user import CSV"): a header line naming the columns (any order),
 * then one user a line. csv_import.c reads the file (pure); user_import.c
 * checks every line, skips and reports the bad ones by their line number, and
 * imports the good ones in one transaction: all of them or, when the store
 * fails, none. Existing users are updated, not duplicated. */

#define CSV_IMPORT_BYTES_MAX (10u << 20) /* a larger file is refused whole */
#define CSV_IMPORT_ROWS_MAX 50000u       /* users a file; more is refused whole */

enum csv_import_column {
    CSV_EMAIL = 0, /* required */
    CSV_NAME,
    CSV_ALT_EMAIL,
    CSV_ALIASES,   /* separated by spaces (or commas) */
    CSV_ROLE,      /* user, admin, operator */
    CSV_ACTIVE,    /* yes or no */
    CSV_PASSWORD,
    CSV_NCOLUMNS
};

/* One record of the file. */
struct csv_import_row {
    unsigned line;                    /* the file line it starts on; the header is line 1 */
    char *field[CSV_NCOLUMNS];        /* as written, unquoted (the caller may trim them in place);
                                       * NULL: no such column in the file */
    const char *error;                /* static text when the record cannot be read (then no fields) */
};

struct csv_import_file {
    unsigned columns;            /* 1 << enum csv_import_column for each column of the header */
    struct csv_import_row *rows; /* blank lines are not rows */
    size_t nrows;
    char *text;                  /* the fields point in here */
    size_t textsize;             /* wiped when freed: it may hold passwords */
};

/* Reads a user import file (RFC 4180: quoted fields with commas, doubled
 * quotes and line ends; CRLF, LF or CR line ends; a UTF-8 BOM skipped; blank
 * lines ignored). 0, or -1 with err when the file as a whole is refused: too
 * large, empty, more than CSV_IMPORT_ROWS_MAX users, a header with an unknown
 * or repeated column or without email. A record that cannot be read (a stray
 * quote, another number of fields than the header, a NUL, not UTF-8) is a row
 * with its error. Free with csv_import_file_free. Pure. */
int csv_import_parse(const char *buf, size_t len, struct csv_import_file *out, char *err, size_t errlen);
void csv_import_file_free(struct csv_import_file *f);
/* "email", "name", ... for an enum csv_import_column. */
const char *csv_import_column_name(int column);
/* Trims spaces and tabs around s in place; returns the first kept byte. */
char *csv_import_trim(char *s);
/* The next word of an aliases field (separated by spaces, tabs or commas)
 * into out: 1, 0 at the end, -1 when it does not fit (pos moves past it). */
int csv_import_next_word(const char **pos, char *out, size_t outlen);

/* The report (SPEC: {"imported","updated","errors":[{"line","error"}]}). */
#define DIRECTORY_IMPORT_ERROR_MAX 320
struct directory_import_error {
    unsigned line;
    char error[DIRECTORY_IMPORT_ERROR_MAX];
};
struct directory_import_report {
    unsigned imported, updated;
    struct directory_import_error *errors; /* by line */
    size_t nerrors;
};

/*
 * The import in two steps, so that the argon2id hashing (tens of ms a
 * password) is done before the transaction and the store's write lock is
 * held only for the rows:
 *
 * directory_import_prepare reads the file and checks what needs no write
 * lock: every value, duplicates within the file (the second one is reported),
 * the password against the customer's policy; then hashes the passwords (a
 * password equal to the user's current one keeps its hash: a re-import
 * changes nothing and ends no session). max_role is the highest role the
 * caller may give or touch (an admin: ROLE_ADMIN; lifeboatctl and operators:
 * ROLE_OPERATOR). Returns 0 with *out, or an enum directory_result with err
 * when nothing can be imported (DIR_NOTFOUND: domain not hosted; DIR_INVALID:
 * the file as a whole). On a read connection of any thread.
 *
 * directory_import_apply imports the lines that passed, in one transaction
 * (a savepoint inside a caller's: a writer job), each line in a savepoint of
 * its own: a line the store's rules refuse (an alias someone else has, an
 * address that is an alias, a user changed meanwhile) is reported and
 * skipped; a store failure rolls everything back (DIR_STORE, the counts
 * zero). New users get the columns given (inactive unless active=yes, role
 * user unless given); existing users get the columns present changed (an
 * empty name, alt_email or aliases clears it; an empty role, active or
 * password leaves it); aliases given replace the user's aliases.
 */
struct directory_import;
int directory_import_prepare(struct store *st, const char *domain, const char *csv, size_t len, int max_role,
                             struct directory_import **out, char *err, size_t errlen);
int directory_import_apply(struct store *st, struct directory_import *imp, char *err, size_t errlen);
/* The report so far (after apply: the whole of it, errors sorted by line). */
const struct directory_import_report *directory_import_report(const struct directory_import *imp);
/* Its JSON (a jansson json_t *, the caller's reference), NULL when out of memory. */
struct json_t *directory_import_report_json(const struct directory_import_report *r);
void directory_import_free(struct directory_import *imp);
/* Both steps on one connection (lifeboatctl). */
int directory_user_import(struct store *st, const char *domain, const char *csv, size_t len, int max_role,
                          struct directory_import **out, char *err, size_t errlen);

/* ---------------------------------------------------------------- unlock, deletions */

/* user unlock: forgets the login failures of the user (by address or alias),
 * under their account key and under the names they log in with, so the next
 * login is checked at once. Failures counted per client address stay (they
 * are about the address, not the user). */
int directory_user_unlock(struct store *st, const char *email, char *err, size_t errlen);

/* What a domain deletion removed (or, refused, what stood in the way). */
struct directory_domain_del_counts {
    unsigned users, aliases;  /* the domain's users; aliases in or of the domain */
    unsigned mailbox;         /* continuity mailbox entries of its users */
    unsigned queued;          /* recipients in the domain still queued or held */
    unsigned waiting;         /* mailbox entries waiting for re-delivery */
};
/* domain del: refused (DIR_REFUSED) while mail is queued or held for the
 * domain or continuity mailbox entries wait for re-delivery, unless force.
 * Deletes the domain with its settings and event timeline, its users (their
 * aliases, continuity mailboxes, sessions, login failures) and every alias in
 * the domain; with force also the queued and held copies for it (dropped from
 * the queue, not bounced: the domain is no longer ours to answer for). The
 * archive keeps its entries for the retention window, and mail the domain's
 * users sent that is still queued for other domains is still delivered.
 * counts (may be NULL). */
int directory_domain_del(struct store *st, const char *domain, int force, struct directory_domain_del_counts *counts,
                         char *err, size_t errlen);
/* {"domain","users","aliases","mailbox","dropped_queued","dropped_waiting"}
 * (a jansson json_t *), what lifeboatctl --json and the API answer; NULL when
 * out of memory. */
struct json_t *directory_domain_del_json(const char *domain, const struct directory_domain_del_counts *c);
/* customer del: refused (DIR_REFUSED) while the customer has domains, or
 * archived mail or legal holds (kept for the retention window; the customer
 * can go once `archive purge` has removed them). Deletes the customer and
 * its password policy. */
int directory_customer_del(struct store *st, const char *name, char *err, size_t errlen);

#endif
