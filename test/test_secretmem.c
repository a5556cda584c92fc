/*
 * DOMAIN_SECRETMEM: a secret in such a domain cannot be read through
 * /proc/self/mem, process_vm_readv or ptrace, where the same secret in an
 * ordinary domain can; it is protected like any domain's (other threads,
 * outside enters, the fault report); the locked-memory budget follows the
 * pages in use and its limit gives ENOMEM and one line, with what was
 * stored intact; free wipes, destroy gives everything back, a fork child
 * sees zeros and cannot touch the parent's secrets; an unavailable
 * memfd_secret gives ENOTSUP, never ordinary memory.
 */
#include "test.h"
#include "deny_secretmem.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

/* Decommitted pages at once, so the budget can be watched coming back. */
const char *malloc_conf = "dirty_decay_ms:0,muzzy_decay_ms:0";

/* Run fn in a child, its stderr into err; the child must exit 0 (what it
 * said is shown when it does not). */
static void child_passes(void (*fn)(void *), void *arg, char *err, size_t errlen)
{
	int st = in_child(fn, arg, err, errlen);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "child said: %s\n", err);
	CHECK_EXITED_OK(st);
}

/* How many "pkalloc:" lines err holds. */
static int pkalloc_lines(const char *err)
{
	int lines = 0;
	for (const char *s = err; (s = strstr(s, "pkalloc:")) != NULL; s++)
		lines++;
	return lines;
}

static const char SECRET[] = "correct horse battery staple 42";   /* 32 bytes */

/* The "FIELD: N kB" line of a /proc file (format: "FIELD: %ld kB"): N. */
static long proc_kb(const char *path, const char *format)
{
	FILE *f = fopen(path, "r");
	CHECK(f);
	char line[256];
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, format, &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Kilobytes of locked memory (VmLck) of this process. */
static long vm_locked_kb(void)
{
	return proc_kb("/proc/self/status", "VmLck: %ld kB");
}

/* KiB of VmLck a 64 KiB memfd_secret mapping adds.  Linux 6.18 counts
 * the mapping and checks RLIMIT_MEMLOCK against the total; Debian's 6.1
 * (6.1.0-57, measured) counts nothing and checks nothing. */
static long kernel_charge_kb(void)
{
	int fd = (int)syscall(SYS_memfd_secret, O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, 64 << 10));
	long before = vm_locked_kb();
	void *p = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	long kb = vm_locked_kb() - before;
	munmap(p, 64 << 10);
	close(fd);
	return kb;
}
static int charged;          /* the kernel counts secretmem in VmLck */

static char *store(domain_t *d, const char *s)
{
	char *p = domain_malloc(d, strlen(s) + 1);
	CHECK(p);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	memcpy(p, s, strlen(s) + 1);
	CHECK_OK(domain_exit(d));
	return p;
}

static int holds(domain_t *d, const char *p, const char *s)
{
	CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
	int same = memcmp(p, s, strlen(s) + 1) == 0;
	CHECK_OK(domain_exit(d));
	return same;
}

/* ---- Reads from outside the process's own accesses ------------------------ */

/* A read of len bytes at p through /proc/self/mem: 1 if it returned them. */
static int proc_mem_reads(const char *p, char *out, size_t len)
{
	int fd = open("/proc/self/mem", O_RDONLY);
	CHECK(fd >= 0);
	ssize_t n = pread(fd, out, len, (off_t)(uintptr_t)p);
	close(fd);
	return n == (ssize_t)len;
}

/* The child's verdicts, one byte each: 1 read the secret, 0 did not. */
struct remote {
	const char *plain, *secret;
	int pipe_w;
	int ptrace;            /* PTRACE_PEEKDATA instead of process_vm_readv */
};

static int remote_read(pid_t pid, const char *p, int use_ptrace)
{
	char buf[sizeof SECRET];
	if (use_ptrace) {
		for (size_t i = 0; i < sizeof buf; i += sizeof(long)) {
			errno = 0;
			long w = ptrace(PTRACE_PEEKDATA, pid, p + i, NULL);
			if (w == -1 && errno)
				return 0;
			memcpy(buf + i, &w, sizeof buf - i < sizeof w ? sizeof buf - i : sizeof w);
		}
	} else {
		struct iovec local = { buf, sizeof buf }, rem = { (void *)p, sizeof buf };
		if (process_vm_readv(pid, &local, 1, &rem, 1, 0) != (ssize_t)sizeof buf)
			return 0;
	}
	return memcmp(buf, SECRET, sizeof buf) == 0;
}

