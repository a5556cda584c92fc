/*
 * 5. Memory: resident memory (RSS, /proc/self/statm) per empty domain and
 * per domain holding one 32-byte secret, the total for 1000 such domains,
 * and how many live 32-byte secrets fit before an allocation fails:
 * pkalloc in one domain, sodium_malloc (a mapping of its own per block,
 * so vm.max_map_count limits it) and OpenSSL's fixed secure heap.  These
 * are counts, not timings: they hold under emulation too.  The per-domain
 * figures are taken under every transparent huge page mode when
 * BENCH_THP_MODES=1 and the driver may set the mode (root), else under the
 * kernel's current one.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <pkalloc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_SODIUM
#include <sodium.h>
#endif
#ifdef HAVE_OPENSSL
#include <openssl/crypto.h>
#endif

#define S "memory"
enum { NDOM = 1000, SECRET = 32 };

static double rss(void)
{
	long pages[2] = { 0, 0 };
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld %ld", &pages[0], &pages[1]) != 2)
		bench_error("cannot read /proc/self/statm");
	if (f)
		fclose(f);
	return (double)pages[1] * (double)sysconf(_SC_PAGESIZE);
}

static double mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int c;
	while (f && (c = getc(f)) != EOF)
		n += c == '\n';
	if (f)
		fclose(f);
	return (double)n;
}

/* Per-domain figures, over opt.reps rounds of 1000 domains made and destroyed. */
static void per_domain(const char *thp)
{
	static domain_t *d[NDOM];
	double empty[16], one[16], total[16], maps[16];
	int reps = opt.quick ? 1 : 3;
	for (int r = 0; r < reps; r++) {
		double r0 = rss(), m0 = mappings();
		for (int i = 0; i < NDOM; i++)
			if (!(d[i] = domain_create("bench-memory", 0))) {
				bench_error("domain_create %d: %s", i, strerror(errno));
				for (int j = 0; j < i; j++)
					domain_destroy(d[j]);
				return;
			}
		double r1 = rss(), m1 = mappings();
		for (int i = 0; i < NDOM; i++) {
			char *p = domain_malloc(d[i], SECRET);
			if (!p || domain_enter(d[i], DOMAIN_RDWR) != 0) {
				bench_error("secret %d: %s", i, strerror(errno));
				break;
			}
			memset(p, 0x5e, SECRET);
			domain_exit(d[i]);
		}
		double r2 = rss();
		for (int i = 0; i < NDOM; i++)
			domain_destroy(d[i]);
		empty[r] = (r1 - r0) / NDOM;
		one[r] = (r2 - r0) / NDOM;
		total[r] = r2 - r0;
		maps[r] = (m1 - m0) / NDOM;
	}
	char name[96];
	snprintf(name, sizeof name, "RSS per empty domain (THP %s)", thp);
	record(S, name, NULL, "bytes", empty, reps, NDOM);
	snprintf(name, sizeof name, "RSS per domain with one 32 B secret (THP %s)", thp);
	record(S, name, NULL, "bytes", one, reps, NDOM);
	snprintf(name, sizeof name, "RSS of 1000 domains with one secret each (THP %s)", thp);
	record(S, name, NULL, "bytes", total, reps, NDOM);
	snprintf(name, sizeof name, "mappings per domain (THP %s)", thp);
	record(S, name, NULL, "count", maps, reps, NDOM);
}

#define THP_FILE "/sys/kernel/mm/transparent_hugepage/enabled"

/* The kernel's transparent huge page mode: the bracketed word. */
static void thp_now(char *out, size_t len)
{
	char line[128] = "";
	FILE *f = fopen(THP_FILE, "r");
	snprintf(out, len, "unknown");
	if (f && fgets(line, sizeof line, f)) {
		char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
		if (b) {
			*b = '\0';
			snprintf(out, len, "%s", a + 1);
		}
	}
	if (f)
		fclose(f);
}

