/*
 * session_cmd.c — the SMTP commands: what each one may do in which state,
 * and the recipient policy that keeps lifeboat from ever being an open relay.
 *
 * RCPT is accepted when the domain is hosted (and, with recipient_check on,
 * the address is a known user or alias), or — for any domain — when the client
 * address is in some hosted domain's --outbound-from networks, or the client
 * authenticated on the submission port. Everything else gets 554 5.7.1. A
 * directory that cannot be read gives 451 4.3.0, never a guess: the sender
 * retries.
 *
 * On the submission port nothing is accepted before AUTH (530), and AUTH is
 * offered only after STARTTLS (session_auth.c); MAIL FROM must then be one of
 * the user's own addresses.
 */
#include "smtpd/smtpd_int.h"

#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "util/addr.h"
#include "util/log.h"

static const char *proto_name(const struct session *s)
{
    struct received_info ri = {
        .esmtp = s->helo == 2, .tls = s->tls, .auth = s->authenticated, .smtputf8 = s->txn.smtputf8};
    return received_protocol(&ri);
}

/* "NOQUEUE: reject: RCPT from [192.0.2.1]: 554 5.7.1 <a@b>: relay access denied;
 *  from=<s> to=<a@b> proto=ESMTP helo=<h>", as Postfix logs it. */
static void log_reject(const struct session *s, const char *verb, const char *reply, const char *rcpt)
{
    log_info("%s: reject: %s from [%s]: %s; from=<%s>%s%s%s proto=%s helo=<%s>",
             s->txn.queue_id[0] ? s->txn.queue_id : "NOQUEUE", verb, s->ip, reply, s->txn.sender,
             rcpt ? " to=<" : "", rcpt ? rcpt : "", rcpt ? ">" : "", proto_name(s), s->helo_name);
}

/* ------------------------------------------------------------------ HELO, EHLO */

static int cmd_helo(struct session *s, const struct smtp_cmd *cmd)
{
    const struct config *cfg = &s->srv->cfg;
    txn_reset(&s->txn); /* RFC 5321 4.1.4: HELO/EHLO reset the transaction */
    snprintf(s->helo_name, sizeof s->helo_name, "%s", cmd->domain);
    if (cmd->verb == SMTP_HELO) {
        s->helo = 1;
        session_replyf(s, "250 %s", cfg->hostname);
        return 0;
    }
    s->helo = 2;
    char size[32] = "250-SIZE";
    if (cfg->max_message_size)
        snprintf(size, sizeof size, "250-SIZE %llu", (unsigned long long)cfg->max_message_size);
    session_replyf(s, "250-%s", cfg->hostname);
    session_reply(s, "250-PIPELINING");
    session_reply(s, size);
    session_reply(s, "250-8BITMIME");
    session_reply(s, "250-SMTPUTF8");
    session_reply(s, "250-ENHANCEDSTATUSCODES");
    if (s->srv->tls && !s->tls)
        session_reply(s, "250-STARTTLS");
    /* Passwords only travel encrypted: AUTH on the submission port, after STARTTLS. */
    if (s->submission && s->tls)
        session_reply(s, "250-AUTH PLAIN LOGIN");
    session_reply(s, "250 CHUNKING");
    return 0;
}

/* ------------------------------------------------------------------ MAIL */

static int cmd_mail(struct session *s, const struct smtp_cmd *cmd)
{
    const struct config *cfg = &s->srv->cfg;
    if (!s->helo) {
        session_error(s, "503 5.5.1 Error: send HELO/EHLO first");
        return -1;
    }
    if (s->txn.active) {
        session_error(s, "503 5.5.1 Error: nested MAIL command");
        return -1;
    }
    if (s->srv->draining) {
        session_replyf(s, "421 4.3.2 %s Service shutting down, closing transmission channel",
                       cfg->hostname);
        session_close_after_flush(s);
        return -1;
    }
    if (s->submission && !s->user) {
        session_error(s, "530 5.7.0 Authentication required");
        return -1;
    }
    if (s->user && session_auth_check_sender(s, cmd->path) != 0)
        return -1;
    if (cmd->has_size && cfg->max_message_size && cmd->size > cfg->max_message_size) {
        session_error(s, "552 5.3.4 Message size exceeds fixed limit");
        return -1;
    }
    txn_reset(&s->txn);
    s->txn.active = 1;
    snprintf(s->txn.sender, sizeof s->txn.sender, "%s", cmd->path);
    s->txn.size_hint = cmd->has_size ? cmd->size : 0;
    s->txn.smtputf8 = cmd->smtputf8;
    session_reply(s, "250 2.1.0 Ok");
    return 0;
}

/* ------------------------------------------------------------------ RCPT */

/* Whether this client may relay this transaction's mail to domains we do not
 * host, and for which customer: the client's networks are asked once a
 * connection, the sender once a transaction (directory.h, "Relaying out").
 * An authenticated user's sender was checked at MAIL. */
