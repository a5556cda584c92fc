/*
 * 8. The OpenSSL provider: private-key operations and TLS handshakes of
 * an unchanged OpenSSL 3 program (bench/pkprov.c, which never links
 * libpkalloc) started with the provider's configuration and environment,
 * and without them (OPENSSL_CONF=/dev/null), as separate processes
 * interleaved run by run like section 6.  A third way, the provider's
 * glibc tunables without the provider, splits the cost between glibc
 * clearing freed blocks (malloc.perturb) and the provider itself.  Each
 * run must name the provider that holds its key: "pkalloc" with the
 * configuration, "default" without; anything else fails the run.  The
 * keys and certificates are made once per run by pkprov itself under the
 * plain default provider.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <pkalloc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S "provider"
#define TUNABLES "glibc.rtld.optional_static_tls=16384:glibc.malloc.perturb=165"

extern char **environ;

struct config {
	const char *name;
	int provider;   /* the provider's configuration and modules */
	int tunables;   /* the glibc tunables pkalloc.cnf asks for */
	int winfree;    /* bench/winfree.so preloaded: windows cost nothing */
};

static const struct config configs[] = {
	{ "without provider", 0, 0, 0 },
	{ "with provider", 1, 1, 0 },
	{ "tunables alone", 0, 1, 0 },
	/* Where there are no protection keys: an estimate of pku's figures. */
	{ "windows free", 1, 1, 1 },
};
enum { NCONF = sizeof configs / sizeof configs[0] };

struct outcome {
	double ns, server_ns;   /* server_ns: TLS only, else -1 */
	char provider[64], backend[16];
};

static char pkprov[4096], moddir[4096], cnf[4096], keydir[64], winfree[4096];
/* Why the windows-free runs do not run, or NULL. */
static const char *winfree_na;

/* Set while counting instructions: pkprov runs under callgrind. */
static const char *valgrind;
static long long collected;

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* pkprov, the module and pkalloc.cnf: beside the driver in a build tree,
 * or where make bundle puts them. */
static const char *find_files(void)
{
	snprintf(pkprov, sizeof pkprov, "%s/pkprov", opt.bindir);
	if (!exists(pkprov))
		return "n/a: no bench/pkprov (built only with OpenSSL 3's libssl and libcrypto)";
	snprintf(moddir, sizeof moddir, "%s/../lib/ossl-modules", opt.bindir);
	snprintf(cnf, sizeof cnf, "%s/../pkalloc.cnf", opt.bindir);
	if (!exists(moddir)) {
		snprintf(moddir, sizeof moddir, "%s/../provider/.libs", opt.bindir);
		snprintf(cnf, sizeof cnf, "%s", BENCH_PROVIDER_CNF);
	}
	snprintf(winfree, sizeof winfree, "%s/.libs/winfree.so", opt.bindir);
	winfree_na = strcmp(pkalloc_backend(), "pku") == 0 ? "n/a: protection keys here (the with-provider rows are pku's)"
	             : !exists(winfree) ? "n/a: no bench/.libs/winfree.so" : NULL;
	char mod[4200];
	snprintf(mod, sizeof mod, "%s/pkalloc.so", moddir);
	if (!exists(mod) || !exists(cnf))
		return "n/a: the OpenSSL provider module or pkalloc.cnf was not found";
	return NULL;
}

/* Run pkprov once (op "keygen", or an operation n times); 0, or -1 with
 * the reason in why (the caller decides whether it is an error). */
