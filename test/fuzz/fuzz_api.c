/*
 * A fuzz target for the public API: a byte string is a program of
 * operations on up to four domains and 32 allocations (create, destroy,
 * enter, exit, allocate, resize, move, free, plain malloc in capturing
 * domains, misuse; another thread that frees, allocates and exits; many
 * more domains used in turn, evicting caches), run against a model of
 * what the contract promises.
 * After every operation: each domain's byte count equals the model's, and
 * every allocation's domain and usable size are right; on request, every
 * allocation's content (a pattern derived from its id) reads back, and a
 * probe of its memory faults exactly when the model says this thread has
 * no access (single-threaded, so this holds on either backend).  Any
 * broken promise aborts with a message; the input that did it is kept.
 *
 * Built with libFuzzer (make check-fuzz), or with replay.c into a test
 * that runs the corpus and generated inputs (make check, the VM).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pkalloc.h"
#include "pkru.h"

/* The sanitizers' malloc is in the program, ahead of pkalloc's: there
 * plain malloc is never captured and must not see domain memory. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define OWN_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define OWN_MALLOC 0
#endif
#endif
#ifndef OWN_MALLOC
#define OWN_MALLOC 1
#endif

enum { ND = 4, NA = 32, MAX_OPS = 400, MAX_SIZE = 1 << 20 };

unsigned long fuzz_ops, fuzz_probes, fuzz_checked;   /* replay.c prints them */

#define BROKEN(...) do { \
	fprintf(stderr, "fuzz_api: broken promise at op %lu: ", fuzz_ops); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)
#define EXPECT(c, ...) do { if (!(c)) BROKEN(__VA_ARGS__); } while (0)
#define EXPECT_ERR(r, bad, e, what) do { \
	errno = 0; \
	EXPECT((r) bad && errno == (e), "%s: errno %d (%s), expected %d", what, errno, \
	       strerror(errno), e); } while (0)

/* ---- the model ------------------------------------------------------------ */

struct dom {
	domain_t *h;                /* NULL: no domain in this slot */
	unsigned flags;
	int nest;                   /* open enters of this thread */
	int rw[PKALLOC_MAX_NEST];   /* their access, outermost first */
};

struct alloc {
	unsigned char *p;           /* NULL: free slot */
	int dom;
	size_t n;                   /* bytes holding the pattern */
	size_t usable;              /* domain_usable_size when made */
	uint32_t id;
};

static struct dom doms[ND];
static struct alloc allocs[NA];
static uint32_t next_id;
/* Read-write enters of capturing domains still open, in order. */
static int capture_seq[ND * PKALLOC_MAX_NEST];
static int ncapture;

static int access_of(int i)
{
	int a = 0;
	for (int k = 0; k < doms[i].nest; k++)
		a = doms[i].rw[k] ? DOMAIN_RDWR : (a ? a : DOMAIN_RDONLY);
	return a;
}

/* Runs of equal neighbours in the capture sequence (enter.c keeps runs). */
static int capture_runs(void)
{
	int runs = 0;
	for (int k = 0; k < ncapture; k++)
		runs += k == 0 || capture_seq[k] != capture_seq[k - 1];
	return runs;
}

static unsigned char pat(uint32_t id, size_t i)
{
	return (unsigned char)((id * 0x9E3779B1u >> 24) ^ (i * 0x2Bu) ^ (i >> 9) ^ id);
}

/* ---- probes ---------------------------------------------------------------- */

static sigjmp_buf probe_jmp;
static volatile sig_atomic_t probing;
static volatile int probe_hit, probe_code;
static volatile char probe_sink;
static struct sigaction previous;
static int handler_in, on_pku;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!probing) {
		/* A real crash: the previous handler (libFuzzer's, a
		 * sanitizer's, or the default) takes the repeated fault. */
		sigaction(sig, &previous, NULL);
		return;
	}
	probe_hit = 1;
	probe_code = si->si_code;
	siglongjmp(probe_jmp, 1);
}