static void remote_child(void *arg)
{
	struct remote *r = arg;
	pid_t parent = getppid();
	if (r->ptrace) {
		int st;
		if (ptrace(PTRACE_ATTACH, parent, NULL, NULL) != 0 ||
		    waitpid(parent, &st, __WALL) != parent)
			_exit(3);
	}
	char v[2] = { (char)remote_read(parent, r->plain, r->ptrace),
	              (char)remote_read(parent, r->secret, r->ptrace) };
	if (r->ptrace)
		ptrace(PTRACE_DETACH, parent, NULL, NULL);
	if (write(r->pipe_w, v, 2) != 2)
		_exit(4);
}

static void check_remote(domain_t *plain_d, const char *plain, domain_t *sm, const char *secret,
                         int use_ptrace)
{
	int fds[2];
	CHECK_OK(pipe(fds));
	struct remote r = { plain, secret, fds[1], use_ptrace };
	/* Under Yama's ptrace_scope 1 only a parent may read its child. */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	/* process_vm_readv honours page permissions (not keys): open both. */
	CHECK_OK(domain_enter(plain_d, DOMAIN_RDWR));
	CHECK_OK(domain_enter(sm, DOMAIN_RDWR));
	int st = in_child(remote_child, &r, NULL, 0);
	CHECK_OK(domain_exit(sm));
	CHECK_OK(domain_exit(plain_d));
	CHECK_EXITED_OK(st);
	char v[2];
	CHECK_INT(read(fds[0], v, 2), ==, 2);
	close(fds[0]);
	close(fds[1]);
	const char *how = use_ptrace ? "PTRACE_PEEKDATA" : "process_vm_readv";
	if (!v[0])
		FAIL("%s could not read the ordinary domain's secret: the test proves nothing", how);
	if (v[1])
		FAIL("%s read the DOMAIN_SECRETMEM secret", how);
}

static void test_unreadable(void)
{
	domain_t *plain_d = domain_create("plain", 0), *sm = domain_create("sm", DOMAIN_SECRETMEM);
	CHECK(plain_d && sm);
	char *plain = store(plain_d, SECRET), *secret = store(sm, SECRET);
	CHECK(holds(sm, secret, SECRET));

	char buf[sizeof SECRET];
	/* /proc/self/mem reads closed pages too (FOLL_FORCE), keys or not. */
	if (!proc_mem_reads(plain, buf, sizeof buf) || memcmp(buf, SECRET, sizeof buf) != 0)
		FAIL("/proc/self/mem could not read the ordinary domain's secret");
	CHECK_OK(domain_enter(sm, DOMAIN_RDONLY));
	int leaked = proc_mem_reads(secret, buf, sizeof buf);
	CHECK_OK(domain_exit(sm));
	if (leaked)
		FAIL("/proc/self/mem read the DOMAIN_SECRETMEM secret");

	check_remote(plain_d, plain, sm, secret, 0);
	check_remote(plain_d, plain, sm, secret, 1);

	struct domain_stats st;
	CHECK_OK(domain_stats(sm, &st));
	CHECK_INT(st.secretmem, ==, 1);
	CHECK_OK(domain_stats(plain_d, &st));
	CHECK_INT(st.secretmem, ==, 0);
	domain_free(plain);
	domain_free(secret);
	CHECK_OK(domain_destroy(plain_d));
	CHECK_OK(domain_destroy(sm));
}

/* ---- No copy in ordinary memory ------------------------------------------- */

/* Bytes of a secret made in place (never whole in any ordinary buffer). */
static unsigned char secret_byte(uint64_t seed, size_t i)
{
	uint64_t x = (seed + i) * 0x9e3779b97f4a7c15u;
	return (unsigned char)((x ^ (x >> 29)) >> 24);
}

static unsigned char needle[24];

/* Occurrences of needle in [lo, hi), read through /proc/self/mem. */
static int copies_in(int mem, unsigned long lo, unsigned long hi)
{
	static unsigned char buf[1 << 16];
	int found = 0;
	for (unsigned long a = lo; a < hi; a += sizeof buf - sizeof needle) {
		size_t n = hi - a < sizeof buf ? hi - a : sizeof buf;
		ssize_t r = pread(mem, buf, n, (off_t)a);
		if (r < (ssize_t)sizeof needle)
			break;
		for (size_t i = 0; i + sizeof needle <= (size_t)r; i++)
			if (buf[i] == needle[0] && memcmp(buf + i, needle, sizeof needle) == 0 &&
			    a + i != (uintptr_t)needle && (unsigned char *)(a + i) != buf + i)
				found++;
		if (n < sizeof buf)
			break;
	}
	return found;
}

