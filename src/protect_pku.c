/*
 * The "pku" backend: x86 memory protection keys.  Each domain's pages carry
 * its key (pkey_mprotect); a thread's rights live in its PKRU register.
 *
 * PKRU is computed, never toggled: every key pkalloc owns is denied, then
 * opened again for each domain in the thread's open set.  Bits of keys
 * pkalloc does not own (key 0, the kernel's execute-only key, other
 * libraries' keys) are kept as they are.  Recomputing wipes any stale right
 * a key's earlier owner left behind, which is what makes key reuse safe.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "protect.h"
#include "pkru.h"

#include <cpuid.h>
#include <errno.h>
#include <sys/mman.h>

/* Keys pkalloc holds: PKRU_BITS of each, and the ones no domain uses now.
 * Keys are never given back to the kernel: it allows pkey_free while pages
 * still carry the key, and the next owner would inherit them. */
static _Atomic uint32_t owned_bits;
static uint32_t idle_keys;         /* bit k: key k is ours and unused */
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Present when CPUID says the OS enabled protection keys (OSPKE) and the
 * kernel hands out a key.  CPUID comes first: without PKU some kernels
 * answer pkey_alloc with ENOSPC, which would look like "all keys taken".
 */
static int pku_probe(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(c & bit_OSPKE))
		return ENOTSUP;
	int k = pkey_alloc(0, PKEY_DISABLE_ACCESS);
	if (k < 0)
		return errno == ENOSPC ? 0 : errno;   /* all taken by others: present */
	pkey_free(k);
	return 0;
}

static int pku_key_get(void)
{
	int k = -ENOSPC;
	pthread_mutex_lock(&keys_lock);
	if (idle_keys) {
		k = __builtin_ctz(idle_keys);
		idle_keys &= ~(UINT32_C(1) << k);
	} else {
		int nk = pkey_alloc(0, PKEY_DISABLE_ACCESS);
		if (nk >= 0 && nk < 16) {
			k = nk;
			atomic_fetch_or(&owned_bits, PKRU_BITS(k));
		} else if (nk >= 0) {
			pkey_free(nk);          /* not addressable in PKRU: never happens on x86 */
		} else {
			k = -errno;
		}
	}
	pthread_mutex_unlock(&keys_lock);
	return k;
}

static void pku_key_put(int k)
{
	pthread_mutex_lock(&keys_lock);
	idle_keys |= UINT32_C(1) << k;
	pthread_mutex_unlock(&keys_lock);
}

static int pku_tag(struct domain *d, void *addr, size_t len)
{
	return pkey_mprotect(addr, len, PROT_READ | PROT_WRITE, d->key) == 0 ? 0 : errno;
}

static uint32_t pkru_for(const struct open_set *set)
{
	uint32_t pkru = rdpkru() | atomic_load_explicit(&owned_bits, memory_order_relaxed);
	for (unsigned i = 0; i < set->n; i++) {
		int k = set->e[i].d->key;
		if (open_entry_access(&set->e[i]) == DOMAIN_RDWR)
			pkru &= ~PKRU_BITS(k);
		else
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
static uintptr_t pku_window_open(struct domain *d)
{
	uint32_t pkru = rdpkru();
	if (!(pkru & PKRU_BITS(d->key)))
		return pkru;
	wrpkru(pkru & ~PKRU_BITS(d->key));
	return (uintptr_t)pkru | ((uintptr_t)1 << 32);
}

static void pku_window_close(struct domain *d, uintptr_t token)
{
	(void)d;
	if (token >> 32)
		wrpkru((uint32_t)token);
}

static void pku_thread_start(void)
{
	wrpkru(rdpkru() | atomic_load_explicit(&owned_bits, memory_order_relaxed));
}

static void pku_prefork_thread(const struct open_set *set)
{
	(void)set;
	wrpkru(rdpkru() & ~atomic_load(&owned_bits));
}

static void pku_postfork_thread(const struct open_set *set, int child)
{
	(void)child;
	if (child)
		pthread_mutex_init(&keys_lock, NULL);
	wrpkru(pkru_for(set));
}

const struct backend backend_pku = {
	.name = "pku",
	.per_thread = 1,
	.probe = pku_probe,
	.key_get = pku_key_get,
	.key_put = pku_key_put,
	.tag = pku_tag,
	.access = pku_access,
	.window_open = pku_window_open,
	.window_close = pku_window_close,
	.thread_start = pku_thread_start,
	.prefork_thread = pku_prefork_thread,
	.postfork_thread = pku_postfork_thread,
};
