#!/bin/sh
# collect.sh SRCDIR BUILDDIR OUT: copy the test programs, the demo, the
# examples (aes_gcm where OpenSSL was found), the OpenSSL provider module
# and its configuration with the benchmark's pkprov (where OpenSSL 3 was
# found) and every shared library they
# load (the dynamic loader included) into OUT, with the run-tests script,
# so they run on any x86-64 Linux with no build tools.
set -eu
srcdir=$1 builddir=$2 out=$3
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
progs=""
for p in "$builddir"/test/test_* "$builddir"/test/cxx_plain "$builddir"/test/cxx_linked \
	"$builddir"/test/shim_host "$builddir"/test/dlopen_host \
	"$builddir"/examples/demo "$builddir"/examples/heartbleed \
	"$builddir"/examples/tenants "$builddir"/examples/aes_gcm "$builddir"/bench/bench "$builddir"/bench/wl \
	"$builddir"/bench/pkprov; do
	case $p in *.c|*.cc|*.o|*.h|*.log|*.trs) continue ;; esac
	[ -f "$p" ] && [ -x "$p" ] || continue
	cp "$p" "$out/bin/"
	progs="$progs $p"
done
[ -n "$progs" ] || { echo "collect.sh: no test programs in $builddir (run make check first)" >&2; exit 1; }
# The OpenSSL provider's tests, with the module they load (where built).
if [ -x "$builddir/provider/tests/test_provider" ] && [ -f "$builddir/provider/.libs/pkalloc.so" ]; then
	mkdir -p "$out/lib/ossl-modules"
	cp "$builddir/provider/.libs/pkalloc.so" "$out/lib/ossl-modules/"
	# The configuration the benchmark's provider section runs with.
	cp "$srcdir/provider/pkalloc.cnf" "$out/"
	progs="$progs $builddir/provider/.libs/pkalloc.so"
	for p in "$builddir"/provider/tests/test_provider "$builddir"/provider/tests/test_options; do
		[ -x "$p" ] || continue
		cp "$p" "$out/bin/"
		progs="$progs $p"
	done
fi
# The preload shim of symbol-order.sh goes with the libraries.
if [ -f "$builddir/test/.libs/shim.so" ]; then
	cp "$builddir/test/.libs/shim.so" "$out/lib/"
	progs="$progs $builddir/test/.libs/shim.so"
fi
# ldd prints "name => path (addr)" or "path (addr)" for the loader.
for lib in $(ldd $progs | awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u); do
	cp -L "$lib" "$out/lib/"
done
[ -f "$out/lib/ld-linux-x86-64.so.2" ] || { echo "collect.sh: no dynamic loader found" >&2; exit 1; }
cp "$srcdir/test/vm/run-tests" "$srcdir/test/vm/run-bench" "$srcdir/test/examples.sh" \
	"$srcdir/test/preload.sh" "$srcdir/test/preload.py" "$srcdir/test/symbol-order.sh" "$out/"
cp "$srcdir/bench/plot.gp" "$out/"
chmod +x "$out/run-tests" "$out/run-bench"
