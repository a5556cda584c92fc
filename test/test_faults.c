/*
 * Resource faults: every OS call a scripted workload makes through the
 * protection layer (mmap, mprotect, madvise, mlock, pkey_alloc,
 * pkey_mprotect) is made to fail in turn, in a child of its own; every
 * range call once more failing after its first page; and every protection
 * or lock call once more together with the call after it.  The public
 * call that met the failure must return the documented error (or die
 * with a documented "pkalloc:" line where the contract says so), every
 * secret made before must read back intact, every closed domain must
 * still fault on every page, the step must succeed when tried again, and
 * the rest of the workload must run to its end.  Needs a build
 * configured with --enable-fault-injection (make check-faults).
 */
#include "test.h"
#include "inject.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>

/* Purge freed pages at once: jemalloc's time-based decay would make the
 * number of madvise calls depend on the clock. */
const char *malloc_conf = "dirty_decay_ms:0,muzzy_decay_ms:0";

static const char *const kind_name[INJECT_KINDS] = {
	"mmap", "mprotect", "madvise", "mlock", "pkey_alloc", "pkey_mprotect",
	"memfd_secret", "ftruncate",
};

/* ---- The workload --------------------------------------------------------- */

enum op {
	CREATE,          /* dom a = domain_create(name, flags n) */
	DESTROY,         /* domain_destroy(dom a): its secrets go */
	ALLOC,           /* secret s = domain_malloc(dom a, n) */
	CALLOC,          /* secret s = domain_calloc(dom a, 1, n) */
	ALIGNED,         /* secret s = domain_aligned_alloc(dom a, 4096, n) */
	REALLOC,         /* secret s = domain_realloc(its domain, s, n) */
	MOVE,            /* secret s = domain_realloc(dom a, s, n): to another domain */
	FREE,            /* domain_free(s) */
	PLAIN_FREE,      /* free(s) */
	PLAIN_REALLOC,   /* realloc(s, n): stays in its domain */
	PLAIN_REALLOC0,  /* realloc(s, 0): frees s */
	ENTER,           /* domain_enter(dom a, access n) */
	EXIT,            /* domain_exit(dom a) */
	FILL,            /* write secret s's pattern, from inside */
	ORDINARY,        /* secret s = malloc(n) outside every domain, filled */
	CAPTURE,         /* secret s = malloc(n) inside capturing dom a */
	CAPTURE_MOVE,    /* secret s (ordinary) = realloc(s, n) inside dom a */
	THREAD,          /* a thread enters dom a, reads secret s, ends inside */
	VERIFY,          /* check every secret and every closed page */
	READ,            /* read secret s back from inside dom a (read-only) */
};

static const char *const op_name[] = {
	"domain_create", "domain_destroy", "domain_malloc", "domain_calloc",
	"domain_aligned_alloc", "domain_realloc", "domain_realloc (to another domain)",
	"domain_free", "free", "realloc", "realloc(p, 0)", "domain_enter", "domain_exit",
	"fill", "malloc (ordinary)", "malloc (captured)", "realloc (captured move)",
	"thread ending inside", "verify", "read back inside",
};

struct step {
	enum op op;
	int a, s;
	size_t n;
};

#define RW DOMAIN_RDWR
#define RO DOMAIN_RDONLY

