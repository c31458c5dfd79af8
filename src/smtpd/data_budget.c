/*
 * data_budget.c — the memory the SMTP server lets message bodies in flight
 * hold (see smtpd_int.h, struct data_budget).
 *
 * The DATA/BDAT reader keeps a message in memory until it is queued; without
 * a bound, sessions that send a large body and never its final dot hold
 * max_message_size each, so a few dozen connections from one address grow the
 * daemon by gigabytes. Every growth of a message buffer is reserved here first
 * (smtp_data.c); past the global limit, or past one client address's share of
 * it, the message is read to its end and answered 452 4.3.1 (RFC 3463:
 * insufficient system storage) — a temporary refusal, so a legitimate sender
 * tries again later. The share keeps one address from spending the whole
 * budget and refusing everyone else's mail.
 *
 * SPEC.md has no key for this, so both limits follow from max_message_size:
 * eight whole messages at the largest size (at least 64 MB) for everyone, a
 * quarter of that (two whole messages at least) for one address. With the
 * default 25 MB that is 200 MB and 50 MB.
 */
#include "smtpd/smtpd_int.h"

#define BUDGET_MESSAGES 8
#define BUDGET_MIN (64ull * 1024 * 1024)
#define BUDGET_CLIENT_DIVISOR 4

void data_budget_limits(uint64_t max_message_size, uint64_t *limit, uint64_t *client_limit)
{
    uint64_t l = max_message_size > UINT64_MAX / BUDGET_MESSAGES ? UINT64_MAX : max_message_size * BUDGET_MESSAGES;
    if (l < BUDGET_MIN)
        l = BUDGET_MIN;
    *limit = l;
    *client_limit = l / BUDGET_CLIENT_DIVISOR;
}

void data_budget_configure(struct data_budget *b, struct client_table *clients, uint64_t max_message_size)
{
    b->clients = clients;
    data_budget_limits(max_message_size, &b->limit, &b->client_limit);
}

/* What is left of limit when used is taken (a reload may have lowered the limit below it). */
static uint64_t room(uint64_t limit, uint64_t used)
{
    return used < limit ? limit - used : 0;
}

int data_budget_reserve(struct data_budget *b, const char *ip, uint64_t n)
{
    if (n > room(b->limit, b->used) || n > room(b->client_limit, client_table_bytes(b->clients, ip)))
        return -1;
    if (client_table_charge(b->clients, ip, n) != 0)
        return -1;
    b->used += n;
    return 0;
}

void data_budget_release(struct data_budget *b, const char *ip, uint64_t n)
{
    b->used -= n < b->used ? n : b->used;
    client_table_uncharge(b->clients, ip, n);
}
