/* Whether the malloc replacement (override.c) is in effect, and what
 * capture needs of it. */
#ifndef PKALLOC_OVERRIDE_H
#define PKALLOC_OVERRIDE_H

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

/* 1 if the process's malloc, calloc, realloc and free are libpkalloc's,
 * else 0.  Decided once, when libpkalloc is loaded; the same answer
 * afterwards, with no lookup. */
int pk_override_replaced(void);

/* 1 if a domain may capture malloc here.  Else 0, and the first refusal
 * prints one line saying how to load libpkalloc so that it can. */
int pk_override_capture_ok(void);

#pragma GCC visibility pop

#endif
