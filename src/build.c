/*
 * build.c: a whole build, from the builder's rows to every section: the items' norms and ids,
 * the labels and tags, the forest and the graph, each emitted by its producer into one list
 * that the view then adopts. An on-disk build writes the same sections into the file that already
 * holds the rows.
 *
 * Quantized storage (copse_set_storage): the forest and the graph are built from the float
 * rows, which the builder holds until the build ends; only then are the rows replaced by
 * their codes, so the structure is as good as a float32 build's and only the distances
 * queries compute carry the codes' error.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* NORMS holds |x|^2 for angular (so an item's distance to itself is exactly 0: see
 * cp_dist_internal) and, for dot, the extra component that puts items on one sphere. */
static int make_norms(const cp_build_args *a, const unsigned char *rows, uint64_t n,
                      cp_sections *out, cp_err *err)
{
    if (!cp_metric_has_norms(a->g->metric) || n == 0)
        return COPSE_OK;
    float *norms = cp_mallocarray(n, sizeof *norms);
    if (!norms)
        return cp_fail(err, COPSE_ERR_NOMEM, "build: no memory for norms");
    float max_sq = 0;
    for (uint64_t s = 0; s < n; s++) {
        const float *x = (const float *)(rows + s * a->g->row_bytes);
        float sq = a->k->dot(x, x, (size_t)a->g->dim);
        norms[s] = sq;
        if (sq > max_sq)
            max_sq = sq;
    }
    if (a->g->metric == COPSE_DOT)
        for (uint64_t s = 0; s < n; s++)
            norms[s] = sqrtf(max_sq - norms[s] > 0 ? max_sq - norms[s] : 0);
    cp_emit(out, CP_SEC_NORMS, norms, n * sizeof *norms);
    return COPSE_OK;
}

typedef struct id_slot {
    int64_t id;
    uint32_t slot;
} id_slot;

static int cmp_id_slot(const void *a, const void *b)
{
    int64_t x = ((const id_slot *)a)->id, y = ((const id_slot *)b)->id;
    return (x > y) - (x < y);
}

/* Slot -> id and the slots in id order; neither when every id equals its slot. */
static int make_ids(const cp_builder *b, cp_sections *out, cp_err *err)
{
    uint64_t n = b->n, s = 0;
    while (s < n && b->ids[s] == (int64_t)s)
        s++;
    out->meta.max_id = b->max_id;
    if (s == n)
        return COPSE_OK;
    id_slot *pairs = cp_mallocarray(n, sizeof *pairs);
    uint32_t *order = cp_mallocarray(n, sizeof *order);
    int64_t *ids = cp_mallocarray(n, sizeof *ids);
    if (!pairs || !order || !ids) {
        cp_free(pairs);
        cp_free(order);
        cp_free(ids);
        return cp_fail(err, COPSE_ERR_NOMEM, "build: no memory for the id index");
    }
    for (s = 0; s < n; s++)
        pairs[s] = (id_slot){b->ids[s], (uint32_t)s};
    qsort(pairs, n, sizeof *pairs, cmp_id_slot);
    for (s = 0; s < n; s++)
        order[s] = pairs[s].slot;
    cp_free(pairs);
    memcpy(ids, b->ids, n * sizeof *ids);
    cp_emit(out, CP_SEC_SLOT_IDS, ids, n * sizeof *ids);
    cp_emit(out, CP_SEC_ID_ORDER, order, n * sizeof *order);
    return COPSE_OK;
}

/* The QUANT section and the rows' codes (VECTORS), from the float rows. A float16 component
 * out of half's range fails the build before any work is spent on the trees. */
static int make_codes(const cp_build_args *a, const cp_builder *b, const unsigned char *rows,
                      cp_sections *out, cp_quant *z, cp_err *err)
{
    const cp_geom *g = a->g;
    uint64_t n = b->n, len;
    unsigned char *quant = cp_malloc(cp_quant_length(g, a->storage));
    unsigned char *codes = cp_mul_add(n, cp_stride(g, a->storage), 0, &len) ? cp_malloc(len) : NULL;
    if (!quant || !codes) {
        cp_free(quant);
        cp_free(codes);
        return cp_fail(err, COPSE_ERR_NOMEM, "build: no memory for %s codes",
                       cp_storage_name(a->storage));
    }
    cp_quant_train(g, a->storage, rows, n, quant, z);
    cp_emit(out, CP_SEC_QUANT, quant, cp_quant_length(g, a->storage));
    cp_emit(out, CP_SEC_VECTORS, codes, len);
    for (uint64_t s = 0; s < n; s++) {
        const float *x = (const float *)(rows + s * g->row_bytes);
        if (cp_quant_encode(g, z, x, codes + s * z->stride) != COPSE_OK) {
            int i = 0;
            while (i < g->dim && fabsf(x[i]) < 65520.0f)
                i++;
            return cp_fail(err, COPSE_ERR_VALUE, "build: item %lld component %d is %g, beyond "
                           "float16's range (65504): use storage f32 or i8",
                           (long long)b->ids[s], i, (double)x[i]);
        }
    }
    out->meta.storage = a->storage;
    return COPSE_OK;
}

