/*
 * The daemon's processes, one row each in procs[] (DESIGN.md's table; vmd.8
 * says it in words), and the setup every child shares.  The parent forks and
 * executes its own binary as `vmd -X name [-d] [-v...]` with the socket back
 * to it on fd 3 (and what its row passes on fd 4), so that each child starts
 * from a clean image; proc_run() then confines it as its row says, runs its
 * main, and watches the parent's socket until it closes.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/log.h"
#include "vmd/vmd.h"

#define CAP(c) (UINT64_C(1) << (c))

/*
 * The parent opens files with their owners' rights (setfsuid, setgroups),
 * root's VMs' files as root (the DAC capabilities), gives a VM's tty to
 * its owner (CAP_CHOWN) and signals its children, which run as other users
 * (CAP_KILL).  Nothing else: no CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_MODULE,
 * CAP_SYS_PTRACE, CAP_SYS_RAWIO...
 */
#define PARENT_CAPS                                                                   \
	(CAP(CAP_SETUID) | CAP(CAP_SETGID) | CAP(CAP_DAC_OVERRIDE) |                  \
	 CAP(CAP_DAC_READ_SEARCH) | CAP(CAP_FOWNER) | CAP(CAP_CHOWN) | CAP(CAP_KILL))

/* vmm confines itself in vmm_main (vmm_confine.c): nothing to do before. */
static int
vmm_confine_in_main(void)
{
	return 0;
}

const struct vmd_proc procs[PROC_MAX] = {
	[PROC_PARENT] = {
		.name = "parent",
		.caps = PARENT_CAPS,
		.filter = filter_parent,
		.confine = parent_confine,
	},
	/*
	 * Taps, bridges and their addresses: CAP_NET_ADMIN is all rtnetlink and
	 * TUNSETIFF take.  It opens only world-readable files (/dev/net/tun,
	 * /sys/class/net), so it could open them as nobody (files_as_nobody);
	 * not yet: in the test box its taps then failed with EPERM (to be found).
	 */
	[PROC_PRIV] = {
		.name = "priv",
		.caps = CAP(CAP_NET_ADMIN),
		.death_signal = SIGTERM, /* so that its bridges go too */
		.filter = filter_priv,
		.confine = priv_confine,
		.main = priv_main,
		.dispatch = priv_dispatch,
		.parent_gone = priv_parent_gone,
		.parent_dispatch = vmd_dispatch_priv,
	},
	/*
	 * Its identity, root and filter are vmm_confine()'s, which vmm_main
	 * calls once it has opened what it keeps (/dev/null for the VMs' stdio).
	 */
	[PROC_VMM] = {
		.name = "vmm",
		.death_signal = SIGKILL,
		.passes = PROC_PASS_EXECUTABLE,
		.confine = vmm_confine_in_main,
		.main = vmm_main,
		.dispatch = vmm_dispatch,
		.parent_gone = vmm_parent_gone,
		.parent_dispatch = vmd_dispatch_vmm,
	},
	[PROC_CONTROL] = {
		.name = "control",
		.user = VMD_USER,
		.empty_root = true,
		.death_signal = SIGKILL,
		.passes = PROC_PASS_CONTROL_SOCKET,
		.filter = filter_control,
		.confine = control_confine,
		.main = control_main,
		.dispatch = control_dispatch,
		.parent_dispatch = vmd_control_message,
	},
	/* Spawned by vmm (vmm_exec_vm), confined by vm_sandbox() once it holds its descriptors. */
	[PROC_VM] = {
		.name = "vm",
		.empty_root = true,
		.death_signal = SIGKILL,
		.spawned_by = PROC_VMM,
	},
};

