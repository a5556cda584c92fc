/*
 * pkalloc: a secure memory allocator with per-domain protection keys.
 *
 * A domain is a heap (a jemalloc arena) whose pages, and jemalloc's own
 * metadata for it, can be reached only by threads that have entered the
 * domain.  On CPUs with memory protection keys (x86 PKU) the pages carry a
 * dedicated key and domain_enter() opens them for the calling thread only,
 * by rewriting that thread's PKRU register.  Elsewhere the same calls run on
 * page permissions (mprotect), which are process-wide: see pkalloc(7).
 *
 * Memory layout and limits
 *   Each domain owns one virtual reservation of PKALLOC_RESERVATION bytes,
 *   aligned to its size, with PKALLOC_GUARD bytes of inaccessible guard
 *   space at each end.  A single allocation can therefore not exceed about
 *   PKALLOC_RESERVATION - 2 * PKALLOC_GUARD bytes.  Pages are committed
 *   only when jemalloc asks for them.  The reservation is excluded from
 *   core dumps.  Freed domain memory is wiped before it is reused.
 *
 *   With the "pku" backend a process has at most 15 protection keys, some
 *   of which other code may hold.  Keys are virtualized: any number of
 *   domains (up to jemalloc's limit of about 4000 arenas; then ENOSPC) share
 *   them, a key moving on entry to the domain being entered; a domain that
 *   holds no key is unreachable.  When every key is held by a domain some
 *   thread is inside, further domains share keys and are kept apart with
 *   page permissions (PKALLOC_STRICT=1 refuses this with EBUSY instead).
 *   A thread can be inside at most PKALLOC_MAX_OPEN distinct domains at
 *   once, each entered at most PKALLOC_MAX_NEST times.
 *
 * Errors follow the system calls this wraps: 0 or -1 with errno, a pointer
 * or NULL with errno.  Passing domain_free or domain_realloc memory that is
 * not domain memory, or free/realloc/delete a pointer inside a domain that
 * does not start a live allocation (an interior pointer, a double free), is
 * a fatal error: pkalloc prints one line starting with "pkalloc:" and
 * aborts.
 */
#ifndef PKALLOC_H
#define PKALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PKALLOC_API      __attribute__((visibility("default")))
#define PKALLOC_MALLOC   __attribute__((malloc, warn_unused_result))
#define PKALLOC_SIZE(i)  __attribute__((alloc_size(i)))
#define PKALLOC_SIZE2(i, j) __attribute__((alloc_size(i, j)))
#define PKALLOC_ALIGN(i) __attribute__((alloc_align(i)))
#define PKALLOC_WUR      __attribute__((warn_unused_result))
#else
#define PKALLOC_API
#define PKALLOC_MALLOC
#define PKALLOC_SIZE(i)
#define PKALLOC_SIZE2(i, j)
#define PKALLOC_ALIGN(i)
#define PKALLOC_WUR
#endif

/*
 * An opaque domain handle, checked by arithmetic on every call and never
 * dereferenced: a wild pointer or a destroyed domain's handle gives EINVAL.
 * It is not a secret nor a capability: the handle of another live domain
 * is a fixed distance from a known one, and works for whoever computes it.
 */
typedef struct pkalloc_domain domain_t;

/* Flags for domain_create(). */
#define DOMAIN_MLOCK      0x1   /* lock the domain's pages in RAM (no swap) */
#define DOMAIN_WIPEONFORK 0x2   /* a child of fork sees the domain's data zeroed */
#define DOMAIN_CAPTURE_MALLOC 0x4 /* plain malloc and C++ new, called by a thread
                                   inside the domain read-write, allocate in it */
#define DOMAIN_SECRETMEM  0x8   /* data in memfd_secret(2) memory: out of the
                                   kernel's direct map, unreadable through
                                   /proc/PID/mem, process_vm_readv, ptrace */

