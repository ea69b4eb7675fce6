/*
 * ACPI tables.  For a direct Linux boot they are written into the BIOS area
 * of guest memory; for a firmware boot they go to SeaBIOS (see struct
 * acpi_build).  Layout (ACPI 6.3 field offsets):
 *
 *   0xe0000  RSDP (revision 2: RSDT and XSDT addresses), a blob of its own
 *   0xe0040  FACS (required: the FADT is not hardware-reduced)
 *   then     DSDT, FADT, MADT, XSDT, RSDT, each 16-byte aligned
 *
 * The FADT describes fixed hardware (src/devices/acpi_pm.h): PM1a event and
 * control blocks, PM timer, SCI on IRQ 9, no SMI command port (ACPI mode is
 * always on), the reset register at 0xcf9 and a fixed-feature power button.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "devices/acpi_pm.h"
#include "devices/fw_cfg.h"
#include "vm/acpi.h"
#include "vm/vm.h"

#define ACPI_OEM_ID	  "VMD   "
#define ACPI_OEM_TABLE_ID "VMD     "
#define ACPI_CREATOR_ID	  "VMD "

#define HEADER_LEN 36
#define RSDP_LEN   36
#define FACS_LEN   64
#define FADT_LEN   276
#define TABLE_ALIGN 16

/* FADT field offsets. */
#define FADT_FIRMWARE_CTRL  36
#define FADT_DSDT	    40
#define FADT_SCI_INT	    46
#define FADT_SMI_CMD	    48
#define FADT_PM1A_EVT_BLK   56
#define FADT_PM1A_CNT_BLK   64
#define FADT_PM_TMR_BLK	    76
#define FADT_PM1_EVT_LEN    88
#define FADT_PM1_CNT_LEN    89
#define FADT_PM_TMR_LEN	    91
#define FADT_P_LVL2_LAT	    96
#define FADT_P_LVL3_LAT	    98
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS	    112
#define FADT_RESET_REG	    116
#define FADT_RESET_VALUE    128
#define FADT_MINOR_VERSION  131
#define FADT_X_DSDT	    140
#define FADT_X_PM1A_EVT_BLK 148
#define FADT_X_PM1A_CNT_BLK 172
#define FADT_X_PM_TMR_BLK   208

/* FADT flags. */
#define FADT_WBINVD	    (1u << 0)
#define FADT_PROC_C1	    (1u << 2)
#define FADT_PWR_BUTTON	    (1u << 4)  /* set: control-method button, or none */
#define FADT_SLP_BUTTON	    (1u << 5)  /* set: control-method button, or none */
#define FADT_FIX_RTC	    (1u << 6)  /* set: no RTC wake status in PM1 */
#define FADT_RESET_REG_SUP  (1u << 10)
#define FADT_HW_REDUCED	    (1u << 20)

/* IA-PC boot architecture flags. */
#define BOOT_LEGACY_DEVICES (1u << 0)
#define BOOT_8042	    (1u << 1)
#define BOOT_NO_VGA	    (1u << 2)

/* Latencies above these limits say that C2 and C3 do not exist. */
#define NO_C2_LATENCY 101
#define NO_C3_LATENCY 1001

/* Generic address structure: address space and access size codes. */
#define GAS_LEN		  12
#define GAS_SYSTEM_IO	  1
#define GAS_ACCESS_BYTE	  1
#define GAS_ACCESS_WORD	  2
#define GAS_ACCESS_DWORD  3

/* MADT. */
#define MADT_PCAT_COMPAT	 (1u << 0)
#define MADT_LOCAL_APIC		 0
#define MADT_LOCAL_APIC_LEN	 8
#define MADT_IO_APIC		 1
#define MADT_IO_APIC_LEN	 12
#define MADT_OVERRIDE		 2
#define MADT_OVERRIDE_LEN	 10
#define MADT_LOCAL_APIC_NMI	 4
#define MADT_LOCAL_APIC_NMI_LEN	 6
#define MADT_CPU_ENABLED	 (1u << 0)
#define MADT_ALL_PROCESSORS	 0xff
#define MPS_ACTIVE_HIGH		 0x1
#define MPS_LEVEL		 (0x3 << 2)

