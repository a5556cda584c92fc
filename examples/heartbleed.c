/*
 * A Heartbleed-style over-read, with and without pkalloc.
 *
 * The "server" answers a heartbeat by copying as many bytes as the client
 * claims to have sent, from a request buffer of 16 bytes.  With the key in
 * the ordinary heap, the reply carries it.  With the key in a domain, the
 * reply carries only ordinary memory; and an over-read that runs into
 * domain memory dies on the guard with pkalloc's fault report.
 */
#define _GNU_SOURCE
#include <pkalloc.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char KEY[] = "AES-KEY:0123456789abcdef";

/* The bug: trusts the client's length.  (Deliberate: sanitizers, keep out.) */
__attribute__((noinline, no_sanitize_address)) static void
heartbeat(const char *request, size_t claimed, char *reply)
{
	const volatile char *from = request;
	for (size_t i = 0; i < claimed; i++)
		reply[i] = from[i];
}

static int leaked(const char *reply, size_t n)
{
	return memmem(reply, n, "AES-KEY:", 8) != NULL;
}

int main(void)
{
	char reply[4096];

	/* 1. Plain malloc: request and key are neighbours in the heap. */
	char *request = malloc(32), *key = malloc(32);
	memcpy(request, "ping", 5);
	memcpy(key, KEY, sizeof KEY);
	size_t gap = key > request ? (size_t)(key - request) : 0;
	heartbeat(request, gap + sizeof KEY, reply);
	printf("plain heap: reply of %zu bytes %s\n", gap + sizeof KEY,
	       leaked(reply, gap + sizeof KEY) ? "LEAKS the key" : "does not leak the key");
	explicit_bzero(key, sizeof KEY);
	free(key);

	/* 2. The key in a domain: it is not in the ordinary heap at all. */
	domain_t *vault = domain_create("tls-keys", 0);
	char *dkey = domain_malloc(vault, 32);
	if (!vault || !dkey) {
		perror("pkalloc");
		return 1;
	}
	domain_enter(vault, DOMAIN_RDWR);
	memcpy(dkey, KEY, sizeof KEY);
	domain_exit(vault);
	heartbeat(request, sizeof reply, reply);
	printf("key in a domain: reply of %zu bytes %s\n", sizeof reply,
	       leaked(reply, sizeof reply) ? "LEAKS the key" : "does not leak the key");

	/* 3. An over-read that walks towards the domain stops at its guard.
	 * (Ordinary memory placed right below the domain's reservation.)  If
	 * another mapping holds that page, the key moves to a new domain,
	 * placed elsewhere while the old one stays: domain_realloc moves a
	 * block between domains and wipes the old copy. */
	domain_t *spare[8];
	int nspare = 0;
	char *below;
	for (;;) {
		char *slot = (char *)((uintptr_t)dkey & ~(uintptr_t)(PKALLOC_RESERVATION - 1));
		below = mmap(slot - 4096, 4096, PROT_READ | PROT_WRITE,
		             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (below != MAP_FAILED)
			break;
		domain_t *next;
		char *moved;
		if (errno != EEXIST || nspare == 8 || !(next = domain_create("tls-keys", 0)) ||
		    !(moved = domain_realloc(next, dkey, 32))) {
			perror("placing memory below the domain");
			return 1;
		}
		spare[nspare++] = vault;
		vault = next;
		dkey = moved;
	}
	while (nspare > 0)
		domain_destroy(spare[--nspare]);
	memcpy(below + 4096 - 16, "ping", 5);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		pkalloc_install_fault_handler();
		static char big[1 << 16];
		heartbeat(below + 4096 - 16, sizeof big, big);
		printf("over-read returned: %s\n", leaked(big, sizeof big) ? "LEAK" : "no key");
		return 0;
	}
	int st;
	waitpid(pid, &st, 0);
	printf("over-read into the domain: %s\n",
	       WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV ? "killed by SIGSEGV" : "NOT stopped");
	domain_free(dkey);
	domain_destroy(vault);
	free(request);
	return 0;
}
