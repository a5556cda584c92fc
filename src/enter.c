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
#include "metamap.h"
#include "settings.h"
#include "fatal.h"
#include "openset.h"
#include "registry.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>

static __thread struct open_set tls_set;

/*
 * Thread exit.  pkalloc's thread-specific-data destructor leaves every
 * domain and takes the thread off the list that evictors and destroyers
 * scan.  A destructor of another key that runs after it and enters a
 * domain would put the thread back on the list, and if nothing of
 * pkalloc's ran after that, the list would keep a dead thread's open set
 * (its TLS, freed with the thread).  So the destructor arms itself again
 * for every round the C library runs, up to PTHREAD_DESTRUCTOR_ITERATIONS,
 * each time cleaning up what was entered since; after the last, entering
 * is refused (EPERM).  Counting rounds needs the destructor armed before
 * the thread began to exit: threads started by pkalloc's pthread_create
 * and thrd_create, and the one that set pkalloc up, are armed from their
 * start (EXIT_EARLY).  A thread armed only when it first entered a domain
 * may be in a later round than its count says, so its first round is taken
 * for its last (EXIT_LATE).
 */
enum { EXIT_UNARMED, EXIT_EARLY, EXIT_LATE, EXIT_DONE };
static __thread unsigned char exit_state;
static __thread unsigned char exit_rounds;

/* The domain plain malloc allocates in (override.c): the innermost
 * capturing domain of the set, kept here so that malloc reads one word. */
__thread struct domain *pk_enter_capture TLS_FAST;
__thread int pk_capture_off TLS_FAST;

struct open_set *pk_enter_open_set(void)
{
	return &tls_set;
}

/* Compiler-only fences: the only other party is a signal handler on this
 * same thread. */
#define PUBLISH() atomic_signal_fence(memory_order_seq_cst)

/* Bumped before and after every change of the set: pk_enter_access_of's
 * answer for the last domain asked about stays good while it holds. */
__thread uint64_t pk_enter_set_version TLS_FAST;
__thread struct enter_last pk_enter_last_access TLS_FAST;
#define set_version pk_enter_set_version
#define last_access pk_enter_last_access

static void set_changing(void)
{
	PUBLISH();
	set_version++;
	PUBLISH();
}

/* The level this call may change: the first one not in use by the code
 * this call may have interrupted. */
static struct open_level *claim_level(struct open_set *s)
{
	unsigned l = 0;
	while (l < OPEN_LEVELS - 1 && s->lv[l].busy)
		l++;
	struct open_level *lv = &s->lv[l];
	lv->busy = 1;
	set_changing();
	return lv;
}

static void release_level(struct open_level *lv)
{
	set_changing();
	lv->busy = 0;
}

static struct open_entry *find(struct open_level *lv, const struct domain *d)
{
	for (unsigned i = 0; i < lv->n; i++)
		if (lv->e[i].d == d && lv->e[i].gen == d->gen)
			return &lv->e[i];
	return NULL;
}

/* Capture: read-write enters of DOMAIN_CAPTURE_MALLOC domains, as a stack
 * of runs per level; the innermost is the top of the highest level used. */
static int capture_room(const struct open_level *lv, const struct domain *d)
{
	return lv->ncap < PKALLOC_MAX_CAPTURE || lv->cap[lv->ncap - 1].d == d;
}

static void capture_update(const struct open_set *s)
{
	struct domain *c = NULL;
	for (unsigned l = OPEN_LEVELS; l-- > 0;)
		if (s->lv[l].ncap) {
			c = s->lv[l].cap[s->lv[l].ncap - 1].d;
			break;
		}
	pk_enter_capture = c;
}

static void capture_push(struct open_set *s, struct open_level *lv, struct domain *d)
{
	if (lv->ncap && lv->cap[lv->ncap - 1].d == d) {
		lv->cap[lv->ncap - 1].n++;
	} else {
		lv->cap[lv->ncap] = (struct capture_run){ .d = d, .n = 1 };
		PUBLISH();
		lv->ncap++;
	}
	capture_update(s);
}

