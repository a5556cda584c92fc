#!/bin/sh
# Bad input through the provider gives what OpenSSL gives without it: for
# malformed keys (truncated DER and PEM, garbage), an encrypted key with a
# wrong passphrase, key types the provider does not serve (DH), and
# operations with parameters the default provider refuses (unknown digests,
# impossible PSS salt lengths, a padding check that fails, a peer of the
# wrong type), the openssl command exits with the same status and prints
# the same errors (library, function and reason of each line) with the
# configuration as without.  An encrypted key with the right passphrase
# becomes the provider's.
# Exit 0 pass, 77 skip, 1 failure.
set -u
name=badinput.sh
. "${top_srcdir:-.}/provider/tests/common.sh"
need openssl timeout cmp
t=$(mktemp -d) || exit 99
trap 'rm -rf "$t"' EXIT
plain() { OPENSSL_CONF=/dev/null timeout 60 openssl "$@"; }
with() {
	OPENSSL_CONF="$cnf" OPENSSL_MODULES="$mods" \
	GLIBC_TUNABLES=$tunables timeout 60 openssl "$@"
}
fail() { echo "badinput.sh: $*" >&2; exit 1; }
# An error line "THREAD:error:CODE:LIB:FUNC:REASON:FILE:LINE:DATA" as
# LIB:FUNC:REASON; other lines as they are.
reasons() { sed -E 's/^[0-9A-F]+:error:[0-9A-F]+:([^:]*:[^:]*:[^:]*):.*/\1/' "$1"; }

with list -providers | grep -q 'pkalloc provider' || fail "the configuration did not load the provider"
plain genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t/ec.pem" 2>/dev/null || exit 99
plain genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$t/rsa.pem" 2>/dev/null || exit 99
plain genpkey -algorithm X25519 -out "$t/x25519.pem" 2>/dev/null || exit 99
plain genpkey -genparam -algorithm DH -pkeyopt dh_paramgen_prime_len:512 -out "$t/dhp.pem" 2>/dev/null || exit 99
plain genpkey -paramfile "$t/dhp.pem" -out "$t/dh.pem" 2>/dev/null || exit 99
plain pkcs8 -topk8 -in "$t/ec.pem" -passout pass:right -out "$t/enc.pem" 2>/dev/null || exit 99
plain pkey -in "$t/rsa.pem" -outform DER -out "$t/rsa.der" 2>/dev/null || exit 99
head -c 100 "$t/rsa.der" > "$t/trunc.der"
{ head -n 4 "$t/rsa.pem"; echo '-----END PRIVATE KEY-----'; } > "$t/trunc.pem"
{ echo '-----BEGIN PRIVATE KEY-----'; echo 'bm90IGEga2V5IGF0IGFsbCwganVzdCB3b3JkcyBpbiBiYXNlNjQ='; echo '-----END PRIVATE KEY-----'; } > "$t/garbage.pem"
echo 'the message' > "$t/msg"
plain dgst -sha256 -binary -out "$t/msg.sha256" "$t/msg" || exit 99

n=0
# same CASE ARGS...: the openssl command, with and without the provider.
same() {
	what=$1
	shift
	(cd "$t" && plain "$@" > plain.out 2> plain.err)
	prc=$?
	(cd "$t" && with "$@" > with.out 2> with.err)
	wrc=$?
	[ $prc -eq 124 ] || [ $wrc -eq 124 ] && fail "$what: timed out"
	reasons "$t/plain.err" > "$t/plain.r"
	reasons "$t/with.err" > "$t/with.r"
	if [ $prc -ne $wrc ] || ! cmp -s "$t/plain.r" "$t/with.r"; then
		echo "badinput.sh: $what: without the provider (exit $prc):" >&2
		sed 's/^/  | /' "$t/plain.err" >&2
		echo "badinput.sh: $what: with it (exit $wrc):" >&2
		sed 's/^/  | /' "$t/with.err" >&2
		exit 1
	fi
	n=$((n + 1))
}
# ...and that it failed, where a failure is what is tested.
fails() {
	same "$@"
	[ $prc -ne 0 ] || fail "$1: succeeded"
}

fails "truncated DER key" pkey -in trunc.der -inform DER -noout
fails "truncated PEM key" pkey -in trunc.pem -noout
fails "garbage PEM key" pkey -in garbage.pem -noout
fails "wrong passphrase" pkey -in enc.pem -passin pass:wrong -noout
fails "no passphrase" pkey -in enc.pem -passin pass: -noout
fails "unknown digest" pkeyutl -sign -inkey ec.pem -in msg.sha256 -pkeyopt digest:no-such-digest
fails "PSS salt longer than the key allows" pkeyutl -sign -inkey rsa.pem -in msg.sha256 \
	-pkeyopt rsa_padding_mode:pss -pkeyopt digest:sha256 -pkeyopt rsa_pss_saltlen:9999
fails "PSS salt length out of range" dgst -sha256 -sign rsa.pem -sigopt rsa_padding_mode:pss \
	-sigopt rsa_pss_saltlen:-5 -out sig msg
fails "unknown OAEP digest" pkeyutl -decrypt -inkey rsa.pem -in msg.sha256 \
	-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:no-such-digest
fails "PKCS#1 padding check" pkeyutl -decrypt -inkey rsa.pem -in msg.sha256
fails "decrypting with an EC key" pkeyutl -decrypt -inkey ec.pem -in msg.sha256
fails "X25519 with an EC peer" pkeyutl -derive -inkey x25519.pem -peerkey ec.pem
fails "ECDH with an RSA peer" pkeyutl -derive -inkey ec.pem -peerkey rsa.pem
# A type the provider does not serve is the default provider's, as
# without it: it reads and writes out the same.
same "DH key" pkey -in dh.pem -out dh.out
cmp -s "$t/dh.pem" "$t/dh.out" || fail "DH key: not written out as read"

# The right passphrase: the key is the provider's (its private half
# cannot be written out), and it signs what the default provider verifies.
with pkey -in "$t/enc.pem" -passin pass:right -out "$t/out.pem" 2>/dev/null &&
	fail "encrypted key: read with the configuration, it is not the provider's"
with pkeyutl -sign -inkey "$t/enc.pem" -passin pass:right -in "$t/msg.sha256" -out "$t/enc.sig" 2>"$t/err" ||
	{ cat "$t/err" >&2; fail "encrypted key: does not sign"; }
plain pkeyutl -verify -inkey "$t/ec.pem" -in "$t/msg.sha256" -sigfile "$t/enc.sig" >/dev/null ||
	fail "encrypted key: its signature does not verify"
echo "badinput.sh: $n cases give the same status and errors with the provider as without; an encrypted key is the provider's"
