/*
 * Stress: many threads, a fixed seed and a fixed number of operations.
 * Domains are created and destroyed, entered and left (nested, read-only
 * and read-write), allocated in from inside and outside, resized across
 * size classes and moved between domains, and freed with domain_free and
 * free; plain malloc runs beside them, and capturing domains take it over;
 * threads fork; there are more domains than protection keys, so keys move.
 * Every block's content is checked before it changes or goes, and every
 * block of every domain at each pause between phases.  Isolation is
 * checked as each backend promises it: with pku a thread never reaches a
 * domain it is not inside, whatever others do (checked while "isolated"
 * phases hold pins below the number of keys, so no key is shared); with
 * either backend nobody reaches a domain no thread is inside (checked at
 * the pauses, and in every fork child, whose only thread is the forker).
 * At each pause the library's byte counts must equal the test's own.
 *
 * PKALLOC_STRESS_OPS (operations per thread) and PKALLOC_STRESS_SEED
 * change the budget and the seed; the run prints both and its counts.
 */
#include "test.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>

/* The sanitizers' runtimes define malloc in the executable, ahead of
 * pkalloc's: there plain malloc is theirs, never captured, and must never
 * see domain memory (domain_free and domain_realloc are used instead). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZER_MALLOC 1
#endif
#endif
#ifndef SANITIZER_MALLOC
#define SANITIZER_MALLOC 0
#endif

enum {
	MAX_THREADS = 8,
	MAX_SLOTS = 24,      /* more domains than the 15 keys: keys move */
	BLOCKS = 40,         /* blocks per domain */
	PRIVATE = 12,        /* plain malloc blocks per thread */
	PHASES = 6,          /* even: isolated, odd: crowded */
	PIN_BUDGET = 14,     /* below 15 keys: nobody has to share one */
	OPS_DEFAULT = 2400,  /* per thread */
	SEED_DEFAULT = 20261127,
};

static int nthreads = MAX_THREADS, nslots = MAX_SLOTS;
static long ops_per_thread = OPS_DEFAULT;
static unsigned long long seed0 = SEED_DEFAULT;
static int pku;

/* ---- blocks and their patterns ------------------------------------------ */

enum { FROM_DOMAIN = 1, FROM_MALLOC = 2 };   /* captured by plain malloc */

struct block {
	atomic_int busy;          /* claimed by one thread */
	unsigned char *p;
	size_t n;                 /* bytes that carry the pattern */
	uint32_t id;
	int how;
};

struct slot {
	pthread_rwlock_t life;    /* read: using the domain; write: replacing it */
	domain_t *d;
	unsigned flags;
	int index;
	struct block b[BLOCKS];
};

static struct slot slots[MAX_SLOTS];
static atomic_uint next_id = 1;

static inline unsigned char pat(uint32_t id, size_t i)
{
	return (unsigned char)((id * 0x9E3779B1u >> 24) ^ (i * 0x2Bu) ^ (i >> 9) ^ id);
}

static void fill(unsigned char *p, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(id, i);
}

static atomic_ulong blocks_checked, bytes_checked;

static void verify(const struct slot *s, const unsigned char *p, size_t n, uint32_t id,
                   const char *when)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pat(id, i))
			FAIL("%s: block %u (%zu bytes at %p) of domain %d \"%s\": byte %zu is %#x, not %#x",
			     when, id, n, (void *)p, s ? s->index : -1,
			     s ? domain_name(s->d) : "-", i, p[i], pat(id, i));
	blocks_checked++;
	bytes_checked += n;
}

static int claim(struct block *b)
{
	return atomic_exchange_explicit(&b->busy, 1, memory_order_acquire) == 0;
}

static void unclaim(struct block *b)
{
	atomic_store_explicit(&b->busy, 0, memory_order_release);
}

/* ---- randomness: a fixed seed per thread -------------------------------- */

static inline uint64_t next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static inline unsigned below(uint64_t *s, unsigned n)
{
	return (unsigned)(next(s) % n);
}

/* Mostly small, some page-sized, a few large, rarely several MiB. */
static size_t pick_size(uint64_t *s)
{
	unsigned r = below(s, 1000);
	if (r < 20)
		return 0;
	if (r < 600)
		return 1 + below(s, 256);
	if (r < 900)
		return 257 + below(s, 4096);
	if (r < 985)
		return 4097 + below(s, 60000);
	if (r < 998)
		return 65537 + below(s, 450000);
	return (1u << 20) + below(s, 2u << 20);
}

/* ---- counts --------------------------------------------------------------- */

static atomic_ulong n_ops, n_enters, n_nested, n_dalloc, n_dfree, n_free_plain, n_realloc,
	n_moves, n_captured, n_plain, n_creates, n_destroys, n_forks, n_denied, n_allowed,
	n_shared_skips, n_ebusy, n_eperm, n_einval, n_pauses;

/* ---- probes ----------------------------------------------------------------- */

/* A domain nobody may reach from here: a fault, SEGV_ACCERR with page
 * permissions, SEGV_PKUERR with a key (or SEGV_ACCERR if it is parked). */
static int closed_fault(struct fault f)
{
	return f.hit && (f.code == SEGV_ACCERR || (pku && f.code == SEGV_PKUERR));
}

static void expect_closed(const void *p, int write, const char *what)
{
	struct fault f = probe((void *)p, write);
	if (!closed_fault(f))
		FAIL("%s: %s of %p %s (si_code %d)", what, write ? "write" : "read", p,
		     f.hit ? "faulted oddly" : "did not fault", f.code);
	n_denied++;
}

static unsigned long long shared_now(void)
{
	struct pkalloc_stats st;
	CHECK_OK(pkalloc_stats(&st));
	return st.shared_entries;
}

/* With pku in an isolated phase: closed to this thread, unless keys had
 * to be shared after all (then the test cannot tell). */
static void expect_closed_here(const void *p, unsigned long long shared0, const char *what)
{
	struct fault f = probe((void *)p, 0);
	if (closed_fault(f)) {
		n_denied++;
		return;
	}
	if (shared_now() == shared0)
		FAIL("%s: read of %p %s (si_code %d)", what, p,
		     f.hit ? "faulted oddly" : "did not fault", f.code);
	n_shared_skips++;
}

static void expect_open(const void *p, int write, const char *what)
{
	struct fault f = probe((void *)p, write);
	if (f.hit)
		FAIL("%s: %s of %p faulted (si_code %d, pkey %d)", what, write ? "write" : "read",
		     p, f.code, f.pkey);
	n_allowed++;
}

/* ---- phases and the pin budget ------------------------------------------- */

static pthread_barrier_t phase_start, phase_end, crowd;
static atomic_int isolated;          /* set by main between phases */
static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pin_cond = PTHREAD_COND_INITIALIZER;
static int pins_free = PIN_BUDGET;

/* In isolated phases every domain a thread pins (by entering it or by an
 * allocation call) is paid for here first, so at most PIN_BUDGET domains
 * are pinned at once and every one keeps a key of its own. */
static int pins_take(int n)
{
	if (!isolated)
		return 0;
	pthread_mutex_lock(&pin_lock);
	while (pins_free < n)
		pthread_cond_wait(&pin_cond, &pin_lock);
	pins_free -= n;
	pthread_mutex_unlock(&pin_lock);
	return n;
}

static void pins_give(int n)
{
	if (!n)
		return;
	pthread_mutex_lock(&pin_lock);
	pins_free += n;
	pthread_cond_broadcast(&pin_cond);
	pthread_mutex_unlock(&pin_lock);
}

/* ---- helpers on one slot -------------------------------------------------- */

struct worker {
	int index;
	uint64_t rng;
	int want_fork;            /* fork once in this phase */
	struct { unsigned char *p; size_t n; uint32_t id; } own[PRIVATE];
};

/* Free a block's memory the way the test says; the caller owns b. */
static void drop(struct block *b, uint64_t *rng)
{
	/* free() takes any domain pointer; under a sanitizer it is not ours. */
	if (!SANITIZER_MALLOC && (b->how == FROM_MALLOC || below(rng, 2))) {
		free(b->p);
		n_free_plain++;
	} else {
		domain_free(b->p);
		n_dfree++;
	}
	b->p = NULL;
	b->n = 0;
}

/* An empty block of s, claimed; or NULL. */
static struct block *claim_empty(struct slot *s, uint64_t *rng)
{
	unsigned at = below(rng, BLOCKS);
	for (unsigned k = 0; k < BLOCKS; k++) {
		struct block *b = &s->b[(at + k) % BLOCKS];
		if (claim(b)) {
			if (!b->p)
				return b;
			unclaim(b);
		}
	}
	return NULL;
}

static struct block *claim_full(struct slot *s, uint64_t *rng)
{
	unsigned at = below(rng, BLOCKS);
	for (unsigned k = 0; k < BLOCKS; k++) {
		struct block *b = &s->b[(at + k) % BLOCKS];
		if (claim(b)) {
			if (b->p)
				return b;
			unclaim(b);
		}
	}
	return NULL;
}

/* A domain allocation in s from the calling thread, inside or not. */
static unsigned char *domain_alloc_some(struct slot *s, size_t n, uint64_t *rng)
{
	unsigned char *p;
	switch (below(rng, 3)) {
	case 0:
		p = domain_malloc(s->d, n);
		break;
	case 1:
		p = domain_calloc(s->d, 1, n);
		if (p && domain_enter(s->d, DOMAIN_RDONLY) == 0) {
			for (size_t i = 0; i < n; i++)
				if (p[i])
					FAIL("domain_calloc(%zu): byte %zu is %#x", n, i, p[i]);
			CHECK_OK(domain_exit(s->d));
		}
		break;
	default: {
		size_t al = (size_t)1 << below(rng, 17);
		p = domain_aligned_alloc(s->d, al, n);
		if (p && ((uintptr_t)p & (al - 1)))
			FAIL("domain_aligned_alloc(%zu, %zu) gave %p", al, n, (void *)p);
	}
	}
	if (!p)
		FAIL("allocating %zu bytes in domain %d: %s", n, s->index, strerror(errno));
	if (domain_of(p) != s->d)
		FAIL("%p from domain %d: domain_of says %p", (void *)p, s->index, (void *)domain_of(p));
	if (domain_usable_size(p) < n)
		FAIL("domain_usable_size(%p) = %zu < %zu", (void *)p, domain_usable_size(p), n);
	n_dalloc++;
	return p;
}

/* ---- operations --------------------------------------------------------- */

static void read_lock(struct slot *s) { CHECK_INT(pthread_rwlock_rdlock(&s->life), ==, 0); }
static void unlock(struct slot *s) { CHECK_INT(pthread_rwlock_unlock(&s->life), ==, 0); }

