/*
 * graph.c: the neighbour graph, a section of the index that queries walk after the forest.
 *
 * The forest alone needs many candidates for high recall, because a query's true neighbours
 * often sit across a split. Each item here keeps a list of items near it; a query takes the
 * forest's best candidates as seeds and walks the lists best-first (as the bottom layer of
 * HNSW does), so it reaches neighbours the forest separated at the cost of a few hundred
 * distances instead of thousands.
 *
 * Building, in the spirit of PyNNDescent's tree initialisation: throwaway random-projection
 * trees with small leaves (their own random streams, never saved) group nearby items; every
 * pair in a leaf is a candidate edge, kept in each item's bounded list of its nearest
 * candidates. One leaf holds each item once per tree, so leaves of a tree are processed in
 * parallel without locks, tree after tree: the graph does not depend on the thread count.
 * Then reverse edges are added (an item a neighbour points at learns of it), which joins
 * regions that one-directional lists leave apart, and each list is cut to the degree,
 * nearest first but skipping a candidate that an already kept neighbour is known to be nearer
 * to (HNSW's heuristic, judged only by distances the lists hold): lists then point in more
 * directions, which on Fashion-MNIST took recall@10 at search_k 40 from 0.959 to 0.991
 * (angular) at no extra distance computations.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define GRAPH_TREES CP_GRAPH_TREES
#define GRAPH_LEAF 32
#define GRAPH_STREAM (1ull << 40) /* far from the stored trees' streams 0, 1, ... */

typedef struct knn_lists {
    const cp_rows *in;
    uint32_t k;
    float *dist;
    uint32_t *id;
    uint32_t *len;
} knn_lists;

/* Offers v as a neighbour of u at distance d: kept if u's list has room or d beats its worst
 * (ties to the smaller slot, so the outcome is independent of the order of offers). */
static void offer(knn_lists *g, uint32_t u, uint32_t v, float d)
{
    float *dd = g->dist + (size_t)u * g->k;
    uint32_t *ii = g->id + (size_t)u * g->k;
    uint32_t n = g->len[u], worst = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (ii[j] == v)
            return;
        if (dd[j] > dd[worst] || (dd[j] == dd[worst] && ii[j] > ii[worst]))
            worst = j;
    }
    if (n < g->k) {
        dd[n] = d;
        ii[n] = v;
        g->len[u] = n + 1;
    } else if (d < dd[worst] || (d == dd[worst] && v < ii[worst])) {
        dd[worst] = d;
        ii[worst] = v;
    }
}

static void leaf_pairs(void *ctx, const uint32_t *items, uint32_t count, int worker)
{
    knn_lists *g = ctx;
    const cp_rows *in = g->in;
    (void)worker;
    for (uint32_t i = 0; i < count; i++)
        for (uint32_t j = i + 1; j < count; j++) {
            float d = cp_dist_items(in->g, in->k, in->rows, in->norms, items[i], items[j]);
            offer(g, items[i], items[j], d);
            offer(g, items[j], items[i], d);
        }
}

typedef struct edge {
    float d;
    uint32_t v;
} edge;

static int cmp_edge(const void *a, const void *b)
{
    const edge *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return (x->v > y->v) - (x->v < y->v);
}

typedef struct finish_ctx {
    const knn_lists *g;
    const uint64_t *rev_start;
    const edge *rev;
    uint32_t *out;
    uint32_t degree;
    edge **tmp; /* one per worker, k + the most reverse edges */
} finish_ctx;

/* Item u's final list: its own nearest and the items that chose it, nearest first. */
static void finish_one(void *ctx, uint64_t u, int worker)
{
    finish_ctx *f = ctx;
    const knn_lists *g = f->g;
    edge *e = f->tmp[worker];
    uint64_t n = 0;
    for (uint32_t j = 0; j < g->len[u]; j++)
        e[n++] = (edge){g->dist[u * g->k + j], g->id[u * g->k + j]};
    for (uint64_t r = f->rev_start[u]; r < f->rev_start[u + 1]; r++)
        e[n++] = f->rev[r];
    qsort(e, n, sizeof *e, cmp_edge);
    /* Drop repeats (an edge met both ways), keeping the nearest-first order. */
    uint64_t distinct = 0;
    for (uint64_t j = 0; j < n; j++)
        if (distinct == 0 || e[distinct - 1].v != e[j].v)
            e[distinct++] = e[j];
    uint32_t *out = f->out + u * f->degree, m = 0;
    /* A candidate c is skipped when an item s already kept is known (from s's own list) to be
     * nearer to c than u is: u reaches c through s, and the slot goes to a direction not yet
     * covered (HNSW's neighbour heuristic, using only distances the lists already hold, so it
     * costs no distance computation). Skipped candidates, nearest first, then fill any room
     * left, so lists stay full. */
    uint64_t skipped = 0;
    for (uint64_t j = 0; j < distinct; j++) {
        int shadowed = 0;
        for (uint32_t i = 0; i < m && !shadowed; i++) {
            uint32_t s = out[i];
            const uint32_t *sid = g->id + (size_t)s * g->k;
            const float *sd = g->dist + (size_t)s * g->k;
            for (uint32_t x = 0; x < g->len[s]; x++)
                if (sid[x] == e[j].v) {
                    shadowed = sd[x] < e[j].d;
                    break;
                }
        }
        if (!shadowed && m < f->degree)
            out[m++] = e[j].v;
        else if (shadowed)
            e[skipped++] = e[j];
    }
    for (uint64_t j = 0; j < skipped && m < f->degree; j++)
        out[m++] = e[j].v;
    while (m < f->degree)
        out[m++] = UINT32_MAX;
}

