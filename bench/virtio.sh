#!/bin/sh
# virtio benchmark: the same guest under vmd -V and under QEMU (-accel kvm,
# virtio-blk-pci and virtio-net-pci on a tap, no vhost): sequential direct
# reads and writes on a raw disk (dd, 1 MiB blocks) and guest-to-host TCP
# (busybox nc).  bench/virtio-measure runs in the nested box unless this
# host has hardware KVM.  Writes the section between <!-- virtio:begin -->
# and <!-- virtio:end --> of bench/BENCHMARKS.md.
#   BUILD=build bench/virtio.sh
# Environment: BUILD, MB (MiB per transfer, default 128), ROUNDS (boots per
# engine, default 1; each boot measures three times), BENCH_BOX (yes/no/auto).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
case $BUILD in /*) B=$BUILD ;; *) B=$(pwd)/$BUILD ;; esac
MB=${MB:-128}
ROUNDS=${ROUNDS:-1}
REPORT=bench/BENCHMARKS.md

[ -x "$B/vmd" ] || make -s BUILD="$BUILD" "$BUILD/vmd"
kernel=$(BUILD=$BUILD tests/guest/build-initrd)
OUT=$B/bench/virtio
rm -rf "$OUT"
mkdir -p "$OUT"
export OUT MB ROUNDS VMD="$B/vmd" KERNEL="$kernel" INITRD="$B/guest/initrd.img"

hardware_kvm() {
	[ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }
}
case ${BENCH_BOX:-auto} in
yes) in_box=1 ;;
no) in_box= ;;
*) if hardware_kvm; then in_box=; else in_box=1; fi ;;
esac
load=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
if [ -n "$in_box" ]; then
	BUILD=$BUILD tests/box/run-in-box bench/virtio-measure
else
	sh bench/virtio-measure
fi
elapsed=$(($(date +%s) - started))

# median ENGINE KEY: the median MB/s of every "vmdtest: bench-KEY N" line of ENGINE's logs
median() {
	cat "$OUT/$1"-*.log | tr -d '\r' | sed -n "s/^vmdtest: bench-$2 //p" | sort -g |
		awk '{ x[NR] = $1 } END { if (NR == 0) print "nan"; else print (NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2) }'
}
all() {
	cat "$OUT/$1"-*.log | tr -d '\r' | sed -n "s/^vmdtest: bench-$2 //p" | tr '\n' ' '
}
calc() { awk "BEGIN { print $1 }"; }
for key in read write tcp; do
	eval "ours_$key=$(median ours $key) qemu_$key=$(median qemu $key)"
done
row() {
	eval "o=\$ours_$1 q=\$qemu_$1"
	ratio=$(awk -v o="$o" -v q="$q" 'BEGIN { if (q + 0 > 0 && o + 0 > 0) printf "%.2f", o / q; else print "n/a" }')
	verdict=$(awk -v r="$ratio" 'BEGIN { print (r + 0 >= 1.0) ? "met" : "**not met**" }')
	printf '| %s | %s | %s | %s | %s |\n' "$2" "$o" "$q" "$ratio" "$verdict"
}
if [ -n "$in_box" ]; then
	where="inside the nested box (a QEMU TCG guest with kvm_amd, ${BOX_CPUS:-1} vCPUs): both engines' guests are
nested KVM guests of a software-emulated CPU, so **absolute figures are far below real hardware; the ratios
are what matter**"
else
	where="directly on this host's KVM"
fi
qemu_version=$(qemu-system-x86_64 --version | head -n 1)
section=$(cat <<EOS
## virtio devices against QEMU

Produced by \`make bench\` (\`BUILD=$BUILD MB=$MB ROUNDS=$ROUNDS bench/virtio.sh\`) on $(date -u +%Y-%m-%d) in
$elapsed s on a host with $(nproc) CPUs (load average $load at the start: other jobs shared it, and single
figures vary by up to 2x, hence medians), $where. Guest: Debian's cloud kernel and the test initramfs (tests/guest/build-initrd), 512 MiB,
1 vCPU, script tests/guest/scripts/virtio-bench.sh: \`dd bs=1M count=$MB iflag=direct\` from /dev/vda,
\`dd bs=1M count=$MB oflag=direct\` to it, and $MB MiB of zeros piped into \`nc\` to the host's tap
address (a busybox \`nc -l\` there discards them); each three times per boot, $ROUNDS boot(s) per engine,
alternating. The disk is a raw file on the box's tmpfs (both engines go through the host page cache:
QEMU \`cache=writeback,aio=threads\`). MB/s from the guest's clock; medians.

| transfer | vmd MB/s | QEMU MB/s | vmd / QEMU | target ≥ 1.0 |
|---|---|---|---|---|
$(row read "disk sequential read, 1 MiB direct")
$(row write "disk sequential write, 1 MiB direct")
$(row tcp "TCP guest → host")

Every figure (MB/s): vmd read $(all ours read)/ write $(all ours write)/ TCP $(all ours tcp);
QEMU read $(all qemu read)/ write $(all qemu write)/ TCP $(all qemu tcp).

Engines ($qemu_version):
\`\`\`
vmd -V -k vmlinuz -I initrd.img -m 512M -p 1 -a "..." -d disk.img -n TAP
qemu-system-x86_64 -accel kvm -cpu host -M pc -m 512M -smp 1 -nodefaults -no-user-config -display none \\
    -serial stdio -no-reboot -kernel vmlinuz -initrd initrd.img -append "..." \\
    -drive file=disk.img,if=none,id=d0,format=raw,cache=writeback,aio=threads -device virtio-blk-pci,drive=d0 \\
    -netdev tap,id=n0,ifname=TAP,script=no,downscript=no,vhost=off -device virtio-net-pci,netdev=n0
\`\`\`
Consoles are left in \`$BUILD/bench/virtio/\`.
EOS
)
[ -f "$REPORT" ] || printf '# Benchmarks\n\nWritten by `make bench`; each section by its own script.\n' > "$REPORT"
if ! grep -q '^<!-- virtio:begin -->$' "$REPORT"; then
	printf '\n<!-- virtio:begin -->\n<!-- virtio:end -->\n' >> "$REPORT"
fi
printf '%s\n' "$section" > "$OUT/section.md"
awk -v file="$OUT/section.md" '
	/^<!-- virtio:begin -->$/ { print; while ((getline l < file) > 0) print l; skip = 1; next }
	/^<!-- virtio:end -->$/ { skip = 0 }
	!skip { print }' "$REPORT" > "$REPORT.new"
mv "$REPORT.new" "$REPORT"
echo "virtio: read vmd $ours_read / QEMU $qemu_read MB/s, write $ours_write / $qemu_write, TCP $ours_tcp / $qemu_tcp" >&2
