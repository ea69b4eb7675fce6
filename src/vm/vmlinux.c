/*
 * Loading an unpacked x86-64 kernel.  The payload of a bzImage is
 * vmlinux.bin (the kernel ELF, stripped) followed, on kernels built with
 * KASLR, by the relocation table the build's relocs tool writes: lists of
 * 32-bit words, each the link-time virtual address (sign-extended) of a
 * place in the image that holds an address, read backwards from the end of
 * the payload, each list ending in a zero:
 *
 *   [0] [64-bit places...] [0] [inverse 32-bit places...] [0] [32-bit places...]
 *
 * Linux 6.15 dropped the inverse list (per-CPU references that hold "per-CPU
 * address minus kernel address"), leaving two.  Moving the kernel's virtual
 * base up by an offset adds it to the 32- and 64-bit places and subtracts it
 * from the inverse ones.  The kernel then runs at
 * its physical address from its 64-bit entry point (e_entry, physical) with
 * boot_params in %rsi, and finds its own virtual base from the relocated
 * code, as after its own decompressor.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "vm/unpack.h"
#include "vm/vmlinux.h"

#define PAGE 4096

enum reloc_kind { RELOC_32, RELOC_32_INVERSE, RELOC_64 };

/* true when [off, off + len) lies within size bytes */
static int
inside(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static uint64_t
min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t
max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static int
refuse(struct vmlinux *k, const char *why)
{
	snprintf(k->why, sizeof(k->why), "%s", why);
	return -1;
}

/* The payload itself is inconsistent (not only laid out in a way we do not know). */
static int
corrupt(struct vmlinux *k, const char *why)
{
	k->corrupt = true;
	return refuse(k, why);
}

void
vmlinux_init(struct vmlinux *k, uint8_t *dest, size_t room, size_t size)
{
	memset(k, 0, sizeof(*k));
	k->dest = dest;
	k->room = room;
	k->size = size;
}

void
vmlinux_free(struct vmlinux *k)
{
	free(k->tail);
	k->tail = NULL;
}

static int
check_header(struct vmlinux *k, const Elf64_Ehdr *eh)
{
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC)
		return refuse(k, "its payload is not an x86-64 kernel ELF");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    !inside(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), VMLINUX_HEAD_SIZE))
		return refuse(k, "its kernel ELF's program headers are not at its start");
	if (eh->e_shoff != 0 &&
	    (eh->e_shentsize != sizeof(Elf64_Shdr) || !inside(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr), k->size)))
		return refuse(k, "its kernel ELF's section headers are outside it");
	k->shoff = eh->e_shoff;
	k->shnum = eh->e_shnum;
	return 0;
}

/* Keeps the loadable segments: where they are in the file and where they go. */
static int
collect_segments(struct vmlinux *k, const Elf64_Ehdr *eh)
{
	uint64_t base = UINT64_MAX;

	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, k->head + eh->e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (k->nsegments == VMLINUX_MAX_SEGMENTS)
			return refuse(k, "its kernel ELF has too many segments");
		if (ph.p_filesz > ph.p_memsz || ph.p_offset < VMLINUX_HEAD_SIZE || !inside(ph.p_offset, ph.p_filesz, k->size) ||
		    ph.p_memsz > UNPACK_MAX_SIZE || ph.p_paddr > UINT64_MAX - UNPACK_MAX_SIZE)
			return refuse(k, "its kernel ELF has a segment outside the file");
		k->segments[k->nsegments++] = (struct vmlinux_segment){ ph.p_offset, ph.p_filesz, ph.p_paddr };
		base = min64(base, ph.p_paddr);
		k->image_end = max64(k->image_end, ph.p_paddr + ph.p_memsz);
		k->file_end = max64(k->file_end, ph.p_paddr + ph.p_filesz);
		k->tail_start = (size_t)max64(k->tail_start, ph.p_offset + ph.p_filesz);
	}
	if (k->nsegments == 0)
		return refuse(k, "its kernel ELF has nothing to load");
	k->link_base = base;
	k->image_end -= base;
	k->file_end -= base;
	for (unsigned i = 0; i < k->nsegments; i++)
		k->segments[i].place -= base;
	if (k->image_end > UNPACK_MAX_SIZE || k->image_end > k->room)
		return refuse(k, "its kernel image does not fit in the memory set aside for it");
	if (eh->e_entry < base || eh->e_entry - base >= k->file_end)
		return refuse(k, "its kernel ELF's entry point is outside the kernel");
	k->entry = eh->e_entry - base;
	return 0;
}

