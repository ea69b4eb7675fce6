/*
 * Locks a VM process in once it holds every descriptor it will use.  vmm
 * started it under a uid of its own, as pid 1 of new pid, network, mount,
 * ipc and uts namespaces, root of a user namespace of its own (vmm.c); here
 * its root becomes an empty tmpfs (pivot_root), it gives up every
 * capability it had in that namespace, and a seccomp filter allows only the
 * system calls running a VM takes.  ioctl is allowed by request number
 * (KVM's and the tap's, never a terminal's); signals and rlimits only on the
 * process itself; no io_uring (vmd does not use it).  vCPU and device
 * threads stack a narrower filter for their role when they start.  A refused
 * call logs its name and kills the process, so that a missing entry shows up
 * as a clear error, not a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "vm/sandbox.h"
#include "vm/vm.h"

static const int allowed_syscalls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv), SCMP_SYS(pwritev),
	SCMP_SYS(preadv2), SCMP_SYS(pwritev2), SCMP_SYS(lseek), SCMP_SYS(close),
	SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(dup3),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(fsync),
	SCMP_SYS(fdatasync), SCMP_SYS(fallocate), SCMP_SYS(ftruncate), SCMP_SYS(sync_file_range),
	SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(brk), SCMP_SYS(futex), SCMP_SYS(set_robust_list),
	SCMP_SYS(get_robust_list), SCMP_SYS(rseq), SCMP_SYS(rt_sigaction),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
	SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(restart_syscall),
	SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(select), SCMP_SYS(pselect6), SCMP_SYS(eventfd2), SCMP_SYS(pipe2),
	SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(getrandom), SCMP_SYS(sched_getaffinity), SCMP_SYS(sched_yield),
	SCMP_SYS(getrlimit), SCMP_SYS(uname), SCMP_SYS(membarrier),
};

/* Every request the VM process makes after it is locked in; nothing else. */
static const unsigned long vm_ioctls[] = {
	KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_GET_VCPU_MMAP_SIZE,
	KVM_GET_SUPPORTED_CPUID, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, KVM_CREATE_IRQCHIP,
	KVM_CREATE_PIT2, KVM_IRQ_LINE, KVM_CREATE_VCPU, KVM_SET_CPUID2, KVM_GET_LAPIC, KVM_SET_LAPIC,
	KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_REGS, KVM_SET_REGS, KVM_RUN,
	KVM_SET_USER_MEMORY_REGION, KVM_GET_CLOCK, KVM_SET_CLOCK, KVM_IOEVENTFD, KVM_IRQFD,
	KVM_SET_GSI_ROUTING,
	/* The tap after priv opened it: its name, header size and offloads, not TUNSETIFF/PERSIST. */
	TUNGETIFF, TUNSETVNETHDRSZ, TUNSETOFFLOAD,
	BLKGETSIZE64, /* a block device's size (disks root configured) */
};

/* What a vCPU thread never does: set up the VM, run an event loop, talk to vmm, start threads. */
static const unsigned long vcpu_refused_ioctls[] = {
	KVM_CREATE_VM, KVM_CREATE_VCPU, KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_SET_TSS_ADDR,
	KVM_SET_IDENTITY_MAP_ADDR, KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2, BLKGETSIZE64,
	TUNGETIFF, TUNSETVNETHDRSZ,
};
static const int vcpu_refused_syscalls[] = {
	SCMP_SYS(epoll_create1), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(clone), SCMP_SYS(pipe2), SCMP_SYS(timerfd_create),
};
/* A device thread: its descriptors' I/O, its eventfds, and INTx (KVM_IRQ_LINE) at most. */
static const int device_refused_syscalls[] = {
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(clone), SCMP_SYS(pipe2), SCMP_SYS(timerfd_create), SCMP_SYS(epoll_create1),
};

#define NELEM(a)	  (sizeof(a) / sizeof((a)[0]))
#define SYSCALL_NAMES_MAX 512

