/*
 * The registry of domain records and their handles (registry.h), and
 * domain_name.
 *
 * A handle is not a record's address but a token encoding the record's slot
 * and its generation (bumped at every destroy).  So a wild pointer, or a
 * destroyed handle whose slot now holds another domain, gives EINVAL
 * instead of a fault or a wrong domain; a stale handle can only alias after
 * 2^16 reuses of one slot.  Handles are not secrets: a live neighbour's
 * handle is a fixed offset away, and works.
 */
#include "internal.h"
#include "registry.h"
#include "protect.h"

#include <errno.h>

_Static_assert(MAX_DOMAINS == 1 << HANDLE_SLOT_BITS, "handle layout");

struct domain *pk_registry;
uintptr_t pk_registry_handles;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned never_used;             /* slots [never_used, MAX_DOMAINS) */
static unsigned free_head, free_tail;   /* FIFO of freed slots, index + 1 */

int pk_registry_init(void)
{
	void *p, *h;
	int err = pk_prot_map_private(MAX_DOMAINS * sizeof(struct domain), &p);
	if (err)
		return err;
	if ((err = pk_prot_reserve(HANDLE_SPACE, PAGE_SIZE_MIN, &h)) != 0) {
		pk_prot_release(p, MAX_DOMAINS * sizeof(struct domain));
		return err;
	}
	pk_registry_handles = (uintptr_t)h;
	pk_registry = p;
	return 0;
}

domain_t *pk_registry_handle(const struct domain *d)
{
	uintptr_t gen = atomic_load_explicit(&((struct domain *)d)->gen, memory_order_relaxed) &
	                (((uintptr_t)1 << HANDLE_GEN_BITS) - 1);
	uintptr_t id = gen << HANDLE_SLOT_BITS | pk_registry_slot(d);
	return (domain_t *)(pk_registry_handles + id * HANDLE_STRIDE);
}

unsigned pk_registry_slot(const struct domain *d)
{
	return (unsigned)(d - pk_registry);
}

void pk_registry_lock(void) { pthread_mutex_lock(&lock); }
void pk_registry_unlock(void) { pthread_mutex_unlock(&lock); }

void pk_registry_foreach_live(void (*fn)(struct domain *, void *), void *arg)
{
	for (unsigned i = 0; pk_registry && i < never_used; i++) {
		int st = atomic_load(&pk_registry[i].state);
		if (st == DOM_LIVE || st == DOM_DYING)
			fn(&pk_registry[i], arg);
	}
}

void pk_registry_reset_in_child(void)
{
	pthread_mutex_init(&lock, NULL);
	for (unsigned i = 0; pk_registry && i < never_used; i++)
		if (atomic_load(&pk_registry[i].state) == DOM_FREE)
			atomic_store(&pk_registry[i].inside, 0);
}

int pk_registry_take_slot(void)
{
	if (never_used < MAX_DOMAINS)
		return (int)never_used++;
	if (!free_head)
		return -1;
	unsigned s = free_head - 1;
	free_head = pk_registry[s].next_free;
	if (!free_head)
		free_tail = 0;
	return (int)s;
}

void pk_registry_put_slot(unsigned s)
{
	pk_registry[s].next_free = 0;
	if (free_tail)
		pk_registry[free_tail - 1].next_free = s + 1;
	else
		free_head = s + 1;
	free_tail = s + 1;
}

const char *domain_name(const domain_t *dh)
{
	struct domain *d = registry_check(dh);
	if (!d) {
		errno = EINVAL;
		return NULL;
	}
	return d->name;
}
