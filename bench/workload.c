/*
 * 6. Whole programs: the workloads of wl.c run as separate processes under
 * glibc (no preload), LD_PRELOAD of libjemalloc and LD_PRELOAD of
 * libpkalloc, interleaved repetition by repetition so that drift hits all
 * alike.  Each run must say its malloc came from the object preloaded
 * (a preload that did not take cannot pass for a result), and every
 * allocator must print the same checksum for a workload.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S "workload"

extern char **environ;

struct allocator {
	const char *name, *preload, *mode;
	int na;                /* cannot run in this build */
};

struct outcome {
	double ns, rss_mib;
	char from[512];
	unsigned long long sum;
};

/* Run wl once; 0, or -1 after bench_error. */
static int run_wl(const char *workload, long ops, const struct allocator *a, struct outcome *o)
{
	char n[24];
	snprintf(n, sizeof n, "%ld", ops);
	const char *argv[12];
	int k = 0;
	if (opt.loader) {
		argv[k++] = opt.loader;
		argv[k++] = "--library-path";
		argv[k++] = opt.libdir;
	}
	argv[k++] = opt.wl;
	argv[k++] = workload;
	argv[k++] = n;
	argv[k++] = a->mode;
	argv[k] = NULL;

	/* The environment as it is, but for LD_PRELOAD. */
	static char *envp[4096];
	char preload[4200];
	int e = 0;
	for (char **v = environ; *v && e < 4094; v++)
		if (strncmp(*v, "LD_PRELOAD=", 11) != 0)
			envp[e++] = *v;
	if (a->preload) {
		snprintf(preload, sizeof preload, "LD_PRELOAD=%s", a->preload);
		envp[e++] = preload;
	}
	envp[e] = NULL;

	char out[2048], why[256];
	int st;
	if (run_program(argv, envp, 0, out, sizeof out, &st, &o->ns, why, sizeof why) != 0) {
		bench_error("%s", why);
		return -1;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		bench_error("wl %s under %s: status %#x; output: %s", workload, a->name, st, out);
		return -1;
	}
	const char *f = strstr(out, "wl: malloc from "), *c = strstr(out, "wl: checksum ");
	const char *m = strstr(out, "wl: peak rss ");
	long kb;
	if (!f || !c || !m || sscanf(f, "wl: malloc from %511s", o->from) != 1 ||
	    sscanf(c, "wl: checksum %llx", &o->sum) != 1 || sscanf(m, "wl: peak rss %ld", &kb) != 1) {
		bench_error("wl %s under %s: unexpected output: %s", workload, a->name, out);
		return -1;
	}
	o->rss_mib = (double)kb / 1024;
	/* The preload took: malloc comes from the preloaded object, or from
	 * libc itself without one. */
	char want[512], got[512];
	snprintf(want, sizeof want, "%s", a->preload ? a->preload : "libc.so.6");
	snprintf(got, sizeof got, "%s", o->from);
	if (strcmp(basename(want), basename(got)) != 0) {
		bench_error("wl %s under %s: malloc comes from %s, expected %s", workload, a->name,
		            o->from, a->preload ? a->preload : "libc.so.6");
		return -1;
	}
	if (strcmp(a->mode, "plain") != 0 && !strstr(out, "wl: allocations land in the domain")) {
		bench_error("wl %s under %s: no proof that allocations land in the domain", workload, a->name);
		return -1;
	}
	return 0;
}

enum { NALLOC = 5 };

