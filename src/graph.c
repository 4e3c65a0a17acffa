/*
 * graph.c: the neighbour graph, a section of the index that queries walk after the forest.
 *
 * The forest alone needs many candidates for high recall, because a query's true neighbours
 * often sit across a split. Each item here keeps a list of up to `degree` items; a query takes
 * a few of the forest's best candidates as seeds and walks the lists best-first (as the bottom
 * layer of HNSW does), so it reaches neighbours the forest separated.
 *
 * The lists make a navigable graph, built by insertion (Vamana/DiskANN, batched as ParlayANN
 * does): items are inserted in a seeded random order, starting from the item nearest the
 * centroid (the entry point every build search starts from). Inserting an item searches the
 * graph built so far with a beam of `width` items, and keeps as its list the candidates that
 * survive the alpha-RNG rule: nearest first, a candidate c is dropped when a kept neighbour p
 * is nearer to c, by a factor alpha, than the new item is (alpha > 1 keeps some longer links,
 * which is what makes the graph navigable from far away in few steps). Then each chosen
 * neighbour learns of the new item (a reverse edge); a list that overflows is pruned by the
 * same rule. The tree-seeded kNN lists this replaced needed search_k 3,200 for recall 0.99 on
 * GloVe (word vectors have hubs and no locality a tree captures well).
 *
 * Threads and determinism: items go in batches whose sizes depend only on the item count
 * (doubling from one, at most a fiftieth of the items). Within a batch, every new item
 * searches only the graph as it stood before the batch (no new item is reachable until the
 * reverse edges go in), so the searches run in parallel without locks; the reverse edges are
 * then grouped by target and sorted by the new item's place in the batch, and each target's
 * list is updated by one worker. The graph is the same for any thread count.
 *
 * The graph state (cp_graph) can grow: cp_graph_insert adds a batch of items to a built graph,
 * which is the insert path a living index uses after build, and build itself is nothing but
 * inserts. It depends only on plain inputs (geometry, kernels, rows, norms), not on the handle.
 *
 * Distances: the graph uses a true (squared for angular and euclidean) distance between items,
 * never negative, so the alpha rule means the same for every metric. Dot product (maximum inner
 * product search) links items by the inner product itself, as ip-NSW (Morozov and Babenko,
 * NeurIPS 2018) and hnswlib's "ip" space do: d(a, b) = |xa - xb|^2 + ea^2 + eb^2, with e the
 * extra component of metric.c's augmented vectors (|x|^2 + e^2 = R^2, R at least the largest
 * norm), which is 2 (R^2 - a.b): never negative, and in the order of the queries' walk, which
 * ranks by -q.x. An item's nearest are then the long vectors in its direction. The graph
 * built on the augmented vectors' distance |xa - xb|^2 + (ea - eb)^2 alone linked each item
 * to items of its own norm, and a query (q, 0), far from every augmented item, walked from the
 * short vectors that fill most of the sphere towards answers it did not reach (raw GloVe:
 * recall@10 0.77 at search_k 2,000). The inner product alone has the opposite fault (ip-NSW's):
 * its rule lets a long vector occlude every shorter one near it, so items of middling norm,
 * the answers of rank 10 to 50 and of filtered queries, keep almost no item pointing at them
 * (filter/recall/dot at half the items allowed: 0.90, against 0.975 for the sphere's graph).
 * So the prune keeps a candidate when either rule keeps it: a kept p occludes c only when it
 * is nearer to c than u is both by the inner product and on the sphere (whose distance is the
 * graph's minus 2 ea eb, so the second test costs no distance). Candidates are still taken
 * by inner product, so lists lead to long vectors first. This is ip-NSW+'s idea (an angular
 * graph beside the inner-product one) folded into one list: on 100,000 GloVe words, recall@10
 * 0.971 at search_k 160 and 0.989 at 320, against 0.959 and 0.984 for the inner product's rule
 * alone and 0.587 and 0.660 for the sphere's. The sphere's rule depends on R, so live.c
 * rebuilds its delta's graph when R grows. A build computes distances on byte codes of the
 * rows (use_codes below) where the data allow it; the queries' walk always uses the stored
 * rows.
 * The living index's delta graph, which grows with no data known in advance, keeps floats.
 *
 * A living index (live.c) grows one graph over its base and its added items (cp_graph_live):
 * the base's lists are copied in, and each added item is inserted as any item is, searching
 * base and added items alike, its reverse edges going into base items' lists too, so that a
 * query's one walk from the forest's seeds reaches both. Its distances read the base's rows
 * as stored (decoded when quantized) and the added items' float rows, no unit copies or codes:
 * the base's rows are not in one array with the added ones, and copying them would double
 * the base's memory.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define GRAPH_STREAM (1ull << 40) /* far from the stored trees' streams 0, 1, ... */
