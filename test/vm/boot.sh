# boot.sh, sourced by check-vm.sh and bench/vm-bench.sh: vm_run LABEL LIMIT
# boots $kernel under $qemu with $vm/initrd.cpio and waits for the guest to
# power off, leaving its console in $vm/console.log.  Its /init must print
# "pkalloc-vm: protection keys" first.
#
# q35, not microvm: microvm has no HPET or ACPI PM timer, and on a loaded
# host its kernel hung at boot calibrating the TSC against the PIT; q35
# gives the kernel a reference clock and boots in seconds.  -no-reboot
# turns a guest panic into an exit.  The kernel runs with its own defaults,
# as users' kernels do: Debian's has transparent huge pages "always", which
# is what test_memory holds a domain's cost to.  One exception:
# secretmem.enable=1, without which Debian's 6.1 kernel refuses
# memfd_secret (ENOSYS) and test_secretmem could only skip; from 6.5 on
# the kernel has it on by default, so this asks for no more than a
# current kernel's default.  The guest must be up within 120 s (a
# boot that hangs is retried, twice at most) and done within LIMIT s.

vm_boot() {
	"$qemu" -machine q35 -cpu max -smp 2 -m 2048 \
		-nographic -no-reboot -nodefaults -serial stdio \
		-kernel "$kernel" -initrd "$vm/initrd.cpio" \
		-append "console=ttyS0 loglevel=3 panic=-1 oops=panic secretmem.enable=1" \
		< /dev/null > "$vm/console.raw" 2>&1 &
	pid=$!
	t=0
	# No ^: the firmware leaves escape codes on the guest's first line.
	until grep -q 'pkalloc-vm: protection keys' "$vm/console.raw" 2>/dev/null; do
		kill -0 $pid 2>/dev/null || break
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
		if [ $t -ge "$2" ]; then
			echo "$1: the guest ran past $2 s; stopping it"
			kill $pid 2>/dev/null
			break
		fi
		sleep 1
	done
	wait $pid 2>/dev/null
	return 0
}

vm_run() {
	for attempt in 1 2 3; do
		vm_boot "$1" "$2" && break
		echo "$1: the guest did not come up within 120 s (attempt $attempt)"
		[ $attempt -lt 3 ] || die "the guest never came up (see $vm/console.raw)"
	done
	tr -d '\r' < "$vm/console.raw" > "$vm/console.log"
}
