/*
 * store_directory.c — store.h's directory records on SQLite: customers,
 * domains, users and aliases.
 *
 * Plain record keeping; the rules (who may own which address, password
 * policy, ...) are src/directory's. Domain names, user addresses and aliases
 * are stored lower-case; the NOCASE columns make lookups by any spelling hit the
 * unique index. A unique violation is STORE_EXISTS, a missing referenced row
 * (customer of a domain, user of an alias) STORE_NOTFOUND.
 */
#include <string.h>

#include "store/store_internal.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Lower-cases a name or address into out; logs and fails when it is too long. */
static int canonical(const char *s, char *out, size_t outlen, const char *what)
{
    if (!s || addr_canonical(s, out, outlen) != 0) {
        log_err("store: %s: missing or longer than %zu bytes", what, outlen - 1);
        return STORE_ERR;
    }
    return STORE_OK;
}

static int64_t now_if_zero(int64_t t)
{
    return t ? t : time_now();
}

/* ---------------------------------------------------------------- customers */

#define CUSTOMER_COLS "id, name, created, sub_start, sub_end, sub_cancelled"

static void read_customer(struct db_stmt *s, void *out)
{
    struct store_customer *c = out;
    memset(c, 0, sizeof *c);
    c->id = db_col_int64(s, 0);
    col_text(s, 1, c->name, sizeof c->name);
    c->created = db_col_int64(s, 2);
    c->sub_start = db_col_int64(s, 3);
    c->sub_end = db_col_int64(s, 4);
    c->sub_cancelled = db_col_int64(s, 5);
}

int store_customer_add(struct store *st, const char *name, int64_t *id_out)
{
    static const char sql[] = "INSERT INTO customers (name, created) VALUES (?1, ?2) RETURNING id";
    if (!name || strlen(name) >= sizeof((struct store_customer *)0)->name) {
        log_err("store: customer add: name missing or too long");
        return STORE_ERR;
    }
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, name);
    db_bind_int64(s, 2, time_now());
    return stmt_insert(st, sql, s, id_out, "customer add");
}

int store_customer_get(struct store *st, const char *name, struct store_customer *out)
{
    static const char sql[] = "SELECT " CUSTOMER_COLS " FROM customers WHERE name = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, name);
    return stmt_fetch_one(st, sql, s, read_customer, out, "customer get");
}

int store_customer_get_by_id(struct store *st, int64_t id, struct store_customer *out)
{
    static const char sql[] = "SELECT " CUSTOMER_COLS " FROM customers WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_fetch_one(st, sql, s, read_customer, out, "customer get");
}

