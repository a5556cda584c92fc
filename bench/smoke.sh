#!/bin/sh
# The benchmark driver works end to end.  Not a timing test: BENCH_QUICK=1
# runs every measurement once with tiny counts and no figure is judged.
# It must exit 0; its CSV files must be well-formed and hold every
# measurement, with "n/a" only where this machine or build explains it;
# a workload whose preload did not take must fail the run; and the
# provider section (8) must have run wherever its program and module were built.
b=${top_builddir:-.}/bench
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

BENCH_QUICK=1 "$b/bench" -o "$tmp" > "$tmp/stdout" 2> "$tmp/stderr"
rc=$?
[ $rc -eq 0 ] || { tail -n 30 "$tmp/stderr"; fail "bench exited $rc"; }
for f in results.csv ratios.csv results.md; do
	[ -s "$tmp/$f" ] || fail "no $f"
done
cmp -s "$tmp/stdout" "$tmp/results.md" || fail "stdout differs from results.md"

# results.csv: a machine line, the header, then rows of 10 fields whose
# figures are numbers with min <= median <= max, or n/a with a reason.
head -n 1 "$tmp/results.csv" | grep -q '^# cpu=.*; backend=\(pku\|mprotect\);' ||
	fail "results.csv: no machine line"
[ "$(sed -n 2p "$tmp/results.csv")" = "section,name,param,unit,median,min,max,reps,ops,note" ] ||
	fail "results.csv: bad header"
bad=$(awk -F, 'NR > 2 {
	num = "^-?[0-9.]+(e[-+]?[0-9]+)?$"
	if (NF != 10) { print NR ": " NF " fields"; next }
	if ($1 !~ /^(switch|alloc|scale|domains|memory|workload|secretmem|provider)$/) print NR ": section " $1
	if ($4 == "") print NR ": no unit"
	if ($5 == "n/a") {
		if ($6 != "n/a" || $7 != "n/a" || $10 !~ /^n\/a: /) print NR ": n/a row without a reason: " $0
	} else if ($5 !~ num || $6 !~ num || $7 !~ num || $8 !~ /^[1-9][0-9]*$/) {
		print NR ": not numbers: " $0
	} else if ($6 + 0 > $5 + 0 || $5 + 0 > $7 + 0) print NR ": min <= median <= max fails: " $0
}' "$tmp/results.csv")
[ -z "$bad" ] || fail "results.csv: $bad"

# Every measurement is there.
has() { grep -q "^$1,$2,$3," "$tmp/results.csv" || fail "results.csv: no row $1/$2/$3"; }
value() { awk -F, -v s="$1" -v n="$2" -v p="$3" '$1 == s && $2 == n && $3 == p { print $5 }' "$tmp/results.csv"; }
for n in "domain_enter+domain_exit" "domain_enter+domain_exit read-only" "WRPKRU pair" \
	"mprotect RW/NONE pair 4 KiB" "mprotect RW/NONE pair 1 MiB" "sodium_mprotect readwrite+noaccess"; do
	has switch "$n" -
done
for s in 16 64 256 1024 4096 65536; do
	for n in "domain_malloc+free inside" "domain_malloc+free outside" "malloc+free in a capturing domain" \
		"glibc malloc+free" "jemalloc mallocx+dallocx" "pkalloc malloc+free" \
		"sodium_malloc+sodium_free" "CRYPTO_secure_malloc+clear_free" \
		"domain_malloc+free inside empty domain" "CRYPTO_secure_malloc+clear_free empty heap"; do
		has alloc "$n" $s
	done
done
for t in 1 2 4 8 16; do
	for n in "own domain per thread" "one shared domain" "pkalloc malloc+free no domain"; do
		has scale "$n" $t
	done
done
for d in 1 14 16 64 256 1000; do
	has domains "enter+exit round robin" $d
	has domains "key evictions per enter" $d
done
# The per-domain rows name the THP mode they were taken under: the
# kernel's current one at least.
thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
for n in "RSS per empty domain" "RSS per domain with one 32 B secret" "RSS of 1000 domains with one secret each" \
	"mappings per domain"; do
	has memory "$n (THP ${thp:-unknown})" -
done
for n in "live 32 B secrets pkalloc" "live 32 B secrets sodium_malloc" \
	"live 32 B secrets OpenSSL secure heap"; do
	has memory "$n" -
done
for w in churn1 churn4 prodcons realloc; do
	for a in glibc jemalloc pkalloc; do
		has workload "$a" $w
		has workload "$a peak RSS" $w
	done
done
has workload "pkalloc capture" churn1
for n in "secrets pkalloc DOMAIN_SECRETMEM" "secrets memfd_secret per secret" "secrets sodium_malloc locked"; do
	has secretmem "$n" -