#define GRAPH_MAX_BATCH_SHARE 50  /* a batch holds at most 1/50 of the items (ParlayANN's 0.02) */

/* One worker's scratch for searches and prunes. */
struct cp_graph_worker {
    uint32_t *stamp; /* visited marks, epoch-stamped, one per item of the capacity */
    uint32_t epoch;
    cp_cand *pool;      /* the beam: width best found, nearest first */
    unsigned char *expanded;
    cp_cand *merge;     /* a list and what is offered to it */
    cp_cand *kept;
    float *dec;      /* living graph: two rows decoded from a quantized base */
};

static int squared_metric(copse_metric m) { return m != COPSE_MANHATTAN && m != COPSE_HAMMING; }

/* Item a's norm entry: in a living graph, a base item's extra component is lifted onto the
 * added items' sphere. */
static inline float extra(const cp_graph *gr, uint32_t a)
{
    if (!gr->live)
        return gr->norms[a];
    if (a >= gr->split)
        return gr->norms ? gr->norms[a - gr->split] : 0;
    float e = gr->base_norms ? gr->base_norms[a] : 0;
    return gr->lift > 0 ? sqrtf(e * e + gr->lift) : e;
}

/* A living graph's item a: its stored row (decoded into buf for a quantized base) and its
 * norm entry in *norm. */
static inline const void *live_row(const cp_graph *gr, float *buf, uint32_t a, float *norm)
{
    *norm = extra(gr, a);
    if (a >= gr->split)
        return gr->rows + (size_t)(a - gr->split) * gr->g->row_bytes;
    const unsigned char *row = gr->base_rows + (size_t)a * gr->base_quant.stride;
    if (gr->base_quant.storage == COPSE_STORAGE_F32)
        return row;
    cp_quant_decode(gr->g, &gr->base_quant, row, buf);
    return buf;
}

static float live_dist(const cp_graph *gr, cp_graph_worker *w, uint32_t a, uint32_t b)
{
    const cp_kernels *k = gr->kern;
    size_t dim = (size_t)gr->g->dim;
    float na, nb;
    const void *ra = live_row(gr, w->dec, a, &na);
    const void *rb = live_row(gr, w->dec ? w->dec + dim : NULL, b, &nb);
    switch (gr->g->metric) {
    case COPSE_ANGULAR: { /* 2 - 2 cos, as between unit rows; a zero row is 2 from all */
        float d = na > 0 && nb > 0 ? 2 - 2 * k->dot(ra, rb, dim) / sqrtf(na * nb) : 2;
        return d > 0 ? d : 0;
    }
    case COPSE_EUCLIDEAN: return k->l2sq(ra, rb, dim);
    case COPSE_MANHATTAN: return k->l1(ra, rb, dim);
    case COPSE_DOT: return k->l2sq(ra, rb, dim) + na * na + nb * nb;
    default: return (float)k->hamming(ra, rb, gr->g->words);
    }
}

/* Inlined into the search, which calls it once per distance: the call and the checks of the
 * graph's kind it repeats cost 5% of a GloVe build's CPU time (61.7-65.1 s against 66.6-67.8). */
static inline __attribute__((always_inline)) float dist(const cp_graph *gr, cp_graph_worker *w,
                                                      uint32_t a, uint32_t b)
{
    const cp_geom *g = gr->g;
    const cp_kernels *k = gr->kern;
    size_t dim = (size_t)g->dim;
    if (gr->live)
        return live_dist(gr, w, a, b);
    if (gr->codes) {
        float d = (float)k->l2u8(gr->codes + a * gr->code_stride, gr->codes + b * gr->code_stride,
                                 dim);
        d *= gr->code_step * gr->code_step;
        if (g->metric == COPSE_DOT)
            d += gr->norms[a] * gr->norms[a] + gr->norms[b] * gr->norms[b];
        return d;
    }
    if (g->metric == COPSE_ANGULAR) { /* unit rows: 2 - 2 cos is |a - b|^2 */
        float d = 2 - 2 * k->dot(gr->unit + a * dim, gr->unit + b * dim, dim);
        return d > 0 ? d : 0;
    }
    const void *ra = gr->rows + (size_t)a * g->row_bytes, *rb = gr->rows + (size_t)b * g->row_bytes;
    switch (g->metric) {
    case COPSE_EUCLIDEAN: return k->l2sq(ra, rb, dim);
    case COPSE_MANHATTAN: return k->l1(ra, rb, dim);
    case COPSE_DOT:
        return k->l2sq(ra, rb, dim) + gr->norms[a] * gr->norms[a] + gr->norms[b] * gr->norms[b];
    default: return (float)k->hamming(ra, rb, g->words);
    }
}

float cp_graph_dist(const cp_graph *gr, int worker, uint32_t a, uint32_t b)
{
    return dist(gr, &gr->workers[worker], a, b);
}