static const struct step script[] = {
	{ CREATE, 0, 0, 0 },
	{ CREATE, 1, 0, DOMAIN_MLOCK },
	{ ALLOC, 0, 0, 16 },
	{ CALLOC, 0, 1, 4096 },
	{ ALIGNED, 0, 2, 70000 },
	{ ALLOC, 0, 3, 1 << 20 },
	{ ALLOC, 1, 4, 64 },
	{ ALLOC, 1, 5, 20000 },
	{ ALLOC, 1, 6, 300000 },
	{ ENTER, 0, 0, RW },
	{ FILL, 0, 0, 0 }, { FILL, 0, 1, 0 }, { FILL, 0, 2, 0 }, { FILL, 0, 3, 0 },
	{ EXIT, 0, 0, 0 },
	{ ENTER, 1, 0, RW },
	{ FILL, 0, 4, 0 }, { FILL, 0, 5, 0 }, { FILL, 0, 6, 0 },
	{ EXIT, 1, 0, 0 },
	{ VERIFY, 0, 0, 0 },
	{ REALLOC, 0, 0, 5000 },        /* moves to a larger size class */
	{ REALLOC, 0, 2, 200000 },      /* grows */
	{ REALLOC, 0, 3, 10000 },       /* shrinks from a large class to a small one */
	{ MOVE, 1, 1, 6000 },           /* into the locked domain */
	{ REALLOC, 0, 6, 3 << 20 },     /* the locked domain grows: new pages to lock */
	{ ENTER, 0, 0, RO },
	{ ENTER, 0, 0, RW },            /* the upgrade changes the permissions */
	{ ALLOC, 0, 7, 48 },            /* from inside */
	{ FILL, 0, 7, 0 },
	{ EXIT, 0, 0, 0 },
	{ EXIT, 0, 0, 0 },
	{ CREATE, 2, 0, DOMAIN_WIPEONFORK | DOMAIN_CAPTURE_MALLOC },
	{ ORDINARY, 0, 10, 3000 },
	{ ENTER, 2, 0, RW },
	{ CAPTURE, 2, 8, 50 },
	{ FILL, 0, 8, 0 },
	{ CAPTURE, 2, 9, 40000 },
	{ FILL, 0, 9, 0 },
	{ PLAIN_REALLOC, 0, 9, 100000 },
	{ CAPTURE_MOVE, 2, 10, 3000 },
	{ EXIT, 2, 0, 0 },
	{ VERIFY, 0, 0, 0 },
	{ FREE, 0, 7, 0 },
	{ PLAIN_FREE, 0, 0, 0 },
	{ PLAIN_REALLOC0, 0, 5, 0 },
	{ THREAD, 0, 2, 0 },
	{ DESTROY, 1, 0, 0 },
	{ CREATE, 3, 0, 0 },
	{ ALLOC, 3, 11, 128 },
	{ ENTER, 3, 0, RW },
	{ FILL, 0, 11, 0 },
	{ EXIT, 3, 0, 0 },
	{ VERIFY, 0, 0, 0 },
	/* DOMAIN_SECRETMEM: its memfd, commits of small and large extents,
	 * the decommit of a freed large block (decay 0), a commit again. */
	{ CREATE, 4, 0, DOMAIN_SECRETMEM },
	{ ALLOC, 4, 12, 64 },
	{ ALLOC, 4, 13, 1 << 20 },
	{ ENTER, 4, 0, RW },
	{ FILL, 0, 12, 0 }, { FILL, 0, 13, 0 },
	{ EXIT, 4, 0, 0 },
	{ VERIFY, 0, 0, 0 },
	{ READ, 4, 12, 0 }, { READ, 4, 13, 0 },
	{ FREE, 0, 13, 0 },
	{ REALLOC, 0, 12, 300000 },
	{ VERIFY, 0, 0, 0 },
	{ READ, 4, 12, 0 },
	{ DESTROY, 4, 0, 0 },
	{ DESTROY, 2, 0, 0 },
	{ DESTROY, 0, 0, 0 },
	{ DESTROY, 3, 0, 0 },
};
#define NSTEPS (int)(sizeof script / sizeof script[0])
#define NDOM 5
#define NSEC 14

static const char *const dom_name[NDOM] = { "plain", "locked", "capture", "late", "secret" };
static int have_secretmem;          /* the kernel has memfd_secret */

/* Domain 4 is DOMAIN_SECRETMEM, and secrets 12 and up live in it: their
 * steps run only where the kernel has memfd_secret. */
static int secretmem_step(const struct step *st)
{
	switch (st->op) {
	case FILL: case FREE: case REALLOC: return st->s >= 12;
	case VERIFY: return 0;
	default: return st->a == 4;
	}
}

