/*
 * 7. Secret memory (DOMAIN_SECRETMEM): how many 32-byte secrets one
 * locked-memory budget (RLIMIT_MEMLOCK, 8 MiB) holds in memfd_secret
 * memory, for pkalloc (one domain) against one memfd_secret mapping per
 * secret (what per-secret allocators do) and sodium_malloc (whose mlock
 * quietly fails past the budget: counted while VmLck still grows); and
 * what a secretmem domain costs against an ordinary one for alloc+free
 * and enter+exit.  The counts run in a child that drops CAP_IPC_LOCK and
 * sets the limit: they hold under emulation too; the timings do not.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <pkalloc.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_SODIUM
#include <sodium.h>
#endif

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

#define S "secretmem"
#define SECRET 32
#define BUDGET ((long)8 << 20)
#define CAP_COUNT 1000000L

static long vm_locked(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb << 10;
}

/* In the child: held to BUDGET more locked bytes than it has now. */
static int hold_to_budget(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct c[2];
	if (syscall(SYS_capget, &h, c) != 0)
		return -1;
	c[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	if (syscall(SYS_capset, &h, c) != 0)
		return -1;
	rlim_t lim = (rlim_t)(vm_locked() + BUDGET);
	struct rlimit rl = { lim, lim };
	return setrlimit(RLIMIT_MEMLOCK, &rl);
}

static long fill_pkalloc(void)
{
	domain_t *d = domain_create("bench-secretmem", DOMAIN_SECRETMEM);
	if (!d || domain_enter(d, DOMAIN_RDWR) != 0)
		return -1;
	long n = 0;
	char *p;
	while (n < CAP_COUNT && (p = domain_malloc(d, SECRET)) != NULL) {
		memset(p, 0x5e, SECRET);
		n++;
	}
	return n;
}

/* One memfd_secret file and mapping per secret: one page each. */
static long fill_per_secret(void)
{
	long n = 0, page = sysconf(_SC_PAGESIZE);
	while (n < CAP_COUNT) {
		int fd = (int)syscall(SYS_memfd_secret, O_CLOEXEC);
		if (fd < 0)
			break;
		void *p = MAP_FAILED;
		if (ftruncate(fd, page) == 0)
			p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);       /* the mapping keeps the file */
		if (p == MAP_FAILED)
			break;
		memset(p, 0x5e, SECRET);
		n++;
	}
	return n;
}

#ifdef HAVE_SODIUM
/* sodium_malloc ignores mlock's failure: count the secrets it locked. */
static long fill_sodium(void)
{
	if (sodium_init() < 0)
		return -1;
	long n = 0, before = vm_locked();
	while (n < CAP_COUNT) {
		void *p = sodium_malloc(SECRET);
		if (!p)
			break;
		long now = vm_locked();
		if (now <= before)
			break;         /* not locked: past the budget */
		before = now;
		n++;
	}
	return n;
}
#endif

/* fill() in a child held to the budget; the count, or -1. */
static long in_budget(long (*fill)(void))
{
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		long n = hold_to_budget() == 0 ? fill() : -1;
		ssize_t w = write(fds[1], &n, sizeof n);
		_exit(w == sizeof n ? 0 : 1);
	}
	close(fds[1]);
	long n = -1;
	if (pid < 0 || read(fds[0], &n, sizeof n) != sizeof n)
		n = -1;
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return n;
}

static void count_row(const char *name, long n)
{
	if (n < 0) {
		bench_error("secretmem: %s: the child could not count", name);
		return;
	}
	struct row *r = record(S, name, NULL, "count", (double[]){ (double)n }, 1, n);
	row_note(r, "within %ld MiB of RLIMIT_MEMLOCK", BUDGET >> 20);
}

static domain_t *dom;

static void b_alloc_free(void *arg, long n)
{
	(void)arg;
	for (long i = 0; i < n; i++) {
		char *p = domain_malloc(dom, SECRET);
		*(volatile char *)p = 1;
		domain_free(p);
	}
}

