/*
 * The malloc replacement: a program linked with -lpkalloc gets pkalloc's
 * malloc family (domain pointers round-trip through free, realloc and
 * malloc_usable_size), glibc's documented conventions, and malloc capture
 * by DOMAIN_CAPTURE_MALLOC domains.
 */
#include "test.h"

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>

/* Keep the compiler from folding calls whose results it thinks it knows. */
static void *volatile sink;
static size_t volatile huge = SIZE_MAX;

/* The address as the compiler cannot know it: it would otherwise trust
 * the alloc_align attributes of the declarations and fold the checks. */
static uintptr_t addr(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	__asm__("" : "+r"(a));
	return a;
}

static size_t allocated(domain_t *d)
{
	struct domain_stats st;
	CHECK_OK(domain_stats(d, &st));
	return st.allocated;
}

static void resolves_to_pkalloc(void)
{
	/* By symbol: malloc and free in this program are libpkalloc's. */
	Dl_info m, api;
	CHECK(dladdr((void *)malloc, &m) && dladdr((void *)domain_create, &api));
	CHECK_PTR(m.dli_fbase, ==, api.dli_fbase);

	/* By behaviour: a domain pointer goes through the plain calls. */
	domain_t *d = domain_create("round-trip", 0);
	CHECK(d);
	char *p = domain_malloc(d, 100);
	CHECK(p);
	CHECK_INT(malloc_usable_size(p), ==, domain_usable_size(p));
	CHECK_INT(malloc_usable_size(p), >=, 100);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	memcpy(p, "kept across realloc", 20);
	CHECK_OK(domain_exit(d));
	/* realloc keeps domain memory in its domain, from outside too. */
	char *q = realloc(p, 5000);
	CHECK(q);
	CHECK_PTR(domain_of(q), ==, d);
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK(memcmp(q, "kept across realloc", 20) == 0);
	CHECK_OK(domain_exit(d));
	CHECK_INT(allocated(d), >=, 5000);
	free(q);
	CHECK_INT(allocated(d), ==, 0);

	/* C++ delete from C: the same routing. */
	extern void _ZdlPv(void *);
	p = domain_malloc(d, 64);
	CHECK(p);
	_ZdlPv(p);
	CHECK_INT(allocated(d), ==, 0);

	/* realloc(p, 0) frees domain memory as glibc frees its own. */
	p = domain_malloc(d, 64);
	CHECK(p);
	CHECK(realloc(p, 0) == NULL);
	CHECK_INT(allocated(d), ==, 0);
	CHECK_OK(domain_destroy(d));

	/* Ordinary memory is not domain memory. */
	p = malloc(32);
	CHECK(p);
	CHECK(domain_of(p) == NULL);
	CHECK_INT(malloc_usable_size(p), >=, 32);
	free(p);
}

static void glibc_conventions(void)
{
	/* malloc(0): a unique pointer. */
	void *a = malloc(0), *b = malloc(0);
	CHECK(a && b && a != b);
	free(a);
	free(b);
	free(NULL);
	CHECK_INT(malloc_usable_size(NULL), ==, 0);

	CHECK_ERR(sink = malloc(huge), == NULL, ENOMEM);
	CHECK_ERR(sink = calloc(huge / 2, 3), == NULL, ENOMEM);
	CHECK_ERR(sink = aligned_alloc(24, 64), == NULL, EINVAL);
	CHECK_ERR(sink = aligned_alloc(0, 64), == NULL, EINVAL);
	CHECK_ERR(sink = memalign(huge, 64), == NULL, EINVAL);
	CHECK_ERR(sink = pvalloc(huge - 10), == NULL, ENOMEM);

	unsigned char *z = calloc(100, 10);
	CHECK(z);
	for (int i = 0; i < 1000; i++)
		CHECK_INT(z[i], ==, 0);
	free(z);

	/* posix_memalign returns its error, leaves *memptr and errno alone. */
	void *keep = (void *)0x1234;
	errno = 42;
	CHECK_INT(posix_memalign(&keep, 3, 16), ==, EINVAL);
	CHECK_INT(posix_memalign(&keep, 4, 16), ==, EINVAL);   /* < sizeof(void *) */
	CHECK_INT(posix_memalign(&keep, 48, 16), ==, EINVAL);
	CHECK_INT(posix_memalign(&keep, 64, huge), ==, ENOMEM);
	CHECK_PTR(keep, ==, (void *)0x1234);
	CHECK_INT(errno, ==, 42);
	CHECK_INT(posix_memalign(&keep, 256, 10), ==, 0);
	CHECK_INT(addr(keep) % 256, ==, 0);
	free(keep);

	void *p = aligned_alloc(4096, 100);
	CHECK(p && addr(p) % 4096 == 0);
	free(p);
	void *small[64];                       /* small sizes, small alignments */
	for (size_t i = 0; i < 64; i++) {
		small[i] = i & 1 ? memalign(16, 1 + i % 8) : aligned_alloc(16, 1 + i % 8);
		CHECK(small[i] && addr(small[i]) % 16 == 0);
	}
	for (size_t i = 0; i < 64; i++)
		free(small[i]);
	p = memalign(24, 100);                 /* rounded up to 32 */
	CHECK(p && addr(p) % 32 == 0);
	free(p);
	p = valloc(10);
	CHECK(p && addr(p) % (uintptr_t)getpagesize() == 0);
	free(p);
	p = pvalloc(1);
	CHECK(p && addr(p) % (uintptr_t)getpagesize() == 0);
	CHECK_INT(malloc_usable_size(p), >=, getpagesize());
	free(p);

	/* reallocarray: overflow leaves the block as it was. */
	char *r = malloc(8);
	CHECK(r);
	memcpy(r, "1234567", 8);
	CHECK_ERR(sink = reallocarray(r, huge / 2, 4), == NULL, ENOMEM);
	CHECK(memcmp(r, "1234567", 8) == 0);
	r = reallocarray(r, 1000, 4);
	CHECK(r && memcmp(r, "1234567", 8) == 0);
	CHECK_ERR(sink = realloc(r, huge), == NULL, ENOMEM);
	CHECK(memcmp(r, "1234567", 8) == 0);
	CHECK(realloc(r, 0) == NULL);          /* glibc: frees, returns NULL */
	r = realloc(NULL, 10);
	CHECK(r);
	free(r);
}

