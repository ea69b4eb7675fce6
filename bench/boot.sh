#!/bin/sh
# Boot benchmark: time from process start to the guest init's first line on
# the serial console, and the VM process's memory beyond guest RAM, for vmd's
# engine (`vmd -V`) against QEMU -M pc and QEMU -M microvm, with the same
# kernel (Debian's cloud kernel), initramfs (busybox; its /init prints a
# marker), memory and vCPUs.  One run of bench/boot-measure measures all three,
# interleaved, in the nested box (tests/box/run-in-box) unless this machine
# has hardware KVM.  Writes the section between <!-- boot:begin --> and
# <!-- boot:end --> of bench/BENCHMARKS.md.
#
#   BUILD=build bench/boot.sh
# Environment: BUILD (default build), RUNS (timed boots per engine, default
# 5), BENCH_BOX (yes: always use the box, no: never; default: when the host
# has no hardware KVM, or when VMD_FORCE_BOX is set, as for make check),
# BOOT_REPORT_ONLY (set: write the section again from the last run's results),
# BOOT_SCRUB (no: in the box, boot without scrubbing its memory first; see
# bench/scrub.c).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
RUNS=${RUNS:-5}
MEMORY=256
CPUS=1
REPORT=bench/BENCHMARKS.md

[ -x "$B/vmd" ] || make -s BUILD="$BUILD" "$BUILD/vmd"
mkdir -p "$B/bench"
cc -std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -o "$B/bench/bootclock" bench/bootclock.c
cc -std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -o "$B/bench/scrub" bench/scrub.c

kernel=
for k in $(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -rV); do kernel=$k; break; done
[ -n "$kernel" ] || { echo "boot.sh: no /boot/vmlinuz-*-cloud-amd64 (install linux-image-cloud-amd64)" >&2; exit 1; }

# The benchmark's initramfs: busybox-static and bench/boot-init, nothing else.
build_initrd() {
	out=$B/bench/initrd.img
	stamp=$(cat /bin/busybox bench/boot-init | md5sum | cut -d' ' -f1)
	[ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ] && return 0
	file -L /bin/busybox | grep -q 'statically linked' ||
		{ echo "boot.sh: /bin/busybox is not static (install busybox-static)" >&2; exit 1; }
	root=$B/bench/initrd-root
	rm -rf "$root"
	mkdir -p "$root/bin" "$root/proc" "$root/dev"
	cp /bin/busybox "$root/bin/busybox"
	cp bench/boot-init "$root/init"
	chmod 0755 "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -9 > "$out.new"
	mv "$out.new" "$out"
	echo "$stamp" > "$out.stamp"
	rm -rf "$root"
}
build_initrd

hardware_kvm() {
	[ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }
}
case ${BENCH_BOX:-auto} in
yes) in_box=1 ;;
no) in_box= ;;
*) if hardware_kvm && [ -z "${VMD_FORCE_BOX:-}" ]; then in_box=; else in_box=1; fi ;;
esac

OUT=$B/bench/boot
if [ -z "${BOOT_REPORT_ONLY:-}" ]; then
	rm -rf "$OUT"
	mkdir -p "$OUT"
	export OUT RUNS MEMORY CPUS
	export VMD="$B/vmd" BOOTCLOCK="$B/bench/bootclock" SCRUB="$B/bench/scrub" KERNEL="$kernel" INITRD="$B/bench/initrd.img"
	{
		echo "date_run='$(date -u +%Y-%m-%d)'"
		echo "load='$(cut -d' ' -f1-3 /proc/loadavg)'"
		echo "in_box='$in_box' RUNS='$RUNS' scrub='${BOOT_SCRUB:-yes}'"
	} > "$OUT/meta"
	started=$(date +%s)
	if [ -n "$in_box" ]; then
		BUILD=$BUILD tests/box/run-in-box bench/boot-measure
	else
		sh bench/boot-measure
	fi
	echo "elapsed='$(($(date +%s) - started))'" >> "$OUT/meta"
fi
# BOOT_REPORT_ONLY=1: only write the section again from the last run's results.
[ -f "$OUT/meta" ] && [ -f "$OUT/results" ] || { echo "boot.sh: no results in $OUT" >&2; exit 1; }
. "$OUT/meta"

