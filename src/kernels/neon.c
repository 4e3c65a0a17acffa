/*
 * neon.c: AArch64 NEON (Advanced SIMD) kernels, 4 floats a register and four accumulators,
 * 16 floats a step, so consecutive FMAs do not wait on each other. NEON is part of every
 * AArch64 CPU, so this file needs no flags and the set is always available there. Tails of
 * fewer than 4 go through the scalar loop.
 *
 * blend multiplies and adds separately, as the x86 kernels do; the distances use FMA, whose
 * rounding differs from the scalar reference within the tolerance tests/test_kernels.c allows.
 *
 * Stored codes are widened in registers, 4 lanes at a time: halves by FCVTL (part of every
 * AArch64 CPU), bytes by two USHLLs and UCVTF; tails go through the scalar conversions.
 */
#include "kernels.h"

#if CP_KERNELS_ARM
#include <arm_neon.h>
#include <math.h>

float cp_dot_neon(const float *a, const float *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

float cp_l2sq_neon(const float *a, const float *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        float32x4_t d2 = vsubq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        float32x4_t d3 = vsubq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
        s2 = vfmaq_f32(s2, d2, d2);
        s3 = vfmaq_f32(s3, d3, d3);
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t d = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        s0 = vfmaq_f32(s0, d, d);
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

float cp_l1_neon(const float *a, const float *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vaddq_f32(s0, vabdq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
        s1 = vaddq_f32(s1, vabdq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4)));
        s2 = vaddq_f32(s2, vabdq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8)));
        s3 = vaddq_f32(s3, vabdq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12)));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vaddq_f32(s0, vabdq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++)
        s += fabsf(a[i] - b[i]);
    return s;
}

void cp_blend_neon(float *y, float keep, const float *x, float add, size_t n)
{
    const float32x4_t k = vdupq_n_f32(keep), a = vdupq_n_f32(add);
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vaddq_f32(vmulq_f32(vld1q_f32(y + i), k), vmulq_f32(vld1q_f32(x + i), a)));
    for (; i < n; i++)
        y[i] = y[i] * keep + x[i] * add;
}

/* Bytes counted by CNT, widened pairwise into 32-bit lanes: a lane gains at most 32 per
 * step, so it cannot overflow for any vector a 32-bit dimension allows. */
uint64_t cp_hamming_neon(const uint64_t *a, const uint64_t *b, size_t words)
{
    uint32x4_t acc = vdupq_n_u32(0);
    size_t i = 0;
    for (; i + 2 <= words; i += 2) {
        uint8x16_t x = vreinterpretq_u8_u64(veorq_u64(vld1q_u64(a + i), vld1q_u64(b + i)));
        acc = vpadalq_u16(acc, vpaddlq_u8(vcntq_u8(x)));
    }
    uint64_t s = vaddlvq_u32(acc);
    if (i < words)
        s += vaddv_u8(vcnt_u8(vcreate_u8(a[i] ^ b[i])));
    return s;
}

/* 16 codes a step: widening subtract to 16 bits, widening multiply-accumulate to 32. */
uint32_t cp_l2u8_neon(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint32x4_t s0 = vdupq_n_u32(0), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint8x16_t x = vld1q_u8(a + i), y = vld1q_u8(b + i);
        int16x8_t lo = vreinterpretq_s16_u16(vsubl_u8(vget_low_u8(x), vget_low_u8(y)));
        int16x8_t hi = vreinterpretq_s16_u16(vsubl_u8(vget_high_u8(x), vget_high_u8(y)));
        s0 = vaddq_u32(s0, vreinterpretq_u32_s32(vmull_s16(vget_low_s16(lo), vget_low_s16(lo))));
        s0 = vaddq_u32(s0, vreinterpretq_u32_s32(vmull_high_s16(lo, lo)));
        s1 = vaddq_u32(s1, vreinterpretq_u32_s32(vmull_s16(vget_low_s16(hi), vget_low_s16(hi))));
        s1 = vaddq_u32(s1, vreinterpretq_u32_s32(vmull_high_s16(hi, hi)));
    }
    uint32_t t = vaddvq_u32(vaddq_u32(s0, s1));
    for (; i < n; i++) {
        int d = (int)a[i] - (int)b[i];
        t += (uint32_t)(d * d);
    }
    return t;
}

static inline float32x4_t load_f16(const uint16_t *b)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(b)));
}

/* 8 bytes to two vectors of 4 floats. */
static inline void load_u8(const uint8_t *c, float32x4_t *lo, float32x4_t *hi)
{
    uint16x8_t w = vmovl_u8(vld1_u8(c));
    *lo = vcvtq_f32_u32(vmovl_u16(vget_low_u16(w)));
    *hi = vcvtq_f32_u32(vmovl_u16(vget_high_u16(w)));
}

float cp_dot_f16_neon(const float *a, const uint16_t *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), load_f16(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), load_f16(b + i + 4));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), load_f16(b + i));
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += a[i] * cp_half_to_float(b[i]);
    return s;
}

float cp_l2sq_f16_neon(const float *a, const uint16_t *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), load_f16(b + i));
        float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), load_f16(b + i + 4));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t d = vsubq_f32(vld1q_f32(a + i), load_f16(b + i));
        s0 = vfmaq_f32(s0, d, d);
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) {
        float d = a[i] - cp_half_to_float(b[i]);
        s += d * d;
    }
    return s;
}

float cp_l1_f16_neon(const float *a, const uint16_t *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vaddq_f32(s0, vabdq_f32(vld1q_f32(a + i), load_f16(b + i)));
        s1 = vaddq_f32(s1, vabdq_f32(vld1q_f32(a + i + 4), load_f16(b + i + 4)));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vaddq_f32(s0, vabdq_f32(vld1q_f32(a + i), load_f16(b + i)));
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += fabsf(a[i] - cp_half_to_float(b[i]));
    return s;
}

float cp_dot_u8_neon(const float *a, const uint8_t *c, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, lo, hi;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        load_u8(c + i, &lo, &hi);
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), lo);
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), hi);
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += a[i] * c[i];
    return s;
}

float cp_l2sq_u8_neon(const float *a, const float *sc, const uint8_t *c, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, lo, hi;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        load_u8(c + i, &lo, &hi);
        float32x4_t d0 = vfmsq_f32(vld1q_f32(a + i), vld1q_f32(sc + i), lo);
        float32x4_t d1 = vfmsq_f32(vld1q_f32(a + i + 4), vld1q_f32(sc + i + 4), hi);
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) {
        float d = a[i] - sc[i] * c[i];
        s += d * d;
    }
    return s;
}

float cp_l1_u8_neon(const float *a, const float *sc, const uint8_t *c, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, lo, hi;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        load_u8(c + i, &lo, &hi);
        s0 = vaddq_f32(s0, vabsq_f32(vfmsq_f32(vld1q_f32(a + i), vld1q_f32(sc + i), lo)));
        s1 = vaddq_f32(s1, vabsq_f32(vfmsq_f32(vld1q_f32(a + i + 4), vld1q_f32(sc + i + 4), hi)));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++)
        s += fabsf(a[i] - sc[i] * c[i]);
    return s;
}
#endif
