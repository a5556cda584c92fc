/*
 * Threads: on pku an enter opens a domain for the calling thread only, so
 * another thread faults while the first is inside; on mprotect access is
 * process-wide (its documented promise).  A thread that exits inside a
 * domain leaves it.  A bounded stress run mixes threads allocating,
 * filling, checking and freeing across domains, including frees from other
 * threads, and checks every secret and every isolation property it can.
 */
#include "test.h"

#include <pthread.h>
#include <threads.h>

static domain_t *dom_a;
static char *sec_a;
static int key_a = -1;

static void *probe_from_other_thread(void *arg)
{
	int main_inside = *(int *)arg;
	if (on_pku() || !main_inside) {
		CHECK_DENIED(sec_a, 0);
		CHECK_DENIED(sec_a, 1);
		if (on_pku())
			CHECK_INT(probe(sec_a, 0).pkey, ==, key_a);
	} else {
		/* mprotect backend: page permissions are the process's. */
		CHECK_ALLOWED(sec_a, 0);
	}
	/* Entering gives this thread access, and exiting takes it away. */
	CHECK_OK(domain_enter(dom_a, DOMAIN_RDONLY));
	CHECK(strcmp(sec_a, "shared secret") == 0);
	CHECK_OK(domain_exit(dom_a));
	if (on_pku() || !main_inside)
		CHECK_DENIED(sec_a, 0);
	return NULL;
}

static int c11_probe(void *arg)
{
	(void)arg;
	if (on_pku())
		CHECK_DENIED(sec_a, 0);     /* not inherited from the creator */
	else
		CHECK_ALLOWED(sec_a, 0);    /* process-wide */
	return 7;
}

/* A destroy that fails with EBUSY must change nothing others can see. */
enum { RACE_ROUNDS = 3000 };
static domain_t *race_d;
static _Atomic int race_stop;

static void *race_destroyer(void *arg)
{
	(void)arg;
	for (int i = 0; i < vg_scaled(RACE_ROUNDS); i++) {
		errno = 0;
		if (domain_destroy(race_d) != -1 || errno != EBUSY)
			FAIL("domain_destroy of a domain in use: %s", strerror(errno));
	}
	return NULL;
}

static void *race_worker(void *arg)
{
	(void)arg;
	/* Bounded under valgrind, whose scheduler can starve the destroyer. */
	for (int n = 0; !race_stop && (!under_valgrind() || n < 60); n++) {
		CHECK_OK(domain_enter(race_d, DOMAIN_RDWR));
		char *p = domain_malloc(race_d, 48);
		CHECK(p && domain_of(p) == race_d);
		strcpy(p, "worker");
		CHECK_OK(domain_exit(race_d));
		domain_free(p);
		p = domain_calloc(race_d, 2, 8);
		CHECK(p);
		domain_free(p);
	}
	return NULL;
}

static void *exit_while_inside(void *arg)
{
	CHECK_OK(domain_enter(arg, DOMAIN_RDWR));
	CHECK_OK(domain_enter(arg, DOMAIN_RDONLY));
	return NULL;   /* never exits the domain */
}

/* The stress run. */
enum { THREADS = 8, DOMAINS = 4, SLOTS = 256, ROUNDS = 4000 };

struct block {
	unsigned char *p;
	size_t n;
	unsigned seed;
};

static domain_t *doms[DOMAINS];
static struct block pool[DOMAINS][SLOTS];
static pthread_mutex_t pool_lock[DOMAINS];
static _Atomic unsigned long checked_blocks, isolation_checks;

static void fill(struct block *b)
{
	for (size_t i = 0; i < b->n; i++)
		b->p[i] = (unsigned char)(b->seed * 7 + i);
}

static void verify(const struct block *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->p[i] != (unsigned char)(b->seed * 7 + i))
			FAIL("block %p (%zu bytes, seed %u) corrupted at byte %zu", (void *)b->p,
			     b->n, b->seed, i);
	checked_blocks++;
}

