/*
 * annoy.c: reading Annoy's .ann files, so users can switch before they rebuild.
 *
 * An Annoy file is its node array dumped raw: no header, so the dimension and metric must come
 * from the caller. Every node has the same size s; nodes 0..n_items-1 are the items; then
 * come the trees' nodes; the roots are copied at the end. A node with n_descendants == 1 below
 * n_items is an item; one with n_descendants <= K (K = node bytes from `children` on, in
 * int32s) lists its items in `children`; any other is a split with a normal `v`, an offset
 * (euclidean, manhattan: `a`; dot: dot_factor^2, as Annoy's margin adds it) and two children.
 *
 * The conversion keeps Annoy's trees node for node, in Annoy's root order, and marks the view
 * so that search_k counts candidates with repeats, as Annoy counts them: queries then gather
 * the same candidates as Annoy and rank them by the same distances. The file is read into
 * memory (there is nothing to map in copse's layout); copse_save writes a copse file.
 *
 * Node layouts (annoylib.h 1.17, S = int32, T = float or uint64 for hamming):
 *   angular    n_descendants@0  children@4  v@12
 *   euclidean,
 *   manhattan  n_descendants@0  a@4  children@8  v@16
 *   dot        n_descendants@0  children@4  dot_factor@12  v@16
 *   hamming    n_descendants@0  children@4  v@16 (uint64 words; split bit v[0], counted from
 *              the most significant bit of word v[0] / 64)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct annoy_layout {
    size_t s, children, v, extra; /* extra: `a` or dot_factor; 0 when none */
    uint64_t k;
} annoy_layout;

typedef struct conv {
    const cp_geom *g;
    const cp_kernels *k;
    cp_err *err;
    cp_sections *out;
    const unsigned char *img;
    uint64_t n_nodes, m;
    annoy_layout L;
    unsigned char *nodes;
    uint64_t n_split, cap_split;
    cp_leaf *leaves;
    uint64_t n_leaves, cap_leaves;
    uint32_t *items; /* Annoy node indices until remapped to slots */
    uint64_t n_items, cap_items;
    uint64_t *stack;
    int32_t *members; /* one leaf's items, K at most */
    uint32_t *split_keys, *leaf_keys; /* Annoy index of each split and leaf */
    uint64_t cap_skeys, cap_lkeys;
} conv;

static void layout_for(const cp_geom *g, annoy_layout *L)
{
    switch (g->metric) {
    case COPSE_ANGULAR: *L = (annoy_layout){12, 4, 12, 0, 0}; break;
    case COPSE_EUCLIDEAN:
    case COPSE_MANHATTAN: *L = (annoy_layout){16, 8, 16, 4, 0}; break;
    case COPSE_DOT: *L = (annoy_layout){16, 4, 16, 12, 0}; break;
    case COPSE_HAMMING: *L = (annoy_layout){16, 4, 16, 0, 0}; break;
    }
    L->s += g->row_bytes;
    L->k = (L->s - L->children) / 4;
}

static int32_t rd_i32(const unsigned char *p) { int32_t v; memcpy(&v, p, 4); return v; }
static float rd_f32(const unsigned char *p) { float v; memcpy(&v, p, 4); return v; }

static const unsigned char *node_ptr(const conv *c, uint64_t i) { return c->img + i * c->L.s; }
static int32_t n_desc(const conv *c, uint64_t i) { return rd_i32(node_ptr(c, i)); }
static int32_t child(const conv *c, uint64_t i, uint64_t j) { return rd_i32(node_ptr(c, i) + c->L.children + 4 * j); }

/* Annoy's own rule: scan back from the end while n_descendants stays that of the last node;
 * the first node of that run is the last tree's original root when more than one remains. */
static uint64_t find_roots(const conv *c)
{
    uint64_t i = c->n_nodes;
    int32_t m = n_desc(c, c->n_nodes - 1);
    while (i > 0 && n_desc(c, i - 1) == m)
        i--;
    uint64_t n = c->n_nodes - i;
    if (n > 1 && child(c, i, 0) == child(c, c->n_nodes - 1, 0))
        i++, n--;
    return n;
}

static int bad(conv *c, const char *what, uint64_t node)
{
    return cp_fail(c->err, COPSE_ERR_CORRUPT, "Annoy file: %s at node %llu", what,
                   (unsigned long long)node);
}

