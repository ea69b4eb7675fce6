/*
 * CPUID as KVM supports it, with the topology fields rewritten so that the
 * guest sees ncpus single-threaded cores in one package, and each vCPU its own
 * APIC id (= its index, as in the MADT).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vm/cpuid.h"
#include "vm/vm.h"

#define CPUID_MAX_ENTRIES 256

struct kvm_cpuid2 *
cpuid_supported(int kvm_fd)
{
	struct kvm_cpuid2 *cpuid;

	cpuid = calloc(1, sizeof(*cpuid) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
	if (cpuid == NULL)
		return NULL;
	cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		log_warn("KVM_GET_SUPPORTED_CPUID");
		free(cpuid);
		return NULL;
	}
	/* KVM emulates the TSC-deadline timer but leaves the bit to us; it spares the guest a calibration. */
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		for (unsigned i = 0; i < cpuid->nent; i++)
			if (cpuid->entries[i].function == 1)
				cpuid->entries[i].ecx |= 1u << 24;
	return cpuid;
}

static unsigned
bits_for(unsigned count)
{
	unsigned bits = 0;

	while ((1u << bits) < count)
		bits++;
	return bits;
}

static void
cpuid_set_topology_level(struct kvm_cpuid_entry2 *e, int index, int ncpus)
{
	/* Leaf 0xb / 0x1f: level 0 is SMT (one thread), level 1 is the cores. */
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (1 << 8) | 0;
		break;
	case 1:
		e->eax = bits_for((unsigned)ncpus);
		e->ebx = (unsigned)ncpus;
		e->ecx = (2 << 8) | 1;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index;
		break;
	}
	e->edx = (unsigned)index;
}

void
cpuid_for_vcpu(const struct kvm_cpuid2 *supported, struct kvm_cpuid2 *out, int index, int ncpus)
{
	out->nent = supported->nent;
	for (unsigned i = 0; i < supported->nent; i++) {
		struct kvm_cpuid_entry2 *e = &out->entries[i];

		*e = supported->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | (unsigned)index << 24 | (unsigned)ncpus << 16;
			if (ncpus > 1)
				e->edx |= 1u << 28; /* HTT: the count in ebx is valid */
			e->ecx |= 1u << 31;	    /* running under a hypervisor */
			break;
		case 4:
			/* Cores per package - 1; each cache shared by one thread. */
			e->eax = (e->eax & 0x3ff) | (unsigned)(ncpus - 1) << 26;
			break;
		case 0xb:
		case 0x1f:
			cpuid_set_topology_level(e, index, ncpus);
			break;
		case 0x80000008:
			e->ecx = (e->ecx & ~0xf0ffu) | (bits_for((unsigned)ncpus) << 12) | (unsigned)(ncpus - 1);
			break;
		case 0x8000001e:
			e->eax = (unsigned)index;
			e->ebx = (unsigned)index; /* core id, one thread per core */
			e->ecx = 0;
			break;
		}
	}
}
