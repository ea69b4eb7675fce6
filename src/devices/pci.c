/*
 * PCI host bridge and config space.  The guest reaches config space through
 * the address register at 0xcf8 and the data window at 0xcfc..0xcff.
 */
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "devices/pci.h"
#include "vm/vm.h"

#define PCI_ADDRESS_PORT 0xcf8
#define PCI_DATA_PORT	 0xcfc
#define PCI_ENABLE	 0x80000000u

/* Red Hat's ID for a generic emulated PCIe host bridge: no driver quirks. */
#define HOST_BRIDGE_VENDOR 0x1b36
#define HOST_BRIDGE_DEVICE 0x0008
#define CLASS_HOST_BRIDGE  0x0600

/* An MSI route: a GSI whose irqfd delivers this message. */
struct pci_msi_route {
	uint64_t address;
	uint32_t data;
	bool valid;
};

struct pci_bus {
	struct vm *vm;
	pthread_mutex_t lock;
	uint32_t address;
	struct pci_function *slots[PCI_MAX_SLOTS][PCI_MAX_FUNCTIONS];
	struct pci_function host_bridge;
	uint64_t next_mmio; /* where the next BAR goes */

	pthread_mutex_t intx_lock;
	int intx_asserted[PCI_INTX_LINES]; /* devices holding GSI 16 + i up */

	pthread_mutex_t msi_lock;
	struct pci_msi_route msi[PCI_MSI_MAX_ROUTES]; /* GSI PCI_MSI_GSI_BASE + index */
	int msi_count;
};

void
pci_config_put16(struct pci_function *fn, uint32_t offset, uint16_t value)
{
	fn->config[offset] = (uint8_t)value;
	fn->config[offset + 1] = (uint8_t)(value >> 8);
}

void
pci_config_put32(struct pci_function *fn, uint32_t offset, uint32_t value)
{
	pci_config_put16(fn, offset, (uint16_t)value);
	pci_config_put16(fn, offset + 2, (uint16_t)(value >> 16));
}

void
pci_config_access(struct pci_function *fn, uint32_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (offset >= PCI_CONFIG_SIZE || len > PCI_CONFIG_SIZE - offset) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (!is_write) {
		if (fn->config_reading)
			fn->config_reading(fn, offset, len);
		memcpy(data, &fn->config[offset], len);
		return;
	}
	for (uint32_t i = 0; i < len; i++) {
		uint8_t mask = fn->writable[offset + i];
		fn->config[offset + i] = (uint8_t)((fn->config[offset + i] & ~mask) | (data[i] & mask));
	}
	if (fn->config_written)
		fn->config_written(fn, offset, len);
}

static struct pci_function *
pci_addressed_function(struct pci_bus *bus)
{
	uint32_t bus_number = (bus->address >> 16) & 0xff;
	uint32_t slot = (bus->address >> 11) & 0x1f;
	uint32_t function = (bus->address >> 8) & 0x7;

	if (!(bus->address & PCI_ENABLE) || bus_number != 0)
		return NULL;
	return bus->slots[slot][function];
}

static void
pci_address_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *bus = device;

	/* Only 32-bit accesses are mechanism #1; a byte at 0xcfb is the type 2 probe. */
	if (len != 4) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&bus->lock);
	if (is_write)
		memcpy(&bus->address, data, 4);
	else
		memcpy(data, &bus->address, 4);
	pthread_mutex_unlock(&bus->lock);
}

/* Where BAR i should be on the MMIO bus now: 0 when nowhere. */
static uint64_t
pci_bar_wanted(const struct pci_function *fn, int i)
{
	const uint8_t *reg = &fn->config[PCI_BAR0 + 4 * i];
	uint64_t addr = (uint64_t)reg[0] | (uint64_t)reg[1] << 8 | (uint64_t)reg[2] << 16 | (uint64_t)reg[3] << 24;

	if (!(fn->config[PCI_COMMAND] & PCI_COMMAND_MEMORY))
		return 0;
	addr &= ~(fn->bars[i].size - 1);
	/* Not at 0 (the BAR is unprogrammed) and not over the IOAPIC, LAPIC or firmware. */
	if (addr == 0 || addr + fn->bars[i].size > MEM_PCI_MMIO_END)
		return 0;
	return addr;
}

/*
 * Puts BAR i of fn where it should be now; returns whether it left a place
 * (which another BAR may have wanted).  A place another range already takes
 * leaves the BAR unmapped, as a conflict does on real hardware (the guest's
 * problem), until the place frees up.
 */
