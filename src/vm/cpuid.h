#ifndef VMD_CPUID_H
#define VMD_CPUID_H

struct kvm_cpuid2;

/* KVM's supported CPUID leaves (calloc'd, room for the same count in a copy). */
struct kvm_cpuid2 *cpuid_supported(int kvm_fd);
/* out (with room for supported->nent entries) gets the leaves for vCPU index. */
void cpuid_for_vcpu(const struct kvm_cpuid2 *supported, struct kvm_cpuid2 *out, int index, int ncpus);

#endif
