/*
 * Private-key operations as an unchanged OpenSSL 3 program does them, for
 * section 8 of the driver (bench/provider.c): it links libcrypto and
 * libssl only, never libpkalloc, so whether its keys live in pkalloc
 * domains is decided by the configuration it is started with
 * (OPENSSL_CONF=provider/pkalloc.cnf, or /dev/null for none).
 *
 * Usage: pkprov DIR keygen
 *        pkprov DIR OPERATION COUNT
 * keygen writes the keys and self-signed certificates into DIR (run it
 * with the plain default provider).  An operation reads its key from DIR
 * as a server does (PEM_read_bio_PrivateKey, SSL_CTX_use_PrivateKey_file),
 * performs it COUNT times and prints
 *   pkprov: provider NAME       the provider holding the private key
 *   pkprov: backend NAME        pkalloc's backend, where the provider
 *                               brought libpkalloc in
 *   pkprov: ns NS               the COUNT operations, all of them
 *   pkprov: server ns NS        TLS only: the server's handshake calls
 *   pkprov: counted yes|no      whether, under callgrind with
 *                               --collect-atstart=no, only the
 *                               operations are counted
 * Operations: rsa2048-sign rsa2048-decrypt p256-sign ed25519-sign
 * x25519-derive tls13-p256 tls13-rsa2048 tls12-p256 tls12-rsa2048.
 * Exit 0, or 1 with a message.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static const char *dir;

static void die(const char *what)
{
	fprintf(stderr, "pkprov: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}
#define CHECK(c) do { if (!(c)) die(#c); } while (0)

/*
 * Under callgrind started with --collect-atstart=no, only the operations'
 * loop is counted (section 8's instruction figures): collection is turned
 * on and off around it.  Elsewhere these do nothing.
 */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define COUNTED "yes"
#endif
#endif
#ifndef COUNTED
#define CALLGRIND_TOGGLE_COLLECT
#define COUNTED "no"
#endif

static double now_ns(void);

static double loop_start(void)
{
	CALLGRIND_TOGGLE_COLLECT;
	return now_ns();
}

static double loop_end(double t0)
{
	double t = now_ns() - t0;
	CALLGRIND_TOGGLE_COLLECT;
	return t;
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static const char *path(const char *name)
{
	static char p[4096];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return p;
}

/* The key read the way a server reads its key file. */
static EVP_PKEY *load_key(const char *name)
{
	BIO *b = BIO_new_file(path(name), "r");
	CHECK(b);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	CHECK(k);
	BIO_free(b);
	return k;
}

static void print_provider(const EVP_PKEY *k)
{
	const OSSL_PROVIDER *p = EVP_PKEY_get0_provider(k);
	printf("pkprov: provider %s\n", p ? OSSL_PROVIDER_get0_name(p) : "(none)");
	/* libpkalloc is here only as the module's dependency, loaded locally:
	 * asked for by name, never loaded by this program itself. */
	void *h = dlopen("libpkalloc.so.0", RTLD_NOW | RTLD_NOLOAD);
	const char *(*backend)(void) = h ? (const char *(*)(void))dlsym(h, "pkalloc_backend") : NULL;
	if (backend)
		printf("pkprov: backend %s\n", backend());
}

static void write_key(EVP_PKEY *k, const char *name)
{
	BIO *b = BIO_new_file(path(name), "w");
	CHECK(b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
	BIO_free(b);
}

/* A self-signed certificate for CN=localhost, as `openssl req -x509`. */
static void write_cert(EVP_PKEY *k, const char *name)
{
	X509 *x = X509_new();
	CHECK(x && X509_set_version(x, 2));
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 2 * 86400);
	X509_NAME *n = X509_get_subject_name(x);
	CHECK(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0));
	CHECK(X509_set_issuer_name(x, n) && X509_set_pubkey(x, k));
	CHECK(X509_sign(x, k, EVP_sha256()));
	BIO *b = BIO_new_file(path(name), "w");
	CHECK(b && PEM_write_bio_X509(b, x));
	BIO_free(b);
	X509_free(x);
}

