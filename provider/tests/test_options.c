/*
 * The provider's settings, each in a process of its own that loads a
 * configuration file naming them: by default every key gets a domain of
 * its own, given back with the key; "domains = shared" puts every key in
 * one domain; "secretmem = yes" makes keys' domains DOMAIN_SECRETMEM ones,
 * and where memfd_secret is missing (a seccomp filter here) loading a key
 * fails rather than leave it in plain memory, while "if-available" takes
 * an ordinary domain; a value the provider does not know stops it from
 * loading.  Domains are counted with pkalloc_stats and told apart by
 * domain_of over the process's mappings.
 * Exit 0 pass, 77 skip, 99 hard error, 1 failure.
 */
#define _GNU_SOURCE
#define OPENSSL_SUPPRESS_DEPRECATED
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <pkalloc.h>

#include "deny_secretmem.h"
#include "harness.h"

#define FAIL(...) do { fprintf(stderr, "test_options:%d: ", __LINE__); fprintf(stderr, __VA_ARGS__); \
	fputc('\n', stderr); ERR_print_errors_fp(stderr); exit(1); } while (0)
#define CHECK(c) do { if (!(c)) FAIL("check failed: %s", #c); } while (0)
#define HARD(c) do { if (!(c)) { fprintf(stderr, "test_options:%d: %s\n", __LINE__, #c); \
	ERR_print_errors_fp(stderr); exit(99); } } while (0)

#define NKEYS 3
static char pem[NKEYS][4096];
static const char *const key_name[NKEYS] = { "P-256", "Ed25519", "RSA-2048" };

static struct {
	domain_t *(*of)(const void *);
	int (*stats)(domain_t *, struct domain_stats *);
	int (*all)(struct pkalloc_stats *);
	const char *(*name)(const domain_t *);
} pk;

static void make_keys(void)
{
	EVP_PKEY *k[NKEYS] = {
		EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
		EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
		EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
	};
	for (int i = 0; i < NKEYS; i++) {
		BIO *b = BIO_new(BIO_s_mem());
		char *data;
		HARD(k[i] && b && PEM_write_bio_PrivateKey(b, k[i], NULL, NULL, 0, NULL, NULL) == 1);
		long n = BIO_get_mem_data(b, &data);
		HARD(n > 0 && (size_t)n < sizeof pem[i]);
		memcpy(pem[i], data, (size_t)n);
		BIO_free(b);
		EVP_PKEY_free(k[i]);
	}
}

/* The provider's key domains live now: how many, how many of them secret
 * memory.  Every mapping's start is asked of domain_of. */
static int key_domains(int *secret)
{
	domain_t *seen[64];
	int n = 0;
	char line[512];
	FILE *maps = fopen("/proc/self/maps", "r");
	HARD(maps);
	*secret = 0;
	while (fgets(line, sizeof line, maps)) {
		unsigned long lo;
		if (sscanf(line, "%lx-", &lo) != 1)
			continue;
		domain_t *d = pk.of((void *)lo);
		int known = 0;
		for (int i = 0; i < n; i++)
			known |= seen[i] == d;
		if (!d || known || strcmp(pk.name(d), "openssl-key") != 0)
			continue;
		struct domain_stats st;
		HARD(n < 64 && pk.stats(d, &st) == 0);
		seen[n++] = d;
		*secret += st.secretmem;
	}
	fclose(maps);
	return n;
}

static unsigned live_domains(void)
{
	struct pkalloc_stats st;
	HARD(pk.all(&st) == 0);
	return st.domains;
}

static int sign_once(EVP_PKEY *k, int i)
{
	static const unsigned char msg[] = "pkalloc provider settings";
	unsigned char sig[512];
	size_t n = sizeof sig;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	const char *md = i == 1 ? NULL : "SHA256";
	int ok = m && EVP_DigestSignInit_ex(m, NULL, md, NULL, NULL, k, NULL) == 1 &&
	         EVP_DigestSign(m, sig, &n, msg, sizeof msg) == 1 &&
	         EVP_DigestVerifyInit_ex(m, NULL, md, NULL, NULL, k, NULL) == 1 &&
	         EVP_DigestVerify(m, sig, n, msg, sizeof msg) == 1;
	EVP_MD_CTX_free(m);
	return ok;
}

/*
 * OpenSSL's own state stays out of keys' domains when a program frees or
 * churns it (a failure here is a crash, reported by the parent):
 * OPENSSL_thread_stop frees the thread's error queue and random
 * generators, which the next window must not make again inside its
 * domain (RSA signing then uses the generators for blinding, in another
 * key's window); and a flood of distinct property queries in settings,
 * which would fill the inner context's method cache until OpenSSL flushes
 * it, after which fetches inside a window would cache into the domain.
 */
static void *stop_and_sign(void *arg)
{
	EVP_PKEY **k = arg;
	CHECK(sign_once(k[0], 0));
	OPENSSL_thread_stop();
	CHECK(sign_once(k[0], 0) && sign_once(k[2], 2));
	CHECK(!pk.of(ERR_get_state()));
	return NULL;
}

