#!/bin/sh
# The provider with unchanged openssl commands, configured only through
# OPENSSL_CONF (and GLIBC_TUNABLES): the configuration loads the module
# (libpkalloc arriving by dlopen); the keys it reads are the provider's
# (their private parts cannot be written out again); Ed25519, Ed448,
# P-256, P-384, RSA (PKCS#1 v1.5 and PSS) and RSA-PSS keys, PEM and DER,
# sign, and the signatures verify with the default provider alone; RSA
# decrypts OAEP and PKCS#1 v1.5; X25519, X448 and ECDH derive the default
# provider's secret.  genpkey generates with the provider only when asked
# (-propquery provider=pkalloc), and then cannot write the key out: it
# fails with OpenSSL's error, leaving no key in the file.
# Exit 0 pass, 77 skip, 1 failure.
set -u
name=cli.sh
. "${top_srcdir:-.}/provider/tests/common.sh"
need openssl
t=$(mktemp -d) || exit 99
trap 'rm -rf "$t"' EXIT
plain() { OPENSSL_CONF=/dev/null openssl "$@"; }
# libpkalloc comes in by dlopen, as the module's dependency.
with() {
	OPENSSL_CONF="$cnf" OPENSSL_MODULES="$mods" \
	GLIBC_TUNABLES=$tunables openssl "$@"
}
fail() { echo "cli.sh: $*" >&2; exit 1; }

with list -providers | grep -q 'pkalloc provider' || fail "the configuration did not load the provider"
echo "pkalloc provider test message" > "$t/msg"
plain genpkey -algorithm ED25519 -out "$t/ed.pem" 2>/dev/null || exit 99
plain genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t/ec.pem" 2>/dev/null || exit 99
plain genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$t/p384.pem" 2>/dev/null || exit 99
plain genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$t/rsa.pem" 2>/dev/null || exit 99
plain genpkey -algorithm X25519 -out "$t/x.pem" 2>/dev/null || exit 99
plain genpkey -algorithm X25519 -out "$t/xpeer.pem" 2>/dev/null || exit 99
plain genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t/ecpeer.pem" 2>/dev/null || exit 99
plain genpkey -algorithm ED448 -out "$t/ed448.pem" 2>/dev/null || exit 99
plain genpkey -algorithm X448 -out "$t/x448.pem" 2>/dev/null || exit 99
plain genpkey -algorithm X448 -out "$t/x448peer.pem" 2>/dev/null || exit 99
plain genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -out "$t/pss.pem" 2>/dev/null || exit 99
# The traditional forms: SEC1 "EC PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY".
plain ec -in "$t/ec.pem" -out "$t/sec1.pem" 2>/dev/null || exit 99
plain rsa -traditional -in "$t/rsa.pem" -out "$t/rsatrad.pem" 2>/dev/null || exit 99
for k in ed ec p384 rsa x xpeer ecpeer ed448 x448 x448peer pss; do
	plain pkey -in "$t/$k.pem" -outform DER -out "$t/$k.der" || exit 99
	plain pkey -in "$t/$k.pem" -pubout -out "$t/$k.pub" || exit 99
done
plain dgst -sha256 -binary -out "$t/msg.dgst" "$t/msg" || exit 99

# The provider holds the key: its public half is there, its private half
# cannot be written out (the default provider's key could).
for k in ed.pem ec.der p384.pem rsa.pem x.pem sec1.pem rsatrad.pem ed448.der x448.pem pss.pem; do
	with pkey -in "$t/$k" -pubout -out "$t/pub.out" || fail "$k: no public key through the provider"
	cmp -s "$t/pub.out" "$t/${k%%.*}.pub" || case $k in sec1.pem|rsatrad.pem) ;; *) fail "$k: wrong public key";; esac
	if with pkey -in "$t/$k" -out "$t/priv.out" 2>/dev/null; then
		fail "$k: the private key was written out: it is not the provider's"
	fi
done

for k in ed ed448; do
	for form in PEM DER; do
		f=$(echo $form | tr A-Z a-z); test $f = der || f=pem
		with pkeyutl -sign -rawin -inkey "$t/$k.$f" -keyform $form -in "$t/msg" -out "$t/ed.sig" ||
			fail "$k ($form) did not sign through the provider"
		plain pkeyutl -verify -rawin -pubin -inkey "$t/$k.pub" -in "$t/msg" -sigfile "$t/ed.sig" >/dev/null ||
			fail "$k ($form): the provider's signature does not verify"
	done
done
for k in ec p384 rsa; do
	with pkeyutl -sign -inkey "$t/$k.pem" -in "$t/msg.dgst" -pkeyopt digest:sha256 -out "$t/$k.sig" ||
		fail "$k did not sign a digest through the provider"
	plain pkeyutl -verify -pubin -inkey "$t/$k.pub" -in "$t/msg.dgst" -pkeyopt digest:sha256 -sigfile "$t/$k.sig" >/dev/null ||
		fail "$k: the provider's signature of a digest does not verify"
	for md in sha256 sha384; do
		with dgst -$md -sign "$t/$k.der" -keyform DER -out "$t/$k.sig" "$t/msg" ||
			fail "$k: dgst -$md -sign did not sign through the provider"
		plain dgst -$md -verify "$t/$k.pub" -signature "$t/$k.sig" "$t/msg" >/dev/null ||
			fail "$k: dgst -$md: the provider's signature does not verify"
	done
