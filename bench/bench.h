/*
 * The benchmark driver's shared pieces.  Each section (switch.c, alloc.c,
 * scale.c, domains.c, memory.c, workload.c, secretmem.c, provider.c) measures with measure.c,
 * records rows and asks for ratios between rows of the same run; report.c
 * writes them out as CSV and Markdown.
 */
#ifndef PKALLOC_BENCH_H
#define PKALLOC_BENCH_H

#include <stddef.h>

struct bench_opts {
	int quick;            /* BENCH_QUICK=1: one repetition, tiny counts */
	int reps;             /* repetitions after the warm-up */
	double target_ns;     /* how long one repetition should last */
	const char *outdir;
	const char *sections; /* comma-separated, NULL: all */
	const char *wl;       /* the workload program */
	const char *jemalloc; /* libjemalloc.so.2 to preload */
	const char *pkalloc;  /* libpkalloc.so to preload */
	const char *loader;   /* the dynamic loader to start programs with, or NULL */
	const char *libdir;   /* its --library-path */
	const char *bindir;   /* where the driver is, and pkprov beside it */
};
extern struct bench_opts opt;

/* One measured quantity.  A row with na set has a note and no figures. */
struct row {
	char section[12], name[64], param[24], unit[12];
	double med, lo, hi;   /* median and spread (min, max) of the samples */
	int reps;
	long long ops;        /* operations per repetition, or 0 */
	int na;
	char note[112];
};

/* fn performs n operations of what is measured. */
typedef void (*bench_fn)(void *arg, long n);

/* measure.c */
double now_ns(void);
double clock_tick_ns(void);
/* Median ns per operation of fn, over opt.reps repetitions after a
 * calibration that doubles as the warm-up. */
struct row *measure(const char *section, const char *name, const char *param,
                    bench_fn fn, void *arg);
/* The operation count one repetition of fn needs to last about target ns. */
long calibrate(bench_fn fn, void *arg, double target);
double median_of(double *v, int n);
/* Run argv with envp, its standard output (and error, with both) read into
 * out (cut at size, NUL-terminated); *status as waitpid gives it; *ns, if
 * not NULL, the time from its start to its end.  0, or -1 with the reason
 * in why. */
int run_program(const char *const *argv, char *const *envp, int both, char *out, size_t size, int *status,
                double *ns, char *why, size_t whylen);

/* report.c */
struct row *record(const char *section, const char *name, const char *param,
                   const char *unit, double *samples, int n, long long ops);
struct row *record_na(const char *section, const char *name, const char *param,
                      const char *unit, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
struct row *find_row(const char *section, const char *name, const char *param);
void row_note(struct row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ratio of the medians of two rows of a section (name/param over
 * bname/bparam); goal, if any, is "<=X" or ">=X" on that ratio, and
 * goal_text says it in words. */
void ratio(const char *section, const char *name, const char *param,
           const char *bname, const char *bparam, const char *goal, const char *goal_text);
/* A section's title, what its param column holds, and a paragraph saying
 * what it measures.  Call before recording rows in it. */
void section_title(const char *section, const char *title, const char *param_label,
                   const char *text);
/* A free-form line under a section's tables (counters, limits). */
void section_line(const char *section, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Something went wrong that makes the run invalid: the exit status says so. */
void bench_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int bench_errors(void);
int report_write(const char *outdir, const char *machine_md, const char *machine_csv);

/* machine.c: what the figures came from. */
int cpu_has_pku(void);         /* CPUID OSPKE: WRPKRU may run */
int cpu_emulated(void);        /* QEMU's software emulation (TCG) */
void machine_describe(char *md, size_t mdlen, char *csv, size_t csvlen);

/* baselines.c: the allocators pkalloc is measured against. */
extern void *(*glibc_malloc)(size_t);
extern void (*glibc_free)(void *);
int baselines_init(void);      /* 0, or -1 after bench_error */
/* Why plain malloc is not pkalloc's here ("n/a: ..."), or NULL when it is. */
extern const char *plain_malloc_why;
int have_sodium(void);
int have_openssl(void);
#define OPENSSL_HEAP_SIZE ((size_t)16 << 20)

/* The sections. */
void bench_switch(void);
void bench_alloc(void);
void bench_scale(void);
void bench_domains(void);
void bench_memory(void);
void bench_workload(void);
void bench_secretmem(void);
void bench_provider(void);

#endif
