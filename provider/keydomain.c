/*
 * The domains keys live in.  By default each key gets a domain of its own,
 * destroyed with it, so that an operation with one key opens no other.
 * With "domains = shared" every key of the process shares one domain (one
 * per set of flags), made with the first key and destroyed with the last:
 * fewer domains and protection keys, at the price that an operation with
 * one key opens all of them.  "secretmem" asks for DOMAIN_SECRETMEM
 * domains, out of the kernel's direct map and /proc/PID/mem.
 */
#include "prov.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#define KEY_DOMAIN_NAME "openssl-key"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The shared domains: [0] ordinary, [1] secret memory. */
static struct {
	domain_t *d;
	unsigned long keys;
} shared[2];

static domain_t *create(struct pk_prov *p)
{
	if (p->secretmem == PK_SECRETMEM_NO)
		return domain_create(KEY_DOMAIN_NAME, 0);
	/* Where memfd_secret is missing, if-available settles for ordinary
	 * domains, and asks no more (libpkalloc has said why on stderr). */
	static int missing;
	if (p->secretmem == PK_SECRETMEM_IF_AVAILABLE && __atomic_load_n(&missing, __ATOMIC_RELAXED))
		return domain_create(KEY_DOMAIN_NAME, 0);
	domain_t *d = domain_create(KEY_DOMAIN_NAME, DOMAIN_SECRETMEM);
	if (!d && errno == ENOTSUP && p->secretmem == PK_SECRETMEM_IF_AVAILABLE) {
		__atomic_store_n(&missing, 1, __ATOMIC_RELAXED);
		d = domain_create(KEY_DOMAIN_NAME, 0);
	}
	return d;
}

domain_t *pk_domain_get(struct pk_prov *p)
{
	domain_t *d;
	if (!p->shared) {
		d = create(p);
	} else {
		int i = p->secretmem != PK_SECRETMEM_NO;
		pthread_mutex_lock(&lock);
		if (!shared[i].d)
			shared[i].d = create(p);
		if ((d = shared[i].d))
			shared[i].keys++;
		pthread_mutex_unlock(&lock);
	}
	if (!d) {
		int e = errno;
		ERR_raise_data(ERR_LIB_PROV, ERR_R_INIT_FAIL, "pkalloc: cannot make a domain for the key: %s",
		               strerror(e));
		/* OpenSSL's legacy decoding may then take the key into plain
		 * memory, which the provider cannot stop: say so, once. */
		static int said;
		if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
			fprintf(stderr, "pkalloc provider: cannot make a domain for a private key (%s): OpenSSL "
			                "may hold it in plain memory instead\n", strerror(e));
	}
	return d;
}

int pk_domain_check(struct pk_prov *p)
{
	if (p->secretmem != PK_SECRETMEM_YES)
		return 0;
	domain_t *d = domain_create(KEY_DOMAIN_NAME, DOMAIN_SECRETMEM);
	if (!d)
		return -1;
	domain_destroy(d);
	return 0;
}

void pk_domain_put(domain_t *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < 2; i++) {
		if (shared[i].d != d)
			continue;
		if (--shared[i].keys > 0) {
			pthread_mutex_unlock(&lock);
			return;
		}
		shared[i].d = NULL;
	}
	pthread_mutex_unlock(&lock);
	/* What OpenSSL left there (it should be nothing) goes with it. */
	domain_destroy(d);
}