done
with dgst -sha256 -sign "$t/sec1.pem" -out "$t/sec1.sig" "$t/msg" &&
	plain dgst -sha256 -verify "$t/ec.pub" -signature "$t/sec1.sig" "$t/msg" >/dev/null ||
	fail "SEC1 EC key: no verifiable signature through the provider"
# RSA-PSS, its salt as TLS 1.3 sets it.
with dgst -sha256 -sign "$t/rsatrad.pem" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
	-out "$t/pss.sig" "$t/msg" || fail "RSA-PSS did not sign through the provider"
plain dgst -sha256 -verify "$t/rsa.pub" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
	-signature "$t/pss.sig" "$t/msg" >/dev/null || fail "RSA-PSS: the provider's signature does not verify"
if plain dgst -sha256 -verify "$t/rsa.pub" -signature "$t/pss.sig" "$t/msg" >/dev/null 2>&1; then
	fail "RSA-PSS: the signature verifies as PKCS#1 v1.5: padding not passed through"
fi
# An RSA-PSS key: PSS is all it signs with, its defaults or TLS 1.3's salt.
for opt in "" "-sigopt rsa_pss_saltlen:digest"; do
	with dgst -sha256 -sign "$t/pss.der" -keyform DER $opt -out "$t/pss.sig" "$t/msg" ||
		fail "RSA-PSS key ($opt) did not sign through the provider"
	plain dgst -sha256 -verify "$t/pss.pub" $opt -signature "$t/pss.sig" "$t/msg" >/dev/null ||
		fail "RSA-PSS key ($opt): the provider's signature does not verify"
done
if with dgst -sha256 -sign "$t/pss.pem" -sigopt rsa_padding_mode:pkcs1 -out "$t/pss.sig" "$t/msg" 2>/dev/null; then
	fail "RSA-PSS key: signed with PKCS#1 v1.5 padding"
fi
# RSA decryption, OAEP and PKCS#1 v1.5.
for pad in oaep pkcs1; do
	plain pkeyutl -encrypt -pubin -inkey "$t/rsa.pub" -pkeyopt rsa_padding_mode:$pad -in "$t/msg" -out "$t/ct" ||
		exit 99
	with pkeyutl -decrypt -inkey "$t/rsa.pem" -pkeyopt rsa_padding_mode:$pad -in "$t/ct" -out "$t/pt" ||
		fail "RSA ($pad) did not decrypt through the provider"
	cmp -s "$t/pt" "$t/msg" || fail "RSA ($pad): the provider decrypted something else"
done
# Key exchange: the provider's key with a peer's public key gives the
# secret the default provider derives from the other side.
for pair in x:xpeer ec:ecpeer x448:x448peer; do
	k=${pair%%:*} p=${pair##*:}
	with pkeyutl -derive -inkey "$t/$k.pem" -peerkey "$t/$p.pub" -out "$t/s1" ||
		fail "$k: no derivation through the provider"
	plain pkeyutl -derive -inkey "$t/$p.pem" -peerkey "$t/$k.pub" -out "$t/s2" || exit 99
	cmp -s "$t/s1" "$t/s2" || fail "$k: the provider derived another secret"
done
# Generation: the configuration leaves it to the default provider (the key
# can be written out); asked for, the provider generates, and the private
# half cannot be written: genpkey fails with the provider's error, no
# crash, no key in its output file.
with genpkey -algorithm ED25519 -out "$t/gen.pem" && grep -q 'BEGIN PRIVATE KEY' "$t/gen.pem" ||
	fail "genpkey with the configuration did not generate with the default provider"
for a in ED25519 X448 EC RSA-PSS; do
	o=
	case $a in EC) o="-pkeyopt ec_paramgen_curve:P-384";; RSA-PSS) o="-pkeyopt rsa_keygen_bits:2048";; esac
	rm -f "$t/gen.pem"
	with genpkey -propquery provider=pkalloc -algorithm $a $o -out "$t/gen.pem" 2>"$t/gen.err"
	rc=$?
	test $rc = 1 || fail "genpkey -propquery provider=pkalloc ($a): exit status $rc, expected 1"
	grep -q 'pkalloc keeps private keys in their domain' "$t/gen.err" ||
		{ cat "$t/gen.err" >&2; fail "genpkey ($a): not the provider's error"; }
	! test -s "$t/gen.pem" || fail "genpkey ($a): something was written to the key file"
done
# The mprotect backend serves the same.
PKALLOC_BACKEND=mprotect with pkeyutl -sign -inkey "$t/ec.pem" -in "$t/msg.dgst" -out "$t/ec.sig" &&
	plain pkeyutl -verify -pubin -inkey "$t/ec.pub" -in "$t/msg.dgst" -sigfile "$t/ec.sig" >/dev/null ||
	fail "ECDSA on the mprotect backend"
echo "cli.sh: Ed25519, Ed448, P-256, P-384, RSA and RSA-PSS keys are the provider's, sign and verify without it; RSA decrypts; X25519, X448 and ECDH derive; genpkey generates with the provider only when asked, and cannot write the key"
