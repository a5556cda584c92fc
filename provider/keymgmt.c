/*
 * Key management: the key record (public facts in plain memory, the
 * default provider's key inside the key's own domain), loading a key a
 * decoder made, import, public export, and the parameters OpenSSL asks
 * of a key, and generation: a key generated here is made inside its own
 * fresh domain from the start (the parameters that shape it, public, are
 * kept in plain memory until then).  Private components are never
 * exported: a caller asking for them gets a failure, as from a hardware
 * token.
 */
#include "prov.h"
#include "redirect.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

struct pk_key *pk_key_new(struct pk_prov *p, enum pk_type t)
{
	struct pk_key *k = calloc(1, sizeof *k);
	if (k) {
		k->prov = p;
		k->type = t;
		pthread_mutex_init(&k->lock, NULL);
	}
	return k;
}

int pk_key_defer(struct pk_key *k, EVP_PKEY_CTX *p, EVP_MD_CTX *m)
{
	int ok = -1;
	pthread_mutex_lock(&k->lock);
	if (k->npending < PK_PENDING) {
		k->pending_p[k->npending] = p;
		k->pending_m[k->npending] = m;
		__atomic_store_n(&k->npending, k->npending + 1, __ATOMIC_RELAXED);
		ok = 0;
	}
	pthread_mutex_unlock(&k->lock);
	return ok;
}

void pk_key_reap(struct pk_key *k)
{
	EVP_PKEY_CTX *p[PK_PENDING];
	EVP_MD_CTX *m[PK_PENDING];
	pthread_mutex_lock(&k->lock);
	int n = k->npending;
	memcpy(p, k->pending_p, sizeof p);
	memcpy(m, k->pending_m, sizeof m);
	__atomic_store_n(&k->npending, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&k->lock);
	for (int i = 0; i < n; i++) {
		EVP_PKEY_CTX_free(p[i]);
		EVP_MD_CTX_free(m[i]);
	}
}

int pk_key_was_checked(struct pk_key *k, const char *what)
{
	int found = 0;
	pthread_mutex_lock(&k->lock);
	for (int i = 0; i < k->nchecked && !found; i++)
		found = strcmp(k->checked[i], what) == 0;
	pthread_mutex_unlock(&k->lock);
	return found;
}

void pk_key_checked(struct pk_key *k, const char *what)
{
	pthread_mutex_lock(&k->lock);
	if (k->nchecked < PK_PENDING && strlen(what) < sizeof k->checked[0])
		strcpy(k->checked[k->nchecked++], what);
	pthread_mutex_unlock(&k->lock);
}

int pk_key_pool_take(struct pk_key *k, const char *what, EVP_PKEY_CTX **p, EVP_MD_CTX **m)
{
	int found = -1;
	pthread_mutex_lock(&k->lock);
	for (int i = k->npool; i-- > 0 && found;) {
		if (strcmp(k->pool[i].what, what) != 0)
			continue;
		*p = k->pool[i].p;
		*m = k->pool[i].m;
		k->pool[i] = k->pool[--k->npool];
		found = 0;
	}
	pthread_mutex_unlock(&k->lock);
	return found;
}

int pk_key_pool_put(struct pk_key *k, const char *what, EVP_PKEY_CTX *p, EVP_MD_CTX *m)
{
	int ok = -1;
	pthread_mutex_lock(&k->lock);
	if (k->npool < PK_PENDING && strlen(what) < sizeof k->pool[0].what) {
		strcpy(k->pool[k->npool].what, what);
		k->pool[k->npool].p = p;
		k->pool[k->npool].m = m;
		k->npool++;
		ok = 0;
	}
	pthread_mutex_unlock(&k->lock);
	return ok;
}

