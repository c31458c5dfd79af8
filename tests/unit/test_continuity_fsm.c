/*
 * test_continuity_fsm.c — the continuity engine's pure decisions: the state
 * machine (every state x input, enabled or not), who may be diverted into a
 * continuity mailbox, what a re-delivery transaction's answer means, and the
 * drain's rate limiter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "continuity/fsm.h"
#include "continuity/ratelimit.h"

/* ------------------------------------------------------------ state machine */

struct row {
    int state, enabled, input;
    int to;
    unsigned must, must_not; /* actions that must / must not be asked for */
};

static void test_fsm_table(void **state)
{
    (void)state;
    const unsigned ALERT = CONT_ACT_ALERT;
    const struct row rows[] = {
        /* The way down: a server-level fault of an enabled, normal domain. */
        {DOMAIN_NORMAL, 1, CONT_SERVER_FAULT, DOMAIN_OUTAGE,
         ALERT | CONT_ACT_HOLD_ROUTE | CONT_ACT_PROBE_LATER | CONT_ACT_STOP_DRAIN, 0},
        /* Not enabled: nothing changes, no event. */
        {DOMAIN_NORMAL, 0, CONT_SERVER_FAULT, DOMAIN_NORMAL, 0, ALERT | CONT_ACT_HOLD_ROUTE},
        /* In outage already: no second event per failed message. */
        {DOMAIN_OUTAGE, 1, CONT_SERVER_FAULT, DOMAIN_OUTAGE, 0, ALERT},
        /* A fault while draining: back to outage (disabled or not: the mailboxes still hold mail). */
        {DOMAIN_RECOVERING, 1, CONT_SERVER_FAULT, DOMAIN_OUTAGE, ALERT | CONT_ACT_STOP_DRAIN, CONT_ACT_START_DRAIN},
        {DOMAIN_RECOVERING, 0, CONT_SERVER_FAULT, DOMAIN_OUTAGE, ALERT | CONT_ACT_STOP_DRAIN, 0},
        /* Probes. */
        {DOMAIN_OUTAGE, 1, CONT_PROBE_PASSED, DOMAIN_RECOVERING,
         ALERT | CONT_ACT_RELEASE_ROUTE | CONT_ACT_START_DRAIN, CONT_ACT_HOLD_ROUTE},
        {DOMAIN_OUTAGE, 0, CONT_PROBE_PASSED, DOMAIN_RECOVERING, ALERT | CONT_ACT_START_DRAIN, 0},
        {DOMAIN_OUTAGE, 1, CONT_PROBE_FAILED, DOMAIN_OUTAGE, CONT_ACT_PROBE_LATER, ALERT},
        {DOMAIN_NORMAL, 1, CONT_PROBE_PASSED, DOMAIN_NORMAL, 0, ALERT},
        {DOMAIN_RECOVERING, 1, CONT_PROBE_PASSED, DOMAIN_RECOVERING, 0, ALERT},
        {DOMAIN_NORMAL, 1, CONT_PROBE_FAILED, DOMAIN_NORMAL, 0, ALERT | CONT_ACT_PROBE_LATER},
        /* Drained. A late "drained" after a new fault must not end the outage. */
        {DOMAIN_RECOVERING, 1, CONT_DRAINED, DOMAIN_NORMAL, ALERT, CONT_ACT_START_DRAIN},
        {DOMAIN_OUTAGE, 1, CONT_DRAINED, DOMAIN_OUTAGE, 0, ALERT},
        {DOMAIN_NORMAL, 1, CONT_DRAINED, DOMAIN_NORMAL, 0, ALERT},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        struct cont_step s;
        cont_fsm_step(r->state, r->enabled, r->input, &s);
        char what[64];
        snprintf(what, sizeof what, "row %zu", i);
        if (s.to != r->to || (s.actions & r->must) != r->must || (s.actions & r->must_not) != 0)
            fail_msg("%s: %s -> %s, actions %#x", what, cont_state_name(s.from), cont_state_name(s.to),
                     s.actions);
        assert_int_equal(s.from, r->state);
        assert_int_equal(s.changed, r->to != r->state);
        /* An alert is an event: only with a change. */
        assert_int_equal(!!(s.actions & ALERT), s.changed);
    }
}