static void keygen(void)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	CHECK(rsa && p256 && ed && x);
	write_key(rsa, "rsa2048.pem");
	write_key(p256, "p256.pem");
	write_key(ed, "ed25519.pem");
	write_key(x, "x25519.pem");
	write_cert(rsa, "rsa2048.crt");
	write_cert(p256, "p256.crt");
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(x);
}

static const unsigned char msg[] = "pkalloc provider benchmark: a message to sign";

/* Each operation sets its context up anew, as a server does per handshake. */
static double sign(const char *file, const EVP_MD *md, long n)
{
	EVP_PKEY *k = load_key(file);
	print_provider(k);
	unsigned char sig[512];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	CHECK(c);
	double t0 = loop_start();
	for (long i = 0; i < n; i++) {
		size_t len = sizeof sig;
		CHECK(EVP_DigestSignInit_ex(c, NULL, md ? EVP_MD_get0_name(md) : NULL, NULL, NULL, k, NULL) == 1);
		CHECK(EVP_DigestSign(c, sig, &len, msg, sizeof msg) == 1);
	}
	double t = loop_end(t0);
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
	return t;
}

static double rsa_decrypt(long n)
{
	EVP_PKEY *k = load_key("rsa2048.pem");
	print_provider(k);
	unsigned char secret[48], ct[256], pt[256];
	size_t ctlen = sizeof ct;
	memset(secret, 0x3c, sizeof secret);
	EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	CHECK(e && EVP_PKEY_encrypt_init(e) == 1);
	CHECK(EVP_PKEY_CTX_set_rsa_padding(e, RSA_PKCS1_OAEP_PADDING) == 1);
	CHECK(EVP_PKEY_encrypt(e, ct, &ctlen, secret, sizeof secret) == 1);
	EVP_PKEY_CTX_free(e);
	double t0 = loop_start();
	for (long i = 0; i < n; i++) {
		size_t len = sizeof pt;
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
		CHECK(c && EVP_PKEY_decrypt_init(c) == 1);
		CHECK(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1);
		CHECK(EVP_PKEY_decrypt(c, pt, &len, ct, ctlen) == 1);
		CHECK(len == sizeof secret && memcmp(pt, secret, len) == 0);
		EVP_PKEY_CTX_free(c);
	}
	double t = loop_end(t0);
	EVP_PKEY_free(k);
	return t;
}

static double x25519_derive(long n)
{
	EVP_PKEY *k = load_key("x25519.pem");
	print_provider(k);
	/* The peer: a fresh key, as a client's share. */
	EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	CHECK(peer);
	unsigned char z[32];
	double t0 = loop_start();
	for (long i = 0; i < n; i++) {
		size_t len = sizeof z;
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
		CHECK(c && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer) == 1);
		CHECK(EVP_PKEY_derive(c, z, &len) == 1 && len == sizeof z);
		EVP_PKEY_CTX_free(c);
	}
	double t = loop_end(t0);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(k);
	return t;
}

/*
 * Full handshakes between a server holding its key through whatever
 * provider the configuration gives and a client that verifies its
 * certificate, in this process over a BIO pair: no sockets, no scheduler
 * between them.  No tickets and no session cache: every handshake is a
 * full one.  *server gets the time spent in the server's calls alone.
 */
