/*
 * test_checksum.c: every CRC32C implementation this CPU runs (slicing-by-8, SSE4.2, ARMv8
 * CRC) and each kernel set's choice, against the bit-at-a-time definition (t_crc32c): known
 * vectors, every slicing table entry, and random lengths, alignments and starting values
 * across every block size the interleaved versions use.
 */
#include "tests.h"
#include "../src/internal.h" /* the kernel tables and the CRCs by name */

static const char *const impl_names[] = {"slice8", "sse42", "armv8"};
static const char *const set_names[] = {"scalar", "avx2", "avx512", "neon"};

typedef struct impl {
    const char *name;
    cp_crc32c_fn fn;
} impl;

/* The implementations to test: each named one this CPU runs, each kernel set's, and the one
 * the default kernel table picks (the way the library reaches it). */
static int impls(impl *out)
{
    static cp_kernels sets[sizeof set_names / sizeof *set_names];
    int n = 0;
    for (size_t i = 0; i < sizeof impl_names / sizeof *impl_names; i++)
        if (cp_crc32c_by_name(impl_names[i]))
            out[n++] = (impl){impl_names[i], cp_crc32c_by_name(impl_names[i])};
    for (size_t i = 0; i < sizeof set_names / sizeof *set_names; i++)
        if (cp_kernels_by_name(set_names[i], &sets[i]))
            out[n++] = (impl){set_names[i], sets[i].crc32c};
    out[n++] = (impl){"best", cp_crc32c_best()};
    return n;
}

static void test_known(t_ctx *t)
{
    impl im[16];
    int n = impls(im);
    unsigned char zeros[32] = {0}, ones[32], up[32], down[32];
    for (int i = 0; i < 32; i++) {
        ones[i] = 0xff;
        up[i] = (unsigned char)i;
        down[i] = (unsigned char)(31 - i);
    }
    CHECK(t, t_crc32c(0, "123456789", 9) == 0xE3069283u); /* the reference itself */
    for (int i = 0; i < n; i++) {
        cp_crc32c_fn f = im[i].fn;
        /* The check value of the CRC-32C catalogue entry, and RFC 3720 (iSCSI) B.4. */
        CHECK(t, f(0, "123456789", 9) == 0xE3069283u);
        CHECK(t, f(0, zeros, 32) == 0x8A9136AAu);
        CHECK(t, f(0, ones, 32) == 0x62A8AB43u);
        CHECK(t, f(0, up, 32) == 0x46DD794Eu);
        CHECK(t, f(0, down, 32) == 0x113FDB5Cu);
        CHECK(t, f(0, "", 0) == 0 && f(0x12345678u, "", 0) == 0x12345678u);
        CHECK(t, f(f(0, "1234", 4), "56789", 5) == 0xE3069283u);
        if (t->failed) {
            fprintf(stderr, "  %s fails a known vector\n", im[i].name);
            return;
        }
    }
    printf("  crc32c implementations tested:");
    for (int i = 0; i < n; i++)
        printf(" %s", im[i].name);
    printf("\n");
    /* The best choice is one of the tested ones, and the scalar set keeps the reference. */
    cp_kernels k;
    REQUIRE(t, cp_kernels_by_name("scalar", &k));
    CHECK(t, k.crc32c == cp_crc32c_slice8);
    cp_kernels_best(&k);
    CHECK(t, k.crc32c == cp_crc32c_best());
}

/* One byte set in an 8-byte block, at each position, to each value: every entry of every
 * slicing table is used once, and one wrong entry changes that block's CRC. */
static void test_every_table_entry(t_ctx *t)
{
    impl im[16];
    int n = impls(im);
    for (int pos = 0; pos < 8; pos++)
        for (int v = 0; v < 256; v++) {
            unsigned char b[8] = {0};
            b[pos] = (unsigned char)v;
            uint32_t want = t_crc32c(0, b, 8);
            for (int i = 0; i < n; i++)
                if (im[i].fn(0, b, 8) != want) {
                    fprintf(stderr, "  %s: byte %d = 0x%02x gives 0x%08x, not 0x%08x\n",
                            im[i].name, pos, v, im[i].fn(0, b, 8), want);
                    t->failed = 1;
                }
        }
}

/* Lengths: every one to 1,100 (every tail), each side of multiples of the 3 x 256 and
 * 3 x 8 KiB rounds and of their sums, and random ones to 200 kB, at random offsets from an
 * aligned buffer, from random starting values; then a random split of each buffer, so a
 * CRC continued in pieces matches one over the whole. */
static void test_random(t_ctx *t)
{
    enum { MAX = 200000, PAD = 64 };
    impl im[16];
    int n = impls(im);
    unsigned char *buf = malloc(MAX + PAD);
    for (size_t i = 0; i < MAX + PAD; i++)
        buf[i] = (unsigned char)t_next(t);
    size_t lens[1400];
    int nl = 0;
    for (size_t len = 0; len <= 1100; len++)
        lens[nl++] = len;
    static const size_t rounds[] = {768, 1536, 2304, 24576, 49152, 73728, 24576 + 768,
                                    24576 + 2 * 768 + 5, 49152 + 768 * 7 + 13};
    for (size_t r = 0; r < sizeof rounds / sizeof *rounds; r++)
        for (int d = -9; d <= 9; d++)
            lens[nl++] = (size_t)((long)rounds[r] + d);
    while (nl < 1400 - 1)
        lens[nl++] = (size_t)(t_next(t) % MAX);
    lens[nl++] = MAX;
    for (int l = 0; l < nl; l++) {
        size_t len = lens[l], off = (size_t)(t_next(t) % PAD);
        if (off + len > MAX + PAD)
            off = 0;
        const unsigned char *p = buf + off;
        uint32_t start = l % 3 == 0 ? 0 : (uint32_t)t_next(t);
        uint32_t want = t_crc32c(start, p, len);
        size_t cut = len ? (size_t)(t_next(t) % (len + 1)) : 0;
        for (int i = 0; i < n; i++) {
            uint32_t whole = im[i].fn(start, p, len);
            uint32_t pieces = im[i].fn(im[i].fn(start, p, cut), p + cut, len - cut);
            if (whole != want || pieces != want) {
                fprintf(stderr, "  %s: %zu bytes at offset %zu from 0x%08x: 0x%08x (in pieces "
                        "at %zu: 0x%08x), reference 0x%08x\n", im[i].name, len, off, start,
                        whole, cut, pieces, want);
                t->failed = 1;
            }
        }
    }
    free(buf);
}

const t_case checksum_cases[] = {
    {"checksum/known", test_known},
    {"checksum/table-entries", test_every_table_entry},
    {"checksum/random", test_random},
    {NULL, NULL},
};