static void *thread_mallocs(void *arg)
{
	domain_t *d = arg;
	char *s = strdup("a new thread starts outside every domain");
	CHECK(s);
	CHECK(domain_of(s) == NULL);
	CHECK(domain_of(arg) == NULL);
	free(s);
	(void)d;
	return NULL;
}

static void capture(void)
{
	domain_t *d = domain_create("capture", DOMAIN_CAPTURE_MALLOC);
	domain_t *plain = domain_create("plain", 0);
	CHECK(d && plain);

	/* Outside: ordinary memory. */
	char *o = malloc(40);
	CHECK(o && domain_of(o) == NULL);
	memcpy(o, "ordinary block, moved on realloc", 33);

	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	char *m = malloc(32);
	char *s = strdup("captured by the domain");
	char *c = calloc(4, 8);
	void *al = aligned_alloc(64, 64);
	void *pm = NULL;
	CHECK_INT(posix_memalign(&pm, 128, 40), ==, 0);
	CHECK(m && s && c && al && pm);
	CHECK_PTR(domain_of(m), ==, d);
	CHECK_PTR(domain_of(s), ==, d);
	CHECK_PTR(domain_of(c), ==, d);
	CHECK_PTR(domain_of(al), ==, d);
	CHECK_PTR(domain_of(pm), ==, d);
	CHECK(addr(al) % 64 == 0 && addr(pm) % 128 == 0);
	CHECK(c[0] == 0 && c[31] == 0);
	memcpy(m, "secret made by malloc", 22);
	/* realloc moves an ordinary block into the domain. */
	o = realloc(o, 4000);
	CHECK_PTR(domain_of(o), ==, d);
	CHECK(strcmp(o, "ordinary block, moved on realloc") == 0);

	/* A plain domain entered inside does not take over; a read-only enter
	 * of a capturing domain does not capture. */
	CHECK_OK(domain_enter(plain, DOMAIN_RDWR));
	char *n = malloc(16);
	CHECK_PTR(domain_of(n), ==, d);
	free(n);
	CHECK_OK(domain_exit(plain));

	/* Threads started inside begin outside: their malloc is ordinary. */
	pthread_t t;
	CHECK_INT(pthread_create(&t, NULL, thread_mallocs, d), ==, 0);
	CHECK_INT(pthread_join(t, NULL), ==, 0);
	CHECK_OK(domain_exit(d));

	/* Outside again: ordinary memory, and the captured blocks fault. */
	char *after = malloc(16);
	CHECK(after && domain_of(after) == NULL);
	free(after);
	CHECK_DENIED(m, 0);
	CHECK_DENIED(s, 1);
	CHECK_DENIED(o, 0);

	domain_t *ro = domain_create("read-only capture", DOMAIN_CAPTURE_MALLOC);
	CHECK(ro);
	CHECK_OK(domain_enter(ro, DOMAIN_RDONLY));
	n = malloc(16);
	CHECK(n && domain_of(n) == NULL);
	free(n);
	CHECK_OK(domain_exit(ro));
	CHECK_OK(domain_destroy(ro));

	/* Freed from outside: wiped and released in the domain. */
	CHECK_INT(allocated(d), >, 0);
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK(strcmp(s, "captured by the domain") == 0);
	CHECK(memcmp(m, "secret made by malloc", 22) == 0);
	CHECK_OK(domain_exit(d));
	free(m);
	free(s);
	free(c);
	free(al);
	free(pm);
	free(o);
	CHECK_INT(allocated(d), ==, 0);
	CHECK_OK(domain_destroy(plain));
	CHECK_OK(domain_destroy(d));
}