static void worker_free(cp_graph_worker *w)
{
    cp_free(w->stamp);
    cp_free(w->pool);
    cp_free(w->expanded);
    cp_free(w->merge);
    cp_free(w->kept);
    cp_free(w->dec);
}

/* Per-worker scratch for n_threads workers over the graph's capacity; 0 when out of memory. */
int cp_graph_workers(cp_graph *gr, int n_threads)
{
    if (n_threads <= gr->n_workers && gr->stamp_cap == gr->cap)
        return 1;
    for (int t = 0; t < gr->n_workers; t++)
        worker_free(&gr->workers[t]);
    cp_free(gr->workers);
    gr->n_workers = 0;
    gr->workers = cp_calloc((size_t)n_threads, sizeof *gr->workers);
    if (!gr->workers)
        return 0;
    gr->n_workers = n_threads;
    gr->stamp_cap = gr->cap;
    uint64_t merge = (uint64_t)gr->width + 2 * gr->degree + 1;
    for (int t = 0; t < n_threads; t++) {
        cp_graph_worker *w = &gr->workers[t];
        w->stamp = cp_calloc(gr->cap, sizeof *w->stamp);
        w->pool = cp_mallocarray(gr->width + 1, sizeof *w->pool);
        w->expanded = cp_malloc(gr->width + 1);
        w->merge = cp_mallocarray(merge, sizeof *w->merge);
        w->kept = cp_mallocarray(gr->degree, sizeof *w->kept);
        int decode = gr->live && gr->base_quant.storage != COPSE_STORAGE_F32;
        w->dec = decode ? cp_mallocarray(2 * (size_t)gr->g->dim, sizeof *w->dec) : NULL;
        if (!w->stamp || !w->pool || !w->expanded || !w->merge || !w->kept || (decode && !w->dec))
            return 0;
    }
    return 1;
}

int cp_graph_init(cp_graph *gr, const cp_geom *g, const cp_kernels *k, uint32_t degree,
                  uint32_t width, float alpha)
{
    memset(gr, 0, sizeof *gr);
    gr->g = g;
    gr->kern = k;
    gr->degree = degree;
    gr->width = width > degree ? width : degree;
    /* A new item lists half the degree; the rest of the room takes reverse edges without a
     * prune (HNSW's M and 2M): pruning every full list on each reverse edge dropped new items
     * from them, leaving 17% of GloVe's words with no item pointing at them. */
    gr->insert_degree = degree / 2 > 0 ? degree / 2 : 1;
    /* The rule compares distances; squared ones need the factor squared. */
    gr->alpha = squared_metric(g->metric) ? alpha * alpha : alpha;
    gr->entry = UINT32_MAX;
    return COPSE_OK;
}

void cp_graph_free(cp_graph *gr)
{
    for (int t = 0; t < gr->n_workers; t++)
        worker_free(&gr->workers[t]);
    cp_free(gr->workers);
    cp_free(gr->adj);
    cp_free(gr->adj_d);
    cp_free(gr->len);
    cp_free(gr->unit);
    cp_free(gr->codes_mem);
    memset(gr, 0, sizeof *gr);
}

int cp_graph_reserve(cp_graph *gr, uint64_t cap)
{
    if (cap <= gr->cap)
        return 1;
    if (cap > UINT32_MAX) /* slots are 32-bit; UINT32_MAX marks an empty place */
        return 0;
    uint32_t *adj = cp_reallocarray(gr->adj, cap * gr->degree, sizeof *adj);
    if (!adj)
        return 0;
    memset(adj + gr->cap * gr->degree, 0xff, (cap - gr->cap) * gr->degree * sizeof *adj);
    gr->adj = adj;
    float *adj_d = cp_reallocarray(gr->adj_d, cap * gr->degree, sizeof *adj_d);
    if (!adj_d)
        return 0;
    gr->adj_d = adj_d;
    uint32_t *len = cp_reallocarray(gr->len, cap, sizeof *len);
    if (!len)
        return 0;
    gr->len = len;
    if (gr->code_step > 0) {
        /* Rows that never straddle a cache line more than they must: a power of two up to
         * 64 bytes, whole lines above, from a line boundary. GloVe's 100 codes at a stride of
         * 100 touched 2.56 lines a row on average, at 128 exactly 2, and the build's search
         * waits on memory more than it computes. */
        size_t dim = (size_t)gr->g->dim, stride = 1;
        while (stride < dim && stride < 64)
            stride *= 2;
        stride = stride < 64 ? stride : (dim + 63) / 64 * 64;
        uint64_t bytes;
        unsigned char *mem = cp_mul_add(cap, stride, 63, &bytes) ? cp_malloc(bytes) : NULL;
        if (!mem)
            return 0;
        unsigned char *codes = mem + (-(uintptr_t)mem & 63);
        if (gr->codes)
            memcpy(codes, gr->codes, gr->cap * stride);
        cp_free(gr->codes_mem);
        gr->codes_mem = mem;
        gr->codes = codes;
        gr->code_stride = stride;
    } else if (gr->g->metric == COPSE_ANGULAR && !gr->live) {
        float *unit = cp_reallocarray(gr->unit, cap * (size_t)gr->g->dim, sizeof *unit);
        if (!unit)
            return 0;
        gr->unit = unit;
    }
    memset(gr->len + gr->cap, 0, (cap - gr->cap) * sizeof *len);
    gr->cap = cap;
    return 1;
}