static int client_relay(struct session *s)
{
    if (s->authenticated)
        return DIRECTORY_RELAY_OK;
    const struct smtpd_backend *b = &s->srv->backend;
    if (s->nrelay_customers < 0) {
        int n = b->relay_networks(b->arg, s->ip, s->relay_customers, DIRECTORY_RELAY_CUSTOMERS_MAX);
        if (n == STORE_ERR)
            return STORE_ERR;
        s->nrelay_customers = n;
    }
    if (s->nrelay_customers == 0)
        return DIRECTORY_RELAY_DENIED;
    struct txn *t = &s->txn;
    if (t->relay < 0) {
        int r = b->relay_sender(b->arg, s->relay_customers, (size_t)s->nrelay_customers, t->sender,
                                &t->relay_customer);
        if (r == STORE_ERR)
            return STORE_ERR;
        t->relay = r;
    }
    return t->relay;
}

static int rcpt_refuse(struct session *s, const char *addr, const char *fmt)
{
    char reply[512];
    snprintf(reply, sizeof reply, fmt, addr);
    log_reject(s, "RCPT", reply, addr);
    session_error(s, reply);
    return -1;
}

static int cmd_rcpt(struct session *s, const struct smtp_cmd *cmd)
{
    struct txn *t = &s->txn;
    const struct config *cfg = &s->srv->cfg;
    if (!t->active) {
        session_error(s, "503 5.5.1 Error: need MAIL command");
        return -1;
    }
    /* Every accepted RCPT counts, duplicates too: the limit is on the work a
     * client may make us do, not only on what is stored. */
    if (t->accepted >= cfg->max_recipients) {
        /* A client pipelining more recipients than we take is not misbehaving,
         * up to a point (Postfix's smtpd_recipient_overshoot_limit). */
        if (t->overshoot++ < cfg->max_recipients)
            session_reply(s, "452 4.5.3 Error: too many recipients");
        else
            session_error(s, "452 4.5.3 Error: too many recipients");
        return -1;
    }
    char addr[ADDR_MAX + 1];
    if (addr_canonical(cmd->path, addr, sizeof addr) != 0)
        return rcpt_refuse(s, cmd->path, "553 5.1.3 <%s>: Bad recipient address syntax");

    struct rcpt_lookup rl;
    if (s->srv->backend.lookup_rcpt(s->srv->backend.arg, addr, &rl) != STORE_OK) {
        log_err("directory lookup failed for <%s> from [%s]: answering 451", addr, s->ip);
        session_reply(s, "451 4.3.0 Error: temporary directory failure, try again later");
        return -1;
    }
    int hosted = 1;
    switch (rl.kind) {
    case RCPT_KIND_NOT_HOSTED: {
        int relay = client_relay(s);
        if (relay == STORE_ERR) {
            log_err("relay permission lookup failed for [%s]: answering 451", s->ip);
            session_reply(s, "451 4.3.0 Error: temporary directory failure, try again later");
            return -1;
        }
        if (relay == DIRECTORY_RELAY_NOT_OWNED) {
            /* A customer's server, but the sender is not its customer's:
             * another customer's domain, or nobody's. */
            char reply[ADDR_MAX + 128];
            snprintf(reply, sizeof reply, "550 5.7.1 <%.*s>: Sender address rejected: not owned by the relaying customer",
                     ADDR_MAX, t->sender);
            log_reject(s, "RCPT", reply, addr);
            session_error(s, reply);
            return -1;
        }
        if (relay != DIRECTORY_RELAY_OK)
            return rcpt_refuse(s, addr, "554 5.7.1 <%s>: relay access denied");
        hosted = 0;
        break;
    }
    case RCPT_KIND_UNKNOWN:
        if (rl.domain.recipient_check)
            return rcpt_refuse(s, addr, "550 5.1.1 <%s>: user unknown");
        break;
    default: /* a user, active or not: the customer's server has the last word */
        break;
    }
    /* The same recipient twice is one delivery. */
    if (txn_add_rcpt(t, addr, hosted) < 0) {
        log_err("out of memory adding a recipient for [%s]", s->ip);
        session_reply(s, "451 4.3.0 Error: insufficient system resources");
        return -1;
    }
    t->accepted++;
    if (!t->queue_id[0]) {
        queueid_new(t->queue_id);
        if (s->user)
            log_info("%s: client=[%s], sasl_method=%s, sasl_username=%s", t->queue_id, s->ip,
                     sasl_mech_name(s->auth_mech), s->user->email);
        else
            log_info("%s: client=[%s]", t->queue_id, s->ip);
    }
    session_reply(s, "250 2.1.5 Ok");
    return 0;
}

/* ------------------------------------------------------------------ DATA, BDAT */

/* What DATA and BDAT need: a transaction with recipients. NULL when all is well. */
static const char *data_refusal(const struct session *s)
{
    if (!s->txn.active)
        return "503 5.5.1 Error: need MAIL command";
    if (s->txn.nrcpt == 0)
        return "554 5.5.1 Error: no valid recipients";
    return NULL;
}

