/*
 * Guest RAM: one anonymous shared mapping, split around the hole below 4 GiB
 * into two KVM memory slots.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common/log.h"
#include "vm/memory.h"
#include "vm/vm.h"

static int
memory_add_slot(struct vm *vm, uint32_t slot, uint64_t gpa, uint8_t *host, uint64_t size, uint32_t flags)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		log_warn("KVM_SET_USER_MEMORY_REGION slot %u", slot);
		return -1;
	}
	return 0;
}

#define HUGE_PAGE_SIZE (2 * MIB)

/* Trims a mapping of size + HUGE_PAGE_SIZE bytes to size bytes on a huge page boundary. */
static void *
align_mapping(void *mapping, uint64_t size)
{
	uintptr_t start = (uintptr_t)mapping;
	uintptr_t aligned = (start + HUGE_PAGE_SIZE - 1) & ~(uintptr_t)(HUGE_PAGE_SIZE - 1);

	if (aligned > start)
		munmap(mapping, aligned - start);
	munmap((void *)(aligned + size), start + HUGE_PAGE_SIZE - aligned);
	return (void *)aligned;
}

int
memory_setup(struct vm *vm, uint64_t size)
{
	void *ram;

	/*
	 * Private anonymous memory, 2 MiB aligned and marked for transparent
	 * huge pages: the guest then runs on huge pages as under QEMU (shared
	 * anonymous memory gets none with Debian's default shmem setting, which
	 * measured up to 1.7x slower boots).  Device processes that need to map
	 * guest RAM will want a memfd instead.
	 */
	ram = mmap(NULL, size + HUGE_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (ram == MAP_FAILED) {
		log_warn("cannot allocate %llu MiB of guest memory", (unsigned long long)(size / MIB));
		return -1;
	}
	ram = align_mapping(ram, size);
	if (madvise(ram, size, MADV_HUGEPAGE) < 0)
		log_debug("guest memory: no transparent huge pages");
	vm->ram = ram;
	vm->ram_size = size;
	vm->low_ram_size = size < MEM_HOLE_START ? size : MEM_HOLE_START;
	vm->high_ram_size = size - vm->low_ram_size;

	if (memory_add_slot(vm, MEM_SLOT_LOW, 0, vm->ram, vm->low_ram_size, 0) < 0)
		return -1;
	if (vm->high_ram_size &&
	    memory_add_slot(vm, MEM_SLOT_HIGH, MEM_HIGH_START, vm->ram + vm->low_ram_size, vm->high_ram_size, 0) < 0)
		return -1;
	return 0;
}

int
memory_add_rom(struct vm *vm, uint64_t gpa, const void *data, size_t size)
{
	/* Guest writes to a read-only slot exit as MMIO that no device claims: ignored. */
	uint32_t flags = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0 ? KVM_MEM_READONLY : 0;
	void *rom = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (rom == MAP_FAILED) {
		log_warn("cannot allocate %zu KiB of ROM", size / 1024);
		return -1;
	}
	if (flags == 0)
		log_debug("KVM has no read-only memory: the guest may write its ROM");
	memcpy(rom, data, size);
	if (memory_add_slot(vm, MEM_SLOT_ROM, gpa, rom, size, flags) < 0) {
		log_warnx("ROM of %zu KiB at %#llx: KVM refused it", size / 1024, (unsigned long long)gpa);
		munmap(rom, size);
		return -1;
	}
	return 0;
}

void *
guest_ptr(const struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa < vm->low_ram_size) {
		if (len > vm->low_ram_size - gpa)
			return NULL;
		return vm->ram + gpa;
	}
	if (gpa >= MEM_HIGH_START && gpa - MEM_HIGH_START < vm->high_ram_size) {
		if (len > vm->high_ram_size - (gpa - MEM_HIGH_START))
			return NULL;
		return vm->ram + vm->low_ram_size + (gpa - MEM_HIGH_START);
	}
	return NULL;
}

int
memory_e820(const struct vm *vm, struct e820_entry *map, int max)
{
	struct e820_entry all[] = {
		{ 0, MEM_EBDA_START, E820_RAM },
		{ MEM_EBDA_START, 0xa0000 - MEM_EBDA_START, E820_RESERVED },
		{ MEM_BIOS_START, MEM_KERNEL_START - MEM_BIOS_START, E820_RESERVED },
		{ MEM_KERNEL_START, vm->low_ram_size - MEM_KERNEL_START, E820_RAM },
		{ MEM_HIGH_START, vm->high_ram_size, E820_RAM },
	};
	int n = vm->high_ram_size ? 5 : 4;

	if (n > max)
		return -1;
	for (int i = 0; i < n; i++)
		map[i] = all[i];
	return n;
}
