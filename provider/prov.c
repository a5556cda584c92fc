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
#include <openssl/rsa.h>
#include <openssl/x509.h>

OSSL_FUNC_BIO_read_ex_fn *pk_bio_read_ex;

/*
 * The stack an operation inside a window may have used, wiped on close:
 * measured at load as twice the deepest of the warm-up's operations (which
 * do every kind of step a window does), within these bounds.
 */
#define WIPE_STACK_MIN (8 * 1024)
#define WIPE_STACK_MAX (64 * 1024)
static size_t wipe_stack = WIPE_STACK_MAX;
static int measured;

const char *pk_type_name(enum pk_type t)
{
	static const char *const names[PK_NTYPES] = { "ED25519", "X25519", "EC", "RSA", "RSA-PSS", "ED448", "X448" };
	return t < PK_NTYPES ? names[t] : "";
}

void pk_prefetch_digests(struct pk_prov *p, const OSSL_PARAM params[])
{
	static const char *const keys[] = {
		OSSL_SIGNATURE_PARAM_DIGEST, OSSL_SIGNATURE_PARAM_MGF1_DIGEST,
		OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST,
	};
	for (size_t i = 0; params && i < sizeof keys / sizeof keys[0]; i++) {
		const OSSL_PARAM *q = OSSL_PARAM_locate_const(params, keys[i]);
		const char *name = NULL;
		if (!q || !OSSL_PARAM_get_utf8_string_ptr(q, &name) || !*name)
			continue;
		/* A name the inner context does not know is left to the
		 * operation, which fails with the default provider's error. */
		ERR_set_mark();
		EVP_MD_free(EVP_MD_fetch(p->inner, name, NULL));
		ERR_pop_to_mark();
	}
}

/* A property query: "properties", "digest-props", "mgf1-properties"... */
static int is_property_query(const char *key)
{
	size_t n = strlen(key);
	return (n >= 10 && strcmp(key + n - 10, "properties") == 0) || (n >= 5 && strcmp(key + n - 5, "props") == 0);
}

int pk_params_clean(const OSSL_PARAM params[], OSSL_PARAM **out)
{
	size_t n = 0, k = 0;
	*out = NULL;
	for (const OSSL_PARAM *q = params; q && q->key; q++)
		n++;
	if (n == 0)
		return 1;
	OSSL_PARAM *keep = calloc(n + 1, sizeof *keep);
	if (!keep)
		return 0;
	for (const OSSL_PARAM *q = params; q && q->key; q++)
		if (!is_property_query(q->key))
			keep[k++] = *q;
	keep[k] = OSSL_PARAM_construct_end();
	int ok = k == 0 || (*out = OSSL_PARAM_dup(keep)) != NULL;
	free(keep);
	return ok;
}

OSSL_PARAM *pk_params_merged(const OSSL_PARAM base[], const OSSL_PARAM add[])
{
	if (!base)
		return OSSL_PARAM_dup(add);
	/* merge makes a new list pointing into both: own the values. */
	OSSL_PARAM *m = OSSL_PARAM_merge(base, add);
	OSSL_PARAM *d = m ? OSSL_PARAM_dup(m) : NULL;
	OSSL_PARAM_free(m);
	return d;
}

int pk_params_merge(OSSL_PARAM **into, const OSSL_PARAM params[])
{
	if (!params || !params->key)
		return 1;
	OSSL_PARAM *d = pk_params_merged(*into, params);
	if (!d)
		return 0;
	OSSL_PARAM_free(*into);
	*into = d;
	return 1;
}

static __thread struct pk_prov *warm_for;
static __thread const void *warm_state[3];

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
	/*
	 * Checked before every window, not once per thread: a program may
	 * free them (OPENSSL_thread_stop), and OpenSSL would make them again
	 * at their next use, inside the window.  Asking for them makes any
	 * that is missing, here, outside.
	 */
	const void *now[3] = { ERR_get_state(), RAND_get0_public(p->inner), RAND_get0_private(p->inner) };
	if (warm_for == p && memcmp(now, warm_state, sizeof now) == 0)
		return;
	ERR_set_mark();
	for (int i = 0; i < ERR_NUM_ERRORS; i++)
		ERR_raise_data(ERR_LIB_PROV, ERR_R_INIT_FAIL, "%s", "pkalloc: warming the error queue");
	ERR_pop_to_mark();
	RAND_bytes_ex(p->inner, &b, 1, 0);
	RAND_priv_bytes_ex(p->inner, &b, 1, 0);
	warm_for = p;
	memcpy(warm_state, now, sizeof now);
}

