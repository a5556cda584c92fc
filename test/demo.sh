#!/bin/sh
# The demo keeps its secret readable inside the domain and faults outside.
out=$("${top_builddir:-.}/examples/demo") || { echo "demo failed: $out"; exit 1; }
echo "$out"
echo "$out" | grep -q '^inside the domain: read "correct horse battery staple"$' || exit 1
echo "$out" | grep -q '^outside read faulted: SIGSEGV' || exit 1
if echo "$out" | grep -q 'backend pku'; then
	echo "$out" | grep -q 'si_code SEGV_PKUERR, pkey [1-9]' || exit 1
fi
exit 0
