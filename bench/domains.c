/*
 * 4. Many domains: enter+exit in round robin over 1 to 1000 domains (all
 * 1000 exist throughout, each holding one 32-byte secret).  With more
 * domains than protection keys every enter moves a key (LRU eviction:
 * re-tag two ranges); 14 hot domains fit the 15 keys and should cost what
 * one does.  The secrets are checked afterwards: moving keys must not
 * lose data.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <pkalloc.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define S "domains"
enum { NDOM = 1000 };

static const char *const RR = "enter+exit round robin";
static const char *const EV = "key evictions per enter";

static domain_t *pool[NDOM];
static unsigned *secret[NDOM];
static int ring;
static long long ops;

static void b_ring(void *arg, long n)
{
	(void)arg;
	for (long i = 0; i < n; i++) {
		domain_t *d = pool[i % ring];
		domain_enter(d, DOMAIN_RDWR);
		domain_exit(d);
	}
	ops += n;
}

static int check_secrets(void)
{
	for (int i = 0; i < NDOM; i++) {
		if (domain_enter(pool[i], DOMAIN_RDONLY) != 0)
			return -1;
		unsigned v = *secret[i];
		domain_exit(pool[i]);
		if (v != 0x5ec0000u + (unsigned)i)
			return -1;
	}
	return 0;
}

void bench_domains(void)
{
	static const int rings[] = { 1, 14, 16, 64, 256, NDOM };
	section_title(S, "4. Many domains", "domains in the ring",
	              "enter+exit (ns per pair) in round robin over the first N of 1000 live "
	              "domains, each holding one 32-byte secret. N = 14: 14 hot domains out of "
	              "1000, fewer than the 15 hardware keys. Ratios are to N = 1. On pku, a ring "
	              "larger than the free keys moves a key at every enter (least recently used "
	              "domain evicted, both ranges re-tagged with pkey_mprotect); on mprotect there "
	              "are no keys and every enter is an mprotect of the domain's range.");
	double t0 = now_ns();
	for (int i = 0; i < NDOM; i++) {
		pool[i] = domain_create("bench-many", 0);
		secret[i] = pool[i] ? domain_malloc(pool[i], 32) : NULL;
		if (!secret[i] || domain_enter(pool[i], DOMAIN_RDWR) != 0) {
			bench_error("domain %d of %d: %s", i, NDOM, strerror(errno));
			for (int j = 0; j <= i; j++)
				domain_destroy(pool[j]);
			return;
		}
		*secret[i] = 0x5ec0000u + (unsigned)i;
		domain_exit(pool[i]);
	}
	section_line(S, "creating the 1000 domains and one secret in each took %.0f us per domain",
	             (now_ns() - t0) / 1e3 / NDOM);
	for (size_t k = 0; k < sizeof rings / sizeof rings[0]; k++) {
		struct pkalloc_stats a, b;
		char p[8];
		ring = rings[k];
		snprintf(p, sizeof p, "%d", ring);
		pkalloc_stats(&a);
		ops = 0;
		measure(S, RR, p, b_ring, NULL);
		pkalloc_stats(&b);
		double ev = (double)(b.evictions - a.evictions) / (double)ops;
		record(S, EV, p, "/op", &ev, 1, ops);
		if (k > 0)
			ratio(S, RR, p, RR, "1", NULL, NULL);
	}
	struct pkalloc_stats st;
	pkalloc_stats(&st);
	if (check_secrets() != 0)
		bench_error("domains: a secret changed after the round robin");
	else
		section_line(S, "keys owned by pkalloc: %u; the secrets of all 1000 domains read back "
		             "intact afterwards", st.keys_owned);
	for (int i = 0; i < NDOM; i++)
		domain_destroy(pool[i]);
}
