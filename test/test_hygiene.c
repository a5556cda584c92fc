/*
 * Secret hygiene: domain memory never reaches a core dump (MADV_DONTDUMP),
 * DOMAIN_MLOCK keeps it in RAM, DOMAIN_WIPEONFORK gives a fork child zeroed
 * data (with the domain still usable there), and a destroyed domain's
 * memory does not come back.
 */
#include "test.h"

#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define SLOT_OF(p) ((uintptr_t)(p) & ~(uintptr_t)(PKALLOC_RESERVATION - 1))

struct vma_facts {
	int ranges;          /* accessible ranges of the reservation seen */
	int all_dd;          /* every range of the reservation is MADV_DONTDUMP */
	int any_wf;          /* some range is MADV_WIPEONFORK */
	long locked_kb;      /* Locked: summed */
	int all_lf;          /* every accessible range is mlocked (on fault) */
};

static struct vma_facts facts(const void *p)
{
	uintptr_t lo = SLOT_OF(p), hi = lo + PKALLOC_RESERVATION;
	struct vma_facts v = { .all_dd = 1, .all_lf = 1 };
	FILE *f = fopen("/proc/self/smaps", "r");
	CHECK(f);
	char line[512], perms[8] = "";
	int in = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		char pr[8];
		if (sscanf(line, "%lx-%lx %7s", &a, &b, pr) == 3 && strchr(line, '-') < strchr(line, ' ')) {
			in = a >= lo && b <= hi;
			strcpy(perms, pr);
			continue;
		}
		long kb;
		if (in && sscanf(line, "Locked: %ld kB", &kb) == 1)
			v.locked_kb += kb;
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			if (!strstr(line, " dd"))
				v.all_dd = 0;
			if (strstr(line, " wf"))
				v.any_wf = 1;
			if (perms[0] == 'r' || perms[1] == 'w') {
				v.ranges++;
				if (!strstr(line, " lf") && !strstr(line, " lo"))
					v.all_lf = 0;
			}
		}
	}
	fclose(f);
	return v;
}

/* Without the right to lock memory, DOMAIN_MLOCK fails loudly: creating
 * the domain (its metadata needs locking) returns mlock's errno. */
static void mlock_refused(void *arg)
{
	(void)arg;
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct c[2];
	if (syscall(SYS_capget, &h, c) == 0) {
		c[0].effective &= ~(1u << CAP_IPC_LOCK);
		c[0].permitted &= ~(1u << CAP_IPC_LOCK);
		CHECK_OK(syscall(SYS_capset, &h, c));
	}
	struct rlimit rl = { 64 << 10, 64 << 10 };
	CHECK_OK(setrlimit(RLIMIT_MEMLOCK, &rl));
	errno = 0;
	domain_t *m = domain_create("refused", DOMAIN_MLOCK);
	if (m)
		FAIL("DOMAIN_MLOCK succeeded with a 64 KiB lock limit");
	if (errno != EPERM && errno != EAGAIN && errno != ENOMEM)
		FAIL("DOMAIN_MLOCK failed with %s, not mlock's error", strerror(errno));
	/* Nothing else is affected. */
	domain_t *ok = domain_create("plain", 0);
	CHECK(ok);
	void *p = domain_malloc(ok, 10);
	CHECK(p);
	domain_free(p);
	CHECK_OK(domain_destroy(ok));
}

/* exec from inside a domain: the new program has none of its memory. */
static char exec_check[160];
static void exec_inside(void *arg)
{
	CHECK_OK(domain_enter(arg, DOMAIN_RDWR));
	execl("/bin/sh", "sh", "-c", exec_check, (char *)NULL);
	_exit(98);
}

static domain_t *wd;
static unsigned char *wsecret;

static void child_of_wipeonfork(void *arg)
{
	(void)arg;
	CHECK_OK(domain_enter(wd, DOMAIN_RDWR));
	for (int i = 0; i < 64; i++)
		if (wsecret[i])
			FAIL("byte %d of a DOMAIN_WIPEONFORK secret survived fork: %#x", i, wsecret[i]);
	/* The domain itself still works in the child. */
	unsigned char *p = domain_malloc(wd, 100);
	CHECK(p);
	memset(p, 7, 100);
	domain_free(p);
	domain_free(wsecret);
	CHECK_OK(domain_exit(wd));
}

static void child_of_plain(void *arg)
{
	unsigned char *s = arg;
	domain_t *d = domain_of(s);
	CHECK(d);
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	CHECK_INT(s[0], ==, 0x42);     /* without the flag the child keeps it */
	CHECK_OK(domain_exit(d));
}

