/*
 * An operation on a pkalloc key: the default provider's context for it
 * (EVP_PKEY_CTX, or EVP_MD_CTX for the digest-and-sign forms) is made,
 * used, duplicated and freed in the key's domain, inside its window; the
 * caller's parameters are passed through after the digests they name are
 * fetched outside.  The signature and asymmetric cipher operations are
 * thin tables over this.
 */
#ifndef PKPROV_OPCTX_H
#define PKPROV_OPCTX_H

#include "prov.h"

enum op_kind { OP_SIGN, OP_VERIFY, OP_DIGEST_SIGN, OP_DIGEST_VERIFY, OP_ENCRYPT, OP_DECRYPT };

struct opctx {
	struct pk_prov *prov;
	struct pk_key *key;
	enum op_kind kind;
	EVP_PKEY_CTX *pctx;         /* in key's domain */
	EVP_MD_CTX *mctx;           /* in key's domain, OP_DIGEST_* */
};

struct opctx *opctx_new(struct pk_prov *p);
void opctx_free(struct opctx *c);
struct opctx *opctx_dup(const struct opctx *c);
/* 1, or 0 (error raised). */
int opctx_init(struct opctx *c, struct pk_key *key, enum op_kind kind, const char *mdname,
               const OSSL_PARAM params[]);
int opctx_set_params(struct opctx *c, const OSSL_PARAM params[]);
int opctx_get_params(struct opctx *c, OSSL_PARAM params[]);

/* The operation itself; out NULL asks for the largest output.  The
 * verifying forms return 1 (valid), 0 (invalid) or -1 (error raised). */
int opctx_run(struct opctx *c, unsigned char *out, size_t *outlen, size_t outsize,
              const unsigned char *in, size_t inlen);
int opctx_update(struct opctx *c, const unsigned char *in, size_t inlen);
int opctx_final(struct opctx *c, unsigned char *out, size_t *outlen, size_t outsize);
int opctx_verify(struct opctx *c, const unsigned char *sig, size_t siglen,
                 const unsigned char *tbs, size_t tbslen);
int opctx_verify_final(struct opctx *c, const unsigned char *sig, size_t siglen);

#endif
