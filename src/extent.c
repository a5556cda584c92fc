/*
 * jemalloc extent hooks over a domain's reservation.
 *
 * Extents are carved upwards from the reservation (a bump pointer, d->top)
 * and never given back: dalloc and decommit decline, so jemalloc keeps the
 * extents as "retained" and reuses them, purging their pages with madvise.
 * Purged pages keep their protection key and come back zeroed.  Split and
 * merge succeed (all extents of one arena lie in one reservation); without
 * them jemalloc would ask for every extent separately.
 *
 * The arena's own metadata (its base blocks, arena_t itself) comes through
 * these hooks too, so it is tagged like the data and is out of reach of
 * any thread outside the domain.
 *
 * DOMAIN_SECRETMEM (secretmem.c): data extents are reserved uncommitted
 * and become secret pages when jemalloc commits them; decommit wipes and
 * unmaps them, which gives their locked-memory budget back, and their RAM
 * with the last committed page of their 2 MiB chunk.
 */
#include "internal.h"
#include "protect.h"
#include "extent.h"
#include "settings.h"
#include "secretmem.h"

#include <stdbool.h>

/* jemalloc 5.3.0 asks for its base blocks (arena metadata) with huge-page
 * alignment and for data extents with page alignment. */
#define METADATA_ALIGN ((size_t)2 << 20)

static __thread int grow_error TLS_FAST;

int pk_extent_take_error(void)
{
	int e = grow_error;
	grow_error = 0;
	return e;
}

/* Flags of the domain that apply to fresh pages: lock them, and (data
 * only: jemalloc's own metadata must survive) wipe them in a fork child. */
static int prepare_pages(struct domain *d, void *addr, size_t size, size_t alignment)
{
	int err = 0;
	if (d->flags & DOMAIN_MLOCK)
		err = pk_prot_lock(addr, size);
	if (!err && (d->flags & DOMAIN_WIPEONFORK) && alignment < METADATA_ALIGN)
		err = pk_prot_wipe_on_fork(addr, size);
	return err;
}

#define DOMAIN_OF_HOOKS(h) \
	((struct domain *)((char *)(h) - offsetof(struct domain, hooks)))

static void *hook_alloc(extent_hooks_t *h, void *new_addr, size_t size,
                        size_t alignment, bool *zero, bool *commit, unsigned ind)
{
	struct domain *d = DOMAIN_OF_HOOKS(h);
	(void)ind;
	if (alignment < PAGE_SIZE_MIN)
		alignment = PAGE_SIZE_MIN;
	if (size == 0 || (alignment & (alignment - 1)) || size > PKALLOC_RESERVATION)
		return NULL;

	/* Secret data: reserved only, unless jemalloc insists on committed
	 * pages (its fallback after a failed grow); then secret pages. */
	int secret = (d->flags & DOMAIN_SECRETMEM) &&
	             !pk_secretmem_meta_call(new_addr, size, alignment, *zero, *commit);
	pthread_mutex_lock(&d->lock);
	char *top = atomic_load_explicit(&d->top, memory_order_relaxed);
	char *start = (char *)(((uintptr_t)top + alignment - 1) & ~(uintptr_t)(alignment - 1));
	char *ret = NULL;
	/* Only fresh pages above top: they have never been used, so are zero. */
	if ((new_addr == NULL || new_addr == start) && start >= top && start <= d->hi &&
	    (size_t)(d->hi - start) >= size) {
		int err = 0;
		if (secret && *commit)
			err = pk_secretmem_commit(d, start, size);
		else if (!secret)
			err = prepare_pages(d, start, size, alignment);
		if (!err && !secret)
			err = pk_cfg->backend->tag(d, start, size);
		if (!err) {
			atomic_store_explicit(&d->top, start + size, memory_order_release);
			ret = start;
		} else {
			grow_error = err;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (ret) {
		*zero = true;
		*commit = !secret || *commit;
	}
	return ret;
}

/* Decline: the extent stays with jemalloc as retained memory. */
static bool hook_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed,
                        unsigned ind)
{
	(void)h, (void)addr, (void)size, (void)committed, (void)ind;
	return true;
}

/* Called when the arena is destroyed; the reservation is unmapped right
 * after, but purge now so no secret outlives the call in RAM. */
static void hook_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed,
                         unsigned ind)
{
	(void)committed, (void)ind;
	/* Secret pages go with their chunks' files, zeroed by the kernel as
	 * it frees them. */
	if (pk_secretmem_holds(DOMAIN_OF_HOOKS(h), addr))
		return;
	if (pk_prot_purge(addr, size) != 0 && pk_prot_unlock(addr, size) == 0)
		pk_prot_purge(addr, size);
}

