/*
 * The one fatal path.  It may run with the heap in any state, so it formats
 * by hand and writes with write(2) only, then aborts.
 */
#include "internal.h"

#include <stdlib.h>
#include <unistd.h>

void line_put(struct line *l, const char *s)
{
	while (*s && l->n < sizeof l->buf - 1)
		l->buf[l->n++] = *s++;
}

void line_put_num(struct line *l, unsigned long v, unsigned base)
{
	char tmp[24];
	int i = sizeof tmp;
	tmp[--i] = '\0';
	do {
		tmp[--i] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && i > 0);
	if (base == 16)
		line_put(l, "0x");
	line_put(l, tmp + i);
}

void line_write(struct line *l)
{
	l->buf[l->n++] = '\n';
	ssize_t r = write(STDERR_FILENO, l->buf, l->n);
	(void)r;
}

void fatal(const char *what, const void *ptr, const char *why)
{
	struct line l = { .n = 0 };
	line_put(&l, "pkalloc: ");
	line_put(&l, what);
	line_put(&l, "(");
	line_put_num(&l, (unsigned long)(uintptr_t)ptr, 16);
	line_put(&l, "): ");
	line_put(&l, why);
	line_write(&l);
	abort();
}
