/*
 * PKALLOC_STRICT=1: when every key is pinned, entering (or allocating in)
 * a domain that would have to share a key fails with EBUSY instead, and
 * no domain ever shares.
 */
#include "test.h"

#include <pthread.h>

enum { THREADS = 20 };
static domain_t *dom[THREADS];
static int result[THREADS];
static pthread_barrier_t in, out;

static void *enter_and_wait(void *arg)
{
	int i = (int)(intptr_t)arg;
	errno = 0;
	result[i] = domain_enter(dom[i], DOMAIN_RDWR) == 0 ? 0 : errno;
	pthread_barrier_wait(&in);
	pthread_barrier_wait(&out);
	if (result[i] == 0)
		CHECK_OK(domain_exit(dom[i]));
	return NULL;
}

int main(void)
{
	setenv("PKALLOC_STRICT", "1", 1);    /* read once, at the first call */
	if (!on_pku())
		skip("the shared key pool exists only on the pku backend");
	for (int i = 0; i < THREADS; i++)
		CHECK(dom[i] = domain_create("strict", 0));
	pthread_barrier_init(&in, NULL, THREADS + 1);
	pthread_barrier_init(&out, NULL, THREADS + 1);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, enter_and_wait, (void *)(intptr_t)i);
	pthread_barrier_wait(&in);
	int ok = 0, busy = 0;
	for (int i = 0; i < THREADS; i++) {
		if (result[i] == 0)
			ok++;
		else if (result[i] == EBUSY)
			busy++;
		else
			FAIL("thread %d: domain_enter failed with %s", i, strerror(result[i]));
	}
	struct pkalloc_stats st;
	CHECK_OK(pkalloc_stats(&st));
	fprintf(stderr, "strict: %d entered, %d refused with EBUSY, %u keys\n", ok, busy, st.keys_owned);
	CHECK_INT(ok, ==, (int)st.keys_owned);
	CHECK_INT(busy, ==, THREADS - ok);
	CHECK_INT(busy, >=, 1);
	CHECK_INT(st.shared_entries, ==, 0);
	/* Allocating in a keyless domain needs a key too: EBUSY as well. */
	domain_t *extra = domain_create("extra", 0);
	if (extra) {
		void *p;
		CHECK_ERR(p = domain_malloc(extra, 16), == NULL, EBUSY);
		(void)p;
	} else {
		CHECK_INT(errno, ==, EBUSY);
	}
	pthread_barrier_wait(&out);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* Keys are free again: everything works. */
	if (!extra)
		CHECK(extra = domain_create("extra", 0));
	void *p = domain_malloc(extra, 16);
	CHECK(p);
	domain_free(p);
	CHECK_OK(domain_destroy(extra));
	for (int i = 0; i < THREADS; i++)
		CHECK_OK(domain_destroy(dom[i]));
	return 0;
}
