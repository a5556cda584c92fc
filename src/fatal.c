/*
 * The one fatal path.  It may run with the heap in any state, so it formats
 * by hand and writes with write(2) only, then aborts.
 */
#define _GNU_SOURCE
#include "fatal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pk_line_put(struct line *l, const char *s)
{
	while (*s && l->n < sizeof l->buf - 1)
		l->buf[l->n++] = *s++;
}

void pk_line_put_num(struct line *l, unsigned long v, unsigned base)
{
	char tmp[24];
	int i = sizeof tmp;
	tmp[--i] = '\0';
	do {
		tmp[--i] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && i > 0);
	if (base == 16)
		pk_line_put(l, "0x");
	pk_line_put(l, tmp + i);
}

void pk_line_put_errno(struct line *l, int err)
{
	/* strerrorname_np returns a constant string: safe in a handler. */
	const char *name = strerrorname_np(err);
	pk_line_put(l, " (");
	if (name)
		pk_line_put(l, name);
	else
		pk_line_put_num(l, (unsigned long)err, 10);
	pk_line_put(l, ")");
}

void pk_line_write(struct line *l)
{
	l->buf[l->n++] = '\n';
	ssize_t r = write(STDERR_FILENO, l->buf, l->n);
	(void)r;
}

void pk_fatal(const char *what, const void *ptr, int err, const char *why)
{
	struct line l = { .n = 0 };
	pk_line_put(&l, "pkalloc: ");
	pk_line_put(&l, what);
	pk_line_put(&l, "(");
	pk_line_put_num(&l, (unsigned long)(uintptr_t)ptr, 16);
	pk_line_put(&l, "): ");
	pk_line_put(&l, why);
	if (err)
		pk_line_put_errno(&l, err);
	pk_line_write(&l);
	abort();
}
