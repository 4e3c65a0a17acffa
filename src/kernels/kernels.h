/*
 * kernels.h: the distance and checksum kernels. One file per instruction set; scalar.c and
 * crc_scalar.c are the reference and always built. dispatch.c picks a set once per index from
 * the CPU's features, and the index keeps the chosen table, so no call re-checks the CPU and
 * there is no mutable global.
 */
#ifndef COPSE_KERNELS_H
#define COPSE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* The instruction sets this build has kernels for: x86-64, and little-endian AArch64 (the
 * CRC reads words in that byte order; big-endian ARM runs the scalar set). */
#if defined(__x86_64__) || defined(_M_X64)
#define CP_KERNELS_X86 1
#define CP_KERNELS_ARM 0
#elif defined(__aarch64__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CP_KERNELS_X86 0
#define CP_KERNELS_ARM 1
#else
#define CP_KERNELS_X86 0
#define CP_KERNELS_ARM 0
#endif

/* CRC32C of len bytes continuing crc: crc32c(crc32c(0, a), b) is the CRC of a then b. */
typedef uint32_t (*cp_crc32c_fn)(uint32_t crc, const void *data, size_t len);

typedef struct cp_kernels {
    const char *name;
    float (*dot)(const float *a, const float *b, size_t n);
    float (*l2sq)(const float *a, const float *b, size_t n);
    float (*l1)(const float *a, const float *b, size_t n);
    uint64_t (*hamming)(const uint64_t *a, const uint64_t *b, size_t words);
    /* sum of (a - b)^2 over byte codes (the graph build's distance); exact while n <= 66051 */
    uint32_t (*l2u8)(const uint8_t *a, const uint8_t *b, size_t n);
    /* y = y * keep + x * add: moving a two-means centroid towards an item */
    void (*blend)(float *y, float keep, const float *x, float add, size_t n);
    /* Section and header checksums: the CPU's CRC instructions in every set but "scalar",
     * which keeps the slicing-by-8 reference (the CRC unit is not tied to the vector unit, so
     * a CPU may have one without the other). */
    cp_crc32c_fn crc32c;
    /* Distances from a float query to stored codes (copse_set_storage; metric.c applies them):
     * IEEE half rows b, and 8-bit rows c, whose component i stands for min_i + s_i c_i. For
     * 8-bit the query is prepared once: dot takes a = q * s (the q . min part is added by
     * the caller), l2sq and l1 take a = q - min and the scales s. */
    float (*dot_f16)(const float *a, const uint16_t *b, size_t n);
    float (*l2sq_f16)(const float *a, const uint16_t *b, size_t n);
    float (*l1_f16)(const float *a, const uint16_t *b, size_t n);
    float (*dot_u8)(const float *a, const uint8_t *c, size_t n);
    float (*l2sq_u8)(const float *a, const float *s, const uint8_t *c, size_t n);
    float (*l1_u8)(const float *a, const float *s, const uint8_t *c, size_t n);
} cp_kernels;

/* Best set this CPU runs. */
void cp_kernels_best(cp_kernels *k);
/* The named set ("scalar", "avx2", "avx512", "neon"); 0 when unknown or unsupported here. */
int cp_kernels_by_name(const char *name, cp_kernels *k);

/* The fastest CRC32C this CPU runs. */
cp_crc32c_fn cp_crc32c_best(void);
/* The named CRC32C ("slice8", "sse42", "armv8"); NULL when unknown or unsupported here. */
cp_crc32c_fn cp_crc32c_by_name(const char *name);

