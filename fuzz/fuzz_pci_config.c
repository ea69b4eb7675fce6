/*
 * libFuzzer target for PCI configuration space as the guest drives it: the
 * input is a sequence of 8-byte port accesses (port 0xcf8 or 0xcfc-0xcff,
 * width, direction, value) on a bus with the host bridge and two functions
 * with BARs, so BAR programming, size probes and decoding changes move the
 * BARs on the MMIO bus in every order.  Afterwards every mapped BAR must
 * reach its own device at the address its register holds, the bus must hold
 * nothing else, and a BAR that should decode but does not must be in a
 * conflict with another.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "vm/vm.h"

__attribute__((weak)) void
vm_irq_line(struct vm *vm, int irq, int level)
{
}

__attribute__((weak)) void
vm_request_exit(struct vm *vm, int status)
{
}

/* Each BAR's device: a tag that says which BAR an access reached. */
struct bar_tag {
	const struct pci_bar *bar;
	bool reached;
};

static void
tag_access(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	((struct bar_tag *)device)->reached = true;
	if (!is_write)
		memset(data, 0, len);
}

static uint64_t
bar_register(const struct pci_function *fn, int b)
{
	const uint8_t *r = &fn->config[PCI_BAR0 + 4 * b];

	return ((uint64_t)r[0] | (uint64_t)r[1] << 8 | (uint64_t)r[2] << 16 | (uint64_t)r[3] << 24) &
	       ~(fn->bars[b].size - 1);
}

static bool
overlaps_a_mapped_bar(struct pci_function *fns, int n, uint64_t at, uint64_t size)
{
	for (int i = 0; i < n; i++)
		for (int b = 0; b < PCI_BARS; b++) {
			const struct pci_bar *bar = &fns[i].bars[b];

			if (bar->address != 0 && at < bar->address + bar->size && bar->address < at + size)
				return true;
		}
	return false;
}

/*
 * Every mapped BAR reaches its own device at its address; the bus holds
 * nothing else; a BAR that should decode and does not is in a conflict.
 */
static void
check_bars(struct vm *vm, struct pci_function *fns, int n)
{
	int mapped = 0;
	uint8_t data[4];

	for (int i = 0; i < n; i++)
		for (int b = 0; b < PCI_BARS; b++) {
			struct pci_bar *bar = &fns[i].bars[b];
			struct bar_tag *tag = bar->device;
			uint64_t want;

			if (bar->size == 0)
				continue;
			if (bar->address != 0) {
				mapped++;
				tag->reached = false;
				iobus_dispatch(&vm->mmio_bus, bar->address + bar->size - 4, data, 4, false);
				if (!tag->reached || bar->address != bar_register(&fns[i], b))
					abort();
				continue;
			}
			want = bar_register(&fns[i], b);
			if ((fns[i].config[PCI_COMMAND] & PCI_COMMAND_MEMORY) && want != 0 &&
			    want + bar->size <= MEM_PCI_MMIO_END && !overlaps_a_mapped_bar(fns, n, want, bar->size))
				abort(); /* free to decode, yet not mapped */
		}
	if (vm->mmio_bus.count != mapped)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct pci_function *fns = calloc(2, sizeof(*fns));

	if (pci_init(vm) < 0)
		abort();
	struct bar_tag tags[3] = { { &fns[0].bars[0] }, { &fns[1].bars[0] }, { &fns[1].bars[2] } };

	fns[0].bars[0] = (struct pci_bar){ .size = 0x4000, .handler = tag_access, .device = &tags[0] };
	fns[1].bars[0] = (struct pci_bar){ .size = 0x1000, .handler = tag_access, .device = &tags[1] };
	fns[1].bars[2] = (struct pci_bar){ .size = 0x10000, .handler = tag_access, .device = &tags[2] };
	for (int i = 0; i < 2; i++)
		if (pci_add_function(vm, &fns[i]) < 0)
			abort();
	for (size_t off = 0; off + 8 <= size; off += 8) {
		const uint8_t *a = data + off;
		uint32_t len = 1u << (a[1] % 3); /* 1, 2 or 4 bytes */
		uint64_t port = a[0] & 1 ? 0xcf8 : 0xcfc + (a[0] >> 1) % 4;
		uint8_t value[4];

		memcpy(value, a + 4, 4);
		iobus_dispatch(&vm->port_bus, port, value, len, a[2] & 1);
	}
	check_bars(vm, fns, 2);
	free(fns);
	free(vm->pci);
	free(vm);
	return 0;
}