/* A whole outage, step by step, as the engine feeds it. */
static void test_fsm_walk(void **state)
{
    (void)state;
    static const int inputs[] = {CONT_SERVER_FAULT, CONT_SERVER_FAULT, CONT_PROBE_FAILED, CONT_PROBE_PASSED,
                                 CONT_SERVER_FAULT, CONT_PROBE_PASSED, CONT_DRAINED, CONT_DRAINED};
    static const int states[] = {DOMAIN_OUTAGE,     DOMAIN_OUTAGE,     DOMAIN_OUTAGE,
                                 DOMAIN_RECOVERING, DOMAIN_OUTAGE,     DOMAIN_RECOVERING,
                                 DOMAIN_NORMAL,     DOMAIN_NORMAL};
    int st = DOMAIN_NORMAL, events = 0;
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        struct cont_step s;
        cont_fsm_step(st, 1, inputs[i], &s);
        st = s.to;
        events += s.changed;
        assert_int_equal(st, states[i]);
    }
    assert_int_equal(events, 5);
    assert_string_equal(cont_state_name(DOMAIN_RECOVERING), "recovering");
    assert_string_equal(cont_state_name(7), "unknown");
}

/* ---------------------------------------------------------------- diversion */

static void test_divert_verdict(void **state)
{
    (void)state;
    struct store_domain dom;
    memset(&dom, 0, sizeof dom);
    dom.continuity = 1;
    dom.continuity_since = 1000;
    struct rcpt_lookup lk;
    memset(&lk, 0, sizeof lk);
    lk.kind = RCPT_KIND_USER;
    lk.user.active = 1;

    assert_int_equal(cont_divert_verdict(&dom, &lk, 1000, 0), CONT_DIVERT);
    assert_int_equal(cont_divert_verdict(&dom, &lk, 5000, 0), CONT_DIVERT);
    /* Not retroactive: received before continuity was enabled. */
    assert_int_equal(cont_divert_verdict(&dom, &lk, 999, 0), CONT_KEEP_TOO_OLD);
    /* Queued when continuity was enabled, in the same second: marked, kept. */
    assert_int_equal(cont_divert_verdict(&dom, &lk, 1000, 1), CONT_KEEP_TOO_OLD);
    lk.via_alias = 1; /* an alias is as good as the address */
    assert_int_equal(cont_divert_verdict(&dom, &lk, 2000, 0), CONT_DIVERT);
    lk.user.suspended = 1;
    assert_int_equal(cont_divert_verdict(&dom, &lk, 2000, 0), CONT_KEEP_SUSPENDED);
    lk.user.suspended = 0;
    lk.user.active = 0;
    assert_int_equal(cont_divert_verdict(&dom, &lk, 2000, 0), CONT_KEEP_INACTIVE);
    lk.user.active = 1;
    lk.kind = RCPT_KIND_UNKNOWN;
    assert_int_equal(cont_divert_verdict(&dom, &lk, 2000, 0), CONT_KEEP_UNKNOWN);
    lk.kind = RCPT_KIND_USER;
    dom.continuity = 0;
    assert_int_equal(cont_divert_verdict(&dom, &lk, 2000, 0), CONT_KEEP_DISABLED);
    assert_string_equal(cont_divert_reason(CONT_KEEP_UNKNOWN), "no registered user");
    assert_string_equal(cont_divert_reason(CONT_KEEP_TOO_OLD), "queued before continuity was enabled");
}

/* ---------------------------------------------------------------- drain */

static struct smtpc_outcome oc(int result, int step, int code, int from_server)
{
    struct smtpc_outcome o;
    memset(&o, 0, sizeof o);
    o.result = result;
    o.step = step;
    o.code = code;
    o.from_server = from_server;
    return o;
}

