/*
 * test_file.c: the index file. Round trips give identical answers; files are byte-identical
 * across thread counts for one seed and between on-disk and in-memory builds; buffers load
 * like files; damaged files are refused at load, caught by verify, and never crash a query.
 */
#include <dirent.h>
#include <unistd.h>

#include "tests.h"

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

/* Offset and length of section `kind` (docs/FORMAT.md: table at 128, 24-byte entries). */
static int find_section(const unsigned char *img, uint32_t kind, uint64_t *off, uint64_t *len)
{
    for (uint32_t i = 0; i < rd32(img + 104); i++) {
        const unsigned char *e = img + 128 + 24 * i;
        if (rd32(e) == kind) {
            *off = rd64(e + 8);
            *len = rd64(e + 16);
            return 1;
        }
    }
    return 0;
}

/* Re-seals an edited image: section checksums and the header checksum, so only the
 * structure checks can catch the edit. */
static void reseal(unsigned char *img)
{
    for (uint32_t i = 0; i < rd32(img + 104); i++) {
        unsigned char *e = img + 128 + 24 * i;
        wr32(e + 4, t_crc32c(0, img + rd64(e + 8), rd64(e + 16)));
    }
    wr32(img + 20, 0);
    wr32(img + 20, t_crc32c(0, img, 512));
}

static void same_answers(t_ctx *t, copse_index *a, copse_index *b, const float *qs, int nq, int dim)
{
    int64_t ia[10], ib[10], na, nb;
    float da[10], db[10];
    for (int q = 0; q < nq; q++) {
        CHECK_OK(t, copse_search_vector(a, NULL, qs + q * dim, 10, -1, ia, da, &na));
        CHECK_OK(t, copse_search_vector(b, NULL, qs + q * dim, 10, -1, ib, db, &nb));
        CHECK(t, na == nb && memcmp(ia, ib, sizeof(int64_t) * (size_t)na) == 0 &&
                     memcmp(da, db, sizeof(float) * (size_t)na) == 0);
    }
}

