/*
 * crc_sse42.c: CRC32C with SSE4.2's crc32 instruction, three streams at once.
 *
 * The instruction takes 8 bytes a cycle but its result is ready only 3 cycles later, so one
 * chain of them runs at a third of the rate. The buffer is cut into three consecutive
 * blocks, each with its own chain, and the three CRCs are joined at the end of each round:
 * the CRC of A|B|C is crc(A) * x^(8|B|+8|C|) + crc(B) * x^(8|C|) + crc(C) (mod the
 * polynomial; the streams of B and C start from 0, as CRCs without inversion are linear).
 * Multiplying by a fixed power of x takes one carry-less multiply (PCLMULQDQ) of the CRC by
 * a constant and one crc32 of the 64-bit product to reduce it. With the operands reflected
 * as these CRCs are, the product gains one factor of x and the reduction 32 more, so the
 * constant for a shift by n bytes is x^(8n - 33) mod P, bit-reflected. Rounds of 3 x 8 KiB
 * spend under 1% in the joins; 3 x 256-byte rounds then handle what remains above 768
 * bytes, and one chain the rest.
 *
 * Compiled with -msse4.2 -mpclmul (cmake/kernel_flags.txt); called only when the CPU has
 * both (dispatch.c).
 */
#include "kernels.h"

#if CP_KERNELS_X86
#include <nmmintrin.h>
#include <string.h>
#include <wmmintrin.h>

enum { LONG_BLOCK = 8192, SHORT_BLOCK = 256 };

/* x^(8n - 33) mod P, reflected, for n = LONG_BLOCK, 2 LONG_BLOCK, SHORT_BLOCK, 2 SHORT_BLOCK,
 * by square-and-multiply modulo 0x11EDC6F41. A wrong one would spoil every round of its size:
 * tests/test_checksum.c compares lengths across both round sizes with the reference. */
static const uint64_t shift_long = 0x54a86326, shift_long2 = 0x1dc403cc;
static const uint64_t shift_short = 0xb9e02b86, shift_short2 = 0xdd7e3b0c;

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* crc * x^(8n) mod P, where k is the constant for n bytes. */
static inline uint64_t shift(uint64_t crc, uint64_t k)
{
    __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)crc),
                                        _mm_cvtsi64_si128((long long)k), 0);
    return _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(prod));
}

/* Rounds of three blocks of `block` bytes (a multiple of 8) while they fit. */
static inline uint64_t rounds(uint64_t c0, const unsigned char **pp, size_t *lenp, size_t block,
                              uint64_t k1, uint64_t k2)
{
    const unsigned char *p = *pp;
    size_t len = *lenp;
    for (; len >= 3 * block; p += 3 * block, len -= 3 * block) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < block; i += 8) {
            c0 = _mm_crc32_u64(c0, load64(p + i));
            c1 = _mm_crc32_u64(c1, load64(p + block + i));
            c2 = _mm_crc32_u64(c2, load64(p + 2 * block + i));
        }
        c0 = shift(c0, k2) ^ shift(c1, k1) ^ c2;
    }
    *pp = p;
    *lenp = len;
    return c0;
}

uint32_t cp_crc32c_sse42(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc & 0xffffffffu;
    c = rounds(c, &p, &len, LONG_BLOCK, shift_long, shift_long2);
    c = rounds(c, &p, &len, SHORT_BLOCK, shift_short, shift_short2);
    for (; len >= 8; p += 8, len -= 8)
        c = _mm_crc32_u64(c, load64(p));
    uint32_t c32 = (uint32_t)c;
    for (; len > 0; len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif
