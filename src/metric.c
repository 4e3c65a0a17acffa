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
 *
 * Stored vectors (copse_set_storage) are float32 as added, IEEE half, or 8-bit scalar codes.
 * A query stays float: distances go from it to the codes (asymmetric), so only the items carry
 * the quantization's error, and each distance is one kernel over the bytes. The 8-bit codes
 * come in two layouts, by metric:
 *   - angular and dot (products): each row has its own range around the items' mean mu, as
 *     LVQ does (Aguerrebere et al. 2023): x_i = mu_i + lo + step * c_i, with lo and step
 *     (two floats after the row's codes) spanning that row's smallest to largest component
 *     of x - mu. Then q . x = step * (q . c) + lo * sum(q) + q . mu, with sum(q) and q . mu
 *     once per query. Per-dimension ranges let a few large-norm rows set every dimension's
 *     step: exact recall@10 on GloVe (raw word vectors, angular) was 0.972 with them and
 *     0.992 with per-row ranges, for 8 more bytes a row.
 *   - euclidean and manhattan: min_i + scale_i * c_i with min and scale per dimension,
 *     trained at build from the items' range (faiss's SQ8), and q - x = (q - min) - scale * c.
 *     With per-row ranges manhattan has no such split, and euclidean's |q|^2 - 2 q . x + |x|^2
 *     loses precision exactly for near neighbours (a small difference of large numbers). Files of
 *     format 1.3 written before per-row ranges have this layout for the products too, read
 *     as q . x = (q * scale) . c + q . min.
 * The QUANT section's storage code says which layout a file has.
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

/* ---- stored vectors ---- */

static const char *const storage_names[] = {"f32", "f16", "i8"};

const char *cp_storage_name(uint32_t storage)
{
    return storage <= COPSE_STORAGE_I8 ? storage_names[storage] : NULL;
}

const char *copse_storage_name(copse_storage storage) { return cp_storage_name((uint32_t)storage); }

int copse_storage_from_name(const char *name, copse_storage *out)
{
    for (uint32_t s = 0; name && out && s <= COPSE_STORAGE_I8; s++)
        if (strcmp(name, storage_names[s]) == 0) {
            *out = (copse_storage)s;
            return COPSE_OK;
        }
    return COPSE_ERR_ARG;
}

