# virtio-blk, second boot: the files of the first boot are intact; vdb is
# read-only and refuses writes.
mkdir -p /mnt
if mount -t ext2 -o ro /dev/vda /mnt; then
	if (cd /mnt && sha256sum -c SUMS > /dev/null 2>&1); then
		echo "vmdtest: blk-verify ok"
	else
		echo "vmdtest: blk-verify bad"
	fi
	echo "vmdtest: blk-sum $(sha256sum /mnt/SUMS | cut -d' ' -f1)"
	umount /mnt
else
	echo "vmdtest: blk-verify no-filesystem"
fi
echo "vmdtest: blk-ro $(cat /sys/block/vdb/ro)"
if dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct 2>/dev/null; then
	echo "vmdtest: blk-ro-write accepted"
else
	echo "vmdtest: blk-ro-write refused"
fi
echo "vmdtest: blk-vdb-sum $(sha256sum /dev/vdb | cut -d' ' -f1)"
