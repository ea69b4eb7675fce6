/*
 * ACPI tables for direct Linux boot, written into the BIOS area of guest
 * memory.  Layout (ACPI 6.3 field offsets):
 *
 *   0xe0000  RSDP (revision 2: RSDT and XSDT addresses)
 *   next 64  FACS (required: the FADT is not hardware-reduced)
 *   then     DSDT, FADT, MADT, XSDT, RSDT, each 16-byte aligned
 *
 * The FADT describes fixed hardware (src/devices/acpi_pm.h): PM1a event and
 * control blocks, PM timer, SCI on IRQ 9, no SMI command port (ACPI mode is
 * always on), the reset register at 0xcf9 and a fixed-feature power button.
 */
#include <string.h>

#include "common/log.h"
#include "devices/acpi_pm.h"
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

/* Bump allocator over the BIOS area of guest memory. */
struct acpi_area {
	struct vm *vm;
	uint64_t next;
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

/* Zeroed guest memory for one structure, or NULL when the area is full. */
static uint8_t *
acpi_alloc(struct acpi_area *area, uint64_t len, uint64_t align, uint64_t *gpa)
{
	uint64_t at = (area->next + align - 1) & ~(align - 1);
	uint8_t *p;

	if (len > ACPI_TABLES_END - at)
		return NULL;
	if ((p = guest_ptr(area->vm, at, len)) == NULL)
		return NULL;
	memset(p, 0, len);
	area->next = at + len;
	*gpa = at;
	return p;
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

/* Called last, once every field is written. */
static void
acpi_seal(uint8_t *table)
{
	uint32_t len = (uint32_t)table[4] | (uint32_t)table[5] << 8 | (uint32_t)table[6] << 16 |
		       (uint32_t)table[7] << 24;

	table[9] = 0;
	table[9] = acpi_checksum(table, len);
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
acpi_write_facs(struct acpi_area *area, uint64_t *gpa)
{
	uint8_t *facs = acpi_alloc(area, FACS_LEN, 64, gpa);

	if (facs == NULL)
		return -1;
	memcpy(facs, "FACS", 4);
	put32(facs + 4, FACS_LEN);
	facs[32] = 2; /* version */
	return 0;
}

static int
acpi_write_dsdt(struct acpi_area *area, uint64_t *gpa)
{
	uint8_t *dsdt;

	if (dsdt_aml_len < HEADER_LEN || memcmp(dsdt_aml, "DSDT", 4) != 0) {
		log_warnx("acpi: the built-in DSDT is not an ACPI table");
		return -1;
	}
	if ((dsdt = acpi_alloc(area, dsdt_aml_len, TABLE_ALIGN, gpa)) == NULL)
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
acpi_write_fadt(struct acpi_area *area, uint64_t facs, uint64_t dsdt, uint64_t *gpa)
{
	uint8_t *fadt = acpi_alloc(area, FADT_LEN, TABLE_ALIGN, gpa);

	if (fadt == NULL)
		return -1;
	acpi_header(fadt, "FACP", FADT_LEN, 6);
	fadt[FADT_MINOR_VERSION] = 3;
	/* The FACS is below 4 GiB: the spec wants X_FIRMWARE_CTRL zero then. */
	put32(fadt + FADT_FIRMWARE_CTRL, (uint32_t)facs);
	put32(fadt + FADT_DSDT, (uint32_t)dsdt);
	put64(fadt + FADT_X_DSDT, dsdt);
	fadt_set_fixed_hardware(fadt);
	acpi_seal(fadt);
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
acpi_write_madt(struct acpi_area *area, int ncpus, uint64_t *gpa)
{
	uint32_t len = HEADER_LEN + 8 + (uint32_t)ncpus * MADT_LOCAL_APIC_LEN + MADT_IO_APIC_LEN +
		       2 * MADT_OVERRIDE_LEN + MADT_LOCAL_APIC_NMI_LEN;
	uint8_t *madt = acpi_alloc(area, len, TABLE_ALIGN, gpa), *p;

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
	acpi_seal(madt);
	return 0;
}

static int
acpi_write_xsdt(struct acpi_area *area, const uint64_t *tables, int count, uint64_t *gpa)
{
	uint32_t len = HEADER_LEN + 8 * (uint32_t)count;
	uint8_t *xsdt = acpi_alloc(area, len, TABLE_ALIGN, gpa);

	if (xsdt == NULL)
		return -1;
	acpi_header(xsdt, "XSDT", len, 1);
	for (int i = 0; i < count; i++)
		put64(xsdt + HEADER_LEN + 8 * i, tables[i]);
	acpi_seal(xsdt);
	return 0;
}

/* For 32-bit readers; Linux uses the XSDT. */
static int
acpi_write_rsdt(struct acpi_area *area, const uint64_t *tables, int count, uint64_t *gpa)
{
	uint32_t len = HEADER_LEN + 4 * (uint32_t)count;
	uint8_t *rsdt = acpi_alloc(area, len, TABLE_ALIGN, gpa);

	if (rsdt == NULL)
		return -1;
	acpi_header(rsdt, "RSDT", len, 1);
	for (int i = 0; i < count; i++)
		put32(rsdt + HEADER_LEN + 4 * i, (uint32_t)tables[i]);
	acpi_seal(rsdt);
	return 0;
}

static void
acpi_fill_rsdp(uint8_t *rsdp, uint64_t rsdt, uint64_t xsdt)
{
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, ACPI_OEM_ID, 6);
	rsdp[15] = 2; /* revision: ACPI 2.0 and later */
	put32(rsdp + 16, (uint32_t)rsdt);
	put32(rsdp + 20, RSDP_LEN);
	put64(rsdp + 24, xsdt);
	rsdp[8] = acpi_checksum(rsdp, 20);
	rsdp[32] = acpi_checksum(rsdp, RSDP_LEN);
}

uint64_t
acpi_build_tables(struct vm *vm)
{
	struct acpi_area area = { vm, ACPI_TABLES_START };
	uint64_t rsdp_gpa, facs, dsdt, tables[2], xsdt, rsdt;
	uint8_t *rsdp;

	if (vm->ncpus < 1 || vm->ncpus > ACPI_MAX_CPUS) {
		log_warnx("acpi: %d vCPUs: the MADT describes 1 to %d", vm->ncpus, ACPI_MAX_CPUS);
		return 0;
	}
	/* The RSDP first, on a 16-byte boundary where a scan of the BIOS area finds it. */
	if ((rsdp = acpi_alloc(&area, RSDP_LEN, 16, &rsdp_gpa)) == NULL ||
	    acpi_write_facs(&area, &facs) < 0 ||
	    acpi_write_dsdt(&area, &dsdt) < 0 ||
	    acpi_write_fadt(&area, facs, dsdt, &tables[0]) < 0 ||
	    acpi_write_madt(&area, vm->ncpus, &tables[1]) < 0 ||
	    acpi_write_xsdt(&area, tables, 2, &xsdt) < 0 ||
	    acpi_write_rsdt(&area, tables, 2, &rsdt) < 0) {
		log_warnx("acpi: the tables do not fit in guest memory 0x%x-0x%x", ACPI_TABLES_START,
			  ACPI_TABLES_END - 1);
		return 0;
	}
	acpi_fill_rsdp(rsdp, rsdt, xsdt);
	return rsdp_gpa;
}
