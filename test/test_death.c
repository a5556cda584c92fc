/*
 * Death tests: with no handler installed, touching a closed domain kills
 * the process with SIGSEGV (an outside read, an outside write, a write
 * while entered read-only, and on pku another thread's read while one
 * thread is inside); misuse that the contract makes fatal aborts with one
 * exact "pkalloc:" line.
 */
#include "test.h"

#include <pthread.h>
#include <sys/mman.h>

static domain_t *d;
static char *secret;

static void read_outside(void *arg) { (void)arg; printf("%c", *(volatile char *)secret); }
static void write_outside(void *arg) { (void)arg; *(volatile char *)secret = 'x'; }

static void write_readonly(void *arg)
{
	(void)arg;
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	volatile char c = *(volatile char *)secret;   /* the read is fine */
	*(volatile char *)secret = c;                 /* the write dies */
}

static void *reader(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)*(volatile char *)secret;
}

static void other_thread(void *arg)
{
	(void)arg;
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	pthread_t t;
	pthread_create(&t, NULL, reader, NULL);
	pthread_join(t, NULL);
}

/* The same deaths with the fault report installed. */
static void reported(void (*touch)(void *))
{
	CHECK_OK(pkalloc_install_fault_handler());
	touch(NULL);
}
static void r_read(void *a) { (void)a; reported(read_outside); }
static void r_write(void *a) { (void)a; reported(write_outside); }
static void r_readonly(void *a) { (void)a; reported(write_readonly); }

static char *guard_buf;     /* ordinary memory right below a reservation */
static void overrun(void *a)
{
	(void)a;
	CHECK_OK(pkalloc_install_fault_handler());
	for (size_t i = 0; i < 4096 + 64; i++)
		((volatile char *)guard_buf)[i] = 'x';
}

static void expect_report(void (*fn)(void *), const char *what_fmt, const void *addr,
                          const char *why)
{
	char err[512], want[512], what[128];
	int st = in_child(fn, NULL, err, sizeof err);
	CHECK_KILLED_BY(st, SIGSEGV);
	snprintf(what, sizeof what, what_fmt, (int)last_child);
	snprintf(want, sizeof want, "pkalloc: %s at %p%s\n", what, addr, why);
	if (strcmp(err, want) != 0)
		FAIL("report was \"%s\", expected \"%s\"", err, want);
}

static void programs_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	char line[64];
	int n = snprintf(line, sizeof line, "program's handler: %p\n", si->si_addr);
	if (write(2, line, (size_t)n) < 0)
		_exit(1);
	VALGRIND_ENABLE_ERROR_REPORTING;
	_exit(42);
}

