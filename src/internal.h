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

struct domain {
	_Atomic int state;
	_Atomic uint32_t gen;      /* bumped at every destroy: stale handles never match */
	_Atomic uint32_t tc_epoch; /* bumped when its thread caches are flushed (tcache.c) */
	unsigned arena;            /* jemalloc arena index */
	_Atomic int key;           /* hardware key held now; -1: none (parked) */
	_Atomic int shared;        /* the key is shared with other domains */
	_Atomic int evicting;      /* an evictor is deciding (keys.c) */
	struct domain *key_next;   /* next holder of the same key (keys.c) */
	_Atomic uint64_t last_used;/* when the last pin went (LRU eviction) */
	unsigned long long key_loads, evictions;   /* under the keys lock */
	_Atomic size_t allocated;  /* usable bytes of live allocations */
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
	/* Bit i: an allocation starts at lo + 8 i (catches interior pointers and
	 * double frees); a separate mapping of PKALLOC_RESERVATION / 64 bytes. */
	_Atomic uint64_t *starts;

	/* Guards top and the mprotect backend's fields below. */
	pthread_mutex_t lock;
	unsigned nread, nwrite;    /* threads with read / write access, windows */
	unsigned fork_open;        /* 1 between prepare and the fork handlers */
	int prot;                  /* protection the pages have now */

	unsigned next_free;        /* free-list link (slot index + 1) */
};

/* Registry (domain.c). */
extern struct domain *registry HIDDEN;
HIDDEN struct domain *domain_check(const domain_t *d);   /* handle -> record, or NULL */
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
	int init_errno;
	int strict;                      /* PKALLOC_STRICT=1: never share a key */
	int membarrier;                  /* expedited membarrier is registered */
	int malloc_replaced;             /* the process's malloc is ours (override.c) */
	pthread_key_t thread_key;
	pthread_key_t tcache_key;        /* flushes a thread's caches at exit */
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
