/*
 * alloc.c: every allocation goes through these, so sizes that come from callers or files are
 * checked for overflow in one place.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void *cp_malloc(size_t size) { return malloc(size ? size : 1); }

void *cp_calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }

void *cp_mallocarray(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return cp_malloc(n * size);
}

void *cp_reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
    return realloc(p, bytes ? bytes : 1);
}

void *cp_aligned_alloc(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, CP_ALIGN, size ? size : 1) != 0)
        return NULL;
    memset(p, 0, size);
    return p;
}

void cp_free(void *p) { free(p); }

int cp_mul_add(uint64_t a, uint64_t b, uint64_t c, uint64_t *out)
{
    uint64_t m;
    if (__builtin_mul_overflow(a, b, &m) || __builtin_add_overflow(m, c, out))
        return 0;
    return 1;
}
