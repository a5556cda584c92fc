/*
 * The pkalloc OpenSSL 3 provider: shared types.  A key of this provider
 * is a default-provider EVP_PKEY built, used and freed in a library
 * context of its own (inner), entirely inside a pkalloc domain of its own;
 * the record that names it (struct pk_key) is plain memory and holds only
 * public facts.  A window opens the key's domain for the calling thread
 * for one operation, with libcrypto's allocations captured into it.
 */
#ifndef PKPROV_H
#define PKPROV_H

#include <pthread.h>
#include <stddef.h>

#include <openssl/core.h>
#include <openssl/evp.h>
#include <pkalloc.h>

enum pk_type { PK_ED25519, PK_X25519, PK_EC, PK_RSA, PK_RSA_PSS, PK_ED448, PK_X448, PK_NTYPES };

/* The configuration's choices for keys' domains (pkalloc-provider(7)). */
enum pk_secretmem { PK_SECRETMEM_NO, PK_SECRETMEM_YES, PK_SECRETMEM_IF_AVAILABLE };

struct pk_prov {
	const OSSL_CORE_HANDLE *handle;
	OSSL_LIB_CTX *inner;        /* the default provider, private to us */
	OSSL_PROVIDER *dflt;
	int shared;                 /* domains = shared: one for every key */
	enum pk_secretmem secretmem;
};

#define PK_PENDING 8
#define PK_SHAPE_MAX 192       /* an operation's kind, digest and settings, written out */

struct pk_key {
	struct pk_prov *prov;
	enum pk_type type;
	domain_t *d;                /* NULL for a public-only key */
	EVP_PKEY *inner;            /* in d (or plain, public only) */
	/* The public half alone, plain, in the inner context: what needs no
	 * private part (parameters, export, verification, encryption, a
	 * peer's side of a key exchange, checking an operation's settings)
	 * uses it, outside every window.  The same key as inner for a
	 * public-only key. */
	EVP_PKEY *pub_key;
	/* Operation contexts in d that their users have freed, freed in the
	 * next window on the key (pk_key_reap): a free costs no window. */
	pthread_mutex_t lock;
	int npending;
	EVP_PKEY_CTX *pending_p[PK_PENDING];
	EVP_MD_CTX *pending_m[PK_PENDING];
	/* Operations (kind, digest and settings) already checked once on the
	 * public half: set up again, they need no check. */
	int nchecked;
	char checked[PK_PENDING][PK_SHAPE_MAX];
	/* Contexts in d for such operations, idle, used again by the next
	 * of the same shape (a context made per operation would cost its
	 * setup each time). */
	int npool;
	struct {
		char what[PK_SHAPE_MAX];
		EVP_PKEY_CTX *p;
		EVP_MD_CTX *m;
	} pool[PK_PENDING];
	int has_priv;
	int bits, security_bits, max_size;
	/* Identifies the key among others of its type: the raw public key
	 * (Ed25519, X25519, Ed448, X448), the encoded point (EC), the modulus
	 * (RSA, RSA-PSS). */
	unsigned char pub[1024];
	size_t publen;
	char group[64];             /* EC curve name, "" otherwise */
};

struct window {
	domain_t *d;
	domain_t *saved;
	int captured;
};

/* Open k's domain read-write for this thread; with capture, libcrypto
 * allocates in it until the close.  Windows nest (close in reverse order):
 * a window without capture leaves the enclosing one's.  A key without a
 * domain (public only) gets an empty window.  0, or -1 (error raised). */
int window_open(const struct pk_key *k, int capture, struct window *w);
void window_close(struct window *w);
/* The same, after an operation inside that succeeded (ok) or failed: if
 * it failed, the errors it raised (the default provider's reasons) are
 * raised again outside, as OpenSSL gives them without this provider.
 * Returns how many it raised again. */
int window_end(struct window *w, int ok);

/* Names of the key types, as OpenSSL's default provider spells them. */
const char *pk_type_name(enum pk_type t);

