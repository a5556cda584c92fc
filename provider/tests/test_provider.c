/*
 * The provider end to end, loaded as an unchanged program loads it: by
 * configuration into a library context, libpkalloc arriving only as the
 * module's dependency (not the process's malloc).  For Ed25519, P-256,
 * P-384, RSA, RSA-PSS, Ed448 and X448 keys, read through each path
 * programs use (OSSL_STORE on
 * PEM and DER files, as the openssl commands do; PEM_read_bio_PrivateKey,
 * as SSL_CTX_use_PrivateKey_file does; a decoder on a DER file): the key
 * is the provider's; its signatures verify with the default provider, and
 * the default provider's with it; the private seed, scalar or prime, and
 * the DER, are found in the process only inside domain memory, while the
 * same load through the default provider leaves them in plain memory (so
 * the scan can fail); reading the key where it lies, outside an
 * operation, faults (SEGV_PKUERR with protection keys); four threads
 * sign and verify with one key at once, and the key signs a certificate
 * and a TLS 1.3 handshake as a server's, before the scan.  Keys generated through the
 * provider ("provider=pkalloc"), of every type, are the provider's, sign
 * or derive, and their private key, which nobody gave the test, is found
 * inside their domain with the public key as the oracle (and found the
 * same way in plain memory after a default-provider generation), never in
 * plain memory; reading it faults.  A program's ordinary generations, and
 * a TLS handshake's key shares, stay the default provider's: no domain.
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

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <pkalloc.h>

#include "harness.h"

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
	unsigned char epem[4096];           /* encrypted PKCS#8, PASSPHRASE */
	size_t epemlen;
	unsigned char sig[512];             /* the default provider's signature */
	size_t siglen;
};

static const unsigned char msg[] = "pkalloc provider test message";
#define PASSPHRASE "pkalloc provider test passphrase"


static domain_t *(*p_domain_of)(const void *);
static int (*p_domain_enter)(domain_t *, int);
static int (*p_domain_exit)(domain_t *);
static void (*p_wipe_stack)(size_t);
static int show_hits;                   /* print where plain copies are */

/*
 * The module's calls to domain_create come here first (the program
 * exports the name, -Wl,--export-dynamic-symbol): counted, then passed to
 * libpkalloc's.  A domain per key the provider makes: the count says
 * which generations were the provider's.
 */
static volatile int domains_made;

domain_t *domain_create(const char *name, unsigned flags)
{
	static domain_t *(*real)(const char *, unsigned);
	if (!real) {
		void *lib = dlopen("libpkalloc.so.0", RTLD_LAZY | RTLD_NOLOAD);
		HARD(lib && (real = (domain_t *(*)(const char *, unsigned))dlsym(lib, "domain_create")));
	}
	__atomic_add_fetch(&domains_made, 1, __ATOMIC_RELAXED);
	return real(name, flags);
}

/* Keys whose private half is a byte string (no BIGNUM). */
static int is_raw(const char *type)
{
	return strcmp(type, "ED25519") == 0 || strcmp(type, "X25519") == 0 || strcmp(type, "ED448") == 0 ||
	       strcmp(type, "X448") == 0;
}

static int is_rsa(const char *type)
{
	return strcmp(type, "RSA") == 0 || strcmp(type, "RSA-PSS") == 0;
}

static int can_sign(const char *type)
{
	return strcmp(type, "X25519") != 0 && strcmp(type, "X448") != 0;
}

/* A key made by ctx's providers (propq picks them): the curve set by
 * name on a context, RSA's size by a setting, as programs do. */
static EVP_PKEY *generate(OSSL_LIB_CTX *ctx, const char *propq, const char *type, const char *group)
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *c;
	if (strcmp(type, "RSA") == 0)
		return EVP_PKEY_Q_keygen(ctx, propq, "RSA", (size_t)2048);
	if (!group && strcmp(type, "RSA-PSS") != 0)
		return EVP_PKEY_Q_keygen(ctx, propq, type);
	c = EVP_PKEY_CTX_new_from_name(ctx, type, propq);
	if (c && EVP_PKEY_keygen_init(c) == 1 &&
	    (group ? EVP_PKEY_CTX_set_group_name(c, group) : EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048)) == 1)
		EVP_PKEY_generate(c, &k);
	EVP_PKEY_CTX_free(c);
	return k;
}

static EVP_PKEY *keygen(const char *type, const char *group)
{
	return generate(NULL, NULL, type, group);
}

