/*
 * The provider end to end, loaded as an unchanged program loads it: by
 * configuration into a library context, libpkalloc arriving only as the
 * module's dependency (not the process's malloc).  For an Ed25519 and a
 * P-256 key decoded from PKCS#8 DER: the key is the provider's; its
 * signatures verify with the default provider, and the default provider's
 * with it; the private seed or scalar and the DER are found in the
 * process only inside domain memory, while the same load through the
 * default provider leaves them in plain memory (so the scan can fail);
 * and reading the key where it lies, outside an operation, faults.
 * Exit 0 pass, 77 skip, 99 hard error, 1 failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <pkalloc.h>

#define FAIL(...) do { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); ERR_print_errors_fp(stderr); exit(1); } while (0)
#define CHECK(c) do { if (!(c)) FAIL("check failed: %s", #c); } while (0)
#define HARD(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); \
	ERR_print_errors_fp(stderr); exit(99); } } while (0)

/* Secrets are kept masked in the test's own memory, so that the scan
 * finds only the copies OpenSSL and the provider make. */
#define MASK 0xa5
struct secret {
	const char *type;
	unsigned char der[256], priv[64];
	size_t derlen, privlen;
	unsigned char sig[128];             /* the default provider's signature */
	size_t siglen;
};

static const unsigned char msg[] = "pkalloc provider test message";

static domain_t *(*p_domain_of)(const void *);

