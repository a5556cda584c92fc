/*
 * The public contract's error cases and handle checks: every documented
 * errno, on NULL, wild and destroyed handles (what pkalloc(3) says a
 * handle check catches: never a fault, never another domain), and the
 * limits.
 */
#include "test.h"

#include <pthread.h>
#include <stdbool.h>

#define GiB ((size_t)1 << 30)

static void bad_handle(domain_t *h, const char *what)
{
	fprintf(stderr, "bad handle: %s\n", what);
	void *p;
	CHECK_ERR(domain_enter(h, DOMAIN_RDWR), == -1, EINVAL);
	CHECK_ERR(domain_exit(h), == -1, EINVAL);
	CHECK_ERR(domain_destroy(h), == -1, EINVAL);
	CHECK_ERR(p = domain_malloc(h, 16), == NULL, EINVAL);
	CHECK_ERR(p = domain_calloc(h, 1, 16), == NULL, EINVAL);
	CHECK_ERR(p = domain_realloc(h, NULL, 16), == NULL, EINVAL);
	CHECK_ERR(p = domain_aligned_alloc(h, 64, 16), == NULL, EINVAL);
	CHECK_ERR(domain_name(h), == NULL, EINVAL);
	(void)p;
}

static void *enter_and_hold(void *arg)
{
	domain_t **dd = arg;
	CHECK_OK(domain_enter(dd[0], DOMAIN_RDONLY));
	/* Tell the main thread we are in, wait until it says go. */
	__atomic_store_n((int *)dd[1], 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n((int *)dd[1], __ATOMIC_SEQ_CST) != 2)
		usleep(1000);
	CHECK_OK(domain_exit(dd[0]));
	return NULL;
}

static void *exit_foreign(void *arg)
{
	/* This thread never entered: exiting is EPERM, not a release of the owner's entry. */
	CHECK_ERR(domain_exit(arg), == -1, EPERM);
	return NULL;
}