/* Another slot than the ones given, read-locked if it has a domain. */
static struct slot *other_slot(struct worker *w, const struct slot *a, const struct slot *b)
{
	struct slot *c = &slots[below(&w->rng, (unsigned)nslots)];
	if (c == a || c == b || pthread_rwlock_tryrdlock(&c->life) != 0)
		return NULL;
	if (!c->d) {
		unlock(c);
		return NULL;
	}
	return c;
}

/* With pku, while inside only a and maybe b, a block of any other domain
 * must fault, whoever else is inside it (isolated phases: no key shared). */
static void probe_others(struct worker *w, struct slot *a, struct slot *b, uint64_t shared0)
{
	struct slot *c = other_slot(w, a, b);
	if (!c)
		return;
	struct block *x = claim_full(c, &w->rng);
	if (x) {
		snprintf(test_note, sizeof test_note, "thread %d inside domain %d%s, block %u of "
		         "domain %d", w->index, a->index, b ? " and another" : "", x->id, c->index);
		expect_closed_here(x->p, shared0, test_note);
		unclaim(x);
	}
	unlock(c);
}

/* Capture: inside a DOMAIN_CAPTURE_MALLOC domain read-write, plain malloc
 * and what the C library allocates with it land in that domain. */
static void capture_some(struct worker *w, struct slot *s)
{
	if (SANITIZER_MALLOC)
		return;
	char text[48];
	snprintf(text, sizeof text, "captured by thread %d", w->index);
	char *t = strdup(text);
	CHECK(t);
	if (domain_of(t) != s->d)
		FAIL("strdup inside capturing domain %d gave %p, of domain %p", s->index,
		     (void *)t, (void *)domain_of(t));
	CHECK(strcmp(t, text) == 0);
	free(t);
	void *m = NULL;
	CHECK_INT(posix_memalign(&m, 256, 100), ==, 0);
	CHECK(domain_of(m) == s->d && ((uintptr_t)m & 255) == 0);
	free(m);
	n_captured += 2;

	/* An ordinary block moved in by realloc, or a new one by malloc; it
	 * stays in the domain and is freed later with free(). */
	struct block *b = claim_empty(s, &w->rng);
	if (!b)
		return;
	int k = (int)below(&w->rng, PRIVATE);
	unsigned char *p;
	size_t n = pick_size(&w->rng);
	if (w->own[k].p) {
		size_t keep = w->own[k].n < n ? w->own[k].n : n;
		p = realloc(w->own[k].p, n);
		CHECK(p || n == 0);
		if (n == 0) {              /* realloc(p, 0) frees p */
			w->own[k].p = NULL;
			unclaim(b);
			return;
		}
		verify(NULL, p, keep, w->own[k].id, "realloc into a capturing domain");
		w->own[k].p = NULL;
	} else {
		p = below(&w->rng, 2) ? malloc(n) : calloc(1, n);
		CHECK(p);
	}
	if (domain_of(p) != s->d)
		FAIL("plain allocation inside capturing domain %d is not in it", s->index);
	b->p = p;
	b->n = n;
	b->id = atomic_fetch_add(&next_id, 1);
	b->how = FROM_MALLOC;
	fill(p, n, b->id);
	n_captured++;
	unclaim(b);
}

/* Work on up to four blocks of s from inside it. */
static void work_blocks(struct worker *w, struct slot *s, int rw)
{
	for (int k = (int)below(&w->rng, 4) + 1; k-- > 0;) {
		struct block *b = &s->b[below(&w->rng, BLOCKS)];
		if (!claim(b))
			continue;
		if (b->p)
			verify(s, b->p, b->n, b->id, "inside");
		if (!rw) {
			unclaim(b);
			continue;
		}
		if (!b->p) {
			b->n = pick_size(&w->rng);
			b->p = domain_alloc_some(s, b->n, &w->rng);
			b->id = atomic_fetch_add(&next_id, 1);
			b->how = FROM_DOMAIN;
			fill(b->p, b->n, b->id);
		} else if (below(&w->rng, 3) == 0) {
			drop(b, &w->rng);
		} else {
			/* Resize, possibly across size classes, in place or moved. */
			size_t n = pick_size(&w->rng), keep = b->n < n ? b->n : n;
			unsigned char *q = !SANITIZER_MALLOC && below(&w->rng, 2) && n ?
			                   realloc(b->p, n) : domain_realloc(s->d, b->p, n);
			if (!q)
				FAIL("resizing block %u to %zu: %s", b->id, n, strerror(errno));
			CHECK(domain_of(q) == s->d);
			verify(s, q, keep, b->id, "after realloc");
			b->p = q;
			b->n = n;
			b->id = atomic_fetch_add(&next_id, 1);
			fill(q, n, b->id);
			n_realloc++;
		}
		unclaim(b);
	}
}

/* Move a block of a into c with domain_realloc (from inside a or not). */
static void move_block(struct worker *w, struct slot *a, struct slot *c)
{
	struct block *from = claim_full(a, &w->rng);
	if (!from)
		return;
	struct block *to = claim_empty(c, &w->rng);
	if (!to) {
		unclaim(from);
		return;
	}
	size_t n = pick_size(&w->rng), keep = from->n < n ? from->n : n;
	unsigned char *q = domain_realloc(c->d, from->p, n);
	if (!q)
		FAIL("moving block %u to domain %d: %s", from->id, c->index, strerror(errno));
	CHECK(domain_of(q) == c->d);
	to->p = q;
	to->n = keep;
	to->id = from->id;
	to->how = FROM_DOMAIN;
	from->p = NULL;
	from->n = 0;
	unclaim(from);
	CHECK_OK(domain_enter(c->d, DOMAIN_RDONLY));
	verify(c, q, keep, to->id, "moved");
	CHECK_OK(domain_exit(c->d));
	n_moves++;
	unclaim(to);
}