static int run_pkprov(const char *op, long n, const struct config *c, struct outcome *o,
                      char *why, size_t whylen)
{
	char count[24];
	snprintf(count, sizeof count, "%ld", n);
	const char *argv[16];
	int k = 0;
	if (valgrind) {
		argv[k++] = valgrind;
		argv[k++] = "--tool=callgrind";
		argv[k++] = "--callgrind-out-file=/dev/null";
		argv[k++] = "--collect-atstart=no";
	}
	if (opt.loader) {
		argv[k++] = opt.loader;
		argv[k++] = "--library-path";
		argv[k++] = opt.libdir;
	}
	argv[k++] = pkprov;
	argv[k++] = keydir;
	argv[k++] = op;
	if (strcmp(op, "keygen") != 0)
		argv[k++] = count;
	argv[k] = NULL;

	/* The environment as it is, but for what says which OpenSSL
	 * configuration and glibc tunables the program runs with. */
	static char *envp[4096];
	char e_conf[4200], e_mods[4200], e_pre[4200];
	int e = 0;
	for (char **v = environ; *v && e < 4092; v++)
		if (strncmp(*v, "OPENSSL_CONF=", 13) != 0 && strncmp(*v, "OPENSSL_MODULES=", 16) != 0 &&
		    strncmp(*v, "GLIBC_TUNABLES=", 15) != 0 && strncmp(*v, "LD_PRELOAD=", 11) != 0)
			envp[e++] = *v;
	snprintf(e_conf, sizeof e_conf, "OPENSSL_CONF=%s", c->provider ? cnf : "/dev/null");
	envp[e++] = e_conf;
	if (c->provider) {
		snprintf(e_mods, sizeof e_mods, "OPENSSL_MODULES=%s", moddir);
		envp[e++] = e_mods;
	}
	if (c->tunables)
		envp[e++] = "GLIBC_TUNABLES=" TUNABLES;
	if (c->winfree) {
		snprintf(e_pre, sizeof e_pre, "LD_PRELOAD=%s", winfree);
		envp[e++] = e_pre;
	}
	envp[e] = NULL;

	char out[4096];
	int st;
	if (run_program(argv, envp, valgrind != NULL, out, sizeof out, &st, NULL, why, whylen) != 0)
		return -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(why, whylen, "pkprov %s %s: status %#x (its messages are above)", op, c->name, st);
		return -1;
	}
	if (strcmp(op, "keygen") == 0)
		return 0;
	const char *p = strstr(out, "pkprov: provider "), *t = strstr(out, "pkprov: ns ");
	const char *s = strstr(out, "pkprov: server ns "), *b = strstr(out, "pkprov: backend ");
	if (!p || !t || sscanf(p, "pkprov: provider %63s", o->provider) != 1 ||
	    sscanf(t, "pkprov: ns %lf", &o->ns) != 1) {
		snprintf(why, whylen, "pkprov %s %s: unexpected output: %.900s", op, c->name, out);
		return -1;
	}
	const char *ir = valgrind ? strstr(out, "Collected : ") : NULL;
	if (valgrind && (!ir || sscanf(ir, "Collected : %lld", &collected) != 1)) {
		snprintf(why, whylen, "pkprov %s %s under callgrind: no count in: %.900s", op, c->name, out);
		return -1;
	}
	if (valgrind && !strstr(out, "pkprov: counted yes")) {
		snprintf(why, whylen, "n/a: pkprov was built without valgrind's callgrind.h");
		return -1;
	}
	o->server_ns = -1;
	if (s && sscanf(s, "pkprov: server ns %lf", &o->server_ns) != 1)
		o->server_ns = -1;
	snprintf(o->backend, sizeof o->backend, "none");
	if (b)
		sscanf(b, "pkprov: backend %15s", o->backend);
	/* The configuration took: the key is the provider's with it, the
	 * default provider's without. */
	const char *want = c->provider ? "pkalloc" : "default";
	if (strcmp(o->provider, want) != 0) {
		snprintf(why, whylen, "pkprov %s %s: the key is provider %s's, expected %s", op, c->name,
		         o->provider, want);
		return -1;
	}
	return 0;
}

static const char *const ops[] = {
	"rsa2048-sign", "rsa2048-decrypt", "p256-sign", "ed25519-sign", "x25519-derive",
	"tls13-p256", "tls13-rsa2048", "tls12-p256", "tls12-rsa2048",
};
enum { NOPS = sizeof ops / sizeof ops[0] };