int main(void)
{
	/* Core dumps: every range of a plain domain is MADV_DONTDUMP. */
	domain_t *d = domain_create("hygiene", 0);
	CHECK(d);
	unsigned char *s = domain_malloc(d, 64);
	CHECK(s);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	memset(s, 0x42, 64);
	CHECK_OK(domain_exit(d));
	struct vma_facts v = facts(s);
	CHECK(v.all_dd);
	CHECK_INT(v.ranges, >=, 0);
	CHECK(!v.any_wf);
	CHECK_EXITED_OK(in_child(child_of_plain, s, NULL, 0));

	/* DOMAIN_MLOCK: the domain's ranges are locked, its touched pages count. */
	domain_t *m = domain_create("locked", DOMAIN_MLOCK);
	if (!m && under_valgrind()) {
		/* valgrind 3.19 lacks mlock2, and glibc then says EINVAL. */
		fprintf(stderr, "DOMAIN_MLOCK not checked under valgrind: %s\n", strerror(errno));
	} else if (!m) {
		if (errno == EPERM || errno == EAGAIN || errno == ENOMEM)
			fprintf(stderr, "DOMAIN_MLOCK refused here (%s): the error came back, as it must\n",
			        strerror(errno));
		else
			FAIL("domain_create(DOMAIN_MLOCK): %s", strerror(errno));
	} else {
		unsigned char *big = domain_malloc(m, 64 << 10);
		CHECK(big);
		CHECK_OK(domain_enter(m, DOMAIN_RDWR));
		memset(big, 1, 64 << 10);
		struct vma_facts mv = facts(big);
		CHECK_OK(domain_exit(m));
		CHECK(mv.all_lf);
		CHECK_INT(mv.locked_kb, >=, 64);
		CHECK(mv.all_dd);
		domain_free(big);
		CHECK_OK(domain_destroy(m));
	}

	if (!under_valgrind())
		CHECK_EXITED_OK(in_child(mlock_refused, NULL, NULL, 0));

	/* DOMAIN_WIPEONFORK: the child sees zeros, the parent keeps the secret. */
	wd = domain_create("wipe", DOMAIN_WIPEONFORK);
	CHECK(wd);
	wsecret = domain_malloc(wd, 64);
	CHECK(wsecret);
	CHECK_OK(domain_enter(wd, DOMAIN_RDWR));
	memset(wsecret, 0x99, 64);
	CHECK_OK(domain_exit(wd));
	CHECK(facts(wsecret).any_wf);
	CHECK_EXITED_OK(in_child(child_of_wipeonfork, NULL, NULL, 0));
	CHECK_OK(domain_enter(wd, DOMAIN_RDONLY));
	for (int i = 0; i < 64; i++)
		CHECK_INT(wsecret[i], ==, 0x99);
	CHECK_OK(domain_exit(wd));
	domain_free(wsecret);
	CHECK_OK(domain_destroy(wd));

	/* exec leaves nothing behind, even from inside a domain. */
	snprintf(exec_check, sizeof exec_check,
	         "if grep -q '^%lx-' /proc/self/maps; then exit 1; else exit 0; fi",
	         (unsigned long)SLOT_OF(s));
	{
		char maps[64];
		snprintf(maps, sizeof maps, "%lx-", (unsigned long)SLOT_OF(s));
		FILE *mf = fopen("/proc/self/maps", "r");
		char ml[256];
		int here = 0;
		while (mf && fgets(ml, sizeof ml, mf))
			here |= strncmp(ml, maps, strlen(maps)) == 0;
		if (mf)
			fclose(mf);
		CHECK(here);                 /* the check can see a reservation */
	}
	CHECK_EXITED_OK(in_child(exec_inside, d, NULL, 0));

	/* Destroyed: nothing of the domain can be read back, even through a new
	 * domain that lands on the same addresses. */
	uintptr_t slot = SLOT_OF(s);
	CHECK_OK(domain_destroy(d));
	CHECK(probe((void *)s, 0).hit);
	domain_t *again = domain_create("again", 0);
	CHECK(again);
	unsigned char *n = domain_malloc(again, 64);
	CHECK(n);
	CHECK_OK(domain_enter(again, DOMAIN_RDONLY));
	if (SLOT_OF(n) == slot)
		for (int i = 0; i < 64; i++)
			CHECK_INT(n[i], ==, 0);
	CHECK_OK(domain_exit(again));
	domain_free(n);
	CHECK_OK(domain_destroy(again));
	return 0;
}
