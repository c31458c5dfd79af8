/*
 * runlock.h — who is using a data_dir: lifeboatd, or lifeboatctl migrate.
 *
 * data_dir/lifeboatd.lock is a lock file (flock(2)) holding the pid of the
 * last process that took it. Every lifeboatd holds a shared lock on it while
 * it runs; lifeboatctl migrate takes an exclusive one for the whole copy, so
 * it refuses to copy an installation whose daemon runs (its copy would miss
 * what the daemon writes meanwhile), and a daemon started during a copy
 * refuses to start. The kernel drops a lock when its holder dies, so a crash
 * leaves nothing to clean up. The other lifeboatctl commands take no lock:
 * they work alongside the daemon.
 */
#ifndef LB_STORE_RUNLOCK_H
#define LB_STORE_RUNLOCK_H

#include <stddef.h>

/* lifeboatd: a shared lock (creating data_dir if needed). Returns the lock
 * file's descriptor, to keep open while the daemon runs, or -1 with err (a
 * migration holds the lock, or the file cannot be made). */
int runlock_daemon(const char *data_dir, char *err, size_t errlen);

/* lifeboatctl migrate: the exclusive lock. Returns the descriptor, or -1 with
 * err saying who holds it (a lifeboatd, by pid) or why the file cannot be
 * made. */
int runlock_exclusive(const char *data_dir, char *err, size_t errlen);

/* Releases a lock taken above (closes fd; -1 is ignored). */
void runlock_release(int fd);

#endif
