/*
 * The VM process: one KVM virtual machine, its vCPU threads and its devices.
 * struct vm is this process's one environment struct.
 */
#ifndef VMD_VM_H
#define VMD_VM_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/iobus.h"
#include "net/dhcp.h"

/* Exit status of the VM process (vmd -V). */
#define VM_EXIT_POWEROFF 0 /* the guest powered off */
#define VM_EXIT_ERROR	 1 /* refused to start, or an internal error */
#define VM_EXIT_REBOOT	 3 /* the guest asked for a reset: start it again */
#define VM_EXIT_FILTER	 4 /* killed by its system call filter (its log names the call) */

/* Guest physical memory layout. */
#define GIB			 (1ULL << 30)
#define MIB			 (1ULL << 20)
#define MEM_HOLE_START		 (3 * GIB)    /* PCI MMIO, IOAPIC, LAPIC, firmware */
#define MEM_HIGH_START		 (4 * GIB)    /* RAM beyond the hole */
#define MEM_PCI_MMIO_START	 MEM_HOLE_START
#define MEM_PCI_MMIO_END	 0xfec00000ULL /* IOAPIC above it */
#define VM_MIN_MEMORY		 (16 * MIB)
#define VM_MAX_MEMORY		 (1ULL << 40) /* 1 TiB: beyond that is a typo */

/* Legacy ISA interrupt lines. */
#define IRQ_PIT	 0
#define IRQ_COM1 4
#define IRQ_SCI	 9
#define IRQ_RTC	 8

#define VM_CONFIG_DISKS 16
#define VM_CONFIG_NICS	16

struct disk;

/* A NIC: a tap opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (src/net/tap.h). */
struct vm_tap {
	int fd;
	uint8_t lladdr[6];
	bool lladdr_set; /* else a stable MAC from the tap's name */
	bool locked;	 /* drop guest frames from any other source MAC */
	bool local;	 /* a local interface: answer the guest's DHCP with lease */
	struct dhcp_lease lease;
};

struct vm_config {
	const char *kernel_path; /* a bzImage or a BIOS image; NULL: the default firmware */
	const char *initrd_path;
	const char *cmdline;
	uint64_t memory;
	int ncpus;
	int console_in;	 /* fd the guest's console reads from */
	int console_out; /* fd the guest's console writes to */
	/* Devices, already open (read-only disks opened so); the VM process owns them. */
	struct disk *disks[VM_CONFIG_DISKS];
	int ndisks;
	int cdrom_index; /* the disk that is the CD-ROM image (serial "cdrom"), or -1 */
	int boot_device; /* enum firmware_boot: where firmware boots from */
	struct vm_tap taps[VM_CONFIG_NICS];
	int ntaps;
	/* Under the daemon (vm_ipc.c), opened by the parent; -1 standalone. */
	int kvm_fd;
	int kernel_fd;
	int initrd_fd;
	int netboot_fd; /* the network boot ROM (boot device net) */
	int control_fd; /* the socket to vmm */
};

struct vcpu {
	struct vm *vm;
	int index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
};

struct uart;
struct rtc;
struct acpi_pm;
struct pci_bus;
struct virtio_device;

/* Sent to a vCPU thread to make it leave KVM_RUN. */
#define SIGNAL_VCPU_KICK SIGUSR1

struct vm {
	struct vm_config config;
	int kvm_fd;
	int vm_fd;

	uint8_t *ram;	       /* host mapping of all guest RAM: low part, then high */
	uint64_t ram_size;
	uint64_t low_ram_size; /* mapped at guest address 0 */
	uint64_t high_ram_size; /* mapped at MEM_HIGH_START */

	int ncpus;
	struct vcpu *vcpus;

	struct iobus port_bus;
	struct iobus mmio_bus;

	struct uart *uart;
	struct rtc *rtc;
	struct acpi_pm *pm;
	struct pci_bus *pci;
	struct virtio_device *virtio_devices; /* a list, for pause */

	int wakeup_fd;		 /* eventfd: the event thread looks at exit_status */
	atomic_int exit_status;	 /* -1 while running */

	atomic_bool pause_requested; /* vCPUs park in vm_pause_park() */
	struct vm_daemon *daemon;    /* under the daemon only (vm_ipc.c) */
};

/* Ends the VM with status (VM_EXIT_*): the first request wins. */
void vm_request_exit(struct vm *vm, int status);
/* Raises or lowers a legacy interrupt line. */
void vm_irq_line(struct vm *vm, int irq, int level);

/*
 * Guest physical range [gpa, gpa+len) as a host pointer, or NULL when any
 * of it falls outside guest RAM.  Every guest-supplied address goes through
 * here.
 */
void *guest_ptr(const struct vm *vm, uint64_t gpa, uint64_t len);

/* The VM process's entry: vmd -V ... */
int vm_main(int argc, char *argv[]);

#endif
