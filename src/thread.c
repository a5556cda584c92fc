/*
 * New threads start outside every domain.
 *
 * The kernel gives a new thread a copy of its creator's PKRU, so a thread
 * created inside a domain would start with that domain open while its own
 * open set is empty.  pkalloc exports pthread_create: the wrapper runs the
 * start routine behind a trampoline that first closes every domain for the
 * new thread, then calls the C library's pthread_create.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "protect.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>

typedef int create_fn(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

struct start {
	void *(*fn)(void *);
	void *arg;
};

static create_fn *real_create;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void find_real(void)
{
	real_create = (create_fn *)dlsym(RTLD_NEXT, "pthread_create");
}

static void *trampoline(void *p)
{
	struct start s = *(struct start *)p;
	free(p);
	if (cfg->backend && cfg->backend->thread_start)
		cfg->backend->thread_start();
	return s.fn(s.arg);
}

__attribute__((visibility("default")))
int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	pthread_once(&real_once, find_real);
	if (!real_create)
		fatal("pthread_create", NULL, "the C library's pthread_create was not found");
	pkalloc_init();
	struct start *s = malloc(sizeof *s);
	if (!s)
		return EAGAIN;
	s->fn = fn;
	s->arg = arg;
	int err = real_create(t, attr, trampoline, s);
	if (err)
		free(s);
	return err;
}
