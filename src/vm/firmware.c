/*
 * Firmware boot (see firmware.h).  The CMOS layout and the fw_cfg file names
 * are the ones SeaBIOS reads on a PC emulator.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "devices/fw_cfg.h"
#include "devices/legacy.h"
#include "devices/uart.h"
#include "devices/virtio.h"
#include "devices/virtio_pci.h"
#include "vm/acpi.h"
#include "vm/firmware.h"
#include "vm/memory.h"
#include "vm/vm.h"

/*
 * SeaBIOS is linked to run from 0xc0000-0xfffff (a 256 KiB image) and, on a
 * PC emulator, copies itself there from the ROM at 4 GiB once it has made
 * that RAM writable through the chipset's shadow registers.  vmd has no
 * such chipset and that RAM is always writable, so the copy is made here.
 */
#define FIRMWARE_LOW_WINDOW (256 * 1024)
#define DEBUGCON_PORT	    0x402
#define DEBUGCON_READBACK   0xe9 /* what a read returns when the port is there */
#define DEBUGCON_LINE_MAX   160

/* The firmware's debug console: its log, shown at debug verbosity (-v). */
struct debugcon {
	pthread_mutex_t lock; /* every vCPU may write */
	char line[DEBUGCON_LINE_MAX];
	size_t len;
};
#define FOUR_GIB	    (4ULL << 30)

/* CMOS bytes firmware reads (in 1 KiB or 64 KiB units). */
#define CMOS_BASE_MEM_LOW	 0x15 /* KiB below 640 KiB */
#define CMOS_BASE_MEM_HIGH	 0x16
#define CMOS_EXT_MEM_LOW	 0x17 /* KiB above 1 MiB, at most 63 MiB */
#define CMOS_EXT_MEM_HIGH	 0x18
#define CMOS_EXT_MEM2_LOW	 0x30 /* the same again */
#define CMOS_EXT_MEM2_HIGH	 0x31
#define CMOS_MEM_ABOVE_16M_LOW	 0x34 /* 64 KiB units above 16 MiB, below 4 GiB */
#define CMOS_MEM_ABOVE_16M_HIGH	 0x35
#define CMOS_BOOT_FLAGS1	 0x38 /* bit 0: do not check the floppy boot signature */
#define CMOS_BOOT_FLAGS2	 0x3d /* first and second boot device class */
#define CMOS_MEM_ABOVE_4G	 0x5b /* 3 bytes, 64 KiB units */
#define CMOS_CPU_COUNT_MINUS_1	 0x5f
#define CMOS_BOOT_HARD_DISK	 0x2

bool
firmware_size_ok(size_t size)
{
	return size >= FIRMWARE_MIN_SIZE && size <= FIRMWARE_MAX_SIZE && size % FIRMWARE_MIN_SIZE == 0;
}

static void
cmos_put16(struct vm *vm, uint8_t reg, uint64_t value)
{
	if (value > 0xffff)
		value = 0xffff;
	rtc_nvram_set(vm, reg, (uint8_t)value);
	rtc_nvram_set(vm, reg + 1, (uint8_t)(value >> 8));
}

static void
firmware_set_cmos(struct vm *vm)
{
	uint64_t low = vm->low_ram_size, ext_kib = (low - MIB) / 1024;
	uint64_t above_4g = vm->high_ram_size / (64 * 1024);

	cmos_put16(vm, CMOS_BASE_MEM_LOW, 640);
	cmos_put16(vm, CMOS_EXT_MEM_LOW, ext_kib > 0xfc00 ? 0xfc00 : ext_kib);
	cmos_put16(vm, CMOS_EXT_MEM2_LOW, ext_kib > 0xfc00 ? 0xfc00 : ext_kib);
	cmos_put16(vm, CMOS_MEM_ABOVE_16M_LOW, low > 16 * MIB ? (low - 16 * MIB) / (64 * 1024) : 0);
	for (int i = 0; i < 3; i++)
		rtc_nvram_set(vm, (uint8_t)(CMOS_MEM_ABOVE_4G + i), (uint8_t)(above_4g >> (8 * i)));
	rtc_nvram_set(vm, CMOS_CPU_COUNT_MINUS_1, (uint8_t)(vm->ncpus - 1));
	/* Only disks (virtio-blk, the CD-ROM too): no floppy to check, hard disks first. */
	rtc_nvram_set(vm, CMOS_BOOT_FLAGS1, 0x01);
	rtc_nvram_set(vm, CMOS_BOOT_FLAGS2, CMOS_BOOT_HARD_DISK);
}

