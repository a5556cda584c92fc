/*
 * Definitions shared by pkalloc's modules: the domain record and the
 * constants around it.  Types and inline helpers only: each module's calls
 * are declared in its own header.  Never installed.
 *
 * Names.  Every symbol of the library that is not static carries the
 * prefix pk_, and only what pkalloc.h declares (PKALLOC_API), the malloc
 * family, the C++ operators and the C library calls pkalloc stands in front
 * of are exported (test/exports.sh).  The library is built with
 * -fvisibility=hidden; PKALLOC_API is the one way to export.  Each module's
 * header declares its calls and variables inside
 * "#pragma GCC visibility push(hidden)", so that references from other
 * files bind within the library, without a load through the GOT (the fast
 * paths read pk_cfg and the registry on every call: measured 11
 * instructions per domain_malloc+domain_free pair without it).
 *
 * Layers.  A call flows down, never back up (test/layers.sh):
 *   API        domain.c, heap.c, override.c, thread.c, stats.c, fault.c, wipe.c
 *   set-up     init.c (backend choice, thread exit, fork handlers)
 *   per call   cache.c, enter.c (enter/exit, windows, capture), extent.c,
 *              secretmem.c (DOMAIN_SECRETMEM's pages)
 *   domains    registry.c, reserve.c, keys.c, the backends (protect_*.c)
 *   pages      pages.c, openset.c
 *   OS         protect.c, metamap.c, inject.c, settings.c, fatal.c
 *
 * Lock order, outermost first; a thread holding one takes only those
 * after it:
 *   1. the registry lock (registry.c): creates, destroys, statistics, fork;
 *   2. a domain's cache lock d->cache_lock (cache.c, a spin lock);
 *   3. the cache tables' lock (cache.c);
 *   4. the keys lock (keys.c);
 *   5. jemalloc's own mutexes, inside a domain's arena (held only within a
 *      jemalloc call, in an access window);
 *   6. a domain's d->lock (taken by the extent hooks within jemalloc calls,
 *      and by the backends);
 *   7. the list of threads' open sets (openset.c): the innermost.
 * Signals are held off around the locks a handler's domain_enter could want
 * (pk_prot_signals_off).
 */
#ifndef PKALLOC_INTERNAL_H
#define PKALLOC_INTERNAL_H

#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>

#define JEMALLOC_NO_DEMANGLE
#include <jemalloc/jemalloc.h>

#include "pkalloc.h"

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

/* nmemb * size into *total, for calloc and its kin: 1, or 0 with errno
 * ENOMEM where it overflows. */
static inline int size_product(size_t nmemb, size_t size, size_t *total)
{
	if (!__builtin_mul_overflow(nmemb, size, total))
		return 1;
	errno = ENOMEM;
	return 0;
}

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

#endif
