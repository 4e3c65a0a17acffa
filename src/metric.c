/*
 * metric.c: what differs between metrics, in one place: the stored form of a vector, the
 * distance used to rank (internal, smaller is nearer) and the one reported, and the margin of
 * a query against a split node. Split construction lives in build.c.
 *
 * Dot product (maximum inner product search) is reduced to angular search, as in Bachrach et
 * al. 2014: every item gets an extra component sqrt(M^2 - |x|^2), M the largest norm, which
 * puts all items on one sphere; a query gets 0 there. Then the largest inner product is the
 * smallest angle, and the trees split the augmented vectors through the origin. Annoy 1.17.3
 * loses recall on dot (its issue #619); this keeps it at the level of the other metrics.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

static const char *const metric_names[] = {"angular", "euclidean", "manhattan", "dot", "hamming"};

int cp_metric_valid(int metric) { return metric >= COPSE_ANGULAR && metric <= COPSE_HAMMING; }

const char *copse_metric_name(copse_metric metric)
{
    return cp_metric_valid((int)metric) ? metric_names[metric] : NULL;
}

int copse_metric_from_name(const char *name, copse_metric *out)
{
    if (!name || !out)
        return COPSE_ERR_METRIC;
    for (int m = 0; m <= COPSE_HAMMING; m++) {
        if (strcmp(name, metric_names[m]) == 0) {
            *out = (copse_metric)m;
            return COPSE_OK;
        }
    }
    if (strcmp(name, "cosine") == 0) {
        *out = COPSE_ANGULAR;
        return COPSE_OK;
    }
    return COPSE_ERR_METRIC;
}

void cp_geom_init(cp_geom *g, copse_metric metric, int dim)
{
    g->metric = metric;
    g->dim = dim;
    g->words = metric == COPSE_HAMMING ? ((size_t)dim + 63) / 64 : 0;
    g->row_bytes = metric == COPSE_HAMMING ? g->words * 8 : (size_t)dim * sizeof(float);
    g->plane_dim = metric == COPSE_HAMMING ? 0 : (metric == COPSE_DOT ? dim + 1 : dim);
    g->node_stride = CP_NODE_HEADER + (size_t)g->plane_dim * sizeof(float);
    g->node_stride = (g->node_stride + 7) & ~(size_t)7;
}

int cp_metric_has_norms(copse_metric m) { return m == COPSE_ANGULAR || m == COPSE_DOT; }

void cp_encode(const cp_geom *g, const float *src, void *dst)
{
    if (g->metric != COPSE_HAMMING) {
        memcpy(dst, src, g->row_bytes);
        return;
    }
    uint64_t *w = dst;
    memset(w, 0, g->row_bytes);
    for (int i = 0; i < g->dim; i++)
        if (src[i] > 0.5f)
            w[i / 64] |= 1ull << (i % 64);
}

void cp_decode(const cp_geom *g, const void *src, float *dst)
{
    if (g->metric != COPSE_HAMMING) {
        memcpy(dst, src, g->row_bytes);
        return;
    }
    const unsigned char *p = src;
    for (int i = 0; i < g->dim; i++) {
        uint64_t w;
        memcpy(&w, p + (size_t)(i / 64) * 8, 8);
        dst[i] = (float)((w >> (i % 64)) & 1u);
    }
}

int cp_check_finite(const float *v, int dim, cp_err *err, const char *what)
{
    for (int i = 0; i < dim; i++)
        if (!isfinite(v[i]))
            return cp_fail(err, COPSE_ERR_VALUE, "%s: component %d is %s", what, i,
                           isnan(v[i]) ? "NaN" : "infinite");
    return COPSE_OK;
}

float cp_angular(float pq, float pp, float qq)
{
    /* sqrt(pp * qq) in double is exactly pp when qq == pp, so pq / it is exactly 1 for an item
     * against itself (same kernel, same order of sums): the distance is 0, as in Annoy. A zero
     * vector has no direction: like Annoy, it is orthogonal to everything. */
    double ppqq = (double)pp * (double)qq;
    return ppqq > 0 ? (float)(2.0 - 2.0 * pq / sqrt(ppqq)) : 2.0f;
}

float cp_dist_internal(const cp_geom *g, const cp_kernels *k, const unsigned char *rows,
                       const float *norms, const cp_query *q, uint64_t slot)
{
    const void *row = rows + slot * g->row_bytes;
    switch (g->metric) {
    case COPSE_ANGULAR: return cp_angular(k->dot(q->row, row, (size_t)g->dim), q->norm, norms[slot]);
    case COPSE_EUCLIDEAN: return k->l2sq(q->row, row, (size_t)g->dim);
    case COPSE_MANHATTAN: return k->l1(q->row, row, (size_t)g->dim);
    case COPSE_DOT: return -k->dot(q->row, row, (size_t)g->dim);
    case COPSE_HAMMING: return (float)k->hamming(q->row, row, g->words);
    }
    return 0;
}

float cp_dist_items(const cp_geom *g, const cp_kernels *k, const unsigned char *rows,
                    const float *norms, uint32_t a, uint32_t b)
{
    const void *ra = rows + (size_t)a * g->row_bytes, *rb = rows + (size_t)b * g->row_bytes;
    switch (g->metric) {
    case COPSE_ANGULAR: return cp_angular(k->dot(ra, rb, (size_t)g->dim), norms[a], norms[b]);
    case COPSE_EUCLIDEAN: return k->l2sq(ra, rb, (size_t)g->dim);
    case COPSE_MANHATTAN: return k->l1(ra, rb, (size_t)g->dim);
    case COPSE_DOT: return -(k->dot(ra, rb, (size_t)g->dim) + norms[a] * norms[b]);
    case COPSE_HAMMING: return (float)k->hamming(ra, rb, g->words);
    }
    return 0;
}

float cp_dist_report(const cp_geom *g, float internal)
{
    switch (g->metric) {
    case COPSE_ANGULAR: return sqrtf(internal > 0 ? internal : 0);
    case COPSE_EUCLIDEAN: return sqrtf(internal > 0 ? internal : 0);
    case COPSE_DOT: return -internal;
    default: return internal;
    }
}

float cp_margin(const cp_geom *g, const cp_kernels *k, const cp_node *node, const void *qrow)
{
    if (g->metric == COPSE_HAMMING) {
        const unsigned char *p = qrow;
        uint64_t w;
        if (node->bit >= (uint32_t)g->dim)
            return 0; /* damaged node: both sides equally likely, never a wild read */
        memcpy(&w, p + (size_t)(node->bit / 64) * 8, 8);
        return ((w >> (node->bit % 64)) & 1u) ? 1.0f : -1.0f;
    }
    /* For dot the query's extra component is 0, so the plane's last entry drops out. */
    return k->dot(node->plane, qrow, (size_t)g->dim) + node->offset;
}