int
firmware_boot_order(char *out, size_t outlen, const int *slots, const int *functions, int count)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < count; i++) {
		const char *sep = i ? "\n" : ""; /* a trailing newline would be an empty entry */
		int n = functions[i] ? snprintf(out + used, outlen - used, "%s/pci@i0cf8/*@%x,%x", sep, slots[i],
						functions[i])
				     : snprintf(out + used, outlen - used, "%s/pci@i0cf8/*@%x", sep, slots[i]);

		if (n < 0 || (size_t)n >= outlen - used)
			return -1;
		used += (size_t)n;
	}
	return (int)used;
}

/* The virtio device named PREFIX<index> ("virtio-blk0"), or NULL. */
static const struct virtio_device *
firmware_find_device(const struct vm *vm, const char *prefix, int index)
{
	char name[32];

	snprintf(name, sizeof(name), "%s%d", prefix, index);
	for (const struct virtio_device *d = vm->virtio_devices; d != NULL; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

/*
 * The disks in order and the CD-ROM last; the CD-ROM first when booting
 * from it; the first interface first when booting from the network.
 */
static int
firmware_add_boot_order(struct vm *vm, struct fw_cfg *fw, int boot)
{
	int slots[VM_CONFIG_DISKS + 1], functions[VM_CONFIG_DISKS + 1], count = 0;
	int cdrom = vm->config.cdrom_index;
	const struct virtio_device *d;
	char order[(VM_CONFIG_DISKS + 1) * 32];
	int len;

	if (boot == FIRMWARE_BOOT_NET && (d = firmware_find_device(vm, "virtio-net", 0)) != NULL) {
		slots[count] = d->pci_slot;
		functions[count++] = d->pci_function;
	}
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < vm->config.ndisks; i++) {
			bool first = (i == cdrom) == (boot == FIRMWARE_BOOT_CDROM);

			if (first != (pass == 0) || (d = firmware_find_device(vm, "virtio-blk", i)) == NULL)
				continue;
			slots[count] = d->pci_slot;
			functions[count++] = d->pci_function;
		}
	if ((len = firmware_boot_order(order, sizeof(order), slots, functions, count)) < 0 ||
	    fw_cfg_add_file(fw, "bootorder", order, (uint32_t)len) < 0) {
		log_warnx("firmware: cannot write the boot order");
		return -1;
	}
	return 0;
}

/* The option ROM the firmware runs for the virtio NICs (it finds it by their PCI ids). */
static int
firmware_add_netboot_rom(const struct vm *vm, struct fw_cfg *fw, const struct firmware_files *files)
{
	const struct virtio_device *nic = firmware_find_device(vm, "virtio-net", 0);
	const uint8_t *rom = files->netboot_rom;
	char name[FW_CFG_NAME_MAX];

	if (files->netboot_rom_size < 512 || files->netboot_rom_size > FIRMWARE_NETBOOT_ROM_MAX || rom[0] != 0x55 ||
	    rom[1] != 0xaa) {
		log_warnx("%s: not an option ROM", FIRMWARE_NETBOOT_ROM_PATH);
		return -1;
	}
	if (nic == NULL) {
		log_warnx("boot device net: the VM has no virtio network interface");
		return -1;
	}
	snprintf(name, sizeof(name), "pci%04x,%04x.rom", VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_BASE + nic->ops->device_id);
	if (fw_cfg_add_file(fw, name, rom, (uint32_t)files->netboot_rom_size) < 0) {
		log_warnx("boot device net: cannot hand the firmware its network boot ROM");
		return -1;
	}
	return 0;
}

static int
firmware_add_e820(struct vm *vm, struct fw_cfg *fw)
{
	struct e820_entry map[2] = {
		{ 0, vm->low_ram_size, E820_RAM },
		{ MEM_HIGH_START, vm->high_ram_size, E820_RAM },
	};

	return fw_cfg_add_file(fw, "etc/e820", map, (uint32_t)((vm->high_ram_size ? 2 : 1) * sizeof(map[0])));
}

static int
firmware_add_items(struct vm *vm, struct fw_cfg *fw, int boot)
{
	uint16_t ncpus = (uint16_t)vm->ncpus, sercon = UART_COM1_PORT;

	if (fw_cfg_add_item(fw, FW_CFG_NB_CPUS, &ncpus, 2) < 0 || fw_cfg_add_item(fw, FW_CFG_MAX_CPUS, &ncpus, 2) < 0 ||
	    firmware_add_e820(vm, fw) < 0 ||
	    /* No VGA: the firmware's text screen goes to COM1, the console. */
	    fw_cfg_add_file(fw, "etc/sercon-port", &sercon, 2) < 0) {
		log_warnx("firmware: cannot fill the configuration device");
		return -1;
	}
	if (firmware_add_boot_order(vm, fw, boot) < 0)
		return -1;
	return acpi_add_to_firmware(vm, fw);
}

static void
debugcon_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct debugcon *con = device;

	if (!is_write) {
		/* Absent unless someone reads the log: the firmware then skips writing it. */
		memset(data, log_get_verbose() > 0 ? DEBUGCON_READBACK : 0xff, len);
		return;
	}
	pthread_mutex_lock(&con->lock);
	for (uint32_t i = 0; i < len; i++) {
		char c = (char)data[i];

		if (c != '\n' && con->len < sizeof(con->line) - 1 && (c >= ' ' || c == '\t'))
			con->line[con->len++] = c;
		if (c == '\n' || con->len == sizeof(con->line) - 1) {
			con->line[con->len] = '\0';
			log_debug("firmware: %s", con->line);
			con->len = 0;
		}
	}
	pthread_mutex_unlock(&con->lock);
}

