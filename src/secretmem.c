/*
 * DOMAIN_SECRETMEM: the OS side.  Each such domain's data pages live in
 * memfd_secret(2) files, one per 2 MiB chunk of its reservation (aligned
 * to the reservation's base): a data page at offset o of chunk c is page
 * o of c's file, mapped shared and tagged like any domain page.  A chunk's
 * file is made when its first page is committed and closed when its last
 * is decommitted, so RAM comes back chunk by chunk.  The kernel removes
 * these pages from its direct map, so /proc/PID/mem, process_vm_readv and
 * ptrace cannot read them, and never swaps them.  Exports secretmem.h.
 *
 * What the kernel allows, measured on Linux 6.18 (see pkalloc(7)):
 *  - Only shared mappings.  A fork child would share the parent's pages,
 *    so every mapping is MADV_DONTFORK and the child gets files of its
 *    own mapped in place (pk_secretmem_fork_child): it sees zeros.
 *  - The locked-memory budget (RLIMIT_MEMLOCK) is charged by the size of
 *    the mapping, not by the pages touched.  So data extents are mapped
 *    when jemalloc commits them, not when it reserves them, and unmapped
 *    when it decommits them: the budget follows the pages in use.
 *  - Single pages cannot be given back while their file lives: fallocate
 *    (PUNCH_HOLE) fails with EOPNOTSUPP and MADV_DONTNEED with EINVAL.
 *    Purged and decommitted pages are wiped instead; their RAM returns
 *    when no page of their chunk is committed any more and its file is
 *    closed (the kernel zeroes secretmem pages as it frees them), at the
 *    latest when the domain is destroyed.
 *  - A file's size can be set only once: each is made at 2 MiB.
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
#define CHUNK     ((size_t)2 << 20)    /* a file's span of the reservation */
#define NCHUNKS   (PKALLOC_RESERVATION / CHUNK)
#define CHUNK_PAGES (CHUNK / PAGE)

/* One per secretmem domain, in plain private memory (it says which pages
 * are mapped, nothing of what they hold); sparse: a bit per page of the
 * reservation and a slot per chunk, touched only as far as the domain
 * grows.  fd[c] is chunk c's file plus one (0: none, as the zeroed
 * mapping starts); pages[c] counts its committed pages.  Both change under
 * d->lock. */
