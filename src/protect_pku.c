/*
 * The "pku" backend: x86 memory protection keys.  A domain's pages carry
 * the key it holds (keys.c moves keys between domains); a thread's rights
 * live in its PKRU register.
 *
 * PKRU is computed, never toggled: every key pkalloc owns is denied, then
 * opened again for each domain in the thread's open set.  Bits of keys
 * pkalloc does not own (key 0, the kernel's execute-only key, other
 * libraries' keys) are kept as they are.  Recomputing wipes any stale right
 * a key's earlier holder left behind, which is what makes key reuse safe.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "protect.h"
#include "protect_pku.h"
#include "inject.h"
#include "keys.h"
#include "pkru.h"
#include "openset.h"
#include "pages.h"
#include "fatal.h"
#include "settings.h"

#include <cpuid.h>
#include <signal.h>
#include <errno.h>
#include <sys/mman.h>
#include <x86intrin.h>

/*
 * Present when CPUID says the OS enabled protection keys (OSPKE) and the
 * kernel hands out a key.  CPUID comes first: without PKU some kernels
 * answer pkey_alloc(0, PKEY_DISABLE_ACCESS) with ENOSPC, which would look
 * like "all keys taken".
 */
static int pku_probe(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(c & bit_OSPKE))
		return ENOTSUP;
	int k = pk_inject_pkey_alloc(0, PKEY_DISABLE_ACCESS);
	if (k < 0)
		return errno == ENOSPC ? 0 : errno;   /* all taken by others: present */
	pkey_free(k);
	return 0;
}

/* Pages of a parked domain are unreachable; a shared key leaves isolation
 * among its sharers to page permissions. */
static int pku_want(const struct domain *d)
{
	if (d->fork_open)
		return PROT_READ | PROT_WRITE;
	if (atomic_load(&d->key) < 0)
		return PROT_NONE;
	if (!atomic_load(&d->shared) || (atomic_load(&d->inside) & ~INSIDE_DEAD) > 0 ||
	    pk_openset_anyone_inside(d))
		return PROT_READ | PROT_WRITE;
	return PROT_NONE;
}

/* The slow paths take locks: no signal handler of this thread may run
 * (and call domain_enter) while one is held. */
static void shared_apply(struct domain *d)
{
	sigset_t old;
	pk_prot_signals_off(&old);
	pk_pages_apply_or_die(d, "mprotect", "cannot change a shared domain's permissions");
	pk_prot_signals_on(&old);
}

static int pku_pinned(struct domain *d, int may_share)
{
	if (atomic_load(&d->evicting) || atomic_load(&d->key) < 0) {
		sigset_t old;
		pk_prot_signals_off(&old);
		int err = pk_keys_acquire(d, may_share);
		pk_prot_signals_on(&old);
		if (err)
			return err;
	}
	if (atomic_load(&d->shared))
		shared_apply(d);
	return 0;
}

static void pku_unpinned(struct domain *d)
{
	atomic_store_explicit(&d->last_used, __rdtsc(), memory_order_relaxed);
	if (atomic_load(&d->shared))
		shared_apply(d);
}

static int pku_tag(struct domain *d, void *addr, size_t len)
{
	return pk_inject_pkey_mprotect(addr, len, PROT_READ | PROT_WRITE, atomic_load(&d->key)) == 0
	       ? 0 : errno;
}

static uint32_t pkru_for(const struct open_set *set)
{
	uint32_t pkru = rdpkru() | pk_keys_owned_bits();
	FOR_EACH_OPEN(set, e) {
		int access = pk_openset_entry_access(e);   /* NONE: an entry being made */
		int k = atomic_load_explicit(&e->d->key, memory_order_relaxed);
		if (access == DOMAIN_RDWR)
			pkru &= ~PKRU_BITS(k);
		else if (access == DOMAIN_RDONLY)
			pkru &= ~PKRU_AD(k);
	}
	return pkru;
}

static int pku_access(struct domain *d, int from, int to, const struct open_set *set)
{
	(void)d, (void)from, (void)to;
	wrpkru(pkru_for(set));
	return 0;
}

/* Token: the PKRU to restore, with bit 32 set if the window changed it. */
static int pku_window_open(struct domain *d, uintptr_t *token)
{
	int k = atomic_load_explicit(&d->key, memory_order_relaxed);
	uint32_t pkru = rdpkru();
	*token = pkru;
	if (pkru & PKRU_BITS(k)) {
		wrpkru(pkru & ~PKRU_BITS(k));
		*token |= (uintptr_t)1 << 32;
	}
	return 0;
}

static void pku_window_close(struct domain *d, uintptr_t token)
{
	(void)d;
	if (token >> 32)
		wrpkru((uint32_t)token);
}

static void pku_thread_start(void)
{
	wrpkru(rdpkru() | pk_keys_owned_bits());
}

static void pku_prefork_thread(const struct open_set *set)
{
	(void)set;
	pk_keys_fork_lock();            /* no key moves across the fork */
	wrpkru(rdpkru() & ~pk_keys_owned_bits());
}

static void pku_postfork_thread(const struct open_set *set, int child)
{
	pk_keys_fork_unlock(child);
	wrpkru(pkru_for(set));
}

const struct backend pk_backend_pku = {
	.name = "pku",
	.per_thread = 1,
	.probe = pku_probe,
	.pinned = pku_pinned,
	.unpinned = pku_unpinned,
	.release = pk_keys_release,
	.want = pku_want,
	.tag = pku_tag,
	.access = pku_access,
	.window_open = pku_window_open,
	.window_close = pku_window_close,
	.thread_start = pku_thread_start,
	.prefork_thread = pku_prefork_thread,
	.postfork_thread = pku_postfork_thread,
};