void pk_key_free(struct pk_key *k)
{
	struct window w;
	if (!k)
		return;
	if (k->pub_key != k->inner)
		EVP_PKEY_free(k->pub_key);
	/* The window frees the contexts handed over, then the pool's, then
	 * the key. */
	if (k->inner && k->d && window_open(k, 1, &w) == 0) {
		for (int i = 0; i < k->npool; i++) {
			EVP_PKEY_CTX_free(k->pool[i].p);
			EVP_MD_CTX_free(k->pool[i].m);
		}
		k->npool = 0;
		EVP_PKEY_free(k->inner);
		window_close(&w);
	} else if (k->inner && !k->d) {
		EVP_PKEY_free(k->inner);
	}
	pk_domain_put(k->d);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* The public half as a key of its own, plain, from parameters read inside
 * the window (public values: the caller closes it before this). */
static EVP_PKEY *public_twin(struct pk_key *k, OSSL_PARAM *params)
{
	EVP_PKEY *e = NULL;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(k->prov->inner, pk_type_name(k->type), NULL);
	if (c && EVP_PKEY_fromdata_init(c) == 1)
		EVP_PKEY_fromdata(c, &e, EVP_PKEY_PUBLIC_KEY, params);
	EVP_PKEY_CTX_free(c);
	return e;
}

/* The public facts, from the public half, kept in the record. */
static int cache_public(struct pk_key *k)
{
	EVP_PKEY *e = k->pub_key;
	k->bits = EVP_PKEY_get_bits(e);
	k->security_bits = EVP_PKEY_get_security_bits(e);
	k->max_size = EVP_PKEY_get_size(e);
	if (k->type == PK_RSA || k->type == PK_RSA_PSS) {
		BIGNUM *n = NULL;
		int len = EVP_PKEY_get_bn_param(e, OSSL_PKEY_PARAM_RSA_N, &n) == 1 ? BN_num_bytes(n) : -1;
		if (len <= 0 || (size_t)len > sizeof k->pub) {
			BN_free(n);
			return 0;
		}
		k->publen = (size_t)BN_bn2bin(n, k->pub);
		BN_free(n);
	} else if (EVP_PKEY_get_octet_string_param(e, OSSL_PKEY_PARAM_PUB_KEY, k->pub, sizeof k->pub, &k->publen) != 1) {
		return 0;
	}
	if (k->type == PK_EC &&
	    EVP_PKEY_get_utf8_string_param(e, OSSL_PKEY_PARAM_GROUP_NAME, k->group, sizeof k->group, NULL) != 1)
		return 0;
	return k->bits > 0 && k->max_size > 0;
}

struct pk_key *pk_key_in_domain(struct pk_prov *p, enum pk_type t,
                                EVP_PKEY *(*fn)(struct pk_prov *, void *), void *arg)
{
	struct pk_key *k = pk_key_new(p, t);
	struct window w;
	if (!k)
		return NULL;
	k->d = pk_domain_get(p);
	if (!k->d || window_open(k, 1, &w) != 0) {
		pk_key_free(k);
		return NULL;
	}
	k->inner = fn(p, arg);
	/* PK_NTYPES: whichever type the inner key turns out to be. */
	for (int i = 0; t == PK_NTYPES && k->inner && i < PK_NTYPES; i++)
		if (EVP_PKEY_is_a(k->inner, pk_type_name((enum pk_type)i)))
			k->type = (enum pk_type)i;
	int ok = k->inner && k->type != PK_NTYPES && EVP_PKEY_is_a(k->inner, pk_type_name(k->type));
	/* Its public half read out into plain memory. */
	OSSL_PARAM *pub = NULL;
	domain_t *cap = redirect_capture(NULL);
	ok = ok && EVP_PKEY_todata(k->inner, EVP_PKEY_PUBLIC_KEY, &pub) == 1;
	redirect_capture(cap);
	window_close(&w);
	ok = ok && (k->pub_key = public_twin(k, pub)) && cache_public(k);
	OSSL_PARAM_free(pub);
	if (!ok) {
		pk_key_free(k);
		return NULL;
	}
	k->has_priv = 1;
	return k;
}

static void *km_new_ed25519(void *provctx) { return pk_key_new(provctx, PK_ED25519); }
static void *km_new_x25519(void *provctx) { return pk_key_new(provctx, PK_X25519); }
static void *km_new_ec(void *provctx) { return pk_key_new(provctx, PK_EC); }
static void *km_new_rsa(void *provctx) { return pk_key_new(provctx, PK_RSA); }
static void *km_new_rsa_pss(void *provctx) { return pk_key_new(provctx, PK_RSA_PSS); }
static void *km_new_ed448(void *provctx) { return pk_key_new(provctx, PK_ED448); }
static void *km_new_x448(void *provctx) { return pk_key_new(provctx, PK_X448); }
static void km_free(void *k) { pk_key_free(k); }

/* A decoder's key, handed over by reference (decoder.c). */
static void *km_load(const void *reference, size_t size)
{
	struct pk_key *k;
	if (size != sizeof k)
		return NULL;
	k = *(struct pk_key *const *)reference;
	*(struct pk_key **)reference = NULL;
	return k;
}

static int km_has(const void *keydata, int selection)
{
	const struct pk_key *k = keydata;
	if (!k || !k->inner)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && !k->has_priv)
		return 0;
	if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) && k->publen == 0)
		return 0;
	return 1;
}

