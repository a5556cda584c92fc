/*
 * Whole-program allocation workloads, run by the benchmark driver under
 * LD_PRELOAD of each allocator in turn (none: glibc; libjemalloc;
 * libpkalloc).  Plain malloc, calloc, realloc and free only, from one or
 * more threads; not linked with pkalloc.
 *
 * Usage: wl WORKLOAD OPS [plain|capture|direct]
 *   churn1    random sizes (8 B to 64 KiB) allocated, resized and freed at
 *             random over 4096 live slots, one thread
 *   churn4    the same in 4 threads at once
 *   prodcons  2 producers hand batches of messages to 2 consumers, which
 *             free them: every free is a remote free
 *   realloc   buffers grown piece by piece with realloc, then freed
 * capture: every thread runs inside one DOMAIN_CAPTURE_MALLOC domain, so
 * its plain malloc calls allocate there; direct: the same domain through
 * domain_malloc/domain_realloc/domain_free.  Both need libpkalloc preloaded
 * (the calls are looked up at run time).
 *
 * Output: "wl: malloc from FILE" (the object malloc resolves to: the driver
 * checks the preload took effect), "wl: checksum X", which depends on the
 * work done only, never on addresses (every allocator must print the
 * same), and "wl: peak rss N kB".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The pkalloc calls capture and direct use, found when libpkalloc is preloaded. */
static void *(*p_create)(const char *, unsigned);
static int (*p_enter)(void *, int);
static int (*p_exit)(void *);
static void *(*p_malloc)(void *, size_t);
static void *(*p_calloc)(void *, size_t, size_t);
static void *(*p_realloc)(void *, void *, size_t);
static void (*p_free)(void *);
static void *(*p_domain_of)(const void *);
#define CAPTURE_MALLOC 0x4   /* DOMAIN_CAPTURE_MALLOC */
#define RDWR 2               /* DOMAIN_RDWR */

enum mode { PLAIN, CAPTURE, DIRECT };
static enum mode mode;
static void *dom;

static void die(const char *msg)
{
	fprintf(stderr, "wl: %s\n", msg);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = mode == DIRECT ? p_malloc(dom, n) : malloc(n);
	if (!p)
		die("out of memory");
	return p;
}

static void *xcalloc(size_t k, size_t n)
{
	void *p = mode == DIRECT ? p_calloc(dom, k, n) : calloc(k, n);
	if (!p)
		die("out of memory");
	return p;
}

static void *xrealloc(void *q, size_t n)
{
	void *p = mode == DIRECT ? p_realloc(dom, q, n) : realloc(q, n);
	if (!p)
		die("out of memory");
	return p;
}

static void xfree(void *p)
{
	if (mode == DIRECT)
		p_free(p);
	else
		free(p);
}

/* Every thread of the workload runs inside the domain (capture, direct). */
static void thread_in(void)
{
	if (mode != PLAIN && p_enter(dom, RDWR) != 0)
		die("domain_enter failed");
}

static void thread_out(void)
{
	if (mode != PLAIN)
		p_exit(dom);
}

