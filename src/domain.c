/*
 * Domain lifecycle: domain_create and domain_destroy.  Records and handles
 * are the registry's (registry.c).
 */
#include "internal.h"
#include "registry.h"
#include "settings.h"
#include "init.h"
#include "fatal.h"
#include "protect.h"
#include "openset.h"
#include "pages.h"
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

/* Create d's jemalloc arena; its metadata comes through d's hooks. */
static int make_arena(struct domain *d)
{
	unsigned ind;
	size_t sz = sizeof ind;
	extent_hooks_t *hooks = &d->hooks;
	struct window w;
	int err = pk_window_open(d, &w, PIN_ANY_STATE);
	if (err)
		return err;
	pk_extent_take_error();
	err = mallctl("arenas.create", &ind, &sz, &hooks, sizeof hooks);
	pk_window_close(&w);
	int grow = pk_extent_take_error();
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
	if ((err = pk_window_open(d, &w, PIN_ANY_STATE | PIN_SHARE_OK)) != 0)
		pk_fatal("mprotect", d->lo, err, "cannot open a domain");
	/* Nobody can pin d now, so no cache of it is in use: every block
	 * they hold goes back before the arena does. */
	pk_cache_domain_destroy(d);
	err = mallctlbymib(mib, miblen, NULL, NULL, NULL, 0);
	pk_window_close(&w);
	return err;
}

domain_t *domain_create(const char *name, unsigned flags)
{
	pk_init();
	if (!pk_cfg->backend) {
		errno = pk_cfg->init_errno;
		return NULL;
	}
	if ((flags & ~(unsigned)(DOMAIN_MLOCK | DOMAIN_WIPEONFORK | DOMAIN_CAPTURE_MALLOC |
	                           DOMAIN_SECRETMEM)) != 0 ||
	    (name && strnlen(name, PKALLOC_NAME_MAX + 1) > PKALLOC_NAME_MAX)) {
		errno = EINVAL;
		return NULL;
	}
	/* A capture that plain malloc never reaches would protect nothing. */
	if ((flags & DOMAIN_CAPTURE_MALLOC) && !pk_override_capture_ok()) {
		errno = ENOTSUP;
		return NULL;
	}

	int err;
	pk_registry_lock();
	int slot = pk_registry_take_slot();
	if (slot < 0) {
		pk_registry_unlock();
		errno = ENOSPC;
		return NULL;
	}
	struct domain *d = &pk_registry[slot];
	atomic_store(&d->state, DOM_CREATING);
	d->flags = flags;
	d->nread = d->nwrite = d->fork_open = 0;
	d->prot = PROT_NONE;
	/* The pin count is not reset: a thread that checked a handle of the
	 * record's previous domain may be between pk_enter_pin's increment and
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
	pk_cache_domain_init(d);
	d->key_next = NULL;
	d->key_loads = d->evictions = 0;
	pthread_mutex_init(&d->lock, NULL);
	snprintf(d->name, sizeof d->name, "%s", name ? name : "");

	if ((err = pk_reserve_create(d, (unsigned)slot)) != 0)
		goto fail_reserve;
	if ((flags & DOMAIN_SECRETMEM) && (err = pk_secretmem_open(d)) != 0)
		goto fail_arena;
	pk_extent_hooks_init(d);
	if ((err = make_arena(d)) != 0)
		goto fail_arena;

	atomic_store_explicit(&d->state, DOM_LIVE, memory_order_release);
	pk_registry_unlock();
	return pk_registry_handle(d);

fail_arena:
	pk_reserve_destroy(d);
	pk_secretmem_close(d);
	if (pk_cfg->backend->release)
		pk_cfg->backend->release(d);
fail_reserve:
	pthread_mutex_destroy(&d->lock);
	atomic_store(&d->state, DOM_FREE);
	pk_registry_put_slot((unsigned)slot);
	pk_registry_unlock();
	errno = err;
	return NULL;
}

/* How long a destroy waits for access windows to close (see below):
 * 100 yields, then up to 100 ms in 0.1 ms sleeps. */
#define DESTROY_WAIT 1100

int domain_destroy(domain_t *dh)
{
	struct domain *d = registry_check(dh);
	if (!d) {
		errno = EINVAL;
		return -1;
	}
	/* Decide under the registry lock, where a thread that meets the DEAD
	 * bit waits for the outcome: so a destroy that fails with EBUSY
	 * changes nothing anyone else can see.  Signals stay off meanwhile: a
	 * handler of this thread could otherwise wait for this very lock. */
	sigset_t old;
	pk_prot_signals_off(&old);
	pk_registry_lock();
	int err = 0;
	/* Creates and destroys hold the lock: checked here, the handle stays
	 * d's (it may have been destroyed, and its record taken by a new
	 * domain, since the check above). */
	if (registry_check(dh) != d) {
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
		pk_registry_unlock();
		/* A window's holder may be preempted: yield first, then sleep. */
		if (tries < 100)
			sched_yield();
		else
			nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
		pk_registry_lock();
		if (registry_check(dh) != d) {
			err = EINVAL;       /* destroyed meanwhile */
			goto out;
		}
	}
	pk_openset_membarrier();
	if (pk_openset_anyone_inside(d)) {
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
		pk_prot_unlock(d->lo, (size_t)(top - d->lo));
	}
	if (drop_arena(d) != 0) {
		atomic_store(&d->state, DOM_LIVE);
		atomic_fetch_and(&d->inside, ~INSIDE_DEAD);
		pk_pages_apply_or_die(d, "mprotect", "cannot close a domain");   /* closed again if it shares a key */
		err = EBUSY;
		goto out;
	}
	/* Unmapped, then off its key: the key goes to another domain only when
	 * no page carries it any more, and nothing of the domain stays in RAM. */
	pk_reserve_destroy(d);
	pk_secretmem_close(d);
	if (pk_cfg->backend->release)
		pk_cfg->backend->release(d);
	pthread_mutex_destroy(&d->lock);
	atomic_fetch_add_explicit(&d->gen, 1, memory_order_relaxed);
	atomic_store_explicit(&d->state, DOM_FREE, memory_order_release);
	pk_registry_put_slot(pk_registry_slot(d));
out:
	pk_registry_unlock();
	pk_prot_signals_on(&old);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