int store_customer_update(struct store *st, const struct store_customer *c)
{
    static const char sql[] = "UPDATE customers SET name = ?2, sub_start = ?3, sub_end = ?4, "
                              "sub_cancelled = ?5 WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, c->id);
    db_bind_text(s, 2, c->name);
    db_bind_int64(s, 3, c->sub_start);
    db_bind_int64(s, 4, c->sub_end);
    db_bind_int64(s, 5, c->sub_cancelled);
    int rc = stmt_run(st, sql, s, "customer update");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

struct customer_each {
    int (*cb)(const struct store_customer *, void *);
    void *arg;
};

static int customer_each(struct db_stmt *s, void *ctx)
{
    struct customer_each *e = ctx;
    struct store_customer c;
    read_customer(s, &c);
    return e->cb(&c, e->arg);
}

int store_customer_list(struct store *st, int (*cb)(const struct store_customer *, void *), void *arg)
{
    static const char sql[] = "SELECT " CUSTOMER_COLS " FROM customers ORDER BY name";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    struct customer_each e = {cb, arg};
    return stmt_each(st, sql, s, customer_each, &e, "customer list");
}

/* ------------------------------------------------------------------ domains */

/* The settings (store_domain_add and _update write these) ... */
#define DOMAIN_SET_COLS                                                                             \
    "customer_id, name, routes, recipient_check, outbound_from, webhook, dkim_selector, "          \
    "dkim_key_file, continuity, outgoing_to_own, created"
#define DOMAIN_COLS "id, " DOMAIN_SET_COLS
/* ... and what every read gives besides: the continuity state, which only
 * store_domain_set_state and store_domain_set_continuity change. */
#define DOMAIN_READ_COLS                                                                            \
    DOMAIN_COLS ", continuity_since, state, state_since, state_cause, outage_id"

static void read_domain(struct db_stmt *s, void *out)
{
    struct store_domain *d = out;
    memset(d, 0, sizeof *d);
    d->id = db_col_int64(s, 0);
    d->customer_id = db_col_int64(s, 1);
    col_text(s, 2, d->name, sizeof d->name);
    col_text(s, 3, d->routes, sizeof d->routes);
    d->recipient_check = db_col_int(s, 4);
    col_text(s, 5, d->outbound_from, sizeof d->outbound_from);
    col_text(s, 6, d->webhook, sizeof d->webhook);
    col_text(s, 7, d->dkim_selector, sizeof d->dkim_selector);
    col_text(s, 8, d->dkim_key_file, sizeof d->dkim_key_file);
    d->continuity = db_col_int(s, 9);
    d->outgoing_to_own = db_col_int(s, 10);
    d->created = db_col_int64(s, 11);
    d->continuity_since = db_col_int64(s, 12);
    d->state = db_col_int(s, 13);
    d->state_since = db_col_int64(s, 14);
    col_text(s, 15, d->state_cause, sizeof d->state_cause);
    d->outage_id = db_col_int64(s, 16);
}

/* Binds ?2..?12 (everything but the id) from d, with name the canonical domain. */
static void bind_domain(struct db_stmt *s, const struct store_domain *d, const char *name)
{
    db_bind_int64(s, 2, d->customer_id);
    db_bind_text(s, 3, name);
    db_bind_text(s, 4, d->routes);
    db_bind_int(s, 5, d->recipient_check);
    db_bind_text(s, 6, d->outbound_from);
    db_bind_text(s, 7, d->webhook);
    db_bind_text(s, 8, d->dkim_selector);
    db_bind_text(s, 9, d->dkim_key_file);
    db_bind_int(s, 10, d->continuity);
    db_bind_int(s, 11, d->outgoing_to_own);
    db_bind_int64(s, 12, now_if_zero(d->created));
}

int store_domain_add(struct store *st, const struct store_domain *d, int64_t *id_out)
{
    /* A new domain is normal since it was added. */
    static const char sql[] = "INSERT INTO domains (" DOMAIN_SET_COLS ", state_since) VALUES "
                              "(?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) RETURNING id";
    char name[DOMAIN_MAX + 1];
    if (canonical(d->name, name, sizeof name, "domain add") != STORE_OK)
        return STORE_ERR;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    bind_domain(s, d, name);
    return stmt_insert(st, sql, s, id_out, "domain add");
}

int store_domain_set_continuity(struct store *st, int64_t domain_id, int enabled, int outgoing_to_own,
                                int64_t since)
{
    static const char sql[] = "UPDATE domains SET continuity = ?2, outgoing_to_own = ?3, "
                              "continuity_since = ?4 WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, domain_id);
    db_bind_int(s, 2, enabled ? 1 : 0);
    db_bind_int(s, 3, outgoing_to_own ? 1 : 0);
    db_bind_int64(s, 4, since);
    int rc = stmt_run(st, sql, s, "domain continuity settings");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

int store_domain_update(struct store *st, const struct store_domain *d)
{
    static const char sql[] =
        "UPDATE domains SET customer_id = ?2, name = ?3, routes = ?4, recipient_check = ?5, "
        "outbound_from = ?6, webhook = ?7, dkim_selector = ?8, dkim_key_file = ?9, "
        "continuity = ?10, outgoing_to_own = ?11, created = ?12 WHERE id = ?1";
    char name[DOMAIN_MAX + 1];
    if (canonical(d->name, name, sizeof name, "domain update") != STORE_OK)
        return STORE_ERR;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, d->id);
    bind_domain(s, d, name);
    int rc = stmt_run(st, sql, s, "domain update");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

int store_domain_get(struct store *st, const char *name, struct store_domain *out)
{
    static const char sql[] = "SELECT " DOMAIN_READ_COLS " FROM domains WHERE name = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, name);
    return stmt_fetch_one(st, sql, s, read_domain, out, "domain get");
}

int store_domain_get_by_id(struct store *st, int64_t id, struct store_domain *out)
{
    static const char sql[] = "SELECT " DOMAIN_READ_COLS " FROM domains WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_fetch_one(st, sql, s, read_domain, out, "domain get");
}

int store_domain_get_locked(struct store *st, int64_t id, struct store_domain *out)
{
    static const char sql[] = "SELECT " DOMAIN_READ_COLS " FROM domains WHERE id = ?1 FOR UPDATE";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_fetch_one(st, sql, s, read_domain, out, "domain get for update");
}

struct domain_each {
    int (*cb)(const struct store_domain *, void *);
    void *arg;
};

static int domain_each(struct db_stmt *s, void *ctx)
{
    struct domain_each *e = ctx;
    struct store_domain d;
    read_domain(s, &d);
    return e->cb(&d, e->arg);
}

int store_domain_list(struct store *st, int (*cb)(const struct store_domain *, void *), void *arg)
{
    static const char sql[] = "SELECT " DOMAIN_READ_COLS " FROM domains ORDER BY name";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    struct domain_each e = {cb, arg};
    return stmt_each(st, sql, s, domain_each, &e, "domain list");
}

/* -------------------------------------------------------------------- users */

#define USER_SET_COLS "domain_id, email, name, role, pw_hash, active, suspended, alt_email, created"
#define USER_COLS "id, " USER_SET_COLS

static void read_user(struct db_stmt *s, void *out)
{
    struct store_user *u = out;
    memset(u, 0, sizeof *u);
    u->id = db_col_int64(s, 0);
    u->domain_id = db_col_int64(s, 1);
    col_text(s, 2, u->email, sizeof u->email);
    col_text(s, 3, u->name, sizeof u->name);
    u->role = db_col_int(s, 4);
    col_text(s, 5, u->pw_hash, sizeof u->pw_hash);
    u->active = db_col_int(s, 6);
    u->suspended = db_col_int(s, 7);
    col_text(s, 8, u->alt_email, sizeof u->alt_email);
    u->created = db_col_int64(s, 9);
}

static void bind_user(struct db_stmt *s, const struct store_user *u, const char *email)
{
    db_bind_int64(s, 2, u->domain_id);
    db_bind_text(s, 3, email);
    db_bind_text(s, 4, u->name);
    db_bind_int(s, 5, u->role);
    db_bind_text(s, 6, u->pw_hash);
    db_bind_int(s, 7, u->active);
    db_bind_int(s, 8, u->suspended);
    db_bind_text(s, 9, u->alt_email);
    db_bind_int64(s, 10, now_if_zero(u->created));
}

int store_user_add(struct store *st, const struct store_user *u, int64_t *id_out)
{
    static const char sql[] = "INSERT INTO users (" USER_SET_COLS ") VALUES "
                              "(?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id";
    char email[ADDR_MAX + 1];
    if (canonical(u->email, email, sizeof email, "user add") != STORE_OK)
        return STORE_ERR;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    bind_user(s, u, email);
    return stmt_insert(st, sql, s, id_out, "user add");
}

int store_user_update(struct store *st, const struct store_user *u)
{
    static const char sql[] =
        "UPDATE users SET domain_id = ?2, email = ?3, name = ?4, role = ?5, pw_hash = ?6, "
        "active = ?7, suspended = ?8, alt_email = ?9, created = ?10 WHERE id = ?1";
    char email[ADDR_MAX + 1];
    if (canonical(u->email, email, sizeof email, "user update") != STORE_OK)
        return STORE_ERR;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, u->id);
    bind_user(s, u, email);
    int rc = stmt_run(st, sql, s, "user update");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

int store_user_get(struct store *st, const char *email, struct store_user *out)
{
    static const char sql[] = "SELECT " USER_COLS " FROM users WHERE email = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, email);
    return stmt_fetch_one(st, sql, s, read_user, out, "user get");
}

int store_user_get_by_id(struct store *st, int64_t id, struct store_user *out)
{
    static const char sql[] = "SELECT " USER_COLS " FROM users WHERE id = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_int64(s, 1, id);
    return stmt_fetch_one(st, sql, s, read_user, out, "user get");
}

int store_user_del(struct store *st, int64_t id)
{
    /* The user's aliases go with it (ON DELETE CASCADE); the mailbox entries
     * hold blob references and recipients, so they go first, one by one. */
    static const char sql[] = "DELETE FROM users WHERE id = ?1";
    struct store_op op;
    int rc = op_begin(st, &op);
    if (rc != STORE_OK)
        return rc;
    rc = store_mailbox_drop_user(st, id);
    struct db_stmt *s = rc == STORE_OK ? stmt_get(st, sql) : NULL;
    if (s) {
        db_bind_int64(s, 1, id);
        rc = stmt_run(st, sql, s, "user delete");
        if (rc == STORE_OK && db_changes(st) == 0)
            rc = STORE_NOTFOUND;
    } else if (rc == STORE_OK) {
        rc = STORE_ERR;
    }
    return op_end(st, &op, rc);
}

struct user_each {
    int (*cb)(const struct store_user *, void *);
    void *arg;
};

static int user_each(struct db_stmt *s, void *ctx)
{
    struct user_each *e = ctx;
    struct store_user u;
    read_user(s, &u);
    return e->cb(&u, e->arg);
}

int store_user_list(struct store *st, int64_t domain_id, int (*cb)(const struct store_user *, void *),
                    void *arg)
{
    static const char sql_all[] = "SELECT " USER_COLS " FROM users ORDER BY email";
    static const char sql_dom[] = "SELECT " USER_COLS " FROM users WHERE domain_id = ?1 ORDER BY email";
    const char *sql = domain_id ? sql_dom : sql_all;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    if (domain_id)
        db_bind_int64(s, 1, domain_id);
    struct user_each e = {cb, arg};
    return stmt_each(st, sql, s, user_each, &e, "user list");
}

/* The control panel's user list: the WHERE of the page and of its count. */
#define USER_SEARCH_WHERE                                                                           \
    " WHERE (?1 = 0 OR domain_id IN (SELECT id FROM domains WHERE customer_id = ?1))"               \
    " AND (?2 = 0 OR domain_id = ?2)"                                                                \
    " AND (?3 = '' OR instr(lower(email), ?3) > 0 OR instr(lower(name), ?3) > 0"                     \
    " OR EXISTS (SELECT 1 FROM aliases a WHERE a.user_id = users.id AND instr(a.alias, ?3) > 0))"

static void bind_user_query(struct db_stmt *s, const struct store_user_query *q, const char *text)
{
    db_bind_int64(s, 1, q->customer_id);
    db_bind_int64(s, 2, q->domain_id);
    db_bind_text(s, 3, text);
}

int store_user_search(struct store *st, const struct store_user_query *q,
                      int (*cb)(const struct store_user *, void *), void *arg, uint64_t *total)
{
    static const char sql_count[] = "SELECT count(*) FROM users" USER_SEARCH_WHERE;
    static const char sql_page[] =
        "SELECT " USER_COLS " FROM users" USER_SEARCH_WHERE " ORDER BY email LIMIT ?4 OFFSET ?5";
    /* Addresses are stored lower case; names are matched without case too
     * (ASCII: SQLite's lower() does not fold other letters). */
    char text[256];
    size_t n = 0;
    for (const char *p = q->text ? q->text : ""; *p && n + 1 < sizeof text; p++)
        text[n++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
    text[n] = '\0';
    struct db_stmt *s = stmt_get(st, sql_count);
    if (!s)
        return STORE_ERR;
    bind_user_query(s, q, text);
    int rc = db_step(s);
    *total = rc == DB_ROW ? (uint64_t)db_col_int64(s, 0) : 0;
    stmt_put(st, sql_count, s);
    if (rc != DB_ROW)
        return db_rc(st, rc, "user count");
    if (!(s = stmt_get(st, sql_page)))
        return STORE_ERR;
    bind_user_query(s, q, text);
    db_bind_int64(s, 4, (int64_t)q->limit);
    db_bind_int64(s, 5, (int64_t)q->offset);
    struct user_each e = {cb, arg};
    return stmt_each(st, sql_page, s, user_each, &e, "user search");
}

/* ------------------------------------------------------------------ aliases */

int store_alias_add(struct store *st, int64_t user_id, const char *alias)
{
    static const char sql[] = "INSERT INTO aliases (alias, user_id) VALUES (?1, ?2)";
    char canon[ADDR_MAX + 1];
    if (canonical(alias, canon, sizeof canon, "alias add") != STORE_OK)
        return STORE_ERR;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, canon);
    db_bind_int64(s, 2, user_id);
    return stmt_run(st, sql, s, "alias add");
}

int store_alias_del(struct store *st, const char *alias)
{
    static const char sql[] = "DELETE FROM aliases WHERE alias = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, alias);
    int rc = stmt_run(st, sql, s, "alias delete");
    return rc == STORE_OK && db_changes(st) == 0 ? STORE_NOTFOUND : rc;
}

static void read_alias_owner(struct db_stmt *s, void *out)
{
    *(int64_t *)out = db_col_int64(s, 0);
}

int store_alias_get(struct store *st, const char *alias, int64_t *user_id_out)
{
    static const char sql[] = "SELECT user_id FROM aliases WHERE alias = ?1";
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    db_bind_text(s, 1, alias);
    int64_t id = 0;
    int rc = stmt_fetch_one(st, sql, s, read_alias_owner, &id, "alias get");
    if (rc == STORE_OK && user_id_out)
        *user_id_out = id;
    return rc;
}

struct alias_each {
    int (*cb)(const char *alias, const char *user_email, void *);
    void *arg;
};

static int alias_each(struct db_stmt *s, void *ctx)
{
    struct alias_each *e = ctx;
    char alias[ADDR_MAX + 1], email[ADDR_MAX + 1];
    col_text(s, 0, alias, sizeof alias);
    col_text(s, 1, email, sizeof email);
    return e->cb(alias, email, e->arg);
}

int store_alias_list(struct store *st, int64_t user_id,
                     int (*cb)(const char *alias, const char *user_email, void *), void *arg)
{
    static const char sql_all[] = "SELECT a.alias, u.email FROM aliases a JOIN users u ON u.id = a.user_id "
                                  "ORDER BY a.alias";
    static const char sql_user[] = "SELECT a.alias, u.email FROM aliases a JOIN users u ON u.id = a.user_id "
                                   "WHERE a.user_id = ?1 ORDER BY a.alias";
    const char *sql = user_id ? sql_user : sql_all;
    struct db_stmt *s = stmt_get(st, sql);
    if (!s)
        return STORE_ERR;
    if (user_id)
        db_bind_int64(s, 1, user_id);
    struct alias_each e = {cb, arg};
    return stmt_each(st, sql, s, alias_each, &e, "alias list");
}