float cp_dot_scalar(const float *a, const float *b, size_t n);
float cp_l2sq_scalar(const float *a, const float *b, size_t n);
float cp_l1_scalar(const float *a, const float *b, size_t n);
uint64_t cp_hamming_scalar(const uint64_t *a, const uint64_t *b, size_t words);
uint32_t cp_l2u8_scalar(const uint8_t *a, const uint8_t *b, size_t n);
void cp_blend_scalar(float *y, float keep, const float *x, float add, size_t n);
uint32_t cp_crc32c_slice8(uint32_t crc, const void *data, size_t len);
float cp_dot_f16_scalar(const float *a, const uint16_t *b, size_t n);
float cp_l2sq_f16_scalar(const float *a, const uint16_t *b, size_t n);
float cp_l1_f16_scalar(const float *a, const uint16_t *b, size_t n);
float cp_dot_u8_scalar(const float *a, const uint8_t *c, size_t n);
float cp_l2sq_u8_scalar(const float *a, const float *s, const uint8_t *c, size_t n);
float cp_l1_u8_scalar(const float *a, const float *s, const uint8_t *c, size_t n);
/* IEEE half <-> float, exact and rounding to nearest even: the reference every set's
 * conversion matches, and the encoder (so a file's bytes never depend on the CPU). */
float cp_half_to_float(uint16_t h);
uint16_t cp_float_to_half(float f);

float cp_dot_avx2(const float *a, const float *b, size_t n);
float cp_l2sq_avx2(const float *a, const float *b, size_t n);
float cp_l1_avx2(const float *a, const float *b, size_t n);
uint64_t cp_hamming_avx2(const uint64_t *a, const uint64_t *b, size_t words);
uint32_t cp_l2u8_avx2(const uint8_t *a, const uint8_t *b, size_t n);
void cp_blend_avx2(float *y, float keep, const float *x, float add, size_t n);
float cp_dot_f16_avx2(const float *a, const uint16_t *b, size_t n);
float cp_l2sq_f16_avx2(const float *a, const uint16_t *b, size_t n);
float cp_l1_f16_avx2(const float *a, const uint16_t *b, size_t n);
float cp_dot_u8_avx2(const float *a, const uint8_t *c, size_t n);
float cp_l2sq_u8_avx2(const float *a, const float *s, const uint8_t *c, size_t n);
float cp_l1_u8_avx2(const float *a, const float *s, const uint8_t *c, size_t n);

float cp_dot_avx512(const float *a, const float *b, size_t n);
float cp_l2sq_avx512(const float *a, const float *b, size_t n);
float cp_l1_avx512(const float *a, const float *b, size_t n);
uint64_t cp_hamming_avx512(const uint64_t *a, const uint64_t *b, size_t words);
uint32_t cp_l2u8_avx512(const uint8_t *a, const uint8_t *b, size_t n);
void cp_blend_avx512(float *y, float keep, const float *x, float add, size_t n);
float cp_dot_f16_avx512(const float *a, const uint16_t *b, size_t n);
float cp_l2sq_f16_avx512(const float *a, const uint16_t *b, size_t n);
float cp_l1_f16_avx512(const float *a, const uint16_t *b, size_t n);
float cp_dot_u8_avx512(const float *a, const uint8_t *c, size_t n);
float cp_l2sq_u8_avx512(const float *a, const float *s, const uint8_t *c, size_t n);
float cp_l1_u8_avx512(const float *a, const float *s, const uint8_t *c, size_t n);

uint32_t cp_crc32c_sse42(uint32_t crc, const void *data, size_t len);

float cp_dot_neon(const float *a, const float *b, size_t n);
float cp_l2sq_neon(const float *a, const float *b, size_t n);
float cp_l1_neon(const float *a, const float *b, size_t n);
uint64_t cp_hamming_neon(const uint64_t *a, const uint64_t *b, size_t words);
uint32_t cp_l2u8_neon(const uint8_t *a, const uint8_t *b, size_t n);
void cp_blend_neon(float *y, float keep, const float *x, float add, size_t n);
float cp_dot_f16_neon(const float *a, const uint16_t *b, size_t n);
float cp_l2sq_f16_neon(const float *a, const uint16_t *b, size_t n);
float cp_l1_f16_neon(const float *a, const uint16_t *b, size_t n);
float cp_dot_u8_neon(const float *a, const uint8_t *c, size_t n);
float cp_l2sq_u8_neon(const float *a, const float *s, const uint8_t *c, size_t n);
float cp_l1_u8_neon(const float *a, const float *s, const uint8_t *c, size_t n);

uint32_t cp_crc32c_armv8(uint32_t crc, const void *data, size_t len);

#endif
