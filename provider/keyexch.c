/*
 * Key exchange (ECDH, X25519, X448) with a pkalloc private key.  The default
 * provider's context is made afresh for each derivation, inside the key's
 * window, with the peer's public half (plain, even when the peer is a
 * private key of ours), and freed before the window closes.  Exports pk_keyexch.
 */
#include "prov.h"

#include <stdlib.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>

struct kexctx {
	struct pk_prov *prov;
	struct pk_key *key, *peer;
	OSSL_PARAM *params;         /* the caller's settings, plain: no secrets */
};

static void *kex_newctx(void *provctx)
{
	struct kexctx *c = calloc(1, sizeof *c);
	if (c)
		c->prov = provctx;
	return c;
}

static void kex_freectx(void *ctx)
{
	struct kexctx *c = ctx;
	if (c)
		OSSL_PARAM_free(c->params);
	free(c);
}

static void *kex_dupctx(void *ctx)
{
	struct kexctx *c = ctx, *n = kex_newctx(c->prov);
	if (!n)
		return NULL;
	*n = *c;
	if (c->params && !(n->params = OSSL_PARAM_dup(c->params))) {
		free(n);
		return NULL;
	}
	return n;
}

/*
 * Settings are checked as they come on a context over the key's public
 * half, outside every window: a bad one fails here with the default
 * provider's error, and what they name (a KDF's digest) is fetched here,
 * so that the derivation's window fetches nothing new.
 */
static int kex_set_ctx_params(void *ctx, const OSSL_PARAM params[])
{
	struct kexctx *c = ctx;
	OSSL_PARAM *clean = NULL, *merged = NULL;
	if (!pk_params_clean(params, &clean))
		return 0;
	if (!clean)
		return 1;
	int ok = (merged = pk_params_merged(c->params, clean)) != NULL;
	EVP_PKEY_CTX *q = ok && c->key ? EVP_PKEY_CTX_new_from_pkey(c->prov->inner, c->key->pub_key, NULL) : NULL;
	ok = ok && (!c->key || (q && EVP_PKEY_derive_init_ex(q, merged) == 1));
	EVP_PKEY_CTX_free(q);
	OSSL_PARAM_free(clean);
	if (!ok) {
		OSSL_PARAM_free(merged);
		return 0;
	}
	OSSL_PARAM_free(c->params);
	c->params = merged;
	return 1;
}

static int kex_init(void *ctx, void *key, const OSSL_PARAM params[])
{
	struct kexctx *c = ctx;
	struct pk_key *k = key;
	if (!k || !k->inner || !k->pub_key || !k->has_priv) {
		ERR_raise(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT);
		return 0;
	}
	c->key = k;
	c->peer = NULL;
	OSSL_PARAM_free(c->params);
	c->params = NULL;
	return kex_set_ctx_params(c, params);
}

static int kex_set_peer(void *ctx, void *peer)
{
	struct kexctx *c = ctx;
	struct pk_key *p = peer;
	if (!p || !p->pub_key || p->type != c->key->type) {
		ERR_raise(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT);
		return 0;
	}
	c->peer = p;
	return 1;
}

static int kex_derive(void *ctx, unsigned char *secret, size_t *secretlen, size_t outlen)
{
	struct kexctx *c = ctx;
	struct window w;
	if (!c->key || !c->peer) {
		ERR_raise(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT);
		return 0;
	}
	/* The peer's public half is enough: only the key's window opens. */
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	size_t n = outlen;
	EVP_PKEY_CTX *p = EVP_PKEY_CTX_new_from_pkey(c->prov->inner, c->key->inner, NULL);
	int ok = p && EVP_PKEY_derive_init_ex(p, c->params) == 1 && EVP_PKEY_derive_set_peer(p, c->peer->pub_key) == 1 &&
	         EVP_PKEY_derive(p, secret, &n) == 1;
	EVP_PKEY_CTX_free(p);
	if (!window_end(&w, ok) && !ok)
		ERR_raise(ERR_LIB_PROV, ERR_R_OPERATION_FAIL);
	if (!ok)
		return 0;
	*secretlen = n;
	return 1;
}

static const OSSL_PARAM *kex_settable(void *ctx, void *provctx)
{
	struct kexctx *c = ctx;
	struct pk_prov *p = provctx;
	const char *alg = !c || !c->key ? "ECDH" : c->key->type == PK_X25519 ? "X25519" : c->key->type == PK_X448 ? "X448" : "ECDH";
	EVP_KEYEXCH *x = EVP_KEYEXCH_fetch(p->inner, alg, NULL);
	const OSSL_PARAM *t = x ? EVP_KEYEXCH_settable_ctx_params(x) : NULL;
	EVP_KEYEXCH_free(x);
	return t;
}

const OSSL_DISPATCH pk_keyexch[] = {
	{ OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))kex_newctx },
	{ OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))kex_freectx },
	{ OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))kex_dupctx },
	{ OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))kex_init },
	{ OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))kex_set_peer },
	{ OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))kex_derive },
	{ OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, (void (*)(void))kex_set_ctx_params },
	{ OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS, (void (*)(void))kex_settable },
	{ 0, NULL }
};