/* Fetch the digests a parameter list names (signature or OAEP digests,
 * MGF1's), outside every window, so that the inner context caches them in
 * plain memory, not in a key's domain.  Returns 1: a name the inner
 * context cannot fetch is left to the operation, which then fails with the
 * default provider's error, as without this provider. */
void pk_prefetch_digests(struct pk_prov *p, const OSSL_PARAM params[]);

/* A domain for a new key: a fresh one, or the process's shared one (one
 * per set of flags), counted; NULL (error raised) when none can be made.
 * pk_domain_put gives it back: destroyed, or the shared one when its last
 * key goes. */
domain_t *pk_domain_get(struct pk_prov *p);
void pk_domain_put(domain_t *d);
/* With secretmem = yes: can a secret-memory domain be made here?  0, or
 * -1 with errno. */
int pk_domain_check(struct pk_prov *p);
/*
 * The caller's settings without property queries ("properties",
 * "digest-props", ...), copied into *out (NULL when none is left).  The
 * inner context holds the default provider alone, so they choose nothing;
 * and a program could otherwise fill the inner context's method cache
 * with new queries until OpenSSL flushes it, after which the fetches an
 * operation makes inside a window would put their cache entries in the
 * key's domain.  1, or 0 (no memory).
 */
int pk_params_clean(const OSSL_PARAM params[], OSSL_PARAM **out);
/* Merge params into *into (a list of its own, values copied: the caller's
 * may go away), later values replacing earlier ones.  1, or 0. */
int pk_params_merge(OSSL_PARAM **into, const OSSL_PARAM params[]);
/* A new list: base (may be NULL) with add (not empty) merged in, values
 * copied; NULL when out of memory. */
OSSL_PARAM *pk_params_merged(const OSSL_PARAM base[], const OSSL_PARAM add[]);

/* Key records (keymgmt.c). */
struct pk_key *pk_key_new(struct pk_prov *p, enum pk_type t);
void pk_key_free(struct pk_key *k);
/* Hand over contexts in k's domain (either may be NULL) to be freed in the
 * next window on k.  0, or -1 when the list is full (free them yourself,
 * inside a window). */
int pk_key_defer(struct pk_key *k, EVP_PKEY_CTX *p, EVP_MD_CTX *m);
/* Inside a capturing window on k: free what was handed over. */
void pk_key_reap(struct pk_key *k);
/* Was the operation named by what (a short string) checked on k before?
 * pk_key_checked records that it was. */
int pk_key_was_checked(struct pk_key *k, const char *what);
void pk_key_checked(struct pk_key *k, const char *what);
/* Inside a window on k: an idle context for the operation what, taken from
 * k's pool (0), or none there (-1); and one given back (0), or not taken
 * because the pool is full (-1: free it, inside the window). */
int pk_key_pool_take(struct pk_key *k, const char *what, EVP_PKEY_CTX **p, EVP_MD_CTX **m);
int pk_key_pool_put(struct pk_key *k, const char *what, EVP_PKEY_CTX *p, EVP_MD_CTX *m);
/* A new key owning a fresh domain, its inner key made by fn inside it;
 * t may be PK_NTYPES: the type fn's key has, if one of ours. */
struct pk_key *pk_key_in_domain(struct pk_prov *p, enum pk_type t,
                                EVP_PKEY *(*fn)(struct pk_prov *, void *), void *arg);

extern const OSSL_DISPATCH pk_ed25519_keymgmt[], pk_x25519_keymgmt[], pk_ec_keymgmt[], pk_rsa_keymgmt[],
	pk_rsa_pss_keymgmt[], pk_ed448_keymgmt[], pk_x448_keymgmt[];
extern const OSSL_DISPATCH pk_eddsa_signature[], pk_ecdsa_signature[], pk_rsa_signature[];
extern const OSSL_DISPATCH pk_keyexch[];
extern const OSSL_DISPATCH pk_rsa_asym_cipher[];
extern const OSSL_DISPATCH pk_decoder[], pk_epki_decoder[];

/* The core's BIO reader, from the dispatch table given at init. */
extern OSSL_FUNC_BIO_read_ex_fn *pk_bio_read_ex;

#endif
