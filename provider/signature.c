/*
 * Signatures with a pkalloc key: every call that touches the key runs the
 * default provider's implementation on the inner key, inside the key's
 * window, so what it allocates (the operation's contexts, EC precomputation,
 * nonces' temporaries) is domain memory, gone with the window's frees.
 * Ed25519 is one-shot (as in OpenSSL); ECDSA signs a digest (EVP_PKEY_sign)
 * or a message (EVP_DigestSign*, streaming).
 */
#include "prov.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>

struct sigctx {
	struct pk_prov *prov;
	struct pk_key *key;
	char md[64];                /* digest name, "" for none */
	EVP_MD_CTX *mctx;           /* streaming ECDSA: in the key's domain */
};

static void *sig_newctx(void *provctx, const char *propq)
{
	(void)propq;
	struct sigctx *c = calloc(1, sizeof *c);
	if (c)
		c->prov = provctx;
	return c;
}

static void drop_mctx(struct sigctx *c)
{
	struct window w;
	if (c->mctx && window_open(c->key, 1, &w) == 0) {
		EVP_MD_CTX_free(c->mctx);
		window_close(&w);
	}
	c->mctx = NULL;
}

static void sig_freectx(void *ctx)
{
	struct sigctx *c = ctx;
	drop_mctx(c);
	free(c);
}

static void *sig_dupctx(void *ctx)
{
	struct sigctx *c = ctx, *n = calloc(1, sizeof *n);
	struct window w;
	if (!n)
		return NULL;
	*n = *c;
	n->mctx = NULL;
	if (c->mctx) {
		if (window_open(c->key, 1, &w) != 0) {
			free(n);
			return NULL;
		}
		n->mctx = EVP_MD_CTX_new();
		if (n->mctx && EVP_MD_CTX_copy_ex(n->mctx, c->mctx) != 1) {
			EVP_MD_CTX_free(n->mctx);
			n->mctx = NULL;
		}
		window_close(&w);
		if (!n->mctx) {
			free(n);
			return NULL;
		}
	}
	return n;
}

/* The digest is fetched here, outside every window, so that the inner
 * context's method cache takes it in plain memory, not in a key's domain. */
static int set_md(struct sigctx *c, const char *md)
{
	if (md && *md) {
		EVP_MD *m = EVP_MD_fetch(c->prov->inner, md, NULL);
		if (!m || strlen(md) >= sizeof c->md) {
			EVP_MD_free(m);
			ERR_raise(ERR_LIB_PROV, ERR_R_UNSUPPORTED);
			return 0;
		}
		EVP_MD_free(m);
	}
	strcpy(c->md, md ? md : "");
	return 1;
}

static int sig_set_ctx_params(void *ctx, const OSSL_PARAM params[])
{
	struct sigctx *c = ctx;
	const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
	const char *md = NULL;
	if (p && (!OSSL_PARAM_get_utf8_string_ptr(p, &md) || !set_md(c, md)))
		return 0;
	return 1;
}

static const OSSL_PARAM *sig_settable_ctx_params(void *ctx, void *provctx)
{
	(void)ctx, (void)provctx;
	static const OSSL_PARAM t[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0), OSSL_PARAM_END
	};
	return t;
}

static int use_key(struct sigctx *c, void *key, const OSSL_PARAM params[])
{
	struct pk_key *k = key;
	if (!k || !k->inner || !k->has_priv) {
		ERR_raise(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT);
		return 0;
	}
	drop_mctx(c);
	c->key = k;
	c->md[0] = '\0';
	return sig_set_ctx_params(c, params);
}

static int sig_sign_init(void *ctx, void *key, const OSSL_PARAM params[])
{
	return use_key(ctx, key, params);
}

