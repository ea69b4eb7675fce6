#include <string.h>

#include "devices/iobus.h"
#include "unit/check.h"

static int last_device;
static uint64_t last_offset;

static void
record(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	last_device = *(int *)device;
	last_offset = offset;
	if (!is_write)
		memset(data, 0x5a, len);
}

static void
iobus_dispatches_to_the_range_holding_the_address(void)
{
	static struct iobus bus;
	int a = 1, b = 2, c = 3;
	uint8_t data[4];

	CHECK(iobus_register(&bus, 0x3f8, 8, record, &b) == 0);
	CHECK(iobus_register(&bus, 0x70, 2, record, &a) == 0);
	CHECK(iobus_register(&bus, 0xcf8, 8, record, &c) == 0);
	CHECK(iobus_dispatch(&bus, 0x3fd, data, 1, false));
	CHECK(last_device == 2 && last_offset == 5 && data[0] == 0x5a);
	CHECK(iobus_dispatch(&bus, 0x70, data, 1, true));
	CHECK(last_device == 1 && last_offset == 0);
	CHECK(iobus_dispatch(&bus, 0xcff, data, 1, false));
	CHECK(last_device == 3 && last_offset == 7);
}

static void
iobus_reads_all_ones_where_nothing_listens(void)
{
	static struct iobus bus;
	int a = 1;
	uint8_t data[4] = { 0 };

	CHECK(iobus_register(&bus, 0x70, 2, record, &a) == 0);
	CHECK(!iobus_dispatch(&bus, 0x72, data, 4, false));
	CHECK(data[0] == 0xff && data[3] == 0xff);
	CHECK(!iobus_dispatch(&bus, 0x6f, data, 1, false));
}

static void
iobus_refuses_overlaps_and_empty_ranges(void)
{
	static struct iobus bus;
	int a = 1;

	CHECK(iobus_register(&bus, 0x100, 0x10, record, &a) == 0);
	CHECK(iobus_register(&bus, 0x10f, 1, record, &a) == -1);
	CHECK(iobus_register(&bus, 0xf8, 0x9, record, &a) == -1);
	CHECK(iobus_register(&bus, 0x200, 0, record, &a) == -1);
	CHECK(iobus_register(&bus, UINT64_MAX, 2, record, &a) == -1);
	CHECK(iobus_register(&bus, 0x110, 1, record, &a) == 0);
}

int
main(void)
{
	RUN_TEST(iobus_dispatches_to_the_range_holding_the_address);
	RUN_TEST(iobus_reads_all_ones_where_nothing_listens);
	RUN_TEST(iobus_refuses_overlaps_and_empty_ranges);
	TEST_EXIT();
}
