/*
 * fork(): outside and inside a domain, read-write and read-only, and while
 * other threads are busy allocating in domains.  The child keeps the
 * forking thread's access exactly, can use every domain, and the parent
 * goes on unchanged.
 */
#include "test.h"

#include <pthread.h>

static domain_t *d;
static char *secret;

static void child_outside(void *arg)
{
	(void)arg;
	CHECK_DENIED(secret, 0);
	CHECK_ERR(domain_exit(d), == -1, EPERM);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	CHECK(strcmp(secret, "forked secret") == 0);
	char *more = domain_malloc(d, 100);
	CHECK(more);
	strcpy(more, "child's");
	domain_free(more);
	CHECK_OK(domain_exit(d));
	CHECK_DENIED(secret, 0);
	domain_t *n = domain_create("child", 0);
	CHECK(n);
	void *p = domain_malloc(n, 10);
	CHECK(p);
	CHECK_DENIED(p, 0);
	domain_free(p);
	CHECK_OK(domain_destroy(n));
}

static void child_inside_rw(void *arg)
{
	(void)arg;
	CHECK_ALLOWED(secret, 0);
	CHECK_ALLOWED(secret, 1);
	CHECK(strcmp(secret, "forked secret") == 0);
	void *p = domain_malloc(d, 10);
	CHECK(p);
	domain_free(p);
	/* The domain is pinned by the inherited enter. */
	CHECK_ERR(domain_destroy(d), == -1, EBUSY);
	CHECK_OK(domain_exit(d));
	CHECK_ERR(domain_exit(d), == -1, EPERM);
	CHECK_DENIED(secret, 0);
}

static void child_inside_ro(void *arg)
{
	(void)arg;
	CHECK_ALLOWED(secret, 0);
	CHECK(probe(secret, 1).hit);
	CHECK_OK(domain_exit(d));
	CHECK_DENIED(secret, 0);
}

static void child_busy(void *arg)
{
	/* Every lock jemalloc and pkalloc hold must be usable in the child. */
	domain_t **ds = arg;
	for (int i = 0; i < 3; i++) {
		void *p = domain_malloc(ds[i], 256);
		CHECK(p);
		domain_free(p);
		CHECK_DENIED(secret, 0);
	}
	void *m = malloc(1000);
	CHECK(m);
	free(m);
}

static _Atomic int stop;      /* read by the churning threads */
static void *churn(void *arg)
{
	domain_t *dd = arg;
	/* Under valgrind, whose scheduler can starve the forking thread
	 * while these run, a bounded number of rounds. */
	for (int n = 0; !stop && (!under_valgrind() || n < 40); n++) {
		void *p = domain_malloc(dd, 64);
		CHECK(p);
		domain_free(p);
		CHECK_OK(domain_enter(dd, DOMAIN_RDWR));
		void *q = domain_malloc(dd, 5000);
		CHECK(q);
		domain_free(q);
		CHECK_OK(domain_exit(dd));
	}
	return NULL;
}

int main(void)
{
	d = domain_create("fork", 0);
	CHECK(d);
	secret = domain_malloc(d, 32);
	CHECK(secret);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	strcpy(secret, "forked secret");
	CHECK_OK(domain_exit(d));

	CHECK_EXITED_OK(in_child(child_outside, NULL, NULL, 0));
	CHECK_DENIED(secret, 0);

	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	CHECK_EXITED_OK(in_child(child_inside_rw, NULL, NULL, 0));
	CHECK_ALLOWED(secret, 1);         /* the parent is still inside */
	CHECK_OK(domain_exit(d));
	CHECK_DENIED(secret, 0);

	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK_EXITED_OK(in_child(child_inside_ro, NULL, NULL, 0));
	CHECK_ALLOWED(secret, 0);
	CHECK(probe(secret, 1).hit);
	CHECK_OK(domain_exit(d));

	/* Fork while other threads allocate in domains. */
	domain_t *ds[3] = { d, domain_create("busy1", 0), domain_create("busy2", 0) };
	CHECK(ds[1] && ds[2]);
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, churn, ds[i]);
	for (int i = 0; i < vg_scaled(20); i++)
		CHECK_EXITED_OK(in_child(child_busy, ds, NULL, 0));
	stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	CHECK_DENIED(secret, 0);

	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK(strcmp(secret, "forked secret") == 0);
	CHECK_OK(domain_exit(d));
	domain_free(secret);
	for (int i = 0; i < 3; i++)
		CHECK_OK(domain_destroy(ds[i]));
	return 0;
}
