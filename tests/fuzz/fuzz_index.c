/*
 * fuzz_index.c: libFuzzer target for an index image from a buffer (copse_load_buffer), then
 * every read-only call on what loaded: facts, section table, item lookups, labels, queries by
 * vector and by item, exact and batch queries; then a retag and an add. With FUZZ_VERIFY defined it is the verify
 * target: copse_verify on every image that loads, and when verify accepts an image, queries on
 * it must succeed (a verified index is never "corrupt" at query time).
 *
 * Each input runs twice: as given, and "resealed" (every checksum recomputed, tests/fmt.h),
 * because random mutations almost never keep a CRC32C right and would otherwise stop
 * at the checksum checks. The handle takes the dimension and metric the header claims (when
 * they are plausible), so loads get past the dimension/metric comparison.
 *
 * Any status other than the documented ones, an out-of-range result, or a crash, hang or
 * out-of-bounds read (ASan/UBSan) is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copse.h"
#include "fmt.h"

#define FUZZ_CHECK(cond)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_index: invariant failed at %s:%d: %s\n", __FILE__,          \
                    __LINE__, #cond);                                                         \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

enum { K = 10, MAX_DIM = 4096, MAX_EXACT = 20000 };

/* A query's status: OK, or CORRUPT for a damaged index that has not been verified. */
static void query_rc_ok(int rc, int verified, const copse_scratch *s)
{
    if (rc == COPSE_OK || (!verified && rc == COPSE_ERR_CORRUPT))
        return;
    fprintf(stderr, "fuzz_index: query returned %d (%s): %s (verified %d)\n", rc,
            copse_strerror(rc), copse_scratch_errmsg(s), verified);
    abort();
}

/* Result counts are in range; on a verified index every result is an item (a damaged id
 * index may hide an item from the lookup, so unverified results are only counted). */
static void results_ok(const copse_index *ix, const int64_t *ids, const float *d, int64_t n,
                       int64_t k, int verified)
{
    FUZZ_CHECK(n >= 0 && n <= k);
    for (int64_t i = 0; i < n; i++) {
        FUZZ_CHECK(!verified || copse_has_item(ix, ids[i]) == 1);
        (void)d[i];
    }
}

static int allow_odd(void *ctx, int64_t id)
{
    (void)ctx;
    return id % 2 == 1;
}

