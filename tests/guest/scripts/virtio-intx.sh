# virtio with pci=nomsi: interrupts come over INTx (IOAPIC lines).  Reads
# vda whole and reports which interrupt kinds the virtio devices use.
echo "vmdtest: intx-vda-sum $(sha256sum /dev/vda | cut -d' ' -f1)"
echo "vmdtest: intx-ioapic $(grep virtio /proc/interrupts | grep -c IO-APIC)"
echo "vmdtest: intx-msi $(grep virtio /proc/interrupts | grep -c MSI)"
