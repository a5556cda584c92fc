/*
 * Initialisation: the backend choice, the configuration page (read-only once
 * set), the thread-exit hook and the fork handlers.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "init.h"
#include "protect.h"
#include "protect_pku.h"
#include "protect_mprotect.h"
#include "enter.h"
#include "cache.h"
#include "override.h"
#include "settings.h"
#include "fatal.h"
#include "openset.h"
#include "pages.h"
#include "registry.h"
#include "keys.h"
#include "secretmem.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void say(const char *a, const char *b, const char *c)
{
	struct line l = { .n = 0 };
	pk_line_put(&l, "pkalloc: ");
	pk_line_put(&l, a);
	pk_line_put(&l, b);
	pk_line_put(&l, c);
	pk_line_write(&l);
}

static void choose_backend(struct config *conf)
{
	const char *strict = secure_getenv("PKALLOC_STRICT");
	conf->strict = strict && strcmp(strict, "1") == 0;

	const char *want = secure_getenv("PKALLOC_BACKEND");
	if (!want || !*want)
		want = "auto";
	int pku_err = pk_backend_pku.probe();

	if (strcmp(want, "auto") == 0) {
		conf->backend = pku_err ? &pk_backend_mprotect : &pk_backend_pku;
	} else if (strcmp(want, "pku") == 0) {
		if (pku_err) {
			/* An explicit request is never downgraded silently. */
			say("PKALLOC_BACKEND=pku, but this CPU or kernel has no protection keys (",
			    strerror(pku_err), "); every domain_create fails with ENOTSUP");
			conf->init_errno = ENOTSUP;
		} else {
			conf->backend = &pk_backend_pku;
		}
	} else if (strcmp(want, "mprotect") == 0) {
		conf->backend = &pk_backend_mprotect;
	} else {
		say("PKALLOC_BACKEND=", want,
		    " is not auto, pku or mprotect; every domain_create fails with EINVAL");
		conf->init_errno = EINVAL;
	}
}

static void each_prefork(struct domain *d, void *arg)
{
	(void)arg;
	pk_pages_prefork(d);
}

static void each_parent(struct domain *d, void *set)
{
	pk_pages_postfork(d, set, 0);
}

static void each_child(struct domain *d, void *set)
{
	/* Only this thread survives; its open set says where it is inside,
	 * and no access window is open across fork. */
	atomic_store(&d->inside, 0);
	/* A destroy another thread had begun never happens in the child. */
	atomic_store(&d->state, DOM_LIVE);
	pk_pages_postfork(d, set, 1);
}

/* Registered after jemalloc's handlers, so this prepare handler runs before
 * jemalloc's (which locks mutexes inside every domain) and the parent and
 * child handlers run after jemalloc's. */
static void prefork(void)
{
	pk_registry_lock();
	pk_cache_prefork();
	if (pk_cfg->backend->prefork_thread)
		pk_cfg->backend->prefork_thread(pk_enter_open_set());
	pk_registry_foreach_live(each_prefork, NULL);
}

static void postfork_parent(void)
{
	pk_registry_foreach_live(each_parent, pk_enter_open_set());
	if (pk_cfg->backend->postfork_thread)
		pk_cfg->backend->postfork_thread(pk_enter_open_set(), 0);
	pk_cache_postfork(0);
	pk_registry_unlock();
}

static void postfork_child(void)
{
	pk_registry_reset_in_child();
	/* Before anything touches domain data: secretmem pages were not
	 * inherited (MADV_DONTFORK), the child gets zeroed ones in place. */
	pk_registry_foreach_live(pk_secretmem_fork_child, NULL);
	pk_cache_postfork(1);
	pk_openset_fork_child(pk_enter_open_set());
	pk_registry_foreach_live(each_child, pk_enter_open_set());
	if (pk_cfg->backend->postfork_thread)
		pk_cfg->backend->postfork_thread(pk_enter_open_set(), 1);
}

/* Thread exit, one call per destructor round (enter.c counts them): the
 * thread leaves every domain, and its caches become orphans. */
static void thread_exit(void *set)
{
	pk_enter_thread_exit(set);
	pk_cache_thread_exit(pk_enter_thread_done());
}

static void init_once(void)
{
	struct config *conf = pk_settings_edit();
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

	pk_cache_classes_init();
	int err = pk_registry_init();
	if (err) {
		conf->init_errno = err;
	} else {
		choose_backend(conf);
	}
	conf->membarrier = pk_openset_membarrier_init();
	conf->per_thread = conf->backend && conf->backend->per_thread;
	conf->malloc_replaced = pk_override_replaced();
	if (conf->backend) {
		if ((err = pthread_key_create(&conf->thread_key, thread_exit)) != 0 ||
		    (err = pthread_atfork(prefork, postfork_parent, postfork_child)) != 0) {
			conf->backend = NULL;
			conf->init_errno = err;
		}
	}
	/* A failure leaves the page writable: no worse than before. */
	size_t len;
	void *page = pk_settings_page(&len);
	pk_prot_protect(page, len, PROT_READ);
	if (conf->backend)
		pk_enter_thread_arm();      /* this thread too, from now on */
}

void pk_init(void)
{
	pthread_once(&once, init_once);
}

const char *pkalloc_backend(void)
{
	pk_init();
	return pk_cfg->backend ? pk_cfg->backend->name : "none";
}

int pkalloc_malloc_replaced(void)
{
	pk_init();
	return pk_cfg->malloc_replaced;
}