static void state_kept_out(EVP_PKEY **k, const char *settings)
{
	pthread_t t;
	HARD(pthread_create(&t, NULL, stop_and_sign, k) == 0);
	HARD(pthread_join(t, NULL) == 0);
	stop_and_sign(k);
	for (int round = 0; round < 3; round++) {
		for (int q = 0; q < 600; q++) {
			char props[32];
			snprintf(props, sizeof props, "?test.round%d=%d", round, q);
			OSSL_PARAM p[3] = { OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
			                    OSSL_PARAM_construct_utf8_string("properties", props, 0),
			                    OSSL_PARAM_construct_end() };
			EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k[0], NULL);
			CHECK(c && EVP_PKEY_verify_init(c) == 1 && EVP_PKEY_CTX_set_params(c, p) == 1);
			EVP_PKEY_CTX_free(c);
		}
		for (int i = 0; i < NKEYS; i++)
			CHECK(sign_once(k[i], i));
	}
	printf("test_options: [%s]: OpenSSL's thread state freed and 1800 property queries: no key's "
	       "domain touched outside\n", settings);
}

/* The process's address space in use, in bytes. */
static rlim_t vm_size(void)
{
	char line[256];
	unsigned long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");
	HARD(f);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %lu kB", &kb) == 1)
			break;
	fclose(f);
	HARD(kb > 0);
	return (rlim_t)kb << 10;
}

static int secretmem_works(void)
{
	int fd = (int)syscall(SYS_memfd_secret, 0);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

enum expect {
	PER_KEY, SHARED,
	ABORTED,        /* secretmem = yes without secret memory: the load stops the program */
	NO_DOMAIN,      /* no address space for a domain: a line says the key may be plain */
	NOT_LOADED,
};

struct variant {
	const char *settings;   /* lines for the provider's section */
	int deny;               /* memfd_secret denied */
	int no_room;            /* address space too small for a domain */
	enum expect expect;
	int secret;             /* keys' domains are secret memory */
};

/* One configuration, in this (child) process. */
static void run(const char *mods, const struct variant *v)
{
	char cnf[] = "/tmp/test_options.XXXXXX";
	int fd = mkstemp(cnf);
	HARD(fd >= 0);
	FILE *f = fdopen(fd, "w");
	HARD(f);
	fprintf(f, "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
	           "[provider_sect]\ndefault = default_sect\npkalloc = pkalloc_sect\n"
	           "[default_sect]\nactivate = 1\n"
	           "[pkalloc_sect]\nmodule = %s/pkalloc.so\nactivate = 1\n%s\n", mods, v->settings);
	HARD(fclose(f) == 0);
	if (v->deny)
		HARD(deny_memfd_secret() == 0);
	int loaded = OSSL_LIB_CTX_load_config(NULL, cnf) == 1 && OSSL_PROVIDER_available(NULL, "pkalloc");
	unlink(cnf);
	if (v->expect == NOT_LOADED || v->expect == ABORTED) {
		if (loaded)
			FAIL("[%s]: the provider loaded", v->settings);
		return;
	}
	if (!loaded)
		FAIL("[%s]: the provider did not load", v->settings);
	void *lib = dlopen("libpkalloc.so.0", RTLD_LAZY | RTLD_NOLOAD);
	HARD(lib);
	pk.of = (domain_t *(*)(const void *))dlsym(lib, "domain_of");
	pk.stats = (int (*)(domain_t *, struct domain_stats *))dlsym(lib, "domain_stats");
	pk.all = (int (*)(struct pkalloc_stats *))dlsym(lib, "pkalloc_stats");
	pk.name = (const char *(*)(const domain_t *))dlsym(lib, "domain_name");
	HARD(pk.of && pk.stats && pk.all && pk.name);

	unsigned before = live_domains();
	if (v->no_room) {
		struct rlimit rl;
		HARD(getrlimit(RLIMIT_AS, &rl) == 0);
		rl.rlim_cur = vm_size() + ((rlim_t)256 << 20);
		HARD(setrlimit(RLIMIT_AS, &rl) == 0);
	}
	EVP_PKEY *k[NKEYS];
	for (int i = 0; i < NKEYS; i++) {
		BIO *b = BIO_new_mem_buf(pem[i], -1);
		HARD(b);
		k[i] = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
		if (v->expect == NO_DOMAIN) {
			const OSSL_PROVIDER *kp = k[i] ? EVP_PKEY_get0_provider(k[i]) : NULL;
			const char *by = !k[i] ? "not loaded" : kp ? OSSL_PROVIDER_get0_name(kp) : "a legacy key";
			if (kp && strcmp(by, "pkalloc") == 0)
				FAIL("[%s]: %s is pkalloc's without a domain", v->settings, key_name[i]);
			printf("test_options: [%s] without address space: %s: %s\n", v->settings, key_name[i], by);
			EVP_PKEY_free(k[i]);
			ERR_clear_error();
			continue;
		}
		if (!k[i])
			FAIL("[%s]: %s did not load", v->settings, key_name[i]);
		const char *prov = OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k[i]));
		if (strcmp(prov, "pkalloc") != 0)
			FAIL("[%s]: %s is %s's, not pkalloc's", v->settings, key_name[i], prov);
		if (!sign_once(k[i], i))
			FAIL("[%s]: %s does not sign and verify", v->settings, key_name[i]);
	}
	if (v->expect == NO_DOMAIN) {
		CHECK(live_domains() == before);
		return;
	}
	int secret, n = key_domains(&secret);
	unsigned grew = live_domains() - before;
	int want = v->expect == SHARED ? 1 : NKEYS;
	if (n != want || grew != (unsigned)want)
		FAIL("[%s]: %d key domains (%u new), expected %d", v->settings, n, grew, want);
	if (secret != (v->secret ? n : 0))
		FAIL("[%s]: %d of the %d key domains are secret memory, expected %s", v->settings, secret, n,
		     v->secret ? "all" : "none");
	/* Signing again after the others loaded: the shared domain holds all. */
	for (int i = 0; i < NKEYS; i++)
		CHECK(sign_once(k[i], i));
	state_kept_out(k, v->settings);
	for (int i = 0; i < NKEYS; i++) {
		EVP_PKEY_free(k[i]);
		/* The shared domain stays while a key is in it. */
		unsigned left = live_domains() - before;
		unsigned expect = v->expect == SHARED ? (i < NKEYS - 1) : (unsigned)(NKEYS - 1 - i);
		if (left != expect)
			FAIL("[%s]: %u key domains after freeing %d keys, expected %u", v->settings, left, i + 1,
			     expect);
	}
	printf("test_options: [%s]%s: %d key domain%s (%d secret memory), back to none after the keys\n",
	       v->settings, v->deny ? " (memfd_secret denied)" : "", n, n == 1 ? "" : "s", secret);
}