int window_open(const struct pk_key *k, int capture, struct window *w)
{
	warm_thread(k->prov);
	w->d = k->d;
	w->saved = NULL;
	w->captured = 0;
	if (w->d && domain_enter(w->d, DOMAIN_RDWR) != 0) {
		ERR_raise_data(ERR_LIB_PROV, ERR_R_OPERATION_FAIL, "domain_enter: %s", strerror(errno));
		return -1;
	}
	if (capture && w->d) {
		w->saved = redirect_capture(w->d);
		w->captured = 1;
		if (__atomic_load_n(&k->npending, __ATOMIC_RELAXED))
			pk_key_reap((struct pk_key *)k);
	}
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

/* An error raised inside a window, copied out to be raised again outside. */
struct kept_error {
	unsigned long code;
	int line;
	char file[96], func[96], data[256];
};

#define KEPT_ERRORS 8

static void copy_str(char *to, size_t size, const char *from)
{
	snprintf(to, size, "%s", from ? from : "");
}

/*
 * The errors raised since the window's mark, oldest first, copied (the
 * domain is still open: their strings may lie in it).  They are what the
 * default provider said of the operation (a bad padding, an unknown
 * digest), which the caller must see as it would without this provider.
 * Needs ERR_STATE's layout, as scrub_errors does.
 */
static int keep_errors(struct kept_error *k)
{
	ERR_STATE *es = ERR_get_state();
	int idx[KEPT_ERRORS], n = 0;
	if (!es)
		return 0;
	for (int i = es->top; i != es->bottom && es->err_marks[i] == 0 && n < KEPT_ERRORS;
	     i = (i > 0 ? i : ERR_NUM_ERRORS) - 1)
		if (es->err_buffer[i] && !(es->err_flags[i] & ERR_FLAG_CLEAR))
			idx[n++] = i;
	for (int j = 0; j < n; j++) {
		int i = idx[n - 1 - j];
		k[j].code = es->err_buffer[i];
		k[j].line = es->err_line[i];
		copy_str(k[j].file, sizeof k[j].file, es->err_file[i]);
		copy_str(k[j].func, sizeof k[j].func, es->err_func[i]);
		copy_str(k[j].data, sizeof k[j].data,
		         (es->err_data_flags[i] & ERR_TXT_STRING) ? es->err_data[i] : NULL);
	}
	return n;
}

static void raise_kept(const struct kept_error *k, int n)
{
	for (int j = 0; j < n; j++) {
		ERR_new();
		ERR_set_debug(k[j].file, k[j].line, k[j].func);
		if (k[j].data[0])
			ERR_set_error(ERR_GET_LIB(k[j].code), ERR_GET_REASON(k[j].code), "%s", k[j].data);
		else
			ERR_set_error(ERR_GET_LIB(k[j].code), ERR_GET_REASON(k[j].code), NULL);
	}
}

static int close_window(struct window *w, int keep)
{
	struct kept_error kept[KEPT_ERRORS];
	int n = keep ? keep_errors(kept) : 0;
	/* Errors raised inside carry text in the domain: drop them there. */
	ERR_pop_to_mark();
	if (w->d) {
		if (w->captured)
			redirect_capture(w->saved);
		scrub_errors(w->d);
		pkalloc_wipe_stack(wipe_stack);
		domain_exit(w->d);
	}
	/* And raise them again outside, their text in plain memory (or the
	 * enclosing window's domain). */
	raise_kept(kept, n);
	return n;
}

void window_close(struct window *w)
{
	close_window(w, 0);
}

int window_end(struct window *w, int ok)
{
	return close_window(w, !ok);
}

static EVP_PKEY *warm_keygen(struct pk_prov *p, enum pk_type t)
{
	/* Small: the warm-up only has to pass through the code. */
	size_t bits = 768;
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *c;
	OSSL_PARAM par[2] = { OSSL_PARAM_construct_end(), OSSL_PARAM_construct_end() };
	switch (t) {
	case PK_EC: return EVP_PKEY_Q_keygen(p->inner, NULL, "EC", "P-256");
	case PK_RSA: return EVP_PKEY_Q_keygen(p->inner, NULL, "RSA", bits);
	case PK_RSA_PSS:
		/* EVP_PKEY_Q_keygen takes bits for "RSA" only. */
		par[0] = OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_BITS, &bits);
		c = EVP_PKEY_CTX_new_from_name(p->inner, "RSA-PSS", NULL);
		if (c && EVP_PKEY_keygen_init(c) == 1 && EVP_PKEY_CTX_set_params(c, par) == 1)
			EVP_PKEY_generate(c, &k);
		EVP_PKEY_CTX_free(c);
		return k;
	default: return EVP_PKEY_Q_keygen(p->inner, NULL, pk_type_name(t));
	}
}

