/*
 * libFuzzer target for PCI configuration space as the guest drives it: the
 * input is a sequence of 8-byte port accesses (port 0xcf8 or 0xcfc-0xcff,
 * width, direction, value) on a bus with the host bridge and two functions
 * with BARs, so BAR programming, size probes and decoding changes move the
 * BARs on the MMIO bus in every order.  Afterwards every mapped BAR must be
 * reachable at its address and nowhere two BARs may overlap.
 */
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

static void
ignore_access(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (!is_write)
		memset(data, 0, len);
}

static void
check_bars(struct vm *vm, struct pci_function *fns, int n)
{
	uint8_t data[4];

	for (int i = 0; i < n; i++)
		for (int b = 0; b < PCI_BARS; b++) {
			uint64_t at = fns[i].bars[b].address;

			if (at != 0 && !iobus_dispatch(&vm->mmio_bus, at, data, 4, false))
				abort(); /* mapped, but not on the bus */
		}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct pci_function *fns = calloc(2, sizeof(*fns));

	if (pci_init(vm) < 0)
		abort();
	fns[0].bars[0] = (struct pci_bar){ .size = 0x4000, .handler = ignore_access };
	fns[1].bars[0] = (struct pci_bar){ .size = 0x1000, .handler = ignore_access };
	fns[1].bars[2] = (struct pci_bar){ .size = 0x10000, .handler = ignore_access };
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
