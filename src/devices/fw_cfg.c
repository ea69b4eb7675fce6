/*
 * The fw_cfg device (see fw_cfg.h).  Only the port interface: the DMA
 * interface would save SeaBIOS a few thousand port reads at start-up, which
 * is not worth a second path into guest memory.
 */
#include <arpa/inet.h>
#include <bsd/string.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/fw_cfg.h"
#include "vm/vm.h"

#define FW_CFG_ID_TRADITIONAL 0x1 /* the port interface, no DMA */
#define FW_CFG_DIR_ENTRY_LEN  64  /* be32 size, be16 key, be16 reserved, name[56] */

struct fw_cfg_item {
	uint16_t key;
	uint8_t *data;
	uint32_t len;
	char name[FW_CFG_NAME_MAX]; /* empty for numbered items */
};

struct fw_cfg {
	pthread_mutex_t lock;
	struct fw_cfg_item items[FW_CFG_MAX_ITEMS];
	int nitems;
	uint16_t next_file_key;
	uint16_t selected;
	uint32_t offset; /* of the next data byte in the selected item */
};

static struct fw_cfg_item *
fw_cfg_find(struct fw_cfg *fw, uint16_t key)
{
	for (int i = 0; i < fw->nitems; i++)
		if (fw->items[i].key == key)
			return &fw->items[i];
	return NULL;
}

/* Replaces the item with that key, or adds it. */
static int
fw_cfg_put(struct fw_cfg *fw, uint16_t key, const char *name, const void *data, uint32_t len)
{
	struct fw_cfg_item *item = fw_cfg_find(fw, key);
	uint8_t *copy = malloc(len ? len : 1);

	if (copy == NULL || (item == NULL && fw->nitems == FW_CFG_MAX_ITEMS)) {
		free(copy);
		return -1;
	}
	if (item == NULL)
		item = &fw->items[fw->nitems++];
	else
		free(item->data);
	memcpy(copy, data, len);
	*item = (struct fw_cfg_item){ .key = key, .data = copy, .len = len };
	strlcpy(item->name, name, sizeof(item->name));
	return 0;
}

/* The directory item lists every file; rebuilt whenever a file is added. */
static int
fw_cfg_rebuild_directory(struct fw_cfg *fw)
{
	uint32_t count = 0, len;
	uint8_t *dir, *p;
	int rc;

	for (int i = 0; i < fw->nitems; i++)
		count += fw->items[i].name[0] != '\0';
	len = 4 + count * FW_CFG_DIR_ENTRY_LEN;
	if ((dir = calloc(1, len)) == NULL)
		return -1;
	*(uint32_t *)dir = htonl(count);
	p = dir + 4;
	for (int i = 0; i < fw->nitems; i++) {
		const struct fw_cfg_item *item = &fw->items[i];
		uint32_t size = htonl(item->len);
		uint16_t key = htons(item->key);

		if (item->name[0] == '\0')
			continue;
		memcpy(p, &size, 4);
		memcpy(p + 4, &key, 2);
		memcpy(p + 8, item->name, strlen(item->name));
		p += FW_CFG_DIR_ENTRY_LEN;
	}
	rc = fw_cfg_put(fw, FW_CFG_FILE_DIR, "", dir, len);
	free(dir);
	return rc;
}

struct fw_cfg *
fw_cfg_new(void)
{
	struct fw_cfg *fw = calloc(1, sizeof(*fw));
	uint32_t id = FW_CFG_ID_TRADITIONAL; /* little-endian, like every numbered item */

	if (fw == NULL)
		return NULL;
	pthread_mutex_init(&fw->lock, NULL);
	fw->next_file_key = FW_CFG_FILE_FIRST;
	if (fw_cfg_put(fw, FW_CFG_SIGNATURE, "", "QEMU", 4) < 0 || fw_cfg_put(fw, FW_CFG_ID, "", &id, 4) < 0 ||
	    fw_cfg_rebuild_directory(fw) < 0) {
		fw_cfg_free(fw);
		return NULL;
	}
	return fw;
}

void
fw_cfg_free(struct fw_cfg *fw)
{
	if (fw == NULL)
		return;
	for (int i = 0; i < fw->nitems; i++)
		free(fw->items[i].data);
	free(fw);
}

int
fw_cfg_add_item(struct fw_cfg *fw, uint16_t key, const void *data, uint32_t len)
{
	if (key >= FW_CFG_FILE_FIRST || key == FW_CFG_FILE_DIR)
		return -1;
	return fw_cfg_put(fw, key, "", data, len);
}

int
fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, uint32_t len)
{
	if (name[0] == '\0' || strlen(name) >= FW_CFG_NAME_MAX)
		return -1;
	for (int i = 0; i < fw->nitems; i++)
		if (strcmp(fw->items[i].name, name) == 0)
			return -1;
	if (fw_cfg_put(fw, fw->next_file_key, name, data, len) < 0)
		return -1;
	fw->next_file_key++;
	return fw_cfg_rebuild_directory(fw);
}

static uint8_t
fw_cfg_next_byte(struct fw_cfg *fw)
{
	const struct fw_cfg_item *item = fw_cfg_find(fw, fw->selected);

	/* Past the end, or an item that does not exist: zeros, as the interface says. */
	if (item == NULL || fw->offset >= item->len)
		return 0;
	return item->data[fw->offset++];
}

void
fw_cfg_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct fw_cfg *fw = device;

	pthread_mutex_lock(&fw->lock);
	if (offset == 0 && is_write && len == 2) {
		fw->selected = (uint16_t)(data[0] | data[1] << 8);
		fw->offset = 0;
	} else if (offset == 1 && !is_write) {
		for (uint32_t i = 0; i < len; i++)
			data[i] = fw_cfg_next_byte(fw);
	} else if (!is_write) {
		memset(data, 0, len);
	}
	/* Writes to items are not supported: they are ignored. */
	pthread_mutex_unlock(&fw->lock);
}

int
fw_cfg_attach(struct vm *vm, struct fw_cfg *fw)
{
	return iobus_register(&vm->port_bus, FW_CFG_SELECTOR_PORT, 2, fw_cfg_io, fw);
}
