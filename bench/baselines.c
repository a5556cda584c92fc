/*
 * The allocators pkalloc is measured against, set up once.  This process
 * runs on pkalloc's malloc (it links libpkalloc, which exports malloc), so
 * glibc's own malloc and free are taken from libc.so.6 by name and checked
 * to live there.  libsodium and OpenSSL are optional at build time; their
 * rows say "n/a" without them.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_SODIUM
#include <sodium.h>
#endif
#ifdef HAVE_OPENSSL
#include <openssl/crypto.h>
#endif

void *(*glibc_malloc)(size_t);
void (*glibc_free)(void *);
const char *plain_malloc_why;
static int sodium_ok, openssl_ok;

/* The object that defines f, by file name. */
static const char *object_of(void *f)
{
	Dl_info i;
	return f && dladdr(f, &i) && i.dli_fname ? i.dli_fname : "";
}

int baselines_init(void)
{
	/* A handle's lookup starts at that object: libc's own definitions. */
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	if (libc) {
		glibc_malloc = (void *(*)(size_t))dlsym(libc, "malloc");
		glibc_free = (void (*)(void *))dlsym(libc, "free");
	}
	if (!strstr(object_of((void *)glibc_malloc), "libc.so") ||
	    !strstr(object_of((void *)glibc_free), "libc.so")) {
		bench_error("glibc's malloc not found in libc.so.6 (got %s)", object_of((void *)glibc_malloc));
		return -1;
	}
	/* The malloc this process calls must be pkalloc's: the rows that call
	 * plain malloc say so.  Only AddressSanitizer may take it over. */
	plain_malloc_why = NULL;
	if (!strstr(object_of((void *)malloc), "libpkalloc")) {
#if defined(__SANITIZE_ADDRESS__)
		plain_malloc_why = "n/a: sanitizer build (malloc is ASan's)";
#else
		bench_error("malloc resolves to %s, not libpkalloc", object_of((void *)malloc));
		return -1;
#endif
	}
#ifdef HAVE_SODIUM
	sodium_ok = sodium_init() >= 0;
	if (!sodium_ok)
		bench_error("sodium_init failed");
#endif
#ifdef HAVE_OPENSSL
	/* 16-byte minimum: OpenSSL's buddy allocator rounds up to it. */
	openssl_ok = CRYPTO_secure_malloc_init(OPENSSL_HEAP_SIZE, 16) != 0 &&
	             CRYPTO_secure_malloc_initialized();
	if (!openssl_ok)
		bench_error("CRYPTO_secure_malloc_init failed");
#endif
	return 0;
}

int have_sodium(void)
{
	return sodium_ok;
}

int have_openssl(void)
{
	return openssl_ok;
}
