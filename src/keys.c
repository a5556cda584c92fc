/*
 * The key pool: any number of domains on at most 15 hardware keys.
 *
 * A domain holds a key while it has one; a domain that no thread is inside
 * (nor in an access window) can lose it.  Its pages are then "parked":
 * PROT_NONE, so no thread can reach them whatever its PKRU says.  Entering a
 * parked domain takes a free key, or evicts the least recently used key
 * whose holders are all unpinned, and re-tags the domain's one range with
 * pkey_mprotect.  Keys are never given back to the kernel.
 *
 * When every key is pinned, the domain shares a key from the pool.  All
 * domains on a shared key fall back to page permissions among themselves:
 * a sharer that nobody is inside is PROT_NONE, so a thread inside one
 * sharer still faults on another that is not entered.  (A thread inside
 * A can reach B only while some thread is inside B.)  Such entries are
 * counted, and PKALLOC_STRICT=1 refuses them with EBUSY.
 *
 * Pins and eviction pair up as in Dekker's algorithm: a pinner publishes an
 * entry for d in its open set (or counts a window in d->inside), then reads
 * d->evicting and d->key; the evictor sets d->evicting, fences every thread
 * with membarrier (protect.h, "Pins"), then looks for pins, and backs off
 * if it finds one.  So a pinned domain never loses its key, and a pinner
 * that meets an evictor waits for it here.
 * d->key itself only changes while nobody is pinned, so threads inside
 * can read it at any time (PKRU is computed from it).
 */
#define _GNU_SOURCE
#include "internal.h"
#include "protect.h"
#include "keys.h"
#include "pkru.h"
#include "settings.h"
#include "fatal.h"
#include "openset.h"
#include "pages.h"

#include <errno.h>
#include <sys/mman.h>

#define NKEYS 16

static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static struct domain *holders[NKEYS];   /* list through d->key_next */
static unsigned nholders[NKEYS];
static uint32_t owned;                  /* bit k: key k is pkalloc's */
static _Atomic uint32_t owned_bits;     /* PKRU_BITS of the owned keys */
static int kernel_out_of_keys;

struct pk_counters pk_counters;

uint32_t pk_keys_owned_bits(void)
{
	return atomic_load_explicit(&owned_bits, memory_order_relaxed);
}

static void unhold(struct domain *d, int k)
{
	for (struct domain **pp = &holders[k]; *pp; pp = &(*pp)->key_next)
		if (*pp == d) {
			*pp = d->key_next;
			nholders[k]--;
			return;
		}
}

/* Pinned by a thread inside or by an access window. */
static int pinned_now(const struct domain *h)
{
	return atomic_load(&h->inside) != 0 || pk_openset_anyone_inside(h);
}

static void set_shared(struct domain *d, int shared)
{
	atomic_store(&d->shared, shared);
	/* Pinners read `shared` after publishing their pin: make sure every
	 * one either sees it or is seen by the scan in pk_pages_apply. */
	if (shared)
		pk_openset_membarrier();
	pk_pages_apply_or_die(d, "mprotect", "cannot change a shared domain's permissions");
}

/* A key nobody holds: one of ours, or a new one from the kernel. */
static int free_key(void)
{
	for (int k = 1; k < NKEYS; k++)
		if ((owned >> k & 1) && nholders[k] == 0)
			return k;
	/* Holding no key, pkalloc could never make a domain again: ask anyway. */
	if (kernel_out_of_keys && owned)
		return -1;
	int k = pk_prot_key_alloc();
	if (k < 0 || k >= NKEYS) {
		kernel_out_of_keys = 1;    /* others may free keys, but we do not poll */
		return -1;
	}
	owned |= UINT32_C(1) << k;
	atomic_fetch_or(&owned_bits, PKRU_BITS(k));
	return k;
}

/* Take key k from every holder.  1 if it is free now; 0 if a holder got
 * pinned meanwhile (it keeps the key; the others stay parked). */
static int evict(int k)
{
	int freed = 1;
	/* Announce, fence every thread once, then look for pins. */
	for (struct domain *h = holders[k]; h; h = h->key_next)
		atomic_store(&h->evicting, 1);
	pk_openset_membarrier();
	struct domain **pp = &holders[k];
	while (*pp) {
		struct domain *h = *pp;
		if (pinned_now(h)) {
			atomic_store(&h->evicting, 0);
			freed = 0;
			pp = &h->key_next;
			continue;
		}
		atomic_store(&h->key, -1);
		set_shared(h, 0);              /* key -1: parks it, PROT_NONE */
		atomic_store(&h->evicting, 0);
		*pp = h->key_next;
		nholders[k]--;
		h->evictions++;
		pk_counters.evictions++;
	}
	if (nholders[k] == 1 && holders[k] && atomic_load(&holders[k]->shared))
		set_shared(holders[k], 0);     /* alone again: the key isolates it */
	return freed;
}

