/*
 * vmm's confinement and the identity range it hands out (vmm_confine.c).
 * vmm runs as the range's first uid/gid; the VM process in slot n as
 * first + 1 + n.  The parent checks the range at start and passes it down
 * in the environment (VMD_UID_RANGE=first:count), so vmm need not read
 * vm.conf.
 */
#ifndef VMD_VMM_CONFINE_H
#define VMD_VMM_CONFINE_H

#include <stddef.h>
#include <stdint.h>

#define VMD_UID_RANGE_ENV "VMD_UID_RANGE"

/* The namespaces vmm's child gives each VM process (vmm.c), and no others. */
#define VMM_VM_NAMESPACES \
	(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS)

struct vmm_identity {
	uint32_t first;
	uint32_t count; /* a power of two; first is a multiple of it */
};

/* 0, or -1 and why in err: an account or group inside the range. */
int vmm_check_uid_range(uint32_t first, uint32_t count, char *err, size_t errlen);
/* The range vmm was given (VMD_UID_RANGE, else the defaults). */
struct vmm_identity vmm_identity(void);
/* vmm, as root: becomes the range's first id with CAP_SETUID, CAP_SETGID, CAP_KILL and its filter. */
int vmm_confine(void);

#endif
