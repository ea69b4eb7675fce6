#include <string.h>

#include "unit/check.h"
#include "vm/linux_boot.h"

static uint8_t image[8192];

static void
make_bzimage(uint16_t version, uint16_t xloadflags)
{
	memset(image, 0, sizeof(image));
	image[0x1f1] = 4;			    /* setup sectors */
	image[0x1fe] = 0x55, image[0x1ff] = 0xaa;   /* boot flag */
	memcpy(&image[0x202], "HdrS", 4);
	image[0x206] = (uint8_t)version, image[0x207] = (uint8_t)(version >> 8);
	image[0x211] = 0x01;			    /* loaded high */
	image[0x236] = (uint8_t)xloadflags;
}

static void
linux_check_image_accepts_a_64bit_bzimage(void)
{
	char why[128] = "";

	make_bzimage(0x020f, 0x01);
	CHECK(linux_check_image(image, sizeof(image), why, sizeof(why)) == 0);
}

static void
linux_check_image_refuses_with_the_reason(void)
{
	char why[128];

	make_bzimage(0x020f, 0x01);
	CHECK(linux_check_image(image, 512, why, sizeof(why)) == -1);
	CHECK(strstr(why, "not a Linux bzImage") != NULL);

	image[0x1fe] = 0;
	CHECK(linux_check_image(image, sizeof(image), why, sizeof(why)) == -1);
	CHECK(strstr(why, "not a Linux bzImage") != NULL);

	make_bzimage(0x0204, 0x01);
	CHECK(linux_check_image(image, sizeof(image), why, sizeof(why)) == -1);
	CHECK(strstr(why, "2.04 is too old") != NULL);

	make_bzimage(0x020f, 0x00);
	CHECK(linux_check_image(image, sizeof(image), why, sizeof(why)) == -1);
	CHECK(strstr(why, "64-bit") != NULL);

	make_bzimage(0x020f, 0x01);
	image[0x1f1] = 60; /* setup runs past the 8 KiB file */
	CHECK(linux_check_image(image, sizeof(image), why, sizeof(why)) == -1);
	CHECK(strstr(why, "truncated") != NULL);
}

static void
put32(size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		image[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

/* A relocatable x86-64 kernel as Debian builds it: 16 MiB preferred, 2 MiB aligned, 54 MiB to unpack. */
static void
make_relocatable(uint64_t pref)
{
	make_bzimage(0x020f, 0x01);
	put32(0x22c, 0x7fffffff);	/* initrd_addr_max */
	put32(0x230, 2 << 20);		/* kernel_alignment */
	image[0x234] = 1;		/* relocatable_kernel */
	put32(0x258, (uint32_t)pref);
	put32(0x25c, (uint32_t)(pref >> 32));
	put32(0x260, 54 << 20);		/* init_size */
}

static void
linux_load_address_prefers_the_kernels_address(void)
{
	make_relocatable(16 << 20);
	CHECK(linux_load_address(image, sizeof(image), 256ULL << 20, 1 << 20) == 16 << 20);
	CHECK(linux_load_address(image, sizeof(image), 256ULL << 20, 0) == 16 << 20);
	/* 16 + 54 MiB for the kernel, then the initrd: just fits, then not. */
	CHECK(linux_load_address(image, sizeof(image), 80ULL << 20, 10 << 20) == 16 << 20);
	CHECK(linux_load_address(image, sizeof(image), 80ULL << 20, (10 << 20) + 1) == 0x100000);
}

static void
linux_load_address_falls_back_to_1mib(void)
{
	make_relocatable(16 << 20);
	CHECK(linux_load_address(image, sizeof(image), 64ULL << 20, 0) == 0x100000); /* too small */
	image[0x234] = 0;
	CHECK(linux_load_address(image, sizeof(image), 256ULL << 20, 0) == 0x100000); /* cannot move */
	make_relocatable((16 << 20) + 4096);
	CHECK(linux_load_address(image, sizeof(image), 256ULL << 20, 0) == 0x100000); /* misaligned */
	make_relocatable(0xffffffffffe00000ULL);
	CHECK(linux_load_address(image, sizeof(image), 256ULL << 20, 0) == 0x100000); /* beyond RAM */
	make_relocatable(0);
	CHECK(linux_load_address(image, sizeof(image), 256ULL << 20, 0) == 0x100000); /* no preference */
	make_relocatable(16 << 20);
	put32(0x22c, (40 << 20) - 1); /* the initrd must end below 40 MiB */
	CHECK(linux_load_address(image, sizeof(image), 256ULL << 20, 1 << 20) == 0x100000);
}

static void
linux_cmdline_has_flag_matches_whole_words(void)
{
	CHECK(linux_cmdline_has_flag("nokaslr", "nokaslr"));
	CHECK(linux_cmdline_has_flag("console=ttyS0 nokaslr quiet", "nokaslr"));
	CHECK(linux_cmdline_has_flag("console=ttyS0 nokaslr", "nokaslr"));
	CHECK(!linux_cmdline_has_flag("console=ttyS0 quiet", "nokaslr"));
	CHECK(!linux_cmdline_has_flag("nokaslrx xnokaslr vmd.nokaslr", "nokaslr"));
	CHECK(!linux_cmdline_has_flag("", "nokaslr"));
	CHECK(linux_cmdline_has_flag("quiet\tnokaslr\n", "nokaslr")); /* tabs and newlines separate too */
}

int
main(void)
{
	RUN_TEST(linux_check_image_accepts_a_64bit_bzimage);
	RUN_TEST(linux_check_image_refuses_with_the_reason);
	RUN_TEST(linux_load_address_prefers_the_kernels_address);
	RUN_TEST(linux_load_address_falls_back_to_1mib);
	RUN_TEST(linux_cmdline_has_flag_matches_whole_words);
	TEST_EXIT();
}
