/*
 * Unpacking a bzImage's payload and loading the kernel ELF in it (src/vm/unpack.c,
 * src/vm/vmlinux.c): a small kernel-shaped ELF with a relocation table, packed
 * with each compressor the way the kernel's build does it.
 */
#include <elf.h>
#include <fcntl.h>
#include <glob.h>
#include <lz4.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "unit/check.h"
#include "vm/unpack.h"
#include "vm/vmlinux.h"

#define LINK_BASE  0x1000000ULL /* 16 MiB, as x86-64 kernels */
#define TEXT_OFF   0x1000	/* first segment: 12 KiB of "text", linked at LINK_BASE */
#define TEXT_SIZE  0x3000
#define DATA_OFF   0x4000	/* second segment: 2 KiB of data, 8 KiB in memory, 2 MiB up, virtual address 0 */
#define DATA_FILE  0x800
#define DATA_MEM   0x2000
#define DATA_PLACE 0x200000
#define SHDR_OFF   0x4800	/* two section headers, then one section's 16 bytes */
#define ELF_END	   (SHDR_OFF + 2 * sizeof(Elf64_Shdr) + 16)
#define ROOM	   (4u << 20)
#define DELTA	   0x600000ULL	/* the virtual offset the tests move the kernel by */

static uint8_t raw[ELF_END + 6 * 4 + 8];
static size_t raw_size;
static uint8_t *dest, *expect;

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
add_segment(int i, uint64_t off, uint64_t filesz, uint64_t memsz, uint64_t vaddr, uint64_t paddr)
{
	Elf64_Phdr ph = { .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = off, .p_vaddr = vaddr,
			  .p_paddr = paddr, .p_filesz = filesz, .p_memsz = memsz, .p_align = 0x200000 };

	memcpy(raw + sizeof(Elf64_Ehdr) + (size_t)i * sizeof(ph), &ph, sizeof(ph));
}

/*
 * The kernel: a 32-bit address at text+0x10, a 64-bit one at +0x20, a
 * per-CPU offset (inverse) at +0x30, the text's second page all zeroes; the
 * relocation table after the ELF names those three places.
 */
static void
make_kernel(void)
{
	Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			  .e_entry = LINK_BASE + 0x40, .e_phoff = sizeof(Elf64_Ehdr), .e_shoff = SHDR_OFF,
			  .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 3,
			  .e_shentsize = sizeof(Elf64_Shdr), .e_shnum = 2 };
	Elf64_Phdr note = { .p_type = PT_NOTE, .p_offset = TEXT_OFF, .p_filesz = 16 };
	Elf64_Shdr sh = { .sh_type = SHT_STRTAB, .sh_offset = SHDR_OFF + 2 * sizeof(Elf64_Shdr), .sh_size = 16 };
	uint8_t *r;

	memset(raw, 0, sizeof(raw));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(raw, &eh, sizeof(eh));
	add_segment(0, TEXT_OFF, TEXT_SIZE, TEXT_SIZE, VMLINUX_KERNEL_MAP + LINK_BASE, LINK_BASE);
	add_segment(1, DATA_OFF, DATA_FILE, DATA_MEM, 0, LINK_BASE + DATA_PLACE);
	memcpy(raw + sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr), &note, sizeof(note));
	for (int i = 0; i < TEXT_SIZE; i++)
		if (i < 0x1000 || i >= 0x2000)
			raw[TEXT_OFF + i] = (uint8_t)(i * 7 + 1);
	put32(raw + TEXT_OFF + 0x10, 0x81000100);
	put64(raw + TEXT_OFF + 0x20, 0xffffffff81000200ULL);
	put32(raw + TEXT_OFF + 0x30, 0x12345678);
	memset(raw + DATA_OFF, 0x5a, DATA_FILE);
	memcpy(raw + SHDR_OFF + sizeof(Elf64_Shdr), &sh, sizeof(sh));
	memcpy(raw + sh.sh_offset, ".shstrtab", 10);
	r = raw + ELF_END;
	put32(r + 0, 0);	  /* end of the 64-bit list */
	put32(r + 4, 0x81000020); /* 64-bit */
	put32(r + 8, 0);	  /* end of the inverse list */
	put32(r + 12, 0x81000030); /* inverse 32-bit */
	put32(r + 16, 0);	  /* end of the 32-bit list */
	put32(r + 20, 0x81000010); /* 32-bit */
	raw_size = ELF_END + 24;
}

