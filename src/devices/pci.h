/*
 * PCI bus 0 with configuration mechanism #1 (ports 0xcf8/0xcfc).  A device
 * adds a function with its config space; BARs get addresses in the MMIO hole
 * when the function is added, with memory decoding on, as firmware would
 * leave them for a directly booted kernel.  The guest may move them (SeaBIOS
 * assigns its own): a BAR's range is on the MMIO bus while the function's
 * memory decoding is on, at the address its register holds.
 */
#ifndef VMD_PCI_H
#define VMD_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/iobus.h"

struct vm;

#define PCI_MAX_SLOTS	   32
#define PCI_MAX_FUNCTIONS  8
#define PCI_CONFIG_SIZE	   256
#define PCI_BARS	   6

/* Standard config space offsets. */
#define PCI_VENDOR_ID	   0x00
#define PCI_DEVICE_ID	   0x02
#define PCI_COMMAND	   0x04
#define PCI_COMMAND_MEMORY 0x02
#define PCI_STATUS	   0x06
#define PCI_REVISION	   0x08
#define PCI_CLASS_PROG	   0x09
#define PCI_CLASS_DEVICE   0x0a
#define PCI_HEADER_TYPE	   0x0e
#define PCI_BAR0	   0x10
#define PCI_SUBSYS_VENDOR  0x2c
#define PCI_SUBSYS_ID	   0x2e
#define PCI_CAPABILITIES   0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN  0x3d
#define PCI_STATUS_CAPS	   0x10
#define PCI_HEADER_MULTIFUNCTION 0x80

struct pci_bar {
	uint64_t size;	       /* 0: unused; a power of two of at least 4 KiB */
	io_handler_fn *handler; /* MMIO accesses, offset relative to the BAR */
	void *device;
	uint64_t address;      /* where it is on the MMIO bus now; 0: not mapped */
};

struct pci_function {
	uint8_t config[PCI_CONFIG_SIZE];
	uint8_t writable[PCI_CONFIG_SIZE]; /* bits the guest may change */
	struct pci_bar bars[PCI_BARS];
	/* Called after the guest wrote config space (e.g. MSI-X enable), may be NULL. */
	void (*config_written)(struct pci_function *fn, uint32_t offset, uint32_t len);
	/* Called before the guest reads config space, to refresh what it will see; may be NULL. */
	void (*config_reading)(struct pci_function *fn, uint32_t offset, uint32_t len);
	/* Called when BAR bar left address from (0: was not mapped) for bars[bar].address; may be NULL. */
	void (*bar_moved)(struct pci_function *fn, int bar, uint64_t from);
	void *device;
	int slot;
	int function;
};

struct pci_bus;

int pci_init(struct vm *vm);
/* Adds fn in the next free slot (or function, when slots run out); returns the slot or -1. */
int pci_add_function(struct vm *vm, struct pci_function *fn);

/* Helpers for building config space. */
void pci_config_put16(struct pci_function *fn, uint32_t offset, uint16_t value);
void pci_config_put32(struct pci_function *fn, uint32_t offset, uint32_t value);

/* The IOAPIC input (GSI) of INTA of a slot, as the DSDT's _PRT says. */
int pci_intx_gsi(int slot);
/*
 * A function raises (asserted) or releases its INTx line.  The 8 lines are
 * shared by every slot beyond the eighth, so a line stays up while any
 * function holds it; each function reports only its own transitions.
 */
#define PCI_INTX_LINES 8
void pci_intx_level(struct vm *vm, int gsi, bool asserted);

/*
 * MSI through KVM's GSI routing: each vector gets a GSI of its own (with an
 * irqfd on it); pci_msi_route points the GSI at the message the guest
 * programmed, or removes the route (valid false).
 */
#define PCI_MSI_GSI_BASE   24 /* above the IOAPIC's pins */
#define PCI_MSI_MAX_ROUTES 256
int pci_msi_alloc(struct vm *vm);
int pci_msi_route(struct vm *vm, int gsi, uint64_t address, uint32_t data, bool valid);

/* Pure logic, exposed for unit tests: a config access through mechanism #1. */
void pci_config_access(struct pci_function *fn, uint32_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