/* 1 if touching p faults; PKRU is put back by hand after a jump. */
static int faults(unsigned char *p, int write)
{
	if (!handler_in) {
		struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, &previous);
		on_pku = strcmp(pkalloc_backend(), "pku") == 0;
		handler_in = 1;
	}
	volatile uint32_t pkru = on_pku ? rdpkru() : 0;
	probe_hit = 0;
	if (sigsetjmp(probe_jmp, 1) == 0) {
		probing = 1;
		if (write)
			__asm__ volatile("lock orb $0, %0" : "+m"(*(volatile char *)p) : : "memory");
		else
			probe_sink = *(volatile char *)p;
	}
	probing = 0;
	if (on_pku)
		wrpkru(pkru);
	fuzz_probes++;
	if (probe_hit && probe_code != SEGV_ACCERR && !(on_pku && probe_code == SEGV_PKUERR))
		BROKEN("probe of %p faulted with si_code %d", (void *)p, probe_code);
	return probe_hit;
}

/* ---- helpers --------------------------------------------------------------- */

struct input {
	const uint8_t *b;
	size_t n, at;
};

static unsigned byte(struct input *in)
{
	return in->at < in->n ? in->b[in->at++] : 0;
}

static size_t size_arg(struct input *in)
{
	unsigned a = byte(in), b = byte(in);
	size_t n = a | (b & 0x3f) << 8;          /* up to 16 KiB */
	if (b & 0x40)
		n <<= 6;                         /* up to 1 MiB */
	return n;
}

/* Whether this thread could enter domain i read-write now. */
static int can_enter_rw(int i)
{
	if (doms[i].nest == PKALLOC_MAX_NEST)
		return 0;
	return !(doms[i].flags & DOMAIN_CAPTURE_MALLOC) || capture_runs() < PKALLOC_MAX_CAPTURE ||
	       capture_seq[ncapture - 1] == i;
}

/* Run fn with d open for this thread as asked, then as before. */
static void with_access(int i, int want, void (*fn)(struct alloc *, void *), struct alloc *a,
                        void *arg)
{
	int have = access_of(i);
	int enter = have == 0 || (want == DOMAIN_RDWR && have != DOMAIN_RDWR);
	if (enter)
		EXPECT(domain_enter(doms[i].h, want) == 0, "enter for a check: %s", strerror(errno));
	fn(a, arg);
	if (enter)
		EXPECT(domain_exit(doms[i].h) == 0, "exit after a check: %s", strerror(errno));
}

static void do_fill(struct alloc *a, void *arg)
{
	(void)arg;
	for (size_t k = 0; k < a->n; k++)
		a->p[k] = pat(a->id, k);
}

static void do_verify(struct alloc *a, void *arg)
{
	size_t upto = arg ? *(size_t *)arg : a->n;
	for (size_t k = 0; k < upto; k++)
		EXPECT(a->p[k] == pat(a->id, k), "allocation %u (%zu bytes at %p): byte %zu is %#x, "
		       "not %#x", a->id, a->n, (void *)a->p, k, a->p[k], pat(a->id, k));
	fuzz_checked++;
}

static void do_zero(struct alloc *a, void *arg)
{
	(void)arg;
	for (size_t k = 0; k < a->n; k++)
		EXPECT(a->p[k] == 0, "calloc'd allocation %u: byte %zu is %#x", a->id, k, a->p[k]);
}

/* Give a the pattern of a new id, and note its usable size. */
static void fill(struct alloc *a)
{
	a->id = ++next_id;
	a->usable = domain_usable_size(a->p);
	EXPECT(a->usable >= a->n, "domain_usable_size(%p) = %zu < %zu", (void *)a->p, a->usable,
	       a->n);
	if (access_of(a->dom) != DOMAIN_RDWR && !can_enter_rw(a->dom)) {
		a->n = 0;        /* no way in read-write now: nothing to check later */
		return;
	}
	with_access(a->dom, DOMAIN_RDWR, do_fill, a, NULL);
}
static void verify(struct alloc *a, size_t upto)
{
	with_access(a->dom, DOMAIN_RDONLY, do_verify, a, &upto);
}