static int km_match(const void *a, const void *b, int selection)
{
	const struct pk_key *x = a, *y = b;
	if (x->type != y->type || strcmp(x->group, y->group) != 0)
		return 0;
	if (selection & OSSL_KEYMGMT_SELECT_KEYPAIR)
		return x->publen == y->publen && memcmp(x->pub, y->pub, x->publen) == 0;
	return 1;
}

/*
 * The parameters a caller may read: public ones only.  They are asked of
 * the inner key inside the window (it knows them all, and how each type
 * answers); a name not listed here (a private component) is left unset.
 */
static const OSSL_PARAM public_params[] = {
	OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_FIELD_TYPE, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_P, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_A, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_B, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_EC_GENERATOR, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_ORDER, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_COFACTOR, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, NULL, 0),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_EC_DECODED_FROM_EXPLICIT_PARAMS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_USE_COFACTOR_ECDH, NULL),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
	OSSL_PARAM_END
};

static int is_public(const char *key)
{
	for (const OSSL_PARAM *q = public_params; q->key; q++)
		if (strcmp(q->key, key) == 0)
			return 1;
	return 0;
}

#define MAX_GET 32

static int km_get_params(void *keydata, OSSL_PARAM params[])
{
	struct pk_key *k = keydata;
	OSSL_PARAM asked[MAX_GET + 1];
	OSSL_PARAM *from[MAX_GET];
	int n = 0;
	for (OSSL_PARAM *q = params; q->key; q++) {
		if (!is_public(q->key))
			continue;
		if (n == MAX_GET)
			return 0;
		from[n] = q;
		asked[n++] = *q;
	}
	asked[n] = OSSL_PARAM_construct_end();
	if (n == 0)
		return 1;
	if (!k->pub_key)
		return 0;
	int ok = EVP_PKEY_get_params(k->pub_key, asked);
	for (int i = 0; i < n; i++)
		from[i]->return_size = asked[i].return_size;
	return ok;
}

static const OSSL_PARAM *km_gettable(void *provctx)
{
	(void)provctx;
	return public_params;
}

/* Import: a public key stays plain; one with private parts gets a domain. */
struct import_arg {
	enum pk_type type;
	int selection;
	const OSSL_PARAM *params;
};

static EVP_PKEY *from_params(struct pk_prov *p, void *arg)
{
	struct import_arg *a = arg;
	EVP_PKEY *e = NULL;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(p->inner, pk_type_name(a->type), NULL);
	if (c && EVP_PKEY_fromdata_init(c) == 1)
		EVP_PKEY_fromdata(c, &e, a->selection, (OSSL_PARAM *)a->params);
	EVP_PKEY_CTX_free(c);
	return e;
}

static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
	struct pk_key *k = keydata, *n;
	struct import_arg a = { k->type, selection, params };
	if (k->inner)
		return 0;
	if (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) {
		n = pk_key_in_domain(k->prov, k->type, from_params, &a);
		if (!n)
			return 0;
		k->d = n->d;
		k->inner = n->inner;
		k->pub_key = n->pub_key;
		k->has_priv = 1;
		memcpy(k->pub, n->pub, sizeof k->pub);
		k->publen = n->publen;
		memcpy(k->group, n->group, sizeof k->group);
		k->bits = n->bits;
		k->security_bits = n->security_bits;
		k->max_size = n->max_size;
		pthread_mutex_destroy(&n->lock);
		free(n);
		return 1;
	}
	k->inner = k->pub_key = from_params(k->prov, &a);
	if (!k->inner)
		return 0;
	if (!cache_public(k)) {
		EVP_PKEY_free(k->inner);
		k->inner = k->pub_key = NULL;
		return 0;
	}
	return 1;
}

