/*
 * Where libcrypto's allocations go.  A provider is loaded after libcrypto
 * has allocated, so it can neither call CRYPTO_set_mem_functions (refused
 * by then) nor rely on pkalloc being the process's malloc.  Instead it
 * points libcrypto's own imports of malloc, calloc, realloc and free (its
 * GOT slots) at wrappers: while the calling thread has a capture domain
 * set here, libcrypto allocates in it; free and realloc take domain memory
 * from anywhere, and clear libcrypto's plain blocks before the C library
 * gets them back.  Nothing else in the process is affected.
 */
#ifndef PKPROV_REDIRECT_H
#define PKPROV_REDIRECT_H

#include <pkalloc.h>

/* Install the wrappers (once per process; later calls return the first
 * answer).  0, or -1 when libcrypto's slots could not be found or
 * written (the reason on stderr). */
int redirect_install(void);

/* Set the calling thread's capture domain (NULL: none); returns the old. */
domain_t *redirect_capture(domain_t *d);

#endif
