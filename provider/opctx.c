/*
 * Operation contexts over a pkalloc key (see opctx.h).  Every call that
 * touches the real context runs inside the key's window with libcrypto's
 * allocations captured, so what the default provider makes for the
 * private operation (its contexts, EC precomputation, RSA blinding,
 * nonces' temporaries) lies in the key's domain and is freed there.
 */
#include "opctx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

static int is_private(enum op_kind k)
{
	return k == OP_SIGN || k == OP_DIGEST_SIGN || k == OP_DECRYPT;
}

static int is_digest(enum op_kind k)
{
	return k == OP_DIGEST_SIGN || k == OP_DIGEST_VERIFY;
}

static int has(const struct evpctx *e)
{
	return e->pctx || e->mctx;
}

/* The context the settings go to. */
static EVP_PKEY_CTX *pkey_ctx(const struct evpctx *e)
{
	return e->pctx ? e->pctx : e->mctx ? EVP_MD_CTX_get_pkey_ctx(e->mctx) : NULL;
}

/* A default-provider context for an operation of kind on key, with c's
 * digest and the settings given. */
static int make_kind(struct evpctx *e, const struct opctx *c, enum op_kind kind, EVP_PKEY *key,
                     const OSSL_PARAM params[])
{
	OSSL_LIB_CTX *lc = c->prov->inner;
	if (is_digest(kind))
		return (e->mctx = EVP_MD_CTX_new()) != NULL &&
		       (kind == OP_DIGEST_SIGN
		                ? EVP_DigestSignInit_ex(e->mctx, NULL, c->mdname, lc, NULL, key, params)
		                : EVP_DigestVerifyInit_ex(e->mctx, NULL, c->mdname, lc, NULL, key, params)) == 1;
	if (!(e->pctx = EVP_PKEY_CTX_new_from_pkey(lc, key, NULL)))
		return 0;
	int ok = 0;
	switch (kind) {
	case OP_SIGN: ok = EVP_PKEY_sign_init_ex(e->pctx, params) == 1; break;
	case OP_VERIFY: ok = EVP_PKEY_verify_init_ex(e->pctx, params) == 1; break;
	case OP_ENCRYPT: ok = EVP_PKEY_encrypt_init_ex(e->pctx, params) == 1; break;
	case OP_DECRYPT: ok = EVP_PKEY_decrypt_init_ex(e->pctx, params) == 1; break;
	default: break;
	}
	if (ok && c->mdname) {
		OSSL_PARAM md[2] = { OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, c->mdname, 0),
		                     OSSL_PARAM_construct_end() };
		ok = EVP_PKEY_CTX_set_params(e->pctx, md) == 1;
	}
	return ok;
}

static int make(struct evpctx *e, const struct opctx *c, EVP_PKEY *key, const OSSL_PARAM params[])
{
	return make_kind(e, c, c->kind, key, params);
}

/* Signing with a named digest: hashed outside, the digest signed inside. */
static int hashing(const struct opctx *c)
{
	return c->kind == OP_DIGEST_SIGN && c->mdname;
}

/* What the real context does: sign a digest, when hashing. */
static enum op_kind real_kind(const struct opctx *c)
{
	return hashing(c) ? OP_SIGN : c->kind;
}

/*
 * An operation's shape, written out: its kind, digest and settings (as
 * merged so far).  1, or 0 when a setting cannot be written so (a type or
 * length not expected of these operations): such an operation is checked
 * and set up afresh each time.
 */
static int shape(enum op_kind kind, const char *mdname, const OSSL_PARAM *params, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%d:%s", (int)kind, mdname ? mdname : "");
	for (const OSSL_PARAM *q = params; q && q->key && n > 0 && (size_t)n < size; q++) {
		char *at = buf + n;
		size_t left = size - (size_t)n;
		int64_t i;
		if (q->data_type == OSSL_PARAM_UTF8_STRING && q->data && !memchr(q->data, ';', q->data_size))
			n += snprintf(at, left, ";%s=%.*s", q->key, (int)q->data_size, (const char *)q->data);
		else if ((q->data_type == OSSL_PARAM_INTEGER || q->data_type == OSSL_PARAM_UNSIGNED_INTEGER) &&
		         OSSL_PARAM_get_int64(q, &i))
			n += snprintf(at, left, ";%s=%lld", q->key, (long long)i);
		else if (q->data_type == OSSL_PARAM_OCTET_STRING && q->data_size <= 32) {
			n += snprintf(at, left, ";%s=", q->key);
			for (size_t j = 0; j < q->data_size && n > 0 && (size_t)n < size; j++)
				n += snprintf(buf + n, size - (size_t)n, "%02x", ((const unsigned char *)q->data)[j]);
		} else
			return 0;
	}
	return n > 0 && (size_t)n < size;
}