static struct alloc *free_alloc(void)
{
	for (int k = 0; k < NA; k++)
		if (!allocs[k].p)
			return &allocs[k];
	return NULL;
}

static struct alloc *some_alloc(struct input *in)
{
	int start = (int)(byte(in) % NA);
	for (int k = 0; k < NA; k++)
		if (allocs[(start + k) % NA].p)
			return &allocs[(start + k) % NA];
	return NULL;
}

/* What the library counts for each domain, against the model: after
 * every operation, so without a call that could open a domain. */
static void check_counts(void)
{
	struct pkalloc_stats ps;
	EXPECT(pkalloc_stats(&ps) == 0, "pkalloc_stats: %s", strerror(errno));
	unsigned live = 0;
	size_t total = 0;
	for (int i = 0; i < ND; i++) {
		if (!doms[i].h)
			continue;
		live++;
		size_t sum = 0;
		for (int k = 0; k < NA; k++) {
			struct alloc *a = &allocs[k];
			if (!a->p || a->dom != i)
				continue;
			EXPECT(domain_of(a->p) == doms[i].h, "domain_of(%p) is %p, not %p", (void *)a->p,
			       (void *)domain_of(a->p), (void *)doms[i].h);
			sum += a->usable;
		}
		struct domain_stats st;
		EXPECT(domain_stats(doms[i].h, &st) == 0, "domain_stats: %s", strerror(errno));
		EXPECT(st.allocated == sum, "domain %d: %zu bytes allocated, the model has %zu", i,
		       st.allocated, sum);
		total += sum;
	}
	EXPECT(ps.domains == live, "%u domains live, the model has %u", ps.domains, live);
	EXPECT(ps.allocated == total, "%zu bytes allocated, the model has %zu", ps.allocated, total);
}

/* ---- operations ------------------------------------------------------------ */

static void op_create(struct input *in)
{
	int i = (int)(byte(in) % ND);
	if (doms[i].h)
		return;
	unsigned flags = byte(in) & 1 ? DOMAIN_CAPTURE_MALLOC : 0;
	char name[16];
	snprintf(name, sizeof name, "fuzz-%d", i);
	if (flags && !OWN_MALLOC) {
		/* The sanitizer's malloc comes first: capture is refused. */
		EXPECT(!domain_create(name, flags) && errno == ENOTSUP,
		       "DOMAIN_CAPTURE_MALLOC accepted where malloc is not pkalloc's");
		flags = 0;
	}
	domain_t *h = domain_create(name, flags);
	EXPECT(h, "domain_create: %s", strerror(errno));
	EXPECT(strcmp(domain_name(h), name) == 0, "domain_name");
	doms[i] = (struct dom){ .h = h, .flags = flags };
}

static void drop_domain(int i)
{
	domain_t *old = doms[i].h;
	for (int k = 0; k < NA; k++)
		if (allocs[k].p && allocs[k].dom == i) {
			/* Released with the domain, not handed out again there. */
			EXPECT(domain_of(allocs[k].p) != old, "allocation outlived its domain");
			allocs[k].p = NULL;
		}
	doms[i].h = NULL;
	EXPECT_ERR(domain_enter(old, DOMAIN_RDONLY), == -1, EINVAL, "enter of a destroyed domain");
	EXPECT_ERR(domain_malloc(old, 1), == NULL, EINVAL, "malloc in a destroyed domain");
	EXPECT_ERR(domain_destroy(old), == -1, EINVAL, "second destroy");
}

static void op_destroy(struct input *in)
{
	int i = (int)(byte(in) % ND);
	if (!doms[i].h)
		return;
	if (doms[i].nest) {
		EXPECT_ERR(domain_destroy(doms[i].h), == -1, EBUSY, "destroy while inside");
		return;
	}
	EXPECT(domain_destroy(doms[i].h) == 0, "domain_destroy: %s", strerror(errno));
	drop_domain(i);
}

