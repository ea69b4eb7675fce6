/*
 * libFuzzer target for fw_cfg as the guest drives it: the input is a
 * sequence of 4-byte port accesses (port 0x510 to 0x51b, so the selector,
 * the data port and where a DMA interface would be; width; direction; a
 * 16-bit value) on a device holding what the VM gives SeaBIOS (numbered
 * items, files of several sizes, an empty one).  vmd offers no DMA
 * interface (fw_cfg.h): those ports must stay unclaimed.  Afterwards the
 * signature and the directory still read as they were made.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/fw_cfg.h"
#include "vm/vm.h"

#define FILES 3

static void
select_item(struct vm *vm, uint16_t key)
{
	uint8_t le[2] = { (uint8_t)key, (uint8_t)(key >> 8) };

	iobus_dispatch(&vm->port_bus, FW_CFG_SELECTOR_PORT, le, 2, true);
}

static void
read_data(struct vm *vm, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		iobus_dispatch(&vm->port_bus, FW_CFG_DATA_PORT, &out[i], 1, false);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t big[70000];
	struct vm *vm = calloc(1, sizeof(*vm));
	struct fw_cfg *fw = fw_cfg_new();
	uint16_t ncpus = 4;
	uint8_t sig[4], count[4];

	if (fw == NULL || fw_cfg_add_item(fw, FW_CFG_NB_CPUS, &ncpus, 2) < 0 ||
	    fw_cfg_add_file(fw, "etc/e820", "0123456789abcdefghij", 20) < 0 ||
	    fw_cfg_add_file(fw, "etc/empty", "", 0) < 0 || fw_cfg_add_file(fw, "genroms/big.rom", big, sizeof(big)) < 0 ||
	    fw_cfg_attach(vm, fw) < 0)
		abort();
	for (size_t off = 0; off + 4 <= size; off += 4) {
		const uint8_t *a = data + off;
		uint32_t len = 1u << (a[1] % 4); /* 1, 2, 4 or 8 bytes */
		uint8_t value[8] = { a[2], a[3], a[2], a[3], a[2], a[3], a[2], a[3] };
		uint64_t port = FW_CFG_SELECTOR_PORT + a[0] % 12;

		if (iobus_dispatch(&vm->port_bus, port, value, len, a[1] & 0x80) != (port <= FW_CFG_DATA_PORT))
			abort(); /* the ports are the device's, and only those */
	}
	select_item(vm, FW_CFG_SIGNATURE);
	read_data(vm, sig, 4);
	select_item(vm, FW_CFG_FILE_DIR);
	read_data(vm, count, 4);
	if (memcmp(sig, "QEMU", 4) != 0 || (count[0] << 24 | count[1] << 16 | count[2] << 8 | count[3]) != FILES)
		abort();
	fw_cfg_free(fw);
	free(vm);
	return 0;
}
