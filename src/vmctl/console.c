/*
 * vmctl console: the VM's serial console, with the terminal in raw mode.
 * As with cu(1), "~." at the start of a line detaches.  Without a terminal
 * (a script), input is passed on until its end and output until the VM's
 * console goes away or ~. arrives.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <termios.h>
#include <unistd.h>

#include "vmctl/vmctl.h"

/* Where the escape is: at a line's start, or just after a tilde there. */
enum escape_state { LINE_START, ESCAPE_SEEN, MID_LINE };

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Passes input to the tty, holding back a tilde at a line's start until
 * the next byte says whether it is the escape.  Returns 1 on "~.".
 */
static int
forward_input(int tty, const char *buf, size_t len, enum escape_state *state)
{
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];

		if (*state == ESCAPE_SEEN) {
			if (c == '.')
				return 1;
			if (c != '~' && write_all(tty, "~", 1) < 0)
				return -1;
			*state = MID_LINE;
		} else if (*state == LINE_START && c == '~') {
			*state = ESCAPE_SEEN;
			continue;
		}
		if (write_all(tty, &c, 1) < 0)
			return -1;
		*state = (c == '\r' || c == '\n') ? LINE_START : MID_LINE;
	}
	return 0;
}

int
console_attach(int tty, const char *name)
{
	struct termios saved, raw;
	enum escape_state state = LINE_START;
	bool input_open = true, restore = false;
	char buf[4096];
	int rc = 0;

	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		restore = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	fprintf(stderr, "Connected to %s (~. to detach)\r\n", name);
	for (;;) {
		fd_set set;
		ssize_t n;

		FD_ZERO(&set);
		FD_SET(tty, &set);
		if (input_open)
			FD_SET(STDIN_FILENO, &set);
		if (select(tty + 1, &set, NULL, NULL, NULL) < 0) {
			if (errno == EINTR)
				continue;
			rc = 1;
			break;
		}
		if (FD_ISSET(tty, &set)) {
			n = read(tty, buf, sizeof(buf));
			if (n <= 0) {
				if (n < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				fprintf(stderr, "\r\n[%s closed]\r\n", name);
				break; /* the VM is gone */
			}
			if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
				break;
		}
		if (input_open && FD_ISSET(STDIN_FILENO, &set)) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0) {
				input_open = false;
				continue;
			}
			int r = forward_input(tty, buf, (size_t)n, &state);
			if (r != 0) {
				if (r > 0)
					fprintf(stderr, "\r\n[detached]\r\n");
				break;
			}
		}
	}
	if (restore)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	close(tty);
	return rc;
}