static bool
pci_place_bar(struct pci_bus *bus, struct pci_function *fn, int i)
{
	struct pci_bar *bar = &fn->bars[i];
	uint64_t from = bar->address, to;

	if (bar->size == 0 || (to = pci_bar_wanted(fn, i)) == from)
		return false;
	if (from != 0)
		iobus_unregister(&bus->vm->mmio_bus, from);
	bar->address = 0;
	if (to != 0 && iobus_register(&bus->vm->mmio_bus, to, bar->size, bar->handler, bar->device) == 0)
		bar->address = to;
	else if (to != 0)
		log_debug("PCI %02x.%d: BAR %d at %#llx overlaps another range", fn->slot, fn->function, i,
			  (unsigned long long)to);
	if (fn->bar_moved && bar->address != from)
		fn->bar_moved(fn, i, from);
	return from != 0;
}

/* After a write to the command register or a BAR of fn. */
static void
pci_update_bars(struct pci_bus *bus, struct pci_function *fn)
{
	bool freed = false;

	for (int i = 0; i < PCI_BARS; i++)
		freed |= pci_place_bar(bus, fn, i);
	if (!freed)
		return;
	/* BARs left out by a conflict get the place if it was theirs. */
	for (int slot = 0; slot < PCI_MAX_SLOTS; slot++)
		for (int f = 0; f < PCI_MAX_FUNCTIONS; f++) {
			struct pci_function *other = bus->slots[slot][f];

			for (int i = 0; other != NULL && i < PCI_BARS; i++)
				if (other->bars[i].address == 0)
					pci_place_bar(bus, other, i);
		}
}

static bool
pci_overlaps(uint32_t offset, uint32_t len, uint32_t start, uint32_t end)
{
	return offset < end && start < offset + len;
}

static void
pci_data_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *bus = device;
	struct pci_function *fn;
	uint32_t reg;

	pthread_mutex_lock(&bus->lock);
	fn = pci_addressed_function(bus);
	reg = (bus->address & 0xfc) + (uint32_t)offset;
	if (fn) {
		pci_config_access(fn, reg, data, len, is_write);
		if (is_write && (pci_overlaps(reg, len, PCI_COMMAND, PCI_COMMAND + 2) ||
				 pci_overlaps(reg, len, PCI_BAR0, PCI_BAR0 + 4 * PCI_BARS)))
			pci_update_bars(bus, fn);
	} else if (!is_write) {
		memset(data, 0xff, len);
	}
	pthread_mutex_unlock(&bus->lock);
}

static int
pci_assign_bars(struct vm *vm, struct pci_bus *bus, struct pci_function *fn)
{
	for (int i = 0; i < PCI_BARS; i++) {
		struct pci_bar *bar = &fn->bars[i];
		uint64_t addr = (bus->next_mmio + bar->size - 1) & ~(bar->size - 1);
		uint32_t offset = PCI_BAR0 + 4 * (uint32_t)i;

		if (bar->size == 0)
			continue;
		if (addr + bar->size > MEM_PCI_MMIO_END || addr < bus->next_mmio)
			return -1;
		bar->address = addr;
		bus->next_mmio = addr + bar->size;
		/* 32-bit memory BAR; the size shows through the writable mask. */
		pci_config_put32(fn, offset, (uint32_t)addr);
		memset(&fn->writable[offset], 0, 4);
		for (int b = 0; b < 4; b++)
			fn->writable[offset + b] = (uint8_t)(~(bar->size - 1) >> (8 * b));
		if (iobus_register(&vm->mmio_bus, addr, bar->size, bar->handler, bar->device) < 0)
			return -1;
	}
	return 0;
}

/*
 * A slot of its own while there are free slots; after that, the next free
 * function of a device slot, whose function 0 then says it is multi-function
 * (a VM with every disk and interface it may have needs more than 31).
 */
static int
pci_free_place(struct pci_bus *bus, int *slot, int *function)
{
	for (*slot = 0; *slot < PCI_MAX_SLOTS; (*slot)++)
		if (bus->slots[*slot][0] == NULL) {
			*function = 0;
			return 0;
		}
	for (*function = 1; *function < PCI_MAX_FUNCTIONS; (*function)++)
		for (*slot = 1; *slot < PCI_MAX_SLOTS; (*slot)++)
			if (bus->slots[*slot][*function] == NULL)
				return 0;
	return -1;
}

int
pci_add_function(struct vm *vm, struct pci_function *fn)
{
	struct pci_bus *bus = vm->pci;
	int slot, function;

	if (pci_free_place(bus, &slot, &function) < 0) {
		log_warnx("PCI: no free slot or function");
		return -1;
	}
	if (pci_assign_bars(vm, bus, fn) < 0) {
		log_warnx("PCI: no room for the BARs of %02x.%d", slot, function);
		return -1;
	}
	fn->writable[PCI_COMMAND] = 0x07; /* I/O, memory, bus master */
	fn->config[PCI_COMMAND] |= PCI_COMMAND_MEMORY; /* pci_assign_bars mapped the BARs */
	fn->writable[PCI_COMMAND + 1] = 0x04; /* INTx disable */
	fn->writable[PCI_INTERRUPT_LINE] = 0xff;
	fn->slot = slot;
	fn->function = function;
	bus->slots[slot][function] = fn;
	if (function > 0)
		bus->slots[slot][0]->config[PCI_HEADER_TYPE] |= PCI_HEADER_MULTIFUNCTION;
	return slot;
}

