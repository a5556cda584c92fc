/* The "mprotect" backend (protect_mprotect.c): page permissions, process-wide, where there are no protection keys. */
#ifndef PKALLOC_PROTECT_MPROTECT_H
#define PKALLOC_PROTECT_MPROTECT_H

#include "protect.h"

extern const struct backend pk_backend_mprotect;

#endif
