/*
 * 3. Scaling: 1 to 16 threads allocating and freeing 64-byte secrets, each
 * in its own domain, all in one shared domain, and (for what the machine
 * itself allows) plain malloc.  Every thread does the same count of
 * operations; throughput is the total over the wall time from a common
 * start to the last join, and each is compared with one thread.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <pkalloc.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define S "scale"
enum { MAX_THREADS = 16, SECRET = 64 };

static const char *const OWN = "own domain per thread";
static const char *const SHARED = "one shared domain";
static const char *const PLAIN = "pkalloc malloc+free no domain";

struct worker {
	pthread_t t;
	domain_t *d;          /* NULL: plain malloc */
	long n;
};

static pthread_barrier_t start;

static void *work(void *arg)
{
	struct worker *w = arg;
	if (w->d && domain_enter(w->d, DOMAIN_RDWR) != 0) {
		bench_error("domain_enter: %s", strerror(errno));
		w->d = NULL;
	}
	pthread_barrier_wait(&start);
	if (w->d) {
		for (long i = 0; i < w->n; i++)
			domain_free(domain_malloc(w->d, SECRET));
		domain_exit(w->d);
	} else {
		for (long i = 0; i < w->n; i++) {
			void *volatile p = malloc(SECRET);
			free(p);
		}
	}
	return NULL;
}

static domain_t *own[MAX_THREADS], *shared;

static double cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

/* How many CPUs the last run kept busy: on a machine shared with other
 * work, more threads can win a larger share of it, which reads as
 * scaling. */
static double cpus_used;

/* Wall-clock ns for t threads doing n pairs each; domains: 0 none, 1 own, 2 shared. */
static double run(int t, int domains, long n)
{
	struct worker w[MAX_THREADS];
	pthread_barrier_init(&start, NULL, (unsigned)t + 1);
	for (int i = 0; i < t; i++) {
		w[i].d = domains == 1 ? own[i] : domains == 2 ? shared : NULL;
		w[i].n = n;
		if (pthread_create(&w[i].t, NULL, work, &w[i]) != 0) {
			bench_error("pthread_create failed");
			exit(1);
		}
	}
	pthread_barrier_wait(&start);
	double t0 = now_ns(), c0 = cpu_ns();
	for (int i = 0; i < t; i++)
		pthread_join(w[i].t, NULL);
	double ns = now_ns() - t0;
	cpus_used = (cpu_ns() - c0) / ns;
	pthread_barrier_destroy(&start);
	return ns;
}

static int cal_domains;
static void one_thread(void *arg, long n)
{
	(void)arg;
	run(1, cal_domains, n);
}

static void series(const char *name, int domains)
{
	static const int threads[] = { 1, 2, 4, 8, 16 };
	struct pkalloc_stats a, b;
	if (!domains && plain_malloc_why) {
		for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
			char p[8];
			snprintf(p, sizeof p, "%d", threads[k]);
			record_na(S, name, p, "Mops/s", "%s", plain_malloc_why);
			char cn[96];
			snprintf(cn, sizeof cn, "%s: CPUs busy", name);
			record_na(S, cn, p, "CPUs", "%s", plain_malloc_why);
		}
		return;
	}
	cal_domains = domains;
	/* Half a repetition per thread: 16 threads on few CPUs take 8 and more. */
	long n = calibrate(one_thread, NULL, opt.target_ns / 2);
	pkalloc_stats(&a);
	for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
		int t = threads[k];
		double v[64], used[64];
		int reps = opt.reps < 64 ? opt.reps : 64;
		run(t, domains, n / 4 + 1);    /* warm-up: threads, arenas, keys */
		for (int r = 0; r < reps; r++) {
			v[r] = (double)t * (double)n * 1e3 / run(t, domains, n);
			used[r] = cpus_used;
		}
		char p[8], cn[96];
		snprintf(p, sizeof p, "%d", t);
		snprintf(cn, sizeof cn, "%s: CPUs busy", name);
		record(S, name, p, "Mops/s", v, reps, (long long)t * n);
		record(S, cn, p, "CPUs", used, reps, (long long)t * n);
	}
	pkalloc_stats(&b);
	if (domains)
		section_line(S, "%s: %llu key evictions, %llu entries into a shared key, %llu re-tags",
		             name, b.evictions - a.evictions, b.shared_entries - a.shared_entries,
		             b.retags - a.retags);
}

void bench_scale(void)
{
	section_title(S, "3. Scaling", "threads",
	              "Throughput (million alloc+free pairs of 64 B per second, all threads together) "
	              "with 1 to 16 threads: each thread inside its own domain, all threads inside one "
	              "shared domain, and pkalloc's plain malloc as the machine's own limit. Every "
	              "thread does the same number of pairs; ratios are to one thread; every domain "
	              "holds one live 64-byte secret besides. \"CPUs busy\" "
	              "is the process's CPU time over the wall time: what the machine gave the run.");
	for (int i = 0; i < MAX_THREADS; i++)
		if (!(own[i] = domain_create("bench-scale", 0))) {
			bench_error("domain_create: %s", strerror(errno));
			return;
		}
	if (!(shared = domain_create("bench-shared", 0))) {
		bench_error("domain_create: %s", strerror(errno));
		return;
	}
	/* Each domain holds a secret, as domains do (and as in the allocation
	 * section). */
	void *resident[MAX_THREADS + 1];
	for (int i = 0; i <= MAX_THREADS; i++)
		if (!(resident[i] = domain_malloc(i < MAX_THREADS ? own[i] : shared, SECRET))) {
			bench_error("domain_malloc: %s", strerror(errno));
			return;
		}
	series(OWN, 1);
	series(SHARED, 2);
	series(PLAIN, 0);
	static const char *const t[] = { "2", "4", "8", "16" };
	for (int i = 0; i < 4; i++) {
		int last = i == 3;
		ratio(S, OWN, t[i], OWN, "1", last ? ">=12" : NULL,
		      last ? "16 threads in 16 domains at least 12x one thread's throughput" : NULL);
		ratio(S, SHARED, t[i], SHARED, "1", NULL, NULL);
		ratio(S, PLAIN, t[i], PLAIN, "1", NULL, NULL);
	}
	section_line(S, "this machine has %ld online CPUs: no series can pass about %ldx one thread",
	             sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_NPROCESSORS_ONLN));
	for (int i = 0; i <= MAX_THREADS; i++)
		domain_free(resident[i]);
	for (int i = 0; i < MAX_THREADS; i++)
		domain_destroy(own[i]);
	domain_destroy(shared);
}
