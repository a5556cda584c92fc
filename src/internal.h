/*
 * Definitions shared by pkalloc's modules: the domain record, the registry,
 * the read-only configuration and the fatal-error path.  Never installed.
 */
#ifndef PKALLOC_INTERNAL_H
#define PKALLOC_INTERNAL_H

#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define JEMALLOC_NO_DEMANGLE
#include <jemalloc/jemalloc.h>

#include "pkalloc.h"

#define HIDDEN __attribute__((visibility("hidden")))

/* Built with ThreadSanitizer (thread.c). */
#if defined(__SANITIZE_THREAD__)
#define PKALLOC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PKALLOC_TSAN 1
#endif
#endif
/* Thread-local words read on every malloc: no __tls_get_addr call. */
#define TLS_FAST __attribute__((tls_model("initial-exec")))
#define LIKELY(x)   __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define PAGE_SIZE_MIN 4096
#define MAX_DOMAINS   4096    /* jemalloc allows at most 4095 arenas */

/* Domain record states. */
enum { DOM_FREE = 0, DOM_CREATING, DOM_LIVE, DOM_DYING };

#define INSIDE_DEAD (1u << 31)

/* Effective access of a thread to a domain (DOMAIN_RDONLY/RDWR, or none). */
#define ACCESS_NONE 0

/* One 4 KiB page of a domain: where allocations start on it, and the cache
 * class of its small blocks (pagerec.h). */
struct page_rec {
	_Atomic uint64_t starts[8];   /* bit i of word w: a block starts at 8 (64 w + i) */
	_Atomic uint8_t cls;          /* cache class, or CLASS_NONE */
};
#define REC_INLINE 4               /* records kept in the registry entry */

/* Cache classes (cache.c): jemalloc's small size classes up to CACHE_MAX
 * bytes are 1 .. cfg->nclasses; 0 is none. */
#define CLASS_NONE   0
#define CACHE_MAX    1024
#define CLASSES_MAX  32
#define CACHE_SLOTS  64            /* caches per domain (threads using it at once) */

/* A cache slot's state (cache.c), under the domain's cache lock. */
enum { SLOT_FREE = 0, SLOT_OWNED, SLOT_ORPHAN };
struct cache;

struct domain {
	_Atomic int state;
	_Atomic uint32_t gen;      /* bumped at every destroy: stale handles never match */
	unsigned arena;            /* jemalloc arena index */
	_Atomic int key;           /* hardware key held now; -1: none (parked) */
	_Atomic int shared;        /* the key is shared with other domains */
	_Atomic int evicting;      /* an evictor is deciding (keys.c) */
	struct domain *key_next;   /* next holder of the same key (keys.c) */
	_Atomic uint64_t last_used;/* when the last pin went (LRU eviction) */
	unsigned long long key_loads, evictions;   /* under the keys lock */
	/* Usable bytes of live allocations, less what threads' caches handed
	 * out since they last settled (cache.c); and bytes moved from the
	 * arena into caches, less those moved back and those settled. */
	_Atomic size_t allocated;
	_Atomic size_t cached;
	unsigned flags;
	char name[PKALLOC_NAME_MAX + 1];

	/* jemalloc calls these with a pointer to this field: it names the domain. */
	extent_hooks_t hooks;

	char *base;                /* reservation, PKALLOC_RESERVATION bytes */
	char *lo, *hi;             /* the part between the guards */
	_Atomic(char *) top;       /* end of the pages handed to jemalloc so far */

	/* Access windows in progress (threads inside are found in their open
	 * sets, see protect.h); destroy swaps 0 for INSIDE_DEAD, after which
	 * nobody can pin the domain again. */
	_Atomic unsigned inside;
	/* Page records (pagerec.h): a mapping of REC_BYTES, and the first data
	 * pages' records here. */
	struct page_rec *recs;
	struct page_rec first_recs[REC_INLINE];

	/* Per-(thread, domain) caches (cache.c).  The caches themselves live
	 * in the domain; here, what may be known from outside it: who holds
	 * each slot, where its cache is (checked before use), and which
	 * slots hold orphans waiting for the next call on the domain.  The
	 * lock is a spin lock never reinitialised, so that a thread letting a
	 * cache go can take it while the domain is destroyed and made again. */
	_Atomic unsigned cache_lock;
	_Atomic uint64_t orphans;
	unsigned char slot_state[CACHE_SLOTS];
	uint32_t cache_at[CACHE_SLOTS];      /* offset from lo; 0: none yet */

