/*
 * verify.c: the full check behind copse_verify and `copse verify`. Loading checks only what is
 * cheap (header, bounds, sizes); this reads everything: each section's checksum, then the
 * structure: every reference in bounds, every node and leaf referenced exactly once and
 * reached from a root (so the trees are trees: no cycles, no sharing), every item in every
 * tree exactly once, the id index a sorted permutation, the labels well formed, float16 codes
 * finite (the QUANT section's parameters are checked at load already), every neighbour list,
 * and a changed file's added items' norms and leaf chains (loading maps them as they are:
 * live.c checks them at the first change).
 */
#include <math.h>
#include <string.h>

#include "internal.h"

static int check_checksums(const cp_view *v, cp_crc32c_fn crc, cp_err *err)
{
    for (uint32_t i = 0; i < cp_table_count(v->image); i++) {
        cp_table_entry e = cp_table_get(v->image, i);
        if (crc(0, v->image + e.offset, e.length) != e.crc)
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %u (offset %llu, %llu bytes): "
                           "checksum mismatch", e.kind, (unsigned long long)e.offset,
                           (unsigned long long)e.length);
    }
    return COPSE_OK;
}

typedef struct walk {
    const cp_reader *rd;
    cp_err *err;
    uint8_t *seen_node, *seen_leaf; /* references received */
    uint32_t *item_tree;            /* last tree (+1) each item was met in */
    uint64_t *stack;
} walk;

static int ref_ok(const cp_view *v, uint64_t r)
{
    return (r & CP_LEAF_FLAG) ? (r & ~CP_LEAF_FLAG) < v->n_leaves : r < v->n_split;
}

/* Marks a reference as received; fails on a second one. */
static int receive(walk *w, uint64_t r, uint64_t from_tree)
{
    const cp_view *v = w->rd->v;
    if (!ref_ok(v, r))
        return cp_fail(w->err, COPSE_ERR_CORRUPT, "tree %llu: reference 0x%llx out of bounds "
                       "(%llu split nodes, %llu leaves)", (unsigned long long)from_tree,
                       (unsigned long long)r, (unsigned long long)v->n_split,
                       (unsigned long long)v->n_leaves);
    uint8_t *seen = (r & CP_LEAF_FLAG) ? &w->seen_leaf[r & ~CP_LEAF_FLAG] : &w->seen_node[r];
    if (*seen)
        return cp_fail(w->err, COPSE_ERR_CORRUPT, "tree %llu: %s %llu is referenced twice",
                       (unsigned long long)from_tree, (r & CP_LEAF_FLAG) ? "leaf" : "split node",
                       (unsigned long long)(r & ~CP_LEAF_FLAG));
    *seen = 1;
    return COPSE_OK;
}

static int check_leaf(walk *w, uint64_t leaf, uint64_t tree, uint64_t *items_seen)
{
    const cp_view *v = w->rd->v;
    const cp_leaf *l = &v->leaves[leaf];
    if (l->reserved != 0)
        return cp_fail(w->err, COPSE_ERR_CORRUPT, "leaf %llu: reserved field is 0x%08x, not 0",
                       (unsigned long long)leaf, l->reserved);
    if (l->count == 0 || l->start > v->n_leaf_items || l->count > v->n_leaf_items - l->start ||
        l->count > v->leaf_size)
        return cp_fail(w->err, COPSE_ERR_CORRUPT, "leaf %llu: %u items at %llu (leaf size %d, "
                       "%llu leaf items)", (unsigned long long)leaf, l->count,
                       (unsigned long long)l->start, (int)v->leaf_size,
                       (unsigned long long)v->n_leaf_items);
    for (uint32_t i = 0; i < l->count; i++) {
        uint32_t slot = v->leaf_items[l->start + i];
        if (slot >= v->n_items || w->item_tree[slot] == tree + 1)
            return cp_fail(w->err, COPSE_ERR_CORRUPT, "tree %llu, leaf %llu: item slot %u is "
                           "%s", (unsigned long long)tree, (unsigned long long)leaf, slot,
                           slot >= v->n_items ? "out of bounds" : "in the tree twice");
        w->item_tree[slot] = (uint32_t)(tree + 1);
    }
    *items_seen += l->count;
    return COPSE_OK;
}

