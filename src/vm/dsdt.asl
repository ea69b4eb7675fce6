/*
 * The DSDT of a vmd guest booted directly (no firmware): sleep state S5 for
 * power-off, the PCI root bridge with its windows and interrupt routing, and
 * the two legacy devices Linux should bind through ACPI (COM1, the RTC).
 *
 * The power button is a fixed-feature button (FADT flag PWR_BUTTON clear), so
 * it needs no device here; CPUs come from the MADT, so no Processor objects.
 * Compiled by iasl at build time into dsdt_aml[] (see the Makefile).
 */
DefinitionBlock ("", "DSDT", 2, "VMD   ", "VMDDSDT ", 1)
{
    /*
     * Sleep states: { PM1a SLP_TYP, PM1b SLP_TYP, reserved, reserved }.
     * 5 must match ACPI_PM_SLP_TYP_S5 in src/devices/acpi_pm.h: writing it with
     * SLP_EN to PM1a_CNT powers the VM off (test_acpi checks the two agree).
     * S0 uses 0 so that no other value looks like S5.
     */
    Name (\_S0, Package () { 0, 0, 0, 0 })
    Name (\_S5, Package () { 5, 5, 0, 0 })

    Scope (\_SB)
    {
        /* Host bridge; config space through ports 0xCF8/0xCFC (mechanism #1). */
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A03"))
            Name (_UID, 0)
            Name (_SEG, 0)
            Name (_BBN, 0)

            /*
             * Windows forwarded to PCI: every bus, all I/O ports but the
             * config ports, and the 32-bit MMIO hole below the IOAPIC
             * (MEM_PCI_MMIO_START..MEM_PCI_MMIO_END - 1 in src/vm/vm.h).
             */
            Name (_CRS, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000, 0x0000, 0x00FF, 0x0000, 0x0100)
                IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
                    NonCacheable, ReadWrite,
                    0x00000000, 0xC0000000, 0xFEBFFFFF, 0x00000000, 0x3EC00000)
            })

            /*
             * INTx routing, IOAPIC mode only (Linux always uses the IOAPIC
             * when there is a MADT): pin P (0 = INTA) of slot S goes to
             * GSI 16 + ((S + P) mod 8), the IOAPIC pins no ISA device uses,
             * level-triggered, active low.  Slot 0 is the host bridge.
             */
            Name (_PRT, Package ()
            {
                Package () { 0x0001FFFF, 0, 0, 17 }, Package () { 0x0001FFFF, 1, 0, 18 },
                Package () { 0x0001FFFF, 2, 0, 19 }, Package () { 0x0001FFFF, 3, 0, 20 },
                Package () { 0x0002FFFF, 0, 0, 18 }, Package () { 0x0002FFFF, 1, 0, 19 },
                Package () { 0x0002FFFF, 2, 0, 20 }, Package () { 0x0002FFFF, 3, 0, 21 },
                Package () { 0x0003FFFF, 0, 0, 19 }, Package () { 0x0003FFFF, 1, 0, 20 },
                Package () { 0x0003FFFF, 2, 0, 21 }, Package () { 0x0003FFFF, 3, 0, 22 },
                Package () { 0x0004FFFF, 0, 0, 20 }, Package () { 0x0004FFFF, 1, 0, 21 },
                Package () { 0x0004FFFF, 2, 0, 22 }, Package () { 0x0004FFFF, 3, 0, 23 },
                Package () { 0x0005FFFF, 0, 0, 21 }, Package () { 0x0005FFFF, 1, 0, 22 },
                Package () { 0x0005FFFF, 2, 0, 23 }, Package () { 0x0005FFFF, 3, 0, 16 },
                Package () { 0x0006FFFF, 0, 0, 22 }, Package () { 0x0006FFFF, 1, 0, 23 },
                Package () { 0x0006FFFF, 2, 0, 16 }, Package () { 0x0006FFFF, 3, 0, 17 },
                Package () { 0x0007FFFF, 0, 0, 23 }, Package () { 0x0007FFFF, 1, 0, 16 },
                Package () { 0x0007FFFF, 2, 0, 17 }, Package () { 0x0007FFFF, 3, 0, 18 },
                Package () { 0x0008FFFF, 0, 0, 16 }, Package () { 0x0008FFFF, 1, 0, 17 },
                Package () { 0x0008FFFF, 2, 0, 18 }, Package () { 0x0008FFFF, 3, 0, 19 },
                Package () { 0x0009FFFF, 0, 0, 17 }, Package () { 0x0009FFFF, 1, 0, 18 },
                Package () { 0x0009FFFF, 2, 0, 19 }, Package () { 0x0009FFFF, 3, 0, 20 },
                Package () { 0x000AFFFF, 0, 0, 18 }, Package () { 0x000AFFFF, 1, 0, 19 },
                Package () { 0x000AFFFF, 2, 0, 20 }, Package () { 0x000AFFFF, 3, 0, 21 },
                Package () { 0x000BFFFF, 0, 0, 19 }, Package () { 0x000BFFFF, 1, 0, 20 },
                Package () { 0x000BFFFF, 2, 0, 21 }, Package () { 0x000BFFFF, 3, 0, 22 },
                Package () { 0x000CFFFF, 0, 0, 20 }, Package () { 0x000CFFFF, 1, 0, 21 },
                Package () { 0x000CFFFF, 2, 0, 22 }, Package () { 0x000CFFFF, 3, 0, 23 },
                Package () { 0x000DFFFF, 0, 0, 21 }, Package () { 0x000DFFFF, 1, 0, 22 },
                Package () { 0x000DFFFF, 2, 0, 23 }, Package () { 0x000DFFFF, 3, 0, 16 },
                Package () { 0x000EFFFF, 0, 0, 22 }, Package () { 0x000EFFFF, 1, 0, 23 },
                Package () { 0x000EFFFF, 2, 0, 16 }, Package () { 0x000EFFFF, 3, 0, 17 },
                Package () { 0x000FFFFF, 0, 0, 23 }, Package () { 0x000FFFFF, 1, 0, 16 },
                Package () { 0x000FFFFF, 2, 0, 17 }, Package () { 0x000FFFFF, 3, 0, 18 },
                Package () { 0x0010FFFF, 0, 0, 16 }, Package () { 0x0010FFFF, 1, 0, 17 },
                Package () { 0x0010FFFF, 2, 0, 18 }, Package () { 0x0010FFFF, 3, 0, 19 },
                Package () { 0x0011FFFF, 0, 0, 17 }, Package () { 0x0011FFFF, 1, 0, 18 },
                Package () { 0x0011FFFF, 2, 0, 19 }, Package () { 0x0011FFFF, 3, 0, 20 },
                Package () { 0x0012FFFF, 0, 0, 18 }, Package () { 0x0012FFFF, 1, 0, 19 },
                Package () { 0x0012FFFF, 2, 0, 20 }, Package () { 0x0012FFFF, 3, 0, 21 },
                Package () { 0x0013FFFF, 0, 0, 19 }, Package () { 0x0013FFFF, 1, 0, 20 },
                Package () { 0x0013FFFF, 2, 0, 21 }, Package () { 0x0013FFFF, 3, 0, 22 },
                Package () { 0x0014FFFF, 0, 0, 20 }, Package () { 0x0014FFFF, 1, 0, 21 },
                Package () { 0x0014FFFF, 2, 0, 22 }, Package () { 0x0014FFFF, 3, 0, 23 },
                Package () { 0x0015FFFF, 0, 0, 21 }, Package () { 0x0015FFFF, 1, 0, 22 },
                Package () { 0x0015FFFF, 2, 0, 23 }, Package () { 0x0015FFFF, 3, 0, 16 },
                Package () { 0x0016FFFF, 0, 0, 22 }, Package () { 0x0016FFFF, 1, 0, 23 },
                Package () { 0x0016FFFF, 2, 0, 16 }, Package () { 0x0016FFFF, 3, 0, 17 },
                Package () { 0x0017FFFF, 0, 0, 23 }, Package () { 0x0017FFFF, 1, 0, 16 },
                Package () { 0x0017FFFF, 2, 0, 17 }, Package () { 0x0017FFFF, 3, 0, 18 },
                Package () { 0x0018FFFF, 0, 0, 16 }, Package () { 0x0018FFFF, 1, 0, 17 },
                Package () { 0x0018FFFF, 2, 0, 18 }, Package () { 0x0018FFFF, 3, 0, 19 },
                Package () { 0x0019FFFF, 0, 0, 17 }, Package () { 0x0019FFFF, 1, 0, 18 },
                Package () { 0x0019FFFF, 2, 0, 19 }, Package () { 0x0019FFFF, 3, 0, 20 },
                Package () { 0x001AFFFF, 0, 0, 18 }, Package () { 0x001AFFFF, 1, 0, 19 },
                Package () { 0x001AFFFF, 2, 0, 20 }, Package () { 0x001AFFFF, 3, 0, 21 },
                Package () { 0x001BFFFF, 0, 0, 19 }, Package () { 0x001BFFFF, 1, 0, 20 },
                Package () { 0x001BFFFF, 2, 0, 21 }, Package () { 0x001BFFFF, 3, 0, 22 },
                Package () { 0x001CFFFF, 0, 0, 20 }, Package () { 0x001CFFFF, 1, 0, 21 },
                Package () { 0x001CFFFF, 2, 0, 22 }, Package () { 0x001CFFFF, 3, 0, 23 },
                Package () { 0x001DFFFF, 0, 0, 21 }, Package () { 0x001DFFFF, 1, 0, 22 },
                Package () { 0x001DFFFF, 2, 0, 23 }, Package () { 0x001DFFFF, 3, 0, 16 },
                Package () { 0x001EFFFF, 0, 0, 22 }, Package () { 0x001EFFFF, 1, 0, 23 },
                Package () { 0x001EFFFF, 2, 0, 16 }, Package () { 0x001EFFFF, 3, 0, 17 },
                Package () { 0x001FFFFF, 0, 0, 23 }, Package () { 0x001FFFFF, 1, 0, 16 },
                Package () { 0x001FFFFF, 2, 0, 17 }, Package () { 0x001FFFFF, 3, 0, 18 }
            })

            Device (COM1)
            {
                Name (_HID, EisaId ("PNP0501"))
                Name (_UID, 1)
                Name (_CRS, ResourceTemplate ()
                {
                    IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
                    IRQNoFlags () { 4 }
                })
            }

            Device (RTC)
            {
                Name (_HID, EisaId ("PNP0B00"))
                Name (_CRS, ResourceTemplate ()
                {
                    IO (Decode16, 0x0070, 0x0070, 0x01, 0x02)
                    IRQNoFlags () { 8 }
                })
            }
        }
    }
}
