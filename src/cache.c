/*
 * Per-(thread, domain) caches of small blocks: pkalloc's fast path.
 *
 * The invariant this file keeps (pkalloc(7), "When a domain is open"): a
 * domain's memory is opened only by domain_enter, for the calling thread;
 * for the length of a pkalloc call on that domain, for the calling thread;
 * and across fork and domain_destroy.  Never by a call on another domain,
 * at thread exit, or by any deferred work.  So:
 *
 * - A cache lives inside its domain (jemalloc memory of the domain's own
 *   arena): its counts and its stacks of free blocks, held as offsets from
 *   the domain's base, so that no entry can ever name memory outside the
 *   domain.  Outside the domain it is as unreachable as the secrets.  The
 *   thread keeps only the cache's address in TLS, checked on every use
 *   against the domain's range, a check word mixed with a secret, and its
 *   owner: a stray write there stops the process with a pkalloc: line.
 * - Every cache operation runs inside the window of the pkalloc call on
 *   that domain that needs it; refills and flushes go to the arena in
 *   batches there.
 * - A cache that must go (its thread exits, or needs the way for another
 *   domain) is not emptied then, which would open its domain at a moment
 *   the program did not choose: it becomes an orphan of its domain, marked
 *   in plain memory only, and the next call on that domain, from any
 *   thread, empties it inside its own window; domain_destroy empties all.
 *
 * Bounds: a thread keeps caches of at most WAYS domains; a domain has at
 * most CACHE_SLOTS caches, orphans included (threads past that use the
 * arena); a cache holds at most class_cap blocks of each class, about
 * 64 KiB in all.  A thread makes a cache of a domain only at its
 * CACHE_AFTER-th call on it, so a domain holding a few secrets costs no
 * page for one.
 *
 * The hot paths take no lock and make no atomic read-modify-write:
 * - Blocks in a cache keep their start bits (pagerec.h): bits change only
 *   when blocks move between a cache and the arena, per block of a batch.
 * - A double free of a cached block is caught by a per-process key the
 *   block holds while cached, confirmed by a search of the domain's caches.
 *   Two frees of one block racing on two threads can both read the block
 *   before either writes the key: catching those would take an atomic
 *   exchange on every free, which this path does without (pkalloc(7)).
 * - The domain's byte counts move per batch; per call, the thread adds to
 *   its own count (one writer, plain stores), which statistics add up.
 */
#include "internal.h"
#include "protect.h"
#include "enter.h"
#include "pagerec.h"
#include "cache.h"
#include "secretmem.h"
#include "metamap.h"
#include "reserve.h"
#include "settings.h"
#include "fatal.h"
#include "registry.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/random.h>

#define WAYS        8     /* domains a thread keeps caches of */
#define CACHE_CAP   32    /* most blocks of one class in a cache */
#define CACHE_AFTER 4     /* calls of a thread on a domain before it has a cache */
#define CAP_BYTES   4096  /* a class keeps about this many bytes, CACHE_CAP at most */
#define NO_SLOT     CACHE_SLOTS

_Static_assert(CLASSES_MAX < 256 && CACHE_SLOTS <= 64, "layout");

/* The stores and loads that another thread's search for a double free may
 * read meanwhile: plain moves, but not a data race. */
#define GET(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define PUT(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* Inside the domain. */
struct cache {
	uint64_t check;                 /* check_of(this, slot, gen, owner) */
	uintptr_t owner;                /* the owning thread's table, or 0 */
	uint32_t n[CLASSES_MAX + 1];
	uint32_t off[CLASSES_MAX + 1][CACHE_CAP];   /* from d->lo; oldest first */
};

/* In the thread's TLS: one domain it keeps a cache of. */
struct way {
	struct domain *d;               /* NULL: free way */
	uint32_t gen;                   /* d's generation when taken */
	unsigned slot;                  /* NO_SLOT: no cache (yet) */
	struct cache *c;
	uint64_t check;                 /* what c->check must say */
	unsigned calls;                 /* calls on d before a cache is made */
	long unsettled;                 /* bytes handed out less taken back */
};