#define CHILD_CHECK(c, ...) do { \
	if (!(c)) { \
		char m_[256]; \
		int n_ = snprintf(m_, sizeof m_, "fork child: " __VA_ARGS__); \
		if (write(2, m_, (size_t)n_) < 0 || write(2, "\n", 1) < 0) \
			_exit(98); \
		_exit(1); \
	} } while (0)

/* The forker's child: only this thread lives on, inside a alone, with a
 * claimed block b of a and perhaps one of another domain, far. */
static void child(struct slot *a, const struct block *b, const struct block *far)
{
	alarm(120);
	if (a->flags & DOMAIN_WIPEONFORK) {
		for (size_t i = 0; i < b->n; i++)
			CHILD_CHECK(b->p[i] == 0, "wipe-on-fork block %u: byte %zu is %#x", b->id, i,
			            b->p[i]);
	} else {
		for (size_t i = 0; i < b->n; i++)
			CHILD_CHECK(b->p[i] == pat(b->id, i), "block %u: byte %zu differs", b->id, i);
	}
	if (far) {
		/* Whoever was inside it in the parent, nobody is here. */
		CHILD_CHECK(closed_fault(probe(far->p, 0)), "block %u of a domain the "
		            "forker was not inside is reachable", far->id);
	}
	CHILD_CHECK(domain_exit(a->d) == 0, "domain_exit: %s", strerror(errno));
	CHILD_CHECK(closed_fault(probe(b->p, 0)), "reachable after the exit");
	CHILD_CHECK(domain_exit(a->d) == -1 && errno == EPERM, "second exit");
	void *p = domain_malloc(a->d, 100);
	CHILD_CHECK(p && domain_of(p) == a->d, "domain_malloc: %s", strerror(errno));
	domain_free(p);
	domain_t *n = domain_create("child", 0);
	CHILD_CHECK(n, "domain_create: %s", strerror(errno));
	p = domain_malloc(n, 10);
	CHILD_CHECK(p, "domain_malloc in a new domain");
	domain_free(p);
	CHILD_CHECK(domain_destroy(n) == 0, "domain_destroy: %s", strerror(errno));
	p = malloc(1000);
	CHILD_CHECK(p, "malloc");
	free(p);
	_exit(0);
}

/* Fork while inside s alone, with a claimed block of s and perhaps one of
 * another domain; other threads go on meanwhile. */
static int fork_inside(struct worker *w, struct slot *s)
{
	struct block *b = claim_full(s, &w->rng);
	if (!b)
		return 0;
	struct slot *c = other_slot(w, s, NULL);
	struct block *far = c ? claim_full(c, &w->rng) : NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0)
		child(s, b, far);
	int st;
	CHECK_INT(waitpid(pid, &st, 0), ==, pid);
	CHECK_EXITED_OK(st);
	n_forks++;
	verify(s, b->p, b->n, b->id, "after fork");
	if (far)
		unclaim(far);
	if (c)
		unlock(c);
	unclaim(b);
	return 1;
}

