/*
 * The fuzz target as an ordinary test: it runs every file of the corpus
 * (test/fuzz/corpus under $top_srcdir, or the files and directories
 * given), then inputs made from a fixed seed, so that the invariants are
 * checked in every build, under valgrind and in the VM with real keys.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern unsigned long fuzz_ops, fuzz_probes, fuzz_checked;

enum { GENERATED = 120, INPUT_BYTES = 4096 };

static unsigned files;

static void run_file(const char *path)
{
	static uint8_t buf[INPUT_BYTES];
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(99);
	}
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	files++;
}

static void run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		exit(99);
	}
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	struct dirent **names;
	int n = scandir(path, &names, NULL, alphasort);   /* the same order every run */
	if (n < 0) {
		perror(path);
		exit(99);
	}
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			char full[4096];
			snprintf(full, sizeof full, "%s/%s", path, names[i]->d_name);
			run_file(full);
		}
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			run_path(argv[i]);
	} else {
		const char *top = getenv("top_srcdir");
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/test/fuzz/corpus", top ? top : ".");
		struct stat st;
		if (stat(dir, &st) == 0)
			run_path(dir);
	}
	/* Inputs from a fixed seed: the same every run, corpus or not. */
	uint64_t s = 0x5EED5EED5EED5EEDull;
	const char *scale = getenv("PKALLOC_FUZZ_INPUTS");
	/* memcheck pays about a millisecond per MiB on every mprotect */
	int inputs = scale ? atoi(scale) : RUNNING_ON_VALGRIND ? GENERATED / 6 : GENERATED;
	static uint8_t buf[INPUT_BYTES];
	for (int i = 0; i < inputs; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		size_t n = 1 + (size_t)(s % 600);
		for (size_t k = 0; k < n; k++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			buf[k] = (uint8_t)(s >> 24);
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	fprintf(stderr, "fuzz replay: %u corpus files and %d generated inputs, %lu operations, "
	        "%lu probes, %lu allocations read back, every promise kept\n", files, inputs,
	        fuzz_ops, fuzz_probes, fuzz_checked);
	if (fuzz_ops == 0 || fuzz_probes == 0 || fuzz_checked == 0)
		return 1;
	return 0;
}
