/*
 * Fault injection (built only with --enable-fault-injection): the OS calls
 * of the protection layer, counted, with one of them made to fail.  Tests
 * use it to show that every failure gives its caller a clean error, or the
 * documented abort, and leaves no secret lost or reachable.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "inject.h"

#include <errno.h>
#include <unistd.h>

static _Atomic unsigned long calls, fail_at;
static _Atomic int fail_err, fired;
static _Atomic unsigned fail_flags;
static _Atomic unsigned char trace[INJECT_TRACE];

static const int usual_errno[INJECT_KINDS] = {
	[INJECT_MMAP] = ENOMEM, [INJECT_MPROTECT] = ENOMEM, [INJECT_MADVISE] = ENOMEM,
	[INJECT_MLOCK] = ENOMEM, [INJECT_PKEY_ALLOC] = ENOSPC, [INJECT_PKEY_MPROTECT] = ENOMEM,
	[INJECT_MEMFD_SECRET] = ENOSYS, [INJECT_FTRUNCATE] = ENOMEM,
};

PKALLOC_API void pkalloc_inject_arm(unsigned long n, int err, unsigned flags)
{
	atomic_store(&fail_at, 0);
	atomic_store(&fired, 0);
	atomic_store(&fail_err, err);
	atomic_store(&fail_flags, flags);
	atomic_store(&calls, 0);
	atomic_store(&fail_at, n);
}

PKALLOC_API unsigned long pkalloc_inject_calls(void)
{
	return atomic_load(&calls);
}

PKALLOC_API int pkalloc_inject_kind(unsigned long i)
{
	if (i == 0 || i > INJECT_TRACE || i > atomic_load(&calls))
		return -1;
	return atomic_load(&trace[i - 1]);
}

PKALLOC_API int pkalloc_inject_fired(void)
{
	return atomic_load(&fired);
}

/* Count one call of this kind: 0 to go ahead, else the errno to fail with. */
static int hit(enum inject_kind kind)
{
	unsigned long n = atomic_fetch_add(&calls, 1) + 1, at = atomic_load(&fail_at);
	if (n <= INJECT_TRACE)
		atomic_store(&trace[n - 1], (unsigned char)kind);
	if (at == 0 || n < at || n > at + (atomic_load(&fail_flags) & INJECT_TWICE ? 1 : 0))
		return 0;
	atomic_fetch_add(&fired, 1);
	int err = atomic_load(&fail_err);
	return err ? err : usual_errno[kind];
}

/* With INJECT_PARTIAL, how much of a failing range call to do for real. */
static size_t partial(size_t len)
{
	size_t page = (size_t)getpagesize();
	return (atomic_load(&fail_flags) & INJECT_PARTIAL) && len > page ? page : 0;
}

#define FAIL_WITH(err, ret) do { errno = (err); return (ret); } while (0)

void *pk_inject_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int err = hit(INJECT_MMAP);
	if (err)
		FAIL_WITH(err, MAP_FAILED);
	return mmap(addr, len, prot, flags, fd, off);
}

int pk_inject_mprotect(void *addr, size_t len, int prot)
{
	int err = hit(INJECT_MPROTECT);
	if (err) {
		size_t part = partial(len);
		if (part)
			mprotect(addr, part, prot);
		FAIL_WITH(err, -1);
	}
	return mprotect(addr, len, prot);
}

int pk_inject_madvise(void *addr, size_t len, int advice)
{
	int err = hit(INJECT_MADVISE);
	if (err) {
		size_t part = partial(len);
		if (part)
			madvise(addr, part, advice);
		FAIL_WITH(err, -1);
	}
	return madvise(addr, len, advice);
}

int pk_inject_mlock2(const void *addr, size_t len, unsigned flags)
{
	int err = hit(INJECT_MLOCK);
	if (err) {
		size_t part = partial(len);
		if (part)
			mlock2(addr, part, flags);
		FAIL_WITH(err, -1);
	}
	return mlock2(addr, len, flags);
}

int pk_inject_munlock(const void *addr, size_t len)
{
	int err = hit(INJECT_MLOCK);
	if (err) {
		size_t part = partial(len);
		if (part)
			munlock(addr, part);
		FAIL_WITH(err, -1);
	}
	return munlock(addr, len);
}

int pk_inject_pkey_alloc(unsigned flags, unsigned rights)
{
	int err = hit(INJECT_PKEY_ALLOC);
	if (err)
		FAIL_WITH(err, -1);
	return pkey_alloc(flags, rights);
}

int pk_inject_pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	int err = hit(INJECT_PKEY_MPROTECT);
	if (err) {
		size_t part = partial(len);
		if (part)
			pkey_mprotect(addr, part, prot, pkey);
		FAIL_WITH(err, -1);
	}
	return pkey_mprotect(addr, len, prot, pkey);
}

int pk_inject_memfd_secret(unsigned flags)
{
	int err = hit(INJECT_MEMFD_SECRET);
	if (err)
		FAIL_WITH(err, -1);
	return (int)syscall(SYS_memfd_secret, flags);
}

int pk_inject_ftruncate(int fd, off_t len)
{
	int err = hit(INJECT_FTRUNCATE);
	if (err)
		FAIL_WITH(err, -1);
	return ftruncate(fd, len);
}
