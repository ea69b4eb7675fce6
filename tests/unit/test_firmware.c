/*
 * The firmware's side of vmd: the fw_cfg device read through its ports as
 * SeaBIOS reads it, the boot order text, and the ACPI tables handed over as
 * fw_cfg files.  For those, the test runs the loader script the way the
 * firmware's table loader does (place the two files, add their addresses to
 * the pointers, fix the checksums) and then walks the tables from the RSDP.
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/fw_cfg.h"
#include "unit/acpi_sum.h"
#include "unit/check.h"
#include "vm/acpi.h"
#include "vm/firmware.h"
#include "vm/vm.h"

__attribute__((weak)) void
vm_request_exit(struct vm *vm, int status)
{
}

__attribute__((weak)) void
vm_irq_line(struct vm *vm, int irq, int level)
{
}

static void
select_item(struct fw_cfg *fw, uint16_t key)
{
	uint8_t le[2] = { (uint8_t)key, (uint8_t)(key >> 8) };

	fw_cfg_io(fw, 0, le, 2, true);
}

static void
read_bytes(struct fw_cfg *fw, void *out, uint32_t len)
{
	uint8_t *p = out;

	for (uint32_t i = 0; i < len; i++)
		fw_cfg_io(fw, 1, &p[i], 1, false);
}

/* The file's contents (malloc'd) and size from the directory, or NULL. */
static uint8_t *
read_file(struct fw_cfg *fw, const char *name, uint32_t *size)
{
	uint32_t count;
	uint8_t entry[64];

	select_item(fw, FW_CFG_FILE_DIR);
	read_bytes(fw, &count, 4);
	for (uint32_t i = 0; i < ntohl(count); i++) {
		read_bytes(fw, entry, sizeof(entry));
		if (strcmp((char *)entry + 8, name) == 0) {
			uint32_t len;
			uint16_t key;
			uint8_t *data;

			memcpy(&len, entry, 4);
			memcpy(&key, entry + 4, 2);
			*size = ntohl(len);
			data = calloc(1, *size + 1);
			select_item(fw, ntohs(key));
			read_bytes(fw, data, *size);
			return data;
		}
	}
	return NULL;
}

static void
signature_id_and_unknown_items(void)
{
	struct fw_cfg *fw = fw_cfg_new();
	uint8_t buf[8];
	uint32_t id;

	select_item(fw, FW_CFG_SIGNATURE);
	read_bytes(fw, buf, 6);
	CHECK(memcmp(buf, "QEMU\0\0", 6) == 0); /* past the end: zeros */
	select_item(fw, FW_CFG_ID);
	read_bytes(fw, &id, 4);
	CHECK(id == 1); /* the port interface, no DMA */
	select_item(fw, 0x1234);
	memset(buf, 0xaa, sizeof(buf));
	read_bytes(fw, buf, 8);
	CHECK(memcmp(buf, "\0\0\0\0\0\0\0\0", 8) == 0);
	/* Selecting again starts the item over. */
	select_item(fw, FW_CFG_SIGNATURE);
	read_bytes(fw, buf, 2);
	select_item(fw, FW_CFG_SIGNATURE);
	read_bytes(fw, buf, 4);
	CHECK(memcmp(buf, "QEMU", 4) == 0);
	fw_cfg_free(fw);
}

static void
files_are_listed_and_read_back(void)
{
	struct fw_cfg *fw = fw_cfg_new();
	char long_name[80];
	uint32_t size = 0;
	uint8_t *data;
	uint16_t cpus = 3, got;

	CHECK(fw_cfg_add_file(fw, "etc/one", "first", 5) == 0);
	CHECK(fw_cfg_add_file(fw, "etc/two", "second!", 7) == 0);
	CHECK(fw_cfg_add_file(fw, "etc/one", "again", 5) < 0); /* names are unique */
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	CHECK(fw_cfg_add_file(fw, long_name, "x", 1) < 0);
	CHECK(fw_cfg_add_item(fw, FW_CFG_FILE_FIRST, "x", 1) < 0); /* keys of files are not items */
	CHECK(fw_cfg_add_item(fw, FW_CFG_NB_CPUS, &cpus, 2) == 0);

	data = read_file(fw, "etc/two", &size);
	CHECK(data && size == 7 && memcmp(data, "second!", 7) == 0);
	free(data);
	data = read_file(fw, "etc/one", &size);
	CHECK(data && size == 5 && memcmp(data, "first", 5) == 0);
	free(data);
	CHECK(read_file(fw, "etc/three", &size) == NULL);
	select_item(fw, FW_CFG_NB_CPUS);
	read_bytes(fw, &got, 2);
	CHECK(got == 3);
	fw_cfg_free(fw);
}

static void
boot_order_lists_pci_paths(void)
{
	int slots[] = { 3, 1, 0x1f }, functions[] = { 0, 0, 2 };
	char out[128];

	CHECK(firmware_boot_order(out, sizeof(out), slots, functions, 3) > 0);
	CHECK(strcmp(out, "/pci@i0cf8/*@3\n/pci@i0cf8/*@1\n/pci@i0cf8/*@1f,2") == 0);
	CHECK(firmware_boot_order(out, 20, slots, functions, 3) < 0);
	CHECK(firmware_boot_order(out, sizeof(out), slots, functions, 0) == 0 && out[0] == '\0');
	CHECK(firmware_size_ok(256 * 1024) && firmware_size_ok(64 * 1024));
	CHECK(!firmware_size_ok(100000) && !firmware_size_ok(0) && !firmware_size_ok(32 * 1024 * 1024));
}

/* Guest memory for the loader: the RSDP goes to FSEG_AT, the tables to HIGH_AT. */
#define MEMORY_SIZE (2 * 1024 * 1024)
#define FSEG_AT	    0xf5a40
#define HIGH_AT	    0x1c0000