static void exercise_loaded(copse_index *ix, int verified)
{
    copse_scratch *s = NULL;
    FUZZ_CHECK(copse_scratch_new(&s) == COPSE_OK);
    int dim = copse_dim(ix);
    int64_t n = copse_n_items(ix), ids[K], found;
    float d[K];
    float *q = calloc((size_t)dim, sizeof *q), *v = calloc((size_t)dim, sizeof *v);
    FUZZ_CHECK(q && v);

    (void)copse_max_id(ix);
    (void)copse_n_trees(ix);
    (void)copse_leaf_size(ix);
    (void)copse_seed(ix);
    (void)copse_file_size(ix);
    int64_t ns, nl;
    copse_n_nodes(ix, &ns, &nl);
    int maj, min;
    copse_file_version(ix, &maj, &min);
    for (int i = 0; i < copse_n_sections(ix); i++) {
        const char *name;
        uint64_t off, len;
        uint32_t crc;
        FUZZ_CHECK(copse_section_info(ix, i, &name, &off, &len, &crc) == COPSE_OK && name);
    }

    /* Queries by vector: the origin, then a few fixed directions. */
    for (int variant = 0; variant < 3; variant++) {
        for (int j = 0; j < dim; j++)
            q[j] = variant == 0 ? 0.0f : (float)((j * 7 + variant) % 5) - 2.0f;
        query_rc_ok(copse_search_vector(ix, s, q, K, -1, ids, d, &found), verified, s);
        if (copse_search_vector(ix, s, q, K, -1, ids, d, &found) == COPSE_OK)
            results_ok(ix, ids, d, found, K, verified);
        query_rc_ok(copse_search_vector(ix, s, q, 3, 64, ids, NULL, &found), verified, s);
    }
    if (n <= MAX_EXACT) {
        int rc = copse_exact_vector(ix, s, q, K, ids, d, &found);
        query_rc_ok(rc, verified, s);
        if (rc == COPSE_OK)
            results_ok(ix, ids, d, found, K, verified);
    }
    float qs[2 * MAX_DIM];
    memcpy(qs, q, sizeof(float) * (size_t)dim);
    memset(qs + dim, 0, sizeof(float) * (size_t)dim);
    int64_t bids[2 * K], counts[2];
    float bd[2 * K];
    query_rc_ok(copse_search_batch(ix, s, qs, 2, K, 50, 0, 1, bids, bd, counts), verified, s);

    /* Filtered: by tag (reads the tag section), by a few ids, by a callback; each approximate,
     * exact and batched. On a verified index every result is allowed. */
    int64_t some[] = {0, 1, 3, 7, 1000, 1007, 2007};
    copse_filter *f[3] = {NULL, NULL, NULL};
    FUZZ_CHECK(copse_filter_new_tags(ix, 0x3, 0, &f[0]) == COPSE_OK);
    FUZZ_CHECK(copse_filter_new_ids(ix, some, 7, &f[1]) == COPSE_OK);
    FUZZ_CHECK(copse_filter_new_callback(allow_odd, NULL, &f[2]) == COPSE_OK);
    for (int i = 0; i < 3; i++) {
        int rc = copse_search_vector_filtered(ix, s, q, K, 40, f[i], ids, d, &found);
        query_rc_ok(rc, verified, s);
        if (rc == COPSE_OK)
            results_ok(ix, ids, d, found, K, verified);
        for (int64_t j = 0; rc == COPSE_OK && verified && i == 2 && j < found; j++)
            FUZZ_CHECK(allow_odd(NULL, ids[j]));
        if (n <= MAX_EXACT)
            query_rc_ok(copse_exact_vector_filtered(ix, s, q, K, f[i], ids, d, &found), verified, s);
        query_rc_ok(copse_search_batch_filtered(ix, s, qs, 2, K, 50, 0, 1, f[i], bids, bd, counts),
                    verified, s);
        copse_filter_free(f[i]);
    }

    /* Items: the first few positions, their vectors, labels and neighbours. */
    int64_t first = -1;
    for (int64_t pos = 0; pos < n && pos < 6; pos++) {
        int64_t id;
        FUZZ_CHECK(copse_item_id_at(ix, pos, &id) == COPSE_OK);
        int has = copse_has_item(ix, id);
        /* Without a verified id index the id lookup may miss; with one it must not. */
        FUZZ_CHECK(!verified || has == 1);
        if (!has)
            continue;
        if (first < 0)
            first = id;
        FUZZ_CHECK(copse_get_item(ix, id, v) == COPSE_OK);
        float dist;
        FUZZ_CHECK(copse_get_distance(ix, id, first, &dist) == COPSE_OK);
        const char *label;
        size_t llen;
        FUZZ_CHECK(copse_get_label(ix, id, &label, &llen) == COPSE_OK);
        if (label) {
            FUZZ_CHECK(label[llen] == '\0');
            int64_t back;
            int rc = copse_find_label(ix, label, &back);
            FUZZ_CHECK(rc == COPSE_OK || rc == COPSE_ERR_NOTFOUND);
            FUZZ_CHECK(!verified || rc == COPSE_OK);
        }
        int rc = copse_search_item(ix, s, id, K, 100, ids, d, &found);
        query_rc_ok(rc, verified, s);
        if (rc == COPSE_OK)
            results_ok(ix, ids, d, found, K, verified);
        if (n <= MAX_EXACT)
            query_rc_ok(copse_exact_item(ix, s, id, 2, ids, d, &found), verified, s);
    }
    /* A change on the loaded image: the first item retagged (the tag section is copied, the
     * image never written), which a tag filter made afterwards and by a verified index's
     * every result must show. */
    if (first >= 0) {
        uint32_t tag = 1;
        uint64_t mask = 0;
        int rc = copse_set_tags(ix, first, &tag, 1);
        FUZZ_CHECK(rc == COPSE_OK || rc == COPSE_ERR_NOMEM);
        FUZZ_CHECK(rc != COPSE_OK || (copse_get_tags(ix, first, &mask) == COPSE_OK && mask == 2));
        copse_filter *tf = NULL;
        FUZZ_CHECK(copse_filter_new_tags(ix, 2, 0, &tf) == COPSE_OK);
        rc = copse_search_vector_filtered(ix, s, q, K, 40, tf, ids, d, &found);
        query_rc_ok(rc, verified, s);
        for (int64_t j = 0; rc == COPSE_OK && verified && j < found; j++)
            FUZZ_CHECK(copse_get_tags(ix, ids[j], &mask) == COPSE_OK && (mask & 2));
        copse_filter_free(tf);
    }
    int64_t last;
    if (n > 0 && copse_item_id_at(ix, n - 1, &last) == COPSE_OK && copse_has_item(ix, last))
        FUZZ_CHECK(copse_get_item(ix, last, v) == COPSE_OK);
    FUZZ_CHECK(copse_item_id_at(ix, n, &last) == COPSE_ERR_ARG);
    int64_t none;
    FUZZ_CHECK(copse_find_label(ix, "\x01no such label", &none) != COPSE_OK);
    /* An item added to the loaded image, a copy of an item's vector under a new id: the first
     * change checks what a load leaves to it (a changed file's lists, norms and leaf chains),
     * and a refused one leaves the index answering. */
    if (first >= 0 && copse_max_id(ix) < INT64_MAX) {
        int rc = copse_add_item(ix, copse_max_id(ix) + 1, v);
        FUZZ_CHECK(rc == COPSE_OK || rc == COPSE_ERR_NOMEM ||
                   (!verified && (rc == COPSE_ERR_CORRUPT || rc == COPSE_ERR_VALUE)));
        FUZZ_CHECK(rc == COPSE_OK || copse_n_items(ix) == n);
        query_rc_ok(copse_search_vector(ix, s, v, K, 40, ids, d, &found), verified, s);
    }
    free(q);
    free(v);
    copse_scratch_free(s);
}

