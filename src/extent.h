/* jemalloc extent hooks that carve a domain's extents from its reservation. */
#ifndef PKALLOC_EXTENT_H
#define PKALLOC_EXTENT_H

struct domain;

/* Fill d->hooks; jemalloc is handed &d->hooks at arenas.create. */
void extent_hooks_init(struct domain *d) __attribute__((visibility("hidden")));

#endif
