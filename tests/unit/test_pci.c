#include <string.h>

#include "devices/pci.h"
#include "unit/check.h"

static void
pci_config_writes_only_writable_bits(void)
{
	static struct pci_function fn;
	uint8_t data[4] = { 0xff, 0xff, 0xff, 0xff };
	uint32_t value;

	pci_config_put16(&fn, PCI_VENDOR_ID, 0x1af4);
	fn.writable[PCI_COMMAND] = 0x07;
	pci_config_access(&fn, PCI_VENDOR_ID, data, 4, true);
	pci_config_access(&fn, PCI_VENDOR_ID, data, 2, false);
	CHECK(data[0] == 0xf4 && data[1] == 0x1a);

	memset(data, 0xff, 4);
	pci_config_access(&fn, PCI_COMMAND, data, 2, true);
	pci_config_access(&fn, PCI_COMMAND, data, 2, false);
	CHECK(data[0] == 0x07 && data[1] == 0x00);

	/* A BAR of 4 KiB answers the all-ones probe with its size. */
	pci_config_put32(&fn, PCI_BAR0, 0xc0000000);
	fn.writable[PCI_BAR0 + 1] = 0xf0;
	fn.writable[PCI_BAR0 + 2] = 0xff;
	fn.writable[PCI_BAR0 + 3] = 0xff;
	memset(data, 0xff, 4);
	pci_config_access(&fn, PCI_BAR0, data, 4, true);
	pci_config_access(&fn, PCI_BAR0, data, 4, false);
	memcpy(&value, data, 4);
	CHECK(value == 0xfffff000);
}

static void
pci_config_refuses_accesses_past_the_end(void)
{
	static struct pci_function fn;
	uint8_t data[4] = { 0 };

	pci_config_access(&fn, 254, data, 4, false);
	CHECK(data[0] == 0xff && data[3] == 0xff);
	data[0] = 1;
	pci_config_access(&fn, 256, data, 1, true); /* ignored, no overflow */
}

int
main(void)
{
	RUN_TEST(pci_config_writes_only_writable_bits);
	RUN_TEST(pci_config_refuses_accesses_past_the_end);
	TEST_EXIT();
}
