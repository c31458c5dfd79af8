/*
 * lifeboatd.c — the daemon: wiring and signals.
 *
 * One event loop (the main thread) runs the SMTP server, the delivery engine
 * and the continuity engine; one writer thread owns every write to the store
 * and groups the commits of concurrent sessions (store/writer.h). Start-up
 * order follows the dependencies: config -> store (migrations, crash recovery)
 * -> writer -> archive (indexer thread, daily purge) -> LDAP syncer (thread)
 * -> delivery -> continuity
 * (hooks into delivery) -> smtpd -> http (the HTTP API runs on libmicrohttpd's
 * threads, see http/http.h).
 *
 * SIGTERM/SIGINT: stop accepting connections and starting deliveries, let open
 * SMTP sessions finish (a message is only ours once we said 250, and that is
 * on disk), abandon what is left after a grace period, flush the writer, exit 0.
 * SIGHUP: re-read the config file; limits and TLS certificates take effect for
 * new sessions (listen addresses and data_dir need a restart, and say so).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "archive/archive.h"
#include "continuity/continuity.h"
#include "deliver/deliver.h"
#include "directory/directory.h"
#include "http/http.h"
#include "smtpd/smtpd.h"
#include "store/blob.h"
#include "store/runlock.h"
#include "store/store.h"
#include "store/writer.h"
#include "util/config.h"
#include "util/log.h"

/* How long SIGTERM waits for open SMTP sessions and deliveries before it gives up on them. */
#define SHUTDOWN_GRACE_SECONDS 10

struct daemon {
    const char *config_path;
    struct config cfg;
    struct event_base *base;
    struct store *store; /* the loop thread's read connection */
    struct store_writer *writer;
    struct delivery *delivery;
    struct continuity *continuity;
    struct cluster_node *node; /* heartbeat, leases, wake-ups from other nodes */
    struct smtpd *smtpd;
    struct http_server *http; /* on its own threads; writes through the writer */
    struct archive_indexer *indexer; /* its own thread; writes through the writer */
    struct archive_purger *purger;   /* daily retention pass on the loop */
    struct directory_ldap_syncer *ldap; /* periodic LDAP sync: its own thread; writes through the writer */
    struct event *sig_term, *sig_int, *sig_hup, *shutdown_tick;
    int64_t shutdown_started;
    int stopping;
    int runlock; /* data_dir/lifeboatd.lock, shared (store/runlock.h); -1 until taken */
};

static void usage(void)
{
    fprintf(stderr, "usage: lifeboatd -c CONFIG_FILE [--foreground]\n");
}

static void on_queued(void *arg, const char *queue_id)
{
    struct daemon *d = arg;
    (void)queue_id;
    delivery_kick(d->delivery);
    archive_indexer_wake(d->indexer); /* the new mail's archive entries */
}

static void shutdown_check(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    unsigned sessions = smtpd_session_count(d->smtpd);
    int idle = delivery_idle(d->delivery) && continuity_idle(d->continuity) && http_idle(d->http);
    if ((sessions == 0 && idle) || time(NULL) - d->shutdown_started >= SHUTDOWN_GRACE_SECONDS) {
        if (sessions)
            log_warn("shutdown: closing %u SMTP session(s) still open after %ds; their senders will retry",
                     sessions, SHUTDOWN_GRACE_SECONDS);
        event_base_loopexit(d->base, NULL);
        return;
    }
    struct timeval tv = {0, 100000};
    evtimer_add(d->shutdown_tick, &tv);
}

static void on_terminate(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    (void)what;
    if (d->stopping)
        return;
    d->stopping = 1;
    log_info("shutdown on signal %d: no new connections, finishing open sessions", (int)sig);
    smtpd_stop_accepting(d->smtpd);
    http_stop_accepting(d->http); /* its writes in flight finish while the loop runs */
    delivery_stop(d->delivery);
    continuity_stop(d->continuity);
    d->shutdown_started = time(NULL);
    d->shutdown_tick = evtimer_new(d->base, shutdown_check, d);
    shutdown_check(-1, 0, d);
}

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    (void)sig;
    (void)what;
    struct config fresh;
    char err[512];
    if (config_load(&fresh, d->config_path, err, sizeof err) != 0) {
        log_err("reload refused, keeping the running configuration: %s", err);
        return;
    }
    if (strcmp(fresh.data_dir, d->cfg.data_dir) != 0 || strcmp(fresh.store, d->cfg.store) != 0 ||
        memcmp(&fresh.smtp_listen, &d->cfg.smtp_listen, sizeof fresh.smtp_listen) != 0 ||
        memcmp(&fresh.submission_listen, &d->cfg.submission_listen, sizeof fresh.submission_listen) != 0)
        log_warn("reload: data_dir, store, smtp_listen and submission_listen changes take effect after a restart");
    if (smtpd_reload(d->smtpd, &fresh) != 0) {
        log_err("reload: smtpd refused the new configuration (TLS certificate?), keeping the old one");
        return;
    }
    continuity_reload(d->continuity, &fresh);
    archive_purger_reload(d->purger, &fresh);
    http_reload(d->http, &fresh);
    log_set_level((enum log_level)fresh.log_level);
    log_info("configuration reloaded from %s", d->config_path);
}

