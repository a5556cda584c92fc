/*
 * domain_stats and pkalloc_stats: counters read without stopping anyone,
 * so each figure is exact but the set is not one atomic snapshot.
 */
#include "internal.h"
#include "keys.h"
#include "protect.h"
#include "cache.h"
#include "settings.h"
#include "init.h"
#include "registry.h"

#include <errno.h>
#include <string.h>

static size_t mapped_of(const struct domain *d)
{
	char *top = atomic_load_explicit(&((struct domain *)d)->top, memory_order_relaxed);
	return top ? (size_t)(top - d->lo) : 0;
}

int domain_stats(domain_t *dh, struct domain_stats *st)
{
	struct domain *d = registry_check(dh);
	if (!d || !st) {
		errno = EINVAL;
		return -1;
	}
	memset(st, 0, sizeof *st);
	pk_cache_counts(d, &st->allocated, &st->cached);
	st->mapped = mapped_of(d);
	st->key = atomic_load(&d->key);
	st->shared = atomic_load(&d->shared);
	st->key_loads = d->key_loads;
	st->evictions = d->evictions;
	st->secretmem = (d->flags & DOMAIN_SECRETMEM) != 0;
	return 0;
}

static void add_domain(struct domain *d, void *arg)
{
	struct pkalloc_stats *sum_into = arg;
	if (atomic_load(&d->state) != DOM_LIVE)
		return;
	sum_into->domains++;
	size_t allocated, cached;
	pk_cache_counts(d, &allocated, &cached);
	sum_into->allocated += allocated;
	sum_into->cached += cached;
	sum_into->mapped += mapped_of(d);
}

int pkalloc_stats(struct pkalloc_stats *st)
{
	if (!st) {
		errno = EINVAL;
		return -1;
	}
	pk_init();
	memset(st, 0, sizeof *st);
	pk_registry_lock();
	pk_registry_foreach_live(add_domain, st);
	pk_registry_unlock();
	if (pk_cfg->backend && pk_cfg->backend->per_thread)
		pk_keys_stats(st);
	st->faults = atomic_load(&pk_counters.faults);
	return 0;
}
