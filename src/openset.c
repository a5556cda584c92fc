/*
 * The list of threads whose open sets can hold pins, the scan for pins, and
 * membarrier (openset.h).
 */
#include "internal.h"
#include "openset.h"
#include "fatal.h"
#include "settings.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

int pk_openset_entry_access(const struct open_entry *e)
{
	unsigned depth = ENTRY_DEPTH(e->st);
	if (depth == 0)
		return ACCESS_NONE;
	uint64_t live = (UINT64_C(1) << depth) - 1;
	return (e->st & live) ? DOMAIN_RDWR : DOMAIN_RDONLY;
}

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_set *threads;

void pk_openset_add(struct open_set *s)
{
	pthread_mutex_lock(&threads_lock);
	s->next = threads;
	threads = s;
	pthread_mutex_unlock(&threads_lock);
}

void pk_openset_remove(struct open_set *s)
{
	pthread_mutex_lock(&threads_lock);
	for (struct open_set **pp = &threads; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	pthread_mutex_unlock(&threads_lock);
}

void pk_openset_fork_child(struct open_set *self)
{
	pthread_mutex_init(&threads_lock, NULL);
	threads = self->registered ? self : NULL;
	if (threads)
		self->next = NULL;
}

int pk_openset_anyone_inside(const struct domain *d)
{
	int found = 0;
	pthread_mutex_lock(&threads_lock);
	for (struct open_set *s = threads; s && !found; s = s->next)
		for (unsigned l = 0; l < OPEN_LEVELS && !found; l++) {
			/* Downwards: an entry only ever moves to a lower slot
			 * (remove_entry), and its old slot is reused only after. */
			unsigned n = __atomic_load_n(&s->lv[l].n, __ATOMIC_RELAXED);
			for (unsigned i = n < PKALLOC_MAX_OPEN ? n : PKALLOC_MAX_OPEN; i-- > 0;)
				if (__atomic_load_n(&s->lv[l].e[i].d, __ATOMIC_RELAXED) == d) {
					found = 1;
					break;
				}
		}
	pthread_mutex_unlock(&threads_lock);
	return found;
}

int pk_openset_membarrier_init(void)
{
	return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

void pk_openset_membarrier(void)
{
	if (!pk_cfg->membarrier)
		atomic_thread_fence(memory_order_seq_cst);
	else if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
		pk_fatal("membarrier", NULL, 0, "failed after it was registered: pins cannot be seen");
}
