/*
 * Operation contexts over a pkalloc key (see opctx.h): every call that
 * touches the inner context runs inside the key's window with libcrypto's
 * allocations captured, so what the default provider makes for the
 * operation (its contexts, EC precomputation, RSA blinding, nonces'
 * temporaries) lies in the key's domain and is freed there.
 */
#include "opctx.h"

#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>

struct opctx *opctx_new(struct pk_prov *p)
{
	struct opctx *c = calloc(1, sizeof *c);
	if (c)
		c->prov = p;
	return c;
}

static void drop(struct opctx *c)
{
	struct window w;
	if ((c->pctx || c->mctx) && window_open(c->key, 1, &w) == 0) {
		EVP_PKEY_CTX_free(c->pctx);
		EVP_MD_CTX_free(c->mctx);
		window_close(&w);
	}
	c->pctx = NULL;
	c->mctx = NULL;
}

void opctx_free(struct opctx *c)
{
	if (!c)
		return;
	drop(c);
	free(c);
}

struct opctx *opctx_dup(const struct opctx *c)
{
	struct opctx *n = opctx_new(c->prov);
	struct window w;
	if (!n)
		return NULL;
	n->key = c->key;
	n->kind = c->kind;
	if (!c->pctx && !c->mctx)
		return n;
	if (window_open(c->key, 1, &w) != 0) {
		free(n);
		return NULL;
	}
	int ok = 1;
	if (c->pctx)
		ok = (n->pctx = EVP_PKEY_CTX_dup(c->pctx)) != NULL;
	if (c->mctx)
		ok = (n->mctx = EVP_MD_CTX_new()) && EVP_MD_CTX_copy_ex(n->mctx, c->mctx) == 1;
	window_close(&w);
	if (!ok) {
		opctx_free(n);
		return NULL;
	}
	return n;
}

static int needs_private(enum op_kind k)
{
	return k == OP_SIGN || k == OP_DIGEST_SIGN || k == OP_DECRYPT;
}

int opctx_init(struct opctx *c, struct pk_key *key, enum op_kind kind, const char *mdname,
               const OSSL_PARAM params[])
{
	struct window w;
	if (!key || !key->inner || (needs_private(kind) && !key->has_priv)) {
		ERR_raise(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT);
		return 0;
	}
	if (mdname && !*mdname)
		mdname = NULL;
	OSSL_PARAM md[2] = { OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, (char *)mdname, 0),
	                     OSSL_PARAM_construct_end() };
	if ((mdname && !pk_prefetch_digests(c->prov, md)) || !pk_prefetch_digests(c->prov, params))
		return 0;
	drop(c);
	c->key = key;
	c->kind = kind;
	if (window_open(key, 1, &w) != 0)
		return 0;
	OSSL_LIB_CTX *lc = c->prov->inner;
	int ok = 0;
	if (kind == OP_DIGEST_SIGN || kind == OP_DIGEST_VERIFY) {
		ok = (c->mctx = EVP_MD_CTX_new()) != NULL &&
		     (kind == OP_DIGEST_SIGN
		              ? EVP_DigestSignInit_ex(c->mctx, NULL, mdname, lc, NULL, key->inner, params)
		              : EVP_DigestVerifyInit_ex(c->mctx, NULL, mdname, lc, NULL, key->inner, params)) == 1;
	} else if ((c->pctx = EVP_PKEY_CTX_new_from_pkey(lc, key->inner, NULL))) {
		switch (kind) {
		case OP_SIGN: ok = EVP_PKEY_sign_init_ex(c->pctx, params) == 1; break;
		case OP_VERIFY: ok = EVP_PKEY_verify_init_ex(c->pctx, params) == 1; break;
		case OP_ENCRYPT: ok = EVP_PKEY_encrypt_init_ex(c->pctx, params) == 1; break;
		case OP_DECRYPT: ok = EVP_PKEY_decrypt_init_ex(c->pctx, params) == 1; break;
		default: break;
		}
		if (ok && mdname)
			ok = EVP_PKEY_CTX_set_params(c->pctx, md) == 1;
	}
	int said = window_end(&w, ok);
	if (!ok) {
		drop(c);
		if (!said)
			ERR_raise(ERR_LIB_PROV, ERR_R_INIT_FAIL);
	}
	return ok;
}

/* Inside the window: the digest context lies in the domain. */
static EVP_PKEY_CTX *pkey_ctx(struct opctx *c)
{
	return c->pctx ? c->pctx : c->mctx ? EVP_MD_CTX_get_pkey_ctx(c->mctx) : NULL;
}

