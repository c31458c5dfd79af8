/* smtp_client.c — see smtp_client.h. No I/O, no allocation. */
#include "deliver/smtp_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CMD_MAX 1024

static void out_cmd(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_cmd(struct smtpc *c, const char *fmt, ...)
{
    char buf[CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        return; /* cannot happen: addresses are at most ADDR_MAX bytes */
    c->write(c->write_arg, buf, (size_t)n);
}

const char *smtpc_step_name(int step)
{
    switch (step) {
    case SMTPC_STEP_GREETING: return "initial greeting";
    case SMTPC_STEP_EHLO: return "EHLO";
    case SMTPC_STEP_HELO: return "HELO";
    case SMTPC_STEP_STARTTLS: return "STARTTLS";
    case SMTPC_STEP_TLS: return "TLS handshake";
    case SMTPC_STEP_RSET: return "RSET";
    case SMTPC_STEP_MAIL: return "MAIL FROM";
    case SMTPC_STEP_RCPT: return "RCPT TO";
    case SMTPC_STEP_DATA: return "DATA";
    case SMTPC_STEP_DOT: return "end of DATA";
    case SMTPC_STEP_QUIT: return "QUIT";
    default: return "no";
    }
}

void smtpc_init(struct smtpc *c, const char *helo, int tls_allowed, smtpc_write_fn write,
                void *write_arg)
{
    memset(c, 0, sizeof *c);
    snprintf(c->helo, sizeof c->helo, "%s", helo);
    c->tls_allowed = tls_allowed;
    c->write = write;
    c->write_arg = write_arg;
    c->step = SMTPC_STEP_GREETING;
}

const struct smtpc_outcome *smtpc_failure(const struct smtpc *c)
{
    return &c->failure;
}

/* ------------------------------------------------------------------ outcomes */

static void set_from_reply(struct smtpc_outcome *o, int result, int step, const struct smtp_reply *r)
{
    int sent = o->sent;
    memset(o, 0, sizeof *o);
    o->sent = sent;
    o->result = result;
    o->step = step;
    o->from_server = 1;
    o->code = r->code;
    smtp_reply_dsn(r, o->dsn);
    smtp_reply_format(r, o->text, sizeof o->text);
}

static void set_local(struct smtpc_outcome *o, int result, int code, const char *dsn, const char *text)
{
    int sent = o->sent;
    memset(o, 0, sizeof *o);
    o->sent = sent;
    o->result = result;
    o->step = SMTPC_STEP_NONE;
    o->from_server = 0;
    o->code = code;
    snprintf(o->dsn, sizeof o->dsn, "%s", dsn);
    snprintf(o->text, sizeof o->text, "%s", text);
}

/* Applies one outcome to every recipient still undecided (pending or accepted). */
static void settle_open(struct smtpc_txn *t, const struct smtpc_outcome *o)
{
    for (size_t i = 0; i < t->nrcpt; i++) {
        if (t->out[i].result == SMTPC_PENDING || t->out[i].result == SMTPC_ACCEPTED) {
            int sent = t->out[i].sent;
            t->out[i] = *o;
            t->out[i].sent = sent;
        }
    }
}

static enum smtpc_action txn_done(struct smtpc *c)
{
    c->txn = NULL;
    c->step = SMTPC_STEP_READY;
    return SMTPC_TXN_DONE;
}

/* The session is over: remember why, fail whatever is open in the transaction. */
static enum smtpc_action session_failed(struct smtpc *c, const struct smtpc_outcome *why, int say_quit)
{
    c->failure = *why;
    c->failure.result = SMTPC_TEMP;
    if (c->txn) {
        c->txn->server_level = 1;
        settle_open(c->txn, &c->failure);
        c->txn = NULL;
    }
    if (say_quit)
        out_cmd(c, "QUIT\r\n");
    c->step = SMTPC_STEP_CLOSED;
    return SMTPC_FAILED;
}

static enum smtpc_action reply_failed(struct smtpc *c, int step, const struct smtp_reply *r)
{
    struct smtpc_outcome o;
    memset(&o, 0, sizeof o);
    set_from_reply(&o, SMTPC_TEMP, step, r);
    /* A 421 means the server is closing the channel: no QUIT. */
    return session_failed(c, &o, r->code != 421);
}

static enum smtpc_action protocol_error(struct smtpc *c, int step, const struct smtp_reply *r)
{
    struct smtpc_outcome o;
    char line[SMTPC_TEXT_MAX - 64];
    memset(&o, 0, sizeof o);
    smtp_reply_format(r, line, sizeof line);
    char text[SMTPC_TEXT_MAX];
    snprintf(text, sizeof text, "protocol error: unexpected reply to %s: %s", smtpc_step_name(step),
             line);
    set_local(&o, SMTPC_TEMP, 451, "4.5.0", text);
    o.step = step;
    return session_failed(c, &o, 0);
}

void smtpc_lost(struct smtpc *c, const char *dsn, const char *text)
{
    struct smtpc_outcome o;
    memset(&o, 0, sizeof o);
    set_local(&o, SMTPC_TEMP, 451, dsn, text);
    o.step = c->step;
    session_failed(c, &o, 0);
}

/* ------------------------------------------------------------------- EHLO */

void smtpc_parse_ehlo(const struct smtp_reply *r, struct smtpc_ext *ext)
{
    memset(ext, 0, sizeof *ext);
    const char *line = r->text;
    /* The first line is the server's name and greeting; extensions follow. */
    const char *nl = strchr(line, '\n');
    while (nl) {
        line = nl + 1;
        nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        size_t kw = 0;
        while (kw < len && line[kw] != ' ' && line[kw] != '=')
            kw++;
#define KW(name) (kw == sizeof(name) - 1 && strncasecmp(line, name, kw) == 0)
        if (KW("PIPELINING"))
            ext->pipelining = 1;
        else if (KW("STARTTLS"))
            ext->starttls = 1;
        else if (KW("8BITMIME"))
            ext->eightbitmime = 1;
        else if (KW("SMTPUTF8"))
            ext->smtputf8 = 1;
        else if (KW("ENHANCEDSTATUSCODES"))
            ext->enhancedstatuscodes = 1;
        else if (KW("CHUNKING"))
            ext->chunking = 1;
        else if (KW("SIZE")) {
            ext->size = 1;
            ext->size_max = 0;
            if (kw < len) {
                char num[32];
                size_t n = len - kw - 1;
                if (n < sizeof num) {
                    memcpy(num, line + kw + 1, n);
                    num[n] = '\0';
                    char *end;
                    unsigned long long v = strtoull(num, &end, 10);
                    if (end != num && *end == '\0')
                        ext->size_max = v;
                }
            }
        }
#undef KW
    }
}

/* -------------------------------------------------------------- transaction */

static int has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

/* Addresses come from our own queue, but nothing that could break the command
 * line may reach the wire. */
static int address_ok(const char *s, int may_be_empty)
{
    if (!*s)
        return may_be_empty;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= ' ' || ch == 0x7f || ch == '<' || ch == '>')
            return 0;
    }
    return 1;
}

