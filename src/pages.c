/*
 * A domain's pages: their permission and key (pages.h).
 */
#include "internal.h"
#include "pages.h"
#include "protect.h"
#include "openset.h"
#include "settings.h"
#include "fatal.h"

#include <sys/mman.h>

int pk_pages_apply(struct domain *d)
{
	int want = pk_cfg->backend->want(d);
	char *top = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (want == d->prot)
		return 0;
	size_t len = (size_t)(top - d->lo);
	if (top > d->lo) {
		int err = pk_prot_protect(d->lo, len, want);
		/* The kernel keeps what it changed before the failure (the
		 * first VMAs): put the whole range back as d->prot says. */
		if (err) {
			int again = pk_prot_protect(d->lo, len, d->prot);
			if (again)
				pk_fatal("mprotect", d->lo, again,
				      "cannot restore a domain's permissions after a failed change");
			return err;
		}
	}
	d->prot = want;
	return 0;
}

void pk_pages_apply_or_die(struct domain *d, const char *what, const char *why)
{
	pthread_mutex_lock(&d->lock);
	int err = pk_pages_apply(d);
	pthread_mutex_unlock(&d->lock);
	if (err)
		pk_fatal(what, d->lo, err, why);
}

int pk_pages_apply_key(struct domain *d, int key, int prot)
{
	char *top = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (top > d->lo) {
		int err = pk_prot_protect_key(d->lo, (size_t)(top - d->lo), prot, key);
		if (err)
			return err;
	}
	d->prot = prot;
	return 0;
}

void pk_pages_prefork(struct domain *d)
{
	pthread_mutex_lock(&d->lock);
	d->fork_open = 1;
	pthread_mutex_unlock(&d->lock);
	pk_pages_apply_or_die(d, "fork", "cannot open a domain for fork");
}

void pk_pages_postfork(struct domain *d, const struct open_set *set, int child)
{
	if (child) {
		/* Only the forking thread lives on: its open set is the whole truth,
		 * and a lock some vanished thread held must not stay held. */
		pthread_mutex_init(&d->lock, NULL);
		d->nread = d->nwrite = 0;
		FOR_EACH_OPEN(set, e)
			if (e->d == d) {
				if (pk_openset_entry_access(e) == DOMAIN_RDWR)
					d->nwrite++;
				else
					d->nread++;
			}
	}
	pthread_mutex_lock(&d->lock);
	d->fork_open = 0;
	pthread_mutex_unlock(&d->lock);
	pk_pages_apply_or_die(d, "fork", "cannot close a domain after fork");
}
