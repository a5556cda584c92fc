/*
 * The provider end to end, loaded as an unchanged program loads it: by
 * configuration into a library context, libpkalloc arriving only as the
 * module's dependency (not the process's malloc).  For Ed25519, P-256,
 * P-384 and RSA keys, read through each path programs use (OSSL_STORE on
 * PEM and DER files, as the openssl commands do; PEM_read_bio_PrivateKey,
 * as SSL_CTX_use_PrivateKey_file does; a decoder on a DER file): the key
 * is the provider's; its signatures verify with the default provider, and
 * the default provider's with it; the private seed, scalar or prime, and
 * the DER, are found in the process only inside domain memory, while the
 * same load through the default provider leaves them in plain memory (so
 * the scan can fail); reading the key where it lies, outside an
 * operation, faults (SEGV_PKUERR with protection keys); and four threads
 * sign and verify with one key at once.
 * Exit 0 pass, 77 skip, 99 hard error, 1 failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
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
	const char *type, *group;           /* group: the curve, or NULL */
	unsigned char der[2048], pem[3072], priv[512];
	size_t derlen, pemlen, privlen;
	unsigned char sig[512];             /* the default provider's signature */
	size_t siglen;
};

static const unsigned char msg[] = "pkalloc provider test message";

static domain_t *(*p_domain_of)(const void *);
static int show_hits;                   /* print where plain copies are */

static EVP_PKEY *keygen(const char *type, const char *group)
{
	if (group)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
	if (strcmp(type, "RSA") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	return EVP_PKEY_Q_keygen(NULL, NULL, type);
}

static const char *digest_of(const struct secret *s)
{
	return strcmp(s->type, "ED25519") == 0 ? NULL : "SHA256";
}

static void mask(unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] ^= MASK;
}

