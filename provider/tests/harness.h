/*
 * What the provider's C tests share: the environment they need, set by
 * executing themselves again when it is missing (libpkalloc arrives by
 * dlopen and needs room for its TLS), and the module's directory.
 */
#ifndef PKPROV_TEST_HARNESS_H
#define PKPROV_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* GLIBC_TUNABLES must hold tunables (as one string); the directory in
 * PKALLOC_PROVIDER_DIR must hold pkalloc.so.  Returns that directory, or
 * exits: 99 when the program cannot execute itself again, 77 (a skip)
 * when the module was not built. */
static inline const char *provider_test_start(char **argv, const char *name, const char *tunables)
{
	const char *tun = getenv("GLIBC_TUNABLES");
	if (!tun || !strstr(tun, tunables)) {
		setenv("GLIBC_TUNABLES", tunables, 1);
		execv("/proc/self/exe", argv);
		perror("execv");
		exit(99);
	}
	const char *mods = getenv("PKALLOC_PROVIDER_DIR");
	char so[4096];
	if (!mods || snprintf(so, sizeof so, "%s/pkalloc.so", mods) >= (int)sizeof so || access(so, R_OK) != 0) {
		fprintf(stderr, "SKIP: %s: no pkalloc.so in PKALLOC_PROVIDER_DIR (%s): the provider was not built\n",
		        name, mods ? mods : "not set");
		exit(77);
	}
	return mods;
}

#endif