static void op_enter(struct input *in)
{
	int i = (int)(byte(in) % ND);
	int rw = byte(in) & 1;
	struct dom *d = &doms[i];
	if (!d->h)
		return;
	int capturing = rw && (d->flags & DOMAIN_CAPTURE_MALLOC);
	if (d->nest == PKALLOC_MAX_NEST) {
		EXPECT_ERR(domain_enter(d->h, rw ? DOMAIN_RDWR : DOMAIN_RDONLY), == -1, EOVERFLOW,
		           "enter past PKALLOC_MAX_NEST");
		return;
	}
	if (capturing && capture_runs() == PKALLOC_MAX_CAPTURE && capture_seq[ncapture - 1] != i) {
		EXPECT_ERR(domain_enter(d->h, DOMAIN_RDWR), == -1, EOVERFLOW,
		           "capturing enter past PKALLOC_MAX_CAPTURE runs");
		return;
	}
	EXPECT(domain_enter(d->h, rw ? DOMAIN_RDWR : DOMAIN_RDONLY) == 0, "domain_enter: %s",
	       strerror(errno));
	d->rw[d->nest++] = rw;
	if (capturing)
		capture_seq[ncapture++] = i;
}

static void exit_one(int i)
{
	struct dom *d = &doms[i];
	EXPECT(domain_exit(d->h) == 0, "domain_exit: %s", strerror(errno));
	int rw = d->rw[--d->nest];
	if (rw && (d->flags & DOMAIN_CAPTURE_MALLOC)) {
		/* The exit closes this domain's latest capturing enter. */
		for (int k = ncapture; k-- > 0;)
			if (capture_seq[k] == i) {
				memmove(&capture_seq[k], &capture_seq[k + 1],
				        (size_t)(ncapture - k - 1) * sizeof capture_seq[0]);
				ncapture--;
				break;
			}
	}
}

static void op_exit(struct input *in)
{
	int i = (int)(byte(in) % ND);
	if (!doms[i].h)
		return;
	if (!doms[i].nest) {
		EXPECT_ERR(domain_exit(doms[i].h), == -1, EPERM, "exit without an enter");
		return;
	}
	exit_one(i);
}

static void op_alloc(struct input *in)
{
	int i = (int)(byte(in) % ND);
	unsigned how = byte(in) % 4;
	size_t n = size_arg(in);
	struct alloc *a = free_alloc();
	if (!doms[i].h || !a)
		return;
	unsigned char *p;
	size_t al = 0;
	switch (how) {
	case 0: p = domain_malloc(doms[i].h, n); break;
	case 1: p = domain_calloc(doms[i].h, 1, n); break;
	case 2: p = domain_realloc(doms[i].h, NULL, n); break;
	default:
		al = (size_t)1 << (byte(in) % 16);
		p = domain_aligned_alloc(doms[i].h, al, n);
		break;
	}
	EXPECT(p, "allocating %zu bytes: %s", n, strerror(errno));
	EXPECT(!al || ((uintptr_t)p & (al - 1)) == 0, "%p is not aligned to %zu", (void *)p, al);
	*a = (struct alloc){ .p = p, .dom = i, .n = n };
	if (how == 1)
		with_access(i, DOMAIN_RDONLY, do_zero, a, NULL);
	fill(a);
}

static void op_realloc(struct input *in)
{
	struct alloc *a = some_alloc(in);
	int to = (int)(byte(in) % ND);
	size_t n = size_arg(in);
	if (!a || !doms[to].h)
		return;
	unsigned char *q = domain_realloc(doms[to].h, a->p, n);
	EXPECT(q, "domain_realloc to %zu bytes: %s", n, strerror(errno));
	a->p = q;
	a->dom = to;
	size_t keep = a->n < n ? a->n : n;
	verify(a, keep);
	a->n = n;
	fill(a);
}

