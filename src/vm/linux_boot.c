/*
 * The Linux x86 boot protocol (Documentation/x86/boot.rst): we act as the boot
 * loader, fill in the zero page (boot_params) and enter the kernel's 64-bit
 * entry point with paging on, skipping the real-mode setup code.
 */
#include <bsd/stdlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/le.h"
#include "common/log.h"
#include "vm/linux_boot.h"
#include "vm/memory.h"
#include "vm/unpack.h"
#include "vm/vm.h"
#include "vm/vmlinux.h"

/* Offsets in the bzImage's setup header, and in boot_params which embeds it. */
#define BP_ACPI_RSDP	  0x070
#define BP_E820_ENTRIES	  0x1e8
#define HDR_START	  0x1f1
#define HDR_SETUP_SECTS	  0x1f1
#define HDR_BOOT_FLAG	  0x1fe
#define HDR_JUMP	  0x200
#define HDR_MAGIC	  0x202
#define HDR_VERSION	  0x206
#define HDR_LOADER_TYPE	  0x210
#define HDR_LOADFLAGS	  0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE  0x21c
#define HDR_HEAP_END	  0x224
#define HDR_CMD_LINE_PTR  0x228
#define HDR_INITRD_MAX	  0x22c
#define HDR_KERNEL_ALIGN  0x230
#define HDR_RELOCATABLE	  0x234
#define HDR_XLOADFLAGS	  0x236
#define HDR_CMDLINE_SIZE  0x238
#define HDR_PAYLOAD_OFFSET 0x248
#define HDR_PAYLOAD_LENGTH 0x24c
#define HDR_PREF_ADDRESS  0x258
#define HDR_INIT_SIZE	  0x260
#define BP_E820_TABLE	  0x2d0
#define BP_E820_MAX	  128
#define BOOT_PARAMS_SIZE  4096

#define BOOT_FLAG	  0xaa55
#define HDR_MAGIC_VALUE	  0x53726448 /* "HdrS" */
#define PROTOCOL_4_20	  0x020e /* Linux 4.20: KASLR on by default in a 1 GiB kernel mapping since 4.8 */
#define LOADED_HIGH	  0x01
#define KASLR_FLAG	  0x02
#define CAN_USE_HEAP	  0x80
#define XLF_KERNEL_64	  0x01
#define LOADER_UNDEFINED  0xff
#define ENTRY_64_OFFSET	  0x200 /* startup_64 from the start of the protected-mode code */

/* Header fields by their offset. */
#define get16(p, off)	   le_get16((p) + (off))
#define get32(p, off)	   le_get32((p) + (off))
#define get64(p, off)	   le_get64((p) + (off))
#define put16(p, off, v) le_put16((p) + (off), (v))
#define put32(p, off, v) le_put32((p) + (off), (v))

static size_t
setup_size(const uint8_t *data)
{
	unsigned sects = data[HDR_SETUP_SECTS] ? data[HDR_SETUP_SECTS] : 4;

	return (sects + 1) * 512;
}