/* Enter a domain and work there: nested enters, capture, isolation. */
static void op_inside(struct worker *w)
{
	int paid = pins_take(2);
	uint64_t shared0 = isolated && pku ? shared_now() : 0;
	struct slot *a = &slots[below(&w->rng, (unsigned)nslots)];
	read_lock(a);
	if (!a->d)
		goto out;
	int rw = below(&w->rng, 3) != 0;
	CHECK_OK(domain_enter(a->d, rw ? DOMAIN_RDWR : DOMAIN_RDONLY));
	n_enters++;
	struct block *one = claim_full(a, &w->rng);
	if (one) {
		expect_open(one->p, 0, "inside");
		if (!rw && pku) {
			/* Read-only for this thread, whatever the others do. */
			expect_closed(one->p, 1, "write inside a read-only enter");
		}
		unclaim(one);
	}
	/* Cannot destroy what a thread is inside. */
	if (below(&w->rng, 8) == 0) {
		CHECK_ERR(domain_destroy(a->d), == -1, EBUSY);
		n_ebusy++;
	}
	work_blocks(w, a, rw);
	if (rw && (a->flags & DOMAIN_CAPTURE_MALLOC))
		capture_some(w, a);
	else if (!SANITIZER_MALLOC) {
		void *m = malloc(32);
		CHECK(m && domain_of(m) == NULL);
		free(m);
	}

	struct slot *b = NULL;
	switch (below(&w->rng, 5)) {
	case 0:   /* nested: a again, read-only; rw stays */
		CHECK_OK(domain_enter(a->d, DOMAIN_RDONLY));
		n_nested++;
		if (rw && (one = claim_full(a, &w->rng)) != NULL) {
			expect_open(one->p, 1, "write under a nested read-only enter");
			unclaim(one);
		}
		CHECK_OK(domain_exit(a->d));
		break;
	case 1:   /* nested: a second domain */
		if ((b = other_slot(w, a, NULL)) == NULL)
			break;
		int brw = (int)below(&w->rng, 2);
		CHECK_OK(domain_enter(b->d, brw ? DOMAIN_RDWR : DOMAIN_RDONLY));
		n_nested++;
		work_blocks(w, b, brw);
		/* Crowded phases go one deeper, so that at times more domains are
		 * pinned than there are keys and some must share one. */
		struct slot *c = isolated ? NULL : other_slot(w, a, b);
		if (c) {
			CHECK_OK(domain_enter(c->d, DOMAIN_RDONLY));
			n_nested++;
			work_blocks(w, c, 0);
			CHECK_OK(domain_exit(c->d));
			unlock(c);
		}
		/* Of several capturing enters, the last one takes malloc. */
		if (!SANITIZER_MALLOC && rw && brw) {
			void *m = malloc(24);
			domain_t *want = (b->flags & DOMAIN_CAPTURE_MALLOC) ? b->d :
			                 (a->flags & DOMAIN_CAPTURE_MALLOC) ? a->d : NULL;
			CHECK(m && domain_of(m) == want);
			free(m);
		}
		if (isolated && pku)
			probe_others(w, a, b, shared0);
		CHECK_OK(domain_exit(b->d));
		break;
	case 2:   /* move a block elsewhere from inside */
		if ((b = other_slot(w, a, NULL)) != NULL)
			move_block(w, a, b);
		break;
	default:
		/* Forks meet other threads at work in crowded phases only: while
		 * a fork runs, pku lets some threads reach some parked domains
		 * (pkalloc(7)), which isolated phases would call a leak. */
		if (!isolated && w->want_fork && fork_inside(w, a))
			w->want_fork = 0;
		break;
	}
	if (isolated && pku)
		probe_others(w, a, b, shared0);
	if (b)
		unlock(b);
	one = claim_full(a, &w->rng);
	CHECK_OK(domain_exit(a->d));
	CHECK_ERR(domain_exit(a->d), == -1, EPERM);
	n_eperm++;
	if (one) {
		/* Outside again: with pku closed to this thread at once. */
		if (isolated && pku)
			expect_closed_here(one->p, shared0, "after the exit");
		unclaim(one);
	}
out:
	unlock(a);
	pins_give(paid);
}

/* Allocate, check, resize, move and free from outside the domain. */
static void op_outside(struct worker *w)
{
	int paid = pins_take(2);
	uint64_t shared0 = isolated && pku ? shared_now() : 0;
	struct slot *a = &slots[below(&w->rng, (unsigned)nslots)];
	read_lock(a);
	if (!a->d)
		goto out;
	struct block *b = &a->b[below(&w->rng, BLOCKS)];
	if (!claim(b))
		goto out;
	if (!b->p) {
		b->n = pick_size(&w->rng);
		b->p = domain_alloc_some(a, b->n, &w->rng);
		b->id = atomic_fetch_add(&next_id, 1);
		b->how = FROM_DOMAIN;
		if (isolated && pku)
			expect_closed_here(b->p, shared0, "allocated from outside");
		CHECK_OK(domain_enter(a->d, DOMAIN_RDWR));
		fill(b->p, b->n, b->id);
		CHECK_OK(domain_exit(a->d));
		unclaim(b);
		goto out;
	}
	CHECK_OK(domain_enter(a->d, DOMAIN_RDONLY));
	verify(a, b->p, b->n, b->id, "before a change from outside");
	CHECK_OK(domain_exit(a->d));
	CHECK(domain_of(b->p) == a->d);
	CHECK(domain_usable_size(b->p) >= b->n);
	switch (below(&w->rng, 3)) {
	case 0:
		drop(b, &w->rng);
		break;
	case 1: {
		size_t n = pick_size(&w->rng), keep = b->n < n ? b->n : n;
		unsigned char *q = !SANITIZER_MALLOC && n && below(&w->rng, 2) ?
		                   realloc(b->p, n) : domain_realloc(a->d, b->p, n);
		if (!q)
			FAIL("resizing block %u to %zu from outside: %s", b->id, n, strerror(errno));
		CHECK(domain_of(q) == a->d);
		CHECK_OK(domain_enter(a->d, DOMAIN_RDWR));
		verify(a, q, keep, b->id, "after realloc from outside");
		b->p = q;
		b->n = n;
		b->id = atomic_fetch_add(&next_id, 1);
		fill(q, n, b->id);
		CHECK_OK(domain_exit(a->d));
		n_realloc++;
		break;
	}
	default: {
		unclaim(b);
		struct slot *c = other_slot(w, a, NULL);
		if (c) {
			move_block(w, a, c);
			unlock(c);
		}
		goto out;
	}
	}
	unclaim(b);
out:
	unlock(a);
	pins_give(paid);
}

/* Plain malloc, with the malloc family across sizes; sometimes inside a
 * domain that does not capture, where it stays plain. */