/* What the workload has made so far (in the child running it). */
static domain_t *dom[NDOM];
static int depth[NDOM];             /* this thread's open enters */
static struct secret {
	int dom;                        /* -1: ordinary memory */
	char *p;
	size_t size;                    /* bytes that hold the pattern */
	int live, filled;
} sec[NSEC];

static unsigned char pattern_byte(int s, size_t i)
{
	return (unsigned char)(s * 37 + 1 + i * 31);
}

/* Read memory whatever its protection: /proc/self/mem ignores page
 * permissions and PKRU, so checking makes no pkalloc call and no OS call
 * that pkalloc counts, and changes nothing. */
static int mem_fd = -1;
static int read_back(const char *p, size_t n, unsigned char *out)
{
	if (mem_fd < 0 && (mem_fd = open("/proc/self/mem", O_RDONLY)) < 0)
		FAIL("open /proc/self/mem: %s", strerror(errno));
	return pread(mem_fd, out, n, (off_t)(uintptr_t)p) == (ssize_t)n;
}

static int holds_pattern(int s, const char *p, size_t n)
{
	static unsigned char buf[1 << 20];
	for (size_t off = 0; off < n; off += sizeof buf) {
		size_t len = n - off < sizeof buf ? n - off : sizeof buf;
		if (!read_back(p + off, len, buf))
			return 0;
		for (size_t i = 0; i < len; i++)
			if (buf[i] != pattern_byte(s, off + i))
				return 0;
	}
	return 1;
}

static char where[120];    /* the step being checked, for messages */

/* What a run tells the parent, in memory shared with it. */
enum result { NOT_HIT, CLEAN_ERROR, ABSORBED };
struct shared {
	unsigned long calls;            /* the clean run: calls counted */
	unsigned long secrets_checked, pages_probed;    /* by every run */
	unsigned char kind[INJECT_TRACE];
	int step;                       /* the step running */
	enum result result;
	int hit_step, err;
};
static struct shared *sh;

/* Every secret reads back intact and sits in its domain; every page of a
 * domain this thread is not inside faults (no thread is inside any other),
 * the unused space above it included. */
static void verify(void)
{
	char *lo[NDOM] = { 0 };
	for (int s = 0; s < NSEC; s++) {
		struct secret *x = &sec[s];
		if (!x->live)
			continue;
		domain_t *want = x->dom < 0 ? NULL : dom[x->dom];
		if (domain_of(x->p) != want)
			FAIL("%s: secret %d is not in its domain", where, s);
		/* /proc/self/mem cannot read DOMAIN_SECRETMEM pages, by design:
		 * the READ steps check those from inside. */
		if (x->filled && x->dom != 4 && !holds_pattern(s, x->p, x->size))
			FAIL("%s: secret %d (%zu bytes) lost its content", where, s, x->size);
		sh->secrets_checked++;
		if (x->dom >= 0)
			lo[x->dom] = (char *)((uintptr_t)x->p & ~(uintptr_t)(PKALLOC_RESERVATION - 1)) +
			             PKALLOC_GUARD;
	}
	for (int i = 0; i < NDOM; i++) {
		struct domain_stats st;
		if (!dom[i] || depth[i] || !lo[i])
			continue;
		CHECK_OK(domain_stats(dom[i], &st));
		/* Up to 2 MiB above: jemalloc's metadata blocks are 2 MiB-aligned. */
		for (size_t off = 0; off < st.mapped + (2u << 20) + 16 * 4096; off += 4096)
		{
			if (!probe(lo[i] + off, 0).hit)
				FAIL("%s: domain %s is closed, but its page at +%#zx (of %#zx) is readable",
				     where, dom_name[i], off, st.mapped);
			sh->pages_probed++;
		}
	}
}

/* After a free or a destroy: the block no longer holds its secret. */
static void gone(int s, const char *p, size_t n)
{
	if (holds_pattern(s, p, n))
		FAIL("%s: secret %d still readable in memory after it was released", where, s);
}

static void *thread_body(void *arg)
{
	const struct step *st = arg;
	if (domain_enter(dom[st->a], DOMAIN_RDWR) != 0)
		return (void *)(intptr_t)errno;
	(void)*(volatile char *)sec[st->s].p;
	return NULL;                    /* ends inside: pkalloc must close it */
}