static int is_tls(const char *op)
{
	return strncmp(op, "tls", 3) == 0;
}

static void server_name(char *buf, size_t len, const struct config *c)
{
	snprintf(buf, len, "%s server side", c->name);
}

static void record_all_na(const char *why)
{
	for (int i = 0; i < NOPS; i++)
		for (int c = 0; c < NCONF; c++) {
			record_na(S, configs[c].name, ops[i], "us/op", "%s", why);
			if (is_tls(ops[i])) {
				char sn[64];
				server_name(sn, sizeof sn, &configs[c]);
				record_na(S, sn, ops[i], "us/op", "%s", why);
			}
		}
}

/* One operation under every configuration, interleaved.  Returns the
 * count whose native run lasts about 40 ms, or 0. */
static long operation(const char *op, char *backend, size_t blen)
{
	double us[NCONF][64], sus[NCONF][64];
	int reps = opt.reps < 64 ? opt.reps : 64, ok[NCONF];
	struct outcome o;
	char why[1200];
	/* The count: a run of about four repetition targets without the
	 * provider, from a first run of a few operations (which warms the
	 * page cache and the CPU's clock). */
	long n = 2, n40 = 0;
	if (!opt.quick) {
		if (run_pkprov(op, 8, &configs[0], &o, why, sizeof why) != 0) {
			bench_error("%s", why);
			n = 0;
		} else {
			double per = o.ns / 8;
			n = per > 0 ? (long)(4 * opt.target_ns / per) : 1000;
			n = n < 8 ? 8 : n > 1000000 ? 1000000 : n;
			n40 = per > 0 ? (long)(40e6 / per) : 100;
			n40 = n40 < 8 ? 8 : n40;
		}
	}
	for (int c = 0; c < NCONF; c++) {
		if (configs[c].winfree && winfree_na) {
			ok[c] = 0;
			continue;
		}
		ok[c] = n > 0 && run_pkprov(op, n, &configs[c], &o, why, sizeof why) == 0;
		if (!ok[c] && n > 0)
			bench_error("%s", why);
		if (ok[c] && configs[c].provider)
			snprintf(backend, blen, "%s", o.backend);
	}
	/* Each round starts with the next configuration. */
	for (int r = 0; r < reps; r++)
		for (int j = 0; j < NCONF; j++) {
			int c = (r + j) % NCONF;
			if (!ok[c])
				continue;
			if (run_pkprov(op, n, &configs[c], &o, why, sizeof why) != 0) {
				bench_error("%s", why);
				ok[c] = 0;
				continue;
			}
			us[c][r] = o.ns / 1e3 / (double)n;
			sus[c][r] = o.server_ns / 1e3 / (double)n;
		}
	for (int c = 0; c < NCONF; c++) {
		char sn[64];
		server_name(sn, sizeof sn, &configs[c]);
		if (!ok[c]) {
			const char *na = configs[c].winfree && winfree_na ? winfree_na : "failed (see the log)";
			record_na(S, configs[c].name, op, "us/op", "%s", na);
			if (is_tls(op))
				record_na(S, sn, op, "us/op", "%s", na);
			continue;
		}
		struct row *w = record(S, configs[c].name, op, "us/op", us[c], reps, n);
		if (configs[c].provider)
			row_note(w, "key held by provider pkalloc (checked every run)");
		if (is_tls(op))
			record(S, sn, op, "us/op", sus[c], reps, n);
	}
	return ok[0] && ok[1] ? n40 : 0;
}

/* valgrind on PATH, or NULL. */
static const char *find_valgrind(void)
{
	static char path[4096];
	const char *dirs = getenv("PATH");
	for (const char *d = dirs ? dirs : ""; *d; d += strcspn(d, ":"), d += *d == ':') {
		snprintf(path, sizeof path, "%.*s/valgrind", (int)strcspn(d, ":"), d);
		if (access(path, X_OK) == 0)
			return path;
	}
	return NULL;
}