static void op_plain(struct worker *w)
{
	int k = (int)below(&w->rng, PRIVATE);
	if (w->own[k].p) {
		verify(NULL, w->own[k].p, w->own[k].n, w->own[k].id, "plain block");
		if (below(&w->rng, 2)) {
			free(w->own[k].p);
			w->own[k].p = NULL;
		} else {
			size_t n = pick_size(&w->rng) + 1, keep = w->own[k].n < n ? w->own[k].n : n;
			unsigned char *q = realloc(w->own[k].p, n);
			CHECK(q && domain_of(q) == NULL);
			verify(NULL, q, keep, w->own[k].id, "plain realloc");
			w->own[k].p = q;
			w->own[k].n = n;
			w->own[k].id = atomic_fetch_add(&next_id, 1);
			fill(q, n, w->own[k].id);
		}
		n_plain++;
		return;
	}
	size_t n = pick_size(&w->rng);
	unsigned char *p = NULL;
	switch (below(&w->rng, 4)) {
	case 0: p = malloc(n); break;
	case 1: p = calloc(n, 1); break;
	case 2: CHECK_INT(posix_memalign((void **)&p, 64, n), ==, 0); break;
	default:
		n = (n + 4095) & ~(size_t)4095;    /* C11 wants a multiple of the alignment */
		p = aligned_alloc(4096, n);
		break;
	}
	CHECK(p || n == 0);
	if (!p)
		return;
	CHECK(domain_of(p) == NULL);
	CHECK(malloc_usable_size(p) >= n);
	w->own[k].p = p;
	w->own[k].n = n;
	w->own[k].id = atomic_fetch_add(&next_id, 1);
	fill(p, n, w->own[k].id);
	n_plain++;
}

/* Destroy a domain (emptied first, or with its blocks still live) and
 * create another in its place, with other flags. */
static void lifecycle(struct worker *w, struct slot *s)
{
	int paid = pins_take(1);
	CHECK_INT(pthread_rwlock_wrlock(&s->life), ==, 0);
	domain_t *old = s->d;
	if (old) {
		size_t sum = 0;
		CHECK_OK(domain_enter(old, DOMAIN_RDONLY));
		for (int i = 0; i < BLOCKS; i++)
			if (s->b[i].p) {
				verify(s, s->b[i].p, s->b[i].n, s->b[i].id, "before destroy");
				sum += domain_usable_size(s->b[i].p);
			}
		CHECK_OK(domain_exit(old));
		struct domain_stats st;
		CHECK_OK(domain_stats(old, &st));
		if (st.allocated != sum)
			FAIL("domain %d: %zu bytes allocated, its blocks hold %zu", s->index,
			     st.allocated, sum);
		int keep_blocks = (int)below(&w->rng, 2);
		for (int i = 0; i < BLOCKS; i++)
			if (s->b[i].p) {
				if (!keep_blocks)
					drop(&s->b[i], &w->rng);
				s->b[i].p = NULL;
				s->b[i].n = 0;
			}
		if (!keep_blocks) {
			CHECK_OK(domain_stats(old, &st));
			CHECK_INT(st.allocated, ==, 0);
		}
		CHECK_OK(domain_destroy(old));
		n_destroys++;
		/* The stale handle is refused everywhere. */
		CHECK_ERR(domain_enter(old, DOMAIN_RDONLY), == -1, EINVAL);
		CHECK_ERR(domain_malloc(old, 8), == NULL, EINVAL);
		CHECK_ERR(domain_destroy(old), == -1, EINVAL);
		n_einval += 3;
	}
	static const unsigned flag_sets[] = {
		0, DOMAIN_CAPTURE_MALLOC, DOMAIN_WIPEONFORK, DOMAIN_CAPTURE_MALLOC | DOMAIN_WIPEONFORK,
	};
	char name[32];
	snprintf(name, sizeof name, "stress-%d.%u", s->index, atomic_fetch_add(&next_id, 1));
	s->flags = flag_sets[below(&w->rng, 4)];
	if (SANITIZER_MALLOC && (s->flags & DOMAIN_CAPTURE_MALLOC)) {
		/* Their malloc is not pkalloc's: capture is refused. */
		CHECK_ERR(domain_create(name, s->flags), == NULL, ENOTSUP);
		s->flags &= ~(unsigned)DOMAIN_CAPTURE_MALLOC;
	}
	s->d = domain_create(name, s->flags);
	if (!s->d)
		FAIL("domain_create(%s): %s", name, strerror(errno));
	CHECK(strcmp(domain_name(s->d), name) == 0);
	n_creates++;
	CHECK_INT(pthread_rwlock_unlock(&s->life), ==, 0);
	pins_give(paid);
}

static void op_lifecycle(struct worker *w)
{
	lifecycle(w, &slots[below(&w->rng, (unsigned)nslots)]);
}

/* Crowded phases start with every worker inside two domains of its own
 * at once: more domains pinned than there are keys, so with pku some
 * share a key while their blocks are read. */
static void crowd_in(struct worker *w)
{
	struct slot *s[2] = { &slots[(2 * w->index) % nslots], &slots[(2 * w->index + 1) % nslots] };
	for (int k = 0; k < 2; k++) {
		read_lock(s[k]);
		CHECK_OK(domain_enter(s[k]->d, DOMAIN_RDONLY));
		n_enters++;
	}
	pthread_barrier_wait(&crowd);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < BLOCKS; i++) {
			struct block *b = &s[k]->b[i];
			if (claim(b)) {
				if (b->p)
					verify(s[k], b->p, b->n, b->id, "in the crowd");
				unclaim(b);
			}
		}
	pthread_barrier_wait(&crowd);
	for (int k = 2; k-- > 0;) {
		CHECK_OK(domain_exit(s[k]->d));
		unlock(s[k]);
	}
}

/* One phase of one worker: a thread of its own, which exits right after
 * the phase, while the main thread checks the pause, so that every pause
 * sees threads exit (and let their caches go) under it. */