static void test_round_trip(t_ctx *t)
{
    for (int m = COPSE_ANGULAR; m <= COPSE_HAMMING; m++) {
        int dim = m == COPSE_HAMMING ? 100 : 12;
        float *x = m == COPSE_HAMMING ? t_bits(t, 1050, dim, 1, 0.5) : t_clustered(t, 1050, dim, 8, 0.3);
        copse_index *ix;
        CHECK_OK(t, copse_new(dim, (copse_metric)m, &ix));
        /* Ids with holes, out of order, and labels: all must survive. */
        for (int i = 0; i < 1000; i++)
            CHECK_OK(t, copse_add_item(ix, (int64_t)(1000 - i) * 7, x + i * dim));
        CHECK_OK(t, copse_set_label(ix, 7, "seven"));
        CHECK_OK(t, copse_build(ix, 5, 2));
        const char *path = t_path(t, "rt.copse");
        CHECK_OK(t, copse_save(ix, path));
        copse_index *ld;
        CHECK_OK(t, copse_open(path, 0, &ld));
        CHECK(t, copse_dim(ld) == dim && copse_get_metric(ld) == (copse_metric)m);
        CHECK(t, copse_n_items(ld) == 1000 && copse_n_trees(ld) == 5 && copse_max_id(ld) == 7000);
        CHECK(t, copse_state(ld) == COPSE_STATE_LOADED);
        CHECK(t, copse_file_size(ld) == copse_file_size(ix));
        /* The section table reads the same built (computed) and loaded (from the file). */
        CHECK(t, copse_n_sections(ld) == copse_n_sections(ix) && copse_n_sections(ix) >= 5);
        for (int i = 0; i < copse_n_sections(ix); i++) {
            const char *n1, *n2;
            uint64_t o1, o2, l1, l2;
            uint32_t c1, c2;
            CHECK_OK(t, copse_section_info(ix, i, &n1, &o1, &l1, &c1));
            CHECK_OK(t, copse_section_info(ld, i, &n2, &o2, &l2, &c2));
            CHECK(t, strcmp(n1, n2) == 0 && o1 == o2 && l1 == l2 && c1 == c2 && o1 % 64 == 0);
        }
        CHECK_RC(t, copse_section_info(ix, copse_n_sections(ix), NULL, NULL, NULL, NULL), COPSE_ERR_ARG);
        CHECK_OK(t, copse_verify(ld));
        same_answers(t, ix, ld, x + 1000 * dim, 50, dim);
        float a[100], b[100];
        CHECK_OK(t, copse_get_item(ld, 7 * 555, a));
        CHECK_OK(t, copse_get_item(ix, 7 * 555, b));
        CHECK(t, memcmp(a, b, sizeof(float) * (size_t)dim) == 0);
        int64_t id;
        CHECK_OK(t, copse_find_label(ld, "seven", &id));
        CHECK(t, id == 7);
        /* Saving a loaded index writes the same bytes. */
        CHECK_OK(t, copse_save(ld, t_path(t, "rt2.copse")));
        size_t l1, l2;
        unsigned char *f1 = t_read_file(path, &l1), *f2 = t_read_file(t_path(t, "rt2.copse"), &l2);
        CHECK(t, f1 && f2 && l1 == l2 && memcmp(f1, f2, l1) == 0);
        /* save_buffer writes the file's bytes; too small a buffer is refused. */
        unsigned char *mem = malloc(l1);
        CHECK_RC(t, copse_save_buffer(ix, mem, l1 - 1), COPSE_ERR_ARG);
        CHECK_OK(t, copse_save_buffer(ix, mem, l1));
        CHECK(t, memcmp(mem, f1, l1) == 0);
        memset(mem, 0xAB, l1);
        CHECK_OK(t, copse_save_buffer(ld, mem, l1));
        CHECK(t, memcmp(mem, f1, l1) == 0);
        free(mem);
        /* A buffer, aligned or not, loads like the file. */
        unsigned char *shifted = malloc(l1 + 1);
        memcpy(shifted + 1, f1, l1);
        copse_index *fb;
        CHECK_OK(t, copse_new(dim, (copse_metric)m, &fb));
        CHECK_OK(t, copse_load_buffer(fb, shifted + 1, l1));
        same_answers(t, ix, fb, x + 1000 * dim, 20, dim);
        copse_free(fb);
        free(shifted);
        free(f1);
        free(f2);
        copse_free(ld);
        copse_free(ix);
        free(x);
    }
}

static unsigned char *build_file(t_ctx *t, const float *x, int n, int dim, uint64_t seed,
                                 int threads, size_t *len, const char *name)
{
    copse_index *ix;
    CHECK_OK(t, copse_new(dim, COPSE_ANGULAR, &ix));
    CHECK_OK(t, copse_set_seed(ix, seed));
    CHECK_OK(t, copse_add_items(ix, n, NULL, 0, x));
    CHECK_OK(t, copse_build(ix, 8, threads));
    CHECK_OK(t, copse_save(ix, t_path(t, name)));
    copse_free(ix);
    return t_read_file(t_path(t, name), len);
}

static void test_deterministic(t_ctx *t)
{
    float *x = t_clustered(t, 3000, 20, 10, 0.4);
    size_t l1, l2, l3, l4;
    unsigned char *a = build_file(t, x, 3000, 20, 42, 1, &l1, "t1.copse");
    unsigned char *b = build_file(t, x, 3000, 20, 42, 2, &l2, "t2.copse");
    unsigned char *c = build_file(t, x, 3000, 20, 42, 5, &l3, "t5.copse");
    unsigned char *d = build_file(t, x, 3000, 20, 43, 2, &l4, "s43.copse");
    CHECK(t, a && b && c && d);
    CHECK(t, l1 == l2 && memcmp(a, b, l1) == 0);
    CHECK(t, l1 == l3 && memcmp(a, c, l1) == 0);
    CHECK(t, !(l1 == l4 && memcmp(a, d, l1) == 0)); /* another seed, another forest */
    free(a);
    free(b);
    free(c);
    free(d);
    free(x);
}

static int temp_files_left(t_ctx *t)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", t_path(t, ""));
    DIR *dp = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (dp && (e = readdir(dp)))
        n += strstr(e->d_name, ".tmp-") != NULL;
    if (dp)
        closedir(dp);
    return n;
}

