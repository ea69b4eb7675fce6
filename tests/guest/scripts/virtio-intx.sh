# virtio with pci=nomsi: interrupts come over INTx (IOAPIC lines), shared
# between slots (9 disks and the rng on 8 lines).  Reads the first and the
# last disk whole and reports which interrupt kinds the devices use.
echo "vmdtest: intx-vda-sum $(sha256sum /dev/vda | cut -d' ' -f1)"
echo "vmdtest: intx-vdi-sum $(sha256sum /dev/vdi | cut -d' ' -f1)"
echo "vmdtest: intx-ioapic $(grep IO-APIC /proc/interrupts | grep -o 'virtio[0-9]*' | wc -l)"
echo "vmdtest: intx-shared $(grep IO-APIC /proc/interrupts | grep -c 'virtio[0-9]*, virtio')"
echo "vmdtest: intx-msi $(grep MSI /proc/interrupts | grep -c virtio)"