# stat ENGINE FIELD: "median min max" of FIELD over ENGINE's timed runs
stat() {
	awk -v e="$1" -v f="$2" '
	{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
	v["engine"] == e && v[f] != "none" && v["boot_ns"] >= 0 { print v[f] }' "$OUT/results" |
	sort -g | awk '{ x[NR] = $1 } END {
		if (NR == 0) { print "nan nan nan"; exit }
		m = NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2
		print m, x[1], x[NR] }'
}
# calc EXPRESSION: awk arithmetic, printed with %s
calc() { awk "BEGIN { print $1 }"; }

for e in ours pc microvm; do
	set -- $(stat "$e" boot_ns)
	eval "boot_$e=$1 bmin_$e=$2 bmax_$e=$3"
	set -- $(stat "$e" uptime)
	eval "up_$e=$1"
	set -- $(stat "$e" overhead_kib)
	eval "ovh_$e=$1"
	set -- $(stat "$e" guest_ram_kib)
	eval "ram_$e=$1"
	eval "runs_$e=\$(awk -v e=$e '\$1 == \"engine=\" e { n++ } END { print n + 0 }' \"\$OUT/results\")"
	eval "times_$e=\"\$(awk -v e=$e '\$1 == \"engine=\" e { split(\$3, kv, \"=\"); printf \"%s%.2f\", (n++ ? \", \" : \"\"), kv[2] / 1e9 }' \"\$OUT/results\")\""
	eval "bad_$e=\$(awk -v e=$e '\$1 == \"engine=\" e && (\$3 == \"boot_ns=-1\" || \$4 != \"exit=0\") { n++ } END { print n + 0 }' \"\$OUT/results\")"
done

ratio_pc=$(calc "$boot_ours / $boot_pc")
ratio_microvm=$(calc "$boot_ours / $boot_microvm")
verdict() { if [ "$(calc "($1) ? 1 : 0")" = 1 ]; then echo "met"; else echo "**not met**"; fi; }
boot_verdict=$(verdict "$ratio_pc <= 0.7")
mem_verdict=$(verdict "$ovh_ours <= 4096")

row() {
	e=$1 label=$2
	eval "b=\$boot_$e lo=\$bmin_$e hi=\$bmax_$e u=\$up_$e o=\$ovh_$e r=\$ram_$e n=\$runs_$e"
	printf '| %s | %d | %.2f s (%.2f–%.2f) | %.2f s | %.2f s | %.1f MiB | %.1f MiB |\n' "$label" "$n" \
		"$(calc "$b / 1e9")" "$(calc "$lo / 1e9")" "$(calc "$hi / 1e9")" "$u" \
		"$(calc "$b / 1e9 - $u")" "$(calc "$o / 1024")" "$(calc "$r / 1024")"
}

if [ -n "$in_box" ]; then
	where="The engines ran inside the nested box (tests/box/run-in-box: a QEMU TCG guest, \`-cpu max\`,
${BOX_CPUS:-1} vCPUs, ${BOX_MEMORY:-8G}, kvm_amd), so every guest is a nested KVM guest of a software-emulated
CPU. **Absolute times are inflated many times over by TCG; the ratios are what matter.**"
	if [ "${scrub:-no}" != no ]; then
		where="$where
