/*
 * Open sets: per thread, the domains the thread is inside, in levels (a
 * signal handler that interrupts a change uses the next level).  And the
 * list of registered threads' sets, scanned for pins, with membarrier.
 * enter.c keeps each thread's set; backends and keys read them.
 */
#ifndef PKALLOC_OPENSET_H
#define PKALLOC_OPENSET_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"
#include "settings.h"

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

/*
 * One domain a thread is inside: what enter.c keeps and backends read.
 * Bits 56-63 of st hold the depth (open enters, up to PKALLOC_MAX_NEST);
 * bit i < 56 says enter i (0 = outermost) was RDWR.
 */
struct open_entry {
	struct domain *d;
	uint32_t gen;
	uint64_t st;
};
#define ENTRY_DEPTH(st) ((unsigned)((st) >> 56))

/*
 * A thread's open set, in levels.  Ordinary code uses level 0.  A signal
 * handler that interrupts an enter or exit half-way (its level is busy)
 * uses the next level, and since a handler leaves the set as it found it,
 * every level's changes stay whole.  The thread's access is the union.
 */
#define OPEN_LEVELS 3
/* Consecutive read-write enters of one capturing domain (enter.c). */
struct capture_run {
	struct domain *d;
	unsigned n;
};
struct open_level {
	unsigned n;
	volatile int busy;
	struct open_entry e[PKALLOC_MAX_OPEN];
	unsigned ncap;             /* the capture stack: cap[ncap - 1] is innermost */
	struct capture_run cap[PKALLOC_MAX_CAPTURE];
};

struct open_set {
	int registered;            /* thread-exit destructor armed, listed */
	struct open_set *next;     /* the list of registered threads */
	struct open_level lv[OPEN_LEVELS];
};

#define FOR_EACH_OPEN(set, e) \
	for (unsigned l_ = 0; l_ < OPEN_LEVELS; l_++) \
		for (const struct open_entry *e = (set)->lv[l_].e; \
		     e < (set)->lv[l_].e + (set)->lv[l_].n; e++)

/* An entry's access: DOMAIN_RDONLY, DOMAIN_RDWR, or ACCESS_NONE while it is
 * being made. */
int pk_openset_entry_access(const struct open_entry *e);

/*
 * Pins.  A thread is inside d while an entry for d is in its open set: no
 * atomic read-modify-write on the enter path.  Who must know that nobody
 * is inside (an evictor, a destroyer) first publishes its intent, then
 * calls pk_openset_membarrier(), which makes every thread's earlier stores
 * visible (or every later load see the intent), then scans the sets.
 * The scan takes the list's lock: the innermost lock of all.
 */
void pk_openset_add(struct open_set *s);
void pk_openset_remove(struct open_set *s);
/* In a fork child: self is the only thread left. */
void pk_openset_fork_child(struct open_set *self);
int pk_openset_anyone_inside(const struct domain *d);
void pk_openset_membarrier(void);
/* 1 when the kernel gave us expedited private membarrier. */
int pk_openset_membarrier_init(void);
/* The pinner's side of the fence: free with membarrier, a full fence without. */
#define PIN_FENCE() \
	(pk_cfg->membarrier ? atomic_signal_fence(memory_order_seq_cst) \
	                 : atomic_thread_fence(memory_order_seq_cst))

#pragma GCC visibility pop

#endif
