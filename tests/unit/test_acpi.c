/*
 * ACPI tables and the PM device, checked against the ACPI 6.3 layouts: the
 * tables are built into a plain buffer standing in for guest RAM and read back
 * at the spec's offsets; the PM registers are driven through the port bus.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/acpi_pm.h"
#include "unit/acpi_sum.h"
#include "unit/check.h"
#include "vm/acpi.h"
#include "vm/vm.h"

/*
 * The engine's own definitions win where the link pulls them in; these keep
 * the test linkable on its own and follow the same contract.
 */
__attribute__((weak)) void
vm_request_exit(struct vm *vm, int status)
{
	int running = -1;

	atomic_compare_exchange_strong(&vm->exit_status, &running, status);
}

__attribute__((weak)) void
vm_irq_line(struct vm *vm, int irq, int level)
{
}

#define LOW_RAM (2 * MIB)

static struct vm *
test_vm(int ncpus, uint64_t ram)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	vm->ram = calloc(1, ram);
	vm->ram_size = vm->low_ram_size = ram;
	vm->ncpus = ncpus;
	vm->kvm_fd = vm->vm_fd = vm->wakeup_fd = -1;
	atomic_init(&vm->exit_status, -1);
	return vm;
}

static void
test_vm_free(struct vm *vm)
{
	acpi_pm_free(vm->pm);
	free(vm->ram);
	free(vm);
}

static uint32_t
get16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t
get32(const uint8_t *p)
{
	return get16(p) | get16(p + 2) << 16;
}

static uint64_t
get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* A table at gpa with a sane header inside the BIOS area, or NULL. */
static const uint8_t *
table_at(struct vm *vm, uint64_t gpa, const char *signature)
{
	const uint8_t *t;

	if (gpa < ACPI_TABLES_START || gpa + 36 > ACPI_TABLES_END)
		return NULL;
	t = vm->ram + gpa;
	if (memcmp(t, signature, 4) != 0 || get32(t + 4) < 36 || gpa + get32(t + 4) > ACPI_TABLES_END)
		return NULL;
	return t;
}

/* The table with this signature that the XSDT lists, checked for a valid checksum. */
static const uint8_t *
xsdt_find(struct vm *vm, uint64_t rsdp, const char *signature)
{
	const uint8_t *xsdt = table_at(vm, get64(vm->ram + rsdp + 24), "XSDT");

	if (xsdt == NULL)
		return NULL;
	for (uint32_t off = 36; off + 8 <= get32(xsdt + 4); off += 8) {
		const uint8_t *t = table_at(vm, get64(xsdt + off), signature);
		if (t && sum(t, get32(t + 4)) == 0)
			return t;
	}
	return NULL;
}

static void
rsdp_is_valid_and_links_the_tables(void)
{
	struct vm *vm = test_vm(4, LOW_RAM);
	uint64_t rsdp = acpi_build_tables(vm);
	const uint8_t *r = vm->ram + rsdp, *xsdt, *rsdt;

	CHECK(rsdp >= ACPI_TABLES_START && rsdp + 36 <= ACPI_TABLES_END && rsdp % 16 == 0);
	CHECK(memcmp(r, "RSD PTR ", 8) == 0);
	CHECK(sum(r, 20) == 0);
	CHECK(r[15] == 2);
	CHECK(get32(r + 20) == 36);
	CHECK(sum(r, 36) == 0);

	xsdt = table_at(vm, get64(r + 24), "XSDT");
	rsdt = table_at(vm, get32(r + 16), "RSDT");
	CHECK(xsdt && sum(xsdt, get32(xsdt + 4)) == 0);
	CHECK(rsdt && sum(rsdt, get32(rsdt + 4)) == 0);
	if (xsdt && rsdt) {
		/* Both list the same tables: FADT and MADT. */
		CHECK(get32(xsdt + 4) == 36 + 2 * 8);
		CHECK(get32(rsdt + 4) == 36 + 2 * 4);
		for (int i = 0; i < 2; i++)
			CHECK(get64(xsdt + 36 + 8 * i) == get32(rsdt + 36 + 4 * i));
	}
	CHECK(xsdt_find(vm, rsdp, "FACP") != NULL);
	CHECK(xsdt_find(vm, rsdp, "APIC") != NULL);
	test_vm_free(vm);
}

