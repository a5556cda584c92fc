/*
 * The pkalloc provider's entry point: OSSL_provider_init, the algorithm
 * tables, the inner library context that does the arithmetic, and the
 * windows in which a key's domain is open (window_open/window_close).
 * Before the first window on a thread, the thread's OpenSSL state (error
 * queue, random generators) is made outside every domain, so that it is
 * never captured.
 */
#include <config.h>

/* ERR_get_state and ERR_STATE: see scrub_errors. */
#define OPENSSL_SUPPRESS_DEPRECATED
#define OSSL_FORCE_ERR_STATE

#include "prov.h"
#include "redirect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

OSSL_FUNC_BIO_read_ex_fn *pk_bio_read_ex;

/* Stack the operations inside a window may have used: wiped on close. */
#define WIPE_STACK (32 * 1024)

const char *pk_type_name(enum pk_type t)
{
	return t == PK_ED25519 ? "ED25519" : "EC";
}

static __thread struct pk_prov *warm_for;

/*
 * What OpenSSL makes lazily per thread, made here, outside: the error
 * queue and the inner context's random generators (nonces, blinding).
 * The queue keeps one text buffer per slot once it had one, reused (and
 * grown by realloc, which keeps plain blocks plain, redirect.c) by every
 * later error with text: give each of its ERR_NUM_ERRORS slots one now,
 * or an error raised inside a window would leave a slot's buffer in the
 * domain, written by the thread's next error outside.
 */
static void warm_thread(struct pk_prov *p)
{
	unsigned char b;
	if (warm_for == p)
		return;
	ERR_set_mark();
	for (int i = 0; i < ERR_NUM_ERRORS; i++)
		ERR_raise_data(ERR_LIB_PROV, ERR_R_INIT_FAIL, "%s", "pkalloc: warming the error queue");
	ERR_pop_to_mark();
	RAND_bytes_ex(p->inner, &b, 1, 0);
	RAND_priv_bytes_ex(p->inner, &b, 1, 0);
	warm_for = p;
}

int window_open(const struct pk_key *k, int capture, struct window *w)
{
	warm_thread(k->prov);
	w->d = k->d;
	w->saved = NULL;
	if (w->d && domain_enter(w->d, DOMAIN_RDWR) != 0) {
		ERR_raise_data(ERR_LIB_PROV, ERR_R_OPERATION_FAIL, "domain_enter: %s", strerror(errno));
		return -1;
	}
	if (capture && w->d)
		w->saved = redirect_capture(w->d);
	ERR_set_mark();
	return 0;
}

/*
 * An error raised inside a window leaves strings in the domain: this
 * OpenSSL duplicates each error's file and function names and allocates
 * its text, in slots of the thread's queue that later errors reuse and
 * write outside.  Free every such string while the domain is still open.
 * Needs ERR_STATE's layout, public up to OpenSSL 3.1.
 */
static void scrub_errors(domain_t *d)
{
	ERR_STATE *es = ERR_get_state();
	if (!es)
		return;
	for (int i = 0; i < ERR_NUM_ERRORS; i++) {
		if (es->err_data[i] && domain_of(es->err_data[i]) == d) {
			domain_free(es->err_data[i]);
			es->err_data[i] = NULL;
			es->err_data_size[i] = 0;
			es->err_data_flags[i] = 0;
		}
		if (es->err_file[i] && domain_of(es->err_file[i]) == d) {
			domain_free(es->err_file[i]);
			es->err_file[i] = NULL;
		}
		if (es->err_func[i] && domain_of(es->err_func[i]) == d) {
			domain_free(es->err_func[i]);
			es->err_func[i] = NULL;
		}
	}
}

void window_close(struct window *w)
{
	/* Errors raised inside carry text in the domain: drop them there. */
	ERR_pop_to_mark();
	if (!w->d)
		return;
	redirect_capture(w->saved);
	scrub_errors(w->d);
	pkalloc_wipe_stack(WIPE_STACK);
	domain_exit(w->d);
}

/*
 * One of each operation per key type, outside every domain, at load: the
 * inner context's method stores and caches fill here, not in the first
 * key's domain.
 */
