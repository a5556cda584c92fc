/*
 * The domain_malloc family.  Every call on a domain runs in an access
 * window on it, because the arena's metadata and the threads' caches live
 * in domain memory.  Small blocks come from and go to the calling thread's
 * cache of the domain (cache.c); the rest, and every call of a thread that
 * keeps no cache of the domain, go to the arena.  jemalloc's automatic
 * thread cache is never used: it hands out cached regions of whatever
 * arena they came from, which would mix domains.
 */
#include "internal.h"
#include "protect.h"
#include "reserve.h"
#include "enter.h"
#include "extent.h"
#include "heap.h"
#include "cache.h"
#include "pagerec.h"
#include "settings.h"
#include "fatal.h"
#include "registry.h"

#include <errno.h>
#include <string.h>

/* The largest allocation a reservation could ever hold. */
#define SIZE_LIMIT (PKALLOC_RESERVATION - 2 * PKALLOC_GUARD)

/* A block just given by the arena: its start bit and page class.  NULL
 * (ENOMEM) if it is not d's memory at all (see reserve_holds). */
static void *arena_took(struct domain *d, void *p, size_t usable)
{
	if (!reserve_holds(d, p, usable)) {
		dallocx(p, MALLOCX_TCACHE_NONE);
		return NULL;
	}
	if (!rec_mark(d, p))
		pk_fatal("domain heap", p, 0, "jemalloc gave a block that is allocated already");
	rec_set_class(d, p, usable <= CACHE_MAX ? CACHE_CLASS(usable) : CLASS_NONE);
	atomic_fetch_add_explicit(&d->allocated, usable, memory_order_relaxed);
	return p;
}

static __attribute__((noinline)) void *alloc_in_window(struct domain *d, const domain_t *dh,
                                                      size_t size, int flags);

/* Open a window on d for a call that came with handle dh (NULL: d came
 * from elsewhere): 1, or 0 with errno set.  Once d is pinned, the handle
 * must still be d's: between the check and the pin its domain may have been
 * destroyed and the record given to a new domain (domain_create says why
 * that is not prevented). */
static int open_for(const domain_t *dh, struct domain *d, struct window *w)
{
	int err = pk_window_open(d, w, 0);
	if (err) {
		errno = err;
		return 0;
	}
	if (!dh || LIKELY(registry_check(dh) == d))
		return 1;
	pk_window_close(w);
	errno = EINVAL;
	return 0;
}

/* size bytes in d, for handle dh (NULL: d came from elsewhere). */
static void *alloc_in(struct domain *d, const domain_t *dh, size_t size, int flags)
{
	if (flags == 0 && size <= CACHE_MAX) {
		/* The fast path: a thread inside d read-write, its cache. */
		unsigned cls = CACHE_CLASS(size);
		void *p = cls != CLASS_NONE ? pk_cache_try_alloc(d, cls) : NULL;
		if (LIKELY(p != NULL))
			return p;
	}
	return alloc_in_window(d, dh, size, flags);
}

static void *alloc_in_window(struct domain *d, const domain_t *dh, size_t size, int flags)
{
	if (size > SIZE_LIMIT) {
		errno = ENOMEM;
		return NULL;
	}
	struct window w;
	if (!open_for(dh, d, &w))
		return NULL;
	pk_cache_settle_orphans(d);
	void *p = NULL;
	unsigned cls;
	if ((flags & ~MALLOCX_ZERO) == 0 && size <= CACHE_MAX && (cls = CACHE_CLASS(size)) != CLASS_NONE &&
	    (p = pk_cache_alloc(d, cls)) != NULL) {
		if (flags & MALLOCX_ZERO)   /* cached blocks are wiped; a stray write may not be */
			memset(p, 0, pk_cfg->class_size[cls]);
	} else {
		/* mallocx(0) is undefined: 0 bytes get the smallest size class. */
		pk_extent_take_error();
		p = mallocx(size ? size : 1, ARENA_FLAGS(d) | flags);
		/* The size class: as sallocx(p) would say, without its lookup. */
		if (p)
			p = arena_took(d, p, nallocx(size ? size : 1, flags));
	}
	pk_window_close(&w);
	if (!p) {
		int grow = pk_extent_take_error();
		errno = grow ? grow : ENOMEM;
	}
	return p;
}

void *pk_heap_alloc(struct domain *d, size_t size, int flags)
{
	return alloc_in(d, NULL, size, flags);
}

static struct domain *checked(domain_t *dh)
{
	struct domain *d = registry_check(dh);
	if (!d)
		errno = EINVAL;
	return d;
}

void *domain_malloc(domain_t *dh, size_t size)
{
	void *p = pk_cache_fast_malloc(dh, size);
	if (LIKELY(p != NULL))
		return p;
	struct domain *d = checked(dh);     /* the fast path was tried: the window's */
	return d ? alloc_in_window(d, dh, size, 0) : NULL;
}