int opctx_set_params(struct opctx *c, const OSSL_PARAM params[])
{
	struct window w;
	if (!params || !params->key)
		return 1;
	if ((!c->pctx && !c->mctx) || !pk_prefetch_digests(c->prov, params))
		return 0;
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	int ok = EVP_PKEY_CTX_set_params(pkey_ctx(c), params) == 1;
	if (!window_end(&w, ok) && !ok)
		ERR_raise(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT);
	return ok;
}

int opctx_get_params(struct opctx *c, OSSL_PARAM params[])
{
	struct window w;
	if (!c->pctx && !c->mctx)
		return 0;
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	int ok = EVP_PKEY_CTX_get_params(pkey_ctx(c), params) == 1;
	window_end(&w, ok);
	return ok;
}

static int ready(struct opctx *c, int digest)
{
	if (digest ? c->mctx != NULL : c->pctx != NULL)
		return 1;
	ERR_raise(ERR_LIB_PROV, ERR_R_UNSUPPORTED);
	return 0;
}

int opctx_run(struct opctx *c, unsigned char *out, size_t *outlen, size_t outsize,
              const unsigned char *in, size_t inlen)
{
	struct window w;
	int digest = c->kind == OP_DIGEST_SIGN;
	if (!ready(c, digest))
		return 0;
	if (!out && c->kind != OP_ENCRYPT && c->kind != OP_DECRYPT) {
		*outlen = (size_t)c->key->max_size;
		return 1;
	}
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	size_t n = outsize;
	int ok = 0;
	switch (c->kind) {
	case OP_SIGN: ok = EVP_PKEY_sign(c->pctx, out, &n, in, inlen) == 1; break;
	case OP_DIGEST_SIGN: ok = EVP_DigestSign(c->mctx, out, &n, in, inlen) == 1; break;
	case OP_ENCRYPT: ok = EVP_PKEY_encrypt(c->pctx, out, &n, in, inlen) == 1; break;
	case OP_DECRYPT: ok = EVP_PKEY_decrypt(c->pctx, out, &n, in, inlen) == 1; break;
	default: break;
	}
	if (!window_end(&w, ok) && !ok)
		ERR_raise(ERR_LIB_PROV, ERR_R_OPERATION_FAIL);
	if (!ok)
		return 0;
	*outlen = n;
	return 1;
}

int opctx_update(struct opctx *c, const unsigned char *in, size_t inlen)
{
	struct window w;
	if (!ready(c, 1) || window_open(c->key, 1, &w) != 0)
		return 0;
	int ok = (c->kind == OP_DIGEST_SIGN ? EVP_DigestSignUpdate(c->mctx, in, inlen)
	                                    : EVP_DigestVerifyUpdate(c->mctx, in, inlen)) == 1;
	window_end(&w, ok);
	return ok;
}

int opctx_final(struct opctx *c, unsigned char *out, size_t *outlen, size_t outsize)
{
	struct window w;
	if (!ready(c, 1))
		return 0;
	if (!out) {
		*outlen = (size_t)c->key->max_size;
		return 1;
	}
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	size_t n = outsize;
	int ok = EVP_DigestSignFinal(c->mctx, out, &n) == 1;
	if (!window_end(&w, ok) && !ok)
		ERR_raise(ERR_LIB_PROV, ERR_R_OPERATION_FAIL);
	if (!ok)
		return 0;
	*outlen = n;
	return 1;
}

int opctx_verify(struct opctx *c, const unsigned char *sig, size_t siglen,
                 const unsigned char *tbs, size_t tbslen)
{
	struct window w;
	int digest = c->kind == OP_DIGEST_VERIFY;
	if (!ready(c, digest) || window_open(c->key, 1, &w) != 0)
		return -1;
	int r = digest ? EVP_DigestVerify(c->mctx, sig, siglen, tbs, tbslen)
	               : EVP_PKEY_verify(c->pctx, sig, siglen, tbs, tbslen);
	window_end(&w, r == 1);
	return r == 1 ? 1 : r == 0 ? 0 : -1;
}

int opctx_verify_final(struct opctx *c, const unsigned char *sig, size_t siglen)
{
	struct window w;
	if (!ready(c, 1) || window_open(c->key, 1, &w) != 0)
		return -1;
	int r = EVP_DigestVerifyFinal(c->mctx, sig, siglen);
	window_end(&w, r == 1);
	return r == 1 ? 1 : r == 0 ? 0 : -1;
}
