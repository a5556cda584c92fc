/*
 * Decoders from DER (PKCS#8 PrivateKeyInfo, encrypted or not, or the
 * type-specific SEC1 and PKCS#1 forms) to a pkalloc key: the DER is
 * read straight into the new key's domain (capture off: the reading BIO's
 * own buffers stay OpenSSL's), decoded there by the default provider with
 * capture on, and wiped; the key goes to the core by reference, with its
 * own type: the core's file reader does not rewind its input between
 * decoders, so the first of ours to run decodes a key of any type we serve.
 */
#include "prov.h"
#include "redirect.h"

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pkcs12.h>
#include <openssl/proverr.h>
#include <openssl/x509.h>

#define DER_MAX (64 * 1024)

static void *dec_newctx(void *provctx) { return provctx; }
static void dec_freectx(void *ctx) { (void)ctx; }

static int dec_does_selection(void *provctx, int selection)
{
	(void)provctx;
	return selection == 0 || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY);
}

struct read_arg {
	OSSL_CORE_BIO *cin;
	OSSL_PASSPHRASE_CALLBACK *pw_cb;
	void *pw_cbarg;
	int ran;                    /* a domain was made and entered */
};

#define PASS_MAX 1024

/*
 * An EncryptedPrivateKeyInfo (encrypted PKCS#8) in der, decrypted inside
 * the window the caller opened: the passphrase is asked into domain memory
 * (the caller's callback runs with capture off, so what it keeps, such as
 * OpenSSL's passphrase cache, is its own plain memory, as without this
 * provider), and the plaintext PrivateKeyInfo is made in the domain.  1
 * with *out and *outlen (free with OPENSSL_clear_free); 0, not decrypted
 * (the wrong passphrase, error raised); or -1, not encrypted.
 */
static int decrypt_epki(struct pk_prov *p, struct read_arg *a, const unsigned char *der, size_t len,
                        unsigned char **out, int *outlen)
{
	const unsigned char *q = der;
	ERR_set_mark();
	X509_SIG *p8 = d2i_X509_SIG(NULL, &q, (long)len);
	ERR_pop_to_mark();
	const X509_ALGOR *alg;
	const ASN1_OCTET_STRING *oct;
	size_t passlen = 0;
	int ok = 0;
	if (!p8)
		return -1;
	X509_SIG_get0(p8, &alg, &oct);
	domain_t *cap = redirect_capture(NULL);
	/*
	 * The cipher, key derivation and digest the key was encrypted with are
	 * fetched into the inner context's caches, which must not lie in a
	 * domain: a first run with an empty passphrase, capture off, makes
	 * them there (its output, the ciphertext decrypted with a wrong key,
	 * is noise, wiped anyway).
	 */
	unsigned char *noise = NULL;
	int noiselen = 0;
	ERR_set_mark();
	PKCS12_pbe_crypt_ex(alg, "", 0, oct->data, oct->length, &noise, &noiselen, 0, p->inner, NULL);
	ERR_pop_to_mark();
	OPENSSL_clear_free(noise, noiselen > 0 ? (size_t)noiselen : 0);
	char *pass = domain_malloc(cap, PASS_MAX);
	int got = pass && a->pw_cb && a->pw_cb(pass, PASS_MAX, &passlen, NULL, a->pw_cbarg);
	redirect_capture(cap);
	if (!got)
		ERR_raise(ERR_LIB_PROV, PROV_R_UNABLE_TO_GET_PASSPHRASE);
	else if (passlen <= PASS_MAX)
		ok = PKCS12_pbe_crypt_ex(alg, pass, (int)passlen, oct->data, oct->length, out, outlen, 0, p->inner,
		                         NULL) && *outlen > 0;
	domain_free(pass);                /* wiped */
	X509_SIG_free(p8);
	return ok;
}

/* Inside the new key's window, capturing. */
static EVP_PKEY *from_der(struct pk_prov *p, void *arg)
{
	struct read_arg *a = arg;
	a->ran = 1;
	domain_t *cap = redirect_capture(NULL);
	unsigned char *buf = domain_malloc(cap, DER_MAX);
	size_t len = 0, n = 0;
	EVP_PKEY *e = NULL;
	if (!buf) {
		redirect_capture(cap);
		return NULL;
	}
	while (len < DER_MAX && pk_bio_read_ex(a->cin, buf + len, DER_MAX - len, &n) && n > 0)
		len += n;
	redirect_capture(cap);
	const unsigned char *q = buf;
	if (len > 0 && len < DER_MAX)
		e = d2i_AutoPrivateKey_ex(NULL, &q, (long)len, p->inner, NULL);
	domain_free(buf);                 /* wiped */
	return e;
}

