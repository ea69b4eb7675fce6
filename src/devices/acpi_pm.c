/*
 * ACPI fixed hardware: PM1a event block (PM1_STS, PM1_EN), PM1a control block,
 * PM timer and the reset register.  There is no SMI command port, so the
 * machine is always in ACPI mode: SCI_EN reads as 1 and cannot be cleared.
 *
 * vCPU threads access the registers; the event thread presses the power
 * button.  One mutex guards the registers and the SCI line.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "devices/acpi_pm.h"
#include "vm/vm.h"

/* PM1_EN bits that exist; the others are reserved and read as 0. */
#define PM1_EN_BITS (PM1_TMR | PM1_GBL | PM1_PWRBTN | PM1_SLPBTN | PM1_RTC | PM1_PCIEXP_WAKE)
/* PM1_CNT bits that hold a value; SLP_EN and GBL_RLS are actions, reading 0. */
#define PM1_CNT_KEPT (PM1_CNT_BM_RLD | PM1_CNT_SLP_TYP_MASK)

struct acpi_pm {
	struct vm *vm;
	pthread_mutex_t lock;
	uint16_t status;	/* PM1_STS: write 1 to clear */
	uint16_t enable;	/* PM1_EN */
	uint16_t control;	/* PM1_CNT as the guest reads it */
	uint8_t reset_control;	/* last value written to 0xcf9 without a reset */
	bool sci_level;		/* what the SCI line was last driven to */
	bool warned_sleep;	/* an unsupported sleep state was logged */
};

/*
 * Part of a guest write that falls in one 16-bit register: ACPICA reads the
 * event block as two 16-bit registers, but a guest may use any width at any
 * offset.
 */
struct register_write {
	uint16_t value;
	uint16_t mask; /* the bits the access wrote */
};

static void
split_write(uint64_t offset, const uint8_t *data, uint32_t len, struct register_write *regs, uint32_t nregs)
{
	for (uint32_t i = 0; i < len; i++) {
		uint64_t at = offset + i;
		unsigned shift = 8 * (unsigned)(at % 2);

		if (at >= 2 * nregs)
			break;
		regs[at / 2].value |= (uint16_t)(data[i] << shift);
		regs[at / 2].mask |= (uint16_t)(0xff << shift);
	}
}

static void
read_registers(uint64_t offset, uint8_t *data, uint32_t len, const uint16_t *regs, uint32_t nregs)
{
	for (uint32_t i = 0; i < len; i++) {
		uint64_t at = offset + i;

		data[i] = at < 2 * nregs ? (uint8_t)(regs[at / 2] >> (8 * (at % 2))) : 0xff;
	}
}

static uint16_t
apply_write(uint16_t old, const struct register_write *w)
{
	return (uint16_t)((old & ~w->mask) | (w->value & w->mask));
}

/*
 * The SCI is level-triggered and asserted while an enabled event is pending.
 * Called with the lock held, and the line is driven under it: two threads
 * driving it after unlocking could reorder and leave it stuck high.
 * KVM_IRQ_LINE does not wait for the guest, so the lock is held only briefly.
 */
static void
pm_update_sci(struct acpi_pm *pm)
{
	bool level = (pm->status & pm->enable) != 0;

	if (level == pm->sci_level)
		return;
	pm->sci_level = level;
	vm_irq_line(pm->vm, IRQ_SCI, level);
}

static void
pm_event_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = device;
	struct register_write w[2] = { { 0, 0 }, { 0, 0 } };

	pthread_mutex_lock(&pm->lock);
	if (!is_write) {
		uint16_t regs[2] = { pm->status, pm->enable };

		read_registers(offset, data, len, regs, 2);
	} else {
		split_write(offset, data, len, w, 2);
		pm->status &= (uint16_t)~(w[0].value & w[0].mask);
		pm->enable = apply_write(pm->enable, &w[1]) & PM1_EN_BITS;
		pm_update_sci(pm);
	}
	pthread_mutex_unlock(&pm->lock);
}

static void
pm_enter_sleep_state(struct acpi_pm *pm, unsigned sleep_type, bool warn)
{
	if (sleep_type == ACPI_PM_SLP_TYP_S5)
		vm_request_exit(pm->vm, VM_EXIT_POWEROFF);
	else if (warn)
		log_warnx("acpi: guest asked for sleep type %u; only S5 (power-off, type %d) is supported",
			  sleep_type, ACPI_PM_SLP_TYP_S5);
}