static int check_node(walk *w, uint64_t node, uint64_t tree)
{
    const cp_geom *g = w->rd->g;
    const cp_node *nd = (const cp_node *)(w->rd->v->nodes + node * g->node_stride);
    if (g->metric == COPSE_HAMMING && nd->bit >= (uint32_t)g->dim && nd->bit != UINT32_MAX)
        return cp_fail(w->err, COPSE_ERR_CORRUPT, "tree %llu, split node %llu: bit %u >= %d",
                       (unsigned long long)tree, (unsigned long long)node, nd->bit, g->dim);
    if (!isfinite(nd->offset))
        return cp_fail(w->err, COPSE_ERR_CORRUPT, "split node %llu: offset is not finite",
                       (unsigned long long)node);
    for (int d = 0; d < g->plane_dim; d++)
        if (!isfinite(nd->plane[d]))
            return cp_fail(w->err, COPSE_ERR_CORRUPT, "split node %llu: plane component %d is "
                           "not finite", (unsigned long long)node, d);
    return COPSE_OK;
}

static int walk_tree(walk *w, uint64_t tree)
{
    const cp_view *v = w->rd->v;
    uint64_t top = 0, items = 0;
    int rc = receive(w, v->roots[tree], tree);
    w->stack[top++] = v->roots[tree];
    while (rc == COPSE_OK && top > 0) {
        uint64_t r = w->stack[--top];
        if (r & CP_LEAF_FLAG) {
            rc = check_leaf(w, r & ~CP_LEAF_FLAG, tree, &items);
            continue;
        }
        const cp_node *nd = (const cp_node *)(v->nodes + r * w->rd->g->node_stride);
        rc = check_node(w, r, tree);
        for (int c = 0; c < 2 && rc == COPSE_OK; c++) {
            rc = receive(w, nd->child[c], tree);
            w->stack[top++] = nd->child[c];
        }
    }
    if (rc == COPSE_OK && items != v->n_items)
        rc = cp_fail(w->err, COPSE_ERR_CORRUPT, "tree %llu holds %llu items, not %llu",
                     (unsigned long long)tree, (unsigned long long)items,
                     (unsigned long long)v->n_items);
    return rc;
}

static int check_forest(const cp_reader *rd, cp_err *err)
{
    const cp_view *v = rd->v;
    walk w = {rd, err, cp_calloc(v->n_split, 1), cp_calloc(v->n_leaves, 1),
              cp_calloc(v->n_items, sizeof(uint32_t)),
              cp_mallocarray(v->n_split + v->n_leaves + 2, sizeof(uint64_t))};
    int rc = COPSE_OK;
    if (!w.seen_node || !w.seen_leaf || !w.item_tree || !w.stack)
        rc = cp_fail(err, COPSE_ERR_NOMEM, "verify: no memory");
    for (uint64_t t = 0; t < v->n_trees && rc == COPSE_OK; t++)
        rc = walk_tree(&w, t);
    for (uint64_t i = 0; i < v->n_split && rc == COPSE_OK; i++)
        if (!w.seen_node[i])
            rc = cp_fail(err, COPSE_ERR_CORRUPT, "split node %llu is not reached from any root",
                         (unsigned long long)i);
    for (uint64_t i = 0; i < v->n_leaves && rc == COPSE_OK; i++)
        if (!w.seen_leaf[i])
            rc = cp_fail(err, COPSE_ERR_CORRUPT, "leaf %llu is not reached from any root",
                         (unsigned long long)i);
    cp_free(w.seen_node);
    cp_free(w.seen_leaf);
    cp_free(w.item_tree);
    cp_free(w.stack);
    return rc;
}

static int check_items(const cp_reader *rd, cp_err *err)
{
    const cp_view *v = rd->v;
    for (uint64_t s = 0; v->norms && s < v->n_items; s++)
        if (!isfinite(v->norms[s]) || v->norms[s] < 0)
            return cp_fail(err, COPSE_ERR_CORRUPT, "norm of slot %llu is %g",
                           (unsigned long long)s, (double)v->norms[s]);
    if (!v->slot_ids)
        return (int64_t)v->n_items - 1 == v->max_id ? COPSE_OK
               : cp_fail(err, COPSE_ERR_CORRUPT, "largest id %lld, but ids are 0..%llu",
                         (long long)v->max_id, (unsigned long long)v->n_items - 1);
    int64_t prev = -1;
    for (uint64_t i = 0; i < v->n_items; i++) {
        uint32_t s = v->id_order[i];
        if (s >= v->n_items || v->slot_ids[s] <= prev)
            return cp_fail(err, COPSE_ERR_CORRUPT, "id index entry %llu (slot %u) is out of "
                           "bounds or out of order", (unsigned long long)i, s);
        prev = v->slot_ids[s];
    }
    if (prev != v->max_id)
        return cp_fail(err, COPSE_ERR_CORRUPT, "largest id is %lld, header says %lld",
                       (long long)prev, (long long)v->max_id);
    return COPSE_OK;
}