static uint64_t add_leaf(conv *c, uint64_t annoy, const int32_t *members, uint64_t count)
{
    if (!cp_grow((void **)&c->leaves, &c->cap_leaves, c->n_leaves + 1, sizeof *c->leaves) ||
        !cp_grow((void **)&c->leaf_keys, &c->cap_lkeys, c->n_leaves + 1, sizeof *c->leaf_keys) ||
        !cp_grow((void **)&c->items, &c->cap_items, c->n_items + count, sizeof *c->items))
        return UINT64_MAX;
    c->leaf_keys[c->n_leaves] = (uint32_t)annoy;
    c->leaves[c->n_leaves] = (cp_leaf){c->n_items, (uint32_t)count, 0};
    for (uint64_t i = 0; i < count; i++)
        c->items[c->n_items++] = (uint32_t)members[i];
    return CP_LEAF_FLAG | c->n_leaves++;
}

static void fill_split(conv *c, uint64_t annoy, cp_node *nd)
{
    const cp_geom *g = c->g;
    const unsigned char *p = node_ptr(c, annoy);
    if (g->metric == COPSE_HAMMING) {
        uint64_t b;
        memcpy(&b, p + c->L.v, 8);
        uint64_t bit = (b / 64) * 64 + 63 - b % 64;
        nd->bit = bit < (uint64_t)g->dim ? (uint32_t)bit : UINT32_MAX;
        return;
    }
    memcpy(nd->plane, p + c->L.v, (size_t)g->dim * sizeof(float));
    if (g->metric == COPSE_EUCLIDEAN || g->metric == COPSE_MANHATTAN)
        nd->offset = rd_f32(p + c->L.extra);
    if (g->metric == COPSE_DOT) {
        float df = rd_f32(p + c->L.extra);
        nd->plane[g->dim] = df;
        nd->offset = df * df;
    }
}

/* Converts the tree under Annoy node `root`; returns its copse reference or UINT64_MAX. */
static int convert_tree(conv *c, uint64_t root, uint64_t *out_ref)
{
    size_t stride = c->g->node_stride;
    /* Stack entries: Annoy node, and where its copse reference goes (parent * 2 + side, or
     * UINT64_MAX for the root). */
    uint64_t top = 0, visits = 0;
    c->stack[top++] = root;
    c->stack[top++] = UINT64_MAX;
    while (top > 0) {
        uint64_t dest = c->stack[--top], a = c->stack[--top], ref;
        if (a >= c->n_nodes || ++visits > c->n_nodes)
            return bad(c, "reference out of bounds or cyclic", a);
        int32_t nd = n_desc(c, a);
        if (nd == 1 && a < c->m) {
            int32_t self = (int32_t)a;
            ref = add_leaf(c, a, &self, 1);
        } else if (nd >= 1 && (uint64_t)nd <= c->L.k) {
            int32_t *members = c->members;
            uint64_t n = 0;
            for (int32_t j = 0; j < nd; j++) {
                int32_t it = child(c, a, (uint64_t)j);
                /* Annoy ranks only members that are items; the rest never reach a result. */
                if (it >= 0 && (uint64_t)it < c->n_nodes && n_desc(c, (uint64_t)it) == 1)
                    members[n++] = it;
            }
            if (n == 0)
                return bad(c, "leaf without items", a);
            ref = add_leaf(c, a, members, n);
        } else if (nd > 1) {
            if (!cp_grow((void **)&c->nodes, &c->cap_split, c->n_split + 1, stride) ||
                !cp_grow((void **)&c->split_keys, &c->cap_skeys, c->n_split + 1, sizeof *c->split_keys))
                return cp_fail(c->err, COPSE_ERR_NOMEM, "Annoy file: no memory");
            c->split_keys[c->n_split] = (uint32_t)a;
            ref = c->n_split++;
            cp_node *cn = (cp_node *)(c->nodes + ref * stride);
            memset(cn, 0, stride);
            fill_split(c, a, cn);
            for (int side = 1; side >= 0; side--) {
                int32_t ch = child(c, a, (uint64_t)side);
                if (ch < 0)
                    return bad(c, "negative child", a);
                c->stack[top++] = (uint64_t)ch;
                c->stack[top++] = ref * 2 + (uint64_t)side;
            }
        } else {
            return bad(c, "node without descendants in a tree", a);
        }
        if (ref == UINT64_MAX)
            return cp_fail(c->err, COPSE_ERR_NOMEM, "Annoy file: no memory");
        if (dest == UINT64_MAX)
            *out_ref = ref;
        else
            ((cp_node *)(c->nodes + (dest / 2) * stride))->child[dest % 2] = ref;
    }
    return COPSE_OK;
}

