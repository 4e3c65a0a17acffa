/*
 * kernels.h: the distance kernels. One file per instruction set; scalar.c is the reference and
 * always built. dispatch.c picks a set once per index from the CPU's features, and the index
 * keeps the chosen table, so no call re-checks the CPU and there is no mutable global.
 */
#ifndef COPSE_KERNELS_H
#define COPSE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cp_kernels {
    const char *name;
    float (*dot)(const float *a, const float *b, size_t n);
    float (*l2sq)(const float *a, const float *b, size_t n);
    float (*l1)(const float *a, const float *b, size_t n);
    uint64_t (*hamming)(const uint64_t *a, const uint64_t *b, size_t words);
    /* y = y * keep + x * add: moving a two-means centroid towards an item */
    void (*blend)(float *y, float keep, const float *x, float add, size_t n);
} cp_kernels;

/* Best set this CPU runs. */
void cp_kernels_best(cp_kernels *k);
/* The named set ("scalar", "avx2", "avx512"); 0 when unknown or unsupported here. */
int cp_kernels_by_name(const char *name, cp_kernels *k);

float cp_dot_scalar(const float *a, const float *b, size_t n);
float cp_l2sq_scalar(const float *a, const float *b, size_t n);
float cp_l1_scalar(const float *a, const float *b, size_t n);
uint64_t cp_hamming_scalar(const uint64_t *a, const uint64_t *b, size_t words);
void cp_blend_scalar(float *y, float keep, const float *x, float add, size_t n);

float cp_dot_avx2(const float *a, const float *b, size_t n);
float cp_l2sq_avx2(const float *a, const float *b, size_t n);
float cp_l1_avx2(const float *a, const float *b, size_t n);
uint64_t cp_hamming_avx2(const uint64_t *a, const uint64_t *b, size_t words);
void cp_blend_avx2(float *y, float keep, const float *x, float add, size_t n);

float cp_dot_avx512(const float *a, const float *b, size_t n);
float cp_l2sq_avx512(const float *a, const float *b, size_t n);
float cp_l1_avx512(const float *a, const float *b, size_t n);
uint64_t cp_hamming_avx512(const uint64_t *a, const uint64_t *b, size_t words);
void cp_blend_avx512(float *y, float keep, const float *x, float add, size_t n);

#endif
