/*
 * pkalloc_wipe_stack clears what a library left of a secret on the stack:
 * inside a capturing domain, asprintf, strndup and a write to an
 * unbuffered stream put every heap copy of the secret in the domain, but
 * the stream's work buffer leaves one on the thread's stack; after
 * domain_exit a scan finds it there without the call, and nowhere outside
 * the domain with it.  A length past the end of the stack dies at the
 * guard page and writes nothing beyond it.
 */
#include "test.h"

#include <pthread.h>
#include <sys/mman.h>

enum { LEN = 48, STACK = 256 << 10, WIPE = 64 << 10 };

/* The secret, byte by byte: never held whole in the test's own memory. */
static char gen(size_t i)
{
	return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[(i * 7 + 3) % 52];
}

static domain_t *d;
static char *key;               /* the secret, in d */
static char *stack_lo;          /* the scenario thread's stack */
static int wipe, found_stack;
static char *heap_copy[2];

static int secret_at(const char *p)
{
	for (size_t i = 0; i < LEN; i++)
		if (p[i] != gen(i))
			return 0;
	return 1;
}

/* Copies of the secret in [lo, hi). */
static int count(const char *lo, const char *hi)
{
	int n = 0;
	for (const char *p = lo; p + LEN <= hi; p++)
		n += secret_at(p);
	return n;
}

/* What a library does with the secret, inside the capturing domain. */
static __attribute__((noinline)) void use_secret(void)
{
	if (asprintf(&heap_copy[0], "token=%s;", key) < 0)
		FAIL("asprintf");
	heap_copy[1] = strndup(key, LEN);
	FILE *f = fopen("/dev/null", "w");
	CHECK(f && heap_copy[1]);
	setvbuf(f, NULL, _IONBF, 0);       /* as stderr is */
	fprintf(f, "key %s\n", key);
	fclose(f);
}

/* The stack below the caller, dead frames included, up to here. */
static __attribute__((noinline)) int scan_stack(void)
{
	VALGRIND_DISABLE_ERROR_REPORTING;       /* below the stack pointer */
	int n = count(stack_lo, (char *)__builtin_frame_address(0));
	VALGRIND_ENABLE_ERROR_REPORTING;
	return n;
}

static void *scenario(void *arg)
{
	(void)arg;
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	use_secret();
	if (wipe)
		pkalloc_wipe_stack(WIPE);
	CHECK_OK(domain_exit(d));
	found_stack = scan_stack();
	return NULL;
}

/* Run the scenario on a fresh stack of its own. */
static int run(int with_wipe)
{
	wipe = with_wipe;
	stack_lo = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(stack_lo != MAP_FAILED);
	pthread_attr_t at;
	pthread_attr_init(&at);
	CHECK_INT(pthread_attr_setstack(&at, stack_lo, STACK), ==, 0);
	pthread_t t;
	CHECK_INT(pthread_create(&t, &at, scenario, NULL), ==, 0);
	CHECK_INT(pthread_join(t, NULL), ==, 0);
	pthread_attr_destroy(&at);
	if (!with_wipe)           /* its copy is no concern of what follows */
		CHECK_OK(munmap(stack_lo, STACK));
	for (int i = 0; i < 2; i++) {
		CHECK(domain_of(heap_copy[i]) == d);     /* captured */
		free(heap_copy[i]);
	}
	return found_stack;
}

/* Every copy outside d in the process's plain writable memory, the
 * scenario's stack included: resident pages of readable, writable
 * mappings, but not d's reservation (unreadable, and on pku it faults). */
static int count_everywhere(void)
{
	uintptr_t dom = (uintptr_t)key & ~(uintptr_t)(PKALLOC_RESERVATION - 1);
	FILE *f = fopen("/proc/self/maps", "r");
	CHECK(f);
	char line[512];
	int n = 0;
	static unsigned char vec[(1u << 30) / 4096];
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		char perm[8];
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) != 3 || perm[0] != 'r' || perm[1] != 'w' ||
		    b - a > (1ul << 30) || (a >= dom && a < dom + PKALLOC_RESERVATION))
			continue;
		if (mincore((void *)a, b - a, vec) != 0)
			continue;
		for (unsigned long pg = 0; pg < (b - a) / 4096; pg++) {
			if (!(vec[pg] & 1))
				continue;
			/* A copy may run on into the next page. */
			const char *p = (const char *)a + pg * 4096;
			const char *end = p + 4096 + LEN - 1 <= (const char *)b ? p + 4096 + LEN - 1 :
			                  (const char *)b;
			n += count(p, end);
		}
	}
	fclose(f);
	return n;
}

/* Past the end of the stack: the guard page stops it; the page below
 * the guard, shared with the parent, must come out untouched. */
enum { SMALL = 64 << 10 };
static char *below;             /* [below][guard][SMALL bytes of stack] */

static void *overflow(void *arg)
{
	(void)arg;
	pkalloc_wipe_stack((size_t)1 << 20);
	return NULL;
}

static void wipe_past_the_end(void *arg)
{
	(void)arg;
	pthread_attr_t at;
	pthread_attr_init(&at);
	CHECK_INT(pthread_attr_setstack(&at, below + 2 * 4096, SMALL), ==, 0);
	pthread_t t;
	CHECK_INT(pthread_create(&t, &at, overflow, NULL), ==, 0);
	pthread_join(t, NULL);
}

int main(void)
{
	skip_if_sanitized_malloc();
	d = domain_create("wipe", DOMAIN_CAPTURE_MALLOC);
	CHECK(d);
	key = domain_malloc(d, LEN + 1);
	CHECK(key);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	for (size_t i = 0; i < LEN; i++)
		key[i] = gen(i);
	key[LEN] = '\0';
	CHECK_OK(domain_exit(d));

	int without = run(0);
	if (without == 0)
		skip("this C library left no copy of the secret on the stack: nothing to wipe");
	fprintf(stderr, "without the call: %d copies on the stack\n", without);
	CHECK_INT(run(1), ==, 0);
	if (!under_valgrind())      /* memcheck's own memory is mapped too */
		CHECK_INT(count_everywhere(), ==, 0);
	CHECK_OK(munmap(stack_lo, STACK));

	/* (valgrind takes the stack overflow for its own error) */
	if (!under_valgrind()) {
		below = mmap(NULL, 2 * 4096 + SMALL, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(below != MAP_FAILED);
		CHECK(mmap(below, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
		           -1, 0) == below);
		CHECK_OK(mprotect(below + 2 * 4096, SMALL, PROT_READ | PROT_WRITE));
		memset(below, 0xaa, 4096);
		CHECK_KILLED_BY(in_child(wipe_past_the_end, NULL, NULL, 0), SIGSEGV);
		for (int i = 0; i < 4096; i++)
			if ((unsigned char)below[i] != 0xaa)
				FAIL("the wipe wrote below the guard page, at byte %d of the page there", i);
	}

	domain_free(key);
	CHECK_OK(domain_destroy(d));
	return 0;
}