static int last_phase;

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	long per_phase = ops_per_thread / PHASES;
	pthread_barrier_wait(&phase_start);
	w->want_fork = !isolated;
	if (!isolated)
		crowd_in(w);
	for (long i = 0; i < per_phase; i++) {
		unsigned r = below(&w->rng, 100);
		if (r < 45)
			op_inside(w);
		else if (r < 75)
			op_outside(w);
		else if (r < 97)
			op_plain(w);
		else
			op_lifecycle(w);
		n_ops++;
	}
	pthread_barrier_wait(&phase_end);
	if (last_phase)
		for (int k = 0; k < PRIVATE; k++)
			if (w->own[k].p) {
				verify(NULL, w->own[k].p, w->own[k].n, w->own[k].id, "plain block at the end");
				free(w->own[k].p);
			}
	return NULL;
}

/* ---- pauses: nobody is inside anything ------------------------------------ */

/* A fork with every other thread at a barrier. */
static void pause_child(void)
{
	alarm(120);
	for (int i = 0; i < nslots; i++) {
		struct slot *s = &slots[i];
		for (int k = 0; k < BLOCKS; k++)
			if (s->b[k].p) {
				CHILD_CHECK(closed_fault(probe(s->b[k].p, 0)),
				            "block %u of domain %d reachable", s->b[k].id, i);
				break;
			}
		CHILD_CHECK(domain_enter(s->d, DOMAIN_RDONLY) == 0, "enter: %s", strerror(errno));
		for (int k = 0; k < BLOCKS; k++) {
			const struct block *b = &s->b[k];
			for (size_t j = 0; b->p && j < b->n; j++)
				CHILD_CHECK(b->p[j] == ((s->flags & DOMAIN_WIPEONFORK) ? 0 : pat(b->id, j)),
				            "block %u of domain %d: byte %zu is %#x", b->id, i, j, b->p[j]);
		}
		CHILD_CHECK(domain_exit(s->d) == 0, "exit: %s", strerror(errno));
	}
	_exit(0);
}

static void pause_check(int phase)
{
	size_t total = 0;
	for (int i = 0; i < nslots; i++) {
		struct slot *s = &slots[i];
		size_t sum = 0;
		const unsigned char *first = NULL;
		for (int k = 0; k < BLOCKS; k++) {
			struct block *b = &s->b[k];
			CHECK_INT(atomic_load(&b->busy), ==, 0);
			if (!b->p)
				continue;
			if (domain_of(b->p) != s->d)
				FAIL("pause %d: block %u is not in domain %d", phase, b->id, i);
			sum += domain_usable_size(b->p);
			/* Nobody is inside: closed, on either backend. */
			expect_closed(b->p, 0, "at a pause");
			if (!first)
				first = b->p;
		}
		struct domain_stats st;
		CHECK_OK(domain_stats(s->d, &st));
		if (st.allocated != sum)
			FAIL("pause %d: domain %d has %zu bytes allocated, its blocks %zu: lost or leaked",
			     phase, i, st.allocated, sum);
		total += sum;
		CHECK_OK(domain_enter(s->d, DOMAIN_RDONLY));
		for (int k = 0; k < BLOCKS; k++)
			if (s->b[k].p)
				verify(s, s->b[k].p, s->b[k].n, s->b[k].id, "at a pause");
		if (first)
			expect_closed(first, 1, "write under the only, read-only, enter");
		CHECK_OK(domain_exit(s->d));
		if (first)
			expect_closed(first, 0, "after the exit, at a pause");
	}
	struct pkalloc_stats ps;
	CHECK_OK(pkalloc_stats(&ps));
	CHECK_INT(ps.domains, ==, nslots);
	CHECK_INT(ps.allocated, ==, total);

	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0)
		pause_child();
	int st;
	CHECK_INT(waitpid(pid, &st, 0), ==, pid);
	CHECK_EXITED_OK(st);
	n_forks++;
	n_pauses++;
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 0) : dflt;
}

