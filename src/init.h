/* Initialisation, once per process (init.c). */
#ifndef PKALLOC_INIT_H
#define PKALLOC_INIT_H

/* Set pkalloc up, once; every entry point that needs cfg calls it. */
void pk_init(void);

#endif
