/* Initialisation, once per process (init.c). */
#ifndef PKALLOC_INIT_H
#define PKALLOC_INIT_H

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

/* Set pkalloc up, once; every entry point that needs cfg calls it. */
void pk_init(void);

#pragma GCC visibility pop

#endif