/* What scales item i's row to length 1 for angular (0 for a zero row); 1 for the others. */
static inline float unit_scale(const cp_geom *g, const float *norms, uint64_t i)
{
    if (g->metric != COPSE_ANGULAR)
        return 1;
    return norms[i] > 0 ? 1.0f / sqrtf(norms[i]) : 0;
}

/* Where the distance of item a starts reading: its codes, unit row or row. */
static inline const void *item_data(const cp_graph *gr, uint32_t a)
{
    if (gr->live)
        return a >= gr->split ? gr->rows + (size_t)(a - gr->split) * gr->g->row_bytes
                              : gr->base_rows + (size_t)a * gr->base_quant.stride;
    if (gr->codes)
        return gr->codes + (size_t)a * gr->code_stride;
    if (gr->unit)
        return gr->unit + (size_t)a * gr->g->dim;
    return gr->rows + (size_t)a * gr->g->row_bytes;
}

/* The bytes a distance reads of item a, from item_data. */
static inline size_t item_bytes(const cp_graph *gr, uint32_t a)
{
    if (gr->live)
        return a >= gr->split ? gr->g->row_bytes : gr->base_quant.stride;
    if (gr->codes)
        return (size_t)gr->g->dim;
    if (gr->unit)
        return (size_t)gr->g->dim * sizeof *gr->unit;
    return gr->g->row_bytes;
}

/* ---- search: the beam over the graph so far ---- */

/* Inserts c into the pool (nearest first, at most width); returns its place or width. */
static uint32_t pool_insert(cp_cand *pool, unsigned char *expanded, uint32_t *len, uint32_t width,
                            cp_cand c)
{
    uint32_t n = *len;
    if (n == width && (c.d > pool[n - 1].d || (c.d == pool[n - 1].d && c.slot > pool[n - 1].slot)))
        return width;
    uint32_t lo = 0, hi = n < width ? n : width - 1; /* the place: first entry after c */
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (pool[mid].d > c.d || (pool[mid].d == c.d && pool[mid].slot > c.slot))
            hi = mid;
        else
            lo = mid + 1;
    }
    uint32_t i = lo, last = n < width ? n : width - 1;
    memmove(pool + i + 1, pool + i, (last - i) * sizeof *pool);
    memmove(expanded + i + 1, expanded + i, last - i);
    pool[i] = c;
    expanded[i] = 0;
    if (n < width)
        *len = n + 1;
    return i;
}

/* The width nearest items to u that a best-first walk from the entry finds, in w->pool,
 * nearest first (u itself excluded); returns their count. */
static uint32_t search(const cp_graph *gr, cp_graph_worker *w, uint32_t u)
{
    uint32_t len = 0, width = gr->width, deg = gr->degree;
    if (++w->epoch == 0) {
        memset(w->stamp, 0, gr->stamp_cap * sizeof *w->stamp);
        w->epoch = 1;
    }
    uint32_t epoch = w->epoch;
    w->stamp[u] = epoch;
    w->stamp[gr->entry] = epoch;
    pool_insert(w->pool, w->expanded, &len, width, (cp_cand){dist(gr, w, u, gr->entry), gr->entry});
    uint32_t next = 0; /* every pool place before next is expanded */
    while (next < len) {
        if (w->expanded[next]) {
            next++;
            continue;
        }
        w->expanded[next] = 1;
        uint32_t p = w->pool[next].slot;
        const uint32_t *nb = gr->adj + (size_t)p * deg;
        uint32_t m = gr->len[p], lowest = width;
        /* The search waits on memory more than it computes, so the next list to expand,
         * every stamp of this one and every line of each unvisited row are requested before
         * the first is used (as the query walk does): a GloVe code row of 100 bytes spans two
         * or three lines, and prefetching only the first left the rest to stall. */
        for (uint32_t j = next + 1; j < len; j++)
            if (!w->expanded[j]) {
                __builtin_prefetch(gr->len + w->pool[j].slot);
                __builtin_prefetch(gr->adj + (size_t)w->pool[j].slot * deg);
                break;
            }
        for (uint32_t j = 0; j < m; j++)
            __builtin_prefetch(w->stamp + nb[j]);
        for (uint32_t j = 0; j < m; j++) {
            if (w->stamp[nb[j]] == epoch)
                continue;
            const char *row = item_data(gr, nb[j]);
            size_t bytes = item_bytes(gr, nb[j]);
            for (size_t off = 0; off < bytes && off < 1024; off += 64)
                __builtin_prefetch(row + off);
            __builtin_prefetch(row + bytes - 1);
        }
        for (uint32_t j = 0; j < m; j++) {
            uint32_t v = nb[j];
            if (w->stamp[v] == epoch)
                continue;
            w->stamp[v] = epoch;
            uint32_t at = pool_insert(w->pool, w->expanded, &len, width,
                                      (cp_cand){dist(gr, w, u, v), v});
            lowest = at < lowest ? at : lowest;
        }
        if (lowest < next)
            next = lowest;
    }
    return len;
}

