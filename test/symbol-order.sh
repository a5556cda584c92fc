#!/bin/sh
# Capture works only where pkalloc's malloc is the process's, and the
# dynamic linker binds every caller to the first definition in its global
# symbol order.  Checked the ways libpkalloc comes early or late, with
# programs make check builds (nothing is compiled here, so the QEMU guest
# runs this too):
# - a preload shim linked with -lpkalloc (test/shim.c), preloaded alone:
#   libpkalloc arrives as its dependency, after the C library, and the
#   shim's DOMAIN_CAPTURE_MALLOC domain is refused with ENOTSUP and one
#   "pkalloc:" line on stderr, never created to capture nothing.  Preloaded
#   with libpkalloc.so itself, before or after it: its malloc(32) lands in
#   its domain.
# - libpkalloc.so preloaded into a program that links nothing:
#   pkalloc_malloc_replaced() says 1.
# - libpkalloc loaded with dlopen (test/dlopen_host.c): it says 0, capture
#   is refused with one line, domain_malloc works.
#
# Usage: symbol-order.sh [BINDIR SHIM LIBPKALLOC [RUN-PREFIX...]]
#   BINDIR holds shim_host and dlopen_host, SHIM is the shim's shared
#   object, LIBPKALLOC is libpkalloc.so.0; RUN-PREFIX runs a program (the
#   bundle's dynamic loader; a timeout goes around this script, not in
#   RUN-PREFIX, where LD_PRELOAD would reach it).  SAN_CFLAGS non-empty: a
#   sanitizer build.
set -u
b=${top_builddir:-.}
bindir=${1:-$b/test}
shim=${2:-$b/test/.libs/shim.so}
lib=${3:-$b/.libs/libpkalloc.so.0}
if [ $# -ge 3 ]; then shift 3; else set --; fi
for f in "$bindir/shim_host" "$bindir/dlopen_host" "$shim" "$lib"; do
	[ -f "$f" ] || { echo "symbol-order.sh: no $f (make check builds it)" >&2; exit 99; }
done
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
shim=$(abs "$shim") lib=$(abs "$lib")
# The shim's dependency and dlopen's libpkalloc.so.0 are found here.  Set
# for the programs under test only: in a bundle this is a C library that
# need not suit the tools this script runs.
libpath=$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pkalloc-order.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# run NAME PROGRAM PRELOAD TUNABLES [RUN-PREFIX...]: PROGRAM under
# LD_PRELOAD=PRELOAD and GLIBC_TUNABLES=TUNABLES; its output in
# $tmp/NAME.out and $tmp/NAME.err.
run() {
	name=$1 prog=$2 pre=$3 tune=$4
	shift 4
	LD_PRELOAD=$pre LD_LIBRARY_PATH=$libpath GLIBC_TUNABLES=$tune "$@" "$prog" \
		> "$tmp/$name.out" 2> "$tmp/$name.err"
	rc=$?
	echo "$name: LD_PRELOAD='$pre' ${prog##*/}"
	sed 's/^/  | /' "$tmp/$name.out" "$tmp/$name.err"
	[ $rc -eq 0 ] || bad "$name: ${prog##*/} exited $rc"
}
# has NAME STREAM LINE: that exact line is in $tmp/NAME.STREAM.
has() { grep -qxF -- "$3" "$tmp/$1.$2" || bad "$1: no line '$3' on std$2"; }
# one_line NAME: stderr is one pkalloc: line saying how to fix it.
one_line() {
	[ "$(wc -l < "$tmp/$1.err")" -eq 1 ] &&
		grep -q '^pkalloc: .*-lpkalloc.*libpkalloc\.so itself in LD_PRELOAD' "$tmp/$1.err" ||
		bad "$1: stderr should be one pkalloc: line saying how to fix it"
}

# dlopen: libpkalloc and jemalloc need about 8 KiB of initial-exec TLS,
# more than glibc keeps for libraries loaded late unless told.
tunables=${GLIBC_TUNABLES-}
run dlopen "$bindir/dlopen_host" "" "glibc.rtld.optional_static_tls=16384${tunables:+:$tunables}" "$@"
has dlopen out "dlopen: pkalloc_malloc_replaced() is 0, capture refused with one line, domain_malloc works"

if [ -n "${SAN_CFLAGS:-}" ]; then
	# A sanitizer-built libpkalloc cannot be preloaded into a program that
	# is not: the sanitizer's runtime must come first.
	echo "preload cases not tried: sanitizer build (test_replaced checks the refusal there)"
	exit $fail
fi

# Nothing preloaded: the host has no pkalloc in it.
run none "$bindir/shim_host" "" "$tunables" "$@"
has none out "host: no pkalloc in this process"

# The shim alone: libpkalloc comes as its dependency, after the C library.
run alone "$bindir/shim_host" "$shim" "$tunables" "$@"
has alone out "shim: replaced 0, domain_create: ENOTSUP"
has alone out "host: pkalloc_malloc_replaced 0"
one_line alone

# The shim, then libpkalloc itself; and the other way round.
for order in shim-first lib-first; do
	if [ $order = shim-first ]; then pre="$shim $lib"; else pre="$lib $shim"; fi
	run $order "$bindir/shim_host" "$pre" "$tunables" "$@"
	has $order out "shim: replaced 1, malloc(32) in the domain: yes"
	has $order out "host: pkalloc_malloc_replaced 1"
	! grep -q '^pkalloc: ' "$tmp/$order.err" || bad "$order: a pkalloc: line was printed"
done

# libpkalloc alone, into a program that links nothing.
run lib-only "$bindir/shim_host" "$lib" "$tunables" "$@"
has lib-only out "host: pkalloc_malloc_replaced 1"

[ $fail -eq 0 ] && echo "symbol-order.sh: capture refused with one line where libpkalloc came late, captured where it was preloaded itself"
exit $fail
