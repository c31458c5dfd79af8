/*
 * release.c — delivering an archived message again (archive.h).
 *
 * A release is one unit of work: the queue message for the recipients that
 * are delivered to the customer's server, the mailbox copies of those whose
 * domain is in an outage, and the audit row, all commit together or not at
 * all (inside the writer's transaction, or in a transaction of its own when
 * lifeboatctl calls it). Nothing is copied: the new queue message and every
 * mailbox copy reference the archived blob.
 *
 * A copy put into a continuity mailbox is marked never to be re-delivered:
 * it is a copy of mail the customer's server had already, so the drain at
 * recovery must not send it there a second time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"
#include "directory/directory.h"
#include "util/addr.h"
#include "util/log.h"

/* Recipients a release takes at most (the queue takes this many per message
 * anyway; an entry has no more participants than its message had recipients). */
#define RELEASE_RCPTS_MAX 1000

struct targets {
    char (*addr)[ADDR_MAX + 1];
    size_t n;
};

static int targets_has(const struct targets *t, const char *a)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->addr[i], a))
            return 1;
    return 0;
}

static void targets_add(struct targets *t, const char *a)
{
    char canon[ADDR_MAX + 1];
    if (t->n == RELEASE_RCPTS_MAX || addr_canonical(a, canon, sizeof canon) != 0 || targets_has(t, canon))
        return;
    memcpy(t->addr[t->n++], canon, sizeof canon);
}

/* 1 if addr is in a domain of the customer. */
static int of_customer(struct store *st, const char *addr, int64_t customer_id)
{
    struct store_domain d;
    return store_domain_get(st, addr_domain(addr), &d) == STORE_OK && d.customer_id == customer_id;
}

struct original {
    struct store *st;
    struct targets *t;
    int64_t customer_id;
};

static int add_original(const char *addr, void *arg)
{
    struct original *o = arg;
    if (of_customer(o->st, addr, o->customer_id))
        targets_add(o->t, addr);
    return 0;
}

/* One mailbox copy per user, whatever the number of their addresses. */
struct copy {
    int64_t user_id;
    char rcpts[sizeof((struct store_mailbox_entry *)0)->rcpts];
};

/* Whether addr's copy goes straight into a continuity mailbox: a registered,
 * activated, not suspended user of a domain in outage or recovering with
 * continuity on. *user_id gets the user. */
static int to_mailbox(struct store *st, const char *addr, int64_t *user_id)
{
    struct rcpt_lookup lk;
    if (directory_lookup_rcpt(st, addr, &lk) != STORE_OK || lk.kind != RCPT_KIND_USER)
        return 0;
    if (!lk.domain.continuity || lk.domain.state == DOMAIN_NORMAL || !lk.user.active || lk.user.suspended)
        return 0;
    *user_id = lk.user.id;
    return 1;
}

static void copy_add(struct copy *copies, size_t *ncopies, int64_t user_id, const char *addr)
{
    struct copy *c = NULL;
    for (size_t i = 0; i < *ncopies && !c; i++)
        if (copies[i].user_id == user_id)
            c = &copies[i];
    if (!c) {
        c = &copies[(*ncopies)++];
        c->user_id = user_id;
        c->rcpts[0] = '\0';
    }
    size_t used = strlen(c->rcpts);
    if (used + strlen(addr) + 2 < sizeof c->rcpts)
        snprintf(c->rcpts + used, sizeof c->rcpts - used, "%s%s", used ? "," : "", addr);
}

static int add_copy(struct store *st, const struct store_archive_entry *e, const struct copy *c,
                    const char *queue_id, int64_t now)
{
    struct store_mailbox_entry m = {
        .user_id = c->user_id,
        .size = e->size,
        .received = now,
        .folder = FOLDER_INBOX,
        .redeliver = REDELIVER_NONE,
        .direction = DIR_INBOUND,
    };
    snprintf(m.msg_id, sizeof m.msg_id, "%s", queue_id);
    memcpy(m.blob, e->blob, sizeof m.blob);
    memcpy(m.prefix, e->prefix, sizeof m.prefix);
    memcpy(m.sender, e->sender, sizeof m.sender);
    memcpy(m.rcpts, c->rcpts, sizeof m.rcpts);
    return store_mailbox_add(st, &m, 0, NULL);
}

static int queue_copy(struct store *st, const struct store_archive_entry *e, const char *queue_id,
                      const char *const *rcpts, size_t n, int64_t now)
{
    struct store_msg_new row = {
        .blob = {0},
        .size = e->size,
        .sender = e->sender,
        .prefix = e->prefix,
        .received = now,
        .client_addr = "",
        .helo = "",
        .direction = DIR_INBOUND,
        .nrcpt = n,
        .rcpts = rcpts,
    };
    snprintf(row.id, sizeof row.id, "%s", queue_id);
    memcpy(row.blob, e->blob, sizeof row.blob);
    return store_message_insert(st, &row);
}

