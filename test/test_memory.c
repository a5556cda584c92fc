/*
 * What a domain costs in RAM, whatever the kernel's transparent huge page
 * mode: at most 96 KiB of RSS per empty domain and 104 KiB per domain
 * holding one 32-byte secret, measured over as many domains as jemalloc
 * allows (its arena limit), after a few that pay one-time costs.  Also
 * reports the mappings each domain adds (against vm.max_map_count), and
 * checks that destroying and making them all again grows nothing.
 */
#include "test.h"

#define EMPTY_MAX_KIB  96.0
#define SECRET_MAX_KIB 104.0
#define WARM           16        /* domains that pay one-time costs */
#define MAX            4096

static domain_t *dom[MAX];
static char *sec[MAX];

static long status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	CHECK(f);
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (fgets(line, sizeof line, f))
		if (strncmp(line, field, n) == 0)
			v = atol(line + n);
	fclose(f);
	CHECK_INT(v, >=, 0);
	return v;
}

static long mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	CHECK(f);
	long n = 0;
	int c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void thp_mode(char *out, size_t len)
{
	snprintf(out, len, "unknown");
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f)
		return;
	char line[128];
	if (fgets(line, sizeof line, f)) {
		char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
		if (a && b) {
			*b = '\0';
			snprintf(out, len, "%s", a + 1);
		}
	}
	fclose(f);
}

static void put_secret(domain_t *d, int i)
{
	char *s = sec[i] = domain_malloc(d, 32);
	CHECK(s);
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	snprintf(s, 32, "secret number %d", i);
	CHECK_OK(domain_exit(d));
}

int main(void)
{
	if (under_valgrind())
		skip("RSS under valgrind is valgrind's; and it has room for about 25 domains");
	if (TEST_SANITIZER_MALLOC)
		skip("RSS under a sanitizer counts its shadow memory");
	char thp[32];
	thp_mode(thp, sizeof thp);
	int n = 0;
	for (; n < WARM; n++) {
		CHECK(dom[n] = domain_create(NULL, 0));
		put_secret(dom[n], n);
	}
	long rss0 = status_kib("VmRSS:"), maps0 = mappings();

	/* Empty domains up to jemalloc's limit, then a secret in each. */
	for (; n < MAX; n++) {
		errno = 0;
		if (!(dom[n] = domain_create(NULL, 0)))
			break;
	}
	CHECK_INT(errno, ==, ENOSPC);
	CHECK_INT(n, >=, 3000);
	long rss1 = status_kib("VmRSS:"), maps1 = mappings();
	for (int i = WARM; i < n; i++)
		put_secret(dom[i], i);
	long rss2 = status_kib("VmRSS:"), anon = status_kib("RssAnon:");
	double empty = (double)(rss1 - rss0) / (n - WARM);
	double secret = (double)(rss2 - rss0) / (n - WARM);
	printf("test_memory: %s backend, THP \"%s\": %d domains; RSS per domain: %.1f KiB empty, "
	       "%.1f KiB with one 32-byte secret; %.2f mappings per domain; %ld MiB in all "
	       "(anonymous %ld MiB)\n",
	       pkalloc_backend(), thp, n, empty, secret, (double)(maps1 - maps0) / (n - WARM),
	       rss2 / 1024, anon / 1024);
	if (empty > EMPTY_MAX_KIB)
		FAIL("%.1f KiB per empty domain: more than %.0f", empty, EMPTY_MAX_KIB);
	if (secret > SECRET_MAX_KIB)
		FAIL("%.1f KiB per domain with a secret: more than %.0f", secret, SECRET_MAX_KIB);
	long rss3 = rss2;
	/* Every secret still there, and all of it goes back. */
	for (int i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof want, "secret number %d", i);
		CHECK_OK(domain_enter(dom[i], DOMAIN_RDONLY));
		CHECK(strcmp(sec[i], want) == 0);
		struct domain_stats st;
		CHECK_OK(domain_stats(dom[i], &st));
		CHECK_INT(st.allocated, ==, 32);
		CHECK_OK(domain_exit(dom[i]));
		CHECK_OK(domain_destroy(dom[i]));
	}
	/* jemalloc keeps what it needed for each arena index outside the
	 * domains (radix tree leaves, the statistics it writes at a destroy):
	 * reused, never grown, by the next domains. */
	long rss4 = status_kib("VmRSS:");
	for (int i = 0; i < n; i++) {
		CHECK(dom[i] = domain_create(NULL, 0));
		put_secret(dom[i], i);
	}
	long rss5 = status_kib("VmRSS:");
	for (int i = 0; i < n; i++)
		CHECK_OK(domain_destroy(dom[i]));
	long rss6 = status_kib("VmRSS:");
	printf("test_memory: after destroying them all %.1f KiB per domain stays with jemalloc; "
	       "%ld MiB with as many again, %ld MiB after destroying those\n",
	       (double)(rss4 - rss0) / n, rss5 / 1024, rss6 / 1024);
	CHECK_INT(rss5, <=, rss3 + (rss4 - rss0) + (rss3 - rss0) / 20);
	CHECK_INT(rss6, <=, rss4 + (rss4 - rss0) / 20);
	return 0;
}
