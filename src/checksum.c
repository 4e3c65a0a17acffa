/*
 * checksum.c: CRC32C for callers that hold no kernel table.
 *
 * The CRC of every section and of the header is the kernel table's crc32c (src/kernels/:
 * SSE4.2 or ARMv8 CRC instructions, slicing-by-8 elsewhere; all give the same value, so
 * files are portable). Code that holds a kernel table (an index's) should call its crc32c,
 * so copse_set_kernels reaches the checksums too. This entry point serves code that holds
 * none; it resolves the CPU's best implementation once, through pthread_once.
 * That is a global, but not mutable state in the sense that matters: it is written once,
 * before any read can return (pthread_once orders the write before every caller's read, so
 * threads race on nothing), it holds a fact about the CPU that cannot change while the
 * process runs, and nothing can set it afterwards. Tests that force an implementation do it
 * through a table (copse_set_kernels) or by name (cp_crc32c_by_name), never through this.
 */
#include <pthread.h>

#include "internal.h"

static pthread_once_t best_once = PTHREAD_ONCE_INIT;
static cp_crc32c_fn best;

static void resolve(void) { best = cp_crc32c_best(); }

uint32_t cp_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&best_once, resolve);
    return best(crc, data, len);
}