static int audit(struct store *st, const struct store_archive_entry *e, const struct archive_release *r,
                 const struct targets *t, int64_t now)
{
    struct store_audit a = {.at = now, .customer_id = e->customer_id};
    snprintf(a.actor, sizeof a.actor, "%s", r->actor ? r->actor : "");
    snprintf(a.action, sizeof a.action, "archive.release");
    snprintf(a.target, sizeof a.target, "archive:%lld", (long long)e->id);
    size_t used = (size_t)snprintf(a.detail, sizeof a.detail, "queue ID %s, %u queued, %u into mailboxes; to",
                                   r->queue_id, r->queued, r->to_mailbox);
    for (size_t i = 0; i < t->n && used < sizeof a.detail; i++)
        used += (size_t)snprintf(a.detail + used, sizeof a.detail - used, " %s", t->addr[i]);
    return store_audit_add(st, &a);
}

static int release(struct store *st, struct archive_release *r, int64_t now, struct targets *t,
                   const char **queued)
{
    struct store_archive_entry *e = malloc(sizeof *e);
    struct copy *copies = NULL;
    if (!e)
        return STORE_ERR;
    /* Locked: a purge on another node cannot drop the entry's blob between
     * this read and the references the copies take. */
    int rc = store_archive_get_locked(st, r->entry_id, e);
    if (rc == STORE_OK) {
        if (r->to) {
            for (size_t i = 0; i < r->nto; i++)
                targets_add(t, r->to[i]);
        } else {
            struct original o = {st, t, e->customer_id};
            rc = store_archive_addrs(st, e->id, ARCHIVE_ADDR_TO, add_original, &o);
        }
    }
    if (rc == STORE_OK && t->n == 0)
        rc = STORE_NOTFOUND;
    if (rc == STORE_OK && !(copies = calloc(t->n, sizeof *copies)))
        rc = STORE_ERR;
    size_t nqueued = 0, ncopies = 0;
    for (size_t i = 0; rc == STORE_OK && i < t->n; i++) {
        int64_t user_id = 0;
        if (to_mailbox(st, t->addr[i], &user_id))
            copy_add(copies, &ncopies, user_id, t->addr[i]);
        else
            queued[nqueued++] = t->addr[i];
    }
    if (rc == STORE_OK) {
        queueid_new(r->queue_id);
        r->queued = (unsigned)nqueued;
        r->to_mailbox = (unsigned)(t->n - nqueued);
    }
    if (rc == STORE_OK && nqueued)
        rc = queue_copy(st, e, r->queue_id, queued, nqueued, now);
    for (size_t i = 0; rc == STORE_OK && i < ncopies; i++)
        rc = add_copy(st, e, &copies[i], r->queue_id, now);
    if (rc == STORE_OK)
        rc = audit(st, e, r, t, now);
    if (rc == STORE_OK)
        log_info("%s: archive: entry %lld released by %s: %u queued, %u into continuity mailboxes", r->queue_id,
                 (long long)e->id, r->actor ? r->actor : "?", r->queued, r->to_mailbox);
    free(copies);
    free(e);
    return rc;
}

int archive_release_run(struct store *st, struct archive_release *r, int64_t now)
{
    r->queue_id[0] = '\0';
    r->queued = r->to_mailbox = 0;
    struct targets t = {calloc(RELEASE_RCPTS_MAX, sizeof *t.addr), 0};
    const char **queued = calloc(RELEASE_RCPTS_MAX, sizeof *queued);
    int rc = t.addr && queued ? STORE_OK : STORE_ERR;
    /* lifeboatctl calls outside a transaction: the release is one unit anyway */
    int own_tx = rc == STORE_OK && !store_in_transaction(st);
    if (own_tx)
        rc = store_begin(st);
    if (rc == STORE_OK)
        rc = release(st, r, now, &t, queued);
    if (own_tx) {
        if (rc == STORE_OK)
            rc = store_commit(st);
        if (rc != STORE_OK)
            store_rollback(st);
    }
    if (rc != STORE_OK) {
        r->queue_id[0] = '\0';
        r->queued = r->to_mailbox = 0;
    }
    free(t.addr);
    free(queued);
    return rc;
}

/* ---------------------------------------------------------------- who may */

struct participant {
    struct store *st;
    const struct store_user *u;
    int found;
};

static int is_own(const char *addr, void *arg)
{
    struct participant *p = arg;
    if (directory_user_owns_address(p->st, p->u, addr) == 1) {
        p->found = 1;
        return 1;
    }
    return 0;
}

int archive_release_allowed(struct store *st, const struct store_user *actor, const struct store_archive_entry *e,
                            const char *addr)
{
    if (!of_customer(st, addr, e->customer_id))
        return 0;
    if (actor->role == ROLE_OPERATOR)
        return 1;
    struct store_domain home;
    if (store_domain_get_by_id(st, actor->domain_id, &home) != STORE_OK || home.customer_id != e->customer_id)
        return 0;
    if (actor->role == ROLE_ADMIN)
        return 1;
    if (directory_user_owns_address(st, actor, addr) != 1)
        return 0;
    struct participant p = {st, actor, 0};
    if (store_archive_addrs(st, e->id, ARCHIVE_ADDR_TO, is_own, &p) != STORE_OK)
        return 0;
    if (!p.found && store_archive_addrs(st, e->id, ARCHIVE_ADDR_FROM, is_own, &p) != STORE_OK)
        return 0;
    return p.found;
}