/* Whether kept item p occludes candidate c of u's list, whose distance to u is d_uc. For dot,
 * only when both rules agree (see the top of this file): the inner product's, and the sphere's
 * on the augmented vectors, whose distance |xa - xb|^2 + (ea - eb)^2 is the graph's minus
 * 2 ea eb, so it costs no second distance. */
static int occludes(const cp_graph *gr, cp_graph_worker *w, uint32_t u, uint32_t p, uint32_t c,
                    float d_uc)
{
    float d_pc = dist(gr, w, p, c);
    if (gr->alpha * d_pc > d_uc)
        return 0;
    if (gr->g->metric != COPSE_DOT)
        return 1;
    float ec = extra(gr, c);
    return gr->alpha * (d_pc - 2 * extra(gr, p) * ec) <= d_uc - 2 * extra(gr, u) * ec;
}

/* The alpha-RNG rule over candidates c[0..n) sorted nearest first to u: writes the kept
 * (at most degree) to w->kept and returns their count. */
static uint32_t prune(const cp_graph *gr, cp_graph_worker *w, uint32_t u, const cp_cand *c, uint64_t n,
                      uint32_t most)
{
    uint32_t m = 0;
    for (uint64_t i = 0; i < n && m < most; i++) {
        if (c[i].slot == u)
            continue;
        int occluded = 0;
        for (uint32_t j = 0; j < m && !occluded; j++)
            occluded = occludes(gr, w, u, w->kept[j].slot, c[i].slot, c[i].d);
        if (!occluded)
            w->kept[m++] = c[i];
    }
    return m;
}

static void set_list(cp_graph *gr, uint32_t u, const cp_cand *c, uint32_t m)
{
    uint32_t *ids = gr->adj + (size_t)u * gr->degree;
    float *ds = gr->adj_d + (size_t)u * gr->degree;
    for (uint32_t j = 0; j < m; j++) {
        ids[j] = c[j].slot;
        ds[j] = c[j].d;
    }
    for (uint32_t j = m; j < gr->degree; j++) /* queries walk lists up to UINT32_MAX */
        ids[j] = UINT32_MAX;
    gr->len[u] = m;
}

/* ---- one batch ---- */

typedef struct rev_edge {
    uint32_t to, from; /* from: the new item's place in its batch */
    float d;
} rev_edge;

static int cmp_rev(const void *a, const void *b)
{
    const rev_edge *x = a, *y = b;
    if (x->to != y->to)
        return x->to < y->to ? -1 : 1;
    return (x->from > y->from) - (x->from < y->from);
}