static int warm_type(struct pk_prov *p, enum pk_type t)
{
	int ok = 0;
	EVP_PKEY *k = NULL, *k2 = NULL;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *c = NULL;
	unsigned char *der = NULL, sig[256], tbs[32] = { 0 };
	size_t siglen = sizeof sig;
	if (t == PK_ED25519)
		k = EVP_PKEY_Q_keygen(p->inner, NULL, "ED25519");
	else
		k = EVP_PKEY_Q_keygen(p->inner, NULL, "EC", "P-256");
	int n = k ? i2d_PrivateKey(k, &der) : -1;
	const unsigned char *q = der;
	if (n <= 0 || !(k2 = d2i_AutoPrivateKey_ex(NULL, &q, n, p->inner, NULL)) || !m)
		goto out;
	if (EVP_DigestSignInit_ex(m, NULL, t == PK_EC ? "SHA256" : NULL, p->inner, NULL, k2, NULL) != 1 ||
	    EVP_DigestSign(m, sig, &siglen, tbs, sizeof tbs) != 1)
		goto out;
	if (t == PK_EC) {
		siglen = sizeof sig;
		c = EVP_PKEY_CTX_new_from_pkey(p->inner, k2, NULL);
		if (!c || EVP_PKEY_sign_init(c) != 1 || EVP_PKEY_sign(c, sig, &siglen, tbs, sizeof tbs) != 1)
			goto out;
	}
	ok = 1;
out:
	OPENSSL_clear_free(der, n > 0 ? (size_t)n : 0);
	EVP_PKEY_CTX_free(c);
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	return ok;
}

static const OSSL_ALGORITHM keymgmt[] = {
	{ "ED25519:1.3.101.112", "provider=pkalloc", pk_ed25519_keymgmt, "pkalloc Ed25519" },
	{ "EC:id-ecPublicKey:1.2.840.10045.2.1", "provider=pkalloc", pk_ec_keymgmt, "pkalloc EC" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM signature[] = {
	{ "ED25519:Ed25519:1.3.101.112", "provider=pkalloc", pk_ed25519_signature, "pkalloc Ed25519" },
	{ "ECDSA", "provider=pkalloc", pk_ecdsa_signature, "pkalloc ECDSA" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM decoder[] = {
	{ "ED25519:1.3.101.112", "provider=pkalloc,input=der,structure=PrivateKeyInfo",
	  pk_ed25519_decoder, "pkalloc Ed25519 from PKCS#8 DER" },
	{ "EC:id-ecPublicKey:1.2.840.10045.2.1", "provider=pkalloc,input=der,structure=PrivateKeyInfo",
	  pk_ec_decoder, "pkalloc EC from PKCS#8 DER" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *query(void *provctx, int id, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	switch (id) {
	case OSSL_OP_KEYMGMT: return keymgmt;
	case OSSL_OP_SIGNATURE: return signature;
	case OSSL_OP_DECODER: return decoder;
	}
	return NULL;
}

static const OSSL_PARAM *gettable(void *provctx)
{
	(void)provctx;
	static const OSSL_PARAM t[] = {
		OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
		OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
		OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
		OSSL_PARAM_END
	};
	return t;
}

static int get_params(void *provctx, OSSL_PARAM params[])
{
	(void)provctx;
	OSSL_PARAM *q;
	if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) && !OSSL_PARAM_set_utf8_ptr(q, "pkalloc provider"))
		return 0;
	if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) && !OSSL_PARAM_set_utf8_ptr(q, PACKAGE_VERSION))
		return 0;
	if ((q = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) && !OSSL_PARAM_set_int(q, 1))
		return 0;
	return 1;
}

static void teardown(void *provctx)
{
	struct pk_prov *p = provctx;
	/* The redirect stays: libcrypto may still free domain memory. */
	OSSL_PROVIDER_unload(p->dflt);
	OSSL_LIB_CTX_free(p->inner);
	free(p);
}

static const OSSL_DISPATCH prov_functions[] = {
	{ OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))teardown },
	{ OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))query },
	{ OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))gettable },
	{ OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))get_params },
	{ 0, NULL }
};

__attribute__((visibility("default")))
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
	for (; in->function_id != 0; in++)
		if (in->function_id == OSSL_FUNC_BIO_READ_EX)
			pk_bio_read_ex = OSSL_FUNC_BIO_read_ex(in);
	if (!pk_bio_read_ex || redirect_install() != 0)
		return 0;
	struct pk_prov *p = calloc(1, sizeof *p);
	if (!p)
		return 0;
	p->handle = handle;
	p->inner = OSSL_LIB_CTX_new();
	p->dflt = p->inner ? OSSL_PROVIDER_load(p->inner, "default") : NULL;
	if (!p->dflt || !warm_type(p, PK_ED25519) || !warm_type(p, PK_EC)) {
		fprintf(stderr, "pkalloc provider: OpenSSL's default provider does not work here\n");
		if (p->inner)
			OSSL_LIB_CTX_free(p->inner);
		free(p);
		return 0;
	}
	*out = prov_functions;
	*provctx = p;
	return 1;
}