/* Access modes for domain_enter(). */
#define DOMAIN_RDONLY 1
#define DOMAIN_RDWR   2

/* Limits (see the layout block above). */
#define PKALLOC_NAME_MAX    63                  /* bytes, without the NUL */
#define PKALLOC_RESERVATION ((size_t)1 << 32)   /* 4 GiB per domain */
#define PKALLOC_GUARD       ((size_t)2 << 20)   /* 2 MiB at each end */
#define PKALLOC_MAX_OPEN    32
#define PKALLOC_MAX_NEST    56
#define PKALLOC_MAX_CAPTURE 64   /* nested runs of capturing enters, per thread */

/*
 * Create a domain.  name (NULL allowed) is copied; at most PKALLOC_NAME_MAX
 * bytes.  flags: 0 or any of DOMAIN_MLOCK, DOMAIN_WIPEONFORK,
 * DOMAIN_CAPTURE_MALLOC (see "Replacing malloc" below) and DOMAIN_SECRETMEM.
 * With DOMAIN_MLOCK, creating and every allocation that needs new pages
 * fail with mlock's errno (EPERM, EAGAIN, ENOMEM) when the pages cannot be
 * locked.  With DOMAIN_SECRETMEM, creating fails with ENOTSUP where
 * memfd_secret is unavailable (Linux before 5.14, secretmem.enable=1
 * missing before 6.5, a seccomp filter), and an allocation that needs new
 * pages fails with ENOMEM past RLIMIT_MEMLOCK, each with one "pkalloc:"
 * line; never a fallback to ordinary memory (see pkalloc(7)).  Errors:
 * EINVAL (bad name or flags), ENOSPC
 * (jemalloc's arena limit, or other code holds every protection key),
 * EBUSY (PKALLOC_STRICT=1 and every key is pinned), ENOTSUP (the backend
 * asked for with PKALLOC_BACKEND is not available; or DOMAIN_CAPTURE_MALLOC
 * where pkalloc_malloc_replaced() is 0, with one "pkalloc:" line on stderr
 * the first time), ENOMEM (no address space or memory).
 */
PKALLOC_API domain_t *domain_create(const char *name, unsigned flags) PKALLOC_WUR;

/*
 * Destroy a domain: every allocation in it is released and its pages are
 * dropped; its address range stays reserved and inaccessible until a later
 * domain takes it (see "Replacing malloc").  Calls in progress on d in
 * other threads (an allocation, a free) are waited for, up to about 100 ms.
 * Errors: EINVAL (not a live domain), EBUSY (some thread is inside it, or
 * is still allocating in it).
 */
PKALLOC_API int domain_destroy(domain_t *d);

/*
 * Open the domain for the calling thread, with access DOMAIN_RDONLY or
 * DOMAIN_RDWR, until the matching domain_exit().  Enters nest; the access a
 * thread has is the widest of its open enters.  Errors: EINVAL (bad domain
 * or access), ENOMEM (PKALLOC_MAX_OPEN domains already open on this thread),
 * EOVERFLOW (PKALLOC_MAX_NEST enters of this domain already open), EBUSY
 * (PKALLOC_STRICT=1 and the domain would have to share a key), EOVERFLOW
 * also when a read-write enter of a DOMAIN_CAPTURE_MALLOC domain would make
 * more than PKALLOC_MAX_CAPTURE nested runs of capturing enters, EPERM (the
 * thread is exiting and pkalloc's own thread-specific data destructor ran
 * its last round: a later destructor can no longer enter, see pkalloc(3)).
 */
PKALLOC_API int domain_enter(domain_t *d, int access);

/*
 * Close what the calling thread's most recent open enter of d opened.
 * Errors: EINVAL (bad domain), EPERM (this thread is not inside d).
 */
PKALLOC_API int domain_exit(domain_t *d);

