/*
 * views_continuity.c — the outage dashboard's views (admin.h): each domain's
 * continuity status with the counts of its current or last outage, and the
 * timeline of state changes.
 */
#include "admin/views_internal.h"
#include "directory/directory.h"
#include "util/log.h"

static json_t *status_row(const struct store_domain *d, const struct store_continuity_counts *k)
{
    return json_pack("{s:o, s:s, s:o, s:I, s:o, s:I, s:I, s:I, s:I, s:b, s:o, s:b}", "domain", admin_jstr(d->name),
                     "state", directory_state_name(d->state), "since", admin_iso(d->state_since), "since_epoch",
                     (json_int_t)d->state_since, "cause", admin_jstr(d->state_cause), "held", (json_int_t)k->held,
                     "waiting", (json_int_t)k->waiting, "redelivered", (json_int_t)k->redelivered, "deleted",
                     (json_int_t)k->deleted, "continuity", d->continuity, "continuity_since",
                     admin_iso(d->continuity_since), "outgoing_to_own_server", d->outgoing_to_own);
}

/* Appends the status row of each of the n domains at d. */
static int status_rows(struct store *st, const struct store_domain *d, size_t n, json_t *rows)
{
    for (size_t i = 0; i < n; i++) {
        struct store_continuity_counts k;
        if (store_continuity_counts(st, d[i].id, &k) != STORE_OK) {
            log_err("admin: domain %s: cannot read the continuity counts", d[i].name);
            return STORE_ERR;
        }
        if (json_array_append_new(rows, status_row(&d[i], &k)) != 0)
            return STORE_NOTFOUND; /* out of memory: admin_done says so */
    }
    return STORE_OK;
}

int admin_continuity_view(struct store *st, int64_t customer_id, const struct store_domain *only, json_t **out)
{
    json_t *rows = json_array();
    int rc = STORE_OK;
    if (rows && only) {
        rc = status_rows(st, only, 1, rows);
    } else if (rows) {
        struct admin_domains l;
        if ((rc = admin_domains_load(st, customer_id, &l)) == STORE_OK)
            rc = status_rows(st, l.d, l.n, rows);
        admin_domains_free(&l);
    }
    if (rc == STORE_NOTFOUND) {
        json_decref(rows);
        rows = NULL;
        rc = STORE_OK;
    }
    return admin_done(rc, rows, out, "the continuity status");
}

struct events {
    const struct admin_domains *domains;
    json_t *rows;
    int oom;
};

static int event_row(const struct store_event *e, void *arg)
{
    struct events *ev = arg;
    const char *name = admin_domains_name(ev->domains, e->domain_id);
    json_t *o = json_pack("{s:I, s:o, s:o, s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)e->id, "domain",
                          name ? admin_jstr(name) : json_null(), "at", admin_iso(e->at), "at_epoch",
                          (json_int_t)e->at, "state", directory_state_name(e->to_state), "from",
                          directory_state_name(e->from_state), "to", directory_state_name(e->to_state), "cause",
                          admin_jstr(e->cause));
    if (json_array_append_new(ev->rows, o) != 0) {
        ev->oom = 1;
        return 1;
    }
    return 0;
}

int admin_events_view(struct store *st, int64_t customer_id, int64_t domain_id, size_t limit, json_t **out)
{
    struct admin_domains l;
    int rc = admin_domains_load(st, customer_id, &l);
    struct events ev = {&l, rc == STORE_OK ? json_array() : NULL, 0};
    if (rc == STORE_OK && ev.rows)
        rc = store_event_list_scoped(st, customer_id, domain_id, limit, event_row, &ev);
    if (rc == STORE_OK && ev.oom) {
        json_decref(ev.rows);
        ev.rows = NULL;
    }
    admin_domains_free(&l);
    return admin_done(rc, ev.rows, out, "the continuity events");
}