int cp_cand_cmp(const void *a, const void *b)
{
    const cp_cand *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

typedef struct batch_ctx {
    cp_graph *gr;
    const uint32_t *items;
    rev_edge *rev;          /* insert_degree places per new item */
    const uint64_t *groups; /* reverse phase: start of each target's run in rev */
} batch_ctx;

static void insert_one(void *ctx, uint64_t i, int worker)
{
    batch_ctx *b = ctx;
    cp_graph *gr = b->gr;
    cp_graph_worker *w = &gr->workers[worker];
    uint32_t u = b->items[i];
    uint32_t n = search(gr, w, u);
    uint32_t m = prune(gr, w, u, w->pool, n, gr->insert_degree);
    set_list(gr, u, w->kept, m);
    rev_edge *r = b->rev + i * gr->insert_degree;
    for (uint32_t j = 0; j < gr->insert_degree; j++)
        r[j] = j < m ? (rev_edge){w->kept[j].slot, (uint32_t)i, w->kept[j].d}
                     : (rev_edge){UINT32_MAX, (uint32_t)i, 0};
}

/* Target v's list with the new items that chose it: appended while there is room, else the
 * union pruned by the same rule. */
static void add_reverse(void *ctx, uint64_t g, int worker)
{
    batch_ctx *b = ctx;
    cp_graph *gr = b->gr;
    cp_graph_worker *w = &gr->workers[worker];
    const rev_edge *r = b->rev + b->groups[g];
    uint64_t n_in = b->groups[g + 1] - b->groups[g];
    uint32_t v = r[0].to, len = gr->len[v];
    uint32_t *ids = gr->adj + (size_t)v * gr->degree;
    float *ds = gr->adj_d + (size_t)v * gr->degree;
    if (len + n_in <= gr->degree) {
        for (uint64_t j = 0; j < n_in; j++) {
            ids[len + j] = b->items[r[j].from];
            ds[len + j] = r[j].d;
        }
        gr->len[v] = len + (uint32_t)n_in;
        return;
    }
    uint64_t m = 0;
    for (uint32_t j = 0; j < len; j++) /* NaN: a list taken as it was (cp_graph_take) */
        w->merge[m++] = (cp_cand){isnan(ds[j]) ? dist(gr, w, v, ids[j]) : ds[j], ids[j]};
    /* More new items than a list holds is rare; the first degree of them are offered. */
    for (uint64_t j = 0; j < n_in && j < gr->degree; j++)
        w->merge[m++] = (cp_cand){r[j].d, b->items[r[j].from]};
    qsort(w->merge, m, sizeof *w->merge, cp_cand_cmp);
    set_list(gr, v, w->kept, prune(gr, w, v, w->merge, m, gr->degree));
}

/* Angular: a unit copy of the row, so a distance is one dot product; coded: the row's (or
 * unit row's) codes, clamped to the range. */
static void encode(cp_graph *gr, const unsigned char *rows, const float *norms, uint32_t slot)
{
    size_t dim = (size_t)gr->g->dim;
    const float *x = (const float *)(rows + (size_t)slot * gr->g->row_bytes);
    float s = unit_scale(gr->g, norms, slot);
    if (!gr->codes) {
        float *y = gr->unit + (size_t)slot * dim;
        for (size_t j = 0; j < dim; j++)
            y[j] = x[j] * s;
        return;
    }
    unsigned char *c = gr->codes + (size_t)slot * gr->code_stride;
    float inv = 1.0f / gr->code_step;
    for (size_t j = 0; j < dim; j++) {
        float q = (x[j] * s - gr->code_lo) * inv + 0.5f;
        c[j] = q <= 0 ? 0 : (q >= 255 ? 255 : (unsigned char)q);
    }
}

void cp_graph_take(cp_graph *gr, uint64_t first, const uint32_t *lists, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        const uint32_t *in = lists + i * gr->degree;
        uint64_t u = first + i;
        uint32_t len = 0;
        while (len < gr->degree && in[len] != UINT32_MAX)
            len++;
        memcpy(gr->adj + u * gr->degree, in, gr->degree * sizeof *in);
        /* Distances are computed when a list is next pruned, not here: most lists never are,
         * and n x degree distances would cost what taking the lists spares. */
        for (uint32_t j = 0; j < gr->degree; j++)
            gr->adj_d[u * gr->degree + j] = NAN;
        gr->len[u] = len;
    }
}

void cp_graph_forget_distances(cp_graph *gr)
{
    for (uint64_t i = 0; i < gr->cap * gr->degree; i++)
        gr->adj_d[i] = NAN;
}

int cp_graph_insert(cp_graph *gr, const unsigned char *rows, const float *norms,
                    const uint32_t *items, uint64_t count, int n_threads)
{
    gr->rows = rows;
    gr->norms = norms;
    uint64_t i0 = 0;
    if (count == 0)
        return COPSE_OK;
    for (uint64_t i = 0; i < count; i++)
        if (items[i] >= gr->cap)
            return COPSE_ERR_ARG;
    if (gr->entry == UINT32_MAX) { /* the first item is the entry: it has no one to link to */
        gr->entry = items[0];
        gr->n_inserted = 1;
        i0 = 1;
    }
    if (gr->unit || gr->codes) /* the new rows' unit copies or codes */
        for (uint64_t i = 0; i < count; i++)
            encode(gr, rows, norms, items[i]);
    if (i0 == count) /* only the entry */
        return COPSE_OK;
    int nt = cp_thread_count(n_threads, count - i0);
    if (!cp_graph_workers(gr, nt))
        return COPSE_ERR_NOMEM;
    uint64_t max_batch = gr->n_inserted + count;
    max_batch = max_batch / GRAPH_MAX_BATCH_SHARE > 1 ? max_batch / GRAPH_MAX_BATCH_SHARE : 1;
    uint64_t batch_cap = count - i0 < max_batch ? count - i0 : max_batch;
    rev_edge *rev = cp_mallocarray(batch_cap * gr->insert_degree, sizeof *rev);
    uint64_t *groups = cp_mallocarray(batch_cap * gr->insert_degree + 1, sizeof *groups);
    int rc = rev && groups ? COPSE_OK : COPSE_ERR_NOMEM;
    for (uint64_t i = i0; rc == COPSE_OK && i < count;) {
        /* Doubling batches: an item searches a graph at least half the size it ends up in. */
        uint64_t size = gr->n_inserted < max_batch ? gr->n_inserted : max_batch;
        size = size < count - i ? size : count - i;
        batch_ctx b = {gr, items + i, rev, groups};
        cp_parallel_for(cp_thread_count(nt, size), size, insert_one, &b);
        uint64_t n_rev = size * gr->insert_degree;
        qsort(rev, n_rev, sizeof *rev, cmp_rev);
        uint64_t n_groups = 0;
        for (uint64_t j = 0; j < n_rev && rev[j].to != UINT32_MAX; j++)
            if (j == 0 || rev[j].to != rev[j - 1].to)
                groups[n_groups++] = j;
        uint64_t end = n_groups ? groups[n_groups - 1] : 0;
        while (end < n_rev && rev[end].to != UINT32_MAX)
            end++;
        groups[n_groups] = end;
        cp_parallel_for(cp_thread_count(nt, n_groups), n_groups, add_reverse, &b);
        gr->n_inserted += size;
        i += size;
        if (gr->progress)
            while (gr->progress_next < CP_GRAPH_STEPS &&
                   gr->n_inserted * CP_GRAPH_STEPS >= (gr->progress_next + 1) * gr->progress_of) {
                gr->progress_next++;
                cp_progress_step(gr->progress);
            }
    }
    cp_free(rev);
    cp_free(groups);
    return rc;
}