/* Slots for the Annoy items the trees hold, in index order; leaf items become slots. */
static int make_items(conv *c, uint32_t **slot_of_out, uint64_t *n_out)
{
    uint32_t *slot_of = cp_mallocarray(c->n_nodes, sizeof *slot_of);
    if (!slot_of)
        return cp_fail(c->err, COPSE_ERR_NOMEM, "Annoy file: no memory");
    memset(slot_of, 0xff, c->n_nodes * sizeof *slot_of);
    for (uint64_t i = 0; i < c->n_items; i++)
        slot_of[c->items[i]] = 0;
    uint64_t n = 0;
    for (uint64_t i = 0; i < c->n_nodes; i++)
        if (slot_of[i] == 0)
            slot_of[i] = (uint32_t)n++;
    for (uint64_t i = 0; i < c->n_items; i++)
        c->items[i] = slot_of[c->items[i]];
    *slot_of_out = slot_of;
    *n_out = n;
    return COPSE_OK;
}

static int fill_items(conv *c, const uint32_t *slot_of, uint64_t n)
{
    const cp_geom *g = c->g;
    size_t rb = g->row_bytes;
    unsigned char *rows = cp_mallocarray(n, rb);
    int64_t *ids = cp_mallocarray(n, sizeof *ids);
    uint32_t *order = cp_mallocarray(n, sizeof *order);
    float *norms = cp_metric_has_norms(g->metric) ? cp_mallocarray(n, sizeof *norms) : NULL;
    if (!rows || !ids || !order || (cp_metric_has_norms(g->metric) && !norms)) {
        cp_free(rows);
        cp_free(ids);
        cp_free(order);
        cp_free(norms);
        return cp_fail(c->err, COPSE_ERR_NOMEM, "Annoy file: no memory for %llu items",
                       (unsigned long long)n);
    }
    int identity = 1;
    for (uint64_t a = 0; a < c->n_nodes; a++) {
        uint32_t s = slot_of[a];
        if (s == UINT32_MAX)
            continue;
        memcpy(rows + (size_t)s * rb, node_ptr(c, a) + c->L.v, rb);
        ids[s] = (int64_t)a;
        order[s] = s; /* slots follow Annoy's index order, so ids are already sorted */
        identity &= a == s;
        c->out->meta.max_id = (int64_t)a;
        if (g->metric == COPSE_ANGULAR) {
            const float *x = (const float *)(rows + (size_t)s * rb);
            norms[s] = c->k->dot(x, x, (size_t)g->dim);
        } else if (norms) {
            norms[s] = rd_f32(node_ptr(c, a) + c->L.extra);
        }
    }
    c->out->meta.n_items = n;
    cp_emit(c->out, CP_SEC_VECTORS, rows, n * rb);
    if (norms)
        cp_emit(c->out, CP_SEC_NORMS, norms, n * sizeof *norms);
    if (identity) {
        cp_free(ids);
        cp_free(order);
    } else {
        cp_emit(c->out, CP_SEC_SLOT_IDS, ids, n * sizeof *ids);
        cp_emit(c->out, CP_SEC_ID_ORDER, order, n * sizeof *order);
    }
    return COPSE_OK;
}

/* The file's geometry is the caller's: a mismatch shows only as trees that do not add up. */
static int mismatch(conv *c, const char *why)
{
    return cp_fail(c->err, COPSE_ERR_DIM, "not an Annoy index of dimension %d and metric %s%s",
                   c->g->dim, copse_metric_name(c->g->metric), why);
}