/*
 * Instructions per operation, with and without the provider, counted by
 * callgrind around pkprov's loop alone: the work an operation costs, which
 * no backend's window changes (a system call counts as one instruction):
 * the share of the cost that pku, whose window is two WRPKRU writes,
 * still pays.  Two runs, of m and 4m operations: their difference over 3m
 * leaves out what only the first operations do (setting up contexts,
 * filling caches).  m: a sixteenth of the count whose native run lasts
 * 40 ms.
 */
static void instructions(const char *op, long n)
{
	char why[1200], name[64];
	struct outcome o;
	long m = n / 16 < 4 ? 4 : n / 16;
	for (int c = 0; c < 2; c++) {
		long long ir[2] = { 0, 0 };
		int ok = 1;
		snprintf(name, sizeof name, "instructions %s", configs[c].name);
		for (int k = 0; k < 2 && ok; k++) {
			valgrind = find_valgrind();
			ok = run_pkprov(op, k ? 4 * m : m, &configs[c], &o, why, sizeof why) == 0;
			valgrind = NULL;
			ir[k] = collected;
		}
		if (!ok) {
			if (strncmp(why, "n/a:", 4) == 0) {
				record_na(S, name, op, "instr/op", "%s", why);
			} else {
				bench_error("%s", why);
				record_na(S, name, op, "instr/op", "failed (see the log)");
			}
			continue;
		}
		double per = (double)(ir[1] - ir[0]) / (double)(3 * m);
		record(S, name, op, "instr/op", &per, 1, 4 * m);
	}
	ratio(S, "instructions with provider", op, "instructions without provider", op, NULL, NULL);
}

static void ratios(const char *op)
{
	const char *goal = "pku goal: the provider costs at most 5% (figures here are this backend's)";
	ratio(S, "with provider", op, "without provider", op, "<=1.05", goal);
	ratio(S, "tunables alone", op, "without provider", op, NULL, NULL);
	ratio(S, "with provider", op, "tunables alone", op, NULL, NULL);
	ratio(S, "windows free", op, "without provider", op, NULL, NULL);
	if (is_tls(op)) {
		ratio(S, "with provider server side", op, "without provider server side", op, "<=1.05",
		      "pku goal: the server's handshake work at most 5% slower");
		ratio(S, "windows free server side", op, "without provider server side", op, NULL, NULL);
	}
}