enum { TABLE_NEW = 0, TABLE_LISTED, TABLE_EXITED };

struct table {
	struct way w[WAYS];
	unsigned last, next;
	int state;
	struct table *link;             /* the listed tables */
};

static __thread struct table tls TLS_FAST;

/* Tables of live threads, for statistics and fork.  Lock order: registry
 * lock, then a domain's cache lock, then this. */
static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;
static struct table *tables;

/* ---- classes ------------------------------------------------------------- */

void pk_cache_classes_init(void)
{
	struct config *c = pk_settings_edit();     /* writable during init */
	unsigned n = 0;
	size_t last = 0;
	for (size_t size = 1; size <= CACHE_MAX; size++) {
		size_t cls_size = nallocx(size, 0);
		if (cls_size != last) {
			if (cls_size > CACHE_MAX || n == CLASSES_MAX)
				break;
			last = cls_size;
			n++;
			c->class_size[n] = (unsigned short)cls_size;
			size_t cap = CAP_BYTES / cls_size;
			c->class_cap[n] = (unsigned char)(cap < 4 ? 4 : cap > CACHE_CAP ? CACHE_CAP : cap);
		}
		if ((size & 7) == 0 || size == 1)
			c->class_of[(size + 7) >> 3] = (unsigned char)n;
	}
	c->class_of[0] = c->class_of[1];
	c->nclasses = n;
	uint64_t r[2] = { 0, 0 };
	if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
		/* Early boot: ASLR gives what the kernel could not. */
		r[0] ^= (uintptr_t)&tls ^ ((uint64_t)(uintptr_t)pk_cache_classes_init << 17);
		r[1] ^= (uintptr_t)&r ^ ((uint64_t)(uintptr_t)&tables << 23);
	}
	c->cache_secret = r[0];
	c->free_key = r[1] | 1;          /* never 0, what a wiped block holds */
}

/* ---- the domain's cache lock --------------------------------------------- */

static void spin_lock(struct domain *d)
{
	unsigned expect = 0;
	while (!atomic_compare_exchange_weak_explicit(&d->cache_lock, &expect, 1,
	                                              memory_order_acquire, memory_order_relaxed)) {
		expect = 0;
		sched_yield();
	}
}

/* A spin lock, held for short stretches with every signal off (a handler
 * of this thread may call into pkalloc). */
static void cache_lock(struct domain *d, sigset_t *old)
{
	pk_prot_signals_off(old);
	spin_lock(d);
}

static void cache_unlock(struct domain *d, const sigset_t *old)
{
	atomic_store_explicit(&d->cache_lock, 0, memory_order_release);
	pk_prot_signals_on(old);
}

/* ---- caches ---------------------------------------------------------------- */

/* Which cache, slot, domain generation and owning thread: a cache's own
 * check word is this, mixed with a secret no stray write can know. */
static uint64_t check_of(const struct cache *c, unsigned slot, uint32_t gen, uintptr_t owner)
{
	return pk_cfg->cache_secret ^ (uintptr_t)c ^ (owner << 16) ^ ((uint64_t)gen << 40 | slot);
}

/* The cache a way names, checked: never memory outside its domain, and
 * only the cache this thread was given. */
static inline struct cache *checked(struct domain *d, const struct way *w)
{
	struct cache *c = w->c;
	if (UNLIKELY(!reserve_holds(d, c, sizeof *c) || c->check != w->check))
		pk_fatal("domain cache", c, 0, "a thread's cache pointer was overwritten");
	return c;
}

/* An orphan's or a slot's cache, found from plain memory: checked too (by
 * the owner it names itself, inside the domain). */
static struct cache *slot_cache(struct domain *d, unsigned s)
{
	if (!d->cache_at[s])
		return NULL;
	struct cache *c = (struct cache *)(d->lo + d->cache_at[s]);
	if (!reserve_holds(d, c, sizeof *c) ||
	    c->check != check_of(c, s, atomic_load_explicit(&d->gen, memory_order_relaxed), c->owner))
		pk_fatal("domain cache", c, 0, "a domain's list of caches was overwritten");
	return c;
}

