/*
 * Protection semantics on one thread: memory of a domain is reachable only
 * between domain_enter and domain_exit, with the access asked for; nested
 * and interleaved enters give the widest open access; jemalloc's metadata
 * for the arena is protected like the data; guards are never reachable.
 */
#include "test.h"

#include <fcntl.h>

#define SLOT_OF(p) ((char *)((uintptr_t)(p) & ~(uintptr_t)(PKALLOC_RESERVATION - 1)))

/* On pku every mapped, accessible range of the reservation carries key. */
static void check_smaps_keys(char *slot, int key)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	CHECK(f);
	char line[512];
	unsigned long lo = 0, hi = 0;
	char perms[8] = "";
	int inside = 0, checked = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		char pr[8];
		if (sscanf(line, "%lx-%lx %7s", &a, &b, pr) == 3 && strchr(line, ' ')) {
			lo = a, hi = b;
			strcpy(perms, pr);
			inside = lo >= (uintptr_t)slot && hi <= (uintptr_t)slot + PKALLOC_RESERVATION;
			continue;
		}
		int k;
		if (inside && sscanf(line, "ProtectionKey: %d", &k) == 1 && perms[0] == 'r') {
			if (k != key)
				FAIL("range %lx-%lx %s of the domain has pkey %d, not %d", lo, hi, perms, k, key);
			checked++;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0 && !strstr(line, " dd"))
			FAIL("range %lx-%lx is not excluded from core dumps: %s", lo, hi, line);
	}
	fclose(f);
	CHECK_INT(checked, >=, 1);
}

