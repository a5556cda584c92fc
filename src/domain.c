/*
 * Domain lifecycle: the registry of domain records, handle checks,
 * domain_create/domain_destroy, domain_of and domain_name.
 *
 * Records live in one array mapped at init and never freed, so a handle is
 * checked by address arithmetic before it is dereferenced: a forged or
 * destroyed handle gives EINVAL instead of a fault.  Freed records are
 * reused first-in first-out, after every never-used one, so a stale handle
 * is unlikely to name a new domain soon.
 */
#include "internal.h"
#include "protect.h"
#include "reserve.h"
#include "extent.h"
#include "enter.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

struct domain *registry;
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
	registry = p;
	return 0;
}

struct domain *domain_check(const domain_t *h)
{
	uintptr_t a = (uintptr_t)h, r = (uintptr_t)registry;
	if (!registry || a < r || a >= r + MAX_DOMAINS * sizeof(struct domain) ||
	    (a - r) % sizeof(struct domain) != 0)
		return NULL;
	struct domain *d = (struct domain *)h;
	return atomic_load_explicit(&d->state, memory_order_acquire) == DOM_LIVE ? d : NULL;
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

void domain_registry_reset_lock(void) HIDDEN;
void domain_registry_reset_lock(void)
{
	pthread_mutex_init(&registry_lock, NULL);
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
	struct window w = { .d = d };
	w.token = cfg->backend->window_open(d);
	w.opened = 1;
	int err = mallctl("arenas.create", &ind, &sz, &hooks, sizeof hooks);
	window_close(&w);
	if (err)
		return err == EAGAIN ? ENOSPC : ENOMEM;
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
	struct window w = { .d = d };
	w.token = cfg->backend->window_open(d);
	w.opened = 1;
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
	if (flags != 0 || (name && strnlen(name, PKALLOC_NAME_MAX + 1) > PKALLOC_NAME_MAX)) {
		errno = EINVAL;
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
	atomic_store(&d->inside, 0);
	pthread_mutex_init(&d->lock, NULL);
	snprintf(d->name, sizeof d->name, "%s", name ? name : "");

	d->key = cfg->backend->key_get();
	if (d->key < -1) {
		err = -d->key;
		goto fail_key;
	}
	if ((err = reserve_create(d, (unsigned)slot)) != 0)
		goto fail_reserve;
	extent_hooks_init(d);
	if ((err = make_arena(d)) != 0)
		goto fail_arena;

	atomic_store_explicit(&d->state, DOM_LIVE, memory_order_release);
	domain_unlock_registry();
	return d;

fail_arena:
	reserve_destroy(d);
fail_reserve:
	if (d->key >= 0)
		cfg->backend->key_put(d->key);
fail_key:
	pthread_mutex_destroy(&d->lock);
	atomic_store(&d->state, DOM_FREE);
	put_slot((unsigned)slot);
	domain_unlock_registry();
	errno = err;
	return NULL;
}

int domain_destroy(domain_t *dh)
{
	struct domain *d = domain_check(dh);
	int live = DOM_LIVE;
	if (!d || !atomic_compare_exchange_strong(&d->state, &live, DOM_DYING)) {
		errno = EINVAL;
		return -1;
	}
	/* Pairs with enter_pin: a thread either sees DYING or is counted here. */
	if (atomic_load(&d->inside) != 0) {
		atomic_store(&d->state, DOM_LIVE);
		errno = EBUSY;
		return -1;
	}
	domain_lock_registry();
	int err = drop_arena(d);
	if (err) {
		domain_unlock_registry();
		atomic_store(&d->state, DOM_LIVE);
		errno = EBUSY;
		return -1;
	}
	/* Unmapping drops every page: nothing of the domain stays in RAM. */
	reserve_destroy(d);
	if (d->key >= 0)
		cfg->backend->key_put(d->key);
	pthread_mutex_destroy(&d->lock);
	d->gen++;
	atomic_store_explicit(&d->state, DOM_FREE, memory_order_release);
	put_slot(domain_slot(d));
	domain_unlock_registry();
	return 0;
}

domain_t *domain_of(const void *ptr)
{
	int slot = reserve_slot_of(ptr);
	if (slot < 0)
		return NULL;
	struct domain *d = &registry[slot];
	return atomic_load_explicit(&d->state, memory_order_acquire) == DOM_LIVE ? d : NULL;
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
