/*
 * probe.c — is a domain's server back? One real SMTP conversation with its
 * route, hosts in order, through the delivery engine's client
 * (relay_session.h, in probe mode):
 *
 *   EHLO (STARTTLS when offered), MAIL FROM:<>, RCPT TO:<a registered user>, RSET, QUIT
 *
 * A 2xx to RCPT passes: the domain is recovering. Anything else — no
 * connection, a 4xx/5xx at any step, a timeout — fails, and the domain stays
 * in outage until the next probe. The recipient is the domain's first
 * activated, not suspended user (the address the server must really know),
 * or postmaster@ when it has none. The reason of a failure is logged when it
 * changes, not once per probe.
 */
#include "continuity/continuity_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct probe {
    struct cdomain *cd;
    struct relay_session *s;
    char rcpt[ADDR_MAX + 1];
    const char *rcpts[1];
    struct smtpc_outcome out[1];
    struct relay_txn txn;
    int sent;      /* the probe transaction went out */
    int decided;
    int passed;
    char why[SMTPC_TEXT_MAX];
};

/* The probe's recipient: a user the server must know. An address that needs
 * SMTPUTF8 could fail the probe on a healthy server that does not offer it. */
static int first_active(const struct store_user *u, void *arg)
{
    char *rcpt = arg;
    if (!u->active || u->suspended)
        return 0;
    for (const char *p = u->email; *p; p++)
        if ((unsigned char)*p >= 0x80)
            return 0;
    snprintf(rcpt, ADDR_MAX + 1, "%s", u->email);
    return 1;
}

/* Server replies can be long: the reason is cut to its field. */
static void why_printf(struct probe *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void why_printf(struct probe *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
}

static void decide(struct probe *p, const struct relay_peer *peer)
{
    const struct smtpc_outcome *o = &p->out[0];
    p->decided = 1;
    p->passed = o->result == SMTPC_ACCEPTED || o->result == SMTPC_OK;
    if (p->passed)
        why_printf(p, "probe passed: host %s[%s] said: %s (in reply to RCPT TO:<%s>)", peer->host, peer->addr,
                   o->text, p->rcpt);
    else if (o->from_server)
        why_printf(p, "host %s[%s] said: %s (in reply to %s command)", peer->host, peer->addr, o->text,
                   smtpc_step_name(o->step));
    else
        snprintf(p->why, sizeof p->why, "%s", o->text[0] ? o->text : "no answer");
}

static void on_ready(struct relay_session *s, void *arg)
{
    struct probe *p = arg;
    if (p->sent) {
        relay_session_quit(s);
        return;
    }
    p->sent = 1;
    p->rcpts[0] = p->rcpt;
    memset(&p->txn, 0, sizeof p->txn);
    p->txn.smtp.sender = "";
    p->txn.smtp.rcpts = p->rcpts;
    p->txn.smtp.nrcpt = 1;
    p->txn.smtp.probe = 1;
    p->txn.smtp.out = p->out;
    int rc = relay_session_send(s, &p->txn);
    if (rc != 0) { /* decided at once (an address it cannot send): that is a failure */
        decide(p, relay_session_peer(s));
        relay_session_quit(s);
    }
}

static void on_txn_done(struct relay_session *s, struct relay_txn *t, void *arg)
{
    struct probe *p = arg;
    (void)t;
    decide(p, relay_session_peer(s));
}

/* The session is over (and freed after this returns): report. */
static void on_end(struct relay_session *s, const struct relay_end *e, void *arg)
{
    struct probe *p = arg;
    struct cdomain *cd = p->cd;
    (void)s;
    cd->probe = NULL;
    if (!p->decided)
        snprintf(p->why, sizeof p->why, "%s", e->why.text[0] ? e->why.text : "no answer");
    if (p->passed) {
        cd->last_probe_error[0] = '\0';
        cont_request(cd, CONT_PROBE_PASSED, p->why);
    } else if (strcmp(cd->last_probe_error, p->why) != 0) {
        log_info("continuity: domain %s: probe failed, still in outage: %s", cd->row.name, p->why);
        snprintf(cd->last_probe_error, sizeof cd->last_probe_error, "%s", p->why);
    } else {
        log_debug("continuity: domain %s: probe failed: %s", cd->row.name, p->why);
    }
    free(p);
}

void probe_start(struct cdomain *cd)
{
    struct continuity *c = cd->c;
    struct relay_target target;
    memset(&target, 0, sizeof target);
    target.kind = RELAY_HOSTS;
    if (route_parse(cd->row.routes, &target.hosts) != 0 || target.hosts.count == 0) {
        log_err("continuity: domain %s: cannot probe its route \"%s\" (lifeboatctl domain set --route)",
                cd->row.name, cd->row.routes);
        return;
    }
    struct probe *p = calloc(1, sizeof *p);
    if (!p) {
        log_err("continuity: domain %s: out of memory starting a probe", cd->row.name);
        return;
    }
    p->cd = cd;
    if (store_user_list(c->st, cd->id, first_active, p->rcpt) < 0 || !p->rcpt[0])
        snprintf(p->rcpt, sizeof p->rcpt, "postmaster@%s", cd->row.name);
    static const struct relay_callbacks callbacks = {on_ready, on_txn_done, on_end};
    p->s = relay_session_new(&c->probe_env, &target, &callbacks, p);
    if (!p->s) {
        log_err("continuity: domain %s: out of memory starting a probe", cd->row.name);
        free(p);
        return;
    }
    cd->probe = p;
    log_debug("continuity: domain %s: probing %s with RCPT TO:<%s>", cd->row.name, cd->row.routes, p->rcpt);
}

void probe_abort(struct probe *p)
{
    p->cd->probe = NULL;
    relay_session_free(p->s);
    free(p);
}