static void send_mail(struct smtpc *c)
{
    const struct smtpc_txn *t = c->txn;
    char params[128] = "";
    size_t n = 0;
    if (c->ext.size)
        n += (size_t)snprintf(params + n, sizeof params - n, " SIZE=%llu", (unsigned long long)t->size);
    if (t->body_8bit && c->ext.eightbitmime)
        n += (size_t)snprintf(params + n, sizeof params - n, " BODY=8BITMIME");
    if (c->need_utf8)
        snprintf(params + n, sizeof params - n, " SMTPUTF8");
    out_cmd(c, "MAIL FROM:<%s>%s\r\n", t->sender, params);
}

/* Writes the next undecided recipient's RCPT TO; 0 when there is none. */
static int send_next_rcpt(struct smtpc *c)
{
    struct smtpc_txn *t = c->txn;
    for (; c->rcpt_next < t->nrcpt; c->rcpt_next++) {
        struct smtpc_outcome *o = &t->out[c->rcpt_next];
        if (o->result != SMTPC_PENDING || o->sent)
            continue;
        out_cmd(c, "RCPT TO:<%s>\r\n", t->rcpts[c->rcpt_next]);
        o->sent = 1;
        o->step = SMTPC_STEP_RCPT;
        c->rcpt_sent++;
        c->rcpt_next++;
        return 1;
    }
    return 0;
}

