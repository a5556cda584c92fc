/*
 * The fault report: a SIGSEGV handler that turns a fault on domain memory
 * into one line on stderr, then lets the fault kill the process as it
 * would have (the previous disposition is put back and the faulting
 * instruction runs again), so core dumps and crash tooling still work.
 * Faults elsewhere go to the previous handler untouched.
 *
 * Only async-signal-safe work here: no stdio, no locks; the line is built
 * by hand and written with write(2).
 */
#define _GNU_SOURCE
#include "internal.h"
#include "protect.h"
#include "reserve.h"
#include "enter.h"
#include "settings.h"
#include "fatal.h"
#include "init.h"
#include "keys.h"
#include "registry.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static struct sigaction previous;
static _Atomic int installed;

static void report(struct domain *d, const siginfo_t *si, const ucontext_t *uc)
{
	const char *addr = si->si_addr;
	int is_write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
	char *top = atomic_load_explicit(&d->top, memory_order_relaxed);
	struct line l = { .n = 0 };

	pk_line_put(&l, "pkalloc: thread ");
	pk_line_put_num(&l, (unsigned long)syscall(SYS_gettid), 10);
	pk_line_put(&l, is_write ? " wrote " : " read ");
	if (addr < d->lo || addr >= d->hi) {
		pk_line_put(&l, "the guard of domain \"");
	} else if (addr >= top) {
		pk_line_put(&l, "unused space of domain \"");
	} else {
		pk_line_put(&l, "domain \"");
	}
	pk_line_put(&l, d->name);
	pk_line_put(&l, "\" at ");
	pk_line_put_num(&l, (unsigned long)addr, 16);
	if (addr >= d->lo && addr < top) {
		int access = pk_enter_access_of(d);
		pk_line_put(&l, access == ACCESS_NONE ? ", not entered" :
		        access == DOMAIN_RDONLY && is_write ? ", entered read-only" : ", entered");
		/* The domain is the one the address names, never the one si_pkey
		 * names: a parked domain's pages keep the key they last had, the
		 * kernel checks it before the page permissions, and that key may
		 * belong to another domain by now. */
		int key = atomic_load_explicit(&d->key, memory_order_relaxed);
		if (pk_cfg->backend && pk_cfg->backend->per_thread &&
		    (key < 0 || (si->si_code == SEGV_PKUERR && si->si_pkey != (unsigned)key))) {
			pk_line_put(&l, " (parked)");
		} else if (si->si_code == SEGV_PKUERR) {
			pk_line_put(&l, " (pkey ");
			pk_line_put_num(&l, (unsigned long)key, 10);
			pk_line_put(&l, ")");
		} else {
			pk_line_put(&l, " (page permissions)");
		}
	}
	pk_line_write(&l);
}

static void on_fault(int sig, siginfo_t *si, void *ucv)
{
	int saved = errno;
	int slot = reserve_slot_of(si->si_addr);
	if (slot >= 0 && si->si_code != SEGV_MAPERR) {
		report(&pk_registry[slot], si, ucv);
		atomic_fetch_add(&pk_counters.faults, 1);
		/* Let it kill the process: the instruction faults again. */
		sigaction(SIGSEGV, &previous, NULL);
		atomic_store(&installed, 0);
	} else if (previous.sa_flags & SA_SIGINFO) {
		previous.sa_sigaction(sig, si, ucv);
	} else if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
		sigaction(SIGSEGV, &previous, NULL);
		atomic_store(&installed, 0);
	} else {
		previous.sa_handler(sig);
	}
	errno = saved;
}

int pkalloc_install_fault_handler(void)
{
	pk_init();
	if (atomic_exchange(&installed, 1))
		return 0;
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &previous) != 0) {
		atomic_store(&installed, 0);
		return -1;
	}
	return 0;
}

__attribute__((constructor)) static void fault_report_from_env(void)
{
	const char *v = secure_getenv("PKALLOC_FAULT_REPORT");
	if (v && strcmp(v, "1") == 0)
		pkalloc_install_fault_handler();
}