/* ---- build ---- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The item nearest the centroid (of the directions, for angular): the entry point, which
 * every build search starts from, so it should sit in the middle of the data. */
/* Item i of the rows being built, or of a living graph's base, as floats in buf. */
static void float_row(const cp_graph *gr, uint64_t i, float *buf)
{
    if (gr->live)
        cp_quant_decode(gr->g, &gr->base_quant, gr->base_rows + i * gr->base_quant.stride, buf);
    else
        cp_decode(gr->g, gr->rows + i * gr->g->row_bytes, buf);
}

static uint32_t central_item(const cp_graph *gr, uint64_t n, float *mean)
{
    const cp_geom *g = gr->g;
    int dim = g->dim;
    float *row = mean + dim;
    const float *norms = gr->live ? gr->base_norms : gr->norms;
    memset(mean, 0, (size_t)dim * sizeof *mean);
    for (uint64_t i = 0; i < n; i++) {
        float_row(gr, i, row);
        float scale = 1.0f / (float)n;
        if (g->metric == COPSE_ANGULAR)
            scale = norms[i] > 0 ? scale / sqrtf(norms[i]) : 0;
        for (int j = 0; j < dim; j++)
            mean[j] += row[j] * scale;
    }
    double best = INFINITY;
    uint32_t at = 0;
    for (uint64_t i = 0; i < n; i++) {
        float_row(gr, i, row);
        double d = 0, dot = 0, nn = 0;
        for (int j = 0; j < dim; j++) {
            double t = (double)row[j] - mean[j];
            d += g->metric == COPSE_MANHATTAN || g->metric == COPSE_HAMMING ? fabs(t) : t * t;
            dot += (double)row[j] * mean[j];
            nn += (double)row[j] * row[j];
        }
        if (g->metric == COPSE_ANGULAR) /* smallest angle: largest cosine */
            d = nn > 0 ? -dot / sqrt(nn) : 0;
        if (d < best) {
            best = d;
            at = (uint32_t)i;
        }
    }
    return at;
}

int cp_graph_live(cp_graph *gr, uint32_t split, const unsigned char *rows, const cp_quant *z,
                  const float *norms, const uint32_t *lists, uint32_t entry, uint64_t cap)
{
    gr->live = 1;
    gr->split = split;
    gr->base_rows = rows;
    gr->base_quant = *z;
    gr->base_norms = norms;
    if (!cp_graph_reserve(gr, cap > split ? cap : split))
        return COPSE_ERR_NOMEM;
    cp_graph_take(gr, 0, lists, split);
    gr->n_inserted = split;
    if (!split) { /* added items only: the first inserted is the entry, unless given */
        gr->entry = entry;
        return COPSE_OK;
    }
    size_t dim = (size_t)gr->g->dim;
    float *mean = cp_mallocarray(2 * dim, sizeof *mean);
    if (!mean)
        return COPSE_ERR_NOMEM;
    /* Dot: the base's sphere, which its norms' extra components complete each item to. */
    for (uint64_t i = 0; gr->g->metric == COPSE_DOT && i < split; i++) {
        float_row(gr, i, mean);
        float r2 = gr->kern->dot(mean, mean, dim) + norms[i] * norms[i];
        gr->base_r2 = r2 > gr->base_r2 ? r2 : gr->base_r2;
    }
    gr->entry = entry != UINT32_MAX ? entry : central_item(gr, split, mean);
    cp_free(mean);
    return COPSE_OK;
}