/*
 * Allocate in a domain, from inside or outside it, from any thread.  A size
 * of 0 returns a unique minimal allocation.  Errors: EINVAL (bad domain;
 * alignment not a power of two), ENOMEM (out of memory or larger than the
 * reservation; calloc's nmemb * size overflows), EBUSY (as domain_enter).
 */
PKALLOC_API void *domain_malloc(domain_t *d, size_t size)
    PKALLOC_MALLOC PKALLOC_SIZE(2);
PKALLOC_API void *domain_calloc(domain_t *d, size_t nmemb, size_t size)
    PKALLOC_MALLOC PKALLOC_SIZE2(2, 3);
PKALLOC_API void *domain_aligned_alloc(domain_t *d, size_t alignment, size_t size)
    PKALLOC_MALLOC PKALLOC_ALIGN(2) PKALLOC_SIZE(3);

/*
 * Resize ptr (domain memory of any domain, or NULL) to size bytes in domain
 * d.  The contents up to the smaller size are kept; if the block moves, the
 * old one is wiped and freed.  On failure NULL is returned and ptr is left
 * untouched.  A size of 0 gives a minimal allocation, never NULL.
 */
PKALLOC_API void *domain_realloc(domain_t *d, void *ptr, size_t size)
    PKALLOC_WUR PKALLOC_SIZE(3);

/*
 * Wipe and free domain memory, from any thread, inside or outside the
 * domain.  NULL is a no-op.  A pointer that is not domain memory is fatal.
 */
PKALLOC_API void domain_free(void *ptr);

/* Usable size of a domain allocation; 0 (errno EINVAL) for other pointers. */
PKALLOC_API size_t domain_usable_size(const void *ptr);

/* The domain whose reservation holds ptr, or NULL if it is not domain memory. */
PKALLOC_API domain_t *domain_of(const void *ptr);

/* The name given at creation ("" if none); NULL with EINVAL for a bad handle. */
PKALLOC_API const char *domain_name(const domain_t *d);

/* Counters of one domain (domain_stats). */
struct domain_stats {
	size_t allocated;          /* usable bytes of its live allocations */
	size_t mapped;             /* bytes of its reservation given to jemalloc,
	                              metadata included (virtual; purged pages
	                              stay mapped but use no RAM) */
	int key;                   /* hardware key it holds now; -1 when it holds
	                              none (parked, or the mprotect backend) */
	int shared;                /* 1 while its key is shared with others */
	unsigned long long key_loads;   /* times it was given a key */
	unsigned long long evictions;   /* times it lost its key to another domain */
	size_t cached;             /* bytes of free small blocks kept in threads'
	                              caches of the domain, wiped (not counted in
	                              allocated; given back by the next call on the
	                              domain once their thread lets them go) */
	int secretmem;             /* 1: created with DOMAIN_SECRETMEM */
};

/* Process-wide counters (pkalloc_stats). */
struct pkalloc_stats {
	unsigned domains;          /* live domains */
	unsigned keys_owned;       /* hardware keys pkalloc holds (at most 15) */
	unsigned keys_in_use;      /* of those, keys held by some domain now */
	unsigned long long evictions;       /* domains parked to free a key */
	unsigned long long retags;          /* domains moved onto a key (pkey_mprotect) */
	unsigned long long shared_entries;  /* times a domain joined a shared key */
	unsigned long long faults;          /* protection faults reported */
	size_t allocated;          /* sum over live domains */
	size_t mapped;             /* sum over live domains */
	size_t cached;             /* sum over live domains */
};

/* Fill *st.  0, or -1 with EINVAL (bad domain or NULL st). */
PKALLOC_API int domain_stats(domain_t *d, struct domain_stats *st);
PKALLOC_API int pkalloc_stats(struct pkalloc_stats *st);

/*
 * Install a SIGSEGV handler that reports, in one line on stderr, a fault on
 * domain memory: which thread, read or write, which domain, where, and why
 * (not entered, entered read-only, a guard), then restores the previous
 * disposition so that the fault kills the process with SIGSEGV as before.
 * Faults elsewhere go to the previous handler untouched.  Also installed
 * at load when PKALLOC_FAULT_REPORT=1.  0, or -1 with errno (sigaction).
 */
