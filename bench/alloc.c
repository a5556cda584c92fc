/*
 * 2. Secret allocation: one allocation and its free, 16 B to 64 KiB, in a
 * domain (from inside it, from outside it, and as plain malloc captured by
 * a DOMAIN_CAPTURE_MALLOC domain) against glibc, jemalloc, pkalloc's own
 * malloc, libsodium's sodium_malloc and OpenSSL's secure heap.  Every
 * allocator holds one live block of the size measured meanwhile; a domain
 * and OpenSSL's heap holding nothing else are measured too.  Nothing is
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
static const char *const EMPTY = "domain_malloc+free inside empty domain";
static const char *const OSSL_EMPTY = "CRYPTO_secure_malloc+clear_free empty heap";

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

/*
 * One live block of the size measured in every allocator, held while it
 * is measured: a domain holds secrets.  The "empty domain" series is a
 * domain holding nothing else: with a thread cache per (thread, domain),
 * a freed block stays in the cache and no slab is given back and made
 * again at every pair, so the two series should agree.
 */
struct resident {
	void *dom, *cap, *glibc, *je, *pk, *sodium, *ossl;
};

static int hold(struct resident *r)
{
	memset(r, 0, sizeof *r);
	r->dom = domain_malloc(dom, size);
	r->cap = domain_malloc(cap, size);
	r->glibc = glibc_malloc(size);
	r->je = mallocx(size, 0);
	int ok = r->dom && r->cap && r->glibc && r->je;
	if (!plain_malloc_why)
		ok &= (r->pk = malloc(size)) != NULL;
#ifdef HAVE_SODIUM
	if (have_sodium())
		ok &= (r->sodium = sodium_malloc(size)) != NULL;
#endif
#ifdef HAVE_OPENSSL
	if (have_openssl())
		ok &= (r->ossl = OPENSSL_secure_malloc(size)) != NULL;
#endif
	return ok;
}

static void release(struct resident *r)
{
	domain_free(r->dom);
	domain_free(r->cap);
	if (r->glibc)
		glibc_free(r->glibc);
	if (r->je)
		dallocx(r->je, 0);
	free(r->pk);
#ifdef HAVE_SODIUM
	if (r->sodium)
		sodium_free(r->sodium);
#endif
#ifdef HAVE_OPENSSL
	if (r->ossl)
		OPENSSL_secure_clear_free(r->ossl, size);
#endif
}

static void b_empty(void *arg, long n)
{
	domain_t *d = arg;
	domain_enter(d, DOMAIN_RDWR);
	for (long i = 0; i < n; i++)
		domain_free(domain_malloc(d, size));
	domain_exit(d);
}

void bench_alloc(void)
{
	static const size_t sizes[] = { 16, 64, 256, 1024, 4096, 65536 };
	section_title(S, "2. Secret allocation", "size (bytes)",
	              "One allocation and its free, ns per pair, by size. domain_malloc+domain_free "
	              "from inside the domain (entered read-write) and from outside it; plain "
	              "malloc+free captured by an entered DOMAIN_CAPTURE_MALLOC domain; glibc's own "
	              "malloc; jemalloc's mallocx/dallocx (thread cache on); pkalloc's malloc "
	              "replacement; sodium_malloc/sodium_free; OpenSSL's CRYPTO_secure_malloc/"
	              "CRYPTO_secure_clear_free on a 16 MiB secure heap. Each allocator holds one live "
	              "block of the size measured (a domain holds secrets); the last two series are a "
	              "domain and OpenSSL's heap that hold nothing else. domain_free, sodium_free and CRYPTO_secure_clear_free "
	              "wipe the block; glibc and jemalloc do not.");
	dom = domain_create("bench-alloc", 0);
	/* Capture is refused where malloc is not pkalloc's (its rows say n/a). */
	cap = domain_create("bench-capture", plain_malloc_why ? 0 : DOMAIN_CAPTURE_MALLOC);
	domain_t *bare = domain_create("bench-empty", 0);
	if (!dom || !cap || !bare) {
		bench_error("domain_create: %s", strerror(errno));
		return;
	}
	int in = 1;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char p[24];
		struct resident r;
		size = sizes[i];
		snprintf(p, sizeof p, "%zu", size);
		if (!hold(&r)) {
			bench_error("alloc: an allocation of %zu bytes failed", size);
			release(&r);
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
		if (have_sodium())
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
		measure(S, EMPTY, p, b_empty, bare);
		release(&r);
#ifdef HAVE_OPENSSL
		/* OpenSSL's buddy allocator in the same plight: with nothing else
		 * in the heap, each allocation splits it down from the top. */
		if (have_openssl())
			measure(S, OSSL_EMPTY, p, b_openssl, NULL);
		else
#endif
			record_na(S, OSSL_EMPTY, p, "ns/op", "n/a: no OpenSSL");
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
		ratio(S, EMPTY, p, IN, p, NULL, NULL);
		ratio(S, EMPTY, p, OSSL_EMPTY, p, NULL, NULL);
	}
	section_line(S, "domain allocations up to 1 KiB go through pkalloc's cache per (thread, "
	             "domain), kept inside the domain, never a jemalloc thread cache: up to 8 domains "
	             "per thread, made at the fourth call; blocks are wiped before they enter it "
	             "(src/cache.c); a thread inside the domain read-write opens no window");
	section_line(S, "from outside the domain each call also opens and closes an access window: %s",
	             strcmp(pkalloc_backend(), "pku") == 0 ? "two PKRU writes"
	             : "two mprotect calls over the domain's whole range");
	domain_destroy(dom);
	domain_destroy(cap);
	domain_destroy(bare);
}
