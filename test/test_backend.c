/*
 * Backend choice: PKALLOC_BACKEND=auto|pku|mprotect picks it, auto takes
 * pku wherever the machine has protection keys, and an explicit request
 * for an unavailable or unknown backend fails every domain_create with a
 * clear errno and one line on stderr, never a silent downgrade.  Each case
 * runs in a fresh child: the choice is made once per process.
 */
#include "test.h"

#include <cpuid.h>
#include <sys/mman.h>

static int machine_has_pku;

static void expect_working(const char *want)
{
	if (strcmp(pkalloc_backend(), want) != 0)
		FAIL("backend is %s, expected %s", pkalloc_backend(), want);
	domain_t *d = domain_create("backend", 0);
	CHECK(d);
	char *p = domain_malloc(d, 16);
	CHECK(p);
	CHECK_DENIED(p, 0);     /* SEGV_PKUERR on pku, SEGV_ACCERR on mprotect */
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	CHECK_ALLOWED(p, 1);
	CHECK_OK(domain_exit(d));
	domain_free(p);
	CHECK_OK(domain_destroy(d));
}

static void with_env(void *arg)
{
	const char *v = arg;
	if (v)
		setenv("PKALLOC_BACKEND", v, 1);
	else
		unsetenv("PKALLOC_BACKEND");

	if (!v || !strcmp(v, "auto") || !strcmp(v, "")) {
		expect_working(machine_has_pku ? "pku" : "mprotect");
	} else if (!strcmp(v, "mprotect")) {
		expect_working("mprotect");
	} else if (!strcmp(v, "pku") && machine_has_pku) {
		expect_working("pku");
	} else {
		int want = strcmp(v, "pku") == 0 ? ENOTSUP : EINVAL;
		CHECK(strcmp(pkalloc_backend(), "none") == 0);
		domain_t *d;
		CHECK_ERR(d = domain_create("x", 0), == NULL, want);
		CHECK_ERR(d = domain_create("y", 0), == NULL, want);
		(void)d;
	}
}

static void run(const char *v, const char *stderr_prefix)
{
	char err[1024];
	int st = in_child(with_env, (void *)v, err, sizeof err);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("PKALLOC_BACKEND=%s: child failed (status %#x): %s", v ? v : "(unset)", st, err);
	if (!stderr_prefix) {
		if (err[0])
			FAIL("PKALLOC_BACKEND=%s: unexpected output: %s", v ? v : "(unset)", err);
		return;
	}
	/* Exactly one line, and it says what is wrong. */
	if (strncmp(err, stderr_prefix, strlen(stderr_prefix)) != 0)
		FAIL("PKALLOC_BACKEND=%s: stderr is \"%s\", expected it to start \"%s\"", v, err,
		     stderr_prefix);
	char *nl = strchr(err, '\n');
	CHECK(nl && nl[1] == '\0');
}

int main(void)
{
	/* Ask the kernel directly, without pkalloc (which is not initialised
	 * in this process and must not be before the children run). */
	unsigned a, b, c, dx;
	machine_has_pku = __get_cpuid_count(7, 0, &a, &b, &c, &dx) && (c & bit_OSPKE);
	if (machine_has_pku) {
		int k = pkey_alloc(0, 0);
		CHECK(k >= 0 || errno == ENOSPC);
		if (k >= 0)
			pkey_free(k);
	}
	fprintf(stderr, "machine has protection keys: %s\n", machine_has_pku ? "yes" : "no");

	run(NULL, NULL);
	run("auto", NULL);
	run("mprotect", NULL);
	run("pku", machine_has_pku ? NULL :
	    "pkalloc: PKALLOC_BACKEND=pku, but this CPU or kernel has no protection keys (");
	run("bogus", "pkalloc: PKALLOC_BACKEND=bogus is not auto, pku or mprotect;");
	run("PKU", "pkalloc: PKALLOC_BACKEND=PKU is not auto, pku or mprotect;");
	return 0;
}