/* What the SIGSYS handler needs, filled before any filter is loaded. */
static struct {
	char names[SYSCALL_NAMES_MAX][24];
	char procname[64];
	bool locked; /* vm_sandbox ran: threads take their role's filter */
} sandbox_env;

uint32_t
sandbox_refuse_action(void)
{
	/* VMD_SECCOMP=log: allow and log refused calls (to the kernel's audit log), to find one. */
	const char *mode = getenv("VMD_SECCOMP");

	return mode && strcmp(mode, "log") == 0 ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
}

/*
 * Async-signal-safe: names the refused call and exits with the status that
 * says so (a signal would not do: pid 1 of a pid namespace cannot raise a
 * fatal one on itself).
 */
static void
on_refused_syscall(int sig, siginfo_t *info, void *context)
{
	const char *name = "?";
	char msg[160];
	int n;

	if (info->si_syscall >= 0 && info->si_syscall < SYSCALL_NAMES_MAX &&
	    sandbox_env.names[info->si_syscall][0])
		name = sandbox_env.names[info->si_syscall];
	n = snprintf(msg, sizeof(msg), "%s: killed by the system call filter: %s (%d)\n",
		     sandbox_env.procname, name, info->si_syscall);
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0) {
		/* nothing more to do */
	}
	_exit(VM_EXIT_FILTER);
}

void
sandbox_catch_refused(const char *procname)
{
	struct sigaction sa = { .sa_sigaction = on_refused_syscall, .sa_flags = SA_SIGINFO };

	snprintf(sandbox_env.procname, sizeof(sandbox_env.procname), "%s", procname);
	for (int i = 0; i < SYSCALL_NAMES_MAX; i++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, i);

		if (name)
			snprintf(sandbox_env.names[i], sizeof(sandbox_env.names[i]), "%s", name);
		free(name);
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);
}

int
sandbox_add_vm_syscalls(scmp_filter_ctx ctx)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < NELEM(allowed_syscalls); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed_syscalls[i], 0);
	return rc;
}

int
sandbox_add_vm_ioctls(scmp_filter_ctx ctx)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < NELEM(vm_ioctls); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, vm_ioctls[i]));
	return rc;
}

int
sandbox_keep_caps(uint64_t mask)
{
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { 0 };

	/* Dropping from the bounding set takes CAP_SETPCAP in effect: raise what is permitted first. */
	if (syscall(SYS_capget, &header, data) < 0)
		return -1;
	for (int i = 0; i < 2; i++)
		data[i].effective = data[i].permitted;
	if (syscall(SYS_capset, &header, data) < 0)
		return -1;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (!(mask & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
		    errno != EINVAL && errno != EPERM)
			return -1;
	for (int i = 0; i < 2; i++) {
		data[i].effective = data[i].permitted = (uint32_t)(mask >> (32 * i));
		data[i].inheritable = 0;
	}
	return (int)syscall(SYS_capset, &header, data);
}

/* The rules that hold for the whole VM process, with the arguments that need checking. */
static int
add_process_rules(scmp_filter_ctx ctx)
{
	pid_t self = getpid(); /* 1 in its pid namespace: the value the calls will carry */
	int rc = sandbox_add_vm_syscalls(ctx);

	if (rc == 0)
		rc = sandbox_add_vm_ioctls(ctx);
	/* isatty() is told "not a terminal"; no other terminal request gets through (TIOCSTI). */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, TCGETS));
	/* Signals and limits on itself only: the vCPU kicks, raise(). */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, self));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A0(SCMP_CMP_EQ, 0));
	/* No new code: memory is never made executable. */
	if (rc == 0)
		rc = sandbox_allow_no_exec_memory(ctx);
	/* Each thread stacks its role's filter (libseccomp sets NoNewPrivs again first). */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 0);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				      SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS));
	/* Threads only (vCPUs, device threads); no new processes. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	/* Libraries look for files now and then (glibc, libevent): in the empty root there are none. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOENT), SCMP_SYS(openat), 0);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOENT), SCMP_SYS(open), 0);
	/* glibc falls back from clone3 to clone when told it does not exist. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	return rc;
}

int
sandbox_allow_no_exec_memory(scmp_filter_ctx ctx)
{
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				  SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));

	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	return rc;
}

/* Loads ctx unless rc already says a rule failed; releases it either way. */
int
sandbox_load_filter(scmp_filter_ctx ctx, int rc)
{
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		errno = -rc;
		return -1;
	}
	return 0;
}

