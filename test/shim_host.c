/*
 * The program test/symbol-order.sh preloads into: it links nothing but the C
 * library.  It prints what pkalloc_malloc_replaced() says, if libpkalloc
 * is in the process at all.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int main(void)
{
	int (*replaced)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "pkalloc_malloc_replaced");
	if (replaced)
		printf("host: pkalloc_malloc_replaced %d\n", replaced());
	else
		printf("host: no pkalloc in this process\n");
	return 0;
}