void *domain_calloc(domain_t *dh, size_t nmemb, size_t size)
{
	struct domain *d = checked(dh);
	size_t total;
	if (!d)
		return NULL;
	if (!size_product(nmemb, size, &total))
		return NULL;
	return alloc_in(d, dh, total, MALLOCX_ZERO);
}

void *domain_aligned_alloc(domain_t *dh, size_t alignment, size_t size)
{
	struct domain *d = checked(dh);
	if (!d)
		return NULL;
	if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	if (alignment > SIZE_LIMIT) {
		errno = ENOMEM;
		return NULL;
	}
	return alloc_in(d, dh, size, MALLOCX_LG_ALIGN(__builtin_ctzl(alignment)));
}

#define NOT_AN_ALLOCATION "not an allocation of its domain (interior pointer or freed already)"
#define BAD_EXTENT "jemalloc's size for it runs past its domain or over another allocation (corrupted radix tree?)"

/*
 * The usable size jemalloc gives ptr of domain d, before it is wiped, freed
 * or copied by that size.  jemalloc finds it in its radix tree, which lives
 * in plain memory: a stray write there could make the wipe run over other
 * secrets, or off the domain.  So [ptr, ptr + size) must end below the
 * domain's top and hold no other allocation's start (ptr's own bit may be
 * clear already): one word of the page records per 512 bytes, against a
 * wipe of them.
 */
static size_t size_checked(struct domain *d, const void *ptr, const char *call)
{
	size_t n = sallocx(ptr, 0);
	char *top = atomic_load_explicit(&d->top, memory_order_acquire);
	if (n == 0 || n > (size_t)(top - (const char *)ptr) || rec_starts_within(d, ptr, n))
		pk_fatal(call, ptr, 0, BAD_EXTENT);
	return n;
}

/* The domain that ptr starts an allocation of, or NULL with *why set. */
static struct domain *lookup(const void *ptr, const char **why)
{
	int slot = reserve_slot_of(ptr);
	if (slot < 0) {
		if (pk_reserve_destroyed(ptr))
			*why = "its domain was destroyed";
		else
			*why = "not domain memory";
		return NULL;
	}
	struct domain *d = &pk_registry[slot];
	if (atomic_load_explicit(&d->state, memory_order_acquire) != DOM_LIVE) {
		*why = "its domain is destroyed or being destroyed";
		return NULL;
	}
	char *top = atomic_load_explicit(&d->top, memory_order_acquire);
	if ((const char *)ptr < d->lo || (const char *)ptr >= top || ((uintptr_t)ptr & 7) ||
	    !rec_is_start(d, ptr)) {
		*why = NOT_AN_ALLOCATION;
		return NULL;
	}
	return d;
}

/*
 * The domain of an allocation, or a fatal error naming the call: freeing
 * what is not a domain allocation would corrupt jemalloc's state.
 */
static struct domain *owner_of(const void *ptr, const char *call)
{
	const char *why;
	struct domain *d = lookup(ptr, &why);
	if (!d)
		pk_fatal(call, ptr, 0, why);
	return d;
}

/* 1 if the start of a block, ptr, sits freed in a cache of d (the free
 * key, then a search to tell it from data); window on d held. */
static int freed_in_cache(struct domain *d, const void *ptr)
{
	return UNLIKELY(*(const uint64_t *)ptr == pk_cfg->free_key) && pk_cache_holds(d, ptr);
}

static void check_live(struct domain *d, const void *ptr, const char *call)
{
	if (freed_in_cache(d, ptr))
		pk_fatal(call, ptr, 0, NOT_AN_ALLOCATION);
}

/* Wipe and free ptr of domain d to the arena; the caller holds a window on
 * d and has checked it is live.  The start bit goes first: of two racing
 * frees of one block, one dies here. */
static void wipe_free(struct domain *d, void *ptr, const char *call)
{
	if (!rec_clear(d, ptr))
		pk_fatal(call, ptr, 0, NOT_AN_ALLOCATION);
	size_t n = size_checked(d, ptr, call);
	explicit_bzero(ptr, n);
	sdallocx(ptr, n, MALLOCX_TCACHE_NONE);
	atomic_fetch_sub_explicit(&d->allocated, n, memory_order_relaxed);
}

/* A window for a call that cannot fail (a free), or a fatal error. */
static void open_or_die(struct domain *d, struct window *w, const char *call, const void *ptr)
{
	int err = pk_window_open(d, w, PIN_SHARE_OK);
	if (err == EINVAL)
		pk_fatal(call, ptr, 0, "its domain is being destroyed");
	if (err)
		pk_fatal("mprotect", d->lo, err, "cannot open a domain");
}

static __attribute__((noinline)) void free_in_window(struct domain *d, void *ptr, unsigned cls,
                                                    const char *call);

/* After the fast path (pk_cache_fast_free) declined. */
static __attribute__((noinline)) void free_slow(void *ptr, const char *call)
{
	struct domain *d = owner_of(ptr, call);
	free_in_window(d, ptr, rec_class(d, ptr), call);
}

