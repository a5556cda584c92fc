/*
 * pkalloc micro-benchmarks: each figure against a baseline measured in the
 * same run, on the same machine.  Times are medians of repeated runs after
 * a warm-up; the spread is min..max.  Never run it under emulation (QEMU):
 * those numbers mean nothing.  Usage: bench [CSV-FILE]
 */
#define _GNU_SOURCE
#include <pkalloc.h>

#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>

#include "pkru.h"

enum { REPS = 9 };

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

struct result {
	const char *name, *baseline;
	double med, lo, hi;
};

static struct result results[32];
static int nresults;
static FILE *csv;

/* Run fn(n) REPS times (plus one warm-up); ns per operation. */
static struct result measure(const char *name, const char *baseline,
                             void (*fn)(long), long n)
{
	double t[REPS];
	fn(n / 10 + 1);
	for (int r = 0; r < REPS; r++) {
		double t0 = now_ns();
		fn(n);
		t[r] = (now_ns() - t0) / (double)n;
	}
	qsort(t, REPS, sizeof t[0], cmp);
	struct result res = { name, baseline, t[REPS / 2], t[0], t[REPS - 1] };
	results[nresults++] = res;
	return res;
}

static double find(const char *name)
{
	for (int i = 0; i < nresults; i++)
		if (strcmp(results[i].name, name) == 0)
			return results[i].med;
	return 0;
}

static domain_t *dom, *ring[256];
static char *page, *mib;

static void b_enter_exit(long n)
{
	for (long i = 0; i < n; i++) {
		domain_enter(dom, DOMAIN_RDWR);
		domain_exit(dom);
	}
}

static void b_wrpkru(long n)
{
	uint32_t open = rdpkru(), closed = open | 0xc;
	for (long i = 0; i < n; i++) {
		wrpkru(open);
		wrpkru(closed);
	}
	wrpkru(open);
}

static void b_mprotect_page(long n)
{
	for (long i = 0; i < n; i++) {
		mprotect(page, 4096, PROT_READ | PROT_WRITE);
		mprotect(page, 4096, PROT_NONE);
	}
}

static void b_mprotect_mib(long n)
{
	for (long i = 0; i < n; i++) {
		mprotect(mib, 1 << 20, PROT_READ | PROT_WRITE);
		mprotect(mib, 1 << 20, PROT_NONE);
	}
}

static void b_dmalloc_inside(long n)
{
	domain_enter(dom, DOMAIN_RDWR);
	for (long i = 0; i < n; i++)
		domain_free(domain_malloc(dom, 64));
	domain_exit(dom);
}

static void b_dmalloc_outside(long n)
{
	for (long i = 0; i < n; i++)
		domain_free(domain_malloc(dom, 64));
}

static void b_malloc(long n)
{
	for (long i = 0; i < n; i++) {
		void *volatile p = malloc(64);
		free(p);
	}
}

static int ring_n;
static void b_ring(long n)
{
	for (long i = 0; i < n; i++) {
		domain_t *d = ring[i % ring_n];
		domain_enter(d, DOMAIN_RDWR);
		domain_exit(d);
	}
}

static void row(const struct result *r)
{
	double base = r->baseline ? find(r->baseline) : 0;
	char ratio[48] = "";
	if (base > 0)
		snprintf(ratio, sizeof ratio, "%.2fx %s", r->med / base, r->baseline);
	printf("| %-34s | %10.1f | %8.1f..%-8.1f | %-28s |\n", r->name, r->med, r->lo, r->hi, ratio);
	if (csv)
		fprintf(csv, "%s,%.2f,%.2f,%.2f,%s,%.4f\n", r->name, r->med, r->lo, r->hi,
		        r->baseline ? r->baseline : "", base > 0 ? r->med / base : 0.0);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !(csv = fopen(argv[1], "w"))) {
		perror(argv[1]);
		return 1;
	}
	char cpu[128] = "unknown CPU";
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "model name", 10) == 0) {
			snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
			cpu[strcspn(cpu, "\n")] = '\0';
			break;
		}
	if (f)
		fclose(f);
	struct utsname u;
	uname(&u);
	unsigned a, b, c, d;
	int hypervisor = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 31));
	const char *backend = pkalloc_backend();
	printf("pkalloc bench: %s, Linux %s, backend %s%s\n\n", cpu, u.release, backend,
	       hypervisor ? " (virtual machine)" : "");
	if (csv)
		fprintf(csv, "# %s; Linux %s; backend %s\nname,median_ns,min_ns,max_ns,baseline,ratio\n",
		        cpu, u.release, backend);

	dom = domain_create("bench", 0);
	page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mib = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!dom || page == MAP_FAILED || mib == MAP_FAILED) {
		perror("setup");
		return 1;
	}
	memset(mib, 1, 1 << 20);
	int pku = strcmp(backend, "pku") == 0;

	if (pku)
		measure("raw WRPKRU pair", NULL, b_wrpkru, 2000000);
	measure("mprotect RW/NONE pair, 4 KiB", NULL, b_mprotect_page, 20000);
	measure("mprotect RW/NONE pair, 1 MiB", NULL, b_mprotect_mib, 2000);
	measure("domain_enter+domain_exit", pku ? "raw WRPKRU pair" : "mprotect RW/NONE pair, 4 KiB",
	        b_enter_exit, pku ? 2000000 : 20000);
	measure("malloc+free 64 B (jemalloc)", NULL, b_malloc, 2000000);
	measure("domain_malloc+free 64 B, inside", "malloc+free 64 B (jemalloc)", b_dmalloc_inside, 500000);
	measure("domain_malloc+free 64 B, outside", "malloc+free 64 B (jemalloc)", b_dmalloc_outside,
	        pku ? 500000 : 10000);
	static const int sizes[] = { 16, 64, 256 };
	static char names[3][64];
	for (int s = 0; s < 3; s++) {
		ring_n = sizes[s];
		for (int i = 0; i < ring_n; i++)
			if (!ring[i] && !(ring[i] = domain_create("ring", 0))) {
				perror("domain_create");
				return 1;
			}
		snprintf(names[s], sizeof names[s], "enter+exit, %d domains round robin", ring_n);
		measure(names[s], "domain_enter+domain_exit", b_ring, pku ? 200000 : 5000);
	}
	printf("| %-34s | %10s | %18s | %-28s |\n", "operation", "ns/op", "spread (ns)", "ratio");
	printf("|%s|%s|%s|%s|\n", "------------------------------------", "------------",
	       "--------------------", "------------------------------");
	for (int i = 0; i < nresults; i++)
		row(&results[i]);
	struct pkalloc_stats st;
	pkalloc_stats(&st);
	printf("\nkeys %u, evictions %llu, shared entries %llu\n", st.keys_owned, st.evictions,
	       st.shared_entries);
	if (csv)
		fclose(csv);
	return 0;
}
