/*
 * The two user-mode instructions of x86 protection keys.  PKRU holds two
 * bits per key: AD (access disable) at 2k and WD (write disable) at 2k+1.
 * Encoded as bytes so that any assembler accepts them.
 */
#ifndef PKALLOC_PKRU_H
#define PKALLOC_PKRU_H

#include <stdint.h>

#define PKRU_AD(k)   (UINT32_C(1) << (2 * (k)))
#define PKRU_WD(k)   (UINT32_C(2) << (2 * (k)))
#define PKRU_BITS(k) (PKRU_AD(k) | PKRU_WD(k))

static inline uint32_t rdpkru(void)
{
	uint32_t eax, edx;
	__asm__ volatile(".byte 0x0f, 0x01, 0xee" : "=a"(eax), "=d"(edx) : "c"(0));
	return eax;
}

static inline void wrpkru(uint32_t pkru)
{
	/* "memory": no load or store of protected data may move across it. */
	__asm__ volatile(".byte 0x0f, 0x01, 0xef" : : "a"(pkru), "c"(0), "d"(0) : "memory");
}

#endif
