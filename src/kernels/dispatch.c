/*
 * dispatch.c: the one place that asks the CPU what it can do. The answer is copied into each
 * index's kernel table at creation, so queries and checksums call through a pointer and never
 * re-check.
 */
#include <string.h>

#include "kernels.h"

#if CP_KERNELS_ARM && defined(__linux__)
#include <sys/auxv.h>
#endif
#if CP_KERNELS_X86
#include <cpuid.h>
#endif

static const cp_kernels scalar_set = {"scalar", cp_dot_scalar, cp_l2sq_scalar, cp_l1_scalar,
                                      cp_hamming_scalar, cp_l2u8_scalar, cp_blend_scalar, cp_crc32c_slice8,
    cp_dot_f16_scalar, cp_l2sq_f16_scalar, cp_l1_f16_scalar, cp_dot_u8_scalar, cp_l2sq_u8_scalar,
    cp_l1_u8_scalar};

/* The vector sets below take their CRC from cp_crc32c_best when they are picked. */
#if CP_KERNELS_X86
static const cp_kernels avx2_set = {"avx2", cp_dot_avx2, cp_l2sq_avx2, cp_l1_avx2,
                                    cp_hamming_avx2, cp_l2u8_avx2, cp_blend_avx2, NULL,
    cp_dot_f16_avx2, cp_l2sq_f16_avx2, cp_l1_f16_avx2, cp_dot_u8_avx2, cp_l2sq_u8_avx2,
    cp_l1_u8_avx2};
static const cp_kernels avx512_set = {"avx512", cp_dot_avx512, cp_l2sq_avx512, cp_l1_avx512,
                                      cp_hamming_avx512, cp_l2u8_avx512, cp_blend_avx512, NULL,
    cp_dot_f16_avx512, cp_l2sq_f16_avx512, cp_l1_f16_avx512, cp_dot_u8_avx512, cp_l2sq_u8_avx512,
    cp_l1_u8_avx512};

/* F16C (the float16 code kernels) straight from CPUID leaf 1: clang 14's
 * __builtin_cpu_supports does not know the name. */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

static int has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("popcnt") && has_f16c();
}

static int has_avx512(void)
{
    __builtin_cpu_init();
    return has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vpopcntdq");
}

static int has_crc(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
}
#endif

#if CP_KERNELS_ARM
static const cp_kernels neon_set = {"neon", cp_dot_neon, cp_l2sq_neon, cp_l1_neon,
                                    cp_hamming_neon, cp_l2u8_neon, cp_blend_neon, NULL,
    cp_dot_f16_neon, cp_l2sq_f16_neon, cp_l1_f16_neon, cp_dot_u8_neon, cp_l2sq_u8_neon,
    cp_l1_u8_neon};

static int has_crc(void)
{
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#elif defined(__APPLE__)
    return 1; /* every Apple silicon core has the CRC32 instructions */
#else
    return 0;
#endif
}
#endif

cp_crc32c_fn cp_crc32c_by_name(const char *name)
{
    if (!name)
        return NULL;
    if (strcmp(name, "slice8") == 0)
        return cp_crc32c_slice8;
#if CP_KERNELS_X86
    if (strcmp(name, "sse42") == 0 && has_crc())
        return cp_crc32c_sse42;
#endif
#if CP_KERNELS_ARM
    if (strcmp(name, "armv8") == 0 && has_crc())
        return cp_crc32c_armv8;
#endif
    return NULL;
}

cp_crc32c_fn cp_crc32c_best(void)
{
#if CP_KERNELS_X86
    if (has_crc())
        return cp_crc32c_sse42;
#elif CP_KERNELS_ARM
    if (has_crc())
        return cp_crc32c_armv8;
#endif
    return cp_crc32c_slice8;
}

#if CP_KERNELS_X86 || CP_KERNELS_ARM
static int pick(const char *name, const char *want, int supported, const cp_kernels *set,
                cp_kernels *k)
{
    if (strcmp(name, want) != 0 || !supported)
        return 0;
    *k = *set;
    k->crc32c = cp_crc32c_best();
    return 1;
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
#if CP_KERNELS_X86
    if (pick(name, "avx2", has_avx2(), &avx2_set, k) ||
        pick(name, "avx512", has_avx512(), &avx512_set, k))
        return 1;
#endif
#if CP_KERNELS_ARM
    if (pick(name, "neon", 1, &neon_set, k))
        return 1;
#endif
    return 0;
}

/* A CPU with CRC instructions but no vector set (SSE4.2 without AVX2) still gets them: the
 * forced "scalar" set alone keeps the reference CRC. */
void cp_kernels_best(cp_kernels *k)
{
    if (!cp_kernels_by_name("avx512", k) && !cp_kernels_by_name("avx2", k) &&
        !cp_kernels_by_name("neon", k)) {
        *k = scalar_set;
        k->crc32c = cp_crc32c_best();
    }
}
