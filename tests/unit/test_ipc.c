/*
 * The queued writer (msg_channel) over real socketpairs: a reader that stops
 * reading never blocks the writer, order and descriptors survive the queue,
 * the bound holds.  And the parent's credentials of a client: the kernel's
 * (MSG_CTL_CLIENT), never the cred field of a request.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/msg.h"
#include "common/proto.h"
#include "unit/check.h"
#include "vmd/vmd.h"

#define FLOOD 1000

static struct msg_buf buf;

static int
nonblocking_pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv);
}

static int drained;

static void
on_event(struct msg_channel *ch, int error, void *arg)
{
	if (error == 0)
		drained++;
}

/* 1000 messages to a peer that reads nothing: none blocks; all arrive in order. */
static void
test_channel_never_blocks(void)
{
	struct event_base *base = event_base_new();
	struct msg_channel ch;
	struct msg m;
	int sv[2], next = 0, rc;

	CHECK(base != NULL && nonblocking_pair(sv) == 0);
	CHECK(msg_channel_init(&ch, base, sv[0], FLOOD, on_event, NULL) == 0);
	for (uint32_t i = 0; i < FLOOD; i++)
		CHECK(msg_channel_send(&ch, MSG_CTL_RESULT, i, &i, sizeof(i), NULL, 0) == 0);
	CHECK(!msg_channel_idle(&ch)); /* the socket holds far fewer */
	drained = 0;
	while (next < FLOOD) {
		while ((rc = msg_recv(sv[1], &m, &buf)) > 0) {
			uint32_t value;

			memcpy(&value, m.data, sizeof(value));
			CHECK(m.hdr.peer_id == (uint32_t)next && value == (uint32_t)next);
			next++;
		}
		CHECK(rc < 0 && errno == EAGAIN);
		if (rc == 0)
			break;
		event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
	}
	CHECK(next == FLOOD);
	CHECK(msg_channel_idle(&ch) && drained == 1);
	msg_channel_release(&ch);
	close(sv[0]);
	close(sv[1]);
	event_base_free(base);
}

/* Past its limit the queue refuses (ENOBUFS): the caller drops the peer. */
static void
test_channel_bound(void)
{
	struct event_base *base = event_base_new();
	struct msg_channel ch;
	int sv[2], rc = 0, sent = 0;

	CHECK(base != NULL && nonblocking_pair(sv) == 0);
	CHECK(msg_channel_init(&ch, base, sv[0], 8, on_event, NULL) == 0);
	while (sent < FLOOD && (rc = msg_channel_send(&ch, MSG_CTL_RESULT, 1, "x", 1, NULL, 0)) == 0)
		sent++;
	CHECK(rc < 0 && errno == ENOBUFS);
	CHECK(sent < FLOOD && ch.queue.count == 8);
	msg_channel_release(&ch);
	CHECK(ch.queue.count == 0);
	close(sv[0]);
	close(sv[1]);
	event_base_free(base);
}

/* A queued descriptor is a duplicate: the sender may close its own at once. */
static void
test_channel_keeps_descriptors(void)
{
	struct event_base *base = event_base_new();
	struct msg_channel ch;
	struct msg m;
	int sv[2], pipefd[2], got = 0;
	char c = 0;

	CHECK(base != NULL && nonblocking_pair(sv) == 0 && pipe(pipefd) == 0);
	CHECK(msg_channel_init(&ch, base, sv[0], FLOOD, on_event, NULL) == 0);
	for (int i = 0; i < FLOOD && msg_channel_idle(&ch); i++) /* fill the socket: the rest queues */
		CHECK(msg_channel_send(&ch, MSG_CTL_INFO, 0, NULL, 0, NULL, 0) == 0);
	CHECK(!msg_channel_idle(&ch));
	CHECK(msg_channel_send(&ch, MSG_CTL_RESULT, 0, NULL, 0, &pipefd[0], 1) == 0);
	close(pipefd[0]);
	CHECK(write(pipefd[1], "k", 1) == 1);
	while (!got) {
		int rc = msg_recv(sv[1], &m, &buf);

		if (rc > 0 && m.hdr.type == MSG_CTL_RESULT) {
			CHECK(m.nfds == 1 && read(m.fds[0], &c, 1) == 1 && c == 'k');
			msg_close_fds(&m);
			got = 1;
		} else if (rc < 0 && errno == EAGAIN) {
			event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
		} else if (rc <= 0) {
			break;
		}
	}
	CHECK(got);
	msg_channel_release(&ch);
	close(pipefd[1]);
	close(sv[0]);
	close(sv[1]);
	event_base_free(base);
}

