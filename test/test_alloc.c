/*
 * Allocation semantics: every size class and alignment, calloc zeroing,
 * realloc within and across domains, wiping of freed memory, and plain
 * malloc never handing out domain memory (the thread-cache trap).
 */
#include "test.h"

#include <pthread.h>

static const size_t sizes[] = {
	0, 1, 7, 8, 15, 16, 24, 32, 48, 64, 100, 128, 256, 1000, 4096, 4097,
	16384, 65536, 100000, 1 << 20, 3 << 20, 8 << 20,
};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 31);
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 31))
			return 0;
	return 1;
}

static int zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void *plain_churn(void *arg)
{
	/* Ordinary malloc on a thread that also freed domain memory. */
	domain_t *d = arg;
	for (int round = 0; round < vg_scaled(500); round++) {
		void *q = domain_malloc(d, 16 + round % 200);
		CHECK(q);
		domain_free(q);
		void *m = malloc(16 + round % 200);
		CHECK(m);
		if (domain_of(m) != NULL)
			FAIL("malloc returned domain memory %p", m);
		free(m);
	}
	return NULL;
}

int main(void)
{
	domain_t *d = domain_create("alloc", 0), *e = domain_create("other", 0);
	CHECK(d && e);
	void *ptrs[NSIZES];

	/* Every size, allocated from outside, usable inside. */
	for (size_t i = 0; i < NSIZES; i++) {
		ptrs[i] = domain_malloc(d, sizes[i]);
		CHECK(ptrs[i]);
		CHECK(domain_of(ptrs[i]) == d);
		CHECK_INT(domain_usable_size(ptrs[i]), >=, sizes[i]);
		CHECK_INT((uintptr_t)ptrs[i] % 8, ==, 0);
	}
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	for (size_t i = 0; i < NSIZES; i++)
		fill(ptrs[i], sizes[i], (unsigned)i);
	/* Allocate from inside, too. */
	void *inner = domain_malloc(d, 300);
	CHECK(inner && domain_of(inner) == d);
	fill(inner, 300, 99);
	CHECK_OK(domain_exit(d));
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	for (size_t i = 0; i < NSIZES; i++)
		if (!same(ptrs[i], sizes[i], (unsigned)i))
			FAIL("allocation of %zu bytes lost its content", sizes[i]);
	CHECK(same(inner, 300, 99));
	CHECK_OK(domain_exit(d));

	/* Distinct, non-overlapping blocks. */
	for (size_t i = 0; i < NSIZES; i++)
		for (size_t j = i + 1; j < NSIZES; j++) {
			char *a = ptrs[i], *b = ptrs[j];
			size_t la = domain_usable_size(a), lb = domain_usable_size(b);
			CHECK(a + la <= b || b + lb <= a);
		}

	/* Freed memory is wiped: the same block comes back zeroed.  (jemalloc
	 * hands out the lowest free region of a slab first.) */
	for (size_t i = 0; i < NSIZES; i++) {
		size_t n = sizes[i];
		domain_free(ptrs[i]);
		unsigned char *again = domain_malloc(d, n);
		CHECK(again);
		CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
		if ((void *)again == ptrs[i] && !zero(again, n))
			FAIL("freed block of %zu bytes came back with its old content", n);
		CHECK_OK(domain_exit(d));
		ptrs[i] = again;
	}
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	/* calloc zeroes even where memory was dirty. */
	for (size_t i = 0; i < NSIZES; i++)
		fill(ptrs[i], sizes[i], 7);
	CHECK_OK(domain_exit(d));
	for (size_t i = 0; i < NSIZES; i++) {
		domain_free(ptrs[i]);
		unsigned char *c = domain_calloc(d, 1, sizes[i]);
		CHECK(c && domain_of(c) == d);
		CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
		CHECK(zero(c, sizes[i]));
		CHECK_OK(domain_exit(d));
		ptrs[i] = c;
	}
	unsigned char *c2 = domain_calloc(d, 1000, 24);
	CHECK(c2 && domain_usable_size(c2) >= 24000);
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK(zero(c2, 24000));
	CHECK_OK(domain_exit(d));
	domain_free(c2);

	/* Alignment, up to 2 MiB. */
	for (size_t al = 1; al <= (2u << 20); al <<= 1) {
		void *p = domain_aligned_alloc(d, al, 100);
		CHECK(p && domain_of(p) == d);
		if ((uintptr_t)p % al)
			FAIL("%p is not aligned to %zu", p, al);
		domain_free(p);
	}
	void *z = domain_aligned_alloc(d, 64, 0);
	CHECK(z);
	domain_free(z);

	/* realloc: NULL, grow, shrink, zero, in place and moving. */
	unsigned char *r = domain_realloc(d, NULL, 10);
	CHECK(r && domain_of(r) == d);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	fill(r, 10, 3);
	CHECK_OK(domain_exit(d));
	size_t steps[] = { 20, 100, 5000, 70000, 2 << 20, 40, 12, 0, 64 };
	size_t keep = 10;
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		unsigned char *n = domain_realloc(d, r, steps[i]);
		CHECK(n && domain_of(n) == d);
		CHECK_INT(domain_usable_size(n), >=, steps[i]);
		if (steps[i] < keep)
			keep = steps[i];
		CHECK_OK(domain_enter(d, DOMAIN_RDWR));
		if (!same(n, keep, 3))
			FAIL("realloc to %zu lost the first %zu bytes", steps[i], keep);
		if (steps[i] > keep) {
			fill(n, steps[i], 3);
			keep = steps[i];
		}
		CHECK_OK(domain_exit(d));
		r = n;
	}
	/* Shrinking wipes what the caller gave up: a small block keeps its
	 * size class, so the tail stays in it and must read zero... */
	unsigned char *sh = domain_malloc(d, 100);
	CHECK(sh);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	memset(sh, 0xA5, 100);
	CHECK_OK(domain_exit(d));
	unsigned char *sh2 = domain_realloc(d, sh, 90);
	CHECK_PTR(sh2, ==, sh);
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	/* Past the 90 bytes asked for, up to the usable size: read through a
	 * laundered pointer, the object-size checks see only 90. */
	const volatile unsigned char *tail = sh2;
	__asm__("" : "+r"(tail));     /* hide where it came from */
	for (size_t i = 90; i < domain_usable_size(sh2); i++)
		if (tail[i])
			FAIL("byte %zu of a block shrunk to 90 still holds %#x", i, tail[i]);
	CHECK_OK(domain_exit(d));
	domain_free(sh2);
	/* ...and a large block shrunk in place and grown again in place must
	 * not get its old tail back. */
	unsigned char *lg = domain_malloc(d, 256 << 10);
	CHECK(lg);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	memset(lg, 0x5A, 256 << 10);
	CHECK_OK(domain_exit(d));
	CHECK_PTR(domain_realloc(d, lg, 32 << 10), ==, lg);
	unsigned char *lg2 = domain_realloc(d, lg, 256 << 10);
	CHECK(lg2);
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	for (size_t i = 0; i < (32 << 10); i++)
		CHECK_INT(lg2[i], ==, 0x5A);
	if (lg2 == lg)
		for (size_t i = 32 << 10; i < (256 << 10); i++)
			if (lg2[i])
				FAIL("byte %zu came back after shrink and regrow: %#x", i, lg2[i]);
	CHECK_OK(domain_exit(d));
	domain_free(lg2);

	/* A failed realloc leaves the block as it was. */
	errno = 0;
	CHECK(domain_realloc(d, r, (size_t)5 << 30) == NULL);
	CHECK_INT(errno, ==, ENOMEM);
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK(same(r, keep, 3));
	CHECK_OK(domain_exit(d));

	/* realloc into another domain: the bytes move, the old block is freed. */
	unsigned char *moved = domain_realloc(e, r, 5000);
	CHECK(moved && domain_of(moved) == e);
	CHECK_OK(domain_enter(e, DOMAIN_RDONLY));
	CHECK(same(moved, keep, 3));
	CHECK_OK(domain_exit(e));
	CHECK_DENIED(moved, 0);
	domain_free(moved);

	/* Many small blocks, all distinct, all in d; made and freed from
	 * inside, where no call needs to open the domain. */
	enum { MANY = 20000 };
	void **many = malloc(MANY * sizeof *many);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	for (int i = 0; i < MANY; i++) {
		many[i] = domain_malloc(d, 16 + (i % 7) * 16);
		CHECK(many[i] && domain_of(many[i]) == d);
	}
	for (int i = 0; i < MANY; i++)
		*(int *)many[i] = i;
	for (int i = 0; i < MANY; i++)
		CHECK_INT(*(int *)many[i], ==, i);
	for (int i = 0; i < MANY; i++)
		domain_free(many[i]);
	CHECK_OK(domain_exit(d));

	/* After all those domain frees, plain malloc must never return domain
	 * memory: on this thread, on others. */
	for (int i = 0; i < MANY; i++) {
		many[i] = malloc(16 + (i % 7) * 16);
		CHECK(many[i]);
		if (domain_of(many[i]))
			FAIL("malloc returned domain memory %p", many[i]);
	}
	for (int i = 0; i < MANY; i++)
		free(many[i]);
	free(many);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, plain_churn, i % 2 ? d : e);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);

	domain_free(inner);
	for (size_t i = 0; i < NSIZES; i++)
		domain_free(ptrs[i]);
	CHECK_OK(domain_destroy(d));
	CHECK_OK(domain_destroy(e));
	return 0;
}
