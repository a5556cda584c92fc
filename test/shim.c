/*
 * A preload shim as a new user writes one: linked with -lpkalloc, its
 * constructor creates a DOMAIN_CAPTURE_MALLOC domain, enters it read-write
 * and allocates with plain malloc.  It prints one line saying what came of
 * it; test/symbol-order.sh preloads it alone and together with libpkalloc.so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pkalloc.h"

__attribute__((constructor)) static void shim_start(void)
{
	int replaced = pkalloc_malloc_replaced();
	domain_t *d = domain_create("shim", DOMAIN_CAPTURE_MALLOC);
	if (!d) {
		dprintf(STDOUT_FILENO, "shim: replaced %d, domain_create: %s\n", replaced,
		        errno == ENOTSUP ? "ENOTSUP" : strerror(errno));
		return;
	}
	if (domain_enter(d, DOMAIN_RDWR) != 0) {
		dprintf(STDOUT_FILENO, "shim: domain_enter: %s\n", strerror(errno));
		return;
	}
	void *p = malloc(32);
	domain_exit(d);
	dprintf(STDOUT_FILENO, "shim: replaced %d, malloc(32) in the domain: %s\n", replaced,
	        p && domain_of(p) == d ? "yes" : "no");
	free(p);
	if (domain_destroy(d) != 0)
		dprintf(STDOUT_FILENO, "shim: domain_destroy: %s\n", strerror(errno));
}