/* Angular norms of the decoded codes, once the forest and graph no longer need the float
 * rows' own: a query's distance is computed to the stored vector, so its norm must be the
 * stored vector's (an item is then at distance ~0 from itself). */
static int code_norms(const cp_build_args *a, const cp_quant *z, cp_sections *out, cp_err *err)
{
    const cp_geom *g = a->g;
    float *norms = (float *)out->sec[CP_SEC_NORMS].data;
    const unsigned char *codes = out->sec[CP_SEC_VECTORS].data;
    if (g->metric != COPSE_ANGULAR || !norms)
        return COPSE_OK;
    float *x = cp_mallocarray((size_t)g->dim, sizeof *x);
    if (!x)
        return cp_fail(err, COPSE_ERR_NOMEM, "build: no memory");
    for (uint64_t s = 0; s < out->meta.n_items; s++) {
        cp_quant_decode(g, z, codes + s * z->stride, x);
        norms[s] = a->k->dot(x, x, (size_t)g->dim);
    }
    cp_free(x);
    return COPSE_OK;
}

/* With a graph the forest only finds seeds, and every item of an opened leaf gets its
 * distance computed, so leaves stay small: 32 beside a graph of 32 neighbours (Fashion-MNIST:
 * 1.12x leaf 64's QPS at recall 0.95 and 1.08x at 0.99, the same index otherwise, for 3% more
 * file), 64 beside a wider one, which large sets get for a file within 1.5x the raw vectors
 * (GloVe: one tree of leaf 64 seeded the walk as well as one of leaf 32, at search_k
 * 200-1200, in 0.6x the forest's bytes). Without a graph (degree 0), leaves grow with the
 * dimension as Annoy's do (dim + 2 items, the space of one split node), which keeps the
 * forest small and its build fast. */
int cp_auto_leaf_size(const cp_geom *g, int degree)
{
    if (g->metric == COPSE_HAMMING)
        return 32;
    int l = g->dim + 2;
    int max = degree == 0 ? 1024 : (degree > CP_DEFAULT_GRAPH_DEGREE ? 64 : 32);
    return l < 16 ? 16 : (l > max ? max : l);
}

/* The graph's degree when none is set. 32 (HNSW's M = 16 on its bottom layer) serves small
 * sets: on Fashion-MNIST (60,000 x 784) degree 48 needed fewer candidates for each recall but
 * lost QPS. A large set is where 32 neighbours do not navigate well (GloVe, 331,479 x 100:
 * recall 0.99 needed search_k 800, where hnswlib M = 32, degree 64, needs 300), so it gets up
 * to 44, as many as 0.44 of a float row holds in ids: with one tree of leaf 64 seeding the
 * walk, that keeps the file within 1.5x the raw vectors. Degree 44 on GloVe reached 0.99 at
 * search_k 500. Quantized rows (f16, i8) leave at least half of a float row's bytes free, and
 * a large set of them gets up to 64 (hnswlib M = 32's bottom layer), 0.64 of the dimension:
 * the walk waits on memory about as long per distance whatever the row's size (GloVe: 86 ns
 * f32, 76 f16, 60-90 i8), so fewer distances is what buys speed. On GloVe degree 64 against
 * 44, f16: 1.29x against 1.01x hnswlib's best QPS at recall 0.95 and 1.14x against 0.83x at
 * 0.99 (degree 56: 1.32x and 0.96x); i8: 1.54x against 1.29x at 0.95, in files of 1.19x and
 * 0.96x the raw vectors (0.99x and 0.76x at 44). */
int cp_auto_graph_degree(const cp_geom *g, uint64_t n, uint32_t storage)
{
    if (g->metric == COPSE_HAMMING || n < CP_WIDE_GRAPH_ITEMS)
        return CP_DEFAULT_GRAPH_DEGREE;
    int quantized = storage != COPSE_STORAGE_F32, max = quantized ? 64 : 44;
    int d = g->dim * (quantized ? 16 : 11) / 25;
    return d < CP_DEFAULT_GRAPH_DEGREE ? CP_DEFAULT_GRAPH_DEGREE : (d > max ? max : d);
}

/* Every section but the float vectors (quantized: their codes too), over rows already in
 * place. n_trees == -1 sizes the forest until it takes half the stored vectors' space
 * (stored, so that quantized storage gets a forest in proportion to its file); with a graph
 * it is one tree, which only seeds the walk from its nearest leaf: the graph finds the
 * neighbours, and on GloVe the bytes of two more trees buy 12 more neighbours per list
 * (cp_auto_graph_degree). */