static int daemon_start(struct daemon *d, char *err, size_t errlen)
{
    if (evthread_use_pthreads() != 0) {
        snprintf(err, errlen, "libevent has no pthreads support");
        return -1;
    }
    d->base = event_base_new();
    if (!d->base) {
        snprintf(err, errlen, "cannot create the event loop");
        return -1;
    }
    /* Not while lifeboatctl migrate copies this data_dir (and it will not
     * start copying while we run). */
    if ((d->runlock = runlock_daemon(d->cfg.data_dir, err, errlen)) < 0)
        return -1;
    if (store_open(&d->cfg, &d->store, err, errlen) != 0)
        return -1;
    d->writer = store_writer_start(&d->cfg, d->base, err, errlen);
    if (!d->writer)
        return -1;
    if (store_recover(d->store, store_writer_blobs(d->writer)) != 0) {
        snprintf(err, errlen, "start-up recovery of the store failed (see the log)");
        return -1;
    }
    /* The archive's indexer carries on with what a restart left unindexed. */
    if (!(d->indexer = archive_indexer_start(&d->cfg, d->writer, err, errlen)) ||
        !(d->purger = archive_purger_start(d->base, &d->cfg, d->writer, err, errlen)))
        return -1;
    /* Directories are searched on a thread of their own, never on the loop. */
    if (!(d->ldap = directory_ldap_syncer_start(&d->cfg, d->writer, err, errlen)))
        return -1;
    d->delivery = delivery_start(d->base, &d->cfg, d->store, d->writer, err, errlen);
    if (!d->delivery)
        return -1;
    d->continuity = continuity_start(d->base, &d->cfg, d->store, d->writer, d->delivery, err, errlen);
    if (!d->continuity)
        return -1;
    d->node = cluster_node_start(d->base, &d->cfg, d->store, d->writer, d->delivery, d->continuity, err, errlen);
    if (!d->node)
        return -1;
    struct smtpd_deps deps = {
        .store = d->store, .writer = d->writer, .on_queued = on_queued, .on_queued_arg = d};
    d->smtpd = smtpd_start(d->base, &d->cfg, &deps, err, errlen);
    if (!d->smtpd)
        return -1;
    d->http = http_start(&d->cfg, d->writer, err, errlen);
    if (d->http)
        http_set_on_queued(d->http, on_queued, d);
    if (!d->http)
        return -1;
    d->sig_term = evsignal_new(d->base, SIGTERM, on_terminate, d);
    d->sig_int = evsignal_new(d->base, SIGINT, on_terminate, d);
    d->sig_hup = evsignal_new(d->base, SIGHUP, on_reload, d);
    evsignal_add(d->sig_term, NULL);
    evsignal_add(d->sig_int, NULL);
    evsignal_add(d->sig_hup, NULL);
    return 0;
}

static void daemon_free(struct daemon *d)
{
    /* The writer goes first: it commits what is queued and runs the last done
     * callbacks, which still reference sessions, delivery transactions and
     * re-deliveries (continuity starts nothing new once stopped). Continuity's
     * sessions use the delivery engine's resolver: it goes before delivery. */
    if (d->continuity)
        continuity_stop(d->continuity);
    /* HTTP submits nothing once stopped; the writer then wakes the requests
     * still waiting on it, and http_free can join its threads. */
    http_stop_accepting(d->http);
    /* The indexer waits for its writer jobs: it stops while the writer runs. */
    archive_indexer_stop(d->indexer);
    /* So does the LDAP syncer (a search in progress ends within its timeouts). */
    directory_ldap_syncer_stop(d->ldap);
    d->ldap = NULL;
    if (d->writer)
        store_writer_stop(d->writer);
    archive_purger_free(d->purger); /* after the writer: a batch's done() refers to it */
    cluster_node_free(d->node);     /* after the writer: every outcome is committed */
    http_free(d->http);
    if (d->smtpd)
        smtpd_free(d->smtpd);
    if (d->continuity)
        continuity_free(d->continuity);
    if (d->delivery)
        delivery_free(d->delivery);
    if (d->store)
        store_close(d->store);
    if (d->sig_term)
        event_free(d->sig_term);
    if (d->sig_int)
        event_free(d->sig_int);
    if (d->sig_hup)
        event_free(d->sig_hup);
    if (d->shutdown_tick)
        event_free(d->shutdown_tick);
    if (d->base)
        event_base_free(d->base);
    libevent_global_shutdown();
    runlock_release(d->runlock);
}

int main(int argc, char **argv)
{
    struct daemon d = {0};
    d.runlock = -1;
    int foreground = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc)
            d.config_path = argv[++i];
        else if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f"))
            foreground = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else {
            usage();
            return 2;
        }
    }
    if (!d.config_path) {
        usage();
        return 2;
    }
    char err[1024];
    if (config_load(&d.cfg, d.config_path, err, sizeof err) != 0) {
        fprintf(stderr, "lifeboatd: %s\n", err);
        return 1;
    }
    log_init("lifeboatd", d.cfg.hostname, foreground);
    log_set_level((enum log_level)d.cfg.log_level);
    signal(SIGPIPE, SIG_IGN);

    if (!foreground && daemon(0, 0) != 0) {
        fprintf(stderr, "lifeboatd: cannot detach: %s\n", strerror(errno));
        return 1;
    }
    if (daemon_start(&d, err, sizeof err) != 0) {
        log_err("cannot start: %s", err);
        if (!foreground)
            fprintf(stderr, "lifeboatd: %s\n", err);
        daemon_free(&d);
        return 1;
    }
    log_info("lifeboatd started, hostname %s, data in %s", d.cfg.hostname, d.cfg.data_dir);
    event_base_dispatch(d.base);
    daemon_free(&d);
    log_info("lifeboatd stopped");
    return 0;
}
