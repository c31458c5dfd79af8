/*
 * session_txn.c — the mail transaction: its recipients, the end of the data,
 * and the hand-over to the queue.
 *
 * Recipients are kept once each, in one arena (no allocation per recipient).
 * The body stays in the DATA reader's buffer, which queue_submit reads directly:
 * the only copy of the message made here is the one the reader already made
 * from the socket buffers. While the writer stores it the session reads nothing
 * more, and answers 250 (on stable storage) or 451 when done() arrives.
 *
 * On the submission port the message first goes through
 * session_submission.c (the From rule, Date, Message-ID, DKIM), and is then
 * queued here as outbound mail with a copy in the user's Sent folder.
 */
#include "smtpd/smtpd_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "util/log.h"

void txn_free(struct txn *t)
{
    submission_job_free(t->sub);
    smtp_data_free(&t->data);
    free(t->arena);
    free(t->rcpt_off);
    free(t->slots);
    free(t->rcpt_ptrs);
    memset(t, 0, sizeof *t);
}

void txn_reset(struct txn *t)
{
    /* The recipient arrays are kept for the session's next message. */
    char *arena = t->arena;
    size_t arena_cap = t->arena_cap;
    size_t *rcpt_off = t->rcpt_off;
    size_t rcpt_cap = t->rcpt_cap;
    uint32_t *slots = t->slots;
    size_t nslots = t->nslots;
    submission_job_free(t->sub);
    smtp_data_free(&t->data);
    free(t->rcpt_ptrs);
    memset(t, 0, sizeof *t);
    t->arena = arena;
    t->arena_cap = arena_cap;
    t->rcpt_off = rcpt_off;
    t->rcpt_cap = rcpt_cap;
    t->slots = slots;
    t->nslots = nslots;
    if (slots)
        memset(slots, 0, nslots * sizeof *slots);
    t->relay = -1;
}

const char *txn_rcpt(const struct txn *t, size_t i)
{
    return t->arena + t->rcpt_off[i];
}

/* Duplicates are found through a small open-addressing hash set of recipient
 * indexes (slot value i + 1; 0 is empty), so a message with thousands of
 * recipients costs no quadratic time. */
static size_t addr_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

/* The slot holding addr, or the empty slot where it belongs. */
static uint32_t *find_slot(const struct txn *t, const char *addr)
{
    size_t mask = t->nslots - 1;
    for (size_t i = addr_hash(addr) & mask;; i = (i + 1) & mask) {
        uint32_t *slot = &t->slots[i];
        if (*slot == 0 || strcmp(txn_rcpt(t, *slot - 1), addr) == 0)
            return slot;
    }
}

static int grow_slots(struct txn *t)
{
    size_t n = t->nslots ? t->nslots * 2 : 16;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    for (size_t i = 0; i < t->nrcpt; i++)
        *find_slot(t, txn_rcpt(t, i)) = (uint32_t)(i + 1);
    return 0;
}

int txn_add_rcpt(struct txn *t, const char *addr, int hosted)
{
    if ((t->nrcpt + 1) * 2 > t->nslots && grow_slots(t) != 0)
        return -1;
    uint32_t *slot = find_slot(t, addr);
    if (*slot)
        return 0; /* already a recipient */
    size_t n = strlen(addr) + 1;
    if (t->arena_len + n > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 512;
        while (cap < t->arena_len + n)
            cap *= 2;
        char *a = realloc(t->arena, cap);
        if (!a)
            return -1;
        t->arena = a;
        t->arena_cap = cap;
    }
    if (t->nrcpt == t->rcpt_cap) {
        size_t cap = t->rcpt_cap ? t->rcpt_cap * 2 : 8;
        size_t *o = realloc(t->rcpt_off, cap * sizeof *o);
        if (!o)
            return -1;
        t->rcpt_off = o;
        t->rcpt_cap = cap;
    }
    memcpy(t->arena + t->arena_len, addr, n);
    t->rcpt_off[t->nrcpt++] = t->arena_len;
    t->arena_len += n;
    *slot = (uint32_t)t->nrcpt;
    if (hosted)
        t->nhosted++;
    return 1;
}

/* ------------------------------------------------------------------ data */

void session_data_init(struct session *s)
{
    const struct config *cfg = &s->srv->cfg;
    struct smtp_data_opts o = {
        .max_size = cfg->max_message_size,
        .size_hint = s->txn.size_hint,
        .fix_bare = cfg->smtp_invalid_line_endings == CONFIG_LINE_ENDINGS_FIX,
        .budget = &s->budget,
    };
    smtp_data_init_opts(&s->txn.data, &o);
}

/* ------------------------------------------------------------------ submit */

static void submit_done(int rc, void *arg)
{
    struct session *s = arg;
    struct txn *t = &s->txn;
    if (rc == STORE_OK) {
        log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queued)", t->queue_id, t->sender,
                 t->qm.body_len, t->nrcpt);
        s->messages++;
        if (s->srv && s->srv->deps.on_queued)
            s->srv->deps.on_queued(s->srv->deps.on_queued_arg, t->queue_id);
    } else {
        log_err("%s: queue file write error (%d): client [%s] is told 451 4.3.0", t->queue_id, rc,
                s->ip);
    }
    s->state = SS_CMD;
    if (s->connection_closed) {
        if (rc == STORE_OK)
            log_warn("%s: [%s] disconnected before the reply; the message is queued and may "
                     "arrive twice if the client sends it again", t->queue_id, s->ip);
        session_destroy(s);
        return;
    }
    if (rc == STORE_OK)
        session_replyf(s, "250 2.0.0 Ok: queued as %s", t->queue_id);
    else
        session_reply(s, "451 4.3.0 Error: queue file write error");
    txn_reset(t);
    session_resume(s);
}