static int check_labels(const cp_reader *rd, cp_err *err)
{
    const cp_view *v = rd->v;
    if (!v->label_offsets)
        return COPSE_OK;
    uint64_t labelled = 0;
    for (uint64_t s = 0; s < v->n_items; s++) {
        uint64_t a = v->label_offsets[s], e = v->label_offsets[s + 1];
        if (e < a || e > v->label_data_len || (e > a && (e == a + 1 || v->label_data[e - 1] != '\0' ||
                                                          memchr(v->label_data + a, 0, e - a - 1))))
            return cp_fail(err, COPSE_ERR_CORRUPT, "label of slot %llu is malformed",
                           (unsigned long long)s);
        labelled += e > a;
    }
    if (labelled != v->n_labelled || v->label_offsets[0] != 0)
        return cp_fail(err, COPSE_ERR_CORRUPT, "%llu labels, header says %llu",
                       (unsigned long long)labelled, (unsigned long long)v->n_labelled);
    for (uint64_t i = 0; i < v->n_labelled; i++) {
        uint32_t s = v->label_order[i];
        if (s >= v->n_items || v->label_offsets[s + 1] == v->label_offsets[s])
            return cp_fail(err, COPSE_ERR_CORRUPT, "label index entry %llu is invalid",
                           (unsigned long long)i);
        if (i > 0) {
            uint32_t p = v->label_order[i - 1];
            int c = strcmp(v->label_data + v->label_offsets[p], v->label_data + v->label_offsets[s]);
            if (c > 0 || (c == 0 && cp_view_id(v, p) >= cp_view_id(v, s)))
                return cp_fail(err, COPSE_ERR_CORRUPT, "label index is out of order at %llu",
                               (unsigned long long)i);
        }
    }
    return COPSE_OK;
}

/* Each row's own range of 8-bit codes: finite, and a step that is not negative. */
static int check_row_ranges(const cp_reader *rd, cp_err *err)
{
    const cp_view *v = rd->v;
    size_t dim = (size_t)rd->g->dim;
    for (uint64_t s = 0; s < v->n_items; s++) {
        float lo, step;
        cp_quant_row_range(v->vectors + s * v->quant.stride, dim, &lo, &step);
        if (!isfinite(lo) || !isfinite(step) || step < 0)
            return cp_fail(err, COPSE_ERR_CORRUPT, "vectors: slot %llu has the 8-bit range %g, "
                           "step %g", (unsigned long long)s, (double)lo, (double)step);
    }
    return COPSE_OK;
}

/* Float16 rows must be finite (build refuses what half cannot hold); 8-bit codes have no
 * invalid value, and their shared parameters were checked at load, but not each row's. */
static int check_codes(const cp_reader *rd, cp_err *err)
{
    const cp_view *v = rd->v;
    if (v->quant.mean)
        return check_row_ranges(rd, err);
    if (v->quant.storage != COPSE_STORAGE_F16)
        return COPSE_OK;
    const uint16_t *h = (const uint16_t *)v->vectors;
    for (uint64_t i = 0; i < v->n_items * (uint64_t)rd->g->dim; i++)
        if ((h[i] & 0x7c00u) == 0x7c00u)
            return cp_fail(err, COPSE_ERR_CORRUPT, "vectors: slot %llu component %llu is a "
                           "float16 %s", (unsigned long long)(i / (uint64_t)rd->g->dim),
                           (unsigned long long)(i % (uint64_t)rd->g->dim),
                           h[i] & 0x3ffu ? "NaN" : "infinity");
    return COPSE_OK;
}

int cp_check_lists(const uint32_t *lists, uint64_t n, uint32_t deg, uint64_t bound,
                   const char *what, cp_err *err)
{
    for (uint64_t s = 0; s < n; s++) {
        const uint32_t *nb = lists + s * deg;
        uint64_t j = 0;
        while (j < deg && nb[j] < bound)
            j++;
        while (j < deg && nb[j] == UINT32_MAX)
            j++;
        if (j < deg)
            return cp_fail(err, COPSE_ERR_CORRUPT, "%s: place %llu of item %llu's list holds %u "
                           "(%llu items)", what, (unsigned long long)j, (unsigned long long)s,
                           nb[j], (unsigned long long)bound);
    }
    return COPSE_OK;
}

/* Within a float sum's rounding (another kernel set may sum in another order), so that a
 * walk's angular distances and the dot reduction mean what they say. One dot product per
 * item. */
