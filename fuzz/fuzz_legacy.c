/*
 * libFuzzer target for the legacy PC devices through their I/O handlers,
 * on a port bus set up as a VM's: the UART (COM1), the CMOS RTC, the ACPI
 * PM blocks and reset register, the i8042, the debug ports and the PCI
 * configuration ports beside them.  The input is a sequence of 4-byte
 * records: a port (from the devices' ports and a few around them), width
 * and direction, a value; two record kinds instead type bytes at the
 * console and press the power button, as the event thread does.
 * Afterwards the interrupt lines must agree with the devices' state: COM1's
 * line with what IIR says, the SCI with PM1_STS & PM1_EN.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/acpi_pm.h"
#include "devices/legacy.h"
#include "devices/pci.h"
#include "devices/uart.h"
#include "vm/vm.h"

static int irq_levels[24];
static int exits;

__attribute__((weak)) void
vm_irq_line(struct vm *vm, int irq, int level)
{
	if (irq < 0 || irq >= 24 || (level != 0 && level != 1))
		abort();
	irq_levels[irq] = level;
}

__attribute__((weak)) void
vm_request_exit(struct vm *vm, int status)
{
	exits++;
}

static const uint16_t ports[] = {
	0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x3f7, 0x400, /* COM1 and beside */
	0x70,  0x71,  0x72,						       /* RTC */
	0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x606, 0x607, 0x608, 0x609, 0x60a, 0x60b, 0x60c, /* ACPI PM */
	0xcf8, 0xcf9, 0xcfa, 0xcfb, 0xcfc, 0xcfd, 0xcfe, 0xcff,		       /* PCI, reset */
	0x60,  0x64,  0x61,						       /* i8042 */
	0x80,  0x84,  0x8f,  0x90,  0x92,				       /* debug, A20 */
};
#define NPORTS	   (sizeof(ports) / sizeof(ports[0]))
#define OP_CONSOLE 0xfe
#define OP_BUTTON  0xff

static uint8_t
port_read8(struct vm *vm, uint16_t port)
{
	uint8_t value = 0;

	iobus_dispatch(&vm->port_bus, port, &value, 1, false);
	return value;
}

static void
check_lines(struct vm *vm)
{
	uint8_t sts = port_read8(vm, ACPI_PM1A_EVT_PORT), sts_hi = port_read8(vm, ACPI_PM1A_EVT_PORT + 1);
	uint8_t en = port_read8(vm, ACPI_PM1A_EVT_PORT + 2), en_hi = port_read8(vm, ACPI_PM1A_EVT_PORT + 3);
	bool sci = ((sts & en) | (sts_hi & en_hi)) != 0;
	int com1 = irq_levels[IRQ_COM1];

	if (sci != acpi_pm_sci_level(vm->pm) || sci != irq_levels[IRQ_SCI])
		abort();
	/* IIR bit 0 clear: an interrupt is pending, so the line must be up (before this read changes it). */
	if ((port_read8(vm, UART_COM1_PORT + 2) & 1) == com1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int null_fd = -1;
	struct vm *vm = calloc(1, sizeof(*vm));

	if (null_fd < 0 && (null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		abort();
	memset(irq_levels, 0, sizeof(irq_levels));
	if (uart_init(vm, null_fd) < 0 || rtc_init(vm) < 0 || acpi_pm_init(vm) < 0 || i8042_init(vm) < 0 ||
	    debug_ports_init(vm) < 0 || pci_init(vm) < 0)
		abort();
	for (size_t off = 0; off + 4 <= size; off += 4) {
		const uint8_t *a = data + off;
		uint8_t value[4] = { a[2], a[3], a[2] ^ a[3], a[3] };

		if (a[0] == OP_CONSOLE) {
			uart_receive(vm->uart, a + 1, 3);
		} else if (a[0] == OP_BUTTON) {
			acpi_pm_press_power_button(vm->pm);
		} else {
			uint32_t len = 1u << (a[1] % 3); /* 1, 2 or 4 bytes */

			iobus_dispatch(&vm->port_bus, ports[a[0] % NPORTS], value, len, a[1] & 0x80);
		}
	}
	check_lines(vm);
	acpi_pm_free(vm->pm);
	free(vm->uart);
	free(vm->rtc);
	free(vm->pci);
	free(vm);
	return 0;
}
