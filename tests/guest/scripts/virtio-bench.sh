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