/* An exit closes d's most recent enter: take it off d's latest run. */
static void capture_pop(struct open_set *s, struct open_level *lv, struct domain *d)
{
	for (unsigned i = lv->ncap; i-- > 0;) {
		if (lv->cap[i].d != d)
			continue;
		if (--lv->cap[i].n == 0) {
			/* Drop the run; its neighbours may now be one run. */
			unsigned n = lv->ncap;
			if (i > 0 && i + 1 < n && lv->cap[i - 1].d == lv->cap[i + 1].d) {
				lv->cap[i - 1].n += lv->cap[i + 1].n;
				memmove(&lv->cap[i], &lv->cap[i + 2], (n - i - 2) * sizeof lv->cap[0]);
				n -= 2;
			} else {
				memmove(&lv->cap[i], &lv->cap[i + 1], (n - i - 1) * sizeof lv->cap[0]);
				n -= 1;
			}
			PUBLISH();
			lv->ncap = n;
		}
		break;
	}
	capture_update(s);
}

int pk_enter_access_of(struct domain *d)
{
	uint64_t version = set_version;
	PUBLISH();
	if (last_access.d == d && last_access.version == version)
		return last_access.access;
	int best = ACCESS_NONE;
	FOR_EACH_OPEN(&tls_set, e)
		if (e->d == d && pk_openset_entry_access(e) > best)
			best = pk_openset_entry_access(e);
	/* Stamped with the version read before the scan: a handler that
	 * changed the set meanwhile has made it stale already. */
	last_access.d = NULL;
	PUBLISH();
	last_access.access = best;
	last_access.version = version;
	PUBLISH();
	last_access.d = d;
	return best;
}

/* What an evictor's scan reads of another thread's set (the entry's
 * domain, the count) is stored with relaxed atomic stores: plain moves,
 * as cheap as before, but not a data race with the scan. */
#define SET_SCANNED(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

/* The last entry moves into the hole before the count drops, so a
 * scanning evictor never misses it. */
static void remove_entry(struct open_level *lv, struct open_entry *e)
{
	const struct open_entry *last = &lv->e[lv->n - 1];
	e->gen = last->gen;
	e->st = last->st;
	SET_SCANNED(e->d, last->d);
	PUBLISH();
	SET_SCANNED(lv->n, lv->n - 1);
}

/*
 * The calling thread has just published an entry for d (its pin): check
 * that d may be entered, and let the backend make it usable.  No atomic
 * read-modify-write: see "Pins" in protect.h.
 */
static int pin_entered(struct domain *d)
{
	PIN_FENCE();
	if ((atomic_load_explicit(&d->inside, memory_order_relaxed) & INSIDE_DEAD) ||
	    atomic_load(&d->state) != DOM_LIVE) {
		/* A destroy is deciding, under the registry lock.  Under that lock
		 * none is in progress: a destroy after it will see the entry. */
		pk_registry_lock();
		int gone = (atomic_load(&d->inside) & INSIDE_DEAD) || atomic_load(&d->state) != DOM_LIVE;
		pk_registry_unlock();
		if (gone)
			return EINVAL;
	}
	return pk_cfg->backend->pinned ? pk_cfg->backend->pinned(d, 0) : 0;
}

static void unpinned(struct domain *d)
{
	PIN_FENCE();      /* the removal before any read of d's state */
	if (pk_cfg->backend->unpinned)
		pk_cfg->backend->unpinned(d);
}

int pk_enter_pin(struct domain *d, int flags)
{
	unsigned prev = atomic_fetch_add(&d->inside, 1);
	if (!(flags & PIN_ANY_STATE) &&
	    ((prev & INSIDE_DEAD) || atomic_load(&d->state) != DOM_LIVE)) {
		atomic_fetch_sub(&d->inside, 1);
		/* A destroy may be deciding, under the registry lock.  Under that
		 * lock no destroy is in progress: pin there, or learn it is gone. */
		pk_registry_lock();
		prev = atomic_fetch_add(&d->inside, 1);
		if ((prev & INSIDE_DEAD) || atomic_load(&d->state) != DOM_LIVE) {
			atomic_fetch_sub(&d->inside, 1);
			pk_registry_unlock();
			return EINVAL;
		}
		pk_registry_unlock();
	}
	if (pk_cfg->backend->pinned) {
		int err = pk_cfg->backend->pinned(d, flags & PIN_SHARE_OK);
		if (err) {
			pk_enter_unpin(d);
			return err;
		}
	}
	return 0;
}