static const char *digest_of(const char *type)
{
	return is_raw(type) ? NULL : "SHA256";
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
		BIO *emem = BIO_new(BIO_s_mem());
		HARD(emem && PEM_write_bio_PKCS8PrivateKey(emem, k, EVP_aes_256_cbc(), NULL, 0, NULL,
		                                           (void *)PASSPHRASE) == 1);
		pn = BIO_get_mem_data(emem, &pem);
		HARD(pn > 0 && (size_t)pn <= sizeof c.epem);
		memcpy(c.epem, pem, (size_t)pn);
		c.epemlen = (size_t)pn;
		if (group || is_rsa(type)) {
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
		HARD(!can_sign(type) || EVP_DigestSignInit_ex(m, NULL, digest_of(type), NULL, NULL, k, NULL) == 1);
		HARD(!can_sign(type) || EVP_DigestSign(m, c.sig, &c.siglen, msg, sizeof msg) == 1);
		mask(c.der, sizeof c.der);
		mask(c.pem, sizeof c.pem);
		mask(c.epem, sizeof c.epem);
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

/* Masked bytes written to a file (unmasked only there), read as a PEM
 * key with a passphrase, or as DER; the file is removed. */
static EVP_PKEY *load_bytes(const unsigned char *masked, size_t len, int pem, const char *pass)
{
	char path[] = "/tmp/test_provider.XXXXXX";
	int fd = mkstemp(path);
	HARD(fd >= 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = masked[i] ^ MASK;
		HARD(write(fd, &c, 1) == 1);
	}
	close(fd);
	BIO *b = BIO_new_file(path, "rb");
	HARD(b);
	EVP_PKEY *k = pem ? PEM_read_bio_PrivateKey_ex(b, NULL, NULL, (void *)pass, NULL, NULL)
	                  : d2i_PrivateKey_ex_bio(b, NULL, NULL, NULL);
	BIO_free(b);
	unlink(path);
	ERR_clear_error();
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
	if (is_raw(s->type))
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

/* The key signs, and the default provider verifies with its public key
 * alone, in a context with the default provider only. */
static void check_sign(EVP_PKEY *k, const char *type, const char *group, OSSL_LIB_CTX *plain)
{
	const char *md = digest_of(type);
	unsigned char sig[512];
	size_t siglen = sizeof sig;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	CHECK(EVP_DigestSignInit_ex(m, NULL, md, NULL, NULL, k, NULL) == 1);
	CHECK(EVP_DigestSign(m, sig, &siglen, msg, sizeof msg) == 1);
	EVP_MD_CTX_free(m);
	OSSL_PARAM *pub = NULL;
	EVP_PKEY *v = NULL;
	CHECK(EVP_PKEY_todata(k, EVP_PKEY_PUBLIC_KEY, &pub) == 1);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(plain, group ? "EC" : type, NULL);
	CHECK(c && EVP_PKEY_fromdata_init(c) == 1 && EVP_PKEY_fromdata(c, &v, EVP_PKEY_PUBLIC_KEY, pub) == 1);
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(pub);
	m = EVP_MD_CTX_new();
	CHECK(EVP_DigestVerifyInit_ex(m, NULL, md, plain, NULL, v, NULL) == 1);
	CHECK(EVP_DigestVerify(m, sig, siglen, msg, sizeof msg) == 1);
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(v);
}

static size_t derive(EVP_PKEY *k, EVP_PKEY *peer, unsigned char *out, size_t size)
{
	size_t n = size;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	CHECK(c && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer) == 1 &&
	      EVP_PKEY_derive(c, out, &n) == 1);
	EVP_PKEY_CTX_free(c);
	return n;
}

/* X25519, X448: the key and a default-provider peer's public key give
 * the secret the peer derives with the key's public key. */
static void check_derive(EVP_PKEY *k, const char *type, OSSL_LIB_CTX *plain)
{
	unsigned char pub[64], s1[64], s2[64];
	size_t publen = sizeof pub;
	EVP_PKEY *peer = EVP_PKEY_Q_keygen(plain, NULL, type), *peerpub, *kpub;
	HARD(peer && EVP_PKEY_get_raw_public_key(peer, pub, &publen) == 1);
	HARD((peerpub = EVP_PKEY_new_raw_public_key_ex(plain, type, NULL, pub, publen)));
	publen = sizeof pub;
	CHECK(EVP_PKEY_get_raw_public_key(k, pub, &publen) == 1);
	HARD((kpub = EVP_PKEY_new_raw_public_key_ex(plain, type, NULL, pub, publen)));
	size_t n1 = derive(k, peerpub, s1, sizeof s1), n2 = derive(peer, kpub, s2, sizeof s2);
	CHECK(n1 == n2 && memcmp(s1, s2, n1) == 0);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(peerpub);
	EVP_PKEY_free(kpub);
}

static void exercise(EVP_PKEY *k, const char *type, const char *group, OSSL_LIB_CTX *plain)
{
	if (can_sign(type))
		check_sign(k, type, group, plain);
	else
		check_derive(k, type, plain);
}

static void sign_and_verify(EVP_PKEY *k, const struct secret *s, OSSL_LIB_CTX *plain)
{
	const char *md = digest_of(s->type);
	exercise(k, s->type, s->group, plain);
	if (!can_sign(s->type))
		return;
	/* A signature the default provider made verifies with the provider's
	 * key, and a damaged one does not. */
	unsigned char bad[512];
	memcpy(bad, s->sig, s->siglen);
	bad[s->siglen / 2] ^= 1;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	CHECK(EVP_DigestVerifyInit_ex(m, NULL, md, NULL, NULL, k, NULL) == 1);
	CHECK(EVP_DigestVerify(m, s->sig, s->siglen, msg, sizeof msg) == 1);
	CHECK(EVP_DigestVerifyInit_ex(m, NULL, md, NULL, NULL, k, NULL) == 1);
	CHECK(EVP_DigestVerify(m, bad, s->siglen, msg, sizeof msg) != 1);
	ERR_clear_error();
	EVP_MD_CTX_free(m);
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
	const char *md = digest_of(w->s->type);
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

/*
 * Finding a private key nobody gave the test: every candidate the memory
 * holds is tried against the key's public key.  Ed25519, X25519, Ed448,
 * X448: a byte string at any offset whose public key is the key's; EC: a
 * scalar, BIGNUM limbs (least significant first) at 8-byte alignment,
 * whose multiple of the generator is the key's point; RSA: a prime half
 * the modulus's size that divides it, in either order.  Candidates that
 * do not look random (too many zero or repeated bytes: pointers, tables,
 * text) are not tried, which keeps the search to seconds.
 */
enum oracle_kind { RAW, SCALAR, PRIME };

struct oracle {
	const char *type;
	enum oracle_kind kind;
	size_t len;                     /* of a candidate */
	unsigned char pub[160];         /* raw public key, or uncompressed point */
	size_t publen;
	OSSL_LIB_CTX *plain;
	EC_GROUP *group;
	EC_POINT *pt;
	BIGNUM *n, *c, *r;
	BN_CTX *bn;
	unsigned char found[512];       /* masked; big-endian for a BIGNUM */
	size_t foundlen;
	long tried;
	const void *at;                 /* where it was found */
};

static void oracle_init(struct oracle *o, EVP_PKEY *k, const char *type, OSSL_LIB_CTX *plain)
{
	memset(o, 0, sizeof *o);
	o->type = type;
	o->plain = plain;
	HARD((o->bn = BN_CTX_new_ex(plain)) && (o->c = BN_new()) && (o->r = BN_new()));
	if (is_raw(type)) {
		o->kind = RAW;
		o->len = strcmp(type, "ED448") == 0 ? 57 : strcmp(type, "X448") == 0 ? 56 : 32;
		o->publen = sizeof o->pub;
		HARD(EVP_PKEY_get_raw_public_key(k, o->pub, &o->publen) == 1);
	} else if (is_rsa(type)) {
		o->kind = PRIME;
		HARD(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &o->n) == 1);
		o->len = (size_t)BN_num_bytes(o->n) / 2;
	} else {
		char name[64];
		o->kind = SCALAR;
		HARD(EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, NULL) == 1);
		int nid = EC_curve_nist2nid(name);
		if (nid == NID_undef)
			nid = OBJ_sn2nid(name);
		HARD((o->group = EC_GROUP_new_by_curve_name_ex(plain, NULL, nid)) && (o->pt = EC_POINT_new(o->group)));
		o->len = (size_t)(EC_GROUP_order_bits(o->group) + 7) / 8;
		HARD(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, o->pub, sizeof o->pub, &o->publen) == 1);
	}
}

