/*
 * 2. Secret allocation: one allocation and its free, 16 B to 64 KiB, in a
 * domain (from inside it, from outside it, and as plain malloc captured by
 * a DOMAIN_CAPTURE_MALLOC domain) against glibc, jemalloc, pkalloc's own
 * malloc, libsodium's sodium_malloc and OpenSSL's secure heap.  Nothing is
 * written into the blocks: from outside a domain that would fault.  The
 * secure allocators (and domain_free) wipe on free; glibc and jemalloc
 * do not.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <pkalloc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JEMALLOC_NO_DEMANGLE
#include <jemalloc/jemalloc.h>
#ifdef HAVE_SODIUM
#include <sodium.h>
#endif
#ifdef HAVE_OPENSSL
#include <openssl/crypto.h>
#endif

#define S "alloc"

static domain_t *dom, *cap;
static size_t size;

static const char *const IN = "domain_malloc+free inside";
static const char *const OUT = "domain_malloc+free outside";
static const char *const CAP = "malloc+free in a capturing domain";
static const char *const GLIBC = "glibc malloc+free";
static const char *const JE = "jemalloc mallocx+dallocx";
static const char *const PK = "pkalloc malloc+free";
static const char *const SODIUM = "sodium_malloc+sodium_free";
static const char *const OSSL = "CRYPTO_secure_malloc+clear_free";

static void b_domain(void *arg, long n)
{
	int inside = arg != NULL;
	if (inside)
		domain_enter(dom, DOMAIN_RDWR);
	for (long i = 0; i < n; i++)
		domain_free(domain_malloc(dom, size));
	if (inside)
		domain_exit(dom);
}

static void b_capture(void *arg, long n)
{
	(void)arg;
	domain_enter(cap, DOMAIN_RDWR);
	for (long i = 0; i < n; i++) {
		void *volatile p = malloc(size);
		free(p);
	}
	domain_exit(cap);
}

static void b_glibc(void *arg, long n)
{
	(void)arg;
	for (long i = 0; i < n; i++)
		glibc_free(glibc_malloc(size));
}

static void b_jemalloc(void *arg, long n)
{
	(void)arg;
	for (long i = 0; i < n; i++)
		dallocx(mallocx(size, 0), 0);
}

static void b_pkalloc(void *arg, long n)
{
	(void)arg;
	for (long i = 0; i < n; i++) {
		void *volatile p = malloc(size);   /* volatile: the pair is not optimised away */
		free(p);
	}
}

#ifdef HAVE_SODIUM
static void b_sodium(void *arg, long n)
{
	(void)arg;
	for (long i = 0; i < n; i++)
		sodium_free(sodium_malloc(size));
}
#endif

#ifdef HAVE_OPENSSL
static void b_openssl(void *arg, long n)
{
	(void)arg;
	for (long i = 0; i < n; i++)
		OPENSSL_secure_clear_free(OPENSSL_secure_malloc(size), size);
}
#endif

/* Allocation must work at all before it is timed. */
static int works(void *(*alloc)(size_t), void (*release)(void *))
{
	void *p = alloc(size);
	if (!p)
		return 0;
	release(p);
	return 1;
}

static void *dm(size_t n) { return domain_malloc(dom, n); }
static void *jm(size_t n) { return mallocx(n, 0); }
static void jf(void *p) { dallocx(p, 0); }

void bench_alloc(void)
{
	static const size_t sizes[] = { 16, 64, 256, 1024, 4096, 65536 };
	section_title(S, "2. Secret allocation", "size (bytes)",
	              "One allocation and its free, ns per pair, by size. domain_malloc+domain_free "
	              "from inside the domain (entered read-write) and from outside it; plain "
	              "malloc+free captured by an entered DOMAIN_CAPTURE_MALLOC domain; glibc's own "
	              "malloc; jemalloc's mallocx/dallocx (thread cache on); pkalloc's malloc "
	              "replacement; sodium_malloc/sodium_free; OpenSSL's CRYPTO_secure_malloc/"
	              "CRYPTO_secure_clear_free on a 16 MiB secure heap. domain_free, sodium_free and "
	              "CRYPTO_secure_clear_free wipe the block; glibc and jemalloc do not.");
	dom = domain_create("bench-alloc", 0);
	cap = domain_create("bench-capture", DOMAIN_CAPTURE_MALLOC);
	if (!dom || !cap) {
		bench_error("domain_create: %s", strerror(errno));
		return;
	}
	int in = 1;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char p[24];
		size = sizes[i];
		snprintf(p, sizeof p, "%zu", size);
		if (!works(dm, domain_free) || !works(glibc_malloc, glibc_free) || !works(jm, jf)) {
			bench_error("alloc: an allocation of %zu bytes failed", size);
			return;
		}
		measure(S, IN, p, b_domain, &in);
		measure(S, OUT, p, b_domain, NULL);
		if (plain_malloc_why)
			record_na(S, CAP, p, "ns/op", "%s", plain_malloc_why);
		else
			measure(S, CAP, p, b_capture, NULL);
		measure(S, GLIBC, p, b_glibc, NULL);
		measure(S, JE, p, b_jemalloc, NULL);
		if (plain_malloc_why)
			record_na(S, PK, p, "ns/op", "%s", plain_malloc_why);
		else
			measure(S, PK, p, b_pkalloc, NULL);
#ifdef HAVE_SODIUM
		if (have_sodium() && works(sodium_malloc, sodium_free))
			measure(S, SODIUM, p, b_sodium, NULL);
		else
#endif
			record_na(S, SODIUM, p, "ns/op", "n/a: no libsodium");
#ifdef HAVE_OPENSSL
		if (have_openssl())
			measure(S, OSSL, p, b_openssl, NULL);
		else
#endif
			record_na(S, OSSL, p, "ns/op", "n/a: no OpenSSL");
	}
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char p[24];
		snprintf(p, sizeof p, "%zu", sizes[i]);
		ratio(S, IN, p, GLIBC, p, "<=2", "domain alloc+free inside at most 2x glibc malloc+free");
		ratio(S, IN, p, OSSL, p, "<=0.05", "domain alloc+free inside at least 20x faster than OpenSSL's secure heap");
		ratio(S, IN, p, SODIUM, p, "<=0.002", "domain alloc+free inside at least 500x faster than sodium_malloc");
		ratio(S, IN, p, JE, p, NULL, NULL);
		ratio(S, OUT, p, IN, p, NULL, NULL);
		ratio(S, CAP, p, IN, p, NULL, NULL);
		ratio(S, PK, p, JE, p, NULL, NULL);
		ratio(S, PK, p, GLIBC, p, NULL, NULL);
	}
	section_line(S, "domain allocations bypass jemalloc's thread cache (MALLOCX_TCACHE_NONE: one "
	             "cache for all would mix domains), so every pair takes the domain arena's lock");
	section_line(S, "from outside the domain each call also opens and closes an access window: %s",
	             strcmp(pkalloc_backend(), "pku") == 0 ? "two PKRU writes"
	             : "two mprotect calls over the domain's whole range");
	domain_destroy(dom);
	domain_destroy(cap);
}
