/*
 * libcrypto's allocation redirect (see redirect.h): finds the loaded
 * libcrypto by the address of CRYPTO_malloc, walks its dynamic
 * relocations for the slots of malloc, calloc, realloc and free, and
 * writes the wrappers' addresses there, lifting RELRO's read-only
 * protection for the length of the write.  The wrappers also wipe the
 * plain blocks libcrypto frees.  Exports redirect_install and
 * redirect_capture.
 */
#define _GNU_SOURCE
#include "redirect.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* What libcrypto called before: the definitions its imports bind to. */
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static size_t (*real_usable_size)(void *);

static __thread domain_t *capture;

domain_t *redirect_capture(domain_t *d)
{
	domain_t *old = capture;
	capture = d;
	return old;
}

static void *w_malloc(size_t n)
{
	domain_t *d = capture;
	return d ? domain_malloc(d, n) : real_malloc(n);
}

static void *w_calloc(size_t m, size_t n)
{
	domain_t *d = capture;
	return d ? domain_calloc(d, m, n) : real_calloc(m, n);
}

/*
 * libcrypto's plain blocks are wiped when it frees them (and when realloc
 * moves them): it frees most of its intermediate buffers without clearing
 * them, and a key read from a file passes through several (the PEM's DER,
 * the store's object data, the decoders' input buffers) before it reaches
 * the domain.
 */
static void wipe_plain(void *p)
{
	if (real_usable_size)
		explicit_bzero(p, real_usable_size(p));
}

/* A domain block stays in its domain; an ordinary block stays ordinary
 * even while capturing, so that a global table libcrypto grows during an
 * operation is not pulled out of reach. */
static void *w_realloc(void *p, size_t n)
{
	domain_t *pd = p ? domain_of(p) : NULL, *d = capture;
	if (pd)
		return domain_realloc(pd, p, n);
	if (!p)
		return d ? domain_malloc(d, n) : real_malloc(n);
	if (!real_usable_size || n == 0)
		return real_realloc(p, n);
	size_t old = real_usable_size(p);
	if (n <= old)
		return p;
	void *q = real_malloc(n);
	if (q) {
		memcpy(q, p, old);
		explicit_bzero(p, old);
		real_free(p);
	}
	return q;
}

static void w_free(void *p)
{
	if (p && domain_of(p)) {
		domain_free(p);
	} else if (p) {
		wipe_plain(p);
		real_free(p);
	}
}

struct target {
	const char *name;
	void *wrapper;
};

/* free first: it takes what either side allocated, so any prefix of the
 * patching is consistent. */
static const struct target targets[] = {
	{ "free", (void *)w_free }, { "realloc", (void *)w_realloc },
	{ "calloc", (void *)w_calloc }, { "malloc", (void *)w_malloc },
};

struct found {
	uintptr_t fn;              /* an address inside libcrypto */
	int hit;
	ElfW(Addr) base;
	const ElfW(Phdr) *phdr;
	int phnum;
};

static int find_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct found *f = arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && f->fn >= lo && f->fn < lo + ph->p_memsz) {
			f->hit = 1;
			f->base = info->dlpi_addr;
			f->phdr = info->dlpi_phdr;
			f->phnum = info->dlpi_phnum;
			return 1;
		}
	}
	return 0;
}

/* glibc relocates the dynamic section's pointers in place; be safe both ways. */
static uintptr_t dyn_ptr(ElfW(Addr) base, ElfW(Addr) v)
{
	return v < base ? base + v : v;
}

static int write_slot(void **slot, void *value, uintptr_t relro_lo, uintptr_t relro_hi)
{
	uintptr_t a = (uintptr_t)slot;
	if (a >= relro_lo && a < relro_hi) {
		long pg = sysconf(_SC_PAGESIZE);
		void *page = (void *)(a & ~(uintptr_t)(pg - 1));
		if (mprotect(page, (size_t)pg, PROT_READ | PROT_WRITE) != 0)
			return -1;
		__atomic_store_n(slot, value, __ATOMIC_RELEASE);
		return mprotect(page, (size_t)pg, PROT_READ);
	}
	__atomic_store_n(slot, value, __ATOMIC_RELEASE);
	return 0;
}

