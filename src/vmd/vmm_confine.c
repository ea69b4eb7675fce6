/*
 * vmm's own confinement.  It starts as root (proc_spawn's child) and keeps
 * only what creating VM processes under other identities takes: it becomes
 * the first uid/gid of vmd's range, keeps CAP_SETUID and CAP_SETGID (to give
 * each VM process its own id) and CAP_KILL (to stop VM processes, which it
 * does only through the pidfds of its own children), sets NoNewPrivs, is not
 * dumpable, and loads a filter.
 *
 * Filters are inherited across fork and exec, and a VM process stacks its
 * own on top of vmm's: so vmm's filter is the union of what vmm does, what
 * the spawning child does (ids, namespaces, exec of vmd), what the dynamic
 * loader of the new image does, and everything the VM process does later.
 * Keep it the union when either side changes.  Its limits: setresuid and
 * setresgid only into the range (one masked comparison: the range is an
 * aligned power of two), setgroups only to none, exec only of vmd's own
 * binary through its descriptor, no new namespaces but the VM's one set, no
 * sockets but AF_UNIX, no ptrace, no io_uring, no kill (pidfds only).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/vmconf.h"
#include "vm/sandbox.h"
#include "vm/vm.h"
#include "vmd/vmd.h"
#include "vmd/vmm_confine.h"

#define VMM_ALL_NAMESPACES                                                                         \
	(VMM_VM_NAMESPACES | CLONE_NEWCGROUP | 0x00000080 /* CLONE_NEWTIME */)

static bool
in_range(uint32_t id, uint32_t first, uint32_t count)
{
	return id >= first && id - first < count;
}

int
vmm_check_uid_range(uint32_t first, uint32_t count, char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;
	int rc = 0;

	setpwent();
	while (rc == 0 && (pw = getpwent()) != NULL)
		if (in_range(pw->pw_uid, first, count) || in_range(pw->pw_gid, first, count)) {
			snprintf(err, errlen,
				 "uid range %u %u: account %s (uid %u, gid %u) lies in it; choose another "
				 "with \"uid range\" in vm.conf",
				 first, count, pw->pw_name, pw->pw_uid, pw->pw_gid);
			rc = -1;
		}
	endpwent();
	setgrent();
	while (rc == 0 && (gr = getgrent()) != NULL)
		if (in_range(gr->gr_gid, first, count)) {
			snprintf(err, errlen,
				 "uid range %u %u: group %s (gid %u) lies in it; choose another with "
				 "\"uid range\" in vm.conf",
				 first, count, gr->gr_name, gr->gr_gid);
			rc = -1;
		}
	endgrent();
	return rc;
}

struct vmm_identity
vmm_identity(void)
{
	struct vmm_identity id = { VMD_UID_FIRST_DEFAULT, VMD_UID_COUNT_DEFAULT };
	const char *text = getenv(VMD_UID_RANGE_ENV);
	unsigned first, count;

	if (text && sscanf(text, "%u:%u", &first, &count) == 2 && count >= 4 &&
	    (count & (count - 1)) == 0 && first % count == 0 && first != 0) {
		id.first = first;
		id.count = count;
	}
	return id;
}

/* setresuid/setresgid: each of the three ids inside the range. */
static int
pin_ids_to_range(scmp_filter_ctx ctx, int syscall_nr, const struct vmm_identity *id)
{
	uint64_t mask = (uint32_t) ~(id->count - 1);

	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, syscall_nr, 3,
				SCMP_A0(SCMP_CMP_MASKED_EQ, mask, id->first),
				SCMP_A1(SCMP_CMP_MASKED_EQ, mask, id->first),
				SCMP_A2(SCMP_CMP_MASKED_EQ, mask, id->first));
}