static void release(struct evpctx *e)
{
	EVP_PKEY_CTX_free(e->pctx);
	EVP_MD_CTX_free(e->mctx);
	e->pctx = NULL;
	e->mctx = NULL;
}

/* Forget the operation: the check context freed here, the real one handed
 * to the key, to be freed by its next window (or in one now, if the key
 * holds enough of them already). */
static void drop(struct opctx *c)
{
	struct window w;
	release(&c->check);
	if (has(&c->real) && pk_key_defer(c->key, c->real.pctx, c->real.mctx) != 0 &&
	    window_open(c->key, 1, &w) == 0) {
		release(&c->real);
		window_close(&w);
	}
	c->real.pctx = NULL;
	c->real.mctx = NULL;
	free(c->mdname);
	c->mdname = NULL;
	OSSL_PARAM_free(c->params);
	c->params = NULL;
	EVP_MD_free(c->md);
	c->md = NULL;
	EVP_MD_CTX_free(c->hash);
	c->hash = NULL;
	c->shape[0] = '\0';
}

void opctx_free(struct opctx *c)
{
	if (!c)
		return;
	drop(c);
	free(c);
}

/* Inside the key's window: the real context, made at the first need. */
static int materialize(struct opctx *c)
{
	if (has(&c->real))
		return 1;
	if (make_kind(&c->real, c, real_kind(c), c->key->inner, c->params))
		return 1;
	release(&c->real);
	return 0;
}

static int copy_evpctx(struct evpctx *to, const struct evpctx *from)
{
	if (from->pctx)
		return (to->pctx = EVP_PKEY_CTX_dup(from->pctx)) != NULL;
	if (from->mctx)
		return (to->mctx = EVP_MD_CTX_new()) && EVP_MD_CTX_copy_ex(to->mctx, from->mctx) == 1;
	return 1;
}

struct opctx *opctx_dup(const struct opctx *c)
{
	struct opctx *n = opctx_new(c->prov);
	struct window w;
	if (!n)
		return NULL;
	n->key = c->key;
	n->kind = c->kind;
	int ok = (!c->mdname || (n->mdname = strdup(c->mdname))) &&
	         (!c->params || (n->params = OSSL_PARAM_dup(c->params))) && copy_evpctx(&n->check, &c->check) &&
	         (!c->md || EVP_MD_up_ref(c->md)) &&
	         (!c->hash || ((n->hash = EVP_MD_CTX_new()) && EVP_MD_CTX_copy_ex(n->hash, c->hash) == 1));
	if (ok)
		n->md = c->md;
	memcpy(n->shape, c->shape, sizeof n->shape);
	if (ok && has(&c->real)) {
		if (window_open(c->key, 1, &w) != 0) {
			opctx_free(n);
			return NULL;
		}
		ok = copy_evpctx(&n->real, &c->real);
		window_end(&w, ok);
	}
	if (!ok) {
		opctx_free(n);
		return NULL;
	}
	return n;
}

/*
 * The check context, made now if it was not at init (an operation checked
 * before, without settings).  Outside every window: it fetches the digests
 * named there, so that the inner context caches them in plain memory.
 */
static int need_check(struct opctx *c)
{
	if (has(&c->check))
		return 1;
	if (c->key && make(&c->check, c, c->key->pub_key, c->params))
		return 1;
	release(&c->check);
	if (c->key)
		ERR_raise(ERR_LIB_PROV, ERR_R_INIT_FAIL);
	else
		ERR_raise(ERR_LIB_PROV, ERR_R_UNSUPPORTED);
	return 0;
}

static int init(struct opctx *c, struct pk_key *key, enum op_kind kind, const char *mdname,
                const OSSL_PARAM params[])
{
	if (!key || !key->pub_key || (is_private(kind) && !key->has_priv)) {
		ERR_raise(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT);
		return 0;
	}
	if (mdname && !*mdname)
		mdname = NULL;
	drop(c);
	c->key = key;
	c->kind = kind;
	if (mdname && !(c->mdname = strdup(mdname)))
		return 0;
	if (!pk_params_merge(&c->params, params)) {
		drop(c);
		return 0;
	}
	/*
	 * A private operation set up as before, with the same settings, needs
	 * no check now: the same init succeeded on this key.  (libssl sets up
	 * each handshake's signature twice, once only to probe the digest.)
	 */
	if (!is_private(kind) || !shape(kind, c->mdname, c->params, c->shape, sizeof c->shape))
		c->shape[0] = '\0';
	if (c->shape[0] && pk_key_was_checked(key, c->shape))
		return 1;
	if (!make(&c->check, c, key->pub_key, params)) {
		drop(c);
		return 0;
	}
	if (c->shape[0])
		pk_key_checked(key, c->shape);
	return 1;
}

