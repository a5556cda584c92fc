/*
 * One domain per tenant: each worker thread keeps its tenant's key in its
 * own domain and uses it only inside.  A worker never reaches another
 * tenant's key (on pku: per thread, even while that tenant's worker is
 * inside its own domain).
 */
#define _GNU_SOURCE
#include <pkalloc.h>

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

enum { TENANTS = 4, ROUNDS = 1000 };

struct tenant {
	domain_t *dom;
	unsigned char *key;
	unsigned long sum;
	int reached_other;
};

static struct tenant t[TENANTS];
static pthread_barrier_t all_in;
static __thread sigjmp_buf jump;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(jump, 1);
}

static void *worker(void *arg)
{
	struct tenant *me = arg;
	int other = (int)(me - t + 1) % TENANTS;
	domain_enter(me->dom, DOMAIN_RDONLY);
	pthread_barrier_wait(&all_in);            /* everyone is inside now */
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < 32; i++)
			me->sum += me->key[i];            /* "use" the key */
	/* Try the neighbour's key: it must fault (pku).  siglongjmp skips the
	 * kernel's PKRU restore; the next domain_exit puts it right. */
	if (sigsetjmp(jump, 1) == 0) {
		volatile unsigned char c = t[other].key[0];
		(void)c;
		me->reached_other = 1;
	}
	domain_exit(me->dom);
	return NULL;
}

int main(void)
{
	printf("tenants: backend %s\n", pkalloc_backend());
	for (int i = 0; i < TENANTS; i++) {
		char name[16];
		snprintf(name, sizeof name, "tenant-%d", i);
		t[i].dom = domain_create(name, 0);
		t[i].key = domain_malloc(t[i].dom, 32);
		if (!t[i].dom || !t[i].key) {
			perror("pkalloc");
			return 1;
		}
		domain_enter(t[i].dom, DOMAIN_RDWR);
		memset(t[i].key, i + 1, 32);
		domain_exit(t[i].dom);
	}
	signal(SIGSEGV, on_segv);
	pthread_barrier_init(&all_in, NULL, TENANTS);
	pthread_t th[TENANTS];
	for (int i = 0; i < TENANTS; i++)
		pthread_create(&th[i], NULL, worker, &t[i]);
	int isolated = 0;
	for (int i = 0; i < TENANTS; i++) {
		pthread_join(th[i], NULL);
		printf("tenant-%d: checksum %lu, neighbour's key %s\n", i, t[i].sum,
		       t[i].reached_other ? "reachable" : "out of reach");
		isolated += !t[i].reached_other;
		domain_free(t[i].key);
		domain_destroy(t[i].dom);
	}
	printf("tenants isolated: %d of %d\n", isolated, TENANTS);
	return 0;
}
