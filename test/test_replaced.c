/*
 * pkalloc_malloc_replaced() in a program linked with -lpkalloc: 1, and a
 * capturing domain then captures, with nothing printed; in a sanitizer
 * build, whose runtime's malloc comes first, 0, and DOMAIN_CAPTURE_MALLOC
 * is refused with ENOTSUP and one "pkalloc:" line while the rest of the API
 * works.  (libpkalloc reached by dlopen or through a preloaded shim:
 * test/symbol-order.sh.)
 */
#include "test.h"

/* In a child: try two capturing domains; exit 0 if both were refused
 * with ENOTSUP, 10 if the first was created. */
static void create_two(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2; i++) {
		errno = 0;
		domain_t *d = domain_create("capture", DOMAIN_CAPTURE_MALLOC);
		if (d)
			_exit(domain_destroy(d) == 0 ? 10 : 11);
		if (errno != ENOTSUP)
			_exit(12);
	}
	_exit(0);
}

/* The lines of s that start with prefix ("": every line). */
static int count_lines(const char *s, const char *prefix)
{
	int n = 0;
	for (const char *l = s; *l;) {
		n += strncmp(l, prefix, strlen(prefix)) == 0;
		const char *e = strchr(l, '\n');
		l = e ? e + 1 : l + strlen(l);
	}
	return n;
}

/* Linked: the query says 1, and it is true, capture works. */
static void replaced(void)
{
	CHECK_INT(pkalloc_malloc_replaced(), ==, 1);
	domain_t *d = domain_create("capture", DOMAIN_CAPTURE_MALLOC);
	CHECK(d);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	void *p = malloc(32);
	CHECK_OK(domain_exit(d));
	CHECK_PTR(domain_of(p), ==, d);
	free(p);
	CHECK_OK(domain_destroy(d));

	char err[512];
	int st = in_child(create_two, NULL, err, sizeof err);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 10)
		FAIL("capturing domain not created in the child: status %#x, stderr \"%s\"", st, err);
	CHECK_INT(strlen(err), ==, 0);
}

/* A sanitizer build: the query says 0, capture is refused once with one
 * line, and domains without capture work as before. */
static void not_replaced(void)
{
	CHECK_INT(pkalloc_malloc_replaced(), ==, 0);
	char err[512];
	int st = in_child(create_two, NULL, err, sizeof err);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("DOMAIN_CAPTURE_MALLOC not refused with ENOTSUP: status %#x, stderr \"%s\"", st, err);
	if (count_lines(err, "pkalloc: ") != 1 || count_lines(err, "") != 1 ||
	    !strstr(err, "-lpkalloc") || !strstr(err, "LD_PRELOAD"))
		FAIL("two refusals should print one pkalloc: line saying how to fix it; got \"%s\"", err);

	domain_t *d = domain_create("plain", 0);
	CHECK(d);
	char *p = domain_malloc(d, 32);
	CHECK(p && domain_of(p) == d);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	strcpy(p, "still works");
	CHECK_OK(domain_exit(d));
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK(strcmp(p, "still works") == 0);
	CHECK_OK(domain_exit(d));
	domain_free(p);
	CHECK_OK(domain_destroy(d));
}

int main(void)
{
	if (TEST_SANITIZER_MALLOC)
		not_replaced();
	else
		replaced();
	printf("test_replaced: pkalloc_malloc_replaced() is %d%s, as it should\n",
	       pkalloc_malloc_replaced(),
	       TEST_SANITIZER_MALLOC ? " under the sanitizer's malloc" : " linked with -lpkalloc");
	return 0;
}