enum smtpc_action smtpc_begin(struct smtpc *c, struct smtpc_txn *t)
{
    size_t open = 0;
    int need_utf8 = has_8bit(t->sender);
    t->server_level = 0;
    t->untried = 0;
    for (size_t i = 0; i < t->nrcpt; i++) {
        memset(&t->out[i], 0, sizeof t->out[i]);
        need_utf8 |= has_8bit(t->rcpts[i]);
    }

    char text[SMTPC_TEXT_MAX];
    struct smtpc_outcome all;
    memset(&all, 0, sizeof all);
    if (!address_ok(t->sender, 1)) {
        set_local(&all, SMTPC_PERM, 553, "5.1.7", "bad sender address syntax");
    } else if (need_utf8 && !c->ext.smtputf8) {
        set_local(&all, SMTPC_PERM, 553, "5.6.7", "SMTPUTF8 is required, but was not offered by the server");
    } else if (c->ext.size && c->ext.size_max && t->size > c->ext.size_max) {
        snprintf(text, sizeof text, "message size %llu exceeds size limit %llu of the server",
                 (unsigned long long)t->size, (unsigned long long)c->ext.size_max);
        set_local(&all, SMTPC_PERM, 552, "5.3.4", text);
    }
    if (all.result) {
        settle_open(t, &all);
        return SMTPC_TXN_DONE;
    }
    for (size_t i = 0; i < t->nrcpt; i++) {
        if (!address_ok(t->rcpts[i], 0))
            set_local(&t->out[i], SMTPC_PERM, 553, "5.1.3", "bad recipient address syntax");
        else
            open++;
    }
    if (open == 0)
        return SMTPC_TXN_DONE;

    c->txn = t;
    c->rcpt_sent = c->rcpt_replied = c->rcpt_next = c->naccepted = c->ntemp = 0;
    c->mail_failed = 0;
    c->probe_rset = 0;
    c->need_utf8 = need_utf8;
    int rset = c->ntxn++ > 0;
    if (rset)
        out_cmd(c, "RSET\r\n");
    if (!rset || c->ext.pipelining) {
        send_mail(c);
        if (c->ext.pipelining)
            while (send_next_rcpt(c))
                ;
    }
    c->step = rset ? SMTPC_STEP_RSET : SMTPC_STEP_MAIL;
    return SMTPC_WAIT;
}

void smtpc_quit(struct smtpc *c)
{
    out_cmd(c, "QUIT\r\n");
    c->step = SMTPC_STEP_QUIT;
}

enum smtpc_action smtpc_tls_done(struct smtpc *c)
{
    /* RFC 3207: forget everything learnt before the handshake. */
    c->tls_active = 1;
    memset(&c->ext, 0, sizeof c->ext);
    out_cmd(c, "EHLO %s\r\n", c->helo);
    c->step = SMTPC_STEP_EHLO;
    return SMTPC_WAIT;
}

/* All RCPT replies are in: DATA, or the transaction is over. */
static enum smtpc_action rcpts_answered(struct smtpc *c)
{
    struct smtpc_txn *t = c->txn;
    if (c->mail_failed)
        return txn_done(c);
    if (c->naccepted == 0) {
        /* "4xx for every RCPT" is the server's trouble, not the recipients'. */
        t->server_level = c->ntemp > 0 && c->ntemp == c->rcpt_sent;
        if (!t->probe)
            return txn_done(c);
    }
    if (t->probe) {
        /* A probe only asks whether the server would take mail: no DATA. RSET
         * leaves the connection as clean as it found it. */
        out_cmd(c, "RSET\r\n");
        c->probe_rset = 1;
        c->step = SMTPC_STEP_RSET;
        return SMTPC_WAIT;
    }
    out_cmd(c, "DATA\r\n");
    c->step = SMTPC_STEP_DATA;
    return SMTPC_WAIT;
}

