/*
 * The firmware configuration device that SeaBIOS reads (the fw_cfg interface
 * of QEMU's documentation): the guest writes a 16-bit key to the selector
 * port and reads the item's bytes, one at a time, from the data port.  Items
 * are either numbered (the signature, the CPU count) or named files listed in
 * a directory item (the memory map, the boot order, the ACPI tables).
 */
#ifndef VMD_FW_CFG_H
#define VMD_FW_CFG_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct fw_cfg;

#define FW_CFG_SELECTOR_PORT 0x510
#define FW_CFG_DATA_PORT     0x511

/* Numbered items. */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID	 0x01
#define FW_CFG_NB_CPUS	 0x05
#define FW_CFG_MAX_CPUS	 0x0f
#define FW_CFG_FILE_DIR	 0x19
#define FW_CFG_FILE_FIRST 0x20 /* files get keys from here on */

#define FW_CFG_NAME_MAX	 56 /* with its terminating NUL */
#define FW_CFG_MAX_ITEMS 32

struct fw_cfg *fw_cfg_new(void);
void fw_cfg_free(struct fw_cfg *fw);
/* Registers the two ports; the device then belongs to the VM. */
int fw_cfg_attach(struct vm *vm, struct fw_cfg *fw);

/* Both copy data.  Return -1 when the table is full or the name too long. */
int fw_cfg_add_item(struct fw_cfg *fw, uint16_t key, const void *data, uint32_t len);
int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, uint32_t len);

/* A port access (offset 0: selector, 1: data), exposed for unit tests. */
void fw_cfg_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