/*
 * The tables are built in two blobs: the RSDP, and everything else.  For a
 * direct boot both lie in guest memory at known addresses.  Under firmware
 * (SeaBIOS) they go to the guest as fw_cfg files and the firmware places
 * them: every pointer is then written relative to the start of the tables
 * blob and recorded, so that the firmware's loader can add the address it
 * chose and fix the checksums.
 */
struct acpi_blob {
	uint8_t *data;
	uint64_t base; /* guest address of data[0]; 0 when the firmware places it */
	uint32_t used, cap;
};

#define ACPI_MAX_FIXUPS 32

struct acpi_fixup {
	bool in_rsdp;	/* the field or range is in the RSDP blob, else in the tables */
	uint32_t offset; /* pointer field, or the checksum byte */
	uint32_t start, length; /* checksummed range; length 0 for a pointer */
	uint8_t size;	/* pointer width in bytes */
};

struct acpi_build {
	struct vm *vm;
	struct acpi_blob rsdp, tables;
	struct acpi_fixup fixups[ACPI_MAX_FIXUPS];
	int nfixups;
};

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* The byte that makes len bytes from p sum to zero, counting itself as 0. */
static uint8_t
acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

/* Zeroed room for one structure in blob, or NULL when the blob is full. */
static uint8_t *
acpi_alloc(struct acpi_blob *blob, uint32_t len, uint32_t align, uint32_t *at)
{
	uint32_t offset = (blob->used + align - 1) & ~(align - 1);

	if (offset > blob->cap || len > blob->cap - offset)
		return NULL;
	memset(blob->data + offset, 0, len);
	blob->used = offset + len;
	*at = offset;
	return blob->data + offset;
}

static void
acpi_add_fixup(struct acpi_build *b, struct acpi_fixup fixup)
{
	/* The tables are fixed: ACPI_MAX_FIXUPS is above what they need. */
	if (b->nfixups < ACPI_MAX_FIXUPS)
		b->fixups[b->nfixups++] = fixup;
}

/* Writes at field of blob the address of the structure at target in the tables blob. */
static void
acpi_put_pointer(struct acpi_build *b, struct acpi_blob *blob, uint32_t field, uint32_t target, uint8_t size)
{
	uint64_t address = b->tables.base + target;

	if (size == 8)
		put64(blob->data + field, address);
	else
		put32(blob->data + field, (uint32_t)address);
	acpi_add_fixup(b, (struct acpi_fixup){ .in_rsdp = blob == &b->rsdp, .offset = field, .size = size });
}

/* The checksum byte at offset makes [start, start+len) of blob sum to zero. */
static void
acpi_put_checksum(struct acpi_build *b, struct acpi_blob *blob, uint32_t offset, uint32_t start, uint32_t len)
{
	blob->data[offset] = 0;
	blob->data[offset] = acpi_checksum(blob->data + start, len);
	acpi_add_fixup(b, (struct acpi_fixup){ .in_rsdp = blob == &b->rsdp, .offset = offset, .start = start,
					       .length = len });
}

static void
acpi_header(uint8_t *table, const char *signature, uint32_t len, uint8_t revision)
{
	memcpy(table, signature, 4);
	put32(table + 4, len);
	table[8] = revision;
	memcpy(table + 10, ACPI_OEM_ID, 6);
	memcpy(table + 16, ACPI_OEM_TABLE_ID, 8);
	put32(table + 24, 1);
	memcpy(table + 28, ACPI_CREATOR_ID, 4);
	put32(table + 32, 1);
}