/* The innermost capturing domain wins; an exit gives the capture back. */
static void nesting(void)
{
	domain_t *a = domain_create("a", DOMAIN_CAPTURE_MALLOC);
	domain_t *b = domain_create("b", DOMAIN_CAPTURE_MALLOC);
	CHECK(a && b);
	void *p[8];
	CHECK_OK(domain_enter(a, DOMAIN_RDWR));
	CHECK_PTR(domain_of(p[0] = malloc(8)), ==, a);
	CHECK_OK(domain_enter(b, DOMAIN_RDWR));
	CHECK_PTR(domain_of(p[1] = malloc(8)), ==, b);
	CHECK_OK(domain_enter(a, DOMAIN_RDWR));
	CHECK_PTR(domain_of(p[2] = malloc(8)), ==, a);
	CHECK_OK(domain_exit(a));
	CHECK_PTR(domain_of(p[3] = malloc(8)), ==, b);
	/* Exits out of order: leaving a (the outer one) keeps b capturing. */
	CHECK_OK(domain_exit(a));
	CHECK_PTR(domain_of(p[4] = malloc(8)), ==, b);
	CHECK_OK(domain_exit(b));
	CHECK(domain_of(p[5] = malloc(8)) == NULL);
	for (int i = 0; i < 6; i++)
		free(p[i]);

	/* At most PKALLOC_MAX_CAPTURE runs of alternating capturing enters;
	 * repeating one domain takes no room. */
	int entered = 0;
	for (int i = 0; i < PKALLOC_MAX_CAPTURE; i++) {
		CHECK_OK(domain_enter(i % 2 ? b : a, DOMAIN_RDWR));
		entered++;
	}
	domain_t *next = PKALLOC_MAX_CAPTURE % 2 ? b : a;
	CHECK_ERR(domain_enter(next, DOMAIN_RDWR), == -1, EOVERFLOW);
	CHECK_OK(domain_enter(next == a ? b : a, DOMAIN_RDWR));     /* same run */
	CHECK_OK(domain_enter(next, DOMAIN_RDONLY));                /* no capture */
	CHECK_OK(domain_exit(next));
	CHECK_OK(domain_exit(next == a ? b : a));
	for (int i = entered; i-- > 0;)
		CHECK_OK(domain_exit(i % 2 ? b : a));
	CHECK(domain_of(p[0] = malloc(8)) == NULL);
	free(p[0]);
	CHECK_OK(domain_destroy(a));
	CHECK_OK(domain_destroy(b));
}

static void *exit_inside(void *arg)
{
	/* A thread that ends inside a capturing domain: the exit handler
	 * leaves it, and later TLS destructors allocate ordinary memory. */
	CHECK_OK(domain_enter(arg, DOMAIN_RDWR));
	void *p = malloc(24);
	CHECK_PTR(domain_of(p), ==, arg);
	return p;
}

static void thread_exit_and_fork(void)
{
	domain_t *d = domain_create("exit", DOMAIN_CAPTURE_MALLOC);
	CHECK(d);
	pthread_t t;
	void *p;
	CHECK_INT(pthread_create(&t, NULL, exit_inside, d), ==, 0);
	CHECK_INT(pthread_join(t, &p), ==, 0);
	CHECK_PTR(domain_of(p), ==, d);
	free(p);
	CHECK_INT(allocated(d), ==, 0);
	CHECK_OK(domain_destroy(d));      /* nobody is inside any more */

	/* fork inside a capturing domain: the child's malloc still captures. */
	d = domain_create("fork", DOMAIN_CAPTURE_MALLOC);
	CHECK(d);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		void *c = malloc(40);
		_exit(c && domain_of(c) == d ? 0 : 1);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK_EXITED_OK(st);
	CHECK_OK(domain_exit(d));
	CHECK_OK(domain_destroy(d));
}

static size_t volatile eight = 8;

/* Before main: the replacement and capture work in a constructor. */
static int ctor_result = -1;

__attribute__((constructor)) static void before_main(void)
{
	if (TEST_SANITIZER_MALLOC)
		return;            /* main skips */
	char *plain = strdup("before main");
	domain_t *d = domain_create("constructor", DOMAIN_CAPTURE_MALLOC);
	if (!plain || !d || domain_enter(d, DOMAIN_RDWR) != 0)
		return;
	char *q = strdup("captured before main");
	int ok = q && domain_of(q) == d && domain_of(plain) == NULL;
	domain_exit(d);
	free(q);
	free(plain);
	ctor_result = ok && domain_destroy(d) == 0;
}

static void free_interior(void *arg)
{
	free((char *)arg + eight);
}

static void death(void)
{
	domain_t *d = domain_create("death", 0);
	CHECK(d);
	char *p = domain_malloc(d, 64);
	CHECK(p);
	char err[512];
	int st = in_child(free_interior, p, err, sizeof err);
	CHECK_KILLED_BY(st, SIGABRT);
	if (!strstr(err, "pkalloc: free(") || !strstr(err, "not an allocation of its domain"))
		FAIL("unexpected message: %s", err);
	domain_free(p);
	CHECK_OK(domain_destroy(d));
}

int main(void)
{
	skip_if_sanitized_malloc();
	CHECK_INT(ctor_result, ==, 1);
	resolves_to_pkalloc();
	glibc_conventions();
	capture();
	nesting();
	thread_exit_and_fork();
	death();
	printf("test_override: ok on %s\n", pkalloc_backend());
	return 0;
}
