/* Guest RAM and the map of it given to the guest (e820). */
#ifndef VMD_MEMORY_H
#define VMD_MEMORY_H

#include <stddef.h>
#include <stdint.h>

struct vm;

/* Fixed places in low guest memory used while booting Linux directly. */
#define MEM_GDT		  0x0500
#define MEM_BOOT_PARAMS	  0x7000
#define MEM_PML4	  0x9000 /* then one PDPT and four page directories */
#define MEM_CMDLINE	  0x20000
#define MEM_EBDA_START	  0x9fc00
#define MEM_BIOS_START	  0xe0000 /* ACPI tables live here */
#define MEM_BIOS_END	  0x100000
#define MEM_KERNEL_START  0x100000

#define E820_RAM	1
#define E820_RESERVED	2

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* KVM memory slots. */
#define MEM_SLOT_LOW  0
#define MEM_SLOT_HIGH 1
#define MEM_SLOT_ROM  2 /* the firmware image, read-only, below 4 GiB */

/* Allocates size bytes of guest RAM and registers it with KVM. */
int memory_setup(struct vm *vm, uint64_t size);
/* Maps a read-only copy of data (size a multiple of 4 KiB) at gpa. */
int memory_add_rom(struct vm *vm, uint64_t gpa, const void *data, size_t size);
/* Fills map with the guest's physical memory map; returns the entry count. */
int memory_e820(const struct vm *vm, struct e820_entry *map, int max);

#endif