static void op_free(struct input *in)
{
	struct alloc *a = some_alloc(in);
	if (!a)
		return;
	verify(a, a->n);
	if (OWN_MALLOC && (byte(in) & 1))
		free(a->p);                      /* free() takes domain memory too */
	else
		domain_free(a->p);
	a->p = NULL;
}

/* Another thread frees some allocations and makes others, with enough
 * calls to have caches of their domains, then exits: its caches become
 * orphans, and nothing may be lost or counted twice (check_counts). */
struct job {
	unsigned char *free[3];
	domain_t *in[3];
	size_t n[3];
	unsigned char *got[3];
};

static void *worker(void *arg)
{
	struct job *j = arg;
	for (int k = 0; k < 3; k++)
		if (j->free[k])
			domain_free(j->free[k]);
	for (int k = 0; k < 3; k++) {
		if (!j->in[k])
			continue;
		for (int r = 0; r < 6; r++)         /* a cache of the domain */
			domain_free(domain_malloc(j->in[k], 24));
		j->got[k] = domain_malloc(j->in[k], j->n[k]);
	}
	return NULL;
}

static void op_thread(struct input *in)
{
	struct job j;
	memset(&j, 0, sizeof j);
	int dom[3];
	for (int k = 0; k < 3; k++) {
		struct alloc *a = byte(in) & 1 ? some_alloc(in) : NULL;
		if (a && a->p) {
			verify(a, a->n);
			j.free[k] = a->p;
			a->p = NULL;
		}
		dom[k] = (int)(byte(in) % ND);
		j.in[k] = doms[dom[k]].h;
		j.n[k] = size_arg(in) % 2048;
	}
	pthread_t t;
	EXPECT(pthread_create(&t, NULL, worker, &j) == 0, "pthread_create");
	EXPECT(pthread_join(t, NULL) == 0, "pthread_join");
	for (int k = 0; k < 3; k++) {
		if (!j.in[k])
			continue;
		EXPECT(j.got[k], "another thread's allocation of %zu bytes failed", j.n[k]);
		struct alloc *a = free_alloc();
		if (!a) {
			domain_free(j.got[k]);
			continue;
		}
		*a = (struct alloc){ .p = j.got[k], .dom = dom[k], .n = j.n[k] };
		fill(a);
	}
}

/* More domains than a thread keeps caches of, each used enough for a
 * cache: the model's domains' caches are evicted, and counts still add up. */
static void op_many(struct input *in)
{
	domain_t *many[10];
	int n = 2 + (int)(byte(in) % 9);
	for (int i = 0; i < n; i++) {
		many[i] = domain_create("fuzz-many", 0);
		EXPECT(many[i], "domain_create: %s", strerror(errno));
		void *p[6];
		for (int k = 0; k < 6; k++)
			p[k] = domain_malloc(many[i], 16 + 16 * (size_t)k);
		for (int k = 0; k < 6; k++)
			domain_free(p[k]);
	}
	for (int i = 0; i < n; i++)
		EXPECT(domain_destroy(many[i]) == 0, "domain_destroy: %s", strerror(errno));
}

/* The contract of access, probed: this thread alone, so exact. */
static void op_probe(struct input *in)
{
	struct alloc *a = some_alloc(in);
	if (!a)
		return;
	int acc = access_of(a->dom);
	EXPECT(faults(a->p, 0) == (acc == 0), "read of a domain with access %d: %s", acc,
	       acc ? "faulted" : "did not fault");
	EXPECT(faults(a->p, 1) == (acc != DOMAIN_RDWR), "write of a domain with access %d: %s",
	       acc, acc == DOMAIN_RDWR ? "faulted" : "did not fault");
}

