/*
 * Loading an unpacked x86-64 kernel (vmlinux.bin: an ELF executable with the
 * kernel's relocation table appended) into guest memory as it is unpacked,
 * with the virtual address randomized (KASLR) the way the kernel's own
 * decompressor does it.
 */
#ifndef VMD_VMLINUX_H
#define VMD_VMLINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where x86-64 kernels are linked: virtual address = this + physical address. */
#define VMLINUX_KERNEL_MAP 0xffffffff80000000ULL
/* With KASLR the kernel's mapping is 1 GiB (KERNEL_IMAGE_SIZE): the image moves inside it. */
#define VMLINUX_KASLR_SPAN (1ULL << 30)
/* The ELF header and program headers must lie in the first 4 KiB, the segments after it. */
#define VMLINUX_HEAD_SIZE 4096
#define VMLINUX_MAX_SEGMENTS 16
/* What may follow the segments: section headers and relocations (~1 MiB in Debian's kernels). */
#define VMLINUX_MAX_TAIL (64u << 20)

struct vmlinux_segment {
	uint64_t offset, filesz; /* in the file */
	uint64_t place;		 /* in memory, from the link base */
};

struct vmlinux {
	/* where it goes */
	uint8_t *dest;		/* guest memory from the load address, zero-filled */
	size_t room;		/* bytes there */
	size_t size;		/* what the payload unpacks to */
	/* what its headers say */
	uint64_t link_base;	/* the physical address it is linked for (the lowest segment's) */
	uint64_t entry;		/* the entry point, from link_base */
	uint64_t image_end;	/* the end of the segments in memory, from link_base */
	uint64_t file_end;	/* the end of the segments' file bytes in memory, from link_base */
	struct vmlinux_segment segments[VMLINUX_MAX_SEGMENTS];
	unsigned nsegments;
	uint64_t shoff;		/* the section header table, 0 when none */
	unsigned shnum;
	size_t nrelocs;		/* 32-bit words in the relocation table, 0 when there is none */
	unsigned nlists;	/* lists in it: 3, or 2 from Linux 6.15 (no inverse list) */
	/* progress */
	size_t pos;		/* bytes received */
	uint8_t head[VMLINUX_HEAD_SIZE];
	uint8_t *tail;		/* the bytes after the last segment's: section headers, relocations */
	size_t tail_start;
	size_t elf_end;		/* where the ELF file ends and the relocation table starts */
	char why[128];		/* why it was refused */
	bool corrupt;		/* refused because the payload contradicts itself, not for its layout */
};

/* Starts loading a kernel that unpacks to size bytes into dest (room bytes, zero-filled). */
void vmlinux_init(struct vmlinux *k, uint8_t *dest, size_t room, size_t size);
/*
 * The unpack_sink: takes the next len bytes of the kernel.  Returns -1 (the
 * reason in k->why) only when there are more than k->size; a kernel refused
 * for its layout is still counted to the end, so that vmlinux_finish can tell
 * a corrupt payload (k->corrupt) from one laid out in a way we do not know.
 */
int vmlinux_write(void *k, const uint8_t *data, size_t len);
/*
 * Once all of it was written: checks the size, the section headers and the
 * relocation table.  0, or -1 with the reason in k->why.
 */
int vmlinux_finish(struct vmlinux *k);
/*
 * Moves the kernel's virtual addresses up by virt_offset (a multiple of its
 * alignment) through its relocation table.  0, or -1 with the reason.
 */
int vmlinux_relocate(struct vmlinux *k, uint64_t virt_offset);
void vmlinux_free(struct vmlinux *k);
/*
 * How many places the kernel can take, a step of align apart from from up,
 * with its size bytes ending by to: in physical memory, or virtually inside
 * the KASLR span from the link base.  0 when it does not fit at all.
 */
uint64_t vmlinux_slots(uint64_t from, uint64_t to, uint64_t size, uint64_t align);

#endif
