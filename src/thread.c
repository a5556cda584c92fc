/*
 * New threads start outside every domain.
 *
 * The kernel gives a new thread a copy of its creator's PKRU, so a thread
 * created inside a domain would start with that domain open while its own
 * open set is empty.  pkalloc exports pthread_create and C11's thrd_create:
 * each runs the start routine behind a trampoline that first closes every
 * domain for the new thread.  Threads the C library starts by itself
 * (SIGEV_THREAD timers, POSIX AIO helpers) bypass these; see pkalloc(7).
 *
 * Not under ThreadSanitizer: its runtime's pthread_create, in the program,
 * comes first and calls the next one, which would be this; our trampoline
 * would then run before the runtime has set the thread up, and crash it.
 * Such builds run on the mprotect backend, where a new thread needs nothing.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "protect.h"
#include "enter.h"
#include "settings.h"
#include "fatal.h"
#include "init.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <threads.h>

#ifndef PKALLOC_TSAN
typedef int create_fn(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
typedef int thrd_create_fn(thrd_t *, thrd_start_t, void *);

struct start {
	void *(*fn)(void *);
	thrd_start_t cfn;
	void *arg;
};

static create_fn *real_create;
static thrd_create_fn *real_thrd_create;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void find_real(void)
{
	real_create = (create_fn *)dlsym(RTLD_NEXT, "pthread_create");
	real_thrd_create = (thrd_create_fn *)dlsym(RTLD_NEXT, "thrd_create");
}

static struct start take_start(void *p)
{
	struct start s = *(struct start *)p;
	free(p);
	if (pk_cfg->backend && pk_cfg->backend->thread_start)
		pk_cfg->backend->thread_start();
	if (pk_cfg->backend)
		pk_enter_thread_arm();      /* see enter.c: thread exit */
	return s;
}

static void *trampoline(void *p)
{
	struct start s = take_start(p);
	return s.fn(s.arg);
}

static int c11_trampoline(void *p)
{
	struct start s = take_start(p);
	return s.cfn(s.arg);
}

PKALLOC_API int thrd_create(thrd_t *t, thrd_start_t fn, void *arg)
{
	/* The C library allocates the new thread's TLS with malloc: never in
	 * a domain this thread captures with, the new thread starts outside. */
	pk_capture_off++;
	pthread_once(&real_once, find_real);
	if (!real_thrd_create)
		pk_fatal("thrd_create", NULL, 0, "the C library's thrd_create was not found");
	pk_init();
	struct start *s = malloc(sizeof *s);
	int err = thrd_nomem;
	if (s) {
		*s = (struct start){ .cfn = fn, .arg = arg };
		if ((err = real_thrd_create(t, c11_trampoline, s)) != thrd_success)
			free(s);
	}
	pk_capture_off--;
	return err;
}

PKALLOC_API int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	pk_capture_off++;     /* as in thrd_create */
	pthread_once(&real_once, find_real);
	if (!real_create)
		pk_fatal("pthread_create", NULL, 0, "the C library's pthread_create was not found");
	pk_init();
	struct start *s = malloc(sizeof *s);
	int err = EAGAIN;
	if (s) {
		*s = (struct start){ .fn = fn, .arg = arg };
		if ((err = real_create(t, attr, trampoline, s)) != 0)
			free(s);
	}
	pk_capture_off--;
	return err;
}
#endif
