#!/bin/sh
# The examples say what they should: the Heartbleed over-read leaks the key
# from the plain heap only and stops at the guard, each tenant's worker
# uses its own key and (on pku) cannot reach a neighbour's, and AES-256-GCM
# with its key, OpenSSL's context and the decrypted text in a domain gives
# the right ciphertext while none of the three can be read from outside.
# Usage: examples.sh [DIR-WITH-THE-EXAMPLES] [RUN-PREFIX...]
# HAVE_OPENSSL=yes: aes_gcm must be there.  SAN_CFLAGS non-empty: a
# sanitizer build, whose runtime's malloc runs instead of pkalloc's.
dir=${1:-${top_builddir:-.}/examples}
[ $# -gt 0 ] && shift
fail() { echo "FAIL: $*"; exit 1; }
# expect REGEX WHY: some line of $out matches REGEX.
expect() { echo "$out" | grep -q -- "$1" || fail "$2"; }

out=$("$@" "$dir/heartbleed" 2>&1) || fail "heartbleed exited $?: $out"
echo "$out"
expect '^plain heap: reply of .* LEAKS the key$' "plain heap did not leak"
expect '^key in a domain: reply of 4096 bytes does not leak the key$' "domain key leaked"
expect '^pkalloc: thread [0-9]* read the guard of domain "tls-keys" at 0x' "no fault report"
expect '^over-read into the domain: killed by SIGSEGV$' "over-read not stopped"

out=$("$@" "$dir/tenants" 2>&1) || fail "tenants exited $?: $out"
echo "$out"
for i in 0 1 2 3; do
	sum=$(( (i + 1) * 32 * 1000 ))
	expect "^tenant-$i: checksum $sum," "tenant-$i used the wrong key"
done
if echo "$out" | grep -q 'backend pku'; then
	expect '^tenants isolated: 4 of 4$' "a tenant reached a neighbour's key"
fi

if [ ! -x "$dir/aes_gcm" ]; then
	[ "${HAVE_OPENSSL:-}" != yes ] || fail "aes_gcm was not built although OpenSSL was found"
	echo "aes_gcm: not built (configure found no OpenSSL libcrypto)"
	exit 0
fi
if [ -n "${SAN_CFLAGS:-}" ]; then
	echo "aes_gcm: not run: under the sanitizers their runtime's malloc runs, not pkalloc's, so nothing can be captured"
	exit 0
fi
out=$("$@" "$dir/aes_gcm" 2>&1) || fail "aes_gcm exited $?: $out"
echo "$out"
# The ciphertext and tag of an independent implementation (Python's
# cryptography package, AESGCM) for the example's key, IV, AAD and message.
expect '^ciphertext: ea428d04cf2bb45bf7ea5a0fbf9defae689854a6352b5b635514c43f4d01aeb25b47$' "wrong ciphertext"
expect '^tag: 46ce8b00dd4a5b680577fadecb7b573c$' "wrong tag"
expect '^cipher context: domain memory of "aes-key"$' "OpenSSL's context was not captured"
expect '^decrypted text: domain memory of "aes-key"$' "the decrypted text was not captured"
expect '^round trip: "Meet me at the north gate at noon." matches$' "round trip failed"
expect '^tag check: genuine tag accepted, tampered tag rejected$' "tag check failed"
for what in key "cipher context" "decrypted text"; do
	expect "^outside read of the $what: killed by SIGSEGV$" "the $what was read from outside"
done
if echo "$out" | grep -q 'backend pku'; then why='(pkey [0-9]*)'; else why='(page permissions)'; fi
n=$(echo "$out" | grep -c "^pkalloc: thread [0-9]* read domain \"aes-key\" at 0x[0-9a-f]*, not entered $why$")
[ "$n" -eq 3 ] || fail "$n fault reports of the form '... not entered $why', not 3"
exit 0
