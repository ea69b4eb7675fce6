#include "common/size.h"
#include "unit/check.h"

static void
size_parse_accepts_suffixes_and_fractions(void)
{
	uint64_t b;

	CHECK(size_parse("4.5G", 1, &b) == 0 && b == 4831838208ULL);
	CHECK(size_parse("512M", 1, &b) == 0 && b == 512ULL << 20);
	CHECK(size_parse("512m", 1, &b) == 0 && b == 512ULL << 20);
	CHECK(size_parse("1T", 1, &b) == 0 && b == 1ULL << 40);
	CHECK(size_parse("64K", 1, &b) == 0 && b == 65536);
	CHECK(size_parse("18446744073709551615", 1, &b) == 0 && b == UINT64_MAX);
	CHECK(size_parse("100", 1, &b) == 0 && b == 100);
	CHECK(size_parse("100", 1 << 20, &b) == 0 && b == 100ULL << 20);
	CHECK(size_parse("0.5K", 1, &b) == 0 && b == 512);
}

static void
size_parse_refuses_garbage_and_overflow(void)
{
	uint64_t b;

	CHECK(size_parse("", 1, &b) == -1);
	CHECK(size_parse("G", 1, &b) == -1);
	CHECK(size_parse("-1G", 1, &b) == -1);
	CHECK(size_parse("1.G", 1, &b) == -1);
	CHECK(size_parse("1X", 1, &b) == -1);
	CHECK(size_parse("1GG", 1, &b) == -1);
	CHECK(size_parse("1.5", 1, &b) == -1);
	CHECK(size_parse("4GB", 1, &b) == -1);
	CHECK(size_parse("18446744073709551616", 1, &b) == -1);
	CHECK(size_parse("99999999999999999999", 1, &b) == -1);
	CHECK(size_parse("20000000T", 1, &b) == -1);
}

int
main(void)
{
	RUN_TEST(size_parse_accepts_suffixes_and_fractions);
	RUN_TEST(size_parse_refuses_garbage_and_overflow);
	TEST_EXIT();
}