/* What guest memory must hold after loading with DELTA. */
static void
make_expected(void)
{
	memset(expect, 0, ROOM);
	memcpy(expect, raw + TEXT_OFF, TEXT_SIZE);
	memcpy(expect + DATA_PLACE, raw + DATA_OFF, DATA_FILE);
	put32(expect + 0x10, 0x81000100 + (uint32_t)DELTA);
	put64(expect + 0x20, 0xffffffff81000200ULL + DELTA);
	put32(expect + 0x30, 0x12345678 - (uint32_t)DELTA);
}

/* Feeds data to a fresh loader piece bytes at a time; returns what finish says. */
static int
load_raw(struct vmlinux *k, const uint8_t *data, size_t size, size_t piece, size_t room)
{
	memset(dest, 0, ROOM);
	vmlinux_init(k, dest, room, size);
	for (size_t off = 0; off < size; off += piece)
		if (vmlinux_write(k, data + off, size - off < piece ? size - off : piece) < 0)
			return -1;
	return vmlinux_finish(k);
}

static void
vmlinux_places_segments_and_relocates(void)
{
	static const size_t pieces[] = { 1, 7, 4096, 5000, sizeof(raw) };
	struct vmlinux k;

	make_kernel();
	make_expected();
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		CHECK(load_raw(&k, raw, raw_size, pieces[i], ROOM) == 0);
		CHECK(k.link_base == LINK_BASE && k.entry == 0x40 && k.nrelocs == 6 && k.nlists == 3);
		CHECK(k.image_end == DATA_PLACE + DATA_MEM && k.elf_end == ELF_END);
		CHECK(vmlinux_relocate(&k, DELTA) == 0);
		CHECK(memcmp(dest, expect, ROOM) == 0);
		vmlinux_free(&k);
	}
}

static void
vmlinux_leaves_zero_pages_untouched(void)
{
	struct vmlinux k;

	make_kernel();
	vmlinux_init(&k, dest, ROOM, raw_size);
	memset(dest, 0xee, ROOM); /* were a page of zeroes written, this would show */
	CHECK(vmlinux_write(&k, raw, raw_size) == 0 && vmlinux_finish(&k) == 0);
	CHECK(dest[0x1000] == 0xee && dest[0x1fff] == 0xee);
	CHECK(dest[0x0fff] == raw[TEXT_OFF + 0x0fff] && dest[0x2000] == raw[TEXT_OFF + 0x2000]);
	vmlinux_free(&k);
}

static void
vmlinux_without_relocations_cannot_move(void)
{
	struct vmlinux k;

	make_kernel();
	CHECK(load_raw(&k, raw, ELF_END, 4096, ROOM) == 0);
	CHECK(k.nrelocs == 0);
	CHECK(vmlinux_relocate(&k, 0) == 0);
	CHECK(vmlinux_relocate(&k, DELTA) == -1 && strstr(k.why, "no relocation table") != NULL);
	vmlinux_free(&k);
}

/* Loads raw as changed by the caller; true when refused with a reason containing want. */
static int
refused(const char *want, size_t room)
{
	struct vmlinux k;
	int ok;

	ok = load_raw(&k, raw, raw_size, 4096, room) == -1 && strstr(k.why, want) != NULL;
	if (!ok)
		printf("  want a refusal with \"%s\", got: \"%s\"\n", want, k.why);
	vmlinux_free(&k);
	return ok;
}