int main(void)
{
	pku = on_pku();
	ops_per_thread = env_long("PKALLOC_STRESS_OPS", OPS_DEFAULT);
	seed0 = (unsigned long long)env_long("PKALLOC_STRESS_SEED", SEED_DEFAULT);
	if (under_valgrind()) {
		/* memcheck runs one thread at a time, some 50 times slower, and
		 * has room for about 25 domain reservations. */
		nthreads = 4;
		nslots = 10;
		ops_per_thread = env_long("PKALLOC_STRESS_OPS", OPS_DEFAULT / 16);
	}
	CHECK(ops_per_thread >= PHASES);
	(void)probe(&nthreads, 0);        /* install the probe handler before any thread */

	for (int i = 0; i < nslots; i++) {
		slots[i].index = i;
		CHECK_INT(pthread_rwlock_init(&slots[i].life, NULL), ==, 0);
	}
	struct worker *w = calloc((size_t)nthreads, sizeof *w);
	CHECK(w);
	uint64_t seed = seed0 ? seed0 : 1;
	for (int i = 0; i < nslots; i++)
		lifecycle(&(struct worker){ .rng = seed + (uint64_t)i * 0x9E3779B97F4A7C15ull },
		          &slots[i]);
	pthread_barrier_init(&phase_start, NULL, (unsigned)nthreads + 1);
	pthread_barrier_init(&phase_end, NULL, (unsigned)nthreads + 1);
	pthread_barrier_init(&crowd, NULL, (unsigned)nthreads);
	pthread_t th[MAX_THREADS];
	for (int i = 0; i < nthreads; i++) {
		w[i].index = i;
		w[i].rng = (seed ^ 0xD1B54A32D192ED03ull) * (uint64_t)(2 * i + 1);
	}
	unsigned long long shared_isolated = 0, shared_crowded = 0;
	for (int ph = 0; ph < PHASES; ph++) {
		isolated = ph % 2 == 0;
		last_phase = ph == PHASES - 1;
		for (int i = 0; i < nthreads; i++)
			CHECK_INT(pthread_create(&th[i], NULL, worker_main, &w[i]), ==, 0);
		unsigned long long sh = shared_now();
		pthread_barrier_wait(&phase_start);
		pthread_barrier_wait(&phase_end);
		if (isolated)
			shared_isolated += shared_now() - sh;
		else
			shared_crowded += shared_now() - sh;
		/* Not joined yet: the workers are exiting meanwhile. */
		pause_check(ph);
		for (int i = 0; i < nthreads; i++)
			CHECK_INT(pthread_join(th[i], NULL), ==, 0);
	}

	/* The end: every block read back once more, then everything goes. */
	unsigned long blocks_end = 0;
	uint64_t rng = seed;
	for (int i = 0; i < nslots; i++) {
		struct slot *s = &slots[i];
		CHECK_OK(domain_enter(s->d, DOMAIN_RDONLY));
		for (int k = 0; k < BLOCKS; k++)
			if (s->b[k].p) {
				verify(s, s->b[k].p, s->b[k].n, s->b[k].id, "at the end");
				blocks_end++;
			}
		CHECK_OK(domain_exit(s->d));
		for (int k = 0; k < BLOCKS; k++)
			if (s->b[k].p)
				drop(&s->b[k], &rng);
		struct domain_stats st;
		CHECK_OK(domain_stats(s->d, &st));
		CHECK_INT(st.allocated, ==, 0);
		CHECK_OK(domain_destroy(s->d));
		n_destroys++;
	}
	struct pkalloc_stats ps;
	CHECK_OK(pkalloc_stats(&ps));
	CHECK_INT(ps.domains, ==, 0);
	CHECK_INT(ps.allocated, ==, 0);

	unsigned long ops = n_ops;
	fprintf(stderr,
	        "stress: backend %s, seed %llu, %d threads x %ld operations = %lu over %d domains "
	        "(%d phases)\n"
	        "stress: %lu enters (%lu nested), %lu domain allocations, %lu domain_free, "
	        "%lu free of domain memory, %lu resizes, %lu moves between domains, "
	        "%lu captured by malloc, %lu plain malloc operations\n"
	        "stress: %lu domains created, %lu destroyed, %lu forks, %lu pauses; "
	        "%lu denied and %lu allowed accesses probed, %lu probes skipped for a shared key; "
	        "%lu EBUSY, %lu EPERM, %lu EINVAL as expected\n"
	        "stress: %lu blocks (%lu bytes) read back and all intact, %lu live at the end; "
	        "keys: %u owned, %llu evictions, %llu retags, %llu shared entries (%llu in crowded, "
	        "%llu in isolated phases); nothing lost: byte counts matched at every pause\n",
	        pkalloc_backend(), seed0, nthreads, ops_per_thread, ops, nslots, PHASES,
	        (unsigned long)n_enters, (unsigned long)n_nested, (unsigned long)n_dalloc,
	        (unsigned long)n_dfree, (unsigned long)n_free_plain, (unsigned long)n_realloc,
	        (unsigned long)n_moves, (unsigned long)n_captured, (unsigned long)n_plain,
	        (unsigned long)n_creates, (unsigned long)n_destroys, (unsigned long)n_forks,
	        (unsigned long)n_pauses, (unsigned long)n_denied, (unsigned long)n_allowed,
	        (unsigned long)n_shared_skips, (unsigned long)n_ebusy, (unsigned long)n_eperm,
	        (unsigned long)n_einval, (unsigned long)blocks_checked,
	        (unsigned long)bytes_checked, blocks_end, ps.keys_owned, ps.evictions, ps.retags,
	        ps.shared_entries, shared_crowded, shared_isolated);

	/* The run did what it says. */
	CHECK_INT(ops, ==, (unsigned long)nthreads * (unsigned long)(ops_per_thread / PHASES * PHASES));
	CHECK_INT(n_pauses, ==, PHASES);
	CHECK_INT(n_enters, >, ops / 4);
	CHECK_INT(n_dalloc, >, 0);
	CHECK_INT(n_realloc, >, 0);
	CHECK_INT(n_moves, >, 0);
	CHECK_INT(n_creates, >, 0);
	CHECK_INT(n_destroys, ==, n_creates);
	CHECK_INT(n_destroys, >, 2 * nslots);
	CHECK_INT(n_forks, >, PHASES);
	CHECK_INT(n_denied, >, 0);
	if (!SANITIZER_MALLOC)
		CHECK_INT(n_captured, >, 0);
	if (pku) {
		CHECK_INT(ps.evictions, >, 0);      /* more domains than keys */
		CHECK_INT(shared_isolated, ==, 0);  /* the pin budget kept keys unshared */
		if (2 * nthreads > 15)
			CHECK_INT(shared_crowded, >, 0);  /* the crowd had to share */
	}
	return 0;
}