/* A key made in a child, so that no plain copy is ever in this process. */
static void make_secret(struct secret *s, const char *type, const char *group)
{
	int fd[2];
	HARD(pipe(fd) == 0);
	pid_t pid = fork();
	HARD(pid >= 0);
	if (pid == 0) {
		EVP_PKEY *k = keygen(type, group);
		unsigned char *der = NULL;
		static struct secret c;
		int n = k ? i2d_PrivateKey(k, &der) : -1;
		HARD(n > 0 && (size_t)n <= sizeof c.der);
		memcpy(c.der, der, (size_t)n);
		c.derlen = (size_t)n;
		BIO *mem = BIO_new(BIO_s_mem());
		char *pem;
		HARD(mem && PEM_write_bio_PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL) == 1);
		long pn = BIO_get_mem_data(mem, &pem);
		HARD(pn > 0 && (size_t)pn <= sizeof c.pem);
		memcpy(c.pem, pem, (size_t)pn);
		c.pemlen = (size_t)pn;
		if (group || strcmp(type, "RSA") == 0) {
			/* EC: the scalar; RSA: the first prime. */
			BIGNUM *d = NULL;
			HARD(EVP_PKEY_get_bn_param(k, group ? OSSL_PKEY_PARAM_PRIV_KEY : OSSL_PKEY_PARAM_RSA_FACTOR1, &d) == 1);
			c.privlen = (size_t)BN_num_bytes(d);
			HARD(BN_bn2bin(d, c.priv) == (int)c.privlen);
		} else {
			c.privlen = sizeof c.priv;
			HARD(EVP_PKEY_get_raw_private_key(k, c.priv, &c.privlen) == 1);
		}
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		c.siglen = sizeof c.sig;
		HARD(EVP_DigestSignInit_ex(m, NULL, strcmp(type, "ED25519") == 0 ? NULL : "SHA256", NULL, NULL, k,
		                           NULL) == 1);
		HARD(EVP_DigestSign(m, c.sig, &c.siglen, msg, sizeof msg) == 1);
		mask(c.der, sizeof c.der);
		mask(c.pem, sizeof c.pem);
		mask(c.priv, sizeof c.priv);
		HARD(write(fd[1], &c, sizeof c) == (ssize_t)sizeof c);
		_exit(0);
	}
	close(fd[1]);
	size_t got = 0;
	ssize_t n;
	while (got < sizeof *s && (n = read(fd[0], (char *)s + got, sizeof *s - got)) > 0)
		got += (size_t)n;
	HARD(got == sizeof *s);
	close(fd[0]);
	s->type = type;
	s->group = group;
	int st;
	HARD(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The ways programs read a key file. */
enum how { STORE_PEM, STORE_DER, PEM_BIO, DECODER_DER, NHOW };
static const char *const how_name[NHOW] = {
	"OSSL_STORE (PEM)", "OSSL_STORE (DER)", "PEM_read_bio_PrivateKey", "OSSL_DECODER (DER)"
};

/* The key's file (unmasked only there, and removed afterwards), read. */
static EVP_PKEY *load(const struct secret *s, enum how how, OSSL_LIB_CTX *ctx)
{
	char path[] = "/tmp/test_provider.XXXXXX";
	int fd = mkstemp(path);
	int pem = how == STORE_PEM || how == PEM_BIO;
	const unsigned char *src = pem ? s->pem : s->der;
	size_t len = pem ? s->pemlen : s->derlen;
	HARD(fd >= 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = src[i] ^ MASK;
		HARD(write(fd, &c, 1) == 1);
	}
	close(fd);
	EVP_PKEY *k = NULL;
	if (how == STORE_PEM || how == STORE_DER) {
		OSSL_STORE_CTX *st = OSSL_STORE_open_ex(path, ctx, NULL, NULL, NULL, NULL, NULL, NULL);
		HARD(st);
		while (!k && !OSSL_STORE_eof(st)) {
			OSSL_STORE_INFO *info = OSSL_STORE_load(st);
			if (info && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
				k = OSSL_STORE_INFO_get1_PKEY(info);
			OSSL_STORE_INFO_free(info);
		}
		OSSL_STORE_close(st);
	} else {
		BIO *b = BIO_new_file(path, "rb");
		HARD(b);
		if (how == PEM_BIO) {
			k = PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, ctx, NULL);
		} else {
			OSSL_DECODER_CTX *dc = OSSL_DECODER_CTX_new_for_pkey(&k, "DER", NULL, NULL, EVP_PKEY_KEYPAIR,
			                                                     ctx, NULL);
			HARD(dc);
			OSSL_DECODER_from_bio(dc, b);
			OSSL_DECODER_CTX_free(dc);
		}
		BIO_free(b);
	}
	unlink(path);
	return k;
}

struct hits {
	int plain, domain;
	void *in_domain;                /* one hit inside domain memory */
};

/*
 * Needles are slices from inside the secret, so that a copy whose first
 * bytes the C library's free overwrote is still found.
 */
#define SLICE 24
#define MAX_NEEDLES 8

struct needle {
	const unsigned char *masked;
	size_t len;                     /* at most SLICE */
	struct hits *h;
};

/* The needles unmasked, and the window read: excluded from the hits,
 * wiped after each scan. */
static unsigned char plain_needles[MAX_NEEDLES][SLICE];
#define CHUNK (1 << 16)
static unsigned char buf[CHUNK + SLICE];

static int excluded(const void *addr)
{
	const unsigned char *a = addr;
	return (a >= buf && a < buf + sizeof buf) ||
	       (a >= &plain_needles[0][0] && a < &plain_needles[0][0] + sizeof plain_needles);
}

/*
 * Every mapping, read through /proc/self/mem (which reaches closed
 * domains too), one pass for all needles; chunks with no resident page
 * (most of each domain's reservation) are skipped.
 */
static void scan_many(const struct needle *nd, int n)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	int mem = open("/proc/self/mem", O_RDONLY);
	char line[512];
	long pg = sysconf(_SC_PAGESIZE);
	HARD(maps && mem >= 0 && n <= MAX_NEEDLES);
	for (int k = 0; k < n; k++) {
		HARD(nd[k].len <= SLICE);
		for (size_t j = 0; j < nd[k].len; j++)
			plain_needles[k][j] = nd[k].masked[j] ^ MASK;
	}
	while (fgets(line, sizeof line, maps)) {
		unsigned long lo, hi;
		char perms[5];
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || strstr(line, "[vvar]") ||
		    strstr(line, "[vsyscall]"))
			continue;
		/* Closed domain pages are PROT_NONE on the mprotect backend. */
		if (perms[0] != 'r' && !(p_domain_of && p_domain_of((void *)lo)))
			continue;
		size_t npages = (hi - lo) / (size_t)pg;
		unsigned char *vec = malloc(npages);
		HARD(vec);
		int known = mincore((void *)lo, hi - lo, vec) == 0;
		for (unsigned long at = lo; at < hi; at += CHUNK) {
			size_t span = hi - at < CHUNK ? hi - at : CHUNK;
			if (known) {
				size_t j = (at - lo) / (size_t)pg, end = j + (span + (size_t)pg - 1) / (size_t)pg;
				while (j < end && !(vec[j] & 1))
					j++;
				if (j == end)
					continue;
			}
			size_t want = hi - at < sizeof buf ? hi - at : sizeof buf;
			ssize_t got = pread(mem, buf, want, (off_t)at);
			if (got <= 0)
				continue;
			for (int k = 0; k < n; k++) {
				const unsigned char *from = buf, *end = buf + got, *q;
				while ((q = memmem(from, (size_t)(end - from), plain_needles[k], nd[k].len))) {
					if ((size_t)(q - buf) >= span)
						break;          /* the next chunk's */
					void *addr = (void *)(at + (size_t)(q - buf));
					if (p_domain_of && p_domain_of(addr)) {
						nd[k].h->domain++;
						nd[k].h->in_domain = addr;
					} else if (!excluded(addr)) {
						nd[k].h->plain++;
						if (show_hits)
							fprintf(stderr, "test_provider: plain copy at %p in %s", addr, line);
					}
					from = q + 1;
				}
			}
		}
		free(vec);
	}
	explicit_bzero(buf, sizeof buf);
	explicit_bzero(plain_needles, sizeof plain_needles);
	fclose(maps);
	close(mem);
}

