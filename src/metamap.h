/* jemalloc's process-wide metadata mapped for domains, kept off huge pages. */
#ifndef PKALLOC_METAMAP_H
#define PKALLOC_METAMAP_H

#include "internal.h"

/* Non-zero while this thread is inside a jemalloc call on a domain (an
 * access window): every anonymous mapping jemalloc makes meanwhile is
 * metadata for that domain. */
extern __thread unsigned pk_metamap_depth TLS_FAST;

#endif
