/*
 * log.c — see log.h. Formats a whole line into a stack buffer and writes it
 * with a single write(2) so lines from several threads never interleave.
 */
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_prog[64] = "lifeboat";
static char log_host[256] = "localhost";
static int log_stderr = 1;
static enum log_level log_min = LOG_LEVEL_INFO;

void log_init(const char *prog, const char *hostname, int to_stderr)
{
    snprintf(log_prog, sizeof log_prog, "%s", prog ? prog : "lifeboat");
    if (hostname && *hostname)
        snprintf(log_host, sizeof log_host, "%s", hostname);
    else if (gethostname(log_host, sizeof log_host) != 0)
        snprintf(log_host, sizeof log_host, "localhost");
    log_stderr = to_stderr;
    if (!to_stderr)
        openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_level(enum log_level min)
{
    log_min = min;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    if (level < log_min)
        return;
    char text[4096];
    vsnprintf(text, sizeof text, fmt, ap);
    /* Keep one event on one line, whatever a peer put in a reply. */
    for (char *p = text; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';

    if (!log_stderr) {
        static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
        syslog(prio[level], "%s", text);
        return;
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    char line[4500];
    int n = snprintf(line, sizeof line, "%s %s lifeboat/%s[%d]: %s\n", stamp, log_host, log_prog,
                     (int)getpid(), text);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}
