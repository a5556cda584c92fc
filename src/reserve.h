/*
 * Reservations: each domain owns one PKALLOC_RESERVATION-byte range of
 * address space aligned to its size, so the domain that owns any address is
 * found by one shift and one table load.
 */
#ifndef PKALLOC_RESERVE_H
#define PKALLOC_RESERVE_H

struct domain;

int reserve_create(struct domain *d, unsigned slot) __attribute__((visibility("hidden")));
void reserve_destroy(struct domain *d) __attribute__((visibility("hidden")));
/* Registry slot whose reservation holds p, or -1. */
int reserve_slot_of(const void *p) __attribute__((visibility("hidden")));

#endif
