/*
 * libpkalloc loaded with dlopen by a program that does not link it: it
 * comes after the C library in symbol order, so its malloc is nobody's.
 * pkalloc_malloc_replaced() says 0, DOMAIN_CAPTURE_MALLOC is refused with
 * ENOTSUP and one "pkalloc:" line, however often it is asked for, and the
 * domain calls work as ever.  Not linked with libpkalloc: every call goes
 * through dlsym.  Run by test/symbol-order.sh, which gives it the static
 * TLS room that loading libpkalloc late needs.  Exit 0 when all held.
 */
#include "test.h"

#include <dlfcn.h>
#include <sys/mman.h>

#define API(name) __typeof__(name) *name##_p = (__typeof__(name) *)sym(#name)

static void *lib;

static void *sym(const char *name)
{
	void *f = dlsym(lib, name);
	if (!f) {
		fprintf(stderr, "dlsym %s: %s\n", name, dlerror());
		exit(99);
	}
	return f;
}

/* What was written to stderr while fn ran, in buf. */
static void stderr_of(void (*fn)(void), char *buf, size_t len)
{
	int fd = memfd_create("stderr", 0), saved = dup(2);
	if (fd < 0 || saved < 0) {
		perror("memfd_create");
		exit(99);
	}
	fflush(stderr);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

static void refused_twice(void)
{
	API(domain_create);
	for (int i = 0; i < 2; i++)
		CHECK_ERR(domain_create_p("capture", DOMAIN_CAPTURE_MALLOC), == NULL, ENOTSUP);
}

int main(void)
{
	/* Found on the library path test/symbol-order.sh sets. */
	lib = dlopen("libpkalloc.so.0", RTLD_NOW);
	if (!lib) {
		fprintf(stderr, "dlopen libpkalloc.so.0: %s\n", dlerror());
		return 99;
	}
	API(pkalloc_malloc_replaced);
	API(domain_create);
	API(domain_destroy);
	API(domain_enter);
	API(domain_exit);
	API(domain_malloc);
	API(domain_free);
	API(domain_of);

	CHECK_INT(pkalloc_malloc_replaced_p(), ==, 0);

	char err[1024];
	stderr_of(refused_twice, err, sizeof err);
	const char *nl = strchr(err, '\n');
	if (strncmp(err, "pkalloc: ", 9) != 0 || !nl || nl[1] != '\0' ||
	    !strstr(err, "-lpkalloc") || !strstr(err, "LD_PRELOAD"))
		FAIL("two refusals should print one pkalloc: line saying how to fix it; got \"%s\"", err);

	/* Everything but capture works. */
	domain_t *d = domain_create_p("dlopen", 0);
	CHECK(d);
	char *p = domain_malloc_p(d, 64);
	CHECK(p);
	CHECK_PTR(domain_of_p(p), ==, d);
	CHECK_OK(domain_enter_p(d, DOMAIN_RDWR));
	strcpy(p, "kept in a domain of a dlopened pkalloc");
	char *plain = malloc(32);             /* the C library's, never captured */
	CHECK_OK(domain_exit_p(d));
	CHECK(plain && domain_of_p(plain) == NULL);
	free(plain);
	CHECK_OK(domain_enter_p(d, DOMAIN_RDONLY));
	CHECK(strcmp(p, "kept in a domain of a dlopened pkalloc") == 0);
	CHECK_OK(domain_exit_p(d));
	domain_free_p(p);
	CHECK_OK(domain_destroy_p(d));
	printf("dlopen: pkalloc_malloc_replaced() is 0, capture refused with one line, "
	       "domain_malloc works\n");
	return 0;
}