static void
fadt_points_at_the_pm_device(void)
{
	struct vm *vm = test_vm(1, LOW_RAM);
	uint64_t rsdp = acpi_build_tables(vm);
	const uint8_t *f = xsdt_find(vm, rsdp, "FACP");
	uint32_t flags;

	CHECK(f != NULL);
	if (f == NULL)
		goto out;
	CHECK(get32(f + 4) == 276 && f[8] >= 5);
	CHECK(get16(f + 46) == IRQ_SCI);
	CHECK(get32(f + 48) == 0); /* no SMI_CMD: always in ACPI mode */
	CHECK(get32(f + 56) == ACPI_PM1A_EVT_PORT && f[88] == 4);
	CHECK(get32(f + 64) == ACPI_PM1A_CNT_PORT && f[89] == 2);
	CHECK(get32(f + 76) == ACPI_PM_TMR_PORT && f[91] == 4);
	/* The 64-bit blocks agree with the 32-bit ones (system I/O, same width). */
	CHECK(f[148] == 1 && f[149] == 32 && get64(f + 152) == ACPI_PM1A_EVT_PORT);
	CHECK(f[172] == 1 && f[173] == 16 && get64(f + 176) == ACPI_PM1A_CNT_PORT);
	CHECK(f[208] == 1 && f[209] == 32 && get64(f + 212) == ACPI_PM_TMR_PORT);
	flags = get32(f + 112);
	CHECK(!(flags & (1u << 4)));   /* PWR_BUTTON clear: fixed-feature button */
	CHECK(flags & (1u << 5));      /* SLP_BUTTON set: none */
	CHECK(flags & (1u << 10));     /* RESET_REG_SUP */
	CHECK(!(flags & (1u << 20)));  /* not hardware-reduced */
	CHECK(!(flags & (1u << 8)));   /* 24-bit PM timer */
	CHECK(!(get16(f + 109) & (1u << 3))); /* MSI supported */
	/* Reset register: one byte in system I/O at 0xcf9, value 6. */
	CHECK(f[116] == 1 && f[117] == 8 && f[118] == 0 && get64(f + 120) == ACPI_RESET_PORT);
	CHECK(f[128] == ACPI_RESET_VALUE);
out:
	test_vm_free(vm);
}

static void
facs_and_dsdt_are_where_the_fadt_says(void)
{
	struct vm *vm = test_vm(2, LOW_RAM);
	uint64_t rsdp = acpi_build_tables(vm);
	const uint8_t *f = xsdt_find(vm, rsdp, "FACP"), *facs, *dsdt;

	CHECK(f != NULL);
	if (f == NULL)
		goto out;
	CHECK(get32(f + 36) % 64 == 0);
	CHECK(get64(f + 132) == 0); /* X_FIRMWARE_CTRL unused below 4 GiB */
	facs = vm->ram + get32(f + 36);
	CHECK(memcmp(facs, "FACS", 4) == 0 && get32(facs + 4) == 64);

	CHECK(get64(f + 140) == get32(f + 40));
	dsdt = table_at(vm, get32(f + 40), "DSDT");
	CHECK(dsdt != NULL);
	if (dsdt) {
		CHECK(get32(dsdt + 4) == dsdt_aml_len);
		CHECK(memcmp(dsdt, dsdt_aml, dsdt_aml_len) == 0);
		CHECK(sum(dsdt, dsdt_aml_len) == 0);
		CHECK(dsdt[8] >= 2); /* 64-bit integers */
	}
out:
	test_vm_free(vm);
}

