/*
 * RSA encryption and decryption with a pkalloc key (OAEP, PKCS#1 v1.5,
 * whatever padding the caller sets), the default provider's, on the inner
 * key inside its window (opctx.c).  Exports pk_rsa_asym_cipher.
 */
#include "opctx.h"

#include <openssl/core_dispatch.h>

static void *ac_newctx(void *provctx) { return opctx_new(provctx); }
static void ac_freectx(void *ctx) { opctx_free(ctx); }
static void *ac_dupctx(void *ctx) { return opctx_dup(ctx); }

static int ac_encrypt_init(void *ctx, void *key, const OSSL_PARAM params[])
{
	return opctx_init(ctx, key, OP_ENCRYPT, NULL, params);
}

static int ac_decrypt_init(void *ctx, void *key, const OSSL_PARAM params[])
{
	return opctx_init(ctx, key, OP_DECRYPT, NULL, params);
}

static int ac_run(void *ctx, unsigned char *out, size_t *outlen, size_t outsize,
                  const unsigned char *in, size_t inlen)
{
	return opctx_run(ctx, out, outlen, outsize, in, inlen);
}

static int ac_set_ctx_params(void *ctx, const OSSL_PARAM params[]) { return opctx_set_params(ctx, params); }
static int ac_get_ctx_params(void *ctx, OSSL_PARAM params[]) { return opctx_get_params(ctx, params); }

static const OSSL_PARAM *inner_params(struct pk_prov *p, int get)
{
	EVP_ASYM_CIPHER *a = EVP_ASYM_CIPHER_fetch(p->inner, "RSA", NULL);
	const OSSL_PARAM *t = !a ? NULL : get ? EVP_ASYM_CIPHER_gettable_ctx_params(a) : EVP_ASYM_CIPHER_settable_ctx_params(a);
	EVP_ASYM_CIPHER_free(a);
	return t;
}

static const OSSL_PARAM *ac_settable(void *ctx, void *provctx)
{
	(void)ctx;
	return inner_params(provctx, 0);
}

static const OSSL_PARAM *ac_gettable(void *ctx, void *provctx)
{
	(void)ctx;
	return inner_params(provctx, 1);
}

const OSSL_DISPATCH pk_rsa_asym_cipher[] = {
	{ OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))ac_newctx },
	{ OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))ac_freectx },
	{ OSSL_FUNC_ASYM_CIPHER_DUPCTX, (void (*)(void))ac_dupctx },
	{ OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT, (void (*)(void))ac_encrypt_init },
	{ OSSL_FUNC_ASYM_CIPHER_ENCRYPT, (void (*)(void))ac_run },
	{ OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))ac_decrypt_init },
	{ OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))ac_run },
	{ OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS, (void (*)(void))ac_set_ctx_params },
	{ OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))ac_settable },
	{ OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS, (void (*)(void))ac_get_ctx_params },
	{ OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))ac_gettable },
	{ 0, NULL }
};
