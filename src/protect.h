/*
 * The protection interface: every system call that maps, protects, tags or
 * purges memory, and every PKRU write, goes through here.
 *
 * Contract: addresses and lengths are page-aligned; functions returning int
 * return 0 on success or an errno value (never -1).  A backend is chosen
 * once at init and never changes.
 */
#ifndef PKALLOC_PROTECT_H
#define PKALLOC_PROTECT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct domain;

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

int open_entry_access(const struct open_entry *e) __attribute__((visibility("hidden")));

struct backend {
	const char *name;
	int per_thread;            /* access is per thread (pku) or process-wide */

	/* 0 when usable on this machine, else an errno value. */
	int (*probe)(void);

	/* The calling thread has just pinned d (d->inside went up): make d
	 * usable, e.g. give it a key.  may_share: a shared key is acceptable
	 * even under PKALLOC_STRICT.  0 or an errno value.  May be NULL. */
	int (*pinned)(struct domain *d, int may_share);
	/* d->inside went down.  May be NULL. */
	void (*unpinned)(struct domain *d);
	/* d is being destroyed (pinned by the destroyer for the last time):
	 * let go of its key.  May be NULL. */
	void (*release)(struct domain *d);

	/* The permission d's pages must have now (d->lock held). */
	int (*want)(const struct domain *d);

	/* New pages [addr, addr+len) of d: make them d's (called under d->lock,
	 * always while d is pinned). */
	int (*tag)(struct domain *d, void *addr, size_t len);

	/* The calling thread's effective access to d went from `from` to `to`;
	 * set is the thread's whole open set after the change. */
	int (*access)(struct domain *d, int from, int to, const struct open_set *set);

	/* Open pinned d for reading and writing around one jemalloc call on
	 * this thread; *token is passed to window_close.  0, or an errno
	 * value with d left as it was. */
	int (*window_open)(struct domain *d, uintptr_t *token);
	void (*window_close)(struct domain *d, uintptr_t token);

	/* First thing in a new thread: close every domain the creator's
	 * PKRU left open (the open set of a new thread is empty).  May be NULL. */
	void (*thread_start)(void);

	/* fork(): prefork_thread runs first, then every live domain is opened
	 * read-write (jemalloc's own fork handlers lock mutexes that live in
	 * domain memory); after the fork, in parent and child, every domain
	 * goes back to what its state says, then postfork_thread.  May be NULL. */
	void (*prefork_thread)(const struct open_set *set);
	void (*postfork_thread)(const struct open_set *set, int child);
};

extern const struct backend backend_pku __attribute__((visibility("hidden")));
extern const struct backend backend_mprotect __attribute__((visibility("hidden")));

/* OS primitives shared by both backends (protect.c). */
int prot_reserve(size_t size, size_t align, void **out) __attribute__((visibility("hidden")));
int prot_release(void *addr, size_t size) __attribute__((visibility("hidden")));
/* Map a reserved range afresh in place: empty, PROT_NONE, key 0, no core
 * dump, no huge pages; nothing else can take it meanwhile. */
int prot_empty(void *addr, size_t size) __attribute__((visibility("hidden")));
/* Lock pages in RAM as they are touched (mlock2 MLOCK_ONFAULT). */
int prot_lock(void *addr, size_t size) __attribute__((visibility("hidden")));
int prot_unlock(void *addr, size_t size) __attribute__((visibility("hidden")));
/* Hold off every signal of the calling thread while a lock that a signal
 * handler could want is held; give back the old mask after. */
void prot_signals_off(sigset_t *old) __attribute__((visibility("hidden")));
void prot_signals_on(const sigset_t *old) __attribute__((visibility("hidden")));
/* A fork child sees these pages zeroed (MADV_WIPEONFORK). */
int prot_wipe_on_fork(void *addr, size_t size) __attribute__((visibility("hidden")));
/* Plain private read-write memory for pkalloc's own bookkeeping. */
int prot_map_private(size_t size, void **out) __attribute__((visibility("hidden")));
int prot_purge(void *addr, size_t size) __attribute__((visibility("hidden")));
/* Keep [addr, addr+size) off transparent huge pages (MADV_NOHUGEPAGE);
 * 0 also where the kernel has no THP. */
int prot_no_huge_pages(void *addr, size_t size) __attribute__((visibility("hidden")));

/* Give d's pages [lo, top) the permission backend->want(d) asks for, with
 * one mprotect call if it differs from what they have; d->lock held. */
int prot_apply(struct domain *d) __attribute__((visibility("hidden")));
/* Move d's pages to key `key` with permission prot (pkey_mprotect). */
int prot_apply_key(struct domain *d, int key, int prot) __attribute__((visibility("hidden")));
/* A new protection key, denied to the calling thread; or -errno. */
int prot_key_alloc(void) __attribute__((visibility("hidden")));

/*
 * Pins.  A thread is inside d while an entry for d is in its open set: no
 * atomic read-modify-write on the enter path.  Who must know that nobody
 * is inside (an evictor, a destroyer) first publishes its intent, then
 * calls prot_membarrier(), which makes every thread's earlier stores
 * visible (or every later load see the intent), then scans the sets.
 * The scan takes the list's lock: the innermost lock of all.
 */
void prot_threads_add(struct open_set *s) __attribute__((visibility("hidden")));
void prot_threads_remove(struct open_set *s) __attribute__((visibility("hidden")));
void prot_threads_fork_child(struct open_set *self) __attribute__((visibility("hidden")));
int prot_anyone_inside(const struct domain *d) __attribute__((visibility("hidden")));
void prot_membarrier(void) __attribute__((visibility("hidden")));
/* 1 when the kernel gave us expedited private membarrier. */
int prot_membarrier_init(void) __attribute__((visibility("hidden")));
/* The pinner's side of the fence: free with membarrier, a full fence without. */
#define PIN_FENCE() \
	(cfg->membarrier ? atomic_signal_fence(memory_order_seq_cst) \
	                 : atomic_thread_fence(memory_order_seq_cst))

/* fork() support for every backend: open d before, restore it after. */
void prot_prefork_domain(struct domain *d) __attribute__((visibility("hidden")));
void prot_postfork_domain(struct domain *d, const struct open_set *set, int child)
	__attribute__((visibility("hidden")));

#endif