static int dec_decode(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb, void *data_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	struct pk_prov *p = ctx;
	struct read_arg a = { cin, pw_cb, pw_cbarg, 0 };
	if (selection != 0 && !(selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY))
		return 1;                  /* not ours to decode: let others try */
	ERR_set_mark();
	struct pk_key *k = pk_key_in_domain(p, PK_NTYPES, from_der, &a);
	if (!k && !a.ran) {
		/* No domain for it (none left, or the secret memory the
		 * configuration demands is missing): the load fails, with the
		 * reason, rather than fall to a decoder that would keep the
		 * key in plain memory. */
		ERR_clear_last_mark();
		return 0;
	}
	/* Not a key, or one of another type: empty-handed, no error. */
	ERR_pop_to_mark();
	if (!k)
		return 1;
	int objtype = OSSL_OBJECT_PKEY;
	/* The _construct_ form: the macro's size 0 would give the core "". */
	OSSL_PARAM params[4] = {
		OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype),
		OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, (char *)pk_type_name(k->type), 0),
		OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &k, sizeof k),
		OSSL_PARAM_construct_end()
	};
	int ok = data_cb(params, data_cbarg);
	pk_key_free(k);                   /* NULL if the core took it */
	return ok;
}

/*
 * The decrypting step for "ENCRYPTED PRIVATE KEY" input: the ciphertext is
 * read into a transient domain and decrypted there, and the plaintext is
 * handed to the next decoder (one of ours above, which takes it into the
 * key's own domain) while the transient domain is still open for this
 * thread, with nothing captured into it; then the domain and all in it are
 * destroyed.  Input that is not encrypted is handed on as it came.
 */
static int epki_decode(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb, void *data_cbarg,
                       OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
	(void)selection;
	struct pk_prov *p = ctx;
	struct read_arg a = { cin, pw_cb, pw_cbarg, 0 };
	struct pk_key *t = pk_key_new(p, PK_NTYPES);
	struct window w;
	if (!t || !(t->d = pk_domain_get(p)) || window_open(t, 1, &w) != 0) {
		pk_key_free(t);
		return 0;
	}
	domain_t *cap = redirect_capture(NULL);
	unsigned char *buf = domain_malloc(cap, DER_MAX), *plain = NULL;
	size_t len = 0, n = 0;
	int plainlen = 0, ok = 1, enc = 0;
	while (buf && len < DER_MAX && pk_bio_read_ex(cin, buf + len, DER_MAX - len, &n) && n > 0)
		len += n;
	redirect_capture(cap);
	if (buf && len > 0 && len < DER_MAX) {
		enc = decrypt_epki(p, &a, buf, len, &plain, &plainlen);
		/* The rest of the chain runs with nothing captured here. */
		redirect_capture(NULL);
		const unsigned char *out = enc == 1 ? plain : buf;
		OSSL_PARAM params[3] = {
			OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, (void *)out,
			                                  enc == 1 ? (size_t)plainlen : len),
			OSSL_PARAM_construct_end(), OSSL_PARAM_construct_end()
		};
		if (enc == 1)
			params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
			                                             (char *)"PrivateKeyInfo", 0);
		/* A wrong passphrase: nothing to hand on; the default provider's
		 * step tries next and gives OpenSSL's errors. */
		if (enc != 0)
			ok = data_cb(params, data_cbarg);
		redirect_capture(cap);
	}
	OPENSSL_clear_free(plain, plainlen > 0 ? (size_t)plainlen : 0);
	domain_free(buf);
	window_end(&w, ok);
	pk_key_free(t);
	return ok;
}

const OSSL_DISPATCH pk_epki_decoder[] = {
	{ OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx },
	{ OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },
	{ OSSL_FUNC_DECODER_DECODE, (void (*)(void))epki_decode },
	{ 0, NULL }
};

const OSSL_DISPATCH pk_decoder[] = {
	{ OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx },
	{ OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },
	{ OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))dec_does_selection },
	{ OSSL_FUNC_DECODER_DECODE, (void (*)(void))dec_decode },
	{ 0, NULL }
};