/* Run one step; 0 or the errno of its failure. */
static int do_step(const struct step *st)
{
	struct secret *x = &sec[st->s];
	char *p;
	errno = 0;
	switch (st->op) {
	case CREATE:
		if (!(dom[st->a] = domain_create(dom_name[st->a], (unsigned)st->n)))
			return errno;
		return 0;
	case DESTROY:
		if (domain_destroy(dom[st->a]) != 0)
			return errno;
		for (int s = 0; s < NSEC; s++)
			if (sec[s].live && sec[s].dom == st->a) {
				sec[s].live = 0;
				gone(s, sec[s].p, sec[s].size);
			}
		dom[st->a] = NULL;
		return 0;
	case ALLOC:
	case CALLOC:
	case ALIGNED:
	case CAPTURE:
		p = st->op == ALLOC ? domain_malloc(dom[st->a], st->n) :
		    st->op == CALLOC ? domain_calloc(dom[st->a], 1, st->n) :
		    st->op == ALIGNED ? domain_aligned_alloc(dom[st->a], 4096, st->n) :
		    malloc(st->n);
		if (!p)
			return errno;
		*x = (struct secret){ .dom = st->a, .p = p, .size = st->n, .live = 1 };
		return 0;
	case ORDINARY:
		if (!(p = malloc(st->n)))
			return errno;
		*x = (struct secret){ .dom = -1, .p = p, .size = st->n, .live = 1, .filled = 1 };
		for (size_t i = 0; i < st->n; i++)
			p[i] = (char)pattern_byte(st->s, i);
		return 0;
	case REALLOC:
	case MOVE:
	case PLAIN_REALLOC:
	case CAPTURE_MOVE:
		p = st->op == REALLOC ? domain_realloc(dom[x->dom], x->p, st->n) :
		    st->op == MOVE ? domain_realloc(dom[st->a], x->p, st->n) :
		    realloc(x->p, st->n);
		if (!p)
			return errno;
		x->p = p;
		if (st->n < x->size)
			x->size = st->n;
		if (st->op == MOVE || st->op == CAPTURE_MOVE)
			x->dom = st->a;
		return 0;
	case FREE:
	case PLAIN_FREE:
	case PLAIN_REALLOC0:
		p = x->p;
		if (st->op == FREE)
			domain_free(p);
		else if (st->op == PLAIN_FREE)
			free(p);
		else if (realloc(p, 0) != NULL)
			FAIL("%s: realloc(p, 0) returned a block", where);
		x->live = 0;
		gone(st->s, p, x->size);
		return 0;
	case ENTER:
		if (domain_enter(dom[st->a], (int)st->n) != 0)
			return errno;
		depth[st->a]++;
		return 0;
	case EXIT:
		if (domain_exit(dom[st->a]) != 0)
			return errno;
		depth[st->a]--;
		return 0;
	case FILL:
		for (size_t i = 0; i < x->size; i++)
			x->p[i] = (char)pattern_byte(st->s, i);
		x->filled = 1;
		return 0;
	case THREAD: {
		pthread_t t;
		void *r;
		if (pthread_create(&t, NULL, thread_body, (void *)st) != 0)
			FAIL("pthread_create");
		pthread_join(t, &r);
		return (int)(intptr_t)r;
	}
	case VERIFY:
		verify();
		return 0;
	case READ: {
		if (domain_enter(dom[st->a], DOMAIN_RDONLY) != 0)
			return errno;
		size_t i = 0;
		while (i < x->size && (unsigned char)x->p[i] == pattern_byte(st->s, i))
			i++;
		if (domain_exit(dom[st->a]) != 0)
			FAIL("%s: domain_exit: %s", where, strerror(errno));
		if (i < x->size)
			FAIL("%s: secret %d (%zu bytes) lost its content at byte %zu", where, st->s, x->size, i);
		sh->secrets_checked++;
		return 0;
	}
	}
	return 0;
}