static void oracle_free(struct oracle *o)
{
	BN_free(o->n);
	BN_clear_free(o->c);
	BN_clear_free(o->r);
	BN_CTX_free(o->bn);
	EC_POINT_free(o->pt);
	EC_GROUP_free(o->group);
}

static int looks_random(const unsigned char *b, size_t len)
{
	unsigned char seen[256] = { 0 };
	size_t zeros = 0, distinct = 0;
	for (size_t i = 0; i < len; i++) {
		zeros += b[i] == 0;
		distinct += !seen[b[i]];
		seen[b[i]] = 1;
	}
	return zeros <= len / 8 && distinct >= len * 5 / 8;
}

static void keep(struct oracle *o, const unsigned char *b, size_t n, const void *at)
{
	for (size_t i = 0; i < n; i++)
		o->found[i] = b[i] ^ MASK;
	o->foundlen = n;
	o->at = at;
}

/* Keep the BIGNUM o->c, big-endian, masked. */
static void keep_bn(struct oracle *o, const void *at)
{
	unsigned char be[512];
	int n = BN_bn2bin(o->c, be);
	HARD(n > 0);
	keep(o, be, (size_t)n, at);
	explicit_bzero(be, sizeof be);
}

static int try_raw(struct oracle *o, const unsigned char *b)
{
	unsigned char pub[64];
	size_t publen = sizeof pub;
	/* X25519 and X448 keys are generated clamped. */
	if (strcmp(o->type, "X25519") == 0 && ((b[0] & 7) || (b[31] & 0xc0) != 0x40))
		return 0;
	if (strcmp(o->type, "X448") == 0 && ((b[0] & 3) || !(b[55] & 0x80)))
		return 0;
	o->tried++;
	EVP_PKEY *c = EVP_PKEY_new_raw_private_key_ex(o->plain, o->type, NULL, b, o->len);
	int hit = c && EVP_PKEY_get_raw_public_key(c, pub, &publen) == 1 && publen == o->publen &&
	          memcmp(pub, o->pub, publen) == 0;
	EVP_PKEY_free(c);
	if (hit)
		keep(o, b, o->len, b);
	return hit;
}

