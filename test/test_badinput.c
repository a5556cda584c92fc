/*
 * Bad input to every public call gives the documented outcome: the errno
 * of pkalloc.h and pkalloc(3), a documented result with errno left alone,
 * or one exact "pkalloc:" line and abort (checked in a child).  And after
 * all of it, the secrets made first are intact and still fault outside.
 *
 * The matrix has three parts, listed below:
 *   1. every call that takes a handle  x  every kind of bad handle: EINVAL;
 *   2. every call that takes a pointer x  every kind of foreign or interior
 *      pointer: what each call documents for that kind;
 *   3. single rows: zero and huge sizes, overflowing nmemb * size, bad
 *      alignments, bad access modes, unbalanced, nested and cross-thread
 *      exits, the limits, and the malloc replacement's conventions.
 * It prints how many inputs it tried (test/RELIABILITY.md quotes that).
 */
#include "test.h"

#include <limits.h>
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/mman.h>

/* Under AddressSanitizer the sanitizer's malloc comes first: the
 * replacement is not in effect there, its rows (capture among them) are not
 * tried, and a capturing domain is refused. */
#if defined(__SANITIZE_ADDRESS__)
#define REPLACED 0
#define CAPTURE_CREATE ERR(ENOTSUP)
#else
#define REPLACED 1
#define CAPTURE_CREATE FINE
#endif

#define NOT_DOMAIN "not domain memory"
#define NOT_ALLOC  "not an allocation of its domain (interior pointer or freed already)"
#define GONE       "its domain was destroyed"

/* Sizes the compiler must not see (-Walloc-size-larger-than). */
static volatile size_t max_sz = SIZE_MAX, half_sz = SIZE_MAX / 2 + 1;
static volatile size_t g32 = (size_t)1 << 32, top_bit = (size_t)1 << 63, zero_sz = 0;

/* C++ operators, called from C by their Itanium ABI names. */
void *_Znwm(size_t n);
void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt);
void _ZdlPv(void *p);
void _ZdlPvm(void *p, size_t n);
typedef void (*new_handler_fn)(void);
static new_handler_fn (*set_new_handler)(new_handler_fn);   /* the C++ runtime's */

/* Fixtures, made once in main. */
static domain_t *d, *other, *cap1, *cap2, *dead;
static domain_t *many[PKALLOC_MAX_OPEN + 1];
static char *secret, *big, *freed, *dead_ptr;
static void *plain;
static char *on_stack;
static char *unterminated;          /* 64 bytes without a NUL, then PROT_NONE */

#define PATTERN "a secret that bad input must never disturb"

/* The arguments of the row being run (read by the row's function). */
static domain_t *cur_h;
static char *cur_p;

/* Why an OK row's checks failed. */
static char note[256];
static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(note, sizeof note, fmt, ap);
	va_end(ap);
	return -1;
}

/* Expected outcomes. */
enum expect { ERRNO, OK, DIES, SKIPPED };
struct outcome {
	enum expect expect;
	int err;                /* ERRNO */
	const char *call;       /* DIES: "pkalloc: call(ptr): why" */
	const char *why;        /* DIES; with call NULL: a text stderr must hold */
};
#define ERR(e)          { ERRNO, (e), NULL, NULL }
#define FINE            { OK, 0, NULL, NULL }
#define ABORTS(c, w)    { DIES, 0, (c), (w) }
#define NA              { SKIPPED, 0, NULL, NULL }

static unsigned tried, died;

/* A row's function: ERRNO rows return errno after a failed call, 0 after
 * success; OK rows return 0 when every documented property held. */
typedef int row_fn(void);

static row_fn *child_fn;
static void run_in_child(void *arg)
{
	(void)arg;
	child_fn();
	_exit(0);            /* it should have aborted */
}

static int open_overflow(void);

static void run(const char *what, struct outcome o, row_fn *fn, const void *ptr)
{
	if (o.expect == SKIPPED)
		return;
	if (fn == open_overflow && !many[0]) {
		printf("not tried under valgrind: %s\n", what);
		return;
	}
	tried++;
	snprintf(test_note, sizeof test_note, "row: %s", what);
	if (o.expect == DIES) {
		char err[1024], want[512];
		child_fn = fn;
		int st = in_child(run_in_child, NULL, err, sizeof err);
		died++;
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
			FAIL("%s: should abort; status %#x, stderr \"%s\"", what, st, err);
		if (!o.call) {
			if (!strstr(err, o.why))
				FAIL("%s: stderr \"%s\" lacks \"%s\"", what, err, o.why);
			return;
		}
		snprintf(want, sizeof want, "pkalloc: %s(%p): %s\n", o.call, ptr, o.why);
		if (strcmp(err, want) != 0)
			FAIL("%s: stderr \"%s\", expected \"%s\"", what, err, want);
		return;
	}
	note[0] = '\0';
	errno = 0;
	int got = fn();
	if (o.expect == OK && got != 0)
		FAIL("%s: %s", what, note[0] ? note : strerror(got));
	if (o.expect == ERRNO && got != o.err)
		FAIL("%s: %s (%d), expected %s (%d)", what, got ? strerror(got) : "succeeded",
		     got, strerror(o.err), o.err);
}

/* errno of a failed call, 0 if it succeeded. */
#define PTR_ERR(call) ({ errno = 0; (call) == NULL ? errno : 0; })
#define INT_ERR(call) ({ errno = 0; (call) == -1 ? errno : 0; })

/* ---- 1. Handles --------------------------------------------------------- */

static int h_destroy(void) { return INT_ERR(domain_destroy(cur_h)); }
static int h_enter_rw(void) { return INT_ERR(domain_enter(cur_h, DOMAIN_RDWR)); }
static int h_enter_ro(void) { return INT_ERR(domain_enter(cur_h, DOMAIN_RDONLY)); }
static int h_exit(void) { return INT_ERR(domain_exit(cur_h)); }
static int h_malloc(void) { return PTR_ERR(domain_malloc(cur_h, 16)); }
static int h_malloc0(void) { return PTR_ERR(domain_malloc(cur_h, 0)); }
static int h_calloc(void) { return PTR_ERR(domain_calloc(cur_h, 2, 16)); }
static int h_aligned(void) { return PTR_ERR(domain_aligned_alloc(cur_h, 64, 16)); }
static int h_realloc_null(void) { return PTR_ERR(domain_realloc(cur_h, NULL, 16)); }
static int h_realloc_live(void)
{
	int e = PTR_ERR(domain_realloc(cur_h, secret, 16));
	if (domain_usable_size(secret) < sizeof PATTERN || domain_of(secret) != d)
		return -1;       /* the block must be left untouched */
	return e;
}
static int h_name(void) { return PTR_ERR(domain_name(cur_h)); }
static int h_stats(void) { struct domain_stats st; return INT_ERR(domain_stats(cur_h, &st)); }

