/*
 * Fault injection, for tests only.  The OS calls of the protection layer
 * (mmap, mprotect, madvise, mlock2/munlock, pkey_alloc, pkey_mprotect,
 * and DOMAIN_SECRETMEM's memfd_secret and ftruncate) are
 * made through the names below.  In a build configured with
 * --enable-fault-injection they are counted, and the Nth one can be made to
 * fail; in every other build they are the plain calls and nothing of this
 * file reaches the library.
 */
#ifndef PKALLOC_INJECT_H
#define PKALLOC_INJECT_H

#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447          /* x86-64, Linux 5.14 */
#endif

/* The kinds of call counted (munlock counts as mlock). */
enum inject_kind {
	INJECT_MMAP, INJECT_MPROTECT, INJECT_MADVISE, INJECT_MLOCK,
	INJECT_PKEY_ALLOC, INJECT_PKEY_MPROTECT, INJECT_MEMFD_SECRET, INJECT_FTRUNCATE,
	INJECT_KINDS
};

/* Flags of pkalloc_inject_arm.  PARTIAL: a range call made to fail first
 * does its first page for real, as the kernel leaves the VMAs it got
 * through changed when a later one fails.  TWICE: the call after it fails
 * too (a repair that meets the same shortage). */
#define INJECT_PARTIAL 1u
#define INJECT_TWICE   2u

#ifdef PKALLOC_FAULT_INJECTION
#pragma GCC visibility push(hidden)
void *pk_inject_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int pk_inject_mprotect(void *addr, size_t len, int prot);
int pk_inject_madvise(void *addr, size_t len, int advice);
int pk_inject_mlock2(const void *addr, size_t len, unsigned flags);
int pk_inject_munlock(const void *addr, size_t len);
int pk_inject_pkey_alloc(unsigned flags, unsigned rights);
int pk_inject_pkey_mprotect(void *addr, size_t len, int prot, int pkey);
int pk_inject_memfd_secret(unsigned flags);
int pk_inject_ftruncate(int fd, off_t len);
#pragma GCC visibility pop
#else
#define pk_inject_mmap          mmap
#define pk_inject_mprotect      mprotect
#define pk_inject_madvise       madvise
#define pk_inject_mlock2        mlock2
#define pk_inject_munlock       munlock
#define pk_inject_pkey_alloc    pkey_alloc
#define pk_inject_pkey_mprotect pkey_mprotect
#define pk_inject_memfd_secret(flags) ((int)syscall(SYS_memfd_secret, (flags)))
#define pk_inject_ftruncate     ftruncate
#endif

/*
 * The test interface, exported by fault-injection builds only.
 *
 * pkalloc_inject_arm: count the calls from now on, starting at 0, and make
 * call number fail_at (1-based; 0: none) fail with err, or with the usual
 * errno of its kind when err is 0 (ENOMEM; ENOSPC for pkey_alloc; ENOSYS
 * for memfd_secret, as a kernel without it says).
 * pkalloc_inject_calls: calls counted since.  pkalloc_inject_kind: the
 * kind of call number i, or -1 past the first INJECT_TRACE calls.
 * pkalloc_inject_fired: how many calls were made to fail since.
 */
#define INJECT_TRACE 65536
void pkalloc_inject_arm(unsigned long fail_at, int err, unsigned flags);
unsigned long pkalloc_inject_calls(void);
int pkalloc_inject_kind(unsigned long i);
int pkalloc_inject_fired(void);

#endif
