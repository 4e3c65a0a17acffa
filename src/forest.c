/*
 * forest.c: the forest, a producer of the NODES, LEAVES, LEAF_ITEMS and ROOTS sections. Each
 * tree splits the item set recursively until a part fits in a leaf.
 *
 * A split is the hyperplane equidistant from two centroids found by a short two-means over
 * items sampled from the part (Annoy's method: 200 steps, each moving the nearer centroid
 * towards one sampled item). Angular and dot split normalised vectors through the origin; dot
 * uses the augmented vectors of metric.c, so a split separates directions on one sphere.
 * Euclidean and manhattan split at the midpoint of the centroids. Hamming splits on one bit,
 * the most balanced of a few sampled. A split leaving more than 95% on one side is retried
 * (three tries); past 99%, items are dealt to the sides at random and the node's normal is
 * zero, so queries explore both sides alike. This bounds depth even on duplicate vectors.
 *
 * Departures from Annoy: leaves are bounded by leaf_size, not by the space of a node (Annoy's
 * leaves grow with the dimension); items are numbered by dense slots, whatever their ids; and
 * every tree draws from its own random stream seeded by (seed, tree number), so a tree is the
 * same whichever thread builds it and in whatever order: the file is byte-identical for any
 * thread count (Annoy's is not: its #603).
 *
 * Each tree is built into its own buffers with local references; assembly then concatenates
 * the trees in order and rebases the references.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TWO_MEANS_STEPS 200
#define SPLIT_TRIES 3
#define HAMMING_BIT_TRIES 8

/* ---- random stream (xoshiro256**, seeded by splitmix64) ---- */
typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&x);
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