static const struct { const char *name; row_fn *fn; } handle_calls[] = {
	{ "domain_destroy", h_destroy },
	{ "domain_enter(RDWR)", h_enter_rw },
	{ "domain_enter(RDONLY)", h_enter_ro },
	{ "domain_exit", h_exit },
	{ "domain_malloc(16)", h_malloc },
	{ "domain_malloc(0)", h_malloc0 },
	{ "domain_calloc(2, 16)", h_calloc },
	{ "domain_aligned_alloc(64, 16)", h_aligned },
	{ "domain_realloc(NULL, 16)", h_realloc_null },
	{ "domain_realloc(live block, 16)", h_realloc_live },
	{ "domain_name", h_name },
	{ "domain_stats", h_stats },
};

/* ---- 2. Pointers -------------------------------------------------------- */

/* Kinds of pointer: FOREIGN is no memory of jemalloc's nor a domain's;
 * HEAP an ordinary malloc block; INSIDE lies in a live domain's
 * reservation but starts no live allocation. */
enum pkind { FOREIGN, HEAP, INSIDE, DEAD, PKINDS };

static int p_domain_free(void) { domain_free(cur_p); return 0; }
static int p_domain_realloc(void) { void *r = domain_realloc(d, cur_p, 32); (void)r; return 0; }
static int p_usable(void)
{
	int e = 0;
	errno = 0;
	if (domain_usable_size(cur_p) != 0)
		return bad("domain_usable_size was not 0");
	e = errno;
	return e == EINVAL ? 0 : bad("errno %d, expected EINVAL", e);
}
static int p_of_none(void)
{
	errno = 1234;
	if (domain_of(cur_p) != NULL)
		return bad("domain_of gave a domain");
	return errno == 1234 ? 0 : bad("errno changed to %d", errno);
}
static int p_of_d(void)
{
	errno = 1234;
	if (domain_of(cur_p) != d)
		return bad("domain_of is not the reservation's domain");
	return errno == 1234 ? 0 : bad("errno changed to %d", errno);
}
static int p_free(void) { free(cur_p); return 0; }
static int p_realloc(void) { void *r = realloc(cur_p, 32); (void)r; return 0; }
static int p_realloc0(void) { void *r = realloc(cur_p, 0); (void)r; return 0; }
static int p_reallocarray(void) { void *r = reallocarray(cur_p, 2, 16); (void)r; return 0; }
static int p_usable_plain_zero(void)
{
	return malloc_usable_size(cur_p) == 0 ? 0 : bad("malloc_usable_size was not 0");
}
static int p_usable_heap(void)
{
	return malloc_usable_size(cur_p) >= 64 ? 0 : bad("malloc_usable_size below 64");
}
static int p_delete(void) { _ZdlPv(cur_p); return 0; }
static int p_delete_sized(void) { _ZdlPvm(cur_p, 16); return 0; }

static const struct {
	const char *name;
	row_fn *fn;
	struct outcome on[PKINDS];      /* FOREIGN, HEAP, INSIDE, DEAD */
	int replacement;                /* a call of the malloc replacement */
} pointer_calls[] = {
	{ "domain_free", p_domain_free,
	  { ABORTS("domain_free", NOT_DOMAIN), ABORTS("domain_free", NOT_DOMAIN),
	    ABORTS("domain_free", NOT_ALLOC), ABORTS("domain_free", GONE) }, 0 },
	{ "domain_realloc(d, p, 32)", p_domain_realloc,
	  { ABORTS("domain_realloc", NOT_DOMAIN), ABORTS("domain_realloc", NOT_DOMAIN),
	    ABORTS("domain_realloc", NOT_ALLOC), ABORTS("domain_realloc", GONE) }, 0 },
	{ "domain_usable_size", p_usable, { FINE, FINE, FINE, FINE }, 0 },
	{ "domain_of", NULL, { FINE, FINE, FINE, FINE }, 0 },     /* p_of_none / p_of_d */
	/* free and the rest of the C library's calls hand what is not domain
	 * memory to jemalloc: a foreign pointer there is undefined, as in
	 * any malloc, and is not tried.  A destroyed domain's pointer is
	 * still known while its range is kept (pkalloc(3)). */
	{ "free", p_free, { NA, NA, ABORTS("free", NOT_ALLOC), ABORTS("free", GONE) }, 1 },
	{ "realloc(p, 32)", p_realloc,
	  { NA, NA, ABORTS("realloc", NOT_ALLOC), ABORTS("realloc", GONE) }, 1 },
	{ "realloc(p, 0)", p_realloc0, { NA, NA, ABORTS("free", NOT_ALLOC), ABORTS("free", GONE) }, 1 },
	{ "reallocarray(p, 2, 16)", p_reallocarray,
	  { NA, NA, ABORTS("realloc", NOT_ALLOC), ABORTS("realloc", GONE) }, 1 },
	{ "malloc_usable_size", NULL,                             /* p_usable_heap / _plain_zero */
	  { NA, FINE, FINE, ABORTS("malloc_usable_size", GONE) }, 1 },
	{ "operator delete(p)", p_delete,
	  { NA, NA, ABORTS("operator delete", NOT_ALLOC), ABORTS("operator delete", GONE) }, 1 },
	{ "operator delete(p, 16)", p_delete_sized,
	  { NA, NA, ABORTS("operator delete", NOT_ALLOC), ABORTS("operator delete", GONE) }, 1 },
};

/* ---- 3. Single rows ----------------------------------------------------- */

static int check_secret(void)
{
	if (domain_enter(d, DOMAIN_RDONLY) != 0)
		return bad("cannot enter d: %s", strerror(errno));
	int same = memcmp(secret, PATTERN, sizeof PATTERN) == 0;
	domain_exit(d);
	return same ? 0 : bad("the secret changed");
}