/*
 * A connection whose other end is not root: as root, a child of another
 * uid connects to an abstract socket; otherwise our own uid is not root.
 */
struct bound_addr {
	struct sockaddr_un addr;
	socklen_t len;
};

static int
connection_of_other_user(pid_t *child, uid_t *uid, struct bound_addr *bound)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int sv[2], lfd, fd;

	*child = -1;
	if (getuid() != 0) {
		*uid = getuid();
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			return -1;
		close(sv[1]); /* the peer's cred is fixed at creation */
		return sv[0];
	}
	*uid = 65534;
	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "vmd-test-ipc-%d", (int)getpid());
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(lfd, 1) < 0)
		return -1;
	if ((*child = fork()) == 0) {
		int cfd;

		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(1);
		cfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		if (cfd < 0 || connect(cfd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (bound != NULL) {
		bound->len = sizeof(bound->addr);
		if (getsockname(lfd, (struct sockaddr *)&bound->addr, &bound->len) < 0)
			bound->len = 0;
	}
	close(lfd);
	return fd;
}

static void
msg_of(struct msg *m, uint32_t type, uint32_t peer, const void *data, size_t len, int fd)
{
	memset(m, 0, sizeof(*m));
	m->hdr = (struct msg_header){ type, (uint32_t)len, peer, 0 };
	m->data = data;
	if (fd >= 0) {
		m->fds[0] = fd;
		m->nfds = 1;
	}
}

/* A compromised control writes uid 0 in a request: the parent uses the kernel's. */
static void
test_parent_ignores_forged_cred(void)
{
	static struct vmd_env env;
	static uint8_t payload[MSG_PAYLOAD_MAX];
	struct msg_ctl_client hello = { 7, 1 }, gone = { 7, 0 };
	struct ctl_target t = { { 0, 0, 1 }, 0, "root-only", 0 }, seen;
	struct msg m;
	pid_t child;
	uid_t uid;
	int fd;

	struct bound_addr bound = { .len = 0 };
	int sv[2];

	TAILQ_INIT(&env.peers);
	fd = connection_of_other_user(&child, &uid, &bound);
	CHECK(fd >= 0);
	env.control_addr = bound.addr;
	env.control_addr_len = bound.len;
	/*
	 * A compromised control passes a socket whose peer is the parent (a
	 * socketpair of its own, say): when the parent knows its socket's name,
	 * only a connection accepted on it counts.
	 */
	if (bound.len > 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0) {
		struct msg_ctl_client forged = { 8, 1 };

		msg_of(&m, MSG_CTL_CLIENT, 8, &forged, sizeof(forged), sv[0]);
		vmd_peer_update(&env, &m);
		msg_of(&m, MSG_CTL_STOP, 8, &t, sizeof(t), -1);
		CHECK(vmd_peer_apply_cred(&env, &m, payload, sizeof(payload)) < 0);
		close(sv[1]);
	}
	/* Before control introduced peer 7, its requests are refused. */
	msg_of(&m, MSG_CTL_STOP, 7, &t, sizeof(t), -1);
	CHECK(vmd_peer_apply_cred(&env, &m, payload, sizeof(payload)) < 0);
	msg_of(&m, MSG_CTL_CLIENT, 7, &hello, sizeof(hello), fd);
	vmd_peer_update(&env, &m);
	msg_of(&m, MSG_CTL_STOP, 7, &t, sizeof(t), -1);
	CHECK(vmd_peer_apply_cred(&env, &m, payload, sizeof(payload)) == 0);
	memcpy(&seen, m.data, sizeof(seen));
	CHECK(seen.cred.uid == uid && seen.cred.uid != 0);
	CHECK(strcmp(seen.name, "root-only") == 0);
	/* Another peer id, never introduced: refused. */
	msg_of(&m, MSG_CTL_STOP, 8, &t, sizeof(t), -1);
	CHECK(vmd_peer_apply_cred(&env, &m, payload, sizeof(payload)) < 0);
	/* Gone: refused again. */
	msg_of(&m, MSG_CTL_CLIENT, 7, &gone, sizeof(gone), -1);
	vmd_peer_update(&env, &m);
	msg_of(&m, MSG_CTL_STOP, 7, &t, sizeof(t), -1);
	CHECK(vmd_peer_apply_cred(&env, &m, payload, sizeof(payload)) < 0);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN_TEST(test_channel_never_blocks);
	RUN_TEST(test_channel_bound);
	RUN_TEST(test_channel_keeps_descriptors);
	RUN_TEST(test_parent_ignores_forged_cred);
	TEST_EXIT();
}
