/* jemalloc's process-wide metadata mapped for domains, kept off huge pages. */
#ifndef PKALLOC_METAMAP_H
#define PKALLOC_METAMAP_H

#include "internal.h"

/* Internal: references bind within the library, not through the GOT. */
#pragma GCC visibility push(hidden)

/* Non-zero while this thread is inside a jemalloc call on a domain (an
 * access window): every anonymous mapping jemalloc makes meanwhile is
 * metadata for that domain. */
extern __thread unsigned pk_metamap_depth TLS_FAST;

#pragma GCC visibility pop

#endif