int opctx_init(struct opctx *c, struct pk_key *key, enum op_kind kind, const char *mdname,
               const OSSL_PARAM params[])
{
	OSSL_PARAM *clean;
	if (!pk_params_clean(params, &clean))
		return 0;
	int ok = init(c, key, kind, mdname, clean);
	OSSL_PARAM_free(clean);
	return ok;
}

static int set_params(struct opctx *c, const OSSL_PARAM params[]);

int opctx_set_params(struct opctx *c, const OSSL_PARAM params[])
{
	OSSL_PARAM *clean;
	if (!pk_params_clean(params, &clean))
		return 0;
	int ok = set_params(c, clean);
	OSSL_PARAM_free(clean);
	return ok;
}

static int set_params(struct opctx *c, const OSSL_PARAM params[])
{
	struct window w;
	char what[PK_SHAPE_MAX];
	if (!params || !params->key)
		return 1;
	if (!c->key) {
		ERR_raise(ERR_LIB_PROV, ERR_R_UNSUPPORTED);
		return 0;
	}
	OSSL_PARAM *merged = pk_params_merged(c->params, params);
	if (!merged)
		return 0;
	/* Settings that made this shape on this key before need no check. */
	int known = is_private(c->kind) && shape(c->kind, c->mdname, merged, what, sizeof what);
	if (!known)
		what[0] = '\0';
	if (!(known && !has(&c->check) && pk_key_was_checked(c->key, what))) {
		if (!need_check(c) || EVP_PKEY_CTX_set_params(pkey_ctx(&c->check), params) != 1) {
			OSSL_PARAM_free(merged);
			return 0;
		}
		if (known)
			pk_key_checked(c->key, what);
	}
	OSSL_PARAM_free(c->params);
	c->params = merged;
	memcpy(c->shape, what, sizeof c->shape);
	if (!has(&c->real))
		return 1;
	/* Settings after the first private step: the real context too. */
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	int ok = EVP_PKEY_CTX_set_params(pkey_ctx(&c->real), params) == 1;
	if (!window_end(&w, ok) && !ok)
		ERR_raise(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT);
	return ok;
}

int opctx_get_params(struct opctx *c, OSSL_PARAM params[])
{
	return need_check(c) && EVP_PKEY_CTX_get_params(pkey_ctx(&c->check), params) == 1;
}

/* Initialised: a key, and for the public steps the check context. */
static int ready(struct opctx *c)
{
	if (c->key && (is_private(c->kind) || need_check(c)))
		return 1;
	if (!c->key)
		ERR_raise(ERR_LIB_PROV, ERR_R_UNSUPPORTED);
	return 0;
}

/* The digest, fetched outside every window (so cached in plain memory). */
static int need_md(struct opctx *c)
{
	return c->md || (c->md = EVP_MD_fetch(c->prov->inner, c->mdname, NULL));
}

/*
 * A private step, in one window.  A one-shot step runs on an idle context
 * of the key's pool of the operation's shape (made the first time), given
 * back after; a streaming one, or one whose settings cannot be written
 * out, on the operation's own real context.
 */
enum step { STEP_SIGN, STEP_DECRYPT, STEP_UPDATE, STEP_FINAL };

static int private_step(struct opctx *c, enum step s, unsigned char *out, size_t *n, const unsigned char *in,
                        size_t inlen)
{
	struct window w;
	enum op_kind kind = real_kind(c);
	const char *what = c->shape;
	int pool = !has(&c->real) && (s == STEP_SIGN || s == STEP_DECRYPT) && what[0];
	struct evpctx pooled = { NULL, NULL }, *e = pool ? &pooled : &c->real;
	if (window_open(c->key, 1, &w) != 0)
		return 0;
	int ok = pool ? pk_key_pool_take(c->key, what, &pooled.pctx, &pooled.mctx) == 0 ||
	                        make_kind(&pooled, c, kind, c->key->inner, c->params)
	              : materialize(c);
	switch (s) {
	case STEP_SIGN:
		ok = ok && (kind == OP_SIGN ? EVP_PKEY_sign(e->pctx, out, n, in, inlen)
		                            : EVP_DigestSign(e->mctx, out, n, in, inlen)) == 1;
		break;
	case STEP_DECRYPT: ok = ok && EVP_PKEY_decrypt(e->pctx, out, n, in, inlen) == 1; break;
	case STEP_UPDATE: ok = ok && EVP_DigestSignUpdate(e->mctx, in, inlen) == 1; break;
	case STEP_FINAL: ok = ok && EVP_DigestSignFinal(e->mctx, out, n) == 1; break;
	}
	/* A context that failed is not trusted again. */
	if (pool && has(&pooled) && (!ok || pk_key_pool_put(c->key, what, pooled.pctx, pooled.mctx) != 0))
		release(&pooled);
	if (!window_end(&w, ok) && !ok)
		ERR_raise(ERR_LIB_PROV, ERR_R_OPERATION_FAIL);
	return ok;
}