static enum smtpc_action on_mail(struct smtpc *c, const struct smtp_reply *r)
{
    struct smtpc_txn *t = c->txn;
    int cls = r->code / 100;
    if (r->code == 421)
        return reply_failed(c, SMTPC_STEP_MAIL, r);
    if (cls == 2) {
        c->step = SMTPC_STEP_RCPT;
        if (!c->ext.pipelining)
            send_next_rcpt(c);
        return SMTPC_WAIT;
    }
    if (cls != 4 && cls != 5)
        return protocol_error(c, SMTPC_STEP_MAIL, r);
    struct smtpc_outcome o;
    memset(&o, 0, sizeof o);
    set_from_reply(&o, cls == 4 ? SMTPC_TEMP : SMTPC_PERM, SMTPC_STEP_MAIL, r);
    settle_open(t, &o);
    t->server_level = cls == 4;
    c->mail_failed = 1;
    if (c->rcpt_sent > c->rcpt_replied) {
        c->step = SMTPC_STEP_RCPT; /* the pipelined RCPT replies still come */
        return SMTPC_WAIT;
    }
    return txn_done(c);
}

static enum smtpc_action on_rcpt(struct smtpc *c, const struct smtp_reply *r)
{
    struct smtpc_txn *t = c->txn;
    int cls = r->code / 100;
    if (r->code == 421)
        return reply_failed(c, SMTPC_STEP_RCPT, r);
    if (cls != 2 && cls != 4 && cls != 5)
        return protocol_error(c, SMTPC_STEP_RCPT, r);
    if (c->rcpt_replied >= c->rcpt_sent)
        return protocol_error(c, SMTPC_STEP_RCPT, r);

    /* Replies come in the order the RCPT commands went out: the n-th reply is
     * for the n-th recipient whose command was sent. */
    size_t seen = 0, i;
    for (i = 0; i < t->nrcpt; i++)
        if (t->out[i].sent && seen++ == c->rcpt_replied)
            break;
    c->rcpt_replied++;
    if (!c->mail_failed) {
        if (cls == 2) {
            set_from_reply(&t->out[i], SMTPC_ACCEPTED, SMTPC_STEP_RCPT, r);
            c->naccepted++;
        } else {
            set_from_reply(&t->out[i], cls == 4 ? SMTPC_TEMP : SMTPC_PERM, SMTPC_STEP_RCPT, r);
            if (cls == 4)
                c->ntemp++;
        }
        if (!c->ext.pipelining && send_next_rcpt(c))
            return SMTPC_WAIT;
    }
    if (c->rcpt_replied < c->rcpt_sent)
        return SMTPC_WAIT;
    return rcpts_answered(c);
}

/* DATA or end of data answered with a failure: it applies to the accepted recipients. */
static enum smtpc_action message_failed(struct smtpc *c, int step, const struct smtp_reply *r)
{
    struct smtpc_outcome o;
    memset(&o, 0, sizeof o);
    int cls = r->code / 100;
    set_from_reply(&o, cls == 4 ? SMTPC_TEMP : SMTPC_PERM, step, r);
    settle_open(c->txn, &o);
    c->txn->server_level = cls == 4;
    return txn_done(c);
}

