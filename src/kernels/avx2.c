/*
 * avx2.c: AVX2 + FMA kernels, 8 floats a step with two accumulators so consecutive FMAs do
 * not wait on each other. The tail goes through a masked load, so there is no scalar loop.
 * Compiled with -mavx2 -mfma -mpopcnt -mf16c (cmake/kernel_flags.txt); called only when the
 * CPU has them (dispatch.c).
 *
 * Stored codes (copse_set_storage) are widened to floats in registers, 8 at a time: halves by
 * F16C's vcvtph2ps, bytes by vpmovzxbd and vcvtdq2ps, so a row costs a quarter (8-bit) or
 * half (float16) of the memory traffic of a float row for the same FMAs. A tail of codes is
 * copied into a zeroed block of 8, since there is no masked load narrower than 32 bits.
 */
#include "kernels.h"

#if CP_KERNELS_X86
#include <immintrin.h>
#include <string.h>

static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline __m256i tail_mask(size_t r)
{
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - r));
}

float cp_dot_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

float cp_l2sq_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

float cp_l1_avx2(const float *a, const float *b, size_t n)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_add_ps(s0, _mm256_and_ps(d0, absmask));
        s1 = _mm256_add_ps(s1, _mm256_and_ps(d1, absmask));
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_add_ps(s0, _mm256_and_ps(d, absmask));
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        s1 = _mm256_add_ps(s1, _mm256_and_ps(d, absmask));
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

void cp_blend_avx2(float *y, float keep, const float *x, float add, size_t n)
{
    const __m256 k = _mm256_set1_ps(keep), a = _mm256_set1_ps(add);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(y + i), k),
                                              _mm256_mul_ps(_mm256_loadu_ps(x + i), a)));
    for (; i < n; i++)
        y[i] = y[i] * keep + x[i] * add;
}

uint64_t cp_hamming_avx2(const uint64_t *a, const uint64_t *b, size_t words)
{
    uint64_t s = 0;
    for (size_t i = 0; i < words; i++)
        s += (uint64_t)_mm_popcnt_u64(a[i] ^ b[i]);
    return s;
}

/* 16 codes a step, widened to 16 bits: (a - b)^2 pairs summed by VPMADDWD into 32 bits. */
uint32_t cp_l2u8_avx2(const uint8_t *a, const uint8_t *b, size_t n)
{
    __m256i s = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i y = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
        __m256i d = _mm256_sub_epi16(x, y);
        s = _mm256_add_epi32(s, _mm256_madd_epi16(d, d));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    uint32_t t = (uint32_t)_mm_cvtsi128_si32(h);
    for (; i < n; i++) {
        int d = (int)a[i] - (int)b[i];
        t += (uint32_t)(d * d);
    }
    return t;
}

static inline __m256 load_f16(const uint16_t *b)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
}

static inline __m256 load_f16_tail(const uint16_t *b, size_t r)
{
    uint16_t t[8] = {0};
    memcpy(t, b, r * sizeof *b);
    return load_f16(t);
}

static inline __m256 load_u8(const uint8_t *c)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)c)));
}

static inline __m256 load_u8_tail(const uint8_t *c, size_t r)
{
    uint8_t t[8] = {0};
    memcpy(t, c, r);
    return load_u8(t);
}

float cp_dot_f16_avx2(const float *a, const uint16_t *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load_f16(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16(b + i), s0);
    if (i < n)
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, tail_mask(n - i)),
                             load_f16_tail(b + i, n - i), s1);
    return hsum256(_mm256_add_ps(s0, s1));
}

float cp_l2sq_f16_avx2(const float *a, const uint16_t *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), load_f16(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), load_f16(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), load_f16(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, tail_mask(n - i)),
                                 load_f16_tail(b + i, n - i));
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

float cp_l1_f16_avx2(const float *a, const uint16_t *b, size_t n)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), load_f16(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), load_f16(b + i + 8));
        s0 = _mm256_add_ps(s0, _mm256_and_ps(d0, absmask));
        s1 = _mm256_add_ps(s1, _mm256_and_ps(d1, absmask));
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), load_f16(b + i));
        s0 = _mm256_add_ps(s0, _mm256_and_ps(d, absmask));
    }
    if (i < n) {
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, tail_mask(n - i)),
                                 load_f16_tail(b + i, n - i));
        s1 = _mm256_add_ps(s1, _mm256_and_ps(d, absmask));
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

float cp_dot_u8_avx2(const float *a, const uint8_t *c, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_u8(c + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load_u8(c + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_u8(c + i), s0);
    if (i < n)
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, tail_mask(n - i)),
                             load_u8_tail(c + i, n - i), s1);
    return hsum256(_mm256_add_ps(s0, s1));
}

/* a - s c, 8 components: one FNMADD. */
float cp_l2sq_u8_avx2(const float *a, const float *s, const uint8_t *c, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i), load_u8(c + i),
                                     _mm256_loadu_ps(a + i));
        __m256 d1 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i + 8), load_u8(c + i + 8),
                                     _mm256_loadu_ps(a + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i), load_u8(c + i),
                                    _mm256_loadu_ps(a + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 d = _mm256_fnmadd_ps(_mm256_maskload_ps(s + i, m), load_u8_tail(c + i, n - i),
                                    _mm256_maskload_ps(a + i, m));
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    return hsum256(_mm256_add_ps(s0, s1));
}

float cp_l1_u8_avx2(const float *a, const float *s, const uint8_t *c, size_t n)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i), load_u8(c + i),
                                     _mm256_loadu_ps(a + i));
        __m256 d1 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i + 8), load_u8(c + i + 8),
                                     _mm256_loadu_ps(a + i + 8));
        s0 = _mm256_add_ps(s0, _mm256_and_ps(d0, absmask));
        s1 = _mm256_add_ps(s1, _mm256_and_ps(d1, absmask));
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i), load_u8(c + i),
                                    _mm256_loadu_ps(a + i));
        s0 = _mm256_add_ps(s0, _mm256_and_ps(d, absmask));
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 d = _mm256_fnmadd_ps(_mm256_maskload_ps(s + i, m), load_u8_tail(c + i, n - i),
                                    _mm256_maskload_ps(a + i, m));
        s1 = _mm256_add_ps(s1, _mm256_and_ps(d, absmask));
    }
    return hsum256(_mm256_add_ps(s0, s1));
}
#endif