static int convert(conv *c)
{
    uint64_t n_roots = find_roots(c);
    int32_t m = n_desc(c, c->n_nodes - 1);
    char why[CP_ERRMSG_SIZE + 8];
    c->out->meta.max_id = -1;
    /* Annoy's empty index is roots without descendants, and nothing else. */
    for (uint64_t i = 0; m == 0 && i < c->n_nodes; i++)
        if (n_desc(c, i) != 0)
            m = -1;
    if (m < 0) {
        snprintf(why, sizeof why, " (its last node has %d descendants)", (int)n_desc(c, c->n_nodes - 1));
        return mismatch(c, why);
    }
    c->m = (uint64_t)m;
    if (c->m == 0)
        return COPSE_OK;
    uint64_t *roots = cp_mallocarray(n_roots, sizeof *roots);
    cp_emit(c->out, CP_SEC_ROOTS, roots, n_roots * sizeof *roots);
    c->stack = cp_mallocarray(2 * c->n_nodes + 4, sizeof *c->stack);
    c->members = cp_mallocarray(c->L.k, sizeof *c->members);
    if (!roots || !c->stack || !c->members)
        return cp_fail(c->err, COPSE_ERR_NOMEM, "Annoy file: no memory");
    /* Annoy's root list runs from the last node backwards. Every tree holds all m items: a
     * file read with the wrong dimension or metric (whose size happens to divide) fails this. */
    for (uint64_t t = 0; t < n_roots; t++) {
        uint64_t before = c->n_items;
        int rc = convert_tree(c, c->n_nodes - 1 - t, &roots[t]);
        if (rc != COPSE_OK) {
            snprintf(why, sizeof why, " (%s)", c->err->msg);
            return mismatch(c, why);
        }
        if (c->n_items - before != c->m) {
            snprintf(why, sizeof why, ": tree %llu holds %llu items, its root says %llu",
                     (unsigned long long)t, (unsigned long long)(c->n_items - before),
                     (unsigned long long)c->m);
            return mismatch(c, why);
        }
    }
    uint32_t *slot_of = NULL;
    uint64_t n = 0;
    int rc = make_items(c, &slot_of, &n);
    if (rc == COPSE_OK && n != c->m) {
        snprintf(why, sizeof why, ": its trees hold %llu distinct items, not %llu",
                 (unsigned long long)n, (unsigned long long)c->m);
        rc = mismatch(c, why);
    }
    if (rc == COPSE_OK)
        rc = fill_items(c, slot_of, n);
    cp_free(slot_of);
    if (rc != COPSE_OK)
        return rc;
    cp_meta *meta = &c->out->meta;
    cp_emit(c->out, CP_SEC_NODES, c->nodes, c->n_split * c->g->node_stride);
    cp_emit(c->out, CP_SEC_LEAVES, c->leaves, c->n_leaves * sizeof(cp_leaf));
    cp_emit(c->out, CP_SEC_LEAF_ITEMS, c->items, c->n_items * sizeof(uint32_t));
    meta->n_split = c->n_split;
    meta->n_leaves = c->n_leaves;
    meta->n_leaf_items = c->n_items;
    meta->n_trees = n_roots;
    cp_emit_block(c->out, c->split_keys);
    cp_emit_block(c->out, c->leaf_keys);
    c->out->split_keys = c->split_keys;
    c->out->leaf_keys = c->leaf_keys;
    c->nodes = NULL;
    c->leaves = NULL;
    c->items = NULL;
    c->split_keys = c->leaf_keys = NULL;
    return COPSE_OK;
}

int cp_annoy_read(const cp_geom *g, const cp_kernels *k, const unsigned char *img, size_t len,
                  const char *path, cp_sections *out, cp_err *err)
{
    conv c = {.g = g, .k = k, .err = err, .out = out, .img = img};
    layout_for(g, &c.L);
    if (c.L.k > 65535)
        return cp_fail(err, COPSE_ERR_DIM, "load_annoy: dimension %d is too large for Annoy "
                       "files copse reads", g->dim);
    if (len % c.L.s != 0 || len / c.L.s > INT32_MAX)
        return cp_fail(err, COPSE_ERR_DIM, "%s: %zu bytes is not a whole number of Annoy "
                       "nodes of %zu bytes: not an Annoy index of dimension %d and metric %s",
                       path, len, c.L.s, g->dim, copse_metric_name(g->metric));
    c.n_nodes = len / c.L.s;
    memset(out, 0, sizeof *out);
    out->meta.metric = (uint32_t)g->metric;
    out->meta.dim = (uint32_t)g->dim;
    out->meta.leaf_size = (uint32_t)c.L.k;
    out->meta.seed = CP_DEFAULT_SEED;
    int rc = convert(&c);
    cp_free(c.nodes);
    cp_free(c.leaves);
    cp_free(c.items);
    cp_free(c.stack);
    cp_free(c.members);
    cp_free(c.split_keys);
    cp_free(c.leaf_keys);
    if (rc != COPSE_OK)
        cp_sections_free(out);
    return rc;
}
