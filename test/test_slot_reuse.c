/*
 * Records are reused while stale handles are in use: threads hammer
 * handles of domains that the main thread destroys and creates again, past
 * the wrap of the 4096 records, and a handle never acts on the domain that
 * took its record (an enter holds its own domain, an allocation lands in
 * its own domain, a destroy of a stale handle fails with EINVAL), while
 * the pin counts of the new domains stay whole (each can be entered and
 * destroyed afterwards).
 */
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

enum { WORKERS = 4, LIVE = 8, RECENT = 64, KEEP = 16, MAX_FILL = 4096, FREE_RECORDS = 4 + LIVE };

static domain_t *_Atomic recent[RECENT];     /* live or destroyed lately */
static domain_t *_Atomic grave[RECENT];      /* destroyed for sure */
static _Atomic unsigned long begun, done;    /* destroys by the main thread */
static _Atomic int stop;
static _Atomic unsigned long entered, allocated, refused;

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg, ops = 0;
	while (!atomic_load(&stop)) {
		/* valgrind runs one thread at a time, and would leave it to
		 * this loop for minutes on end. */
		if (under_valgrind() && ++ops % 16 == 0)
			sched_yield();
		domain_t *h = atomic_load(&recent[rnd(&seed) % RECENT]);
		domain_t *dead = atomic_load(&grave[rnd(&seed) % RECENT]);
		if (!h)
			continue;
		switch (rnd(&seed) % 3) {
		case 0:
			/* Inside, h is pinned: it must still be h's own domain. */
			if (domain_enter(h, DOMAIN_RDONLY) == 0) {
				if (!domain_name(h))
					FAIL("entered through handle %p, but it is not live while inside", (void *)h);
				CHECK_OK(domain_exit(h));
				entered++;
			} else if (errno != EINVAL) {
				FAIL("domain_enter: %s", strerror(errno));
			} else {
				refused++;
			}
			break;
		case 1: {
			/* A block from h is in h's domain, unless a destroy was
			 * under way or began since (h's) and enough came after it
			 * for its range to be taken again (more than KEEP wait,
			 * pkalloc(3)). */
			unsigned long before = atomic_load(&done);
			char *p = domain_malloc(h, 16);
			if (!p) {
				if (errno != EINVAL)
					FAIL("domain_malloc: %s", strerror(errno));
				refused++;
				break;
			}
			domain_t *o = domain_of(p);
			unsigned long since = atomic_load(&begun) - before;
			if (o != h && (since == 0 || (o != NULL && since <= KEEP)))
				FAIL("domain_malloc(%p) gave a block of domain %p (%lu destroys meanwhile)",
				     (void *)h, (void *)o, since);
			allocated++;     /* left to its domain's destroy */
			break;
		}
		case 2:
			if (dead) {
				CHECK_ERR(domain_destroy(dead), == -1, EINVAL);
				CHECK_ERR(domain_enter(dead, DOMAIN_RDWR), == -1, EINVAL);
			}
			break;
		}
	}
	return NULL;
}

static void destroy_live(domain_t *h)
{
	/* Workers may be inside for a moment (or preempted there): EBUSY
	 * passes for up to 20 s; EINVAL is a broken pin count or a stale
	 * destroy that took this domain. */
	for (int tries = 0;; tries++) {
		if (domain_destroy(h) == 0)
			return;
		if (errno != EBUSY || tries == 200000)
			FAIL("domain_destroy(%p) of a live domain: %s", (void *)h, strerror(errno));
		if (tries < 100)
			sched_yield();
		else
			nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
	}
}

static domain_t *filler[MAX_FILL];

int main(void)
{
	/* Fill the registry (jemalloc runs out of arenas a little before
	 * pkalloc's 4096 records are used: the wrap is passed then), then
	 * churn with few records free, so that a destroyed domain's record
	 * comes back within a few creates, while handles of it are in use. */
	int nfill = 0;
	while (nfill < (under_valgrind() ? 0 : MAX_FILL) && (filler[nfill] = domain_create("filler", 0)))
		nfill++;
	if (nfill && errno != ENOSPC)
		FAIL("domain_create of filler #%d: %s", nfill, strerror(errno));
	for (int i = 0; i < FREE_RECORDS && nfill > 0; i++)
		CHECK_OK(domain_destroy(filler[--nfill]));
	int cycles = vg_scaled(2000);
	domain_t *live[LIVE] = { 0 };
	pthread_t t[WORKERS];
	/* valgrind runs one thread at a time: one worker is enough there. */
	int workers = under_valgrind() ? 1 : WORKERS;
	for (int i = 0; i < workers; i++)
		CHECK_INT(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)), ==, 0);

	for (int c = 0; c < cycles; c++) {
		int i = c % LIVE;
		if (live[i]) {
			begun++;
			destroy_live(live[i]);
			done++;
			atomic_store(&grave[c % RECENT], live[i]);
		}
		live[i] = domain_create("reuse", 0);
		if (!live[i])
			FAIL("domain_create #%d: %s", c, strerror(errno));
		atomic_store(&recent[c % RECENT], live[i]);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < workers; i++)
		pthread_join(t[i], NULL);

	/* The survivors' counts are whole: each enters and goes. */
	for (int i = 0; i < LIVE; i++) {
		CHECK_OK(domain_enter(live[i], DOMAIN_RDWR));
		CHECK_OK(domain_exit(live[i]));
		CHECK_OK(domain_destroy(live[i]));
	}
	while (nfill > 0)
		CHECK_OK(domain_destroy(filler[--nfill]));
	fprintf(stderr, "%d cycles: %lu enters, %lu blocks, %lu refused\n", cycles,
	        (unsigned long)entered, (unsigned long)allocated, (unsigned long)refused);
	return 0;
}
