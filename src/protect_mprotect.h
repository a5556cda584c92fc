/* The "mprotect" backend (protect_mprotect.c): page permissions, process-wide, where there are no protection keys. */
#ifndef PKALLOC_PROTECT_MPROTECT_H
#define PKALLOC_PROTECT_MPROTECT_H

#include "protect.h"

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

extern const struct backend pk_backend_mprotect;

#pragma GCC visibility pop

#endif
