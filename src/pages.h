/*
 * A domain's pages as one range [lo, top): the permission and key they
 * carry, changed with one system call each time.
 */
#ifndef PKALLOC_PAGES_H
#define PKALLOC_PAGES_H

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

struct domain;
struct open_set;

/* Give d's pages the permission the backend wants for d now (want()),
 * with one mprotect call if it differs from what they have; d->lock held.
 * 0, or an errno value with the pages as they were. */
int pk_pages_apply(struct domain *d);
/* The same, taking and releasing d->lock, and fatal on failure: for the
 * changes that must not fail (closing a domain).  what and why: the fatal
 * line's call and reason (pkalloc(3), DIAGNOSTICS). */
void pk_pages_apply_or_die(struct domain *d, const char *what, const char *why);
/* Move d's pages to key `key` with permission prot (pkey_mprotect). */
int pk_pages_apply_key(struct domain *d, int key, int prot);

/* fork() for every backend: open d before (prefork), and after, in parent
 * and child, give it back what its state says; in the child, set is the
 * only thread's open set, the whole truth about who is inside. */
void pk_pages_prefork(struct domain *d);
void pk_pages_postfork(struct domain *d, const struct open_set *set, int child);

#pragma GCC visibility pop

#endif
