# The guest of bench/virtio.sh: sequential direct I/O on vda in 1 MiB
# blocks, read then write, and TCP to the host (10.77.0.1:5001), three times
# each, reported in MB/s.  vmdbench_mb=N on the command line sets the size.
mb=128
for word in $(cat /proc/cmdline); do
	case $word in vmdbench_mb=*) mb=${word#vmdbench_mb=} ;; esac
done
now() { cut -d' ' -f1 /proc/uptime; }
rate() { awk -v mb="$1" -v a="$2" -v b="$3" 'BEGIN { if (b > a) printf "%.1f", mb / (b - a); else print "inf" }'; }
ip link set eth0 up
ip addr add 10.77.0.2/24 dev eth0
ping -c 1 -W 5 10.77.0.1 > /dev/null 2>&1
for round in 1 2 3; do
	t0=$(now)
	dd if=/dev/vda of=/dev/null bs=1M count="$mb" iflag=direct 2>/dev/null
	t1=$(now)
	echo "vmdtest: bench-read $(rate "$mb" "$t0" "$t1")"
	t0=$(now)
	dd if=/dev/zero of=/dev/vda bs=1M count="$mb" oflag=direct 2>/dev/null
	t1=$(now)
	echo "vmdtest: bench-write $(rate "$mb" "$t0" "$t1")"
	t0=$(now)
	dd if=/dev/zero bs=1M count="$mb" 2>/dev/null | nc 10.77.0.1 5001
	t1=$(now)
	echo "vmdtest: bench-tcp $(rate "$mb" "$t0" "$t1")"
done
# For reading the figures: negotiated features, frames and their mean size,
# interrupts per virtio queue, TCP retransmissions.
for d in /sys/bus/virtio/devices/*; do
	echo "vmdtest: bench-features $(cat "$d/device") $(cat "$d/features")"
done
s=/sys/class/net/eth0/statistics
echo "vmdtest: bench-frames tx $(cat $s/tx_packets) of $(($(cat $s/tx_bytes) / ($(cat $s/tx_packets) + 1))) B, rx $(cat $s/rx_packets) of $(($(cat $s/rx_bytes) / ($(cat $s/rx_packets) + 1))) B"
echo "vmdtest: bench-irqs $(grep virtio /proc/interrupts | awk '{ printf "%s=%s ", $NF, $2 }')"
echo "vmdtest: bench-tcp-retrans $(awk '$1 == "Tcp:" { n++ } n == 2 && $1 == "Tcp:" { print $13; exit }' /proc/net/snmp)"
