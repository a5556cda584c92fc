/*
 * DOMAIN_SECRETMEM: the OS side.  Each such domain owns one memfd_secret(2)
 * file as large as its reservation; a data page at offset o of the
 * reservation is the file's page o, mapped shared and tagged like any
 * domain page.  The kernel removes these pages from its direct map, so
 * /proc/PID/mem, process_vm_readv and ptrace cannot read them, and never
 * swaps them.  Exports secretmem.h.
 *
 * What the kernel allows, measured on Linux 6.18 (see pkalloc(7)):
 *  - Only shared mappings.  A fork child would share the parent's pages,
 *    so every mapping is MADV_DONTFORK and the child gets a file of its
 *    own mapped in place (pk_secretmem_fork_child): it sees zeros.
 *  - The locked-memory budget (RLIMIT_MEMLOCK) is charged by the size of
 *    the mapping, not by the pages touched.  So data extents are mapped
 *    when jemalloc commits them, not when it reserves them, and unmapped
 *    when it decommits them: the budget follows the pages in use.
 *  - Single pages cannot be given back while the file lives: fallocate
 *    (PUNCH_HOLE) fails with EOPNOTSUPP and MADV_DONTNEED with EINVAL.
 *    Purged and decommitted pages are wiped instead; their RAM returns
 *    when the domain is destroyed and the file closed (the kernel zeroes
 *    secretmem pages as it frees them).
 *  - The file's size can be set only once.
 *
 * jemalloc's metadata for the arena (its base blocks) stays in private
 * anonymous memory tagged with the domain's key: it holds no byte of the
 * program's data, and jemalloc's fork child handler rewrites it, which in
 * shared pages would corrupt the parent's arena.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "protect.h"
#include "inject.h"
#include "secretmem.h"
#include "registry.h"
#include "fatal.h"
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE      ((size_t)PAGE_SIZE_MIN)
#define NPAGES    (PKALLOC_RESERVATION / PAGE)
#define META_ALIGN ((size_t)2 << 20)   /* jemalloc 5.3.0's base blocks: HUGEPAGE */

/* One per secretmem domain, in plain private memory (it says which pages
 * are mapped, nothing of what they hold); sparse: a bit per page of the
 * reservation, touched only as far as the domain grows. */
struct secretmem {
	int fd;
	int told;          /* the limit was told; again only after a success */
	_Atomic uint64_t committed[NPAGES / 64];
};

static struct secretmem *table[MAX_DOMAINS];

static struct secretmem *of(const struct domain *d)
{
	return table[pk_registry_slot(d)];
}

static void say(const struct domain *d, const char *what, int err, const char *hint)
{
	struct line l = { .n = 0 };
	pk_line_put(&l, "pkalloc: DOMAIN_SECRETMEM domain \"");
	pk_line_put(&l, d->name);
	pk_line_put(&l, "\": ");
	pk_line_put(&l, what);
	pk_line_put(&l, ": ");
	pk_line_put(&l, strerror(err));
	pk_line_put(&l, hint);
	pk_line_write(&l);
}

