/*
 * crc_armv8.c: CRC32C with the ARMv8 CRC32 instructions (optional in ARMv8.0, standard from
 * ARMv8.1: Graviton, Apple silicon, every recent core), eight bytes an instruction.
 * One chain: joining interleaved chains as crc_sse42.c does needs the polynomial multiply of
 * the crypto extension, and without an ARM machine to time it on there is no measured reason
 * for that code.
 *
 * Compiled with -march=armv8-a+crc (cmake/kernel_flags.txt); called only when the CPU reports
 * CRC32 (dispatch.c).
 */
#include "kernels.h"

#if CP_KERNELS_ARM
#include <arm_acle.h>
#include <string.h>

uint32_t cp_crc32c_armv8(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = ~crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __crc32cd(c, w);
    }
    for (; len > 0; len--)
        c = __crc32cb(c, *p++);
    return ~c;
}
#endif
