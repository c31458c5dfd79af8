/*
 * views_stats.c — the dashboard's chart (admin.h): mail per minute from the
 * store's per-minute counters, of one domain or a scope's domains summed.
 */
#include "admin/views_internal.h"
#include "util/log.h"

static const char *const stat_names[STAT_NCOUNTERS] = {
    [STAT_ACCEPTED] = "accepted", [STAT_DELIVERED] = "delivered", [STAT_DIVERTED] = "diverted",
    [STAT_REDELIVERED] = "redelivered", [STAT_DEFERRED] = "deferred", [STAT_BOUNCED] = "bounced",
};

const char *admin_stat_name(int counter)
{
    return counter >= 0 && counter < STAT_NCOUNTERS ? stat_names[counter] : "unknown";
}

struct minutes {
    json_t *rows;
    int oom;
};

static int minute_row(const struct store_stats_minute *m, void *arg)
{
    struct minutes *l = arg;
    json_t *o = json_pack("{s:I}", "t", (json_int_t)m->minute);
    for (int i = 0; o && i < STAT_NCOUNTERS; i++)
        if (json_object_set_new(o, stat_names[i], json_integer((json_int_t)m->n[i])) != 0) {
            json_decref(o);
            o = NULL;
        }
    if (json_array_append_new(l->rows, o) != 0) {
        l->oom = 1;
        return 1;
    }
    return 0;
}

int admin_stats_view(struct store *st, int64_t customer_id, const struct store_domain *only, unsigned hours,
                     int64_t now, json_t **out)
{
    if (hours < 1 || hours > ADMIN_STATS_HOURS_MAX) {
        log_err("admin: statistics of %u hours asked for (1 to %d)", hours, ADMIN_STATS_HOURS_MAX);
        *out = NULL;
        return STORE_ERR;
    }
    int64_t from = now - (int64_t)hours * 3600;
    from -= ((from % 60) + 60) % 60; /* the first whole minute covered */
    struct minutes l = {json_array(), 0};
    int rc = STORE_OK;
    if (l.rows)
        rc = store_stats_list(st, only ? 0 : customer_id, only ? only->id : 0, from, minute_row, &l);
    json_t *view = NULL;
    if (rc == STORE_OK && l.rows && !l.oom)
        view = json_pack("{s:o, s:I, s:I, s:O}", "domain", only ? admin_jstr(only->name) : json_null(), "hours",
                         (json_int_t)hours, "from", (json_int_t)from, "minutes", l.rows);
    json_decref(l.rows);
    return admin_done(rc, view, out, "the statistics");
}
