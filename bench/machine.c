/*
 * What the figures came from: CPU, kernel, backend, whether protection keys
 * exist, and whether the CPU is emulated (QEMU's TCG: no timing from there
 * means anything), plus the versions of every allocator measured.
 */
#define _GNU_SOURCE
#include "config.h"
#include "bench.h"

#include <pkalloc.h>

#include <cpuid.h>
#include <gnu/libc-version.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define JEMALLOC_NO_DEMANGLE
#include <jemalloc/jemalloc.h>
#ifdef HAVE_SODIUM
#include <sodium.h>
#endif
#ifdef HAVE_OPENSSL
#include <openssl/crypto.h>
#endif

int cpu_has_pku(void)
{
	unsigned a, b, c, d;
	/* Leaf 7, ECX bit 4: OSPKE, the kernel enabled PKRU (CR4.PKE). */
	return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 4));
}

static int hypervisor(char vendor[13])
{
	unsigned a, b, c, d;
	vendor[0] = '\0';
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 31)))
		return 0;
	__cpuid(0x40000000, a, b, c, d);
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &c, 4);
	memcpy(vendor + 8, &d, 4);
	vendor[12] = '\0';
	return 1;
}

int cpu_emulated(void)
{
	char v[13];
	return hypervisor(v) && strcmp(v, "TCGTCGTCGTCG") == 0;
}

static void first_line(const char *path, const char *key, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	char line[512];
	snprintf(out, len, "unknown");
	while (f && fgets(line, sizeof line, f)) {
		if (key && strncmp(line, key, strlen(key)) != 0)
			continue;
		const char *v = key ? strchr(line, ':') : line;
		if (!v)
			continue;
		v += key ? 1 : 0;
		v += strspn(v, " \t");
		snprintf(out, len, "%s", v);
		out[strcspn(out, "\n")] = '\0';
		break;
	}
	if (f)
		fclose(f);
}

void machine_describe(char *md, size_t mdlen, char *csv, size_t csvlen)
{
	char cpu[128], thp[64], maps[32], vendor[13], when[32], load[64];
	struct utsname u;
	first_line("/proc/cpuinfo", "model name", cpu, sizeof cpu);
	first_line("/sys/kernel/mm/transparent_hugepage/enabled", NULL, thp, sizeof thp);
	first_line("/proc/sys/vm/max_map_count", NULL, maps, sizeof maps);
	/* Other work on the machine shows in the spreads; say how much there was. */
	first_line("/proc/loadavg", NULL, load, sizeof load);
	load[strcspn(load, " ")] = '\0';
	uname(&u);
	time_t t = time(NULL);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&t));
	int hv = hypervisor(vendor);
	const char *je = "unknown";
	size_t sz = sizeof je;
	mallctl("version", &je, &sz, NULL, 0);
	const char *sodium = "not built in", *ssl = "not built in";
#ifdef HAVE_SODIUM
	sodium = sodium_version_string();
#endif
#ifdef HAVE_OPENSSL
	ssl = OpenSSL_version(OPENSSL_VERSION);
#endif
	char virt[96];
	if (cpu_emulated())
		snprintf(virt, sizeof virt, "EMULATED CPU (QEMU TCG): timings are functional only");
	else if (hv)
		snprintf(virt, sizeof virt, "virtual machine (hypervisor \"%s\")", vendor);
	else
		snprintf(virt, sizeof virt, "bare metal (no hypervisor bit)");

	snprintf(md, mdlen,
	         "| | |\n|---|---|\n"
	         "| CPU | %s, %ld online CPUs |\n"
	         "| virtualization | %s |\n"
	         "| kernel | Linux %s |\n"
	         "| protection keys (CPUID OSPKE) | %s |\n"
	         "| pkalloc backend | **%s** (pkalloc %s) |\n"
	         "| glibc, jemalloc | %s, %s |\n"
	         "| libsodium, OpenSSL | %s, %s |\n"
	         "| THP, vm.max_map_count | %s, %s |\n"
	         "| run | %s, %s mode: %d repetitions of about %.3g ms after a warm-up; "
	         "load average %s at the end |\n",
	         cpu, sysconf(_SC_NPROCESSORS_ONLN), virt, u.release, cpu_has_pku() ? "yes" : "no",
	         pkalloc_backend(), PACKAGE_VERSION, gnu_get_libc_version(), je, sodium, ssl, thp,
	         maps, when, opt.quick ? "QUICK (smoke test: figures mean nothing)" : "full",
	         opt.reps, opt.target_ns / 1e6, load);
	snprintf(csv, csvlen,
	         "cpu=%s; cpus=%ld; virt=%s; kernel=%s; pku=%s; backend=%s; glibc=%s; jemalloc=%s; "
	         "sodium=%s; openssl=%s; max_map_count=%s; date=%s; mode=%s; load=%s",
	         cpu, sysconf(_SC_NPROCESSORS_ONLN), virt, u.release, cpu_has_pku() ? "yes" : "no",
	         pkalloc_backend(), gnu_get_libc_version(), je, sodium, ssl, maps, when,
	         opt.quick ? "quick" : "full", load);
}