static void test_drain_verdict(void **state)
{
    (void)state;
    struct smtpc_outcome out[3];

    /* Delivered: one accepted recipient is enough (one user's entry). */
    out[0] = oc(SMTPC_OK, SMTPC_STEP_DOT, 250, 1);
    assert_int_equal(cont_drain_verdict(out, 1, 0), CONT_DRAIN_DELIVERED);
    out[0] = oc(SMTPC_PERM, SMTPC_STEP_RCPT, 550, 1);
    out[1] = oc(SMTPC_OK, SMTPC_STEP_DOT, 250, 1);
    assert_int_equal(cont_drain_verdict(out, 2, 0), CONT_DRAIN_DELIVERED);

    /* Refused for good. */
    out[0] = oc(SMTPC_PERM, SMTPC_STEP_RCPT, 550, 1);
    out[1] = oc(SMTPC_PERM, SMTPC_STEP_RCPT, 553, 1);
    assert_int_equal(cont_drain_verdict(out, 2, 0), CONT_DRAIN_REFUSED);
    out[0] = oc(SMTPC_PERM, SMTPC_STEP_DOT, 554, 1);
    assert_int_equal(cont_drain_verdict(out, 1, 0), CONT_DRAIN_REFUSED);

    /* This user's recipients deferred at RCPT (smtp_client says server-level
     * for "every RCPT 4xx"; for one user's entry it is that user's trouble). */
    out[0] = oc(SMTPC_TEMP, SMTPC_STEP_RCPT, 452, 1);
    assert_int_equal(cont_drain_verdict(out, 1, 1), CONT_DRAIN_LATER);
    out[0] = oc(SMTPC_TEMP, SMTPC_STEP_RCPT, 450, 1);
    out[1] = oc(SMTPC_PERM, SMTPC_STEP_RCPT, 550, 1);
    assert_int_equal(cont_drain_verdict(out, 2, 0), CONT_DRAIN_LATER);

    /* The server's trouble: 421, MAIL/DATA/end-of-data 4xx, no connection, lost connection. */
    out[0] = oc(SMTPC_TEMP, SMTPC_STEP_RCPT, 421, 1);
    assert_int_equal(cont_drain_verdict(out, 1, 1), CONT_DRAIN_FAULT);
    out[0] = oc(SMTPC_TEMP, SMTPC_STEP_MAIL, 451, 1);
    out[1] = oc(SMTPC_TEMP, SMTPC_STEP_MAIL, 451, 1);
    assert_int_equal(cont_drain_verdict(out, 2, 1), CONT_DRAIN_FAULT);
    out[0] = oc(SMTPC_TEMP, SMTPC_STEP_DOT, 451, 1);
    assert_int_equal(cont_drain_verdict(out, 1, 1), CONT_DRAIN_FAULT);
    out[0] = oc(SMTPC_TEMP, SMTPC_STEP_NONE, 451, 0); /* connect refused */
    assert_int_equal(cont_drain_verdict(out, 1, 1), CONT_DRAIN_FAULT);
    out[0] = oc(SMTPC_TEMP, SMTPC_STEP_RCPT, 451, 0); /* connection lost while waiting for RCPT's reply */
    assert_int_equal(cont_drain_verdict(out, 1, 1), CONT_DRAIN_FAULT);
}

/* ------------------------------------------------------------ rate limiter */

static void test_ratelimit_pacing(void **state)
{
    (void)state;
    struct ratelimit rl;
    ratelimit_init(&rl, 20, 1); /* one every 50 ms */
    int64_t t = 100000;
    assert_int_equal(ratelimit_take(&rl, t), 0);
    int64_t wait = ratelimit_take(&rl, t);
    assert_int_equal(wait, 50);
    assert_int_equal(ratelimit_take(&rl, t + 49), 1);
    assert_int_equal(ratelimit_take(&rl, t + 50), 0);

    /* Over a simulated 10 s with a caller that asks every millisecond: 20 a second. */
    ratelimit_init(&rl, 20, 1);
    int starts = 0, max_in_window = 0;
    int64_t stamps[400];
    for (int64_t now = 0; now < 10000; now++) {
        if (ratelimit_take(&rl, now) == 0) {
            assert_true(starts < 400);
            stamps[starts++] = now;
        }
    }
    assert_true(starts >= 199 && starts <= 201);
    for (int i = 0; i < starts; i++) {
        int n = 0;
        for (int j = i; j < starts && stamps[j] < stamps[i] + 1000; j++)
            n++;
        if (n > max_in_window)
            max_in_window = n;
    }
    assert_true(max_in_window <= 20);
}

static void test_ratelimit_burst_and_off(void **state)
{
    (void)state;
    struct ratelimit rl;
    ratelimit_init(&rl, 10, 3); /* 100 ms apart, three back to back */
    assert_int_equal(ratelimit_take(&rl, 0), 0);
    assert_int_equal(ratelimit_take(&rl, 0), 0);
    assert_int_equal(ratelimit_take(&rl, 0), 0);
    assert_int_equal(ratelimit_take(&rl, 0), 100);
    assert_int_equal(ratelimit_take(&rl, 100), 0);
    assert_true(ratelimit_take(&rl, 100) > 0);
    /* Idle time does not build up more than the burst. */
    assert_int_equal(ratelimit_take(&rl, 60000), 0);
    assert_int_equal(ratelimit_take(&rl, 60000), 0);
    assert_int_equal(ratelimit_take(&rl, 60000), 0);
    assert_true(ratelimit_take(&rl, 60000) > 0);

    ratelimit_init(&rl, 0, 1); /* no limit */
    for (int i = 0; i < 10000; i++)
        assert_int_equal(ratelimit_take(&rl, 5), 0);
    ratelimit_init(&rl, 5000000, 1); /* faster than the clock's microsecond: still a limit, never zero */
    assert_int_equal(ratelimit_take(&rl, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fsm_table),         cmocka_unit_test(test_fsm_walk),
        cmocka_unit_test(test_divert_verdict),    cmocka_unit_test(test_drain_verdict),
        cmocka_unit_test(test_ratelimit_pacing),  cmocka_unit_test(test_ratelimit_burst_and_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
