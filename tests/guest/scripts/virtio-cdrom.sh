# virtio-blk as the CD-ROM (vmd -V -r): the disk whose serial is "cdrom" is
# read-only, refuses writes and holds the image's bytes.
for dev in /sys/block/vd*; do
	[ "$(cat "$dev/serial" 2>/dev/null)" = cdrom ] || continue
	name=${dev##*/}
	echo "vmdtest: cdrom-dev $name"
	echo "vmdtest: cdrom-ro $(cat "$dev/ro")"
	if dd if=/dev/zero of="/dev/$name" bs=4096 count=1 oflag=direct 2>/dev/null; then
		echo "vmdtest: cdrom-write accepted"
	else
		echo "vmdtest: cdrom-write refused"
	fi
	echo "vmdtest: cdrom-sum $(sha256sum "/dev/$name" | cut -d' ' -f1)"
done
