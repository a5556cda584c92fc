/*
 * The malloc replacement: the C allocation calls and C++ operators new and
 * delete, exported so that linking with -lpkalloc (or LD_PRELOAD) runs the
 * whole program on jemalloc.
 *
 * Ordinary allocations go straight to jemalloc's own malloc, free, calloc
 * and realloc, with its thread cache: the only additions are one
 * thread-local load on allocation (is a capturing domain entered?) and one
 * table load on free (is this domain memory?).  Domain memory is recognised
 * by address wherever it is freed, and never reaches jemalloc's automatic
 * thread cache, which would hand it out again to anyone.
 *
 * All this works only where these definitions are the ones the process
 * calls: pk_override_replaced() tells, and domain_create refuses capture
 * where they are not.
 *
 * Errors follow glibc's documentation: ENOMEM for failed allocations and
 * overflowing sizes, realloc(p, 0) frees p and returns NULL, posix_memalign
 * returns its error and leaves *memptr and errno alone, aligned_alloc wants
 * a power of two, memalign rounds the alignment up to one.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "enter.h"
#include "heap.h"
#include "override.h"
#include "reserve.h"
#include "settings.h"
#include "fatal.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>



/*
 * jemalloc's standard entry points, looked up in jemalloc's own object when
 * libpkalloc is loaded.  Before that (the loader and the C library allocate
 * early) the boot versions serve: jemalloc's *allocx calls, the same heap
 * without the fast paths.
 */
static void *boot_malloc(size_t n)
{
	void *p = mallocx(n ? n : 1, 0);
	if (!p)
		errno = ENOMEM;
	return p;
}

static void boot_free(void *p)
{
	if (p)
		dallocx(p, 0);
}

static void *boot_calloc(size_t nmemb, size_t size)
{
	size_t n;
	if (!size_product(nmemb, size, &n))
		return NULL;
	void *p = mallocx(n ? n : 1, MALLOCX_ZERO);
	if (!p)
		errno = ENOMEM;
	return p;
}

/* Called with p != NULL and n != 0 only. */
static void *boot_realloc(void *p, size_t n)
{
	void *q = rallocx(p, n, 0);
	if (!q)
		errno = ENOMEM;
	return q;
}

static struct {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
} je = { boot_malloc, boot_free, boot_calloc, boot_realloc };

#define JE(f) __atomic_load_n(&je.f, __ATOMIC_RELAXED)

/* The symbol name in jemalloc's object, if it is defined there. */
static void *in_jemalloc(void *h, const Dl_info *jem, const char *name)
{
	void *f = dlsym(h, name);
	Dl_info at;
	if (!f || !dladdr(f, &at) || at.dli_fbase != jem->dli_fbase)
		return NULL;
	return f;
}

/*
 * Every caller's malloc binds to the first definition in the dynamic
 * linker's global scope.  libpkalloc comes after the C library there when
 * it arrives by dlopen or as the dependency of a preloaded object, and a
 * sanitizer's runtime comes before it: its malloc then serves nobody, and
 * capture would silently do nothing.  So ask the linker, as any caller
 * would, which object defines the four calls that must agree.
 */
static _Atomic int replaced = -1;      /* -1: not decided yet */

static int global_is_ours(const char *name, const Dl_info *self)
{
	void *f = dlsym(RTLD_DEFAULT, name);
	Dl_info at;
	return f && dladdr(f, &at) && at.dli_fbase == self->dli_fbase;
}

int pk_override_replaced(void)
{
	int r = atomic_load_explicit(&replaced, memory_order_acquire);
	if (r >= 0)
		return r;
	Dl_info self;
	pk_capture_off++;
	r = dladdr((void *)pk_override_replaced, &self) &&
	    global_is_ours("malloc", &self) && global_is_ours("free", &self) &&
	    global_is_ours("calloc", &self) && global_is_ours("realloc", &self);
	pk_capture_off--;
	atomic_store_explicit(&replaced, r, memory_order_release);
	return r;
}

int pk_override_capture_ok(void)
{
	static atomic_flag said = ATOMIC_FLAG_INIT;
	if (pk_cfg->malloc_replaced)
		return 1;
	if (!atomic_flag_test_and_set(&said)) {
		struct line l = { .n = 0 };
		pk_line_put(&l, "pkalloc: ");
		pk_line_put(&l, "DOMAIN_CAPTURE_MALLOC refused (ENOTSUP): this process's malloc is not "
		         "pkalloc's, so nothing would be captured; link the program with -lpkalloc "
		         "or put libpkalloc.so itself in LD_PRELOAD");
		pk_line_write(&l);
	}
	return 0;
}

