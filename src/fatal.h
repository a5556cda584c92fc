/*
 * Lines on stderr built by hand and written with write(2) alone, usable with
 * the heap in any state and in a signal handler; and the one fatal path.
 */
#ifndef PKALLOC_FATAL_H
#define PKALLOC_FATAL_H

#include <stddef.h>

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

struct line {
	char buf[256];
	size_t n;
};
void pk_line_put(struct line *l, const char *s);
void pk_line_put_num(struct line *l, unsigned long v, unsigned base);  /* 16: 0x... */
/* " (ENOMEM)", the errno value's name, or its number where it has none. */
void pk_line_put_errno(struct line *l, int err);
void pk_line_write(struct line *l);                                    /* adds '\n' */

/* "pkalloc: WHAT(PTR): WHY (ERRNAME)" on stderr, then abort.  err is the
 * errno value in hand, or 0 for none. */
__attribute__((noreturn)) void pk_fatal(const char *what, const void *ptr, int err,
                                     const char *why);

#pragma GCC visibility pop

#endif