static uint64_t next(uint64_t *s)
{
	/* xorshift64*: the same sequence under every allocator. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/* Mostly small, log-uniform 8 B..8 KiB; one in 64 large, up to 64 KiB. */
static size_t random_size(uint64_t *s)
{
	uint64_t r = next(s);
	if ((r & 63) == 0)
		return 16384 + (size_t)(r >> 16) % 49152;
	size_t base = (size_t)8 << ((r >> 8) % 10);
	return base + (size_t)(r >> 20) % base;
}

/* Mark a block with what only the work decides: its size and a tag. */
static void fill(unsigned char *p, size_t n, unsigned char tag)
{
	p[0] = tag;
	p[n / 2] = (unsigned char)n;
	p[n - 1] = tag;
}

static uint64_t take(const unsigned char *p, size_t n)
{
	return (uint64_t)p[0] * 3 + (uint64_t)p[n / 2] * 5 + (uint64_t)p[n - 1] * 7 + n;
}

/* ---- churn ---------------------------------------------------------------- */

enum { SLOTS = 4096 };

struct churn {
	pthread_t t;
	long ops;
	uint64_t seed, sum;
};

static void *churn(void *arg)
{
	struct churn *c = arg;
	unsigned char **slot = xcalloc(SLOTS, sizeof *slot);
	size_t *len = xcalloc(SLOTS, sizeof *len);
	uint64_t s = c->seed, sum = 0;
	thread_in();
	for (long i = 0; i < c->ops; i++) {
		uint64_t r = next(&s);
		size_t k = (size_t)(r % SLOTS), n = random_size(&s);
		unsigned char tag = (unsigned char)(r >> 32);
		if (slot[k] && (r >> 40) % 8 == 0) {
			/* Resize: the first bytes survive. */
			unsigned char first = slot[k][0];
			slot[k] = xrealloc(slot[k], n);
			if (slot[k][0] != first)
				die("realloc lost data");
			fill(slot[k], n, tag);
			len[k] = n;
			continue;
		}
		if (slot[k]) {
			sum += take(slot[k], len[k]);
			xfree(slot[k]);
		}
		if ((r >> 44) % 16 == 0) {
			slot[k] = xcalloc(1, n);
			if (slot[k][n - 1] != 0)
				die("calloc memory not zero");
		} else {
			slot[k] = xmalloc(n);
		}
		fill(slot[k], n, tag);
		len[k] = n;
	}
	for (size_t k = 0; k < SLOTS; k++)
		if (slot[k]) {
			sum += take(slot[k], len[k]);
			xfree(slot[k]);
		}
	thread_out();
	xfree(slot);
	xfree(len);
	c->sum = sum;
	return NULL;
}

static uint64_t run_churn(long ops, int threads)
{
	struct churn c[8];
	uint64_t sum = 0;
	for (int i = 0; i < threads; i++) {
		c[i].ops = ops / threads;
		c[i].seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
		if (threads > 1 && pthread_create(&c[i].t, NULL, churn, &c[i]) != 0)
			die("pthread_create failed");
	}
	if (threads == 1)
		churn(&c[0]);
	for (int i = 0; i < threads; i++) {
		if (threads > 1)
			pthread_join(c[i].t, NULL);
		sum += c[i].sum;
	}
	return sum;
}

/* ---- producer/consumer ---------------------------------------------------- */

enum { BATCH = 256, QUEUE = 16, PRODUCERS = 2, CONSUMERS = 2 };

struct batch {
	unsigned char *msg[BATCH];
	size_t len[BATCH];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t nonempty, nonfull;
	struct batch *q[QUEUE];
	unsigned head, tail, producers_left;
} pc = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
         { 0 }, 0, 0, PRODUCERS };

struct party {
	pthread_t t;
	long batches;
	uint64_t seed, sum;
};

static void *producer(void *arg)
{
	struct party *p = arg;
	uint64_t s = p->seed;
	thread_in();
	for (long b = 0; b < p->batches; b++) {
		struct batch *bt = xmalloc(sizeof *bt);
		for (int i = 0; i < BATCH; i++) {
			uint64_t r = next(&s);
			size_t n = 16 + (size_t)(r % 1009);
			bt->msg[i] = xmalloc(n);
			bt->len[i] = n;
			fill(bt->msg[i], n, (unsigned char)(r >> 32));
		}
		pthread_mutex_lock(&pc.lock);
		while (pc.tail - pc.head == QUEUE)
			pthread_cond_wait(&pc.nonfull, &pc.lock);
		pc.q[pc.tail++ % QUEUE] = bt;
		pthread_cond_signal(&pc.nonempty);
		pthread_mutex_unlock(&pc.lock);
	}
	pthread_mutex_lock(&pc.lock);
	pc.producers_left--;
	pthread_cond_broadcast(&pc.nonempty);
	pthread_mutex_unlock(&pc.lock);
	thread_out();
	return NULL;
}

static void *consumer(void *arg)
{
	struct party *p = arg;
	uint64_t sum = 0;
	for (;;) {
		pthread_mutex_lock(&pc.lock);
		while (pc.head == pc.tail && pc.producers_left)
			pthread_cond_wait(&pc.nonempty, &pc.lock);
		if (pc.head == pc.tail) {
			pthread_mutex_unlock(&pc.lock);
			break;
		}
		struct batch *bt = pc.q[pc.head++ % QUEUE];
		pthread_cond_signal(&pc.nonfull);
		pthread_mutex_unlock(&pc.lock);
		for (int i = 0; i < BATCH; i++) {
			sum += take(bt->msg[i], bt->len[i]);
			xfree(bt->msg[i]);   /* domain memory may be freed from outside */
		}
		xfree(bt);
	}
	p->sum = sum;
	return NULL;
}

