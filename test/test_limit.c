/*
 * The domain limit: jemalloc allows at most 4095 arenas in a process, so
 * domain_create succeeds until then (no key is needed to create one) and
 * past it fails cleanly with ENOSPC; every domain made keeps working, and
 * destroying some makes room again.
 */
#include "test.h"

#include <sys/resource.h>

enum { MAX = 4096 };
static domain_t *dom[MAX];

int main(void)
{
	if (under_valgrind())
		skip("needs 4000 domains; valgrind has room for about 25 reservations of 4 GiB");
	int n = 0;
	for (; n < MAX; n++) {
		errno = 0;
		if (!(dom[n] = domain_create(NULL, 0)))
			break;
	}
	fprintf(stderr, "%d domains created, then: %s\n", n, strerror(errno));
	CHECK_INT(n, <, MAX);
	CHECK_INT(errno, ==, ENOSPC);
	CHECK_INT(n, >=, 3000);          /* jemalloc's limit, less its own arenas */
	struct pkalloc_stats st;
	CHECK_OK(pkalloc_stats(&st));
	CHECK_INT(st.domains, ==, n);
	/* The first and the last still work. */
	int probe_at[2] = { 0, n - 1 };
	for (int i = 0; i < 2; i++) {
		domain_t *d = dom[probe_at[i]];
		char *p = domain_malloc(d, 16);
		CHECK(p);
		CHECK_OK(domain_enter(d, DOMAIN_RDWR));
		strcpy(p, "still fine");
		CHECK_OK(domain_exit(d));
		CHECK_DENIED(p, 0);
		domain_free(p);
	}
	/* Room again after a destroy. */
	CHECK_OK(domain_destroy(dom[n - 1]));
	dom[n - 1] = domain_create("again", 0);
	CHECK(dom[n - 1]);
	for (int i = 0; i < n; i++)
		CHECK_OK(domain_destroy(dom[i]));
	return 0;
}
