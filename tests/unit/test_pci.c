#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "unit/check.h"
#include "vm/vm.h"

__attribute__((weak)) void
vm_irq_line(struct vm *vm, int irq, int level)
{
}

__attribute__((weak)) void
vm_request_exit(struct vm *vm, int status)
{
}

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

/* A device with one 16 KiB BAR that counts the accesses it gets. */
struct counting_device {
	int accesses;
	int moves;
	uint64_t last_from;
};

static void
count_access(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	((struct counting_device *)device)->accesses++;
	if (!is_write)
		memset(data, 0, len);
}

static void
note_move(struct pci_function *fn, int bar, uint64_t from)
{
	struct counting_device *d = fn->device;

	d->moves++;
	d->last_from = from;
}

static void
config_write32(struct vm *vm, int slot, uint32_t reg, uint32_t value)
{
	uint32_t address = 0x80000000u | (uint32_t)slot << 11 | reg;

	iobus_dispatch(&vm->port_bus, 0xcf8, (uint8_t *)&address, 4, true);
	iobus_dispatch(&vm->port_bus, 0xcfc, (uint8_t *)&value, 4, true);
}

static uint32_t
config_read32(struct vm *vm, int slot, uint32_t reg)
{
	uint32_t address = 0x80000000u | (uint32_t)slot << 11 | reg, value;

	iobus_dispatch(&vm->port_bus, 0xcf8, (uint8_t *)&address, 4, true);
	iobus_dispatch(&vm->port_bus, 0xcfc, (uint8_t *)&value, 4, false);
	return value;
}

static bool
reaches_device(struct vm *vm, uint64_t address)
{
	uint8_t data[4];

	return iobus_dispatch(&vm->mmio_bus, address, data, 4, false);
}

/* What firmware does: size the BAR, move it, turn decoding off and on. */
static void
pci_bars_follow_the_guest(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct pci_function *fn = calloc(1, sizeof(*fn));
	struct pci_function *other = calloc(1, sizeof(*other));
	struct counting_device dev = { 0 }, dev2 = { 0 };
	uint64_t first;
	int slot, slot2;

	CHECK(pci_init(vm) == 0);
	fn->bars[0] = (struct pci_bar){ .size = 0x4000, .handler = count_access, .device = &dev };
	fn->bar_moved = note_move;
	fn->device = &dev;
	slot = pci_add_function(vm, fn);
	CHECK(slot > 0);
	first = fn->bars[0].address;
	/* Placed and decoding, as a directly booted kernel expects. */
	CHECK(first >= MEM_PCI_MMIO_START && reaches_device(vm, first));
	CHECK(config_read32(vm, slot, PCI_COMMAND) & PCI_COMMAND_MEMORY);

	/* The size probe, with decoding still on: the BAR moves and comes back. */
	config_write32(vm, slot, PCI_BAR0, 0xffffffff);
	CHECK(config_read32(vm, slot, PCI_BAR0) == 0xffffc000);
	config_write32(vm, slot, PCI_BAR0, (uint32_t)first);
	CHECK(fn->bars[0].address == first && reaches_device(vm, first));

	config_write32(vm, slot, PCI_BAR0, 0xfeb00000);
	CHECK(fn->bars[0].address == 0xfeb00000 && dev.last_from == first);
	CHECK(reaches_device(vm, 0xfeb00000 + 0x3ffc) && !reaches_device(vm, first));

	/* Decoding off: nowhere; on again: back at the programmed address. */
	config_write32(vm, slot, PCI_COMMAND, 0);
	CHECK(fn->bars[0].address == 0 && !reaches_device(vm, 0xfeb00000));
	config_write32(vm, slot, PCI_COMMAND, PCI_COMMAND_MEMORY);
	CHECK(fn->bars[0].address == 0xfeb00000 && reaches_device(vm, 0xfeb00000));

	/* Onto another function's BAR: left out until that one moves away. */
	other->bars[0] = (struct pci_bar){ .size = 0x4000, .handler = count_access, .device = &dev2 };
	slot2 = pci_add_function(vm, other);
	CHECK(slot2 > 0);
	config_write32(vm, slot2, PCI_BAR0, 0xfeb00000);
	CHECK(other->bars[0].address == 0 && fn->bars[0].address == 0xfeb00000);
	config_write32(vm, slot, PCI_BAR0, 0xfea00000);
	CHECK(fn->bars[0].address == 0xfea00000 && other->bars[0].address == 0xfeb00000);
	CHECK(reaches_device(vm, 0xfeb00000) && dev2.accesses == 1);

	/* Over the IOAPIC, or at 0: not mapped. */
	config_write32(vm, slot, PCI_BAR0, 0xfec00000);
	CHECK(fn->bars[0].address == 0 && !reaches_device(vm, 0xfec00000));
	config_write32(vm, slot, PCI_BAR0, 0);
	CHECK(fn->bars[0].address == 0);
	CHECK(dev.moves >= 6);
	free(other);
	free(fn);
	free(vm->pci);
	free(vm);
}

int
main(void)
{
	RUN_TEST(pci_config_writes_only_writable_bits);
	RUN_TEST(pci_config_refuses_accesses_past_the_end);
	RUN_TEST(pci_bars_follow_the_guest);
	TEST_EXIT();
}
