/*
 * The configuration: set once by init.c, then read-only (its page is
 * sealed), so that a stray write cannot change the backend or a cache
 * class.  Storage only: this module calls nothing.
 */
#ifndef PKALLOC_SETTINGS_H
#define PKALLOC_SETTINGS_H

#include <pthread.h>
#include <stdint.h>

#include "internal.h"

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

struct backend;
struct config {
	const struct backend *backend;   /* NULL: unavailable, see init_errno */
	int per_thread;                  /* backend->per_thread, one load nearer */
	int init_errno;
	int strict;                      /* PKALLOC_STRICT=1: never share a key */
	int membarrier;                  /* expedited membarrier is registered */
	int malloc_replaced;             /* the process's malloc is ours (override.c) */
	pthread_key_t thread_key;
	/* Cache classes (cache.c): class of a size (by (size + 7) / 8) and
	 * each class's size and bounds.  Read-only: a stray write cannot
	 * make a class hand out less than was asked for. */
	unsigned nclasses;
	unsigned char class_of[CACHE_MAX / 8 + 1];
	unsigned short class_size[CLASSES_MAX + 1];
	unsigned char class_cap[CLASSES_MAX + 1];
	uint64_t cache_secret;           /* mixed into each cache's check word */
	uint64_t free_key;               /* written into blocks sitting in caches */
};

extern const struct config *const pk_cfg;

/* The configuration, writable: only during initialisation (init.c, and
 * cache.c's classes), before settings_seal. */
struct config *pk_settings_edit(void);
/* The configuration's page, for init.c to make read-only. */
void *pk_settings_page(size_t *len);

#pragma GCC visibility pop

#endif