static double tls(int version, const char *key, const char *crt, long n, double *server)
{
	SSL_CTX *sc = SSL_CTX_new(TLS_server_method()), *cc = SSL_CTX_new(TLS_client_method());
	CHECK(sc && cc);
	CHECK(SSL_CTX_use_certificate_file(sc, path(crt), SSL_FILETYPE_PEM) == 1);
	CHECK(SSL_CTX_use_PrivateKey_file(sc, path(key), SSL_FILETYPE_PEM) == 1);
	print_provider(SSL_CTX_get0_privatekey(sc));
	for (SSL_CTX *c = sc; c; c = c == sc ? cc : NULL) {
		CHECK(SSL_CTX_set_min_proto_version(c, version) && SSL_CTX_set_max_proto_version(c, version));
		SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
	}
	SSL_CTX_set_num_tickets(sc, 0);
	SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_cache_mode(cc, SSL_SESS_CACHE_OFF);
	CHECK(SSL_CTX_load_verify_locations(cc, path(crt), NULL) == 1);
	SSL_CTX_set_verify(cc, SSL_VERIFY_PEER, NULL);
	*server = 0;
	double t0 = loop_start();
	for (long i = 0; i < n; i++) {
		SSL *s = SSL_new(sc), *c = SSL_new(cc);
		BIO *sb, *cb;
		CHECK(s && c && BIO_new_bio_pair(&sb, 0, &cb, 0) == 1);
		SSL_set_bio(s, sb, sb);
		SSL_set_bio(c, cb, cb);
		SSL_set_accept_state(s);
		SSL_set_connect_state(c);
		CHECK(SSL_set1_host(c, "localhost") == 1);
		int sdone = 0, cdone = 0;
		for (int round = 0; !(sdone && cdone); round++) {
			CHECK(round < 16);
			if (!cdone) {
				int r = SSL_do_handshake(c);
				cdone = r == 1;
				CHECK(cdone || SSL_get_error(c, r) == SSL_ERROR_WANT_READ);
			}
			if (!sdone) {
				double s0 = now_ns();
				int r = SSL_do_handshake(s);
				*server += now_ns() - s0;
				sdone = r == 1;
				CHECK(sdone || SSL_get_error(s, r) == SSL_ERROR_WANT_READ);
			}
		}
		CHECK(SSL_version(c) == version && SSL_get_verify_result(c) == X509_V_OK);
		SSL_free(c);
		SSL_free(s);
	}
	double t = loop_end(t0);
	SSL_CTX_free(cc);
	SSL_CTX_free(sc);
	return t;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[2], "keygen") == 0) {
		dir = argv[1];
		keygen();
		return 0;
	}
	if (argc != 4 || atol(argv[3]) < 1) {
		fprintf(stderr, "usage: pkprov DIR keygen | pkprov DIR OPERATION COUNT\n");
		return 2;
	}
	dir = argv[1];
	const char *op = argv[2];
	long n = atol(argv[3]);
	double t, server = -1;
	if (strcmp(op, "rsa2048-sign") == 0)
		t = sign("rsa2048.pem", EVP_sha256(), n);
	else if (strcmp(op, "rsa2048-decrypt") == 0)
		t = rsa_decrypt(n);
	else if (strcmp(op, "p256-sign") == 0)
		t = sign("p256.pem", EVP_sha256(), n);
	else if (strcmp(op, "ed25519-sign") == 0)
		t = sign("ed25519.pem", NULL, n);
	else if (strcmp(op, "x25519-derive") == 0)
		t = x25519_derive(n);
	else if (strcmp(op, "tls13-p256") == 0)
		t = tls(TLS1_3_VERSION, "p256.pem", "p256.crt", n, &server);
	else if (strcmp(op, "tls13-rsa2048") == 0)
		t = tls(TLS1_3_VERSION, "rsa2048.pem", "rsa2048.crt", n, &server);
	else if (strcmp(op, "tls12-p256") == 0)
		t = tls(TLS1_2_VERSION, "p256.pem", "p256.crt", n, &server);
	else if (strcmp(op, "tls12-rsa2048") == 0)
		t = tls(TLS1_2_VERSION, "rsa2048.pem", "rsa2048.crt", n, &server);
	else {
		fprintf(stderr, "pkprov: unknown operation %s\n", op);
		return 2;
	}
	printf("pkprov: ns %.0f\n", t);
	printf("pkprov: counted %s\n", COUNTED);
	if (server >= 0)
		printf("pkprov: server ns %.0f\n", server);
	return 0;
}
