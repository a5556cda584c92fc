/*
 * Domain lifecycle: the registry of domain records, handle checks,
 * domain_create/domain_destroy, domain_of and domain_name.
 *
 * Records live in one array mapped at init and never freed.  A handle is not
 * a record's address but a token: an address in a PROT_NONE range reserved
 * for the purpose, encoding the record's slot and its generation (bumped at
 * every destroy).  It is checked by arithmetic, never dereferenced, so a
 * wild pointer, or a destroyed handle whose slot now holds another domain,
 * gives EINVAL instead of a fault or a wrong domain; a stale handle can only
 * alias after 2^16 reuses of one slot.  Handles are not secrets: a live
 * neighbour's handle is a fixed offset away, and works.  Freed records are
 * reused first-in first-out, after every never-used one.
 */
#include "internal.h"
#include "protect.h"
#include "reserve.h"
#include "cache.h"
#include "extent.h"
#include "enter.h"
#include "override.h"
#include "secretmem.h"

#include <errno.h>
#include <sched.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

_Static_assert(MAX_DOMAINS == 1 << HANDLE_SLOT_BITS, "handle layout");

struct domain *registry;
uintptr_t domain_handles;            /* base of the reserved handle range */
#define handles domain_handles
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned never_used;             /* slots [never_used, MAX_DOMAINS) */
static unsigned free_head, free_tail;   /* FIFO of freed slots, index + 1 */