struct secretmem {
	int told;          /* the limit was told; again only after a success */
	int fd[NCHUNKS];
	uint32_t pages[NCHUNKS];
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

/* A new memfd_secret file of a chunk's size: fd, or -errno. */
static int new_file(void)
{
	int fd = pk_inject_memfd_secret(O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pk_inject_ftruncate(fd, (off_t)CHUNK) != 0) {
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
	/* A file made and closed at once: memfd_secret's refusal is told at
	 * domain_create, not at the first allocation. */
	int fd = new_file();
	if (fd < 0) {
		int err = -fd;
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
	close(fd);
	void *p;
	int err = pk_prot_map_private(sizeof(struct secretmem), &p);
	if (err)
		return err;
	table[pk_registry_slot(d)] = p;
	return 0;
}

void pk_secretmem_close(struct domain *d)
{
	struct secretmem *s = of(d);
	if (!s)
		return;
	table[pk_registry_slot(d)] = NULL;
	/* Files still open (pages jemalloc kept committed until the arena
	 * went) are freed, and zeroed, by the kernel as they close. */
	for (size_t c = 0; c < NCHUNKS; c++)
		if (s->fd[c])
			close(s->fd[c] - 1);
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

/* Set or clear the bits of n pages from first: how many changed. */
static size_t mark(struct secretmem *s, size_t first, size_t n, int on)
{
	size_t changed = 0;
	for (size_t i = first; i < first + n; i++) {
		uint64_t bit = UINT64_C(1) << (i % 64), old;
		if (on)
			old = atomic_fetch_or_explicit(&s->committed[i / 64], bit, memory_order_relaxed);
		else
			old = atomic_fetch_and_explicit(&s->committed[i / 64], ~bit, memory_order_relaxed);
		changed += !(old & bit) == !!on;
	}
	return changed;
}

int pk_secretmem_holds(const struct domain *d, const void *addr)
{
	struct secretmem *s = of(d);
	if (!s || (const char *)addr < d->base || (const char *)addr >= d->base + PKALLOC_RESERVATION)
		return 0;
	size_t i = page_of(d, addr);
	return (atomic_load_explicit(&s->committed[i / 64], memory_order_relaxed) >> (i % 64)) & 1;
}

/* Map the pages of fd, chunk c's file, over [addr, addr+len) (inside the
 * chunk), tagged; on failure the range is left as the reservation was
 * (PROT_NONE, nobody else's). */
static int map_pages(struct domain *d, int fd, size_t c, void *addr, size_t len)
{
	void *p = pk_inject_mmap(addr, len, PROT_NONE, MAP_SHARED | MAP_FIXED, fd,
	                         (off_t)((size_t)((char *)addr - d->base) - c * CHUNK));
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

/* The piece of [a, end) in a's chunk: its length; *c the chunk. */
static size_t piece(const struct domain *d, const char *a, const char *end, size_t *c)
{
	*c = (size_t)(a - d->base) / CHUNK;
	size_t n = (size_t)(d->base + (*c + 1) * CHUNK - a);
	return n < (size_t)(end - a) ? n : (size_t)(end - a);
}

/* Chunk c's pages [a, a+n) go: unmarked, and the file closed with its last
 * page, which frees its RAM.  The range is unmapped already. */
static void forget(struct domain *d, struct secretmem *s, size_t c, char *a, size_t n)
{
	s->pages[c] -= (uint32_t)mark(s, page_of(d, a), n / PAGE, 0);
	if (s->pages[c] == 0 && s->fd[c]) {
		/* Forgotten before it is closed: a fork in between leaves the
		 * child an open descriptor of a wiped file, never a number it
		 * would close while another thread reuses it. */
		int fd = s->fd[c] - 1;
		s->fd[c] = 0;
		close(fd);
	}
}

static void forget_range(struct domain *d, struct secretmem *s, char *a, char *end)
{
	for (size_t c, n; a < end; a += n) {
		n = piece(d, a, end, &c);
		forget(d, s, c, a, n);
	}
}

/* Chunk c's pages [a, a+n) become secret pages: its file is made first if
 * it has none (*file set if that failed). */
static int commit_piece(struct domain *d, struct secretmem *s, size_t c, char *a, size_t n,
                        int *file)
{
	if (!s->fd[c]) {
		int fd = new_file();
		if (fd < 0) {
			*file = 1;
			return -fd;
		}
		s->fd[c] = fd + 1;
	}
	int err = map_pages(d, s->fd[c] - 1, c, a, n);
	if (err) {
		if (s->pages[c] == 0) {    /* the file made for nothing */
			close(s->fd[c] - 1);
			s->fd[c] = 0;
		}
		return err;
	}
	s->pages[c] += (uint32_t)mark(s, page_of(d, a), n / PAGE, 1);
	return 0;
}

int pk_secretmem_commit(struct domain *d, void *addr, size_t len)
{
	struct secretmem *s = of(d);
	int err = 0, file = 0;
	char *a = addr, *end = a + len;
	for (size_t c, n; a < end; a += n) {
		n = piece(d, a, end, &c);
		if ((err = commit_piece(d, s, c, a, n, &file)) != 0)
			break;
	}
	if (!err) {
		s->told = 0;
		return 0;
	}
	/* All or nothing: the chunks before the failing one go again. */
	if (a > (char *)addr && pk_prot_empty(addr, (size_t)(a - (char *)addr)) == 0)
		forget_range(d, s, addr, a);
	/* mmap says EAGAIN past RLIMIT_MEMLOCK; pkalloc says ENOMEM, as for
	 * any allocation without memory (and as mlock does). */
	int limit = err == EAGAIN;
	if (limit)
		err = ENOMEM;
	/* One line when the domain meets the limit, however often jemalloc
	 * and pkalloc's caches retry before giving up. */
	if (!s->told++)
		say(d, file ? "cannot make a secret file" : "cannot map secret pages", err,
		    limit ? " (the locked-memory limit, RLIMIT_MEMLOCK: raise it with ulimit -l or LimitMEMLOCK=)" : "");
	return err;
}

void pk_secretmem_wipe(void *addr, size_t len)
{
	/* Only the pages in RAM: touching the others would bring them in
	 * (they could not be dropped again but with their whole chunk). */
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
		forget_range(d, s, addr, (char *)addr + len);
	return err;
}

static int is_marked(struct secretmem *s, size_t i)
{
	return (atomic_load_explicit(&s->committed[i / 64], memory_order_relaxed) >> (i % 64)) & 1;
}

void pk_secretmem_fork_child(struct domain *d, void *arg)
{
	(void)arg;
	struct secretmem *s = of(d);
	if (!s)
		return;
	/* Chunk by chunk: the inherited descriptor
	 * is the parent's file (with it the child could map the parent's
	 * secrets); a fresh one takes its place, mapped where the parent's
	 * pages were committed. */
	for (size_t c = 0; c < NCHUNKS; c++) {
		if (!s->fd[c])
			continue;
		close(s->fd[c] - 1);
		s->fd[c] = 0;
		/* Counted again: a fork during another thread's commit or
		 * decommit may have caught the count and the bits apart. */
		uint32_t n = 0;
		for (size_t w = c * CHUNK_PAGES / 64; w < (c + 1) * CHUNK_PAGES / 64; w++)
			n += (uint32_t)__builtin_popcountll(atomic_load(&s->committed[w]));
		s->pages[c] = n;
		if (n == 0)
			continue;
		int fd = new_file();
		if (fd < 0)
			pk_fatal("fork", d->base + c * CHUNK, -fd,
			         "cannot make a secretmem domain's file in the child");
		s->fd[c] = fd + 1;
		size_t end = (c + 1) * CHUNK_PAGES;
		for (size_t i = c * CHUNK_PAGES; i < end;) {
			if (!is_marked(s, i)) {
				i++;
				continue;
			}
			size_t j = i;
			while (j < end && is_marked(s, j))
				j++;
			int err = map_pages(d, fd, c, d->base + i * PAGE, (j - i) * PAGE);
			if (err)
				pk_fatal("fork", d->base + i * PAGE, err,
				         "cannot map a secretmem domain's pages in the child");
			i = j;
		}
	}
}
