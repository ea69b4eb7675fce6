#ifndef VMD_VCPU_H
#define VMD_VCPU_H

#include <stdint.h>

struct vm;
struct vcpu;
struct kvm_cpuid2;

/* Creates vCPU index with its CPUID and local APIC set up. */
int vcpu_create(struct vm *vm, struct vcpu *vcpu, int index, const struct kvm_cpuid2 *cpuid);
/* Puts the boot vCPU in 64-bit mode at entry with boot_params in rsi. */
int vcpu_set_linux_entry(struct vcpu *vcpu, uint64_t entry, uint64_t boot_params);
int vcpu_start(struct vcpu *vcpu);
/* Makes a running vCPU leave KVM_RUN (it then sees the exit request). */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_dump_registers(struct vcpu *vcpu);

#endif