static uint64_t run_prodcons(long ops)
{
	struct party prod[PRODUCERS], cons[CONSUMERS];
	uint64_t sum = 0;
	for (int i = 0; i < CONSUMERS; i++)
		if (pthread_create(&cons[i].t, NULL, consumer, &cons[i]) != 0)
			die("pthread_create failed");
	for (int i = 0; i < PRODUCERS; i++) {
		prod[i].batches = ops / BATCH / PRODUCERS + 1;
		prod[i].seed = 0x2545f4914f6cdd1dULL * (uint64_t)(i + 1);
		if (pthread_create(&prod[i].t, NULL, producer, &prod[i]) != 0)
			die("pthread_create failed");
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(prod[i].t, NULL);
	for (int i = 0; i < CONSUMERS; i++) {
		pthread_join(cons[i].t, NULL);
		sum += cons[i].sum;
	}
	return sum;
}

/* ---- realloc growth ------------------------------------------------------- */

static uint64_t run_realloc(long ops)
{
	enum { BUFS = 64 };
	unsigned char *buf[BUFS] = { 0 };
	size_t len[BUFS] = { 0 }, cap[BUFS] = { 0 };
	uint64_t s = 0x853c49e6748fea9bULL, sum = 0;
	thread_in();
	for (long i = 0; i < ops; i++) {
		uint64_t r = next(&s);
		int k = (int)(r % BUFS);
		size_t add = 1 + (size_t)(r >> 8) % 96;
		if (cap[k] && len[k] + add > cap[k] && (r >> 20) % 4 == 0) {
			/* Done growing: hand it back, start over. */
			sum += take(buf[k], len[k]);
			xfree(buf[k]);
			buf[k] = NULL;
			len[k] = cap[k] = 0;
			continue;
		}
		if (len[k] + add > cap[k]) {
			/* Grow by a quarter, as string builders do. */
			cap[k] = len[k] + add + (len[k] + add) / 4;
			if (cap[k] > 65536)
				cap[k] = len[k] + add;
			buf[k] = xrealloc(buf[k], cap[k]);
		}
		memset(buf[k] + len[k], (int)(r >> 32), add);
		len[k] += add;
		sum += buf[k][len[k] / 2];
	}
	for (int k = 0; k < BUFS; k++)
		if (buf[k]) {
			sum += take(buf[k], len[k]);
			xfree(buf[k]);
		}
	thread_out();
	return sum;
}

/* ---- main ----------------------------------------------------------------- */

#define LOOK(var, name) \
	(*(void **)&var = dlsym(RTLD_DEFAULT, name)) != NULL

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: wl churn1|churn4|prodcons|realloc OPS [plain|capture|direct]\n");
		return 2;
	}
	long ops = atol(argv[2]);
	if (argc < 4 || strcmp(argv[3], "plain") == 0)
		mode = PLAIN;
	else if (strcmp(argv[3], "capture") == 0)
		mode = CAPTURE;
	else if (strcmp(argv[3], "direct") == 0)
		mode = DIRECT;
	else
		die("mode must be plain, capture or direct");

	Dl_info at;
	if (!dladdr((void *)malloc, &at) || !at.dli_fname)
		die("dladdr(malloc) failed");
	printf("wl: malloc from %s\n", at.dli_fname);

	if (mode != PLAIN) {
		if (!(LOOK(p_create, "domain_create") && LOOK(p_enter, "domain_enter") &&
		      LOOK(p_exit, "domain_exit") && LOOK(p_malloc, "domain_malloc") &&
		      LOOK(p_calloc, "domain_calloc") && LOOK(p_realloc, "domain_realloc") &&
		      LOOK(p_free, "domain_free") && LOOK(p_domain_of, "domain_of")))
			die("capture and direct need libpkalloc preloaded");
		dom = p_create("wl", mode == CAPTURE ? CAPTURE_MALLOC : 0);
		if (!dom)
			die("domain_create failed");
		/* The allocations must really land in the domain. */
		thread_in();
		void *p = xmalloc(16);
		int in = p_domain_of(p) == dom;
		xfree(p);
		thread_out();
		if (!in)
			die("allocations do not land in the domain");
		printf("wl: allocations land in the domain (%s)\n", argv[3]);
	}

	uint64_t sum;
	if (strcmp(argv[1], "churn1") == 0)
		sum = run_churn(ops, 1);
	else if (strcmp(argv[1], "churn4") == 0)
		sum = run_churn(ops, 4);
	else if (strcmp(argv[1], "prodcons") == 0)
		sum = run_prodcons(ops);
	else if (strcmp(argv[1], "realloc") == 0)
		sum = run_realloc(ops);
	else
		die("unknown workload");
	printf("wl: checksum %016llx\n", (unsigned long long)sum);
	/* Peak RSS of this program alone (the driver's wait4 would count the
	 * driver's pages shared before exec). */
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			printf("wl: peak rss %ld kB\n", atol(line + 6));
	if (f)
		fclose(f);
	return 0;
}
