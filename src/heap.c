/*
 * The domain_malloc family.  Every jemalloc call on a domain's arena runs in
 * an access window, because the arena's metadata lives in domain memory.
 * The automatic thread cache is never used: it hands out cached regions of
 * whatever arena they came from, which would mix domains; each thread has
 * caches of its own per domain instead (tcache.c).
 */
#include "internal.h"
#include "protect.h"
#include "reserve.h"
#include "enter.h"
#include "extent.h"
#include "heap.h"
#include "tcache.h"

#include <errno.h>
#include <string.h>

/* jemalloc's MALLOCX_ARENA shifts a signed int: past arena 2046 that
 * overflows (UBSan says so); the same bits, computed unsigned. */
#define ARENA_BITS(a)  ((int)(((unsigned)(a) + 1u) << 20))
/* The arena and this thread's own cache for it (never the automatic one,
 * which would mix domains); call with a window open on d. */
#define ARENA_FLAGS(d) (ARENA_BITS((d)->arena) | tcache_flags(d))

/* The largest allocation a reservation could ever hold. */
#define SIZE_LIMIT (PKALLOC_RESERVATION - 2 * PKALLOC_GUARD)

/* The allocation-start bitmap: set on allocation, cleared on free. */
static void mark_start(struct domain *d, void *p)
{
	size_t i = (size_t)((char *)p - d->lo) >> 3;
	atomic_fetch_or_explicit(&d->starts[i >> 6], UINT64_C(1) << (i & 63), memory_order_relaxed);
}

/* 1 if p started an allocation; it no longer does. */
static int clear_start(struct domain *d, const void *p)
{
	size_t i = (size_t)((const char *)p - d->lo) >> 3;
	uint64_t bit = UINT64_C(1) << (i & 63);
	return (atomic_fetch_and_explicit(&d->starts[i >> 6], ~bit, memory_order_relaxed) & bit) != 0;
}

static int is_start(struct domain *d, const void *p)
{
	size_t i = (size_t)((const char *)p - d->lo) >> 3;
	return (atomic_load_explicit(&d->starts[i >> 6], memory_order_relaxed) >> (i & 63)) & 1;
}

/* The handle a call came with is d's still, now that d is pinned: between
 * the check and the pin its domain may have been destroyed and the record
 * given to a new domain (domain_create says why that is not prevented). */
static int still(const domain_t *dh, struct domain *d, struct window *w)
{
	if (!dh || LIKELY(domain_check(dh) == d))
		return 1;
	window_close(w);
	errno = EINVAL;
	return 0;
}

/* size bytes in d, for handle dh (NULL: d came from elsewhere). */
static void *alloc_in(struct domain *d, const domain_t *dh, size_t size, int flags)
{
	if (size > SIZE_LIMIT) {
		errno = ENOMEM;
		return NULL;
	}
	struct window w;
	int err = window_open(d, &w, 0);
	if (err) {
		errno = err;
		return NULL;
	}
	if (!still(dh, d, &w))
		return NULL;
	/* mallocx(0) is undefined: 0 bytes get the smallest size class. */
	extent_take_error();
	void *p = mallocx(size ? size : 1, ARENA_FLAGS(d) | flags);
	if (p) {
		/* The size class: as sallocx(p) would say, without its lookup. */
		atomic_fetch_add_explicit(&d->allocated, nallocx(size ? size : 1, flags), memory_order_relaxed);
		mark_start(d, p);
	}
	window_close(&w);
	if (!p) {
		int grow = extent_take_error();
		errno = grow ? grow : ENOMEM;
	}
	return p;
}

void *heap_alloc(struct domain *d, size_t size, int flags)
{
	return alloc_in(d, NULL, size, flags);
}

static struct domain *checked(domain_t *dh)
{
	struct domain *d = domain_check(dh);
	if (!d)
		errno = EINVAL;
	return d;
}

void *domain_malloc(domain_t *dh, size_t size)
{
	struct domain *d = checked(dh);
	return d ? alloc_in(d, dh, size, 0) : NULL;
}

