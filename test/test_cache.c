/*
 * Per-(thread, domain) caches (src/cache.c): a cached block never goes to
 * another domain; frees from other threads wipe at once; a cache that its
 * thread lets go (exit, eviction) is emptied by the next call on its
 * domain, never by opening the domain at another moment (an idle domain's
 * secret stays unreadable by a thread inside nothing meanwhile, on both
 * backends); a stray write to the thread's cache pointer stops the process;
 * a double free of a cached block is caught; fork and destroy leave
 * consistent caches; allocated and cached bytes add up.
 */
#include "test.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

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

/* Enough calls to make a cache, which then holds blocks. */
static void *churn_thread(void *arg)
{
	domain_t *d = arg;
	for (int k = 0; k < 8; k++) {
		void *p = domain_malloc(d, 32);
		check_owner(p, d, 32);
		domain_free(p);
	}
	return NULL;
}

/* Thread exits give their caches back: far more threads than a domain has
 * cache slots, each making a cache; the next call on the domain empties the
 * orphans, and nothing is lost.  (Under valgrind, a fiftieth.) */
static void thread_exits(void)
{
	domain_t *fresh[3];
	for (int i = 0; i < 3; i++)
		CHECK(fresh[i] = domain_create("exits", 0));
	for (int i = 0; i < vg_scaled(2000); i++) {
		pthread_t t;
		CHECK_INT(pthread_create(&t, NULL, churn_thread, fresh[i % 3]), ==, 0);
		CHECK_INT(pthread_join(t, NULL), ==, 0);
	}
	for (int i = 0; i < 3; i++) {
		struct domain_stats st;
		CHECK_OK(domain_stats(fresh[i], &st));
		CHECK_INT(st.allocated, ==, 0);
		CHECK_INT(st.cached, >, 0);              /* the last thread's orphan */
		/* A call on it (not a cached size: this thread keeps no cache
		 * of it) empties the orphans. */
		void *p = domain_malloc(fresh[i], 5000);
		CHECK(p);
		domain_free(p);
		CHECK_OK(domain_stats(fresh[i], &st));
		CHECK_INT(st.allocated, ==, 0);
		CHECK_INT(st.cached, ==, 0);
		CHECK_OK(domain_destroy(fresh[i]));
	}
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

/* ---- idle domains stay closed while caches are let go ------------------- */

static domain_t *idle;
static char *idle_secret;
static domain_t *others[NDOM];
static atomic_int done_with_idle, worker_done;
static int mode;                 /* 0: the worker exits; 1: it evicts */

/* Allocate and free in the idle domain until this thread caches blocks of
 * it; inside it or through windows, by turns. */
static void use_idle(int inside)
{
	void *p[8];
	if (inside)
		CHECK_OK(domain_enter(idle, DOMAIN_RDWR));
	for (int k = 0; k < 8; k++)
		p[k] = domain_malloc(idle, 16 + 16 * (size_t)(k % 4));
	for (int k = 0; k < 8; k++)
		domain_free(p[k]);
	if (inside)
		CHECK_OK(domain_exit(idle));
}

static void *idle_worker(void *arg)
{
	use_idle((int)(intptr_t)arg);
	atomic_store(&done_with_idle, 1);
	if (mode == 1) {
		/* More domains than a thread keeps caches of: the idle
		 * domain's cache is evicted, and evicted again. */
		for (int round = 0; round < (under_valgrind() ? 3 : 60); round++)
			for (int i = 0; i < NDOM; i++) {
				void *q[6];
				for (int k = 0; k < 6; k++)
					q[k] = domain_malloc(others[i], 32);
				for (int k = 0; k < 6; k++)
					domain_free(q[k]);
			}
	}
	atomic_store(&worker_done, 1);
	return NULL;
}

/* The main thread, inside nothing, reads the idle domain's secret while a
 * worker lets its cache of that domain go: every read must fault. */
static unsigned long idle_probes(int m, int workers)
{
	unsigned long probes = 0;
	mode = m;
	for (int n = 0; n < workers; n++) {
		atomic_store(&done_with_idle, 0);
		atomic_store(&worker_done, 0);
		pthread_t t;
		CHECK_INT(pthread_create(&t, NULL, idle_worker, (void *)(intptr_t)(n & 1)), ==, 0);
		while (!atomic_load(&done_with_idle))
			sched_yield();
		/* From here until it is joined the worker makes no call on
		 * the idle domain: nothing may open it. */
		for (;;) {
			int last = atomic_load(&worker_done);
			CHECK_DENIED(idle_secret, 0);
			probes++;
			if (last && pthread_tryjoin_np(t, NULL) == 0)
				break;
		}
	}
	return probes;
}

static void idle_stays_closed(void)
{
	idle = domain_create("idle", 0);
	CHECK(idle);
	idle_secret = domain_malloc(idle, 64);
	CHECK_OK(domain_enter(idle, DOMAIN_RDWR));
	memcpy(idle_secret, "the idle domain's secret", 25);
	CHECK_OK(domain_exit(idle));
	for (int i = 0; i < NDOM; i++)
		others[i] = dom[i];
	int exits = under_valgrind() ? 20 : TEST_TSAN ? 300 : 2000;
	unsigned long at_exit = idle_probes(0, exits);
	unsigned long at_evict = idle_probes(1, under_valgrind() ? 2 : 20);
	struct domain_stats st;
	CHECK_OK(domain_stats(idle, &st));
	CHECK_INT(st.cached, >, 0);         /* the orphans wait for a call on it */
	void *p = domain_malloc(idle, 5000);
	domain_free(p);
	CHECK_OK(domain_stats(idle, &st));
	CHECK_INT(st.cached, ==, 0);
	CHECK_INT(st.allocated, ==, 64);
	CHECK_OK(domain_enter(idle, DOMAIN_RDONLY));
	CHECK(strcmp(idle_secret, "the idle domain's secret") == 0);
	CHECK_OK(domain_exit(idle));
	domain_free(idle_secret);
	CHECK_OK(domain_destroy(idle));
	printf("idle domain: %lu probes during thread exits, %lu during evictions, none read it\n",
	       at_exit, at_evict);
	if (!under_valgrind() && !TEST_TSAN)
		CHECK_INT(at_exit + at_evict, >=, 20000);
}

/* ---- pkalloc calls from destructors, to the last round -------------------- */

static pthread_key_t late_key;
static domain_t *late_dom;
static void *late_block[64];

/* Asks to run again until the C library's last round, and only then frees
 * a block of the domain: the thread's first pkalloc call. */
static void late_destructor(void *arg)
{
	uintptr_t round = (uintptr_t)arg & 0xff, i = (uintptr_t)arg >> 8;
	if (round < PTHREAD_DESTRUCTOR_ITERATIONS) {
		pthread_setspecific(late_key, (void *)(i << 8 | (round + 1)));
		return;
	}
	domain_free(late_block[i]);
}

static void *late_thread(void *arg)
{
	pthread_setspecific(late_key, (void *)((uintptr_t)arg << 8 | 1));
	return NULL;
}

static void *user_thread(void *arg)
{
	(void)arg;
	domain_free(domain_malloc(late_dom, 32));
	return NULL;
}

static void late_run(void *arg)
{
	(void)arg;
	for (int i = 0; i < 64; i++) {
		pthread_t t;
		CHECK_INT(pthread_create(&t, NULL, i & 1 ? user_thread : late_thread,
		                         (void *)(uintptr_t)i), ==, 0);
		CHECK_INT(pthread_join(t, NULL), ==, 0);   /* the next one reuses its stack */
	}
	struct domain_stats st;
	alarm(10);
	CHECK_OK(domain_stats(late_dom, &st));
	_exit(0);
}

/* A destructor whose first pkalloc call comes in the last round leaves
 * nothing listed behind: the next thread on the same stack, and
 * statistics, still work (they looped once). */
static void late_destructors(void)
{
	CHECK_INT(pthread_key_create(&late_key, late_destructor), ==, 0);
	CHECK(late_dom = domain_create("late", 0));
	for (int i = 0; i < 64; i++)
		CHECK(late_block[i] = domain_malloc(late_dom, 32));
	char err[256];
	int st = in_child(late_run, NULL, err, sizeof err);
	if (!WIFEXITED(st))
		fprintf(stderr, "%s", err);
	CHECK_EXITED_OK(st);
	for (int i = 1; i < 64; i += 2)
		domain_free(late_block[i]);
	for (int i = 0; i < 64; i += 2)
		domain_free(late_block[i]);
	CHECK_OK(domain_destroy(late_dom));
	pthread_key_delete(late_key);
}

/* ---- remote frees wipe at once ------------------------------------------- */

static void *free_remote(void *arg)
{
	unsigned char *p = arg;
	domain_t *d = domain_of(p);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	for (int k = 0; k < 8; k++) {      /* make this thread's cache first */
		void *q = domain_malloc(d, 48);
		domain_free(q);
	}
	domain_free(p);
	/* The freed block, read back from inside: wiped but for the first
	 * word (the cache's free key). */
	for (int k = 8; k < 48; k++)
		CHECK_INT(p[k], ==, 0);
	CHECK_OK(domain_exit(d));
	return NULL;
}

static void remote_free(void)
{
	unsigned char *p = domain_malloc(dom[1], 48);
	CHECK_OK(domain_enter(dom[1], DOMAIN_RDWR));
	memset(p, 0xA5, 48);
	CHECK_OK(domain_exit(dom[1]));
	pthread_t t;
	CHECK_INT(pthread_create(&t, NULL, free_remote, p), ==, 0);
	CHECK_INT(pthread_join(t, NULL), ==, 0);
}

/* ---- stray writes and double frees --------------------------------------- */

/* This thread's static TLS lies just below its thread pointer. */
static uint64_t *tls_word_into(domain_t *d, int nth)
{
	char *tp = __builtin_thread_pointer();
	FILE *f = fopen("/proc/self/maps", "r");
	CHECK(f);
	char line[512];
	uintptr_t lo = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a <= (uintptr_t)tp && (uintptr_t)tp < b)
			lo = a;
	}
	fclose(f);
	CHECK(lo);
	uintptr_t from = (uintptr_t)tp - 65536 > lo ? (uintptr_t)tp - 65536 : lo;
	/* jemalloc's TLS keeps keys of its radix tree: the reservation's
	 * base, in the guard; a cache is past it. */
	for (uint64_t *w = (uint64_t *)tp; w-- > (uint64_t *)from;)
		if (domain_of((void *)*w) == d && (*w & (PKALLOC_RESERVATION - 1)) >= PKALLOC_GUARD &&
		    nth-- == 0)
			return w;
	return NULL;
}