/* A new memfd_secret file of the reservation's size: fd, or -errno. */
static int new_file(void)
{
	int fd = pk_inject_memfd_secret(O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pk_inject_ftruncate(fd, (off_t)PKALLOC_RESERVATION) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int pk_secretmem_open(struct domain *d)
{
	bool retain = false;
	size_t sz = sizeof retain;
	/* Data extents must come from the grow path, uncommitted (extent.c). */
	if (mallctl("opt.retain", &retain, &sz, NULL, 0) != 0 || !retain) {
		say(d, "jemalloc runs without opt.retain", ENOTSUP, "");
		return ENOTSUP;
	}
	void *p;
	int err = pk_prot_map_private(sizeof(struct secretmem), &p);
	if (err)
		return err;
	struct secretmem *s = p;
	int fd = new_file();
	if (fd < 0) {
		pk_prot_release(p, sizeof(struct secretmem));
		err = -fd;
		/* ENOSYS: kernel before 5.14, or secretmem off (6.1: no
		 * secretmem.enable=1); EPERM from a seccomp filter too. */
		if (err == ENOSYS || err == EPERM || err == EINVAL) {
			say(d, "memfd_secret", err,
			    " (needs Linux 5.14+, secretmem.enable=1 before 6.5, no seccomp filter refusing it)");
			return ENOTSUP;
		}
		say(d, "memfd_secret", err, "");
		return err == EMFILE || err == ENFILE ? err : ENOMEM;
	}
	s->fd = fd;
	table[pk_registry_slot(d)] = s;
	return 0;
}

void pk_secretmem_close(struct domain *d)
{
	struct secretmem *s = of(d);
	if (!s)
		return;
	table[pk_registry_slot(d)] = NULL;
	close(s->fd);
	pk_prot_release(s, sizeof *s);
}

int pk_secretmem_meta_call(void *new_addr, size_t size, size_t alignment, int zero, int commit)
{
	/* base_map() in jemalloc 5.3.0: no address, HUGEPAGE alignment and
	 * size, zeroed and committed.  A data extent asks either uncommitted
	 * (extent_grow_retained) or, after that failed, with the caller's
	 * zero flag and alignment, which pkalloc never combines (calloc has no
	 * alignment, aligned_alloc no zeroing). */
	return new_addr == NULL && alignment == META_ALIGN && size % META_ALIGN == 0 &&
	       zero && commit;
}

static size_t page_of(const struct domain *d, const void *addr)
{
	return (size_t)((const char *)addr - d->base) / PAGE;
}

static void mark(struct secretmem *s, size_t first, size_t n, int on)
{
	for (size_t i = first; i < first + n; i++) {
		uint64_t bit = UINT64_C(1) << (i % 64);
		if (on)
			atomic_fetch_or_explicit(&s->committed[i / 64], bit, memory_order_relaxed);
		else
			atomic_fetch_and_explicit(&s->committed[i / 64], ~bit, memory_order_relaxed);
	}
}

int pk_secretmem_holds(const struct domain *d, const void *addr)
{
	struct secretmem *s = of(d);
	if (!s || (const char *)addr < d->base || (const char *)addr >= d->base + PKALLOC_RESERVATION)
		return 0;
	size_t i = page_of(d, addr);
	return (atomic_load_explicit(&s->committed[i / 64], memory_order_relaxed) >> (i % 64)) & 1;
}

/* Map fd's pages over [addr, addr+len), tagged; on failure the range is
 * left as the reservation was (PROT_NONE, nobody else's). */
static int map_pages(struct domain *d, int fd, void *addr, size_t len)
{
	void *p = pk_inject_mmap(addr, len, PROT_NONE, MAP_SHARED | MAP_FIXED, fd,
	                      (off_t)((char *)addr - d->base));
	int err = p == MAP_FAILED ? errno : 0;
	/* The child of a fork must not share them (pk_secretmem_fork_child). */
	if (!err && pk_inject_madvise(addr, len, MADV_DONTFORK) != 0)
		err = errno;
	if (!err)
		err = pk_cfg->backend->tag(d, addr, len);
	if (err)
		pk_prot_empty(addr, len);   /* a failed MAP_FIXED may have unmapped it */
	return err;
}

int pk_secretmem_commit(struct domain *d, void *addr, size_t len)
{
	struct secretmem *s = of(d);
	int err = map_pages(d, s->fd, addr, len);
	if (!err) {
		mark(s, page_of(d, addr), len / PAGE, 1);
		s->told = 0;
		return 0;
	}
	/* mmap says EAGAIN past RLIMIT_MEMLOCK; pkalloc says ENOMEM, as for
	 * any allocation without memory (and as mlock does). */
	int limit = err == EAGAIN;
	if (limit)
		err = ENOMEM;
	/* One line when the domain meets the limit, however often jemalloc
	 * and pkalloc's caches retry before giving up. */
	if (!s->told++)
		say(d, "cannot map secret pages", err,
		    limit ? " (the locked-memory limit, RLIMIT_MEMLOCK: raise it with ulimit -l or LimitMEMLOCK=)" : "");
	return err;
}

void pk_secretmem_wipe(void *addr, size_t len)
{
	/* Only the pages in RAM: touching the others would bring them in,
	 * for good (they could not be dropped again). */
	unsigned char vec[64];
	for (size_t off = 0; off < len; off += sizeof vec * PAGE) {
		size_t n = len - off < sizeof vec * PAGE ? len - off : sizeof vec * PAGE;
		if (mincore((char *)addr + off, n, vec) != 0)
			memset(vec, 1, sizeof vec);
		for (size_t i = 0; i < n / PAGE; i++)
			if (vec[i] & 1)
				explicit_bzero((char *)addr + off + i * PAGE, PAGE);
	}
}

int pk_secretmem_decommit(struct domain *d, void *addr, size_t len)
{
	struct secretmem *s = of(d);
	pk_secretmem_wipe(addr, len);
	/* Unmapped first, unmarked after: a fork in between leaves the child
	 * a marked range, which it maps afresh, never an unmarked mapping. */
	int err = pk_prot_empty(addr, len);
	if (!err)
		mark(s, page_of(d, addr), len / PAGE, 0);
	return err;
}

void pk_secretmem_fork_child(struct domain *d, void *arg)
{
	(void)arg;
	struct secretmem *s = of(d);
	if (!s)
		return;
	/* The inherited descriptor is the parent's file: with it the child
	 * could map the parent's secrets. */
	close(s->fd);
	int fd = new_file();
	if (fd < 0)
		pk_fatal("fork", d->lo, -fd, "cannot make a secretmem domain's file in the child");
	s->fd = fd;
	char *top = atomic_load(&d->top);
	size_t end = page_of(d, top);
	for (size_t i = page_of(d, d->lo); i < end;) {
		if (!((atomic_load(&s->committed[i / 64]) >> (i % 64)) & 1)) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < end && ((atomic_load(&s->committed[j / 64]) >> (j % 64)) & 1))
			j++;
		int err = map_pages(d, fd, d->base + i * PAGE, (j - i) * PAGE);
		if (err)
			pk_fatal("fork", d->base + i * PAGE, err, "cannot map a secretmem domain's pages in the child");
		i = j;
	}
}
