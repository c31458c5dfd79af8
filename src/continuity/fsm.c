/* fsm.c — see fsm.h. */
#include "continuity/fsm.h"

#include <string.h>

const char *cont_state_name(int state)
{
    switch (state) {
    case DOMAIN_NORMAL: return "normal";
    case DOMAIN_OUTAGE: return "outage";
    case DOMAIN_RECOVERING: return "recovering";
    default: return "unknown";
    }
}

void cont_fsm_step(int state, int enabled, int input, struct cont_step *out)
{
    memset(out, 0, sizeof *out);
    out->from = out->to = state;
    switch (input) {
    case CONT_SERVER_FAULT:
        if ((state == DOMAIN_NORMAL && enabled) || state == DOMAIN_RECOVERING) {
            out->to = DOMAIN_OUTAGE;
            out->actions = CONT_ACT_ALERT | CONT_ACT_HOLD_ROUTE | CONT_ACT_PROBE_LATER | CONT_ACT_STOP_DRAIN;
        } else if (state == DOMAIN_NORMAL) {
            /* Not ours to manage: the queue's retries as for any other domain.
             * Stop a sweep that met the fault, though: it would meet it again. */
            out->actions = CONT_ACT_STOP_DRAIN;
        }
        break;
    case CONT_PROBE_PASSED:
        if (state == DOMAIN_OUTAGE) {
            out->to = DOMAIN_RECOVERING;
            out->actions = CONT_ACT_ALERT | CONT_ACT_RELEASE_ROUTE | CONT_ACT_START_DRAIN;
        }
        break;
    case CONT_PROBE_FAILED:
        if (state == DOMAIN_OUTAGE)
            out->actions = CONT_ACT_PROBE_LATER; /* no event: the outage goes on */
        break;
    case CONT_DRAINED:
        if (state == DOMAIN_RECOVERING) {
            out->to = DOMAIN_NORMAL;
            out->actions = CONT_ACT_ALERT;
        }
        break;
    default:
        break;
    }
    out->changed = out->to != out->from;
}

int cont_divert_verdict(const struct store_domain *route_dom, const struct rcpt_lookup *lk,
                        int64_t msg_received, int pre_continuity)
{
    if (!route_dom->continuity)
        return CONT_KEEP_DISABLED;
    if (pre_continuity || msg_received < route_dom->continuity_since)
        return CONT_KEEP_TOO_OLD;
    if (lk->kind != RCPT_KIND_USER)
        return CONT_KEEP_UNKNOWN;
    if (!lk->user.active)
        return CONT_KEEP_INACTIVE;
    if (lk->user.suspended)
        return CONT_KEEP_SUSPENDED;
    return CONT_DIVERT;
}

const char *cont_divert_reason(int verdict)
{
    switch (verdict) {
    case CONT_DIVERT: return "diverted";
    case CONT_KEEP_DISABLED: return "continuity is not enabled for the domain";
    case CONT_KEEP_TOO_OLD: return "queued before continuity was enabled";
    case CONT_KEEP_UNKNOWN: return "no registered user";
    case CONT_KEEP_INACTIVE: return "the user is not activated";
    case CONT_KEEP_SUSPENDED: return "the user is suspended";
    default: return "kept in the queue";
    }
}

/* A deferral that names this entry's recipients only: a 4xx answer to RCPT
 * (not 421, which closes the connection, nor our own words about a lost one). */
static int rcpt_deferral(const struct smtpc_outcome *o)
{
    return o->from_server && o->step == SMTPC_STEP_RCPT && o->code != 421;
}

int cont_drain_verdict(const struct smtpc_outcome *out, size_t n, int server_level)
{
    size_t ntemp = 0, nrcpt_temp = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i].result == SMTPC_OK)
            return CONT_DRAIN_DELIVERED;
        if (out[i].result == SMTPC_TEMP || out[i].result == SMTPC_PENDING ||
            out[i].result == SMTPC_ACCEPTED) {
            ntemp++;
            nrcpt_temp += rcpt_deferral(&out[i]);
        }
    }
    if (ntemp == 0)
        return n > 0 ? CONT_DRAIN_REFUSED : CONT_DRAIN_LATER;
    /* Every RCPT of one user's entry deferred is that user's trouble (smtp_client
     * calls it server-level because it cannot tell); anything else that is
     * server-level — connect, greeting, MAIL, DATA, 421, lost connection — is
     * the server's. */
    if (server_level && nrcpt_temp < ntemp)
        return CONT_DRAIN_FAULT;
    return CONT_DRAIN_LATER;
}
