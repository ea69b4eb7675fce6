/*
 * tests/security/native-policy's driver: runs the real priv process
 * (`vmd -X priv`, its socket on fd 3) in the network namespace the script
 * made, stands in for a compromised parent, and asks it to touch interfaces
 * that are not vmd's: eth0, lo, a user's persistent tap, a bridge that is no
 * switch's.  Each must be refused (an error reply or MSG_PRIV_REFUSED) and
 * left as it was; vmd's own requests must still work afterwards.
 * Prints ok NAME / FAIL NAME: why.  Usage: policy-priv VMD
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proto.h"

static int priv_fd;
static struct msg_buf buf;
static int failures;

static void
result(const char *name, int ok, const char *why)
{
	if (ok) {
		printf("ok policy-priv-%s\n", name);
	} else {
		printf("FAIL policy-priv-%s: %s\n", name, why);
		failures++;
	}
	fflush(stdout);
}

/* The next message from priv, within two seconds; 0 when none came. */
static int
next_reply(struct msg *m)
{
	struct pollfd pfd = { priv_fd, POLLIN, 0 };
	int rc;

	for (;;) {
		rc = msg_recv(priv_fd, m, &buf);
		if (rc > 0)
			return 1;
		if (rc == 0 || errno != EAGAIN)
			return -1;
		if (poll(&pfd, 1, 2000) <= 0)
			return 0;
	}
}

static void
send_tap(uint32_t type, const char *ifname, const char *bridge)
{
	struct msg_priv_tap tap = { 0 };

	snprintf(tap.ifname, sizeof(tap.ifname), "%s", ifname);
	snprintf(tap.bridge, sizeof(tap.bridge), "%s", bridge);
	tap.vm_id = 1;
	if (msg_send(priv_fd, type, 1, &tap, sizeof(tap), NULL, 0) < 0) {
		perror("send");
		exit(1);
	}
}

static void
send_switch(uint32_t type, const char *name, const char *bridge)
{
	struct msg_priv_switch sw = { 0 };

	snprintf(sw.name, sizeof(sw.name), "%s", name);
	snprintf(sw.bridge, sizeof(sw.bridge), "%s", bridge);
	if (msg_send(priv_fd, type, 0, &sw, sizeof(sw), NULL, 0) < 0) {
		perror("send");
		exit(1);
	}
}

/*
 * A request that has no reply when it works: then a tap request for an
 * empty name, which priv always answers, shows whether a refusal came first.
 * Returns 1 when refused (reason in why), 0 when not, -1 when priv is gone.
 */
static int
refused(char *why, size_t len)
{
	struct msg m;
	struct msg_priv_refused r;
	int got = 0, rc;

	snprintf(why, len, "not refused");
	send_tap(MSG_PRIV_TAP, "", "");
	while ((rc = next_reply(&m)) > 0) {
		if (m.hdr.type == MSG_PRIV_REFUSED && msg_read_priv_refused(&m, &r) == 0) {
			snprintf(why, len, "%s", r.reason);
			got = 1;
		}
		msg_close_fds(&m);
		if (m.hdr.type == MSG_PRIV_TAP)
			return got;
	}
	snprintf(why, len, "priv gave no answer");
	return -1;
}

/* A tap request's answer: its error (0: a tap came), the reason in why. */
static int
tap_answer(const char *ifname, const char *bridge, char *why, size_t len)
{
	struct msg m;
	struct msg_priv_tap tap;
	int error;

	send_tap(MSG_PRIV_TAP, ifname, bridge);
	if (next_reply(&m) <= 0 || msg_read_priv_tap(&m, &tap) < 0) {
		snprintf(why, len, "no tap answer");
		return -1;
	}
	error = tap.error != 0 ? tap.error : (m.nfds == 1 ? 0 : EIO);
	snprintf(why, len, "error %d: %s", tap.error, tap.reason);
	msg_close_fds(&m); /* a tap that came goes again: nobody holds it */
	return error;
}

static int
exists(const char *fmt, const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), fmt, name);
	return stat(path, &st) == 0;
}

#define MASTER "/sys/class/net/%s/master"
#define BRIDGE "/sys/class/net/%s/bridge"
#define NETDEV "/sys/class/net/%s"

