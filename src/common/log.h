/* Logging in the style of OpenBSD daemons: stderr in the foreground, syslog otherwise. */
#ifndef VMD_LOG_H
#define VMD_LOG_H

#include <stdarg.h>

void log_init(const char *procname, int to_stderr, int verbosity);
void log_set_verbose(int verbosity);
int log_get_verbose(void);
void log_procname(const char *procname);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