static uint64_t rng_below(rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* ---- per-tree output ---- */
typedef struct tree_out {
    unsigned char *nodes;
    uint64_t n_nodes, cap_nodes;
    cp_leaf *leaves;
    uint64_t n_leaves, cap_leaves;
    uint32_t *items;
    uint64_t n_items;
    uint64_t root;
    int rc;
} tree_out;

typedef struct build_ctx {
    const cp_geom *g;
    const cp_kernels *k;
    const unsigned char *rows;
    const float *norms;
    uint64_t n;
    int leaf_size;
    uint64_t seed;
    uint64_t first; /* work item i builds, into trees[i], the tree of stream first + i */
    tree_out *trees;
    cp_progress *progress;
} build_ctx;

/* Scratch one tree needs besides its output. */
typedef struct tree_work {
    const build_ctx *c;
    tree_out *out;
    rng r;
    uint32_t *idx;
    unsigned char *side;
    float *p, *q, *x; /* centroids and one augmented item, plane_dim floats each */
} tree_work;

static void tree_out_free(tree_out *t)
{
    cp_free(t->nodes);
    cp_free(t->leaves);
    cp_free(t->items);
    memset(t, 0, sizeof *t);
}

static const float *row_f(const build_ctx *c, uint32_t slot)
{
    return (const float *)(c->rows + (size_t)slot * c->g->row_bytes);
}

/* Item as the split sees it: plane_dim floats (augmented for dot) in w->x. */
static const float *split_vector(tree_work *w, uint32_t slot)
{
    const build_ctx *c = w->c;
    if (c->g->metric != COPSE_DOT)
        return row_f(c, slot);
    memcpy(w->x, row_f(c, slot), (size_t)c->g->dim * sizeof(float));
    w->x[c->g->dim] = c->norms[slot];
    return w->x;
}

static int is_spherical(copse_metric m) { return m == COPSE_ANGULAR || m == COPSE_DOT; }

static float vec_norm(const cp_kernels *k, const float *v, size_t n)
{
    return sqrtf(k->dot(v, v, n));
}

static void normalize(const cp_kernels *k, float *v, size_t n)
{
    float nv = vec_norm(k, v, n);
    if (nv > 0)
        for (size_t i = 0; i < n; i++)
            v[i] /= nv;
}

static float split_dist(const build_ctx *c, const float *a, const float *b, size_t n)
{
    if (c->g->metric == COPSE_MANHATTAN)
        return c->k->l1(a, b, n);
    return c->k->l2sq(a, b, n); /* on unit vectors this orders like the angle */
}

/* Two-means over items sampled from idx[0..count): centroids end in w->p and w->q. */
static void two_means(tree_work *w, const uint32_t *idx, uint64_t count)
{
    const build_ctx *c = w->c;
    size_t pd = (size_t)c->g->plane_dim;
    int sph = is_spherical(c->g->metric);
    uint64_t i = rng_below(&w->r, count), j = rng_below(&w->r, count - 1);
    j += (j >= i);
    memcpy(w->p, split_vector(w, idx[i]), pd * sizeof(float));
    memcpy(w->q, split_vector(w, idx[j]), pd * sizeof(float));
    if (sph) {
        normalize(c->k, w->p, pd);
        normalize(c->k, w->q, pd);
    }
    float ic = 1, jc = 1;
    for (int step = 0; step < TWO_MEANS_STEPS; step++) {
        const float *x = split_vector(w, idx[rng_below(&w->r, count)]);
        float norm = sph ? vec_norm(c->k, x, pd) : 1.0f;
        if (!(norm > 0))
            continue;
        float di = ic * split_dist(c, w->p, x, pd), dj = jc * split_dist(c, w->q, x, pd);
        float *m = di < dj ? w->p : (dj < di ? w->q : NULL);
        float *cnt = di < dj ? &ic : &jc;
        if (!m)
            continue;
        /* m = (m * cnt + x / norm) / (cnt + 1), with the divisions taken out of the loop. */
        c->k->blend(m, *cnt / (*cnt + 1), x, 1.0f / (norm * (*cnt + 1)), pd);
        *cnt += 1;
    }
}

/* Fills node's plane and offset from the centroids. */
static void plane_from_means(tree_work *w, cp_node *node)
{
    const build_ctx *c = w->c;
    size_t pd = (size_t)c->g->plane_dim;
    for (size_t d = 0; d < pd; d++)
        node->plane[d] = w->p[d] - w->q[d];
    normalize(c->k, node->plane, pd);
    node->offset = 0;
    if (!is_spherical(c->g->metric)) {
        float off = 0;
        for (size_t d = 0; d < pd; d++)
            off += node->plane[d] * (w->p[d] + w->q[d]) * 0.5f;
        node->offset = -off;
    }
}

static int bit_of(const build_ctx *c, uint32_t slot, uint32_t bit)
{
    uint64_t word;
    memcpy(&word, c->rows + (size_t)slot * c->g->row_bytes + (size_t)(bit / 64) * 8, 8);
    return (int)((word >> (bit % 64)) & 1u);
}

/* Hamming: the most balanced of a few sampled bits. */
static void choose_bit(tree_work *w, const uint32_t *idx, uint64_t count, cp_node *node)
{
    const build_ctx *c = w->c;
    uint64_t best_gap = UINT64_MAX;
    for (int t = 0; t < HAMMING_BIT_TRIES; t++) {
        uint32_t bit = (uint32_t)rng_below(&w->r, (uint64_t)c->g->dim);
        uint64_t ones = 0;
        for (uint64_t i = 0; i < count; i++)
            ones += (uint64_t)bit_of(c, idx[i], bit);
        uint64_t gap = ones * 2 > count ? ones * 2 - count : count - ones * 2;
        if (gap < best_gap) {
            best_gap = gap;
            node->bit = bit;
        }
    }
}

/* Side of each item under node (0 or 1, ties at random); returns how many went to side 1. */
static uint64_t assign_sides(tree_work *w, const uint32_t *idx, uint64_t count, const cp_node *node)
{
    const build_ctx *c = w->c;
    uint64_t ones = 0;
    for (uint64_t i = 0; i < count; i++) {
        int s;
        if (c->g->metric == COPSE_HAMMING) {
            s = bit_of(c, idx[i], node->bit);
        } else {
            /* For dot the items' extra component meets the plane's last entry. */
            float m = c->k->dot(node->plane, row_f(c, idx[i]), (size_t)c->g->dim) + node->offset;
            if (c->g->metric == COPSE_DOT)
                m += node->plane[c->g->dim] * c->norms[idx[i]];
            s = m > 0 ? 1 : (m < 0 ? 0 : (int)(rng_next(&w->r) >> 63));
        }
        w->side[i] = (unsigned char)s;
        ones += (uint64_t)s;
    }
    return ones;
}

static double imbalance(uint64_t ones, uint64_t count)
{
    uint64_t big = ones * 2 > count ? ones : count - ones;
    return (double)big / (double)count;
}

/* Finds a split of idx[0..count) into node; returns the number on side 1 (w->side filled). */
static uint64_t make_split(tree_work *w, const uint32_t *idx, uint64_t count, cp_node *node)
{
    const build_ctx *c = w->c;
    uint64_t ones = 0;
    for (int t = 0; t < SPLIT_TRIES; t++) {
        if (c->g->metric == COPSE_HAMMING) {
            choose_bit(w, idx, count, node);
        } else {
            two_means(w, idx, count);
            plane_from_means(w, node);
        }
        ones = assign_sides(w, idx, count, node);
        if (imbalance(ones, count) <= 0.95)
            return ones;
    }
    if (imbalance(ones, count) <= 0.99)
        return ones;
    /* No useful hyperplane (e.g. duplicates): deal at random under a zero normal. */
    memset(node->plane, 0, (size_t)c->g->plane_dim * sizeof(float));
    node->offset = 0;
    node->bit = UINT32_MAX; /* hamming: no bit, margin 0 */
    do {
        ones = 0;
        for (uint64_t i = 0; i < count; i++) {
            w->side[i] = (unsigned char)(rng_next(&w->r) >> 63);
            ones += w->side[i];
        }
    } while (imbalance(ones, count) > 0.99 && count >= 2);
    return ones;
}

/* Moves side-0 items before side-1 items, keeping each side's order. */
static void partition(tree_work *w, uint32_t *idx, uint64_t count, uint32_t *tmp)
{
    uint64_t a = 0, b = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (w->side[i])
            tmp[b++] = idx[i];
        else
            idx[a++] = idx[i];
    }
    memcpy(idx + a, tmp, b * sizeof *idx);
}

