/*
 * Confinement of the daemon's own processes (parent, control, priv): the
 * pieces a row of procs[] names -- an empty root, an identity, the
 * capabilities kept (the bounding set shrinks to them too, and the ambient
 * set is emptied), NoNewPrivs, and a seccomp filter per process.  vmm and
 * the VM processes have their own (vmm_confine.c, src/vm/sandbox.c).
 *
 * A filter's refused call raises SIGSYS; its handler names the call on
 * stderr and the process then dies of SIGSYS, which the parent reports as
 * "killed by its system call filter".  VMD_SECCOMP=log turns the default
 * action into "allow and log" (the kernel's audit log), to find a missing
 * entry.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "vm/sandbox.h"
#include "vmd/vmd.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PROC_NOBODY  65534 /* the kernel's overflow uid and gid: owns nothing */

/*
 * The name the SIGSYS handler prints.  Set once, before the filter is
 * loaded; a signal handler cannot be given an argument otherwise.
 */
static const char *refused_procname = "vmd";

/* Async-signal-safe: names the refused call, then dies of SIGSYS. */
static void
on_refused_syscall(int sig, siginfo_t *info, void *context)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	char msg[128];
	int n = snprintf(msg, sizeof(msg), "%s: system call %d refused by its filter\n",
			 refused_procname, info->si_syscall);

	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0) {
		/* nothing more to do */
	}
	/* SIGSYS is blocked in its handler: it is delivered, as a death, on return. */
	sigaction(SIGSYS, &dfl, NULL);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGSYS);
}

/* The action for a call the allow-list does not name. */
static uint32_t
refused_action(void)
{
	const char *mode = getenv("VMD_SECCOMP");

	return mode && strcmp(mode, "log") == 0 ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
}

static int
allow_all(scmp_filter_ctx ctx, const int *calls, size_t n)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
	return rc;
}

static int
act_all(scmp_filter_ctx ctx, uint32_t action, const int *calls, size_t n)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = seccomp_rule_add(ctx, action, calls[i], 0);
	return rc;
}

/* What every confined child's event loop, memory and messages take. */
static const int child_syscalls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(close), SCMP_SYS(fcntl), SCMP_SYS(lseek), SCMP_SYS(dup),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
	SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2), SCMP_SYS(poll),
	SCMP_SYS(ppoll), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	SCMP_SYS(brk), SCMP_SYS(futex), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack), SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(restart_syscall),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getrandom),
	SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
};

/*
 * The rules every child's filter shares: the calls above; memory never made
 * executable; signals to itself only; files and sockets looked for by
 * glibc (the time zone, syslog's reconnection) are "not there".
 */
static int
filter_child_base(scmp_filter_ctx ctx)
{
	pid_t self = getpid();
	int rc = allow_all(ctx, child_syscalls, ARRAY_LEN(child_syscalls));

	if (rc == 0)
		rc = sandbox_allow_no_exec_memory(ctx);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
				      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
	return rc;
}

static scmp_filter_ctx
filter_new(const char *procname, uint32_t default_action)
{
	struct sigaction sa = { .sa_sigaction = on_refused_syscall, .sa_flags = SA_SIGINFO };

	refused_procname = procname;
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return NULL;
	return seccomp_init(default_action);
}

/*
 * control: its listening socket (fd 4: accept4 there only), its clients'
 * and the parent's sockets, the event loop, memory.  No open (ENOENT), no
 * socket or connect (EPERM), and nothing else: no ioctl, exec, ptrace,
 * io_uring, kill of another process.
 */
int
filter_control(void)
{
	scmp_filter_ctx ctx = filter_new("vmd control", refused_action());
	int rc;

	if (ctx == NULL)
		return -1;
	rc = filter_child_base(ctx);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(accept4), 1,
				      SCMP_A0(SCMP_CMP_EQ, VMD_EXE_FD));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getsockopt), 1,
				      SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(shutdown), 0);
	if (rc == 0)
		rc = act_all(ctx, SCMP_ACT_ERRNO(ENOENT),
			     (const int[]){ SCMP_SYS(open), SCMP_SYS(openat) }, 2);
	if (rc == 0)
		rc = act_all(ctx, SCMP_ACT_ERRNO(EPERM),
			     (const int[]){ SCMP_SYS(socket), SCMP_SYS(connect) }, 2);
	return sandbox_load_filter(ctx, rc);
}

