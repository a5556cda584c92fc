/*
 * Capture of a real third-party library: OpenSSL's own allocations (a
 * bignum and its digits, a cipher context and its key schedule) made while
 * the thread is inside a DOMAIN_CAPTURE_MALLOC domain are domain memory,
 * and fault when touched outside; the same calls outside give ordinary
 * memory.
 */
#include "test.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* BIGNUM is opaque; its first field is the pointer to its digits. */
static void *bn_digits(const BIGNUM *bn)
{
	return *(void *const *)bn;
}

int main(void)
{
	skip_if_sanitized_malloc();
	/* OpenSSL sets up its global tables on first use: that must happen
	 * outside, or they would be captured too (pkalloc(7), CAVEATS). */
	CHECK(OPENSSL_init_crypto(0, NULL) == 1);
	EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	CHECK(aes);
	BIGNUM *warm = BN_new();
	CHECK(warm && BN_rand(warm, 256, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1);
	BN_free(warm);

	domain_t *d = domain_create("openssl", DOMAIN_CAPTURE_MALLOC);
	CHECK(d);
	static const unsigned char key[32] = "0123456789abcdef0123456789abcde";
	static const unsigned char iv[12] = "nonce-12byte";

	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	BIGNUM *bn = BN_new();
	CHECK(bn && BN_rand(bn, 2048, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	CHECK(ctx && EVP_EncryptInit_ex2(ctx, aes, key, iv, NULL) == 1);
	unsigned char out[64];
	int n = 0;
	CHECK(EVP_EncryptUpdate(ctx, out, &n, (const unsigned char *)"attack at dawn", 14) == 1);
	CHECK_PTR(domain_of(bn), ==, d);
	void *digits = bn_digits(bn);
	CHECK_PTR(domain_of(digits), ==, d);
	CHECK_PTR(domain_of(ctx), ==, d);
	CHECK_OK(domain_exit(d));

	/* Outside: the bignum, its digits and the context fault. */
	CHECK_DENIED(bn, 0);
	CHECK_DENIED(digits, 0);
	CHECK_DENIED(ctx, 0);

	/* The same calls outside allocate ordinary memory. */
	BIGNUM *plain = BN_new();
	EVP_CIPHER_CTX *plain_ctx = EVP_CIPHER_CTX_new();
	CHECK(plain && plain_ctx);
	CHECK(BN_rand(plain, 2048, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1);
	CHECK(domain_of(plain) == NULL && domain_of(bn_digits(plain)) == NULL && domain_of(plain_ctx) == NULL);
	BN_free(plain);
	EVP_CIPHER_CTX_free(plain_ctx);

	/* Freed inside (OpenSSL reads what it frees); nothing is left. */
	CHECK_OK(domain_enter(d, DOMAIN_RDWR));
	BN_clear_free(bn);
	EVP_CIPHER_CTX_free(ctx);
	CHECK_OK(domain_exit(d));
	struct domain_stats st;
	CHECK_OK(domain_stats(d, &st));
	CHECK_INT(st.allocated, ==, 0);
	CHECK_OK(domain_destroy(d));
	EVP_CIPHER_free(aes);
	printf("test_capture_openssl: ok on %s\n", pkalloc_backend());
	return 0;
}
