/*
 * The one fatal path.  It may run with the heap in any state, so it formats
 * by hand and writes with write(2) only, then aborts.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

void fatal(const char *what, const void *ptr, const char *why)
{
	char buf[256];
	size_t n = put(buf, 0, sizeof buf - 1, "pkalloc: ");
	n = put(buf, n, sizeof buf - 1, what);
	n = put(buf, n, sizeof buf - 1, "(0x");
	char hex[2 * sizeof(uintptr_t) + 1];
	uintptr_t v = (uintptr_t)ptr;
	int i = (int)sizeof hex - 1;
	hex[i] = '\0';
	do {
		hex[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v && i > 0);
	n = put(buf, n, sizeof buf - 1, hex + i);
	n = put(buf, n, sizeof buf - 1, "): ");
	n = put(buf, n, sizeof buf - 1, why);
	buf[n++] = '\n';
	ssize_t r = write(STDERR_FILENO, buf, n);
	(void)r;
	abort();
}
