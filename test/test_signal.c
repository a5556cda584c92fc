/*
 * Signal handlers: a handler starts with every domain closed (pku: the
 * kernel gives it the default PKRU), can enter and exit domains itself,
 * and the interrupted code keeps exactly the access it had.  On pku, where
 * enter and exit are async-signal-safe while no key must move, a signal
 * that lands in the middle of the thread's own enters and exits never
 * corrupts its open set.  (On mprotect they take a lock: not safe there.)
 */
#include "test.h"

#include <pthread.h>
#include <signal.h>

static domain_t *outer, *inner;
static char *outer_s, *inner_s;
static volatile int handler_ran;

static void on_usr1(int sig)
{
	(void)sig;
	if (on_pku())
		CHECK_DENIED(outer_s, 0);          /* interrupted code had it open */
	CHECK_OK(domain_enter(inner, DOMAIN_RDWR));
	CHECK(strcmp(inner_s, "inner") == 0);
	inner_s[0] = 'I';
	CHECK_OK(domain_exit(inner));
	CHECK_OK(domain_enter(outer, DOMAIN_RDONLY));
	CHECK(strcmp(outer_s, "outer") == 0);
	CHECK_OK(domain_exit(outer));
	handler_ran++;
}

static volatile int storm_stop;
static unsigned long storm_signals;
static void on_usr2(int sig)
{
	(void)sig;
	CHECK_OK(domain_enter(inner, DOMAIN_RDONLY));
	CHECK(inner_s[1] == 'n');
	CHECK_OK(domain_exit(inner));
	storm_signals++;
}

static void *storm(void *arg)
{
	pthread_t target = *(pthread_t *)arg;
	while (!storm_stop) {
		pthread_kill(target, SIGUSR2);
		usleep(50);
	}
	return NULL;
}

int main(void)
{
	outer = domain_create("outer", 0);
	inner = domain_create("inner", 0);
	CHECK(outer && inner);
	outer_s = domain_malloc(outer, 16);
	inner_s = domain_malloc(inner, 16);
	CHECK(outer_s && inner_s);
	CHECK_OK(domain_enter(outer, DOMAIN_RDWR));
	strcpy(outer_s, "outer");
	CHECK_OK(domain_exit(outer));
	CHECK_OK(domain_enter(inner, DOMAIN_RDWR));
	strcpy(inner_s, "inner");
	CHECK_OK(domain_exit(inner));

	signal(SIGUSR1, on_usr1);
	CHECK_OK(domain_enter(outer, DOMAIN_RDWR));
	raise(SIGUSR1);
	CHECK_INT(handler_ran, ==, 1);
	/* Back in the interrupted code: still inside outer, read-write. */
	CHECK_ALLOWED(outer_s, 1);
	outer_s[0] = 'O';
	CHECK_DENIED(inner_s, 0);
	CHECK_OK(domain_exit(outer));
	CHECK_DENIED(outer_s, 0);
	CHECK_ERR(domain_exit(outer), == -1, EPERM);   /* the handler left no entry behind */

	if (!on_pku())
		return 0;
	/* Signals landing anywhere in this thread's enter/exit loop. */
	signal(SIGUSR2, on_usr2);
	pthread_t self = pthread_self(), t;
	pthread_create(&t, NULL, storm, &self);
	for (int i = 0; i < 20000; i++) {
		CHECK_OK(domain_enter(outer, i % 3 ? DOMAIN_RDONLY : DOMAIN_RDWR));
		CHECK_OK(domain_enter(inner, DOMAIN_RDONLY));
		CHECK(outer_s[1] == 'u' && inner_s[2] == 'n');
		CHECK_OK(domain_exit(outer));
		CHECK_OK(domain_exit(inner));
		if (on_pku() && i % 64 == 0) {
			CHECK_DENIED(outer_s, 0);
			CHECK_DENIED(inner_s, 0);
		}
	}
	storm_stop = 1;
	pthread_join(t, NULL);
	fprintf(stderr, "%lu signals entered and left a domain during 20000 enter/exit rounds\n",
	        storm_signals);
	CHECK_INT(storm_signals, >, 10);
	CHECK_ERR(domain_exit(outer), == -1, EPERM);
	CHECK_ERR(domain_exit(inner), == -1, EPERM);
	return 0;
}
