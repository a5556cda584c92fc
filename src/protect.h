/*
 * The protection interface: every system call that maps, protects, tags or
 * purges memory, and every PKRU write, goes through here; only the file
 * mappings of DOMAIN_SECRETMEM domains are made in secretmem.c.  Both make
 * their calls through inject.h, so fault injection reaches every one.
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

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

struct domain;
struct open_set;

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
	 * this thread; *token is passed to pk_window_close.  0, or an errno
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


/* OS primitives shared by both backends (protect.c). */
int pk_prot_reserve(size_t size, size_t align, void **out);
int pk_prot_release(void *addr, size_t size);
/* Map a reserved range afresh in place: empty, PROT_NONE, key 0, no core
 * dump, no huge pages; nothing else can take it meanwhile. */
int pk_prot_empty(void *addr, size_t size);
/* Lock pages in RAM as they are touched (mlock2 MLOCK_ONFAULT). */
int pk_prot_lock(void *addr, size_t size);
int pk_prot_unlock(void *addr, size_t size);
/* Hold off every signal of the calling thread while a lock that a signal
 * handler could want is held; give back the old mask after. */
void pk_prot_signals_off(sigset_t *old);
void pk_prot_signals_on(const sigset_t *old);
/* A fork child sees these pages zeroed (MADV_WIPEONFORK). */
int pk_prot_wipe_on_fork(void *addr, size_t size);
/* Plain private read-write memory for pkalloc's own bookkeeping. */
int pk_prot_map_private(size_t size, void **out);
int pk_prot_purge(void *addr, size_t size);
/* Keep [addr, addr+size) off transparent huge pages (MADV_NOHUGEPAGE);
 * 0 also where the kernel has no THP. */
int pk_prot_no_huge_pages(void *addr, size_t size);

/* mprotect and pkey_mprotect. */
int pk_prot_protect(void *addr, size_t size, int prot);
int pk_prot_protect_key(void *addr, size_t size, int prot, int key);
/* A new protection key, denied to the calling thread; or -errno. */
int pk_prot_key_alloc(void);

#pragma GCC visibility pop

#endif