static const OSSL_PARAM *km_types_ecx(int selection)
{
	static const OSSL_PARAM pub[] = {
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0), OSSL_PARAM_END
	};
	static const OSSL_PARAM both[] = {
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0), OSSL_PARAM_END
	};
	return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ? both : pub;
}

#define km_types_ed25519 km_types_ecx
#define km_types_x25519 km_types_ecx
#define km_types_ed448 km_types_ecx
#define km_types_x448 km_types_ecx

static const OSSL_PARAM *km_types_ec(int selection)
{
	static const OSSL_PARAM pub[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0), OSSL_PARAM_END
	};
	static const OSSL_PARAM both[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0), OSSL_PARAM_END
	};
	return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ? both : pub;
}

static const OSSL_PARAM *km_types_rsa(int selection)
{
	static const OSSL_PARAM pub[] = {
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0), OSSL_PARAM_END
	};
	static const OSSL_PARAM both[] = {
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_D, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_FACTOR1, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_FACTOR2, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_EXPONENT1, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_EXPONENT2, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_COEFFICIENT1, NULL, 0), OSSL_PARAM_END
	};
	return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ? both : pub;
}

#define km_types_rsa_pss km_types_rsa

/* Export: public parts only, from the public half. */
static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
	struct pk_key *k = keydata;
	OSSL_PARAM *params = NULL;
	if (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) {
		ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED, "pkalloc keeps private keys in their domain");
		return 0;
	}
	if (!k->pub_key)
		return 0;
	int ok = EVP_PKEY_todata(k->pub_key, EVP_PKEY_PUBLIC_KEY, &params) == 1;
	ok = ok && cb(params, cbarg);
	OSSL_PARAM_free(params);
	return ok;
}

static const char *km_query_ec(int operation_id)
{
	switch (operation_id) {
	case OSSL_OP_SIGNATURE: return "ECDSA";
	case OSSL_OP_KEYEXCH: return "ECDH";
	}
	return NULL;
}

/* The default provider's RSA-PSS keys sign with its "RSA" signature,
 * which takes PSS's restrictions from the key. */
static const char *km_query_rsa_pss(int operation_id)
{
	return operation_id == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

/*
 * Generation.  What shapes the key (curve, bits, public exponent, PSS
 * restrictions) is collected here, in plain memory: public values.  Each
 * setting is tried at once on a throwaway generation context of the inner
 * context, outside every window, so that a bad one fails where it is
 * given and any digest it names is fetched outside.  The key itself is
 * made by the default provider inside a fresh domain.
 */
struct genctx {
	struct pk_prov *prov;
	enum pk_type type;
	int selection;
	OSSL_PARAM *params;         /* the caller's settings, merged */
};

static int gen_check(struct genctx *g, const OSSL_PARAM params[])
{
	OSSL_PARAM *clean;
	if (!pk_params_clean(params, &clean))
		return 0;
	if (!clean)
		return 1;
	pk_prefetch_digests(g->prov, clean);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(g->prov->inner, pk_type_name(g->type), NULL);
	int ok = c && EVP_PKEY_keygen_init(c) == 1 && EVP_PKEY_CTX_set_params(c, clean) == 1;
	EVP_PKEY_CTX_free(c);
	ok = ok && pk_params_merge(&g->params, clean);
	OSSL_PARAM_free(clean);
	return ok;
}

static void gen_cleanup(void *genctx)
{
	struct genctx *g = genctx;
	if (g)
		OSSL_PARAM_free(g->params);
	free(g);
}

static void *gen_init(struct pk_prov *p, enum pk_type t, int selection, const OSSL_PARAM params[])
{
	struct genctx *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->prov = p;
	g->type = t;
	g->selection = selection;
	if (!gen_check(g, params)) {
		gen_cleanup(g);
		return NULL;
	}
	return g;
}

static int gen_set_params(void *genctx, const OSSL_PARAM params[])
{
	return gen_check(genctx, params);
}

/* The default provider's table: static, valid while inner holds it.
 * Asked with no generation context too (EVP_PKEY_CTX_settable_params). */
static const OSSL_PARAM *gen_settable(struct pk_prov *p, enum pk_type t)
{
	EVP_KEYMGMT *m = EVP_KEYMGMT_fetch(p->inner, pk_type_name(t), NULL);
	const OSSL_PARAM *q = m ? EVP_KEYMGMT_gen_settable_params(m) : NULL;
	EVP_KEYMGMT_free(m);
	return q;
}

/* EC only, as in the default provider: the template's curve. */
static int gen_set_template(void *genctx, void *templ)
{
	struct genctx *g = genctx;
	struct pk_key *k = templ;
	if (!k || k->type != PK_EC || !k->group[0])
		return 0;
	OSSL_PARAM group[2] = { OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, k->group, 0),
	                        OSSL_PARAM_construct_end() };
	return gen_check(g, group);
}

