/*
 * Ports Linux pokes during boot that need no behaviour: the POST/delay port
 * 0x80 (written to slow down I/O), the DMA page registers around it, and the
 * fast A20 gate 0x92.  Claiming them keeps reads at zero and stops them from
 * looking like missing hardware.
 */
#include "devices/legacy.h"
#include "vm/vm.h"

static void
ignore_port(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (!is_write)
		for (uint32_t i = 0; i < len; i++)
			data[i] = 0;
}

int
debug_ports_init(struct vm *vm)
{
	if (iobus_register(&vm->port_bus, 0x80, 0x10, ignore_port, vm) < 0) /* POST code, DMA pages */
		return -1;
	return iobus_register(&vm->port_bus, 0x92, 1, ignore_port, vm); /* A20 gate: always on */
}