static int thp_set(const char *mode)
{
	FILE *f = fopen(THP_FILE, "w");
	if (!f)
		return -1;
	int ok = fputs(mode, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Under each THP mode where BENCH_THP_MODES=1 lets the driver set the
 * system-wide mode (as root; put back after), else under the current one. */
static void per_domain_modes(void)
{
	char was[32];
	thp_now(was, sizeof was);
	const char *all = getenv("BENCH_THP_MODES");
	if (!all || strcmp(all, "1") != 0 || thp_set(was) != 0) {
		per_domain(was);
		return;
	}
	static const char *const modes[] = { "always", "madvise", "never" };
	for (unsigned i = 0; i < sizeof modes / sizeof modes[0]; i++)
		if (thp_set(modes[i]) == 0)
			per_domain(modes[i]);
	thp_set(was);
}

struct fill {
	const char *who;
	double count, rss, maps;
	int failed;           /* errno of the failure, 0 at the cap */
};

static void fill_record(const struct fill *f, long cap)
{
	char name[64];
	snprintf(name, sizeof name, "live 32 B secrets %s", f->who);
	struct row *r = record(S, name, NULL, "count", (double[]){ f->count }, 1, (long long)f->count);
	if (f->failed)
		row_note(r, "the next allocation failed (%s)", strerror(f->failed));
	else
		row_note(r, "stopped at the cap of %ld: no failure", cap);
	snprintf(name, sizeof name, "RSS per live secret %s", f->who);
	record(S, name, NULL, "bytes", (double[]){ f->count ? f->rss / f->count : 0 }, 1, (long long)f->count);
	snprintf(name, sizeof name, "mappings per live secret %s", f->who);
	record(S, name, NULL, "count", (double[]){ f->count ? f->maps / f->count : 0 }, 1, (long long)f->count);
}

static void fill_pkalloc(long cap)
{
	struct fill f = { .who = "pkalloc" };
	domain_t *d = domain_create("bench-fill", 0);
	if (!d || domain_enter(d, DOMAIN_RDWR) != 0) {
		bench_error("domain: %s", strerror(errno));
		return;
	}
	double r0 = rss(), m0 = mappings();
	for (; f.count < cap; f.count++) {
		char *p = domain_malloc(d, SECRET);
		if (!p) {
			f.failed = errno;
			break;
		}
		memset(p, 0x5e, SECRET);
	}
	f.rss = rss() - r0;
	f.maps = mappings() - m0;
	domain_exit(d);
	domain_destroy(d);
	fill_record(&f, cap);
	long avail = 0;
	FILE *mi = fopen("/proc/meminfo", "r");
	char line[128];
	while (mi && fgets(line, sizeof line, mi))
		if (sscanf(line, "MemAvailable: %ld kB", &avail) == 1)
			break;
	if (mi)
		fclose(mi);
	if (f.count && f.rss > 0 && avail > 0)
		section_line(S, "pkalloc's limit is memory, not mappings: at %.1f bytes of RSS per "
		             "32 B secret, this machine's available memory (%ld MiB) would hold about "
		             "%.3g of them (an estimate, not measured); one domain's 4 GiB reservation "
		             "caps it at about %.3g", f.rss / f.count, avail >> 10,
		             (double)avail * 1024 / (f.rss / f.count), 4294967296.0 / 32);
}

#ifdef HAVE_SODIUM
static void fill_sodium(long cap)
{
	struct fill f = { .who = "sodium_malloc" };
	void **p = calloc((size_t)cap, sizeof *p);
	if (!p) {
		bench_error("calloc failed");
		return;
	}
	double r0 = rss(), m0 = mappings();
	for (; f.count < cap; f.count++) {
		errno = 0;
		if (!(p[(long)f.count] = sodium_malloc(SECRET))) {
			f.failed = errno ? errno : ENOMEM;
			break;
		}
		memset(p[(long)f.count], 0x5e, SECRET);
	}
	f.rss = rss() - r0;
	f.maps = mappings() - m0;
	for (long i = 0; i < (long)f.count; i++)
		sodium_free(p[i]);
	free(p);
	fill_record(&f, cap);
}
#endif

#ifdef HAVE_OPENSSL
static void fill_openssl(long cap)
{
	struct fill f = { .who = "OpenSSL secure heap" };
	void **p = calloc((size_t)cap, sizeof *p);
	if (!p) {
		bench_error("calloc failed");
		return;
	}
	double r0 = rss(), m0 = mappings();
	for (; f.count < cap; f.count++) {
		if (!(p[(long)f.count] = OPENSSL_secure_malloc(SECRET))) {
			f.failed = ENOMEM;
			break;
		}
		memset(p[(long)f.count], 0x5e, SECRET);
	}
	f.rss = rss() - r0;
	f.maps = mappings() - m0;
	for (long i = 0; i < (long)f.count; i++)
		OPENSSL_secure_clear_free(p[i], SECRET);
	free(p);
	fill_record(&f, cap);
}
#endif

void bench_memory(void)
{
	section_title(S, "5. Memory", "",
	              "Resident memory per domain (1000 domains created, then one 32-byte secret "
	              "written in each; median of the rounds), and how many live 32-byte secrets fit "
	              "before an allocation fails: pkalloc in one domain, sodium_malloc (guard pages "
	              "and a mapping of its own per block), OpenSSL's secure heap (16 MiB, fixed at "
	              "CRYPTO_secure_malloc_init). Each secret is written once. Counts, not timings.");
	per_domain_modes();
	/* Caps keep the run short; sodium's is above what the default
	 * vm.max_map_count (65530) lets it reach. */
	long cap = opt.quick ? 1000 : 1000000;
	long sodium_cap = opt.quick ? 1000 : 65536;
	fill_pkalloc(cap);
#ifdef HAVE_SODIUM
	if (have_sodium())
		fill_sodium(sodium_cap);
	else
#endif
	{
		record_na(S, "live 32 B secrets sodium_malloc", NULL, "count", "n/a: no libsodium");
		record_na(S, "RSS per live secret sodium_malloc", NULL, "bytes", "n/a: no libsodium");
		record_na(S, "mappings per live secret sodium_malloc", NULL, "count", "n/a: no libsodium");
	}
#ifdef HAVE_OPENSSL
	if (have_openssl())
		fill_openssl(cap);
	else
#endif
	{
		record_na(S, "live 32 B secrets OpenSSL secure heap", NULL, "count", "n/a: no OpenSSL");
		record_na(S, "RSS per live secret OpenSSL secure heap", NULL, "bytes", "n/a: no OpenSSL");
		record_na(S, "mappings per live secret OpenSSL secure heap", NULL, "count", "n/a: no OpenSSL");
	}
	ratio(S, "live 32 B secrets pkalloc", NULL, "live 32 B secrets sodium_malloc", NULL, NULL, NULL);
	ratio(S, "live 32 B secrets pkalloc", NULL, "live 32 B secrets OpenSSL secure heap", NULL, NULL, NULL);
	ratio(S, "RSS per live secret pkalloc", NULL, "RSS per live secret sodium_malloc", NULL, NULL, NULL);
	char maps[32] = "unknown";
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	if (f && fgets(maps, sizeof maps, f))
		maps[strcspn(maps, "\n")] = '\0';
	if (f)
		fclose(f);
	section_line(S, "vm.max_map_count here: %s (sodium_malloc needs several mappings per block)", maps);
}