/*
 * The errno the contract gives for a step that met a failed OS call with
 * errno e, or -1 where the call has no error to give (it must absorb the
 * failure or die with a documented line).
 */
static int documented_errno(enum op op, int e)
{
	switch (op) {
	case CREATE:
		return e == ENOSYS ? ENOTSUP : e;   /* no memfd_secret (DOMAIN_SECRETMEM) */
	case ALLOC: case CALLOC: case ALIGNED: case REALLOC: case MOVE:
	case ENTER: case THREAD: case READ:
		return e;               /* mlock's own errno too (pkalloc.h, DOMAIN_MLOCK) */
	case CAPTURE: case CAPTURE_MOVE: case PLAIN_REALLOC:
		return ENOMEM;          /* the C library's calls: always ENOMEM */
	default:
		return -1;
	}
}

/* ---- One run, in a child ------------------------------------------------------ */

static unsigned long fail_at;
static int fail_err;
static unsigned fail_flags;

/* The errno call n was made to fail with (src/inject.c picks the usual
 * one of its kind when none is given). */
static int injected_errno(unsigned long n)
{
	if (fail_err)
		return fail_err;
	int kind = pkalloc_inject_kind(n);
	return kind == INJECT_PKEY_ALLOC ? ENOSPC : kind == INJECT_MEMFD_SECRET ? ENOSYS : ENOMEM;
}

static void workload(void *arg)
{
	(void)arg;
	pkalloc_inject_arm(fail_at, fail_err, fail_flags);
	for (int i = 0; i < NSTEPS; i++) {
		const struct step *st = &script[i];
		if (secretmem_step(st) && !have_secretmem)
			continue;
		sh->step = i;
		snprintf(where, sizeof where, "call %lu failing, step %d (%s)%s", fail_at, i,
		         op_name[st->op], sh->hit_step >= 0 ? ", after the failure" : "");
		snprintf(test_note, sizeof test_note, "%s", where);
		/* A step that met a failure is tried again until it goes through:
		 * once the armed calls are past, nothing fails any more. */
		for (int tries = 0;; tries++) {
			int fired = pkalloc_inject_fired();
			int err = do_step(st);
			if (pkalloc_inject_fired() == fired) {
				if (err)
					FAIL("%s: failed with no fault injected: %s", where, strerror(err));
				break;
			}
			/* The errno of either failure this step met (TWICE: two). */
			int want = -1;
			for (int f = fired; f < pkalloc_inject_fired() && want != err; f++)
				want = documented_errno(st->op, injected_errno(fail_at + (unsigned long)f));
			if (err && want < 0)
				FAIL("%s: failed (%s), but it has no error to report", where, strerror(err));
			if (err && err != want)
				FAIL("%s: errno %d (%s), documented %d (%s)", where, err, strerror(err),
				     want, strerror(want));
			if (sh->hit_step < 0) {
				sh->hit_step = i;
				sh->result = err ? CLEAN_ERROR : ABSORBED;
			}
			verify();
			if (!err)
				break;
			if (tries == 2)
				FAIL("%s: still failing after the injected faults", where);
		}
	}
	if (fail_at == 0) {
		sh->calls = pkalloc_inject_calls();
		for (unsigned long n = 1; n <= sh->calls && n <= INJECT_TRACE; n++)
			sh->kind[n - 1] = (unsigned char)pkalloc_inject_kind(n);
	} else if (!pkalloc_inject_fired()) {
		FAIL("call %lu never came: the workload is not deterministic", fail_at);
	}
	struct pkalloc_stats ps;
	CHECK_OK(pkalloc_stats(&ps));
	CHECK_INT(ps.domains, ==, 0);
	CHECK_INT(ps.allocated, ==, 0);
}

/* ---- The parent: every call, every way ------------------------------------ */

/* The documented fatal lines an OS failure may end in (pkalloc(3),
 * DIAGNOSTICS), with the kind of call behind each. */
