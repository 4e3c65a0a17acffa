/*
 * fmt.h: just enough of docs/FORMAT.md to edit index images in tests: little-endian field
 * access, CRC32C, the section table, and resealing (recomputing every checksum) so an edit
 * reaches the structure checks instead of stopping at a checksum. Written from the spec, not
 * from src/format.c, so the tests check the library against the document.
 */
#ifndef COPSE_TEST_FMT_H
#define COPSE_TEST_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FMT_HEADER 512
#define FMT_TABLE 128
#define FMT_ENTRY 24
#define FMT_MAX_SECTIONS 16
#define FMT_HEADER_2 1024
#define FMT_MAX_SECTIONS_2 37

enum {
    SEC_VECTORS = 1, SEC_NORMS, SEC_SLOT_IDS, SEC_ID_ORDER, SEC_NODES, SEC_LEAVES,
    SEC_LEAF_ITEMS, SEC_ROOTS, SEC_LABEL_OFFSETS, SEC_LABEL_DATA, SEC_LABEL_ORDER, SEC_GRAPH,
    SEC_QUANT, SEC_TAGS = 16, SEC_TOMBSTONES = 17, SEC_DELTA_META, SEC_DELTA_VECTORS, SEC_DELTA_IDS,
    SEC_DELTA_NORMS, SEC_DELTA_GRAPH, SEC_DELTA_DEAD, SEC_DELTA_TAGS, SEC_DELTA_LEAVES
};

static inline uint32_t fmt_crc32c(const unsigned char *p, size_t n)
{
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
            table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    while (n--)
        c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

static inline uint16_t fmt_rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t fmt_rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t fmt_rd64(const unsigned char *p)
{
    return (uint64_t)fmt_rd32(p) | (uint64_t)fmt_rd32(p + 4) << 32;
}
static inline void fmt_wr16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static inline void fmt_wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void fmt_wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* The header's size: 512 (format 1), or 1024 for a format 2 file (changes after build). */
static inline size_t fmt_header_size(const unsigned char *img, size_t len)
{
    return len >= FMT_HEADER_2 && fmt_rd32(img + 16) == FMT_HEADER_2 ? FMT_HEADER_2 : FMT_HEADER;
}

/* Number of table entries an image claims, clamped to the table's room. */
static inline uint32_t fmt_n_sections(const unsigned char *img, size_t len)
{
    if (len < FMT_HEADER)
        return 0;
    uint32_t n = fmt_rd32(img + 104), room = fmt_header_size(img, len) == FMT_HEADER_2
                                                 ? FMT_MAX_SECTIONS_2 : FMT_MAX_SECTIONS;
    return n > room ? room : n;
}

/* Offset and length of section `kind`; 0 when the table has no such entry. */
static inline int fmt_find(const unsigned char *img, size_t len, uint32_t kind, uint64_t *off,
                           uint64_t *slen)
{
    for (uint32_t i = 0; i < fmt_n_sections(img, len); i++) {
        const unsigned char *e = img + FMT_TABLE + FMT_ENTRY * i;
        if (fmt_rd32(e) == kind) {
            *off = fmt_rd64(e + 8);
            *slen = fmt_rd64(e + 16);
            return 1;
        }
    }
    return 0;
}

/* Recomputes each in-bounds section's checksum, then the header's. */
static inline void fmt_reseal(unsigned char *img, size_t len)
{
    if (len < FMT_HEADER)
        return;
    for (uint32_t i = 0; i < fmt_n_sections(img, len); i++) {
        unsigned char *e = img + FMT_TABLE + FMT_ENTRY * i;
        uint64_t off = fmt_rd64(e + 8), slen = fmt_rd64(e + 16);
        if (off <= len && slen <= len - off)
            fmt_wr32(e + 4, fmt_crc32c(img + off, (size_t)slen));
    }
    fmt_wr32(img + 20, 0);
    fmt_wr32(img + 20, fmt_crc32c(img, fmt_header_size(img, len)));
}

#endif
