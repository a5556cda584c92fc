/*
 * Key virtualization: any number of domains on at most 15 hardware keys.
 * 1000 domains each keep their own secret through thousands of enters in
 * random order, and entering one never opens another, whether that other
 * holds a key, is parked, or shares a key; when every key is pinned the
 * shared pool is used and still keeps an unentered sharer closed; keys
 * move between threads' domains under concurrency without any thread ever
 * seeing a domain it is not inside.
 */
#include "test.h"

#include <pthread.h>

enum { NDOM = 1000, ENTERS = 4000 };

static domain_t *dom[NDOM];
static char *sec[NDOM];

static void secret_of(int i, char out[32])
{
	snprintf(out, 32, "secret-%04d-%08x", i, (unsigned)i * 2654435761u);
}

/* Any fault: PKUERR for a keyed domain, ACCERR for a parked one. */
#define CHECK_CLOSED(p) do { \
	struct fault f_ = probe((p), 0); \
	if (!f_.hit) FAIL("read of %p did not fault", (void *)(p)); \
	if (f_.code != SEGV_PKUERR && f_.code != SEGV_ACCERR) \
		FAIL("fault on %p has si_code %d", (void *)(p), f_.code); \
} while (0)

static struct domain_stats dstat(domain_t *d)
{
	struct domain_stats st;
	CHECK_OK(domain_stats(d, &st));
	return st;
}

static struct pkalloc_stats pstat(void)
{
	struct pkalloc_stats st;
	CHECK_OK(pkalloc_stats(&st));
	return st;
}

/* Threads that sit inside a domain until told to leave. */
enum { HOLDERS = 17 };
static pthread_barrier_t entered;
static _Atomic int release_holder[HOLDERS], holder_out[HOLDERS];

static void *hold(void *arg)
{
	int i = (int)(intptr_t)arg;
	CHECK_OK(domain_enter(dom[i], DOMAIN_RDONLY));
	char want[32];
	secret_of(i, want);
	CHECK(strcmp(sec[i], want) == 0);
	pthread_barrier_wait(&entered);
	while (!release_holder[i])
		usleep(1000);
	CHECK(strcmp(sec[i], want) == 0);
	CHECK_OK(domain_exit(dom[i]));
	holder_out[i] = 1;
	return NULL;
}

static void release(int i)
{
	release_holder[i] = 1;
	while (!holder_out[i])
		usleep(1000);
}

/* Concurrent eviction: threads roam over more domains than keys. */
enum { ROAMERS = 8, ROAM_DOMAINS = 40, ROAM_ROUNDS = 1500 };
static _Atomic unsigned long roam_checks;

static void *roam(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (int r = 0; r < ROAM_ROUNDS; r++) {
		int i = (int)(rand_r(&seed) % ROAM_DOMAINS);
		int j = (int)(rand_r(&seed) % ROAM_DOMAINS);
		int rw = rand_r(&seed) & 1;
		char want[32];
		secret_of(i, want);
		CHECK_OK(domain_enter(dom[i], rw ? DOMAIN_RDWR : DOMAIN_RDONLY));
		if (on_pku())
			snprintf(test_note, sizeof test_note, "roam: domain %d at %p, pkru %#x",
			         i, (void *)sec[i], rdpkru());
		if (strcmp(sec[i], want) != 0)
			FAIL("domain %d: secret reads \"%.31s\"", i, sec[i]);
		if (rw)
			memcpy(sec[i], want, 32);        /* rewrite the same bytes */
		if (on_pku() && j != i) {
			CHECK_CLOSED(sec[j]);
			roam_checks++;
		}
		CHECK_OK(domain_exit(dom[i]));
	}
	return NULL;
}

/* Meanwhile domains come and go. */
static _Atomic int churn_stop;
static _Atomic unsigned long churned;

static void *churn(void *arg)
{
	(void)arg;
	while (!churn_stop) {
		domain_t *d = domain_create("transient", 0);
		CHECK(d);
		char *p = domain_malloc(d, 32);
		CHECK(p && domain_of(p) == d);
		CHECK_OK(domain_enter(d, DOMAIN_RDWR));
		strcpy(p, "transient secret");
		CHECK_OK(domain_exit(d));
		CHECK_OK(domain_enter(d, DOMAIN_RDONLY));
		CHECK(strcmp(p, "transient secret") == 0);
		CHECK_OK(domain_exit(d));
		domain_free(p);
		CHECK_OK(domain_destroy(d));
		churned++;
	}
	return NULL;
}

