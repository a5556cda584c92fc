/*
 * pkalloc demo: keep a secret in a domain, use it inside, and watch a read
 * from outside the domain fault.
 */
#define _GNU_SOURCE
#include <pkalloc.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	char line[128];
	int n = snprintf(line, sizeof line,
	                 "outside read faulted: SIGSEGV at %p, si_code %s, pkey %d\n",
	                 si->si_addr,
	                 si->si_code == SEGV_PKUERR ? "SEGV_PKUERR" :
	                 si->si_code == SEGV_ACCERR ? "SEGV_ACCERR" : "other",
	                 si->si_code == SEGV_PKUERR ? (int)si->si_pkey : -1);
	if (write(STDOUT_FILENO, line, (size_t)n) < 0)
		_exit(2);
	_exit(0);
}

int main(void)
{
	const char secret[] = "correct horse battery staple";

	printf("pkalloc demo: backend %s\n", pkalloc_backend());
	domain_t *vault = domain_create("demo-secrets", 0);
	if (!vault) {
		perror("domain_create");
		return 1;
	}
	char *key = domain_malloc(vault, sizeof secret);
	if (!key) {
		perror("domain_malloc");
		return 1;
	}

	domain_enter(vault, DOMAIN_RDWR);
	memcpy(key, secret, sizeof secret);
	domain_exit(vault);
	printf("secret stored in domain \"%s\" at %p\n", domain_name(vault), (void *)key);

	domain_enter(vault, DOMAIN_RDONLY);
	printf("inside the domain: read \"%s\"\n", key);
	domain_exit(vault);

	printf("outside the domain: reading it again...\n");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
		sigaction(SIGSEGV, &sa, NULL);
		printf("outside read succeeded: \"%s\" LEAKED\n", *(volatile char **)&key);
		return 1;
	}
	int st;
	waitpid(pid, &st, 0);
	domain_free(key);
	domain_destroy(vault);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
