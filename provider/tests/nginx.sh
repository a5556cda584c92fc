#!/bin/sh
# An unchanged nginx (Debian's nginx-light) serving HTTPS on the loopback
# with its keys loaded through the provider (OPENSSL_CONF and
# GLIBC_TUNABLES in its environment only): a master and one worker, three
# servers with P-256, RSA and Ed25519 keys; curl fetches the page from
# each.  Then the worker's and the master's memory, read from outside
# through /proc/PID/mem (which bypasses protection keys), hold each key's
# private components only inside pkalloc domain reservations, and do hold
# them there.  The same nginx without the provider holds them outside
# (the scan can fail).  Needs root (nginx's master, /proc/PID/mem).
# Exit 0 pass, 77 skip, 1 failure.
set -u
s=${top_srcdir:-.}
name=nginx.sh
. "$s/provider/tests/common.sh"
nginx=$(command -v nginx || echo /usr/sbin/nginx)
test -x "$nginx" || { echo "SKIP: nginx.sh: nginx is not installed (apt-get install nginx-light)" >&2; exit 77; }
test "$(id -u)" = 0 || { echo "SKIP: nginx.sh: not root (nginx's master and reading /proc/PID/mem need it)" >&2; exit 77; }
need curl python3 openssl timeout
t=$(mktemp -d) || exit 99
master=
trap 'test -n "$master" && kill $master 2>/dev/null; rm -rf "$t"' EXIT
# The workers run as nobody: they read the page.
chmod 755 "$t"
mkdir "$t/www" "$t/tmp" "$t/logs" || exit 99
echo "pkalloc nginx test page $$" > "$t/www/index.html"
chmod 644 "$t/www/index.html"
fail() { echo "nginx.sh: $*" >&2; test -f "$t/logs/error.log" && sed 's/^/  nginx| /' "$t/logs/error.log" >&2; exit 1; }

plain() { OPENSSL_CONF=/dev/null openssl "$@"; }
plain genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t/p256.pem" 2>/dev/null || exit 99
plain genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$t/rsa.pem" 2>/dev/null || exit 99
plain genpkey -algorithm ED25519 -out "$t/ed25519.pem" 2>/dev/null || exit 99
for k in p256 rsa ed25519; do
	plain req -x509 -new -key "$t/$k.pem" -subj /CN=localhost -days 2 -out "$t/$k.crt" 2>/dev/null || exit 99
done

# Three free ports on the loopback (free when asked; nginx takes them next).
ports=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for x in ss: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in ss))') || exit 99
{
	echo "worker_processes 1;"
	echo "pid $t/nginx.pid;"
	echo "error_log $t/logs/error.log notice;"
	echo "events { worker_connections 64; }"
	echo "http {"
	echo "  access_log off;"
	for d in client_body proxy fastcgi uwsgi scgi; do echo "  ${d}_temp_path $t/tmp;"; done
	set -- $ports
	for k in p256 rsa ed25519; do
		echo "  server { listen 127.0.0.1:$1 ssl; root $t/www;"
		echo "    ssl_certificate $t/$k.crt; ssl_certificate_key $t/$k.pem; }"
		shift
	done
	echo "}"
} > "$t/nginx.conf"

# Start nginx in the foreground of a background job ($1: the OPENSSL_CONF);
# the page from every server, then its master's pid in $master.
run_nginx() {
	rm -f "$t/logs/error.log"
	GLIBC_TUNABLES=$tunables \
	OPENSSL_CONF="$1" OPENSSL_MODULES="$mods" \
		"$nginx" -p "$t" -c "$t/nginx.conf" -e "$t/logs/error.log" -g 'daemon off;' &
	master=$!
	for p in $ports; do
		i=0
		until timeout 20 curl -sSk --max-time 10 "https://127.0.0.1:$p/" > "$t/page" 2>"$t/curl.err"; do
			kill -0 $master 2>/dev/null || fail "nginx exited: $(cat "$t/curl.err")"
			i=$((i + 1))
			test $i -lt 100 || fail "no answer on port $p: $(cat "$t/curl.err")"
			sleep 0.1
		done
		cmp -s "$t/page" "$t/www/index.html" || fail "port $p: wrong page: $(head -c 200 "$t/page")"
	done
}

stop_nginx() {
	kill $master
	wait $master 2>/dev/null
	master=
}

worker() {
	grep -l "^PPid:[[:space:]]*$master\$" /proc/[0-9]*/status 2>/dev/null | cut -d/ -f3 | head -1
}

scan() {
	python3 "$s/provider/tests/memscan.py" "$1" "$t/p256.pem" "$t/rsa.pem" "$t/ed25519.pem" > "$t/scan" 2>&1
	rc=$?
	sed 's/^/  scan| /' "$t/scan"
	test $rc = 0 || { echo "SKIP: nginx.sh: cannot read process $1's memory" >&2; exit 77; }
}

# With the provider: the keys are the provider's (the configuration
# loaded it: pkalloc's domains exist), in domains only.
run_nginx "$cnf"
w=$(worker)
test -n "$w" || fail "no worker process"
for pid in $w $master; do
	scan $pid
	for k in p256 rsa ed25519; do
		grep -q "^$t/$k.pem inside [1-9][0-9]* outside 0 " "$t/scan" ||
			fail "process $pid: $k's private key is not only inside pkalloc domains"
	done
done
stop_nginx

# Control: the same nginx without the provider.
run_nginx /dev/null
w=$(worker)
test -n "$w" || fail "no worker process"
scan $w
for k in p256 rsa ed25519; do
	grep -q "^$t/$k.pem inside 0 outside [1-9]" "$t/scan" ||
		fail "without the provider the scan did not find $k's key outside domains: the scan cannot fail"
done
stop_nginx
echo "nginx.sh: nginx-light served HTTPS with P-256, RSA and Ed25519 keys held in pkalloc domains only (worker and master), and outside them without the provider"