static const struct { const char *call, *why; enum inject_kind kind; } fatal_lines[] = {
	{ "mprotect", "cannot open a domain", INJECT_MPROTECT },
	{ "mprotect", "cannot close a domain", INJECT_MPROTECT },
	{ "domain_exit", "cannot close the domain", INJECT_MPROTECT },
	{ "mprotect", "cannot change a shared domain's permissions", INJECT_MPROTECT },
	{ "pkey_mprotect", "cannot tag a domain with its key", INJECT_PKEY_MPROTECT },
	{ "mprotect", "cannot restore a domain's permissions after a failed change", INJECT_MPROTECT },
};
#define NFATAL (sizeof fatal_lines / sizeof fatal_lines[0])

/* The documented line err is, or -1. */
static int fatal_line(const char *err)
{
	for (size_t i = 0; i < NFATAL; i++) {
		char head[64];
		snprintf(head, sizeof head, "pkalloc: %s(0x", fatal_lines[i].call);
		const char *close = strstr(err, "): ");
		if (strncmp(err, head, strlen(head)) != 0 || !close)
			continue;
		if (strncmp(close + 3, fatal_lines[i].why, strlen(fatal_lines[i].why)) != 0)
			continue;
		/* The errno value in hand, by name: " (ENOMEM)". */
		const char *e = close + 3 + strlen(fatal_lines[i].why);
		if (strncmp(e, " (E", 3) != 0)
			continue;
		e += 3;
		while ((*e >= 'A' && *e <= 'Z') || (*e >= '0' && *e <= '9'))
			e++;
		if (strcmp(e, ")\n") == 0)
			return (int)i;
	}
	return -1;
}

struct tally {
	unsigned runs, clean, absorbed, died;
};
static struct tally by_kind[INJECT_KINDS], by_mode[3], by_step[NSTEPS];
static unsigned by_fatal[NFATAL];

static int mode_of(unsigned flags)
{
	return flags & INJECT_TWICE ? 2 : flags & INJECT_PARTIAL ? 1 : 0;
}

/* The clean run's calls, by kind. */
static unsigned char *kinds;
static unsigned long total;

static void one_run(unsigned long n, int err, unsigned flags, int kind)
{
	char out[2048];
	fail_at = n;
	fail_err = err;
	fail_flags = flags;
	sh->result = NOT_HIT;
	sh->step = sh->hit_step = -1;
	int st = in_child(workload, NULL, out, sizeof out);
	static const char *const mode_name[3] = { "failing", "partly done", "twice in a row" };
	const char *mode = mode_name[mode_of(flags)];
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		if (sh->result == NOT_HIT)
			FAIL("call %lu (%s): the run never met it", n, kind_name[kind]);
		struct tally *t[3] = { &by_kind[kind], &by_mode[mode_of(flags)],
		                       &by_step[sh->hit_step] };
		for (int i = 0; i < 3; i++) {
			t[i]->runs++;
			if (sh->result == CLEAN_ERROR)
				t[i]->clean++;
			else
				t[i]->absorbed++;
		}
		return;
	}
	int line = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT ? fatal_line(out) : -1;
	/* With TWICE, the second failure may be of another kind. */
	int second = flags & INJECT_TWICE && n < total ? kinds[n] : kind;
	if (line < 0 || (fatal_lines[line].kind != (enum inject_kind)kind &&
	                 fatal_lines[line].kind != (enum inject_kind)second))
		FAIL("call %lu (%s, %s, errno %d) in step %d (%s): status %#x, stderr:\n%s", n,
		     kind_name[kind], mode, err, sh->step,
		     sh->step >= 0 ? op_name[script[sh->step].op] : "?", st, out);
	by_fatal[line]++;
	struct tally *t[3] = { &by_kind[kind], &by_mode[mode_of(flags)],
	                       &by_step[sh->step] };
	for (int i = 0; i < 3; i++) {
		t[i]->runs++;
		t[i]->died++;
	}
}

static void report(const char *what, const struct tally *t)
{
	if (t->runs)
		printf("%-36s %6u %12u %9u %9u\n", what, t->runs, t->clean, t->absorbed, t->died);
}