Before every boot (every engine, the warm-up round too, outside the timed part) \`bench/scrub\` writes 512 MiB
of the box's memory. The box kernel hands a guest's freed RAM to the next engine's guest, and zeroing a page on
which TCG still holds translated code of the previous guest takes TCG's slow self-modifying-code path: 2–3 s per
boot, measured, charged to whichever engine boots next for the code its predecessor ran (hardware has no such
cost). \`BOOT_SCRUB=no\` measures without it."
	else
		where="$where
Without \`bench/scrub\` (\`BOOT_SCRUB=no\`): each boot also paid 2–3 s for the box memory its predecessor ran code
from (see bench/scrub.c)."
	fi
else
	where="The engines ran directly on this host's KVM."
fi
scrub_env=
[ -n "$in_box" ] && [ "${scrub:-no}" = no ] && scrub_env=" BOOT_SCRUB=no"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
qemu_version=$(qemu-system-x86_64 --version | head -n 1)

section=$(cat <<EOF
## Boot to init and memory overhead

Produced by \`make bench\` (\`BUILD=$BUILD RUNS=$RUNS$scrub_env bench/boot.sh\`) on $date_run in $elapsed s, on a host with
$(nproc) CPUs ($cpu; load average $load at the start).
$where

Guest: \`$(basename "$kernel")\`, a busybox initramfs whose \`/init\` (bench/boot-init) mounts /proc and
prints \`vmdbench: init uptime=...\`; ${MEMORY} MiB, $CPUS vCPU, command line \`console=ttyS0 quiet panic=-1\`.
Boot to init: from just before fork to the read that returns the marker from the engine's stdout
(bench/bootclock.c, the same for every engine). Guest clock: the guest's /proc/uptime at that moment;
the rest (boot − guest clock) is the engine's start, firmware and unpacking the kernel (by vmd itself, by the guest's decompressor under QEMU). Overhead: Rss
of every mapping of the VM process except the guest RAM mapping, from /proc/PID/smaps half a second after the
marker; beside it the guest RAM the guest touched. Medians of $RUNS timed boots each, interleaved (the first
engine rotates each round) after one warm-up round; every engine, its libraries (run through the copied
dynamic loader), firmware, kernel and initramfs were copied to a tmpfs first.

| engine | boots | boot to init, median (min–max) | guest clock at init | before the guest clock | RSS overhead | guest RAM touched |
|---|---|---|---|---|---|---|
$(row ours "vmd -V")
$(row pc "QEMU -M pc")
$(row microvm "QEMU -M microvm")

- Boot ratio vmd / QEMU pc: **$(printf %.2f "$ratio_pc")** (target ≤ 0.7: $boot_verdict); vmd / QEMU microvm: **$(printf %.2f "$ratio_microvm")**.
- Where the time goes (medians): before the guest clock starts (engine start, firmware, kernel
  decompression) vmd takes $(printf %.2f "$(calc "($boot_ours / 1e9 - $up_ours) / ($boot_pc / 1e9 - $up_pc)")") × QEMU pc's time; from there to init (the guest kernel running) $(printf %.2f "$(calc "$up_ours / $up_pc")") ×.
- Memory overhead of vmd: **$(printf %.1f "$(calc "$ovh_ours / 1024")") MiB** (target ≤ 4 MiB: $mem_verdict); QEMU pc $(printf %.1f "$(calc "$ovh_pc / 1024")") MiB, QEMU microvm $(printf %.1f "$(calc "$ovh_microvm / 1024")") MiB.
- Boots that missed the marker or did not exit 0: vmd $bad_ours, pc $bad_pc, microvm $bad_microvm.
- Each boot (s): vmd $times_ours; pc $times_pc; microvm $times_microvm.

Engines ($qemu_version):
\`\`\`
vmd -V -k vmlinuz -I initrd.img -a "console=ttyS0 quiet panic=-1" -m ${MEMORY}M -p $CPUS
qemu-system-x86_64 -accel kvm -cpu host -m ${MEMORY}M -smp $CPUS -nodefaults -no-user-config -display none \\
    -serial stdio -no-reboot -kernel vmlinuz -initrd initrd.img -append "console=ttyS0 quiet panic=-1" \\
    -M pc    # or: -M microvm,x-option-roms=off,rtc=on
\`\`\`
\`rtc=on\` because under KVM microvm has no RTC by default and the kernel then spends seconds probing for one.
Console logs and smaps are left in \`$BUILD/bench/boot/\`; in the warm-up round (NAME-0.log) the guest also
prints its kernel log after the marker, with the guest's timestamps.
EOF
)

# Replace our section of the report, keeping the others.
[ -f "$REPORT" ] || printf '# Benchmarks\n\nWritten by `make bench`; each section by its own script.\n' > "$REPORT"
if ! grep -q '^<!-- boot:begin -->$' "$REPORT"; then
	printf '\n<!-- boot:begin -->\n<!-- boot:end -->\n' >> "$REPORT"
fi
printf '%s\n' "$section" > "$OUT/section.md"
awk -v file="$OUT/section.md" '
	/^<!-- boot:begin -->$/ { print; while ((getline l < file) > 0) print l; skip = 1; next }
	/^<!-- boot:end -->$/ { skip = 0 }
	!skip { print }' "$REPORT" > "$REPORT.new"
mv "$REPORT.new" "$REPORT"
echo "boot: vmd $(calc "$boot_ours / 1e9") s, QEMU pc $(calc "$boot_pc / 1e9") s, microvm $(calc "$boot_microvm / 1e9") s; ratio to pc $ratio_pc; overhead vmd ${ovh_ours} KiB, pc ${ovh_pc} KiB, microvm ${ovh_microvm} KiB" >&2