/* A slice from the middle of a secret. */
static struct needle slice(const unsigned char *masked, size_t len, struct hits *h)
{
	size_t off = len > 2 * SLICE ? len / 2 : len > SLICE ? len - SLICE : 0;
	struct needle n = { masked + off, len - off < SLICE ? len - off : SLICE, h };
	return n;
}

/* The seed, or the scalar or prime in both byte orders (a BIGNUM keeps
 * its words least significant first): one needle or two, into nd. */
static int key_needles(const struct secret *s, unsigned char *rev, struct hits *h, struct needle *nd)
{
	nd[0] = slice(s->priv, s->privlen, h);
	if (strcmp(s->type, "ED25519") == 0)
		return 1;
	for (size_t i = 0; i < s->privlen; i++)
		rev[i] = s->priv[s->privlen - 1 - i];
	nd[1] = slice(rev, s->privlen, h);
	return 2;
}

static void scan_key(const struct secret *s, struct hits *h)
{
	unsigned char rev[sizeof s->priv];
	struct needle nd[2];
	scan_many(nd, key_needles(s, rev, h, nd));
}

static void sign_and_verify(EVP_PKEY *k, const struct secret *s, OSSL_LIB_CTX *plain)
{
	const char *md = digest_of(s);
	unsigned char sig[512];
	size_t siglen = sizeof sig;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	CHECK(EVP_DigestSignInit_ex(m, NULL, md, NULL, NULL, k, NULL) == 1);
	CHECK(EVP_DigestSign(m, sig, &siglen, msg, sizeof msg) == 1);
	EVP_MD_CTX_free(m);
	/* The public key, alone, in a context with the default provider only. */
	OSSL_PARAM *pub = NULL;
	EVP_PKEY *v = NULL;
	CHECK(EVP_PKEY_todata(k, EVP_PKEY_PUBLIC_KEY, &pub) == 1);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(plain, s->group ? "EC" : s->type, NULL);
	CHECK(c && EVP_PKEY_fromdata_init(c) == 1 && EVP_PKEY_fromdata(c, &v, EVP_PKEY_PUBLIC_KEY, pub) == 1);
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(pub);
	m = EVP_MD_CTX_new();
	CHECK(EVP_DigestVerifyInit_ex(m, NULL, md, plain, NULL, v, NULL) == 1);
	CHECK(EVP_DigestVerify(m, sig, siglen, msg, sizeof msg) == 1);
	EVP_MD_CTX_free(m);
	/* A signature the default provider made verifies with the provider's
	 * key, and a damaged one does not. */
	unsigned char bad[512];
	memcpy(bad, s->sig, s->siglen);
	bad[s->siglen / 2] ^= 1;
	m = EVP_MD_CTX_new();
	CHECK(EVP_DigestVerifyInit_ex(m, NULL, md, NULL, NULL, k, NULL) == 1);
	CHECK(EVP_DigestVerify(m, s->sig, s->siglen, msg, sizeof msg) == 1);
	CHECK(EVP_DigestVerifyInit_ex(m, NULL, md, NULL, NULL, k, NULL) == 1);
	CHECK(EVP_DigestVerify(m, bad, s->siglen, msg, sizeof msg) != 1);
	ERR_clear_error();
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

/* Several threads signing and verifying with one key at once: windows
 * on one domain open and close concurrently. */
#define NTHREADS 4
#define NROUNDS 100

struct worker {
	EVP_PKEY *k;
	const struct secret *s;
	int failures;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	const char *md = digest_of(w->s);
	for (int i = 0; i < NROUNDS; i++) {
		unsigned char sig[512];
		size_t n = sizeof sig;
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		int ok = m && EVP_DigestSignInit_ex(m, NULL, md, NULL, NULL, w->k, NULL) == 1 &&
		         EVP_DigestSign(m, sig, &n, msg, sizeof msg) == 1 &&
		         EVP_DigestVerifyInit_ex(m, NULL, md, NULL, NULL, w->k, NULL) == 1 &&
		         EVP_DigestVerify(m, sig, n, msg, sizeof msg) == 1;
		EVP_MD_CTX_free(m);
		w->failures += !ok;
	}
	return NULL;
}

static int threads_sign(EVP_PKEY *k, const struct secret *s)
{
	pthread_t t[NTHREADS];
	struct worker w[NTHREADS];
	int failures = 0;
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ k, s, 0 };
		HARD(pthread_create(&t[i], NULL, work, &w[i]) == 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		HARD(pthread_join(t[i], NULL) == 0);
		failures += w[i].failures;
	}
	return failures;
}