void pk_enter_unpin(struct domain *d)
{
	atomic_fetch_sub(&d->inside, 1);
	if (pk_cfg->backend->unpinned)
		pk_cfg->backend->unpinned(d);
}

/* Tell the backend; pku recomputes PKRU at every change of the set. */
static int changed(struct domain *d, int from, int to, const struct open_set *s)
{
	if (from == to && !pk_cfg->backend->per_thread)
		return 0;
	return pk_cfg->backend->access(d, from, to, s);
}

int domain_enter(domain_t *dh, int access)
{
	struct domain *d = registry_check(dh);
	if (!d || (access != DOMAIN_RDONLY && access != DOMAIN_RDWR)) {
		errno = EINVAL;
		return -1;
	}
	struct open_set *s = &tls_set;
	struct open_level *lv = claim_level(s);
	struct open_entry *e = find(lv, d);
	int err = 0, fresh = !e;
	int capturing = access == DOMAIN_RDWR && (d->flags & DOMAIN_CAPTURE_MALLOC);
	if (capturing && !capture_room(lv, d)) {
		err = EOVERFLOW;
		goto out;
	}
	if (fresh) {
		if (lv->n == PKALLOC_MAX_OPEN) {
			err = ENOMEM;
			goto out;
		}
		if (!s->registered) {
			/* Leave every domain when the thread exits, and be seen by
			 * evictors.  Once per thread, with signals held off:
			 * pthread_setspecific and the list's lock are not
			 * async-signal-safe. */
			if (exit_state == EXIT_DONE) {
				err = EPERM;        /* past pkalloc's last exit round */
				goto out;
			}
			sigset_t old;
			pk_prot_signals_off(&old);
			if (!s->registered) {
				if (exit_state == EXIT_UNARMED) {
					pthread_setspecific(pk_cfg->thread_key, s);
					exit_state = EXIT_LATE;
				}
				pk_openset_add(s);
				s->registered = 1;
			}
			pk_prot_signals_on(&old);
		}
		e = &lv->e[lv->n];
		e->gen = d->gen;
		e->st = 0;
		SET_SCANNED(e->d, d);
		PUBLISH();
		SET_SCANNED(lv->n, lv->n + 1);
		if ((err = pin_entered(d)) != 0) {
			remove_entry(lv, e);
			goto out;
		}
		/* Pinned, d cannot change hands now; but between the check and
		 * the pin, dh's domain may have been destroyed and d given to a
		 * new one (see domain_create): never enter that one. */
		if (UNLIKELY(registry_check(dh) != d)) {
			remove_entry(lv, e);
			unpinned(d);
			err = EINVAL;
			goto out;
		}
	} else if (ENTRY_DEPTH(e->st) == PKALLOC_MAX_NEST) {
		err = EOVERFLOW;
		goto out;
	}

	uint64_t old = e->st;
	unsigned depth = ENTRY_DEPTH(old);
	int from = pk_openset_entry_access(e);
	e->st = ((uint64_t)(depth + 1) << 56) | (old & ((UINT64_C(1) << 56) - 1)) |
	        (access == DOMAIN_RDWR ? UINT64_C(1) << depth : 0);
	if ((err = changed(d, from, pk_openset_entry_access(e), s)) != 0) {
		e->st = old;
		if (fresh) {
			remove_entry(lv, e);
			unpinned(d);
		}
	} else if (capturing) {
		capture_push(s, lv, d);
	}
out:
	release_level(lv);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

int domain_exit(domain_t *dh)
{
	struct domain *d = registry_check(dh);
	if (!d) {
		errno = EINVAL;
		return -1;
	}
	struct open_set *s = &tls_set;
	struct open_level *lv = claim_level(s);
	struct open_entry *e = find(lv, d);
	if (!e) {
		release_level(lv);
		errno = EPERM;
		return -1;
	}
	int from = pk_openset_entry_access(e);
	unsigned depth = ENTRY_DEPTH(e->st) - 1;
	int captured = ((e->st >> depth) & 1) && (d->flags & DOMAIN_CAPTURE_MALLOC);
	e->st = ((uint64_t)depth << 56) | (e->st & ((UINT64_C(1) << depth) - 1));
	int to = pk_openset_entry_access(e);
	/* Close first (PKRU skips an entry of depth 0), unpin after: the key
	 * can move only once this thread can no longer use it. */
	int err = changed(d, from, to, s);
	if (err)
		pk_fatal("domain_exit", dh, err, "cannot close the domain");
	if (captured)
		capture_pop(s, lv, d);
	if (depth == 0) {
		remove_entry(lv, e);
		unpinned(d);
	}
	release_level(lv);
	return 0;
}

void pk_enter_thread_arm(void)
{
	if (exit_state != EXIT_UNARMED)
		return;
	pk_capture_off++;            /* the C library may allocate for the key */
	if (pthread_setspecific(pk_cfg->thread_key, &tls_set) == 0)
		exit_state = EXIT_EARLY;
	pk_capture_off--;
}

int pk_enter_thread_arm_late(void)
{
	if (exit_state == EXIT_DONE)
		return 0;
	if (exit_state == EXIT_UNARMED) {
		pk_capture_off++;
		pthread_setspecific(pk_cfg->thread_key, &tls_set);
		pk_capture_off--;
		exit_state = EXIT_LATE;
	}
	return 1;
}

int pk_enter_thread_done(void)
{
	return exit_state == EXIT_DONE;
}

void pk_enter_thread_exit(void *arg)
{
	struct open_set *s = arg;
	struct open_level *lv = &s->lv[0];
	if (exit_state == EXIT_EARLY && ++exit_rounds < PTHREAD_DESTRUCTOR_ITERATIONS)
		pthread_setspecific(pk_cfg->thread_key, s);      /* called again next round */
	else
		exit_state = EXIT_DONE;
	if (!s->registered)
		return;
	set_changing();
	/* From here on, malloc is ordinary again on this thread. */
	for (unsigned l = 0; l < OPEN_LEVELS; l++)
		s->lv[l].ncap = 0;
	pk_enter_capture = NULL;
	while (lv->n) {
		struct open_entry *e = &lv->e[lv->n - 1];
		struct domain *d = e->d;
		int from = pk_openset_entry_access(e);
		e->st = 0;
		/* As in domain_exit: never leave it open for every other thread. */
		int err = changed(d, from, ACCESS_NONE, s);
		if (err)
			pk_fatal("mprotect", d->lo, err, "cannot close a domain");
		remove_entry(lv, e);
		unpinned(d);
	}
	set_changing();
	sigset_t old;
	pk_prot_signals_off(&old);
	pk_openset_remove(s);
	s->registered = 0;
	pk_prot_signals_on(&old);
}

int pk_window_open(struct domain *d, struct window *w, int flags)
{
	/* Pinned already if this thread is inside (at any level). */
	int access = pk_enter_access_of(d);
	w->d = d;
	w->pinned = w->opened = 0;
	if (access == ACCESS_NONE) {
		int err = pk_enter_pin(d, flags);
		if (err)
			return err;
		w->pinned = 1;
	}
	/* Page permissions are shared: if this thread holds d read-write,
	 * the pages are read-write already. */
	if (pk_cfg->backend->per_thread || access != DOMAIN_RDWR) {
		int err = pk_cfg->backend->window_open(d, &w->token);
		if (err) {
			if (w->pinned)
				pk_enter_unpin(d);
			w->pinned = 0;
			return err;
		}
		w->opened = 1;
	}
	pk_metamap_depth++;
	return 0;
}

void pk_window_close(struct window *w)
{
	pk_metamap_depth--;
	if (w->opened)
		pk_cfg->backend->window_close(w->d, w->token);
	if (w->pinned)
		pk_enter_unpin(w->d);
}