/* An allocation that must succeed: usable, in domain `in` (NULL: ordinary
 * memory), aligned to `align`; then freed. */
static int good_block(void *p, size_t size, domain_t *in, size_t align)
{
	if (!p)
		return bad("failed: %s", strerror(errno));
	if (domain_of(p) != in) {
		free(p);
		return bad("in the wrong domain");
	}
	if (((uintptr_t)p & (align - 1)) != 0 || malloc_usable_size(p) < (size ? size : 1)) {
		free(p);
		return bad("misaligned or too small");
	}
	free(p);
	return 0;
}

/* domain_create */
static int create_name63(void)
{
	char n[64];
	memset(n, 'n', 63);
	n[63] = '\0';
	domain_t *x = domain_create(n, 0);
	if (!x)
		return bad("failed: %s", strerror(errno));
	int ok = strcmp(domain_name(x), n) == 0;
	domain_destroy(x);
	return ok ? 0 : bad("name not kept");
}
static int create_name64(void)
{
	char n[65];
	memset(n, 'n', 64);
	n[64] = '\0';
	return PTR_ERR(domain_create(n, 0));
}
/* 64 bytes and no NUL, right before a PROT_NONE page: strnlen must stop. */
static int create_name_unterminated(void)
{
	return PTR_ERR(domain_create(unterminated, 0));
}
static int create_flags(unsigned f) { return PTR_ERR(domain_create("flags", f)); }
static int create_flags16(void) { return create_flags(0x10); }   /* the first unused bit */
static int create_flags_top(void) { return create_flags(0x80000000u); }
static int create_flags_all(void) { return create_flags(UINT_MAX); }
/* Where malloc is not pkalloc's, capture is refused, never silently void. */
static int create_capture(void)
{
	errno = 0;
	domain_t *x = domain_create("capture", DOMAIN_CAPTURE_MALLOC);
	if (!x)
		return errno;
	return domain_destroy(x) == 0 ? 0 : errno;
}
static int create_null_name(void)
{
	domain_t *x = domain_create(NULL, DOMAIN_WIPEONFORK | (REPLACED ? DOMAIN_CAPTURE_MALLOC : 0));
	if (!x)
		return bad("failed: %s", strerror(errno));
	int ok = strcmp(domain_name(x), "") == 0;
	domain_destroy(x);
	return ok ? 0 : bad("name not empty");
}

/* domain_destroy */
static int destroy_twice(void)
{
	domain_t *x = domain_create("twice", 0);
	if (!x || domain_destroy(x) != 0)
		return bad("setup: %s", strerror(errno));
	return INT_ERR(domain_destroy(x));
}
static int destroy_inside(void)
{
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	int e = INT_ERR(domain_destroy(d));
	CHECK_OK(domain_exit(d));
	return e;
}
static void *destroy_from_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)INT_ERR(domain_destroy(d));
}
static int destroy_while_other_thread_inside(void)
{
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	pthread_t t;
	void *r;
	CHECK_INT(pthread_create(&t, NULL, destroy_from_thread, NULL), ==, 0);
	pthread_join(t, &r);
	CHECK_OK(domain_exit(d));
	return (int)(intptr_t)r;
}

/* domain_enter / domain_exit */
static int enter_access(int a) { return INT_ERR(domain_enter(d, a)); }
static int enter_0(void) { return enter_access(0); }
static int enter_3(void) { return enter_access(DOMAIN_RDONLY | DOMAIN_RDWR); }
static int enter_neg(void) { return enter_access(-1); }
static int enter_min(void) { return enter_access(INT_MIN); }
static int enter_max(void) { return enter_access(INT_MAX); }
static int exit_never_entered(void) { return INT_ERR(domain_exit(d)); }
static int exit_twice(void)
{
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	CHECK_OK(domain_exit(d));
	return INT_ERR(domain_exit(d));
}
static int exit_after_nest(void)
{
	for (int i = 0; i < 3; i++)
		CHECK_OK(domain_enter(d, i == 1 ? DOMAIN_RDWR : DOMAIN_RDONLY));
	for (int i = 0; i < 3; i++)
		CHECK_OK(domain_exit(d));
	return INT_ERR(domain_exit(d));
}
static int nest_overflow(void)
{
	for (int i = 0; i < PKALLOC_MAX_NEST; i++)
		CHECK_OK(domain_enter(d, i % 2 ? DOMAIN_RDONLY : DOMAIN_RDWR));
	int e = INT_ERR(domain_enter(d, DOMAIN_RDONLY));
	for (int i = 0; i < PKALLOC_MAX_NEST; i++)
		CHECK_OK(domain_exit(d));
	return e;
}
static int open_overflow(void)
{
	for (int i = 0; i < PKALLOC_MAX_OPEN; i++)
		CHECK_OK(domain_enter(many[i], DOMAIN_RDONLY));
	int e = INT_ERR(domain_enter(many[PKALLOC_MAX_OPEN], DOMAIN_RDONLY));
	for (int i = PKALLOC_MAX_OPEN; i-- > 0;)
		CHECK_OK(domain_exit(many[i]));
	return e;
}
/* Read-write enters alternating between two capturing domains: each one
 * starts a new run of the capture stack. */
static int capture_overflow(void)
{
	for (int i = 0; i < PKALLOC_MAX_CAPTURE; i++)
		CHECK_OK(domain_enter(i % 2 ? cap2 : cap1, DOMAIN_RDWR));
	domain_t *next = PKALLOC_MAX_CAPTURE % 2 ? cap2 : cap1;
	int e = INT_ERR(domain_enter(next, DOMAIN_RDWR));
	for (int i = PKALLOC_MAX_CAPTURE; i-- > 0;)
		CHECK_OK(domain_exit(i % 2 ? cap2 : cap1));
	return e;
}
/* Exits need not mirror the enters: d then other in, d then other out. */
static int exit_out_of_order(void)
{
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK_OK(domain_enter(other, DOMAIN_RDWR));
	if (domain_exit(d) != 0 || domain_exit(other) != 0)
		return bad("an exit failed: %s", strerror(errno));
	CHECK_DENIED(secret, 0);
	return 0;
}
static void *exit_elsewhere(void *arg)
{
	return (void *)(intptr_t)INT_ERR(domain_exit(arg));
}
/* Another thread's exit of a domain this thread is inside: EPERM, and this
 * thread stays inside. */
