#!/bin/sh
# Disk benchmark: our qcow2 engine against qemu-img on the same files.
#   - 4 KiB sequential and random (a large prime stride) reads and writes:
#     bench/disk-bench (the engine, built -O2) against `qemu-img bench`
#   - `vmctl create -i` against `qemu-img convert` for a 1 GiB image
# Each figure is the median wall time of RUNS runs (default 5), whole
# processes timed alike (both flush at the end of a write run).  Writes the
# section between <!-- disk:begin --> and <!-- disk:end --> of
# bench/BENCHMARKS.md.  Usage: BUILD=build bench/disk.sh
set -e
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD="${BUILD:-build}"
RUNS="${RUNS:-5}"
COUNT="${COUNT:-131072}"	# 4 KiB requests per run: 512 MiB
STRIDE=$((4096 * 7919))	# the "random" pattern: a prime number of blocks
# On tmpfs by default: the host disk's write-back speed would drown the
# difference between the engines (BENCH_DIR=/var/tmp measures a disk).
if [ -z "$BENCH_DIR" ] && [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')" -gt 4000000 ]; then
	BENCH_DIR=/dev/shm
fi
DIR=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmd-disk-bench.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
OUT=bench/BENCHMARKS.md

make -s BUILD="$BUILD" "$BUILD/libvmd.a" "$BUILD/vmctl" >/dev/null
TOOL="$ROOT/$BUILD/disk/disktool-bench"
mkdir -p "$BUILD/disk"
cc -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Isrc -o "$TOOL" \
	tests/disk/disktool.c "$BUILD/libvmd.a" -levent -lseccomp -lz -lbsd -lpthread -lutil
VMCTL="$ROOT/$BUILD/vmctl"

now() { date +%s.%N; }

# median of the numbers on stdin
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# timed CMD...: prints the wall time of CMD
timed() {
	t0=$(now)
	"$@" >/dev/null 2>&1
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}

# A full 1 GiB qcow2 image for reads and in-place writes.
full="$DIR/full.qcow2"
qemu-img create -q -f qcow2 "$full" 1G
qemu-io -c "write -P 0x5a 0 1G" "$full" >/dev/null

# fresh: a new empty image for each allocating write run
fresh() { rm -f "$DIR/fresh.qcow2"; qemu-img create -q -f qcow2 "$DIR/fresh.qcow2" 1G; }

# row NAME VMD-CMD QEMU-CMD [SETUP]
rows=""
row() {
	name=$1 ours=$2 theirs=$3 setup=$4
	: >"$DIR/ours" ; : >"$DIR/theirs"
	for i in $(seq "$RUNS"); do
		# each run starts with no dirty pages of an earlier one
		[ -n "$setup" ] && $setup
		sync
		timed sh -c "$ours" >>"$DIR/ours"
		[ -n "$setup" ] && $setup
		sync
		timed sh -c "$theirs" >>"$DIR/theirs"
	done
	o=$(median <"$DIR/ours")
	t=$(median <"$DIR/theirs")
	rows="$rows$(printf '| %s | %.3f s | %.3f s | %.2f |' "$name" "$o" "$t" "$(awk -v a="$o" -v b="$t" 'BEGIN { print b / a }')")
"
	echo "$name: vmd $o s, qemu-img $t s" >&2
}

MIB=$((COUNT / 256))
B="qemu-img bench -q -f qcow2 -c $COUNT -s 4096 -t writeback"
row "4 KiB sequential read ($MIB MiB)" "$TOOL bench $full read $COUNT 4096" "$B -d 1 $full"
row "4 KiB random read ($MIB MiB)" "$TOOL bench $full read $COUNT $STRIDE" "$B -d 1 -S $STRIDE $full"
row "4 KiB sequential write, allocating ($MIB MiB)" "$TOOL bench $DIR/fresh.qcow2 write $COUNT 4096" \
	"$B -d 1 -w $DIR/fresh.qcow2" fresh
row "4 KiB random write, in place ($MIB MiB)" "$TOOL bench $full write $COUNT $STRIDE" \
	"$B -d 1 -w -S $STRIDE $full"
row "4 KiB random read, qemu-img at depth 64" "$TOOL bench $full read $COUNT $STRIDE" \
	"$B -d 64 -S $STRIDE $full"

# A 1 GiB source: half data (random, then compressible text), half holes.
src="$DIR/src.qcow2"
truncate -s 1G "$DIR/src.raw"
head -c 268435456 /dev/urandom | dd of="$DIR/src.raw" conv=notrunc bs=1M 2>/dev/null
yes "vmd benchmark data line" | head -c 268435456 |
	dd of="$DIR/src.raw" conv=notrunc bs=1M seek=512 2>/dev/null
qemu-img convert -O qcow2 "$DIR/src.raw" "$src"
rm -f "$DIR/src.raw"
clear_out() { rm -f "$DIR/out.qcow2"; }
row "convert 1 GiB qcow2 (512 MiB data) to qcow2" "$VMCTL create -i $src $DIR/out.qcow2" \
	"qemu-img convert -O qcow2 $src $DIR/out.qcow2" clear_out

section=$(cat <<EOF
<!-- disk:begin -->
## Disk images (qcow2)

Produced by \`BUILD=$BUILD RUNS=$RUNS bench/disk.sh\` on $(date -u +%Y-%m-%d), $(nproc) CPUs,
$(qemu-img --version | head -1), files on $(df -P "$DIR" | awk 'NR == 2 { print $1 }') ($(stat -f -c %T "$DIR")).
Median wall time of $RUNS runs of each whole process, each started after \`sync\`; both sides flush
(fdatasync) at the end of a write run.
Ratio = qemu-img time / vmd time: above 1 means vmd is faster. vmd's engine is synchronous (one request at
a time), so qemu-img runs at depth 1 (\`-d 1\`) except where noted. Random = a stride of 7919 blocks.

| operation | vmd | qemu-img | ratio |
|---|---|---|---|
$rows
<!-- disk:end -->
EOF
)

[ -f "$OUT" ] || printf '# Benchmarks\n\nWritten by `make bench`; each section by its own script.\n' >"$OUT"
printf '%s\n' "$section" >"$DIR/section"
if grep -q '<!-- disk:begin -->' "$OUT"; then
	awk -v file="$DIR/section" '
		/<!-- disk:begin -->/ { while ((getline line < file) > 0) print line; skip = 1; next }
		/<!-- disk:end -->/ { skip = 0; next }
		!skip { print }' "$OUT" >"$OUT.new"
	mv "$OUT.new" "$OUT"
else
	printf '\n' >>"$OUT"
	cat "$DIR/section" >>"$OUT"
fi
echo "bench/disk.sh: wrote the disk section of $OUT" >&2