static void overwrite_cache_pointer(void *arg)
{
	memset(&probe_seen, 0, sizeof probe_seen);   /* a fault address of this test's */
	domain_t *d = domain_create("stray", 0);
	for (int k = 0; k < 8; k++)
		domain_free(domain_malloc(d, 32));
	/* The only word of this thread's TLS that points into the domain's
	 * memory is its cache pointer. */
	uint64_t *w = tls_word_into(d, 0);
	if (!w || tls_word_into(d, 1)) {
		fprintf(stderr, "test: no single cache pointer in TLS\n");
		_exit(3);
	}
	static char plain[8192];
	*w = arg ? (uint64_t)(uintptr_t)plain : *w + 64;
	void *p = domain_malloc(d, 32);
	fprintf(stderr, "test: domain_malloc returned %p\n", p);
	_exit(4);
}

static void *free_it(void *p)
{
	domain_free(p);
	return NULL;
}

static void double_free_cached(void *arg)
{
	domain_t *d = domain_create("twice", 0);
	for (int k = 0; k < 8; k++)
		domain_free(domain_malloc(d, 32));
	void *p = domain_malloc(d, 32);
	domain_free(p);
	if (arg) {
		/* The second free from another thread, whose cache is not
		 * where the block sits. */
		pthread_t t;
		pthread_create(&t, NULL, free_it, p);
		pthread_join(t, NULL);
	} else {
		domain_free(p);
	}
	_exit(4);
}