static void *stress(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
	for (int round = 0; round < vg_scaled(ROUNDS); round++) {
		int di = (int)(rand_r(&seed) % DOMAINS);
		int si = (int)(rand_r(&seed) % SLOTS);
		domain_t *d = doms[di];
		pthread_mutex_lock(&pool_lock[di]);
		struct block *b = &pool[di][si];
		CHECK_OK(domain_enter(d, DOMAIN_RDWR));
		if (b->p) {
			verify(b);
			switch (rand_r(&seed) % 3) {
			case 0: /* free, possibly a block another thread made */
				domain_free(b->p);
				b->p = NULL;
				break;
			case 1: { /* resize and refill */
				size_t n = 1 + rand_r(&seed) % 6000;
				unsigned char *q = domain_realloc(d, b->p, n);
				CHECK(q && domain_of(q) == d);
				b->p = q;
				b->n = n;
				b->seed = (unsigned)rand_r(&seed);
				fill(b);
				break;
			}
			default:
				break;
			}
		} else {
			b->n = 1 + rand_r(&seed) % 3000;
			b->p = domain_malloc(d, b->n);
			CHECK(b->p && domain_of(b->p) == d);
			b->seed = (unsigned)rand_r(&seed);
			fill(b);
		}
		/* While inside d, another domain this thread is not inside
		 * stays closed to it (pku: per thread). */
		if (on_pku()) {
			int oi = (di + 1) % DOMAINS;
			/* trylock: waiting while holding our pool could deadlock */
			if (pthread_mutex_trylock(&pool_lock[oi]) == 0) {
			for (int k = 0; k < SLOTS; k++)
				if (pool[oi][k].p) {
					CHECK_DENIED(pool[oi][k].p, 0);
					isolation_checks++;
					break;
				}
			pthread_mutex_unlock(&pool_lock[oi]);
			}
		}
		CHECK_OK(domain_exit(d));
		pthread_mutex_unlock(&pool_lock[di]);

		/* Allocation from outside, freed at once. */
		if (round % 16 == 0) {
			void *t = domain_calloc(doms[(di + 2) % DOMAINS], 3, 40);
			CHECK(t);
			domain_free(t);
		}
		/* Plain malloc never lands in a domain. */
		void *m = malloc(64);
		CHECK(m && domain_of(m) == NULL);
		free(m);
	}
	return NULL;
}

int main(void)
{
	dom_a = domain_create("threads", 0);
	CHECK(dom_a);
	sec_a = domain_malloc(dom_a, 64);
	CHECK(sec_a);
	CHECK_OK(domain_enter(dom_a, DOMAIN_RDWR));
	strcpy(sec_a, "shared secret");
	CHECK_OK(domain_exit(dom_a));
	if (on_pku())
		key_a = probe(sec_a, 0).pkey;

	pthread_t t;
	int inside = 1;
	CHECK_OK(domain_enter(dom_a, DOMAIN_RDWR));
	pthread_create(&t, NULL, probe_from_other_thread, &inside);
	pthread_join(t, NULL);
	CHECK_ALLOWED(sec_a, 1);           /* the other thread's exit left ours */
	CHECK_OK(domain_exit(dom_a));
	inside = 0;
	pthread_create(&t, NULL, probe_from_other_thread, &inside);
	pthread_join(t, NULL);

	/* C11 threads start outside every domain too.  (ThreadSanitizer does
	 * not intercept thrd_create: its threads crash its runtime.) */
	if (!TEST_TSAN) {
		CHECK_OK(domain_enter(dom_a, DOMAIN_RDWR));
		thrd_t ct;
		int cres = 0;
		CHECK_INT(thrd_create(&ct, c11_probe, NULL), ==, thrd_success);
		CHECK_INT(thrd_join(ct, &cres), ==, thrd_success);
		CHECK_INT(cres, ==, 7);
		CHECK_OK(domain_exit(dom_a));
	}

	/* Destroy racing with a thread inside and a thread at work. */
	race_d = domain_create("race", 0);
	CHECK(race_d);
	CHECK_OK(domain_enter(race_d, DOMAIN_RDONLY));      /* this thread stays inside */
	pthread_t rd, rw;
	pthread_create(&rw, NULL, race_worker, NULL);
	pthread_create(&rd, NULL, race_destroyer, NULL);
	pthread_join(rd, NULL);
	race_stop = 1;
	pthread_join(rw, NULL);
	CHECK_OK(domain_exit(race_d));
	CHECK_OK(domain_destroy(race_d));

	/* A thread that exits inside is taken out: destroy can go on. */
	domain_t *x = domain_create("left-open", 0);
	CHECK(x);
	char *px = domain_malloc(x, 16);
	pthread_create(&t, NULL, exit_while_inside, x);
	pthread_join(t, NULL);
	CHECK_DENIED(px, 0);
	domain_free(px);
	CHECK_OK(domain_destroy(x));

	for (int i = 0; i < DOMAINS; i++) {
		doms[i] = domain_create("stress", 0);
		CHECK(doms[i]);
		pthread_mutex_init(&pool_lock[i], NULL);
	}
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, stress, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < DOMAINS; i++) {
		CHECK_OK(domain_enter(doms[i], DOMAIN_RDWR));
		for (int k = 0; k < SLOTS; k++)
			if (pool[i][k].p) {
				verify(&pool[i][k]);
				domain_free(pool[i][k].p);
			}
		CHECK_OK(domain_exit(doms[i]));
		CHECK_OK(domain_destroy(doms[i]));
	}
	fprintf(stderr, "stress: %d threads x %d rounds, %lu blocks checked, %lu isolation checks\n",
	        THREADS, vg_scaled(ROUNDS), (unsigned long)checked_blocks,
	        (unsigned long)isolation_checks);
	CHECK_INT(checked_blocks, >, THREADS * vg_scaled(ROUNDS) / 4);
	if (on_pku())
		CHECK_INT(isolation_checks, >, THREADS * vg_scaled(ROUNDS) / 10);
	CHECK_OK(domain_destroy(dom_a));
	return 0;
}