/* Inside the new key's window, capturing. */
static EVP_PKEY *generate(struct pk_prov *p, void *arg)
{
	struct genctx *g = arg;
	EVP_PKEY *e = NULL;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(p->inner, pk_type_name(g->type), NULL);
	if (c && EVP_PKEY_keygen_init(c) == 1 && (!g->params || EVP_PKEY_CTX_set_params(c, g->params) == 1))
		EVP_PKEY_generate(c, &e);
	EVP_PKEY_CTX_free(c);
	return e;
}

/*
 * The progress callback is not called: it is the caller's code, and it
 * would run inside the window, allocating into the key's domain.
 */
static void *gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
	struct genctx *g = genctx;
	(void)cb, (void)cbarg;
	if (!(g->selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY)) {
		/* Parameters alone are the default provider's to make. */
		ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED, "pkalloc generates key pairs only");
		return NULL;
	}
	struct pk_key *k = pk_key_in_domain(g->prov, g->type, generate, g);
	if (!k)
		ERR_raise_data(ERR_LIB_PROV, ERR_R_OPERATION_FAIL, "%s key generation failed", pk_type_name(g->type));
	return k;
}

#define GEN_INIT(t, T)                                                                          \
	static void *gen_init_##t(void *provctx, int selection, const OSSL_PARAM params[])     \
	{                                                                                       \
		return gen_init(provctx, T, selection, params);                                 \
	}                                                                                       \
	static const OSSL_PARAM *gen_settable_##t(void *genctx, void *provctx)                 \
	{                                                                                       \
		(void)genctx;                                                                   \
		return gen_settable(provctx, T);                                                \
	}

GEN_INIT(ed25519, PK_ED25519)
GEN_INIT(x25519, PK_X25519)
GEN_INIT(ec, PK_EC)
GEN_INIT(rsa, PK_RSA)
GEN_INIT(rsa_pss, PK_RSA_PSS)
GEN_INIT(ed448, PK_ED448)
GEN_INIT(x448, PK_X448)

#define KEYMGMT(t, ...)                                                                        \
	const OSSL_DISPATCH pk_##t##_keymgmt[] = {                                               \
		{ OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new_##t },                           \
		{ OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free },                             \
		{ OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load },                             \
		{ OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has },                               \
		{ OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match },                           \
		{ OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params },                 \
		{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))km_gettable },              \
		{ OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import },                         \
		{ OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))km_types_##t },                \
		{ OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export },                         \
		{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))km_types_##t },                \
		{ OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))gen_init_##t },                    \
		{ OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))gen_set_params },            \
		{ OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))gen_settable_##t },     \
		{ OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))gen },                                  \
		{ OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))gen_cleanup },                  \
		__VA_ARGS__                                                                      \
		{ 0, NULL }                                                                      \
	};

KEYMGMT(ed25519)
KEYMGMT(x25519)
KEYMGMT(ec, { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_query_ec },
            { OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, (void (*)(void))gen_set_template },)
KEYMGMT(rsa)
KEYMGMT(rsa_pss, { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))km_query_rsa_pss },)
KEYMGMT(ed448)
KEYMGMT(x448)
