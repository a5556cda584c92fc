/*
 * Per-(thread, domain) thread caches: a cached region never goes to
 * another domain, frees from other threads and thread exits give regions
 * back, and a destroyed domain's caches are never used again, even by
 * threads that kept an entry for it or when its slot is reused.
 */
#include "test.h"

#define JEMALLOC_NO_DEMANGLE
#include <jemalloc/jemalloc.h>
#include <pthread.h>

#define NDOM 12           /* more than a thread keeps caches for */
#define PER  64

static domain_t *dom[NDOM];

static void check_owner(void *p, domain_t *d, size_t n)
{
	CHECK(p);
	CHECK_PTR(domain_of(p), ==, d);
	CHECK_INT(domain_usable_size(p), >=, n);
}

/* Round robin over more domains than cache ways, sizes through the small
 * classes, every block zeroed on calloc and owned by the domain asked. */
static void round_robin(void)
{
	void *p[NDOM][PER];
	for (int round = 0; round < (under_valgrind() ? 2 : 20); round++) {
		for (int i = 0; i < NDOM; i++)
			for (int j = 0; j < PER; j++) {
				size_t n = (size_t)(8 + (j * 24 + round * 8) % 3000);
				p[i][j] = (j & 1) ? domain_calloc(dom[i], 1, n) : domain_malloc(dom[i], n);
				check_owner(p[i][j], dom[i], n);
			}
		for (int i = 0; i < NDOM; i++) {
			CHECK_OK(domain_enter(dom[i], DOMAIN_RDWR));
			for (int j = 0; j < PER; j++) {
				unsigned char *b = p[i][j];
				if (j & 1)
					for (size_t k = 0; k < domain_usable_size(b); k++)
						CHECK_INT(b[k], ==, 0);
				memset(b, 0xA0 + i, domain_usable_size(b));
			}
			CHECK_OK(domain_exit(dom[i]));
		}
		/* Freed in another order than allocated, so that caches fill
		 * with regions of every domain in turn. */
		for (int j = 0; j < PER; j++)
			for (int i = NDOM; i-- > 0;)
				domain_free(p[i][j]);
	}
	for (int i = 0; i < NDOM; i++) {
		struct domain_stats st;
		CHECK_OK(domain_stats(dom[i], &st));
		CHECK_INT(st.allocated, ==, 0);
	}
}

struct handoff {
	domain_t *d;
	void *p[PER];
};

static void *free_them(void *arg)
{
	struct handoff *h = arg;
	for (int j = 0; j < PER; j++)
		domain_free(h->p[j]);
	/* Then allocate: what this thread's cache got must stay in h->d. */
	for (int j = 0; j < PER; j++) {
		h->p[j] = domain_malloc(h->d, 48);
		check_owner(h->p[j], h->d, 48);
	}
	return NULL;
}

static void cross_thread(void)
{
	struct handoff h = { .d = dom[0] };
	for (int j = 0; j < PER; j++)
		h.p[j] = domain_malloc(dom[0], 48);
	pthread_t t;
	CHECK_INT(pthread_create(&t, NULL, free_them, &h), ==, 0);
	CHECK_INT(pthread_join(t, NULL), ==, 0);
	for (int j = 0; j < PER; j++)
		domain_free(h.p[j]);
}

static void *churn_thread(void *arg)
{
	domain_t *d = arg;
	void *p = domain_malloc(d, 32);
	check_owner(p, d, 32);
	domain_free(p);
	return NULL;
}

/* Thread exits give their caches back: far more threads than jemalloc has
 * cache indices, then a new cache still gets a low index.  (Under valgrind,
 * a fiftieth: the exits are exercised, but a leak would not show.) */
static void thread_exits(void)
{
	for (int i = 0; i < vg_scaled(5000); i++) {
		pthread_t t;
		CHECK_INT(pthread_create(&t, NULL, churn_thread, dom[i % NDOM]), ==, 0);
		CHECK_INT(pthread_join(t, NULL), ==, 0);
	}
	unsigned tc;
	size_t sz = sizeof tc;
	CHECK_INT(mallctl("tcache.create", &tc, &sz, NULL, 0), ==, 0);
	CHECK_INT(tc, <, 64);
	CHECK_INT(mallctl("tcache.destroy", NULL, NULL, &tc, sizeof tc), ==, 0);
}

/* Under valgrind (memcheck spends about a millisecond per MiB on every
 * mprotect) a few rounds only. */
#define ROUNDS (under_valgrind() ? 5 : 50)

static pthread_barrier_t step;
static domain_t *volatile current;

/* A thread that keeps cache entries across its domains' destroys. */
static void *long_lived(void *arg)
{
	(void)arg;
	for (int round = 0; round < ROUNDS; round++) {
		pthread_barrier_wait(&step);          /* current is new */
		domain_t *d = current;
		void *p[8];
		for (int j = 0; j < 8; j++) {
			p[j] = domain_malloc(d, 16 + 16 * (size_t)j);
			check_owner(p[j], d, 16 + 16 * (size_t)j);
		}
		for (int j = 0; j < 8; j++)
			domain_free(p[j]);
		pthread_barrier_wait(&step);          /* done with it */
	}
	return NULL;
}

/* Destroy flushes the caches of threads that live on; the slot's next
 * domain never sees a region of the old one. */
static void destroy_under_caches(void)
{
	pthread_t t;
	CHECK_INT(pthread_barrier_init(&step, NULL, 2), ==, 0);
	CHECK_INT(pthread_create(&t, NULL, long_lived, NULL), ==, 0);
	for (int round = 0; round < ROUNDS; round++) {
		domain_t *d = domain_create("short", 0);
		CHECK(d);
		current = d;
		pthread_barrier_wait(&step);
		void *mine = domain_malloc(d, 16);
		check_owner(mine, d, 16);
		domain_free(mine);
		pthread_barrier_wait(&step);
		CHECK_OK(domain_destroy(d));
	}
	CHECK_INT(pthread_join(t, NULL), ==, 0);
	pthread_barrier_destroy(&step);
}

int main(void)
{
	for (int i = 0; i < NDOM; i++) {
		dom[i] = domain_create("tc", 0);
		CHECK(dom[i]);
	}
	round_robin();
	cross_thread();
	thread_exits();
	destroy_under_caches();
	for (int i = 0; i < NDOM; i++)
		CHECK_OK(domain_destroy(dom[i]));
	printf("test_tcache: ok on %s\n", pkalloc_backend());
	return 0;
}