/* Called last, once every field of the table at offset at is written. */
static void
acpi_seal(struct acpi_build *b, uint32_t at)
{
	const uint8_t *table = b->tables.data + at;
	uint32_t len = (uint32_t)table[4] | (uint32_t)table[5] << 8 | (uint32_t)table[6] << 16 |
		       (uint32_t)table[7] << 24;

	acpi_put_checksum(b, &b->tables, at + 9, at, len);
}

static void
put_gas_io(uint8_t *p, uint16_t port, uint8_t bit_width, uint8_t access_size)
{
	p[0] = GAS_SYSTEM_IO;
	p[1] = bit_width;
	p[2] = 0;
	p[3] = access_size;
	put64(p + 4, port);
}

static int
acpi_write_facs(struct acpi_build *b, uint32_t *at)
{
	uint8_t *facs = acpi_alloc(&b->tables, FACS_LEN, 64, at);

	if (facs == NULL)
		return -1;
	memcpy(facs, "FACS", 4);
	put32(facs + 4, FACS_LEN);
	facs[32] = 2; /* version */
	return 0;
}

static int
acpi_write_dsdt(struct acpi_build *b, uint32_t *at)
{
	uint8_t *dsdt;

	if (dsdt_aml_len < HEADER_LEN || memcmp(dsdt_aml, "DSDT", 4) != 0) {
		log_warnx("acpi: the built-in DSDT is not an ACPI table");
		return -1;
	}
	if ((dsdt = acpi_alloc(&b->tables, (uint32_t)dsdt_aml_len, TABLE_ALIGN, at)) == NULL)
		return -1;
	memcpy(dsdt, dsdt_aml, dsdt_aml_len); /* iasl wrote its header and checksum */
	return 0;
}

/*
 * IA-PC boot flags, chosen for a fast, quiet Linux boot: legacy ISA-style
 * devices exist (COM1, RTC); no 8042, so Linux skips probing for a keyboard
 * controller (the i8042 device only serves the reset command, which the
 * kernel's reboot fallback writes without any driver); no VGA to probe.
 */
static void
fadt_set_fixed_hardware(uint8_t *fadt)
{
	put16(fadt + FADT_SCI_INT, IRQ_SCI);
	put32(fadt + FADT_SMI_CMD, 0); /* no SMI: always in ACPI mode */
	put32(fadt + FADT_PM1A_EVT_BLK, ACPI_PM1A_EVT_PORT);
	put32(fadt + FADT_PM1A_CNT_BLK, ACPI_PM1A_CNT_PORT);
	put32(fadt + FADT_PM_TMR_BLK, ACPI_PM_TMR_PORT);
	fadt[FADT_PM1_EVT_LEN] = ACPI_PM1_EVT_LEN;
	fadt[FADT_PM1_CNT_LEN] = ACPI_PM1_CNT_LEN;
	fadt[FADT_PM_TMR_LEN] = ACPI_PM_TMR_LEN;
	put16(fadt + FADT_P_LVL2_LAT, NO_C2_LATENCY);
	put16(fadt + FADT_P_LVL3_LAT, NO_C3_LATENCY);
	put16(fadt + FADT_IAPC_BOOT_ARCH, BOOT_LEGACY_DEVICES | BOOT_NO_VGA);
	/* PWR_BUTTON clear: the power button is the fixed-feature one in PM1. */
	put32(fadt + FADT_FLAGS, FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC | FADT_RESET_REG_SUP);
	put_gas_io(fadt + FADT_RESET_REG, ACPI_RESET_PORT, 8, GAS_ACCESS_BYTE);
	fadt[FADT_RESET_VALUE] = ACPI_RESET_VALUE;
	put_gas_io(fadt + FADT_X_PM1A_EVT_BLK, ACPI_PM1A_EVT_PORT, 8 * ACPI_PM1_EVT_LEN, GAS_ACCESS_WORD);
	put_gas_io(fadt + FADT_X_PM1A_CNT_BLK, ACPI_PM1A_CNT_PORT, 8 * ACPI_PM1_CNT_LEN, GAS_ACCESS_WORD);
	put_gas_io(fadt + FADT_X_PM_TMR_BLK, ACPI_PM_TMR_PORT, 8 * ACPI_PM_TMR_LEN, GAS_ACCESS_DWORD);
}