static int try_scalar(struct oracle *o, const unsigned char *b)
{
	unsigned char pt[160];
	o->tried++;
	if (!BN_lebin2bn(b, (int)o->len, o->c) || BN_is_zero(o->c) ||
	    BN_cmp(o->c, EC_GROUP_get0_order(o->group)) >= 0)
		return 0;
	size_t n = EC_POINT_mul(o->group, o->pt, o->c, NULL, NULL, o->bn) == 1
	                   ? EC_POINT_point2oct(o->group, o->pt, POINT_CONVERSION_UNCOMPRESSED, pt, sizeof pt, o->bn)
	                   : 0;
	int hit = n == o->publen && memcmp(pt, o->pub, n) == 0;
	if (hit)
		keep_bn(o, b);
	return hit;
}

static int try_prime(struct oracle *o, const unsigned char *b)
{
	const unsigned char *last = b + o->len - 1;
	int le = (b[0] & 1) && (*last & 0x80), be = (b[0] & 0x80) && (*last & 1);
	if (!le && !be)
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		if (!(pass ? be : le))
			continue;
		o->tried++;
		if ((pass ? BN_bin2bn(b, (int)o->len, o->c) : BN_lebin2bn(b, (int)o->len, o->c)) &&
		    BN_mod(o->r, o->n, o->c, o->bn) == 1 && BN_is_zero(o->r) && !BN_is_one(o->c)) {
			keep_bn(o, b);
			return 1;
		}
	}
	return 0;
}

/* Search [p, p+n), readable; 1 when the key is found. */
static int search_range(struct oracle *o, const unsigned char *p, size_t n)
{
	if (n < o->len)
		return 0;
	if (o->kind != RAW) {
		for (size_t i = 0; i + o->len <= n; i += 8) {
			if (!looks_random(p + i, o->len))
				continue;
			if (o->kind == SCALAR ? try_scalar(o, p + i) : try_prime(o, p + i))
				return 1;
		}
		return 0;
	}
	/* Every byte offset: the window's zeros and distinct bytes kept as
	 * it slides. */
	unsigned cnt[256] = { 0 };
	size_t zeros = 0, distinct = 0, len = o->len;
	for (size_t i = 0; i < n; i++) {
		zeros += p[i] == 0;
		distinct += cnt[p[i]]++ == 0;
		if (i >= len) {
			unsigned char out = p[i - len];
			zeros -= out == 0;
			distinct -= --cnt[out] == 0;
		}
		if (i + 1 >= len && zeros <= len / 8 && distinct >= len * 5 / 8 && try_raw(o, p + i + 1 - len))
			return 1;
	}
	return 0;
}

