/*
 * Locks a VM process in once it holds every descriptor it will use: its
 * root becomes an empty directory, and a seccomp filter allows only the
 * system calls that running a VM takes (KVM ioctls, I/O on its descriptors,
 * memory, threads, events).  A refused call logs its number and ends the
 * process, so that a missing entry shows up as a clear error, not a hang.
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proto.h"
#include "vm/vm.h"
#include "vm/vm_ipc.h"

static const int allowed_syscalls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv), SCMP_SYS(pwritev),
	SCMP_SYS(preadv2), SCMP_SYS(pwritev2), SCMP_SYS(lseek), SCMP_SYS(close),
	SCMP_SYS(ioctl), SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(dup3),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(fsync),
	SCMP_SYS(fdatasync), SCMP_SYS(fallocate), SCMP_SYS(ftruncate), SCMP_SYS(sync_file_range),
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(brk), SCMP_SYS(futex), SCMP_SYS(set_robust_list),
	SCMP_SYS(get_robust_list), SCMP_SYS(rseq), SCMP_SYS(rt_sigaction),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
	SCMP_SYS(tgkill), SCMP_SYS(tkill), SCMP_SYS(getpid), SCMP_SYS(gettid),
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
	SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(uname),
	SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
	SCMP_SYS(membarrier),
};

/* Async-signal-safe: says which call was refused, then ends the process. */
static void
on_refused_syscall(int sig, siginfo_t *info, void *context)
{
	char msg[80];
	int n = snprintf(msg, sizeof(msg), "vmd vm: seccomp: system call %d refused\n",
			 info->si_syscall);

	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0) {
		/* nothing more to do */
	}
	_exit(VM_EXIT_ERROR);
}

static int
sandbox_seccomp(void)
{
	struct sigaction sa = { .sa_sigaction = on_refused_syscall, .sa_flags = SA_SIGINFO };
	scmp_filter_ctx ctx;
	int rc = 0;

	sigaction(SIGSYS, &sa, NULL);
	/* VMD_SECCOMP=log: allow and log refused calls (to the kernel's audit log), to find one. */
	const char *mode = getenv("VMD_SECCOMP");

	ctx = seccomp_init(mode && strcmp(mode, "log") == 0 ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	if (ctx == NULL)
		return -1;
	for (size_t i = 0; rc == 0 && i < sizeof(allowed_syscalls) / sizeof(allowed_syscalls[0]);
	     i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed_syscalls[i], 0);
	/* Threads only (vCPUs, device threads); no new processes. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	/*
	 * Libraries look for files now and then (glibc, libevent): in the empty
	 * chroot there are none, and they are told so.
	 */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOENT), SCMP_SYS(openat), 0);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOENT), SCMP_SYS(open), 0);
	/* glibc falls back from clone3 to clone when told it does not exist. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
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
vm_sandbox(const char *name)
{
	/*
	 * The process is already _vmd (vmm's user); a user namespace of its
	 * own gives it the right to chroot and nothing over anyone else.
	 */
	if (geteuid() != 0 && unshare(CLONE_NEWUSER) < 0) {
		log_warn("vm %s: cannot enter a user namespace for the chroot", name);
		return -1;
	}
	if (chroot(VMD_EMPTY_DIR) < 0 || chdir("/") < 0) {
		log_warn("vm %s: chroot %s", name, VMD_EMPTY_DIR);
		return -1;
	}
	/* The new namespace's credentials cleared these; vmm's death is still ours. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (sandbox_seccomp() < 0) {
		log_warn("vm %s: seccomp", name);
		return -1;
	}
	return 0;
}
