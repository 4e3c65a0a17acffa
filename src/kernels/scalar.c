/*
 * scalar.c: the reference kernels. Four independent accumulators let the compiler pipeline
 * the adds without reassociating (no -ffast-math), and keep rounding close to the SIMD kernels.
 */
#include <math.h>
#include <string.h>

#include "kernels.h"

float cp_dot_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

float cp_l2sq_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

float cp_l1_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += fabsf(a[i] - b[i]);
        s1 += fabsf(a[i + 1] - b[i + 1]);
        s2 += fabsf(a[i + 2] - b[i + 2]);
        s3 += fabsf(a[i + 3] - b[i + 3]);
    }
    for (; i < n; i++)
        s0 += fabsf(a[i] - b[i]);
    return (s0 + s1) + (s2 + s3);
}

void cp_blend_scalar(float *y, float keep, const float *x, float add, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = y[i] * keep + x[i] * add;
}

uint64_t cp_hamming_scalar(const uint64_t *a, const uint64_t *b, size_t words)
{
    uint64_t s = 0;
    for (size_t i = 0; i < words; i++) {
        uint64_t x = a[i] ^ b[i];
        /* Portable popcount (SWAR), as the reference must not assume the POPCNT instruction. */
        x = x - ((x >> 1) & 0x5555555555555555ull);
        x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
        x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
        s += (x * 0x0101010101010101ull) >> 56;
    }
    return s;
}

uint32_t cp_l2u8_scalar(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        int d = (int)a[i] - (int)b[i];
        s += (uint32_t)(d * d);
    }
    return s;
}

/* ---- stored codes (copse_set_storage) ---- */

float cp_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) { /* zero or subnormal: man x 2^-24, exact in float */
        float f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    }
    bits = exp == 31 ? sign | 0x7f800000u | man << 13 : sign | (exp + 112) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t cp_float_to_half(float f)
{
    uint32_t x, ax;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return sign | 0x7e00u; /* NaN */
    if (ax >= 0x477ff000u)     /* 65520 and beyond round to infinity */
        return sign | 0x7c00u;
    if (ax < 0x38800000u) {    /* below 2^-14: a multiple of 2^-24, rounded to nearest even */
        float a;
        memcpy(&a, &ax, sizeof a);
        return sign | (uint16_t)lrintf(a * 0x1p24f);
    }
    uint32_t h = ((ax >> 23) - 112) << 10 | ((ax >> 13) & 0x3ffu), rest = ax & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        h++; /* a carry out of the mantissa steps the exponent, as it should */
    return sign | (uint16_t)h;
}

float cp_dot_f16_scalar(const float *a, const uint16_t *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * cp_half_to_float(b[i]);
        s1 += a[i + 1] * cp_half_to_float(b[i + 1]);
        s2 += a[i + 2] * cp_half_to_float(b[i + 2]);
        s3 += a[i + 3] * cp_half_to_float(b[i + 3]);
    }
    for (; i < n; i++)
        s0 += a[i] * cp_half_to_float(b[i]);
    return (s0 + s1) + (s2 + s3);
}

float cp_l2sq_f16_scalar(const float *a, const uint16_t *b, size_t n)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        float d0 = a[i] - cp_half_to_float(b[i]), d1 = a[i + 1] - cp_half_to_float(b[i + 1]);
        s0 += d0 * d0;
        s1 += d1 * d1;
    }
    for (; i < n; i++) {
        float d = a[i] - cp_half_to_float(b[i]);
        s0 += d * d;
    }
    return s0 + s1;
}

float cp_l1_f16_scalar(const float *a, const uint16_t *b, size_t n)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        s0 += fabsf(a[i] - cp_half_to_float(b[i]));
        s1 += fabsf(a[i + 1] - cp_half_to_float(b[i + 1]));
    }
    for (; i < n; i++)
        s0 += fabsf(a[i] - cp_half_to_float(b[i]));
    return s0 + s1;
}

float cp_dot_u8_scalar(const float *a, const uint8_t *c, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * c[i];
        s1 += a[i + 1] * c[i + 1];
        s2 += a[i + 2] * c[i + 2];
        s3 += a[i + 3] * c[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * c[i];
    return (s0 + s1) + (s2 + s3);
}

float cp_l2sq_u8_scalar(const float *a, const float *s, const uint8_t *c, size_t n)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        float d0 = a[i] - s[i] * c[i], d1 = a[i + 1] - s[i + 1] * c[i + 1];
        s0 += d0 * d0;
        s1 += d1 * d1;
    }
    for (; i < n; i++) {
        float d = a[i] - s[i] * c[i];
        s0 += d * d;
    }
    return s0 + s1;
}

float cp_l1_u8_scalar(const float *a, const float *s, const uint8_t *c, size_t n)
{
    float s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        s0 += fabsf(a[i] - s[i] * c[i]);
        s1 += fabsf(a[i + 1] - s[i + 1] * c[i + 1]);
    }
    for (; i < n; i++)
        s0 += fabsf(a[i] - s[i] * c[i]);
    return s0 + s1;
}