static void
pm_control_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = device;
	struct register_write w = { 0, 0 };
	bool sleep = false, warn = false;
	unsigned sleep_type = 0;
	uint16_t value;

	pthread_mutex_lock(&pm->lock);
	if (!is_write) {
		read_registers(offset, data, len, &pm->control, 1);
	} else {
		split_write(offset, data, len, &w, 1);
		value = apply_write(pm->control, &w);
		pm->control = (uint16_t)((value & PM1_CNT_KEPT) | PM1_CNT_SCI_EN);
		if (w.value & w.mask & PM1_CNT_SLP_EN) {
			sleep = true;
			sleep_type = (value & PM1_CNT_SLP_TYP_MASK) >> PM1_CNT_SLP_TYP_SHIFT;
			warn = sleep_type != ACPI_PM_SLP_TYP_S5 && !pm->warned_sleep;
			pm->warned_sleep |= warn;
		}
	}
	pthread_mutex_unlock(&pm->lock);
	if (sleep)
		pm_enter_sleep_state(pm, sleep_type, warn);
}

/* 24-bit count at 3.579545 MHz; the wrap-around is the guest's to handle. */
static uint32_t
pm_timer_count(void)
{
	struct timespec now;
	uint64_t ticks;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ticks = (uint64_t)now.tv_sec * ACPI_PM_TIMER_HZ +
		(uint64_t)now.tv_nsec * ACPI_PM_TIMER_HZ / 1000000000u;
	return (uint32_t)(ticks & 0xffffff);
}

static void
pm_timer_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	uint32_t count;

	if (is_write)
		return; /* read-only */
	count = pm_timer_count();
	for (uint32_t i = 0; i < len; i++) {
		uint64_t at = offset + i;

		data[i] = at < ACPI_PM_TMR_LEN ? (uint8_t)(count >> (8 * at)) : 0xff;
	}
}

static void
reset_io(void *device, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = device;
	bool reset = false;

	pthread_mutex_lock(&pm->lock);
	if (!is_write) {
		data[0] = pm->reset_control;
		for (uint32_t i = 1; i < len; i++)
			data[i] = 0xff;
	} else if (data[0] & RESET_CONTROL_RST_CPU) {
		reset = true;
	} else {
		pm->reset_control = data[0];
	}
	pthread_mutex_unlock(&pm->lock);
	if (reset)
		vm_request_exit(pm->vm, VM_EXIT_REBOOT);
}

static int
pm_register(struct vm *vm, uint16_t port, uint16_t len, io_handler_fn *handler, struct acpi_pm *pm)
{
	if (iobus_register(&vm->port_bus, port, len, handler, pm) < 0) {
		log_warnx("acpi: I/O ports 0x%x-0x%x: already claimed by another device", port, port + len - 1);
		return -1;
	}
	return 0;
}

int
acpi_pm_init(struct vm *vm)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (pm == NULL) {
		log_warn("acpi: power management device");
		return -1;
	}
	pm->vm = vm;
	pthread_mutex_init(&pm->lock, NULL);
	pm->control = PM1_CNT_SCI_EN;
	vm->pm = pm;

	if (pm_register(vm, ACPI_PM1A_EVT_PORT, ACPI_PM1_EVT_LEN, pm_event_io, pm) < 0 ||
	    pm_register(vm, ACPI_PM1A_CNT_PORT, ACPI_PM1_CNT_LEN, pm_control_io, pm) < 0 ||
	    pm_register(vm, ACPI_PM_TMR_PORT, ACPI_PM_TMR_LEN, pm_timer_io, pm) < 0 ||
	    pm_register(vm, ACPI_RESET_PORT, 1, reset_io, pm) < 0)
		return -1;
	return 0;
}

void
acpi_pm_free(struct acpi_pm *pm)
{
	if (pm == NULL)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

void
acpi_pm_press_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->status |= PM1_PWRBTN;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

bool
acpi_pm_sci_level(struct acpi_pm *pm)
{
	bool level;

	pthread_mutex_lock(&pm->lock);
	level = pm->sci_level;
	pthread_mutex_unlock(&pm->lock);
	return level;
}
