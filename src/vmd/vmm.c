/*
 * The vmm process: runs as _vmd and does process control only.  For each
 * VM it forks and executes `vmd -V -F 3` (from the binary the parent opened)
 * with a socketpair on fd 3, passes it the parameters and descriptors the
 * parent sent, relays pause and unpause, signals it to stop, and reports
 * its start and exit.  When the parent goes away, every VM goes with it.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "vmd/vmd.h"

struct vmm_vm {
	TAILQ_ENTRY(vmm_vm) entry;
	struct vmm_env *env;
	uint32_t id;
	pid_t pid;
	int fd; /* the socket to the VM process */
	struct event *ev;
	struct msg_channel out; /* queued writes to it (set up at its first) */
};

/* The vmm process's environment. */
struct vmm_env {
	struct event_base *base;
	int parent_fd;
	int exe_fd;
	int debug, verbose;
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
			kill(vm->pid, SIGKILL);
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

static pid_t
vmm_exec_vm(struct vmm_env *env, int sock)
{
	char *argv[] = { "vmd", "-V", "-F", "3", NULL, NULL, NULL };
	int argc = 4;
	pid_t pid;

	if (env->debug)
		argv[argc++] = "-d";
	if (env->verbose)
		argv[argc++] = "-v";
	pid = fork();
	if (pid != 0)
		return pid;
	sock = fcntl(sock, F_DUPFD_CLOEXEC, 10);
	if (sock < 0 || dup2(sock, VMD_CHILD_FD) < 0)
		_exit(127);
	signal(SIGCHLD, SIG_DFL);
	fexecve(env->exe_fd, argv, environ);
	fprintf(stderr, "vmd vmm: cannot execute a VM process: %s\n", strerror(errno));
	_exit(127);
}

static void
vmm_start(struct vmm_env *env, struct msg *m)
{
	static struct msg_vm_start start;
	struct vmm_vm *vm;
	char err[512];
	int sv[2];

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
	vm->pid = vmm_exec_vm(env, sv[1]);
	close(sv[1]);
	if (vm->pid < 0)
		fatal("vmm: fork");
	vm->ev = event_new(env->base, vm->fd, EV_READ | EV_PERSIST, on_vm_message, vm);
	if (vm->ev == NULL || event_add(vm->ev, NULL) < 0)
		fatalx("vmm: cannot watch vm %u", vm->id);
	TAILQ_INSERT_TAIL(&env->vms, vm, entry);
	vmm_send_vm(vm, MSG_VM_PARAMS, &start.params, sizeof(start.params), NULL, 0);
	log_debug("vm %s: process %d", start.params.name, (int)vm->pid);
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
	kill(vm->pid, SIGKILL);
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
		kill(vm->pid, ev.status ? SIGKILL : SIGTERM);
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
		kill(vm->pid, SIGKILL);
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
		kill(vm->pid, SIGKILL);
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