static int warm_sign(struct pk_prov *p, EVP_PKEY *k, const char *md, const OSSL_PARAM *params)
{
	unsigned char sig[512], tbs[32] = { 0 };
	size_t siglen = sizeof sig;
	EVP_MD_CTX *m = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL, *vc = NULL;
	int ok = m && v && EVP_DigestSignInit_ex(m, &pc, md, p->inner, NULL, k, params) == 1 &&
	         EVP_DigestSign(m, sig, &siglen, tbs, sizeof tbs) == 1 &&
	         EVP_DigestVerifyInit_ex(v, &vc, md, p->inner, NULL, k, params) == 1 &&
	         EVP_DigestVerify(v, sig, siglen, tbs, sizeof tbs) == 1;
	EVP_MD_CTX_free(m);
	EVP_MD_CTX_free(v);
	if (!ok || !md)
		return ok;
	/* Over a digest, as EVP_PKEY_sign and the TLS stack use it. */
	OSSL_PARAM mdp[2] = { OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, (char *)md, 0),
	                      OSSL_PARAM_construct_end() };
	pc = EVP_PKEY_CTX_new_from_pkey(p->inner, k, NULL);
	siglen = sizeof sig;
	ok = pc && EVP_PKEY_sign_init_ex(pc, mdp) == 1 && (!params || EVP_PKEY_CTX_set_params(pc, params) == 1) &&
	     EVP_PKEY_sign(pc, sig, &siglen, tbs, sizeof tbs) == 1 && EVP_PKEY_verify_init_ex(pc, mdp) == 1 &&
	     (!params || EVP_PKEY_CTX_set_params(pc, params) == 1) &&
	     EVP_PKEY_verify(pc, sig, siglen, tbs, sizeof tbs) == 1;
	EVP_PKEY_CTX_free(pc);
	return ok;
}

static int warm_derive(struct pk_prov *p, EVP_PKEY *k, EVP_PKEY *peer)
{
	unsigned char s[128];
	size_t n = sizeof s;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(p->inner, k, NULL);
	int ok = c && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer) == 1 &&
	         EVP_PKEY_derive(c, s, &n) == 1;
	EVP_PKEY_CTX_free(c);
	return ok;
}

static int warm_cipher(struct pk_prov *p, EVP_PKEY *k, int pad)
{
	unsigned char in[16] = { 1 }, ct[256], pt[256];
	size_t ctlen = sizeof ct, ptlen = sizeof pt;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(p->inner, k, NULL);
	int ok = c && EVP_PKEY_encrypt_init(c) == 1 && EVP_PKEY_CTX_set_rsa_padding(c, pad) == 1 &&
	         EVP_PKEY_encrypt(c, ct, &ctlen, in, sizeof in) == 1 && EVP_PKEY_decrypt_init(c) == 1 &&
	         EVP_PKEY_CTX_set_rsa_padding(c, pad) == 1 && EVP_PKEY_decrypt(c, pt, &ptlen, ct, ctlen) == 1;
	EVP_PKEY_CTX_free(c);
	return ok;
}