/* The resident runs of [lo, hi), each searched whole. */
static int search_mapping(struct oracle *o, unsigned long lo, unsigned long hi)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t npages = (hi - lo) / (size_t)pg;
	unsigned char *vec = malloc(npages);
	int found = 0;
	HARD(vec && mincore((void *)lo, hi - lo, vec) == 0);
	for (size_t j = 0; j < npages && !found;) {
		if (!(vec[j] & 1)) {
			j++;
			continue;
		}
		size_t e = j;
		while (e < npages && (vec[e] & 1))
			e++;
		found = search_range(o, (const unsigned char *)lo + j * (size_t)pg, (e - j) * (size_t)pg);
		j = e;
	}
	free(vec);
	return found;
}

/*
 * in_domains: each domain of the process in turn, entered for reading,
 * its readable mappings; otherwise plain memory: the heap and anonymous
 * writable mappings (not the stack, where the search itself runs).
 * 1 when found (o->found, masked).
 */
static int find_secret(struct oracle *o, int in_domains)
{
	domain_t *doms[64];
	int ndoms = 0, found = 0;
	char line[512];
	FILE *maps = fopen("/proc/self/maps", "r");
	HARD(maps);
	while (in_domains && fgets(line, sizeof line, maps)) {
		unsigned long lo, hi;
		domain_t *d;
		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2 || !(d = p_domain_of((void *)lo)))
			continue;
		int seen = 0;
		for (int i = 0; i < ndoms; i++)
			seen |= doms[i] == d;
		if (!seen && ndoms < 64)
			doms[ndoms++] = d;
	}
	for (int i = 0; i < (in_domains ? ndoms : 1) && !found; i++) {
		HARD(!in_domains || p_domain_enter(doms[i], DOMAIN_RDONLY) == 0);
		rewind(maps);
		while (!found && fgets(line, sizeof line, maps)) {
			unsigned long lo, hi, off, ino;
			char perms[5], dev[16], path[256] = "";
			if (sscanf(line, "%lx-%lx %4s %lx %15s %lu %255s", &lo, &hi, perms, &off, dev, &ino, path) < 6 ||
			    perms[0] != 'r')
				continue;
			domain_t *d = p_domain_of ? p_domain_of((void *)lo) : NULL;
			if (in_domains ? d != doms[i]
			               : d || perms[1] != 'w' || (path[0] && strcmp(path, "[heap]") != 0))
				continue;
			found = search_mapping(o, lo, hi);
		}
		if (in_domains)
			p_domain_exit(doms[i]);
	}
	fclose(maps);
	return found;
}

/* A TLS handshake on memory BIOs, the server's key and certificate
 * given: 1 when both sides finished it. */
static int handshake(EVP_PKEY *key, X509 *cert, int version, const char *groups)
{
	SSL_CTX *sc = SSL_CTX_new(TLS_server_method()), *cc = SSL_CTX_new(TLS_client_method());
	HARD(sc && cc);
	HARD(SSL_CTX_set_min_proto_version(sc, version) && SSL_CTX_set_max_proto_version(sc, version) &&
	     SSL_CTX_set_min_proto_version(cc, version) && SSL_CTX_set_max_proto_version(cc, version));
	HARD(SSL_CTX_set1_groups_list(sc, groups) == 1 && SSL_CTX_set1_groups_list(cc, groups) == 1);
	CHECK(SSL_CTX_use_certificate(sc, cert) == 1 && SSL_CTX_use_PrivateKey(sc, key) == 1);
	SSL *srv = SSL_new(sc), *cli = SSL_new(cc);
	BIO *bs, *bc;
	HARD(srv && cli && BIO_new_bio_pair(&bs, 0, &bc, 0) == 1);
	SSL_set_bio(srv, bs, bs);
	SSL_set_bio(cli, bc, bc);
	SSL_set_accept_state(srv);
	SSL_set_connect_state(cli);
	int done = 0;
	for (int i = 0; i < 32 && !done; i++) {
		int rc = SSL_do_handshake(cli), rs = SSL_do_handshake(srv);
		done = rc == 1 && rs == 1;
		int ec = rc == 1 ? 0 : SSL_get_error(cli, rc), es = rs == 1 ? 0 : SSL_get_error(srv, rs);
		if ((ec && ec != SSL_ERROR_WANT_READ && ec != SSL_ERROR_WANT_WRITE) ||
		    (es && es != SSL_ERROR_WANT_READ && es != SSL_ERROR_WANT_WRITE))
			break;
	}
	SSL_free(srv);
	SSL_free(cli);
	SSL_CTX_free(sc);
	SSL_CTX_free(cc);
	return done;
}