/* Pages are always committed, but a secretmem domain's data. */
static bool hook_commit(extent_hooks_t *h, void *addr, size_t size, size_t off,
                        size_t len, unsigned ind)
{
	struct domain *d = DOMAIN_OF_HOOKS(h);
	(void)size, (void)ind;
	if (!(d->flags & DOMAIN_SECRETMEM))
		return false;
	pthread_mutex_lock(&d->lock);
	int err = pk_secretmem_commit(d, (char *)addr + off, len);
	pthread_mutex_unlock(&d->lock);
	if (err)
		grow_error = err;
	return err != 0;
}

/* Decline (jemalloc purges instead), but for secret data. */
static bool hook_decommit(extent_hooks_t *h, void *addr, size_t size, size_t off,
                          size_t len, unsigned ind)
{
	struct domain *d = DOMAIN_OF_HOOKS(h);
	char *a = (char *)addr + off;
	(void)size, (void)ind;
	if (!pk_secretmem_holds(d, a))
		return true;
	pthread_mutex_lock(&d->lock);
	int err = pk_secretmem_decommit(d, a, len);
	pthread_mutex_unlock(&d->lock);
	return err != 0;
}

static bool hook_purge(extent_hooks_t *h, void *addr, size_t size, size_t off,
                       size_t len, unsigned ind)
{
	struct domain *d = DOMAIN_OF_HOOKS(h);
	char *a = (char *)addr + off;
	(void)size, (void)ind;
	/* Secret pages cannot be dropped one by one: wiped, they count as
	 * purged (zeroed). */
	if (pk_secretmem_holds(d, a)) {
		pk_secretmem_wipe(a, len);
		return false;
	}
	if (pk_prot_purge(a, len) == 0)
		return false;
	/* While the arena is destroyed, jemalloc purges its metadata blocks
	 * last and, on failure, reads the hooks again from the block itself.
	 * A purge that stopped half-way (pages an unlock missed are still
	 * locked) has zeroed them: unlock and purge the whole block instead. */
	return atomic_load(&d->state) != DOM_DYING || pk_prot_unlock(a, len) != 0 ||
	       pk_prot_purge(a, len) != 0;
}

static bool hook_split(extent_hooks_t *h, void *addr, size_t size, size_t size_a,
                       size_t size_b, bool committed, unsigned ind)
{
	(void)h, (void)addr, (void)size, (void)size_a, (void)size_b, (void)committed, (void)ind;
	return false;
}

static bool hook_merge(extent_hooks_t *h, void *addr_a, size_t size_a, void *addr_b,
                       size_t size_b, bool committed, unsigned ind)
{
	(void)h, (void)addr_a, (void)size_a, (void)addr_b, (void)size_b, (void)committed, (void)ind;
	return false;
}

void pk_extent_hooks_init(struct domain *d)
{
	d->hooks = (extent_hooks_t){
		.alloc = hook_alloc,
		.dalloc = hook_dalloc,
		.destroy = hook_destroy,
		.commit = hook_commit,
		.decommit = hook_decommit,
		.purge_lazy = NULL,     /* MADV_FREE leaves data readable until reclaimed */
		.purge_forced = hook_purge,
		.split = hook_split,
		.merge = hook_merge,
	};
}