static void put32le(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32le(const unsigned char *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The QUANT section's storage codes: the public storage, and 8-bit codes with a range per
 * row, which have their own so that a library from before them refuses such a file as a
 * newer one's instead of misreading it. */
#define QUANT_I8_ROWS 3u

/* Angular and dot rank by q . x, the others by the differences q - x. */
static int products(const cp_geom *g) { return g->metric == COPSE_ANGULAR || g->metric == COPSE_DOT; }

/* The code a build writes: per-row ranges for the products. */
static uint32_t quant_code(const cp_geom *g, uint32_t storage)
{
    return storage == COPSE_STORAGE_I8 && products(g) ? QUANT_I8_ROWS : storage;
}

static size_t code_stride(const cp_geom *g, uint32_t code)
{
    switch (code) {
    case COPSE_STORAGE_F16: return (size_t)g->dim * 2;
    case COPSE_STORAGE_I8: return (size_t)g->dim;
    case QUANT_I8_ROWS: return (size_t)g->dim + 2 * sizeof(float);
    default: return g->row_bytes;
    }
}

static uint64_t code_length(const cp_geom *g, uint32_t code)
{
    switch (code) {
    case COPSE_STORAGE_F16: return CP_QUANT_HEADER;
    case COPSE_STORAGE_I8: return CP_QUANT_HEADER + 8 * (uint64_t)g->dim;
    case QUANT_I8_ROWS: return CP_QUANT_HEADER + 4 * (uint64_t)g->dim;
    default: return 0;
    }
}

size_t cp_stride(const cp_geom *g, uint32_t storage) { return code_stride(g, quant_code(g, storage)); }

uint64_t cp_quant_length(const cp_geom *g, uint32_t storage)
{
    return code_length(g, quant_code(g, storage));
}

void cp_quant_bind(const cp_geom *g, uint32_t storage, const unsigned char *sec, cp_quant *z)
{
    uint32_t code = storage == COPSE_STORAGE_I8 ? get32le(sec) : storage;
    *z = (cp_quant){storage, code_stride(g, code), NULL, NULL, NULL};
    const float *p = (const float *)(sec + CP_QUANT_HEADER);
    if (code == QUANT_I8_ROWS) {
        z->mean = p;
    } else if (code == COPSE_STORAGE_I8) {
        z->min = p;
        z->scale = p + g->dim;
    }
}

/* The items' mean of each dimension, into mean (zeros for no items). Double sums keep it exact
 * for many rows; they go a block of dimensions at a time, so training needs no memory. */
static void train_mean(const cp_geom *g, const unsigned char *rows, uint64_t n, float *mean)
{
    enum { BLOCK = 256 };
    size_t dim = (size_t)g->dim;
    for (size_t b = 0; b < dim; b += BLOCK) {
        size_t w = dim - b < BLOCK ? dim - b : BLOCK;
        double sum[BLOCK] = {0};
        for (uint64_t r = 0; r < n; r++) {
            const float *x = (const float *)(rows + r * g->row_bytes) + b;
            for (size_t i = 0; i < w; i++)
                sum[i] += x[i];
        }
        for (size_t i = 0; i < w; i++)
            mean[b + i] = n ? (float)(sum[i] / (double)n) : 0;
    }
}

void cp_quant_train(const cp_geom *g, uint32_t storage, const unsigned char *rows, uint64_t n,
                    unsigned char *sec, cp_quant *z)
{
    size_t dim = (size_t)g->dim;
    memset(sec, 0, cp_quant_length(g, storage));
    put32le(sec, quant_code(g, storage));
    put32le(sec + 4, (uint32_t)dim);
    cp_quant_bind(g, storage, sec, z);
    if (storage != COPSE_STORAGE_I8)
        return;
    float *min = (float *)(sec + CP_QUANT_HEADER), *scale = min + dim;
    if (z->mean) {
        train_mean(g, rows, n, min);
        return;
    }
    for (size_t i = 0; i < dim; i++) {
        min[i] = n ? INFINITY : 0;
        scale[i] = n ? -INFINITY : 0; /* the largest value, until it becomes the scale */
    }
    for (uint64_t r = 0; r < n; r++) {
        const float *x = (const float *)(rows + r * g->row_bytes);
        for (size_t i = 0; i < dim; i++) {
            min[i] = x[i] < min[i] ? x[i] : min[i];
            scale[i] = x[i] > scale[i] ? x[i] : scale[i];
        }
    }
    /* 255 steps over [min, max]: the extremes are codes 0 and 255, exactly min and nearly max. */
    for (size_t i = 0; i < dim && n; i++)
        scale[i] = (scale[i] - min[i]) / 255.0f;
}

int cp_quant_parse(const cp_geom *g, const unsigned char *sec, uint64_t len, cp_quant *z,
                   cp_err *err)
{
    if (len < 8)
        return cp_fail(err, COPSE_ERR_CORRUPT, "quant: %llu bytes", (unsigned long long)len);
    uint32_t code = get32le(sec), dim = get32le(sec + 4);
    if (code > QUANT_I8_ROWS)
        return cp_fail(err, COPSE_ERR_VERSION, "quant: storage %u is a newer library's", code);
    uint32_t storage = code == QUANT_I8_ROWS ? COPSE_STORAGE_I8 : code;
    /* per-row ranges only for the products, per-dimension ones for any metric (1.3 files) */
    if (storage == COPSE_STORAGE_F32 || g->metric == COPSE_HAMMING || dim != (uint32_t)g->dim ||
        (code == QUANT_I8_ROWS && code != quant_code(g, storage)) || len != code_length(g, code))
        return cp_fail(err, COPSE_ERR_CORRUPT, "quant: storage %u, dimension %u, %llu bytes, "
                       "for metric %s of dimension %d", storage, dim, (unsigned long long)len,
                       copse_metric_name(g->metric), g->dim);
    for (uint32_t i = 8; i < CP_QUANT_HEADER; i++)
        if (sec[i])
            return cp_fail(err, COPSE_ERR_CORRUPT, "quant: reserved byte %u is not 0", i);
    cp_quant_bind(g, storage, sec, z);
    for (uint32_t i = 0; z->mean && i < dim; i++)
        if (!isfinite(z->mean[i]))
            return cp_fail(err, COPSE_ERR_CORRUPT, "quant: dimension %u has mean %g", i,
                           (double)z->mean[i]);
    for (uint32_t i = 0; z->min && i < dim; i++)
        if (!isfinite(z->min[i]) || !isfinite(z->scale[i]) || z->scale[i] < 0)
            return cp_fail(err, COPSE_ERR_CORRUPT, "quant: dimension %u has min %g, scale %g", i,
                           (double)z->min[i], (double)z->scale[i]);
    return COPSE_OK;
}

/* A row's codes in its own range of x - mean, and that range's lo and step after them. */
static void encode_row_range(const float *mean, const float *x, size_t dim, uint8_t *c)
{
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < dim; i++) {
        float r = x[i] - mean[i];
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    float step = dim && hi > lo ? (hi - lo) / 255.0f : 0;
    lo = dim ? lo : 0;
    for (size_t i = 0; i < dim; i++) {
        float t = step > 0 ? (x[i] - mean[i] - lo) / step : 0;
        c[i] = t <= 0 ? 0 : t >= 255 ? 255 : (uint8_t)lrintf(t);
    }
    memcpy(c + dim, &lo, sizeof lo);
    memcpy(c + dim + sizeof lo, &step, sizeof step);
}

void cp_quant_row_range(const unsigned char *row, size_t dim, float *lo, float *step)
{
    memcpy(lo, row + dim, sizeof *lo);
    memcpy(step, row + dim + sizeof *lo, sizeof *step);
}

int cp_quant_encode(const cp_geom *g, const cp_quant *z, const float *src, void *dst)
{
    size_t dim = (size_t)g->dim;
    if (z->storage == COPSE_STORAGE_F16) {
        uint16_t *h = dst;
        for (size_t i = 0; i < dim; i++)
            if (((h[i] = cp_float_to_half(src[i])) & 0x7c00u) == 0x7c00u)
                return COPSE_ERR_VALUE;
        return COPSE_OK;
    }
    if (z->mean) {
        encode_row_range(z->mean, src, dim, dst);
        return COPSE_OK;
    }
    if (z->storage == COPSE_STORAGE_I8) {
        uint8_t *c = dst;
        for (size_t i = 0; i < dim; i++) {
            float t = z->scale[i] > 0 ? (src[i] - z->min[i]) / z->scale[i] : 0;
            c[i] = t <= 0 ? 0 : t >= 255 ? 255 : (uint8_t)lrintf(t);
        }
        return COPSE_OK;
    }
    cp_encode(g, src, dst);
    return COPSE_OK;
}

void cp_quant_decode(const cp_geom *g, const cp_quant *z, const void *src, float *dst)
{
    size_t dim = (size_t)g->dim;
    if (z->storage == COPSE_STORAGE_F16) {
        const uint16_t *h = src;
        for (size_t i = 0; i < dim; i++)
            dst[i] = cp_half_to_float(h[i]);
    } else if (z->mean) {
        const uint8_t *c = src;
        float lo, step;
        cp_quant_row_range(c, dim, &lo, &step);
        for (size_t i = 0; i < dim; i++)
            dst[i] = z->mean[i] + lo + step * c[i];
    } else if (z->storage == COPSE_STORAGE_I8) {
        const uint8_t *c = src;
        for (size_t i = 0; i < dim; i++)
            dst[i] = z->min[i] + z->scale[i] * c[i];
    } else {
        cp_decode(g, src, dst);
    }
}

void cp_query_codes(const cp_geom *g, const cp_kernels *k, const cp_quant *z, cp_query *q,
                    float *room)
{
    if (z->storage != COPSE_STORAGE_I8)
        return;
    const float *x = q->row;
    size_t dim = (size_t)g->dim;
    if (z->mean) {
        float sum = 0;
        for (size_t i = 0; i < dim; i++)
            sum += x[i];
        q->qa = x;
        q->qc = k->dot(x, z->mean, dim);
        q->qs = sum;
        return;
    }
    int prod = products(g);
    for (size_t i = 0; i < dim; i++)
        room[i] = prod ? x[i] * z->scale[i] : x[i] - z->min[i];
    q->qa = room;
    q->qc = prod ? k->dot(x, z->min, dim) : 0;
}

float cp_query_dot(const cp_geom *g, const cp_kernels *k, const cp_quant *z, const cp_query *q,
                   const void *row)
{
    size_t dim = (size_t)g->dim;
    switch (z->storage) {
    case COPSE_STORAGE_F16: return k->dot_f16(q->row, row, dim);
    case COPSE_STORAGE_I8: {
        if (!z->mean)
            return k->dot_u8(q->qa, row, dim) + q->qc;
        float lo, step;
        cp_quant_row_range(row, dim, &lo, &step);
        return step * k->dot_u8(q->qa, row, dim) + lo * q->qs + q->qc;
    }
    default: return k->dot(q->row, row, dim);
    }
}

float cp_angular(float pq, float pp, float qq)
{
    /* sqrt(pp * qq) in double is exactly pp when qq == pp, so pq / it is exactly 1 for an item
     * against itself (same kernel, same order of sums): the distance is 0, as in Annoy. A zero
     * vector has no direction: like Annoy, it is orthogonal to everything. */
    double ppqq = (double)pp * (double)qq;
    return ppqq > 0 ? (float)(2.0 - 2.0 * pq / sqrt(ppqq)) : 2.0f;
}

float cp_dist_internal(const cp_geom *g, const cp_kernels *k, const cp_quant *z,
                       const unsigned char *rows, const float *norms, const cp_query *q,
                       uint64_t slot)
{
    const void *row = rows + slot * z->stride;
    size_t dim = (size_t)g->dim;
    switch (g->metric) {
    case COPSE_ANGULAR: return cp_angular(cp_query_dot(g, k, z, q, row), q->norm, norms[slot]);
    case COPSE_EUCLIDEAN:
        return z->storage == COPSE_STORAGE_F16  ? k->l2sq_f16(q->row, row, dim)
               : z->storage == COPSE_STORAGE_I8 ? k->l2sq_u8(q->qa, z->scale, row, dim)
                                                : k->l2sq(q->row, row, dim);
    case COPSE_MANHATTAN:
        return z->storage == COPSE_STORAGE_F16  ? k->l1_f16(q->row, row, dim)
               : z->storage == COPSE_STORAGE_I8 ? k->l1_u8(q->qa, z->scale, row, dim)
                                                : k->l1(q->row, row, dim);
    case COPSE_DOT: return -cp_query_dot(g, k, z, q, row);
    case COPSE_HAMMING: return (float)k->hamming(q->row, row, g->words);
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
