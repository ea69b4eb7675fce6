/*
 * The daemon's pure logic: the message framing (over real socketpairs, with
 * descriptors), the readers' length checks, the lifecycle's rules,
 * permissions, reboot-loop detection, vmctl's command lookup by prefix.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/msg.h"
#include "common/proto.h"
#include "unit/check.h"
#include "vmctl/vmctl.h"
#include "vmd/vmd.h"

static struct msg_buf buf;

static int
pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
}

static void
test_msg_roundtrip_with_fd(void)
{
	struct msg_vm_event ev = { 7, 42, -3 }, got;
	struct msg m;
	int sv[2], p[2];

	CHECK(pair(sv) == 0 && pipe(p) == 0);
	CHECK(msg_send(sv[0], MSG_VMM_EXITED, 7, &ev, sizeof(ev), &p[1], 1) == 0);
	CHECK(msg_recv(sv[1], &m, &buf) == 1);
	CHECK(m.hdr.type == MSG_VMM_EXITED && m.hdr.peer_id == 7 && m.hdr.pid == getpid());
	CHECK(m.nfds == 1);
	CHECK(msg_read_vm_event(&m, &got) == 0 && got.vm_id == 7 && got.pid == 42 &&
	      got.status == -3);
	/* The descriptor works: write through it, read from the pipe. */
	CHECK(write(m.fds[0], "x", 1) == 1);
	char c = 0;
	CHECK(read(p[0], &c, 1) == 1 && c == 'x');
	msg_close_fds(&m);
	/* Nothing more: EAGAIN; the peer closes: end of file. */
	CHECK(msg_recv(sv[1], &m, &buf) == -1 && errno == EAGAIN);
	close(sv[0]);
	CHECK(msg_recv(sv[1], &m, &buf) == 0);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}

