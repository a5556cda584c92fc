/*
 * Initialisation: the backend choice, the configuration page (read-only once
 * set), the thread-exit hook and the fork handlers.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "protect.h"
#include "enter.h"
#include "cache.h"
#include "override.h"
#include "secretmem.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int domain_registry_init(void) HIDDEN;
void domain_registry_reset_lock(void) HIDDEN;

/* The configuration has a page of its own so that it can be made read-only. */
static union {
	struct config c;
	char page[4096];
} ro __attribute__((aligned(4096)));

const struct config *const cfg = &ro.c;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void say(const char *a, const char *b, const char *c)
{
	struct line l = { .n = 0 };
	line_put(&l, "pkalloc: ");
	line_put(&l, a);
	line_put(&l, b);
	line_put(&l, c);
	line_write(&l);
}

static void choose_backend(void)
{
	const char *strict = secure_getenv("PKALLOC_STRICT");
	ro.c.strict = strict && strcmp(strict, "1") == 0;

	const char *want = secure_getenv("PKALLOC_BACKEND");
	if (!want || !*want)
		want = "auto";
	int pku_err = backend_pku.probe();

	if (strcmp(want, "auto") == 0) {
		ro.c.backend = pku_err ? &backend_mprotect : &backend_pku;
	} else if (strcmp(want, "pku") == 0) {
		if (pku_err) {
			/* An explicit request is never downgraded silently. */
			say("PKALLOC_BACKEND=pku, but this CPU or kernel has no protection keys (",
			    strerror(pku_err), "); every domain_create fails with ENOTSUP");
			ro.c.init_errno = ENOTSUP;
		} else {
			ro.c.backend = &backend_pku;
		}
	} else if (strcmp(want, "mprotect") == 0) {
		ro.c.backend = &backend_mprotect;
	} else {
		say("PKALLOC_BACKEND=", want,
		    " is not auto, pku or mprotect; every domain_create fails with EINVAL");
		ro.c.init_errno = EINVAL;
	}
}

static void each_prefork(struct domain *d)
{
	prot_prefork_domain(d);
}

static void each_parent(struct domain *d)
{
	prot_postfork_domain(d, enter_open_set(), 0);
}

static void each_child(struct domain *d)
{
	/* Only this thread survives; its open set says where it is inside,
	 * and no access window is open across fork. */
	const struct open_set *s = enter_open_set();
	atomic_store(&d->inside, 0);
	/* A destroy another thread had begun never happens in the child. */
	atomic_store(&d->state, DOM_LIVE);
	prot_postfork_domain(d, s, 1);
}

/* Registered after jemalloc's handlers, so this prepare handler runs before
 * jemalloc's (which locks mutexes inside every domain) and the parent and
 * child handlers run after jemalloc's. */
static void prefork(void)
{
	domain_lock_registry();
	cache_prefork();
	if (cfg->backend->prefork_thread)
		cfg->backend->prefork_thread(enter_open_set());
	domain_foreach_live(each_prefork);
}

static void postfork_parent(void)
{
	domain_foreach_live(each_parent);
	if (cfg->backend->postfork_thread)
		cfg->backend->postfork_thread(enter_open_set(), 0);
	cache_postfork(0);
	domain_unlock_registry();
}

static void postfork_child(void)
{
	domain_registry_reset_lock();
	/* Before anything touches domain data: secretmem pages were not
	 * inherited (MADV_DONTFORK), the child gets zeroed ones in place. */
	domain_foreach_live(secretmem_fork_child);
	cache_postfork(1);
	prot_threads_fork_child(enter_open_set());
	domain_foreach_live(each_child);
	if (cfg->backend->postfork_thread)
		cfg->backend->postfork_thread(enter_open_set(), 1);
}

/* Thread exit, one call per destructor round (enter.c counts them): the
 * thread leaves every domain, and its caches become orphans. */
static void thread_exit(void *set)
{
	enter_thread_exit(set);
	cache_thread_exit(enter_thread_done());
}

static void init_once(void)
{
	/* jemalloc registers its fork handlers when it initialises; ours must
	 * come later so that they run first in the prepare phase (prepare
	 * handlers run in reverse order) and open every domain before
	 * jemalloc locks the mutexes inside them. */
	void *p = mallocx(1, 0);
	if (p)
		dallocx(p, 0);
	/* jemalloc's background threads purge every arena with no window
	 * open; they would fault on domain memory.  Off for good. */
	bool off = false;
	mallctl("background_thread", NULL, NULL, &off, sizeof off);

	cache_classes_init();
	int err = domain_registry_init();
	if (err) {
		ro.c.init_errno = err;
	} else {
		choose_backend();
	}
	ro.c.membarrier = prot_membarrier_init();
	ro.c.per_thread = ro.c.backend && ro.c.backend->per_thread;
	ro.c.malloc_replaced = override_replaced();
	if (ro.c.backend) {
		if ((err = pthread_key_create(&ro.c.thread_key, thread_exit)) != 0 ||
		    (err = pthread_atfork(prefork, postfork_parent, postfork_child)) != 0) {
			ro.c.backend = NULL;
			ro.c.init_errno = err;
		}
	}
	mprotect(&ro, sizeof ro, PROT_READ);
	if (ro.c.backend)
		enter_thread_arm();      /* this thread too, from now on */
}

void pkalloc_init(void)
{
	pthread_once(&once, init_once);
}

const char *pkalloc_backend(void)
{
	pkalloc_init();
	return cfg->backend ? cfg->backend->name : "none";
}

int pkalloc_malloc_replaced(void)
{
	pkalloc_init();
	return cfg->malloc_replaced;
}
