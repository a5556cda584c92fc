/*
 * Timing: a calibration that finds how many operations fill one
 * repetition (and warms caches, the allocator and the key pool up on the
 * way), then opt.reps timed repetitions, summarised by their median and
 * their spread (min..max); and running a program of a whole-program
 * measurement.
 */
#include "bench.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double clock_tick_ns(void)
{
	/* The smallest step the clock is seen to take (an emulated guest may
	 * have only jiffies: milliseconds). */
	double tick = 1e12;
	for (int i = 0; i < 5; i++) {
		double t0 = now_ns(), t1;
		while ((t1 = now_ns()) == t0)
			;
		if (t1 - t0 < tick)
			tick = t1 - t0;
	}
	return tick;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Sorts v. */
double median_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

long calibrate(bench_fn fn, void *arg, double target)
{
	long n = 1;
	for (;;) {
		double t0 = now_ns();
		fn(arg, n);
		double t = now_ns() - t0;
		if (t >= target || n > LONG_MAX / 128)
			return n;
		/* Grow by what the last run predicts, at most 100x at a time:
		 * the first runs are the coldest. */
		double f = t > 0 ? target / t * 1.1 : 100;
		f = f < 2 ? 2 : f > 100 ? 100 : f;
		n = (long)(n * f);
	}
}

struct row *measure(const char *section, const char *name, const char *param,
                    bench_fn fn, void *arg)
{
	double t[64];
	int reps = opt.reps < 64 ? opt.reps : 64;
	long n = calibrate(fn, arg, opt.target_ns);
	fn(arg, n);     /* one more warm-up at the final count */
	for (int r = 0; r < reps; r++) {
		double t0 = now_ns();
		fn(arg, n);
		t[r] = (now_ns() - t0) / (double)n;
	}
	return record(section, name, param, "ns/op", t, reps, n);
}

int run_program(const char *const *argv, char *const *envp, int both, char *out, size_t size, int *status,
                double *ns, char *why, size_t whylen)
{
	int fds[2];
	if (pipe(fds) != 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	if (both)
		posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	fflush(NULL);
	pid_t pid;
	/* posix_spawn, not fork: no copy of this process's page tables in the time. */
	double t0 = now_ns();
	int err = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (err) {
		close(fds[0]);
		snprintf(why, whylen, "spawn %s: %s", argv[0], strerror(err));
		return -1;
	}
	size_t len = 0;
	ssize_t r;
	char sink[512];
	/* Read to the end (past size too), or a chatty program would block. */
	while ((r = read(fds[0], len + 1 < size ? out + len : sink, len + 1 < size ? size - 1 - len : sizeof sink)) > 0)
		if (len + 1 < size)
			len += (size_t)r;
	out[len] = '\0';
	close(fds[0]);
	if (waitpid(pid, status, 0) != pid) {
		snprintf(why, whylen, "waitpid: %s", strerror(errno));
		return -1;
	}
	if (ns)
		*ns = now_ns() - t0;
	return 0;
}
