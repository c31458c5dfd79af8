/*
 * alert.c — telling people about a domain's state change (SPEC.md: "Each
 * state change is an event: log line, control panel timeline, notification to
 * the domain's admins' alternate addresses and to configured webhooks"). The
 * log line and the store's event row are made by engine.c; here:
 *
 *   - a short text/plain mail from MAILER-DAEMON@hostname to the alternate
 *     addresses of the customer's admins (users of role admin with alt_email
 *     set). It is queued with queue_submit and leaves by the normal delivery
 *     path; the envelope sender is null, so it never bounces back to us, and
 *     it says Auto-Submitted so that vacation responders keep quiet.
 *   - a JSON POST to the domain's webhook, if set:
 *     {"domain","state","previous","since","cause","event_id"}.
 */
#include "continuity/continuity_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "util/log.h"
#include "util/queueid.h"
#include "util/timeutil.h"

#define ALERT_MAX_RCPTS 100

struct alert_mail {
    struct continuity *c;
    char domain[DOMAIN_MAX + 1];
    struct queue_message m;
    char *rcpt_buf[ALERT_MAX_RCPTS];
    const char *rcpts[ALERT_MAX_RCPTS];
    size_t nrcpt;
    GString *text;
};

/* ------------------------------------------------------------- recipients */

struct admins {
    struct continuity *c;
    int64_t customer_id;
    struct alert_mail *a;
};

static int admin_one(const struct store_user *u, void *arg)
{
    struct admins *ad = arg;
    struct alert_mail *a = ad->a;
    if (u->role != ROLE_ADMIN || !u->alt_email[0] || !addr_is_valid(u->alt_email))
        return 0;
    struct cdomain *ud = cont_domain_by_id(ad->c, u->domain_id);
    struct store_domain dom;
    int64_t customer = ud ? ud->row.customer_id
                          : (store_domain_get_by_id(ad->c->st, u->domain_id, &dom) == STORE_OK ? dom.customer_id : -1);
    if (customer != ad->customer_id)
        return 0;
    char canon[ADDR_MAX + 1];
    if (addr_canonical(u->alt_email, canon, sizeof canon) != 0)
        return 0;
    for (size_t i = 0; i < a->nrcpt; i++)
        if (!strcmp(a->rcpts[i], canon))
            return 0;
    if (a->nrcpt == ALERT_MAX_RCPTS)
        return 1;
    a->rcpt_buf[a->nrcpt] = strdup(canon);
    if (!a->rcpt_buf[a->nrcpt])
        return 1;
    a->rcpts[a->nrcpt] = a->rcpt_buf[a->nrcpt];
    a->nrcpt++;
    return 0;
}

/* ------------------------------------------------------------------ mail */

static void alert_mail_free(struct alert_mail *a)
{
    for (size_t i = 0; i < a->nrcpt; i++)
        free(a->rcpt_buf[i]);
    if (a->text)
        g_string_free(a->text, TRUE);
    free(a);
}

static void alert_queued(int rc, void *arg)
{
    struct alert_mail *a = arg;
    struct continuity *c = a->c;
    c->jobs--;
    if (rc != STORE_OK) {
        log_err("continuity: domain %s: cannot queue the alert to its admins (store error)", a->domain);
    } else {
        log_info("%s: from=<>, size=%zu, nrcpt=%zu (queued)", a->m.id, a->m.body_len, a->nrcpt);
        log_info("continuity: domain %s: alert %s queued to %zu admin address(es)", a->domain, a->m.id, a->nrcpt);
        delivery_kick(c->delivery);
    }
    alert_mail_free(a);
}

/* What the new state means, for people. */
static const char *explain(int to, unsigned interval)
{
    static char buf[512];
    switch (to) {
    case DOMAIN_OUTAGE:
        snprintf(buf, sizeof buf,
                 "Mail for the domain's registered users now goes into their continuity\r\n"
                 "mailboxes, where they can read it in the webmail. The server is probed\r\n"
                 "every %u seconds; once it accepts mail again, everything held is\r\n"
                 "re-delivered to it.",
                 interval);
        return buf;
    case DOMAIN_RECOVERING:
        return "The server accepts mail again. What the continuity mailboxes held during\r\n"
               "the outage is being re-delivered to it, oldest first.";
    default:
        return "Everything held during the outage has been re-delivered; mail flows to the\r\n"
               "server as usual.";
    }
}