void txn_submit(struct session *s)
{
    struct txn *t = &s->txn;
    struct smtp_data *d = &t->data;
    struct received_info ri = {
        .helo = s->helo_name,
        .client_ip = s->ip,
        .hostname = s->srv->cfg.hostname,
        .queue_id = t->queue_id,
        .rcpt = t->nrcpt == 1 ? txn_rcpt(t, 0) : NULL,
        .esmtp = s->helo == 2,
        .tls = s->tls,
        .auth = s->authenticated,
        .smtputf8 = t->smtputf8,
        .tls_info = s->tls_info[0] ? s->tls_info : NULL,
        .when = time(NULL),
    };
    t->rcpt_ptrs = malloc(t->nrcpt * sizeof *t->rcpt_ptrs);
    if (received_build(&ri, t->prefix, sizeof t->prefix) < 0 || !t->rcpt_ptrs) {
        log_err("%s: cannot prepare the message from [%s] for the queue", t->queue_id, s->ip);
        session_reply(s, "451 4.3.0 Error: insufficient system resources");
        txn_reset(t);
        return;
    }
    for (size_t i = 0; i < t->nrcpt; i++)
        t->rcpt_ptrs[i] = txn_rcpt(t, i);

    struct queue_message *m = &t->qm;
    memset(m, 0, sizeof *m);
    memcpy(m->id, t->queue_id, sizeof m->id);
    m->sender = t->sender;
    m->rcpts = t->rcpt_ptrs;
    m->nrcpt = t->nrcpt;
    m->prefix = t->prefix;
    m->body = d->buf ? d->buf : (const unsigned char *)"";
    m->body_len = d->len;
    m->client_addr = s->ip;
    m->helo = s->helo_name;
    /* Mail only to domains we do not host is outbound relay (allowed by
     * --outbound-from); anything for a hosted domain is inbound. What an
     * authenticated user sends is theirs, outbound, wherever it goes, and
     * kept in their Sent folder. */
    m->direction = t->nhosted == 0 || s->user ? DIR_OUTBOUND : DIR_INBOUND;
    m->is_bounce = 0;
    /* Relayed out for a customer: its archive keeps it as outbound mail. */
    m->sender_customer_id = !s->user && t->relay == DIRECTORY_RELAY_OK ? t->relay_customer : 0;
    if (s->user) {
        t->sent = (struct queue_sent_copy){.user_id = s->user->id, .domain_id = s->user->domain_id};
        m->sent_copy = &t->sent;
    }

    /* Nothing more is read from this client until the writer answers. */
    s->state = SS_SUBMIT;
    bufferevent_disable(s->bev, EV_READ);
    if (s->srv->backend.submit(s->srv->backend.arg, m, submit_done, s) != 0) {
        s->state = SS_CMD;
        bufferevent_enable(s->bev, EV_READ);
        log_err("%s: the queue refused the message from [%s] (shutting down?)", t->queue_id, s->ip);
        session_reply(s, "451 4.3.0 Error: queue file write error");
        txn_reset(t);
    }
}

void session_data_segment_done(struct session *s)
{
    struct txn *t = &s->txn;
    struct smtp_data *d = &t->data;
    int whole = d->done;
    s->state = SS_CMD;
    session_set_timeouts(s);
    if (d->error) {
        enum smtp_data_error error = d->error;
        const char *reply = smtp_data_reply(d);
        if (error == SMTP_DATA_NO_STORAGE) {
            /* Before txn_reset gives this message's octets back. */
            const struct data_budget *b = &s->srv->budget;
            log_warn("%s: reject: %s from [%s]: %s; from=<%s> size=%llu: message memory in use: "
                     "%llu of %llu octets, this client %llu of %llu",
                     t->queue_id, t->bdat_used ? "BDAT" : "END-OF-MESSAGE", s->ip, reply, t->sender,
                     (unsigned long long)d->size, (unsigned long long)b->used, (unsigned long long)b->limit,
                     (unsigned long long)client_table_bytes(b->clients, s->ip),
                     (unsigned long long)b->client_limit);
        } else {
            log_info("%s: reject: %s from [%s]: %s; from=<%s> size=%llu", t->queue_id,
                     t->bdat_used ? "BDAT" : "END-OF-MESSAGE", s->ip, reply, t->sender,
                     (unsigned long long)d->size);
        }
        txn_reset(t);
        if (error == SMTP_DATA_NO_MEMORY || error == SMTP_DATA_NO_STORAGE)
            session_reply(s, reply);
        else
            session_error(s, reply);
        return;
    }
    if (!whole) {
        /* One BDAT chunk read, more to come. */
        session_replyf(s, "250 2.0.0 Ok: %llu octets received", (unsigned long long)s->chunk_size);
        return;
    }
    unsigned hops = received_count_hops(d->buf ? d->buf : (const unsigned char *)"", d->len);
    if (hops >= RECEIVED_HOP_LIMIT) {
        log_info("%s: reject: %s from [%s]: 554 5.4.6 too many hops (%u Received headers); from=<%s>",
                 t->queue_id, t->bdat_used ? "BDAT" : "END-OF-MESSAGE", s->ip, hops, t->sender);
        txn_reset(t);
        session_error(s, "554 5.4.6 Error: too many hops (mail loop?)");
        return;
    }
    if (s->user)
        session_submission_finish(s);
    else if (!session_relay_refused(s))
        txn_submit(s);
}
