/*
 * The escape stand-in (tests/security/native-vmsandbox): a child takes the
 * VM process's real confinement — the identity and namespaces vmm gives it
 * (as vmm.c does), then vm_sandbox() itself, with a real tap and a pty among
 * its descriptors — and tries what a guest that escaped into it would.
 * Each attempt runs in a fresh confined child; the probe prints
 * `ok vmsandbox-NAME` or `FAIL vmsandbox-NAME: why` for each.
 * Built without sanitizers: seccomp and ASan do not mix.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <netinet/in.h>
#include <unistd.h>

#include "common/vmconf.h"
#include "net/tap.h"
#include "vm/sandbox.h"
#include "vm/vm.h"
#include "vmd/vmm_confine.h"

#define TAP_NAME "vmdsbx0"

static int tap_fd = -1, pty_fd = -1;
static pid_t other_vm = -1; /* another slot's confined process, host pid */
static int failures;

/* What an attack does; returns 0 when the kernel refused it, 1 when it worked. */
typedef int (*attack_fn)(void);

static int refused(long rc) { return rc < 0 ? 0 : 1; }

static int do_socket(void) { return refused(socket(AF_INET, SOCK_STREAM, 0)); }
static int do_unix_socket(void) { return refused(socket(AF_UNIX, SOCK_STREAM, 0)); }
static int do_connect(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(22), .sin_addr.s_addr = htonl(0x7f000001) };
	return refused(connect(0, (struct sockaddr *)&sin, sizeof(sin)));
}
static int do_open(void) { return refused(open("/etc/passwd", O_RDONLY)); }
static int do_proc_other(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)other_vm);
	return refused(open(path, O_RDONLY));
}
static int do_io_uring(void)
{
	struct io_uring_params p = { 0 };
	return refused(syscall(SYS_io_uring_setup, 4, &p));
}
static int do_execve(void)
{
	char *argv[] = { "/bin/sh", "-c", "true", NULL };
	return refused(execve("/bin/sh", argv, NULL));
}
static int do_ptrace(void) { return refused(ptrace(PTRACE_ATTACH, other_vm, NULL, NULL)); }
static int do_kill(void) { return refused(kill(other_vm, SIGKILL)); }
static int do_tgkill(void) { return refused(syscall(SYS_tgkill, other_vm, other_vm, SIGKILL)); }
static int do_prlimit(void)
{
	struct rlimit zero = { 0, 0 };
	return refused(prlimit(other_vm, RLIMIT_NOFILE, &zero, NULL));
}
static int do_tiocsti(void) { char c = 'x'; return refused(ioctl(pty_fd, TIOCSTI, &c)); }
static int do_tunsetpersist(void) { return refused(ioctl(tap_fd, TUNSETPERSIST, 1)); }
static int do_tunsetiff(void)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	snprintf(ifr.ifr_name, IFNAMSIZ, "evil0");
	return refused(ioctl(tap_fd, TUNSETIFF, &ifr));
}
static int do_siocsifname(void)
{
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, IFNAMSIZ, TAP_NAME);
	snprintf(ifr.ifr_newname, IFNAMSIZ, "evil0");
	return refused(ioctl(tap_fd, SIOCSIFNAME, &ifr));
}
static int do_siocsifhwaddr(void)
{
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, IFNAMSIZ, TAP_NAME);
	ifr.ifr_hwaddr.sa_family = 1;
	return refused(ioctl(tap_fd, SIOCSIFHWADDR, &ifr));
}
static int do_exec_memory(void)
{
	return refused((long)(intptr_t)mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
					    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == -1 ? -1 : 0);
}
static int do_fork(void) { return refused(fork()); }
static int do_setuid(void) { return refused(setresuid(0, 0, 0)); }
/* What the VM process needs keeps working: the tap's offloads, a signal to itself. */
static int do_tap_offload(void) { return ioctl(tap_fd, TUNSETOFFLOAD, 0) == 0 ? 0 : 2; }
static int do_raise_self(void)
{
	signal(SIGUSR1, SIG_IGN);
	return raise(SIGUSR1) == 0 ? 0 : 2;
}

/* The role filters load in threads, and narrow them: a vCPU thread may not talk to vmm. */
static void *role_thread(void *arg)
{
	enum sandbox_role role = *(enum sandbox_role *)arg;
	struct msghdr mh = { 0 };

	if (vm_sandbox_thread(role) < 0)
		return (void *)2;
	if (role == SANDBOX_ROLE_VCPU)
		sendmsg(0, &mh, 0);
	else
		ioctl(tap_fd, TUNSETOFFLOAD, 0);
	return NULL;
}
static int run_role_thread(enum sandbox_role role)
{
	pthread_t t;
	void *rc;

	if (pthread_create(&t, NULL, role_thread, &role) != 0 || pthread_join(t, &rc) != 0)
		return 2;
	return rc == NULL ? 1 : 2;
}
static int do_vcpu_thread(void) { return run_role_thread(SANDBOX_ROLE_VCPU); }
static int do_device_thread(void) { return run_role_thread(SANDBOX_ROLE_DEVICE); }