/* What vmm, its spawning child and the loader of the new image do beyond the VM process's list. */
static const int spawn_syscalls[] = {
	SCMP_SYS(wait4), SCMP_SYS(waitid), SCMP_SYS(setsid), SCMP_SYS(capset), SCMP_SYS(capget),
	SCMP_SYS(prctl), SCMP_SYS(close_range), SCMP_SYS(dup2), SCMP_SYS(pidfd_send_signal),
	SCMP_SYS(arch_prctl), SCMP_SYS(set_tid_address), SCMP_SYS(access), SCMP_SYS(faccessat),
	SCMP_SYS(faccessat2), SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getcwd),
	SCMP_SYS(statfs), SCMP_SYS(fstatfs), SCMP_SYS(sysinfo), SCMP_SYS(getppid), SCMP_SYS(getpgrp),
	SCMP_SYS(getresuid), SCMP_SYS(getresgid), SCMP_SYS(getgroups), SCMP_SYS(chdir),
	SCMP_SYS(fchdir), SCMP_SYS(umask), SCMP_SYS(pipe), SCMP_SYS(mmap), SCMP_SYS(mprotect),
	SCMP_SYS(connect), SCMP_SYS(setrlimit), SCMP_SYS(getpriority), SCMP_SYS(seccomp),
	/* The VM process's own root: a tmpfs in its mount namespace (vmm lacks CAP_SYS_ADMIN for it). */
	SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root),
};

static int
add_vmm_rules(scmp_filter_ctx ctx, const struct vmm_identity *id)
{
	int rc = sandbox_add_vm_syscalls(ctx);

	for (size_t i = 0; rc == 0 && i < sizeof(spawn_syscalls) / sizeof(spawn_syscalls[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, spawn_syscalls[i], 0);
	if (rc == 0)
		rc = sandbox_add_vm_ioctls(ctx);
	if (rc == 0) /* isatty(), on the spawning child's stderr */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, TCGETS));
	if (rc == 0)
		rc = pin_ids_to_range(ctx, SCMP_SYS(setresuid), id);
	if (rc == 0)
		rc = pin_ids_to_range(ctx, SCMP_SYS(setresgid), id);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setgroups), 1, SCMP_A0(SCMP_CMP_EQ, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unshare), 1,
				      SCMP_A0(SCMP_CMP_EQ, VMM_VM_NAMESPACES));
	/* fork, the VM process's clone (CLONE_PARENT | CLONE_PIDFD) and threads: no namespaces. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, VMM_ALL_NAMESPACES, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* Only vmd itself, through the descriptor the parent opened. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(execveat), 2,
				      SCMP_A0(SCMP_CMP_EQ, VMD_EXE_FD),
				      SCMP_A4(SCMP_CMP_EQ, AT_EMPTY_PATH));
	/* The loader's libraries, /dev/null and the child's id maps; never a new file. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, O_CREAT | __O_TMPFILE, 0));
	/* AF_UNIX only (syslog's /dev/log, socketpairs); any other family is refused, not fatal. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
				      SCMP_A0(SCMP_CMP_NE, AF_UNIX));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
				      SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	/*
	 * A VM process kicks its own vCPU threads, and it is pid 1 of its pid
	 * namespace.  vmm never calls tgkill (it signals through pidfds); only
	 * the kick signal is allowed, so vmm holding CAP_KILL cannot send the
	 * host's init anything that init acts on (SIGUSR1 to pid 1 is
	 * ignored unless init handles it: systemd does not).
	 */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 2, SCMP_A0(SCMP_CMP_EQ, 1),
				      SCMP_A2(SCMP_CMP_EQ, SIGNAL_VCPU_KICK));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A0(SCMP_CMP_EQ, 0));
	return rc;
}

static int
vmm_filter(const struct vmm_identity *id)
{
	scmp_filter_ctx ctx = seccomp_init(sandbox_refuse_action());

	if (ctx == NULL)
		return -1;
	return sandbox_load_filter(ctx, add_vmm_rules(ctx, id));
}

int
vmm_confine(void)
{
	const uint64_t keep = (1ULL << CAP_SETUID) | (1ULL << CAP_SETGID) | (1ULL << CAP_KILL);
	struct vmm_identity id = vmm_identity();

	if (geteuid() != 0) {
		log_warnx("vmm: not started as root: cannot take its identity");
		return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(id.first, id.first, id.first) < 0 || setresuid(id.first, id.first, id.first) < 0 ||
	    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
		log_warn("vmm: cannot become uid %u", id.first);
		return -1;
	}
	if (sandbox_keep_caps(keep) < 0) {
		log_warn("vmm: cannot reduce its capabilities");
		return -1;
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* The parent's death ends vmm (the id change cleared it), and with vmm every VM. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	sandbox_catch_refused("vmd vmm");
	if (vmm_filter(&id) < 0) {
		log_warn("vmm: cannot load its system call filter");
		return -1;
	}
	return 0;
}