static uint64_t add_leaf(tree_work *w, const uint32_t *idx, uint64_t count)
{
    tree_out *o = w->out;
    if (!cp_grow((void **)&o->leaves, &o->cap_leaves, o->n_leaves + 1, sizeof(cp_leaf))) {
        o->rc = COPSE_ERR_NOMEM;
        return 0;
    }
    memcpy(o->items + o->n_items, idx, count * sizeof *idx);
    o->leaves[o->n_leaves] = (cp_leaf){o->n_items, (uint32_t)count, 0};
    o->n_items += count;
    return CP_LEAF_FLAG | o->n_leaves++;
}

static cp_node *node_at(const tree_work *w, uint64_t i)
{
    return (cp_node *)(w->out->nodes + i * w->c->g->node_stride);
}

/* Builds the subtree over idx[0..count) and returns its local reference. */
static uint64_t build_subtree(tree_work *w, uint32_t *idx, uint64_t count, uint32_t *tmp)
{
    tree_out *o = w->out;
    if (count <= (uint64_t)w->c->leaf_size)
        return add_leaf(w, idx, count);
    size_t stride = w->c->g->node_stride;
    if (!cp_grow((void **)&o->nodes, &o->cap_nodes, o->n_nodes + 1, stride)) {
        o->rc = COPSE_ERR_NOMEM;
        return 0;
    }
    uint64_t me = o->n_nodes++;
    memset(node_at(w, me), 0, stride);
    uint64_t ones = make_split(w, idx, count, node_at(w, me));
    partition(w, idx, count, tmp);
    uint64_t left = build_subtree(w, idx, count - ones, tmp);
    if (o->rc)
        return 0;
    uint64_t right = build_subtree(w, idx + (count - ones), ones, tmp);
    if (o->rc)
        return 0;
    node_at(w, me)->child[0] = left;
    node_at(w, me)->child[1] = right;
    return me;
}

static void build_tree(void *ctx, uint64_t i, int worker)
{
    const build_ctx *c = ctx;
    uint64_t t = c->first + i;
    tree_out *o = &c->trees[i];
    (void)worker; /* a tree depends on its number only, never on who builds it */
    tree_work w = {.c = c, .out = o};
    size_t pd = (size_t)c->g->plane_dim + 1;
    rng_seed(&w.r, c->seed, t);
    w.idx = cp_mallocarray(c->n, sizeof *w.idx);
    uint32_t *tmp = cp_mallocarray(c->n, sizeof *tmp);
    w.side = cp_malloc(c->n);
    w.p = cp_mallocarray(3 * pd, sizeof(float));
    o->items = cp_mallocarray(c->n, sizeof *o->items);
    if (!w.idx || !tmp || !w.side || !w.p || !o->items) {
        o->rc = COPSE_ERR_NOMEM;
    } else {
        w.q = w.p + pd;
        w.x = w.q + pd;
        for (uint64_t s = 0; s < c->n; s++)
            w.idx[s] = (uint32_t)s;
        o->root = build_subtree(&w, w.idx, c->n, tmp);
    }
    cp_free(w.idx);
    cp_free(tmp);
    cp_free(w.side);
    cp_free(w.p);
    cp_progress_step(c->progress);
}

/* ---- assembly ---- */

static uint64_t rebase(uint64_t ref, uint64_t node_base, uint64_t leaf_base)
{
    return (ref & CP_LEAF_FLAG) ? CP_LEAF_FLAG | ((ref & ~CP_LEAF_FLAG) + leaf_base) : ref + node_base;
}