static void send_mail(struct continuity *c, const struct store_domain *dom, int from, int to, const char *cause,
                      int64_t at, int64_t event_id)
{
    struct alert_mail *a = calloc(1, sizeof *a);
    if (!a) {
        log_err("continuity: domain %s: out of memory building the alert", dom->name);
        return;
    }
    a->c = c;
    snprintf(a->domain, sizeof a->domain, "%s", dom->name);
    struct admins ad = {c, dom->customer_id, a};
    if (store_user_list(c->st, 0, admin_one, &ad) < 0)
        log_err("continuity: domain %s: cannot list the admins to alert", dom->name);
    if (a->nrcpt == 0) {
        log_debug("continuity: domain %s: no admin with an alternate address to alert", dom->name);
        alert_mail_free(a);
        return;
    }

    queueid_new(a->m.id);
    char date[64], when[32];
    time_rfc5322((time_t)at, date, sizeof date);
    time_iso8601((time_t)at, when, sizeof when);
    GString *t = a->text = g_string_new(NULL);
    g_string_append_printf(t, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", c->hostname);
    g_string_append(t, "To: ");
    for (size_t i = 0; i < a->nrcpt; i++)
        g_string_append_printf(t, "%s%s", i ? ",\r\n " : "", a->rcpts[i]);
    g_string_append(t, "\r\n");
    g_string_append_printf(t, "Subject: [lifeboat] %s: mail server %s\r\n", dom->name, cont_state_name(to));
    g_string_append_printf(t, "Date: %s\r\n", date);
    g_string_append_printf(t, "Message-ID: <%s.continuity@%s>\r\n", a->m.id, c->hostname);
    g_string_append(t, "Auto-Submitted: auto-generated\r\n");
    g_string_append(t, "MIME-Version: 1.0\r\n");
    g_string_append(t, "Content-Type: text/plain; charset=utf-8\r\n");
    g_string_append(t, "Content-Transfer-Encoding: 8bit\r\n\r\n");
    g_string_append_printf(t, "The continuity state of %s changed: %s -> %s.\r\n\r\n", dom->name,
                           cont_state_name(from), cont_state_name(to));
    g_string_append_printf(t, "Time:  %s\r\n", when);
    g_string_append(t, "Cause: ");
    for (const char *p = cause; *p; p++) /* one line, whatever a server said */
        g_string_append_c(t, (unsigned char)*p < ' ' || *p == 0x7f ? ' ' : *p);
    g_string_append(t, "\r\n\r\n");
    g_string_append_printf(t, "%s\r\n\r\n", explain(to, c->probe_interval));
    g_string_append_printf(t, "-- \r\nlifeboat on %s (event %lld)\r\n", c->hostname, (long long)event_id);

    /* Inbound when every address is hosted here, outbound otherwise (archive direction). */
    int direction = DIR_INBOUND;
    for (size_t i = 0; i < a->nrcpt; i++) {
        struct store_domain d;
        if (store_domain_get(c->st, addr_domain(a->rcpts[i]), &d) != STORE_OK)
            direction = DIR_OUTBOUND;
    }
    struct queue_message *m = &a->m;
    m->sender = "";
    m->rcpts = a->rcpts;
    m->nrcpt = a->nrcpt;
    m->prefix = "";
    m->body = (const unsigned char *)t->str;
    m->body_len = t->len;
    m->client_addr = "";
    m->helo = c->hostname;
    m->direction = direction;
    m->is_bounce = 0;
    if (queue_submit(c->writer, m, alert_queued, a) != 0) {
        log_warn("continuity: domain %s: the store writer is stopping; alert not queued", dom->name);
        alert_mail_free(a);
        return;
    }
    c->jobs++;
}

/* --------------------------------------------------------------- webhook */

/* jansson wants UTF-8: a server's reply may not be. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return json_string("");
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j ? j : json_string("");
}

static void send_webhook(struct continuity *c, const struct store_domain *dom, int from, int to, const char *cause,
                         int64_t at, int64_t event_id)
{
    char when[32];
    time_iso8601((time_t)at, when, sizeof when);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I}", "domain", dom->name, "state", cont_state_name(to),
                          "previous", cont_state_name(from), "since", when, "cause", json_text(cause), "event_id",
                          (json_int_t)event_id);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (body)
        webhooks_post(c->webhooks, dom->webhook, body);
    else
        log_err("continuity: domain %s: cannot build the webhook notification", dom->name);
    free(body);
    json_decref(o);
}

void alert_state_change(struct continuity *c, const struct store_domain *dom, int from, int to,
                        const char *cause, int64_t at, int64_t event_id)
{
    send_mail(c, dom, from, to, cause, at, event_id);
    if (dom->webhook[0])
        send_webhook(c, dom, from, to, cause, at, event_id);
}
