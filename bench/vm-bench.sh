#!/bin/sh
# vm-bench.sh SRCDIR BUILDDIR QEMU BUSYBOX: run the benchmark driver in the
# QEMU guest that check-vm uses (software emulation, -cpu max: real
# protection keys), so that its pku paths run (the WRPKRU baseline, key
# eviction over 1000 domains) and the memory figures are taken on pku.
# Emulated: no timing from here means anything.  The guest's files land
# in BUILDDIR/bench/out-vm/{quick,memory}/.
set -eu
srcdir=$1 builddir=$2 qemu=${3:-qemu-system-x86_64} busybox=${4:-/bin/busybox}
vm=$builddir/bench/vm
out=$builddir/bench/out-vm
die() { echo "bench-vm: $*" >&2; exit 1; }

command -v "$qemu" >/dev/null 2>&1 || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
[ -x "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] && [ -r "$kernel" ] || die "no readable /boot/vmlinuz-* (apt-get install linux-image-amd64)"

rm -rf "$vm" "$out"
mkdir -p "$vm/root/bin" "$vm/root/proc" "$vm/root/sys" "$vm/root/dev" "$vm/root/tmp" "$out"
sh "$srcdir/test/vm/collect.sh" "$srcdir" "$builddir" "$vm/root/bundle"
cp "$busybox" "$vm/root/bin/busybox"
cp "$srcdir/bench/vm-init" "$vm/root/init"
chmod +x "$vm/root/init"
(cd "$vm/root" && find . | cpio -o -H newc --quiet) > "$vm/initrd.cpio"

echo "bench-vm: booting $kernel under $qemu -cpu max (emulated: functional figures only)"
. "$srcdir/test/vm/boot.sh"
vm_run bench-vm 1500

grep -q 'pkalloc-vm: protection keys: yes$' "$vm/console.log" ||
	die "the guest did not report protection keys (see $vm/console.log)"
# Split the guest's files out of the console log.
awk -v out="$out" '
	/^pkalloc-bench: begin / { f = out "/" $3; d = f; sub(/\/[^\/]*$/, "", d); system("mkdir -p " d); next }
	/^pkalloc-bench: end$/ { close(f); f = ""; next }
	f != "" { print > f }' "$vm/console.log"
for run in quick memory; do
	grep -q "^pkalloc-bench: $run exit 0$" "$vm/console.log" ||
		die "the $run run failed in the guest (see $vm/console.log)"
	head -n 1 "$out/$run/results.csv" | grep -q 'backend=pku' || die "the $run run was not on pku"
done
cat "$out/quick/results.md" "$out/memory/results.md"
echo "bench-vm: the driver ran on pku; files in $out (functional figures only)"
