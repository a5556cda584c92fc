#!/bin/sh
# The man pages lint clean and name every public call of pkalloc.h.
[ -n "$MANDOC" ] || { echo "SKIP: mandoc is not installed"; exit 77; }
src=${top_srcdir:-.}
status=0
for m in "$src"/man/*.[37]; do
	out=$("$MANDOC" -Tlint -W warning "$m" 2>&1)
	if [ -n "$out" ]; then echo "$out"; status=1; fi
done
for f in $(grep -oE '\b(domain|pkalloc)_[a-z_]+ *\(' "$src/include/pkalloc.h" | tr -d ' (' | sort -u); do
	grep -q "^\.Fn $f\b" "$src"/man/*.3 || { echo "no man page documents $f"; status=1; }
	grep -q "^\.Nm $f\b" "$src"/man/*.3 || { echo "$f is not in a NAME section"; status=1; }
done
exit $status
