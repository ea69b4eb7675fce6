/*
 * Booting through firmware: a BIOS image (SeaBIOS, Debian's `seabios`
 * package) mapped read-only below 4 GiB, which then boots from a disk or the
 * CD-ROM as a PC BIOS does.  vmd hands it what a PC's firmware would find:
 * the memory size and CPU count in CMOS, and through fw_cfg the memory map,
 * the boot order, the serial console and the ACPI tables.
 */
#ifndef VMD_FIRMWARE_H
#define VMD_FIRMWARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

/* The BIOS image used when a VM has no kernel. */
#ifndef FIRMWARE_DEFAULT_PATH
#define FIRMWARE_DEFAULT_PATH "/usr/share/seabios/bios-256k.bin"
#endif

/*
 * The option ROM that network-boots a virtio NIC (boot device net): iPXE,
 * from Debian's ipxe-qemu package.  The firmware runs it for the first
 * interface, which then asks DHCP for what to boot.
 */
#ifndef FIRMWARE_NETBOOT_ROM_PATH
#define FIRMWARE_NETBOOT_ROM_PATH "/usr/lib/ipxe/qemu/pxe-virtio.rom"
#endif
#define FIRMWARE_NETBOOT_ROM_MAX (1024 * 1024)

#define FIRMWARE_MIN_SIZE (64 * 1024)
#define FIRMWARE_MAX_SIZE (16 * 1024 * 1024)

/* Where the boot goes first (the values of enum vm_boot_device). */
enum firmware_boot {
	FIRMWARE_BOOT_DEFAULT = 0, /* the disks in order, then the CD-ROM */
	FIRMWARE_BOOT_DISK = 1,
	FIRMWARE_BOOT_CDROM = 2,
	FIRMWARE_BOOT_NET = 3,
};

/* Whether a file of this size can be a BIOS image: whole 64 KiB blocks, at most 16 MiB. */
bool firmware_size_ok(size_t size);

/*
 * Maps the image so that its end is at 4 GiB and its last 256 KiB (or all
 * of a smaller one) also just below 1 MiB, and sets up CMOS and fw_cfg for the VM's memory, vCPUs,
 * devices and boot order.  Call after the devices exist.  Returns -1 with the
 * reason logged.
 */
struct firmware_files {
	const char *name;	     /* of the BIOS image, for messages */
	const uint8_t *image;
	size_t size;
	const uint8_t *netboot_rom; /* for FIRMWARE_BOOT_NET, else NULL */
	size_t netboot_rom_size;
};

int firmware_load(struct vm *vm, const struct firmware_files *files, int boot);

/* The boot order for SeaBIOS: one PCI path a line, /pci@i0cf8/ then any name, @SLOT and ,FN when FN is not 0; exposed for tests. */
int firmware_boot_order(char *out, size_t outlen, const int *slots, const int *functions, int count);

#endif
