# virtio-net: an address on eth0 (the host's tap is 10.77.0.1), ping, then
# 8 MiB to the host (port 5001) and a file from it (port 5002), with
# checksums for the host to compare.
ip link set eth0 up
ip addr add 10.77.0.2/24 dev eth0
echo "vmdtest: net-mac $(cat /sys/class/net/eth0/address)"
if ping -c 3 -W 5 10.77.0.1 > /dev/null 2>&1; then
	echo "vmdtest: net-ping ok"
else
	echo "vmdtest: net-ping failed"
fi
dd if=/dev/urandom of=/tmp/send bs=1M count=8 2>/dev/null
echo "vmdtest: net-send-sum $(sha256sum /tmp/send | cut -d' ' -f1)"
nc 10.77.0.1 5001 < /tmp/send && echo "vmdtest: net-sent"
# A stdin that never ends: busybox nc quits at the end of its input.
mkfifo /tmp/hold
exec 3<> /tmp/hold
nc 10.77.0.1 5002 <&3 > /tmp/recv
echo "vmdtest: net-recv-sum $(sha256sum /tmp/recv | cut -d' ' -f1)"
