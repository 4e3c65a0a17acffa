/*
 * dispatch.c: the one place that asks the CPU what it can do. The answer is copied into each
 * index's kernel table at creation, so queries call through a pointer and never re-check.
 */
#include <string.h>

#include "kernels.h"

static const cp_kernels scalar_set = {"scalar", cp_dot_scalar, cp_l2sq_scalar, cp_l1_scalar,
                                      cp_hamming_scalar, cp_blend_scalar};
#if defined(__x86_64__) || defined(_M_X64)
static const cp_kernels avx2_set = {"avx2", cp_dot_avx2, cp_l2sq_avx2, cp_l1_avx2,
                                    cp_hamming_avx2, cp_blend_avx2};
static const cp_kernels avx512_set = {"avx512", cp_dot_avx512, cp_l2sq_avx512, cp_l1_avx512,
                                      cp_hamming_avx512, cp_blend_avx512};

static int has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("popcnt");
}

static int has_avx512(void)
{
    __builtin_cpu_init();
    return has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vpopcntdq");
}
#endif

int cp_kernels_by_name(const char *name, cp_kernels *k)
{
    if (!name)
        return 0;
    if (strcmp(name, "scalar") == 0) {
        *k = scalar_set;
        return 1;
    }
#if defined(__x86_64__) || defined(_M_X64)
    if (strcmp(name, "avx2") == 0 && has_avx2()) {
        *k = avx2_set;
        return 1;
    }
    if (strcmp(name, "avx512") == 0 && has_avx512()) {
        *k = avx512_set;
        return 1;
    }
#endif
    return 0;
}

void cp_kernels_best(cp_kernels *k)
{
    if (!cp_kernels_by_name("avx512", k) && !cp_kernels_by_name("avx2", k))
        *k = scalar_set;
}
