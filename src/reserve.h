/*
 * Reservations: each domain owns one PKALLOC_RESERVATION-byte range of
 * address space aligned to its size, so the domain that owns any address is
 * found by one shift and one table load.
 */
#ifndef PKALLOC_RESERVE_H
#define PKALLOC_RESERVE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "registry.h"

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

#define RESERVE_SHIFT   32        /* log2(PKALLOC_RESERVATION) */
#define RESERVE_REGIONS (1u << (47 - RESERVE_SHIFT))
#define RESERVE_TOMB    0xffffu   /* owner of a destroyed domain's range, kept */

extern _Atomic uint16_t pk_reserve_owner[RESERVE_REGIONS];

/* 1 if p lies in some domain's reservation, or in a destroyed domain's
 * range that is kept (a tombstone): free()'s test, one load. */
static inline int reserve_owned(const void *p)
{
	uintptr_t r = (uintptr_t)p >> RESERVE_SHIFT;
	return r < RESERVE_REGIONS &&
	       atomic_load_explicit(&pk_reserve_owner[r], memory_order_relaxed) != 0;
}

/*
 * 1 if [p, p + n) lies in the part of d's reservation handed to jemalloc.
 * The owner table is asked too, not only d->lo, so that no single stray
 * write to the registry makes plain memory pass for d's.  jemalloc can
 * hand out memory of another arena: in a thread-exit destructor that runs
 * after its own, it serves every call from arena 0.
 */
static inline int reserve_holds(struct domain *d, const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p, r = a >> RESERVE_SHIFT;
	char *top = atomic_load_explicit(&d->top, memory_order_acquire);
	return r < RESERVE_REGIONS &&
	       atomic_load_explicit(&pk_reserve_owner[r], memory_order_relaxed) == (uint16_t)(d - pk_registry + 1) &&
	       (const char *)p >= d->lo && (const char *)p <= top && n <= (size_t)(top - (const char *)p);
}

int pk_reserve_create(struct domain *d, unsigned slot);
void pk_reserve_destroy(struct domain *d);
/* Registry slot whose reservation holds p, or -1. */
static inline int reserve_slot_of(const void *p)
{
	uintptr_t r = (uintptr_t)p >> RESERVE_SHIFT;
	if (r >= RESERVE_REGIONS)
		return -1;
	unsigned o = atomic_load_explicit(&pk_reserve_owner[r], memory_order_acquire);
	return o == RESERVE_TOMB ? -1 : (int)o - 1;
}
/* 1 if p lies in a destroyed domain's range that no new domain took yet. */
int pk_reserve_destroyed(const void *p);

#pragma GCC visibility pop

#endif
