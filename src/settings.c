/*
 * Storage of the configuration.  It has a page of its own so that init.c
 * can make it read-only once set.
 */
#include "settings.h"

static union {
	struct config c;
	char page[4096];
} ro __attribute__((aligned(4096)));

const struct config *const pk_cfg = &ro.c;

struct config *pk_settings_edit(void)
{
	return &ro.c;
}

void *pk_settings_page(size_t *len)
{
	*len = sizeof ro;
	return &ro;
}