int main(void)
{
	const char *b = pkalloc_backend();
	CHECK(strcmp(b, "pku") == 0 || strcmp(b, "mprotect") == 0);
	const char *want = getenv("PKALLOC_BACKEND");
	if (want && (!strcmp(want, "pku") || !strcmp(want, "mprotect")))
		CHECK(strcmp(b, want) == 0);

	/* Names: copied, NULL allowed, 63 bytes the most. */
	char name[80];
	memset(name, 'n', 63);
	name[63] = '\0';
	domain_t *d = domain_create(name, 0);
	CHECK(d);
	name[0] = 'X';
	CHECK(strlen(domain_name(d)) == 63 && domain_name(d)[0] == 'n');
	name[63] = 'n';
	name[64] = '\0';
	domain_t *x;
	CHECK_ERR(x = domain_create(name, 0), == NULL, EINVAL);
	CHECK_ERR(x = domain_create("flags", 0x10), == NULL, EINVAL);
	CHECK_ERR(x = domain_create("flags", 0x80000000u), == NULL, EINVAL);
	domain_t *anon = domain_create(NULL, 0);
	CHECK(anon);
	CHECK(strcmp(domain_name(anon), "") == 0);
	CHECK_OK(domain_destroy(anon));

	/* Handles that are not live domains. */
	bad_handle(NULL, "NULL");
	bad_handle((domain_t *)(uintptr_t)0x1000, "low address");
	bad_handle((domain_t *)((char *)d + 1), "interior of a record");
	bad_handle((domain_t *)name, "stack memory");
	domain_t *gone = domain_create("gone", 0);
	CHECK(gone);
	CHECK_OK(domain_destroy(gone));
	bad_handle(gone, "destroyed");

	/* A destroyed handle stays invalid even once its record is reused:
	 * run through every record so the first one comes round again. */
	domain_t *first = domain_create("first", 0);
	CHECK(first);
	CHECK_OK(domain_destroy(first));
	for (int i = 0; i < 4200; i++) {
		domain_t *t = domain_create("cycle", 0);
		if (!t)
			FAIL("domain_create #%d: %s", i, strerror(errno));
		CHECK(t != first);
		CHECK_OK(domain_destroy(t));
	}
	domain_t *later = domain_create("later", 0);
	CHECK(later);
	bad_handle(first, "destroyed, record reused");
	CHECK(strcmp(domain_name(later), "later") == 0);
	CHECK_OK(domain_destroy(later));

	/* Wild pointers are checked, never dereferenced: random values, and
	 * every address near a live handle off the handles' 16-byte grid. */
	fprintf(stderr, "bad handle: 2000 random values, 4000 near a live handle\n");
	uint64_t r = 0x9e3779b97f4a7c15u;
	for (int i = 0; i < 2000; i++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		domain_t *w = (domain_t *)(uintptr_t)r;
		CHECK_ERR(domain_enter(w, DOMAIN_RDONLY), == -1, EINVAL);
		CHECK_ERR(domain_name(w), == NULL, EINVAL);
	}
	for (int i = -2000; i < 2000; i++) {
		if (i % 16 == 0)
			continue;
		domain_t *w = (domain_t *)((char *)d + i);
		CHECK_ERR(domain_enter(w, DOMAIN_RDONLY), == -1, EINVAL);
		CHECK_ERR(domain_destroy(w), == -1, EINVAL);
	}

	/* Access modes. */
	CHECK_ERR(domain_enter(d, 0), == -1, EINVAL);
	CHECK_ERR(domain_enter(d, 3), == -1, EINVAL);
	CHECK_ERR(domain_enter(d, -1), == -1, EINVAL);
	CHECK_ERR(domain_exit(d), == -1, EPERM);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	pthread_t t;
	pthread_create(&t, NULL, exit_foreign, d);
	pthread_join(t, NULL);
	CHECK_OK(domain_exit(d));
	CHECK_ERR(domain_exit(d), == -1, EPERM);

	/* Nesting depth. */
	for (int i = 0; i < PKALLOC_MAX_NEST; i++)
		CHECK_OK(domain_enter(d, i % 2 ? DOMAIN_RDONLY : DOMAIN_RDWR));
	CHECK_ERR(domain_enter(d, DOMAIN_RDWR), == -1, EOVERFLOW);
	for (int i = 0; i < PKALLOC_MAX_NEST; i++)
		CHECK_OK(domain_exit(d));
	CHECK_ERR(domain_exit(d), == -1, EPERM);

	/* Allocation errors leave the domain working and its data intact. */
	char *keep = domain_malloc(d, 32);
	CHECK(keep);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	memcpy(keep, "still here", 11);
	CHECK_OK(domain_exit(d));
	void *p;
	volatile size_t big = SIZE_MAX / 2, huge = (size_t)1 << 33;  /* hide from -Walloc-size */
	CHECK_ERR(p = domain_calloc(d, big, 3), == NULL, ENOMEM);
	CHECK_ERR(p = domain_calloc(d, huge, huge), == NULL, ENOMEM);
	CHECK_ERR(p = domain_aligned_alloc(d, 0, 16), == NULL, EINVAL);
	CHECK_ERR(p = domain_aligned_alloc(d, 3, 16), == NULL, EINVAL);
	CHECK_ERR(p = domain_aligned_alloc(d, 24, 16), == NULL, EINVAL);
	CHECK_ERR(p = domain_aligned_alloc(d, (size_t)1 << 40, 16), == NULL, ENOMEM);
	CHECK_ERR(p = domain_malloc(d, 5 * GiB), == NULL, ENOMEM);
	CHECK_ERR(p = domain_malloc(d, PKALLOC_RESERVATION - 4096), == NULL, ENOMEM);
	CHECK_ERR(p = domain_malloc(d, big * 2 + 1), == NULL, ENOMEM);
	CHECK_ERR(p = domain_realloc(d, keep, 5 * GiB), == NULL, ENOMEM);
	p = domain_malloc(d, 1 << 20);
	CHECK(p && domain_of(p) == d);
	domain_free(p);
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK(strcmp(keep, "still here") == 0);
	CHECK_OK(domain_exit(d));

	/* Pointers that are not domain memory. */
	domain_free(NULL);
	int local;
	void *plain = malloc(64);
	CHECK(domain_of(NULL) == NULL);
	CHECK(domain_of(&local) == NULL);
	CHECK(domain_of(plain) == NULL);
	CHECK(domain_of(keep) == d);
	CHECK(domain_of(keep + 7) == d);
	CHECK_INT(domain_usable_size(NULL), ==, 0);
	CHECK_ERR(domain_usable_size(plain), == 0, EINVAL);
	CHECK_INT(domain_usable_size(keep), >=, 32);
	free(plain);

	/* destroy: EBUSY while any thread is inside, by this thread or another. */
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK_ERR(domain_destroy(d), == -1, EBUSY);
	CHECK_OK(domain_exit(d));
	int flag = 0;
	domain_t *args[2] = { d, (domain_t *)&flag };
	pthread_create(&t, NULL, enter_and_hold, args);
	while (__atomic_load_n(&flag, __ATOMIC_SEQ_CST) != 1)
		usleep(1000);
	CHECK_ERR(domain_destroy(d), == -1, EBUSY);
	__atomic_store_n(&flag, 2, __ATOMIC_SEQ_CST);
	pthread_join(t, NULL);
	/* EBUSY lost nothing. */
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK(strcmp(keep, "still here") == 0);
	CHECK_OK(domain_exit(d));
	CHECK_OK(domain_destroy(d));
	CHECK_ERR(domain_destroy(d), == -1, EINVAL);
	CHECK(domain_of(keep) == NULL);

	/* More domains than hardware keys: creating never needs a free key,
	 * and every domain made keeps its secret. */
	if (under_valgrind())
		return 0;     /* it has room for about 25 reservations of 4 GiB */
	enum { MANY = 64 };
	domain_t *ds[MANY];
	char *sec[MANY];
	int n = 0;
	for (; n < MANY; n++) {
		ds[n] = domain_create("many", 0);
		CHECK(ds[n]);
		sec[n] = domain_malloc(ds[n], 16);
		CHECK(sec[n]);
		CHECK_OK(domain_enter(ds[n], DOMAIN_RDWR));
		snprintf(sec[n], 16, "secret %d", n);
		CHECK_OK(domain_exit(ds[n]));
	}
	/* The open-set limit of one thread. */
	int opened = 0;
	for (; opened < MANY; opened++)
		if (domain_enter(ds[opened], DOMAIN_RDONLY) != 0)
			break;
	CHECK_INT(opened, ==, PKALLOC_MAX_OPEN);
	CHECK_INT(errno, ==, ENOMEM);
	while (opened--)
		CHECK_OK(domain_exit(ds[opened]));
	for (int i = 0; i < n; i++) {
		char want_s[16];
		snprintf(want_s, sizeof want_s, "secret %d", i);
		CHECK_OK(domain_enter(ds[i], DOMAIN_RDONLY));
		CHECK(strcmp(sec[i], want_s) == 0);
		CHECK_OK(domain_exit(ds[i]));
		domain_free(sec[i]);
		CHECK_OK(domain_destroy(ds[i]));
	}
	return 0;
}