static void test_on_disk(t_ctx *t)
{
    float *x = t_clustered(t, 2000, 16, 10, 0.4);
    copse_index *mem, *disk;
    CHECK_OK(t, copse_new(16, COPSE_DOT, &mem));
    CHECK_OK(t, copse_new(16, COPSE_DOT, &disk));
    char path[512];
    snprintf(path, sizeof path, "%s", t_path(t, "disk.copse"));
    CHECK_OK(t, copse_on_disk_build(disk, path));
    for (int i = 0; i < 2000; i++) {
        CHECK_OK(t, copse_add_item(mem, i, x + i * 16));
        CHECK_OK(t, copse_add_item(disk, i, x + i * 16));
    }
    CHECK_OK(t, copse_add_item(disk, 5, x)); /* replacement goes to the file too */
    CHECK_OK(t, copse_add_item(mem, 5, x));
    CHECK(t, access(path, F_OK) != 0); /* nothing under the target name until build ends */
    float v[16];
    CHECK_OK(t, copse_get_item(disk, 5, v));
    CHECK(t, memcmp(v, x, sizeof v) == 0);
    CHECK_OK(t, copse_build(mem, 6, 2));
    CHECK_OK(t, copse_build(disk, 6, 1));
    CHECK(t, copse_state(disk) == COPSE_STATE_BUILT);
    CHECK_RC(t, copse_unbuild(disk), COPSE_ERR_STATE);
    CHECK_OK(t, copse_save(mem, t_path(t, "mem.copse")));
    size_t l1, l2;
    unsigned char *a = t_read_file(path, &l1), *b = t_read_file(t_path(t, "mem.copse"), &l2);
    CHECK(t, a && b && l1 == l2 && memcmp(a, b, l1) == 0);
    CHECK_OK(t, copse_verify(disk));
    same_answers(t, mem, disk, x, 20, 16);
    CHECK(t, temp_files_left(t) == 0);
    /* An on-disk build abandoned before build leaves nothing behind. */
    copse_index *gone;
    CHECK_OK(t, copse_new(16, COPSE_DOT, &gone));
    CHECK_OK(t, copse_on_disk_build(gone, t_path(t, "gone.copse")));
    CHECK_OK(t, copse_add_item(gone, 0, x));
    copse_free(gone);
    CHECK(t, temp_files_left(t) == 0 && access(t_path(t, "gone.copse"), F_OK) != 0);
    free(a);
    free(b);
    copse_free(mem);
    copse_free(disk);
    free(x);
}

static unsigned char *good_image(t_ctx *t, size_t *len, copse_metric m)
{
    float *x = t_clustered(t, 600, 8, 5, 0.3);
    copse_index *ix = t_index(t, 8, m, x, 600, 4, 1);
    unsigned char *img = NULL;
    if (ix && copse_save(ix, t_path(t, "good.copse")) == COPSE_OK)
        img = t_read_file(t_path(t, "good.copse"), len);
    copse_free(ix);
    free(x);
    return img;
}

/* Loads an edited image; returns the status and, when it loads, runs queries and verify. */
static int try_image(t_ctx *t, const unsigned char *img, size_t len, int *verify_rc)
{
    copse_index *ix;
    copse_new(8, COPSE_EUCLIDEAN, &ix);
    int rc = copse_load_buffer(ix, img, len);
    *verify_rc = COPSE_OK;
    if (rc == COPSE_OK) {
        float q[8] = {0};
        int64_t ids[10], n;
        for (int i = 0; i < 5; i++) {
            q[i] = 1;
            int qrc = copse_search_vector(ix, NULL, q, 10, 500, ids, NULL, &n);
            CHECK(t, qrc == COPSE_OK || qrc == COPSE_ERR_CORRUPT);
        }
        *verify_rc = copse_verify(ix);
    }
    copse_free(ix);
    return rc;
}