void bench_provider(void)
{
	const char *be = pkalloc_backend();
	section_title(S, "8. The OpenSSL provider: private-key operations and TLS", "operation",
	              "Microseconds per operation of an unchanged OpenSSL 3 program (bench/pkprov.c: "
	              "libcrypto and libssl, not libpkalloc) reading its keys as a server does "
	              "(PEM_read_bio_PrivateKey, SSL_CTX_use_PrivateKey_file), run as separate "
	              "processes: with provider/pkalloc.cnf and its glibc tunables (each key in its "
	              "own domain, each private-key operation inside a window), without any "
	              "configuration (OPENSSL_CONF=/dev/null), and with the tunables alone; "
	              "repetitions interleaved. rsa2048-sign: SHA-256, PKCS#1 v1.5; rsa2048-decrypt: "
	              "OAEP; p256-sign: ECDSA SHA-256; ed25519-sign; x25519-derive. tlsNN-KEY: full "
	              "handshakes (no tickets, no session cache) between a server holding KEY and "
	              "a verifying client in the same process over a BIO pair; the server-side rows "
	              "time the server's handshake calls alone, the others the whole loop, client "
	              "included. Every run must name the provider holding its key.");
	char backend[16] = "";
	const char *why = find_files();
#if defined(__SANITIZE_ADDRESS__)
	/* pkprov has no sanitizer runtime: a sanitized module cannot load. */
	why = "n/a: sanitizer build";
#endif
	char tmpl[] = "/tmp/bench-provider-XXXXXX", msg[1200];
	int made = 0;
	if (!why) {
		made = mkdtemp(tmpl) != NULL;
		if (!made) {
			bench_error("mkdtemp: %s", strerror(errno));
			why = "failed (see the log)";
		}
	}
	snprintf(keydir, sizeof keydir, "%s", tmpl);
	struct outcome o;
	if (!why && run_pkprov("keygen", 0, &configs[0], &o, msg, sizeof msg) != 0) {
		bench_error("%s", msg);
		why = "failed (see the log)";
	}
	/* Can the provider load here at all?  If not, n/a rather than an error. */
	if (!why && run_pkprov("ed25519-sign", 1, &configs[1], &o, msg, sizeof msg) != 0) {
		fprintf(stderr, "bench: the OpenSSL provider did not load: %s\n", msg);
		why = "n/a: the OpenSSL provider did not load here (see the log)";
	}
	long n40[NOPS] = { 0 };
	if (why)
		record_all_na(why);
	else
		for (int i = 0; i < NOPS; i++)
			n40[i] = operation(ops[i], backend, sizeof backend);
	for (int i = 0; i < NOPS; i++)
		ratios(ops[i]);
	/* Instruction counts: not in the smoke run (callgrind is slow). */
	const char *vg = find_valgrind();
	for (int i = 0; i < NOPS; i++) {
		char nm[64];
		const char *na = why ? why : opt.quick ? "n/a: BENCH_QUICK" : !vg ? "n/a: no valgrind" : NULL;
		if (!na && n40[i] > 0) {
			instructions(ops[i], n40[i]);
			continue;
		}
		for (int c = 0; c < 2; c++) {
			snprintf(nm, sizeof nm, "instructions %s", configs[c].name);
			record_na(S, nm, ops[i], "instr/op", "%s", na ? na : "failed (see the log)");
		}
		ratio(S, "instructions with provider", ops[i], "instructions without provider", ops[i], NULL, NULL);
	}
	if (!why) {
		section_line(S, "module %s/pkalloc.so, configuration %s, tunables %s", moddir, cnf, TUNABLES);
		section_line(S, "backend in the provider's processes: %s (the driver's: %s)",
		             *backend ? backend : "unknown", be);
		if (*backend && strcmp(backend, be) != 0)
			bench_error("the provider ran on the %s backend, the driver on %s", backend, be);
	}
	section_line(S, "windows free: the provider with bench/winfree.so preloaded, which opens a "
	             "domain for good at a thread's first enter and makes every later enter and exit "
	             "a no-op: the provider's own work without any window's cost, an estimate of "
	             "the pku figures (which add two PKRU writes and pkalloc's bookkeeping per "
	             "window) on a machine without protection keys; it leaves keys open and is "
	             "never installed");
	section_line(S, "instructions: callgrind's count per operation (instr/op rows), the work "
	             "with and without the provider, which pku pays as it is and mprotect pays "
	             "plus its system calls and TLB flushes (a system call counts as one "
	             "instruction)");
	section_line(S, "%s",
	             strcmp(*backend ? backend : be, "pku") == 0
	             ? "backend pku: a window is two WRPKRU writes; what remains is the "
	               "provider's own work per operation and the wiping of every plain block "
	               "libcrypto frees (the whole process, while the provider is loaded), plus "
	               "glibc's perturb clearing"
	             : "backend mprotect, not the one the 5% goal is for: every window an "
	               "operation opens and closes (several per operation) is two mprotect calls "
	               "over the domain's pages and the TLB flushes they cause, where pku writes "
	               "PKRU twice (tens of cycles); the wiping of every plain block libcrypto "
	               "frees and glibc's perturb clearing are paid on both backends");
	if (made) {
		/* The keys are throwaway, but no reason to leave them. */
		static const char *const files[] = { "rsa2048.pem", "rsa2048.crt", "p256.pem", "p256.crt",
		                                     "ed25519.pem", "x25519.pem" };
		char f[128];
		for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
			snprintf(f, sizeof f, "%s/%s", keydir, files[i]);
			unlink(f);
		}
		rmdir(keydir);
	}
}
