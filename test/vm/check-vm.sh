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
# Real programs for preload.sh, at their usual paths: python3 with the
# standard-library modules its script loads, git, and the loader and
# libraries where ld.so looks for them (the bundle's lib/).
py=/usr/bin/python3
git=$(command -v git || true)
if [ -x "$py" ] && [ -n "$git" ]; then
	mkdir -p "$vm/root/usr/bin" "$vm/root/usr/lib/git-core" "$vm/root/lib64" "$vm/root/lib"
	ln -s /bundle/lib "$vm/root/lib/x86_64-linux-gnu"
	ln -s /bundle/lib/ld-linux-x86-64.so.2 "$vm/root/lib64/ld-linux-x86-64.so.2"
	cp -L "$py" "$vm/root/usr/bin/python3"
	cp -L "$git" "$vm/root/usr/bin/git"
	ln -s /usr/bin/git "$vm/root/usr/lib/git-core/git"
	mods=$("$py" -I -S -B -c 'import runpy, sys
runpy.run_path(sys.argv[1])
import encodings.latin_1, encodings.utf_8
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if f: print("file", f)' "$srcdir/test/preload.py" | sed -n 's/^file //p')
	for f in $mods; do
		mkdir -p "$vm/root$(dirname "$f")"
		cp -L "$f" "$vm/root$f"
		case $f in *.so) echo "$f" ;; esac
	done > "$vm/extension-modules"
	for lib in $(ldd "$py" "$git" $(cat "$vm/extension-modules") | awk '/=>/ { print $3 }' | sort -u); do
		[ -f "$vm/root/bundle/lib/${lib##*/}" ] || cp -L "$lib" "$vm/root/bundle/lib/"
	done
else
	echo "check-vm: python3 or git missing here: the guest skips the preload test (apt-get install python3 git)"
fi
cp "$srcdir/test/vm/init" "$vm/root/init"
chmod +x "$vm/root/init"
(cd "$vm/root" && find . | cpio -o -H newc --quiet) > "$vm/initrd.cpio"

echo "check-vm: booting $kernel under $qemu -cpu max (emulated; nothing here is timed)"
. "$srcdir/test/vm/boot.sh"
vm_run check-vm 1200
grep -v '^\[ *[0-9]' "$vm/console.log" || true

grep -q 'pkalloc-vm: protection keys: yes$' "$vm/console.log" ||
	die "the guest did not report protection keys (see $vm/console.log)"
summary=$(grep '^pkalloc-tests: [0-9]* passed' "$vm/console.log" | tail -n 1)
[ -n "$summary" ] || die "the guest printed no test summary: it hung or crashed (see $vm/console.log)"
echo "check-vm: $summary"
echo "$summary" | grep -q ' 0 failed' || die "tests failed under real protection keys"
grep -q '^pkalloc-vm: run-tests exit 0$' "$vm/console.log" || die "run-tests did not exit 0"
echo "check-vm: all tests passed on the pku backend"
