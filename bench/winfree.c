/*
 * For section 8's estimate of the pku figures on a machine without
 * protection keys: preloaded into pkprov, it makes the provider's windows
 * cost nothing.  A thread's first enter of a domain opens it for good
 * (read-write; on the mprotect backend for the whole process), later
 * enters of it and every exit do nothing.  What remains is the provider's
 * own work, which pku pays as well; pku adds two PKRU writes and pkalloc's
 * bookkeeping per window.  For the benchmark only: it leaves keys open.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <pkalloc.h>

#define OPENED_MAX 256

static int (*real_enter)(domain_t *, int);
static __thread domain_t *opened[OPENED_MAX];
static __thread int nopened;

__attribute__((visibility("default"))) int domain_enter(domain_t *d, int access)
{
	(void)access;
	for (int i = 0; i < nopened; i++)
		if (opened[i] == d)
			return 0;
	if (!real_enter) {
		/* libpkalloc arrives with the provider, by dlopen. */
		void *h = dlopen("libpkalloc.so.0", RTLD_NOW | RTLD_NOLOAD);
		real_enter = h ? (int (*)(domain_t *, int))dlsym(h, "domain_enter") : NULL;
		if (!real_enter) {
			fprintf(stderr, "winfree: libpkalloc is not loaded\n");
			abort();
		}
	}
	int r = real_enter(d, DOMAIN_RDWR);
	if (r == 0 && nopened < OPENED_MAX)
		opened[nopened++] = d;
	return r;
}

__attribute__((visibility("default"))) int domain_exit(domain_t *d)
{
	(void)d;
	return 0;
}