/* Occurrences of needle in every page in RAM that /proc/self/mem can read
 * (secret pages cannot be: that is the point), the needle's own copy
 * aside.  Pages not in RAM hold zeros (or a file's bytes): skipped, or
 * the 4 GiB reservations would take minutes. */
static int copies_in_process(void)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	int mem = open("/proc/self/mem", O_RDONLY);
	CHECK(maps && mem >= 0);
	static unsigned char vec[4096];
	char line[512];
	int found = 0;
	while (fgets(line, sizeof line, maps)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2 || strstr(line, "[vvar") || strstr(line, "[vsyscall"))
			continue;
		unsigned long run = 0;         /* start of resident pages, 0: none */
		for (unsigned long a = lo; a < hi; a += sizeof vec * 4096) {
			size_t n = hi - a < sizeof vec * 4096 ? hi - a : sizeof vec * 4096;
			if (mincore((void *)a, n, vec) != 0)
				memset(vec, 1, sizeof vec);
			for (size_t i = 0; i < n / 4096; i++) {
				unsigned long pg = a + i * 4096;
				if ((vec[i] & 1) && !run)
					run = pg;
				else if (!(vec[i] & 1) && run) {
					found += copies_in(mem, run, pg);
					run = 0;
				}
			}
		}
		if (run)
			found += copies_in(mem, run, hi);
	}
	fclose(maps);
	close(mem);
	return found;
}

/* The secret's bytes, moved by realloc and kept across jemalloc's and the
 * caches' bookkeeping, are nowhere but in secret pages. */
static void test_no_copy(void)
{
	domain_t *sm = domain_create("nocopy", DOMAIN_SECRETMEM);
	domain_t *plain_d = domain_create("control", 0);
	CHECK(sm && plain_d);
	uint64_t seed = (uint64_t)getpid() * 2654435761u;
	unsigned char *p = domain_malloc(sm, 64), *q = domain_malloc(plain_d, 64);
	CHECK(p && q);
	CHECK_OK(domain_enter(sm, DOMAIN_RDWR));
	for (size_t i = 0; i < 64; i++)
		p[i] = secret_byte(seed, i);
	CHECK_OK(domain_exit(sm));
	p = domain_realloc(sm, p, 5000);       /* moved: from a slab to another size class */
	CHECK(p);
	for (size_t i = 0; i < sizeof needle; i++)
		needle[i] = secret_byte(seed, 20 + i);
	CHECK_INT(copies_in_process(), ==, 0);
	/* The control: the same bytes in an ordinary domain are found. */
	CHECK_OK(domain_enter(plain_d, DOMAIN_RDWR));
	for (size_t i = 0; i < 64; i++)
		q[i] = secret_byte(seed, i);
	CHECK_OK(domain_exit(plain_d));
	CHECK_INT(copies_in_process(), ==, 1);
	CHECK_OK(domain_enter(sm, DOMAIN_RDONLY));
	for (size_t i = 0; i < 64; i++)
		CHECK_INT(p[i], ==, secret_byte(seed, i));
	CHECK_OK(domain_exit(sm));
	domain_free(p);
	domain_free(q);
	CHECK_OK(domain_destroy(sm));
	CHECK_OK(domain_destroy(plain_d));
}

/* ---- Protection as for any domain ----------------------------------------- */

static char *thread_target;
static void *other_thread(void *arg)
{
	(void)arg;
	if (on_pku())
		CHECK_DENIED(thread_target, 0);      /* per thread: SEGV_PKUERR */
	else
		CHECK_ALLOWED(thread_target, 0);     /* process-wide, as documented */
	return NULL;
}