static X509 *self_signed(EVP_PKEY *k)
{
	X509 *x = X509_new();
	HARD(x);
	X509_NAME *nm = X509_get_subject_name(x);
	CHECK(X509_set_version(x, X509_VERSION_3) && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
	      X509_gmtime_adj(X509_getm_notBefore(x), 0) && X509_gmtime_adj(X509_getm_notAfter(x), 3600) &&
	      X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0) &&
	      X509_set_issuer_name(x, nm) && X509_set_pubkey(x, k) &&
	      X509_sign(x, k, EVP_PKEY_is_a(k, "ED25519") || EVP_PKEY_is_a(k, "ED448") ? NULL : EVP_sha256()) > 0);
	return x;
}

/* Key types generated through the provider. */
static const struct {
	const char *type, *group;
} gens[] = {
	{ "ED25519", NULL }, { "X25519", NULL }, { "ED448", NULL }, { "X448", NULL },
	{ "EC", "P-256" },   { "EC", "P-384" },  { "RSA", NULL },   { "RSA-PSS", NULL },
};
#define NGENS (sizeof gens / sizeof gens[0])

#define NKEYS 7

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
	const char *mods = provider_test_start(argv, "test_provider",
	                                       "glibc.rtld.optional_static_tls=16384:glibc.malloc.perturb=165");
	OSSL_LIB_CTX *plain = OSSL_LIB_CTX_new();
	HARD(plain && OSSL_PROVIDER_load(plain, "default"));

	/* Without the provider, a generated key's private half is found in
	 * plain memory by the search that must not find it there later (so
	 * the search can fail); done before the loaded keys' secrets, masked
	 * and random-looking, are in this process to slow it down. */
	for (size_t i = 0; i < NGENS; i++) {
		pid_t pid = fork();
		HARD(pid >= 0);
		if (pid == 0) {
			EVP_PKEY *k = generate(plain, NULL, gens[i].type, gens[i].group);
			struct oracle o;
			CHECK(k);
			oracle_init(&o, k, gens[i].type, plain);
			_exit(find_secret(&o, 0) ? 0 : 3);
		}
		int st;
		HARD(waitpid(pid, &st, 0) == pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			FAIL("%s: the search found no private key in plain memory after the default provider generated one "
			     "(status %#x)", gens[i].group ? gens[i].group : gens[i].type, st);
	}

	static struct secret s[NKEYS];
	make_secret(&s[0], "ED25519", NULL);
	make_secret(&s[1], "EC", "P-256");
	make_secret(&s[2], "EC", "P-384");
	make_secret(&s[3], "RSA", NULL);
	make_secret(&s[4], "RSA-PSS", NULL);
	make_secret(&s[5], "ED448", NULL);
	make_secret(&s[6], "X448", NULL);

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
	p_domain_enter = (int (*)(domain_t *, int))dlsym(lib, "domain_enter");
	p_domain_exit = (int (*)(domain_t *))dlsym(lib, "domain_exit");
	p_wipe_stack = (void (*)(size_t))dlsym(lib, "pkalloc_wipe_stack");
	HARD(p_domain_of && replaced && backend && p_domain_enter && p_domain_exit && p_wipe_stack);
	CHECK(replaced() == 0);

	int failed = 0;
	int want = strcmp(backend(), "pku") == 0 ? SEGV_PKUERR : SEGV_ACCERR;
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
			int tf = how == STORE_PEM && can_sign(s[i].type) ? threads_sign(k, &s[i]) : 0;
			if (tf)
				FAIL("%s: %d of %d signatures or verifications failed in %d threads at once", name, tf,
				     NTHREADS * NROUNDS, NTHREADS);
			/* A server's work with it too, before the scan: a certificate
			 * signed with it and a TLS 1.3 handshake it signs. */
			if (how == STORE_PEM && can_sign(s[i].type)) {
				X509 *cert = self_signed(k);
				if (!handshake(k, cert, TLS1_3_VERSION, "X25519"))
					FAIL("%s: the TLS 1.3 handshake with the key as the server's failed", name);
				X509_free(cert);
			}

			struct hits h = { 0 }, hd = { 0 }, hp = { 0 };
			scan_all(&s[i], &h, &hd, &hp);
			if (!h.domain)
				FAIL("%s via %s: the private key is nowhere in domain memory", name, how_name[how]);
			/* Where the key lies, a read outside an operation faults. */
			int code = read_faults(h.in_domain);
			if (code != want)
				FAIL("%s via %s: reading the key at %p gave si_code %d, expected %d", name,
				     how_name[how], h.in_domain, code, want);
			printf("test_provider: %s via %s: %s, read faults; plain copies: "
			       "%d of the key, %d of its DER, %d of its PEM text\n",
			       name, how_name[how],
			       !can_sign(s[i].type) ? "derives"
			       : how == STORE_PEM ? "signs, verifies both ways, serves a TLS 1.3 handshake"
			                          : "signs, verifies both ways",
			       h.plain, hd.plain, hp.plain);
			if (h.plain || hd.plain) {
				fprintf(stderr, "test_provider: FAIL: %s via %s left the key in plain memory\n", name,
				        how_name[how]);
				failed = 1;
			}
			EVP_PKEY_free(k);
		}
	}
	/*
	 * Bad input and encrypted keys (P-256 and RSA): a wrong passphrase and
	 * a truncated DER fail and leave no plain copy of the key; the right
	 * passphrase gives the provider's key, decrypted inside a domain, with
	 * no plain copy either.
	 */
	static const int bad_of[] = { 1, 3 };
	for (size_t j = 0; j < sizeof bad_of / sizeof bad_of[0]; j++) {
		const struct secret *b = &s[bad_of[j]];
		const char *name = b->group ? b->group : b->type;
		struct hits hw = { 0 }, ht = { 0 }, he = { 0 }, hd = { 0 }, hp = { 0 };
		EVP_PKEY *k = load_bytes(b->epem, b->epemlen, 1, "not the passphrase");
		if (k)
			FAIL("%s: an encrypted key loaded with a wrong passphrase", name);
		scan_key(b, &hw);
		k = load_bytes(b->der, b->derlen - 8, 0, NULL);
		if (k)
			FAIL("%s: a truncated DER key loaded", name);
		scan_key(b, &ht);
		k = load_bytes(b->epem, b->epemlen, 1, PASSPHRASE);
		if (!k)
			FAIL("%s: the encrypted key did not load with its passphrase", name);
		const OSSL_PROVIDER *kp = EVP_PKEY_get0_provider(k);
		if (!kp || strcmp(OSSL_PROVIDER_get0_name(kp), "pkalloc") != 0)
			FAIL("%s: the encrypted key is not the provider's", name);
		sign_and_verify(k, b, plain);
		scan_all(b, &he, &hd, &hp);
		if (!he.domain)
			FAIL("%s: the decrypted key is nowhere in domain memory", name);
		printf("test_provider: %s: a wrong passphrase and a truncated DER fail, leaving %d and %d plain "
		       "copies; the encrypted key with its passphrase is the provider's and signs, %d plain copies "
		       "of the key, %d of its DER\n", name, hw.plain, ht.plain, he.plain, hd.plain);
		if (hw.plain || ht.plain || he.plain || hd.plain) {
			fprintf(stderr, "test_provider: FAIL: %s: bad input or an encrypted key left the key in plain "
			        "memory\n", name);
			failed = 1;
		}
		EVP_PKEY_free(k);
	}

	/* Generated through the provider: asked for by property query. */
	for (size_t i = 0; i < NGENS; i++) {
		const char *type = gens[i].type, *name = gens[i].group ? gens[i].group : type;
		int before = domains_made;
		EVP_PKEY *k = generate(NULL, "provider=pkalloc", type, gens[i].group);
		if (!k)
			FAIL("%s: not generated through the provider", name);
		const OSSL_PROVIDER *kp = EVP_PKEY_get0_provider(k);
		const char *prov = kp ? OSSL_PROVIDER_get0_name(kp) : "no provider";
		if (strcmp(prov, "pkalloc") != 0 || domains_made != before + 1)
			FAIL("%s: generated by %s, in %d new domains (expected pkalloc, in 1)", name, prov,
			     domains_made - before);
		exercise(k, type, gens[i].group, plain);
		struct oracle o;
		oracle_init(&o, k, type, plain);
		int found = find_secret(&o, 1);
		long tried = o.tried;
		const void *at = o.at;
		/* The search's own copies gone before the scan: the last
		 * candidate's BIGNUMs (freed: the provider's redirect wipes
		 * libcrypto's frees), its temporaries on the stack. */
		oracle_free(&o);
		p_wipe_stack(64 * 1024);
		if (!found)
			FAIL("%s generated: no domain holds a private key that matches its public key (%ld candidates "
			     "tried)", name, tried);
		static struct secret g;
		memset(&g, 0, sizeof g);
		g.type = type;
		g.group = gens[i].group;
		memcpy(g.priv, o.found, o.foundlen);
		g.privlen = o.foundlen;
		struct hits h = { 0 };
		scan_key(&g, &h);
		if (!h.domain)
			FAIL("%s generated: the private key found at %p is not seen in domain memory", name, at);
		int code = read_faults(h.in_domain);
		if (code != want)
			FAIL("%s generated: reading the key at %p gave si_code %d, expected %d", name, h.in_domain, code,
			     want);
		printf("test_provider: %s generated by pkalloc: %s, private key found in its domain (%ld candidates "
		       "tried), read faults; plain copies: %d\n",
		       name, can_sign(type) ? "signs, verifies" : "derives", tried, h.plain);
		if (h.plain) {
			fprintf(stderr, "test_provider: FAIL: %s generated left the key in plain memory\n", name);
			failed = 1;
		}
		explicit_bzero(&g, sizeof g);
		explicit_bzero(&o, sizeof o);
		EVP_PKEY_free(k);
	}

	/*
	 * Without the query, generation is the default provider's, as is a
	 * TLS handshake's key share: no domain each.  The server's key is
	 * the provider's (a generated one), so the handshake signs with it.
	 */
	int before = domains_made;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	CHECK(k && strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k)), "default") == 0);
	EVP_PKEY_free(k);
	k = generate(NULL, NULL, "EC", "P-256");
	CHECK(k && strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k)), "default") == 0);
	EVP_PKEY_free(k);
	CHECK(domains_made == before);
	k = generate(NULL, "provider=pkalloc", "EC", "P-256");
	CHECK(k);
	X509 *cert = self_signed(k);
	static const struct {
		int version;
		const char *groups;
	} hs[] = { { TLS1_3_VERSION, "X25519" }, { TLS1_3_VERSION, "P-256" }, { TLS1_3_VERSION, "X448" },
	           /* TLS 1.2: the list names the certificate's curve too. */
	           { TLS1_2_VERSION, "X25519:P-256" }, { TLS1_2_VERSION, "P-384:P-256" } };
	before = domains_made;
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
		if (!handshake(k, cert, hs[i].version, hs[i].groups))
			FAIL("TLS %#x with %s: the handshake failed", hs[i].version, hs[i].groups);
	if (domains_made != before)
		FAIL("%d TLS handshakes made %d domains: their key shares were the provider's",
		     (int)(sizeof hs / sizeof hs[0]), domains_made - before);
	printf("test_provider: ordinary generations and %d TLS handshakes' key shares are the default "
	       "provider's (no domain); the server's generated key signed them\n", (int)(sizeof hs / sizeof hs[0]));
	X509_free(cert);
	/* A key like one of ours (EC: its curve, by the template). */
	EVP_PKEY *k2 = NULL;
	char grp[64];
	EVP_PKEY_CTX *tc = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	before = domains_made;
	CHECK(tc && EVP_PKEY_keygen_init(tc) == 1 && EVP_PKEY_generate(tc, &k2) == 1);
	CHECK(strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(k2)), "pkalloc") == 0 && domains_made == before + 1);
	CHECK(EVP_PKEY_get_utf8_string_param(k2, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof grp, NULL) == 1 &&
	      strcmp(grp, "prime256v1") == 0);
	exercise(k2, "EC", "P-256", plain);
	printf("test_provider: a key generated with one of ours as template is ours, on its curve\n");
	EVP_PKEY_CTX_free(tc);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k);

	OSSL_PROVIDER_unload(pk);
	OSSL_PROVIDER_unload(dflt);
	OSSL_LIB_CTX_free(plain);
	if (failed)
		return 1;
	printf("test_provider: ok on %s\n", backend());
	return 0;
}