__attribute__((constructor)) static void find_jemalloc(void)
{
	Dl_info jem;
	/* Decided here, where the loader's lock is held anyway: a dlsym made
	 * later, from pk_init, could wait for a dlopen on another thread
	 * whose constructors wait for pk_init. */
	pk_override_replaced();
	pk_capture_off++;
	if (dladdr((void *)mallocx, &jem) && jem.dli_fname) {
		void *h = dlopen(jem.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
		if (h) {
			void *m = in_jemalloc(h, &jem, "malloc"), *f = in_jemalloc(h, &jem, "free");
			void *c = in_jemalloc(h, &jem, "calloc"), *r = in_jemalloc(h, &jem, "realloc");
			/* All four or none: each must free what the others give. */
			if (m && f && c && r) {
				__atomic_store_n(&je.malloc, (void *(*)(size_t))m, __ATOMIC_RELAXED);
				__atomic_store_n(&je.free, (void (*)(void *))f, __ATOMIC_RELAXED);
				__atomic_store_n(&je.calloc, (void *(*)(size_t, size_t))c, __ATOMIC_RELAXED);
				__atomic_store_n(&je.realloc, (void *(*)(void *, size_t))r, __ATOMIC_RELAXED);
			}
			dlclose(h);
		}
	}
	pk_capture_off--;
}

/* The capturing domain of this thread, or NULL: the only cost that
 * ordinary allocations pay. */
static inline struct domain *capturing(void)
{
	struct domain *c = pk_enter_capture;
	if (LIKELY(c == NULL) || pk_capture_off)
		return NULL;
	return c;
}

static void *captured(struct domain *c, size_t n, int flags)
{
	void *p = pk_heap_alloc(c, n, flags);
	if (!p)
		errno = ENOMEM;
	return p;
}

static int lg_align(size_t alignment)
{
	return MALLOCX_LG_ALIGN((unsigned)__builtin_ctzl(alignment));
}

/* alignment: a power of two. */
static void *aligned(size_t alignment, size_t n)
{
	struct domain *c = capturing();
	if (c)
		return captured(c, n, lg_align(alignment));
	void *p = mallocx(n ? n : 1, lg_align(alignment));
	if (!p)
		errno = ENOMEM;
	return p;
}

/* ---- C -------------------------------------------------------------------- */

PKALLOC_API void *malloc(size_t n)
{
	struct domain *c = capturing();
	if (UNLIKELY(c != NULL))
		return captured(c, n, 0);
	return JE(malloc)(n);
}

PKALLOC_API void free(void *p)
{
	if (UNLIKELY(reserve_owned(p))) {
		pk_heap_free(p, "free");
		return;
	}
	JE(free)(p);
}

PKALLOC_API void *calloc(size_t nmemb, size_t size)
{
	struct domain *c = capturing();
	if (UNLIKELY(c != NULL)) {
		size_t n;
		if (!size_product(nmemb, size, &n))
			return NULL;
		return captured(c, n, MALLOCX_ZERO);
	}
	return JE(calloc)(nmemb, size);
}

/* Move an ordinary block into the capturing domain; the old one is wiped. */
static void *capture_move(struct domain *c, void *p, size_t n)
{
	void *q = captured(c, n, 0);
	if (!q)
		return NULL;
	size_t old = sallocx(p, 0);
	memcpy(q, p, old < n ? old : n);
	explicit_bzero(p, old);
	JE(free)(p);
	return q;
}

PKALLOC_API void *realloc(void *p, size_t n)
{
	if (!p)
		return malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	if (UNLIKELY(reserve_owned(p))) {
		/* Domain memory stays in its domain. */
		void *q = pk_heap_realloc(p, n, "realloc");
		if (!q)
			errno = ENOMEM;
		return q;
	}
	struct domain *c = capturing();
	if (UNLIKELY(c != NULL))
		return capture_move(c, p, n);
	/* jemalloc leaves errno alone when the size is past any size class. */
	void *q = JE(realloc)(p, n);
	if (UNLIKELY(q == NULL))
		errno = ENOMEM;
	return q;
}

PKALLOC_API void *reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t n;
	if (!size_product(nmemb, size, &n))
		return NULL;
	return realloc(p, n);
}

PKALLOC_API int posix_memalign(void **memptr, size_t alignment, size_t n)
{
	if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
		return EINVAL;
	int saved = errno;
	void *p = aligned(alignment, n);
	errno = saved;
	if (!p)
		return ENOMEM;
	*memptr = p;
	return 0;
}

PKALLOC_API void *aligned_alloc(size_t alignment, size_t n)
{
	if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(alignment, n);
}