/* Plain malloc lands in the innermost capturing domain, or is plain. */
static void op_malloc(struct input *in)
{
	size_t n = size_arg(in);
	if (!OWN_MALLOC)
		return;
	int want = ncapture ? capture_seq[ncapture - 1] : -1;
	unsigned char *p = malloc(n);
	EXPECT(p, "malloc(%zu): %s", n, strerror(errno));
	unsigned char *volatile addr = p;     /* gcc would take domain_of for a read of *p */
	domain_t *got = domain_of(addr);
	EXPECT(got == (want < 0 ? NULL : doms[want].h), "malloc(%zu) in domain %p, expected %p",
	       n, (void *)got, want < 0 ? NULL : (void *)doms[want].h);
	struct alloc *a = free_alloc();
	if (want < 0 || !a) {
		memset(p, 0x5A, n);
		free(p);
		return;
	}
	/* Captured: it stays domain memory, freed later like the rest. */
	*a = (struct alloc){ .p = p, .dom = want, .n = n };
	fill(a);
}

static void op_check(struct input *in)
{
	(void)in;
	for (int k = 0; k < NA; k++)
		if (allocs[k].p) {
			verify(&allocs[k], allocs[k].n);
			EXPECT(domain_usable_size(allocs[k].p) == allocs[k].usable,
			       "usable size of %p changed", (void *)allocs[k].p);
		}
}

/* Calls that must fail, and how. */
static void op_misuse(struct input *in)
{
	int i = (int)(byte(in) % ND);
	int local = 0;
	/* Out of the compiler's sight: no warnings, and clang 14 crashes on
	 * some constant alignments given to an alloc_align function. */
	volatile size_t align24 = 24, half = SIZE_MAX / 2, whole = PKALLOC_RESERVATION;
	switch (byte(in) % 6) {
	case 0:
		EXPECT(domain_of(&local) == NULL, "domain_of(stack)");
		EXPECT_ERR(domain_usable_size(&local), == 0, EINVAL, "usable size of the stack");
		break;
	case 1:
		if (doms[i].h)
			EXPECT_ERR(domain_enter(doms[i].h, 3), == -1, EINVAL, "enter with access 3");
		break;
	case 2:
		if (doms[i].h)
			EXPECT_ERR(domain_aligned_alloc(doms[i].h, align24, 8), == NULL, EINVAL,
			           "alignment 24");
		break;
	case 3:
		if (doms[i].h)
			EXPECT_ERR(domain_malloc(doms[i].h, whole), == NULL, ENOMEM,
			           "malloc of a whole reservation");
		break;
	case 4:
		if (doms[i].h)
			EXPECT_ERR(domain_calloc(doms[i].h, half, 3), == NULL, ENOMEM,
			           "calloc overflow");
		break;
	default:
		EXPECT_ERR(domain_exit((domain_t *)&local), == -1, EINVAL, "exit of a forged handle");
		break;
	}
}

/* ---- the driver ------------------------------------------------------------ */

static void (*const ops[])(struct input *) = {
	op_create, op_destroy, op_enter, op_exit, op_alloc, op_realloc, op_free,
	op_probe, op_malloc, op_check, op_misuse, op_enter, op_exit, op_alloc,
	op_thread, op_many,
};

/* Leave nothing behind for the next input. */
static void clean_up(void)
{
	for (int i = 0; i < ND; i++)
		while (doms[i].h && doms[i].nest)
			exit_one(i);
	EXPECT(ncapture == 0, "capture model left %d enters", ncapture);
	for (int k = 0; k < NA; k++)
		if (allocs[k].p) {
			verify(&allocs[k], allocs[k].n);
			domain_free(allocs[k].p);
			allocs[k].p = NULL;
		}
	check_counts();
	for (int i = 0; i < ND; i++)
		if (doms[i].h) {
			EXPECT(domain_destroy(doms[i].h) == 0, "domain_destroy: %s", strerror(errno));
			drop_domain(i);
		}
	check_counts();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { .b = data, .n = size };
	for (int count = 0; in.at < in.n && count < MAX_OPS; count++) {
		ops[byte(&in) % (sizeof ops / sizeof ops[0])](&in);
		fuzz_ops++;
		check_counts();
	}
	clean_up();
	return 0;
}