static void
test_msg_refuses_bad_records(void)
{
	struct msg_header hdr = { MSG_CTL_STOP, 100, 0, 0 };
	struct msg m;
	int sv[2];

	CHECK(pair(sv) == 0);
	/* Shorter than a header. */
	CHECK(send(sv[0], "abc", 3, 0) == 3);
	CHECK(msg_recv(sv[1], &m, &buf) == -1 && errno == EBADMSG);
	/* A header that claims more payload than the record holds. */
	CHECK(send(sv[0], &hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
	CHECK(msg_recv(sv[1], &m, &buf) == -1 && errno == EBADMSG);
	/* A payload over the maximum is refused by the sender. */
	CHECK(msg_send(sv[0], MSG_CTL_STOP, 0, &buf, MSG_PAYLOAD_MAX + 1, NULL, 0) == -1 &&
	      errno == EMSGSIZE);
	close(sv[0]);
	close(sv[1]);
}

static struct msg
fake(uint32_t type, const void *data, size_t len)
{
	struct msg m = { .hdr = { type, (uint32_t)len, 0, 0 }, .data = data };

	return m;
}

static void
test_readers_check_lengths(void)
{
	static struct ctl_start start;
	struct ctl_target t;
	struct ctl_result r;
	struct msg_vm_fd f;
	uint8_t big[sizeof(struct ctl_target) + 1] = { 0 };
	char err[256];
	struct msg m;

	memset(&t, 'A', sizeof(t)); /* no terminator anywhere */
	m = fake(MSG_CTL_STOP, &t, sizeof(t));
	CHECK(msg_read_ctl_target(&m, &t) == 0 && strlen(t.name) == VM_NAME_MAX);
	m = fake(MSG_CTL_STOP, big, sizeof(struct ctl_target) - 1);
	CHECK(msg_read_ctl_target(&m, &t) == -1);
	m = fake(MSG_CTL_STOP, big, sizeof(big));
	CHECK(msg_read_ctl_target(&m, &t) == -1);
	/* The right length under the wrong type. */
	m = fake(MSG_CTL_START, big, sizeof(struct ctl_target));
	CHECK(msg_read_ctl_target(&m, &t) == -1);
	m = fake(MSG_CTL_RESULT, big, sizeof(struct ctl_target));
	CHECK(msg_read_ctl_result(&m, &r) == -1);
	/* A start request: vm_params checked too (an empty name is refused). */
	memset(&start, 0, sizeof(start));
	m = fake(MSG_CTL_START, &start, sizeof(start));
	CHECK(msg_read_ctl_start(&m, &start, err, sizeof(err)) == -1);
	vm_params_init(&start.params, "ok");
	m = fake(MSG_CTL_START, &start, sizeof(start));
	CHECK(msg_read_ctl_start(&m, &start, err, sizeof(err)) == 0);
	{
		static struct ctl_start bad;

		vm_params_init(&bad.params, "ok");
		bad.params.ndisks = VM_MAX_DISKS + 1;
		m = fake(MSG_CTL_START, &bad, sizeof(bad));
		CHECK(msg_read_ctl_start(&m, &start, err, sizeof(err)) == -1);
	}
	/* A descriptor message of an unknown kind. */
	memset(&f, 0, sizeof(f));
	f.kind = 99;
	m = fake(MSG_VM_FD, &f, sizeof(f));
	CHECK(msg_read_vm_fd(&m, &f) == -1);
	CHECK(msg_is_ctl_request(MSG_CTL_STOP) && !msg_is_ctl_request(MSG_VMM_START) &&
	      !msg_is_ctl_request(MSG_CTL_RESULT));
}

static void
test_state_rules(void)
{
	char err[128];

	CHECK(vm_state_allows(VM_STATE_STOPPED, VM_ACTION_START, err, sizeof(err)) == 0);
	CHECK(vm_state_allows(VM_STATE_WAITING, VM_ACTION_START, err, sizeof(err)) == 0);
	CHECK(vm_state_allows(VM_STATE_RUNNING, VM_ACTION_START, err, sizeof(err)) == -1 &&
	      strcmp(err, "is already running") == 0);
	CHECK(vm_state_allows(VM_STATE_STOPPED, VM_ACTION_STOP, err, sizeof(err)) == -1);
	CHECK(vm_state_allows(VM_STATE_PAUSED, VM_ACTION_STOP, err, sizeof(err)) == 0);
	CHECK(vm_state_allows(VM_STATE_RUNNING, VM_ACTION_PAUSE, err, sizeof(err)) == 0);
	CHECK(vm_state_allows(VM_STATE_PAUSED, VM_ACTION_PAUSE, err, sizeof(err)) == -1 &&
	      strcmp(err, "is already paused") == 0);
	CHECK(vm_state_allows(VM_STATE_RUNNING, VM_ACTION_UNPAUSE, err, sizeof(err)) == -1);
	CHECK(vm_state_allows(VM_STATE_PAUSED, VM_ACTION_UNPAUSE, err, sizeof(err)) == 0);
	CHECK(vm_state_allows(VM_STATE_STOPPED, VM_ACTION_CONSOLE, err, sizeof(err)) == -1);
	CHECK(vm_state_allows(VM_STATE_WAITING, VM_ACTION_CONSOLE, err, sizeof(err)) == -1);
	CHECK(vm_state_allows(VM_STATE_STARTING, VM_ACTION_CONSOLE, err, sizeof(err)) == 0);
	CHECK(strcmp(vm_state_name(VM_STATE_WAITING), "waiting") == 0);
}

static void
test_permissions(void)
{
	struct vm_params p;
	uint32_t groups[] = { 100, 2000 };

	vm_params_init(&p, "v");
	CHECK(vm_may_control(&p, 0, NULL, 0));
	CHECK(!vm_may_control(&p, 1000, groups, 2));
	p.owner.uid = 1000;
	CHECK(vm_may_control(&p, 1000, NULL, 0));
	CHECK(!vm_may_control(&p, 1001, groups, 2));
	p.owner.uid = VM_ID_NONE;
	p.owner.gid = 2000;
	CHECK(vm_may_control(&p, 1001, groups, 2));
	CHECK(!vm_may_control(&p, 1001, groups, 1));
}

static void
test_reboot_loop(void)
{
	static struct vmd_vm vm;

	memset(&vm, 0, sizeof(vm));
	CHECK(vm_reboot_allowed(&vm, 100));
	CHECK(vm_reboot_allowed(&vm, 101));
	CHECK(vm_reboot_allowed(&vm, 102));
	CHECK(!vm_reboot_allowed(&vm, 103)); /* a fourth within 6 s */
	memset(&vm, 0, sizeof(vm));
	for (int t = 0; t < 40; t += 3)
		CHECK(vm_reboot_allowed(&vm, t)); /* one every 3 s: 2 in a window */
}

static void
test_targets(void)
{
	char name[VM_NAME_MAX + 1];
	uint32_t id;

	CHECK(vm_resolve_target("12", &id, name, sizeof(name)) == 0 && id == 12 && !name[0]);
	CHECK(vm_resolve_target("12abc", &id, name, sizeof(name)) == 0 && id == 0 &&
	      strcmp(name, "12abc") == 0);
	CHECK(vm_resolve_target("web", &id, name, sizeof(name)) == 0 && strcmp(name, "web") == 0);
	CHECK(vm_resolve_target("", &id, name, sizeof(name)) == -1);
}

static int dummy(int argc, char *argv[]) { return 0; }

static void
test_command_prefixes(void)
{
	static const struct command table[] = {
		{ "start", dummy, "" }, { "status", dummy, "" }, { "stop", dummy, "" },
		{ "show", dummy, "" }, { "log", dummy, "" }, { "load", dummy, "" },
	};
	size_t n = sizeof(table) / sizeof(table[0]);
	int ambiguous;

	CHECK(command_find(table, n, "stat", &ambiguous) == &table[1]);
	CHECK(command_find(table, n, "star", &ambiguous) == &table[0]);
	CHECK(command_find(table, n, "sto", &ambiguous) == &table[2]);
	CHECK(command_find(table, n, "st", &ambiguous) == NULL && ambiguous);
	CHECK(command_find(table, n, "lo", &ambiguous) == NULL && ambiguous);
	CHECK(command_find(table, n, "log", &ambiguous) == &table[4]);
	CHECK(command_find(table, n, "x", &ambiguous) == NULL && !ambiguous);
	CHECK(command_find(table, n, "", &ambiguous) == NULL);
	CHECK(command_find(table, n, "starts", &ambiguous) == NULL);
}

int
main(void)
{
	RUN_TEST(test_msg_roundtrip_with_fd);
	RUN_TEST(test_msg_refuses_bad_records);
	RUN_TEST(test_readers_check_lengths);
	RUN_TEST(test_state_rules);
	RUN_TEST(test_permissions);
	RUN_TEST(test_reboot_loop);
	RUN_TEST(test_targets);
	RUN_TEST(test_command_prefixes);
	TEST_EXIT();
}