static void
vmlinux_refuses_bad_kernels(void)
{
	Elf64_Phdr ph;

	make_kernel();
	raw[0] = 0;
	CHECK(refused("not an x86-64 kernel ELF", ROOM));
	make_kernel();
	raw[EI_CLASS] = ELFCLASS32;
	CHECK(refused("not an x86-64 kernel ELF", ROOM));
	make_kernel();
	CHECK(refused("does not fit", DATA_PLACE));
	make_kernel();
	memcpy(&ph, raw + sizeof(Elf64_Ehdr), sizeof(ph));
	ph.p_filesz = ph.p_memsz = 1ULL << 40;
	memcpy(raw + sizeof(Elf64_Ehdr), &ph, sizeof(ph));
	CHECK(refused("segment outside the file", ROOM));
	make_kernel();
	put64(raw + offsetof(Elf64_Ehdr, e_entry), LINK_BASE - 1);
	CHECK(refused("entry point is outside", ROOM));
	make_kernel();
	put32(raw + ELF_END + 20, 0x81000000 + DATA_PLACE + DATA_FILE - 2); /* running past the file bytes */
	CHECK(refused("outside the kernel", ROOM));
	make_kernel();
	put32(raw + ELF_END + 20, 0x90000000);
	CHECK(refused("outside the kernel", ROOM));
	make_kernel();
	put32(raw + ELF_END + 0, 0x81000040); /* the 64-bit list lost its end */
	CHECK(refused("does not start with the end of a list", ROOM));
	make_kernel();
	memmove(raw + ELF_END + 4, raw + ELF_END, 24);
	put32(raw + ELF_END, 0);
	raw_size += 4;
	CHECK(refused("has 4 lists", ROOM));
	make_kernel();
	raw_size += 2;
	CHECK(refused("not whole 32-bit words", ROOM));
}

/* None of those is the payload contradicting itself: the guest's decompressor gets them instead. */
static void
vmlinux_tells_corrupt_payloads_from_unknown_layouts(void)
{
	struct vmlinux k;

	make_kernel();
	raw[0] = 0;
	CHECK(load_raw(&k, raw, raw_size, 4096, ROOM) == -1 && !k.corrupt);
	vmlinux_free(&k);
	make_kernel();
	put32(raw + ELF_END + 0, 0x81000040);
	CHECK(load_raw(&k, raw, raw_size, 4096, ROOM) == -1 && !k.corrupt);
	vmlinux_free(&k);
	make_kernel();
	raw[0] = 0; /* refused for its layout after the first 4 KiB, but then more bytes come than it said */
	CHECK(load_raw(&k, raw, raw_size, 4096, ROOM) == -1 && !k.corrupt);
	vmlinux_free(&k);
	vmlinux_init(&k, dest, ROOM, raw_size - 100);
	CHECK(vmlinux_write(&k, raw, 4096) == 0 && vmlinux_write(&k, raw + 4096, raw_size - 4096) == -1);
	CHECK(k.corrupt && strstr(k.why, "more than it says") != NULL);
	vmlinux_free(&k);
	make_kernel();
	vmlinux_init(&k, dest, ROOM, raw_size - 1);
	CHECK(vmlinux_write(&k, raw, raw_size) == -1 && k.corrupt);
	vmlinux_free(&k);
	vmlinux_init(&k, dest, ROOM, raw_size + 1);
	CHECK(vmlinux_write(&k, raw, raw_size) == 0 && vmlinux_finish(&k) == -1 && k.corrupt);
	vmlinux_free(&k);
}

/* Linux 6.15 and later: no inverse list, [0] [64-bit places...] [0] [32-bit places...]. */
static void
vmlinux_takes_the_two_list_table(void)
{
	struct vmlinux k;

	make_kernel();
	make_expected();
	put32(expect + 0x30, 0x12345678); /* not relocated now */
	memmove(raw + ELF_END + 8, raw + ELF_END + 16, 8); /* drop the inverse list and its end */
	raw_size -= 8;
	CHECK(load_raw(&k, raw, raw_size, 4096, ROOM) == 0);
	CHECK(k.nrelocs == 4 && k.nlists == 2);
	CHECK(vmlinux_relocate(&k, DELTA) == 0);
	CHECK(memcmp(dest, expect, ROOM) == 0);
	vmlinux_free(&k);
}

