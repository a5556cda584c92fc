#!/bin/sh
# The examples say what they should: the Heartbleed over-read leaks the key
# from the plain heap only and stops at the guard, and each tenant's worker
# uses its own key and (on pku) cannot reach a neighbour's.
# Usage: examples.sh [DIR-WITH-heartbleed-AND-tenants] [RUN-PREFIX...]
dir=${1:-${top_builddir:-.}/examples}
[ $# -gt 0 ] && shift
fail() { echo "FAIL: $*"; exit 1; }

out=$("$@" "$dir/heartbleed" 2>&1) || fail "heartbleed exited $?: $out"
echo "$out"
echo "$out" | grep -q '^plain heap: reply of .* LEAKS the key$' || fail "plain heap did not leak"
echo "$out" | grep -q '^key in a domain: reply of 4096 bytes does not leak the key$' || fail "domain key leaked"
echo "$out" | grep -q '^pkalloc: thread [0-9]* read the guard of domain "tls-keys" at 0x' || fail "no fault report"
echo "$out" | grep -q '^over-read into the domain: killed by SIGSEGV$' || fail "over-read not stopped"

out=$("$@" "$dir/tenants" 2>&1) || fail "tenants exited $?: $out"
echo "$out"
for i in 0 1 2 3; do
	sum=$(( (i + 1) * 32 * 1000 ))
	echo "$out" | grep -q "^tenant-$i: checksum $sum," || fail "tenant-$i used the wrong key"
done
if echo "$out" | grep -q 'backend pku'; then
	echo "$out" | grep -q '^tenants isolated: 4 of 4$' || fail "a tenant reached a neighbour's key"
fi
exit 0
