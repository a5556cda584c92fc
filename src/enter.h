/* Per-thread open sets, domain_enter/domain_exit, access windows. */
#ifndef PKALLOC_ENTER_H
#define PKALLOC_ENTER_H

#include <stdint.h>

#include "internal.h"
#include "protect.h"
#include "pkru.h"
#include "settings.h"
#include "openset.h"

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

struct domain;
struct open_set;

/* An access window: the calling thread may use d's memory (read and write)
 * between pk_window_open and pk_window_close, and d cannot be destroyed. */
struct window {
	struct domain *d;
	uintptr_t token;
	int pinned, opened;
};

/* Flags for pins and windows. */
#define PIN_SHARE_OK  1   /* a shared key is fine even under PKALLOC_STRICT */
#define PIN_ANY_STATE 2   /* d is being created or destroyed by the caller */

/* 0, or EINVAL if d is not live, or EBUSY (strict, no key free), or the
 * backend's errno (mprotect failed: the window is not open). */
int pk_window_open(struct domain *d, struct window *w, int flags);
void pk_window_close(struct window *w);

/* Pin d: it cannot be destroyed nor lose its key until unpinned.  0 or an
 * errno value (EINVAL: not live; EBUSY: strict and no key). */
int pk_enter_pin(struct domain *d, int flags);
void pk_enter_unpin(struct domain *d);

/* The calling thread's effective access to d (async-signal-safe). */
int pk_enter_access_of(struct domain *d);

/* pk_enter_access_of's last answer, good while the set's version holds. */
struct enter_last {
	const struct domain *d;
	uint64_t version;
	int access;
};
extern __thread uint64_t pk_enter_set_version TLS_FAST;
extern __thread struct enter_last pk_enter_last_access TLS_FAST;

/*
 * 1 if the calling thread can read and write d's memory now, without an
 * access window: it is inside d read-write (which also pins d), and on the
 * pku backend its PKRU opens d's key (a signal handler starts with every
 * key closed).  The fast paths (cache.c) run only then.
 */
static inline int enter_open_now(struct domain *d)
{
	uint64_t v = pk_enter_set_version;
	atomic_signal_fence(memory_order_seq_cst);
	int access = pk_enter_last_access.d == d && pk_enter_last_access.version == v ?
	             pk_enter_last_access.access : pk_enter_access_of(d);
	if (access != DOMAIN_RDWR)
		return 0;
	if (!pk_cfg->per_thread)
		return 1;
	return (rdpkru() & PKRU_BITS(atomic_load_explicit(&d->key, memory_order_relaxed))) == 0;
}

/* The innermost domain capturing the calling thread's malloc, or NULL. */
extern __thread struct domain *pk_enter_capture TLS_FAST;

/* While non-zero, this thread's plain allocations are ordinary even inside
 * a capturing domain: pkalloc's own calls into the C library (a new
 * thread's TLS blocks, the loader) must never land in domain memory. */
extern __thread int pk_capture_off TLS_FAST;

/* The calling thread's open set (fork handlers), and its exit handler: a
 * pthread key destructor, armed from the thread's start by
 * pk_enter_thread_arm, or when it first enters a domain. */
struct open_set *pk_enter_open_set(void);
void pk_enter_thread_arm(void);
/* For other per-thread state that needs the exit handler: arm it now if
 * it is not; 0 if its last round has run (keep nothing per thread). */
int pk_enter_thread_arm_late(void);
/* 1 once the exit handler's last round has run on this thread. */
int pk_enter_thread_done(void);
void pk_enter_thread_exit(void *set);

#pragma GCC visibility pop

#endif