enum outcome { KILLED, REFUSED, WORKS };

struct attack {
	const char *name;
	attack_fn fn;
	enum outcome expect;
	const char *syscall; /* the name the filter's message gives, when KILLED */
};

static const struct attack attacks[] = {
	{ "socket", do_socket, KILLED, "socket" },
	{ "unix-socket", do_unix_socket, KILLED, "socket" },
	{ "connect", do_connect, KILLED, "connect" },
	{ "open", do_open, REFUSED, NULL },
	{ "proc-of-other-vm", do_proc_other, REFUSED, NULL },
	{ "io_uring_setup", do_io_uring, KILLED, "io_uring_setup" },
	{ "execve", do_execve, KILLED, "execve" },
	{ "ptrace-other-vm", do_ptrace, KILLED, "ptrace" },
	{ "kill-other-vm", do_kill, KILLED, "kill" },
	{ "tgkill-other-vm", do_tgkill, KILLED, "tgkill" },
	{ "prlimit-other-vm", do_prlimit, KILLED, "prlimit64" },
	{ "tiocsti", do_tiocsti, KILLED, "ioctl" },
	{ "tap-tunsetpersist", do_tunsetpersist, KILLED, "ioctl" },
	{ "tap-tunsetiff", do_tunsetiff, KILLED, "ioctl" },
	{ "tap-siocsifname", do_siocsifname, KILLED, "ioctl" },
	{ "tap-siocsifhwaddr", do_siocsifhwaddr, KILLED, "ioctl" },
	{ "exec-memory", do_exec_memory, KILLED, "mmap" },
	{ "fork", do_fork, KILLED, "clone" },
	{ "setuid-root", do_setuid, KILLED, "setresuid" },
	{ "vcpu-thread-sendmsg", do_vcpu_thread, KILLED, "sendmsg" },
	{ "device-thread-tap-ioctl", do_device_thread, KILLED, "ioctl" },
	{ "tap-offload-still-works", do_tap_offload, WORKS, NULL },
	{ "signal-self-still-works", do_raise_self, WORKS, NULL },
};

static void
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		fprintf(stderr, "probe: %s: %s\n", path, strerror(errno));
		_exit(90);
	}
	close(fd);
}

/*
 * What vmm's child does (vmm.c vmm_spawn_child): the slot's ids, no
 * capabilities, the namespaces; then pid 1 runs vm_sandbox() and fn.
 * Returns the confined process's wait status through the intermediate.
 */
static pid_t
spawn_confined(uint32_t uid, attack_fn fn, int err_fd)
{
	pid_t middle = fork();
	char map[32];
	int status;

	if (middle != 0)
		return middle;
	dup2(err_fd, STDERR_FILENO);
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0 ||
	    sandbox_keep_caps(0) < 0 || unshare(VMM_VM_NAMESPACES) < 0) {
		fprintf(stderr, "probe: confining: %s\n", strerror(errno));
		_exit(91);
	}
	snprintf(map, sizeof(map), "0 %u 1\n", uid);
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0); /* as vmm.c: the id change made /proc/self root's */
	write_file("/proc/self/setgroups", "deny");
	write_file("/proc/self/uid_map", map);
	write_file("/proc/self/gid_map", map);
	pid_t vm = fork();
	if (vm == 0) {
		if (getpid() != 1 || vm_sandbox("probe") < 0)
			_exit(92);
		_exit(fn());
	}
	if (vm < 0 || waitpid(vm, &status, 0) < 0)
		_exit(93);
	/* Passes the confined process's end on: a signal as 128 + its number. */
	_exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

static int
idle(void)
{
	struct timespec t = { 60, 0 };
	nanosleep(&t, NULL);
	return 0;
}