/* Back to the arena: the k oldest blocks of class cls.  The bin is
 * shortened first, so that a fork meanwhile leaves the child a cache that
 * holds only blocks it still owns. */
static __attribute__((noinline)) void flush(struct domain *d, struct cache *c, unsigned cls, unsigned k)
{
	uint32_t out[CACHE_CAP];
	unsigned n = GET(c->n[cls]);
	if (n > pk_cfg->class_cap[cls])
		pk_fatal("domain cache", c, 0, "a thread's cache of the domain is corrupted");
	if (k > n)
		k = n;
	memcpy(out, c->off[cls], k * sizeof out[0]);
	for (unsigned i = k; i < n; i++)
		PUT(c->off[cls][i - k], GET(c->off[cls][i]));
	PUT(c->n[cls], n - k);
	size_t size = pk_cfg->class_size[cls];
	int flags = ARENA_FLAGS(d);
	pk_metamap_depth++;                 /* jemalloc may map metadata for d */
	for (unsigned i = 0; i < k; i++) {
		uint64_t *p = (uint64_t *)(d->lo + out[i]);
		if (!reserve_holds(d, p, size) || !rec_clear(d, p))
			pk_fatal("domain cache", p, 0, "a cached block was not allocated");
		*p = 0;                      /* the free key: the block is all zero now */
		sdallocx(p, size, flags);
	}
	pk_metamap_depth--;
	atomic_fetch_sub_explicit(&d->cached, k * size, memory_order_relaxed);
}

/* From the arena: half a bin of class cls; how many came. */
static __attribute__((noinline)) unsigned refill(struct domain *d, struct cache *c, unsigned cls)
{
	size_t size = pk_cfg->class_size[cls];
	unsigned want = pk_cfg->class_cap[cls] / 2, got = 0;
	uint32_t in[CACHE_CAP];
	int flags = ARENA_FLAGS(d);
	pk_metamap_depth++;
	while (got < want) {
		char *p = mallocx(size, flags);
		if (!p)
			break;
		if (!reserve_holds(d, p, size)) {      /* not d's (reserve_holds) */
			dallocx(p, MALLOCX_TCACHE_NONE);
			break;
		}
		if (!rec_mark(d, p))
			pk_fatal("domain heap", p, 0, "jemalloc gave a block that is allocated already");
		rec_set_class(d, p, cls);
		in[got++] = (uint32_t)(p - d->lo);
	}
	pk_metamap_depth--;
	atomic_fetch_add_explicit(&d->cached, got * size, memory_order_relaxed);
	/* Lowest addresses last: handed out first. */
	for (unsigned i = 0; i < got; i++)
		PUT(c->off[cls][i], in[got - 1 - i]);
	PUT(c->n[cls], got);
	return got;
}

static void empty(struct domain *d, struct cache *c)
{
	for (unsigned cls = 1; cls <= pk_cfg->nclasses; cls++)
		flush(d, c, cls, CACHE_CAP);
}

/* Bytes this way handed out, added to its domain's counts. */
static void settle(struct domain *d, struct way *w)
{
	pthread_mutex_lock(&tables_lock);        /* statistics see one or the other */
	long u = w->unsettled;
	PUT(w->unsettled, 0);
	atomic_fetch_add_explicit(&d->allocated, (size_t)u, memory_order_relaxed);
	atomic_fetch_sub_explicit(&d->cached, (size_t)u, memory_order_relaxed);
	pthread_mutex_unlock(&tables_lock);
}

/* Empty the orphans of d; window on d held. */
static __attribute__((noinline)) void drain(struct domain *d)
{
	sigset_t old;
	cache_lock(d, &old);
	uint64_t m = atomic_exchange_explicit(&d->orphans, 0, memory_order_relaxed);
	for (unsigned s = 0; s < CACHE_SLOTS; s++) {
		if (!(m >> s & 1) || d->slot_state[s] != SLOT_ORPHAN)
			continue;
		struct cache *c = slot_cache(d, s);
		if (c)
			empty(d, c);
		d->slot_state[s] = SLOT_FREE;
	}
	cache_unlock(d, &old);
}