static void stray_writes(void)
{
	char err[512];
	for (int plain = 0; plain < 2; plain++) {
		int st = in_child(overwrite_cache_pointer, plain ? (void *)1 : NULL, err, sizeof err);
		if (!WIFSIGNALED(st))
			fprintf(stderr, "child said: %s", err);
		CHECK_KILLED_BY(st, SIGABRT);
		CHECK(strstr(err, "pkalloc: domain cache(0x") != NULL);
		CHECK(strstr(err, "a thread's cache pointer was overwritten") != NULL);
	}
	for (int other = 0; other < 2; other++) {
		int st = in_child(double_free_cached, other ? (void *)1 : NULL, err, sizeof err);
		CHECK_KILLED_BY(st, SIGABRT);
		CHECK(strstr(err, "pkalloc: domain_free(0x") != NULL);
		CHECK(strstr(err, "freed already") != NULL);
	}
}

/* ---- fork ------------------------------------------------------------------ */

static void *cache_and_wait(void *arg)
{
	domain_t *d = arg;
	for (int k = 0; k < 8; k++)
		domain_free(domain_malloc(d, 64));
	pthread_barrier_wait(&step);       /* cached */
	pthread_barrier_wait(&step);       /* forked */
	return NULL;
}

static void fork_caches(void)
{
	domain_t *d = dom[2];
	CHECK_INT(pthread_barrier_init(&step, NULL, 2), ==, 0);
	pthread_t t;
	CHECK_INT(pthread_create(&t, NULL, cache_and_wait, d), ==, 0);
	for (int k = 0; k < 8; k++)
		domain_free(domain_malloc(d, 64));
	void *keep = domain_malloc(d, 64);
	pthread_barrier_wait(&step);
	pid_t pid = fork();
	if (pid == 0) {
		/* This thread's cache goes on; the other thread's is an orphan,
		 * emptied by the next call here. */
		struct domain_stats st;
		if (domain_stats(d, &st) != 0 || st.cached == 0)
			_exit(10);
		for (int k = 0; k < 100; k++)
			domain_free(domain_malloc(d, 64));
		domain_free(keep);
		if (domain_stats(d, &st) != 0 || st.allocated != 0)
			_exit(11);
		_exit(0);
	}
	int status;
	CHECK_INT(waitpid(pid, &status, 0), ==, pid);
	CHECK_EXITED_OK(status);
	pthread_barrier_wait(&step);
	CHECK_INT(pthread_join(t, NULL), ==, 0);
	pthread_barrier_destroy(&step);
	domain_free(keep);
	struct domain_stats st;
	CHECK_OK(domain_stats(d, &st));
	CHECK_INT(st.allocated, ==, 0);
}

int main(void)
{
	for (int i = 0; i < NDOM; i++) {
		dom[i] = domain_create("tc", 0);
		CHECK(dom[i]);
	}
	round_robin();
	cross_thread();
	remote_free();
	thread_exits();
	/* Threads in a fork child: ThreadSanitizer's runtime cannot. */
	if (!TEST_TSAN)
		late_destructors();
	destroy_under_caches();
	fork_caches();
	idle_stays_closed();
	/* The sanitizers' runtimes keep words of their own in static TLS,
	 * among them copies of domain addresses: the search for the cache
	 * pointer needs a plain build (native and in the guest). */
	if (!TEST_SANITIZER_MALLOC)
		stray_writes();
	else
		printf("test_cache: stray writes to the cache pointer not tried under a sanitizer\n");
	for (int i = 0; i < NDOM; i++)
		CHECK_OK(domain_destroy(dom[i]));
	printf("test_cache: ok on %s\n", pkalloc_backend());
	return 0;
}
