/*
 * Reservations and guard space; address -> domain.
 *
 * A reservation is mapped PROT_NONE and excluded from core dumps.  Its
 * first and last PKALLOC_GUARD bytes are never handed to jemalloc, so any
 * two domains, and a domain and ordinary memory, are always separated by
 * at least that much inaccessible space.  The guards stay mapped (PROT_NONE)
 * so that nothing else can ever be placed in them.
 *
 * A destroyed domain's reservation is not given back to the system: it is
 * mapped afresh, empty and PROT_NONE, and its region keeps a tombstone in
 * the owner table, so that free() of a pointer into it still knows the
 * pointer was domain memory (ordinary memory cannot move in there) and
 * stops with a clear line instead of handing it to jemalloc.  New domains
 * take these ranges back oldest first, and only while more than
 * RESERVE_KEEP of them wait (or when the system has no address space
 * left): a dangling pointer stays recognised through at least that many
 * later destroys.  The ranges kept are never more than the most domains
 * ever alive at once, plus RESERVE_KEEP.
 */
#include "internal.h"
#include "protect.h"
#include "reserve.h"
#include "pagerec.h"
#include "registry.h"
#include "settings.h"
#include "fatal.h"

#include <errno.h>
#include <string.h>

#define REGION_SHIFT RESERVE_SHIFT
#define REGIONS      RESERVE_REGIONS

/* Destroyed domains' ranges waiting before a new domain may take one. */
#define RESERVE_KEEP 16

_Static_assert(PKALLOC_RESERVATION == (size_t)1 << REGION_SHIFT, "layout");

/* Registry slot + 1 of the domain owning each 4 GiB region of user space;
 * RESERVE_TOMB: a destroyed domain's range, kept. */
_Atomic uint16_t pk_reserve_owner[REGIONS];
#define owner pk_reserve_owner

/* The kept ranges, a FIFO ring; under the registry lock, as are
 * pk_reserve_create and pk_reserve_destroy. */
static char *retired[MAX_DOMAINS + RESERVE_KEEP + 1];
static unsigned retired_head, retired_n;
#define RETIRED_CAP (sizeof retired / sizeof retired[0])

static void reserve_retire(char *base);

/* A kept range for a new domain, or NULL: only past RESERVE_KEEP waiting,
 * unless the system has no address space left (any). */
static char *take_retired(int any)
{
	if (retired_n <= (any ? 0 : RESERVE_KEEP))
		return NULL;
	char *base = retired[retired_head];
	retired_head = (retired_head + 1) % RETIRED_CAP;
	retired_n--;
	return base;
}

int pk_reserve_create(struct domain *d, unsigned slot)
{
	void *base = take_retired(0);
	int err;
	/* No fresh range (ENOMEM; valgrind's address space manager says
	 * EINVAL): a kept one, if any, rather than fail. */
	if (!base && (err = pk_prot_reserve(PKALLOC_RESERVATION, PKALLOC_RESERVATION, &base)) != 0 &&
	    !(base = take_retired(1)))
		return err;
	uintptr_t region = (uintptr_t)base >> REGION_SHIFT;
	if (region >= REGIONS) {          /* only with 5-level paging hints */
		pk_prot_release(base, PKALLOC_RESERVATION);
		return ENOMEM;
	}
	void *recs;
	if ((err = pk_prot_map_private(REC_BYTES, &recs)) != 0) {
		reserve_retire(base);      /* back to the ring, or to the system */
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

static void reserve_retire(char *base)
{
	uintptr_t region = (uintptr_t)base >> REGION_SHIFT;
	/* Emptied in place (its pages and their key go, nothing else can be
	 * mapped there meanwhile), and marked; if that fails, or there is no
	 * room to remember it, it goes back to the system and its region is
	 * forgotten first. */
	if (retired_n < RETIRED_CAP && pk_prot_empty(base, PKALLOC_RESERVATION) == 0) {
		atomic_store_explicit(&owner[region], RESERVE_TOMB, memory_order_release);
		retired[(retired_head + retired_n) % RETIRED_CAP] = base;
		retired_n++;
		return;
	}
	atomic_store_explicit(&owner[region], 0, memory_order_release);
	pk_prot_release(base, PKALLOC_RESERVATION);
}

void pk_reserve_destroy(struct domain *d)
{
	reserve_retire(d->base);
	pk_prot_release(d->recs, REC_BYTES);
	d->recs = NULL;
	d->base = d->lo = d->hi = NULL;
	atomic_store_explicit(&d->top, NULL, memory_order_relaxed);
}

int pk_reserve_destroyed(const void *p)
{
	uintptr_t region = (uintptr_t)p >> REGION_SHIFT;
	return region < REGIONS &&
	       atomic_load_explicit(&owner[region], memory_order_acquire) == RESERVE_TOMB;
}

domain_t *domain_of(const void *ptr)
{
	int slot = reserve_slot_of(ptr);
	if (slot < 0)
		return NULL;
	struct domain *d = &pk_registry[slot];
	if (atomic_load_explicit(&d->state, memory_order_acquire) != DOM_LIVE)
		return NULL;
	domain_t *h = pk_registry_handle(d);
	/* The range and the record are read apart: meanwhile the domain may
	 * have been destroyed (its range kept as a tombstone) and its record
	 * taken by a new domain with a range of its own.  If the range still
	 * belongs to the record, whose domain is still the one named, the
	 * answer holds. */
	atomic_thread_fence(memory_order_acquire);
	if (reserve_slot_of(ptr) != slot || registry_check(h) != d)
		return NULL;
	return h;
}
