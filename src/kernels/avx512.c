/*
 * avx512.c: AVX-512 kernels, 16 floats a step; the tail uses a lane mask instead of a scalar
 * loop. Hamming uses VPOPCNTQ on 8 words at a time. Compiled with the AVX-512 flags in
 * cmake/kernel_flags.txt; called only when the CPU has F, BW, VL, DQ and VPOPCNTDQ
 * (dispatch.c).
 *
 * Stored codes are widened 16 at a time (vcvtph2ps for halves, vpmovzxbd + vcvtdq2ps for
 * bytes); BW and VL give masked loads of 8- and 16-bit lanes, so tails need no copies.
 */
#include "kernels.h"

#if CP_KERNELS_X86
#include <immintrin.h>

static inline __mmask16 tail16(size_t r) { return (__mmask16)((1u << r) - 1u); }

float cp_dot_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = tail16(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float cp_l2sq_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __mmask16 m = tail16(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float cp_l1_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
        s1 = _mm512_add_ps(s1, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i + 16),
                                                           _mm512_loadu_ps(b + i + 16))));
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
    if (i < n) {
        __mmask16 m = tail16(n - i);
        s1 = _mm512_add_ps(s1, _mm512_abs_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
                                                           _mm512_maskz_loadu_ps(m, b + i))));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

void cp_blend_avx512(float *y, float keep, const float *x, float add, size_t n)
{
    const __m512 k = _mm512_set1_ps(keep), a = _mm512_set1_ps(add);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(y + i), k),
                                              _mm512_mul_ps(_mm512_loadu_ps(x + i), a)));
    if (i < n) {
        __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), k),
                                                      _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), a)));
    }
}

uint64_t cp_hamming_avx512(const uint64_t *a, const uint64_t *b, size_t words)
{
    __m512i s = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 8 <= words; i += 8) {
        __m512i x = _mm512_xor_si512(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
        s = _mm512_add_epi64(s, _mm512_popcnt_epi64(x));
    }
    if (i < words) {
        __mmask8 m = (__mmask8)((1u << (words - i)) - 1u);
        __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, a + i), _mm512_maskz_loadu_epi64(m, b + i));
        s = _mm512_add_epi64(s, _mm512_popcnt_epi64(x));
    }
    return (uint64_t)_mm512_reduce_add_epi64(s);
}

/* 32 codes a step, widened to 16 bits; the tail is a masked load. */
uint32_t cp_l2u8_avx512(const uint8_t *a, const uint8_t *b, size_t n)
{
    __m512i s = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i x = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(a + i)));
        __m512i y = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)));
        __m512i d = _mm512_sub_epi16(x, y);
        s = _mm512_add_epi32(s, _mm512_madd_epi16(d, d));
    }
    if (i < n) {
        __mmask32 m = (__mmask32)((1ull << (n - i)) - 1);
        __m512i x = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, a + i));
        __m512i y = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, b + i));
        __m512i d = _mm512_sub_epi16(x, y);
        s = _mm512_add_epi32(s, _mm512_madd_epi16(d, d));
    }
    return (uint32_t)_mm512_reduce_add_epi32(s);
}

static inline __m512 load_f16(__mmask16 m, const uint16_t *b)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, b));
}

static inline __m512 load_u8(__mmask16 m, const uint8_t *c)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, c)));
}

/* One kernel body per code type and distance: d is the widened codes against the query. */
#define CODE_LOOP(LOAD, STEP)                                                        \
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();                       \
    size_t i = 0;                                                                    \
    for (; i + 32 <= n; i += 32) {                                                   \
        s0 = STEP(s0, (__mmask16)0xffff, i, LOAD((__mmask16)0xffff, b + i));         \
        s1 = STEP(s1, (__mmask16)0xffff, i + 16, LOAD((__mmask16)0xffff, b + i + 16)); \
    }                                                                                \
    for (; i + 16 <= n; i += 16)                                                     \
        s0 = STEP(s0, (__mmask16)0xffff, i, LOAD((__mmask16)0xffff, b + i));         \
    if (i < n)                                                                       \
        s1 = STEP(s1, tail16(n - i), i, LOAD(tail16(n - i), b + i));                 \
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))

#define DOT_STEP(acc, m, j, x) _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + (j)), x, acc)
#define L2_STEP(acc, m, j, x) l2_step(acc, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + (j)), x))
#define L1_STEP(acc, m, j, x) \
    _mm512_add_ps(acc, _mm512_abs_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + (j)), x)))
#define L2S_STEP(acc, m, j, x) l2_step(acc, scaled(a, s, m, j, x))
#define L1S_STEP(acc, m, j, x) _mm512_add_ps(acc, _mm512_abs_ps(scaled(a, s, m, j, x)))

static inline __m512 l2_step(__m512 acc, __m512 d) { return _mm512_fmadd_ps(d, d, acc); }

/* a - s c for 16 components. */
static inline __m512 scaled(const float *a, const float *s, __mmask16 m, size_t j, __m512 c)
{
    return _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m, s + j), c, _mm512_maskz_loadu_ps(m, a + j));
}

float cp_dot_f16_avx512(const float *a, const uint16_t *b, size_t n)
{
    CODE_LOOP(load_f16, DOT_STEP);
}

float cp_l2sq_f16_avx512(const float *a, const uint16_t *b, size_t n)
{
    CODE_LOOP(load_f16, L2_STEP);
}

float cp_l1_f16_avx512(const float *a, const uint16_t *b, size_t n)
{
    CODE_LOOP(load_f16, L1_STEP);
}

float cp_dot_u8_avx512(const float *a, const uint8_t *b, size_t n)
{
    CODE_LOOP(load_u8, DOT_STEP);
}

float cp_l2sq_u8_avx512(const float *a, const float *s, const uint8_t *b, size_t n)
{
    CODE_LOOP(load_u8, L2S_STEP);
}

float cp_l1_u8_avx512(const float *a, const float *s, const uint8_t *b, size_t n)
{
    CODE_LOOP(load_u8, L1S_STEP);
}
#endif
