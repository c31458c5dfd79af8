/*
 * runlock.c — the lock file of runlock.h (data_dir/lifeboatd.lock).
 */
#include "store/runlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/store_internal.h"

/* Opens (creating) the lock file; -1 with err. */
static int lock_open(const char *data_dir, char *path, size_t pathlen, char *err, size_t errlen)
{
    if (store_prepare_data_dir(data_dir, err, errlen) != 0)
        return -1;
    snprintf(path, pathlen, "%s/lifeboatd.lock", data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return fd;
}

/* Who the file names: "PID lifeboatd" or "PID migrate" (the last taker;
 * several daemons may share the lock). who gets " (pid N)" or "". Returns 1
 * when the last taker was a migration. */
static int holder(int fd, char *who, size_t wholen)
{
    char buf[64];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    who[0] = '\0';
    if (pid > 0)
        snprintf(who, wholen, " (pid %ld)", pid);
    return strstr(end, "migrate") != NULL;
}

/* Records our pid and role for whoever finds the lock taken (only the
 * message gets poorer if this fails). */
static void write_pid(int fd, const char *role)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%ld %s\n", (long)getpid(), role);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n)
        return;
}

static int take(const char *data_dir, int op, char *err, size_t errlen)
{
    char path[1100];
    int fd = lock_open(data_dir, path, sizeof path, err, errlen);
    if (fd < 0)
        return -1;
    int rc;
    while ((rc = flock(fd, op | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (rc == 0) {
        write_pid(fd, op == LOCK_SH ? "lifeboatd" : "migrate");
        return fd;
    }
    int e = errno;
    char who[48];
    int migrating = holder(fd, who, sizeof who);
    close(fd);
    if (e != EWOULDBLOCK)
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
    else if (migrating)
        snprintf(err, errlen, "lifeboatctl migrate%s is copying the installation in %s: wait for it to finish",
                 who, data_dir);
    else
        snprintf(err, errlen, "lifeboatd%s is running on %s: stop it first", who, data_dir);
    return -1;
}

int runlock_daemon(const char *data_dir, char *err, size_t errlen)
{
    return take(data_dir, LOCK_SH, err, errlen);
}

int runlock_exclusive(const char *data_dir, char *err, size_t errlen)
{
    return take(data_dir, LOCK_EX, err, errlen);
}

void runlock_release(int fd)
{
    if (fd >= 0)
        close(fd);
}
