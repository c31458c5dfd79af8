/*
 * log.h — Postfix-style logging.
 *
 * Every line reads "Mon DD HH:MM:SS host lifeboat/PROG[pid]: text". Lines about a
 * message start with its queue ID ("4F2A9C01B7E3: to=<a@b>, ...") so an
 * administrator can follow one message with grep. Output goes to stderr in
 * foreground mode and to syslog (facility mail) otherwise. Thread-safe: each
 * line is formatted first and written with one call.
 *
 * Never pass a password, a session token or any other secret to these functions.
 */
#ifndef LB_UTIL_LOG_H
#define LB_UTIL_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERR };

/* prog: "smtpd", "lifeboatctl", ... ; to_stderr: 1 foreground, 0 syslog. */
void log_init(const char *prog, const char *hostname, int to_stderr);
void log_set_level(enum log_level min);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, "warning: " __VA_ARGS__)
#define log_err(...) log_msg(LOG_LEVEL_ERR, "error: " __VA_ARGS__)

#endif