/* The headers are complete: what goes where, and room for what follows the segments. */
static int
parse_headers(struct vmlinux *k)
{
	Elf64_Ehdr eh;

	memcpy(&eh, k->head, sizeof(eh));
	if (check_header(k, &eh) < 0 || collect_segments(k, &eh) < 0)
		return -1;
	if (k->shoff != 0 && k->shoff < k->tail_start)
		return refuse(k, "its kernel ELF's section headers are inside its segments");
	if (k->size - k->tail_start > VMLINUX_MAX_TAIL)
		return refuse(k, "its kernel ELF is followed by more than a relocation table");
	if ((k->tail = malloc(k->size - k->tail_start + 1)) == NULL)
		return refuse(k, "no memory for its relocation table");
	return 0;
}

/* Copies src to dst a page of dst at a time, leaving out pages of zeroes: dst is zero already. */
static void
copy_nonzero(uint8_t *dst, const uint8_t *src, size_t len)
{
	while (len > 0) {
		size_t n = min64(len, PAGE - ((uintptr_t)dst & (PAGE - 1)));

		if (src[0] != 0 || memcmp(src, src + 1, n - 1) != 0)
			memcpy(dst, src, n);
		dst += n;
		src += n;
		len -= n;
	}
}

/* Bytes at file offset off that belong to segments go to their place in memory. */
static void
place(struct vmlinux *k, uint64_t off, const uint8_t *data, size_t len)
{
	for (unsigned i = 0; i < k->nsegments; i++) {
		const struct vmlinux_segment *s = &k->segments[i];
		uint64_t from = max64(off, s->offset), to = min64(off + len, s->offset + s->filesz);

		if (from < to)
			copy_nonzero(k->dest + s->place + (from - s->offset), data + (from - off), to - from);
	}
}

int
vmlinux_write(void *ctx, const uint8_t *data, size_t len)
{
	struct vmlinux *k = ctx;

	if (len > k->size - k->pos)
		return corrupt(k, "its payload unpacks to more than it says");
	if (k->why[0] != '\0') { /* refused: count the rest, to tell a corrupt payload from a layout we do not know */
		k->pos += len;
		return 0;
	}
	while (len > 0) {
		size_t n = len;

		if (k->pos < VMLINUX_HEAD_SIZE) {
			n = min64(n, VMLINUX_HEAD_SIZE - k->pos);
			memcpy(k->head + k->pos, data, n);
			if (k->pos + n == VMLINUX_HEAD_SIZE && parse_headers(k) < 0) {
				k->pos += len;
				return 0;
			}
		} else if (k->pos < k->tail_start) {
			n = min64(n, k->tail_start - k->pos);
			place(k, k->pos, data, n);
		} else {
			memcpy(k->tail + (k->pos - k->tail_start), data, n);
		}
		k->pos += n;
		data += n;
		len -= n;
	}
	return 0;
}

/* The end of the ELF file proper: the section header table or the furthest section; relocations follow. */
static void
find_elf_end(struct vmlinux *k)
{
	k->elf_end = k->tail_start;
	if (k->shoff == 0)
		return;
	k->elf_end = (size_t)max64(k->elf_end, k->shoff + (uint64_t)k->shnum * sizeof(Elf64_Shdr));
	for (unsigned i = 0; i < k->shnum; i++) {
		Elf64_Shdr sh;

		memcpy(&sh, k->tail + (k->shoff - k->tail_start) + (uint64_t)i * sizeof(sh), sizeof(sh));
		if (sh.sh_type != SHT_NOBITS && inside(sh.sh_offset, sh.sh_size, k->size))
			k->elf_end = (size_t)max64(k->elf_end, sh.sh_offset + sh.sh_size);
	}
}