int
proc_lookup_user(uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(VMD_USER);

	if (pw == NULL)
		return -1;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/* Moves fd to want (closing whatever was there), keeping it across exec. */
static void
proc_place_fd(int fd, int want)
{
	if (dup2(fd, want) < 0)
		_exit(127);
}

pid_t
proc_spawn(const char *name, int exe_fd, int sock, int extra_fd, int debug, int verbose)
{
	char *argv[8];
	int argc = 0;
	pid_t pid;

	pid = fork();
	if (pid != 0)
		return pid;
	/* The child: fd 3 the socket, fd 4 the extra descriptor, then exec. */
	sock = fcntl(sock, F_DUPFD_CLOEXEC, 10);
	exe_fd = fcntl(exe_fd, F_DUPFD_CLOEXEC, 10);
	if (extra_fd >= 0)
		extra_fd = fcntl(extra_fd, F_DUPFD_CLOEXEC, 10);
	if (sock < 0 || exe_fd < 0)
		_exit(127);
	proc_place_fd(sock, VMD_CHILD_FD);
	if (extra_fd >= 0)
		proc_place_fd(extra_fd, VMD_EXE_FD);
	argv[argc++] = "vmd";
	argv[argc++] = "-X";
	argv[argc++] = (char *)name;
	if (debug)
		argv[argc++] = "-d";
	if (verbose > 1)
		argv[argc++] = "-vv";
	else if (verbose)
		argv[argc++] = "-v";
	argv[argc] = NULL;
	fexecve(exe_fd, argv, environ);
	fprintf(stderr, "vmd: cannot execute the %s process: %s\n", name, strerror(errno));
	_exit(127);
}

/*
 * The parent's socket: verbosity changes are every child's, anything else
 * goes to the child's dispatcher.  When it closes, the parent is gone and
 * so is the child, once its row's parent_gone has cleaned up.
 */
static void
proc_on_parent(evutil_socket_t fd, short what, void *arg)
{
	struct proc_child *child = arg;
	const struct vmd_proc *p = child->proc;
	struct msg_vm_event ev;
	struct msg m;
	int rc;

	while ((rc = msg_recv(child->parent_fd, &m, &child->buf)) > 0) {
		if (m.hdr.type == MSG_LOG_VERBOSE) {
			if (msg_read_vm_event(&m, &ev) < 0)
				fatalx("malformed %s message from the parent", msg_type_name(m.hdr.type));
			log_set_verbose(ev.status);
			child->verbose = ev.status;
		} else {
			p->dispatch(child->env, &m);
		}
		msg_close_fds(&m);
	}
	if (rc < 0 && errno == EAGAIN)
		return;
	if (rc < 0)
		log_warn("the parent's socket");
	if (p->parent_gone != NULL)
		p->parent_gone(child->env);
	exit(rc == 0 ? 0 : 1);
}

/*
 * Every child's life: its log, its confinement (before it reads anything
 * from anyone), its main (its environment and events), the parent watch,
 * the event loop.
 */
int
proc_run(const struct vmd_proc *p, int debug, int verbose)
{
	static struct proc_child child;
	static char logname[32];
	struct event *parent_ev;

	snprintf(logname, sizeof(logname), "vmd %s", p->name);
	log_init(logname, debug, verbose);
	child.proc = p;
	child.parent_fd = VMD_CHILD_FD;
	child.passed_fd = p->passes != PROC_PASS_NOTHING ? VMD_EXE_FD : -1;
	child.debug = debug;
	child.verbose = verbose;
	signal(SIGPIPE, SIG_IGN);
	if (fcntl(child.parent_fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    (child.passed_fd >= 0 && fcntl(child.passed_fd, F_SETFD, FD_CLOEXEC) < 0))
		fatal("%s: its descriptors", p->name);
	child.base = event_base_new();
	if (child.base == NULL)
		fatalx("%s: event_base_new", p->name);
	if (p->confine() < 0)
		fatalx("%s: cannot confine itself", p->name);
	if (p->main(&child) < 0)
		fatalx("%s: cannot start", p->name);
	parent_ev = event_new(child.base, child.parent_fd, EV_READ | EV_PERSIST, proc_on_parent,
			      &child);
	if (parent_ev == NULL || event_add(parent_ev, NULL) < 0)
		fatalx("%s: cannot watch the parent's socket", p->name);
	event_base_dispatch(child.base);
	return 0;
}

/* vmd -X name [-d] [-v...]: a re-executed child, by its row's name. */
int
proc_main(int argc, char *argv[])
{
	int debug = 0, verbose = 0;

	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "-d") == 0)
			debug = 1;
		else if (strncmp(argv[i], "-v", 2) == 0)
			verbose = (int)strlen(argv[i]) - 1;
	}
	if (argc < 3)
		return 1;
	for (int id = 0; id < PROC_MAX; id++)
		if (procs[id].main != NULL && procs[id].spawned_by == PROC_PARENT &&
		    strcmp(argv[2], procs[id].name) == 0)
			return proc_run(&procs[id], debug, verbose);
	fprintf(stderr, "vmd: unknown process %s\n", argv[2]);
	return 1;
}
