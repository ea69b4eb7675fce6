#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

/* The one piece of logging state a process has. */
static struct {
	const char *procname;
	int to_stderr;
	int verbosity;
} log_env = { "vmd", 1, 0 };

void
log_init(const char *procname, int to_stderr, int verbosity)
{
	log_env.procname = procname;
	log_env.to_stderr = to_stderr;
	log_env.verbosity = verbosity;
	if (!to_stderr)
		openlog(procname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_verbose(int verbosity)
{
	log_env.verbosity = verbosity;
}

int
log_get_verbose(void)
{
	return log_env.verbosity;
}

void
log_procname(const char *procname)
{
	log_env.procname = procname;
}

static void
log_emit(int priority, const char *fmt, va_list ap, const char *cause)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_env.to_stderr) {
		if (cause)
			fprintf(stderr, "%s: %s: %s\n", log_env.procname, msg, cause);
		else
			fprintf(stderr, "%s: %s\n", log_env.procname, msg);
		fflush(stderr);
	} else if (cause) {
		syslog(priority, "%s: %s", msg, cause);
	} else {
		syslog(priority, "%s", msg);
	}
}

#define LOG_WITH(priority, cause)                   \
	do {                                        \
		va_list ap;                         \
		va_start(ap, fmt);                  \
		log_emit(priority, fmt, ap, cause); \
		va_end(ap);                         \
	} while (0)

void
log_warn(const char *fmt, ...)
{
	const char *cause = strerror(errno);

	LOG_WITH(LOG_ERR, cause);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_WITH(LOG_ERR, NULL);
}

void
log_info(const char *fmt, ...)
{
	LOG_WITH(LOG_INFO, NULL);
}

void
log_debug(const char *fmt, ...)
{
	if (log_env.verbosity > 0)
		LOG_WITH(LOG_DEBUG, NULL);
}

void
fatal(const char *fmt, ...)
{
	const char *cause = strerror(errno);

	LOG_WITH(LOG_CRIT, cause);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_WITH(LOG_CRIT, NULL);
	exit(1);
}
