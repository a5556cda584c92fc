/*
 * DOMAIN_SECRETMEM: a domain's data pages in memfd_secret(2) memory, out
 * of the kernel's direct map (secretmem.c).  Contract as protect.h's:
 * addresses and lengths page-aligned, 0 or an errno value.  The calls on
 * pages run under d->lock, inside an access window on d.
 */
#ifndef PKALLOC_SECRETMEM_H
#define PKALLOC_SECRETMEM_H

#include <stddef.h>

#include "internal.h"

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

/* Domains whose data a fork child sees zeroed (cache.c forgets their
 * caches there): secretmem data is never copied into a child. */
#define WIPED_IN_CHILD (DOMAIN_WIPEONFORK | DOMAIN_SECRETMEM)

/* The state of a new domain (d->base set), which holds no file yet: one
 * memfd_secret file per 2 MiB chunk with committed pages.  ENOTSUP where
 * memfd_secret is unavailable, EMFILE/ENFILE without descriptors, with
 * one "pkalloc:" line. */
int pk_secretmem_open(struct domain *d);
/* Close the files left: with the reservation emptied, the kernel frees
 * (and zeroes) every page.  No-op for other domains. */
void pk_secretmem_close(struct domain *d);

/* jemalloc's call of the alloc hook for arena metadata (a base block),
 * which stays private anonymous memory. */
int pk_secretmem_meta_call(void *new_addr, size_t size, size_t alignment, int zero, int commit);
/* Map the domain's secret pages over [addr, addr+len) of its reservation,
 * tagged as backend->tag does, making the files of chunks that had none;
 * all or nothing.  ENOMEM past RLIMIT_MEMLOCK, EMFILE without
 * descriptors.  A failure prints one "pkalloc:" line, not repeated until
 * a commit of d succeeds again. */
int pk_secretmem_commit(struct domain *d, void *addr, size_t len);
/* Wipe [addr, addr+len) and give its locked-memory budget back; a chunk
 * left with no committed page closes its file, which gives its RAM back. */
int pk_secretmem_decommit(struct domain *d, void *addr, size_t len);
/* Wipe what of [addr, addr+len) is in RAM (a purge: the kernel cannot
 * drop single secretmem pages, only whole files). */
void pk_secretmem_wipe(void *addr, size_t len);
/* 1 if addr is a committed secret page of d. */
int pk_secretmem_holds(const struct domain *d, const void *addr);

/* In a fork child, before anything touches domain data: give d fresh,
 * zeroed secret pages where the parent's were (they were not inherited). */
void pk_secretmem_fork_child(struct domain *d, void *arg);

#pragma GCC visibility pop

#endif