static int build_sections(const cp_build_args *a, const cp_builder *b, const unsigned char *rows,
                          cp_sections *out, cp_err *err)
{
    uint64_t n = b->n;
    cp_meta *m = &out->meta;
    m->metric = (uint32_t)a->g->metric;
    m->dim = (uint32_t)a->g->dim;
    m->leaf_size = (uint32_t)a->leaf_size;
    m->seed = a->seed;
    m->n_items = n;
    m->max_id = -1;
    cp_quant z;
    int rc = make_norms(a, rows, n, out, err);
    if (rc == COPSE_OK && a->storage != COPSE_STORAGE_F32 && n > 0)
        rc = make_codes(a, b, rows, out, &z, err);
    if (rc == COPSE_OK)
        rc = make_ids(b, out, err);
    if (rc == COPSE_OK)
        rc = cp_labels_build(b, out, err);
    if (rc == COPSE_OK)
        rc = cp_tags_build(b, out, err);
    cp_rows in = {a->g, a->k, rows, out->sec[CP_SEC_NORMS].data, n, a->seed, a->n_threads,
                  a->progress};
    /* No items, no trees: an empty index answers every query with nothing, as Annoy's does. */
    if (rc == COPSE_OK && n > 0)
        rc = cp_forest_grow(&in, a->n_trees, a->leaf_size,
                            a->graph_degree ? 0 : (uint64_t)cp_stride(a->g, a->storage) * n / 2,
                            out, err);
    if (rc == COPSE_OK && a->graph_degree > 0 && n >= 2) {
        m->graph_degree = (uint32_t)a->graph_degree;
        rc = cp_graph_build(&in, m->graph_degree, out, err);
    }
    if (rc == COPSE_OK && out->sec[CP_SEC_QUANT].length)
        rc = code_norms(a, &z, out, err);
    return rc;
}

int cp_build_in_memory(const cp_build_args *a, cp_builder *b, cp_view *v, cp_err *err)
{
    cp_sections out = {0};
    int rc = build_sections(a, b, b->rows, &out, err);
    if (rc != COPSE_OK) {
        cp_sections_free(&out);
        return rc;
    }
    if (!out.sec[CP_SEC_QUANT].length) {
        cp_emit(&out, CP_SEC_VECTORS, b->rows, b->n * a->g->row_bytes);
        b->rows = NULL; /* the view owns them now; quantized, the builder frees them */
    }
    cp_builder_free(b);
    cp_view_adopt(v, &out);
    return COPSE_OK;
}

/* Appends the sections to the builder's file and maps the finished file. */
static int complete_file(const cp_build_args *a, cp_builder *b, void **map, size_t *map_len,
                         cp_err *err)
{
    uint64_t rows_len = b->n * a->g->row_bytes;
    void *rows_map = NULL;
    size_t rows_map_len = 0;
    cp_sections out = {0};
    int rc = COPSE_OK;
    if (b->n > 0)
        rc = cp_io_map_fd(b->disk_fd, CP_HEADER_SIZE + rows_len, &rows_map, &rows_map_len,
                          b->disk_tmp, err);
    const unsigned char *rows = rows_map ? (const unsigned char *)rows_map + CP_HEADER_SIZE : NULL;
    if (rc == COPSE_OK)
        rc = build_sections(a, b, rows, &out, err);
    if (rc == COPSE_OK && b->n > 0)
        out.sec[CP_SEC_VECTORS] = (cp_section){rows, rows_len};
    cp_sink sink = {b->disk_fd, b->disk_tmp, NULL, a->k->crc32c};
    if (rc == COPSE_OK)
        rc = cp_format_emit(&out.meta, out.sec, &sink, 1, err);
    uint64_t size = cp_format_layout(out.sec, NULL);
    cp_sections_free(&out);
    if (rows_map)
        cp_io_unmap(rows_map, rows_map_len);
    if (rc == COPSE_OK)
        rc = cp_io_map_fd(b->disk_fd, size, map, map_len, b->disk_tmp, err);
    return rc;
}

int cp_build_on_disk(const cp_build_args *a, cp_builder *b, cp_view *v, cp_err *err)
{
    void *map = NULL;
    size_t map_len = 0;
    /* Everything that can fail for want of memory or space happens before the rename, while
     * the builder still holds its file: a failure there loses nothing. */
    int rc = complete_file(a, b, &map, &map_len, err);
    if (rc == COPSE_OK)
        rc = cp_io_commit(b->disk_fd, b->disk_tmp, b->disk_path, err);
    if (rc != COPSE_OK) {
        if (map)
            cp_io_unmap(map, map_len);
        return rc;
    }
    b->disk_fd = -1; /* renamed into place: nothing left to discard */
    cp_builder_free(b);
    return cp_view_open_image(v, map, map_len, map, map_len, NULL, a->k->crc32c, err);
}