/* A way lets its cache go, opening nothing: the cache becomes an orphan of
 * its domain, unless the domain was destroyed meanwhile (its destroyer
 * emptied the cache; the record may hold another domain now). */
static void let_go(struct way *w)
{
	struct domain *d = w->d;
	if (!d)
		return;
	sigset_t old;
	cache_lock(d, &old);
	if (atomic_load(&d->gen) == w->gen && atomic_load(&d->state) == DOM_LIVE) {
		settle(d, w);
		if (w->slot > NO_SLOT)
			pk_fatal("domain cache", w->c, 0, "a thread's cache pointer was overwritten");
		if (w->slot != NO_SLOT && d->slot_state[w->slot] == SLOT_OWNED) {
			d->slot_state[w->slot] = SLOT_ORPHAN;
			atomic_fetch_or_explicit(&d->orphans, UINT64_C(1) << w->slot, memory_order_relaxed);
		}
	}
	cache_unlock(d, &old);
	PUT(w->d, NULL);
	w->c = NULL;
}

/* A slot and a cache for this thread's way on d; window on d held. */
static __attribute__((noinline)) struct cache *make(struct domain *d, struct way *w)
{
	if (++w->calls < CACHE_AFTER)
		return NULL;
	w->calls = 0;                    /* no slot: try again CACHE_AFTER calls on */
	sigset_t old;
	cache_lock(d, &old);
	struct cache *c = NULL;
	unsigned s;
	for (s = 0; s < CACHE_SLOTS && d->slot_state[s] != SLOT_FREE; s++)
		;
	if (s < CACHE_SLOTS) {
		c = slot_cache(d, s);
		if (!c) {
			/* A block of the domain's own arena, never a domain
			 * allocation: no start bit, not counted. */
			int flags = ARENA_FLAGS(d) | MALLOCX_ZERO;
			pk_metamap_depth++;
			c = mallocx(sizeof *c, flags);
			pk_metamap_depth--;
			if (c && !reserve_holds(d, c, sizeof *c)) {
				dallocx(c, MALLOCX_TCACHE_NONE);
				c = NULL;
			}
		}
		if (c) {
			c->owner = (uintptr_t)&tls;
			c->check = w->check = check_of(c, s, w->gen, c->owner);
			d->cache_at[s] = (uint32_t)((char *)c - d->lo);
			d->slot_state[s] = SLOT_OWNED;
			w->slot = s;
			w->c = c;
		}
	}
	cache_unlock(d, &old);
	return c;
}

/* List this thread's table, its exit handler armed (enter.c: the same
 * handler, run once per destructor round, lets the caches go); 0 once the
 * handler's last round has run: nothing would let a table go then. */
static int table_list(void)
{
	if (!pk_enter_thread_arm_late())
		return 0;
	pthread_mutex_lock(&tables_lock);
	tls.link = tables;
	tables = &tls;
	tls.state = TABLE_LISTED;
	pthread_mutex_unlock(&tables_lock);
	return 1;
}

/* This thread's way on d, taken now if need be; NULL once the thread's
 * exit handler has run (later calls go to the arena). */
static __attribute__((noinline)) struct way *way_miss(struct domain *d, uint32_t gen)
{
	if (tls.state == TABLE_EXITED || (tls.state == TABLE_NEW && !table_list()))
		return NULL;
	struct way *free_way = NULL;
	for (unsigned i = 0; i < WAYS; i++) {
		struct way *w = &tls.w[i];
		if (w->d == d && w->gen == gen) {
			tls.last = i;
			return w;
		}
		/* A way of a destroyed domain: its destroyer emptied the cache. */
		if (w->d && atomic_load_explicit(&w->d->gen, memory_order_relaxed) != w->gen) {
			PUT(w->d, NULL);
			w->c = NULL;
		}
		if (!w->d && !free_way)
			free_way = w;
	}
	struct way *w = free_way;
	if (!w) {
		w = &tls.w[tls.next++ % WAYS];
		let_go(w);
	}
	w->slot = NO_SLOT;
	w->c = NULL;
	w->calls = 0;
	PUT(w->unsettled, 0);
	PUT(w->gen, gen);
	PUT(w->d, d);
	tls.last = (unsigned)(w - tls.w);
	return w;
}