static void
vmlinux_refuses_a_size_it_does_not_get(void)
{
	struct vmlinux k;

	make_kernel();
	memset(dest, 0, ROOM);
	vmlinux_init(&k, dest, ROOM, raw_size - 4);
	CHECK(vmlinux_write(&k, raw, raw_size) == -1 && strstr(k.why, "more than it says") != NULL);
	vmlinux_free(&k);
	vmlinux_init(&k, dest, ROOM, raw_size);
	CHECK(vmlinux_write(&k, raw, raw_size - 4) == 0);
	CHECK(vmlinux_finish(&k) == -1 && strstr(k.why, "less than it says") != NULL);
	vmlinux_free(&k);
	vmlinux_init(&k, dest, ROOM, 100);
	CHECK(vmlinux_write(&k, raw, 100) == 0);
	CHECK(vmlinux_finish(&k) == -1 && strstr(k.why, "too small") != NULL);
	vmlinux_free(&k);
}

static void
vmlinux_kaslr_slots_keep_the_image_in_its_gigabyte(void)
{
	/* Debian's kernel: 16 MiB, ~52 MiB to unpack, 2 MiB steps: (1024 - 16 - 52) / 2 + 1. */
	CHECK(vmlinux_slots(16 << 20, VMLINUX_KASLR_SPAN, 52 << 20, 2 << 20) == 479);
	CHECK(vmlinux_slots(16 << 20, VMLINUX_KASLR_SPAN, (1 << 30) - (16 << 20), 2 << 20) == 1);
	CHECK(vmlinux_slots(16 << 20, VMLINUX_KASLR_SPAN, 1 << 30, 2 << 20) == 0);
	CHECK(vmlinux_slots(16 << 20, VMLINUX_KASLR_SPAN, 52 << 20, 0) == 0);
}

/* The packers: each appends the unpacked size as the kernel's build does (gzip's trailer is it). */
static size_t
pack_gzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	z_stream z = { 0 };
	size_t n;

	CHECK(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
	n = z.total_out;
	deflateEnd(&z);
	return n;
}

static size_t
pack_lz4(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	int n;

	put32(out, 0x184c2102);
	n = LZ4_compress_default((const char *)in, (char *)out + 8, (int)len, (int)cap - 12);
	CHECK(n > 0);
	put32(out + 4, (uint32_t)n);
	put32(out + 8 + n, (uint32_t)len);
	return 12 + (size_t)n;
}

static size_t
pack_xz(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = 0;

	CHECK(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, len, out, &n, cap - 4) == LZMA_OK);
	put32(out + n, (uint32_t)len);
	return n + 4;
}

static size_t
pack_zstd(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = ZSTD_compress(out, cap - 4, in, len, 19);

	CHECK(!ZSTD_isError(n));
	put32(out + n, (uint32_t)len);
	return n + 4;
}