/* Reverse edges in slot order (CSR), so the result is deterministic. */
static int reverse_edges(const knn_lists *g, uint64_t n, uint64_t **start_out, edge **rev_out,
                         uint64_t *max_in)
{
    uint64_t *start = cp_calloc(n + 1, sizeof *start);
    uint64_t total = 0;
    if (!start)
        return 0;
    for (uint64_t u = 0; u < n; u++)
        for (uint32_t j = 0; j < g->len[u]; j++)
            start[g->id[u * g->k + j] + 1]++;
    *max_in = 0;
    for (uint64_t u = 0; u < n; u++) {
        *max_in = start[u + 1] > *max_in ? start[u + 1] : *max_in;
        start[u + 1] += start[u];
    }
    total = start[n];
    edge *rev = cp_mallocarray(total, sizeof *rev);
    uint64_t *fill = cp_mallocarray(n, sizeof *fill);
    if (!rev || !fill) {
        cp_free(start);
        cp_free(rev);
        cp_free(fill);
        return 0;
    }
    memcpy(fill, start, n * sizeof *fill);
    for (uint64_t u = 0; u < n; u++)
        for (uint32_t j = 0; j < g->len[u]; j++) {
            uint32_t v = g->id[u * g->k + j];
            rev[fill[v]++] = (edge){g->dist[u * g->k + j], (uint32_t)u};
        }
    cp_free(fill);
    *start_out = start;
    *rev_out = rev;
    return 1;
}

static int finish(const knn_lists *g, uint32_t degree, uint32_t *out, cp_err *err)
{
    uint64_t n = g->in->n, *start = NULL, max_in = 0;
    edge *rev = NULL;
    if (!reverse_edges(g, n, &start, &rev, &max_in))
        return cp_fail(err, COPSE_ERR_NOMEM, "build: no memory for the graph");
    int nt = cp_thread_count(g->in->n_threads, n);
    finish_ctx f = {g, start, rev, out, degree, cp_calloc((size_t)nt, sizeof(edge *))};
    int ok = f.tmp != NULL;
    for (int t = 0; ok && t < nt; t++)
        ok = (f.tmp[t] = cp_mallocarray(g->k + max_in, sizeof(edge))) != NULL;
    if (ok)
        cp_parallel_for(nt, n, finish_one, &f);
    for (int t = 0; f.tmp && t < nt; t++)
        cp_free(f.tmp[t]);
    cp_free(f.tmp);
    cp_free(start);
    cp_free(rev);
    return ok ? COPSE_OK : cp_fail(err, COPSE_ERR_NOMEM, "build: no memory for the graph");
}

int cp_graph_build(const cp_rows *in, uint32_t degree, cp_sections *sections, cp_err *err)
{
    uint64_t n = in->n;
    knn_lists g = {in, degree, cp_mallocarray(n * degree, sizeof(float)),
                   cp_mallocarray(n * degree, sizeof(uint32_t)), cp_calloc(n, sizeof(uint32_t))};
    uint32_t *out = cp_mallocarray(n * degree, sizeof *out);
    int rc = COPSE_OK;
    if (!g.dist || !g.id || !g.len || !out)
        rc = cp_fail(err, COPSE_ERR_NOMEM, "build: no memory for a graph of %llu items",
                     (unsigned long long)n);
    if (rc == COPSE_OK)
        rc = cp_for_each_leaf(in, GRAPH_TREES, GRAPH_LEAF, GRAPH_STREAM, leaf_pairs, &g, err);
    if (rc == COPSE_OK)
        rc = finish(&g, degree, out, err);
    cp_progress_step(in->progress);
    cp_free(g.dist);
    cp_free(g.id);
    cp_free(g.len);
    if (rc != COPSE_OK) {
        cp_free(out);
        return rc;
    }
    cp_emit(sections, CP_SEC_GRAPH, out, n * degree * sizeof *out);
    return COPSE_OK;
}