	/* Guards top and the mprotect backend's fields below. */
	pthread_mutex_t lock;
	unsigned nread, nwrite;    /* threads with read / write access, windows */
	unsigned fork_open;        /* 1 between prepare and the fork handlers */
	int prot;                  /* protection the pages have now */

	unsigned next_free;        /* free-list link (slot index + 1) */
};

/* jemalloc flags for d's arena, never a jemalloc thread cache (it would mix
 * domains).  MALLOCX_ARENA shifts a signed int: past arena 2046 that
 * overflows (UBSan says so); the same bits, computed unsigned. */
#define ARENA_FLAGS(d) ((int)(((unsigned)(d)->arena + 1u) << 20) | MALLOCX_TCACHE_NONE)

/* Registry (domain.c).  A handle is an address in a reserved PROT_NONE
 * range: HANDLE_STRIDE * (gen << HANDLE_SLOT_BITS | slot) past its base. */
#define HANDLE_SLOT_BITS 12          /* MAX_DOMAINS */
#define HANDLE_GEN_BITS  16
#define HANDLE_STRIDE    16          /* handle +1 .. +15 is never a handle */
#define HANDLE_SPACE     (((size_t)1 << (HANDLE_SLOT_BITS + HANDLE_GEN_BITS)) * HANDLE_STRIDE)
extern struct domain *registry HIDDEN;
extern uintptr_t domain_handles HIDDEN;

/* Handle -> live record, or NULL: arithmetic, never a dereference of h. */
static inline struct domain *domain_check(const domain_t *h)
{
	uintptr_t a = (uintptr_t)h, base = domain_handles;
	if (!base || a - base >= HANDLE_SPACE || (a - base) % HANDLE_STRIDE != 0)
		return NULL;
	uintptr_t id = (a - base) / HANDLE_STRIDE;
	struct domain *d = &registry[id & (MAX_DOMAINS - 1)];
	if (atomic_load_explicit(&d->state, memory_order_acquire) != DOM_LIVE)
		return NULL;
	uintptr_t gen = atomic_load_explicit(&d->gen, memory_order_relaxed) &
	                (((uintptr_t)1 << HANDLE_GEN_BITS) - 1);
	return gen == id >> HANDLE_SLOT_BITS ? d : NULL;
}
HIDDEN domain_t *domain_handle(const struct domain *d);
HIDDEN struct domain *domain_from_slot(unsigned slot);
HIDDEN unsigned domain_slot(const struct domain *d);
HIDDEN void domain_lock_registry(void);
HIDDEN void domain_unlock_registry(void);
HIDDEN void domain_foreach_live(void (*fn)(struct domain *));

/* Configuration, read-only after init (init.c). */
struct backend;
struct config {
	const struct backend *backend;   /* NULL: unavailable, see init_errno */
	int per_thread;                  /* backend->per_thread, one load nearer */
	int init_errno;
	int strict;                      /* PKALLOC_STRICT=1: never share a key */
	int membarrier;                  /* expedited membarrier is registered */
	int malloc_replaced;             /* the process's malloc is ours (override.c) */
	pthread_key_t thread_key;
	/* Cache classes (cache.c): class of a size (by (size + 7) / 8) and
	 * each class's size and bounds.  Read-only: a stray write cannot
	 * make a class hand out less than was asked for. */
	unsigned nclasses;
	unsigned char class_of[CACHE_MAX / 8 + 1];
	unsigned short class_size[CLASSES_MAX + 1];
	unsigned char class_cap[CLASSES_MAX + 1];
	uint64_t cache_secret;           /* mixed into each cache's check word */
	uint64_t free_key;               /* written into blocks sitting in caches */
};

/* Process-wide event counts (keys.c), for pkalloc_stats. */
struct counters {
	unsigned long long evictions, retags, shared_entries;
	_Atomic unsigned long long faults;
};
extern struct counters counters HIDDEN;
extern const struct config *const cfg HIDDEN;
HIDDEN void pkalloc_init(void);

/* A message line built by hand and written with write(2) alone: usable
 * with the heap in any state and in a signal handler (fatal.c). */
struct line {
	char buf[256];
	size_t n;
};
HIDDEN void line_put(struct line *l, const char *s);
HIDDEN void line_put_num(struct line *l, unsigned long v, unsigned base);  /* 16: 0x... */
HIDDEN void line_write(struct line *l);                                    /* adds '\n' */

/* Fatal path: one line on stderr with write(2), then abort (fatal.c). */
HIDDEN __attribute__((noreturn)) void fatal(const char *what, const void *ptr,
                                            const char *why);

#endif