static void
run_attack(const struct attack *a, uint32_t uid)
{
	char out[512] = "";
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe(pipefd) < 0)
		exit(2);
	pid = spawn_confined(uid, a->fn, pipefd[1]);
	close(pipefd[1]);
	n = read(pipefd[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	int code = WEXITSTATUS(status);
	bool killed = code == VM_EXIT_FILTER || code == 128 + SIGSYS;
	const char *why = NULL;

	if (code >= 90 && code < 128)
		why = "the confinement itself failed";
	else if (a->expect == KILLED && !killed)
		why = code == 1 ? "the call worked" : "refused, not killed";
	else if (a->expect == KILLED && a->syscall) {
		char want[64];
		snprintf(want, sizeof(want), "killed by the system call filter: %s ", a->syscall);
		if (strstr(out, want) == NULL)
			why = "the filter's message does not name the call";
	} else if (a->expect == REFUSED && code != 0)
		why = killed ? "killed, not refused" : "the call worked";
	else if (a->expect == WORKS && code != 0)
		why = killed ? "killed by the filter" : "failed";
	if (why) {
		printf("FAIL vmsandbox-%s: %s (exit %d) %s", a->name, why, code, out);
		if (!*out || out[strlen(out) - 1] != '\n')
			printf("\n");
		failures++;
	} else {
		printf("ok vmsandbox-%s\n", a->name);
	}
}

/* The other VM seen from the host: its own uid, filter, no capabilities, namespaces, not dumpable. */
static void
check_status(pid_t pid, uint32_t uid)
{
	char path[64], line[256], ns_self[64] = "", ns_other[64] = "";
	unsigned seen = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL) {
		printf("FAIL vmsandbox-status: %s: %s\n", path, strerror(errno));
		failures++;
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned u;
		if (sscanf(line, "Uid: %u", &u) == 1 && u == uid)
			seen |= 1;
		if (strcmp(line, "Seccomp:\t2\n") == 0)
			seen |= 2;
		if (strcmp(line, "NoNewPrivs:\t1\n") == 0)
			seen |= 4;
		if (strcmp(line, "CapEff:\t0000000000000000\n") == 0)
			seen |= 8;
		if (strcmp(line, "CapPrm:\t0000000000000000\n") == 0)
			seen |= 16;
		if (strcmp(line, "CapBnd:\t0000000000000000\n") == 0)
			seen |= 32;
	}
	fclose(f);
	for (const char *const *ns = (const char *const[]){ "pid", "net", "mnt", "ipc", "uts", "user", NULL }; *ns; ns++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", *ns);
		ssize_t a = readlink(path, ns_self, sizeof(ns_self) - 1);
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, *ns);
		ssize_t b = readlink(path, ns_other, sizeof(ns_other) - 1);
		if (a < 0 || b < 0 || (ns_self[a] = 0, ns_other[b] = 0, strcmp(ns_self, ns_other) == 0)) {
			printf("FAIL vmsandbox-namespaces: %s namespace is the host's\n", *ns);
			failures++;
		}
	}
	if (seen != 63) {
		printf("FAIL vmsandbox-status: uid/Seccomp/NoNewPrivs/CapEff/CapPrm/CapBnd not as expected (%#x)\n", seen);
		failures++;
	} else {
		printf("ok vmsandbox-status (uid %u, Seccomp 2, NoNewPrivs 1, no capabilities, own namespaces)\n", uid);
	}
}

int
main(void)
{
	struct vmm_identity ids = { VMD_UID_FIRST_DEFAULT, VMD_UID_COUNT_DEFAULT };
	char err[TAP_ERROR_MAX];
	int slave, devnull[2];
	pid_t other_middle;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (vmm_check_uid_range(ids.first, ids.count, err, sizeof(err)) < 0) {
		printf("FAIL vmsandbox-range: %s\n", err);
		return 1;
	}
	printf("ok vmsandbox-range (%u, %u: no account or group in it)\n", ids.first, ids.count);
	if ((tap_fd = tap_open(TAP_NAME, err)) < 0) {
		printf("FAIL vmsandbox-tap: %s\n", err);
		return 1;
	}
	if (openpty(&pty_fd, &slave, NULL, NULL, NULL) < 0) {
		printf("FAIL vmsandbox-pty: %s\n", strerror(errno));
		return 1;
	}
	if (pipe(devnull) < 0)
		return 1;
	/* Another VM (slot 1): the target; its middle process knows its host pid as its child. */
	other_middle = spawn_confined(ids.first + 2, idle, devnull[1]);
	for (int i = 0; i < 100 && other_vm < 0; i++) {
		char path[64], line[64];
		FILE *f;
		usleep(20000);
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)other_middle, (int)other_middle);
		if ((f = fopen(path, "r")) != NULL) {
			if (fgets(line, sizeof(line), f))
				other_vm = atoi(line);
			fclose(f);
		}
	}
	if (other_vm <= 0) {
		char why[512] = "";
		ssize_t n = read(devnull[0], why, sizeof(why) - 1);
		why[n > 0 ? n : 0] = 0;
		printf("FAIL vmsandbox-other: the other VM did not start: %s\n", why);
		return 1;
	}
	usleep(200000); /* its filter is in */
	check_status(other_vm, ids.first + 2);
	for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++)
		run_attack(&attacks[i], ids.first + 1);
	if (kill(other_vm, 0) < 0) {
		printf("FAIL vmsandbox-other-survives: the other VM is gone\n");
		failures++;
	} else {
		printf("ok vmsandbox-other-survives\n");
	}
	kill(other_vm, SIGKILL);
	waitpid(other_middle, NULL, 0);
	return failures ? 1 : 0;
}
