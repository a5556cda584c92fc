/* Per-thread open sets, domain_enter/domain_exit, access windows. */
#ifndef PKALLOC_ENTER_H
#define PKALLOC_ENTER_H

#include <stdint.h>

struct domain;
struct open_set;

/* An access window: the calling thread may use d's memory (read and write)
 * between window_open and window_close, and d cannot be destroyed. */
struct window {
	struct domain *d;
	uintptr_t token;
	int pinned, opened;
};

/* 0, or EINVAL if d is not live. */
int window_open(struct domain *d, struct window *w) __attribute__((visibility("hidden")));
void window_close(struct window *w) __attribute__((visibility("hidden")));

/* Pin d against destruction; 0 if it is not live. */
int enter_pin(struct domain *d) __attribute__((visibility("hidden")));
void enter_unpin(struct domain *d) __attribute__((visibility("hidden")));

/* The calling thread's open set (fork handlers), and its exit handler. */
struct open_set *enter_open_set(void) __attribute__((visibility("hidden")));
void enter_thread_exit(void *set) __attribute__((visibility("hidden")));

#endif
