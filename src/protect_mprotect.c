/*
 * The "mprotect" backend, for CPUs or kernels without protection keys.
 *
 * Page permissions belong to the process, not to a thread: while any thread
 * is inside a domain (or allocating in it), every thread can reach it.  A
 * domain's pages are PROT_NONE when no thread is inside, PROT_READ when only
 * read-only enters are open, and read-write otherwise.  One mprotect call
 * covers the whole domain, because its pages form one range of one
 * reservation.
 */
#include "internal.h"
#include "protect.h"

#include <errno.h>
#include <sys/mman.h>

static int wanted_prot(const struct domain *d)
{
	if (d->nwrite || d->fork_open)
		return PROT_READ | PROT_WRITE;
	return d->nread ? PROT_READ : PROT_NONE;
}

/* Bring the pages to the permission the counts ask for; d->lock held. */
static int apply(struct domain *d)
{
	int want = wanted_prot(d);
	char *top = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (want == d->prot)
		return 0;
	if (top > d->lo && mprotect(d->lo, (size_t)(top - d->lo), want) != 0)
		return errno;
	d->prot = want;
	return 0;
}

static void count(struct domain *d, int access, int delta)
{
	if (access == DOMAIN_RDONLY)
		d->nread += (unsigned)delta;
	else if (access == DOMAIN_RDWR)
		d->nwrite += (unsigned)delta;
}

static int mp_probe(void) { return 0; }
static int mp_key_get(void) { return -1; }
static void mp_key_put(int key) { (void)key; }

static int mp_tag(struct domain *d, void *addr, size_t len)
{
	return mprotect(addr, len, d->prot) == 0 ? 0 : errno;
}

static int mp_access(struct domain *d, int from, int to, const struct open_set *set)
{
	(void)set;
	pthread_mutex_lock(&d->lock);
	count(d, from, -1);
	count(d, to, +1);
	int err = apply(d);
	if (err) {
		count(d, to, -1);
		count(d, from, +1);
	}
	pthread_mutex_unlock(&d->lock);
	return err;
}

static uintptr_t mp_window_open(struct domain *d)
{
	pthread_mutex_lock(&d->lock);
	d->nwrite++;
	int err = apply(d);
	pthread_mutex_unlock(&d->lock);
	if (err)
		fatal("cannot open domain", d->lo, "mprotect failed");
	return 0;
}

static void mp_window_close(struct domain *d, uintptr_t token)
{
	(void)token;
	pthread_mutex_lock(&d->lock);
	d->nwrite--;
	int err = apply(d);
	pthread_mutex_unlock(&d->lock);
	if (err)
		fatal("cannot close domain", d->lo, "mprotect failed");
}

static void mp_prefork_domain(struct domain *d)
{
	pthread_mutex_lock(&d->lock);
	d->fork_open = 1;
	int err = apply(d);
	pthread_mutex_unlock(&d->lock);
	if (err)
		fatal("cannot open domain for fork", d->lo, "mprotect failed");
}

static void mp_postfork_domain(struct domain *d, const struct open_set *set, int child)
{
	if (child) {
		/* Only the forking thread lives on: its open set is the whole truth,
		 * and a lock some vanished thread held must not stay held. */
		pthread_mutex_init(&d->lock, NULL);
		d->nread = d->nwrite = 0;
		for (unsigned i = 0; i < set->n; i++)
			if (set->e[i].d == d)
				count(d, open_entry_access(&set->e[i]), +1);
	}
	pthread_mutex_lock(&d->lock);
	d->fork_open = 0;
	int err = apply(d);
	pthread_mutex_unlock(&d->lock);
	if (err)
		fatal("cannot close domain after fork", d->lo, "mprotect failed");
}

const struct backend backend_mprotect = {
	.name = "mprotect",
	.per_thread = 0,
	.probe = mp_probe,
	.key_get = mp_key_get,
	.key_put = mp_key_put,
	.tag = mp_tag,
	.access = mp_access,
	.window_open = mp_window_open,
	.window_close = mp_window_close,
	.prefork_domain = mp_prefork_domain,
	.postfork_domain = mp_postfork_domain,
};