/* Checks one place of the table and, with delta, moves the address there. */
static int
relocate(struct vmlinux *k, enum reloc_kind kind, uint32_t word, uint64_t delta)
{
	uint64_t width = kind == RELOC_64 ? 8 : 4;
	uint64_t place_at = (uint64_t)(int64_t)(int32_t)word - VMLINUX_KERNEL_MAP - k->link_base;
	uint8_t *p;

	if (k->file_end < width || place_at > k->file_end - width) {
		snprintf(k->why, sizeof(k->why), "its relocation table names %#x, outside the kernel", word);
		return -1;
	}
	if (delta == 0)
		return 0;
	p = k->dest + place_at;
	if (kind == RELOC_64)
		le_put64(p, le_get64(p) + delta);
	else
		le_put32(p, kind == RELOC_32 ? le_get32(p) + (uint32_t)delta : le_get32(p) - (uint32_t)delta);
	return 0;
}

/* Walks the lists from the end; with delta 0 it only checks them. */
static int
walk_relocs(struct vmlinux *k, uint64_t delta)
{
	static const enum reloc_kind three[] = { RELOC_32, RELOC_32_INVERSE, RELOC_64 }, two[] = { RELOC_32, RELOC_64 };
	const enum reloc_kind *kinds = k->nlists == 3 ? three : two;
	const uint8_t *table = k->tail + (k->elf_end - k->tail_start);
	size_t i = k->nrelocs;

	for (unsigned list = 0; list < k->nlists; list++) {
		for (;;) {
			uint32_t word;

			if (i == 0)
				return refuse(k, "its relocation table is cut short");
			word = le_get32(table + --i * 4);
			if (word == 0)
				break;
			if (relocate(k, kinds[list], word, delta) < 0)
				return -1;
		}
	}
	if (i != 0) {
		snprintf(k->why, sizeof(k->why), "its relocation table has %zu stray words", i);
		return -1;
	}
	return 0;
}

/* Two lists or three (see the top): as many as there are zeros, the first word being one. */
static int
count_lists(struct vmlinux *k)
{
	const uint8_t *table = k->tail + (k->elf_end - k->tail_start);
	unsigned zeros = 0;

	if (le_get32(table) != 0)
		return refuse(k, "its relocation table does not start with the end of a list");
	for (size_t i = 0; i < k->nrelocs; i++)
		zeros += le_get32(table + i * 4) == 0;
	if (zeros != 2 && zeros != 3) {
		snprintf(k->why, sizeof(k->why), "its relocation table has %u lists, not 2 or 3", zeros);
		return -1;
	}
	k->nlists = zeros;
	return walk_relocs(k, 0);
}

int
vmlinux_finish(struct vmlinux *k)
{
	if (k->pos != k->size)
		return corrupt(k, "its payload unpacks to less than it says");
	if (k->why[0] != '\0')
		return -1;
	if (k->tail == NULL)
		return corrupt(k, "its payload is too small to be a kernel");
	find_elf_end(k);
	if ((k->size - k->elf_end) % 4 != 0) {
		snprintf(k->why, sizeof(k->why), "its relocation table is %zu bytes, not whole 32-bit words",
			 k->size - k->elf_end);
		return -1;
	}
	k->nrelocs = (k->size - k->elf_end) / 4;
	return k->nrelocs ? count_lists(k) : 0;
}

int
vmlinux_relocate(struct vmlinux *k, uint64_t virt_offset)
{
	if (virt_offset == 0)
		return 0;
	if (k->nrelocs == 0)
		return refuse(k, "it cannot move: it has no relocation table");
	return walk_relocs(k, virt_offset);
}

uint64_t
vmlinux_slots(uint64_t from, uint64_t to, uint64_t size, uint64_t align)
{
	if (align == 0 || from > to || size > to - from)
		return 0;
	return (to - from - size) / align + 1;
}
