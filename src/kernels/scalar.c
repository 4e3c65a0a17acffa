/*
 * scalar.c: the reference kernels. Four independent accumulators let the compiler pipeline
 * the adds without reassociating (no -ffast-math), and keep rounding close to the SIMD kernels.
 */
#include <math.h>

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