static void test_isolation(void)
{
	domain_t *sm = domain_create("iso", DOMAIN_SECRETMEM);
	CHECK(sm);
	char *p = store(sm, SECRET);
	CHECK_DENIED(p, 0);
	CHECK_DENIED(p, 1);
	CHECK_OK(domain_enter(sm, DOMAIN_RDONLY));
	CHECK_ALLOWED(p, 0);
	CHECK_DENIED(p, 1);
	CHECK_OK(domain_exit(sm));
	CHECK_OK(domain_enter(sm, DOMAIN_RDWR));
	thread_target = p;
	pthread_t t;
	CHECK_INT(pthread_create(&t, NULL, other_thread, NULL), ==, 0);
	CHECK_INT(pthread_join(t, NULL), ==, 0);
	CHECK_ALLOWED(p, 1);
	CHECK_OK(domain_exit(sm));
	CHECK_DENIED(p, 0);
	domain_free(p);
	CHECK_OK(domain_destroy(sm));
}

static char *report_target;
static void touch_report(void *arg)
{
	(void)arg;
	CHECK_OK(pkalloc_install_fault_handler());
	probe_sink = *(volatile char *)report_target;
}

static void test_fault_report(void)
{
	domain_t *sm = domain_create("smrep", DOMAIN_SECRETMEM);
	CHECK(sm);
	report_target = store(sm, SECRET);
	char err[512], want[128];
	int st = in_child(touch_report, NULL, err, sizeof err);
	CHECK_KILLED_BY(st, SIGSEGV);
	snprintf(want, sizeof want, "pkalloc: thread %d read domain \"smrep\" at %p, not entered",
	         (int)last_child, (void *)report_target);
	if (strncmp(err, want, strlen(want)) != 0)
		FAIL("report was \"%s\", expected it to start \"%s\"", err, want);
	domain_free(report_target);
	CHECK_OK(domain_destroy(sm));
}

/* ---- Wipe, budget, destroy ------------------------------------------------ */

static int zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void test_wipe_budget_destroy(void)
{
	long before = vm_locked_kb();
	domain_t *sm = domain_create("budget", DOMAIN_SECRETMEM);
	CHECK(sm);
	/* Metadata is ordinary (tagged) memory: creating costs no budget. */
	CHECK_INT(vm_locked_kb(), ==, before);
	char *p = store(sm, SECRET);
	long one = vm_locked_kb() - before;
	/* One small secret costs pages, not jemalloc's 2 MiB extent. */
	if (charged && (one <= 0 || one > 64))
		FAIL("one secret costs %ld KiB of locked memory", one);

	/* Freed memory is wiped: the same block comes back zeroed. */
	domain_free(p);
	unsigned char *again = domain_malloc(sm, sizeof SECRET);
	CHECK(again);
	CHECK_OK(domain_enter(sm, DOMAIN_RDONLY));
	if ((char *)again == p && !zero(again, sizeof SECRET))
		FAIL("freed secret came back with its old content");
	CHECK_OK(domain_exit(sm));

	/* A large block commits its pages, and its free gives them back. */
	long mid = vm_locked_kb();
	char *big = domain_malloc(sm, 1 << 20);
	CHECK(big);
	CHECK_OK(domain_enter(sm, DOMAIN_RDWR));
	memset(big, 0x5a, 1 << 20);
	CHECK_OK(domain_exit(sm));
	if (charged)
		CHECK_INT(vm_locked_kb() - mid, >=, 1024);
	domain_free(big);
	if (charged)
		CHECK_INT(vm_locked_kb() - mid, <, 64);

	/* Destroy: the budget is back and the pages are gone. */
	domain_free(again);
	CHECK_OK(domain_destroy(sm));
	CHECK_INT(vm_locked_kb(), ==, before);
	struct fault f = probe(p, 0);
	if (!f.hit)
		FAIL("a destroyed DOMAIN_SECRETMEM domain's page is still readable");
}

/* ---- RLIMIT_MEMLOCK ------------------------------------------------------- */

/* Root (CAP_IPC_LOCK) is not held to the limit: drop it. */
static void drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct c[2];
	CHECK_OK(syscall(SYS_capget, &h, c));
	c[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	CHECK_OK(syscall(SYS_capset, &h, c));
}

/* The kernel refuses shared mappings as past RLIMIT_MEMLOCK (EAGAIN):
 * for kernels that hold secretmem to no limit at all (Debian's 6.1,
 * measured: a 1 MiB mapping under a 256 KiB limit succeeds). */
static void refuse_shared_maps(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3])),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, MAP_TYPE),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MAP_SHARED, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
	};
	struct sock_fprog prog = { sizeof f / sizeof f[0], f };
	CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	CHECK_OK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0));
}

