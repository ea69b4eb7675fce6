/*
 * Where PCI functions go: a slot each while slots last, then further
 * functions of device slots, whose function 0 then reads as multi-function;
 * BARs do not overlap.  No KVM needed: the bus is pure logic.
 */
#include <string.h>

#include "devices/pci.h"
#include "unit/check.h"
#include "vm/vm.h"

#define DEVICES 40 /* 16 disks, 16 interfaces, rng and a few more */

static void
pci_places_functions_when_slots_run_out(void)
{
	static struct vm vm;
	static struct pci_function fns[DEVICES];
	int seen[PCI_MAX_SLOTS][PCI_MAX_FUNCTIONS] = { 0 };

	CHECK(pci_init(&vm) == 0);
	for (int i = 0; i < DEVICES; i++) {
		fns[i].bars[0].size = 0x4000;
		CHECK(pci_add_function(&vm, &fns[i]) == fns[i].slot);
		CHECK(fns[i].slot >= 1 && fns[i].slot < PCI_MAX_SLOTS);
		CHECK(fns[i].function >= 0 && fns[i].function < PCI_MAX_FUNCTIONS);
		CHECK(seen[fns[i].slot][fns[i].function]++ == 0);
		for (int j = 0; j < i; j++)
			CHECK(fns[i].bars[0].address + 0x4000 <= fns[j].bars[0].address ||
			      fns[j].bars[0].address + 0x4000 <= fns[i].bars[0].address);
	}
	/* The first 31 get slots 1..31 as function 0; the rest share slots. */
	CHECK(fns[30].slot == 31 && fns[30].function == 0);
	CHECK(fns[31].slot == 1 && fns[31].function == 1);
	CHECK(fns[0].config[PCI_HEADER_TYPE] & PCI_HEADER_MULTIFUNCTION);
	CHECK(!(fns[30].config[PCI_HEADER_TYPE] & PCI_HEADER_MULTIFUNCTION));
}

int
main(void)
{
	RUN_TEST(pci_places_functions_when_slots_run_out);
	TEST_EXIT();
}
