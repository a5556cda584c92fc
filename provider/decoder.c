/*
 * Decoders from DER (PKCS#8 PrivateKeyInfo, or the type-specific SEC1 and
 * PKCS#1 forms) to a pkalloc key: the DER is
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
	int ran;                    /* a domain was made and entered */
};

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
	(void)pw_cb, (void)pw_cbarg;
	struct pk_prov *p = ctx;
	struct read_arg a = { cin, 0 };
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

const OSSL_DISPATCH pk_decoder[] = {
	{ OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx },
	{ OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },
	{ OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))dec_does_selection },
	{ OSSL_FUNC_DECODER_DECODE, (void (*)(void))dec_decode },
	{ 0, NULL }
};
