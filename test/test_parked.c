/*
 * A fault on a parked domain (pku) is reported as that domain's, found by
 * the address: its pages still carry the key it last held, which now
 * belongs to another domain, so si_code is SEGV_PKUERR with si_pkey
 * naming that other domain's key for a thread outside both, and
 * SEGV_ACCERR for a thread inside the new holder; the report names the
 * parked domain in both cases and never the key's new holder.
 */
#include "test.h"

enum { MOVERS = 40 };

static domain_t *parked, *holder;
static char *secret;

static int key_of(domain_t *d)
{
	struct domain_stats st;
	CHECK_OK(domain_stats(d, &st));
	return st.key;
}

static void read_it(void *a)
{
	(void)a;
	signal(SIGSEGV, SIG_DFL);        /* not the probes' handler: it would speak too */
	CHECK_OK(pkalloc_install_fault_handler());
	volatile char c = *(volatile char *)secret;
	(void)c;
}

static void read_from_holder(void *a)
{
	CHECK_OK(domain_enter(holder, DOMAIN_RDONLY));
	read_it(a);
}

static void expect_report(void (*fn)(void *))
{
	char err[512], want[512];
	int st = in_child(fn, NULL, err, sizeof err);
	CHECK_KILLED_BY(st, SIGSEGV);
	snprintf(want, sizeof want, "pkalloc: thread %d read domain \"parked\" at %p, not entered (parked)\n",
	         (int)last_child, (void *)secret);
	if (strcmp(err, want) != 0)
		FAIL("report was \"%s\", expected \"%s\"", err, want);
}

int main(void)
{
	if (!on_pku())
		skip("no protection keys here (mprotect backend): no domain is ever parked");
	parked = domain_create("parked", 0);
	CHECK(parked);
	secret = domain_malloc(parked, 64);
	CHECK(secret);
	CHECK_OK(domain_enter(parked, DOMAIN_RDWR));
	memset(secret, 0x42, 64);
	CHECK_OK(domain_exit(parked));
	int old_key = key_of(parked);
	CHECK_INT(old_key, >, 0);

	/* Other domains take keys until "parked", least recently used, loses
	 * its key; the one that gets it is the holder. */
	static domain_t *mover[MOVERS];
	for (int i = 0; i < MOVERS && key_of(parked) >= 0; i++) {
		mover[i] = domain_create("mover", 0);
		CHECK(mover[i]);
		CHECK_OK(domain_enter(mover[i], DOMAIN_RDONLY));
		CHECK_OK(domain_exit(mover[i]));
		if (key_of(mover[i]) == old_key)
			holder = mover[i];
	}
	if (key_of(parked) >= 0)
		skip("no domain was parked: other code holds too few keys for pkalloc to run out");
	CHECK(holder);
	CHECK(domain_name(holder) && strcmp(domain_name(holder), "mover") == 0);

	/* What the kernel says (pkalloc(7)): the old key, or page permissions. */
	struct fault f = probe(secret, 0);
	CHECK(f.hit);
	CHECK_INT(f.code, ==, SEGV_PKUERR);
	CHECK_INT(f.pkey, ==, old_key);
	CHECK_OK(domain_enter(holder, DOMAIN_RDONLY));
	f = probe(secret, 0);
	CHECK_OK(domain_exit(holder));
	CHECK(f.hit);
	CHECK_INT(f.code, ==, SEGV_ACCERR);
	CHECK_INT(key_of(parked), ==, -1);

	/* What the report says: the parked domain, by its address. */
	expect_report(read_it);
	expect_report(read_from_holder);

	/* Entering it again gives it a key back; the secret is intact. */
	CHECK_OK(domain_enter(parked, DOMAIN_RDONLY));
	for (int i = 0; i < 64; i++)
		CHECK_INT(secret[i], ==, 0x42);
	CHECK_OK(domain_exit(parked));
	domain_free(secret);
	CHECK_OK(domain_destroy(parked));
	for (int i = 0; i < MOVERS; i++)
		if (mover[i])
			CHECK_OK(domain_destroy(mover[i]));
	return 0;
}
