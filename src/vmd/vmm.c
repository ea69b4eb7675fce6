/*
 * The vmm process: runs as the first id of vmd's range (vmm_confine.c) and
 * does process control only.  For each VM it starts `vmd -V -F 3` (from the
 * binary the parent opened) with a socketpair on fd 3 under an identity of
 * the VM's own and in namespaces of its own (vmm_spawn_child), passes it the
 * parameters and descriptors the parent sent, relays pause and unpause,
 * signals it to stop through its pidfd, and reports its start and exit.
 * When the parent goes away, every VM goes with it.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "vm/sandbox.h"
#include "vmd/vmd.h"
#include "vmd/vmm_confine.h"

/* A VM process's limits: no core, a bounded number of descriptors and tasks. */
#define VM_NOFILE_BASE	 256 /* plus a few per vCPU (its fd, kicks) */
#define VM_NOFILE_PER_CPU 4
#define VM_NPROC	 512 /* tasks of the VM's uid: vCPU and device threads */
#define VM_SPAWN_TIMEOUT_MS 5000
#define VM_REPORT_FD	 5 /* the spawning child's report socket, closed at exec */

struct vmm_vm {
	TAILQ_ENTRY(vmm_vm) entry;
	struct vmm_env *env;
	uint32_t id;
	pid_t pid;
	int pidfd; /* signals go here: vmm may signal only its own children */
	uint32_t slot; /* its identity: the range's first + 1 + slot */
	int fd; /* the socket to the VM process */
	struct event *ev;
	struct msg_channel out; /* queued writes to it (set up at its first) */
};

/* The vmm process's environment. */
struct vmm_env {
	struct event_base *base;
	int parent_fd;
	int exe_fd;
	int null_fd; /* /dev/null, for the VM processes' stdio */
	int debug, verbose;
	struct vmm_identity ids;
	uint8_t *slot_used; /* ids.count - 1 slots */
	TAILQ_HEAD(, vmm_vm) vms;
	struct msg_channel to_parent; /* queued writes: vmm never blocks on the parent */
	struct msg_buf buf;
	struct msg_buf vm_buf;
};

static struct vmm_vm *
vmm_find(struct vmm_env *env, uint32_t id)
{
	struct vmm_vm *vm;

	TAILQ_FOREACH(vm, &env->vms, entry)
		if (vm->id == id)
			return vm;
	return NULL;
}

/* Messages queued for the parent, or for a VM process, before it is broken. */
#define VMM_PARENT_QUEUE_MAX (64 * 1024)
#define VMM_VM_QUEUE_MAX     1024

static void
vmm_send_parent(struct vmm_env *env, uint32_t type, uint32_t id, pid_t pid, int status)
{
	struct msg_vm_event ev = { id, (int32_t)pid, status };

	if (msg_channel_send(&env->to_parent, type, id, &ev, sizeof(ev), NULL, 0) < 0)
		fatal("vmm: cannot write to the parent");
}

static void
on_parent_write_error(struct msg_channel *ch, int error, void *arg)
{
	if (error != 0) {
		errno = error;
		fatal("vmm: cannot write to the parent");
	}
}

static void
vmm_close_socket(struct vmm_vm *vm)
{
	if (vm->out.write_ev)
		msg_channel_release(&vm->out);
	if (vm->ev) {
		event_free(vm->ev);
		vm->ev = NULL;
	}
	if (vm->fd >= 0) {
		close(vm->fd);
		vm->fd = -1;
	}
}

/* Signals a VM process through its pidfd: never a pid that may have been reused. */
static void
vmm_signal(struct vmm_vm *vm, int sig)
{
	if (vm->pidfd >= 0 && syscall(SYS_pidfd_send_signal, vm->pidfd, sig, NULL, 0) < 0)
		log_warn("vm %u: cannot signal process %d", vm->id, (int)vm->pid);
}

