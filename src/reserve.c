/*
 * Reservations and guard space; address -> domain.
 *
 * A reservation is mapped PROT_NONE and excluded from core dumps.  Its
 * first and last PKALLOC_GUARD bytes are never handed to jemalloc, so any
 * two domains, and a domain and ordinary memory, are always separated by
 * at least that much inaccessible space.  The guards stay mapped (PROT_NONE)
 * so that nothing else can ever be placed in them.
 */
#include "internal.h"
#include "protect.h"
#include "reserve.h"
#include "pagerec.h"

#include <errno.h>
#include <string.h>

#define REGION_SHIFT RESERVE_SHIFT
#define REGIONS      RESERVE_REGIONS


_Static_assert(PKALLOC_RESERVATION == (size_t)1 << REGION_SHIFT, "layout");

/* Registry slot + 1 of the domain owning each 4 GiB region of user space. */
_Atomic uint16_t reserve_owner[REGIONS];
#define owner reserve_owner

int reserve_create(struct domain *d, unsigned slot)
{
	void *base;
	int err = prot_reserve(PKALLOC_RESERVATION, PKALLOC_RESERVATION, &base);
	if (err)
		return err;
	uintptr_t region = (uintptr_t)base >> REGION_SHIFT;
	if (region >= REGIONS) {          /* only with 5-level paging hints */
		prot_release(base, PKALLOC_RESERVATION);
		return ENOMEM;
	}
	void *recs;
	if ((err = prot_map_private(REC_BYTES, &recs)) != 0) {
		prot_release(base, PKALLOC_RESERVATION);
		return err;
	}
	d->recs = recs;
	memset(d->first_recs, 0, sizeof d->first_recs);
	d->base = base;
	d->lo = d->base + PKALLOC_GUARD;
	d->hi = d->base + PKALLOC_RESERVATION - PKALLOC_GUARD;
	atomic_store_explicit(&d->top, d->lo, memory_order_relaxed);
	atomic_store_explicit(&owner[region], (uint16_t)(slot + 1), memory_order_release);
	return 0;
}

void reserve_destroy(struct domain *d)
{
	/* Forget the owner before the range can be mapped by anyone else. */
	atomic_store_explicit(&owner[(uintptr_t)d->base >> REGION_SHIFT], 0,
	                      memory_order_release);
	prot_release(d->base, PKALLOC_RESERVATION);
	prot_release(d->recs, REC_BYTES);
	d->recs = NULL;
	d->base = d->lo = d->hi = NULL;
	atomic_store_explicit(&d->top, NULL, memory_order_relaxed);
}
