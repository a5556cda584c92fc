/* The "pku" backend (protect_pku.c): protection keys: pkey_alloc, pkey_mprotect, PKRU per thread. */
#ifndef PKALLOC_PROTECT_PKU_H
#define PKALLOC_PROTECT_PKU_H

#include "protect.h"

extern const struct backend pk_backend_pku;

#endif