/* The VM process's replies: pause and unpause results only. */
static void
on_vm_message(evutil_socket_t fd, short what, void *arg)
{
	struct vmm_vm *vm = arg;
	struct vmm_env *env = vm->env;
	struct msg_vm_event ev;
	struct msg m;
	int rc;

	while ((rc = msg_recv(vm->fd, &m, &env->vm_buf)) > 0) {
		if ((m.hdr.type != MSG_VMM_PAUSED && m.hdr.type != MSG_VMM_UNPAUSED) ||
		    msg_read_vm_event(&m, &ev) < 0) {
			/* A VM process that talks nonsense is not trusted to run. */
			log_warnx("vm %u: unexpected %s message: killing it", vm->id,
				  msg_type_name(m.hdr.type));
			msg_close_fds(&m);
			vmm_signal(vm, SIGKILL);
			vmm_close_socket(vm);
			return;
		}
		vmm_send_parent(env, m.hdr.type, vm->id, vm->pid, ev.status);
	}
	if (rc == 0 || errno != EAGAIN)
		vmm_close_socket(vm); /* it is exiting; SIGCHLD tells the rest */
}

static void vmm_send_vm(struct vmm_vm *, uint32_t type, const void *data, size_t len,
			const int *fds, int nfds);

/* The spawning child's last words: it has no log of its own. */
static void __attribute__((noreturn))
child_fail(uint32_t id, const char *what)
{
	fprintf(stderr, "vmd vmm: vm %u: cannot start its process: %s: %s\n", id, what, strerror(errno));
	_exit(127);
}

static int
write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* Root of the new user namespace is the VM's own id outside it, and nothing else is mapped. */
static int
map_namespace_ids(uint32_t uid)
{
	char map[32];

	snprintf(map, sizeof(map), "0 %u 1\n", uid);
	if (write_file("/proc/self/setgroups", "deny") < 0 || write_file("/proc/self/uid_map", map) < 0 ||
	    write_file("/proc/self/gid_map", map) < 0)
		return -1;
	return 0;
}

/* stdin and stdout on /dev/null; stderr stays a log file or pipe, never a terminal (TIOCSTI). */
static void
child_descriptors(struct vmm_env *env, uint32_t id, int sock, int report)
{
	if (dup2(env->null_fd, STDIN_FILENO) < 0 || dup2(env->null_fd, STDOUT_FILENO) < 0 ||
	    (isatty(STDERR_FILENO) && dup2(env->null_fd, STDERR_FILENO) < 0))
		child_fail(id, "/dev/null");
	sock = fcntl(sock, F_DUPFD_CLOEXEC, 10);
	report = fcntl(report, F_DUPFD_CLOEXEC, 10);
	if (sock < 0 || report < 0 || dup2(sock, VMD_CHILD_FD) < 0 ||
	    dup3(report, VM_REPORT_FD, O_CLOEXEC) < 0)
		child_fail(id, "its descriptors");
	/* 0-2, the socket, vmd's binary (close-on-exec) and the report socket (close-on-exec). */
	if (syscall(SYS_close_range, VM_REPORT_FD + 1, ~0U, 0) < 0)
		child_fail(id, "close_range");
}

static void
child_identity(uint32_t id, uint32_t uid, uint32_t cpus)
{
	struct rlimit none = { 0, 0 }, nproc = { VM_NPROC, VM_NPROC };
	rlim_t files = VM_NOFILE_BASE + (rlim_t)cpus * VM_NOFILE_PER_CPU;
	struct rlimit nofile = { files, files };

	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
		child_fail(id, "its identity");
	if (sandbox_keep_caps(0) < 0)
		child_fail(id, "dropping capabilities");
	if (setrlimit(RLIMIT_CORE, &none) < 0 || setrlimit(RLIMIT_NOFILE, &nofile) < 0 ||
	    setrlimit(RLIMIT_NPROC, &nproc) < 0)
		child_fail(id, "its limits");
}

/* Hands vmm the VM process's pid and pidfd. */
static void
child_report(uint32_t id, pid_t pid, int pidfd)
{
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &pid, sizeof(pid) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &pidfd, sizeof(int));
	if (sendmsg(VM_REPORT_FD, &mh, 0) != (ssize_t)sizeof(pid))
		child_fail(id, "reporting to vmm");
}