/* Where are the key's secret, its DER and its PEM text? */
static void scan_all(const struct secret *s, struct hits *key, struct hits *der, struct hits *pem)
{
	unsigned char rev[sizeof s->priv], line[SLICE];
	struct needle nd[4];
	int n = key_needles(s, rev, key, nd);
	/* The DER's framing and the secret's first bytes: the file's content,
	 * not the public key that follows the secret in it. */
	const unsigned char *at0 = memmem(s->der, s->derlen, s->priv, s->privlen);
	size_t from = at0 && at0 - s->der >= 8 ? (size_t)(at0 - s->der) - 8 : 0;
	nd[n++] = (struct needle){ s->der + from, SLICE, der };
	/* The PEM's second line: base64 of the key's middle, no header. */
	size_t at, len = 0;
	for (at = 0; at < s->pemlen && (s->pem[at] ^ MASK) != '\n'; at++)
		;
	for (at++; at < s->pemlen && len < SLICE && (s->pem[at] ^ MASK) != '\n'; at++)
		line[len++] = s->pem[at];
	if (len == SLICE)
		nd[n++] = (struct needle){ line, SLICE, pem };
	scan_many(nd, n);
}

#define NKEYS 4

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

int main(int argc, char **argv)
{
	(void)argc;
#ifdef SANITIZED
	/* The scan visits every mapping: AddressSanitizer's shadow reserves
	 * terabytes, which it would walk page by page for minutes. */
	fprintf(stderr, "SKIP: test_provider: AddressSanitizer build (its shadow memory is too large to scan)\n");
	return 77;
#endif
	/*
	 * The environment pkalloc-provider's configuration asks for: room in
	 * the loader for libpkalloc's TLS (it arrives by dlopen), and glibc
	 * clearing the blocks it frees that are too large for its per-thread
	 * cache, such as stdio's buffers, which hold a key file's bytes when
	 * it was read through a FILE (BIO_new_file).  Set here if missing.
	 */
	const char *tun = getenv("GLIBC_TUNABLES");
	if (!tun || !strstr(tun, "optional_static_tls") || !strstr(tun, "malloc.perturb")) {
		setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=16384:glibc.malloc.perturb=165", 1);
		execv("/proc/self/exe", argv);
		perror("execv");
		return 99;
	}
	const char *mods = getenv("PKALLOC_PROVIDER_DIR");
	char so[4096];
	if (!mods || snprintf(so, sizeof so, "%s/pkalloc.so", mods) >= (int)sizeof so || access(so, R_OK) != 0) {
		fprintf(stderr, "SKIP: test_provider: no pkalloc.so in PKALLOC_PROVIDER_DIR (%s): the provider was not built\n",
		        mods ? mods : "not set");
		return 77;
	}
	static struct secret s[NKEYS];
	make_secret(&s[0], "ED25519", NULL);
	make_secret(&s[1], "EC", "P-256");
	make_secret(&s[2], "EC", "P-384");
	make_secret(&s[3], "RSA", NULL);
	OSSL_LIB_CTX *plain = OSSL_LIB_CTX_new();
	HARD(plain && OSSL_PROVIDER_load(plain, "default"));

	/* Without the provider: the default provider's key is plain memory. */
	for (int i = 0; i < NKEYS; i++) {
		pid_t pid = fork();
		HARD(pid >= 0);
		if (pid == 0) {
			EVP_PKEY *k = load(&s[i], STORE_PEM, plain);
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
	HARD(EVP_set_default_properties(NULL, "?pkalloc.prefer=yes") == 1);
	void *lib = dlopen("libpkalloc.so.0", RTLD_LAZY | RTLD_NOLOAD);
	HARD(lib);
	p_domain_of = (domain_t *(*)(const void *))dlsym(lib, "domain_of");
	int (*replaced)(void) = (int (*)(void))dlsym(lib, "pkalloc_malloc_replaced");
	const char *(*backend)(void) = (const char *(*)(void))dlsym(lib, "pkalloc_backend");
	HARD(p_domain_of && replaced && backend);
	CHECK(replaced() == 0);

	int failed = 0;
	show_hits = 1;
	for (int i = 0; i < NKEYS; i++) {
		const char *name = s[i].group ? s[i].group : s[i].type;
		for (int how = 0; how < NHOW; how++) {
			EVP_PKEY *k = load(&s[i], (enum how)how, NULL);
			if (!k)
				FAIL("%s via %s: not loaded", name, how_name[how]);
			const OSSL_PROVIDER *kp = EVP_PKEY_get0_provider(k);
			const char *prov = kp ? OSSL_PROVIDER_get0_name(kp) : "no provider (a legacy key)";
			if (strcmp(prov, "pkalloc") != 0)
				FAIL("%s via %s: the key was decoded by %s, not pkalloc", name, how_name[how], prov);
			for (int n = 0; n < 2; n++)
				sign_and_verify(k, &s[i], plain);
			int tf = how == STORE_PEM ? threads_sign(k, &s[i]) : 0;
			if (tf)
				FAIL("%s: %d of %d signatures or verifications failed in %d threads at once", name, tf,
				     NTHREADS * NROUNDS, NTHREADS);

			struct hits h = { 0 }, hd = { 0 }, hp = { 0 };
			scan_all(&s[i], &h, &hd, &hp);
			if (!h.domain)
				FAIL("%s via %s: the private key is nowhere in domain memory", name, how_name[how]);
			/* Where the key lies, a read outside an operation faults. */
			int code = read_faults(h.in_domain);
			int want = strcmp(backend(), "pku") == 0 ? SEGV_PKUERR : SEGV_ACCERR;
			if (code != want)
				FAIL("%s via %s: reading the key at %p gave si_code %d, expected %d", name,
				     how_name[how], h.in_domain, code, want);
			printf("test_provider: %s via %s: signs, verifies both ways, read faults; plain copies: "
			       "%d of the key, %d of its DER, %d of its PEM text\n",
			       name, how_name[how], h.plain, hd.plain, hp.plain);
			if (h.plain || hd.plain) {
				fprintf(stderr, "test_provider: FAIL: %s via %s left the key in plain memory\n", name,
				        how_name[how]);
				failed = 1;
			}
			EVP_PKEY_free(k);
		}
	}
	OSSL_PROVIDER_unload(pk);
	OSSL_PROVIDER_unload(dflt);
	OSSL_LIB_CTX_free(plain);
	if (failed)
		return 1;
	printf("test_provider: ok on %s\n", backend());
	return 0;
}
