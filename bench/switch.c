/*
 * 1. Domain switch: what opening and closing a domain costs, against what
 * the same protection costs done by hand: two WRPKRU writes (only where
 * the CPU has protection keys), an mprotect RW/NONE flip of one page and
 * of 1 MiB, and libsodium's readwrite/noaccess flip of one sodium_malloc
 * block.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <pkalloc.h>

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "pkru.h"

#ifdef HAVE_SODIUM
#include <sodium.h>
#endif

#define S "switch"

static domain_t *dom;

static void b_enter_exit(void *arg, long n)
{
	int access = *(const int *)arg;
	for (long i = 0; i < n; i++) {
		domain_enter(dom, access);
		domain_exit(dom);
	}
}

/* Two PKRU writes, as an enter and an exit of one key would do.  Key 1's
 * bits change; nothing touches memory in between, and PKRU is put back. */
static void b_wrpkru(void *arg, long n)
{
	(void)arg;
	uint32_t open = rdpkru(), closed = open | PKRU_BITS(1);
	for (long i = 0; i < n; i++) {
		wrpkru(open & ~PKRU_BITS(1));
		wrpkru(closed);
	}
	wrpkru(open);
}

struct region {
	void *p;
	size_t len;
};

static void b_mprotect(void *arg, long n)
{
	const struct region *r = arg;
	for (long i = 0; i < n; i++) {
		mprotect(r->p, r->len, PROT_READ | PROT_WRITE);
		mprotect(r->p, r->len, PROT_NONE);
	}
}

#ifdef HAVE_SODIUM
static void b_sodium(void *arg, long n)
{
	for (long i = 0; i < n; i++) {
		sodium_mprotect_readwrite(arg);
		sodium_mprotect_noaccess(arg);
	}
}
#endif

/* A populated, PROT_NONE region of len bytes. */
static int region(struct region *r, size_t len)
{
	r->len = len;
	r->p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->p == MAP_FAILED) {
		bench_error("mmap of %zu bytes failed", len);
		return -1;
	}
	memset(r->p, 1, len);
	mprotect(r->p, len, PROT_NONE);
	return 0;
}

void bench_switch(void)
{
	section_title(S, "1. Domain switch", "",
	              "One enter and one exit (ns per pair) against the same protection done by hand: "
	              "two WRPKRU writes (CPUs with protection keys only), an mprotect RW/NONE pair on "
	              "one populated page and on 1 MiB, libsodium's readwrite/noaccess pair on one "
	              "sodium_malloc block. The domain holds one 32-byte secret.");
	struct region page, mib;
	dom = domain_create("bench-switch", 0);
	if (!dom) {
		bench_error("domain_create: %s", strerror(errno));
		return;
	}
	void *secret = domain_malloc(dom, 32);
	if (!secret || region(&page, 4096) != 0 || region(&mib, 1 << 20) != 0) {
		bench_error("switch: setup failed");
		return;
	}
	int rdwr = DOMAIN_RDWR, rdonly = DOMAIN_RDONLY;
	measure(S, "domain_enter+domain_exit", NULL, b_enter_exit, &rdwr);
	measure(S, "domain_enter+domain_exit read-only", NULL, b_enter_exit, &rdonly);
	if (cpu_has_pku())
		measure(S, "WRPKRU pair", NULL, b_wrpkru, NULL);
	else
		record_na(S, "WRPKRU pair", NULL, "ns/op", "n/a: no PKU (CPUID OSPKE clear)");
	measure(S, "mprotect RW/NONE pair 4 KiB", NULL, b_mprotect, &page);
	measure(S, "mprotect RW/NONE pair 1 MiB", NULL, b_mprotect, &mib);
#ifdef HAVE_SODIUM
	void *sp = have_sodium() ? sodium_malloc(32) : NULL;
	if (sp) {
		sodium_mprotect_noaccess(sp);
		measure(S, "sodium_mprotect readwrite+noaccess", NULL, b_sodium, sp);
		sodium_mprotect_readwrite(sp);
		sodium_free(sp);
	} else
#endif
		record_na(S, "sodium_mprotect readwrite+noaccess", NULL, "ns/op",
		          "n/a: built without libsodium (libsodium-dev)");

	const char *e = "domain_enter+domain_exit";
	ratio(S, e, NULL, "WRPKRU pair", NULL, "<=1.2", "enter+exit at most 1.2x a raw WRPKRU pair");
	ratio(S, e, NULL, "mprotect RW/NONE pair 4 KiB", NULL, NULL, NULL);
	ratio(S, e, NULL, "mprotect RW/NONE pair 1 MiB", NULL, NULL, NULL);
	ratio(S, e, NULL, "sodium_mprotect readwrite+noaccess", NULL, NULL, NULL);
	ratio(S, "domain_enter+domain_exit read-only", NULL, e, NULL, NULL, NULL);
	section_line(S, "backend %s: %s", pkalloc_backend(),
	             strcmp(pkalloc_backend(), "pku") == 0
	             ? "an enter or exit writes the thread's PKRU (no system call while the domain keeps its key)"
	             : "an enter or exit changes the page permissions of the domain's whole range (mprotect), for every thread");

	domain_free(secret);
	munmap(page.p, page.len);
	munmap(mib.p, mib.len);
	domain_destroy(dom);
}
