/*
 * gen.c: writes the golden index files and their expected status codes.
 *
 *   golden_gen OUTDIR     writes OUTDIR/NAME.copse and OUTDIR/expected.txt
 *
 * Valid files: one small index per metric (ids dense or sparse, with and without labels),
 * an empty index, a single item, and a file from a "future minor version" carrying a section
 * kind this library does not know (which must be skipped). Broken files are edits of the
 * euclidean one (sparse ids and labels, so every section kind is present): truncations at
 * many offsets, wrong magic, future major version, foreign byte order, flipped bytes in the
 * header, the section table, nodes, leaves, leaf items, vectors and labels, and structural
 * damage behind valid checksums ("resealed", so only the structure checks can see it).
 *
 * expected.txt has one line per file: NAME LOAD VERIFY, where LOAD is the status copse_load
 * must return and VERIFY the status copse_verify must return when the load succeeds ("-"
 * when it must not load). Codes are compared, not bytes, so the files stay meaningful when
 * the format gains sections; tests/golden/check.c reads this file.
 *
 * Expectations come from docs/FORMAT.md: the header (magic, byte order, version, checksum,
 * geometry, sizes, section bounds, roots) is checked at load; section contents (checksums,
 * every reference, every tree) by verify.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "copse.h"
#include "fmt.h"

static const char *outdir;
static FILE *manifest;
static int failures;

static uint64_t rng = 0x5eed5eed12345678ull;
static double unif(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
}

static const char *code_name(int rc)
{
    switch (rc) {
    case COPSE_OK: return "OK";
    case COPSE_ERR_NOTCOPSE: return "NOTCOPSE";
    case COPSE_ERR_VERSION: return "VERSION";
    case COPSE_ERR_CORRUPT: return "CORRUPT";
    case COPSE_ERR_IO: return "IO";
    case -1: return "-";
    default: return "?";
    }
}

/* change_rc: what the first change to the loaded file must return (-1: not tried). */
static void put_file_changed(const char *name, const unsigned char *img, size_t len, int load_rc,
                             int verify_rc, int change_rc)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.copse", outdir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(img, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "golden_gen: cannot write %s: %s\n", path, strerror(errno));
        failures++;
        return;
    }
    fprintf(manifest, "%s %s %s%s%s\n", name, code_name(load_rc),
            load_rc == COPSE_OK ? code_name(verify_rc) : "-", change_rc == -1 ? "" : " ",
            change_rc == -1 ? "" : code_name(change_rc));
}

