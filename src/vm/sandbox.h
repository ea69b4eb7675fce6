/*
 * The VM process's confinement (sandbox.c), and the pieces vmm reuses: vmm's
 * own filter must allow everything a VM process does (filters are inherited
 * and stack), so it takes the VM's ioctl list from here.
 */
#ifndef VMD_SANDBOX_H
#define VMD_SANDBOX_H

#include <seccomp.h>
#include <stdint.h>

/* Thread roles: each installs its own, narrower filter when it starts. */
enum sandbox_role {
	SANDBOX_ROLE_VCPU,
	SANDBOX_ROLE_DEVICE,
};

/*
 * Locks in a VM process under the daemon, once it holds every descriptor:
 * an empty root (pivot_root into an empty tmpfs of its mount namespace), no
 * capabilities left, no new privileges, the main thread's filter.
 */
int vm_sandbox(const char *name);
/* The calling thread's filter for its role; a no-op outside vm_sandbox. */
int vm_sandbox_thread(enum sandbox_role role);
/* The VM process's filter alone (no root change): for tests. */
int sandbox_vm_filter(void);

/* Allows the system calls the VM process makes without argument checks. */
int sandbox_add_vm_syscalls(scmp_filter_ctx ctx);
/* Loads ctx unless rc (a rule's result) says otherwise; releases it.  0, or -1 with errno. */
int sandbox_load_filter(scmp_filter_ctx ctx, int rc);
/* Allows mmap and mprotect, never with PROT_EXEC: no new code.  A libseccomp result. */
int sandbox_allow_no_exec_memory(scmp_filter_ctx ctx);
/* Allows every ioctl request the VM process makes. */
int sandbox_add_vm_ioctls(scmp_filter_ctx ctx);
/* Keeps exactly the capabilities in mask (bits CAP_*), in every set. */
int sandbox_keep_caps(uint64_t mask);
/* SIGSYS: logs "PROCNAME: killed by the system call filter: NAME", then dies of it. */
void sandbox_catch_refused(const char *procname);
/* SCMP_ACT_TRAP, or SCMP_ACT_LOG with VMD_SECCOMP=log (to find a missing entry). */
uint32_t sandbox_refuse_action(void);

#endif
