/*
 * jemalloc's process-wide metadata for domains, kept off transparent huge
 * pages.
 *
 * jemalloc keeps one radix tree mapping every page of every arena to its
 * extent, and takes its nodes from arena 0's base, in plain memory.  A
 * leaf covers one gigabyte of address space and takes 2 MiB; each domain's
 * reservation lies in gigabytes of its own, so its first extent makes
 * jemalloc map a leaf for it, of which it touches a page or two.  The
 * statistics jemalloc keeps per arena come from the same base.  Under
 * transparent huge pages "always" (the default of many distributions'
 * kernels) the first touch of such a block takes a whole huge page, and
 * khugepaged would later fill any page left small: measured 2 MiB of RAM
 * per domain, against 0.1 MiB under "madvise".
 *
 * jemalloc maps those blocks with mmap and no hook of its interface reaches
 * them (arena 0's extent hooks serve its data, not its base).  So pkalloc
 * exports mmap: while the calling thread is inside a jemalloc call on a
 * domain, every anonymous mapping made is such metadata, and is marked
 * MADV_NOHUGEPAGE.  At any other moment the call is passed on untouched.
 * Like the malloc replacement, this is in effect only where libpkalloc
 * comes before the C library in symbol order (linked, or LD_PRELOAD).
 */
#define _GNU_SOURCE
#include "internal.h"
#include "metamap.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread unsigned pk_metamap_depth TLS_FAST;

typedef void *mmap_fn(void *, size_t, int, int, int, off_t);
static mmap_fn *next_mmap;

/* The next definition (another interposer, or the C library's), found
 * once the loader is done; until then the system call serves. */
__attribute__((constructor)) static void find_next_mmap(void)
{
	__atomic_store_n(&next_mmap, (mmap_fn *)dlsym(RTLD_NEXT, "mmap"), __ATOMIC_RELEASE);
}

PKALLOC_API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	mmap_fn *next = __atomic_load_n(&next_mmap, __ATOMIC_ACQUIRE);
	void *p = next ? next(addr, len, prot, flags, fd, off)
	               : (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if (UNLIKELY(pk_metamap_depth) && p != MAP_FAILED && (flags & MAP_ANONYMOUS))
		madvise(p, len, MADV_NOHUGEPAGE);    /* advice: a failure costs memory only */
	return p;
}
