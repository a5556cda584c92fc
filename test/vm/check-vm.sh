#!/bin/sh
# check-vm.sh SRCDIR BUILDDIR QEMU BUSYBOX: boot Debian's kernel under QEMU's
# software emulation with -cpu max, which gives real protection keys, run
# the whole suite there on the pku backend, and pass only if the guest had
# protection keys and every test passed.  A hung guest is killed.
set -eu
srcdir=$1 builddir=$2 qemu=${3:-qemu-system-x86_64} busybox=${4:-/bin/busybox}
vm=$builddir/vm
die() { echo "check-vm: $*" >&2; exit 1; }

command -v "$qemu" >/dev/null 2>&1 || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
[ -x "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	ldd "$busybox" 2>&1 | grep -q 'not a dynamic' || die "$busybox is not static (apt-get install busybox-static)"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] && [ -r "$kernel" ] || die "no readable /boot/vmlinuz-* (apt-get install linux-image-amd64)"

rm -rf "$vm"
mkdir -p "$vm/root/bin" "$vm/root/proc" "$vm/root/sys" "$vm/root/dev" "$vm/root/tmp"
sh "$srcdir/test/vm/collect.sh" "$srcdir" "$builddir" "$vm/root/bundle"
cp "$busybox" "$vm/root/bin/busybox"
cp "$srcdir/test/vm/init" "$vm/root/init"
chmod +x "$vm/root/init"
(cd "$vm/root" && find . | cpio -o -H newc --quiet) > "$vm/initrd.cpio"

echo "check-vm: booting $kernel under $qemu -cpu max (emulated; nothing here is timed)"
# microvm with the legacy timer and interrupt controllers; plain microvm can
# hang calibrating the TSC.  -no-reboot turns a guest panic into an exit.
# transparent_hugepage=madvise as on the build machines: under "always",
# jemalloc's own per-arena bookkeeping costs about 2 MiB of RAM per domain
# (pkalloc(7), CAVEATS) and 1000 domains would not fit the guest.
# One boot: the guest must be up within 120 s (a boot that hangs is
# retried, twice at most), and the whole suite done within 1200 s.
boot() {
	"$qemu" -machine microvm,pit=on,pic=on,rtc=on -cpu max -smp 2 -m 2048 \
		-nographic -no-reboot -nodefaults -serial stdio \
		-kernel "$kernel" -initrd "$vm/initrd.cpio" \
		-append "console=ttyS0 loglevel=3 panic=-1 oops=panic transparent_hugepage=madvise" \
		< /dev/null > "$vm/console.raw" 2>&1 &
	pid=$!
	t=0
	until grep -q '^pkalloc-vm: protection keys' "$vm/console.raw" 2>/dev/null; do
		if ! kill -0 $pid 2>/dev/null; then
			break
		fi
		t=$((t + 1))
		if [ $t -ge 120 ]; then
			kill $pid 2>/dev/null
			wait $pid 2>/dev/null
			return 2
		fi
		sleep 1
	done
	t=0
	while kill -0 $pid 2>/dev/null; do
		t=$((t + 1))
		if [ $t -ge 1200 ]; then
			echo "check-vm: the suite ran past 1200 s; stopping the guest"
			kill $pid 2>/dev/null
			break
		fi
		sleep 1
	done
	wait $pid 2>/dev/null
	return 0
}

for attempt in 1 2 3; do
	boot && break
	echo "check-vm: the guest did not come up within 120 s (attempt $attempt)"
	[ $attempt -lt 3 ] || die "the guest never came up (see $vm/console.raw)"
done
tr -d '\r' < "$vm/console.raw" > "$vm/console.log"
grep -v '^\[ *[0-9]' "$vm/console.log" || true

grep -q '^pkalloc-vm: protection keys: yes$' "$vm/console.log" ||
	die "the guest did not report protection keys (see $vm/console.log)"
summary=$(grep '^pkalloc-tests: [0-9]* passed' "$vm/console.log" | tail -n 1)
[ -n "$summary" ] || die "the guest printed no test summary: it hung or crashed (see $vm/console.log)"
echo "check-vm: $summary"
echo "$summary" | grep -q ' 0 failed' || die "tests failed under real protection keys"
grep -q '^pkalloc-vm: run-tests exit 0$' "$vm/console.log" || die "run-tests did not exit 0"
echo "check-vm: all tests passed on the pku backend"
