/*
 * AES-256-GCM with OpenSSL's EVP API, the key in a domain.
 *
 * The key lives in a DOMAIN_CAPTURE_MALLOC domain and is opened only around
 * the cipher calls.  Inside, read-write, OpenSSL's own allocations (the
 * EVP_CIPHER_CTX, and the cipher's context holding the key schedule) land
 * in the domain too, as does the decrypted text: after domain_exit none of
 * them can be read, which a child process shows by dying on each.
 *
 * OpenSSL is set up, and the cipher fetched, outside the domain first:
 * what a library allocates once and keeps (its tables, this thread's error
 * queue) must not land in a domain that is closed when it is used later.
 *
 * What the cipher code leaves in its own stack frames (key-derived values
 * in locals and spilled registers) is not captured: before each exit the
 * stack those calls used is zeroed with pkalloc_wipe_stack.
 */
#define _GNU_SOURCE
#include <pkalloc.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Fixed, so that test/examples.sh can check the ciphertext against an
 * independent implementation; a real program would read or derive the key
 * inside the domain and never hold it in ordinary memory. */
static const unsigned char KEY[32] = {
	0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0,
	0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7,
	0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
};
static const unsigned char IV[12] = {
	0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce, 0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88,
};
static const char AAD[] = "pkalloc example v1";
static const char MESSAGE[] = "Meet me at the north gate at noon.";

enum { TAG = 16 };

/* Deeper than OpenSSL's EVP calls go on this thread's stack. */
#define CIPHER_STACK (32 << 10)

static void hex(const char *label, const unsigned char *p, size_t n)
{
	printf("%s", label);
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

/* In the domain, read-write: key and IV set, AAD and text through. */
static int gcm(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, int enc, const unsigned char *key,
               const unsigned char *in, int n, unsigned char *out, unsigned char tag[TAG])
{
	int len, fin;
	if (!EVP_CipherInit_ex2(ctx, cipher, key, IV, enc, NULL) ||
	    !EVP_CipherUpdate(ctx, NULL, &len, (const unsigned char *)AAD, (int)strlen(AAD)) ||
	    !EVP_CipherUpdate(ctx, out, &len, in, n))
		return 0;
	if (!enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, tag))
		return 0;
	if (!EVP_CipherFinal_ex(ctx, out + len, &fin))
		return 0;        /* decrypting: the tag does not match */
	return !enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, tag);
}

/* A child process reads one byte of p from outside every domain.  With the
 * fault report installed it says which domain it hit before it dies. */
static void read_from_outside(const char *what, const void *p)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		pkalloc_install_fault_handler();
		unsigned char c = *(const volatile unsigned char *)p;
		printf("outside read of the %s: got %02x, NOT stopped\n", what, c);
		fflush(stdout);
		_exit(1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	printf("outside read of the %s: %s\n", what,
	       WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV ? "killed by SIGSEGV" : "NOT stopped");
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

int main(void)
{
	/* Outside any domain: stdout's buffer, OpenSSL's tables, the cipher,
	 * and this thread's error queue are made here, in ordinary memory. */
	printf("aes-gcm: backend %s\n", pkalloc_backend());
	if (!OPENSSL_init_crypto(0, NULL))
		die("OPENSSL_init_crypto");
	ERR_clear_error();
	EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (!cipher)
		die("EVP_CIPHER_fetch");

	domain_t *vault = domain_create("aes-key", DOMAIN_CAPTURE_MALLOC);
	if (!vault)
		die("domain_create");
	unsigned char *key = domain_malloc(vault, sizeof KEY);
	if (!key)
		die("domain_malloc");
	if (domain_enter(vault, DOMAIN_RDWR) != 0)
		die("domain_enter");
	memcpy(key, KEY, sizeof KEY);
	domain_exit(vault);

	/* Encrypt: the context OpenSSL allocates in here is domain memory. */
	int n = (int)strlen(MESSAGE);
	unsigned char ct[sizeof MESSAGE], tag[TAG];
	if (domain_enter(vault, DOMAIN_RDWR) != 0)
		die("domain_enter");
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int ok = ctx && gcm(ctx, cipher, 1, key, (const unsigned char *)MESSAGE, n, ct, tag);
	pkalloc_wipe_stack(CIPHER_STACK);
	domain_exit(vault);
	if (!ok) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	printf("cipher context: %s\n", domain_of(ctx) == vault ?
	       "domain memory of \"aes-key\"" : "ordinary memory (NOT captured)");
	hex("ciphertext: ", ct, (size_t)n);
	hex("tag: ", tag, TAG);

	/* Decrypt into a buffer that malloc, captured, places in the domain;
	 * then the same with one bit of the tag flipped. */
	unsigned char bad[TAG];
	memcpy(bad, tag, TAG);
	bad[0] ^= 1;
	if (domain_enter(vault, DOMAIN_RDWR) != 0)
		die("domain_enter");
	char *text = malloc(sizeof MESSAGE);
	int genuine = text && gcm(ctx, cipher, 0, key, ct, n, (unsigned char *)text, tag);
	if (text)
		text[n] = '\0';
	unsigned char scratch[sizeof MESSAGE];
	int tampered = gcm(ctx, cipher, 0, key, ct, n, scratch, bad);
	explicit_bzero(scratch, sizeof scratch);
	pkalloc_wipe_stack(CIPHER_STACK);
	domain_exit(vault);
	if (!text)
		die("malloc");
	printf("decrypted text: %s\n", domain_of(text) == vault ?
	       "domain memory of \"aes-key\"" : "ordinary memory (NOT captured)");

	/* Read-only is enough to read it; a read-only enter captures nothing. */
	domain_enter(vault, DOMAIN_RDONLY);
	printf("round trip: \"%s\" %s\n", text, strcmp(text, MESSAGE) == 0 ? "matches" : "DIFFERS");
	domain_exit(vault);
	printf("tag check: genuine tag %s, tampered tag %s\n",
	       genuine ? "accepted" : "REJECTED", tampered ? "ACCEPTED" : "rejected");

	read_from_outside("key", key);
	read_from_outside("cipher context", ctx);
	read_from_outside("decrypted text", text);

	/* EVP_CIPHER_CTX_free reads the context: inside.  free() finds the
	 * text's domain by its address from anywhere, and wipes it. */
	domain_enter(vault, DOMAIN_RDWR);
	EVP_CIPHER_CTX_free(ctx);
	pkalloc_wipe_stack(CIPHER_STACK);
	domain_exit(vault);
	free(text);
	domain_free(key);
	if (domain_destroy(vault) != 0)
		die("domain_destroy");
	EVP_CIPHER_free(cipher);
	return 0;
}