PKALLOC_API int pkalloc_install_fault_handler(void);

/*
 * Replacing malloc
 *   libpkalloc also defines malloc, free, calloc, realloc, reallocarray,
 *   posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 *   malloc_usable_size and every C++ operator new and delete, so linking
 *   with -lpkalloc (or LD_PRELOAD=libpkalloc.so) runs the whole program on
 *   jemalloc.  free, realloc, malloc_usable_size and delete accept domain
 *   memory from anywhere: it is found by address, wiped and freed in its
 *   domain, and realloc keeps it in its domain.
 *
 *   While the calling thread is inside a DOMAIN_CAPTURE_MALLOC domain
 *   read-write, the plain allocation calls of any code it runs (malloc,
 *   calloc, realloc of ordinary memory, the aligned calls, C++ new) allocate
 *   in that domain; of several, the one entered read-write last.  A
 *   read-only enter captures nothing.  realloc moves an ordinary block into
 *   the domain and wipes the old one.  What is allocated there stays domain
 *   memory after the exit, unreachable until the next enter, and may be
 *   freed from anywhere.  pkalloc's pthread_create and thrd_create allocate
 *   ordinary memory for the new thread (it starts outside every domain).
 *
 *   Every caller's malloc binds to the first definition in the dynamic
 *   linker's symbol order, and the C library's comes before libpkalloc's
 *   when libpkalloc is loaded with dlopen or only as the dependency of
 *   another preloaded object: preload libpkalloc.so itself, or link with
 *   -lpkalloc.  Not in effect either under a sanitizer runtime that
 *   replaces malloc itself.  Where it is not in effect, only domain_free
 *   and domain_realloc take domain memory, and domain_create refuses
 *   DOMAIN_CAPTURE_MALLOC with ENOTSUP (capture never silently does
 *   nothing).
 *
 *   A pointer of a destroyed domain given to free, realloc, delete,
 *   malloc_usable_size, domain_free or domain_realloc is fatal ("its
 *   domain was destroyed") while its range is kept: a destroyed domain's
 *   range is reused by a new domain only once more than 16 such ranges
 *   wait (or no other address space is left), oldest first.  After that the pointer is taken for the new
 *   domain's: fatal, unless an allocation of it starts there, which is
 *   then freed, as any use after free may.
 */

/*
 * 1 if pkalloc's malloc, calloc, realloc and free are the ones the process
 * calls (what the dynamic linker resolves from the global scope is
 * libpkalloc's), so that capture works and free takes domain memory; 0 if
 * they are not.  Decided once, when libpkalloc is loaded.  Lets a host (a
 * preload shim, a plugin) refuse early with its own message.  Sets pkalloc
 * up, as pkalloc_backend does; sets no error.
 */
PKALLOC_API int pkalloc_malloc_replaced(void);

/*
 * Zero len bytes of the calling thread's stack just below the caller's
 * frame, where the functions it called (a library handling a secret
 * while a capturing domain holds its heap copies) may have left copies in
 * their frames.  The stores cannot be optimised away.  Call it
 * after such calls return, with len at least as deep as they went (a few
 * pages for printf or a cipher); len must leave the stack room, as deep
 * recursion must: past the stack's end the process dies with SIGSEGV at
 * its guard page.  Never fails; async-signal-safe.
 */
PKALLOC_API void pkalloc_wipe_stack(size_t len);

/*
 * The protection backend in use: "pku" or "mprotect"; "none" if the backend
 * asked for with PKALLOC_BACKEND is unavailable (domain_create then fails).
 */
PKALLOC_API const char *pkalloc_backend(void);

#ifdef __cplusplus
}
#endif

#endif /* PKALLOC_H */
