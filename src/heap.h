/*
 * The domain heap as the malloc replacement (override.c) uses it.  Every
 * call opens its own access window; none of them calls malloc.
 */
#ifndef PKALLOC_HEAP_H
#define PKALLOC_HEAP_H

#include <stddef.h>

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

struct domain;

/* size bytes in d with jemalloc flags (MALLOCX_ZERO, MALLOCX_LG_ALIGN);
 * NULL with errno set on failure. */
void *pk_heap_alloc(struct domain *d, size_t size, int flags);

/* Wipe and free the domain allocation ptr; call names the caller in the
 * fatal message for a pointer that is not one. */
void pk_heap_free(void *ptr, const char *call);

/* Resize the domain allocation ptr within its own domain (size > 0). */
void *pk_heap_realloc(void *ptr, size_t size, const char *call);

/* Usable size of a domain allocation; 0 if ptr is not one. */
size_t pk_heap_usable(const void *ptr);

#pragma GCC visibility pop

#endif
