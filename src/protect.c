/*
 * OS primitives both protection backends share: reserving address space,
 * emptying it, giving it back, and purging pages.  Purging uses madvise,
 * never a fresh mmap: mmap over a range would reset its protection key to
 * 0, while madvise keeps the key and the permissions and brings pages back
 * zeroed.  Emptying a destroyed domain's range wants exactly that reset.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "protect.h"
#include "inject.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int prot_reserve(size_t size, size_t align, void **out)
{
	size_t span = size + align;
	char *raw = inject_mmap(NULL, span, PROT_NONE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return errno;
	char *start = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
	if (start > raw)
		munmap(raw, (size_t)(start - raw));
	if (start + size < raw + span)
		munmap(start + size, (size_t)(raw + span - (start + size)));
	/* Secrets never reach a core dump.  No transparent huge pages: a domain
	 * holding a few small secrets would otherwise cost 2 MiB per extent
	 * (measured: 4 MiB per domain under a THP "always" kernel). */
	int e = 0;
	if (inject_madvise(start, size, MADV_DONTDUMP) != 0)
		e = errno;
	if (!e)
		e = prot_no_huge_pages(start, size);
	if (e) {
		munmap(start, size);
		return e;
	}
	*out = start;
	return 0;
}

int prot_map_private(size_t size, void **out)
{
	void *p = inject_mmap(NULL, size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	prot_no_huge_pages(p, size);   /* sparse: a huge page would waste 2 MiB */
	*out = p;
	return 0;
}

int prot_lock(void *addr, size_t size)
{
	return inject_mlock2(addr, size, MLOCK_ONFAULT) == 0 ? 0 : errno;
}

void prot_signals_off(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
}

void prot_signals_on(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

int prot_unlock(void *addr, size_t size)
{
	return inject_munlock(addr, size) == 0 ? 0 : errno;
}

int prot_wipe_on_fork(void *addr, size_t size)
{
	return inject_madvise(addr, size, MADV_WIPEONFORK) == 0 ? 0 : errno;
}

int prot_empty(void *addr, size_t size)
{
	/* A fresh mapping over the old one, in one step: unlike madvise it
	 * drops the protection key with the pages. */
	void *p = inject_mmap(addr, size, PROT_NONE,
	                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	if (inject_madvise(addr, size, MADV_DONTDUMP) != 0)
		return errno;
	return prot_no_huge_pages(addr, size);
}

int prot_release(void *addr, size_t size)
{
	return munmap(addr, size) == 0 ? 0 : errno;
}

int prot_no_huge_pages(void *addr, size_t size)
{
	if (inject_madvise(addr, size, MADV_NOHUGEPAGE) == 0 || errno == EINVAL)  /* EINVAL: no THP */
		return 0;
	return errno;
}

int prot_purge(void *addr, size_t size)
{
	return inject_madvise(addr, size, MADV_DONTNEED) == 0 ? 0 : errno;
}

int prot_apply(struct domain *d)
{
	int want = cfg->backend->want(d);
	char *top = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (want == d->prot)
		return 0;
	size_t len = (size_t)(top - d->lo);
	if (top > d->lo && inject_mprotect(d->lo, len, want) != 0) {
		/* The kernel keeps what it changed before the failure (the
		 * first VMAs): put the whole range back as d->prot says. */
		int err = errno;
		if (inject_mprotect(d->lo, len, d->prot) != 0)
			fatal("mprotect", d->lo, "cannot restore a domain's permissions after a failed change");
		return err;
	}
	d->prot = want;
	return 0;
}

int prot_apply_key(struct domain *d, int key, int prot)
{
	char *top = atomic_load_explicit(&d->top, memory_order_relaxed);
	if (top > d->lo && inject_pkey_mprotect(d->lo, (size_t)(top - d->lo), prot, key) != 0)
		return errno;
	d->prot = prot;
	return 0;
}

int prot_key_alloc(void)
{
	int k = inject_pkey_alloc(0, PKEY_DISABLE_ACCESS);
	return k >= 0 ? k : -errno;
}

void prot_prefork_domain(struct domain *d)
{
	pthread_mutex_lock(&d->lock);
	d->fork_open = 1;
	int err = prot_apply(d);
	pthread_mutex_unlock(&d->lock);
	if (err)
		fatal("fork", d->lo, "cannot open a domain for fork");
}

void prot_postfork_domain(struct domain *d, const struct open_set *set, int child)
{
	if (child) {
		/* Only the forking thread lives on: its open set is the whole truth,
		 * and a lock some vanished thread held must not stay held. */
		pthread_mutex_init(&d->lock, NULL);
		d->nread = d->nwrite = 0;
		FOR_EACH_OPEN(set, e)
			if (e->d == d) {
				if (open_entry_access(e) == DOMAIN_RDWR)
					d->nwrite++;
				else
					d->nread++;
			}
	}
	pthread_mutex_lock(&d->lock);
	d->fork_open = 0;
	int err = prot_apply(d);
	pthread_mutex_unlock(&d->lock);
	if (err)
		fatal("fork", d->lo, "cannot close a domain after fork");
}

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_set *threads;

void prot_threads_add(struct open_set *s)
{
	pthread_mutex_lock(&threads_lock);
	s->next = threads;
	threads = s;
	pthread_mutex_unlock(&threads_lock);
}

void prot_threads_remove(struct open_set *s)
{
	pthread_mutex_lock(&threads_lock);
	for (struct open_set **pp = &threads; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	pthread_mutex_unlock(&threads_lock);
}

void prot_threads_fork_child(struct open_set *self)
{
	pthread_mutex_init(&threads_lock, NULL);
	threads = self->registered ? self : NULL;
	if (threads)
		self->next = NULL;
}

int prot_anyone_inside(const struct domain *d)
{
	int found = 0;
	pthread_mutex_lock(&threads_lock);
	for (struct open_set *s = threads; s && !found; s = s->next)
		for (unsigned l = 0; l < OPEN_LEVELS && !found; l++) {
			/* Downwards: an entry only ever moves to a lower slot
			 * (remove_entry), and its old slot is reused only after. */
			unsigned n = __atomic_load_n(&s->lv[l].n, __ATOMIC_RELAXED);
			for (unsigned i = n < PKALLOC_MAX_OPEN ? n : PKALLOC_MAX_OPEN; i-- > 0;)
				if (__atomic_load_n(&s->lv[l].e[i].d, __ATOMIC_RELAXED) == d) {
					found = 1;
					break;
				}
		}
	pthread_mutex_unlock(&threads_lock);
	return found;
}

int prot_membarrier_init(void)
{
	return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

void prot_membarrier(void)
{
	if (!cfg->membarrier)
		atomic_thread_fence(memory_order_seq_cst);
	else if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
		fatal("membarrier", NULL, "failed after it was registered: pins cannot be seen");
}