static int
acpi_write_fadt(struct acpi_build *b, uint32_t facs, uint32_t dsdt, uint32_t *at)
{
	uint8_t *fadt = acpi_alloc(&b->tables, FADT_LEN, TABLE_ALIGN, at);

	if (fadt == NULL)
		return -1;
	acpi_header(fadt, "FACP", FADT_LEN, 6);
	fadt[FADT_MINOR_VERSION] = 3;
	/* The FACS is below 4 GiB: the spec wants X_FIRMWARE_CTRL zero then. */
	acpi_put_pointer(b, &b->tables, *at + FADT_FIRMWARE_CTRL, facs, 4);
	acpi_put_pointer(b, &b->tables, *at + FADT_DSDT, dsdt, 4);
	acpi_put_pointer(b, &b->tables, *at + FADT_X_DSDT, dsdt, 8);
	fadt_set_fixed_hardware(fadt);
	acpi_seal(b, *at);
	return 0;
}

static uint8_t *
madt_override(uint8_t *p, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	p[0] = MADT_OVERRIDE;
	p[1] = MADT_OVERRIDE_LEN;
	p[2] = 0; /* ISA */
	p[3] = irq;
	put32(p + 4, gsi);
	put16(p + 8, flags);
	return p + MADT_OVERRIDE_LEN;
}

static int
acpi_write_madt(struct acpi_build *b, int ncpus, uint32_t *at)
{
	uint32_t len = HEADER_LEN + 8 + (uint32_t)ncpus * MADT_LOCAL_APIC_LEN + MADT_IO_APIC_LEN +
		       2 * MADT_OVERRIDE_LEN + MADT_LOCAL_APIC_NMI_LEN;
	uint8_t *madt = acpi_alloc(&b->tables, len, TABLE_ALIGN, at), *p;

	if (madt == NULL)
		return -1;
	acpi_header(madt, "APIC", len, 5);
	put32(madt + 36, ACPI_LAPIC_ADDRESS);
	put32(madt + 40, MADT_PCAT_COMPAT); /* KVM emulates the 8259 pair too */
	p = madt + 44;
	for (int i = 0; i < ncpus; i++, p += MADT_LOCAL_APIC_LEN) {
		p[0] = MADT_LOCAL_APIC;
		p[1] = MADT_LOCAL_APIC_LEN;
		p[2] = (uint8_t)i; /* ACPI processor UID */
		p[3] = (uint8_t)i; /* APIC id: KVM's default, the vCPU index */
		put32(p + 4, MADT_CPU_ENABLED);
	}
	p[0] = MADT_IO_APIC;
	p[1] = MADT_IO_APIC_LEN;
	p[2] = (uint8_t)ncpus; /* an id no CPU has */
	put32(p + 4, ACPI_IOAPIC_ADDRESS);
	put32(p + 8, 0); /* GSI base */
	p += MADT_IO_APIC_LEN;
	/* KVM's default routing wires the PIT's IRQ 0 to IOAPIC pin 2. */
	p = madt_override(p, IRQ_PIT, 2, 0);
	p = madt_override(p, IRQ_SCI, IRQ_SCI, MPS_ACTIVE_HIGH | MPS_LEVEL);
	p[0] = MADT_LOCAL_APIC_NMI;
	p[1] = MADT_LOCAL_APIC_NMI_LEN;
	p[2] = MADT_ALL_PROCESSORS;
	put16(p + 3, 0); /* conforms to the bus */
	p[5] = 1;	 /* LINT1 */
	acpi_seal(b, *at);
	return 0;
}

