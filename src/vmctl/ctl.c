/*
 * vmctl's side of the control socket: one connection per request, the
 * request, then the replies up to the MSG_CTL_RESULT that ends it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/msg.h"
#include "common/proto.h"
#include "vmctl/vmctl.h"

int
ctl_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = VMD_SOCKET_PATH;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "vmctl: %s: path too long\n", path);
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == EACCES)
			fprintf(stderr, "vmctl: cannot connect to %s: %s\n", path, strerror(errno));
		else
			fprintf(stderr, "vmctl: cannot connect to %s: is vmd running?\n", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Waits for one message (the socket is blocking; msg_recv never waits). */
static int
ctl_recv(int fd, struct msg *m, struct msg_buf *buf)
{
	fd_set set;
	int rc;

	for (;;) {
		rc = msg_recv(fd, m, buf);
		if (rc != -1 || errno != EAGAIN)
			return rc;
		FD_ZERO(&set);
		FD_SET(fd, &set);
		if (select(fd + 1, &set, NULL, NULL, NULL) < 0 && errno != EINTR)
			return -1;
	}
}

int
ctl_send(int fd, uint32_t type, const void *payload, size_t len)
{
	if (msg_send(fd, type, 0, payload, len, NULL, 0) < 0) {
		fprintf(stderr, "vmctl: cannot send the request: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int
ctl_result(int fd, struct ctl_result *result, int *result_fd,
	   void (*on_info)(const struct ctl_vm_info *, void *), void *arg)
{
	static struct msg_buf buf;
	struct ctl_vm_info info;
	struct msg m;
	int rc;

	if (result_fd)
		*result_fd = -1;
	while ((rc = ctl_recv(fd, &m, &buf)) > 0) {
		if (m.hdr.type == MSG_CTL_INFO && msg_read_ctl_vm_info(&m, &info) == 0) {
			msg_close_fds(&m);
			if (on_info)
				on_info(&info, arg);
			continue;
		}
		if (m.hdr.type != MSG_CTL_RESULT || msg_read_ctl_result(&m, result) < 0) {
			msg_close_fds(&m);
			break;
		}
		if (result_fd && m.nfds > 0)
			*result_fd = msg_take_fd(&m, 0);
		msg_close_fds(&m);
		return 0;
	}
	fprintf(stderr, "vmctl: vmd closed the connection without an answer\n");
	return -1;
}

int
ctl_request(uint32_t type, const void *payload, size_t len, struct ctl_result *result,
	    int *result_fd, void (*on_info)(const struct ctl_vm_info *, void *), void *arg)
{
	int fd = ctl_connect(), rc;

	if (fd < 0)
		return -1;
	rc = ctl_send(fd, type, payload, len);
	if (rc == 0)
		rc = ctl_result(fd, result, result_fd, on_info, arg);
	close(fd);
	return rc;
}

/* Prints the result: errors as "vmctl: message" on stderr; returns the exit status. */
int
ctl_report(const struct ctl_result *r, int quiet)
{
	if (r->error != 0) {
		fprintf(stderr, "vmctl: %s\n", r->message);
		return 1;
	}
	if (!quiet)
		printf("vmctl: %s\n", r->message);
	return 0;
}

int
ctl_target(const char *text, struct ctl_target *t)
{
	char *end;
	unsigned long n;

	memset(t, 0, sizeof(*t));
	if (text[0] >= '0' && text[0] <= '9') {
		errno = 0;
		n = strtoul(text, &end, 10);
		if (*end == '\0' && errno == 0 && n > 0 && n <= UINT32_MAX) {
			t->id = (uint32_t)n;
			return 0;
		}
	}
	if (text[0] == '\0' || strlen(text) > VM_NAME_MAX) {
		fprintf(stderr, "vmctl: %s: not a VM name or id\n", text);
		return -1;
	}
	snprintf(t->name, sizeof(t->name), "%s", text);
	return 0;
}

/* Simple requests about one VM: pause, unpause, wait. */
int
ctl_simple(uint32_t type, const char *what, int argc, char *argv[])
{
	struct ctl_target t;
	struct ctl_result r;

	if (argc != 2) {
		fprintf(stderr, "usage: vmctl %s id\n", what);
		return 1;
	}
	if (ctl_target(argv[1], &t) < 0)
		return 1;
	if (ctl_request(type, &t, sizeof(t), &r, NULL, NULL, NULL) < 0)
		return 1;
	return ctl_report(&r, 0);
}