static void workload(const char *name, long ops, const struct allocator *al, int nal)
{
	double ns[NALLOC][64], rss[NALLOC][64];
	struct outcome o;
	unsigned long long sum = 0;
	int have_sum = 0, reps = opt.reps < 64 ? opt.reps : 64;
	int ok[NALLOC];
	/* Warm-up: page cache, the loader, the CPU's clock. */
	for (int a = 0; a < nal; a++) {
		ok[a] = !al[a].na && run_wl(name, ops, &al[a], &o) == 0;
		if (!ok[a])
			continue;
		if (have_sum && o.sum != sum)
			bench_error("wl %s: checksum %llx under %s, %llx under %s", name, o.sum,
			            al[a].name, sum, al[0].name);
		sum = o.sum;
		have_sum = 1;
	}
	/* Interleaved, and each round starts with the next allocator: no
	 * allocator always runs right after the same other one. */
	for (int r = 0; r < reps; r++)
		for (int j = 0; j < nal; j++) {
			int a = (r + j) % nal;
			if (!ok[a])
				continue;
			if (run_wl(name, ops, &al[a], &o) != 0) {
				ok[a] = 0;
				continue;
			}
			if (o.sum != sum)
				bench_error("wl %s: checksum %llx under %s, %llx before", name, o.sum, al[a].name, sum);
			ns[a][r] = o.ns / 1e9;
			rss[a][r] = o.rss_mib;
		}
	for (int a = 0; a < nal; a++) {
		char rn[80];
		snprintf(rn, sizeof rn, "%s peak RSS", al[a].name);
		if (al[a].na) {
			record_na(S, al[a].name, name, "s", "n/a: sanitizer build");
			record_na(S, rn, name, "MiB", "n/a: sanitizer build");
		} else if (!ok[a]) {
			record_na(S, al[a].name, name, "s", "failed (see the log)");
			record_na(S, rn, name, "MiB", "failed (see the log)");
		} else {
			record(S, al[a].name, name, "s", ns[a], reps, ops);
			record(S, rn, name, "MiB", rss[a], reps, ops);
		}
	}
}

void bench_workload(void)
{
	section_title(S, "6. Whole programs under LD_PRELOAD", "workload",
	              "Wall time of whole processes (bench/wl.c: plain malloc, calloc, realloc and "
	              "free only) started without a preload (glibc), with LD_PRELOAD of Debian's "
	              "libjemalloc.so.2, and with LD_PRELOAD of libpkalloc.so; repetitions "
	              "interleaved. churn1/churn4: random sizes 8 B-64 KiB allocated, resized and "
	              "freed at random over 4096 slots, in 1 and 4 threads; prodcons: 2 producers "
	              "pass batches of messages to 2 consumers that free them; realloc: buffers grown "
	              "piece by piece. On churn1 also: the same program inside a "
	              "DOMAIN_CAPTURE_MALLOC domain (its plain malloc captured), and through "
	              "domain_malloc/domain_free directly. Each run's malloc is checked to come from "
	              "the preloaded object, and every allocator must give the same checksum.");
	int no_pkalloc = 0;
#if defined(__SANITIZE_ADDRESS__)
	/* An ASan-built libpkalloc needs the ASan runtime loaded first. */
	no_pkalloc = 1;
#endif
	const struct allocator al[NALLOC] = {
		{ "glibc", NULL, "plain", 0 },
		{ "jemalloc", opt.jemalloc, "plain", 0 },
		{ "pkalloc", opt.pkalloc, "plain", no_pkalloc },
		{ "pkalloc capture", opt.pkalloc, "capture", no_pkalloc },
		{ "pkalloc domain_malloc", opt.pkalloc, "direct", no_pkalloc },
	};
	static const struct {
		const char *name;
		long ops;
		int extra;   /* also capture and direct */
	} wls[] = {
		{ "churn1", 2000000, 1 },
		{ "churn4", 3000000, 0 },
		{ "prodcons", 2000000, 0 },
		{ "realloc", 6000000, 0 },
	};
	section_line(S, "preloads: jemalloc %s, pkalloc %s%s%s", opt.jemalloc, opt.pkalloc,
	             opt.loader ? "; started with the loader " : "", opt.loader ? opt.loader : "");
	for (size_t i = 0; i < sizeof wls / sizeof wls[0]; i++) {
		long ops = opt.quick ? 2000 : wls[i].ops;
		workload(wls[i].name, ops, al, wls[i].extra ? NALLOC : 3);
		const char *w = wls[i].name;
		ratio(S, "pkalloc", w, "jemalloc", w, "<=1.05", "pkalloc within 5% of jemalloc, whole program");
		ratio(S, "pkalloc", w, "glibc", w, NULL, NULL);
		ratio(S, "jemalloc", w, "glibc", w, NULL, NULL);
		if (wls[i].extra) {
			ratio(S, "pkalloc capture", w, "pkalloc", w, NULL, NULL);
			ratio(S, "pkalloc capture", w, "pkalloc domain_malloc", w, NULL, NULL);
		}
	}
}
