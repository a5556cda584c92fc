/*
 * Signatures with a pkalloc key: Ed25519 (one-shot, as in OpenSSL), ECDSA
 * and RSA (PKCS#1 v1.5, PSS, whatever padding the caller sets) over a
 * digest or a message, signing and verifying.  Every call is the default
 * provider's, on the inner key, inside the key's window (opctx.c).
 * Exports the three dispatch tables.
 */
#include "opctx.h"

#include <openssl/core_dispatch.h>
#include <openssl/err.h>

static void *sig_newctx(void *provctx, const char *propq)
{
	(void)propq;
	return opctx_new(provctx);
}

static void sig_freectx(void *ctx) { opctx_free(ctx); }
static void *sig_dupctx(void *ctx) { return opctx_dup(ctx); }

static int sig_sign_init(void *ctx, void *key, const OSSL_PARAM params[])
{
	return opctx_init(ctx, key, OP_SIGN, NULL, params);
}

static int sig_verify_init(void *ctx, void *key, const OSSL_PARAM params[])
{
	return opctx_init(ctx, key, OP_VERIFY, NULL, params);
}

static int sig_digest_sign_init(void *ctx, const char *mdname, void *key, const OSSL_PARAM params[])
{
	return opctx_init(ctx, key, OP_DIGEST_SIGN, mdname, params);
}

static int sig_digest_verify_init(void *ctx, const char *mdname, void *key, const OSSL_PARAM params[])
{
	return opctx_init(ctx, key, OP_DIGEST_VERIFY, mdname, params);
}

static int sig_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
	return opctx_run(ctx, sig, siglen, sigsize, tbs, tbslen);
}

static int sig_verify(void *ctx, const unsigned char *sig, size_t siglen,
                      const unsigned char *tbs, size_t tbslen)
{
	return opctx_verify(ctx, sig, siglen, tbs, tbslen) == 1;
}

static int sig_digest_update(void *ctx, const unsigned char *data, size_t len)
{
	return opctx_update(ctx, data, len);
}

static int sig_digest_sign_final(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
	return opctx_final(ctx, sig, siglen, sigsize);
}

static int sig_digest_verify_final(void *ctx, const unsigned char *sig, size_t siglen)
{
	return opctx_verify_final(ctx, sig, siglen) == 1;
}

static int sig_digest_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
	return opctx_run(ctx, sig, siglen, sigsize, tbs, tbslen);
}

static int sig_digest_verify(void *ctx, const unsigned char *sig, size_t siglen,
                             const unsigned char *tbs, size_t tbslen)
{
	return opctx_verify(ctx, sig, siglen, tbs, tbslen) == 1;
}

static int sig_set_ctx_params(void *ctx, const OSSL_PARAM params[]) { return opctx_set_params(ctx, params); }
static int sig_get_ctx_params(void *ctx, OSSL_PARAM params[]) { return opctx_get_params(ctx, params); }

/* What the default provider's implementation takes: its tables are
 * static, valid while the inner context holds the provider. */
static const OSSL_PARAM *inner_settable(struct pk_prov *p, const char *alg, int get)
{
	EVP_SIGNATURE *s = EVP_SIGNATURE_fetch(p->inner, alg, NULL);
	const OSSL_PARAM *t = !s ? NULL : get ? EVP_SIGNATURE_gettable_ctx_params(s) : EVP_SIGNATURE_settable_ctx_params(s);
	EVP_SIGNATURE_free(s);
	return t;
}

#define SIG_PARAMS(t, alg)                                                                        \
	static const OSSL_PARAM *sig_settable_##t(void *ctx, void *provctx)                        \
	{                                                                                           \
		(void)ctx;                                                                          \
		return inner_settable(provctx, alg, 0);                                             \
	}                                                                                           \
	static const OSSL_PARAM *sig_gettable_##t(void *ctx, void *provctx)                        \
	{                                                                                           \
		(void)ctx;                                                                          \
		return inner_settable(provctx, alg, 1);                                             \
	}

SIG_PARAMS(eddsa, "ED25519")
SIG_PARAMS(ecdsa, "ECDSA")
SIG_PARAMS(rsa, "RSA")

#define SIG_COMMON(t)                                                                               \
	{ OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx },                                 \
	{ OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx },                               \
	{ OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx },                                 \
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_sign_init },             \
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign },                       \
	{ OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))sig_digest_verify_init },         \
	{ OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))sig_digest_verify },                   \
	{ OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params },                 \
	{ OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_settable_##t },              \
	{ OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params },                 \
	{ OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_gettable_##t }

/* Over a digest, and streaming: everything but EdDSA. */
#define SIG_DIGEST                                                                                  \
	{ OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init },                           \
	{ OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign },                                     \
	{ OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))sig_verify_init },                       \
	{ OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify },                                 \
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update },              \
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_sign_final },           \
	{ OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))sig_digest_update },            \
	{ OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))sig_digest_verify_final }

const OSSL_DISPATCH pk_eddsa_signature[] = { SIG_COMMON(eddsa), { 0, NULL } };
const OSSL_DISPATCH pk_ecdsa_signature[] = { SIG_COMMON(ecdsa), SIG_DIGEST, { 0, NULL } };
const OSSL_DISPATCH pk_rsa_signature[] = { SIG_COMMON(rsa), SIG_DIGEST, { 0, NULL } };
