/*
 * The calling thread's open set and domain_enter/domain_exit.
 *
 * Each thread keeps, per domain it is inside, how deep it is and which of
 * its nested enters were read-write.  The thread's effective access to a
 * domain is the widest of its open enters; the backend turns the whole set
 * into protection (PKRU for pku, page permissions for mprotect).
 *
 * A thread that is inside a domain pins it: domain_destroy fails with EBUSY
 * while any pin is held, and the domain keeps its protection key.  The
 * destroyer swaps the pin count from 0 to INSIDE_DEAD in one step, so a
 * domain is never destroyed under a thread that got in, and a destroy that
 * fails with EBUSY changes nothing anyone else can see.
 */
#include "internal.h"
#include "protect.h"
#include "enter.h"

#include <errno.h>
#include <string.h>

static __thread struct open_set tls_set;

int open_entry_access(const struct open_entry *e)
{
	uint64_t live = e->depth >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << e->depth) - 1;
	if (e->depth == 0)
		return ACCESS_NONE;
	return (e->rw & live) ? DOMAIN_RDWR : DOMAIN_RDONLY;
}

struct open_set *enter_open_set(void)
{
	return &tls_set;
}

static struct open_entry *find(struct open_set *s, const struct domain *d)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->e[i].d == d && s->e[i].gen == d->gen)
			return &s->e[i];
	return NULL;
}

static void remove_entry(struct open_set *s, struct open_entry *e)
{
	*e = s->e[--s->n];
}

int enter_pin(struct domain *d, int flags)
{
	unsigned prev = atomic_fetch_add(&d->inside, 1);
	if (!(flags & PIN_ANY_STATE) &&
	    ((prev & INSIDE_DEAD) || atomic_load(&d->state) != DOM_LIVE)) {
		atomic_fetch_sub(&d->inside, 1);
		return EINVAL;
	}
	if (cfg->backend->pinned) {
		int err = cfg->backend->pinned(d, flags & PIN_SHARE_OK);
		if (err) {
			enter_unpin(d);
			return err;
		}
	}
	return 0;
}

void enter_unpin(struct domain *d)
{
	atomic_fetch_sub(&d->inside, 1);
	if (cfg->backend->unpinned)
		cfg->backend->unpinned(d);
}

/* Tell the backend; pku recomputes PKRU at every change of the set. */
static int changed(struct domain *d, int from, int to, const struct open_set *s)
{
	if (from == to && !cfg->backend->per_thread)
		return 0;
	return cfg->backend->access(d, from, to, s);
}

int domain_enter(domain_t *dh, int access)
{
	struct domain *d = domain_check(dh);
	if (!d || (access != DOMAIN_RDONLY && access != DOMAIN_RDWR)) {
		errno = EINVAL;
		return -1;
	}
	struct open_set *s = &tls_set;
	struct open_entry *e = find(s, d);
	if (!e) {
		if (s->n == PKALLOC_MAX_OPEN) {
			errno = ENOMEM;
			return -1;
		}
		int err = enter_pin(d, 0);
		if (err) {
			errno = err;
			return -1;
		}
		if (!s->registered) {
			/* Leave every domain when the thread exits. */
			pthread_setspecific(cfg->thread_key, s);
			s->registered = 1;
		}
		e = &s->e[s->n++];
		*e = (struct open_entry){ .d = d, .gen = d->gen };
	} else if (e->depth == PKALLOC_MAX_NEST) {
		errno = EOVERFLOW;
		return -1;
	}

	int from = open_entry_access(e);
	if (access == DOMAIN_RDWR)
		e->rw |= UINT64_C(1) << e->depth;
	e->depth++;
	int err = changed(d, from, open_entry_access(e), s);
	if (err) {
		e->depth--;
		e->rw &= ~(UINT64_C(1) << e->depth);
		if (e->depth == 0) {
			remove_entry(s, e);
			enter_unpin(d);
		}
		errno = err;
		return -1;
	}
	return 0;
}

int domain_exit(domain_t *dh)
{
	struct domain *d = domain_check(dh);
	if (!d) {
		errno = EINVAL;
		return -1;
	}
	struct open_set *s = &tls_set;
	struct open_entry *e = find(s, d);
	if (!e) {
		errno = EPERM;
		return -1;
	}
	int from = open_entry_access(e);
	e->depth--;
	e->rw &= ~(UINT64_C(1) << e->depth);
	int to = open_entry_access(e);
	int gone = e->depth == 0;
	if (gone)
		remove_entry(s, e);
	/* Failing to close would leave a secret reachable: never return. */
	if (changed(d, from, to, s) != 0)
		fatal("domain_exit", dh, "cannot close the domain");
	if (gone)
		enter_unpin(d);
	return 0;
}

void enter_thread_exit(void *arg)
{
	struct open_set *s = arg;
	while (s->n) {
		struct open_entry e = s->e[s->n - 1];
		s->n--;
		changed(e.d, open_entry_access(&e), ACCESS_NONE, s);
		enter_unpin(e.d);
	}
	s->registered = 0;
}

int window_open(struct domain *d, struct window *w, int flags)
{
	struct open_set *s = &tls_set;
	struct open_entry *e = find(s, d);
	w->d = d;
	w->pinned = w->opened = 0;
	if (!e) {
		int err = enter_pin(d, flags);
		if (err)
			return err;
		w->pinned = 1;
	}
	/* Page permissions are shared: if this thread holds d read-write,
	 * the pages are read-write already. */
	if (!cfg->backend->per_thread && e && open_entry_access(e) == DOMAIN_RDWR)
		return 0;
	w->token = cfg->backend->window_open(d);
	w->opened = 1;
	return 0;
}

void window_close(struct window *w)
{
	if (w->opened)
		cfg->backend->window_close(w->d, w->token);
	if (w->pinned)
		enter_unpin(w->d);
}