/*
 * One of each operation per key type, outside every domain, at load: the
 * inner context's method stores and caches fill here, not in the first
 * key's domain.
 */
static int warm_type(struct pk_prov *p, enum pk_type t)
{
	int ok = 0;
	EVP_PKEY *k = warm_keygen(p, t), *k2 = NULL, *peer = NULL;
	unsigned char *der = NULL;
	int n = k ? i2d_PrivateKey(k, &der) : -1;
	const unsigned char *q = der;
	if (n <= 0 || !(k2 = d2i_AutoPrivateKey_ex(NULL, &q, n, p->inner, NULL)))
		goto out;
	int pss = RSA_PKCS1_PSS_PADDING;
	OSSL_PARAM pssp[2] = { OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PAD_MODE, &pss), OSSL_PARAM_construct_end() };
	switch (t) {
	case PK_ED25519:
	case PK_ED448:
		ok = warm_sign(p, k2, NULL, NULL);
		break;
	case PK_X25519:
	case PK_X448:
		ok = (peer = warm_keygen(p, t)) && warm_derive(p, k2, peer);
		break;
	case PK_RSA_PSS:
		/* PSS is the only padding such a key has. */
		ok = warm_sign(p, k2, "SHA256", NULL);
		break;
	case PK_EC:
		ok = warm_sign(p, k2, "SHA256", NULL) && (peer = warm_keygen(p, t)) && warm_derive(p, k2, peer);
		break;
	case PK_RSA:
		ok = warm_sign(p, k2, "SHA256", NULL) && warm_sign(p, k2, "SHA256", pssp) &&
		     warm_cipher(p, k2, RSA_PKCS1_OAEP_PADDING) && warm_cipher(p, k2, RSA_PKCS1_PADDING);
		break;
	default:
		break;
	}
out:
	OPENSSL_clear_free(der, n > 0 ? (size_t)n : 0);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(peer);
	return ok;
}

/*
 * How deep below its caller's frame a call reached: the stack below is
 * painted first, and after the call the lowest byte no longer painted is
 * the deepest the call wrote.  (Reading below the stack pointer is safe
 * here: it is the thread's own mapped stack; a signal handler that ran
 * meanwhile can only make the figure larger.)
 */
#define PAINT 0xa5
#define PROBE_STACK (WIPE_STACK_MAX + 16 * 1024)

static __attribute__((noinline)) void paint_stack(void)
{
	unsigned char a[PROBE_STACK];
	memset(a, PAINT, sizeof a);
	__asm__ volatile("" : : "r"(a) : "memory");
}

static __attribute__((noinline)) size_t painted_depth(uintptr_t top)
{
	const volatile unsigned char *p = (const volatile unsigned char *)(top - PROBE_STACK);
	size_t i = 0;
	while (i < PROBE_STACK && p[i] == PAINT)
		i++;
	return PROBE_STACK - i;
}

static __attribute__((noinline)) int warm_type_measured(struct pk_prov *p, enum pk_type t, size_t *depth)
{
	uintptr_t top = (uintptr_t)__builtin_frame_address(0);
	paint_stack();
	int ok = warm_type(p, t);
	size_t d = painted_depth(top);
	if (d > *depth)
		*depth = d;
	return ok;
}