/* The owned key whose holders are all unpinned and least recently used. */
static int lru_key(void)
{
	int best = -1;
	uint64_t best_t = UINT64_MAX;
	for (int k = 1; k < NKEYS; k++) {
		if (!(owned >> k & 1) || nholders[k] == 0)
			continue;
		uint64_t t = 0;
		int pinned = 0;
		for (struct domain *h = holders[k]; h && !pinned; h = h->key_next) {
			pinned = pinned_now(h);
			uint64_t u = atomic_load_explicit(&h->last_used, memory_order_relaxed);
			t = u > t ? u : t;
		}
		if (!pinned && t < best_t) {
			best = k;
			best_t = t;
		}
	}
	return best;
}

static int least_shared_key(void)
{
	int best = -1;
	for (int k = 1; k < NKEYS; k++)
		if ((owned >> k & 1) && (best < 0 || nholders[k] < nholders[best]))
			best = k;
	return best;
}

/* Move pinned d onto key k: tag its pages first, publish the key last, so
 * that no pinner uses the key before the pages carry it. */
static void give(struct domain *d, int k, int shared)
{
	pthread_mutex_lock(&d->lock);
	atomic_store(&d->shared, shared);
	int err = pk_pages_apply_key(d, k, PROT_READ | PROT_WRITE);
	pthread_mutex_unlock(&d->lock);
	if (err)
		pk_fatal("pkey_mprotect", d->lo, err, "cannot tag a domain with its key");
	d->key_next = holders[k];
	holders[k] = d;
	nholders[k]++;
	d->key_loads++;
	pk_counters.retags++;
	atomic_store(&d->key, k);
}

int pk_keys_acquire(struct domain *d, int may_share)
{
	int err = 0;
	pthread_mutex_lock(&keys_lock);
	if (atomic_load(&d->key) >= 0)
		goto out;                   /* another pinner gave it one */
	int k = free_key();
	for (int tries = 0; k < 0 && tries < NKEYS; tries++) {
		int victim = lru_key();
		if (victim < 0)
			break;
		if (evict(victim))
			k = victim;
	}
	if (k >= 0) {
		give(d, k, 0);
		goto out;
	}
	/* Every key is pinned: the shared pool. */
	if (pk_cfg->strict && !may_share) {
		err = EBUSY;
		goto out;
	}
	k = least_shared_key();
	if (k < 0) {
		err = ENOSPC;               /* other code holds every key */
		goto out;
	}
	for (struct domain *h = holders[k]; h; h = h->key_next)
		if (!atomic_load(&h->shared))
			set_shared(h, 1);
	give(d, k, 1);
	pk_counters.shared_entries++;
out:
	pthread_mutex_unlock(&keys_lock);
	return err;
}

void pk_keys_release(struct domain *d)
{
	pthread_mutex_lock(&keys_lock);
	int k = atomic_load(&d->key);
	if (k >= 0) {
		unhold(d, k);
		atomic_store(&d->key, -1);
		if (nholders[k] == 1 && holders[k] && atomic_load(&holders[k]->shared))
			set_shared(holders[k], 0);
	}
	pthread_mutex_unlock(&keys_lock);
}

void pk_keys_fork_lock(void)
{
	pthread_mutex_lock(&keys_lock);
}

void pk_keys_fork_unlock(int child)
{
	if (child)
		pthread_mutex_init(&keys_lock, NULL);
	else
		pthread_mutex_unlock(&keys_lock);
}

void pk_keys_stats(struct pkalloc_stats *st)
{
	pthread_mutex_lock(&keys_lock);
	st->keys_owned = (unsigned)__builtin_popcount(owned);
	st->keys_in_use = 0;
	for (int k = 1; k < NKEYS; k++)
		st->keys_in_use += (owned >> k & 1) && nholders[k] > 0;
	st->evictions = pk_counters.evictions;
	st->retags = pk_counters.retags;
	st->shared_entries = pk_counters.shared_entries;
	pthread_mutex_unlock(&keys_lock);
}