static void test_damaged(t_ctx *t)
{
    size_t len;
    unsigned char *img = good_image(t, &len, COPSE_EUCLIDEAN);
    REQUIRE(t, img);
    unsigned char *bad = malloc(len);
    int vrc;
    CHECK_OK(t, try_image(t, img, len, &vrc));
    CHECK_OK(t, vrc);
    /* Truncated anywhere: refused at load. */
    for (size_t cut = 0; cut < len; cut += len / 97 + 1)
        CHECK(t, try_image(t, img, cut, &vrc) != COPSE_OK);
    /* Trailing garbage. */
    unsigned char *longer = calloc(len + 64, 1);
    memcpy(longer, img, len);
    CHECK_RC(t, try_image(t, longer, len + 64, &vrc), COPSE_ERR_CORRUPT);
    free(longer);
    /* Wrong magic, future version, foreign byte order, flipped header byte. */
    memcpy(bad, img, len);
    bad[1] = 'X';
    CHECK_RC(t, try_image(t, bad, len, &vrc), COPSE_ERR_NOTCOPSE);
    memcpy(bad, img, len);
    bad[12] = COPSE_FORMAT_MAJOR + 1;
    CHECK_RC(t, try_image(t, bad, len, &vrc), COPSE_ERR_VERSION);
    memcpy(bad, img, len);
    wr32(bad + 8, __builtin_bswap32(rd32(img + 8)));
    CHECK_RC(t, try_image(t, bad, len, &vrc), COPSE_ERR_VERSION);
    for (size_t at = 16; at < 512; at += 7) {
        memcpy(bad, img, len);
        bad[at] ^= 0x40;
        CHECK_RC(t, try_image(t, bad, len, &vrc), COPSE_ERR_CORRUPT);
    }
    /* A flipped byte in any section: loads (sections are not read at load) but verify finds
     * the checksum mismatch, and queries never crash. */
    for (size_t at = 512; at < len; at += len / 61 + 1) {
        memcpy(bad, img, len);
        bad[at] ^= 0x5a;
        if (try_image(t, bad, len, &vrc) == COPSE_OK)
            CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    }
    free(bad);
    free(img);
}

/* Structural damage behind valid checksums: only verify and the query-time bounds checks
 * can see it. */
static void test_structure(t_ctx *t)
{
    size_t len;
    unsigned char *img = good_image(t, &len, COPSE_EUCLIDEAN);
    REQUIRE(t, img);
    unsigned char *bad = malloc(len);
    uint64_t off, slen;
    int vrc;
    REQUIRE(t, find_section(img, 5, &off, &slen)); /* split nodes */
    /* A child reference out of bounds. */
    memcpy(bad, img, len);
    wr64(bad + off, 1ull << 40);
    reseal(bad);
    CHECK_OK(t, try_image(t, bad, len, &vrc));
    CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    /* A cycle: node 0's child points back at node 0. */
    memcpy(bad, img, len);
    wr64(bad + off, 0);
    wr64(bad + off + 8, 0);
    reseal(bad);
    CHECK_OK(t, try_image(t, bad, len, &vrc));
    CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    /* A leaf item out of bounds, and a leaf running past its section. */
    REQUIRE(t, find_section(img, 7, &off, &slen));
    memcpy(bad, img, len);
    wr32(bad + off, 999999);
    reseal(bad);
    CHECK_OK(t, try_image(t, bad, len, &vrc));
    CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    REQUIRE(t, find_section(img, 6, &off, &slen));
    memcpy(bad, img, len);
    wr64(bad + off, 1ull << 50);
    reseal(bad);
    CHECK_OK(t, try_image(t, bad, len, &vrc));
    CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    /* A graph neighbour out of bounds: verify names it, queries stop with CORRUPT. */
    REQUIRE(t, find_section(img, 12, &off, &slen));
    memcpy(bad, img, len);
    for (uint64_t i = 0; i < slen; i += 4)
        wr32(bad + off + i, 700000);
    reseal(bad);
    CHECK_OK(t, try_image(t, bad, len, &vrc));
    CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    /* A root out of bounds is caught at load. */
    REQUIRE(t, find_section(img, 8, &off, &slen));
    memcpy(bad, img, len);
    wr64(bad + off, 123456789);
    reseal(bad);
    CHECK_RC(t, try_image(t, bad, len, &vrc), COPSE_ERR_CORRUPT);
    free(bad);
    free(img);
}

const t_case file_cases[] = {
    {"file/round_trip", test_round_trip},
    {"file/deterministic", test_deterministic},
    {"file/on_disk", test_on_disk},
    {"file/damaged", test_damaged},
    {"file/structure", test_structure},
    {NULL, NULL},
};
