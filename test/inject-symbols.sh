#!/bin/sh
# The fault-injection layer is in the library only when configured with
# --enable-fault-injection: a release libpkalloc.so has no symbol of it,
# not even a hidden one, and a test build exports its test interface.
lib=${top_builddir:-.}/.libs/libpkalloc.so
nm=${NM:-nm}
[ -f "$lib" ] || { echo "SKIP: no shared library at $lib" >&2; exit 77; }
syms=$($nm "$lib" 2>/dev/null; $nm -D "$lib" 2>/dev/null)
[ -n "$syms" ] || { echo "$nm printed no symbols for $lib" >&2; exit 99; }
found=$(echo "$syms" | grep -i inject)
if [ "$FAULT_INJECTION" = yes ]; then
	$nm -D --defined-only "$lib" | grep -q ' T pkalloc_inject_arm$' ||
		{ echo "fault-injection build without pkalloc_inject_arm exported" >&2; exit 1; }
	echo "fault-injection build: $(echo "$found" | wc -l) injection symbols, as it should"
else
	if [ -n "$found" ]; then
		echo "release build has injection symbols:" >&2
		echo "$found" >&2
		exit 1
	fi
	echo "release build: no injection symbol in $lib"
fi