static int cross_thread_exit(void)
{
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	pthread_t t;
	void *r;
	CHECK_INT(pthread_create(&t, NULL, exit_elsewhere, d), ==, 0);
	pthread_join(t, &r);
	CHECK_ALLOWED(secret, 1);
	CHECK_OK(domain_exit(d));
	CHECK_DENIED(secret, 0);
	return (int)(intptr_t)r;
}
static void *enter_and_leave_open(void *arg)
{
	(void)arg;
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	return NULL;           /* the thread ends inside: pkalloc closes it */
}
/* A thread that ends inside leaves nothing open, and its exit does not
 * count for this thread. */
static int thread_ends_inside(void)
{
	pthread_t t;
	CHECK_INT(pthread_create(&t, NULL, enter_and_leave_open, NULL), ==, 0);
	pthread_join(t, NULL);
	CHECK_DENIED(secret, 0);
	int e = INT_ERR(domain_exit(d));
	return e == EPERM ? 0 : bad("domain_exit after the thread: errno %d", e);
}

/* domain_malloc family: sizes and alignments */
static int dmalloc(size_t n) { return PTR_ERR(domain_malloc(d, n)); }
static int dmalloc_max(void) { return dmalloc(max_sz); }
static int dmalloc_half(void) { return dmalloc(half_sz); }
static int dmalloc_reservation(void) { return dmalloc(PKALLOC_RESERVATION); }
static int dmalloc_limit(void) { return dmalloc(PKALLOC_RESERVATION - 2 * PKALLOC_GUARD); }
static int dmalloc_zero(void)
{
	char *a = domain_malloc(d, 0), *b = domain_malloc(d, 0);
	if (!a || !b || a == b || domain_usable_size(a) < 1 || domain_of(a) != d)
		return bad("malloc(0) is not a unique minimal allocation");
	domain_free(a);
	domain_free(b);
	return 0;
}
static int dcalloc(size_t n, size_t s) { return PTR_ERR(domain_calloc(d, n, s)); }
static int dcalloc_ovf(void) { return dcalloc(max_sz, 2); }
static int dcalloc_wrap0(void) { return dcalloc(g32, g32); }      /* 2^64: 0 after wrapping */
static int dcalloc_ovf_half(void) { return dcalloc(half_sz, 2); }
static int dcalloc_huge(void) { return dcalloc(max_sz, 1); }
static int dcalloc_zero(void)
{
	char *a = domain_calloc(d, 0, max_sz), *b = domain_calloc(d, max_sz, 0);
	if (!a || !b || a == b)
		return bad("calloc with a 0 factor is not a unique minimal allocation");
	domain_free(a);
	domain_free(b);
	return 0;
}
static int daligned(size_t a, size_t n) { return PTR_ERR(domain_aligned_alloc(d, a, n)); }
static int daligned_0(void) { return daligned(0, 16); }
static int daligned_3(void) { return daligned(3, 16); }
static int daligned_24(void) { return daligned(24, 16); }
static int daligned_max(void) { return daligned(max_sz, 16); }
static int daligned_top(void) { return daligned(top_bit, 16); }
static int daligned_res(void) { return daligned(PKALLOC_RESERVATION, 16); }
static int daligned_huge_size(void) { return daligned(4096, max_sz); }
static int daligned_ok(size_t a, size_t n)
{
	char *p = domain_aligned_alloc(d, a, n);
	if (!p || ((uintptr_t)p & (a - 1)) || domain_usable_size(p) < (n ? n : 1))
		return bad("not an aligned allocation");
	domain_free(p);
	return 0;
}
static int daligned_1(void) { return daligned_ok(1, 16); }
static int daligned_zero_size(void) { return daligned_ok(64, 0); }
static int daligned_2m(void) { return daligned_ok((size_t)2 << 20, 16); }

/* domain_realloc */
static int drealloc_keeps(size_t n, int want)
{
	char *r = domain_realloc(d, secret, n);
	int e = r ? 0 : errno;
	if (r)
		return bad("succeeded");
	if (check_secret() != 0)
		return -1;
	return e == want ? 0 : bad("errno %d, expected %d", e, want);
}
static int drealloc_max(void) { return drealloc_keeps(max_sz, ENOMEM); }
static int drealloc_res(void) { return drealloc_keeps(PKALLOC_RESERVATION, ENOMEM); }
static int drealloc_zero(void)
{
	char *p = domain_malloc(d, 100);
	if (!p)
		return bad("setup");
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	p[0] = 'z';
	CHECK_OK(domain_exit(d));
	char *r = domain_realloc(d, p, zero_sz);
	if (!r || domain_usable_size(r) < 1 || domain_of(r) != d)
		return bad("realloc to 0 is not a minimal allocation");
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	int kept = r[0] == 'z';
	CHECK_OK(domain_exit(d));
	domain_free(r);
	return kept ? 0 : bad("first byte lost");
}
static int drealloc_null_zero(void)
{
	char *r = domain_realloc(d, NULL, 0);
	if (!r || domain_of(r) != d)
		return bad("not a minimal allocation");
	domain_free(r);
	return 0;
}
/* Across domains: the block moves into the handle's domain. */
static int drealloc_cross(void)
{
	char *p = domain_malloc(d, 40);
	if (!p)
		return bad("setup");
	char *r = domain_realloc(other, p, 4000);
	if (!r || domain_of(r) != other)
		return bad("did not move into the other domain");
	if (domain_usable_size(p) != 0 && p != r)
		return bad("the old block is still live");
	domain_free(r);
	return 0;
}

