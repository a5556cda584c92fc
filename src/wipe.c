/*
 * pkalloc_wipe_stack: zero the calling thread's stack below the caller.
 *
 * Capture keeps what a library allocates in the domain, but not what it
 * leaves in its stack frames: a cipher's round keys, a printf work buffer
 * with the secret it formatted.  Those bytes stay below the stack pointer
 * until later calls happen to overwrite them.  This is libgcrypt's "stack
 * burning": the caller, back from such a library, has the stack below it
 * claimed and zeroed.
 *
 * In assembly, so that no byte of the range is skipped: a C function would
 * keep its own locals (and, for alloca, alignment padding) in the range,
 * and a compiler may drop stores to memory that is never read again.  The
 * range is claimed a page at a time, top down, moving the stack pointer
 * first: a length past the end of the stack meets the guard page at once,
 * as deep recursion would, and never skips over it into another mapping.
 * Nothing is called, so it is async-signal-safe.
 */
#include "internal.h"

#if !defined(__x86_64__)
#error "pkalloc_wipe_stack is written for x86-64"
#endif

#ifdef __CET__
#define WIPE_ENDBR "endbr64\n\t"
#else
#define WIPE_ENDBR ""
#endif

/* void pkalloc_wipe_stack(size_t len): len in %rdi. */
__asm__(
	"\t.text\n"
	"\t.globl pkalloc_wipe_stack\n"
	"\t.type pkalloc_wipe_stack, @function\n"
	"\t.p2align 4\n"
	"pkalloc_wipe_stack:\n"
	"\t.cfi_startproc\n\t"
	WIPE_ENDBR
	"push %rbp\n"
	"\t.cfi_def_cfa_offset 16\n"
	"\t.cfi_offset %rbp, -16\n"
	"\tmov %rsp, %rbp\n"
	"\t.cfi_def_cfa_register %rbp\n"
	"\tmov %rdi, %rdx\n"              /* bytes left */
	"\txor %eax, %eax\n"              /* %al: the byte stored */
	"1:\ttest %rdx, %rdx\n"
	"\tjz 2f\n"
	"\tmov $4096, %rcx\n"
	"\tcmp %rcx, %rdx\n"
	"\tcmovb %rdx, %rcx\n"            /* this step: at most a page */
	"\tsub %rcx, %rsp\n"              /* claimed, then written */
	"\tsub %rcx, %rdx\n"
	"\tmov %rsp, %rdi\n"
	"\trep stosb\n"                   /* [%rsp, %rsp + step) = 0 */
	"\tjmp 1b\n"
	"2:\tmov %rbp, %rsp\n"
	"\tpop %rbp\n"
	"\t.cfi_def_cfa %rsp, 8\n"
	"\tret\n"
	"\t.cfi_endproc\n"
	"\t.size pkalloc_wipe_stack, .-pkalloc_wipe_stack\n");