int cp_check_delta_norms(const cp_reader *rd, cp_err *err)
{
    const cp_geom *g = rd->g;
    const cp_view *v = rd->v;
    uint64_t n = v->meta.n_delta;
    float r2 = v->meta.delta_radius * v->meta.delta_radius;
    if (!cp_metric_has_norms(g->metric))
        return COPSE_OK;
    if (g->metric == COPSE_DOT && !isfinite(r2))
        return cp_fail(err, COPSE_ERR_CORRUPT, "delta: radius %g", (double)v->meta.delta_radius);
    for (uint64_t s = 0; s < n; s++) {
        const float *x = (const float *)(v->delta_vectors + s * g->row_bytes);
        float sq = rd->k->dot(x, x, (size_t)g->dim), e = v->delta_norms[s];
        /* angular: the squared norm; dot: e with sq + e^2 = radius^2 */
        float have = g->metric == COPSE_DOT ? sq + e * e : e, want = g->metric == COPSE_DOT ? r2 : sq;
        if (isfinite(e) && e >= 0 && fabsf(have - want) <= 1e-3f * want)
            continue;
        if (g->metric == COPSE_DOT)
            return cp_fail(err, COPSE_ERR_CORRUPT, "delta_norms: item %llu has %g where its "
                           "vector gives %g at delta radius %g", (unsigned long long)s, (double)e,
                           (double)sqrtf(r2 - sq > 0 ? r2 - sq : 0), (double)v->meta.delta_radius);
        return cp_fail(err, COPSE_ERR_CORRUPT, "delta_norms: item %llu has %g where its vector "
                       "gives %g", (unsigned long long)s, (double)e, (double)sq);
    }
    return COPSE_OK;
}

int cp_check_chains(const uint32_t *chains, uint64_t heads, uint64_t links, cp_err *err)
{
    for (uint64_t i = 0; i < heads + links; i++) {
        uint32_t e = chains[i];
        uint64_t below = i < heads ? links : i - heads;
        if (e != UINT32_MAX && e >= below)
            return cp_fail(err, COPSE_ERR_CORRUPT, "delta_leaves: %s %llu holds %u (%s %llu)",
                           i < heads ? "leaf" : "link", (unsigned long long)(i < heads ? i : i - heads),
                           e, i < heads ? "links" : "must be below", (unsigned long long)below);
    }
    return COPSE_OK;
}

/* Both sets of lists: a file's base lists may name its added items too, and its added items'
 * lists either part's (linked, format 2.2), or only the added items (2.0, 2.1). */
static int check_graph(const cp_reader *rd, cp_err *err)
{
    const cp_view *v = rd->v;
    const cp_meta *m = &v->meta;
    uint64_t bound = v->n_items + (m->delta_linked ? m->n_delta : 0);
    int rc = v->graph ? cp_check_lists(v->graph, v->n_items, v->graph_degree, bound, "graph", err)
                      : COPSE_OK;
    if (rc == COPSE_OK && m->n_delta && m->delta_degree)
        rc = cp_check_lists(v->delta_graph, m->n_delta, m->delta_degree,
                            m->delta_linked ? bound : m->n_delta, "delta_graph", err);
    return rc;
}

int cp_verify(const cp_reader *rd, cp_err *err)
{
    const cp_view *v = rd->v;
    uint64_t want_items;
    if (!cp_mul_add(v->n_items, v->n_trees, 0, &want_items) || want_items != v->n_leaf_items)
        return cp_fail(err, COPSE_ERR_CORRUPT, "%llu leaf items for %llu trees of %llu items",
                       (unsigned long long)v->n_leaf_items, (unsigned long long)v->n_trees,
                       (unsigned long long)v->n_items);
    int rc = v->image ? check_checksums(v, rd->k->crc32c, err) : COPSE_OK;
    if (rc == COPSE_OK)
        rc = check_items(rd, err);
    if (rc == COPSE_OK)
        rc = check_codes(rd, err);
    if (rc == COPSE_OK)
        rc = check_labels(rd, err);
    if (rc == COPSE_OK)
        rc = check_forest(rd, err);
    if (rc == COPSE_OK)
        rc = check_graph(rd, err);
    if (rc == COPSE_OK && v->delta_norms)
        rc = cp_check_delta_norms(rd, err);
    if (rc == COPSE_OK && v->delta_leaves)
        rc = cp_check_chains(v->delta_leaves, v->n_leaves, v->meta.n_delta * v->n_trees, err);
    return rc;
}
