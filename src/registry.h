/*
 * The registry: one array of domain records, mapped at init and never
 * freed, and the handles that name them.  A handle is an address in a
 * reserved PROT_NONE range, HANDLE_STRIDE * (gen << HANDLE_SLOT_BITS | slot)
 * past its base: checked by arithmetic, never dereferenced.
 */
#ifndef PKALLOC_REGISTRY_H
#define PKALLOC_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

#define HANDLE_SLOT_BITS 12          /* MAX_DOMAINS */
#define HANDLE_GEN_BITS  16
#define HANDLE_STRIDE    16          /* handle +1 .. +15 is never a handle */
#define HANDLE_SPACE     (((size_t)1 << (HANDLE_SLOT_BITS + HANDLE_GEN_BITS)) * HANDLE_STRIDE)
extern struct domain *pk_registry;
extern uintptr_t pk_registry_handles;   /* base of the reserved handle range */

/* Handle -> live record, or NULL: arithmetic, never a dereference of h. */
static inline struct domain *registry_check(const domain_t *h)
{
	uintptr_t a = (uintptr_t)h, base = pk_registry_handles;
	if (!base || a - base >= HANDLE_SPACE || (a - base) % HANDLE_STRIDE != 0)
		return NULL;
	uintptr_t id = (a - base) / HANDLE_STRIDE;
	struct domain *d = &pk_registry[id & (MAX_DOMAINS - 1)];
	if (atomic_load_explicit(&d->state, memory_order_acquire) != DOM_LIVE)
		return NULL;
	uintptr_t gen = atomic_load_explicit(&d->gen, memory_order_relaxed) &
	                (((uintptr_t)1 << HANDLE_GEN_BITS) - 1);
	return gen == id >> HANDLE_SLOT_BITS ? d : NULL;
}

/* 0 or an errno value. */
int pk_registry_init(void);
domain_t *pk_registry_handle(const struct domain *d);
unsigned pk_registry_slot(const struct domain *d);

/* The registry lock: taken by creates, destroys, statistics and fork
 * (internal.h gives the lock order). */
void pk_registry_lock(void);
void pk_registry_unlock(void);

/* A free record's slot (registry lock held): every never-used slot first,
 * then freed ones first-in first-out.  -1 if none. */
int pk_registry_take_slot(void);
void pk_registry_put_slot(unsigned slot);

/* fn(d, arg) for every domain that has an arena (live, or being destroyed). */
void pk_registry_foreach_live(void (*fn)(struct domain *d, void *arg), void *arg);

/* In a fork child: the lock, and the pin counts of free records, which
 * threads that did not survive may have left half-way. */
void pk_registry_reset_in_child(void);

#pragma GCC visibility pop

#endif