/* The XSDT (8-byte entries) or, for 32-bit readers, the RSDT (4-byte entries). */
static int
acpi_write_root(struct acpi_build *b, const char *signature, uint8_t width, const uint32_t *tables, int count,
		uint32_t *at)
{
	uint32_t len = HEADER_LEN + width * (uint32_t)count;
	uint8_t *root = acpi_alloc(&b->tables, len, TABLE_ALIGN, at);

	if (root == NULL)
		return -1;
	acpi_header(root, signature, len, 1);
	for (int i = 0; i < count; i++)
		acpi_put_pointer(b, &b->tables, *at + HEADER_LEN + width * (uint32_t)i, tables[i], width);
	acpi_seal(b, *at);
	return 0;
}

static int
acpi_write_rsdp(struct acpi_build *b, uint32_t rsdt, uint32_t xsdt)
{
	uint32_t at;
	uint8_t *rsdp = acpi_alloc(&b->rsdp, RSDP_LEN, 16, &at);

	if (rsdp == NULL)
		return -1;
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, ACPI_OEM_ID, 6);
	rsdp[15] = 2; /* revision: ACPI 2.0 and later */
	acpi_put_pointer(b, &b->rsdp, at + 16, rsdt, 4);
	put32(rsdp + 20, RSDP_LEN);
	acpi_put_pointer(b, &b->rsdp, at + 24, xsdt, 8);
	acpi_put_checksum(b, &b->rsdp, at + 8, at, 20);
	acpi_put_checksum(b, &b->rsdp, at + 32, at, RSDP_LEN);
	return 0;
}

static int
acpi_build(struct acpi_build *b)
{
	uint32_t facs, dsdt, tables[2], xsdt, rsdt;
	int ncpus = b->vm->ncpus;

	if (ncpus < 1 || ncpus > ACPI_MAX_CPUS) {
		log_warnx("acpi: %d vCPUs: the MADT describes 1 to %d", ncpus, ACPI_MAX_CPUS);
		return -1;
	}
	if (acpi_write_facs(b, &facs) < 0 || acpi_write_dsdt(b, &dsdt) < 0 ||
	    acpi_write_fadt(b, facs, dsdt, &tables[0]) < 0 || acpi_write_madt(b, ncpus, &tables[1]) < 0 ||
	    acpi_write_root(b, "XSDT", 8, tables, 2, &xsdt) < 0 || acpi_write_root(b, "RSDT", 4, tables, 2, &rsdt) < 0 ||
	    acpi_write_rsdp(b, rsdt, xsdt) < 0)
		return -1;
	return 0;
}

/* A blob over guest memory [start, end), or an empty one when that is not RAM. */
static struct acpi_blob
acpi_guest_blob(struct vm *vm, uint64_t start, uint64_t end)
{
	uint8_t *data = guest_ptr(vm, start, end - start);

	return (struct acpi_blob){ .data = data, .base = start, .cap = data ? (uint32_t)(end - start) : 0 };
}

uint64_t
acpi_build_tables(struct vm *vm)
{
	/* The RSDP first, on a 16-byte boundary where a scan of the BIOS area finds it. */
	struct acpi_build b = {
		.vm = vm,
		.rsdp = acpi_guest_blob(vm, ACPI_TABLES_START, ACPI_TABLES_START + RSDP_LEN),
		.tables = acpi_guest_blob(vm, ACPI_TABLES_START + 64, ACPI_TABLES_END),
	};

	if (acpi_build(&b) < 0) {
		log_warnx("acpi: the tables do not fit in guest memory 0x%x-0x%x", ACPI_TABLES_START,
			  ACPI_TABLES_END - 1);
		return 0;
	}
	return ACPI_TABLES_START;
}

/* One command of the firmware's table loader: 128 bytes, little-endian. */
#define LOADER_ENTRY_LEN      128
#define LOADER_ALLOCATE	      1
#define LOADER_ADD_POINTER    2
#define LOADER_ADD_CHECKSUM   3
#define LOADER_ZONE_HIGH      1
#define LOADER_ZONE_FSEG      2 /* 0xe0000-0xfffff, where the OS scans for the RSDP */
#define LOADER_FILE_LEN	      56
#define LOADER_RSDP_FILE      "etc/acpi/rsdp"
#define LOADER_TABLES_FILE    "etc/acpi/tables"
#define LOADER_SCRIPT_FILE    "etc/table-loader"