static void memlock_child(void *arg)
{
	int real = *(int *)arg;
	domain_t *sm = domain_create("tight", DOMAIN_SECRETMEM);
	CHECK(sm);
	char *first = store(sm, SECRET);
	if (real) {
		drop_ipc_lock();
		long kb = vm_locked_kb();
		struct rlimit rl = { (rlim_t)(kb + 256) << 10, (rlim_t)(kb + 256) << 10 };
		CHECK_OK(setrlimit(RLIMIT_MEMLOCK, &rl));
	} else {
		refuse_shared_maps();
	}
	/* Fill the budget with secrets until an allocation fails. */
	enum { MAX = 1 << 16 };
	static char *held[MAX];
	size_t n = 0;
	for (; n < MAX; n++) {
		char name[sizeof SECRET];
		snprintf(name, sizeof name, "%031zu", n);
		char *p = domain_malloc(sm, sizeof SECRET);
		if (!p)
			break;
		CHECK_OK(domain_enter(sm, DOMAIN_RDWR));
		memcpy(p, name, sizeof name);
		CHECK_OK(domain_exit(sm));
		held[n] = p;
	}
	if (n == MAX)
		FAIL("%d secrets fit in 256 KiB of locked memory", MAX);
	CHECK_INT(errno, ==, ENOMEM);
	if (real)
		CHECK(n > 1000);    /* 256 KiB holds thousands of 32-byte secrets */
	/* Everything stored before is intact. */
	CHECK(holds(sm, first, SECRET));
	CHECK_OK(domain_enter(sm, DOMAIN_RDONLY));
	for (size_t i = 0; i < n; i++) {
		char name[sizeof SECRET];
		snprintf(name, sizeof name, "%031zu", i);
		if (memcmp(held[i], name, sizeof name) != 0)
			FAIL("secret %zu lost after the limit was hit", i);
	}
	CHECK_OK(domain_exit(sm));
	/* A large block past the limit fails the same way. */
	CHECK(domain_malloc(sm, 1 << 20) == NULL);
	CHECK_INT(errno, ==, ENOMEM);
	printf("secretmem: %zu secrets of 32 bytes stored when the limit was hit (%s)\n", n,
	       real ? "256 KiB of RLIMIT_MEMLOCK" : "the kernel's refusal simulated by seccomp");
	fflush(stdout);
}

/* Where the kernel holds secretmem to RLIMIT_MEMLOCK, the real limit;
 * elsewhere its refusal (EAGAIN), made by a seccomp filter. */
static void test_memlock(void)
{
	char err[2048];
	int real = charged;
	child_passes(memlock_child, &real, err, sizeof err);
	/* One line when the limit is met, not one per retry or per call. */
	int lines = pkalloc_lines(err);
	if (lines != 1 || !strstr(err, "RLIMIT_MEMLOCK"))
		FAIL("expected one pkalloc: line naming RLIMIT_MEMLOCK, got \"%s\"", err);
}

/* ---- fork ----------------------------------------------------------------- */

static domain_t *fork_d;
static char *fork_secret;

/* Open memfd_secret descriptors (each must be close-on-exec); their
 * files in ino[0..max). */
static int secretmem_fds(ino_t *ino, int max)
{
	char path[64], link[128];
	int found = 0;
	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, "/secretmem", 10) == 0) {   /* "/secretmem (deleted)" */
			struct stat sb;
			CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
			CHECK_OK(fstat(fd, &sb));
			if (found < max)
				ino[found] = sb.st_ino;
			found++;
		}
	}
	return found;
}

#define MAX_FDS 64
static ino_t parent_inos[MAX_FDS];
static int parent_fds;

static void fork_child(void *arg)
{
	(void)arg;
	/* The child's view of the domain: zeros where the secret was. */
	CHECK_OK(domain_enter(fork_d, DOMAIN_RDWR));
	if (!zero((unsigned char *)fork_secret, sizeof SECRET))
		FAIL("the fork child read the parent's secret");
	memset(fork_secret, 'C', sizeof SECRET);    /* the child's own pages */
	CHECK_OK(domain_exit(fork_d));
	/* jemalloc and pkalloc's caches work on in the child. */
	for (int i = 0; i < 1000; i++) {
		char *p = store(fork_d, "child");
		CHECK(holds(fork_d, p, "child"));
		domain_free(p);
	}
	char *big = domain_malloc(fork_d, 3 << 20);
	CHECK(big);
	domain_free(big);
	/* The child holds files of its own, none of the parent's: it cannot
	 * map the parent's secret pages. */
	ino_t ino[MAX_FDS];
	int n = secretmem_fds(ino, MAX_FDS);
	CHECK(n >= 1 && n <= MAX_FDS);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < parent_fds; j++)
			if (ino[i] == parent_inos[j])
				FAIL("the fork child holds one of the parent's secretmem files");
	CHECK_OK(domain_destroy(fork_d));
	CHECK_INT(secretmem_fds(ino, MAX_FDS), ==, 0);
}