struct loaded {
	uint8_t *memory;
	uint32_t rsdp_size, tables_size;
	int allocations, pointers, checksums;
};

static uint64_t
get_le(const uint8_t *p, int size)
{
	uint64_t v = 0;

	for (int i = size - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void
put_le(uint8_t *p, uint64_t v, int size)
{
	for (int i = 0; i < size; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint32_t
file_address(const char *name)
{
	return strcmp(name, "etc/acpi/rsdp") == 0 ? FSEG_AT : HIGH_AT;
}

/* One loader command, as the firmware executes it. */
static void
run_command(struct loaded *l, const uint8_t *e)
{
	uint32_t command = (uint32_t)get_le(e, 4);
	const char *file = (const char *)e + 4;
	uint8_t *base = l->memory + file_address(file);

	if (command == 1) {
		uint32_t align = (uint32_t)get_le(e + 60, 4);

		CHECK(e[64] == (strcmp(file, "etc/acpi/rsdp") == 0 ? 2 : 1)); /* FSEG for the RSDP */
		CHECK(align && file_address(file) % align == 0);
		l->allocations++;
	} else if (command == 2) {
		const char *src = (const char *)e + 60;
		uint32_t offset = (uint32_t)get_le(e + 116, 4);
		int size = e[120];

		CHECK(size == 4 || size == 8);
		put_le(base + offset, get_le(base + offset, size) + file_address(src), size);
		l->pointers++;
	} else if (command == 3) {
		uint32_t at = (uint32_t)get_le(e + 60, 4), start = (uint32_t)get_le(e + 64, 4);
		uint32_t len = (uint32_t)get_le(e + 68, 4);
		uint8_t s = 0;

		for (uint32_t i = 0; i < len; i++)
			s = (uint8_t)(s + base[start + i]);
		base[at] = (uint8_t)(base[at] - s);
		l->checksums++;
	} else {
		CHECK(!"unknown loader command");
	}
}

static int
load_tables(struct loaded *l, int ncpus)
{
	struct vm vm = { .ncpus = ncpus };
	struct fw_cfg *fw = fw_cfg_new();
	uint8_t *rsdp, *tables, *script;
	uint32_t script_size;

	if (acpi_add_to_firmware(&vm, fw) < 0)
		return -1;
	rsdp = read_file(fw, "etc/acpi/rsdp", &l->rsdp_size);
	tables = read_file(fw, "etc/acpi/tables", &l->tables_size);
	script = read_file(fw, "etc/table-loader", &script_size);
	CHECK(rsdp && tables && script && script_size % 128 == 0);
	l->memory = calloc(1, MEMORY_SIZE);
	memcpy(l->memory + FSEG_AT, rsdp, l->rsdp_size);
	memcpy(l->memory + HIGH_AT, tables, l->tables_size);
	for (uint32_t off = 0; off + 128 <= script_size; off += 128)
		run_command(l, script + off);
	free(rsdp);
	free(tables);
	free(script);
	fw_cfg_free(fw);
	return 0;
}

/* The table at address with this signature and a valid checksum, or NULL. */
static const uint8_t *
table(const struct loaded *l, uint64_t address, const char *signature)
{
	const uint8_t *t;

	if (address < HIGH_AT || address + 36 > HIGH_AT + l->tables_size)
		return NULL;
	t = l->memory + address;
	if (memcmp(t, signature, 4) != 0 || sum(t, (size_t)get_le(t + 4, 4)) != 0)
		return NULL;
	return t;
}

static void
loader_places_valid_tables(void)
{
	struct loaded l = { 0 };
	const uint8_t *r, *xsdt, *rsdt, *fadt = NULL, *madt = NULL;

	CHECK(load_tables(&l, 3) == 0);
	if (l.memory == NULL)
		return;
	CHECK(l.allocations == 2 && l.pointers > 0 && l.checksums > 0);
	r = l.memory + FSEG_AT;
	CHECK(memcmp(r, "RSD PTR ", 8) == 0 && sum(r, 20) == 0 && sum(r, 36) == 0);
	xsdt = table(&l, get_le(r + 24, 8), "XSDT");
	rsdt = table(&l, get_le(r + 16, 4), "RSDT");
	CHECK(xsdt != NULL && rsdt != NULL);
	for (uint32_t off = 36; xsdt && off + 8 <= get_le(xsdt + 4, 4); off += 8) {
		uint64_t at = get_le(xsdt + off, 8);

		fadt = fadt ? fadt : table(&l, at, "FACP");
		madt = madt ? madt : table(&l, at, "APIC");
	}
	CHECK(fadt != NULL && madt != NULL);
	if (fadt) {
		const uint8_t *dsdt = table(&l, get_le(fadt + 40, 4), "DSDT");

		CHECK(dsdt != NULL);
		CHECK(get_le(fadt + 140, 8) == get_le(fadt + 40, 4));
		CHECK(get_le(fadt + 36, 4) % 64 == 0 && memcmp(l.memory + get_le(fadt + 36, 4), "FACS", 4) == 0);
	}
	/* 3 CPUs: 3 local APIC entries (type 0) in the MADT. */
	if (madt) {
		int lapics = 0;

		for (uint32_t off = 44; off + 2 <= get_le(madt + 4, 4) && madt[off + 1] >= 2; off += madt[off + 1])
			lapics += madt[off] == 0;
		CHECK(lapics == 3);
	}
	free(l.memory);
}

int
main(void)
{
	RUN_TEST(signature_id_and_unknown_items);
	RUN_TEST(files_are_listed_and_read_back);
	RUN_TEST(boot_order_lists_pci_paths);
	RUN_TEST(loader_places_valid_tables);
	TEST_EXIT();
}
