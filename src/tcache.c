/*
 * Per-(thread, domain) thread caches.
 *
 * jemalloc's automatic thread cache hands out cached regions whatever arena
 * they came from, so domain memory never goes near it.  Instead each thread
 * gets, for each domain it allocates in or frees to, an explicit jemalloc
 * tcache ("tcache.create") used with that domain's arena only: the fast
 * path of a small allocation is then jemalloc's own.  A thread keeps up to
 * TC_WAYS of them; using another domain evicts the oldest.  Freed regions
 * are wiped before they enter a cache (heap.c), so a cache holds only
 * zeroes, and only addresses of domain memory live outside the domain.
 *
 * Lifetimes: a cache is flushed back to its domain and destroyed when its
 * thread drops it (eviction, thread exit) or when its domain is destroyed,
 * whichever comes first.  Both sides hold the domain pinned while they do
 * it, and a domain being destroyed cannot be pinned, so the two never
 * overlap; tc_owner says which era of which domain each cache belongs to,
 * so neither destroys a cache twice, and a thread never uses a cache its
 * domain's destroyer flushed.
 */
#include "internal.h"
#include "enter.h"
#include "tcache.h"

#include <errno.h>

#define TC_WAYS    8
#define TC_MAX     4096     /* jemalloc's limit on explicit tcaches */
#define TC_NONE    UINT32_MAX
#ifndef CACHES_ON
#define CACHES_ON  0    /* see tcache_flags */
#endif

struct tc_entry {
	struct domain *d;
	uint64_t era;           /* see era_of */
	uint32_t tc;            /* jemalloc's tcache index, or TC_NONE */
};

static __thread struct tc_entry tc_tab[TC_WAYS] TLS_FAST;
static __thread unsigned tc_next TLS_FAST;
static __thread unsigned tc_last TLS_FAST;    /* the entry used last */
static __thread int tc_armed;

/* Which caches of d are current: its generation (a destroy bumps it) and
 * its cache epoch (bumped when a destroy flushed them, even one that then
 * failed with EBUSY). */
static uint64_t era_of(struct domain *d)
{
	return (uint64_t)atomic_load_explicit(&d->gen, memory_order_relaxed) << 32 |
	       atomic_load_explicit(&d->tc_epoch, memory_order_relaxed);
}

/* The domain slot + 1 and era owning each tcache; slot1 0: none. */
static struct {
	uint32_t slot1;
	uint64_t era;
} tc_owner[TC_MAX];
static pthread_mutex_t tc_lock = PTHREAD_MUTEX_INITIALIZER;

static int owned_by(unsigned tc, const struct domain *d, uint64_t era)
{
	return tc < TC_MAX && tc_owner[tc].slot1 == domain_slot(d) + 1 && tc_owner[tc].era == era;
}

/* Flush tc to its arena and give the index back; under tc_lock, with a
 * window on the domain (flushing writes its bins). */
static void destroy_locked(unsigned tc)
{
	mallctl("tcache.destroy", NULL, NULL, &tc, sizeof tc);
	tc_owner[tc].slot1 = 0;
	tc_owner[tc].era = 0;
}

static void drop(struct tc_entry *e)
{
	if (e->d && e->tc != TC_NONE) {
		struct window w;
		/* Fails once the domain is being destroyed: its destroyer
		 * flushes the cache. */
		if (window_open(e->d, &w, PIN_SHARE_OK) == 0) {
			pthread_mutex_lock(&tc_lock);
			if (owned_by(e->tc, e->d, e->era))
				destroy_locked(e->tc);
			pthread_mutex_unlock(&tc_lock);
			window_close(&w);
		}
	}
	e->d = NULL;
}

static int flags_of(const struct tc_entry *e)
{
	return e->tc == TC_NONE ? MALLOCX_TCACHE_NONE : MALLOCX_TCACHE(e->tc);
}

static __attribute__((noinline)) int miss(struct domain *d, uint64_t era)
{
	tc_last = tc_next++ % TC_WAYS;
	struct tc_entry *e = &tc_tab[tc_last];
	drop(e);
	if (!tc_armed) {
		/* Flush this thread's caches when it exits. */
		capture_off++;
		pthread_setspecific(cfg->tcache_key, tc_tab);
		capture_off--;
		tc_armed = 1;
	}
	unsigned tc;
	size_t sz = sizeof tc;
	e->d = d;
	e->era = era;
	e->tc = TC_NONE;        /* out of tcaches: no cache for this pair */
	if (mallctl("tcache.create", &tc, &sz, NULL, 0) == 0 && tc < TC_MAX) {
		pthread_mutex_lock(&tc_lock);
		tc_owner[tc].slot1 = domain_slot(d) + 1;
		tc_owner[tc].era = era;
		pthread_mutex_unlock(&tc_lock);
		e->tc = tc;
	}
	return flags_of(e);
}

int tcache_flags(struct domain *d)
{
	/* Off for now: with the caches on, test_stress found a domain whose
	 * pages stayed readable at a pause (about 1 run in 20 on the mprotect
	 * backend); until that is understood every domain allocation and
	 * free bypasses thread caches, as before. */
	if (!CACHES_ON)
		return MALLOCX_TCACHE_NONE;
	uint64_t era = era_of(d);
	struct tc_entry *e = &tc_tab[tc_last];
	if (LIKELY(e->d == d && e->era == era))
		return flags_of(e);
	for (unsigned i = 0; i < TC_WAYS; i++)
		if (tc_tab[i].d == d && tc_tab[i].era == era) {
			tc_last = i;
			return flags_of(&tc_tab[i]);
		}
	return miss(d, era);
}

void tcache_thread_exit(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < TC_WAYS; i++)
		drop(&tc_tab[i]);
	tc_armed = 0;
}

void tcache_domain_destroy(struct domain *d)
{
	uint64_t era = era_of(d);
	struct window w;
	/* Its caches must go back before the arena does: no way round. */
	if (window_open(d, &w, PIN_ANY_STATE | PIN_SHARE_OK) != 0)
		fatal("mprotect", d->lo, "cannot open a domain");
	pthread_mutex_lock(&tc_lock);
	for (unsigned tc = 0; tc < TC_MAX; tc++)
		if (owned_by(tc, d, era))
			destroy_locked(tc);
	/* Entries of threads still naming these caches no longer match. */
	atomic_fetch_add_explicit(&d->tc_epoch, 1, memory_order_relaxed);
	pthread_mutex_unlock(&tc_lock);
	window_close(&w);
}

void tcache_prefork(void)
{
	pthread_mutex_lock(&tc_lock);
}

void tcache_postfork(int child)
{
	if (child)
		pthread_mutex_init(&tc_lock, NULL);
	else
		pthread_mutex_unlock(&tc_lock);
}
