/*
 * Pointers of a destroyed domain: free, realloc, operator delete,
 * malloc_usable_size, domain_free and domain_realloc all stop with one
 * "pkalloc: CALL(ptr): its domain was destroyed" line (never a bare crash
 * inside jemalloc) for as long as no new domain took the range, which
 * nothing else can map meanwhile; once a new domain has it, the pointer is
 * taken for that domain's, as pkalloc(3) says.
 */
#include "test.h"

#include <malloc.h>
#include <sys/mman.h>

/* Where pkalloc's malloc replacement is in effect (not under ASan, whose
 * runtime's free comes first). */
#if defined(__SANITIZE_ADDRESS__)
#define REPLACED 0
#else
#define REPLACED 1
#endif

extern void _ZdlPv(void *);          /* operator delete(void *) */
extern void _ZdlPvm(void *, size_t); /* operator delete(void *, size_t) */

static char *ptr;
static domain_t *other;

static void do_free(void *a) { (void)a; free(ptr); }
static void do_realloc(void *a) { (void)a; void *q = realloc(ptr, 64); (void)q; }
static void do_realloc0(void *a) { (void)a; void *q = realloc(ptr, 0); (void)q; }
static void do_delete(void *a) { (void)a; _ZdlPv(ptr); }
static void do_sized_delete(void *a) { (void)a; _ZdlPvm(ptr, 32); }
static void do_usable(void *a) { (void)a; printf("%zu\n", malloc_usable_size(ptr)); }
static void do_domain_free(void *a) { (void)a; domain_free(ptr); }
static void do_domain_realloc(void *a) { (void)a; void *q = domain_realloc(other, ptr, 64); (void)q; }

static void expect_abort(void (*fn)(void *), const char *call, const char *why)
{
	char err[512], want[512];
	int st = in_child(fn, NULL, err, sizeof err);
	snprintf(want, sizeof want, "pkalloc: %s(%p): %s\n", call, (void *)ptr, why);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT || strcmp(err, want) != 0)
		FAIL("%s of a destroyed domain's pointer: status %#x, stderr \"%s\", expected SIGABRT and \"%s\"",
		     call, st, err, want);
}

#define GONE "its domain was destroyed"
#define NOT_AN_ALLOCATION "not an allocation of its domain (interior pointer or freed already)"

int main(void)
{
	other = domain_create("other", 0);
	CHECK(other);
	domain_t *d = domain_create("doomed", 0);
	CHECK(d);
	ptr = domain_malloc(d, 32);
	CHECK(ptr);
	CHECK_OK(domain_destroy(d));

	/* Gone: unreachable, no domain's, and every call that takes it says so. */
	CHECK(probe(ptr, 0).hit);
	CHECK(domain_of(ptr) == NULL);
	CHECK_ERR(domain_usable_size(ptr), == 0, EINVAL);
	expect_abort(do_domain_free, "domain_free", GONE);
	expect_abort(do_domain_realloc, "domain_realloc", GONE);
	if (REPLACED) {
		expect_abort(do_free, "free", GONE);
		expect_abort(do_realloc, "realloc", GONE);
		expect_abort(do_realloc0, "free", GONE);     /* realloc(p, 0) frees */
		expect_abort(do_delete, "operator delete", GONE);
		expect_abort(do_sized_delete, "operator delete", GONE);
		expect_abort(do_usable, "malloc_usable_size", GONE);
	}

	/* The range stays held: no other mapping can be placed in it, so the
	 * line can never be about ordinary memory.  (valgrind places no
	 * MAP_FIXED_NOREPLACE mapping: not under it.) */
	if (!under_valgrind()) {
		char *page = (char *)((uintptr_t)ptr & ~(uintptr_t)4095);
		void *m = mmap(page, 4096, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (m != MAP_FAILED) {
			munmap(m, 4096);
			if (m == page)
				FAIL("an ordinary mapping was placed in a destroyed domain's range");
		} else {
			CHECK_INT(errno, ==, EEXIST);
		}
	}

	/* New domains take the kept ranges back, oldest first, once enough
	 * wait: then the pointer is the new domain's, and not an allocation. */
	domain_t *taker = NULL;
	for (int i = 0; i < 200 && !taker; i++) {
		domain_t *n = domain_create("taker", 0);
		CHECK(n);
		if (domain_of(ptr) == n)
			taker = n;
		else
			CHECK_OK(domain_destroy(n));
	}
	if (!taker)
		FAIL("no new domain took the destroyed domain's range in 200 creates");
	expect_abort(do_domain_free, "domain_free", NOT_AN_ALLOCATION);
	if (REPLACED)
		expect_abort(do_free, "free", NOT_AN_ALLOCATION);
	CHECK_OK(domain_destroy(taker));
	CHECK_OK(domain_destroy(other));
	return 0;
}