static int cmd_data(struct session *s)
{
    const char *no = data_refusal(s);
    if (!no && s->txn.bdat_used)
        no = "503 5.5.1 Error: DATA after BDAT";
    if (no) {
        session_error(s, no);
        return -1;
    }
    struct txn *t = &s->txn;
    t->data_used = 1;
    session_data_init(s);
    smtp_data_start_dot(&t->data);
    s->state = SS_DATA;
    session_set_timeouts(s);
    session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    return 0;
}

static int cmd_bdat(struct session *s, const struct smtp_cmd *cmd)
{
    const char *no = data_refusal(s);
    if (!no && s->txn.data_used)
        no = "503 5.5.1 Error: BDAT after DATA";
    if (no) {
        /* The chunk follows regardless: read it and throw it away, then answer. */
        s->skip_left = cmd->chunk_size;
        s->skip_reply = no;
        s->state = SS_SKIP;
        session_set_timeouts(s);
        return -1;
    }
    struct txn *t = &s->txn;
    if (!t->bdat_used) {
        t->bdat_used = 1;
        session_data_init(s);
    }
    s->chunk_size = cmd->chunk_size;
    smtp_data_start_chunk(&t->data, cmd->chunk_size, cmd->last);
    s->state = SS_BDAT;
    session_set_timeouts(s);
    if (smtp_data_segment_done(&t->data))
        session_data_segment_done(s); /* BDAT 0 [LAST] */
    return 0;
}

/* ------------------------------------------------------------------ the rest */

static int cmd_starttls(struct session *s)
{
    if (!s->srv->tls) {
        session_error(s, "502 5.5.1 Error: command not implemented");
        return -1;
    }
    if (s->tls) {
        session_error(s, "503 5.5.1 Error: TLS already active");
        return -1;
    }
    if (s->txn.active) {
        session_error(s, "503 5.5.1 Error: MAIL transaction in progress");
        return -1;
    }
    session_reply(s, "220 2.0.0 Ready to start TLS");
    if (session_start_tls(s) != 0) {
        session_close_after_flush(s);
        return -1;
    }
    return 0;
}

static void junk(struct session *s)
{
    /* Postfix's smtpd_junk_command_limit: a session that only NOOPs holds a
     * slot others need. */
    if (++s->junk > SMTPD_JUNK_COMMAND_LIMIT)
        session_count_error(s);
}

void session_command(struct session *s, const char *line, size_t len)
{
    struct smtp_cmd cmd;
    int rc = smtp_parse_command(line, len, s->txn.smtputf8 ? SMTP_PARSE_UTF8 : 0, &cmd);
    if (cmd.verb == SMTP_VERB_NONE) {
        s->unknown++;
        s->last_verb = "UNKNOWN";
    } else {
        s->count[cmd.verb]++;
        s->last_verb = smtp_verb_name(cmd.verb);
    }
    if (rc != SMTP_PARSE_OK) {
        if (cmd.verb != SMTP_VERB_NONE)
            s->failed[cmd.verb]++;
        if (cmd.verb == SMTP_BDAT) {
            /* Without a size we cannot tell where the chunk ends, so nothing
             * after this line can be trusted to be a command. */
            session_reply(s, cmd.reply);
            session_close_after_flush(s);
            return;
        }
        if (cmd.verb == SMTP_MAIL || cmd.verb == SMTP_RCPT)
            log_reject(s, smtp_verb_name(cmd.verb), cmd.reply, NULL);
        session_error(s, cmd.reply);
        return;
    }
    int r = 0;
    switch (cmd.verb) {
    case SMTP_HELO:
    case SMTP_EHLO:
        r = cmd_helo(s, &cmd);
        break;
    case SMTP_MAIL:
        r = cmd_mail(s, &cmd);
        break;
    case SMTP_RCPT:
        r = cmd_rcpt(s, &cmd);
        break;
    case SMTP_DATA:
        r = cmd_data(s);
        break;
    case SMTP_BDAT:
        r = cmd_bdat(s, &cmd);
        break;
    case SMTP_RSET:
        txn_reset(&s->txn);
        session_reply(s, "250 2.0.0 Ok");
        junk(s);
        break;
    case SMTP_NOOP:
        session_reply(s, "250 2.0.0 Ok");
        junk(s);
        break;
    case SMTP_QUIT:
        session_reply(s, "221 2.0.0 Bye");
        session_close_after_flush(s);
        break;
    case SMTP_VRFY:
        session_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
        junk(s);
        break;
    case SMTP_EXPN:
        session_reply(s, "502 5.5.1 Error: EXPN not supported");
        junk(s);
        r = -1;
        break;
    case SMTP_HELP:
        session_reply(s, s->submission ? "214 2.0.0 Commands: HELO EHLO AUTH MAIL RCPT DATA BDAT RSET NOOP QUIT"
                                         " VRFY HELP STARTTLS"
                                       : "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP"
                                         " STARTTLS");
        junk(s);
        break;
    case SMTP_STARTTLS:
        r = cmd_starttls(s);
        break;
    case SMTP_AUTH:
        r = session_cmd_auth(s, &cmd);
        break;
    default:
        session_error(s, "500 5.5.1 Error: command not recognized");
        r = -1;
        break;
    }
    if (r != 0)
        s->failed[cmd.verb]++;
}