enum smtpc_action smtpc_reply(struct smtpc *c, const struct smtp_reply *r)
{
    int cls = r->code / 100;
    switch (c->step) {
    case SMTPC_STEP_GREETING:
        if (cls != 2)
            return reply_failed(c, SMTPC_STEP_GREETING, r);
        out_cmd(c, "EHLO %s\r\n", c->helo);
        c->step = SMTPC_STEP_EHLO;
        return SMTPC_WAIT;

    case SMTPC_STEP_EHLO:
        if (cls == 2) {
            smtpc_parse_ehlo(r, &c->ext);
            if (c->ext.starttls && c->tls_allowed && !c->tls_active) {
                out_cmd(c, "STARTTLS\r\n");
                c->step = SMTPC_STEP_STARTTLS;
                return SMTPC_WAIT;
            }
            c->step = SMTPC_STEP_READY;
            c->ready_once = 1;
            return SMTPC_READY;
        }
        if (cls == 5) {
            /* An old server that does not know EHLO (RFC 5321 3.2). */
            out_cmd(c, "HELO %s\r\n", c->helo);
            c->step = SMTPC_STEP_HELO;
            return SMTPC_WAIT;
        }
        return reply_failed(c, SMTPC_STEP_EHLO, r);

    case SMTPC_STEP_HELO:
        if (cls != 2)
            return reply_failed(c, SMTPC_STEP_HELO, r);
        memset(&c->ext, 0, sizeof c->ext);
        c->step = SMTPC_STEP_READY;
        c->ready_once = 1;
        return SMTPC_READY;

    case SMTPC_STEP_STARTTLS:
        if (cls == 2) {
            c->step = SMTPC_STEP_TLS;
            return SMTPC_STARTTLS;
        }
        if (r->code == 421 || (cls != 4 && cls != 5))
            return reply_failed(c, SMTPC_STEP_STARTTLS, r);
        /* Opportunistic TLS: a refused STARTTLS means plain text. */
        c->step = SMTPC_STEP_READY;
        c->ready_once = 1;
        return SMTPC_READY;

    case SMTPC_STEP_RSET:
        if (c->probe_rset) {
            /* The probe's answers are in; how RSET went does not change them. */
            c->probe_rset = 0;
            if (r->code == 421)
                return reply_failed(c, SMTPC_STEP_RSET, r);
            return txn_done(c);
        }
        if (cls != 2) {
            c->txn->untried = 1;
            return reply_failed(c, SMTPC_STEP_RSET, r);
        }
        c->step = SMTPC_STEP_MAIL;
        if (!c->ext.pipelining)
            send_mail(c);
        return SMTPC_WAIT;

    case SMTPC_STEP_MAIL:
        return on_mail(c, r);

    case SMTPC_STEP_RCPT:
        return on_rcpt(c, r);

    case SMTPC_STEP_DATA:
        if (r->code == 354) {
            c->step = SMTPC_STEP_DOT;
            return SMTPC_SEND_BODY;
        }
        if (r->code == 421)
            return reply_failed(c, SMTPC_STEP_DATA, r);
        if (cls != 4 && cls != 5)
            return protocol_error(c, SMTPC_STEP_DATA, r);
        return message_failed(c, SMTPC_STEP_DATA, r);

    case SMTPC_STEP_DOT:
        if (r->code == 421)
            return reply_failed(c, SMTPC_STEP_DOT, r);
        if (cls == 2) {
            struct smtpc_outcome o;
            memset(&o, 0, sizeof o);
            set_from_reply(&o, SMTPC_OK, SMTPC_STEP_DOT, r);
            for (size_t i = 0; i < c->txn->nrcpt; i++)
                if (c->txn->out[i].result == SMTPC_ACCEPTED) {
                    int sent = c->txn->out[i].sent;
                    c->txn->out[i] = o;
                    c->txn->out[i].sent = sent;
                }
            return txn_done(c);
        }
        if (cls != 4 && cls != 5)
            return protocol_error(c, SMTPC_STEP_DOT, r);
        return message_failed(c, SMTPC_STEP_DOT, r);

    case SMTPC_STEP_QUIT:
        c->step = SMTPC_STEP_CLOSED;
        return SMTPC_CLOSED;

    default:
        /* A reply nobody asked for (READY, TLS, CLOSED): the server is out of step. */
        return protocol_error(c, c->step, r);
    }
}