/* Walks the MADT entries for a VM of ncpus vCPUs and checks each kind. */
static void
check_madt(int ncpus)
{
	struct vm *vm = test_vm(ncpus, LOW_RAM);
	uint64_t rsdp = acpi_build_tables(vm);
	const uint8_t *m = xsdt_find(vm, rsdp, "APIC");
	int lapics = 0, ioapics = 0, nmis = 0;
	bool irq0 = false, sci = false, ids_in_order = true;
	uint32_t off, len;

	CHECK(m != NULL);
	if (m == NULL)
		goto out;
	len = get32(m + 4);
	CHECK(get32(m + 36) == 0xfee00000);
	CHECK(get32(m + 40) & 1); /* PCAT_COMPAT */
	for (off = 44; off + 2 <= len && m[off + 1] >= 2; off += m[off + 1]) {
		const uint8_t *e = m + off;

		switch (e[0]) {
		case 0:
			CHECK(e[1] == 8);
			ids_in_order &= e[3] == lapics && (get32(e + 4) & 1);
			lapics++;
			break;
		case 1:
			CHECK(e[1] == 12);
			CHECK(e[2] >= ncpus); /* an id no CPU uses */
			CHECK(get32(e + 4) == 0xfec00000 && get32(e + 8) == 0);
			ioapics++;
			break;
		case 2:
			CHECK(e[1] == 10 && e[2] == 0);
			if (e[3] == 0)
				irq0 = get32(e + 4) == 2;
			if (e[3] == 9)
				sci = get32(e + 4) == 9 && get16(e + 8) == 0xd; /* level, active high */
			break;
		case 4:
			CHECK(e[1] == 6 && e[2] == 0xff && e[5] == 1);
			nmis++;
			break;
		default:
			CHECK(!"unexpected MADT entry");
		}
	}
	CHECK(off == len);
	CHECK(lapics == ncpus && ids_in_order);
	CHECK(ioapics == 1 && nmis == 1);
	CHECK(irq0 && sci);
out:
	test_vm_free(vm);
}

static void
madt_has_one_enabled_lapic_per_vcpu(void)
{
	check_madt(1);
	check_madt(4);
	check_madt(ACPI_MAX_CPUS);
}

static void
tables_refuse_what_they_cannot_describe(void)
{
	struct vm *vm = test_vm(ACPI_MAX_CPUS + 1, LOW_RAM);

	CHECK(acpi_build_tables(vm) == 0);
	vm->ncpus = 0;
	CHECK(acpi_build_tables(vm) == 0);
	/* RAM that ends before the BIOS area. */
	vm->ncpus = 1;
	vm->low_ram_size = ACPI_TABLES_START + 0x100;
	CHECK(acpi_build_tables(vm) == 0);
	test_vm_free(vm);
}

/* \_S5 in the AML: NameOp "_S5_" PackageOp PkgLength NumElements, then SLP_TYP. */
static void
dsdt_s5_matches_the_pm_device(void)
{
	const uint8_t *aml = dsdt_aml;
	int found = 0;

	for (unsigned long i = 36; i + 8 < dsdt_aml_len; i++) {
		const uint8_t *e;
		int value = -1;

		if (aml[i] != 0x08 || memcmp(aml + i + 1, "_S5_", 4) != 0 || aml[i + 5] != 0x12)
			continue;
		e = aml + i + 8; /* one-byte PkgLength, NumElements */
		if (e[0] == 0x0a)
			value = e[1]; /* BytePrefix */
		else if (e[0] == 0x00 || e[0] == 0x01)
			value = e[0]; /* ZeroOp, OneOp */
		CHECK(value == ACPI_PM_SLP_TYP_S5);
		found++;
	}
	CHECK(found == 1);
}

/* Port I/O as a vCPU does it. */
static uint32_t
port_in(struct vm *vm, uint16_t port, uint32_t len)
{
	uint8_t data[4] = { 0 };

	iobus_dispatch(&vm->port_bus, port, data, len, false);
	return get32(data);
}

static void
port_out(struct vm *vm, uint16_t port, uint32_t value, uint32_t len)
{
	uint8_t data[4] = { (uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16), (uint8_t)(value >> 24) };

	iobus_dispatch(&vm->port_bus, port, data, len, true);
}

#define PM1_STS_PORT ACPI_PM1A_EVT_PORT
#define PM1_EN_PORT  (ACPI_PM1A_EVT_PORT + 2)