static void test_fork(void)
{
	fork_d = domain_create("forked", DOMAIN_SECRETMEM);
	CHECK(fork_d);
	fork_secret = store(fork_d, SECRET);
	CHECK_INT(secretmem_fds(parent_inos, MAX_FDS), ==, 1);    /* one live chunk */
	char *big = domain_malloc(fork_d, 1 << 20);    /* a committed large extent too */
	CHECK(big);
	parent_fds = secretmem_fds(parent_inos, MAX_FDS);
	CHECK(parent_fds >= 1 && parent_fds <= MAX_FDS);
	char err[512];
	child_passes(fork_child, NULL, err, sizeof err);
	if (!holds(fork_d, fork_secret, SECRET))
		FAIL("the parent's secret changed after the child wrote its view");

	/* A child made without fork handlers (the raw system call) finds no
	 * page there at all, even with the domain open: nothing shared. */
	CHECK_OK(domain_enter(fork_d, DOMAIN_RDWR));
	fflush(NULL);
	pid_t pid = (pid_t)syscall(SYS_fork);
	if (pid == 0) {
		struct fault f = probe(fork_secret, 0);
		_exit(f.hit && f.code == SEGV_MAPERR ? 0 : f.hit ? 2 : 3);
	}
	CHECK_OK(domain_exit(fork_d));
	CHECK(pid > 0);
	int st;
	CHECK_INT(waitpid(pid, &st, 0), ==, pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("a raw fork child reached the secret's page (status %#x)", st);
	domain_free(big);
	domain_free(fork_secret);
	CHECK_OK(domain_destroy(fork_d));
	ino_t ino[MAX_FDS];
	CHECK_INT(secretmem_fds(ino, MAX_FDS), ==, 0);    /* destroy closed them */
}

/* ---- RAM comes back ------------------------------------------------------- */

/* The system's unevictable memory in KiB (secretmem pages count there). */
static long unevictable_kb(void)
{
	return proc_kb("/proc/meminfo", "Unevictable: %ld kB");
}

/* A freed large block's chunks lose their files (malloc_conf decays at
 * once, so jemalloc decommits the block on free), and the kernel frees
 * their pages.  The descriptors show it exactly; Unevictable is the whole
 * system's, so it must show the fall in one of a few tries. */
static void test_ram_back(void)
{
	enum { BIG = 4 << 20, TRIES = 3 };
	domain_t *d = domain_create("ram", DOMAIN_SECRETMEM);
	CHECK(d);
	char *small = store(d, SECRET);
	ino_t ino[MAX_FDS];
	int before = secretmem_fds(ino, MAX_FDS);
	CHECK_INT(before, ==, 1);
	long rise = 0, fall = 0;
	for (int t = 0; t < TRIES; t++) {
		long u0 = unevictable_kb();
		char *big = domain_malloc(d, BIG);
		CHECK(big);
		CHECK_OK(domain_enter(d, DOMAIN_RDWR));
		memset(big, 0x77, BIG);
		CHECK_OK(domain_exit(d));
		int during = secretmem_fds(ino, MAX_FDS);
		/* 4 MiB covers at least one whole chunk of its own. */
		if (during < before + 1)
			FAIL("a 4 MiB secret block made %d secretmem files", during - before);
		long u1 = unevictable_kb();
		domain_free(big);
		int after = secretmem_fds(ino, MAX_FDS);
		if (after != before)
			FAIL("%d secretmem files stayed open after a 4 MiB block was freed",
			     after - before);
		long u2 = unevictable_kb();
		rise = u1 - u0, fall = u1 - u2;
		if (fall >= 2048)
			break;
	}
	printf("secretmem: a 4 MiB block: Unevictable +%ld KiB, then -%ld KiB on free\n", rise, fall);
	/* At least the whole chunk it covered alone comes back. */
	if (fall < 2048)
		FAIL("Unevictable fell by %ld KiB only after a 4 MiB secret block was freed", fall);
	CHECK(holds(d, small, SECRET));
	domain_free(small);
	CHECK_OK(domain_destroy(d));
	CHECK_INT(secretmem_fds(ino, MAX_FDS), ==, 0);
}

/* ---- No descriptor for a new chunk --------------------------------------- */

static void nofile_child(void *arg)
{
	(void)arg;
	domain_t *d = domain_create("nofile", DOMAIN_SECRETMEM);
	CHECK(d);
	char *small = store(d, SECRET);
	/* The limit at the lowest free descriptor: no new one can be opened. */
	int top = dup(0);
	CHECK(top >= 0);
	close(top);
	struct rlimit rl;
	CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
	struct rlimit low = { (rlim_t)top, rl.rlim_max };
	CHECK_OK(setrlimit(RLIMIT_NOFILE, &low));
	/* 4 MiB needs a chunk of its own, so a new file: refused. */
	for (int i = 0; i < 3; i++) {
		errno = 0;
		CHECK(domain_malloc(d, 4 << 20) == NULL);
		CHECK_INT(errno, ==, EMFILE);
	}
	CHECK(holds(d, small, SECRET));
	CHECK_OK(setrlimit(RLIMIT_NOFILE, &rl));
	char *big = domain_malloc(d, 4 << 20);
	CHECK(big);
	domain_free(big);
	domain_free(small);
	CHECK_OK(domain_destroy(d));
}

/* EMFILE, with one line per episode, where a new chunk finds no descriptor. */
static void test_nofile(void)
{
	char err[2048];
	child_passes(nofile_child, NULL, err, sizeof err);
	int lines = pkalloc_lines(err);
	if (lines != 1 || !strstr(err, "cannot make a secret file"))
		FAIL("expected one pkalloc: line about the secret file, got \"%s\"", err);
}

/* ---- memfd_secret unavailable --------------------------------------------- */

static void enosys_child(void *arg)
{
	(void)arg;
	CHECK_OK(deny_memfd_secret());
	unsigned before = 0;
	struct pkalloc_stats ps;
	CHECK_OK(pkalloc_stats(&ps));
	before = ps.domains;
	errno = 0;
	CHECK(domain_create("nosys", DOMAIN_SECRETMEM) == NULL);
	CHECK_INT(errno, ==, ENOTSUP);
	CHECK_OK(pkalloc_stats(&ps));
	CHECK_INT(ps.domains, ==, before);
	/* Ordinary domains still work. */
	domain_t *d = domain_create("plain", 0);
	CHECK(d);
	CHECK_OK(domain_destroy(d));
}

static void test_unavailable(void)
{
	char err[512];
	child_passes(enosys_child, NULL, err, sizeof err);
	char *line = strstr(err, "pkalloc:");
	if (!line || line != err || strchr(err, '\n') != err + strlen(err) - 1 ||
	    !strstr(err, "memfd_secret"))
		FAIL("expected one pkalloc: line about memfd_secret, got \"%s\"", err);
}

int main(void)
{
	int fd = (int)syscall(SYS_memfd_secret, O_CLOEXEC);
	if (fd < 0) {
		char why[160];
		snprintf(why, sizeof why, "memfd_secret: %s (Linux 5.14+, secretmem.enable=1 before 6.5)",
		         strerror(errno));
		/* Where the kernel has none, only the refusal can be tested. */
		domain_t *d = domain_create("none", DOMAIN_SECRETMEM);
		CHECK(d == NULL);
		CHECK_INT(errno, ==, ENOTSUP);
		skip(why);
	}
	close(fd);
	if (under_valgrind())
		skip("valgrind does not know memfd_secret");
	long kb = kernel_charge_kb();
	charged = kb > 0;
	printf("secretmem: this kernel charges %ld KiB of locked memory for a 64 KiB mapping%s\n", kb,
	       charged ? "" : ": it holds secretmem to no RLIMIT_MEMLOCK, the budget checks are left out");
	test_unreadable();
	test_no_copy();
	test_isolation();
	test_fault_report();
	test_wipe_budget_destroy();
	test_memlock();
	test_fork();
	test_ram_back();
	test_nofile();
	test_unavailable();
	printf("test_secretmem: ok\n");
	return 0;
}
