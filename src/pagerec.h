/*
 * Per-page records of a domain: where its allocations start, and the size
 * class of the small blocks on each page.
 *
 * Bit i of a page's record says an allocation starts at byte 8 i of the
 * page: free() and domain_free() refuse interior pointers and blocks that
 * are not allocated with it.  A block sitting in a thread's cache
 * (cache.c) keeps its bit: bits change only when blocks move between a
 * cache and the arena, so the hot paths only read them.  The class byte
 * says which cache bin a freed block goes to (every block of a slab page
 * has the same class), without asking jemalloc.
 *
 * The records live in plain memory, like jemalloc's own radix tree
 * (pkalloc(7), CAVEATS): a stray write there can make a free of the same
 * domain misbehave, never hand out memory outside the domain.  The first
 * few data pages of a domain have their records in its registry entry, so
 * a domain holding a few small secrets touches no page of the records'
 * mapping (a page of RAM saved per domain).
 */
#ifndef PKALLOC_PAGEREC_H
#define PKALLOC_PAGEREC_H

#include "internal.h"

#define REC_PAGE_SHIFT 12
/* Records of the whole reservation, one per 4 KiB page. */
#define REC_BYTES ((PKALLOC_RESERVATION >> REC_PAGE_SHIFT) * sizeof(struct page_rec))
/* jemalloc takes the domain's first 2 MiB for its metadata (extent.c):
 * the first data page follows. */
#define REC_FIRST_DATA (((size_t)2 << 20) >> REC_PAGE_SHIFT)

static inline struct page_rec *rec_of(struct domain *d, const void *p)
{
	size_t pg = (size_t)((const char *)p - d->lo) >> REC_PAGE_SHIFT;
	size_t k = pg - REC_FIRST_DATA;
	return k < REC_INLINE ? &d->first_recs[k] : &d->recs[pg];
}

static inline uint64_t rec_bit(const void *p)
{
	return UINT64_C(1) << (((uintptr_t)p >> 3) & 63);
}

static inline _Atomic uint64_t *rec_word(struct page_rec *r, const void *p)
{
	return &r->starts[((uintptr_t)p >> 9) & 7];
}

/* Set p's start bit; 1 if it was clear. */
static inline int rec_mark(struct domain *d, const void *p)
{
	uint64_t bit = rec_bit(p);
	return !(atomic_fetch_or_explicit(rec_word(rec_of(d, p), p), bit, memory_order_relaxed) & bit);
}

/* Clear p's start bit; 1 if it was set. */
static inline int rec_clear(struct domain *d, const void *p)
{
	uint64_t bit = rec_bit(p);
	return (atomic_fetch_and_explicit(rec_word(rec_of(d, p), p), ~bit, memory_order_relaxed) & bit) != 0;
}

static inline int rec_is_start(struct domain *d, const void *p)
{
	return (atomic_load_explicit(rec_word(rec_of(d, p), p), memory_order_relaxed) & rec_bit(p)) != 0;
}

/* The cache class of the blocks on p's page, or CLASS_NONE. */
static inline unsigned rec_class(struct domain *d, const void *p)
{
	return atomic_load_explicit(&rec_of(d, p)->cls, memory_order_relaxed);
}

static inline void rec_set_class(struct domain *d, const void *p, unsigned cls)
{
	atomic_store_explicit(&rec_of(d, p)->cls, (uint8_t)cls, memory_order_relaxed);
}

/* 1 if an allocation other than the one at p starts in (p, p + n): a word
 * of the records per 512 bytes. */
static inline int rec_starts_within(struct domain *d, const void *p, size_t n)
{
	size_t at = (size_t)((const char *)p - d->lo) / 8;
	size_t end = at + n / 8;                  /* granules, exclusive */
	for (size_t i = at + 1; i < end;) {
		const char *a = d->lo + i * 8;
		uint64_t w = atomic_load_explicit(rec_word(rec_of(d, a), a), memory_order_relaxed) >> (i & 63);
		size_t span = 64 - (i & 63);
		if (span > end - i) {
			w &= (UINT64_C(1) << (end - i)) - 1;
			span = end - i;
		}
		if (w)
			return 1;
		i += span;
	}
	return 0;
}

#endif