static int patch_relocs(const ElfW(Rela) *r, size_t n, ElfW(Addr) base, const ElfW(Sym) *symtab,
                        const char *strtab, uintptr_t relro_lo, uintptr_t relro_hi,
                        size_t t, int *patched)
{
	for (size_t i = 0; r && i < n; i++) {
		unsigned long type = ELF64_R_TYPE(r[i].r_info);
		if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
			continue;
		const char *name = strtab + symtab[ELF64_R_SYM(r[i].r_info)].st_name;
		if (strcmp(name, targets[t].name) != 0)
			continue;
		if (write_slot((void **)(base + r[i].r_offset), targets[t].wrapper, relro_lo, relro_hi) != 0)
			return -1;
		patched[t]++;
	}
	return 0;
}

static int install_once(void)
{
	real_malloc = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "malloc");
	real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "calloc");
	real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "realloc");
	real_free = (void (*)(void *))dlsym(RTLD_DEFAULT, "free");
	/* Whichever malloc is the process's (pkalloc's exports its own). */
	real_usable_size = (size_t (*)(void *))dlsym(RTLD_DEFAULT, "malloc_usable_size");
	if (!real_malloc || !real_calloc || !real_realloc || !real_free) {
		fprintf(stderr, "pkalloc provider: the C library's malloc was not found\n");
		return -1;
	}
	struct found f = { .fn = (uintptr_t)CRYPTO_malloc };
	dl_iterate_phdr(find_object, &f);
	if (!f.hit) {
		fprintf(stderr, "pkalloc provider: libcrypto's object was not found\n");
		return -1;
	}
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t relro_lo = 0, relro_hi = 0;
	for (int i = 0; i < f.phnum; i++) {
		if (f.phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(f.base + f.phdr[i].p_vaddr);
		if (f.phdr[i].p_type == PT_GNU_RELRO) {
			relro_lo = f.base + f.phdr[i].p_vaddr;
			relro_hi = relro_lo + f.phdr[i].p_memsz;
		}
	}
	if (!dyn)
		return -1;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const ElfW(Rela) *rela = NULL, *jmprel = NULL;
	size_t relasz = 0, pltsz = 0;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		switch (dyn->d_tag) {
		case DT_SYMTAB: symtab = (const ElfW(Sym) *)dyn_ptr(f.base, dyn->d_un.d_ptr); break;
		case DT_STRTAB: strtab = (const char *)dyn_ptr(f.base, dyn->d_un.d_ptr); break;
		case DT_RELA: rela = (const ElfW(Rela) *)dyn_ptr(f.base, dyn->d_un.d_ptr); break;
		case DT_RELASZ: relasz = dyn->d_un.d_val; break;
		case DT_JMPREL: jmprel = (const ElfW(Rela) *)dyn_ptr(f.base, dyn->d_un.d_ptr); break;
		case DT_PLTRELSZ: pltsz = dyn->d_un.d_val; break;
		}
	}
	if (!symtab || !strtab)
		return -1;
	int patched[4] = { 0 };
	for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
		if (patch_relocs(rela, relasz / sizeof *rela, f.base, symtab, strtab, relro_lo, relro_hi, t, patched) ||
		    patch_relocs(jmprel, pltsz / sizeof *jmprel, f.base, symtab, strtab, relro_lo, relro_hi, t, patched)) {
			perror("pkalloc provider: mprotect of libcrypto's relocations");
			return -1;
		}
	}
	/* malloc and free at least, or libcrypto would free what it did not get. */
	if (!patched[0] || !patched[3]) {
		fprintf(stderr, "pkalloc provider: libcrypto imports no malloc or free\n");
		return -1;
	}
	return 0;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int installed = -1;

static void install(void)
{
	installed = install_once();
}

int redirect_install(void)
{
	pthread_once(&once, install);
	return installed;
}
