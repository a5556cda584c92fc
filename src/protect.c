/*
 * OS primitives both protection backends share: reserving address space,
 * giving it back, and purging pages.  Purging uses madvise, never a fresh
 * mmap: mmap over a range would reset its protection key to 0, while
 * madvise keeps the key and the permissions and brings pages back zeroed.
 */
#include "internal.h"
#include "protect.h"

#include <errno.h>
#include <sys/mman.h>

int prot_reserve(size_t size, size_t align, void **out)
{
	size_t span = size + align;
	char *raw = mmap(NULL, span, PROT_NONE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return errno;
	char *start = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
	if (start > raw)
		munmap(raw, (size_t)(start - raw));
	if (start + size < raw + span)
		munmap(start + size, (size_t)(raw + span - (start + size)));
	/* Secrets never reach a core dump. */
	if (madvise(start, size, MADV_DONTDUMP) != 0) {
		int e = errno;
		munmap(start, size);
		return e;
	}
	*out = start;
	return 0;
}

int prot_release(void *addr, size_t size)
{
	return munmap(addr, size) == 0 ? 0 : errno;
}

int prot_purge(void *addr, size_t size)
{
	return madvise(addr, size, MADV_DONTNEED) == 0 ? 0 : errno;
}
