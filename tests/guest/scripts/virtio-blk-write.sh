# virtio-blk, first boot: reads vdb whole (the host knows its checksum), makes
# a file system on vda, writes files and their checksums, unmounts.  The
# second boot (virtio-blk-read) checks them.
echo "vmdtest: blk-disks $(ls /sys/block | grep '^vd' | tr '\n' ' ')"
echo "vmdtest: blk-serial $(cat /sys/block/vda/serial 2>/dev/null)"
echo "vmdtest: blk-vdb-sum $(sha256sum /dev/vdb | cut -d' ' -f1)"
mkdir -p /mnt
if mke2fs -q /dev/vda && mount -t ext2 /dev/vda /mnt; then
	dd if=/dev/urandom of=/mnt/big bs=1M count=16 2>/dev/null
	for i in 1 2 3 4 5; do
		dd if=/dev/urandom of=/mnt/small$i bs=1k count=$((i * 7)) 2>/dev/null
	done
	(cd /mnt && sha256sum big small* > SUMS)
	echo "vmdtest: blk-sum $(sha256sum /mnt/SUMS | cut -d' ' -f1)"
	umount /mnt && echo "vmdtest: blk-written"
else
	echo "vmdtest: blk-mkfs failed"
fi
sync
