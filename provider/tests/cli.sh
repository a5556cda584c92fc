#!/bin/sh
# The provider with unchanged openssl commands, configured only through
# OPENSSL_CONF: the configuration loads the module (libpkalloc arriving
# by dlopen), Ed25519 and P-256 keys (PEM and DER) sign, and the
# signatures verify with the default provider alone.  That the keys were
# the provider's is not checked here yet (provider/DESIGN-NOTES.md, "left").
# Exit 0 pass, 77 skip, 1 failure.
set -u
b=${top_builddir:-.}
mods="$b/provider/.libs"
if test ! -f "$mods/pkalloc.so"; then
	echo "cli.sh: the provider was not built (OpenSSL 3 development files missing?)" >&2
	exit 77
fi
command -v openssl >/dev/null || { echo "cli.sh: no openssl command" >&2; exit 77; }
t=$(mktemp -d) || exit 99
trap 'rm -rf "$t"' EXIT
cat > "$t/pkalloc.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
alg_section = algorithm_sect
[provider_sect]
default = default_sect
pkalloc = pkalloc_sect
[default_sect]
activate = 1
[pkalloc_sect]
activate = 1
[algorithm_sect]
default_properties = ?pkalloc.prefer=yes
CNF
plain() { OPENSSL_CONF=/dev/null openssl "$@"; }
# libpkalloc comes in by dlopen, as the module's dependency.
with() {
	OPENSSL_CONF="$t/pkalloc.cnf" OPENSSL_MODULES="$mods" \
	GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 openssl "$@"
}
fail() { echo "cli.sh: $*" >&2; exit 1; }

with list -providers | grep -q 'pkalloc provider' || fail "the configuration did not load the provider"
echo "pkalloc provider test message" > "$t/msg"
plain genpkey -algorithm ED25519 -out "$t/ed.pem" 2>/dev/null || exit 99
plain genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t/ec.pem" 2>/dev/null || exit 99
for k in ed ec; do
	plain pkey -in "$t/$k.pem" -outform DER -out "$t/$k.der" || exit 99
	plain pkey -in "$t/$k.pem" -pubout -out "$t/$k.pub" || exit 99
done
plain dgst -sha256 -binary -out "$t/msg.dgst" "$t/msg" || exit 99

for form in PEM DER; do
	f=$(echo $form | tr A-Z a-z); test $f = der || f=pem
	with pkeyutl -sign -rawin -inkey "$t/ed.$f" -keyform $form -in "$t/msg" -out "$t/ed.sig" ||
		fail "Ed25519 ($form) did not sign through the provider"
	plain pkeyutl -verify -rawin -pubin -inkey "$t/ed.pub" -in "$t/msg" -sigfile "$t/ed.sig" >/dev/null ||
		fail "Ed25519 ($form): the provider's signature does not verify"
done
with pkeyutl -sign -inkey "$t/ec.pem" -in "$t/msg.dgst" -out "$t/ec.sig" || fail "ECDSA did not sign a digest through the provider"
plain pkeyutl -verify -pubin -inkey "$t/ec.pub" -in "$t/msg.dgst" -sigfile "$t/ec.sig" >/dev/null ||
	fail "ECDSA: the provider's signature of a digest does not verify"
for md in sha256 sha384; do
	with dgst -$md -sign "$t/ec.pem" -out "$t/ec.sig" "$t/msg" || fail "dgst -$md -sign did not sign through the provider"
	plain dgst -$md -verify "$t/ec.pub" -signature "$t/ec.sig" "$t/msg" >/dev/null ||
		fail "dgst -$md: the provider's signature does not verify"
done
# The mprotect backend serves the same.
PKALLOC_BACKEND=mprotect with pkeyutl -sign -inkey "$t/ec.pem" -in "$t/msg.dgst" -out "$t/ec.sig" &&
	plain pkeyutl -verify -pubin -inkey "$t/ec.pub" -in "$t/msg.dgst" -sigfile "$t/ec.sig" >/dev/null ||
	fail "ECDSA on the mprotect backend"
echo "cli.sh: Ed25519 and ECDSA sign through the provider and verify without it"
