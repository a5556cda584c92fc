/*
 * A thread that enters a domain from a thread-specific-data destructor
 * while it exits never leaves its open set on pkalloc's thread list:
 * enters in the C library's earlier destructor rounds are cleaned up by
 * pkalloc's next round, and in the last round (PTHREAD_DESTRUCTOR_ITERATIONS),
 * after pkalloc's destructor, domain_enter fails with EPERM.  Afterwards
 * the domain can be destroyed, and the threads that reuse the dead
 * threads' stacks (and TLS) enter and leave domains while destroys and
 * evictions scan the list, without reading a dead thread's set.
 */
#include "test.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

static domain_t *d;
static pthread_key_t late_key;

/* What the destructor saw, per round (1-based), and how it behaved. */
static int result[PTHREAD_DESTRUCTOR_ITERATIONS + 1], err[PTHREAD_DESTRUCTOR_ITERATIONS + 1];
static int enter_from;             /* first round to enter in */
static int stay_inside;            /* do not exit what was entered */
static int entered_before;         /* the thread entered d while it ran */

static void late(void *v)
{
	int round = (int)(intptr_t)v;
	if (round >= enter_from) {
		errno = 0;
		result[round] = domain_enter(d, DOMAIN_RDWR);
		err[round] = errno;
		if (result[round] == 0 && !stay_inside)
			CHECK_OK(domain_exit(d));
	}
	if (round < PTHREAD_DESTRUCTOR_ITERATIONS)
		CHECK_INT(pthread_setspecific(late_key, (void *)(intptr_t)(round + 1)), ==, 0);
}

static void *body(void *arg)
{
	(void)arg;
	if (entered_before) {
		CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
		CHECK_OK(domain_exit(d));
	}
	CHECK_INT(pthread_setspecific(late_key, (void *)(intptr_t)1), ==, 0);
	return NULL;
}

static void run_thread(int from, int stay, int before)
{
	memset(result, 0x7f, sizeof result);
	enter_from = from;
	stay_inside = stay;
	entered_before = before;
	pthread_t t;
	CHECK_INT(pthread_create(&t, NULL, body, NULL), ==, 0);
	CHECK_INT(pthread_join(t, NULL), ==, 0);
}

/* Threads on the stacks the dead ones left, and a destroyer and an
 * evictor scanning the list meanwhile. */
static void *churner(void *arg)
{
	domain_t *own = arg;
	CHECK_OK(domain_enter(own, DOMAIN_RDWR));
	CHECK_OK(domain_exit(own));
	return NULL;
}

static void churn(void)
{
	for (int i = 0; i < 20; i++) {
		domain_t *x = domain_create("churn", 0);
		CHECK(x);
		pthread_t t;
		CHECK_INT(pthread_create(&t, NULL, churner, x), ==, 0);
		CHECK_INT(pthread_join(t, NULL), ==, 0);
		CHECK_OK(domain_destroy(x));      /* scans every listed set */
	}
}

int main(void)
{
	alarm(120);       /* a thread list with a cycle would hang the scans */
	/* pkalloc first: its destructor's key comes before ours in a round. */
	CHECK(strcmp(pkalloc_backend(), "none") != 0);
	CHECK_INT(pthread_key_create(&late_key, late), ==, 0);
	const int last = PTHREAD_DESTRUCTOR_ITERATIONS;

	/* Enters in every round, staying inside: all but the last work (and
	 * are left by pkalloc's next round); the last is refused. */
	d = domain_create("late", 0);
	CHECK(d);
	for (int before = 0; before <= 1; before++) {
		run_thread(1, 1, before);
		for (int r = 1; r < last; r++)
			if (result[r] != 0)
				FAIL("round %d (entered before: %d): domain_enter failed: %s", r, before,
				     strerror(err[r]));
		if (result[last] != -1 || err[last] != EPERM)
			FAIL("last round (entered before: %d): domain_enter gave %d, errno %d (%s); expected EPERM",
			     before, result[last], err[last], strerror(err[last]));
		churn();
	}
	/* Nobody is inside d: the dead threads are off the list. */
	CHECK_OK(domain_destroy(d));

	/* Only the last round, entering and leaving at once: refused too,
	 * and the list stays whole for the threads that reuse the stack. */
	d = domain_create("late", 0);
	CHECK(d);
	for (int i = 0; i < 5; i++) {
		run_thread(last, 0, i & 1);
		CHECK_INT(result[last], ==, -1);
		CHECK_INT(err[last], ==, EPERM);
		churn();
	}
	CHECK_OK(domain_destroy(d));
	return 0;
}