/* This thread's way on d with a usable cache, or NULL. */
static inline __attribute__((always_inline)) struct way *cache_of(struct domain *d)
{
	uint32_t gen = atomic_load_explicit(&d->gen, memory_order_relaxed);
	struct table *t = &tls;
	struct way *w = &t->w[t->last];
	if (UNLIKELY(w->d != d || w->gen != gen) && !(w = way_miss(d, gen)))
		return NULL;
	if (UNLIKELY(atomic_load_explicit(&d->orphans, memory_order_relaxed) != 0))
		drain(d);
	if (LIKELY(w->c != NULL)) {
		checked(d, w);
		return w;
	}
	if (UNLIKELY(w->slot != NO_SLOT))      /* a slot, and its cache forgotten */
		pk_fatal("domain cache", NULL, 0, "a thread's cache pointer was overwritten");
	return make(d, w) ? w : NULL;
}

/* ---- the fast path --------------------------------------------------------- */

static inline __attribute__((always_inline)) void *take(struct domain *d, unsigned cls)
{
	struct way *w = cache_of(d);
	if (!w)
		return NULL;
	struct cache *c = w->c;
	unsigned n = c->n[cls];
	if (UNLIKELY(n == 0) && (n = refill(d, c, cls)) == 0)
		return NULL;
	if (UNLIKELY(n > pk_cfg->class_cap[cls]))
		pk_fatal("domain cache", c, 0, "a thread's cache of the domain is corrupted");
	uint64_t *p = (uint64_t *)(d->lo + c->off[cls][n - 1]);
	PUT(c->n[cls], n - 1);
	/* A cache inside the domain can be hit by the program's own stray
	 * writes while it is entered: hand out only a block of this class, in
	 * this domain: in the reservation the owner table gave the cache
	 * (checked just now, not only by d->lo), below the top. */
	struct page_rec *r = rec_of(d, p);
	char *top = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (UNLIKELY(((uintptr_t)p ^ (uintptr_t)c) >> RESERVE_SHIFT || (char *)p < d->lo ||
	             (size_t)(top - (char *)p) < pk_cfg->class_size[cls] ||
	             !(atomic_load_explicit(rec_word(r, p), memory_order_relaxed) & rec_bit(p)) ||
	             atomic_load_explicit(&r->cls, memory_order_relaxed) != cls))
		pk_fatal("domain cache", p, 0, "a thread's cache of the domain is corrupted");
	*p = 0;                           /* the free key */
	PUT(w->unsettled, w->unsettled + pk_cfg->class_size[cls]);
	return p;
}

/* Wipe a block and write the free key in its first word, so that the
 * compiler cannot drop it (the block is dead to it).  Small blocks by
 * hand: a call of memset would cost more than the stores. */
static inline void wipe_keyed(uint64_t *q, size_t size)
{
	if (size <= 128) {
		/* Volatile: kept as stores, never made a call of memset. */
		for (size_t i = 1; i < size / 8; i++)
			((volatile uint64_t *)q)[i] = 0;
	} else {
		memset(q + 1, 0, size - 8);
	}
	q[0] = pk_cfg->free_key;
	__asm__ volatile("" : : "r"(q) : "memory");
}

static inline __attribute__((always_inline)) int give(struct domain *d, void *p, unsigned cls)
{
	struct way *w = cache_of(d);
	if (!w)
		return 0;
	struct cache *c = w->c;
	size_t size = pk_cfg->class_size[cls];
	unsigned n = c->n[cls];
	if (UNLIKELY(n >= pk_cfg->class_cap[cls])) {
		if (n > pk_cfg->class_cap[cls])
			pk_fatal("domain cache", c, 0, "a thread's cache of the domain is corrupted");
		flush(d, c, cls, n / 2);
		n -= n / 2;
	}
	wipe_keyed(p, size);
	PUT(c->off[cls][n], (uint32_t)((char *)p - d->lo));
	PUT(c->n[cls], n + 1);
	PUT(w->unsettled, w->unsettled - (long)size);
	return 1;
}