/* The ioctls network setup takes (src/net/netif.c, glibc's if_nametoindex). */
static const unsigned long priv_ioctls[] = {
	SIOCBRADDBR, SIOCBRDELBR, SIOCBRADDIF, SIOCBRDELIF, SIOCGIFFLAGS, SIOCSIFFLAGS,
	SIOCSIFADDR, SIOCSIFNETMASK, SIOCGIFINDEX, SIOCGIFNAME, TUNSETIFF, TUNGETIFF,
	TUNSETVNETHDRSZ, TUNSETOFFLOAD, FIOCLEX,
};

static const int priv_syscalls[] = {
	SCMP_SYS(openat), SCMP_SYS(bind), SCMP_SYS(getsockname), SCMP_SYS(setsockopt),
	SCMP_SYS(getsockopt), SCMP_SYS(getdents64), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
};

/*
 * priv: the children's base, plus what network setup takes: sockets of the
 * netlink and IP families (for rtnetlink and interface ioctls), the ioctls
 * above and no other, and open (for /dev/net/tun and /sys/class/net; a
 * filter cannot see a path).  A unix socket is refused (EPERM): a root
 * process must not reach the host's root-only services.
 */
int
filter_priv(void)
{
	static const int families[] = { AF_NETLINK, AF_INET, AF_INET6 };
	scmp_filter_ctx ctx = filter_new("vmd priv", refused_action());
	int rc;

	if (ctx == NULL)
		return -1;
	rc = filter_child_base(ctx);
	if (rc == 0)
		rc = allow_all(ctx, priv_syscalls, ARRAY_LEN(priv_syscalls));
	for (size_t i = 0; rc == 0 && i < ARRAY_LEN(families); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	for (size_t i = 0; rc == 0 && i < ARRAY_LEN(priv_ioctls); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu,
					      (scmp_datum_t)(priv_ioctls[i] & 0xffffffffu)));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOENT), SCMP_SYS(open), 0);
	return sandbox_load_filter(ctx, rc);
}

/*
 * The parent does too much for an allow-list (it parses, opens files with
 * users' rights, holds ptys), so its filter is a deny-list of what it never
 * does once its children run: no exec, no tracing or reading another
 * process, no mounts, namespaces, modules, kexec, io_uring, bpf, keys, and
 * no TIOCSTI on the ptys it holds.
 */
static const int parent_refused[] = {
	SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv),
	SCMP_SYS(process_vm_writev), SCMP_SYS(process_madvise), SCMP_SYS(pidfd_getfd),
	SCMP_SYS(kcmp), SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root),
	SCMP_SYS(chroot), SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(fsopen),
	SCMP_SYS(fsconfig), SCMP_SYS(fsmount), SCMP_SYS(fspick), SCMP_SYS(mount_setattr),
	SCMP_SYS(unshare), SCMP_SYS(setns), SCMP_SYS(init_module), SCMP_SYS(finit_module),
	SCMP_SYS(delete_module), SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load),
	SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
	SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd), SCMP_SYS(keyctl),
	SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(swapon), SCMP_SYS(swapoff),
	SCMP_SYS(reboot), SCMP_SYS(iopl), SCMP_SYS(ioperm), SCMP_SYS(acct),
	SCMP_SYS(settimeofday), SCMP_SYS(clock_settime), SCMP_SYS(clock_adjtime),
	SCMP_SYS(adjtimex), SCMP_SYS(sethostname), SCMP_SYS(setdomainname),
	SCMP_SYS(open_by_handle_at), SCMP_SYS(quotactl), SCMP_SYS(personality),
	SCMP_SYS(syslog), SCMP_SYS(vhangup), SCMP_SYS(lookup_dcookie),
};

static const scmp_datum_t namespace_flags[] = {
	CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
	CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP,
};