/* ECDSA over a digest the caller made. */
static int sig_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
	struct sigctx *c = ctx;
	struct window w;
	if (!sig) {
		*siglen = (size_t)c->key->max_size;
		return 1;
	}
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	size_t n = sigsize;
	OSSL_PARAM md[2] = { OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, c->md, 0), OSSL_PARAM_END };
	EVP_PKEY_CTX *p = EVP_PKEY_CTX_new_from_pkey(c->prov->inner, c->key->inner, NULL);
	int ok = p && EVP_PKEY_sign_init(p) == 1 &&
	         (c->md[0] == '\0' || EVP_PKEY_CTX_set_params(p, md) == 1) &&
	         EVP_PKEY_sign(p, sig, &n, tbs, tbslen) == 1;
	EVP_PKEY_CTX_free(p);
	window_close(&w);
	if (!ok) {
		ERR_raise(ERR_LIB_PROV, ERR_R_OPERATION_FAIL);
		return 0;
	}
	*siglen = n;
	return 1;
}

static int sig_digest_sign_init(void *ctx, const char *mdname, void *key, const OSSL_PARAM params[])
{
	struct sigctx *c = ctx;
	struct window w;
	if (!use_key(c, key, params) || !set_md(c, mdname && *mdname ? mdname : NULL))
		return 0;
	if (c->key->type == PK_ED25519) {
		if (c->md[0] != '\0') {
			ERR_raise(ERR_LIB_PROV, ERR_R_UNSUPPORTED);
			return 0;
		}
		return 1;
	}
	if (c->md[0] == '\0' && !set_md(c, "SHA256"))
		return 0;
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	c->mctx = EVP_MD_CTX_new();
	int ok = c->mctx && EVP_DigestSignInit_ex(c->mctx, NULL, c->md, c->prov->inner, NULL, c->key->inner, NULL) == 1;
	if (!ok) {
		EVP_MD_CTX_free(c->mctx);
		c->mctx = NULL;
	}
	window_close(&w);
	if (!ok)
		ERR_raise(ERR_LIB_PROV, ERR_R_OPERATION_FAIL);
	return ok;
}

static int sig_digest_sign_update(void *ctx, const unsigned char *data, size_t len)
{
	struct sigctx *c = ctx;
	struct window w;
	if (!c->mctx) {
		ERR_raise(ERR_LIB_PROV, ERR_R_UNSUPPORTED);
		return 0;
	}
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	int ok = EVP_DigestSignUpdate(c->mctx, data, len) == 1;
	window_close(&w);
	return ok;
}

static int sig_digest_sign_final(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
	struct sigctx *c = ctx;
	struct window w;
	if (!c->mctx) {
		ERR_raise(ERR_LIB_PROV, ERR_R_UNSUPPORTED);
		return 0;
	}
	if (!sig) {
		*siglen = (size_t)c->key->max_size;
		return 1;
	}
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	size_t n = sigsize;
	int ok = EVP_DigestSignFinal(c->mctx, sig, &n) == 1;
	window_close(&w);
	if (!ok) {
		ERR_raise(ERR_LIB_PROV, ERR_R_OPERATION_FAIL);
		return 0;
	}
	*siglen = n;
	return 1;
}

static int sig_digest_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
	struct sigctx *c = ctx;
	struct window w;
	if (!sig) {
		*siglen = (size_t)c->key->max_size;
		return 1;
	}
	if (c->mctx)
		return sig_digest_sign_update(ctx, tbs, tbslen) && sig_digest_sign_final(ctx, sig, siglen, sigsize);
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	size_t n = sigsize;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m && EVP_DigestSignInit_ex(m, NULL, NULL, c->prov->inner, NULL, c->key->inner, NULL) == 1 &&
	         EVP_DigestSign(m, sig, &n, tbs, tbslen) == 1;
	EVP_MD_CTX_free(m);
	window_close(&w);
	if (!ok) {
		ERR_raise(ERR_LIB_PROV, ERR_R_OPERATION_FAIL);
		return 0;
	}
	*siglen = n;
	return 1;
}

#define SIG_COMMON                                                                                  \
	{ OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx },                                 \
	{ OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx },                               \
	{ OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx },                                 \
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_sign_init },             \
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign },                       \
	{ OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params },                 \
	{ OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable_ctx_params }

const OSSL_DISPATCH pk_ed25519_signature[] = {
	SIG_COMMON,
	{ 0, NULL }
};

const OSSL_DISPATCH pk_ecdsa_signature[] = {
	SIG_COMMON,
	{ OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init },
	{ OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_sign_update },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_sign_final },
	{ 0, NULL }
};