PKALLOC_API void *memalign(size_t alignment, size_t n)
{
	if (alignment > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	/* jemalloc's smallest size class is only 8-byte aligned. */
	if (alignment <= sizeof(void *))
		return malloc(n);
	if (alignment & (alignment - 1))
		alignment = (size_t)1 << (64 - __builtin_clzl(alignment));
	return aligned(alignment, n);
}

PKALLOC_API void *valloc(size_t n)
{
	return aligned((size_t)getpagesize(), n);
}

PKALLOC_API void *pvalloc(size_t n)
{
	size_t page = (size_t)getpagesize();
	if (n > SIZE_MAX - page) {
		errno = ENOMEM;
		return NULL;
	}
	n = n ? (n + page - 1) & ~(page - 1) : page;
	return aligned(page, n);
}

PKALLOC_API size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (UNLIKELY(reserve_owned(p))) {
		/* jemalloc knows nothing of the range any more: it would crash. */
		if (pk_reserve_destroyed(p))
			pk_fatal("malloc_usable_size", p, 0, "its domain was destroyed");
		return pk_heap_usable(p);
	}
	return sallocx(p, 0);
}

/* ---- C++ ------------------------------------------------------------------ */

/* From the C++ runtime, present whenever C++ code calls these operators. */
typedef void (*new_handler_fn)(void);
extern new_handler_fn _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

static void *new_try(size_t n, size_t alignment)
{
	if (alignment)
		return aligned(alignment, n);
	return malloc(n);
}

/* Out of memory: call the new-handler until it gives up, as C++ asks;
 * then throw std::bad_alloc (or return NULL for the nothrow forms). */
static __attribute__((noinline)) void *new_failed(size_t n, size_t alignment, int nothrow)
{
	for (;;) {
		new_handler_fn h = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
		if (!h) {
			if (nothrow)
				return NULL;
			if (_ZSt17__throw_bad_allocv)
				_ZSt17__throw_bad_allocv();
			pk_fatal("operator new", NULL, 0, "out of memory, and no C++ runtime to throw std::bad_alloc");
		}
		h();
		void *p = new_try(n, alignment);
		if (p)
			return p;
	}
}

static inline void *new_op(size_t n, size_t alignment, int nothrow)
{
	void *p = new_try(n, alignment);
	return LIKELY(p != NULL) ? p : new_failed(n, alignment, nothrow);
}

static inline void delete_op(void *p, size_t n, size_t alignment)
{
	if (UNLIKELY(reserve_owned(p))) {
		pk_heap_free(p, "operator delete");
	} else if (n && p) {
		sdallocx(p, n, alignment ? lg_align(alignment) : 0);
	} else {
		JE(free)(p);
	}
}

/* The Itanium C++ ABI names of every replaceable operator new and delete
 * (size_t and std::align_val_t are passed as size_t). */
#define NEW(name, align_arg, align, nothrow_arg, nothrow)                       \
	PKALLOC_API void *name(size_t n align_arg nothrow_arg);                      \
	PKALLOC_API void *name(size_t n align_arg nothrow_arg)                       \
	{                                                                       \
		return new_op(n, align, nothrow);                               \
	}
#define DELETE(name, size_arg, size, align_arg, align, nothrow_arg)             \
	PKALLOC_API void name(void *p size_arg align_arg nothrow_arg);               \
	PKALLOC_API void name(void *p size_arg align_arg nothrow_arg)                \
	{                                                                       \
		delete_op(p, size, align);                                      \
	}
#define A , size_t al
#define T , const void *nt __attribute__((unused))
#define S , size_t sz
#define NONE

NEW(_Znwm, NONE, 0, NONE, 0)
NEW(_Znam, NONE, 0, NONE, 0)
NEW(_ZnwmRKSt9nothrow_t, NONE, 0, T, 1)
NEW(_ZnamRKSt9nothrow_t, NONE, 0, T, 1)
NEW(_ZnwmSt11align_val_t, A, al, NONE, 0)
NEW(_ZnamSt11align_val_t, A, al, NONE, 0)
NEW(_ZnwmSt11align_val_tRKSt9nothrow_t, A, al, T, 1)
NEW(_ZnamSt11align_val_tRKSt9nothrow_t, A, al, T, 1)

DELETE(_ZdlPv, NONE, 0, NONE, 0, NONE)
DELETE(_ZdaPv, NONE, 0, NONE, 0, NONE)
DELETE(_ZdlPvm, S, sz, NONE, 0, NONE)
DELETE(_ZdaPvm, S, sz, NONE, 0, NONE)
DELETE(_ZdlPvRKSt9nothrow_t, NONE, 0, NONE, 0, T)
DELETE(_ZdaPvRKSt9nothrow_t, NONE, 0, NONE, 0, T)
DELETE(_ZdlPvSt11align_val_t, NONE, 0, A, al, NONE)
DELETE(_ZdaPvSt11align_val_t, NONE, 0, A, al, NONE)
DELETE(_ZdlPvmSt11align_val_t, S, sz, A, al, NONE)
DELETE(_ZdaPvmSt11align_val_t, S, sz, A, al, NONE)
DELETE(_ZdlPvSt11align_val_tRKSt9nothrow_t, NONE, 0, A, al, T)
DELETE(_ZdaPvSt11align_val_tRKSt9nothrow_t, NONE, 0, A, al, T)
