/*
 * Test helpers: assertions that print both values, fault probes, and child
 * processes for death tests.  Exit codes follow automake: 0 pass, 77 skip,
 * 99 hard error; a failed check exits 1.
 */
#ifndef PKALLOC_TEST_H
#define PKALLOC_TEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pkalloc.h"
#include "pkru.h"

/* Under valgrind (make check-valgrind) tests shrink what memcheck cannot
 * host or would take minutes over; without its header, never. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_DISABLE_ERROR_REPORTING
#define VALGRIND_ENABLE_ERROR_REPORTING
#endif

static inline int under_valgrind(void)
{
	return RUNNING_ON_VALGRIND != 0;
}

/* A loop count, a fiftieth of it under valgrind: memcheck spends about
 * a millisecond per MiB on every mprotect, and domains make many. */
static inline int vg_scaled(int n)
{
	return under_valgrind() && n >= 50 ? n / 50 : n;
}

/* Built with ThreadSanitizer (make check-tsan). */
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifndef TEST_TSAN
#define TEST_TSAN 0
#endif

#define FAIL(...) do { \
	fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

#define CHECK(c) do { if (!(c)) FAIL("check failed: %s", #c); } while (0)

#define CHECK_INT(a, op, b) do { \
	long long va_ = (long long)(a), vb_ = (long long)(b); \
	if (!(va_ op vb_)) FAIL("%s %s %s: %lld vs %lld", #a, #op, #b, va_, vb_); } while (0)

#define CHECK_PTR(a, op, b) do { \
	const void *va_ = (a), *vb_ = (b); \
	if (!(va_ op vb_)) FAIL("%s %s %s: %p vs %p", #a, #op, #b, va_, vb_); } while (0)

/* expr must fail (return -1 or NULL per `failed`) with errno e. */
#define CHECK_ERR(expr, failed, e) do { \
	errno = 0; \
	if (!((expr) failed)) FAIL("%s should have failed", #expr); \
	if (errno != (e)) FAIL("%s: errno %d (%s), expected %d (%s)", #expr, \
	                        errno, strerror(errno), (e), strerror(e)); } while (0)

#define CHECK_OK(expr) do { \
	errno = 0; \
	if ((expr) != 0) FAIL("%s failed: %s", #expr, strerror(errno)); } while (0)

static inline void skip(const char *why)
{
	fprintf(stderr, "SKIP: %s\n", why);
	exit(77);
}

/* Built with AddressSanitizer or ThreadSanitizer: their runtime's malloc
 * comes first in the process, ahead of pkalloc's. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZER_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SANITIZER_MALLOC 1
#endif
#endif
#ifndef TEST_SANITIZER_MALLOC
#define TEST_SANITIZER_MALLOC 0
#endif

/* For a program linked with -lpkalloc that needs pkalloc's malloc (capture,
 * free of domain memory): skip in a sanitizer build, where the runtime's
 * malloc comes first and capture is refused.  pkalloc_malloc_replaced()
 * must agree either way: a wrong answer fails here instead of skipping. */
static inline void skip_if_sanitized_malloc(void)
{
	int replaced = pkalloc_malloc_replaced();
	if (TEST_SANITIZER_MALLOC) {
		if (replaced)
			FAIL("pkalloc_malloc_replaced() is 1 under a sanitizer, whose malloc comes first");
		skip("pkalloc_malloc_replaced() is 0: the sanitizer runtime's malloc comes first, "
		     "so DOMAIN_CAPTURE_MALLOC is refused and free cannot take domain memory");
	}
	if (!replaced)
		FAIL("pkalloc_malloc_replaced() is 0 in a program linked with -lpkalloc");
}

static inline int on_pku(void)
{
	return strcmp(pkalloc_backend(), "pku") == 0;
}

/* What a probe saw: no fault, or the signal's si_code and si_pkey. */
struct fault {
	int hit, code, pkey;
	void *addr;
};

static __thread sigjmp_buf probe_jmp;
/* Where a probe's read goes: a load whose value nobody uses is dropped by
 * valgrind's translator, volatile or not, and would never fault there. */
static __thread volatile char probe_sink;
static __thread volatile sig_atomic_t probing;
static __thread struct fault probe_seen;
/* What a test was doing, printed if it dies of an unexpected fault. */
static __thread char test_note[128];

static void probe_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!probing) {
		/* A real fault: say where before dying of it. */
		char line[320];
		int n = snprintf(line, sizeof line, "unexpected SIGSEGV at %p, si_code %d, pkey %d; %s\n",
		                 si->si_addr, si->si_code,
		                 si->si_code == SEGV_PKUERR ? (int)si->si_pkey : -1, test_note);
		if (write(2, line, (size_t)n) < 0)
			_exit(98);
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	probe_seen.hit = 1;
	probe_seen.code = si->si_code;
	probe_seen.pkey = si->si_code == SEGV_PKUERR ? (int)si->si_pkey : -1;
	probe_seen.addr = si->si_addr;
	siglongjmp(probe_jmp, 1);
}

/*
 * Touch one byte (write != 0: a locked or-with-zero, a write that keeps the
 * content) and report whether it faulted.  siglongjmp skips the kernel's
 * PKRU restore, so PKRU is put back by hand.
 */
static inline struct fault probe(void *p, int write)
{
	static int installed;
	if (!installed) {
		struct sigaction sa = { .sa_sigaction = probe_handler, .sa_flags = SA_SIGINFO };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, NULL);
		installed = 1;
	}
	volatile int pku = on_pku();
	volatile uint32_t pkru = pku ? rdpkru() : 0;
	memset(&probe_seen, 0, sizeof probe_seen);
	/* A probe touches memory that may be inaccessible on purpose: not an
	 * error for memcheck to report. */
	VALGRIND_DISABLE_ERROR_REPORTING;
	if (sigsetjmp(probe_jmp, 1) == 0) {
		probing = 1;
		/* In assembly: ThreadSanitizer runs an atomic builtin inside its
		 * runtime, under a lock that a fault there would leave held. */
		if (write)
			__asm__ volatile("lock orb $0, %0" : "+m"(*(volatile char *)p) : : "memory");
		else
			probe_sink = *(volatile char *)p;
	}
	probing = 0;
	VALGRIND_ENABLE_ERROR_REPORTING;
	if (pku)
		wrpkru(pkru);
	return probe_seen;
}

/* The fault a closed domain gives on this backend. */
#define CHECK_DENIED(p, write) do { \
	struct fault f_ = probe((p), (write)); \
	if (!f_.hit) FAIL("%s of %p did not fault", (write) ? "write" : "read", (void *)(p)); \
	if (on_pku() && f_.code != SEGV_PKUERR) \
		FAIL("fault on %p has si_code %d, expected SEGV_PKUERR", (void *)(p), f_.code); \
	if (!on_pku() && f_.code != SEGV_ACCERR) \
		FAIL("fault on %p has si_code %d, expected SEGV_ACCERR", (void *)(p), f_.code); \
} while (0)

