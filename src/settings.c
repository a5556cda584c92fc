/*
 * Storage of the configuration.  It has a page of its own so that init.c
 * can make it read-only once set.
 */
#include "settings.h"

static union {
	struct config c;
	char page[4096];
} ro __attribute__((aligned(4096)));

const struct config *const cfg = &ro.c;

struct config *settings_edit(void)
{
	return &ro.c;
}

void *settings_page(size_t *len)
{
	*len = sizeof ro;
	return &ro;
}