static void
power_button_sets_a_write_one_to_clear_status(void)
{
	struct vm *vm = test_vm(1, LOW_RAM);

	CHECK(acpi_pm_init(vm) == 0 && vm->pm != NULL);
	CHECK(port_in(vm, PM1_STS_PORT, 2) == 0);
	acpi_pm_press_power_button(vm->pm);
	CHECK(port_in(vm, PM1_STS_PORT, 2) == PM1_PWRBTN);
	CHECK(port_in(vm, PM1_STS_PORT + 1, 1) == PM1_PWRBTN >> 8);
	port_out(vm, PM1_STS_PORT, 0, 2); /* writing 0 leaves it */
	CHECK(port_in(vm, PM1_STS_PORT, 2) == PM1_PWRBTN);
	port_out(vm, PM1_STS_PORT, PM1_TMR, 2); /* another bit leaves it */
	CHECK(port_in(vm, PM1_STS_PORT, 2) == PM1_PWRBTN);
	port_out(vm, PM1_STS_PORT, PM1_PWRBTN, 2);
	CHECK(port_in(vm, PM1_STS_PORT, 2) == 0);
	/* ACPICA clears every status bit with one write to the whole block. */
	acpi_pm_press_power_button(vm->pm);
	port_out(vm, PM1_STS_PORT, 0xffff, 4);
	CHECK(port_in(vm, PM1_STS_PORT, 2) == 0);
	CHECK(vm->exit_status == -1);
	test_vm_free(vm);
}

static void
sci_follows_enabled_status(void)
{
	struct vm *vm = test_vm(1, LOW_RAM);
	struct acpi_pm *pm;

	CHECK(acpi_pm_init(vm) == 0);
	pm = vm->pm;
	acpi_pm_press_power_button(pm);
	CHECK(!acpi_pm_sci_level(pm)); /* not enabled */
	port_out(vm, PM1_EN_PORT, PM1_PWRBTN, 2);
	CHECK(port_in(vm, PM1_EN_PORT, 2) == PM1_PWRBTN);
	CHECK(acpi_pm_sci_level(pm));
	port_out(vm, PM1_STS_PORT, PM1_PWRBTN, 2);
	CHECK(!acpi_pm_sci_level(pm));
	acpi_pm_press_power_button(pm);
	CHECK(acpi_pm_sci_level(pm));
	acpi_pm_press_power_button(pm); /* a second press while pending */
	CHECK(acpi_pm_sci_level(pm));
	port_out(vm, PM1_EN_PORT, 0, 2);
	CHECK(!acpi_pm_sci_level(pm));
	/* Enable through a byte write to the high half of PM1_EN; the 32-bit view agrees. */
	port_out(vm, PM1_EN_PORT + 1, PM1_PWRBTN >> 8, 1);
	CHECK(acpi_pm_sci_level(pm));
	CHECK(port_in(vm, ACPI_PM1A_EVT_PORT, 4) == (PM1_PWRBTN | PM1_PWRBTN << 16));
	/* Reserved enable bits do not stick. */
	port_out(vm, PM1_EN_PORT, 0xffff, 2);
	CHECK((port_in(vm, PM1_EN_PORT, 2) & ~0x4721u) == 0);
	test_vm_free(vm);
}

static uint32_t
slp(unsigned type)
{
	return type << PM1_CNT_SLP_TYP_SHIFT;
}