typedef size_t packer(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

static const struct {
	const char *name;
	packer *pack;
} packers[] = { { "gzip", pack_gzip }, { "lz4", pack_lz4 }, { "xz", pack_xz }, { "zstd", pack_zstd } };

static void
unpack_decodes_every_format_into_place(void)
{
	static uint8_t packed[sizeof(raw) * 2 + 1024];
	char why[128];

	make_kernel();
	make_expected();
	for (size_t i = 0; i < sizeof(packers) / sizeof(packers[0]); i++) {
		size_t n = packers[i].pack(raw, raw_size, packed, sizeof(packed));
		struct vmlinux k;

		CHECK(unpack_format(packed, n) != NULL && strcmp(unpack_format(packed, n), packers[i].name) == 0);
		CHECK(unpack_size(packed, n) == raw_size);
		memset(dest, 0, ROOM);
		vmlinux_init(&k, dest, ROOM, unpack_size(packed, n));
		CHECK(unpack_payload(packed, n, vmlinux_write, &k, why, sizeof(why)) == 0);
		CHECK(vmlinux_finish(&k) == 0 && vmlinux_relocate(&k, DELTA) == 0);
		CHECK(memcmp(dest, expect, ROOM) == 0);
		vmlinux_free(&k);
	}
}

static int
count_sink(void *ctx, const uint8_t *data, size_t len)
{
	(void)data;
	*(size_t *)ctx += len;
	return 0;
}

static void
unpack_refuses_corrupt_payloads(void)
{
	static uint8_t packed[sizeof(raw) * 2 + 1024];
	char why[128];

	make_kernel();
	CHECK(unpack_format((const uint8_t *)"BZh91AY&SY", 10) == NULL); /* bzip2: the guest's business */
	for (size_t i = 0; i < sizeof(packers) / sizeof(packers[0]); i++) {
		size_t n = packers[i].pack(raw, raw_size, packed, sizeof(packed)), got = 0;
		uint32_t size = get32(packed + n - 4);

		/* cut in the middle: the size it ends in is now garbage, or true but not reached */
		memmove(packed + n / 2 - 4, packed + n - 4, 4);
		CHECK(unpack_payload(packed, n / 2, count_sink, &got, why, sizeof(why)) == -1);
		/* whole, but claiming a size it does not unpack to */
		n = packers[i].pack(raw, raw_size, packed, sizeof(packed));
		put32(packed + n - 4, size + 1);
		got = 0;
		CHECK(unpack_payload(packed, n, count_sink, &got, why, sizeof(why)) == -1);
		CHECK(strstr(why, "corrupt") != NULL);
		put32(packed + n - 4, 0);
		CHECK(unpack_payload(packed, n, count_sink, &got, why, sizeof(why)) == -1);
	}
}

/* The kernels scripts/setup installs (Debian's: lz4 for the cloud kernel, xz for the other) load and move. */
static int
load_bzimage(const char *path)
{
	static struct vmlinux k;
	struct stat st;
	const uint8_t *image, *payload;
	size_t setup, len;
	char why[128] = "";
	uint8_t *room;
	int fd = open(path, O_RDONLY), ok;

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 0x300)
		return 0;
	image = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	setup = ((size_t)(image[0x1f1] ? image[0x1f1] : 4) + 1) * 512;
	payload = image + setup + get32(image + 0x248);
	len = get32(image + 0x24c);
	room = mmap(NULL, 256u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	vmlinux_init(&k, room, 256u << 20, unpack_size(payload, len));
	ok = unpack_format(payload, len) != NULL && unpack_payload(payload, len, vmlinux_write, &k, why, sizeof(why)) == 0 &&
	     vmlinux_finish(&k) == 0 && k.link_base == 16 << 20 && k.nrelocs > 1000 &&
	     vmlinux_relocate(&k, 40 << 20) == 0;
	printf("  %s: %s payload, %zu MiB, %zu relocations: %s\n", path, unpack_format(payload, len), k.size >> 20,
	       k.nrelocs, ok ? "loaded and moved" : k.why[0] ? k.why : why);
	vmlinux_free(&k);
	munmap(room, 256u << 20);
	munmap((void *)image, (size_t)st.st_size);
	return ok;
}

static void
unpack_loads_the_installed_kernels(void)
{
	glob_t g;

	CHECK(glob("/boot/vmlinuz-*", 0, NULL, &g) == 0 && g.gl_pathc > 0);
	for (size_t i = 0; i < g.gl_pathc; i++)
		CHECK(load_bzimage(g.gl_pathv[i]));
	globfree(&g);
}

int
main(void)
{
	dest = aligned_alloc(4096, ROOM); /* guest memory is page-aligned: zero pages are whole pages */
	expect = malloc(ROOM);
	RUN_TEST(vmlinux_places_segments_and_relocates);
	RUN_TEST(vmlinux_leaves_zero_pages_untouched);
	RUN_TEST(vmlinux_without_relocations_cannot_move);
	RUN_TEST(vmlinux_refuses_bad_kernels);
	RUN_TEST(vmlinux_tells_corrupt_payloads_from_unknown_layouts);
	RUN_TEST(vmlinux_takes_the_two_list_table);
	RUN_TEST(vmlinux_refuses_a_size_it_does_not_get);
	RUN_TEST(vmlinux_kaslr_slots_keep_the_image_in_its_gigabyte);
	RUN_TEST(unpack_decodes_every_format_into_place);
	RUN_TEST(unpack_refuses_corrupt_payloads);
	RUN_TEST(unpack_loads_the_installed_kernels);
	free(dest);
	free(expect);
	TEST_EXIT();
}