static int
debugcon_attach(struct vm *vm)
{
	struct debugcon *con = calloc(1, sizeof(*con));

	if (con == NULL) {
		log_warn("firmware debug console");
		return -1;
	}
	pthread_mutex_init(&con->lock, NULL);
	if (iobus_register(&vm->port_bus, DEBUGCON_PORT, 1, debugcon_io, con) < 0) {
		log_warnx("firmware debug console: port %#x is taken", DEBUGCON_PORT);
		free(con);
		return -1;
	}
	return 0;
}

static int
firmware_map(struct vm *vm, const char *name, const uint8_t *image, size_t size)
{
	size_t low = size < FIRMWARE_LOW_WINDOW ? size : FIRMWARE_LOW_WINDOW;
	uint8_t *window = guest_ptr(vm, MIB - low, low);

	if (window == NULL) {
		log_warnx("%s: guest memory too small for the BIOS area", name);
		return -1;
	}
	/* The reset vector is the image's last 16 bytes, at 4 GiB - 16. */
	if (memory_add_rom(vm, FOUR_GIB - size, image, size) < 0)
		return -1;
	/* What a PC shadows below 1 MiB: the firmware runs from RAM there. */
	memcpy(window, image + size - low, low);
	return 0;
}

/* What each boot device needs. */
static int
firmware_check_boot(const struct vm *vm, const struct firmware_files *files, int boot)
{
	if (boot == FIRMWARE_BOOT_CDROM && vm->config.cdrom_index < 0) {
		log_warnx("boot device cdrom: the VM has no CD-ROM image");
		return -1;
	}
	if (boot == FIRMWARE_BOOT_NET && vm->config.ntaps == 0) {
		log_warnx("boot device net: the VM has no network interface");
		return -1;
	}
	if (boot == FIRMWARE_BOOT_NET && files->netboot_rom == NULL) {
		log_warnx("boot device net: no network boot ROM");
		return -1;
	}
	return 0;
}

int
firmware_load(struct vm *vm, const struct firmware_files *files, int boot)
{
	struct fw_cfg *fw;

	if (!firmware_size_ok(files->size)) {
		log_warnx("%s: not a BIOS image (its size must be a multiple of 64 KiB, at most 16 MiB)", files->name);
		return -1;
	}
	if (firmware_check_boot(vm, files, boot) < 0 || firmware_map(vm, files->name, files->image, files->size) < 0)
		return -1;
	firmware_set_cmos(vm);
	if ((fw = fw_cfg_new()) == NULL) {
		log_warn("firmware configuration device");
		return -1;
	}
	if (firmware_add_items(vm, fw, boot) < 0 ||
	    (boot == FIRMWARE_BOOT_NET && firmware_add_netboot_rom(vm, fw, files) < 0)) {
		fw_cfg_free(fw);
		return -1;
	}
	if (fw_cfg_attach(vm, fw) < 0) {
		log_warnx("firmware configuration device: ports %#x-%#x are taken", FW_CFG_SELECTOR_PORT,
			  FW_CFG_DATA_PORT);
		fw_cfg_free(fw);
		return -1;
	}
	return debugcon_attach(vm);
}