int
linux_check_image(const uint8_t *data, size_t size, char *why, size_t whylen)
{
	uint16_t version;

	if (size < 1024 || get16(data, HDR_BOOT_FLAG) != BOOT_FLAG || get32(data, HDR_MAGIC) != HDR_MAGIC_VALUE) {
		snprintf(why, whylen, "not a Linux bzImage (no boot protocol header)");
		return -1;
	}
	version = get16(data, HDR_VERSION);
	if (version < LINUX_MIN_PROTOCOL) {
		snprintf(why, whylen, "boot protocol %u.%02u is too old (2.12 or later needed)", version >> 8,
			 version & 0xff);
		return -1;
	}
	if (!(data[HDR_LOADFLAGS] & LOADED_HIGH) || !(get16(data, HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
		snprintf(why, whylen, "not a 64-bit bzImage kernel");
		return -1;
	}
	if (setup_size(data) >= size) {
		snprintf(why, whylen, "truncated (setup code runs past the end of the file)");
		return -1;
	}
	return 0;
}

/* Identity-maps the first 4 GiB with 2 MiB pages: the 64-bit entry requires paging. */
static void
write_page_tables(struct vm *vm)
{
	uint64_t *pml4 = guest_ptr(vm, MEM_PML4, 4096);
	uint64_t *pdpt = guest_ptr(vm, MEM_PML4 + 0x1000, 4096);
	uint64_t *pd = guest_ptr(vm, MEM_PML4 + 0x2000, 4 * 4096);

	memset(pml4, 0, 6 * 4096);
	pml4[0] = (MEM_PML4 + 0x1000) | 0x03; /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (MEM_PML4 + 0x2000 + i * 0x1000) | 0x03;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
}

static void
write_gdt(struct vm *vm)
{
	uint64_t *gdt = guest_ptr(vm, MEM_GDT, 4 * sizeof(uint64_t));

	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00af9b000000ffffULL; /* 0x10: 64-bit code */
	gdt[3] = 0x00cf93000000ffffULL; /* 0x18: data */
}

/* The initrd goes as high as the kernel allows in low RAM; its highest byte's address is *limit. */
static uint64_t
initrd_address(struct vm *vm, const struct linux_image *image, uint64_t *limit)
{
	*limit = get32(image->data, HDR_INITRD_MAX);
	if (*limit >= vm->low_ram_size)
		*limit = vm->low_ram_size - 1;
	return image->initrd_size > *limit ? 0 : (*limit + 1 - image->initrd_size) & ~0xfffULL;
}

static int
place_initrd(struct vm *vm, const struct linux_image *image, uint8_t *bp, uint64_t kernel_end)
{
	uint64_t limit, addr;

	if (image->initrd == NULL)
		return 0;
	addr = initrd_address(vm, image, &limit);
	if (image->initrd_size > limit || addr < kernel_end) {
		log_warnx("initrd: %zu bytes do not fit in guest memory below %#llx with the kernel", image->initrd_size,
			  (unsigned long long)limit);
		return -1;
	}
	memcpy(guest_ptr(vm, addr, image->initrd_size), image->initrd, image->initrd_size);
	put32(bp, HDR_RAMDISK_IMAGE, (uint32_t)addr);
	put32(bp, HDR_RAMDISK_SIZE, (uint32_t)image->initrd_size);
	return 0;
}

static int
write_cmdline(struct vm *vm, const struct linux_image *image, uint8_t *bp)
{
	size_t len = strlen(image->cmdline);
	uint32_t max = get32(bp, HDR_CMDLINE_SIZE);

	if (len > max || len >= MEM_EBDA_START - MEM_CMDLINE) {
		log_warnx("kernel command line: %zu bytes, the kernel accepts %u", len, max);
		return -1;
	}
	memcpy(guest_ptr(vm, MEM_CMDLINE, len + 1), image->cmdline, len + 1);
	put32(bp, HDR_CMD_LINE_PTR, MEM_CMDLINE);
	return 0;
}

static void
write_e820(struct vm *vm, uint8_t *bp)
{
	struct e820_entry map[8];
	int n = memory_e820(vm, map, 8);

	memcpy(bp + BP_E820_TABLE, map, (size_t)n * sizeof(map[0]));
	bp[BP_E820_ENTRIES] = (uint8_t)n;
}

/* The decompressor needs init_size bytes from the load address (at least the image itself). */
static uint64_t
kernel_span(const uint8_t *data, size_t size)
{
	uint64_t kernel_size = size - setup_size(data);
	uint64_t init_size = get32(data, HDR_INIT_SIZE);

	return init_size > kernel_size ? init_size : kernel_size;
}

/*
 * The end of the memory the kernel needs when loaded at load: it unpacks at
 * its preferred address when loaded below it (a kernel that cannot move
 * always does), so a kernel at 1 MiB still needs pref_address + init_size.
 */
static uint64_t
kernel_unpack_end(const uint8_t *data, size_t size, uint64_t load)
{
	uint64_t pref = get64(data, HDR_PREF_ADDRESS);
	uint64_t start = pref > load && pref < 1ULL << 32 ? pref : load;

	return start + kernel_span(data, size);
}

uint64_t
linux_load_address(const uint8_t *data, size_t size, uint64_t low_ram_size, uint64_t initrd_size)
{
	uint64_t pref = get64(data, HDR_PREF_ADDRESS);
	uint64_t align = get32(data, HDR_KERNEL_ALIGN);
	uint64_t top = (uint64_t)get32(data, HDR_INITRD_MAX) + 1; /* the initrd goes below it */
	uint64_t need = kernel_span(data, size) + ((initrd_size + 0xfff) & ~0xfffULL);

	/*
	 * A relocatable kernel goes where it prefers to run (16 MiB for
	 * x86-64), as the protocol asks of a relocating loader.  From 1 MiB it
	 * would decompress to 16 MiB all the same, and the pages the compressed
	 * image took below 16 MiB would be touched for nothing: the kernel's
	 * allocations start at 16 MiB, where the image's pages then get used
	 * again.  Under nested virtualization every first touch of a 2 MiB page
	 * is costly (the box measured ~7 ms each, 7 fewer pages).  Kernels that
	 * cannot move, or guests too small for it, load at 1 MiB.
	 */
	if (top > low_ram_size)
		top = low_ram_size;
	if (data[HDR_RELOCATABLE] && align != 0 && (align & (align - 1)) == 0 && pref % align == 0 &&
	    pref > MEM_KERNEL_START && pref < top && need <= top - pref)
		return pref;
	return MEM_KERNEL_START;
}

bool
linux_cmdline_has_flag(const char *cmdline, const char *word)
{
	size_t len = strlen(word);

	/* as the kernel's own parser, anything up to a space separates words */
	for (const char *p = cmdline; (p = strstr(p, word)) != NULL; p += len)
		if ((p == cmdline || (unsigned char)p[-1] <= ' ') && (unsigned char)p[len] <= ' ')
			return true;
	return false;
}

/*
 * A random place for the kernel, as its decompressor would choose: a step of
 * align from from up, with size bytes ending by to; from when there is no
 * other.
 */
static uint64_t
random_place(uint64_t from, uint64_t to, uint64_t size, uint64_t align)
{
	uint64_t slots = vmlinux_slots(from, to, size, align);

	return slots > 1 ? from + (uint64_t)arc4random_uniform((uint32_t)(slots > UINT32_MAX ? UINT32_MAX : slots)) * align
			 : from;
}

/* Unpacks payload into k; the kernel in it must be linked to run at load.  -1 with the reason in k->why. */
static int
unpack_kernel(struct vmlinux *k, const uint8_t *payload, size_t len, uint64_t load)
{
	char why[128];

	if (unpack_payload(payload, len, vmlinux_write, k, why, sizeof(why)) < 0) {
		if (k->why[0] == '\0') { /* the unpacking failed, not the loading */
			snprintf(k->why, sizeof(k->why), "%s", why);
			k->corrupt = true;
		}
		return -1;
	}
	if (vmlinux_finish(k) < 0)
		return -1;
	if (k->link_base != load) {
		snprintf(k->why, sizeof(k->why), "it is linked to run at %#llx, its header says %#llx",
			 (unsigned long long)k->link_base, (unsigned long long)load);
		return -1;
	}
	return 0;
}

/*
 * Unpacks the kernel in vmd straight into its place in guest memory, so that
 * the guest starts in the kernel proper, at random physical and virtual
 * addresses as its decompressor would choose (unless the command line says
 * nokaslr: then at its preferred address, and where it is linked to run).  The guest's decompressor would copy
 * the compressed image, unpack it beside it and move it again, touching some
 * 60 MiB of fresh guest memory where this touches the image's 45 (first
 * touches are what is costly under nested virtualization), and xz or gzip run
 * faster here than in a guest.  Only for a relocatable kernel linked for its
 * preferred address, from Linux 4.20 on (older ones had KASLR off by default or
 * a smaller kernel mapping).  Returns 1 with *entry set, 0 to leave the
 * unpacking to the guest (a format or layout we do not know, an older kernel,
 * one loaded elsewhere: what was written to guest memory does not matter to
 * its decompressor), -1 with the reason logged when the payload is corrupt.
 * The image goes below top (the initrd); *kernel_end becomes its end.
 */
static int
load_unpacked(struct vm *vm, const struct linux_image *image, uint64_t load, uint64_t top, uint64_t *kernel_end,
	      uint64_t *entry, bool *kaslr)
{
	size_t setup = setup_size(image->data);
	uint64_t offset = get32(image->data, HDR_PAYLOAD_OFFSET), len = get32(image->data, HDR_PAYLOAD_LENGTH);
	uint64_t align = get32(image->data, HDR_KERNEL_ALIGN), room = *kernel_end - load, phys = load;
	const uint8_t *payload = image->data + setup + offset;
	bool randomize = !linux_cmdline_has_flag(image->cmdline, "nokaslr");
	struct vmlinux k;
	int rc;

	if (offset > image->size - setup || len > image->size - setup - offset) {
		log_warnx("kernel %s: its payload runs past the end of the file", image->name);
		return -1;
	}
	if (get16(image->data, HDR_VERSION) < PROTOCOL_4_20 || load != get64(image->data, HDR_PREF_ADDRESS) ||
	    align == 0 || (align & (align - 1)) != 0 || unpack_format(payload, len) == NULL)
		return 0;
	if (randomize) /* a relocatable kernel (linux_load_address): it moves its own page tables */
		phys = random_place(load, top, room, align);
	vmlinux_init(&k, guest_ptr(vm, phys, room), room, unpack_size(payload, len));
	rc = unpack_kernel(&k, payload, len, load);
	*kaslr = rc == 0 && k.nrelocs > 0 && randomize;
	if (*kaslr)
		rc = vmlinux_relocate(&k, random_place(k.link_base, VMLINUX_KASLR_SPAN, (room + align - 1) & ~(align - 1),
						       align) - k.link_base);
	vmlinux_free(&k);
	if (rc < 0 && !k.corrupt) {
		*kaslr = false;
		log_debug("kernel %s: left to unpack itself: %s", image->name, k.why);
		return 0;
	}
	if (rc < 0) {
		log_warnx("kernel %s: %s", image->name, k.why);
		return -1;
	}
	log_debug("kernel %s: unpacked its %s payload, %zu MiB", image->name, unpack_format(payload, len),
		  k.size >> 20);
	*entry = phys + k.entry;
	*kernel_end = phys + room;
	return 1;
}

uint64_t
linux_load(struct vm *vm, const struct linux_image *image)
{
	char why[128];
	uint8_t *bp;
	size_t setup, kernel_size, header_end;
	uint64_t load, kernel_end, entry = 0, initrd_limit, top;
	bool kaslr = false;
	int unpacked;

	if (linux_check_image(image->data, image->size, why, sizeof(why)) < 0) {
		log_warnx("kernel %s: %s", image->name, why);
		return 0;
	}
	setup = setup_size(image->data);
	kernel_size = image->size - setup;
	load = linux_load_address(image->data, image->size, vm->low_ram_size,
				  image->initrd ? image->initrd_size : 0);
	kernel_end = kernel_unpack_end(image->data, image->size, load);
	if (kernel_end > vm->low_ram_size) {
		log_warnx("kernel %s: needs %llu MiB of memory to unpack, the guest has %llu MiB", image->name,
			  (unsigned long long)((kernel_end + MIB - 1) / MIB), (unsigned long long)(vm->ram_size / MIB));
		return 0;
	}
	top = image->initrd ? initrd_address(vm, image, &initrd_limit) : vm->low_ram_size;
	unpacked = load_unpacked(vm, image, load, top, &kernel_end, &entry, &kaslr);
	if (unpacked < 0)
		return 0;
	if (unpacked == 0) {
		memcpy(guest_ptr(vm, load, kernel_size), image->data + setup, kernel_size);
		entry = load + ENTRY_64_OFFSET;
	}

	bp = guest_ptr(vm, MEM_BOOT_PARAMS, BOOT_PARAMS_SIZE);
	memset(bp, 0, BOOT_PARAMS_SIZE);
	header_end = HDR_JUMP + 2 + image->data[HDR_JUMP + 1];
	memcpy(bp + HDR_START, image->data + HDR_START, header_end - HDR_START);
	bp[HDR_LOADER_TYPE] = LOADER_UNDEFINED;
	bp[HDR_LOADFLAGS] |= CAN_USE_HEAP | (kaslr ? KASLR_FLAG : 0);
	put16(bp, HDR_HEAP_END, 0xfe00);
	memcpy(bp + BP_ACPI_RSDP, &image->rsdp, sizeof(image->rsdp));

	if (write_cmdline(vm, image, bp) < 0 || place_initrd(vm, image, bp, kernel_end) < 0)
		return 0;
	write_e820(vm, bp);
	write_page_tables(vm);
	write_gdt(vm);
	return entry;
}
