/*
 * Just enough of the i8042 keyboard controller for the classic PC reset: the
 * guest writes 0xfe (pulse the reset line) to the command port.  No keyboard
 * is attached, so the data port has nothing to give.
 */
#include "devices/legacy.h"
#include "vm/vm.h"

#define I8042_DATA_PORT	   0x60
#define I8042_COMMAND_PORT 0x64
#define CMD_PULSE_RESET	   0xfe

static void
i8042_data(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (!is_write)
		data[0] = 0;
}

static void
i8042_command(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct vm *vm = device;

	if (!is_write)
		data[0] = 0; /* status: output buffer empty, input buffer empty */
	else if (data[0] == CMD_PULSE_RESET)
		vm_request_exit(vm, VM_EXIT_REBOOT);
}

int
i8042_init(struct vm *vm)
{
	if (iobus_register(&vm->port_bus, I8042_DATA_PORT, 1, i8042_data, vm) < 0)
		return -1;
	return iobus_register(&vm->port_bus, I8042_COMMAND_PORT, 1, i8042_command, vm);
}
