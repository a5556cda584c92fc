/*
 * The key pool of the pku backend: which domain holds which hardware key,
 * LRU eviction, and the shared pool when every key is pinned.
 */
#ifndef PKALLOC_KEYS_H
#define PKALLOC_KEYS_H

#include <stdint.h>

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

struct domain;
struct pkalloc_stats;

/* Process-wide event counts, for pkalloc_stats. */
struct pk_counters {
	unsigned long long evictions, retags, shared_entries;
	_Atomic unsigned long long faults;
};
extern struct pk_counters pk_counters;

/* Give pinned, keyless d a key.  0, EBUSY (PKALLOC_STRICT and every key is
 * pinned, !may_share) or ENOSPC (the kernel gave pkalloc no key at all). */
int pk_keys_acquire(struct domain *d, int may_share);
/* d is being destroyed: drop it from its key. */
void pk_keys_release(struct domain *d);
/* PKRU_BITS of every key pkalloc owns. */
uint32_t pk_keys_owned_bits(void);
void pk_keys_fork_lock(void);
void pk_keys_fork_unlock(int child);
void pk_keys_stats(struct pkalloc_stats *st);

#pragma GCC visibility pop

#endif
