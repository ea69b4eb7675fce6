# The most devices a VM may have: 16 disks and 16 interfaces (more than the
# 31 PCI slots with the rng, so some are functions of multi-function slots).
echo "vmdtest: many-disks $(ls /sys/block | grep -c '^vd')"
echo "vmdtest: many-nics $(ls /sys/class/net | grep -c '^eth')"
echo "vmdtest: many-last-sum $(sha256sum /dev/vdp | cut -d' ' -f1)"