int domain_registry_init(void) HIDDEN;
int domain_registry_init(void)
{
	void *p = mmap(NULL, MAX_DOMAINS * sizeof(struct domain), PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	void *h = mmap(NULL, HANDLE_SPACE, PROT_NONE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (h == MAP_FAILED) {
		int e = errno;
		munmap(p, MAX_DOMAINS * sizeof(struct domain));
		return e;
	}
	handles = (uintptr_t)h;
	registry = p;
	return 0;
}

domain_t *domain_handle(const struct domain *d)
{
	uintptr_t gen = atomic_load_explicit(&((struct domain *)d)->gen, memory_order_relaxed) &
	                (((uintptr_t)1 << HANDLE_GEN_BITS) - 1);
	uintptr_t id = gen << HANDLE_SLOT_BITS | domain_slot(d);
	return (domain_t *)(handles + id * HANDLE_STRIDE);
}

unsigned domain_slot(const struct domain *d)
{
	return (unsigned)(d - registry);
}

void domain_lock_registry(void) { pthread_mutex_lock(&registry_lock); }
void domain_unlock_registry(void) { pthread_mutex_unlock(&registry_lock); }

/* Every domain that has an arena (live, or being destroyed). */
void domain_foreach_live(void (*fn)(struct domain *))
{
	for (unsigned i = 0; registry && i < never_used; i++) {
		int st = atomic_load(&registry[i].state);
		if (st == DOM_LIVE || st == DOM_DYING)
			fn(&registry[i]);
	}
}

/* In a fork child: the lock, and the pin counts of free records, which
 * threads that did not survive may have left half-way (see enter_pin). */
void domain_registry_reset_lock(void) HIDDEN;
void domain_registry_reset_lock(void)
{
	pthread_mutex_init(&registry_lock, NULL);
	for (unsigned i = 0; registry && i < never_used; i++)
		if (atomic_load(&registry[i].state) == DOM_FREE)
			atomic_store(&registry[i].inside, 0);
}

static int take_slot(void)
{
	if (never_used < MAX_DOMAINS)
		return (int)never_used++;
	if (!free_head)
		return -1;
	unsigned s = free_head - 1;
	free_head = registry[s].next_free;
	if (!free_head)
		free_tail = 0;
	return (int)s;
}

static void put_slot(unsigned s)
{
	registry[s].next_free = 0;
	if (free_tail)
		registry[free_tail - 1].next_free = s + 1;
	else
		free_head = s + 1;
	free_tail = s + 1;
}

/* Create d's jemalloc arena; its metadata comes through d's hooks. */
static int make_arena(struct domain *d)
{
	unsigned ind;
	size_t sz = sizeof ind;
	extent_hooks_t *hooks = &d->hooks;
	struct window w;
	int err = window_open(d, &w, PIN_ANY_STATE);
	if (err)
		return err;
	extent_take_error();
	err = mallctl("arenas.create", &ind, &sz, &hooks, sizeof hooks);
	window_close(&w);
	int grow = extent_take_error();
	if (err)
		return grow ? grow : err == EAGAIN ? ENOSPC : ENOMEM;
	d->arena = ind;
	return 0;
}

static int drop_arena(struct domain *d)
{
	size_t mib[3], miblen = 3;
	int err = mallctlnametomib("arena.0.destroy", mib, &miblen);
	if (err)
		return err;
	mib[1] = d->arena;
	struct window w;
	if ((err = window_open(d, &w, PIN_ANY_STATE | PIN_SHARE_OK)) != 0)
		fatal("mprotect", d->lo, "cannot open a domain");
	/* Nobody can pin d now, so no cache of it is in use: every block
	 * they hold goes back before the arena does. */
	cache_domain_destroy(d);
	err = mallctlbymib(mib, miblen, NULL, NULL, NULL, 0);
	window_close(&w);
	return err;
}

domain_t *domain_create(const char *name, unsigned flags)
{
	pkalloc_init();
	if (!cfg->backend) {
		errno = cfg->init_errno;
		return NULL;
	}
	if ((flags & ~(unsigned)(DOMAIN_MLOCK | DOMAIN_WIPEONFORK | DOMAIN_CAPTURE_MALLOC |
	                           DOMAIN_SECRETMEM)) != 0 ||
	    (name && strnlen(name, PKALLOC_NAME_MAX + 1) > PKALLOC_NAME_MAX)) {
		errno = EINVAL;
		return NULL;
	}
	/* A capture that plain malloc never reaches would protect nothing. */
	if ((flags & DOMAIN_CAPTURE_MALLOC) && !override_capture_ok()) {
		errno = ENOTSUP;
		return NULL;
	}

	int err;
	domain_lock_registry();
	int slot = take_slot();
	if (slot < 0) {
		domain_unlock_registry();
		errno = ENOSPC;
		return NULL;
	}
	struct domain *d = &registry[slot];
	atomic_store(&d->state, DOM_CREATING);
	d->flags = flags;
	d->nread = d->nwrite = d->fork_open = 0;
	d->prot = PROT_NONE;
	/* The pin count is not reset: a thread that checked a handle of the
	 * record's previous domain may be between enter_pin's increment and
	 * its decrement, and a store of 0 would have that decrement wrap the
	 * new domain's count.  Clearing the DEAD bit keeps such pairs whole.
	 * A stale pin that comes after this create does take hold, of the new
	 * domain: whoever came with a handle checks it again once pinned
	 * (domain_enter, the domain_malloc family), or under the registry
	 * lock (domain_destroy). */
	atomic_fetch_and(&d->inside, ~INSIDE_DEAD);
	atomic_store(&d->key, -1);        /* keys are given on first use */
	atomic_store(&d->shared, 0);
	atomic_store(&d->evicting, 0);
	cache_domain_init(d);
	d->key_next = NULL;
	d->key_loads = d->evictions = 0;
	pthread_mutex_init(&d->lock, NULL);
	snprintf(d->name, sizeof d->name, "%s", name ? name : "");

	if ((err = reserve_create(d, (unsigned)slot)) != 0)
		goto fail_reserve;
	if ((flags & DOMAIN_SECRETMEM) && (err = secretmem_open(d)) != 0)
		goto fail_arena;
	extent_hooks_init(d);
	if ((err = make_arena(d)) != 0)
		goto fail_arena;

	atomic_store_explicit(&d->state, DOM_LIVE, memory_order_release);
	domain_unlock_registry();
	return domain_handle(d);

fail_arena:
	reserve_destroy(d);
	secretmem_close(d);
	if (cfg->backend->release)
		cfg->backend->release(d);
fail_reserve:
	pthread_mutex_destroy(&d->lock);
	atomic_store(&d->state, DOM_FREE);
	put_slot((unsigned)slot);
	domain_unlock_registry();
	errno = err;
	return NULL;
}

/* How long a destroy waits for access windows to close (see below):
 * 100 yields, then up to 100 ms in 0.1 ms sleeps. */
#define DESTROY_WAIT 1100

int domain_destroy(domain_t *dh)
{
	struct domain *d = domain_check(dh);
	if (!d) {
		errno = EINVAL;
		return -1;
	}
	/* Decide under the registry lock, where a thread that meets the DEAD
	 * bit waits for the outcome: so a destroy that fails with EBUSY
	 * changes nothing anyone else can see.  Signals stay off meanwhile: a
	 * handler of this thread could otherwise wait for this very lock. */
	sigset_t old;
	prot_signals_off(&old);
	domain_lock_registry();
	int err = 0;
	/* Creates and destroys hold the lock: checked here, the handle stays
	 * d's (it may have been destroyed, and its record taken by a new
	 * domain, since the check above). */
	if (domain_check(dh) != d) {
		err = EINVAL;
		goto out;
	}
	/* Access windows last one jemalloc call (another thread flushing its
	 * cache of d holds one too): wait for those a little, off the lock,
	 * before calling d busy.  Threads inside d are seen below. */
	for (int tries = 0;; tries++) {
		unsigned none = 0;
		if (atomic_compare_exchange_strong(&d->inside, &none, INSIDE_DEAD))
			break;
		if ((none & INSIDE_DEAD) || tries == DESTROY_WAIT) {
			err = (none & INSIDE_DEAD) ? EINVAL : EBUSY;   /* EINVAL: a destroy is under way */
			goto out;
		}
		domain_unlock_registry();
		/* A window's holder may be preempted: yield first, then sleep. */
		if (tries < 100)
			sched_yield();
		else
			nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
		domain_lock_registry();
		if (domain_check(dh) != d) {
			err = EINVAL;       /* destroyed meanwhile */
			goto out;
		}
	}
	prot_membarrier();
	if (prot_anyone_inside(d)) {
		/* Windows opened meanwhile keep their counts. */
		atomic_fetch_and(&d->inside, ~INSIDE_DEAD);
		err = EBUSY;
		goto out;
	}
	atomic_store(&d->state, DOM_DYING);
	/* Locked pages refuse MADV_DONTNEED: unlock first, so that jemalloc's
	 * purges while the arena is destroyed really drop the secrets. */
	if (d->flags & DOMAIN_MLOCK) {
		char *top = atomic_load(&d->top);
		prot_unlock(d->lo, (size_t)(top - d->lo));
	}
	if (drop_arena(d) != 0) {
		atomic_store(&d->state, DOM_LIVE);
		atomic_fetch_and(&d->inside, ~INSIDE_DEAD);
		pthread_mutex_lock(&d->lock);
		prot_apply(d);                 /* closed again if it shares a key */
		pthread_mutex_unlock(&d->lock);
		err = EBUSY;
		goto out;
	}
	/* Unmapped, then off its key: the key goes to another domain only when
	 * no page carries it any more, and nothing of the domain stays in RAM. */
	reserve_destroy(d);
	secretmem_close(d);
	if (cfg->backend->release)
		cfg->backend->release(d);
	pthread_mutex_destroy(&d->lock);
	atomic_fetch_add_explicit(&d->gen, 1, memory_order_relaxed);
	atomic_store_explicit(&d->state, DOM_FREE, memory_order_release);
	put_slot(domain_slot(d));
out:
	domain_unlock_registry();
	prot_signals_on(&old);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

domain_t *domain_of(const void *ptr)
{
	int slot = reserve_slot_of(ptr);
	if (slot < 0)
		return NULL;
	struct domain *d = &registry[slot];
	if (atomic_load_explicit(&d->state, memory_order_acquire) != DOM_LIVE)
		return NULL;
	domain_t *h = domain_handle(d);
	/* The range and the record are read apart: meanwhile the domain may
	 * have been destroyed (its range kept as a tombstone) and its record
	 * taken by a new domain with a range of its own.  If the range still
	 * belongs to the record, whose domain is still the one named, the
	 * answer holds. */
	atomic_thread_fence(memory_order_acquire);
	if (reserve_slot_of(ptr) != slot || domain_check(h) != d)
		return NULL;
	return h;
}

const char *domain_name(const domain_t *dh)
{
	struct domain *d = domain_check(dh);
	if (!d) {
		errno = EINVAL;
		return NULL;
	}
	return d->name;
}
