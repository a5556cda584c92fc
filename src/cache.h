/* Per-(thread, domain) caches of small blocks, kept inside their domain. */
#ifndef PKALLOC_CACHE_H
#define PKALLOC_CACHE_H

#include <stddef.h>

#include "internal.h"
#include "settings.h"

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

struct domain;

/* The cache class of an allocation of size bytes (0 < size <= CACHE_MAX). */
#define CACHE_CLASS(size) (pk_cfg->class_of[((size) + 7) >> 3])

/* Fill the class tables of the configuration (init, before any domain). */
void pk_cache_classes_init(void);

/*
 * The fast path.  Both are called with a window open on d and d live.
 * pk_cache_alloc: a block of class cls from this thread's cache of d, its
 * start bit set, zeroed; NULL when the thread keeps no cache of d (yet),
 * and the caller goes to the arena.  pk_cache_free: wipe the allocated block
 * p of class cls and keep it in this thread's cache of d; 0 when the
 * thread keeps none, and the caller frees it to the arena.
 */
void *pk_cache_alloc(struct domain *d, unsigned cls);
int pk_cache_free(struct domain *d, void *p, unsigned cls);

/* The same, for a caller holding no window: NULL unless the calling thread
 * can use d's memory right now (enter_open_now). */
void *pk_cache_try_alloc(struct domain *d, unsigned cls);

/* Empty d's orphans, if it has any: every call on d does, with a window
 * on d held, so that a cache let go waits for one call at most. */
void pk_cache_settle_orphans(struct domain *d);

/* The whole fast path of domain_malloc and domain_free (and free of domain
 * memory): NULL and 0 unless every check passes on the first try and the
 * calling thread is inside the domain read-write; the caller then takes
 * its usual path, which says what is wrong, if anything. */
void *pk_cache_fast_malloc(domain_t *dh, size_t size);
int pk_cache_fast_free(void *p);

/* 1 if the block p of d, whose first word holds the free key, sits in a
 * cache of d (a double free); window on d held. */
int pk_cache_holds(struct domain *d, const void *p);

/* d's usable bytes of live allocations, and bytes of free blocks in its
 * caches: d->allocated and d->cached, with what threads took from or gave
 * back to their caches since they last settled. */
void pk_cache_counts(struct domain *d, size_t *allocated, size_t *cached);

/* A new domain in d's record: no cache, nothing settled (registry lock). */
void pk_cache_domain_init(struct domain *d);
/* d is being destroyed and nobody can pin it; the caller holds a window:
 * every cache of d goes back to the arena. */
void pk_cache_domain_destroy(struct domain *d);

/* Thread exit, at each round of the exit handler: this thread's caches
 * become orphans of their domains; no domain is opened.  last: the
 * handler runs no more, so no cache is made for this thread again. */
void pk_cache_thread_exit(int last);

/* fork(): locks in the prepare handler (registry lock held); after it,
 * the child keeps this thread's caches and makes every other thread's an
 * orphan, opening nothing. */
void pk_cache_prefork(void);
void pk_cache_postfork(int child);

#pragma GCC visibility pop

#endif