/*
 * The forked child: the VM's identity, no capabilities, its own session,
 * only its descriptors, limits, then new user, pid, network, mount, ipc and
 * uts namespaces.  Its own child (CLONE_PARENT makes it vmm's, so vmm reaps
 * it) is pid 1 of the new pid namespace and becomes the VM process; this one
 * reports it and exits.  sandbox.c finishes the job once the descriptors
 * are in: an empty root, no capabilities in the namespace, the filters.
 */
static void __attribute__((noreturn))
vmm_spawn_child(struct vmm_env *env, uint32_t id, uint32_t uid, uint32_t cpus, int sock, int report)
{
	char *argv[] = { "vmd", "-V", "-F", "3", NULL, NULL, NULL };
	int argc = 4, pidfd = -1;
	pid_t pid;

	if (env->debug)
		argv[argc++] = "-d";
	if (env->verbose)
		argv[argc++] = "-v";
	signal(SIGCHLD, SIG_DFL);
	if (setsid() < 0)
		child_fail(id, "setsid");
	child_descriptors(env, id, sock, report);
	child_identity(id, uid, cpus);
	if (unshare(VMM_VM_NAMESPACES) < 0)
		child_fail(id, "new namespaces");
	/*
	 * The id change made it non-dumpable, which gives /proc/self to root:
	 * dumpable just while it writes its own maps (nothing else runs as its uid yet).
	 */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	if (map_namespace_ids(uid) < 0)
		child_fail(id, "its user namespace's id maps");
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
	if (pid < 0)
		child_fail(id, "clone");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* vmm is its parent */
		fexecve(VMD_EXE_FD, argv, environ);
		child_fail(id, "exec");
	}
	child_report(id, pid, pidfd);
	_exit(0);
}

static int
vmm_receive_report(int fd, pid_t *pid, int *pidfd)
{
	char control[CMSG_SPACE(sizeof(int))];
	struct pollfd pfd = { fd, POLLIN, 0 };
	struct iovec iov = { pid, sizeof(*pid) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *c;

	if (poll(&pfd, 1, VM_SPAWN_TIMEOUT_MS) <= 0 ||
	    recvmsg(fd, &mh, MSG_CMSG_CLOEXEC) != (ssize_t)sizeof(*pid))
		return -1;
	c = CMSG_FIRSTHDR(&mh);
	if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(pidfd, CMSG_DATA(c), sizeof(int));
	return 0;
}

/* A slot is free while no process holds its id. */
static int
vmm_take_slot(struct vmm_env *env, uint32_t *slot)
{
	for (uint32_t i = 0; i < env->ids.count - 1; i++)
		if (!env->slot_used[i]) {
			env->slot_used[i] = 1;
			*slot = i;
			return 0;
		}
	return -1;
}

/* Starts the VM process for vm (its slot taken); -1 and the wait status of the failed child. */
/*
 * Waits for the spawning child.  One that reported has exited or is about to;
 * one that did not report is given a second to exit.  vmm may not kill() (its
 * filter: it signals only the pidfds of VM processes), so a child still stuck
 * after that is left to on_sigchld, which reaps strays.
 */
static void
vmm_reap_spawner(pid_t child, int reported, int *status)
{
	for (int tries = 0; tries < (reported < 0 ? 100 : 1000); tries++) {
		pid_t r = waitpid(child, status, reported < 0 ? WNOHANG : 0);

		if (r == child || (r < 0 && errno != EINTR))
			return;
		if (r == 0)
			usleep(10000);
	}
	log_warnx("vmm: spawning child %d is stuck; left to exit on its own", (int)child);
}

static int
vmm_exec_vm(struct vmm_env *env, struct vmm_vm *vm, uint32_t cpus, int sock, int *status)
{
	uint32_t uid = env->ids.first + 1 + vm->slot;
	int report[2], rc;
	pid_t child;

	*status = 1 << 8;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, report) < 0)
		return -1;
	child = fork();
	if (child == 0)
		vmm_spawn_child(env, vm->id, uid, cpus, sock, report[1]);
	close(report[1]);
	rc = child < 0 ? -1 : vmm_receive_report(report[0], &vm->pid, &vm->pidfd);
	close(report[0]);
	if (child > 0)
		vmm_reap_spawner(child, rc, status);
	if (rc < 0 && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
		*status = 1 << 8; /* it exited, but vmm got no VM process: a failure all the same */
	return rc;
}