int
main(int argc, char *argv[])
{
	char why[PRIV_REASON_MAX + 64], msg[PRIV_REASON_MAX + 128];
	int sv[2], r, keep_fd = -1;
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: policy-priv VMD\n");
		return 2;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
		return perror("socketpair"), 1;
	if ((pid = fork()) == 0) {
		dup2(sv[1], 3);
		execl(argv[1], argv[1], "-X", "priv", "-d", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	priv_fd = sv[0];

	/* vmd's own switch works. */
	send_switch(MSG_PRIV_SWITCH, "sw", "vmdsw-sw");
	r = refused(why, sizeof(why));
	result("own-switch", r == 0 && exists(BRIDGE, "vmdsw-sw"), why);

	/* Adopting eth0 or lo as a switch's bridge. */
	send_switch(MSG_PRIV_SWITCH, "evil", "eth0");
	r = refused(why, sizeof(why));
	result("switch-eth0-refused", r == 1 && !exists(BRIDGE, "eth0"), why);
	send_switch(MSG_PRIV_SWITCH, "lo", "lo");
	r = refused(why, sizeof(why));
	result("switch-lo-refused", r == 1 && !exists(BRIDGE, "lo"), why);

	/* Taps on host interfaces: eth0, lo, a user's persistent tap. */
	r = tap_answer("eth0", "vmdsw-sw", why, sizeof(why));
	result("tap-eth0-refused", r == EPERM && !exists(MASTER, "eth0"), why);
	r = tap_answer("lo", "", why, sizeof(why));
	result("tap-lo-refused", r == EPERM, why);
	r = tap_answer("usertap", "vmdsw-sw", why, sizeof(why));
	result("tap-user-tap-refused", r == EPERM && !exists(MASTER, "usertap"), why);
	/* A new tap, but on a bridge that is no switch's. */
	r = tap_answer("vm1-if0", "userbr", why, sizeof(why));
	result("tap-foreign-bridge-refused", r == EPERM && !exists(NETDEV, "vm1-if0"), why);

	/* Attaching and detaching what is not priv's tap. */
	send_tap(MSG_PRIV_ATTACH, "eth0", "vmdsw-sw");
	r = refused(why, sizeof(why));
	result("attach-eth0-refused", r == 1 && !exists(MASTER, "eth0"), why);
	send_tap(MSG_PRIV_ATTACH, "lo", "vmdsw-sw");
	r = refused(why, sizeof(why));
	result("attach-lo-refused", r == 1 && !exists(MASTER, "lo"), why);
	send_tap(MSG_PRIV_DETACH, "userport", "userbr");
	r = refused(why, sizeof(why));
	result("detach-user-port-refused", r == 1 && exists(MASTER, "userport"), why);
	send_switch(MSG_PRIV_REMOVE, "x", "userbr");
	r = refused(why, sizeof(why));
	result("remove-user-bridge-refused", r == 1 && exists(BRIDGE, "userbr"), why);
	send_switch(MSG_PRIV_REMOVE, "evil", "eth0");
	r = refused(why, sizeof(why));
	result("remove-eth0-refused", r == 1 && exists(NETDEV, "eth0"), why);

	/* vmd's own tap still works, and only its own switch's bridge takes it. */
	{
		struct msg m;
		struct msg_priv_tap tap;

		send_tap(MSG_PRIV_TAP, "vm1-if1", "vmdsw-sw");
		r = next_reply(&m) > 0 && msg_read_priv_tap(&m, &tap) == 0 && tap.error == 0 &&
		    m.nfds == 1;
		if (r)
			keep_fd = msg_take_fd(&m, 0);
		snprintf(msg, sizeof(msg), "error %d: %s", r ? 0 : tap.error, tap.reason);
		msg_close_fds(&m);
		result("own-tap", r && exists(MASTER, "vm1-if1"), msg);
	}
	send_tap(MSG_PRIV_ATTACH, "vm1-if1", "userbr");
	r = refused(why, sizeof(why));
	result("attach-own-tap-foreign-bridge-refused", r == 1, why);
	send_tap(MSG_PRIV_DETACH, "vm1-if1", "vmdsw-sw");
	r = refused(why, sizeof(why));
	result("detach-own-tap", r == 0 && !exists(MASTER, "vm1-if1"), why);

	if (keep_fd >= 0)
		close(keep_fd);
	close(priv_fd);
	waitpid(pid, NULL, 0);
	/* priv deletes the bridge it made when the parent goes, and leaves the user's. */
	result("exit-cleans-own", !exists(NETDEV, "vmdsw-sw") && exists(BRIDGE, "userbr"),
	       "vmdsw-sw left, or userbr deleted");
	return failures ? 1 : 0;
}