int
pci_init(struct vm *vm)
{
	struct pci_bus *bus = calloc(1, sizeof(*bus));
	struct pci_function *host;

	if (bus == NULL)
		return -1;
	pthread_mutex_init(&bus->lock, NULL);
	pthread_mutex_init(&bus->msi_lock, NULL);
	pthread_mutex_init(&bus->intx_lock, NULL);
	bus->next_mmio = MEM_PCI_MMIO_START;
	bus->vm = vm;
	vm->pci = bus;

	host = &bus->host_bridge;
	pci_config_put16(host, PCI_VENDOR_ID, HOST_BRIDGE_VENDOR);
	pci_config_put16(host, PCI_DEVICE_ID, HOST_BRIDGE_DEVICE);
	pci_config_put16(host, PCI_CLASS_DEVICE, CLASS_HOST_BRIDGE);
	if (pci_add_function(vm, host) != 0)
		return -1;
	/* One port wide: 0xcf9 next to it is the reset control register. */
	if (iobus_register(&vm->port_bus, PCI_ADDRESS_PORT, 1, pci_address_io, bus) < 0)
		return -1;
	return iobus_register(&vm->port_bus, PCI_DATA_PORT, 4, pci_data_io, bus);
}

int
pci_intx_gsi(int slot)
{
	/* The DSDT's _PRT: pin INTA of slot S goes to GSI 16 + S mod 8. */
	return 16 + slot % 8;
}

void
pci_intx_level(struct vm *vm, int gsi, bool asserted)
{
	struct pci_bus *bus = vm->pci;
	int *count = &bus->intx_asserted[(gsi - 16) % PCI_INTX_LINES];

	pthread_mutex_lock(&bus->intx_lock);
	if (asserted && (*count)++ == 0)
		vm_irq_line(vm, gsi, 1);
	else if (!asserted && *count > 0 && --(*count) == 0)
		vm_irq_line(vm, gsi, 0);
	pthread_mutex_unlock(&bus->intx_lock);
}

int
pci_msi_alloc(struct vm *vm)
{
	struct pci_bus *bus = vm->pci;
	int gsi = -1;

	pthread_mutex_lock(&bus->msi_lock);
	if (bus->msi_count < PCI_MSI_MAX_ROUTES)
		gsi = PCI_MSI_GSI_BASE + bus->msi_count++;
	pthread_mutex_unlock(&bus->msi_lock);
	return gsi;
}

/*
 * KVM_SET_GSI_ROUTING replaces the whole table, so it carries the routes
 * KVM sets up by itself with the in-kernel irqchip (GSI 0-15 to the PICs,
 * 0-23 to the IOAPIC) along with the MSI routes.  Caller holds msi_lock.
 */
static int
pci_msi_commit(struct vm *vm, struct pci_bus *bus)
{
	enum { IRQCHIP_ROUTES = 16 + 24 };
	struct kvm_irq_routing *r;
	struct kvm_irq_routing_entry *e;
	uint32_t n = 0;
	int rc;

	/* Not a hot path: the guest programs its vectors once. */
	r = calloc(1, sizeof(*r) + (IRQCHIP_ROUTES + PCI_MSI_MAX_ROUTES) * sizeof(*e));
	if (r == NULL)
		return -1;
	e = r->entries;
	for (uint32_t gsi = 0; gsi < 16; gsi++)
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi,
			.type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				       .pin = gsi % 8 },
		};
	for (uint32_t gsi = 0; gsi < 24; gsi++)
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi,
			.type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
	for (int i = 0; i < bus->msi_count; i++) {
		if (!bus->msi[i].valid)
			continue;
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = (uint32_t)(PCI_MSI_GSI_BASE + i),
			.type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)bus->msi[i].address,
				   .address_hi = (uint32_t)(bus->msi[i].address >> 32),
				   .data = bus->msi[i].data },
		};
	}
	r->nr = n;
	rc = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r);
	free(r);
	if (rc < 0) {
		log_warn("KVM_SET_GSI_ROUTING");
		return -1;
	}
	return 0;
}

int
pci_msi_route(struct vm *vm, int gsi, uint64_t address, uint32_t data, bool valid)
{
	struct pci_bus *bus = vm->pci;
	int i = gsi - PCI_MSI_GSI_BASE, rc = 0;
	struct pci_msi_route *route;

	if (i < 0 || i >= PCI_MSI_MAX_ROUTES)
		return -1;
	pthread_mutex_lock(&bus->msi_lock);
	route = &bus->msi[i];
	if (route->address != address || route->data != data || route->valid != valid) {
		route->address = address;
		route->data = data;
		route->valid = valid;
		rc = pci_msi_commit(vm, bus);
	}
	pthread_mutex_unlock(&bus->msi_lock);
	return rc;
}