int main(void)
{
	domain_t *a = domain_create("alpha", 0), *b = domain_create("beta", 0);
	CHECK(a && b);

	/* Allocated from outside: the window closes again afterwards. */
	char *pa = domain_malloc(a, 64), *pb = domain_malloc(b, 64);
	char *big = domain_malloc(a, 8 << 20);
	CHECK(pa && pb && big);
	CHECK_DENIED(pa, 0);
	CHECK_DENIED(pa, 1);
	CHECK_DENIED(big, 0);
	CHECK_DENIED(big + (8 << 20) - 1, 1);

	int key = -1;
	if (on_pku()) {
		struct fault f = probe(pa, 0);
		key = f.pkey;
		CHECK_INT(key, >=, 1);
		CHECK_INT(key, <=, 15);
		CHECK_PTR(f.addr, ==, pa);
		struct fault g = probe(pb, 1);
		CHECK_INT(g.code, ==, SEGV_PKUERR);
		CHECK_INT(g.pkey, !=, key);     /* one key per domain */
	}

	/* jemalloc's metadata for the arena sits at the start of the
	 * reservation, after the guard: closed like the data. */
	char *slot = SLOT_OF(pa);
	CHECK_PTR(SLOT_OF(big), ==, slot);
	CHECK_DENIED(slot + PKALLOC_GUARD, 0);
	CHECK_DENIED(slot + PKALLOC_GUARD, 1);
	if (on_pku()) {
		CHECK_INT(probe(slot + PKALLOC_GUARD, 0).pkey, ==, key);
		check_smaps_keys(slot, key);
	}

	/* Read-write. */
	CHECK_OK(domain_enter(a, DOMAIN_RDWR));
	CHECK_ALLOWED(pa, 0);
	CHECK_ALLOWED(pa, 1);
	CHECK_ALLOWED(big + (4 << 20), 1);
	strcpy(pa, "alpha secret");
	/* Entering a never opens b. */
	CHECK_DENIED(pb, 0);
	/* The guards stay closed even inside. */
	CHECK(probe(slot + 4096, 0).hit);
	CHECK(probe(slot + PKALLOC_RESERVATION - 4096, 0).hit);
	CHECK_OK(domain_exit(a));
	CHECK_DENIED(pa, 0);
	CHECK_DENIED(pa, 1);

	/* Read-only: reads work, writes fault. */
	CHECK_OK(domain_enter(a, DOMAIN_RDONLY));
	CHECK_ALLOWED(pa, 0);
	CHECK(strcmp(pa, "alpha secret") == 0);
	struct fault w = probe(pa, 1);
	CHECK(w.hit);
	if (on_pku()) {
		CHECK_INT(w.code, ==, SEGV_PKUERR);
		CHECK_INT(w.pkey, ==, key);
	} else {
		CHECK_INT(w.code, ==, SEGV_ACCERR);
	}

	/* Nested: widest open access wins; exit closes the latest enter. */
	CHECK_OK(domain_enter(a, DOMAIN_RDWR));          /* RO, RW */
	CHECK_ALLOWED(pa, 1);
	CHECK_OK(domain_exit(a));                        /* RO */
	CHECK_ALLOWED(pa, 0);
	CHECK(probe(pa, 1).hit);
	CHECK_OK(domain_exit(a));                        /* closed */
	CHECK_DENIED(pa, 0);

	CHECK_OK(domain_enter(a, DOMAIN_RDWR));          /* RW */
	CHECK_OK(domain_enter(a, DOMAIN_RDONLY));        /* RW, RO */
	CHECK_ALLOWED(pa, 1);                            /* still widest: RW */
	CHECK_OK(domain_exit(a));                        /* RW */
	CHECK_ALLOWED(pa, 1);
	CHECK_OK(domain_exit(a));
	CHECK_DENIED(pa, 1);

	/* Several domains, exited out of order. */
	CHECK_OK(domain_enter(a, DOMAIN_RDWR));
	CHECK_OK(domain_enter(b, DOMAIN_RDONLY));
	CHECK_ALLOWED(pa, 1);
	CHECK_ALLOWED(pb, 0);
	CHECK(probe(pb, 1).hit);
	CHECK_OK(domain_exit(a));                        /* a first */
	CHECK_DENIED(pa, 0);
	CHECK_ALLOWED(pb, 0);
	CHECK_OK(domain_exit(b));
	CHECK_DENIED(pb, 0);

	/* Allocating from inside leaves the access as it was. */
	CHECK_OK(domain_enter(a, DOMAIN_RDONLY));
	char *pc = domain_malloc(a, 32);
	CHECK(pc);
	CHECK_ALLOWED(pc, 0);
	CHECK(probe(pc, 1).hit);
	domain_free(pc);
	CHECK(probe(pa, 1).hit);
	CHECK_ALLOWED(pa, 0);
	CHECK_OK(domain_exit(a));
	CHECK_DENIED(pa, 0);

	/* The kernel honours the protection for this thread's own copies:
	 * read(2) into a closed domain buffer fails with EFAULT. */
	int fds[2];
	CHECK_OK(pipe(fds));
	CHECK_INT(write(fds[1], "0123456789", 10), ==, 10);
	errno = 0;
	CHECK_INT(read(fds[0], pa, 10), ==, -1);
	CHECK_INT(errno, ==, EFAULT);
	CHECK_OK(domain_enter(a, DOMAIN_RDWR));
	CHECK_INT(read(fds[0], pa, 10), ==, 10);
	CHECK(memcmp(pa, "0123456789", 10) == 0);
	CHECK_OK(domain_exit(a));
	/* ... and write(2) from it too. */
	errno = 0;
	CHECK_INT(write(fds[1], pa, 10), ==, -1);
	CHECK_INT(errno, ==, EFAULT);
	close(fds[0]);
	close(fds[1]);

	domain_free(pa);
	domain_free(big);
	domain_free(pb);
	CHECK_OK(domain_destroy(a));
	CHECK_OK(domain_destroy(b));
	/* Destroyed: the reservation is gone (not even reachable by entering). */
	CHECK(probe(slot + PKALLOC_GUARD, 0).hit);
	return 0;
}
