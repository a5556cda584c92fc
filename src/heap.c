/*
 * The domain_malloc family.  Every jemalloc call on a domain's arena runs in
 * an access window, because the arena's metadata lives in domain memory.
 * The automatic thread cache is never used: it hands out cached regions of
 * whatever arena they came from, which would mix domains.
 */
#include "internal.h"
#include "protect.h"
#include "reserve.h"
#include "enter.h"

#include <errno.h>
#include <string.h>

#define ARENA_FLAGS(d) (MALLOCX_ARENA((d)->arena) | MALLOCX_TCACHE_NONE)

/* The largest allocation a reservation could ever hold. */
#define SIZE_LIMIT (PKALLOC_RESERVATION - 2 * PKALLOC_GUARD)

static void *alloc_in(struct domain *d, size_t size, int flags)
{
	if (size > SIZE_LIMIT) {
		errno = ENOMEM;
		return NULL;
	}
	struct window w;
	if (window_open(d, &w) != 0) {
		errno = EINVAL;
		return NULL;
	}
	/* mallocx(0) is undefined: 0 bytes get the smallest size class. */
	void *p = mallocx(size ? size : 1, ARENA_FLAGS(d) | flags);
	window_close(&w);
	if (!p)
		errno = ENOMEM;
	return p;
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
	return d ? alloc_in(d, size, 0) : NULL;
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
	return alloc_in(d, total, MALLOCX_ZERO);
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
	return alloc_in(d, size, MALLOCX_LG_ALIGN(__builtin_ctzl(alignment)));
}

/*
 * The domain of an allocation, or a fatal error naming the call: freeing
 * what is not a domain allocation would corrupt jemalloc's state.
 */
static struct domain *owner_of(const void *ptr, const char *call)
{
	int slot = reserve_slot_of(ptr);
	if (slot < 0)
		fatal(call, ptr, "not domain memory");
	struct domain *d = &registry[slot];
	if (atomic_load_explicit(&d->state, memory_order_acquire) != DOM_LIVE)
		fatal(call, ptr, "its domain is destroyed or being destroyed");
	char *top = atomic_load_explicit(&d->top, memory_order_acquire);
	if ((const char *)ptr < d->lo || (const char *)ptr >= top || ((uintptr_t)ptr & 7))
		fatal(call, ptr, "not an allocation of its domain");
	return d;
}

/* Wipe and free ptr of domain d; the caller holds a window on d. */
static void wipe_free(void *ptr)
{
	explicit_bzero(ptr, sallocx(ptr, 0));
	dallocx(ptr, MALLOCX_TCACHE_NONE);
}

void domain_free(void *ptr)
{
	if (!ptr)
		return;
	struct domain *d = owner_of(ptr, "domain_free");
	struct window w;
	if (window_open(d, &w) != 0)
		fatal("domain_free", ptr, "its domain is being destroyed");
	wipe_free(ptr);
	window_close(&w);
}

size_t domain_usable_size(const void *ptr)
{
	int slot = ptr ? reserve_slot_of(ptr) : -1;
	if (slot < 0) {
		if (ptr)
			errno = EINVAL;
		return 0;
	}
	struct window w;
	if (window_open(&registry[slot], &w) != 0) {
		errno = EINVAL;
		return 0;
	}
	size_t n = sallocx(ptr, 0);
	window_close(&w);
	return n;
}

/* Resize within one domain: in place if jemalloc can, else move. */
static void *resize_in(struct domain *d, void *ptr, size_t size)
{
	struct window w;
	if (window_open(d, &w) != 0) {
		errno = EINVAL;
		return NULL;
	}
	size_t old = sallocx(ptr, 0);
	void *ret = ptr;
	if (size <= old) {
		/* What the caller gave up must not stay behind. */
		explicit_bzero((char *)ptr + size, old - size);
		xallocx(ptr, size, 0, MALLOCX_TCACHE_NONE);
	} else if (xallocx(ptr, size, 0, MALLOCX_TCACHE_NONE) < size) {
		ret = mallocx(size, ARENA_FLAGS(d));
		if (ret) {
			memcpy(ret, ptr, old);
			wipe_free(ptr);
		} else {
			errno = ENOMEM;
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
		return alloc_in(d, size, 0);
	if (size > SIZE_LIMIT) {
		errno = ENOMEM;
		return NULL;
	}
	if (size == 0)
		size = 1;
	struct domain *from = owner_of(ptr, "domain_realloc");
	if (from == d)
		return resize_in(d, ptr, size);

	/* Moving between domains: both stay open while the bytes cross. */
	void *ret = alloc_in(d, size, 0);
	if (!ret)
		return NULL;
	struct window wf, wt;
	if (window_open(from, &wf) != 0)
		fatal("domain_realloc", ptr, "its domain is being destroyed");
	if (window_open(d, &wt) != 0) {
		window_close(&wf);
		errno = EINVAL;
		return NULL;    /* unreachable while the caller holds d */
	}
	size_t old = sallocx(ptr, 0);
	memcpy(ret, ptr, old < size ? old : size);
	wipe_free(ptr);
	window_close(&wt);
	window_close(&wf);
	return ret;
}