void pk_cache_settle_orphans(struct domain *d)
{
	if (UNLIKELY(atomic_load_explicit(&d->orphans, memory_order_relaxed) != 0))
		drain(d);
}

void *pk_cache_alloc(struct domain *d, unsigned cls)
{
	return take(d, cls);
}

int pk_cache_free(struct domain *d, void *p, unsigned cls)
{
	return give(d, p, cls);
}

void *pk_cache_try_alloc(struct domain *d, unsigned cls)
{
	return enter_open_now(d) ? take(d, cls) : NULL;
}

void *pk_cache_fast_malloc(domain_t *dh, size_t size)
{
	struct domain *d = registry_check(dh);
	if (UNLIKELY(!d || size > CACHE_MAX))
		return NULL;
	unsigned cls = CACHE_CLASS(size);
	return LIKELY(cls != CLASS_NONE) && enter_open_now(d) ? take(d, cls) : NULL;
}

int pk_cache_fast_free(void *p)
{
	int slot = reserve_slot_of(p);
	if (UNLIKELY(slot < 0))
		return 0;
	struct domain *d = &pk_registry[slot];
	if (UNLIKELY(atomic_load_explicit(&d->state, memory_order_acquire) != DOM_LIVE ||
	             (char *)p < d->lo || (char *)p >= atomic_load_explicit(&d->top, memory_order_acquire) ||
	             ((uintptr_t)p & 7)))
		return 0;
	struct page_rec *r = rec_of(d, p);
	unsigned cls = atomic_load_explicit(&r->cls, memory_order_relaxed);
	if (UNLIKELY(!(atomic_load_explicit(rec_word(r, p), memory_order_relaxed) & rec_bit(p)) ||
	             cls == CLASS_NONE || cls > pk_cfg->nclasses || !enter_open_now(d) ||
	             *(uint64_t *)p == pk_cfg->free_key))
		return 0;       /* the caller's path says what is wrong, if anything */
	return give(d, p, cls);
}

int pk_cache_holds(struct domain *d, const void *p)
{
	unsigned cls = rec_class(d, p);
	if (cls == CLASS_NONE || cls > pk_cfg->nclasses)
		return 0;
	uint32_t off = (uint32_t)((const char *)p - d->lo);
	int found = 0;
	sigset_t old;
	cache_lock(d, &old);
	for (unsigned s = 0; s < CACHE_SLOTS && !found; s++) {
		if (d->slot_state[s] == SLOT_FREE)
			continue;
		struct cache *c = slot_cache(d, s);
		unsigned n = c ? GET(c->n[cls]) : 0;
		for (unsigned i = 0; i < n && i < CACHE_CAP; i++)
			if (GET(c->off[cls][i]) == off) {
				found = 1;
				break;
			}
	}
	cache_unlock(d, &old);
	return found;
}

/* ---- statistics ------------------------------------------------------------ */

void pk_cache_counts(struct domain *d, size_t *allocated, size_t *cached)
{
	uint32_t gen = atomic_load_explicit(&d->gen, memory_order_relaxed);
	long sum = 0;
	/* Under the lock that settling takes: no byte is seen twice. */
	pthread_mutex_lock(&tables_lock);
	for (struct table *t = tables; t; t = t->link)
		for (unsigned i = 0; i < WAYS; i++)
			if (GET(t->w[i].d) == d && GET(t->w[i].gen) == gen)
				sum += GET(t->w[i].unsettled);
	*allocated = atomic_load_explicit(&d->allocated, memory_order_relaxed) + (size_t)sum;
	*cached = atomic_load_explicit(&d->cached, memory_order_relaxed) - (size_t)sum;
	pthread_mutex_unlock(&tables_lock);
}

/* ---- domains, threads, fork ------------------------------------------------ */

void pk_cache_domain_init(struct domain *d)
{
	sigset_t old;
	cache_lock(d, &old);
	atomic_store(&d->orphans, 0);
	memset(d->slot_state, SLOT_FREE, sizeof d->slot_state);
	memset(d->cache_at, 0, sizeof d->cache_at);
	atomic_store(&d->allocated, 0);
	atomic_store(&d->cached, 0);
	cache_unlock(d, &old);
}