/* Sign the digest of in (one-shot), or of what was hashed so far. */
static int sign_hashed(struct opctx *c, unsigned char *out, size_t *n, const unsigned char *in, size_t inlen,
                       int one_shot)
{
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	if (!need_md(c))
		return 0;
	int ok = one_shot ? EVP_Digest(in, inlen, dg, &dl, c->md, NULL) == 1
	                  : c->hash && EVP_DigestFinal_ex(c->hash, dg, &dl) == 1;
	return ok && private_step(c, STEP_SIGN, out, n, dg, dl);
}

int opctx_run(struct opctx *c, unsigned char *out, size_t *outlen, size_t outsize,
              const unsigned char *in, size_t inlen)
{
	if (!ready(c))
		return 0;
	if (c->kind == OP_VERIFY || c->kind == OP_DIGEST_VERIFY) {
		ERR_raise(ERR_LIB_PROV, ERR_R_UNSUPPORTED);
		return 0;
	}
	size_t n = outsize;
	int ok;
	if (c->kind == OP_ENCRYPT) {
		ok = EVP_PKEY_encrypt(c->check.pctx, out, &n, in, inlen) == 1;
	} else if (!out && c->kind == OP_DECRYPT) {
		/* The largest output: the public half knows it. */
		ok = need_check(c) && EVP_PKEY_decrypt(c->check.pctx, NULL, &n, in, inlen) == 1;
	} else if (!out) {
		n = (size_t)c->key->max_size;
		ok = 1;
	} else if (hashing(c)) {
		ok = sign_hashed(c, out, &n, in, inlen, 1);
	} else {
		ok = private_step(c, c->kind == OP_DECRYPT ? STEP_DECRYPT : STEP_SIGN, out, &n, in, inlen);
	}
	if (ok)
		*outlen = n;
	return ok;
}

int opctx_update(struct opctx *c, const unsigned char *in, size_t inlen)
{
	if (!ready(c) || !is_digest(c->kind))
		return 0;
	if (c->kind == OP_DIGEST_VERIFY)
		return EVP_DigestVerifyUpdate(c->check.mctx, in, inlen) == 1;
	if (!hashing(c))
		return private_step(c, STEP_UPDATE, NULL, NULL, in, inlen);
	if (!c->hash && (!need_md(c) || !(c->hash = EVP_MD_CTX_new()) || EVP_DigestInit_ex2(c->hash, c->md, NULL) != 1)) {
		EVP_MD_CTX_free(c->hash);
		c->hash = NULL;
		return 0;
	}
	return EVP_DigestUpdate(c->hash, in, inlen) == 1;
}

int opctx_final(struct opctx *c, unsigned char *out, size_t *outlen, size_t outsize)
{
	if (!ready(c) || c->kind != OP_DIGEST_SIGN)
		return 0;
	if (!out) {
		*outlen = (size_t)c->key->max_size;
		return 1;
	}
	size_t n = outsize;
	int ok = hashing(c) ? sign_hashed(c, out, &n, NULL, 0, 0) : private_step(c, STEP_FINAL, out, &n, NULL, 0);
	if (!ok)
		return 0;
	*outlen = n;
	return 1;
}

/* Verification needs only the public half: no window. */
int opctx_verify(struct opctx *c, const unsigned char *sig, size_t siglen,
                 const unsigned char *tbs, size_t tbslen)
{
	int r = -1;
	if (!ready(c))
		return -1;
	if (c->kind == OP_DIGEST_VERIFY)
		r = EVP_DigestVerify(c->check.mctx, sig, siglen, tbs, tbslen);
	else if (c->kind == OP_VERIFY)
		r = EVP_PKEY_verify(c->check.pctx, sig, siglen, tbs, tbslen);
	return r == 1 ? 1 : r == 0 ? 0 : -1;
}

int opctx_verify_final(struct opctx *c, const unsigned char *sig, size_t siglen)
{
	if (!ready(c) || c->kind != OP_DIGEST_VERIFY)
		return -1;
	int r = EVP_DigestVerifyFinal(c->check.mctx, sig, siglen);
	return r == 1 ? 1 : r == 0 ? 0 : -1;
}