int
filter_parent(void)
{
	uint32_t refused = refused_action();
	scmp_filter_ctx ctx = filter_new("vmd", SCMP_ACT_ALLOW);
	int rc;

	if (ctx == NULL)
		return -1;
	rc = act_all(ctx, refused, parent_refused, ARRAY_LEN(parent_refused));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, refused, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
	/* New processes, yes; new namespaces, no (one rule per flag: any one refuses). */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	for (size_t i = 0; rc == 0 && i < ARRAY_LEN(namespace_flags); i++)
		rc = seccomp_rule_add(ctx, refused, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, namespace_flags[i],
					      namespace_flags[i]));
	return sandbox_load_filter(ctx, rc);
}

/*
 * The bounding set loses every capability not in keep (so that nothing
 * executed later regains one) and the ambient set is emptied.  Needs
 * CAP_SETPCAP: it runs while the process is still root.
 */
static int
confine_bounding_set(uint64_t keep)
{
	for (int cap = 0; cap < 64; cap++)
		if (!(keep & (UINT64_C(1) << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
		    errno != EINVAL)
			return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	return 0;
}

/* The effective and permitted sets become keep; the inheritable set, empty. */
static int
confine_capability_sets(uint64_t keep)
{
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	data[0].effective = data[0].permitted = (uint32_t)keep;
	data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
	return (int)syscall(SYS_capset, &header, data);
}

/* Keeps only the capabilities in keep, in every set. */
int
confine_capabilities(uint64_t keep)
{
	if (confine_bounding_set(keep) < 0)
		return -1;
	return confine_capability_sets(keep);
}

/* Becomes uid and gid (every id; supplementary groups: gid only). */
static int
confine_identity(uid_t uid, gid_t gid)
{
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return -1;
	return 0;
}

/*
 * The common confinement of a root-started child, in the order the kernel
 * needs: the empty root (CAP_SYS_CHROOT), the bounding set (CAP_SETPCAP),
 * the identity (CAP_SETUID, CAP_SETGID), then the capabilities kept,
 * NoNewPrivs, the death signal (a change of credentials clears it) and the
 * filter, last.
 */
int
proc_confine(const struct vmd_proc *p)
{
	const char *what = "its root";
	struct passwd *pw = NULL;

	/* The account is looked up while /etc/passwd is still in sight. */
	if (p->user != NULL && (pw = getpwnam(p->user)) == NULL) {
		log_warnx("%s: no user %s", p->name, p->user);
		return -1;
	}
	if (p->empty_root && (chroot(VMD_EMPTY_DIR) < 0 || chdir("/") < 0))
		goto fail;
	what = "its bounding set";
	if (confine_bounding_set(p->caps) < 0)
		goto fail;
	/* A new uid keeps its permitted capabilities only when asked to. */
	what = "its identity";
	if (pw != NULL && ((p->caps != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) ||
			   confine_identity(pw->pw_uid, pw->pw_gid) < 0))
		goto fail;
	/* Needs CAP_SETUID; its filter then keeps it from going back to 0. */
	what = "nobody's file rights";
	if (p->files_as_nobody && (setgroups(0, NULL) < 0 || setfsgid(PROC_NOBODY) < 0 ||
				   setfsuid(PROC_NOBODY) < 0 ||
				   (uid_t)setfsuid((uid_t)-1) != PROC_NOBODY))
		goto fail;
	what = "its capabilities";
	if (confine_capability_sets(p->caps) < 0)
		goto fail;
	what = "NoNewPrivs";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_PDEATHSIG, p->death_signal, 0, 0, 0) < 0)
		goto fail;
	what = "its system call filter";
	if (p->filter != NULL && p->filter() < 0)
		goto fail;
	return 0;
fail:
	log_warn("%s: cannot set %s", p->name, what);
	return -1;
}

int
control_confine(void)
{
	return proc_confine(&procs[PROC_CONTROL]);
}

int
priv_confine(void)
{
	return proc_confine(&procs[PROC_PRIV]);
}

/*
 * The parent: its capabilities, NoNewPrivs and its filter, once its
 * children run (they inherit neither: each was forked before).
 */
int
parent_confine(void)
{
	return proc_confine(&procs[PROC_PARENT]);
}
