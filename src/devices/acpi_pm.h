/*
 * ACPI fixed hardware of a guest booted without firmware: the PM1a event and
 * control blocks, the PM timer and the reset register.  The FADT built by
 * src/vm/acpi.c points the guest at these ports.
 */
#ifndef VMD_ACPI_PM_H
#define VMD_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct acpi_pm;

/*
 * Ports: one block at 0x600, below 0x1000 where Linux puts PCI I/O BARs, and
 * the PC's traditional reset control register at 0xcf9.
 */
#define ACPI_PM1A_EVT_PORT 0x600 /* PM1_STS (2 bytes), then PM1_EN (2 bytes) */
#define ACPI_PM1_EVT_LEN   4
#define ACPI_PM1A_CNT_PORT 0x604 /* PM1_CNT */
#define ACPI_PM1_CNT_LEN   2
#define ACPI_PM_TMR_PORT   0x608 /* 24-bit free-running counter */
#define ACPI_PM_TMR_LEN	   4
#define ACPI_RESET_PORT	   0xcf9
#define ACPI_RESET_VALUE   0x06 /* what the FADT tells the guest to write */

#define ACPI_PM_TIMER_HZ 3579545

/*
 * SLP_TYP that means S5 (soft off).  The DSDT's \_S5 package carries the same
 * number (src/vm/dsdt.asl); test_acpi checks that they agree.
 */
#define ACPI_PM_SLP_TYP_S5 5

/* PM1_STS and PM1_EN bits (the status bit and its enable share a position). */
#define PM1_TMR		 (1u << 0)
#define PM1_GBL		 (1u << 5)
#define PM1_PWRBTN	 (1u << 8)
#define PM1_SLPBTN	 (1u << 9)
#define PM1_RTC		 (1u << 10)
#define PM1_PCIEXP_WAKE	 (1u << 14)
#define PM1_WAK_STS	 (1u << 15)

/* PM1_CNT bits. */
#define PM1_CNT_SCI_EN	       (1u << 0)
#define PM1_CNT_BM_RLD	       (1u << 1)
#define PM1_CNT_GBL_RLS	       (1u << 2)
#define PM1_CNT_SLP_TYP_SHIFT  10
#define PM1_CNT_SLP_TYP_MASK   (7u << PM1_CNT_SLP_TYP_SHIFT)
#define PM1_CNT_SLP_EN	       (1u << 13)

/* Reset control register bits. */
#define RESET_CONTROL_RST_CPU (1u << 2)

/*
 * Registers the PM blocks and the reset register on vm->port_bus and stores
 * the device in vm->pm (also when a port is already taken: acpi_pm_free
 * releases it).  Returns -1 on failure, with the reason logged.
 */
int acpi_pm_init(struct vm *vm);
void acpi_pm_free(struct acpi_pm *pm);

/*
 * Presses the power button: sets PWRBTN_STS and raises the SCI if the guest
 * enabled the event.  Safe to call from any thread.
 */
void acpi_pm_press_power_button(struct acpi_pm *pm);

/* The level the device last drove the SCI line to. */
bool acpi_pm_sci_level(struct acpi_pm *pm);

#endif