void *domain_calloc(domain_t *dh, size_t nmemb, size_t size)
{
	struct domain *d = checked(dh);
	size_t total;
	if (!d)
		return NULL;
	if (__builtin_mul_overflow(nmemb, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
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

/* 1 if an allocation other than the one at p starts in (p, p + n). */
static int starts_within(struct domain *d, const void *p, size_t n)
{
	size_t first = (size_t)((const char *)p - d->lo) / 8 + 1;
	size_t end = (size_t)((const char *)p - d->lo) / 8 + n / 8;   /* exclusive */
	for (size_t i = first; i < end;) {
		uint64_t w = atomic_load_explicit(&d->starts[i >> 6], memory_order_relaxed) >> (i & 63);
		size_t span = 64 - (i & 63);
		if (span > end - i)
			w &= (UINT64_C(1) << (end - i)) - 1, span = end - i;
		if (w)
			return 1;
		i += span;
	}
	return 0;
}

/*
 * The usable size jemalloc gives ptr of domain d, before it is wiped, freed
 * or copied by that size.  jemalloc finds it in its radix tree, which lives
 * in plain memory: a stray write there could make the wipe run over other
 * secrets, or off the domain.  So [ptr, ptr + size) must end below the
 * domain's top and hold no other allocation's start (ptr's own bit may be
 * clear already): one bitmap word per 512 bytes, against a wipe of them.
 */
static size_t size_checked(struct domain *d, const void *ptr, const char *call)
{
	size_t n = sallocx(ptr, 0);
	char *top = atomic_load_explicit(&d->top, memory_order_acquire);
	if (n == 0 || n > (size_t)(top - (const char *)ptr) || starts_within(d, ptr, n))
		fatal(call, ptr, BAD_EXTENT);
	return n;
}

/* The domain that ptr starts an allocation of, or NULL with *why set. */
static struct domain *lookup(const void *ptr, const char **why)
{
	int slot = reserve_slot_of(ptr);
	if (slot < 0) {
		if (reserve_destroyed(ptr))
			*why = "its domain was destroyed";
		else
			*why = "not domain memory";
		return NULL;
	}
	struct domain *d = &registry[slot];
	if (atomic_load_explicit(&d->state, memory_order_acquire) != DOM_LIVE) {
		*why = "its domain is destroyed or being destroyed";
		return NULL;
	}
	char *top = atomic_load_explicit(&d->top, memory_order_acquire);
	if ((const char *)ptr < d->lo || (const char *)ptr >= top || ((uintptr_t)ptr & 7) ||
	    !is_start(d, ptr)) {
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
		fatal(call, ptr, why);
	return d;
}

/* Wipe and free ptr of domain d; the caller holds a window on d.  The
 * start bit goes first: of two racing frees of one block, one dies here. */
static void wipe_free(struct domain *d, void *ptr, const char *call)
{
	if (!clear_start(d, ptr))
		fatal(call, ptr, NOT_AN_ALLOCATION);
	size_t n = size_checked(d, ptr, call);
	explicit_bzero(ptr, n);
	sdallocx(ptr, n, tcache_flags(d));
	atomic_fetch_sub_explicit(&d->allocated, n, memory_order_relaxed);
}

/* A window for a call that cannot fail (a free), or a fatal error. */
static void open_or_die(struct domain *d, struct window *w, const char *call, const void *ptr)
{
	int err = window_open(d, w, PIN_SHARE_OK);
	if (err == EINVAL)
		fatal(call, ptr, "its domain is being destroyed");
	if (err)
		fatal("mprotect", d->lo, "cannot open a domain");
}

void heap_free(void *ptr, const char *call)
{
	struct domain *d = owner_of(ptr, call);
	struct window w;
	open_or_die(d, &w, call, ptr);
	wipe_free(d, ptr, call);
	window_close(&w);
}

void domain_free(void *ptr)
{
	if (ptr)
		heap_free(ptr, "domain_free");
}

size_t heap_usable(const void *ptr)
{
	const char *why;
	struct domain *d = lookup(ptr, &why);
	struct window w;
	if (!d || window_open(d, &w, PIN_SHARE_OK) != 0)
		return 0;
	size_t n = sallocx(ptr, 0);
	window_close(&w);
	return n;
}

size_t domain_usable_size(const void *ptr)
{
	size_t n = ptr ? heap_usable(ptr) : 0;
	if (ptr && !n)
		errno = EINVAL;
	return n;
}

/* Resize within one domain: in place if jemalloc can, else move. */
static void *resize_in(struct domain *d, const domain_t *dh, void *ptr, size_t size,
                       const char *call)
{
	struct window w;
	int err = window_open(d, &w, 0);
	if (err) {
		errno = err;
		return NULL;
	}
	if (!still(dh, d, &w))
		return NULL;
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
		extent_take_error();
		ret = mallocx(size, ARENA_FLAGS(d));
		if (ret) {
			atomic_fetch_add_explicit(&d->allocated, sallocx(ret, 0), memory_order_relaxed);
			mark_start(d, ret);
			memcpy(ret, ptr, old);
			wipe_free(d, ptr, call);
		} else {
			int grow = extent_take_error();
			errno = grow ? grow : ENOMEM;
		}
	}
	window_close(&w);
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
	int err = window_open(from, &wf, PIN_SHARE_OK);
	if (err == EINVAL)
		fatal("domain_realloc", ptr, "its domain is being destroyed");
	if (!err && (err = window_open(d, &wt, PIN_SHARE_OK)) != 0)
		window_close(&wf);
	if (err) {
		heap_free(ret, "domain_realloc");
		errno = err;
		return NULL;
	}
	size_t old = size_checked(from, ptr, "domain_realloc");
	memcpy(ret, ptr, old < size ? old : size);
	wipe_free(from, ptr, "domain_realloc");
	window_close(&wt);
	window_close(&wf);
	return ret;
}

void *heap_realloc(void *ptr, size_t size, const char *call)
{
	if (size > SIZE_LIMIT) {
		errno = ENOMEM;
		return NULL;
	}
	return resize_in(owner_of(ptr, call), NULL, ptr, size, call);
}