int main(void)
{
	if (under_valgrind())
		skip("needs 1000 domains; valgrind has room for about 25 reservations of 4 GiB");
	for (int i = 0; i < NDOM; i++) {
		char name[32];
		snprintf(name, sizeof name, "tenant-%d", i);
		dom[i] = domain_create(name, 0);
		if (!dom[i])
			FAIL("domain_create #%d: %s", i, strerror(errno));
		sec[i] = domain_malloc(dom[i], 32);
		CHECK(sec[i]);
		CHECK_OK(domain_enter(dom[i], DOMAIN_RDWR));
		secret_of(i, sec[i]);
		CHECK_OK(domain_exit(dom[i]));
	}
	struct pkalloc_stats ps = pstat();
	CHECK_INT(ps.domains, >=, NDOM);
	CHECK_INT(ps.allocated, >=, NDOM * 32);
	if (on_pku()) {
		CHECK_INT(ps.keys_owned, >=, 1);
		CHECK_INT(ps.keys_owned, <=, 15);
		CHECK_INT(ps.evictions, >=, NDOM - 15);
	} else {
		CHECK_INT(ps.keys_owned, ==, 0);
	}

	/* Random enters: the right secret every time, every other domain closed. */
	unsigned seed = 12345;
	for (int n = 0; n < ENTERS; n++) {
		int i = (int)(rand_r(&seed) % NDOM), j = (int)(rand_r(&seed) % NDOM);
		char want[32];
		secret_of(i, want);
		CHECK_OK(domain_enter(dom[i], DOMAIN_RDONLY));
		if (strcmp(sec[i], want) != 0)
			FAIL("enter #%d: domain %d reads \"%.31s\"", n, i, sec[i]);
		if (on_pku())
			CHECK_INT(dstat(dom[i]).key, >=, 1);
		if (j != i)
			CHECK_CLOSED(sec[j]);
		CHECK_OK(domain_exit(dom[i]));
		CHECK_CLOSED(sec[i]);
	}
	/* Entering one domain never opens another: a parked one, and one that
	 * holds a key right now. */
	CHECK_OK(domain_enter(dom[1], DOMAIN_RDONLY));
	CHECK_OK(domain_enter(dom[2], DOMAIN_RDONLY));
	CHECK_OK(domain_exit(dom[2]));                      /* 2 keeps its key */
	CHECK_CLOSED(sec[2]);
	CHECK_CLOSED(sec[NDOM - 1]);
	CHECK_OK(domain_exit(dom[1]));
	ps = pstat();
	CHECK_INT(ps.shared_entries, ==, 0);                /* one thread never pins all */

	/* Every key pinned: HOLDERS threads each sit inside its own domain,
	 * more than there are keys, so some share. */
	if (on_pku()) {
		unsigned long long shared0 = ps.shared_entries;
		pthread_barrier_init(&entered, NULL, HOLDERS + 1);
		pthread_t th[HOLDERS];
		for (int i = 0; i < HOLDERS; i++)
			pthread_create(&th[i], NULL, hold, (void *)(intptr_t)i);
		pthread_barrier_wait(&entered);
		ps = pstat();
		CHECK_INT(ps.keys_in_use, ==, ps.keys_owned);
		CHECK_INT(ps.shared_entries, >=, shared0 + HOLDERS - ps.keys_owned);
		/* This thread enters yet another domain: it must share a key. */
		int x = HOLDERS + 5;
		char want[32];
		secret_of(x, want);
		CHECK_OK(domain_enter(dom[x], DOMAIN_RDONLY));
		CHECK(strcmp(sec[x], want) == 0);
		struct domain_stats xs = dstat(dom[x]);
		CHECK_INT(xs.key, >=, 1);
		CHECK_INT(xs.shared, ==, 1);
		/* Every holder's domain on another key is closed to this thread;
		 * a sharer of x's key is reachable only while its holder is inside
		 * (the documented limit of sharing): once it leaves, it is closed. */
		int sharer = -1;
		for (int i = 0; i < HOLDERS; i++) {
			struct domain_stats hs = dstat(dom[i]);
			if (hs.key == xs.key) {
				CHECK_INT(hs.shared, ==, 1);
				sharer = i;
			} else {
				CHECK_CLOSED(sec[i]);
			}
		}
		CHECK_INT(sharer, >=, 0);
		release(sharer);
		struct fault f = probe(sec[sharer], 0);
		CHECK(f.hit);
		CHECK_INT(f.code, ==, SEGV_ACCERR);   /* page permissions keep them apart */
		CHECK_CLOSED(sec[NDOM - 2]);          /* a parked domain */
		CHECK_OK(domain_exit(dom[x]));
		CHECK_CLOSED(sec[x]);
		for (int i = 0; i < HOLDERS; i++) {
			release(i);
			pthread_join(th[i], NULL);
		}
		fprintf(stderr, "shared pool: %llu entries, domain %d shared key %d with domain %d\n",
		        pstat().shared_entries - shared0, x, xs.key, sharer);
		for (int i = 0; i < HOLDERS; i++)
			CHECK_CLOSED(sec[i]);
	}

	/* Keys move between domains under concurrency. */
	unsigned long long shared_before = pstat().shared_entries;
	pthread_t rt[ROAMERS], ct[2];
	for (int t = 0; t < 2; t++)
		pthread_create(&ct[t], NULL, churn, NULL);
	for (int t = 0; t < ROAMERS; t++)
		pthread_create(&rt[t], NULL, roam, (void *)(uintptr_t)(t * 7919 + 1));
	for (int t = 0; t < ROAMERS; t++)
		pthread_join(rt[t], NULL);
	churn_stop = 1;
	for (int t = 0; t < 2; t++)
		pthread_join(ct[t], NULL);
	CHECK_INT(churned, >, 0);
	ps = pstat();
	fprintf(stderr, "roam: %d threads x %d enters over %d domains, %lu isolation checks, "
	        "%lu domains created and destroyed meanwhile, %llu evictions in all, %u keys\n",
	        ROAMERS, ROAM_ROUNDS, ROAM_DOMAINS, (unsigned long)roam_checks,
	        (unsigned long)churned, ps.evictions, ps.keys_owned);
	/* Fewer threads than keys: no domain ever had to share. */
	if (on_pku())
		CHECK_INT(ps.shared_entries, ==, shared_before);

	for (int i = 0; i < NDOM; i++) {
		char want[32];
		secret_of(i, want);
		CHECK_OK(domain_enter(dom[i], DOMAIN_RDONLY));
		CHECK(strcmp(sec[i], want) == 0);
		CHECK_OK(domain_exit(dom[i]));
		domain_free(sec[i]);
		CHECK_OK(domain_destroy(dom[i]));
	}
	ps = pstat();
	CHECK_INT(ps.keys_in_use, ==, 0);
	return 0;
}