static int assemble(const cp_geom *g, tree_out *trees, uint64_t n_trees, cp_sections *out,
                    cp_err *err)
{
    size_t stride = g->node_stride;
    uint64_t ns = 0, nl = 0, ni = 0;
    for (uint64_t t = 0; t < n_trees; t++) {
        ns += trees[t].n_nodes;
        nl += trees[t].n_leaves;
        ni += trees[t].n_items;
    }
    uint64_t node_bytes;
    if (!cp_mul_add(ns, stride, 0, &node_bytes))
        return cp_fail(err, COPSE_ERR_NOMEM, "build: forest too large");
    unsigned char *nodes = cp_calloc(node_bytes, 1);
    cp_leaf *leaves = cp_mallocarray(nl, sizeof *leaves);
    uint32_t *items = cp_mallocarray(ni, sizeof *items);
    uint64_t *roots = cp_mallocarray(n_trees, sizeof *roots);
    if (!nodes || !leaves || !items || !roots) {
        cp_free(nodes);
        cp_free(leaves);
        cp_free(items);
        cp_free(roots);
        return cp_fail(err, COPSE_ERR_NOMEM, "build: no memory for a forest of %llu nodes",
                       (unsigned long long)ns);
    }
    uint64_t nb = 0, lb = 0, ib = 0;
    for (uint64_t t = 0; t < n_trees; t++) {
        tree_out *o = &trees[t];
        if (o->n_nodes) /* a tree that is one leaf has no nodes buffer */
            memcpy(nodes + nb * stride, o->nodes, o->n_nodes * stride);
        for (uint64_t i = 0; i < o->n_nodes; i++) {
            cp_node *nd = (cp_node *)(nodes + (nb + i) * stride);
            nd->child[0] = rebase(nd->child[0], nb, lb);
            nd->child[1] = rebase(nd->child[1], nb, lb);
        }
        for (uint64_t i = 0; i < o->n_leaves; i++) {
            leaves[lb + i] = o->leaves[i];
            leaves[lb + i].start += ib;
        }
        memcpy(items + ib, o->items, o->n_items * sizeof *items);
        roots[t] = rebase(o->root, nb, lb);
        nb += o->n_nodes;
        lb += o->n_leaves;
        ib += o->n_items;
        tree_out_free(o);
    }
    /* Absent when every tree is one leaf: a zero-length section is never written. */
    if (node_bytes)
        cp_emit(out, CP_SEC_NODES, nodes, node_bytes);
    else
        cp_free(nodes);
    cp_emit(out, CP_SEC_LEAVES, leaves, nl * sizeof *leaves);
    cp_emit(out, CP_SEC_LEAF_ITEMS, items, ni * sizeof *items);
    cp_emit(out, CP_SEC_ROOTS, roots, n_trees * sizeof *roots);
    out->meta.n_split = ns;
    out->meta.n_leaves = nl;
    out->meta.n_leaf_items = ni;
    out->meta.n_trees = n_trees;
    return COPSE_OK;
}

static uint64_t tree_bytes(const tree_out *t, size_t stride)
{
    return t->n_nodes * stride + t->n_leaves * sizeof(cp_leaf) + t->n_items * sizeof(uint32_t) + 8;
}

int cp_forest_grow(const cp_rows *in, int n_trees, int leaf_size, uint64_t target_bytes,
                   cp_sections *out, cp_err *err)
{
    uint64_t want = n_trees > 0 ? (uint64_t)n_trees : 1;
    build_ctx c = {in->g, in->k, in->rows, in->norms, in->n, leaf_size, in->seed, 0, NULL,
                   in->progress};
    c.trees = cp_calloc(n_trees > 0 ? want : 1000, sizeof *c.trees);
    if (!c.trees)
        return cp_fail(err, COPSE_ERR_NOMEM, "build: no memory");
    tree_out *all = c.trees;
    if (n_trees < 0) {
        build_tree(&c, 0, 0);
        uint64_t tb = tree_bytes(&c.trees[0], in->g->node_stride);
        want = (target_bytes + tb - 1) / tb;
        want = want < 1 ? 1 : (want > 1000 ? 1000 : want);
        in->progress->total += want - 1; /* tree 0 was counted as the one tree expected */
        c.first = 1;
        c.trees = all + 1;
    }
    if (want > c.first)
        cp_parallel_for(in->n_threads, want - c.first, build_tree, &c);
    c.trees = all;
    int rc = COPSE_OK;
    for (uint64_t t = 0; t < want && rc == COPSE_OK; t++)
        if (c.trees[t].rc)
            rc = cp_fail(err, c.trees[t].rc, "build: no memory for tree %llu", (unsigned long long)t);
    if (rc == COPSE_OK)
        rc = assemble(in->g, c.trees, want, out, err);
    for (uint64_t t = 0; t < want; t++)
        tree_out_free(&c.trees[t]);
    cp_free(c.trees);
    return rc;
}