/* A key made in a child, so that no plain copy is ever in this process. */
static void make_secret(struct secret *s, const char *type)
{
	int fd[2];
	HARD(pipe(fd) == 0);
	pid_t pid = fork();
	HARD(pid >= 0);
	if (pid == 0) {
		EVP_PKEY *k = strcmp(type, "EC") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
		                                      : EVP_PKEY_Q_keygen(NULL, NULL, type);
		unsigned char *der = NULL;
		struct secret c = { .type = type };
		int n = k ? i2d_PrivateKey(k, &der) : -1;
		HARD(n > 0 && (size_t)n <= sizeof c.der);
		memcpy(c.der, der, (size_t)n);
		c.derlen = (size_t)n;
		if (strcmp(type, "EC") == 0) {
			BIGNUM *d = NULL;
			HARD(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1);
			HARD(BN_bn2binpad(d, c.priv, 32) == 32);
			c.privlen = 32;
		} else {
			c.privlen = sizeof c.priv;
			HARD(EVP_PKEY_get_raw_private_key(k, c.priv, &c.privlen) == 1);
		}
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		c.siglen = sizeof c.sig;
		HARD(EVP_DigestSignInit_ex(m, NULL, strcmp(type, "EC") == 0 ? "SHA256" : NULL, NULL, NULL, k, NULL) == 1);
		HARD(EVP_DigestSign(m, c.sig, &c.siglen, msg, sizeof msg) == 1);
		for (size_t i = 0; i < sizeof c.der; i++)
			c.der[i] ^= MASK;
		for (size_t i = 0; i < sizeof c.priv; i++)
			c.priv[i] ^= MASK;
		HARD(write(fd[1], &c, sizeof c) == (ssize_t)sizeof c);
		_exit(0);
	}
	close(fd[1]);
	HARD(read(fd[0], s, sizeof *s) == (ssize_t)sizeof *s);
	close(fd[0]);
	s->type = type;
	int st;
	HARD(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/*
 * Load the key as the openssl commands do: OSSL_STORE on a file holding
 * the DER (unmasked only in the file), which is removed afterwards.
 */
static EVP_PKEY *load(const struct secret *s, OSSL_LIB_CTX *ctx)
{
	char path[] = "/tmp/test_provider.XXXXXX";
	int fd = mkstemp(path);
	HARD(fd >= 0);
	for (size_t i = 0; i < s->derlen; i++) {
		unsigned char c = s->der[i] ^ MASK;
		HARD(write(fd, &c, 1) == 1);
	}
	close(fd);
	EVP_PKEY *k = NULL;
	OSSL_STORE_CTX *st = OSSL_STORE_open_ex(path, ctx, NULL, NULL, NULL, NULL, NULL, NULL);
	HARD(st);
	while (!k && !OSSL_STORE_eof(st)) {
		OSSL_STORE_INFO *info = OSSL_STORE_load(st);
		if (info && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			k = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(st);
	unlink(path);
	return k;
}

struct hits {
	int plain, domain;
	void *in_domain;                /* one hit inside domain memory */
};

/* Every mapping, read through /proc/self/mem (which reaches closed
 * domains too): where do the masked needles occur? */
static void scan(const unsigned char *masked, size_t len, struct hits *h)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	int mem = open("/proc/self/mem", O_RDONLY);
	static unsigned char buf[1 << 16];
	char line[512];
	HARD(maps && mem >= 0);
	while (fgets(line, sizeof line, maps)) {
		unsigned long lo, hi;
		char perms[5];
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || strstr(line, "[vvar]") ||
		    strstr(line, "[vsyscall]"))
			continue;
		/* Closed domain pages are PROT_NONE on the mprotect backend. */
		if (perms[0] != 'r' && !(p_domain_of && p_domain_of((void *)lo)))
			continue;
		for (unsigned long at = lo; at < hi; at += sizeof buf - len) {
			size_t want = hi - at < sizeof buf ? hi - at : sizeof buf;
			ssize_t n = pread(mem, buf, want, (off_t)at);
			if (n < (ssize_t)len)
				break;
			for (size_t i = 0; i + len <= (size_t)n; i++) {
				size_t j = 0;
				while (j < len && buf[i + j] == (unsigned char)(masked[j] ^ MASK))
					j++;
				if (j < len)
					continue;
				void *addr = (void *)(at + i);
				if (p_domain_of && p_domain_of(addr)) {
					h->domain++;
					h->in_domain = addr;
				} else if (!((unsigned char *)addr >= buf && (unsigned char *)addr < buf + sizeof buf)) {
					h->plain++;
				}
			}
			if ((size_t)n < want || at + n >= hi)
				break;
		}
	}
	memset(buf, 0, sizeof buf);
	fclose(maps);
	close(mem);
}

/* The seed, or the EC scalar in both byte orders (a BIGNUM keeps its
 * words least significant first). */
static void scan_key(const struct secret *s, struct hits *h)
{
	unsigned char rev[64];
	scan(s->priv, s->privlen, h);
	if (strcmp(s->type, "EC") == 0) {
		for (size_t i = 0; i < s->privlen; i++)
			rev[i] = s->priv[s->privlen - 1 - i];
		scan(rev, s->privlen, h);
	}
}

static void sign_and_verify(EVP_PKEY *k, const struct secret *s, OSSL_LIB_CTX *plain)
{
	const char *md = strcmp(s->type, "EC") == 0 ? "SHA256" : NULL;
	unsigned char sig[128], pub[160];
	size_t siglen = sizeof sig, publen;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	CHECK(EVP_DigestSignInit_ex(m, NULL, md, NULL, NULL, k, NULL) == 1);
	CHECK(EVP_DigestSign(m, sig, &siglen, msg, sizeof msg) == 1);
	EVP_MD_CTX_free(m);
	/* The public key, alone, in a context with the default provider only. */
	CHECK(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &publen) == 1);
	EVP_PKEY *v = NULL;
	if (md) {
		char group[32];
		CHECK(EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) == 1);
		OSSL_PARAM p[] = {
			OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
			OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, publen), OSSL_PARAM_END
		};
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(plain, "EC", NULL);
		CHECK(c && EVP_PKEY_fromdata_init(c) == 1 && EVP_PKEY_fromdata(c, &v, EVP_PKEY_PUBLIC_KEY, p) == 1);
		EVP_PKEY_CTX_free(c);
	} else {
		v = EVP_PKEY_new_raw_public_key_ex(plain, s->type, NULL, pub, publen);
	}
	CHECK(v);
	m = EVP_MD_CTX_new();
	CHECK(EVP_DigestVerifyInit_ex(m, NULL, md, plain, NULL, v, NULL) == 1);
	CHECK(EVP_DigestVerify(m, sig, siglen, msg, sizeof msg) == 1);
	/* A signature the default provider made verifies with the provider's key. */
	EVP_MD_CTX_free(m);
	m = EVP_MD_CTX_new();
	CHECK(EVP_DigestVerifyInit_ex(m, NULL, md, NULL, NULL, k, NULL) == 1);
	CHECK(EVP_DigestVerify(m, s->sig, s->siglen, msg, sizeof msg) == 1);
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(v);
}

static sigjmp_buf jb;
static volatile int seen_code;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	seen_code = si->si_code;
	siglongjmp(jb, 1);
}