static void put_file(const char *name, const unsigned char *img, size_t len, int load_rc,
                     int verify_rc)
{
    put_file_changed(name, img, len, load_rc, verify_rc, -1);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

/* Builds and saves a small index; returns its image. */
static unsigned char *make_valid(const char *name, copse_metric m, int dim, int n, int sparse,
                                 int labels, int leaf_size, size_t *len)
{
    copse_index *ix;
    int rc = copse_new(dim, m, &ix);
    float *v = malloc(sizeof(float) * (size_t)dim);
    rc = rc ? rc : copse_set_seed(ix, 7);
    rc = rc ? rc : copse_set_leaf_size(ix, leaf_size);
    for (int i = 0; i < n && rc == COPSE_OK; i++) {
        for (int j = 0; j < dim; j++)
            v[j] = m == COPSE_HAMMING ? (float)(unif() < 0.5) : (float)(unif() * 2 - 1 + (i % 3));
        int64_t id = sparse ? (int64_t)(n - i) * 1000 + 7 : i;
        rc = copse_add_item(ix, id, v);
        if (rc == COPSE_OK && labels && i % 3 != 1) {
            char label[32];
            snprintf(label, sizeof label, "item-%d", (i * 37) % 101);
            rc = copse_set_label(ix, id, label);
        }
        /* Files with labels carry tags too (format 1.2), so every kind is in the base file. */
        uint32_t tags[2] = {(uint32_t)(i % 7), (uint32_t)(60 + i % 4)};
        if (rc == COPSE_OK && labels && i % 4 != 2)
            rc = copse_set_tags(ix, id, tags, 1 + i % 2);
    }
    rc = rc ? rc : copse_build(ix, n > 1 ? 2 + n % 2 : 1, 1);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.copse", outdir, name);
    rc = rc ? rc : copse_save(ix, path);
    if (rc != COPSE_OK) {
        fprintf(stderr, "golden_gen: %s: %s\n", name, copse_errmsg(ix));
        failures++;
    }
    copse_free(ix);
    free(v);
    unsigned char *img = rc == COPSE_OK ? slurp(path, len) : NULL;
    if (img)
        fprintf(manifest, "%s OK OK\n", name);
    return img;
}

/* A fresh copy of the base image to edit. */
static unsigned char *base;
static size_t base_len;
static unsigned char *edit(void)
{
    unsigned char *c = malloc(base_len + 4096);
    memcpy(c, base, base_len);
    return c;
}

static uint64_t sec_off(uint32_t kind, uint64_t *slen)
{
    uint64_t off = 0, l = 0;
    if (!fmt_find(base, base_len, kind, &off, &l)) {
        fprintf(stderr, "golden_gen: the base file has no section %u\n", kind);
        failures++;
    }
    if (slen)
        *slen = l;
    return off;
}

/* Index of the table entry of a kind. */
static int entry_of(uint32_t kind)
{
    for (uint32_t i = 0; i < fmt_n_sections(base, base_len); i++)
        if (fmt_rd32(base + FMT_TABLE + FMT_ENTRY * i) == kind)
            return (int)i;
    failures++;
    return 0;
}

static void broken_header(void)
{
    char name[64];
    unsigned char *c;
    /* Truncations: inside the magic, inside the header, at and around each section's start
     * and end, one byte short. */
    uint64_t cuts[64];
    int nc = 0;
    uint64_t fixed[] = {0, 1, 7, 8, 9, 100, 300, 511, 512, 513};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        cuts[nc++] = fixed[i];
    for (uint32_t i = 0; i < fmt_n_sections(base, base_len); i++) {
        const unsigned char *e = base + FMT_TABLE + FMT_ENTRY * i;
        uint64_t off = fmt_rd64(e + 8), l = fmt_rd64(e + 16);
        cuts[nc++] = off + l / 2;
        cuts[nc++] = off + l - 1;
    }
    cuts[nc++] = base_len - 1;
    for (int i = 0; i < nc; i++) {
        int dup = 0;
        for (int j = 0; j < i; j++)
            dup |= cuts[j] == cuts[i];
        if (dup)
            continue;
        snprintf(name, sizeof name, "trunc-%05llu", (unsigned long long)cuts[i]);
        put_file(name, base, (size_t)cuts[i], cuts[i] < 8 ? COPSE_ERR_NOTCOPSE : COPSE_ERR_CORRUPT, -1);
    }
    /* Trailing bytes. */
    c = edit();
    memset(c + base_len, 0, 64);
    put_file("trailing-64", c, base_len + 64, COPSE_ERR_CORRUPT, -1);
    free(c);

    /* Magic: another file type, a 7-bit transfer, a CR LF -> LF conversion. */
    c = edit();
    memcpy(c, "\x89PNG\r\n\x1a\n", 8);
    put_file("magic-png", c, base_len, COPSE_ERR_NOTCOPSE, -1);
    free(c);
    c = edit();
    c[0] &= 0x7f;
    put_file("magic-7bit", c, base_len, COPSE_ERR_NOTCOPSE, -1);
    free(c);
    c = edit();
    memmove(c + 6, c + 7, base_len - 7); /* "\r\n" -> "\n": one byte shorter */
    put_file("magic-crlf", c, base_len - 1, COPSE_ERR_NOTCOPSE, -1);
    free(c);
    put_file("text-file", (const unsigned char *)"just some text, not an index\n", 29,
             COPSE_ERR_NOTCOPSE, -1);

    /* Versions: a future major (as written, and resealed), major 0, a future minor. Major 2
     * exists since format 2.0 (changes after build): a 1.x file relabelled 2 has the wrong
     * header size for it, which is damage, not a future version. */
    c = edit();
    fmt_wr16(c + 12, 2);
    fmt_reseal(c, base_len);
    put_file("version-major-2-sealed", c, base_len, COPSE_ERR_CORRUPT, -1);
    fmt_wr16(c + 12, 3);
    put_file("version-major-3", c, base_len, COPSE_ERR_VERSION, -1);
    fmt_reseal(c, base_len);
    put_file("version-major-3-sealed", c, base_len, COPSE_ERR_VERSION, -1);
    fmt_wr16(c + 12, 0xffff);
    fmt_reseal(c, base_len);
    put_file("version-major-65535", c, base_len, COPSE_ERR_VERSION, -1);
    fmt_wr16(c + 12, 0);
    fmt_reseal(c, base_len);
    put_file("version-major-0", c, base_len, COPSE_ERR_CORRUPT, -1);
    free(c);

    /* Foreign byte order: the mark alone, and every header field swapped as a big-endian
     * writer would have written it. A mark that is neither is damage. */
    c = edit();
    fmt_wr32(c + 8, 0x0D0C0B0Au);
    put_file("byteorder-mark", c, base_len, COPSE_ERR_VERSION, -1);
    free(c);
    c = edit();
    for (int off = 8; off < 128; off += 4) {
        int w = (off == 12) ? 2 : (off >= 40 && off < 104) || off >= 112 ? 8 : 4;
        if (w == 2) {
            uint16_t a = fmt_rd16(c + 12), b = fmt_rd16(c + 14);
            fmt_wr16(c + 12, (uint16_t)(a >> 8 | a << 8));
            fmt_wr16(c + 14, (uint16_t)(b >> 8 | b << 8));
        } else if (w == 4) {
            fmt_wr32(c + off, __builtin_bswap32(fmt_rd32(c + off)));
        } else {
            fmt_wr64(c + off, __builtin_bswap64(fmt_rd64(c + off)));
            off += 4;
        }
    }
    put_file("byteorder-big-endian", c, base_len, COPSE_ERR_VERSION, -1);
    free(c);
    c = edit();
    fmt_wr32(c + 8, 0x0A0B0C0Eu);
    fmt_reseal(c, base_len);
    put_file("byteorder-bad-mark", c, base_len, COPSE_ERR_CORRUPT, -1);
    free(c);

    /* Flipped bytes in the fixed header and in the section table, checksum left as it was:
     * the header checksum catches every one. */
    for (int at = 16; at < 128 + 24 * (int)fmt_n_sections(base, base_len); at += 11) {
        c = edit();
        c[at] ^= 0x21;
        snprintf(name, sizeof name, "%s-flip-%03d", at < 128 ? "header" : "table", at);
        put_file(name, c, base_len, COPSE_ERR_CORRUPT, -1);
        free(c);
    }
    /* The header checksum itself. */
    c = edit();
    c[21] ^= 1;
    put_file("header-checksum", c, base_len, COPSE_ERR_CORRUPT, -1);
    free(c);
}

/* A little-endian field of 2, 4 or 8 bytes. */
static void put_field(unsigned char *p, int width, uint64_t value)
{
    if (width == 2)
        fmt_wr16(p, (uint16_t)value);
    else if (width == 4)
        fmt_wr32(p, (uint32_t)value);
    else
        fmt_wr64(p, value);
}

/* A header field changed and the file resealed: geometry and counts that disagree. */
static void sealed_field_v(const char *name, int off, int width, uint64_t value, int load_rc,
                           int verify_rc)
{
    unsigned char *c = edit();
    put_field(c + off, width, value);
    fmt_reseal(c, base_len);
    put_file(name, c, base_len, load_rc, verify_rc);
    free(c);
}

static void sealed_field(const char *name, int off, int width, uint64_t value, int load_rc)
{
    sealed_field_v(name, off, width, value, load_rc, -1);
}

static void broken_fields(void)
{
    uint32_t dim = fmt_rd32(base + 28);
    sealed_field("field-metric-9", 24, 4, 9, COPSE_ERR_CORRUPT);
    sealed_field("field-metric-angular", 24, 4, COPSE_ANGULAR, COPSE_ERR_CORRUPT); /* no norms */
    sealed_field("field-dim-0", 28, 4, 0, COPSE_ERR_CORRUPT);
    sealed_field("field-dim-plus-1", 28, 4, dim + 1, COPSE_ERR_CORRUPT);
    sealed_field("field-dim-huge", 28, 4, 0xffffffffu, COPSE_ERR_CORRUPT);
    sealed_field("field-leaf-size-0", 32, 4, 0, COPSE_ERR_CORRUPT);
    sealed_field("field-leaf-size-huge", 32, 4, 70000, COPSE_ERR_CORRUPT);
    sealed_field("field-node-stride", 36, 4, fmt_rd32(base + 36) + 8, COPSE_ERR_CORRUPT);
    sealed_field("field-items-plus-1", 40, 8, fmt_rd64(base + 40) + 1, COPSE_ERR_CORRUPT);
    sealed_field("field-items-0", 40, 8, 0, COPSE_ERR_CORRUPT);
    sealed_field("field-items-huge", 40, 8, UINT64_MAX / 3, COPSE_ERR_CORRUPT);
    sealed_field("field-trees-0", 48, 8, 0, COPSE_ERR_CORRUPT);
    sealed_field("field-trees-plus-1", 48, 8, fmt_rd64(base + 48) + 1, COPSE_ERR_CORRUPT);
    sealed_field("field-split-plus-1", 56, 8, fmt_rd64(base + 56) + 1, COPSE_ERR_CORRUPT);
    sealed_field("field-split-huge", 56, 8, UINT64_MAX / 2, COPSE_ERR_CORRUPT);
    sealed_field("field-leaves-minus-1", 64, 8, fmt_rd64(base + 64) - 1, COPSE_ERR_CORRUPT);
    sealed_field("field-leaf-items-plus-1", 72, 8, fmt_rd64(base + 72) + 1, COPSE_ERR_CORRUPT);
    sealed_field("field-max-id-minus-2", 88, 8, (uint64_t)-2, COPSE_ERR_CORRUPT);
    sealed_field("field-file-size-plus-64", 96, 8, base_len + 64, COPSE_ERR_CORRUPT);
    sealed_field("field-file-size-0", 96, 8, 0, COPSE_ERR_CORRUPT);
    sealed_field("field-sections-17", 104, 4, 17, COPSE_ERR_CORRUPT);
    sealed_field("field-sections-0", 104, 4, 0, COPSE_ERR_CORRUPT);
    sealed_field("field-labelled-too-many", 112, 8, fmt_rd64(base + 40) + 1, COPSE_ERR_CORRUPT);
    sealed_field("field-header-size", 16, 4, 1024, COPSE_ERR_CORRUPT);
}

/* A section table entry changed and the file resealed. */
static void sealed_entry(const char *name, uint32_t kind, int field, uint64_t value, int load_rc)
{
    unsigned char *c = edit();
    unsigned char *e = c + FMT_TABLE + FMT_ENTRY * entry_of(kind);
    if (field == 0)
        fmt_wr32(e, (uint32_t)value);
    else
        fmt_wr64(e + field, value);
    fmt_reseal(c, base_len);
    put_file(name, c, base_len, load_rc, -1);
    free(c);
}

static void broken_table(void)
{
    uint64_t len;
    uint64_t off = sec_off(SEC_LEAVES, &len);
    sealed_entry("table-misaligned", SEC_LEAVES, 8, off + 8, COPSE_ERR_CORRUPT);
    sealed_entry("table-offset-past-end", SEC_LEAVES, 8, (base_len + 64) & ~63ull, COPSE_ERR_CORRUPT);
    sealed_entry("table-offset-in-header", SEC_VECTORS, 8, 64, COPSE_ERR_CORRUPT);
    sealed_entry("table-length-plus-16", SEC_LEAVES, 16, len + 16, COPSE_ERR_CORRUPT);
    sealed_entry("table-length-minus-16", SEC_LEAVES, 16, len - 16, COPSE_ERR_CORRUPT);
    sealed_entry("table-length-wraps", SEC_LEAVES, 16, UINT64_MAX - off + 1 + 64, COPSE_ERR_CORRUPT);
    sealed_entry("table-kind-0", SEC_LABEL_ORDER, 0, 0, COPSE_ERR_CORRUPT);
    sealed_entry("table-kind-unknown", SEC_LABEL_ORDER, 0, 99, COPSE_ERR_CORRUPT);
    sealed_entry("table-kind-twice", SEC_LEAF_ITEMS, 0, SEC_LEAVES, COPSE_ERR_CORRUPT);
    /* The tag section must hold one 8-byte mask per item; kinds 13..15 are reserved. */
    uint64_t tags_len;
    sec_off(SEC_TAGS, &tags_len);
    sealed_entry("tags-length-minus-8", SEC_TAGS, 16, tags_len - 8, COPSE_ERR_CORRUPT);
    sealed_entry("tags-length-plus-8", SEC_TAGS, 16, tags_len + 8, COPSE_ERR_CORRUPT);
    sealed_entry("tags-length-half", SEC_TAGS, 16, tags_len / 2, COPSE_ERR_CORRUPT);
    sealed_entry("tags-length-0", SEC_TAGS, 16, 0, COPSE_ERR_CORRUPT);
    sealed_entry("table-kind-reserved-13", SEC_TAGS, 0, 13, COPSE_ERR_CORRUPT);
    /* A required section (the roots, the last of the basic kinds) removed from the table. */
    unsigned char *c = edit();
    int r = entry_of(SEC_ROOTS), n = (int)fmt_n_sections(base, base_len);
    memmove(c + FMT_TABLE + FMT_ENTRY * r, c + FMT_TABLE + FMT_ENTRY * (r + 1),
            (size_t)(n - r - 1) * FMT_ENTRY);
    memset(c + FMT_TABLE + FMT_ENTRY * (n - 1), 0, FMT_ENTRY);
    fmt_wr32(c + 104, (uint32_t)n - 1);
    fmt_reseal(c, base_len);
    put_file("table-roots-missing", c, base_len, COPSE_ERR_CORRUPT, -1);
    free(c);
    /* Overlapping sections: leaves pointed at the leaf items (same length needed: both are
     * checked against their counts, so the overlap must be caught another way or by verify). */
}

/* Section content damaged. flip: one byte changed, checksums left stale (verify's checksum
 * catches it). The sealed variants keep checksums right so verify's structure checks must. */
static void flip_in(const char *name, uint32_t kind, uint64_t at, unsigned char mask)
{
    uint64_t len;
    uint64_t off = sec_off(kind, &len);
    unsigned char *c = edit();
    c[off + at % len] ^= mask;
    /* Roots are checked at load: a flipped high bit sends a root out of bounds. */
    if (kind == SEC_ROOTS)
        put_file(name, c, base_len, COPSE_ERR_CORRUPT, -1);
    else
        put_file(name, c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
}

static void broken_sections(void)
{
    uint64_t len, off;
    unsigned char *c;
    uint32_t stride = fmt_rd32(base + 36);
    uint64_t n_split = fmt_rd64(base + 56), n_leaves = fmt_rd64(base + 64);
    uint64_t n_items = fmt_rd64(base + 40);
    char name[64];

    static const struct { const char *name; uint32_t kind; } kinds[] = {
        {"vectors", SEC_VECTORS}, {"slot-ids", SEC_SLOT_IDS}, {"id-order", SEC_ID_ORDER},
        {"nodes", SEC_NODES}, {"leaves", SEC_LEAVES}, {"leaf-items", SEC_LEAF_ITEMS},
        {"roots", SEC_ROOTS}, {"label-offsets", SEC_LABEL_OFFSETS},
        {"label-data", SEC_LABEL_DATA}, {"label-order", SEC_LABEL_ORDER}, {"tags", SEC_TAGS}};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s-flip-%d", kinds[k].name, i);
            flip_in(name, kinds[k].kind, (uint64_t)i * 977 + 3, (unsigned char)(0x10 << i));
        }

    /* Nodes: a child out of bounds, a cycle, a shared child, a NaN in a normal, an infinite
     * offset. */
    off = sec_off(SEC_NODES, &len);
    c = edit();
    fmt_wr64(c + off, 1ull << 40);
    fmt_reseal(c, base_len);
    put_file("nodes-child-out-of-bounds", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    c = edit();
    fmt_wr64(c + off, (1ull << 63) | (n_leaves + 5));
    fmt_reseal(c, base_len);
    put_file("nodes-leaf-ref-out-of-bounds", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    c = edit();
    fmt_wr64(c + off, 0);
    fmt_wr64(c + off + 8, 0);
    fmt_reseal(c, base_len);
    put_file("nodes-cycle", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    if (n_split >= 2) {
        c = edit();
        fmt_wr64(c + off + 8, fmt_rd64(c + off));
        fmt_reseal(c, base_len);
        put_file("nodes-shared-child", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
        free(c);
    }
    c = edit();
    float nanf_ = NAN, inff_ = INFINITY;
    memcpy(c + off + 24, &nanf_, 4);
    fmt_reseal(c, base_len);
    put_file("nodes-normal-nan", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    /* FORMAT.md: "All floats in NODES and NORMS are finite" covers the offset too (found
     * here: verify checked only the normal until 24edbc8). */
    c = edit();
    memcpy(c + off + stride + 16, &inff_, 4);
    fmt_reseal(c, base_len);
    put_file("nodes-offset-inf", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    c = edit();
    memcpy(c + off + 16, &nanf_, 4);
    fmt_reseal(c, base_len);
    put_file("nodes-offset-nan", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);

    /* Leaves: empty, over the leaf size, running past LEAF_ITEMS, reserved field set. */
    off = sec_off(SEC_LEAVES, &len);
    c = edit();
    fmt_wr32(c + off + 8, 0);
    fmt_reseal(c, base_len);
    put_file("leaves-count-0", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    c = edit();
    fmt_wr32(c + off + 8, fmt_rd32(base + 32) + 1);
    fmt_reseal(c, base_len);
    put_file("leaves-count-over-leaf-size", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    c = edit();
    fmt_wr64(c + off + 16 * (n_leaves - 1), fmt_rd64(base + 72) - 1);
    fmt_reseal(c, base_len);
    put_file("leaves-past-items", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    c = edit();
    fmt_wr64(c + off, 1ull << 62);
    fmt_reseal(c, base_len);
    put_file("leaves-start-huge", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);

    /* Leaf items: a slot out of range, one slot twice in a tree. */
    off = sec_off(SEC_LEAF_ITEMS, &len);
    c = edit();
    fmt_wr32(c + off + 4, (uint32_t)n_items);
    fmt_reseal(c, base_len);
    put_file("leaf-items-out-of-range", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    c = edit();
    fmt_wr32(c + off + 4, fmt_rd32(c + off));
    fmt_reseal(c, base_len);
    put_file("leaf-items-duplicate", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);

    /* Roots out of bounds are caught at load. */
    off = sec_off(SEC_ROOTS, &len);
    c = edit();
    fmt_wr64(c + off, n_split + 3);
    fmt_reseal(c, base_len);
    put_file("roots-node-out-of-bounds", c, base_len, COPSE_ERR_CORRUPT, -1);
    free(c);
    c = edit();
    fmt_wr64(c + off, (1ull << 63) | n_leaves);
    fmt_reseal(c, base_len);
    put_file("roots-leaf-out-of-bounds", c, base_len, COPSE_ERR_CORRUPT, -1);
    free(c);
    /* Two trees sharing a root: every reference in bounds, but not a forest. */
    c = edit();
    fmt_wr64(c + off + 8, fmt_rd64(c + off));
    fmt_reseal(c, base_len);
    put_file("roots-shared", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);

    /* Ids: order not increasing, a slot out of range, max_id disagreeing. */
    off = sec_off(SEC_ID_ORDER, &len);
    c = edit();
    uint32_t a = fmt_rd32(c + off), b = fmt_rd32(c + off + 4);
    fmt_wr32(c + off, b);
    fmt_wr32(c + off + 4, a);
    fmt_reseal(c, base_len);
    put_file("id-order-unsorted", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    c = edit();
    fmt_wr32(c + off, 0xfffffff0u);
    fmt_reseal(c, base_len);
    put_file("id-order-out-of-range", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    off = sec_off(SEC_SLOT_IDS, &len);
    c = edit();
    fmt_wr64(c + off, (uint64_t)-5);
    fmt_reseal(c, base_len);
    put_file("slot-ids-negative", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    sealed_field_v("field-max-id-wrong", 88, 8, fmt_rd64(base + 88) + 1, COPSE_OK, COPSE_ERR_CORRUPT);
    /* (load accepts it: max_id is only checked against the ids by verify) */

    /* Labels: offsets decreasing, a label without its NUL, order unsorted. */
    off = sec_off(SEC_LABEL_OFFSETS, &len);
    c = edit();
    fmt_wr64(c + off + 8, fmt_rd64(c + off + 16) + 1);
    fmt_reseal(c, base_len);
    put_file("label-offsets-decreasing", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    off = sec_off(SEC_LABEL_DATA, &len);
    c = edit();
    c[off + len - 1] = 'x';
    fmt_reseal(c, base_len);
    put_file("label-data-no-nul", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    off = sec_off(SEC_LABEL_ORDER, &len);
    c = edit();
    a = fmt_rd32(c + off);
    fmt_wr32(c + off, fmt_rd32(c + off + len - 4));
    fmt_wr32(c + off + len - 4, a);
    fmt_reseal(c, base_len);
    put_file("label-order-unsorted", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
}

/* A file from a newer minor version with a section kind this library does not know: it is
 * skipped, and the rest reads as usual. */
static void future_minor(void)
{
    uint32_t n = fmt_n_sections(base, base_len);
    size_t len = (base_len + 63) / 64 * 64 + 64;
    unsigned char *c = calloc(1, len);
    memcpy(c, base, base_len);
    memset(c + len - 64, 0xab, 64);
    unsigned char *e = c + FMT_TABLE + FMT_ENTRY * n;
    fmt_wr32(e, 200);
    fmt_wr64(e + 8, len - 64);
    fmt_wr64(e + 16, 64);
    fmt_wr32(c + 104, n + 1);
    fmt_wr64(c + 96, len);
    fmt_wr16(c + 14, 99);
    fmt_reseal(c, len);
    put_file("valid-future-minor", c, len, COPSE_OK, COPSE_OK);
    /* The same unknown kind in a file of this library's own minor version is damage. */
    fmt_wr16(c + 14, COPSE_FORMAT_MINOR);
    fmt_reseal(c, len);
    put_file("future-kind-current-minor", c, len, COPSE_ERR_CORRUPT, -1);
    /* An unknown kind pointing outside the file: load checks every entry against the
     * file's length, known kind or not (found by the verify fuzzer: until 24edbc8 load
     * skipped unknown kinds unchecked and copse_verify read outside the file). */
    fmt_wr16(c + 14, 99);
    fmt_wr64(e + 8, len + (1u << 20));
    fmt_reseal(c, len);
    put_file("future-kind-out-of-bounds", c, len, COPSE_ERR_CORRUPT, -1);
    free(c);
}

/* Bytes the format promises to be zero, set anyway: a flag is a newer writer's feature that
 * cannot be skipped (VERSION); other reserved bytes and unused table entries are damage, as
 * are two sections sharing bytes; a leaf's reserved field is checked by verify. */
static void reserved_zeros(void)
{
    sealed_field_v("header-flags-set", 108, 4, 1, COPSE_ERR_VERSION, -1);
    /* Flag 1 in a 1.3 file promises quantized vectors: without the quant section, damage. */
    unsigned char *q = edit();
    fmt_wr32(q + 108, 1);
    fmt_wr16(q + 14, 3);
    fmt_reseal(q, base_len);
    put_file("quant-flag-without-section", q, base_len, COPSE_ERR_CORRUPT, -1);
    free(q);
    sealed_field_v("header-reserved-set", 124, 4, 1, COPSE_ERR_CORRUPT, -1);
    unsigned char *c = edit();
    uint32_t n = fmt_n_sections(base, base_len);
    c[FMT_TABLE + FMT_ENTRY * n + 9] = 1;
    fmt_reseal(c, base_len);
    put_file("table-unused-entry-set", c, base_len, COPSE_ERR_CORRUPT, -1);
    free(c);
    /* ROOTS moved onto the start of LEAF_ITEMS: aligned, inside the file, the right length. */
    uint64_t len;
    c = edit();
    fmt_wr64(c + FMT_TABLE + FMT_ENTRY * entry_of(SEC_ROOTS) + 8, sec_off(SEC_LEAF_ITEMS, &len));
    fmt_reseal(c, base_len);
    put_file("sections-overlap", c, base_len, COPSE_ERR_CORRUPT, -1);
    free(c);
    c = edit();
    fmt_wr32(c + sec_off(SEC_LEAVES, &len) + 12, 7);
    fmt_reseal(c, base_len);
    put_file("leaf-reserved-set", c, base_len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
}

enum { CHANGES_N = 40, CHANGES_D = 4 };

/* The small euclidean index the change files start from: CHANGES_N items, seeded, when rc is
 * COPSE_OK (else nothing is made and rc is returned). */
static int changes_start(copse_index **ix, copse_metric metric, uint64_t seed)
{
    int rc = copse_new(CHANGES_D, metric, ix);
    return rc ? rc : copse_set_seed(*ix, seed);
}

/* Adds item id with a fresh random vector (nothing when rc is already a failure). */
static int add_random(copse_index *ix, int rc, int64_t id)
{
    float v[CHANGES_D];
    for (int j = 0; j < CHANGES_D; j++)
        v[j] = (float)unif();
    return rc ? rc : copse_add_item(ix, id, v);
}

/* Saves ix (when rc is COPSE_OK) as the valid file NAME, frees it and reads the file back
 * (NULL, counted as a failure, when anything failed). */
static unsigned char *save_valid(copse_index *ix, int rc, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.copse", outdir, name);
    rc = rc ? rc : copse_save(ix, path);
    copse_free(ix);
    unsigned char *img = rc == COPSE_OK ? slurp(path, len) : NULL;
    if (!img) {
        fprintf(stderr, "golden_gen: %s: %s\n", name, copse_strerror(rc));
        failures++;
        return NULL;
    }
    fprintf(manifest, "%s OK OK\n", name);
    return img;
}

/* A valid index changed after build (format 2), saved as NAME: CHANGES_N items built, 10 new
 * ids and 2 replaced, 3 deleted. Returns its image (the caller's to free) or NULL. */
static unsigned char *changed_file(const char *name, copse_metric metric, size_t *len)
{
    copse_index *ix = NULL;
    int rc = changes_start(&ix, metric, 7);
    for (int i = 0; i < CHANGES_N; i++)
        rc = add_random(ix, rc, i);
    rc = rc ? rc : copse_build(ix, 2, 1);
    for (int i = 0; i < 12; i++) /* 10 new ids, 2 replaced */
        rc = add_random(ix, rc, i < 10 ? 100 + i : i);
    int64_t del[3] = {3, 104, 20};
    rc = rc ? rc : copse_delete_items(ix, 3, del);
    return save_valid(ix, rc, name, len);
}

typedef struct edit_at {
    const char *name;
    uint64_t at;
    int width;
    uint64_t value;
} edit_at;

/* Each edit of img alone, resealed, expected to give these statuses (put_file_changed). */
static void put_edits_as(const unsigned char *img, size_t len, const edit_at *edits, size_t n,
                         int load_rc, int verify_rc, int change_rc)
{
    unsigned char *c = malloc(len);
    for (size_t i = 0; c && i < n; i++) {
        memcpy(c, img, len);
        put_field(c + edits[i].at, edits[i].width, edits[i].value);
        fmt_reseal(c, len);
        put_file_changed(edits[i].name, c, len, load_rc, verify_rc, change_rc);
    }
    free(c);
}

/* Each edit of img alone, resealed: structure damage behind valid checksums, which load
 * must refuse. */
static void put_edits(const unsigned char *img, size_t len, const edit_at *edits, size_t n)
{
    put_edits_as(img, len, edits, n, COPSE_ERR_CORRUPT, -1, -1);
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Changed indexes (format 2.2: the added items linked into the base's graph): valid ones,
 * and their change sections damaged. */
static void changes(void)
{
    size_t len = 0;
    unsigned char *img = changed_file("valid-filed-changes", COPSE_EUCLIDEAN, &len);
    if (!img)
        return;
    uint64_t meta = 0, ml = 0, tomb = 0, tl = 0, ids = 0, il = 0, dead = 0, dl = 0, gr = 0, gl = 0;
    fmt_find(img, len, SEC_DELTA_META, &meta, &ml);
    fmt_find(img, len, SEC_TOMBSTONES, &tomb, &tl);
    fmt_find(img, len, SEC_DELTA_IDS, &ids, &il);
    fmt_find(img, len, SEC_DELTA_DEAD, &dead, &dl);
    fmt_find(img, len, SEC_DELTA_GRAPH, &gr, &gl);
    uint64_t bg = 0, bgl = 0;
    fmt_find(img, len, SEC_GRAPH, &bg, &bgl);
    uint64_t n_delta = fmt_rd64(img + meta), deg = fmt_rd32(img + meta + 8);
    uint64_t n_items = fmt_rd64(img + 40), flags = fmt_rd32(img + 108);
    const edit_at edits[] = {
        {"changes-meta-count", meta, 8, n_delta + 1},
        {"changes-meta-degree", meta + 8, 4, 300},
        {"changes-meta-entry", meta + 12, 4, 1000},
        {"changes-meta-reserved", meta + 40, 8, 1},
        {"changes-tombstone-extra-bit", tomb, 8, fmt_rd64(img + tomb) ^ (1ull << 1)},
        {"changes-tombstone-past-end", tomb, 8, fmt_rd64(img + tomb) | (1ull << 63)},
        {"changes-dead-extra-bit", dead, 8, fmt_rd64(img + dead) ^ (1ull << 0)},
        {"changes-id-negative", ids, 8, (uint64_t)-5},
        {"changes-major-1", 12, 2, 1},
        /* Without the linked flag, the lists name slots a 2.0 file's cannot. */
        {"changes-linked-flag-cleared", 108, 4, flags & ~2ull},
    };
    put_edits(img, len, edits, sizeof edits / sizeof *edits);
    /* The lists are read where mapped, as a base's are, until the first change takes them:
     * loading does not read them, queries check every entry they follow, verify and the first
     * change check all. An added item's neighbour past the added items, one after a list's
     * padding (12 added items: the last of 32 places is padding), and a base item's past them.
     * (The changes-graph-* files of an earlier generator are 2.0 files, checked at load.) */
    const edit_at lists[] = {
        {"linked-graph-out-of-range", gr, 4, n_items + n_delta},
        {"linked-graph-after-padding", gr + 4 * (deg - 1), 4, 1},
        {"changes-base-graph-out-of-range", bg, 4, n_items + n_delta},
    };
    put_edits_as(img, len, lists, 3, COPSE_OK, COPSE_ERR_CORRUPT, COPSE_ERR_CORRUPT);
    /* The added items filed in the forest's leaves (2.3): read where mapped, as the lists
     * are. A chain head past the links, a link to itself (a chain without end), and the
     * section in a 2.2 file, where it is not known. */
    uint64_t lv = 0, lvl = 0;
    fmt_find(img, len, SEC_DELTA_LEAVES, &lv, &lvl);
    uint64_t heads = fmt_rd64(img + 64), links = n_delta * fmt_rd64(img + 48);
    if (lvl != (heads + links) * 4) {
        fprintf(stderr, "golden_gen: valid-filed-changes has no delta_leaves\n");
        failures++;
    }
    const edit_at chains[] = {
        {"filed-chain-head-out-of-range", lv, 4, links},
        {"filed-chain-link-to-itself", lv + 4 * (heads + links - 1), 4, links - 1},
    };
    put_edits_as(img, len, chains, 2, COPSE_OK, COPSE_ERR_CORRUPT, COPSE_ERR_CORRUPT);
    const edit_at minor2[] = {{"filed-leaves-minor-2", 14, 2, 2}};
    put_edits(img, len, minor2, 1);
    /* The linked flag in a 2.1 file: a feature 2.1 does not have. */
    unsigned char *v = malloc(len);
    if (v) {
        memcpy(v, img, len);
        put_field(v + 14, 2, 1);
        fmt_reseal(v, len);
        put_file("changes-linked-minor-1", v, len, COPSE_ERR_VERSION, -1);
    }
    free(v);
    /* A flipped byte in a change section: the checksum sees it (verify), loading does not. */
    unsigned char *c = malloc(len);
    if (c) {
        memcpy(c, img, len);
        c[ids + 1] ^= 0x10;
        put_file("changes-ids-flipped", c, len, COPSE_OK, COPSE_ERR_CORRUPT);
    }
    free(c);
    free(img);
    /* Saved norms are taken too, once finite and what the vectors give, by verify and the
     * first change, as the lists are. (The changes-*-norm-* files of an earlier generator are
     * 2.0 files, checked at load.) */
    static const copse_metric norm_metrics[] = {COPSE_ANGULAR, COPSE_DOT};
    static const char *const names[][4] = {
        {"valid-linked-changes-angular", "linked-angular-norm-nan", "linked-angular-norm-wrong",
         "linked-angular-norm-negative"},
        {"valid-linked-changes-dot", "linked-dot-norm-nan", "linked-dot-norm-wrong",
         "linked-dot-radius-small"},
    };
    for (int m = 0; m < 2; m++) {
        if (!(img = changed_file(names[m][0], norm_metrics[m], &len)))
            continue;
        uint64_t nm = 0, nl = 0;
        fmt_find(img, len, SEC_DELTA_NORMS, &nm, &nl);
        fmt_find(img, len, SEC_DELTA_META, &meta, &ml);
        float first;
        uint32_t bits = fmt_rd32(img + nm + 4);
        memcpy(&first, &bits, 4);
        const edit_at norm_edits[] = {
            {names[m][1], nm + 4, 4, float_bits(NAN)},
            {names[m][2], nm + 4, 4, float_bits(2 * first + 1)},
            /* angular: a negative squared norm; dot: a radius below the norms it covers */
            {names[m][3], m ? meta + 16 : nm + 4, 4, float_bits(m ? 0.01f : -first)},
        };
        put_edits_as(img, len, norm_edits, 3, COPSE_OK, COPSE_ERR_CORRUPT, COPSE_ERR_CORRUPT);
        free(img);
    }
}

/* Quantized storage (format 1.3): valid float16 and 8-bit files (angular codes with a range
 * per row, euclidean ones with a range per dimension), then each one's QUANT section, flag
 * and rows damaged behind valid checksums. The committed valid-i8 and quant-i8-* files are
 * angular ones with a range per dimension, which builds wrote before per-row ranges. */
static void quantized(void)
{
    enum { N = 40, D = 5, QUANT_I8_ROWS = 3 };
    static const struct { const char *name; copse_storage st; copse_metric m; } kinds[] = {
        {"f16", COPSE_STORAGE_F16, COPSE_EUCLIDEAN},
        {"i8-rows", COPSE_STORAGE_I8, COPSE_ANGULAR},
        {"i8-dims", COPSE_STORAGE_I8, COPSE_EUCLIDEAN},
    };
    for (size_t kd = 0; kd < sizeof kinds / sizeof *kinds; kd++) {
        const char *sn = kinds[kd].name;
        int st = kinds[kd].st, rows = st == COPSE_STORAGE_I8 && kinds[kd].m == COPSE_ANGULAR;
        copse_index *ix;
        float v[D];
        int rc = copse_new(D, kinds[kd].m, &ix);
        rc = rc ? rc : copse_set_seed(ix, 7);
        rc = rc ? rc : copse_set_storage(ix, (copse_storage)st);
        for (int i = 0; i < N && rc == COPSE_OK; i++) {
            for (int j = 0; j < D; j++)
                v[j] = (float)(unif() * 4 - 2);
            rc = copse_add_item(ix, i, v);
        }
        rc = rc ? rc : copse_build(ix, 2, 1);
        char name[64], path[1024];
        snprintf(name, sizeof name, "valid-%s", sn);
        snprintf(path, sizeof path, "%s/%s.copse", outdir, name);
        rc = rc ? rc : copse_save(ix, path);
        copse_free(ix);
        size_t len = 0;
        unsigned char *img = rc == COPSE_OK ? slurp(path, &len) : NULL;
        if (!img) {
            fprintf(stderr, "golden_gen: %s: %s\n", name, copse_strerror(rc));
            failures++;
            return;
        }
        fprintf(manifest, "%s OK OK\n", name);
        uint64_t q = 0, ql = 0, vec = 0, vl = 0;
        fmt_find(img, len, SEC_QUANT, &q, &ql);
        fmt_find(img, len, SEC_VECTORS, &vec, &vl);
        float nan = NAN, neg = -1.0f;
        uint32_t nan_bits, neg_bits;
        memcpy(&nan_bits, &nan, 4);
        memcpy(&neg_bits, &neg, 4);
        struct { const char *what; uint64_t at; int width; uint64_t value; int load, verify; } edits[] = {
            {"flag-cleared", 108, 4, 0, COPSE_ERR_CORRUPT, -1},
            {"flag-unknown", 108, 4, 3, COPSE_ERR_VERSION, -1},
            {"storage-unknown", q, 4, 7, COPSE_ERR_VERSION, -1},
            {"storage-f32", q, 4, COPSE_STORAGE_F32, COPSE_ERR_CORRUPT, -1},
            {"storage-other", q, 4, st == COPSE_STORAGE_F16 ? COPSE_STORAGE_I8 : COPSE_STORAGE_F16,
             COPSE_ERR_CORRUPT, -1},
            {"dim-wrong", q + 4, 4, D + 1, COPSE_ERR_CORRUPT, -1},
            {"reserved-set", q + 40, 4, 1, COPSE_ERR_CORRUPT, -1},
            {"section-length", FMT_TABLE + FMT_ENTRY * 0 + 16, 8, vl - 1, COPSE_ERR_CORRUPT, -1},
            /* float16: a code that is an infinity (0x7c00), which build never writes: verify
             * finds it; and the flag means quantized vectors from 1.3 on only. */
            {"code-infinite", vec + 2, 2, 0x7c00u, COPSE_OK, COPSE_ERR_CORRUPT},
            {"minor-2", 14, 2, 2, COPSE_ERR_VERSION, -1},
            /* 8-bit, a range per dimension: a dimension's min NaN, a scale negative */
            {"min-nan", q + 64, 4, nan_bits, COPSE_ERR_CORRUPT, -1},
            {"scale-negative", q + 64 + 4 * D, 4, neg_bits, COPSE_ERR_CORRUPT, -1},
            /* 8-bit, a range per row: the mean NaN (load sees it), a row's step negative or
             * its lo NaN (only verify reads every row), the per-dimension layout's code (its
             * section would be twice as long); and the per-row code in a euclidean file */
            {"mean-nan", q + 64, 4, nan_bits, COPSE_ERR_CORRUPT, -1},
            {"step-negative", vec + D + 4, 4, neg_bits, COPSE_OK, COPSE_ERR_CORRUPT},
            {"lo-nan", vec + 3 * (D + 8) + D, 4, nan_bits, COPSE_OK, COPSE_ERR_CORRUPT},
            {"storage-per-dimension", q, 4, COPSE_STORAGE_I8, COPSE_ERR_CORRUPT, -1},
            {"storage-per-row", q, 4, QUANT_I8_ROWS, COPSE_ERR_CORRUPT, -1},
        };
        /* Which of the layout-specific edits apply: 8 common ones, then f16's 2, per
         * dimension's 2, per row's 4, and the per-row code in a per-dimension file. */
        unsigned char *c = malloc(len);
        for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
            int f16 = i == 8 || i == 9, dims = i == 10 || i == 11, per_row = i >= 12 && i <= 15;
            if ((f16 && st != COPSE_STORAGE_F16) || (dims && (st != COPSE_STORAGE_I8 || rows)) ||
                (per_row && !rows) || (i == 16 && (st != COPSE_STORAGE_I8 || rows)))
                continue;
            memcpy(c, img, len);
            put_field(c + edits[i].at, edits[i].width, edits[i].value);
            fmt_reseal(c, len);
            snprintf(name, sizeof name, "quant-%s-%s", sn, edits[i].what);
            put_file(name, c, len, edits[i].load, edits[i].verify);
        }
        /* A flipped byte in the quant section's parameters: only the checksum sees it
         * (verify); float16's has none past its header, which load reads. */
        memcpy(c, img, len);
        c[q + (st == COPSE_STORAGE_I8 ? 64 + 1 : 60)] ^= 0x01;
        snprintf(name, sizeof name, "quant-%s-flipped", sn);
        put_file(name, c, len, st == COPSE_STORAGE_I8 ? COPSE_OK : COPSE_ERR_CORRUPT,
                 st == COPSE_STORAGE_I8 ? COPSE_ERR_CORRUPT : -1);
        free(c);
        free(img);
    }
}

/* Tags changed after build (format 2.2): base items' in TAGS, added items' in DELTA_TAGS. A
 * valid file, DELTA_TAGS of the wrong length behind valid checksums, a flipped byte in it
 * (only verify's checksum sees it), and a change kind in a 1.x file. */
static void changed_tags(void)
{
    uint32_t tag[2] = {5, 63};
    copse_index *ix = NULL;
    int rc = changes_start(&ix, COPSE_EUCLIDEAN, 11);
    for (int i = 0; i < CHANGES_N; i++) {
        rc = add_random(ix, rc, i);
        if (rc == COPSE_OK && i % 3 == 0)
            rc = copse_set_tags(ix, i, tag, 1);
    }
    rc = rc ? rc : copse_build(ix, 2, 1);
    for (int i = 0; i < 10; i++) {
        rc = add_random(ix, rc, 100 + i);
        if (rc == COPSE_OK && i % 2 == 0)
            rc = copse_set_tags(ix, 100 + i, tag, 2); /* added items' tags */
    }
    for (int i = 1; i < CHANGES_N && rc == COPSE_OK; i += 4)
        rc = copse_set_tags(ix, i, tag + 1, 1); /* base items retagged after build */
    rc = rc ? rc : copse_delete_item(ix, 102);
    size_t len = 0;
    unsigned char *img = save_valid(ix, rc, "valid-linked-changed-tags", &len);
    uint64_t at = 0, tl = 0;
    if (img && !fmt_find(img, len, SEC_DELTA_TAGS, &at, &tl)) {
        fprintf(stderr, "golden_gen: valid-linked-changed-tags has no delta_tags section\n");
        failures++;
    }
    if (!img || !tl) {
        free(img);
        return;
    }
    unsigned char *c = malloc(len);
    uint32_t entry = 0;
    while (fmt_rd32(img + FMT_TABLE + FMT_ENTRY * entry) != SEC_DELTA_TAGS)
        entry++;
    const struct { const char *name; uint64_t length; } lengths[] = {
        {"changes-tags-length-minus-8", tl - 8}, {"changes-tags-length-plus-8", tl + 8},
        {"changes-tags-length-half", tl / 2}};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        memcpy(c, img, len);
        fmt_wr64(c + FMT_TABLE + FMT_ENTRY * entry + 16, lengths[i].length);
        fmt_reseal(c, len);
        put_file(lengths[i].name, c, len, COPSE_ERR_CORRUPT, -1);
    }
    memcpy(c, img, len);
    c[at + 8 * 4 + 7] ^= 0x01; /* an added item's tag 56: loads, verify sees the checksum */
    put_file("changes-tags-flipped", c, len, COPSE_OK, COPSE_ERR_CORRUPT);
    free(c);
    free(img);
    /* A 1.2 file whose tag section claims the added items' kind, which format 1 lacks. */
    c = edit();
    fmt_wr32(c + FMT_TABLE + FMT_ENTRY * entry_of(SEC_TAGS), SEC_DELTA_TAGS);
    fmt_reseal(c, base_len);
    put_file("tags-kind-24-in-format-1", c, base_len, COPSE_ERR_CORRUPT, -1);
    free(c);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: golden_gen OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    mkdir(outdir, 0777);
    char path[1024];
    snprintf(path, sizeof path, "%s/expected.txt", outdir);
    manifest = fopen(path, "w");
    if (!manifest) {
        perror(path);
        return 1;
    }
    fprintf(manifest, "# NAME LOAD VERIFY [CHANGE] (written by tests/golden/gen.c; format %d.%d)\n",
            COPSE_FORMAT_MAJOR, COPSE_FORMAT_MINOR);
    size_t len;
    free(make_valid("valid-angular", COPSE_ANGULAR, 6, 41, 0, 0, 8, &len));
    free(make_valid("valid-manhattan", COPSE_MANHATTAN, 5, 40, 0, 1, 8, &len));
    free(make_valid("valid-dot", COPSE_DOT, 6, 41, 1, 0, 8, &len));
    free(make_valid("valid-hamming", COPSE_HAMMING, 70, 40, 0, 0, 8, &len));
    free(make_valid("valid-single", COPSE_ANGULAR, 3, 1, 1, 1, 0, &len));
    free(make_valid("valid-empty", COPSE_EUCLIDEAN, 4, 0, 0, 0, 0, &len));
    /* The base of every broken file: sparse ids and labels, so every section kind is there. */
    base = make_valid("valid-euclidean", COPSE_EUCLIDEAN, 4, 30, 1, 1, 6, &base_len);
    if (!base)
        return 1;
    broken_header();
    broken_fields();
    broken_table();
    broken_sections();
    future_minor();
    reserved_zeros();
    changes();
    quantized();
    changed_tags();
    free(base);
    fclose(manifest);
    return failures ? 1 : 0;
}
