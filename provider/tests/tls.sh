#!/bin/sh
# TLS with the provider's keys, on the loopback: openssl s_server holding
# its key through the provider (configured by OPENSSL_CONF) and s_client
# without it; and s_client authenticating with a client certificate whose
# key is the provider's, to an s_server without it.  TLS 1.2 and 1.3, for
# P-256, P-384, RSA and Ed25519 keys.  The other side verifies the
# certificate and, through the handshake, the provider's signature.
# Exit 0 pass, 77 skip, 1 failure.
set -u
name=tls.sh
. "${top_srcdir:-.}/provider/tests/common.sh"
need openssl timeout
t=$(mktemp -d) || exit 99
srv=
trap 'test -n "$srv" && kill $srv 2>/dev/null; rm -rf "$t"' EXIT
# Every command is bounded: a hung handshake fails the test, it does not
# hang it.
plain() { OPENSSL_CONF=/dev/null timeout 60 openssl "$@"; }
with() {
	OPENSSL_CONF="$cnf" OPENSSL_MODULES="$mods" \
	GLIBC_TUNABLES=$tunables timeout 60 openssl "$@"
}
fail() { echo "tls.sh: $*" >&2; test -f "$t/srv.out" && sed 's/^/  server| /' "$t/srv.out" >&2; exit 1; }

with list -providers | grep -q 'pkalloc provider' || fail "the configuration did not load the provider"
plain genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t/p256.pem" 2>/dev/null || exit 99
plain genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$t/p384.pem" 2>/dev/null || exit 99
plain genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$t/rsa.pem" 2>/dev/null || exit 99
plain genpkey -algorithm ED25519 -out "$t/ed25519.pem" 2>/dev/null || exit 99
plain genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -out "$t/rsapss.pem" 2>/dev/null || exit 99
plain genpkey -algorithm ED448 -out "$t/ed448.pem" 2>/dev/null || exit 99
for k in p256 p384 rsa ed25519 rsapss ed448; do
	# Read with this configuration, the key is the provider's: its
	# private half cannot be written out.
	if with pkey -in "$t/$k.pem" -out "$t/out.pem" 2>/dev/null; then
		fail "$k: the key read with the configuration is not the provider's"
	fi
	plain req -x509 -new -key "$t/$k.pem" -subj /CN=localhost -days 2 -out "$t/$k.crt" 2>/dev/null || exit 99
done

# Start a server ($1: plain or with, then its options); its port in $port.
start() {
	who=$1
	shift
	rm -f "$t/srv.out"
	# -www: the server answers one request and does not read its stdin.
	$who s_server -accept 0 -naccept 1 -www "$@" > "$t/srv.out" 2>&1 </dev/null &
	srv=$!
	port=
	i=0
	while test -z "$port" && test $i -lt 300; do
		port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$t/srv.out" 2>/dev/null)
		kill -0 $srv 2>/dev/null || break
		test -n "$port" || sleep 0.1
		i=$((i + 1))
	done
	test -n "$port" || fail "s_server did not start"
}

finish() {
	wait $srv
	srv=
}

# A handshake succeeded: the client verified the chain and used the version.
handshake_ok() {
	grep -q "^Protocol version: $1" "$t/cli.out" && grep -q '^Verification: OK' "$t/cli.out"
}

n=0
for k in p256 p384 rsa ed25519 rsapss ed448; do
	vs="1.2 1.3"
	case $k in rsapss|ed448) vs=1.3;; esac
	for v in $vs; do
		# The server's key in the provider.
		start with -cert "$t/$k.crt" -key "$t/$k.pem" -tls${v%.*}_${v#*.}
		printf 'GET / HTTP/1.0\r\n\r\n' | plain s_client -connect 127.0.0.1:$port -brief -verify_return_error \
			-CAfile "$t/$k.crt" -verify_hostname localhost > "$t/cli.out" 2>&1
		finish
		handshake_ok "TLSv$v" || { cat "$t/cli.out" >&2; fail "$k, TLS $v: server with the provider"; }
		# The client's key in the provider, the server demanding it.
		start plain -cert "$t/p256.crt" -key "$t/p256.pem" -Verify 1 -verify_return_error \
			-CAfile "$t/$k.crt" -tls${v%.*}_${v#*.}
		printf 'GET / HTTP/1.0\r\n\r\n' | with s_client -connect 127.0.0.1:$port -brief -verify_return_error \
			-CAfile "$t/p256.crt" -cert "$t/$k.crt" -key "$t/$k.pem" > "$t/cli.out" 2>&1
		finish
		handshake_ok "TLSv$v" && grep -q "^verify return:1" "$t/srv.out" && ! grep -qi error "$t/srv.out" ||
			{ cat "$t/cli.out" >&2; fail "$k, TLS $v: client certificate with the provider"; }
		n=$((n + 2))
	done
done
echo "tls.sh: $n handshakes (P-256, P-384, RSA, Ed25519: TLS 1.2 and 1.3; RSA-PSS, Ed448: TLS 1.3; the provider on either side)"
