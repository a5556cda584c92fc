/*
 * Death tests: with no handler installed, touching a closed domain kills
 * the process with SIGSEGV (an outside read, an outside write, a write
 * while entered read-only, and on pku another thread's read while one
 * thread is inside); misuse that the contract makes fatal aborts with one
 * exact "pkalloc:" line.
 */
#include "test.h"

#include <pthread.h>

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

	/* A pointer into a destroyed domain is no longer domain memory. */
	domain_free(secret);
	CHECK_OK(domain_destroy(d));
	expect_abort(secret, free_foreign, "domain_free", "not domain memory");
	return 0;
}