/* domain_usable_size, domain_of, domain_name, stats */
static int usable_null(void)
{
	errno = 1234;
	return domain_usable_size(NULL) == 0 && errno == 1234 ? 0 : bad("not 0 with errno untouched");
}
static int of_null(void)
{
	errno = 1234;
	return domain_of(NULL) == NULL && errno == 1234 ? 0 : bad("not NULL with errno untouched");
}
static int of_handle(void)
{
	return domain_of((void *)d) == NULL ? 0 : bad("a handle is no domain memory");
}
static int free_null(void) { domain_free(NULL); return 0; }
static int name_live(void) { return strcmp(domain_name(d), "bad") == 0 ? 0 : bad("wrong name"); }
static int dstats_null(void) { return INT_ERR(domain_stats(d, NULL)); }
static int pstats_null(void) { return INT_ERR(pkalloc_stats(NULL)); }
static int dstats_live(void)
{
	struct domain_stats st;
	if (domain_stats(d, &st) != 0 || st.allocated < sizeof PATTERN || st.mapped == 0)
		return bad("stats of a live domain");
	return 0;
}
static void handler_twice(void *arg)
{
	(void)arg;
	CHECK_OK(pkalloc_install_fault_handler());
	CHECK_OK(pkalloc_install_fault_handler());
}
static int fault_handler_twice(void)
{
	int st = in_child(handler_twice, NULL, NULL, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : bad("child status %#x", st);
}
static int backend_name(void)
{
	const char *b = pkalloc_backend();
	return strcmp(b, "pku") == 0 || strcmp(b, "mprotect") == 0 ? 0 : bad("backend %s", b);
}

/* The malloc replacement */
static int c_malloc_max(void) { return PTR_ERR(malloc(max_sz)); }
static int c_malloc_zero(void)
{
	void *a = malloc(0), *b = malloc(0);
	int ok = a && b && a != b;
	free(a);
	free(b);
	return ok ? 0 : bad("malloc(0) is not a unique allocation");
}
static int c_calloc_ovf(void) { return PTR_ERR(calloc(max_sz, 2)); }
static int c_calloc_wrap0(void) { return PTR_ERR(calloc(g32, g32)); }
static int c_realloc_max(void)
{
	int e = PTR_ERR(realloc(plain, max_sz));
	return e == ENOMEM && malloc_usable_size(plain) >= 64 ? 0 : bad("errno %d", e);
}
static int c_reallocarray_ovf(void)
{
	int e = PTR_ERR(reallocarray(plain, g32, g32));
	return e == ENOMEM && malloc_usable_size(plain) >= 64 ? 0 : bad("errno %d", e);
}
static int c_reallocarray_domain_ovf(void)
{
	int e = PTR_ERR(reallocarray(secret, max_sz, 2));
	if (e != ENOMEM)
		return bad("errno %d", e);
	return check_secret();
}
static int c_realloc_domain_max(void)
{
	int e = PTR_ERR(realloc(secret, max_sz));
	if (e != ENOMEM)
		return bad("errno %d", e);
	return check_secret();
}
/* realloc keeps domain memory in its domain, from outside it too. */
static int c_realloc_domain(void)
{
	char *p = domain_malloc(d, 24);
	if (!p)
		return bad("setup");
	char *r = realloc(p, 5000);
	int ok = r && domain_of(r) == d;
	domain_free(r);
	return ok ? 0 : bad("left its domain");
}
/* realloc(p, 0) frees p and returns NULL, domain memory included. */
static int c_realloc_domain_zero(void)
{
	char *p = domain_malloc(d, 24);
	if (!p)
		return bad("setup");
	if (realloc(p, 0) != NULL)
		return bad("returned a block");
	errno = 0;
	return domain_usable_size(p) == 0 && errno == EINVAL ? 0 : bad("p still allocated");
}
static int c_usable_null(void) { return malloc_usable_size(NULL) == 0 ? 0 : bad("not 0"); }
static int c_usable_domain(void)
{
	return malloc_usable_size(secret) >= sizeof PATTERN ? 0 : bad("too small");
}
static int c_free_null(void) { free(NULL); return 0; }

/* posix_memalign: the error is the result; *memptr and errno untouched. */
static int c_posix(size_t a, size_t n, int want)
{
	void *m = &note;
	errno = 1234;
	int r = posix_memalign(&m, a, n);
	if (r == 0)
		free(m);
	if (r != want)
		return bad("returned %d, expected %d", r, want);
	if (want && m != &note)
		return bad("*memptr changed");
	return errno == 1234 ? 0 : bad("errno changed to %d", errno);
}
static int c_posix_0(void) { return c_posix(0, 16, EINVAL); }
static int c_posix_1(void) { return c_posix(1, 16, EINVAL); }
static int c_posix_4(void) { return c_posix(4, 16, EINVAL); }
static int c_posix_24(void) { return c_posix(24, 16, EINVAL); }
static int c_posix_max(void) { return c_posix(max_sz, 16, EINVAL); }
static int c_posix_huge_align(void) { return c_posix((size_t)1 << 62, 16, ENOMEM); }
static int c_posix_huge_size(void) { return c_posix(64, max_sz, ENOMEM); }
static int c_posix_ok(void) { return c_posix(sizeof(void *), 0, 0); }

static int c_aligned(size_t a, size_t n) { return PTR_ERR(aligned_alloc(a, n)); }
static int c_aligned_0(void) { return c_aligned(0, 16); }
static int c_aligned_3(void) { return c_aligned(3, 16); }
static int c_aligned_24(void) { return c_aligned(24, 16); }
static int c_aligned_max(void) { return c_aligned(max_sz, 1); }
static int c_aligned_huge(void) { return c_aligned((size_t)1 << 62, 16); }
static int c_aligned_huge_size(void) { return c_aligned(16, max_sz); }

static int c_memalign_max(void) { return PTR_ERR(memalign(max_sz, 16)); }
static int c_memalign_top1(void) { return PTR_ERR(memalign(top_bit + 1, 16)); }
static int c_memalign_top(void) { return PTR_ERR(memalign(top_bit, 16)); }
/* A non-power-of-two alignment is rounded up to one. */
static int c_memalign_48(void) { return good_block(memalign(48, 16), 16, NULL, 64); }
static int c_memalign_0(void) { return good_block(memalign(0, 16), 16, NULL, 1); }
static int c_pvalloc_max(void) { return PTR_ERR(pvalloc(max_sz)); }
static int c_pvalloc_edge(void) { return PTR_ERR(pvalloc(max_sz - 4095)); }
static int c_pvalloc_zero(void) { return good_block(pvalloc(0), 4096, NULL, 4096); }
static int c_valloc_max(void) { return PTR_ERR(valloc(max_sz)); }

static int new_calls;
static void one_new_handler(void)
{
	new_calls++;
	set_new_handler(NULL);        /* give up the next time */
}
static int cxx_new_nothrow(void)
{
	new_calls = 0;
	if (!set_new_handler)
		return bad("no C++ runtime loaded: std::set_new_handler not found");
	set_new_handler(one_new_handler);
	char nt;
	void *p = _ZnwmRKSt9nothrow_t(max_sz, &nt);
	if (p)
		return bad("succeeded");
	return new_calls == 1 ? 0 : bad("new-handler called %d times", new_calls);
}
static int cxx_new_throws(void) { void *p = _Znwm(max_sz); (void)p; return 0; }
static int cxx_delete_null(void) { _ZdlPv(NULL); return 0; }

/* Inside a capturing domain, plain calls keep the same conventions. */
static int captured(int (*fn)(void))
{
	CHECK_OK(domain_enter(cap1, DOMAIN_RDWR));
	errno = 0;
	int e = fn();
	CHECK_OK(domain_exit(cap1));
	return e;
}
static int cap_malloc_max(void) { return captured(c_malloc_max); }
static int cap_calloc_ovf(void) { return captured(c_calloc_ovf); }
static int cap_calloc_wrap0(void) { return captured(c_calloc_wrap0); }
static int cap_aligned_3(void) { return captured(c_aligned_3); }
static int cap_posix_huge_align(void) { return captured(c_posix_huge_align); }
static int cap_posix_24(void) { return captured(c_posix_24); }
static int cap_realloc_plain_max(void) { return captured(c_realloc_max); }
static int cap_pvalloc_max(void) { return captured(c_pvalloc_max); }
static int cap_zero_inner(void)
{
	void *volatile a = malloc(zero_sz);
	int ok = a && domain_of(a) == cap1;
	free(a);
	return ok ? 0 : bad("malloc(0) not captured");
}
static int cap_malloc_zero(void) { return captured(cap_zero_inner); }

#define ROWS(X) \
	/* domain_create */ \
	X("domain_create: name of 63 bytes", FINE, create_name63) \
	X("domain_create: name of 64 bytes", ERR(EINVAL), create_name64) \
	X("domain_create: 64 bytes, no NUL, then a PROT_NONE page", ERR(EINVAL), create_name_unterminated) \
	X("domain_create: flags 0x10", ERR(EINVAL), create_flags16) \
	X("domain_create: flags 0x80000000", ERR(EINVAL), create_flags_top) \
	X("domain_create: flags ~0", ERR(EINVAL), create_flags_all) \
	X("domain_create: NULL name, every other flag", FINE, create_null_name) \
	X("domain_create: DOMAIN_CAPTURE_MALLOC", CAPTURE_CREATE, create_capture) \
	/* domain_destroy */ \
	X("domain_destroy twice", ERR(EINVAL), destroy_twice) \
	X("domain_destroy while this thread is inside", ERR(EBUSY), destroy_inside) \
	X("domain_destroy while another thread is inside", ERR(EBUSY), destroy_while_other_thread_inside) \
	/* domain_enter, domain_exit */ \
	X("domain_enter: access 0", ERR(EINVAL), enter_0) \
	X("domain_enter: access RDONLY|RDWR", ERR(EINVAL), enter_3) \
	X("domain_enter: access -1", ERR(EINVAL), enter_neg) \
	X("domain_enter: access INT_MIN", ERR(EINVAL), enter_min) \
	X("domain_enter: access INT_MAX", ERR(EINVAL), enter_max) \
	X("domain_exit never entered", ERR(EPERM), exit_never_entered) \
	X("domain_exit twice after one enter", ERR(EPERM), exit_twice) \
	X("domain_exit once more than 3 nested enters", ERR(EPERM), exit_after_nest) \
	X("domain_enter past PKALLOC_MAX_NEST", ERR(EOVERFLOW), nest_overflow) \
	X("domain_enter past PKALLOC_MAX_OPEN domains", ERR(ENOMEM), open_overflow) \
	X("domain_exit out of order (d, other in; d, other out)", FINE, exit_out_of_order) \
	X("domain_exit by a thread that is not inside", ERR(EPERM), cross_thread_exit) \
	X("a thread ends inside; exit here after it", FINE, thread_ends_inside) \
	/* domain_malloc, domain_calloc, domain_aligned_alloc */ \
	X("domain_malloc(SIZE_MAX)", ERR(ENOMEM), dmalloc_max) \
	X("domain_malloc(SIZE_MAX / 2 + 1)", ERR(ENOMEM), dmalloc_half) \
	X("domain_malloc(PKALLOC_RESERVATION)", ERR(ENOMEM), dmalloc_reservation) \
	X("domain_malloc(reservation - guards)", ERR(ENOMEM), dmalloc_limit) \
	X("domain_malloc(0) twice", FINE, dmalloc_zero) \
	X("domain_calloc(SIZE_MAX, 2)", ERR(ENOMEM), dcalloc_ovf) \
	X("domain_calloc(2^32, 2^32): wraps to 0", ERR(ENOMEM), dcalloc_wrap0) \
	X("domain_calloc(SIZE_MAX / 2 + 1, 2)", ERR(ENOMEM), dcalloc_ovf_half) \
	X("domain_calloc(SIZE_MAX, 1)", ERR(ENOMEM), dcalloc_huge) \
	X("domain_calloc(0, SIZE_MAX) and (SIZE_MAX, 0)", FINE, dcalloc_zero) \
	X("domain_aligned_alloc: alignment 0", ERR(EINVAL), daligned_0) \
	X("domain_aligned_alloc: alignment 3", ERR(EINVAL), daligned_3) \
	X("domain_aligned_alloc: alignment 24", ERR(EINVAL), daligned_24) \
	X("domain_aligned_alloc: alignment SIZE_MAX", ERR(EINVAL), daligned_max) \
	X("domain_aligned_alloc: alignment 2^63", ERR(ENOMEM), daligned_top) \
	X("domain_aligned_alloc: alignment PKALLOC_RESERVATION", ERR(ENOMEM), daligned_res) \
	X("domain_aligned_alloc: size SIZE_MAX", ERR(ENOMEM), daligned_huge_size) \
	X("domain_aligned_alloc: alignment 1", FINE, daligned_1) \
	X("domain_aligned_alloc: size 0", FINE, daligned_zero_size) \
	X("domain_aligned_alloc: alignment 2 MiB", FINE, daligned_2m) \
	/* domain_realloc */ \
	X("domain_realloc(d, secret, SIZE_MAX): secret kept", FINE, drealloc_max) \
	X("domain_realloc(d, secret, PKALLOC_RESERVATION): secret kept", FINE, drealloc_res) \
	X("domain_realloc(d, p, 0)", FINE, drealloc_zero) \
	X("domain_realloc(d, NULL, 0)", FINE, drealloc_null_zero) \
	X("domain_realloc(other, p of d, 4000)", FINE, drealloc_cross) \
	/* domain_free, domain_usable_size, domain_of, domain_name, stats */ \
	X("domain_free(NULL)", FINE, free_null) \
	X("domain_usable_size(NULL)", FINE, usable_null) \
	X("domain_of(NULL)", FINE, of_null) \
	X("domain_of(a handle)", FINE, of_handle) \
	X("domain_name(live)", FINE, name_live) \
	X("domain_stats(d, NULL)", ERR(EINVAL), dstats_null) \
	X("domain_stats(d, &st)", FINE, dstats_live) \
	X("pkalloc_stats(NULL)", ERR(EINVAL), pstats_null) \
	X("pkalloc_install_fault_handler twice", FINE, fault_handler_twice) \
	X("pkalloc_backend", FINE, backend_name)

/* The malloc replacement, and the same inside a capturing domain. */
#define REPLACEMENT_ROWS(X) \
	X("domain_enter past PKALLOC_MAX_CAPTURE capture runs", ERR(EOVERFLOW), capture_overflow) \
	X("malloc(SIZE_MAX)", ERR(ENOMEM), c_malloc_max) \
	X("malloc(0) twice", FINE, c_malloc_zero) \
	X("calloc(SIZE_MAX, 2)", ERR(ENOMEM), c_calloc_ovf) \
	X("calloc(2^32, 2^32): wraps to 0", ERR(ENOMEM), c_calloc_wrap0) \
	X("realloc(plain, SIZE_MAX): plain kept", FINE, c_realloc_max) \
	X("reallocarray(plain, 2^32, 2^32): plain kept", FINE, c_reallocarray_ovf) \
	X("reallocarray(secret, SIZE_MAX, 2): secret kept", FINE, c_reallocarray_domain_ovf) \
	X("realloc(secret, SIZE_MAX): secret kept", FINE, c_realloc_domain_max) \
	X("realloc(domain p, 5000) stays in its domain", FINE, c_realloc_domain) \
	X("realloc(domain p, 0) frees it, NULL", FINE, c_realloc_domain_zero) \
	X("malloc_usable_size(NULL)", FINE, c_usable_null) \
	X("malloc_usable_size(secret)", FINE, c_usable_domain) \
	X("free(NULL)", FINE, c_free_null) \
	X("posix_memalign: alignment 0", FINE, c_posix_0) \
	X("posix_memalign: alignment 1", FINE, c_posix_1) \
	X("posix_memalign: alignment 4", FINE, c_posix_4) \
	X("posix_memalign: alignment 24", FINE, c_posix_24) \
	X("posix_memalign: alignment SIZE_MAX", FINE, c_posix_max) \
	X("posix_memalign: alignment 2^62", FINE, c_posix_huge_align) \
	X("posix_memalign: size SIZE_MAX", FINE, c_posix_huge_size) \
	X("posix_memalign: alignment sizeof(void *), size 0", FINE, c_posix_ok) \
	X("aligned_alloc: alignment 0", ERR(EINVAL), c_aligned_0) \
	X("aligned_alloc: alignment 3", ERR(EINVAL), c_aligned_3) \
	X("aligned_alloc: alignment 24", ERR(EINVAL), c_aligned_24) \
	X("aligned_alloc: alignment SIZE_MAX", ERR(EINVAL), c_aligned_max) \
	X("aligned_alloc: alignment 2^62", ERR(ENOMEM), c_aligned_huge) \
	X("aligned_alloc: size SIZE_MAX", ERR(ENOMEM), c_aligned_huge_size) \
	X("memalign: alignment SIZE_MAX", ERR(EINVAL), c_memalign_max) \
	X("memalign: alignment 2^63 + 1", ERR(EINVAL), c_memalign_top1) \
	X("memalign: alignment 2^63", ERR(ENOMEM), c_memalign_top) \
	X("memalign: alignment 48 (rounded up to 64)", FINE, c_memalign_48) \
	X("memalign: alignment 0", FINE, c_memalign_0) \
	X("pvalloc(SIZE_MAX)", ERR(ENOMEM), c_pvalloc_max) \
	X("pvalloc(SIZE_MAX - 4095): rounding overflows", ERR(ENOMEM), c_pvalloc_edge) \
	X("pvalloc(0): one page", FINE, c_pvalloc_zero) \
	X("valloc(SIZE_MAX)", ERR(ENOMEM), c_valloc_max) \
	X("operator new(SIZE_MAX, nothrow): new-handler once, then NULL", FINE, cxx_new_nothrow) \
	X("operator new(SIZE_MAX): std::bad_alloc", ABORTS(NULL, "std::bad_alloc"), cxx_new_throws) \
	X("operator delete(NULL)", FINE, cxx_delete_null) \
	X("captured malloc(SIZE_MAX)", ERR(ENOMEM), cap_malloc_max) \
	X("captured calloc(SIZE_MAX, 2)", ERR(ENOMEM), cap_calloc_ovf) \
	X("captured calloc(2^32, 2^32)", ERR(ENOMEM), cap_calloc_wrap0) \
	X("captured aligned_alloc: alignment 3", ERR(EINVAL), cap_aligned_3) \
	X("captured posix_memalign: alignment 2^62", FINE, cap_posix_huge_align) \
	X("captured posix_memalign: alignment 24", FINE, cap_posix_24) \
	X("captured realloc(plain, SIZE_MAX): plain kept", FINE, cap_realloc_plain_max) \
	X("captured pvalloc(SIZE_MAX)", ERR(ENOMEM), cap_pvalloc_max) \
	X("captured malloc(0): domain memory", FINE, cap_malloc_zero)

#define ROW_ENTRY(what, outcome, fn) { what, outcome, fn, 0 },
#define REPLACEMENT_ENTRY(what, outcome, fn) { what, outcome, fn, 1 },
static const struct {
	const char *what;
	struct outcome o;
	row_fn *fn;
	int replacement;
} rows[] = {
	ROWS(ROW_ENTRY)
	REPLACEMENT_ROWS(REPLACEMENT_ENTRY)
};

int main(void)
{
	char local[16];
	on_stack = local;
	/* jemalloc's C++ support loads the C++ runtime; pkalloc's operator new
	 * follows the new-handler protocol with it. */
	set_new_handler = (new_handler_fn (*)(new_handler_fn))dlsym(RTLD_DEFAULT,
	                                                          "_ZSt15set_new_handlerPFvvE");

	/* Fixtures. */
	d = domain_create("bad", 0);
	other = domain_create("other", 0);
	CHECK_INT(pkalloc_malloc_replaced(), ==, REPLACED);
	if (REPLACED) {
		cap1 = domain_create("cap1", DOMAIN_CAPTURE_MALLOC);
		cap2 = domain_create("cap2", DOMAIN_CAPTURE_MALLOC);
		CHECK(cap1 && cap2);
	}
	CHECK(d && other);
	/* valgrind has room for about 25 reservations: the open-set limit
	 * row, which needs PKALLOC_MAX_OPEN + 1 more domains, is not tried. */
	for (int i = 0; i <= PKALLOC_MAX_OPEN && !under_valgrind(); i++)
		CHECK((many[i] = domain_create("many", 0)) != NULL);
	secret = domain_malloc(d, sizeof PATTERN);
	big = domain_malloc(d, 100000);
	freed = domain_malloc(d, 3000);          /* a size class no row uses */
	CHECK(secret && big && freed);
	domain_free(freed);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	memcpy(secret, PATTERN, sizeof PATTERN);
	CHECK_OK(domain_exit(d));
	plain = malloc(64);
	CHECK(plain);
	dead = domain_create("dead", 0);
	CHECK(dead);
	dead_ptr = domain_malloc(dead, 32);
	CHECK(dead_ptr);
	CHECK_OK(domain_destroy(dead));
	/* An unterminated name that ends where the memory ends. */
	char *pg = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(pg != MAP_FAILED);
	memset(pg, 'x', 4096);
	CHECK_OK(mprotect(pg + 4096, 4096, PROT_NONE));
	unterminated = pg + 4096 - 64;
	struct domain_stats st;
	CHECK_OK(domain_stats(d, &st));
	char *base = (char *)((uintptr_t)secret & ~(uintptr_t)(PKALLOC_RESERVATION - 1));
	char *lo = base + PKALLOC_GUARD;

	/* 1. Every call that takes a handle, every bad handle: EINVAL. */
	const struct { const char *name; domain_t *h; } handles[] = {
		{ "NULL", NULL },
		{ "0x1000", (domain_t *)(uintptr_t)0x1000 },
		{ "all ones", (domain_t *)UINTPTR_MAX },
		{ "-16", (domain_t *)(UINTPTR_MAX - 15) },
		{ "handle + 1", (domain_t *)((char *)d + 1) },
		{ "handle + 8", (domain_t *)((char *)d + 8) },
		{ "handle + 32000 (an unused record)", (domain_t *)((char *)d + 32000) },
		{ "handle + 65536 (another generation)", (domain_t *)((char *)d + 65536) },
		{ "handle - 16 * 2^28 (below the range)", (domain_t *)((char *)d - ((size_t)16 << 28)) },
		{ "a stack address", (domain_t *)on_stack },
		{ "an ordinary heap block", (domain_t *)plain },
		{ "a domain allocation", (domain_t *)secret },
		{ "destroyed", dead },
	};
	for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
		for (size_t j = 0; j < sizeof handle_calls / sizeof handle_calls[0]; j++) {
			char what[160];
			snprintf(what, sizeof what, "%s on handle %s", handle_calls[j].name,
			         handles[i].name);
			cur_h = handles[i].h;
			run(what, (struct outcome)ERR(EINVAL), handle_calls[j].fn, NULL);
		}

	/* 2. Every call that takes a pointer, every kind of bad pointer. */
	const struct { const char *name; char *p; enum pkind kind; } pointers[] = {
		{ "a stack address", on_stack, FOREIGN },
		{ "a static address", (char *)&tried, FOREIGN },
		{ "a handle", (char *)d, FOREIGN },
		{ "a pointer of a destroyed domain", dead_ptr, DEAD },
		{ "an ordinary heap block", plain, HEAP },
		{ "secret + 1", secret + 1, INSIDE },
		{ "secret + 8", secret + 8, INSIDE },
		{ "big + 4096", big + 4096, INSIDE },
		{ "a freed block", freed, INSIDE },
		{ "jemalloc's metadata at the start", lo, INSIDE },
		{ "past the memory handed out", lo + st.mapped, INSIDE },
		{ "the low guard", base + 64, INSIDE },
		{ "the high guard", base + PKALLOC_RESERVATION - 64, INSIDE },
	};
	for (size_t i = 0; i < sizeof pointers / sizeof pointers[0]; i++)
		for (size_t j = 0; j < sizeof pointer_calls / sizeof pointer_calls[0]; j++) {
			char what[160];
			enum pkind k = pointers[i].kind;
			row_fn *fn = pointer_calls[j].fn;
			if (pointer_calls[j].replacement && !REPLACED)
				continue;
			snprintf(what, sizeof what, "%s(%s)", pointer_calls[j].name, pointers[i].name);
			if (!fn && pointer_calls[j].name[0] == 'd')          /* domain_of */
				fn = k == INSIDE ? p_of_d : p_of_none;
			else if (!fn)                                        /* malloc_usable_size */
				fn = k == HEAP ? p_usable_heap : p_usable_plain_zero;
			cur_p = pointers[i].p;
			run(what, pointer_calls[j].on[k], fn, cur_p);
		}

	/* 3. Single rows. */
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (REPLACED || !rows[i].replacement)
			run(rows[i].what, rows[i].o, rows[i].fn, NULL);

	/* Nothing above disturbed the secret, and it is still closed. */
	CHECK_OK(check_secret());
	CHECK_DENIED(secret, 0);
	CHECK_DENIED(secret, 1);
	printf("bad inputs tried: %u (%u of them in a child that must abort)%s\n", tried, died,
	       REPLACED ? "" : "; the malloc replacement's rows not tried: AddressSanitizer's malloc comes first");
	return 0;
}
