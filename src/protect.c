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
#include <sys/mman.h>
#include <unistd.h>

int pk_prot_reserve(size_t size, size_t align, void **out)
{
	size_t span = size + align;
	char *raw = pk_inject_mmap(NULL, span, PROT_NONE,
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
	if (pk_inject_madvise(start, size, MADV_DONTDUMP) != 0)
		e = errno;
	if (!e)
		e = pk_prot_no_huge_pages(start, size);
	if (e) {
		munmap(start, size);
		return e;
	}
	*out = start;
	return 0;
}

int pk_prot_map_private(size_t size, void **out)
{
	void *p = pk_inject_mmap(NULL, size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	pk_prot_no_huge_pages(p, size);   /* sparse: a huge page would waste 2 MiB */
	*out = p;
	return 0;
}

int pk_prot_lock(void *addr, size_t size)
{
	return pk_inject_mlock2(addr, size, MLOCK_ONFAULT) == 0 ? 0 : errno;
}

void pk_prot_signals_off(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
}

void pk_prot_signals_on(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

int pk_prot_unlock(void *addr, size_t size)
{
	return pk_inject_munlock(addr, size) == 0 ? 0 : errno;
}

int pk_prot_wipe_on_fork(void *addr, size_t size)
{
	return pk_inject_madvise(addr, size, MADV_WIPEONFORK) == 0 ? 0 : errno;
}

int pk_prot_empty(void *addr, size_t size)
{
	/* A fresh mapping over the old one, in one step: unlike madvise it
	 * drops the protection key with the pages. */
	void *p = pk_inject_mmap(addr, size, PROT_NONE,
	                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	if (pk_inject_madvise(addr, size, MADV_DONTDUMP) != 0)
		return errno;
	return pk_prot_no_huge_pages(addr, size);
}

int pk_prot_release(void *addr, size_t size)
{
	return munmap(addr, size) == 0 ? 0 : errno;
}

int pk_prot_no_huge_pages(void *addr, size_t size)
{
	if (pk_inject_madvise(addr, size, MADV_NOHUGEPAGE) == 0 || errno == EINVAL)  /* EINVAL: no THP */
		return 0;
	return errno;
}

int pk_prot_purge(void *addr, size_t size)
{
	return pk_inject_madvise(addr, size, MADV_DONTNEED) == 0 ? 0 : errno;
}

int pk_prot_protect(void *addr, size_t size, int prot)
{
	return pk_inject_mprotect(addr, size, prot) == 0 ? 0 : errno;
}

int pk_prot_protect_key(void *addr, size_t size, int prot, int key)
{
	return pk_inject_pkey_mprotect(addr, size, prot, key) == 0 ? 0 : errno;
}

int pk_prot_key_alloc(void)
{
	int k = pk_inject_pkey_alloc(0, PKEY_DISABLE_ACCESS);
	return k >= 0 ? k : -errno;
}