done
has secretmem "domain_malloc+free inside secretmem domain" 32
has secretmem "domain_malloc+free inside ordinary domain" 32
has secretmem "domain_enter+domain_exit secretmem domain" -
has secretmem "domain_enter+domain_exit ordinary domain" -
has workload "pkalloc domain_malloc" churn1
for op in rsa2048-sign rsa2048-decrypt p256-sign ed25519-sign x25519-derive \
	tls13-p256 tls13-rsa2048 tls12-p256 tls12-rsa2048; do
	for c in "without provider" "with provider" "tunables alone"; do
		has provider "$c" $op
		case $op in tls*) has provider "$c server side" $op ;; esac
	done
done

# n/a only where explained: WRPKRU exactly where the CPU has no OSPKE, the
# pkalloc workloads only in a sanitizer build, the provider's instruction
# counts in this quick run (callgrind is slow), nothing else of pkalloc's.
if grep -qw ospke /proc/cpuinfo; then
	[ "$(value switch "WRPKRU pair" -)" != n/a ] || fail "OSPKE is set but the WRPKRU pair did not run"
else
	grep -q '^switch,WRPKRU pair,-,ns/op,n/a,n/a,n/a,.*no PKU' "$tmp/results.csv" ||
		fail "no OSPKE, yet the WRPKRU pair row is not n/a: no PKU"
fi
bad=$(awk -F, 'NR > 2 && $5 == "n/a" && $10 !~ /no PKU|libsodium|OpenSSL|sanitizer build|no memfd_secret|BENCH_QUICK|no valgrind|protection keys here|winfree/' "$tmp/results.csv")
[ -z "$bad" ] || fail "unexplained n/a rows: $bad"
# The provider's rows are figures wherever pkprov and the module were
# built outside a sanitizer build.
if [ -x "$b/pkprov" ] && [ -f "${top_builddir:-.}/provider/.libs/pkalloc.so" ] && [ -z "${SAN_CFLAGS:-}" ]; then
	for op in rsa2048-sign tls13-p256; do
		[ "$(value provider "with provider" $op)" != n/a ] || fail "the provider's $op did not run"
	done
fi
[ "$(value memory "live 32 B secrets pkalloc" -)" = 1000 ] || fail "pkalloc did not reach the quick cap of 1000 secrets"

# ratios.csv: 9 fields, ratios numbers or n/a, every goal judged.
[ "$(sed -n 2p "$tmp/ratios.csv")" = "section,name,param,baseline,baseline_param,ratio,goal,verdict,goal_text" ] ||
	fail "ratios.csv: bad header"
bad=$(awk -F, 'NR > 2 {
	if (NF != 9) { print NR ": " NF " fields"; next }
	if ($6 != "n/a" && $6 !~ /^[0-9.]+(e[-+]?[0-9]+)?$/) print NR ": ratio " $6
	if ($7 != "" && $8 !~ /^(met|MISSED|n\/a)$/) print NR ": goal without a verdict"
	if ($7 == "" && $8 != "") print NR ": verdict without a goal"
}' "$tmp/ratios.csv")
[ -z "$bad" ] || fail "ratios.csv: $bad"
goals=$(awk -F, 'NR > 2 && $7 != ""' "$tmp/ratios.csv" | wc -l)
# WRPKRU 1, per size 3 x 6, scaling 1, workloads 4, provider 5 + 4 x 2.
[ "$goals" -eq 37 ] || fail "ratios.csv: $goals goals, expected 37"

for h in "## 1. Domain switch" "## 2. Secret allocation" "## 3. Scaling" "## 4. Many domains" \
	"## 5. Memory" "## 6. Whole programs" "## 8. The OpenSSL provider" "## Goals"; do
	grep -q "^$h" "$tmp/results.md" || fail "results.md: no \"$h\""
done

# A preload that does not take (the loader ignores a missing file and runs
# on glibc) must fail the run, not pass for jemalloc's figures.
BENCH_QUICK=1 "$b/bench" -o "$tmp/bad" -s workload --jemalloc /nonexistent/libjemalloc.so.2 \
	> /dev/null 2> "$tmp/bad.err" && fail "a preload that did not take passed"
grep -q 'malloc comes from .*libc.so.6, expected /nonexistent/libjemalloc.so.2' "$tmp/bad.err" ||
	fail "the failed preload was not named: $(tail -n 3 "$tmp/bad.err")"
echo "bench smoke test: $(awk 'NR > 2' "$tmp/results.csv" | wc -l) rows, $goals goals, all well-formed"
exit 0