/* A read of addr here faults: the si_code it gave, or 0 if none. */
static int read_faults(const void *addr)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER }, old;
	sigaction(SIGSEGV, &sa, &old);
	seen_code = 0;
	if (sigsetjmp(jb, 1) == 0)
		(void)*(volatile const unsigned char *)addr;
	sigaction(SIGSEGV, &old, NULL);
	return seen_code;
}

int main(int argc, char **argv)
{
	(void)argc;
	/* libpkalloc arrives by dlopen: its TLS needs the loader's room. */
	const char *tun = getenv("GLIBC_TUNABLES");
	if (!tun || !strstr(tun, "optional_static_tls")) {
		setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=16384", 1);
		execv("/proc/self/exe", argv);
		perror("execv");
		return 99;
	}
	const char *mods = getenv("PKALLOC_PROVIDER_DIR");
	if (!mods) {
		fprintf(stderr, "test_provider: PKALLOC_PROVIDER_DIR not set (the provider was not built)\n");
		return 77;
	}
	struct secret s[2];
	make_secret(&s[0], "ED25519");
	make_secret(&s[1], "EC");
	OSSL_LIB_CTX *plain = OSSL_LIB_CTX_new();
	HARD(plain && OSSL_PROVIDER_load(plain, "default"));

	/* Without the provider: the default provider's key is plain memory. */
	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		HARD(pid >= 0);
		if (pid == 0) {
			EVP_PKEY *k = load(&s[i], plain);
			CHECK(k);
			struct hits h = { 0 };
			scan_key(&s[i], &h);
			_exit(h.plain > 0 ? 0 : 3);
		}
		int st;
		HARD(waitpid(pid, &st, 0) == pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAIL("%s: the scan found no plain copy of a key the default provider holds (status %#x)",
			     s[i].type, st);
	}

	/* With it, as a configuration would load it. */
	OSSL_PROVIDER_set_default_search_path(NULL, mods);
	OSSL_PROVIDER *dflt = OSSL_PROVIDER_load(NULL, "default");
	OSSL_PROVIDER *pk = OSSL_PROVIDER_load(NULL, "pkalloc");
	HARD(dflt);
	if (!pk)
		FAIL("the pkalloc provider did not load from %s", mods);
	HARD(EVP_set_default_properties(NULL, "?provider=pkalloc") == 1);
	void *lib = dlopen("libpkalloc.so.0", RTLD_LAZY | RTLD_NOLOAD);
	HARD(lib);
	p_domain_of = (domain_t *(*)(const void *))dlsym(lib, "domain_of");
	int (*replaced)(void) = (int (*)(void))dlsym(lib, "pkalloc_malloc_replaced");
	const char *(*backend)(void) = (const char *(*)(void))dlsym(lib, "pkalloc_backend");
	HARD(p_domain_of && replaced && backend);
	CHECK(replaced() == 0);

	for (int i = 0; i < 2; i++) {
		EVP_PKEY *k = load(&s[i], NULL);
		CHECK(k);
		const OSSL_PROVIDER *kp = EVP_PKEY_get0_provider(k);
		const char *prov = kp ? OSSL_PROVIDER_get0_name(kp) : "no provider (a legacy key)";
		if (strcmp(prov, "pkalloc") != 0)
			FAIL("%s: the key was decoded by %s, not pkalloc", s[i].type, prov);
		for (int n = 0; n < 3; n++)
			sign_and_verify(k, &s[i], plain);

		struct hits h = { 0 }, hd = { 0 };
		scan_key(&s[i], &h);
		scan(s[i].der, s[i].derlen, &hd);
		if (h.plain || hd.plain)
			FAIL("%s: %d plain copies of the private key, %d of its DER", s[i].type, h.plain, hd.plain);
		if (!h.domain)
			FAIL("%s: the private key is nowhere in domain memory", s[i].type);
		/* Where the key lies, a read outside an operation faults. */
		int code = read_faults(h.in_domain);
		int want = strcmp(backend(), "pku") == 0 ? SEGV_PKUERR : SEGV_ACCERR;
		if (code != want)
			FAIL("%s: reading the key at %p gave si_code %d, expected %d", s[i].type, h.in_domain, code, want);
		EVP_PKEY_free(k);
		printf("test_provider: %s: signs, verifies both ways, %d copies only in its domain, read faults\n",
		       s[i].type, h.domain);
	}
	OSSL_PROVIDER_unload(pk);
	OSSL_PROVIDER_unload(dflt);
	OSSL_LIB_CTX_free(plain);
	printf("test_provider: ok on %s\n", backend());
	return 0;
}