void pk_cache_domain_destroy(struct domain *d)
{
	/* Nobody can pin d: no cache operation is under way.  Owned caches
	 * are emptied but stay their owners' (should the destroy fail, they
	 * go on); their ways see the new generation once it succeeds. */
	sigset_t old;
	cache_lock(d, &old);
	for (unsigned s = 0; s < CACHE_SLOTS; s++) {
		if (d->slot_state[s] == SLOT_FREE)
			continue;
		struct cache *c = slot_cache(d, s);
		if (c)
			empty(d, c);
		if (d->slot_state[s] == SLOT_ORPHAN)
			d->slot_state[s] = SLOT_FREE;
	}
	atomic_store(&d->orphans, 0);
	cache_unlock(d, &old);
}

void pk_cache_thread_exit(int last)
{
	for (unsigned i = 0; i < WAYS; i++)
		let_go(&tls.w[i]);
	pthread_mutex_lock(&tables_lock);
	for (struct table **pp = &tables; *pp; pp = &(*pp)->link)
		if (*pp == &tls) {
			*pp = tls.link;
			break;
		}
	pthread_mutex_unlock(&tables_lock);
	/* After the last round, later destructors' pkalloc calls go to the
	 * arena: a table listed again would outlive the thread. */
	tls.state = last ? TABLE_EXITED : TABLE_NEW;
}

/* fork prepare handler (registry lock held): every domain's cache lock. */
static void each_lock(struct domain *d, void *arg)
{
	(void)arg;
	spin_lock(d);
}

static void each_unlock(struct domain *d, void *arg)
{
	(void)arg;
	atomic_store(&d->cache_lock, 0);
}

static void each_child(struct domain *d, void *arg)
{
	if (d->flags & WIPED_IN_CHILD) {
		atomic_store(&d->orphans, 0);
		memset(d->slot_state, SLOT_FREE, sizeof d->slot_state);
		memset(d->cache_at, 0, sizeof d->cache_at);
		atomic_store(&d->cached, 0);
	}
	each_unlock(d, arg);
}

void pk_cache_prefork(void)
{
	pk_registry_foreach_live(each_lock, NULL);
	pthread_mutex_lock(&tables_lock);
}

void pk_cache_postfork(int child)
{
	if (!child) {
		pthread_mutex_unlock(&tables_lock);
		pk_registry_foreach_live(each_unlock, NULL);
		return;
	}
	/* Only this thread lives on.  Every other thread's caches become
	 * orphans, in plain memory: the next call on each domain empties
	 * them, in the child. */
	pthread_mutex_init(&tables_lock, NULL);
	for (struct table *t = tables; t; t = t->link) {
		if (t == &tls)
			continue;
		for (unsigned i = 0; i < WAYS; i++) {
			struct way *w = &t->w[i];
			struct domain *d = w->d;
			if (!d || atomic_load(&d->gen) != w->gen || atomic_load(&d->state) != DOM_LIVE)
				continue;
			atomic_fetch_add(&d->allocated, (size_t)w->unsettled);
			atomic_fetch_sub(&d->cached, (size_t)w->unsettled);
			if (w->slot != NO_SLOT && d->slot_state[w->slot] == SLOT_OWNED) {
				d->slot_state[w->slot] = SLOT_ORPHAN;
				atomic_fetch_or(&d->orphans, UINT64_C(1) << w->slot);
			}
		}
	}
	tables = tls.state == TABLE_LISTED ? &tls : NULL;
	if (tables)
		tls.link = NULL;
	/* DOMAIN_WIPEONFORK: the child sees the caches zeroed with the rest of
	 * the data; the blocks they held stay allocated, unreachable. */
	for (unsigned i = 0; i < WAYS; i++) {
		struct way *w = &tls.w[i];
		if (w->d && (w->d->flags & WIPED_IN_CHILD)) {
			if (atomic_load(&w->d->gen) == w->gen)
				atomic_fetch_add(&w->d->allocated, (size_t)w->unsettled);
			PUT(w->d, NULL);
		}
	}
	pk_registry_foreach_live(each_child, NULL);
}
