/*
 * alloc.c: every allocation goes through these, so sizes that come from callers or files are
 * checked for overflow in one place, and an application can route the library's memory
 * through its own allocator (copse_set_allocator).
 *
 * The allocator is process configuration, like sqlite3_config(SQLITE_CONFIG_MALLOC): set
 * before the first handle exists and fixed from then on, so reading it needs no lock. It is
 * the library's only global state; rejected alternative: an allocator per handle, which every
 * internal allocation (worker threads, scratches, temporary names) would have to carry.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void *libc_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void *libc_realloc(void *ctx, void *p, size_t size)
{
    (void)ctx;
    return realloc(p, size);
}

static void libc_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static copse_allocator allocator = {libc_malloc, libc_realloc, libc_free, NULL};
static atomic_int allocator_fixed;

int copse_set_allocator(const copse_allocator *a)
{
    if (atomic_load(&allocator_fixed))
        return COPSE_ERR_STATE;
    if (a && (!a->malloc || !a->realloc || !a->free))
        return COPSE_ERR_ARG;
    allocator = a ? *a : (copse_allocator){libc_malloc, libc_realloc, libc_free, NULL};
    return COPSE_OK;
}

void cp_allocator_fix(void) { atomic_store(&allocator_fixed, 1); }

void *cp_malloc(size_t size) { return allocator.malloc(allocator.ctx, size ? size : 1); }

void *cp_calloc(size_t n, size_t size)
{
    void *p = cp_mallocarray(n ? n : 1, size ? size : 1);
    if (p)
        memset(p, 0, (n ? n : 1) * (size ? size : 1));
    return p;
}

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
    return allocator.realloc(allocator.ctx, p, bytes ? bytes : 1);
}

int cp_grow(void **p, uint64_t *cap, uint64_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    uint64_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > UINT64_MAX / 2)
            return 0;
        c *= 2;
    }
    void *q = cp_reallocarray(*p, c, elem);
    if (!q)
        return 0;
    *p = q;
    *cap = c;
    return 1;
}

void cp_free(void *p)
{
    if (p)
        allocator.free(allocator.ctx, p);
}

int cp_mul_add(uint64_t a, uint64_t b, uint64_t c, uint64_t *out)
{
    uint64_t m;
    if (__builtin_mul_overflow(a, b, &m) || __builtin_add_overflow(m, c, out))
        return 0;
    return 1;
}
