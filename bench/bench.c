/*
 * pkalloc's benchmark driver: every figure against baselines measured in
 * the same run, on the same machine, as medians of repetitions after a
 * warm-up with their spread.  Writes results.csv, ratios.csv and
 * results.md into the output directory and the Markdown to stdout.
 *
 * Usage: bench [-o DIR] [-s SECTION,...] [--wl PATH] [--jemalloc LIB] [--pkalloc LIB]
 * Sections: switch alloc scale domains memory workload secretmem provider
 * (default: all).  provider (section 8) runs bench/pkprov, built where
 * OpenSSL 3's libssl is, with and without the OpenSSL provider.
 * Environment: BENCH_QUICK=1 runs everything once with tiny counts (the
 * smoke test; its figures mean nothing); BENCH_REPS and BENCH_TARGET_MS
 * set the repetitions and the length of each.
 *
 * Figures from an emulated CPU (QEMU's TCG) are never timings: the header
 * says so, and only counts and behaviour carry over.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <pkalloc.h>

#include <dlfcn.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JEMALLOC_NO_DEMANGLE
#include <jemalloc/jemalloc.h>

struct bench_opts opt;

static const struct {
	const char *name;
	void (*run)(void);
} sections[] = {
	/* Memory first: its resident-set deltas are cleanest in a fresh process. */
	{ "memory", bench_memory },
	{ "switch", bench_switch },
	{ "alloc", bench_alloc },
	{ "scale", bench_scale },
	{ "domains", bench_domains },
	{ "workload", bench_workload },
	{ "secretmem", bench_secretmem },
	{ "provider", bench_provider },
};

/* Is name one of the comma-separated words of list? */
static int listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *s = list; *s; s += strcspn(s, ","), s += *s == ',')
		if (strncmp(s, name, n) == 0 && (s[n] == ',' || s[n] == '\0'))
			return 1;
	return 0;
}

static int wanted(const char *name)
{
	return !opt.sections || listed(opt.sections, name);
}

static const char *object_of(void *f)
{
	Dl_info i;
	return f && dladdr(f, &i) && i.dli_fname ? strdup(i.dli_fname) : NULL;
}

/* Where the workload program and the libraries to preload are, and how to
 * start a program: run by the bundle through its own dynamic loader, the
 * workloads must be started the same way. */
static void find_paths(const char *argv0)
{
	static char wl[PATH_MAX], exe[PATH_MAX], dir[PATH_MAX], bin[PATH_MAX];
	snprintf(bin, sizeof bin, "%s", argv0);
	opt.bindir = dirname(bin);
	if (!opt.wl) {
		snprintf(wl, sizeof wl, "%s/wl", opt.bindir);
		opt.wl = wl;
	}
	if (!opt.jemalloc)
		opt.jemalloc = object_of((void *)mallocx);
	if (!opt.pkalloc)
		opt.pkalloc = object_of((void *)domain_create);
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		if (strncmp(basename(exe), "ld-linux", 8) == 0 && opt.pkalloc) {
			opt.loader = exe;
			snprintf(dir, sizeof dir, "%s", opt.pkalloc);
			opt.libdir = strdup(dirname(dir));
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: bench [-o DIR] [-s switch,alloc,scale,domains,memory,workload,secretmem,provider] "
	                "[--wl PATH] [--jemalloc LIB] [--pkalloc LIB]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "wl", required_argument, NULL, 'w' },
		{ "jemalloc", required_argument, NULL, 'j' },
		{ "pkalloc", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *q = getenv("BENCH_QUICK");
	opt.quick = q && *q && strcmp(q, "0") != 0;
	opt.reps = opt.quick ? 1 : 7;
	opt.target_ns = opt.quick ? 50e3 : 50e6;
	if (getenv("BENCH_REPS"))
		opt.reps = atoi(getenv("BENCH_REPS"));
	if (getenv("BENCH_TARGET_MS"))
		opt.target_ns = atof(getenv("BENCH_TARGET_MS")) * 1e6;
	if (opt.reps < 1 || opt.reps > 64 || !(opt.target_ns > 0)) {
		fprintf(stderr, "bench: BENCH_REPS must be 1..64 and BENCH_TARGET_MS positive\n");
		return 2;
	}
	opt.outdir = ".";
	int c;
	while ((c = getopt_long(argc, argv, "o:s:h", longopts, NULL)) != -1)
		switch (c) {
		case 'o': opt.outdir = optarg; break;
		case 's': opt.sections = optarg; break;
		case 'w': opt.wl = optarg; break;
		case 'j': opt.jemalloc = optarg; break;
		case 'p': opt.pkalloc = optarg; break;
		default: usage();
		}
	if (optind != argc)
		usage();
	if (opt.sections) {
		/* Every word must name a section. */
		size_t known = 0, words = 1;
		for (const char *s = opt.sections; *s; s++)
			words += *s == ',';
		for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
			known += listed(opt.sections, sections[i].name);
		if (known != words) {
			fprintf(stderr, "bench: unknown section in \"%s\"\n", opt.sections);
			return 2;
		}
	}
	/* A repetition must span many clock ticks, whatever the mode. */
	double tick = clock_tick_ns();
	if (opt.target_ns < 50 * tick) {
		opt.target_ns = 50 * tick;
		fprintf(stderr, "bench: the clock ticks every %.0f ns: repetitions of %.3g ms\n", tick,
		        opt.target_ns / 1e6);
	}
	mkdir(opt.outdir, 0777);
	find_paths(argv[0]);
	if (!opt.jemalloc || !opt.pkalloc) {
		fprintf(stderr, "bench: cannot tell where libjemalloc and libpkalloc are loaded from\n");
		return 1;
	}
	if (baselines_init() != 0)
		return 1;

	char md[2048], csv[1024];
	machine_describe(md, sizeof md, csv, sizeof csv);
	fprintf(stderr, "bench: %s\n", csv);
	if (cpu_emulated())
		fprintf(stderr, "bench: EMULATED CPU: no figure of this run is a timing\n");
	for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
		if (wanted(sections[i].name))
			sections[i].run();
	machine_describe(md, sizeof md, csv, sizeof csv);   /* the load after the run */
	if (report_write(opt.outdir, md, csv) != 0)
		return 1;
	if (bench_errors()) {
		fprintf(stderr, "bench: %d error(s): the results are incomplete\n", bench_errors());
		return 1;
	}
	fprintf(stderr, "bench: wrote %s/results.csv, ratios.csv, results.md\n", opt.outdir);
	return 0;
}