#define CHECK_ALLOWED(p, write) do { \
	struct fault f_ = probe((p), (write)); \
	if (f_.hit) FAIL("%s of %p faulted (si_code %d, pkey %d)", \
	                 (write) ? "write" : "read", (void *)(p), f_.code, f_.pkey); \
} while (0)

/* Run fn in a child; return its wait status.  stderr goes to err (if any). */
static pid_t last_child;
static inline int in_child(void (*fn)(void *), void *arg, char *err, size_t errlen)
{
	int fds[2];
	if (pipe(fds) != 0) { perror("pipe"); exit(99); }
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) { perror("fork"); exit(99); }
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], 2);
		alarm(60);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	last_child = pid;
	size_t n = 0;
	char sink[256];
	for (;;) {
		int keep = err && n + 1 < errlen;
		char *dst = keep ? err + n : sink;
		ssize_t r = read(fds[0], dst, keep ? errlen - 1 - n : sizeof sink);
		if (r <= 0)
			break;
		if (keep)
			n += (size_t)r;
	}
	if (err)
		err[n] = '\0';
	close(fds[0]);
	int st;
	if (waitpid(pid, &st, 0) != pid) { perror("waitpid"); exit(99); }
	return st;
}

#define CHECK_KILLED_BY(st, sig) do { \
	int s_ = (st); \
	if (!WIFSIGNALED(s_) || WTERMSIG(s_) != (sig)) \
		FAIL("child should die by signal %d; status %#x (exit %d, signal %d)", (sig), s_, \
		     WIFEXITED(s_) ? WEXITSTATUS(s_) : -1, WIFSIGNALED(s_) ? WTERMSIG(s_) : -1); \
} while (0)

#define CHECK_EXITED_OK(st) do { \
	int s_ = (st); \
	if (!WIFEXITED(s_) || WEXITSTATUS(s_) != 0) \
		FAIL("child failed: status %#x (exit %d, signal %d)", s_, \
		     WIFEXITED(s_) ? WEXITSTATUS(s_) : -1, WIFSIGNALED(s_) ? WTERMSIG(s_) : -1); \
} while (0)

#endif