static void
s5_sleep_powers_off(void)
{
	struct vm *vm = test_vm(1, LOW_RAM);

	CHECK(acpi_pm_init(vm) == 0);
	CHECK(port_in(vm, ACPI_PM1A_CNT_PORT, 2) & PM1_CNT_SCI_EN);
	port_out(vm, ACPI_PM1A_CNT_PORT, 0, 2); /* SCI_EN cannot be cleared */
	CHECK(port_in(vm, ACPI_PM1A_CNT_PORT, 2) & PM1_CNT_SCI_EN);
	/* ACPICA writes SLP_TYP first, then SLP_TYP with SLP_EN. */
	port_out(vm, ACPI_PM1A_CNT_PORT, slp(ACPI_PM_SLP_TYP_S5) | PM1_CNT_SCI_EN, 2);
	CHECK(vm->exit_status == -1);
	CHECK((port_in(vm, ACPI_PM1A_CNT_PORT, 2) & PM1_CNT_SLP_TYP_MASK) == slp(ACPI_PM_SLP_TYP_S5));
	/* Another sleep type is ignored. */
	port_out(vm, ACPI_PM1A_CNT_PORT, slp((ACPI_PM_SLP_TYP_S5 + 1) % 8) | PM1_CNT_SLP_EN, 2);
	CHECK(vm->exit_status == -1);
	CHECK(!(port_in(vm, ACPI_PM1A_CNT_PORT, 2) & PM1_CNT_SLP_EN)); /* reads as 0 */
	port_out(vm, ACPI_PM1A_CNT_PORT, slp(ACPI_PM_SLP_TYP_S5) | PM1_CNT_SLP_EN | PM1_CNT_SCI_EN, 2);
	CHECK(vm->exit_status == VM_EXIT_POWEROFF);
	test_vm_free(vm);

	/* The same as one byte write to the high half, keeping nothing from before. */
	vm = test_vm(1, LOW_RAM);
	CHECK(acpi_pm_init(vm) == 0);
	port_out(vm, ACPI_PM1A_CNT_PORT + 1, (slp(ACPI_PM_SLP_TYP_S5) | PM1_CNT_SLP_EN) >> 8, 1);
	CHECK(vm->exit_status == VM_EXIT_POWEROFF);
	test_vm_free(vm);
}

static void
reset_register_reboots(void)
{
	struct vm *vm = test_vm(1, LOW_RAM);

	CHECK(acpi_pm_init(vm) == 0);
	port_out(vm, ACPI_RESET_PORT, 0x02, 1); /* select hard reset, no reset yet */
	CHECK(vm->exit_status == -1);
	CHECK(port_in(vm, ACPI_RESET_PORT, 1) == 0x02);
	port_out(vm, ACPI_RESET_PORT, ACPI_RESET_VALUE, 1);
	CHECK(vm->exit_status == VM_EXIT_REBOOT);
	test_vm_free(vm);
}

static void
pm_timer_counts_at_3_58_mhz(void)
{
	struct vm *vm = test_vm(1, LOW_RAM);
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	uint32_t before, after, ticks;

	CHECK(acpi_pm_init(vm) == 0);
	before = port_in(vm, ACPI_PM_TMR_PORT, 4);
	nanosleep(&pause, NULL);
	after = port_in(vm, ACPI_PM_TMR_PORT, 4);
	CHECK(before < (1u << 24) && after < (1u << 24));
	ticks = (after - before) & 0xffffff;
	/* 20 ms is 71591 ticks; allow for a slow, loaded machine. */
	CHECK(ticks >= 71591 && ticks < 71591 * 20);
	port_out(vm, ACPI_PM_TMR_PORT, 0, 4); /* read-only: ignored */
	test_vm_free(vm);
}

static void
pm_init_refuses_taken_ports(void)
{
	struct vm *vm = test_vm(1, LOW_RAM);

	/* A PCI host bridge that claimed 0xcf8..0xcfb whole would hide the reset register. */
	CHECK(iobus_register(&vm->port_bus, 0xcf8, 4, NULL, NULL) == 0);
	CHECK(acpi_pm_init(vm) == -1);
	test_vm_free(vm);
}

int
main(void)
{
	RUN_TEST(rsdp_is_valid_and_links_the_tables);
	RUN_TEST(fadt_points_at_the_pm_device);
	RUN_TEST(facs_and_dsdt_are_where_the_fadt_says);
	RUN_TEST(madt_has_one_enabled_lapic_per_vcpu);
	RUN_TEST(tables_refuse_what_they_cannot_describe);
	RUN_TEST(dsdt_s5_matches_the_pm_device);
	RUN_TEST(power_button_sets_a_write_one_to_clear_status);
	RUN_TEST(sci_follows_enabled_status);
	RUN_TEST(s5_sleep_powers_off);
	RUN_TEST(reset_register_reboots);
	RUN_TEST(pm_timer_counts_at_3_58_mhz);
	RUN_TEST(pm_init_refuses_taken_ports);
	TEST_EXIT();
}