/* The build's distances on byte codes (a quarter of the float rows' memory traffic, which
 * bounds a build: on GloVe it took 0.79x the CPU time at the same recall) where the metric has
 * a code distance and the codes resolve the data: one step for every dimension, over the range
 * of all values (of the unit rows, for angular), taken only when the values' spread is at least
 * CODE_MIN_LEVELS steps; a few outliers that stretch the range keep the float rows. */
#define CODE_MIN_LEVELS 8
static int use_codes(cp_graph *gr, const unsigned char *rows, const float *norms, uint64_t n)
{
    const cp_geom *g = gr->g;
    size_t dim = (size_t)g->dim;
    /* l2u8 sums squares of byte differences in 32 bits: exact up to 66,051 dimensions */
    if ((g->metric != COPSE_ANGULAR && g->metric != COPSE_EUCLIDEAN && g->metric != COPSE_DOT) ||
        dim > 65536 || n < 2)
        return 1;
    double *sum = cp_calloc(2 * dim, sizeof *sum), *sq = sum + dim;
    if (!sum)
        return 0;
    float lo = INFINITY, hi = -INFINITY;
    for (uint64_t i = 0; i < n; i++) {
        const float *x = (const float *)(rows + i * g->row_bytes);
        float s = unit_scale(g, norms, i);
        for (size_t j = 0; j < dim; j++) {
            float v = x[j] * s;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum[j] += v;
            sq[j] += (double)v * v;
        }
    }
    double var = 0;
    for (size_t j = 0; j < dim; j++) {
        double m = sum[j] / (double)n;
        var += sq[j] / (double)n - m * m;
    }
    cp_free(sum);
    float step = (hi - lo) / 255;
    if (step > 0 && sqrt(var / (double)dim) >= CODE_MIN_LEVELS * (double)step) {
        gr->code_lo = lo;
        gr->code_step = step;
    }
    return 1;
}

int cp_graph_construct(const cp_geom *g, const cp_kernels *k, const unsigned char *rows,
                       const float *norms, uint64_t n, uint32_t degree, uint64_t seed,
                       int n_threads, cp_progress *progress, uint32_t **adj_out)
{
    cp_graph gr;
    cp_graph_init(&gr, g, k, degree, CP_GRAPH_WIDTH, CP_GRAPH_ALPHA);
    gr.rows = rows;
    gr.norms = norms;
    gr.progress = progress;
    gr.progress_of = n;
    uint32_t *order = cp_mallocarray(n, sizeof *order);
    float *mean = cp_mallocarray(2 * (size_t)g->dim, sizeof *mean);
    int rc = order && mean && use_codes(&gr, rows, norms, n) && cp_graph_reserve(&gr, n)
                 ? COPSE_OK : COPSE_ERR_NOMEM;
    if (rc == COPSE_OK) {
        /* A seeded shuffle: inserting in the order given would, for data sorted by anything
         * (word frequency, class), build the early graph from one corner of the data. */
        uint64_t state = seed ^ GRAPH_STREAM;
        for (uint64_t i = 0; i < n; i++)
            order[i] = (uint32_t)i;
        for (uint64_t i = n - 1; i > 0; i--) {
            uint64_t j = (uint64_t)(((unsigned __int128)splitmix64(&state) * (i + 1)) >> 64);
            uint32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        uint32_t c = central_item(&gr, n, mean);
        for (uint64_t i = 0; i < n; i++)
            if (order[i] == c) { /* the entry goes first */
                order[i] = order[0];
                order[0] = c;
                break;
            }
        rc = cp_graph_insert(&gr, rows, norms, order, n, n_threads);
    }
    while (rc == COPSE_OK && gr.progress && gr.progress_next < CP_GRAPH_STEPS) {
        gr.progress_next++;
        cp_progress_step(gr.progress);
    }
    uint32_t *out = rc == COPSE_OK ? cp_mallocarray(n * degree, sizeof *out) : NULL;
    if (rc == COPSE_OK && !out)
        rc = COPSE_ERR_NOMEM;
    for (uint64_t u = 0; rc == COPSE_OK && u < n; u++) {
        memcpy(out + u * degree, gr.adj + u * degree, gr.len[u] * sizeof *out);
        for (uint32_t j = gr.len[u]; j < degree; j++)
            out[u * degree + j] = UINT32_MAX;
    }
    cp_free(order);
    cp_free(mean);
    cp_graph_free(&gr);
    *adj_out = out;
    return rc;
}

int cp_graph_build(const cp_rows *in, uint32_t degree, cp_sections *out, cp_err *err)
{
    uint32_t *adj = NULL;
    int rc = cp_graph_construct(in->g, in->k, in->rows, in->norms, in->n, degree, in->seed,
                                in->n_threads, in->progress, &adj);
    if (rc != COPSE_OK)
        return cp_fail(err, rc, "build: no memory for a graph of %llu items", (unsigned long long)in->n);
    cp_emit(out, CP_SEC_GRAPH, adj, in->n * degree * sizeof *adj);
    return COPSE_OK;
}