void pk_heap_free(void *ptr, const char *call)
{
	if (LIKELY(pk_cache_fast_free(ptr)))
		return;          /* the fast path: a thread inside d read-write */
	free_slow(ptr, call);
}

static void free_in_window(struct domain *d, void *ptr, unsigned cls, const char *call)
{
	struct window w;
	open_or_die(d, &w, call, ptr);
	/* Freed already?  Asked before orphans go back to the arena, which
	 * would take the free key off a block that an orphan holds. */
	check_live(d, ptr, call);
	pk_cache_settle_orphans(d);
	if (cls == CLASS_NONE || cls > pk_cfg->nclasses || !pk_cache_free(d, ptr, cls))
		wipe_free(d, ptr, call);
	pk_window_close(&w);
}

void domain_free(void *ptr)
{
	if (ptr && LIKELY(pk_cache_fast_free(ptr)))
		return;          /* pk_heap_free's fast path, a call nearer */
	if (ptr)
		free_slow(ptr, "domain_free");
}

size_t pk_heap_usable(const void *ptr)
{
	const char *why;
	struct domain *d = lookup(ptr, &why);
	struct window w;
	if (!d || pk_window_open(d, &w, PIN_SHARE_OK) != 0)
		return 0;
	/* A block sitting in a cache is freed already. */
	size_t n = freed_in_cache(d, ptr) ? 0 : sallocx(ptr, 0);
	pk_window_close(&w);
	return n;
}

size_t domain_usable_size(const void *ptr)
{
	size_t n = ptr ? pk_heap_usable(ptr) : 0;
	if (ptr && !n)
		errno = EINVAL;
	return n;
}

/* Resize within one domain: in place if jemalloc can, else move. */
static void *resize_in(struct domain *d, const domain_t *dh, void *ptr, size_t size,
                       const char *call)
{
	struct window w;
	if (!open_for(dh, d, &w))
		return NULL;
	check_live(d, ptr, call);            /* before the orphans go: see free */
	pk_cache_settle_orphans(d);
	size_t old = size_checked(d, ptr, call), now;
	void *ret = ptr;
	if (size <= old) {
		/* What the caller gave up must not stay behind. */
		explicit_bzero((char *)ptr + size, old - size);
		now = xallocx(ptr, size, 0, MALLOCX_TCACHE_NONE);
		atomic_fetch_sub_explicit(&d->allocated, old - now, memory_order_relaxed);
	} else if ((now = xallocx(ptr, size, 0, MALLOCX_TCACHE_NONE)) >= size) {
		atomic_fetch_add_explicit(&d->allocated, now - old, memory_order_relaxed);
	} else {
		pk_extent_take_error();
		ret = mallocx(size, ARENA_FLAGS(d));
		if (ret)
			ret = arena_took(d, ret, sallocx(ret, 0));
		if (ret) {
			memcpy(ret, ptr, old);
			wipe_free(d, ptr, call);
		} else {
			int grow = pk_extent_take_error();
			errno = grow ? grow : ENOMEM;
		}
	}
	pk_window_close(&w);
	return ret;
}

void *domain_realloc(domain_t *dh, void *ptr, size_t size)
{
	struct domain *d = checked(dh);
	if (!d)
		return NULL;
	if (!ptr)
		return alloc_in(d, dh, size, 0);
	if (size > SIZE_LIMIT) {
		errno = ENOMEM;
		return NULL;
	}
	if (size == 0)
		size = 1;
	struct domain *from = owner_of(ptr, "domain_realloc");
	if (from == d)
		return resize_in(d, dh, ptr, size, "domain_realloc");

	/* Moving between domains: both stay open while the bytes cross.  If
	 * either cannot be opened, ptr stays as it was. */
	void *ret = alloc_in(d, dh, size, 0);
	if (!ret)
		return NULL;
	struct window wf, wt;
	int err = pk_window_open(from, &wf, PIN_SHARE_OK);
	if (err == EINVAL)
		pk_fatal("domain_realloc", ptr, 0, "its domain is being destroyed");
	if (!err && (err = pk_window_open(d, &wt, PIN_SHARE_OK)) != 0)
		pk_window_close(&wf);
	if (err) {
		pk_heap_free(ret, "domain_realloc");
		errno = err;
		return NULL;
	}
	check_live(from, ptr, "domain_realloc");
	size_t old = size_checked(from, ptr, "domain_realloc");
	memcpy(ret, ptr, old < size ? old : size);
	wipe_free(from, ptr, "domain_realloc");
	pk_window_close(&wt);
	pk_window_close(&wf);
	return ret;
}

void *pk_heap_realloc(void *ptr, size_t size, const char *call)
{
	if (size > SIZE_LIMIT) {
		errno = ENOMEM;
		return NULL;
	}
	return resize_in(owner_of(ptr, call), NULL, ptr, size, call);
}
