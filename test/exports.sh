#!/bin/sh
# What libpkalloc gives the programs that link it, and nothing more.
#  - libpkalloc.so exports exactly: every call of pkalloc.h, the malloc
#    family, the C++ operators new and delete, and the three C library
#    calls pkalloc stands in front of (mmap: domain metadata kept off huge
#    pages; pthread_create and thrd_create: new threads close what their
#    creator had open).  A fault-injection build adds its test interface.
#  - Every other global symbol of libpkalloc.a carries the internal prefix
#    pk_, so that a program linked statically cannot collide with it.
set -u
top_srcdir=${top_srcdir:-.}
libdir=${top_builddir:-.}/.libs
nm=${NM:-nm}
[ -f "$libdir/libpkalloc.so" ] || { echo "SKIP: no shared library in $libdir" >&2; exit 77; }
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT

# The calls of pkalloc.h: every name declared after PKALLOC_API.
grep -v '^#' "$top_srcdir/include/pkalloc.h" | tr '\n' ' ' |
	grep -o 'PKALLOC_API[^;(]*(' | sed 's/[ *]*($//; s/.*[ *]//' | sort -u > "$tmp/api"
[ "$(wc -l < "$tmp/api")" -ge 15 ] || { echo "read only $(wc -l < "$tmp/api") calls from pkalloc.h" >&2; exit 99; }
{
	cat "$tmp/api"
	printf '%s\n' malloc free calloc realloc reallocarray aligned_alloc posix_memalign \
		memalign valloc pvalloc malloc_usable_size mmap pthread_create thrd_create
} | sort -u > "$tmp/allowed"
allowed() {  # stdin: names; stdout: those not allowed
	grep -v -x -F -f "$tmp/allowed" | grep -v -E '^_Z(nw|na|dl|da)' |
		{ if [ "${FAULT_INJECTION:-}" = yes ]; then grep -v '^pkalloc_inject_'; else cat; fi; }
}
fail=0

$nm -D --defined-only "$libdir/libpkalloc.so" | awk '{ print $3 }' | sort -u > "$tmp/dynamic"
[ -s "$tmp/dynamic" ] || { echo "$nm printed no dynamic symbols" >&2; exit 99; }
extra=$(allowed < "$tmp/dynamic")
if [ -n "$extra" ]; then
	echo "libpkalloc.so exports what is not its interface:"; echo "$extra"; fail=1
fi
missing=$(grep -v -x -F -f "$tmp/dynamic" "$tmp/allowed")
if [ -n "$missing" ]; then
	echo "libpkalloc.so does not export:"; echo "$missing"; fail=1
fi
echo "libpkalloc.so: $(wc -l < "$tmp/dynamic") dynamic symbols, $(wc -l < "$tmp/api") calls of pkalloc.h"

if [ -f "$libdir/libpkalloc.a" ]; then
	$nm -g --defined-only "$libdir/libpkalloc.a" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u > "$tmp/static"
	# Names with two leading underscores are the compiler's (a sanitizer
	# adds __odr_asan.* beside each global), never pkalloc's.
	unprefixed=$(allowed < "$tmp/static" | grep -v -e '^pk_' -e '^__')
	if [ -n "$unprefixed" ]; then
		echo "libpkalloc.a has global symbols without the pk_ prefix:"; echo "$unprefixed"; fail=1
	fi
	echo "libpkalloc.a: $(grep -c '^pk_' "$tmp/static") internal symbols, all prefixed pk_"
else
	echo "no libpkalloc.a (--disable-static): its check skipped"
fi
exit $fail
