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

int
main(void)
{
	RUN_TEST(linux_check_image_accepts_a_64bit_bzimage);
	RUN_TEST(linux_check_image_refuses_with_the_reason);
	TEST_EXIT();
}