int main(void)
{
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	printf("backend %s\n", pkalloc_backend());     /* set up before any fork */
	int fd = (int)syscall(SYS_memfd_secret, O_CLOEXEC);
	have_secretmem = fd >= 0;
	if (fd >= 0)
		close(fd);
	else
		printf("no memfd_secret (%s): the DOMAIN_SECRETMEM steps are left out\n", strerror(errno));

	/* A clean run counts the calls and their kinds. */
	fail_at = 0;
	CHECK_EXITED_OK(in_child(workload, NULL, NULL, 0));
	total = sh->calls;
	CHECK(total > 0 && total <= INJECT_TRACE);
	kinds = malloc(total);
	CHECK(kinds);
	memcpy(kinds, sh->kind, total);
	unsigned count[INJECT_KINDS] = { 0 };
	for (unsigned long n = 0; n < total; n++)
		count[kinds[n]]++;
	printf("clean run: %lu OS calls:", total);
	for (int k = 0; k < INJECT_KINDS; k++)
		printf(" %s %u", kind_name[k], count[k]);
	printf("\n");

	/* FAULTS_AT=N[p]: run call N alone (p: partly done), in this process. */
	const char *only = getenv("FAULTS_AT");
	if (only) {
		fail_at = strtoul(only, NULL, 10);
		fail_flags = strchr(only, 'p') ? INJECT_PARTIAL : 0;
		workload(NULL);
		return 0;
	}
	/* Each call fails outright; mlock with each of its errors. */
	static const int mlock_errs[] = { EPERM, EAGAIN, ENOMEM };
	for (unsigned long n = 1; n <= total; n++) {
		if (kinds[n - 1] == INJECT_MLOCK)
			for (size_t e = 0; e < 3; e++)
				one_run(n, mlock_errs[e], 0, INJECT_MLOCK);
		else
			one_run(n, 0, 0, kinds[n - 1]);
	}
	/* Each range call does its first page, then fails. */
	for (unsigned long n = 1; n <= total; n++)
		if (kinds[n - 1] != INJECT_MMAP && kinds[n - 1] != INJECT_PKEY_ALLOC)
			one_run(n, 0, INJECT_PARTIAL, kinds[n - 1]);
	/* Each call that changes protection or locks fails, and so does the
	 * next call, which may be the repair or jemalloc's second try. */
	for (unsigned long n = 1; n <= total; n++) {
		if (kinds[n - 1] == INJECT_MLOCK)
			for (size_t e = 0; e < 3; e++)
				one_run(n, mlock_errs[e], INJECT_TWICE, INJECT_MLOCK);
		else if (kinds[n - 1] == INJECT_MPROTECT || kinds[n - 1] == INJECT_PKEY_MPROTECT)
			one_run(n, 0, INJECT_TWICE, kinds[n - 1]);
	}

	/* The tables test/RELIABILITY.md quotes. */
	printf("\n%-36s %6s %12s %9s %9s\n", "failed call", "runs", "clean error", "absorbed",
	       "abort");
	for (int k = 0; k < INJECT_KINDS; k++)
		report(kind_name[k], &by_kind[k]);
	report("all, failing outright", &by_mode[0]);
	report("all, failing after the first page", &by_mode[1]);
	report("protection and lock calls, twice", &by_mode[2]);
	printf("\n%-36s %6s %12s %9s %9s\n", "step that met it", "runs", "clean error", "absorbed",
	       "abort");
	for (int i = 0; i < NSTEPS; i++) {
		char name[48];
		snprintf(name, sizeof name, "%2d %s", i, op_name[script[i].op]);
		report(name, &by_step[i]);
	}
	printf("\n");
	for (size_t i = 0; i < NFATAL; i++)
		if (by_fatal[i])
			printf("abort \"pkalloc: %s(0x...): %s\": %u\n", fatal_lines[i].call,
			       fatal_lines[i].why, by_fatal[i]);
	printf("runs: %u; secrets read back: %lu, none lost; closed pages probed: %lu, "
	       "none readable\n", by_mode[0].runs + by_mode[1].runs + by_mode[2].runs,
	       sh->secrets_checked, sh->pages_probed);
	return 0;
}