static void
vmm_start(struct vmm_env *env, struct msg *m)
{
	static struct msg_vm_start start;
	struct vmm_vm *vm;
	char err[512];
	int sv[2], status;

	if (msg_read_vm_start(m, &start, err, sizeof(err)) < 0)
		fatalx("vmm: %s", err);
	if (vmm_find(env, start.vm_id) != NULL)
		fatalx("vmm: vm %u is already running", start.vm_id);
	vm = calloc(1, sizeof(*vm));
	if (vm == NULL || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fatal("vmm: vm %s", start.params.name);
	vm->env = env;
	vm->id = start.vm_id;
	vm->fd = sv[0];
	vm->pidfd = -1;
	if (vmm_take_slot(env, &vm->slot) < 0) {
		log_warnx("vm %s: every identity of the uid range is in use", start.params.name);
		status = 1 << 8;
	} else if (vmm_exec_vm(env, vm, start.params.cpus, sv[1], &status) < 0) {
		log_warnx("vm %s: cannot start its process", start.params.name);
		env->slot_used[vm->slot] = 0;
	} else {
		status = -1;
	}
	close(sv[1]);
	if (status != -1) {
		/* Reported like a process that died at once: the parent says so to the user. */
		close(vm->fd);
		free(vm);
		vmm_send_parent(env, MSG_VMM_STARTED, start.vm_id, 0, 0);
		vmm_send_parent(env, MSG_VMM_EXITED, start.vm_id, 0, status);
		return;
	}
	vm->ev = event_new(env->base, vm->fd, EV_READ | EV_PERSIST, on_vm_message, vm);
	if (vm->ev == NULL || event_add(vm->ev, NULL) < 0)
		fatalx("vmm: cannot watch vm %u", vm->id);
	TAILQ_INSERT_TAIL(&env->vms, vm, entry);
	vmm_send_vm(vm, MSG_VM_PARAMS, &start.params, sizeof(start.params), NULL, 0);
	log_debug("vm %s: process %d, uid %u", start.params.name, (int)vm->pid,
		  env->ids.first + 1 + vm->slot);
	vmm_send_parent(env, MSG_VMM_STARTED, vm->id, vm->pid, 0);
}

static void
on_vm_write_error(struct msg_channel *ch, int error, void *arg)
{
	struct vmm_vm *vm = arg;

	if (error != 0) {
		log_warnx("vm %u: cannot write to its process: %s", vm->id, strerror(error));
		vmm_close_socket(vm); /* it is exiting; SIGCHLD tells the rest */
	}
}

/*
 * Queues a message for the VM process.  One that does not read what it is
 * sent is not trusted to run: it is killed.
 */
static void
vmm_send_vm(struct vmm_vm *vm, uint32_t type, const void *data, size_t len, const int *fds,
	    int nfds)
{
	if (vm->fd < 0)
		return;
	if (vm->out.write_ev == NULL &&
	    msg_channel_init(&vm->out, vm->env->base, vm->fd, VMM_VM_QUEUE_MAX, on_vm_write_error,
			     vm) < 0)
		fatalx("vmm: cannot watch vm %u", vm->id);
	if (msg_channel_send(&vm->out, type, vm->id, data, len, fds, nfds) == 0)
		return;
	log_warn("vm %u: cannot pass %s: killing it", vm->id, msg_type_name(type));
	vmm_signal(vm, SIGKILL);
	vmm_close_socket(vm);
}

/* Passes a message for a VM on to its process, descriptors included. */
static void
vmm_forward(struct vmm_env *env, struct vmm_vm *vm, struct msg *m)
{
	vmm_send_vm(vm, m->hdr.type, m->data, m->hdr.len, m->fds, m->nfds);
}

void
vmm_dispatch(void *arg, struct msg *m)
{
	struct vmm_env *env = arg;
	struct msg_vm_event ev;
	struct msg_vm_fd fdmsg;
	struct vmm_vm *vm;

	if (m->hdr.type == MSG_VMM_START) {
		vmm_start(env, m);
		return;
	}
	if (m->hdr.type == MSG_VM_NIC) {
		struct msg_vm_nic nic;

		if (msg_read_vm_nic(m, &nic) < 0 || m->nfds != 0)
			fatalx("vmm: malformed interface message");
		if ((vm = vmm_find(env, nic.vm_id)) != NULL)
			vmm_forward(env, vm, m);
		return;
	}
	if (m->hdr.type == MSG_VM_FD) {
		if (msg_read_vm_fd(m, &fdmsg) < 0 || m->nfds != 1)
			fatalx("vmm: malformed descriptor message");
		if ((vm = vmm_find(env, fdmsg.vm_id)) != NULL)
			vmm_forward(env, vm, m);
		return;
	}
	if (msg_read_vm_event(m, &ev) < 0)
		fatalx("vmm: unexpected %s message", msg_type_name(m->hdr.type));
	if ((vm = vmm_find(env, ev.vm_id)) == NULL) {
		if (m->hdr.type == MSG_VMM_PAUSE || m->hdr.type == MSG_VMM_UNPAUSE)
			vmm_send_parent(env, m->hdr.type == MSG_VMM_PAUSE ? MSG_VMM_PAUSED
									  : MSG_VMM_UNPAUSED,
					ev.vm_id, 0, ESRCH);
		return;
	}
	switch (m->hdr.type) {
	case MSG_VMM_GO:
	case MSG_VMM_PAUSE:
	case MSG_VMM_UNPAUSE:
		vmm_forward(env, vm, m);
		break;
	case MSG_VMM_STOP:
		/* SIGTERM presses the power button; SIGKILL is the plug. */
		vmm_signal(vm, ev.status ? SIGKILL : SIGTERM);
		break;
	default:
		fatalx("vmm: unexpected %s message", msg_type_name(m->hdr.type));
	}
}

/* The parent is gone: no VM outlives it. */
void
vmm_parent_gone(void *arg)
{
	struct vmm_env *env = arg;
	struct vmm_vm *vm;

	TAILQ_FOREACH(vm, &env->vms, entry)
		vmm_signal(vm, SIGKILL);
}

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct vmm_env *env = arg;
	struct vmm_vm *vm;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		TAILQ_FOREACH(vm, &env->vms, entry)
			if (vm->pid == pid)
				break;
		if (vm == NULL)
			continue;
		TAILQ_REMOVE(&env->vms, vm, entry);
		vmm_close_socket(vm);
		close(vm->pidfd);
		env->slot_used[vm->slot] = 0;
		vmm_send_parent(env, MSG_VMM_EXITED, vm->id, pid, status);
		free(vm);
	}
}

