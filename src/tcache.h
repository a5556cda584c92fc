/* Per-(thread, domain) jemalloc thread caches (tcache.c). */
#ifndef PKALLOC_TCACHE_H
#define PKALLOC_TCACHE_H

struct domain;

/* The MALLOCX_TCACHE flag for allocating in or freeing to d on this
 * thread; the caller holds a window on d. */
int tcache_flags(struct domain *d) __attribute__((visibility("hidden")));
/* Thread exit (a pthread key destructor): flush this thread's caches. */
void tcache_thread_exit(void *arg) __attribute__((visibility("hidden")));
/* d is being destroyed and nobody can pin it: flush every cache of d. */
void tcache_domain_destroy(struct domain *d) __attribute__((visibility("hidden")));
void tcache_prefork(void) __attribute__((visibility("hidden")));
void tcache_postfork(int child) __attribute__((visibility("hidden")));

#endif