static void b_enter_exit(void *arg, long n)
{
	(void)arg;
	for (long i = 0; i < n; i++) {
		domain_enter(dom, DOMAIN_RDWR);
		domain_exit(dom);
	}
}

/* alloc+free (inside the domain) and enter+exit of a domain made with flags. */
static void timings(const char *kind, unsigned flags)
{
	char name[64];
	dom = domain_create("bench-secretmem", flags);
	if (!dom) {
		bench_error("secretmem: domain_create %s: %s", kind, strerror(errno));
		return;
	}
	void *keep = domain_malloc(dom, SECRET);    /* one secret held throughout */
	domain_enter(dom, DOMAIN_RDWR);
	snprintf(name, sizeof name, "domain_malloc+free inside %s", kind);
	measure(S, name, "32", b_alloc_free, NULL);
	domain_exit(dom);
	snprintf(name, sizeof name, "domain_enter+domain_exit %s", kind);
	measure(S, name, NULL, b_enter_exit, NULL);
	domain_free(keep);
	domain_destroy(dom);
}

static void all_na(const char *why)
{
	static const char *const counts[] = {
		"secrets pkalloc DOMAIN_SECRETMEM", "secrets memfd_secret per secret", "secrets sodium_malloc locked",
	};
	for (unsigned i = 0; i < sizeof counts / sizeof counts[0]; i++)
		record_na(S, counts[i], NULL, "count", "n/a: %s", why);
	record_na(S, "domain_malloc+free inside secretmem domain", "32", "ns/op", "n/a: %s", why);
	record_na(S, "domain_enter+domain_exit secretmem domain", NULL, "ns/op", "n/a: %s", why);
}

void bench_secretmem(void)
{
	section_title(S, "7. Secret memory", "size (bytes)",
	              "DOMAIN_SECRETMEM: 32-byte secrets held within 8 MiB of RLIMIT_MEMLOCK (a child "
	              "without CAP_IPC_LOCK) by one pkalloc domain, by one memfd_secret mapping per "
	              "secret, and locked by sodium_malloc (it ignores mlock failures: counted while "
	              "VmLck grows); then alloc+free inside and enter+exit (ns per pair) of a secretmem "
	              "domain against an ordinary one.");
	int fd = (int)syscall(SYS_memfd_secret, O_CLOEXEC);
	if (fd < 0) {
		all_na("no memfd_secret on this kernel (Linux 5.14+, secretmem.enable=1 before 6.5)");
		timings("ordinary domain", 0);
		return;
	}
	close(fd);
	count_row("secrets pkalloc DOMAIN_SECRETMEM", in_budget(fill_pkalloc));
	count_row("secrets memfd_secret per secret", in_budget(fill_per_secret));
#ifdef HAVE_SODIUM
	count_row("secrets sodium_malloc locked", in_budget(fill_sodium));
#else
	record_na(S, "secrets sodium_malloc locked", NULL, "count", "n/a: built without libsodium (libsodium-dev)");
#endif
	ratio(S, "secrets pkalloc DOMAIN_SECRETMEM", NULL, "secrets memfd_secret per secret", NULL, NULL, NULL);
	ratio(S, "secrets pkalloc DOMAIN_SECRETMEM", NULL, "secrets sodium_malloc locked", NULL, NULL, NULL);

	timings("secretmem domain", DOMAIN_SECRETMEM);
	timings("ordinary domain", 0);
	ratio(S, "domain_malloc+free inside secretmem domain", "32",
	      "domain_malloc+free inside ordinary domain", "32", NULL, NULL);
	ratio(S, "domain_enter+domain_exit secretmem domain", NULL,
	      "domain_enter+domain_exit ordinary domain", NULL, NULL, NULL);
	section_line(S, "backend %s; the budget is charged by the size mapped: pkalloc maps a "
	             "domain's data as jemalloc commits it", pkalloc_backend());
}
