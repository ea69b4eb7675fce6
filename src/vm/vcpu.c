/*
 * vCPU threads.  Each runs KVM_RUN in a loop and hands port I/O and MMIO
 * exits to the I/O bus.  This is the hot path: no allocation, no logging in
 * the normal case.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common/log.h"
#include "vm/cpuid.h"
#include "vm/memory.h"
#include "vm/sandbox.h"
#include "vm/vcpu.h"
#include "vm/vm.h"
#include "vm/vm_ipc.h"

#define APIC_LVT0	  0x350
#define APIC_LVT1	  0x360
#define APIC_MODE_NMI	  0x4
#define APIC_MODE_EXTINT  0x7

/* LINT0 takes the 8259's interrupts, LINT1 the NMI, as on a PC. */
static int
vcpu_setup_lapic(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[APIC_LVT0];
	uint32_t *lvt1 = (uint32_t *)&lapic.regs[APIC_LVT1];

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -1;
	*lvt0 = (*lvt0 & ~0x700u) | APIC_MODE_EXTINT << 8;
	*lvt1 = (*lvt1 & ~0x700u) | APIC_MODE_NMI << 8;
	return ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic);
}

int
vcpu_create(struct vm *vm, struct vcpu *vcpu, int index, const struct kvm_cpuid2 *supported)
{
	struct kvm_cpuid2 *cpuid;
	int run_size, rc;

	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
	if (vcpu->fd < 0) {
		log_warn("vCPU %d: KVM_CREATE_VCPU", index);
		return -1;
	}
	run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	vcpu->run = run_size > 0 ? mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0)
				 : MAP_FAILED;
	if (vcpu->run == MAP_FAILED) {
		log_warn("vCPU %d: cannot map its run structure", index);
		return -1;
	}
	vcpu->run_size = (size_t)run_size;

	cpuid = calloc(1, sizeof(*cpuid) + supported->nent * sizeof(cpuid->entries[0]));
	if (cpuid == NULL)
		return -1;
	cpuid_for_vcpu(supported, cpuid, index, vm->ncpus);
	rc = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid);
	free(cpuid);
	if (rc < 0) {
		log_warn("vCPU %d: KVM_SET_CPUID2", index);
		return -1;
	}
	if (vcpu_setup_lapic(vcpu) < 0) {
		log_warn("vCPU %d: local APIC setup", index);
		return -1;
	}
	return 0;
}

static void
segment_flat(struct kvm_segment *seg, uint16_t selector, uint8_t type, int code64)
{
	*seg = (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.s = 1,
		.l = code64 ? 1 : 0,
		.db = code64 ? 0 : 1,
		.g = 1,
	};
}

int
vcpu_set_linux_entry(struct vcpu *vcpu, uint64_t entry, uint64_t boot_params)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -1;
	segment_flat(&sregs.cs, 0x10, 0xb, 1);
	segment_flat(&sregs.ds, 0x18, 0x3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = MEM_GDT;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.cr0 = 0x80000001 | 0x10 | 0x20; /* PG, PE, ET, NE */
	sregs.cr3 = MEM_PML4;
	sregs.cr4 = 0x20;		    /* PAE */
	sregs.efer = 0x500;		    /* LME, LMA */
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -1;

	regs.rflags = 0x2;
	regs.rip = entry;
	regs.rsi = boot_params;
	return ioctl(vcpu->fd, KVM_SET_REGS, &regs);
}

static void
vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		iobus_dispatch(&vcpu->vm->port_bus, run->io.port, data, run->io.size, is_write);
}

static void
vcpu_handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	iobus_dispatch(&vcpu->vm->mmio_bus, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
		       run->mmio.is_write);
}

static void
vcpu_fail(struct vcpu *vcpu, const char *what, unsigned long long detail)
{
	log_warnx("vCPU %d: %s (%#llx)", vcpu->index, what, detail);
	vcpu_dump_registers(vcpu);
	vm_request_exit(vcpu->vm, VM_EXIT_ERROR);
}

static void
vcpu_handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_exit(vcpu->vm, VM_EXIT_POWEROFF);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_exit(vcpu->vm, VM_EXIT_REBOOT);
		break;
	default:
		vcpu_fail(vcpu, "unexpected system event", vcpu->run->system_event.type);
	}
}

/* Returns false when the vCPU must stop. */
static bool
vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(vcpu);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault: what a PC does then is reset. */
		log_info("vCPU %d: triple fault, resetting", vcpu->index);
		vm_request_exit(vcpu->vm, VM_EXIT_REBOOT);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu_handle_system_event(vcpu);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vcpu_fail(vcpu, "cannot enter guest mode", run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_fail(vcpu, "KVM internal error", run->internal.suberror);
		return false;
	default:
		vcpu_fail(vcpu, "unexpected exit", run->exit_reason);
		return false;
	}
}

static void *
vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;

	if (vm_sandbox_thread(SANDBOX_ROLE_VCPU) < 0) {
		vm_request_exit(vm, VM_EXIT_ERROR);
		return NULL;
	}
	while (atomic_load(&vm->exit_status) < 0) {
		if (atomic_load(&vm->pause_requested))
			vm_pause_park(vcpu);
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				vcpu->run->immediate_exit = 0;
				continue;
			}
			log_warn("vCPU %d: KVM_RUN", vcpu->index);
			vcpu_dump_registers(vcpu);
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}
		if (!vcpu_handle_exit(vcpu))
			break;
	}
	return NULL;
}

int
vcpu_start(struct vcpu *vcpu)
{
	sigset_t all, old;
	int rc;

	/* The thread takes every signal blocked but the kick (see vm.c). */
	sigfillset(&all);
	sigdelset(&all, SIGNAL_VCPU_KICK);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		log_warn("vCPU %d: cannot start its thread", vcpu->index);
		return -1;
	}
	return 0;
}

void
vcpu_kick(struct vcpu *vcpu)
{
	/* immediate_exit covers a kick that lands before the thread enters KVM_RUN. */
	vcpu->run->immediate_exit = 1;
	pthread_kill(vcpu->thread, SIGNAL_VCPU_KICK);
}

void
vcpu_dump_registers(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		log_warn("vCPU %d: cannot read registers", vcpu->index);
		return;
	}
	log_warnx("vCPU %d: rip %016llx rsp %016llx rflags %08llx", vcpu->index, r.rip, r.rsp, r.rflags);
	log_warnx("  rax %016llx rbx %016llx rcx %016llx rdx %016llx", r.rax, r.rbx, r.rcx, r.rdx);
	log_warnx("  rsi %016llx rdi %016llx rbp %016llx r8  %016llx", r.rsi, r.rdi, r.rbp, r.r8);
	log_warnx("  cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %llx", s.cr0, s.cr2, s.cr3, s.cr4,
		  s.efer);
	log_warnx("  cs %04x base %llx l %u db %u", s.cs.selector, s.cs.base, s.cs.l, s.cs.db);
}
