/*
 * An operation on a pkalloc key.  Two default-provider contexts stand for
 * it.  The check context, on the key's public half (plain memory), is made
 * at init and takes the caller's settings as they come, so that a bad one
 * fails where it is given, with the default provider's error; it answers
 * the caller's questions, and does the public operations (verification,
 * encryption) itself, outside every window.  The real context, on the
 * private key in its domain, is made inside the key's window at the first
 * private step (a signature, a decryption) from the settings the check
 * context accepted, and freed by the next window on the key.  So a
 * signature costs one window, and a context a program only sets up to
 * probe what the key supports (as libssl does) costs none.  An operation
 * without settings but its digest checked once on the key is not checked
 * again, and takes an idle real context from the key's pool, given back
 * after, rather than set one up each time.  A message to sign with a
 * digest is hashed outside, in plain memory (it is no secret): only the
 * digest is signed in the window.
 */
#ifndef PKPROV_OPCTX_H
#define PKPROV_OPCTX_H

#include "prov.h"

enum op_kind { OP_SIGN, OP_VERIFY, OP_DIGEST_SIGN, OP_DIGEST_VERIFY, OP_ENCRYPT, OP_DECRYPT };

/* One default-provider context: pctx, or mctx for the digest-and-sign forms. */
struct evpctx {
	EVP_PKEY_CTX *pctx;
	EVP_MD_CTX *mctx;
};

struct opctx {
	struct pk_prov *prov;
	struct pk_key *key;
	enum op_kind kind;
	char *mdname;               /* plain: the digest named at init, or NULL */
	OSSL_PARAM *params;         /* plain: the settings accepted so far */
	struct evpctx check;        /* on key->pub_key, plain */
	struct evpctx real;         /* on key->inner, in its domain, or empty */
	EVP_MD *md;                 /* plain: mdname fetched, when hashing */
	EVP_MD_CTX *hash;           /* plain: the message so far, when hashing */
	/* A private operation's kind, digest and settings written out (the
	 * key's caches of checked setups and idle contexts are keyed by it),
	 * or "" when they cannot be. */
	char shape[PK_SHAPE_MAX];
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