int
sandbox_vm_filter(void)
{
	scmp_filter_ctx ctx = seccomp_init(sandbox_refuse_action());

	if (ctx == NULL)
		return -1;
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return sandbox_load_filter(ctx, add_process_rules(ctx));
}

int
vm_sandbox_thread(enum sandbox_role role)
{
	uint32_t refuse = sandbox_refuse_action();
	scmp_filter_ctx ctx;
	int rc = 0;

	if (!sandbox_env.locked)
		return 0;
	/* Stacked on the process's filter: it can only take away. */
	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		return -1;
	if (role == SANDBOX_ROLE_VCPU) {
		for (size_t i = 0; rc == 0 && i < NELEM(vcpu_refused_syscalls); i++)
			rc = seccomp_rule_add(ctx, refuse, vcpu_refused_syscalls[i], 0);
		for (size_t i = 0; rc == 0 && i < NELEM(vcpu_refused_ioctls); i++)
			rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(ioctl), 1,
					      SCMP_A1(SCMP_CMP_EQ, vcpu_refused_ioctls[i]));
	} else {
		for (size_t i = 0; rc == 0 && i < NELEM(device_refused_syscalls); i++)
			rc = seccomp_rule_add(ctx, refuse, device_refused_syscalls[i], 0);
		if (rc == 0)
			rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(ioctl), 1,
					      SCMP_A1(SCMP_CMP_NE, KVM_IRQ_LINE));
	}
	if (sandbox_load_filter(ctx, rc) < 0) {
		log_warn("cannot load the %s thread's filter", role == SANDBOX_ROLE_VCPU ? "vCPU" : "device");
		return -1;
	}
	return 0;
}

/*
 * Its mount namespace is its own (vmm made it): an empty tmpfs becomes the
 * root and the host's tree is detached, so no path leads anywhere.
 */
static int
sandbox_empty_root(const char *name)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("vmd-empty", VMD_EMPTY_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=4k,nr_inodes=1,mode=0555") < 0 ||
	    chdir(VMD_EMPTY_DIR) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0 ||
	    mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		log_warn("vm %s: cannot make its root an empty tmpfs", name);
		return -1;
	}
	return 0;
}

/* Without the mount namespace (an old vmm, or tests): the empty directory. */
static int
sandbox_chroot(const char *name)
{
	if ((geteuid() != 0 && unshare(CLONE_NEWUSER) < 0) || chroot(VMD_EMPTY_DIR) < 0 ||
	    chdir("/") < 0) {
		log_warn("vm %s: chroot %s", name, VMD_EMPTY_DIR);
		return -1;
	}
	return 0;
}

int
vm_sandbox(const char *name)
{
	bool own_namespace = getpid() == 1; /* vmm started it as pid 1 of its namespaces */
	char procname[64];

	snprintf(procname, sizeof(procname), "vm %s", name);
	if ((own_namespace ? sandbox_empty_root(name) : sandbox_chroot(name)) < 0)
		return -1;
	if (sandbox_keep_caps(0) < 0) {
		log_warn("vm %s: cannot drop its capabilities", name);
		return -1;
	}
	/* The credential changes cleared these; vmm's death is still ours. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	sandbox_catch_refused(procname);
	if (sandbox_vm_filter() < 0) {
		log_warn("vm %s: seccomp", name);
		return -1;
	}
	sandbox_env.locked = true;
	return 0;
}
