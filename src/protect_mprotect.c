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
#include "protect_mprotect.h"
#include "inject.h"
#include "pages.h"
#include "fatal.h"

#include <errno.h>
#include <sys/mman.h>

static int mp_want(const struct domain *d)
{
	if (d->nwrite || d->fork_open)
		return PROT_READ | PROT_WRITE;
	return d->nread ? PROT_READ : PROT_NONE;
}

static void count(struct domain *d, int access, int delta)
{
	if (access == DOMAIN_RDONLY)
		d->nread += (unsigned)delta;
	else if (access == DOMAIN_RDWR)
		d->nwrite += (unsigned)delta;
}

static int mp_probe(void) { return 0; }

static int mp_tag(struct domain *d, void *addr, size_t len)
{
	return pk_inject_mprotect(addr, len, d->prot) == 0 ? 0 : errno;
}

static int mp_access(struct domain *d, int from, int to, const struct open_set *set)
{
	(void)set;
	pthread_mutex_lock(&d->lock);
	count(d, from, -1);
	count(d, to, +1);
	int err = pk_pages_apply(d);
	if (err) {
		count(d, to, -1);
		count(d, from, +1);
	}
	pthread_mutex_unlock(&d->lock);
	return err;
}

static int mp_window_open(struct domain *d, uintptr_t *token)
{
	*token = 0;
	pthread_mutex_lock(&d->lock);
	d->nwrite++;
	int err = pk_pages_apply(d);      /* on failure the pages are as they were */
	if (err)
		d->nwrite--;
	pthread_mutex_unlock(&d->lock);
	return err;
}

static void mp_window_close(struct domain *d, uintptr_t token)
{
	(void)token;
	pthread_mutex_lock(&d->lock);
	d->nwrite--;
	pthread_mutex_unlock(&d->lock);
	pk_pages_apply_or_die(d, "mprotect", "cannot close a domain");
}

const struct backend pk_backend_mprotect = {
	.name = "mprotect",
	.per_thread = 0,
	.probe = mp_probe,
	.want = mp_want,
	.tag = mp_tag,
	.access = mp_access,
	.window_open = mp_window_open,
	.window_close = mp_window_close,
};
