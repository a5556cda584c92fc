/* The "pku" backend (protect_pku.c): protection keys: pkey_alloc, pkey_mprotect, PKRU per thread. */
#ifndef PKALLOC_PROTECT_PKU_H
#define PKALLOC_PROTECT_PKU_H

#include "protect.h"

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

extern const struct backend pk_backend_pku;

#pragma GCC visibility pop

#endif