int main(int argc, char **argv)
{
	(void)argc;
	const char *mods = provider_test_start(argv, "test_options", "glibc.rtld.optional_static_tls=16384");
	/* The keys are made without any configuration: the children load one. */
	setenv("OPENSSL_CONF", "/dev/null", 1);
	make_keys();
	int secret = secretmem_works();
	const struct variant v[] = {
		{ "", 0, 0, PER_KEY, 0 },
		{ "domains = per-key", 0, 0, PER_KEY, 0 },
		{ "domains = shared", 0, 0, SHARED, 0 },
		{ "secretmem = yes", 0, 0, PER_KEY, 1 },
		{ "domains = shared\nsecretmem = if-available", 0, 0, SHARED, 1 },
		{ "secretmem = yes", 1, 0, ABORTED, 0 },
		{ "secretmem = if-available", 1, 0, PER_KEY, 0 },
		{ "", 0, 1, NO_DOMAIN, 0 },
		{ "domains = one", 0, 0, NOT_LOADED, 0 },
		{ "secretmem = maybe", 0, 0, NOT_LOADED, 0 },
	};
	int skipped = 0;
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		if (v[i].secret && !secret) {
			printf("test_options: [%s]: skipped, memfd_secret is not available here\n", v[i].settings);
			skipped++;
			continue;
		}
		fflush(stdout);
		FILE *err = tmpfile();
		HARD(err);
		pid_t pid = fork();
		HARD(pid >= 0);
		if (pid == 0) {
			dup2(fileno(err), 2);
			run(mods, &v[i]);
			fflush(stdout);
			_exit(0);
		}
		int st;
		HARD(waitpid(pid, &st, 0) == pid);
		/* The child's stderr, passed on, and searched for the lines the
		 * provider must give. */
		char said[8192];
		rewind(err);
		size_t n = fread(said, 1, sizeof said - 1, err);
		said[n] = '\0';
		fclose(err);
		fputs(said, stderr);
		const char *line = v[i].expect == ABORTED ? "pkalloc provider: secretmem = yes, but no secret memory here"
		                 : v[i].expect == NO_DOMAIN ? "pkalloc provider: cannot make a domain for a private key"
		                 : v[i].expect == NOT_LOADED ? "pkalloc provider: " : NULL;
		if (line && !strstr(said, line)) {
			fprintf(stderr, "test_options: [%s]: no line \"%s...\" on stderr\n", v[i].settings, line);
			return 1;
		}
		if (v[i].expect == ABORTED) {
			if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT) {
				fprintf(stderr, "test_options: [%s] without memfd_secret: status %#x, not stopped by abort\n",
				        v[i].settings, st);
				return 1;
			}
			printf("test_options: [%s] without memfd_secret: stopped, one line\n", v[i].settings);
			continue;
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	printf("test_options: ok (%d variant%s skipped)\n", skipped, skipped == 1 ? "" : "s");
	return 0;
}