static void
on_terminate(evutil_socket_t sig, short what, void *arg)
{
	struct vmm_env *env = arg;
	struct vmm_vm *vm;

	TAILQ_FOREACH(vm, &env->vms, entry)
		vmm_signal(vm, SIGKILL);
	exit(0);
}

/* Runs confined (proc_run, vmm_confine). */
int
vmm_main(struct proc_child *child)
{
	static struct vmm_env env;
	struct event *chld, *term;

	child->env = &env;
	env.base = child->base;
	env.parent_fd = child->parent_fd;
	env.exe_fd = child->passed_fd;
	env.debug = child->debug;
	env.verbose = child->verbose;
	TAILQ_INIT(&env.vms);
	env.ids = vmm_identity();
	env.slot_used = calloc(env.ids.count, 1);
	env.null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (env.slot_used == NULL || env.null_fd < 0)
		fatal("vmm: setting up");
	/* Its own confinement comes once /dev/null is open (procs[]' row leaves it to here). */
	if (vmm_confine() < 0)
		fatalx("vmm: cannot confine itself");
	chld = evsignal_new(env.base, SIGCHLD, on_sigchld, &env);
	term = evsignal_new(env.base, SIGTERM, on_terminate, &env);
	if (msg_channel_init(&env.to_parent, env.base, env.parent_fd, VMM_PARENT_QUEUE_MAX,
			     on_parent_write_error, &env) < 0 ||
	    !chld || !term || event_add(chld, NULL) < 0 || event_add(term, NULL) < 0) {
		log_warnx("vmm: cannot set up its events");
		return -1;
	}
	return 0;
}