static uint8_t *
loader_entry(uint8_t *script, int *n, uint32_t command)
{
	uint8_t *e = script + (size_t)(*n)++ * LOADER_ENTRY_LEN;

	memset(e, 0, LOADER_ENTRY_LEN);
	put32(e, command);
	return e;
}

static void
loader_allocate(uint8_t *script, int *n, const char *file, uint32_t align, uint8_t zone)
{
	uint8_t *e = loader_entry(script, n, LOADER_ALLOCATE);

	memcpy(e + 4, file, strlen(file));
	put32(e + 4 + LOADER_FILE_LEN, align);
	e[8 + LOADER_FILE_LEN] = zone;
}

static void
loader_fixup(uint8_t *script, int *n, const struct acpi_fixup *f)
{
	const char *file = f->in_rsdp ? LOADER_RSDP_FILE : LOADER_TABLES_FILE;
	uint8_t *e;

	if (f->length == 0) {
		e = loader_entry(script, n, LOADER_ADD_POINTER);
		memcpy(e + 4, file, strlen(file));
		memcpy(e + 4 + LOADER_FILE_LEN, LOADER_TABLES_FILE, strlen(LOADER_TABLES_FILE));
		put32(e + 4 + 2 * LOADER_FILE_LEN, f->offset);
		e[8 + 2 * LOADER_FILE_LEN] = f->size;
		return;
	}
	e = loader_entry(script, n, LOADER_ADD_CHECKSUM);
	memcpy(e + 4, file, strlen(file));
	put32(e + 4 + LOADER_FILE_LEN, f->offset);
	put32(e + 8 + LOADER_FILE_LEN, f->start);
	put32(e + 12 + LOADER_FILE_LEN, f->length);
}

/*
 * The loader script: place both blobs, then patch every pointer, then every
 * checksum (a checksum covers pointers, so it comes after them).
 */
static int
acpi_add_loader(struct fw_cfg *fw, const struct acpi_build *b)
{
	uint8_t script[(2 + ACPI_MAX_FIXUPS) * LOADER_ENTRY_LEN];
	int n = 0;

	loader_allocate(script, &n, LOADER_RSDP_FILE, 16, LOADER_ZONE_FSEG);
	loader_allocate(script, &n, LOADER_TABLES_FILE, 64, LOADER_ZONE_HIGH);
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < b->nfixups; i++)
			if ((b->fixups[i].length == 0) == (pass == 0))
				loader_fixup(script, &n, &b->fixups[i]);
	return fw_cfg_add_file(fw, LOADER_SCRIPT_FILE, script, (uint32_t)n * LOADER_ENTRY_LEN);
}

int
acpi_add_to_firmware(struct vm *vm, struct fw_cfg *fw)
{
	uint8_t rsdp[RSDP_LEN];
	struct acpi_build b = {
		.vm = vm,
		.rsdp = { .data = rsdp, .cap = sizeof(rsdp) },
		.tables = { .data = malloc(ACPI_TABLES_END - ACPI_TABLES_START),
			    .cap = ACPI_TABLES_END - ACPI_TABLES_START },
	};
	int rc = -1;

	if (b.tables.data == NULL || acpi_build(&b) < 0 || b.nfixups == ACPI_MAX_FIXUPS)
		log_warnx("acpi: cannot build the tables for the firmware");
	else if (fw_cfg_add_file(fw, LOADER_RSDP_FILE, rsdp, b.rsdp.used) < 0 ||
		 fw_cfg_add_file(fw, LOADER_TABLES_FILE, b.tables.data, b.tables.used) < 0 ||
		 acpi_add_loader(fw, &b) < 0)
		log_warnx("acpi: cannot hand the tables to the firmware");
	else
		rc = 0;
	free(b.tables.data);
	return rc;
}