static const OSSL_ALGORITHM keymgmt[] = {
	{ "ED25519:1.3.101.112", "provider=pkalloc", pk_ed25519_keymgmt, "pkalloc Ed25519" },
	{ "X25519:1.3.101.110", "provider=pkalloc", pk_x25519_keymgmt, "pkalloc X25519" },
	{ "EC:id-ecPublicKey:1.2.840.10045.2.1", "provider=pkalloc", pk_ec_keymgmt, "pkalloc EC" },
	{ "RSA:rsaEncryption:1.2.840.113549.1.1.1", "provider=pkalloc", pk_rsa_keymgmt, "pkalloc RSA" },
	/* RSASSA-PSS: the name libssl asks a certificate's key for. */
	{ "RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10", "provider=pkalloc", pk_rsa_pss_keymgmt, "pkalloc RSA-PSS" },
	{ "ED448:1.3.101.113", "provider=pkalloc", pk_ed448_keymgmt, "pkalloc Ed448" },
	{ "X448:1.3.101.111", "provider=pkalloc", pk_x448_keymgmt, "pkalloc X448" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM signature[] = {
	{ "ED25519:Ed25519:1.3.101.112", "provider=pkalloc", pk_eddsa_signature, "pkalloc Ed25519" },
	{ "ED448:Ed448:1.3.101.113", "provider=pkalloc", pk_eddsa_signature, "pkalloc Ed448" },
	{ "ECDSA", "provider=pkalloc", pk_ecdsa_signature, "pkalloc ECDSA" },
	{ "RSA:rsaEncryption:1.2.840.113549.1.1.1", "provider=pkalloc", pk_rsa_signature, "pkalloc RSA" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM keyexch[] = {
	{ "ECDH", "provider=pkalloc", pk_keyexch, "pkalloc ECDH" },
	{ "X25519:1.3.101.110", "provider=pkalloc", pk_keyexch, "pkalloc X25519" },
	{ "X448:1.3.101.111", "provider=pkalloc", pk_keyexch, "pkalloc X448" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM asym_cipher[] = {
	{ "RSA:rsaEncryption:1.2.840.113549.1.1.1", "provider=pkalloc", pk_rsa_asym_cipher, "pkalloc RSA" },
	{ NULL, NULL, NULL, NULL }
};

/*
 * The decoders, and only they, carry pkalloc.prefer: pkalloc.cnf asks for
 * it (OpenSSL 3.2 and later rank decoders by it).  Key management must
 * not be preferred: a program's key generation, the TLS stack's key
 * shares among it, would fetch ours and make a domain per key; ours
 * generates only when asked by "provider=pkalloc".  One decoder per key type, one implementation: the
 * first of ours to run decodes a key of any type we serve (see decoder.c).
 */
#define DEC_PROPS(s) "provider=pkalloc,pkalloc.prefer=yes,input=der,structure=" s
#define DECODERS(s)                                                                           \
	{ "ED25519:1.3.101.112", DEC_PROPS(s), pk_decoder, "pkalloc Ed25519 from DER" },      \
	{ "X25519:1.3.101.110", DEC_PROPS(s), pk_decoder, "pkalloc X25519 from DER" },        \
	{ "EC:id-ecPublicKey:1.2.840.10045.2.1", DEC_PROPS(s), pk_decoder, "pkalloc EC from DER" }, \
	{ "RSA:rsaEncryption:1.2.840.113549.1.1.1", DEC_PROPS(s), pk_decoder, "pkalloc RSA from DER" }, \
	{ "RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10", DEC_PROPS(s), pk_decoder, "pkalloc RSA-PSS from DER" }, \
	{ "ED448:1.3.101.113", DEC_PROPS(s), pk_decoder, "pkalloc Ed448 from DER" },          \
	{ "X448:1.3.101.111", DEC_PROPS(s), pk_decoder, "pkalloc X448 from DER" }

static const OSSL_ALGORITHM decoder[] = {
	DECODERS("PrivateKeyInfo"),
	/* SEC1 "EC PRIVATE KEY" and PKCS#1 "RSA PRIVATE KEY": only these two
	 * types have such a form (every decoder registered makes each
	 * certificate's public key decoding walk more of them). */
	{ "EC:id-ecPublicKey:1.2.840.10045.2.1", DEC_PROPS("type-specific"), pk_decoder, "pkalloc EC from SEC1" },
	{ "RSA:rsaEncryption:1.2.840.113549.1.1.1", DEC_PROPS("type-specific"), pk_decoder, "pkalloc RSA from PKCS#1" },
	/* "ENCRYPTED PRIVATE KEY", decrypted inside the key's domain: named as
	 * the default provider names its decrypting step, so that ours is
	 * offered the input first (providers listed later go first). */
	{ "DER", DEC_PROPS("EncryptedPrivateKeyInfo"), pk_epki_decoder, "pkalloc: encrypted PKCS#8 decrypted" },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *query(void *provctx, int id, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	switch (id) {
	case OSSL_OP_KEYMGMT: return keymgmt;
	case OSSL_OP_SIGNATURE: return signature;
	case OSSL_OP_KEYEXCH: return keyexch;
	case OSSL_OP_ASYM_CIPHER: return asym_cipher;
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

/* value, looked up in words (NULL-terminated): its index, or -1 after one
 * line on stderr naming the setting and what it takes. */
static int choice(const char *setting, const char *value, const char *const *words)
{
	char all[128] = "";
	for (int i = 0; words[i]; i++) {
		if (strcmp(value, words[i]) == 0)
			return i;
		snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", i ? ", " : "", words[i]);
	}
	fprintf(stderr, "pkalloc provider: %s = %s: expected one of %s\n", setting, value, all);
	return -1;
}

/*
 * The settings of the provider's section of the configuration
 * (pkalloc-provider(7)): domains = per-key | shared, secretmem = no | yes
 * | if-available.  0, or -1 after a line on stderr: a configuration that
 * asks for what the provider cannot do stops its loading.
 */
static int read_settings(struct pk_prov *p, OSSL_FUNC_core_get_params_fn *get)
{
	static const char *const domains[] = { "per-key", "shared", NULL };
	static const char *const secretmem[] = { "no", "yes", "if-available", NULL };
	const char *dom = NULL, *sm = NULL;
	OSSL_PARAM q[] = { OSSL_PARAM_utf8_ptr("domains", (char **)&dom, 0),
	                   OSSL_PARAM_utf8_ptr("secretmem", (char **)&sm, 0), OSSL_PARAM_END };
	if (get && !get(p->handle, q)) {
		fprintf(stderr, "pkalloc provider: cannot read the configuration\n");
		return -1;
	}
	int i = dom ? choice("domains", dom, domains) : 0;
	int j = sm ? choice("secretmem", sm, secretmem) : 0;
	if (i < 0 || j < 0)
		return -1;
	p->shared = i == 1;
	p->secretmem = (enum pk_secretmem)j;
	return 0;
}

__attribute__((visibility("default")))
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
	OSSL_FUNC_core_get_params_fn *get = NULL;
	for (; in->function_id != 0; in++) {
		if (in->function_id == OSSL_FUNC_BIO_READ_EX)
			pk_bio_read_ex = OSSL_FUNC_BIO_read_ex(in);
		if (in->function_id == OSSL_FUNC_CORE_GET_PARAMS)
			get = OSSL_FUNC_core_get_params(in);
	}
	if (!pk_bio_read_ex || redirect_install() != 0)
		return 0;
	struct pk_prov *p = calloc(1, sizeof *p);
	if (!p)
		return 0;
	p->handle = handle;
	if (read_settings(p, get) != 0) {
		free(p);
		return 0;
	}
	/*
	 * OpenSSL 3.0 goes on without a provider that fails to load, and its
	 * default provider would then hold the keys in plain memory: a
	 * configuration that demands secret memory where there is none stops
	 * the program instead.
	 */
	if (pk_domain_check(p) != 0) {
		fprintf(stderr, "pkalloc provider: secretmem = yes, but no secret memory here (%s): stopping rather "
		                "than keep private keys in plain memory\n", strerror(errno));
		abort();
	}
	p->inner = OSSL_LIB_CTX_new();
	p->dflt = p->inner ? OSSL_PROVIDER_load(p->inner, "default") : NULL;
	int ok = p->dflt != NULL;
	size_t depth = 0;
	for (int t = 0; ok && t < PK_NTYPES; t++)
		ok = warm_type_measured(p, (enum pk_type)t, &depth);
	if (ok) {
		size_t want = (2 * depth + 4095) & ~(size_t)4095;
		want = want < WIPE_STACK_MIN ? WIPE_STACK_MIN : want > WIPE_STACK_MAX ? WIPE_STACK_MAX : want;
		/* Several instances (library contexts): the deepest. */
		if (want > __atomic_load_n(&wipe_stack, __ATOMIC_RELAXED) || !measured)
			__atomic_store_n(&wipe_stack, want, __ATOMIC_RELAXED);
		measured = 1;
	}
	if (!ok) {
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
