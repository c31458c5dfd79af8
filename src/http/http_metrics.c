/*
 * http_metrics.c — GET /metrics: the daemon's state in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * Two kinds of figures: the event counters of util/metrics.h, bumped where
 * things happen, and the gauges read from the store at scrape time (the
 * queue's size, each domain's continuity state and its mailbox counts), so a
 * gauge is never out of step with `lifeboatctl queue list` or `continuity
 * status`. Domain names appear as labels, so only clients in metrics_allow
 * (default: loopback) may read it; anyone else gets 403.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory/directory.h"
#include "http/http_internal.h"
#include "util/cidr.h"
#include "util/metrics.h"

/* A label value with \, " and newlines escaped as the format asks. */
static void put_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void gauge_header(FILE *f, const char *name, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

struct domain_scan {
    FILE *f;
    struct store *st;
    int pass; /* 0: states, 1: held, 2: waiting */
    int failed;
};

static int domain_line(const struct store_domain *d, void *arg)
{
    struct domain_scan *s = arg;
    if (s->pass == 0) {
        static const int states[] = {DOMAIN_NORMAL, DOMAIN_OUTAGE, DOMAIN_RECOVERING};
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
            fputs("lifeboat_domain_state{domain=\"", s->f);
            put_label(s->f, d->name);
            fprintf(s->f, "\",state=\"%s\"} %d\n", directory_state_name(states[i]), d->state == states[i]);
        }
        return 0;
    }
    if (!d->continuity)
        return 0;
    struct store_continuity_counts c;
    if (store_continuity_counts(s->st, d->id, &c) != STORE_OK) {
        s->failed = 1;
        return 1;
    }
    fputs(s->pass == 1 ? "lifeboat_continuity_held{domain=\"" : "lifeboat_continuity_waiting{domain=\"", s->f);
    put_label(s->f, d->name);
    fprintf(s->f, "\"} %llu\n", (unsigned long long)(s->pass == 1 ? c.held : c.waiting));
    return 0;
}

void http_h_metrics(struct http_request *req, struct http_reply *rep)
{
    if (!cidr_list_match(http_config(req->srv)->metrics_allow, req->client_ip)) {
        http_reply_error(rep, 403, "metrics are not available to this address (metrics_allow)");
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        http_reply_error(rep, 500, "out of memory");
        return;
    }
    for (int m = 0; m < METRIC__COUNT; m++)
        fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", metrics_name(m), metrics_help(m), metrics_name(m),
                metrics_name(m), (unsigned long long)metrics_get(m));

    int failed = 0;
    struct store_queue_stats q;
    if (store_queue_stats(req->st, &q) == STORE_OK) {
        gauge_header(f, "lifeboat_queue_messages", "Messages in the queue.");
        fprintf(f, "lifeboat_queue_messages %llu\n", (unsigned long long)q.messages);
        gauge_header(f, "lifeboat_queue_recipients", "Queued recipients by state.");
        fprintf(f, "lifeboat_queue_recipients{state=\"waiting\"} %llu\n", (unsigned long long)(q.queued - q.deferred));
        fprintf(f, "lifeboat_queue_recipients{state=\"deferred\"} %llu\n", (unsigned long long)q.deferred);
        fprintf(f, "lifeboat_queue_recipients{state=\"continuity\"} %llu\n", (unsigned long long)q.continuity);
    } else {
        failed = 1;
    }

    static const struct {
        const char *name, *help;
    } domain_gauges[] = {
        {"lifeboat_domain_state", "Continuity state of each domain (1 for the current one)."},
        {"lifeboat_continuity_held", "Messages in continuity mailboxes from the domain's current or last outage."},
        {"lifeboat_continuity_waiting", "Continuity mailbox entries still to re-deliver to the customer's server."},
    };
    for (int pass = 0; pass < 3 && !failed; pass++) {
        struct domain_scan s = {.f = f, .st = req->st, .pass = pass};
        gauge_header(f, domain_gauges[pass].name, domain_gauges[pass].help);
        if (store_domain_list(req->st, domain_line, &s) != STORE_OK || s.failed)
            failed = 1;
    }
    if (fclose(f) != 0 || failed) {
        free(text);
        http_reply_error(rep, failed ? 503 : 500, failed ? "store unavailable" : "out of memory");
        return;
    }
    http_reply_raw(rep, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
