/* jemalloc extent hooks that carve a domain's extents from its reservation. */
#ifndef PKALLOC_EXTENT_H
#define PKALLOC_EXTENT_H

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

struct domain;

/* Fill d->hooks; jemalloc is handed &d->hooks at arenas.create. */
void pk_extent_hooks_init(struct domain *d);
/* Why the calling thread's last extent allocation failed, if it was not
 * for want of space (mlock's errno, say); 0 otherwise.  Clears it. */
int pk_extent_take_error(void);

#pragma GCC visibility pop

#endif