static void with_programs_handler(void)
{
	/* The fault that follows is the test's: under valgrind, not an error
	 * to turn this child's exit status into memcheck's. */
	VALGRIND_DISABLE_ERROR_REPORTING;
	struct sigaction sa = { .sa_sigaction = programs_handler, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	CHECK_OK(pkalloc_install_fault_handler());
}

static void forward_other(void *a)
{
	(void)a;
	with_programs_handler();
	*(volatile int *)(uintptr_t)8 = 1;
}

static void forward_domain(void *a)
{
	(void)a;
	with_programs_handler();
	volatile char c = *(volatile char *)secret;   /* a used load: see probe() */
	(void)c;
}

static void null_deref(void *a)
{
	(void)a;
	CHECK_OK(pkalloc_install_fault_handler());
	*(volatile int *)(uintptr_t)8 = 1;
}

static void *misuse_ptr;
static void free_foreign(void *arg) { (void)arg; domain_free(misuse_ptr); }
static void realloc_foreign(void *arg) { (void)arg; void *r = domain_realloc(d, misuse_ptr, 10); (void)r; }

static void expect_abort(void *ptr, void (*fn)(void *), const char *call, const char *why)
{
	char err[512], want[512];
	misuse_ptr = ptr;
	int st = in_child(fn, NULL, err, sizeof err);
	CHECK_KILLED_BY(st, SIGABRT);
	snprintf(want, sizeof want, "pkalloc: %s(%p): %s\n", call, ptr, why);
	if (strcmp(err, want) != 0)
		FAIL("stderr was \"%s\", expected \"%s\"", err, want);
}

int main(void)
{
	d = domain_create("death", 0);
	CHECK(d);
	secret = domain_malloc(d, 32);
	CHECK(secret);

	CHECK_KILLED_BY(in_child(read_outside, NULL, NULL, 0), SIGSEGV);
	CHECK_KILLED_BY(in_child(write_outside, NULL, NULL, 0), SIGSEGV);
	CHECK_KILLED_BY(in_child(write_readonly, NULL, NULL, 0), SIGSEGV);
	if (on_pku())
		CHECK_KILLED_BY(in_child(other_thread, NULL, NULL, 0), SIGSEGV);
	else
		CHECK_EXITED_OK(in_child(other_thread, NULL, NULL, 0));   /* process-wide */

	/* With the report: one exact line, then the same death. */
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));      /* make sure it holds a key */
	CHECK_OK(domain_exit(d));
	struct domain_stats ds;
	CHECK_OK(domain_stats(d, &ds));
	char why[64], why_ro[64];
	if (on_pku()) {
		snprintf(why, sizeof why, ", not entered (pkey %d)", ds.key);
		snprintf(why_ro, sizeof why_ro, ", entered read-only (pkey %d)", ds.key);
	} else {
		snprintf(why, sizeof why, ", not entered (page permissions)");
		snprintf(why_ro, sizeof why_ro, ", entered read-only (page permissions)");
	}
	expect_report(r_read, "thread %d read domain \"death\"", secret, why);
	expect_report(r_write, "thread %d wrote domain \"death\"", secret, why);
	expect_report(r_readonly, "thread %d wrote domain \"death\"", secret, why_ro);
	/* A linear overrun from ordinary memory stops in the guard.  The page
	 * below a reservation may be taken by another mapping: try a few
	 * fresh domains until one has it free. */
	char *slot = NULL;
	/* (valgrind places no MAP_FIXED_NOREPLACE mapping there: not under it) */
	for (int i = 0; i < 8 && !slot && !under_valgrind(); i++) {
		domain_t *g = domain_create("guarded", 0);
		CHECK(g);
		char *gp = domain_malloc(g, 16);
		CHECK(gp);
		char *s = (char *)((uintptr_t)gp & ~(uintptr_t)(PKALLOC_RESERVATION - 1));
		guard_buf = mmap(s - 4096, 4096, PROT_READ | PROT_WRITE,
		                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (guard_buf == s - 4096)
			slot = s;
		else if (guard_buf != MAP_FAILED)
			munmap(guard_buf, 4096);     /* an old kernel took it as a hint */
	}
	CHECK(slot || under_valgrind());
	if (slot) {
		expect_report(overrun, "thread %d wrote the guard of domain \"guarded\"", slot, "");
		munmap(guard_buf, 4096);
	}
	/* A program's own SIGSEGV handler still gets every fault: the ones
	 * elsewhere at once, domain faults after the report. */
	char err2[512];
	int st2 = in_child(forward_other, NULL, err2, sizeof err2);
	CHECK(WIFEXITED(st2) && WEXITSTATUS(st2) == 42);
	if (strstr(err2, "pkalloc:") || !strstr(err2, "program's handler: 0x8"))
		FAIL("a fault elsewhere did not go straight to the program's handler: %s", err2);
	st2 = in_child(forward_domain, NULL, err2, sizeof err2);
	CHECK(WIFEXITED(st2) && WEXITSTATUS(st2) == 42);
	char want2[256];
	snprintf(want2, sizeof want2, "program's handler: %p\n", (void *)secret);
	if (under_valgrind())      /* it gives the repeated fault no address */
		snprintf(want2, sizeof want2, "program's handler: ");
	if (strncmp(err2, "pkalloc: thread ", 16) != 0 || !strstr(err2, want2))
		FAIL("a domain fault was not reported and then passed on: %s", err2);
	/* Faults elsewhere are not ours: the default death, no line. */
	char err[256];
	int st = in_child(null_deref, NULL, err, sizeof err);
	CHECK_KILLED_BY(st, SIGSEGV);
	if (strstr(err, "pkalloc:"))
		FAIL("a fault outside domain memory was reported: %s", err);

	int local;
	void *plain = malloc(32);
	expect_abort(&local, free_foreign, "domain_free", "not domain memory");
	expect_abort(plain, free_foreign, "domain_free", "not domain memory");
	expect_abort(secret + 1, free_foreign, "domain_free",
	             "not an allocation of its domain (interior pointer or freed already)");
	expect_abort(secret + 8, free_foreign, "domain_free",
	             "not an allocation of its domain (interior pointer or freed already)");
	char *twice = domain_malloc(d, 16);
	CHECK(twice);
	domain_free(twice);
	expect_abort(twice, free_foreign, "domain_free",
	             "not an allocation of its domain (interior pointer or freed already)");
	/* jemalloc's metadata at the start of the reservation is no allocation. */
	char *meta = (char *)((uintptr_t)secret & ~(uintptr_t)(PKALLOC_RESERVATION - 1)) + PKALLOC_GUARD;
	expect_abort(meta, free_foreign, "domain_free",
	             "not an allocation of its domain (interior pointer or freed already)");
	CHECK_ERR(domain_usable_size(meta), == 0, EINVAL);
	CHECK_ERR(domain_usable_size(secret + 8), == 0, EINVAL);
	expect_abort(&local, realloc_foreign, "domain_realloc", "not domain memory");
	free(plain);

	/* A pointer into a destroyed domain (test_destroyed has the rest). */
	domain_free(secret);
	CHECK_OK(domain_destroy(d));
	expect_abort(secret, free_foreign, "domain_free", "its domain was destroyed");
	return 0;
}