static void exercise(const unsigned char *img, size_t len)
{
    int dim = 8;
    copse_metric m = COPSE_EUCLIDEAN;
    if (len >= 32) {
        uint32_t hd = fmt_rd32(img + 28), hm = fmt_rd32(img + 24);
        if (hd >= 1 && hd <= MAX_DIM)
            dim = (int)hd;
        if (hm <= COPSE_HAMMING)
            m = (copse_metric)hm;
    }
    copse_index *ix = NULL;
    FUZZ_CHECK(copse_new(dim, m, &ix) == COPSE_OK);
    int rc = copse_load_buffer(ix, img, len);
    FUZZ_CHECK(rc == COPSE_OK || rc == COPSE_ERR_NOTCOPSE || rc == COPSE_ERR_VERSION ||
               rc == COPSE_ERR_CORRUPT || rc == COPSE_ERR_DIM || rc == COPSE_ERR_METRIC ||
               rc == COPSE_ERR_NOMEM);
    if (rc != COPSE_OK) {
        FUZZ_CHECK(copse_errmsg(ix)[0] != '\0');
        FUZZ_CHECK(copse_state(ix) == COPSE_STATE_ADDING && copse_n_items(ix) == 0);
    } else {
        FUZZ_CHECK(copse_state(ix) == COPSE_STATE_LOADED);
        int verified = 0;
#ifdef FUZZ_VERIFY
        int vrc = copse_verify(ix);
        FUZZ_CHECK(vrc == COPSE_OK || vrc == COPSE_ERR_CORRUPT);
        FUZZ_CHECK(vrc == COPSE_OK || copse_errmsg(ix)[0] != '\0');
        verified = vrc == COPSE_OK;
        /* A second verify gives the same answer (no state kept between runs). */
        FUZZ_CHECK(copse_verify(ix) == vrc);
#endif
        exercise_loaded(ix, verified);
        FUZZ_CHECK(copse_unload(ix) == COPSE_OK);
    }
    copse_free(ix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exercise(data, size);
    if (size >= FMT_HEADER) {
        unsigned char *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        fmt_reseal(copy, size);
        if (memcmp(copy, data, size) != 0)
            exercise(copy, size);
        free(copy);
    }
    return 0;
}
