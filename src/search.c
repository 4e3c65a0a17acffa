/*
 * search.c: queries.
 *
 * All trees are walked at once with one max-priority queue of node references (Annoy's
 * method). A child's priority is the smallest margin met on the way down: how far the query
 * sits on the wrong side of the closest split that separates it from that subtree. Leaves
 * are opened in that order until search_k distinct candidates are gathered; those are then
 * ranked by exact distance. For hamming the priority counts the bits on the way that disagree
 * with the query (Annoy's rule).
 *
 * Departures from Annoy: candidates are deduplicated as they arrive with an epoch-stamped
 * array in the caller's scratch (no sort + unique), so search_k counts distinct items; only
 * the k best are kept while ranking (a bounded heap); and every reference read from the index
 * is bounds-checked before use, with the walk bounded by the node count, so a damaged file
 * yields COPSE_ERR_CORRUPT, never a wild read or an endless loop.
 *
 * Filtered queries (a copse_filter, filter.c) take one of two roads, chosen per query from
 * the allowed count m: few allowed items are all ranked (the true top-k), more are reached by
 * the graph walk through disallowed items, falling back to the ranking when the walk would
 * cost more or cannot fill k (see WALK_COST). The unfiltered road is untouched: one test of
 * the filter per query, none per candidate.
 *
 * Threads: the index is only read. Everything a query writes is in its copse_scratch.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct pq_entry {
    float pri;
    uint32_t key; /* breaks ties; 0 except for Annoy files */
    uint64_t ref;
} pq_entry;

static int pq_above(pq_entry a, pq_entry b) { return a.pri > b.pri || (a.pri == b.pri && a.key > b.key); }

typedef struct hit {
    float dist;
    uint32_t slot;
} hit;

struct copse_scratch {
    uint32_t *stamp;
    uint64_t stamp_cap;
    uint32_t epoch;
    pq_entry *pq;
    uint64_t pq_len, pq_cap;
    uint32_t *cand;
    uint64_t cand_cap;
    hit *best;
    uint64_t best_cap;
    hit *front; /* graph walk: candidates to expand, a min-heap */
    uint64_t front_len, front_cap;
    uint32_t *fresh; /* graph walk: one list's unvisited neighbours */
    uint64_t fresh_cap;
    unsigned char *qbuf;
    size_t qbuf_cap;
    /* Batches: one scratch per worker, kept from call to call so that a batch does not clear
     * fresh stamps for every item each time. */
    copse_scratch **workers;
    int n_workers;
    /* Distances the graph walks of queries with this scratch have computed, in all: what
     * tests compare a living index's walk with a fresh build's by (cp_scratch_walked). */
    uint64_t walked;
    cp_err err;
};

int copse_scratch_new(copse_scratch **out)
{
    if (!out)
        return COPSE_ERR_ARG;
    cp_allocator_fix();
    *out = cp_calloc(1, sizeof **out);
    return *out ? COPSE_OK : COPSE_ERR_NOMEM;
}

/* Frees what a scratch holds, not the scratch itself (a temporary one lives on the stack). */
static void scratch_release(copse_scratch *s)
{
    for (int t = 0; t < s->n_workers; t++)
        copse_scratch_free(s->workers[t]);
    cp_free(s->workers);
    cp_free(s->stamp);
    cp_free(s->pq);
    cp_free(s->cand);
    cp_free(s->best);
    cp_free(s->front);
    cp_free(s->fresh);
    cp_free(s->qbuf);
}

void copse_scratch_free(copse_scratch *s)
{
    if (!s)
        return;
    scratch_release(s);
    cp_free(s);
}

const char *copse_scratch_errmsg(const copse_scratch *s) { return s ? s->err.msg : ""; }

cp_err *cp_scratch_err(copse_scratch *s) { return s ? &s->err : NULL; }

uint64_t cp_scratch_walked(const copse_scratch *s) { return s->walked; }

/* Starts a query over n items: a fresh epoch, stamps for every slot. */
static int scratch_begin(copse_scratch *s, uint64_t n)
{
    if (n > s->stamp_cap) {
        cp_free(s->stamp);
        s->stamp = cp_calloc(n, sizeof *s->stamp);
        s->stamp_cap = s->stamp ? n : 0;
        s->epoch = 0;
        if (!s->stamp)
            return cp_fail(&s->err, COPSE_ERR_NOMEM, "no memory for query scratch of %llu items",
                           (unsigned long long)n);
    }
    if (++s->epoch == 0) {
        memset(s->stamp, 0, s->stamp_cap * sizeof *s->stamp);
        s->epoch = 1;
    }
    s->pq_len = 0;
    return COPSE_OK;
}

/* ---- priority queue (max-heap on pri) ---- */

static uint32_t ref_key(const cp_view *v, uint64_t ref)
{
    if (!v->leaf_keys)
        return 0;
    uint64_t i = ref & ~CP_LEAF_FLAG;
    if (ref & CP_LEAF_FLAG)
        return i < v->n_leaves ? v->leaf_keys[i] : 0;
    return i < v->n_split ? v->split_keys[i] : 0;
}

static int pq_push(copse_scratch *s, const cp_view *v, float pri, uint64_t ref)
{
    if (!cp_grow((void **)&s->pq, &s->pq_cap, s->pq_len + 1, sizeof *s->pq))
        return 0;
    pq_entry e = {pri, ref_key(v, ref), ref};
    uint64_t i = s->pq_len++;
    while (i > 0) {
        uint64_t parent = (i - 1) / 2;
        if (!pq_above(e, s->pq[parent]))
            break;
        s->pq[i] = s->pq[parent];
        i = parent;
    }
    s->pq[i] = e;
    return 1;
}

static pq_entry pq_pop(copse_scratch *s)
{
    pq_entry top = s->pq[0], last = s->pq[--s->pq_len];
    uint64_t i = 0, n = s->pq_len;
    for (;;) {
        uint64_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && pq_above(s->pq[c + 1], s->pq[c]))
            c++;
        if (!pq_above(s->pq[c], last))
            break;
        s->pq[i] = s->pq[c];
        i = c;
    }
    if (n)
        s->pq[i] = last;
    return top;
}

/* ---- bounded set of the k best hits (max-heap on dist, ties by slot) ---- */

static int hit_worse(hit a, hit b) { return a.dist > b.dist || (a.dist == b.dist && a.slot > b.slot); }

static void best_offer(hit *h, uint64_t *len, uint64_t k, hit x)
{
    uint64_t i;
    if (*len < k) {
        i = (*len)++;
        while (i > 0 && hit_worse(x, h[(i - 1) / 2])) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = x;
        return;
    }
    if (!hit_worse(h[0], x))
        return;
    i = 0;
    for (;;) {
        uint64_t c = 2 * i + 1;
        if (c >= k)
            break;
        if (c + 1 < k && hit_worse(h[c + 1], h[c]))
            c++;
        if (!hit_worse(h[c], x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static int cmp_hit(const void *a, const void *b)
{
    hit x = *(const hit *)a, y = *(const hit *)b;
    return hit_worse(x, y) - hit_worse(y, x);
}

/* ---- the query ---- */

typedef struct query_args {
    const cp_reader *rd;
    copse_scratch *s;
    cp_query q;
    uint64_t k;
    uint64_t search_k;
    const copse_filter *f; /* NULL: every item may be returned */
} query_args;

/* Where a slot's row is: the view's rows as stored, or in a living index's view of base and
 * added items (live.c) an added item's float32 row. One test per distance, never taken
 * outside a living index. */
typedef struct row_at {
    const cp_quant *z;
    const unsigned char *rows;
    const float *norms;
    uint64_t slot;
} row_at;

static inline row_at row_of(const cp_view *v, uint64_t slot)
{
    if (slot >= v->added_from)
        return (row_at){&v->added_quant, v->added_vectors, v->added_norms, slot - v->added_from};
    return (row_at){&v->quant, v->vectors, v->norms, slot};
}

static inline const unsigned char *row_ptr(row_at r) { return r.rows + r.slot * r.z->stride; }

/* A slot's neighbour list: a living index keeps its added items' lists apart from the base's
 * until the first change after a load (live.c). */
static inline const uint32_t *list_of(const cp_view *v, uint64_t slot)
{
    if (slot >= v->added_from)
        return v->added_graph + (slot - v->added_from) * v->graph_degree;
    return v->graph + slot * v->graph_degree;
}

static inline float dist_at(const query_args *a, uint64_t slot)
{
    row_at r = row_of(a->rd->v, slot);
    return cp_dist_internal(a->rd->g, a->rd->k, r.z, r.rows, r.norms, &a->q, r.slot);
}

static int corrupt(copse_scratch *s, const char *what, uint64_t ref)
{
    return cp_fail(&s->err, COPSE_ERR_CORRUPT, "search: %s 0x%llx out of bounds (damaged index)",
                   what, (unsigned long long)ref);
}

/* Adds a leaf's items to the candidates; returns the count or -1 on a bad reference. */
static int64_t open_leaf(const cp_view *v, copse_scratch *s, uint64_t leaf, uint64_t n_cand)
{
    const cp_leaf *l = &v->leaves[leaf];
    if (l->start > v->n_leaf_items || l->count > v->n_leaf_items - l->start)
        return -1;
    const uint32_t *items = v->leaf_items + l->start;
    uint32_t epoch = s->epoch;
    for (uint32_t i = 0; i < l->count; i++) {
        uint32_t slot = items[i];
        if (slot >= v->n_items)
            return -1;
        if (s->stamp[slot] == epoch)
            continue;
        s->stamp[slot] = epoch;
        s->cand[n_cand++] = slot;
    }
    return (int64_t)n_cand;
}

/* Adds the added items a living index filed in a leaf (cp_view.added_leaf_head); returns the
 * count, -1 out of memory or -2 for a damaged chain (a file's: every link goes to an earlier
 * entry, so a chain ends). */
static int64_t open_added(const cp_view *v, copse_scratch *s, uint64_t leaf, uint64_t n_cand)
{
    uint64_t n_added = v->n_items - v->added_from;
    for (uint32_t e = v->added_leaf_head[leaf], last = UINT32_MAX; e != UINT32_MAX;
         last = e, e = v->added_leaf_next[e]) {
        uint64_t slot = v->added_from + e / v->n_trees;
        if (e / v->n_trees >= n_added || e >= last)
            return -2;
        if (s->stamp[slot] == s->epoch)
            continue;
        if (!cp_grow((void **)&s->cand, &s->cand_cap, n_cand + 2, sizeof *s->cand))
            return -1;
        s->stamp[slot] = s->epoch;
        s->cand[n_cand++] = (uint32_t)slot;
    }
    return (int64_t)n_cand;
}

/* Walks the forest; leaves the distinct candidates in s->cand, their count in *n_cand. */
static int gather(const query_args *a, uint64_t *n_cand_out)
{
    const cp_reader *rd = a->rd;
    const cp_view *v = rd->v;
    copse_scratch *s = a->s;
    int hamming = rd->g->metric == COPSE_HAMMING;
    float top = hamming ? (float)rd->g->dim + 1 : INFINITY;
    uint64_t n_cand = 0, pops = 0, max_pops = v->n_split + v->n_leaves + v->n_trees;
    uint64_t counted = 0; /* n_cand, or with count_repeats every candidate met */
    uint64_t leaf_size = (uint64_t)v->leaf_size;
    /* Candidates are distinct slots: never more than the items, whatever search_k says. */
    uint64_t want = a->search_k + leaf_size < v->n_items ? a->search_k + leaf_size : v->n_items;
    if (!cp_grow((void **)&s->cand, &s->cand_cap, want + 1, sizeof *s->cand))
        return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for candidates");
    for (uint64_t t = 0; t < v->n_trees; t++)
        if (!pq_push(s, v, top, v->roots[t]))
            return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for the queue");
    while (counted < a->search_k && s->pq_len > 0 && pops++ < max_pops) {
        pq_entry e = pq_pop(s);
        if (e.ref & CP_LEAF_FLAG) {
            uint64_t leaf = e.ref & ~CP_LEAF_FLAG;
            if (leaf >= v->n_leaves)
                return corrupt(s, "leaf reference", e.ref);
            const cp_leaf *l = &v->leaves[leaf];
            if (l->start > v->n_leaf_items || l->count > v->n_leaf_items - l->start)
                return corrupt(s, "leaf", leaf);
            want = n_cand + l->count < v->n_items ? n_cand + l->count : v->n_items;
            if (!cp_grow((void **)&s->cand, &s->cand_cap, want + 1, sizeof *s->cand))
                return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for candidates");
            int64_t got = open_leaf(v, s, leaf, n_cand);
            if (got < 0)
                return corrupt(s, "leaf", leaf);
            if (v->added_leaf_head && (got = open_added(v, s, leaf, (uint64_t)got)) < 0)
                return got == -1 ? cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for candidates")
                                 : corrupt(s, "added items' leaf chain", leaf);
            n_cand = (uint64_t)got;
            counted = v->count_repeats ? counted + l->count : n_cand;
            continue;
        }
        if (e.ref >= v->n_split)
            return corrupt(s, "node reference", e.ref);
        const cp_node *nd = (const cp_node *)(v->nodes + e.ref * rd->g->node_stride);
        float m = cp_margin(rd->g, rd->k, nd, a->q.row);
        float p1, p0;
        if (hamming) {
            p1 = m < 0 ? e.pri - 1 : e.pri;
            p0 = m > 0 ? e.pri - 1 : e.pri;
        } else {
            p1 = e.pri < m ? e.pri : m;
            p0 = e.pri < -m ? e.pri : -m;
        }
        if (!pq_push(s, v, p1, nd->child[1]) || !pq_push(s, v, p0, nd->child[0]))
            return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for the queue");
    }
    *n_cand_out = n_cand;
    return COPSE_OK;
}

/* Writes the k best of s->best[0..len) in order. */
static void emit(const query_args *a, uint64_t len, int64_t *ids, float *dists, int64_t *n_out)
{
    const cp_reader *rd = a->rd;
    copse_scratch *s = a->s;
    qsort(s->best, len, sizeof *s->best, cmp_hit);
    uint64_t k = a->k < len ? a->k : len;
    for (uint64_t i = 0; i < k; i++) {
        ids[i] = cp_view_id(rd->v, s->best[i].slot);
        if (dists)
            dists[i] = cp_dist_report(rd->g, s->best[i].dist);
    }
    *n_out = (int64_t)k;
}

/* Ranks slots (all of them when cand is NULL) and writes the k best. */
static int rank(const query_args *a, const uint32_t *cand, uint64_t n, int64_t *ids, float *dists,
                int64_t *n_out)
{
    const cp_reader *rd = a->rd;
    copse_scratch *s = a->s;
    uint64_t k = a->k < n ? a->k : n, len = 0;
    if (!cp_grow((void **)&s->best, &s->best_cap, k + 1, sizeof *s->best))
        return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for %llu results",
                       (unsigned long long)k);
    for (uint64_t i = 0; i < n && k > 0; i++) {
        uint32_t slot = cand ? cand[i] : (uint32_t)i;
        if (cand && i + 4 < n)
            __builtin_prefetch(row_ptr(row_of(rd->v, cand[i + 4])));
        hit h = {dist_at(a, slot), slot};
        best_offer(s->best, &len, k, h);
    }
    emit(a, len, ids, dists, n_out);
    return COPSE_OK;
}

/* ---- the graph walk ---- */

static int front_push(copse_scratch *s, hit h)
{
    if (!cp_grow((void **)&s->front, &s->front_cap, s->front_len + 1, sizeof *s->front))
        return 0;
    uint64_t i = s->front_len++;
    while (i > 0 && hit_worse(s->front[(i - 1) / 2], h)) {
        s->front[i] = s->front[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->front[i] = h;
    return 1;
}

static hit front_pop(copse_scratch *s)
{
    hit top = s->front[0], last = s->front[--s->front_len];
    uint64_t i = 0, n = s->front_len;
    for (;;) {
        uint64_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && hit_worse(s->front[c], s->front[c + 1]))
            c++;
        if (!hit_worse(last, s->front[c]))
            break;
        s->front[i] = s->front[c];
        i = c;
    }
    if (n)
        s->front[i] = last;
    return top;
}

/* The walk's distance: the internal one, but for angular in float (1 / |q| once per query),
 * a fraction of the double-precision cost; rerank ranks the k results again exactly. */
static inline float walk_dist(const query_args *a, float inv_qn, uint32_t slot)
{
    const cp_reader *rd = a->rd;
    if (rd->g->metric != COPSE_ANGULAR)
        return dist_at(a, slot);
    row_at r = row_of(rd->v, slot);
    float pp = r.norms[r.slot];
    float pq = cp_query_dot(rd->g, rd->k, r.z, &a->q, row_ptr(r));
    return pp > 0 && inv_qn > 0 ? 2 - 2 * pq * inv_qn / sqrtf(pp) : 2.0f;
}

/* After an angular walk: the k nearest by the walk's float distance, with the exact one. */
static void rerank(const query_args *a, uint64_t *len)
{
    if (a->rd->g->metric != COPSE_ANGULAR)
        return;
    copse_scratch *s = a->s;
    qsort(s->best, *len, sizeof *s->best, cmp_hit);
    *len = a->k < *len ? a->k : *len;
    for (uint64_t i = 0; i < *len; i++)
        s->best[i].dist = dist_at(a, s->best[i].slot);
}

/* Best-first walk of the graph from the forest's candidates, keeping the ef nearest seen
 * (s->best, a bounded max-heap); stops when the nearest unexpanded item is farther than the
 * ef-th nearest seen, as HNSW's search of its bottom layer.
 * With a filter f, only allowed items enter s->best, but every item near enough to improve
 * it is still expanded: disallowed items are the paths between allowed ones (hnswlib's
 * filtered search). Until ef allowed items are found nothing bounds the walk, so it widens
 * by itself in proportion to 1 / selectivity; *spent counts its distances and the walk gives
 * up (*spent > budget) when the exact scan of the allowed items would have been cheaper.
 * Inlined into its two callers so the unfiltered walk carries no test of f. */
static inline __attribute__((always_inline)) int
walk(const query_args *a, uint64_t n_seed, uint64_t ef, const copse_filter *f, uint64_t budget,
     uint64_t *n_best, uint64_t *spent)
{
    const cp_reader *rd = a->rd;
    const cp_view *v = rd->v;
    copse_scratch *s = a->s;
    uint64_t len = 0, deg = v->graph_degree;
    uint32_t epoch = s->epoch;
    float inv_qn = a->q.norm > 0 ? 1.0f / sqrtf(a->q.norm) : 0;
    s->front_len = 0;
    if (!cp_grow((void **)&s->best, &s->best_cap, ef + 1, sizeof *s->best) ||
        !cp_grow((void **)&s->fresh, &s->fresh_cap, deg, sizeof *s->fresh))
        return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for the graph walk");
    for (uint64_t i = 0; i < n_seed; i++) {
        hit h = {walk_dist(a, inv_qn, s->cand[i]), s->cand[i]};
        if (!f || cp_filter_allows(f, v, h.slot))
            best_offer(s->best, &len, ef, h);
        if (!front_push(s, h))
            return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for the graph walk");
    }
    if (f)
        *spent = n_seed;
    s->walked += n_seed;
    while (s->front_len > 0) {
        if (f && *spent > budget)
            break;
        hit c = front_pop(s);
        if (len == ef && hit_worse(c, s->best[0]))
            break;
        const uint32_t *nb = list_of(v, c.slot);
        /* Memory, not arithmetic, bounds the walk (perf on GloVe: the stamp and list loads
         * stalled as long as the dot products ran), so the next list to expand, every stamp
         * of this one and every line of each fresh row are requested before any is used. */
        if (s->front_len > 0)
            __builtin_prefetch(list_of(v, s->front[0].slot));
        uint64_t n_nb = 0, n_fresh = 0;
        while (n_nb < deg && nb[n_nb] != UINT32_MAX) {
            if (nb[n_nb] >= v->n_items)
                return corrupt(s, "graph neighbour", nb[n_nb]);
            __builtin_prefetch(s->stamp + nb[n_nb++]);
        }
        for (uint64_t j = 0; j < n_nb; j++) {
            if (s->stamp[nb[j]] == epoch)
                continue;
            s->stamp[nb[j]] = epoch;
            s->fresh[n_fresh++] = nb[j];
            row_at r = row_of(v, nb[j]);
            const unsigned char *row = row_ptr(r);
            for (size_t off = 0; off < r.z->stride && off < 1024; off += 64)
                __builtin_prefetch(row + off);
        }
        if (f)
            *spent += n_fresh;
        s->walked += n_fresh;
        for (uint64_t j = 0; j < n_fresh; j++) {
            hit h = {walk_dist(a, inv_qn, s->fresh[j]), s->fresh[j]};
            if (len == ef && !hit_worse(s->best[0], h))
                continue;
            if (!f || cp_filter_allows(f, v, h.slot))
                best_offer(s->best, &len, ef, h);
            if (!front_push(s, h))
                return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for the graph walk");
        }
    }
    *n_best = len;
    return COPSE_OK;
}

static int graph_walk(const query_args *a, uint64_t n_seed, uint64_t ef, uint64_t *n_best)
{
    return walk(a, n_seed, ef, NULL, 0, n_best, NULL);
}

static int graph_walk_filtered(const query_args *a, uint64_t n_seed, uint64_t ef,
                               uint64_t budget, uint64_t *n_best, uint64_t *spent)
{
    return walk(a, n_seed, ef, a->f, budget, n_best, spent);
}

/* ---- filtered queries ---- */

/* What a walk of width ef costs, in a scan's distances, per ef: on Fashion-MNIST with degree
 * 24 an unfiltered walk computes 16 ef distances at ef 10, 10 ef at 40 and 6 ef at 160, each
 * a random access, where the scan's are sequential and prefetched. A filtered walk keeping ef
 * allowed items meets about n / m items per allowed one (measured: 0.45 to 0.8 times the
 * unfiltered count times n / m), so it costs about WALK_COST * ef * n / m, and scanning the
 * m allowed items costs m: the scan is chosen while m * m <= WALK_COST * ef * n. */
#define WALK_COST 8
/* What one distance of a walk costs in a scan's distances (measured on Fashion-MNIST: 0.5 to
 * 0.8 us against 0.16 to 0.34 us): a walk gives up for the scan once it has spent m / this,
 * the scan's whole cost, so a query never costs much more than twice the cheaper road. */
#define WALK_PER_SCAN 3

/* The true top-k among the allowed items: every one of them ranked. */
static int scan_allowed(const query_args *a, int64_t *ids, float *dists, int64_t *n_out)
{
    copse_scratch *s = a->s;
    const cp_view *v = a->rd->v;
    if (!cp_grow((void **)&s->cand, &s->cand_cap, v->n_items + 1, sizeof *s->cand))
        return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for the allowed items");
    uint64_t m = cp_filter_collect(a->f, v, s->cand);
    return rank(a, s->cand, m, ids, dists, n_out);
}


/* The view's entry slot joins the seeds: a view without a forest (the delta of a living
 * index) has no other. */
static int add_entry(const query_args *a, uint64_t *n_cand)
{
    copse_scratch *s = a->s;
    uint32_t entry = a->rd->v->graph_entry;
    if (entry >= a->rd->v->n_items || s->stamp[entry] == s->epoch)
        return COPSE_OK;
    if (!cp_grow((void **)&s->cand, &s->cand_cap, *n_cand + 1, sizeof *s->cand))
        return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory for candidates");
    s->stamp[entry] = s->epoch;
    s->cand[(*n_cand)++] = entry;
    return COPSE_OK;
}

/* The seeds less a living index's deleted items, unless none would be left, once its added
 * items are filed in the forest's leaves (live.c). A leaf then holds base items, half of them
 * deleted after 50% churn, and the added items filed in it: the deleted ones cost a distance
 * each and are never answers. bench/churn.cc at search_k 10: the churned walk's distances
 * went from 1.38x a fresh build's to 1.17x, at recall 0.9414 against the fresh build's 0.9418
 * (0.9498 keeping them). Without filed items the deleted seeds stay: dropping them left half
 * a leaf of seeds, and recall fell from 0.9436 to 0.9344. */
static uint64_t drop_buried(const query_args *a, uint64_t n_cand)
{
    uint32_t *cand = a->s->cand;
    uint64_t kept = 0;
    if (!a->rd->v->added_leaf_head)
        return n_cand;
    for (uint64_t i = 0; i < n_cand; i++)
        if (!cp_filter_buried(a->f, cand[i]))
            cand[kept++] = cand[i];
    return kept ? kept : n_cand;
}

/* Without a graph: the forest gathers search_k * n / m candidates, so that about search_k of
 * them are allowed, and only those are ranked. */
static int forest_filtered(const query_args *a, uint64_t m, int64_t *ids, float *dists,
                           int64_t *n_out)
{
    const cp_view *v = a->rd->v;
    copse_scratch *s = a->s;
    query_args wide = *a;
    double sk = (double)a->search_k * (double)v->n_items / (double)m;
    wide.search_k = sk < (double)v->n_leaf_items ? (uint64_t)sk : v->n_leaf_items;
    uint64_t n_cand = 0, kept = 0;
    int rc = gather(&wide, &n_cand);
    if (rc != COPSE_OK)
        return rc;
    for (uint64_t i = 0; i < n_cand; i++)
        if (cp_filter_allows(a->f, v, s->cand[i]))
            s->cand[kept++] = s->cand[i];
    if (kept < a->k)
        return scan_allowed(a, ids, dists, n_out);
    return rank(a, s->cand, kept, ids, dists, n_out);
}

static int run_filtered(const query_args *a, int exact, int64_t *ids, float *dists,
                        int64_t *n_out)
{
    const cp_view *v = a->rd->v;
    if (exact)
        return scan_allowed(a, ids, dists, n_out);
    if (a->search_k == 0)
        return COPSE_OK; /* finds nothing, as without a filter */
    uint64_t n = v->n_items, m = cp_filter_estimate(a->f, v);
    uint64_t ef = a->search_k > a->k ? a->search_k : a->k;
    if ((double)m * (double)m <= (double)WALK_COST * (double)(ef < n ? ef : n) * (double)n)
        return scan_allowed(a, ids, dists, n_out);
    int rc = scratch_begin(a->s, n);
    if (rc != COPSE_OK)
        return rc;
    if (!v->graph)
        return forest_filtered(a, m, ids, dists, n_out);
    query_args seeds = *a;
    seeds.search_k = a->k < (ef + 1) / 2 ? a->k : (ef + 1) / 2;
    if (ef > n)
        ef = n;
    uint64_t n_cand = 0, len = 0, spent = 0, budget = m / WALK_PER_SCAN;
    if ((rc = gather(&seeds, &n_cand)) != COPSE_OK || (rc = add_entry(a, &n_cand)) != COPSE_OK)
        return rc;
    n_cand = drop_buried(a, n_cand);
    if ((rc = graph_walk_filtered(a, n_cand, ef, budget, &len, &spent)) != COPSE_OK)
        return rc;
    if (spent > budget || len < a->k)
        return scan_allowed(a, ids, dists, n_out);
    rerank(a, &len);
    emit(a, len, ids, dists, n_out);
    return COPSE_OK;
}


static int run_query(const query_args *a, int exact, int64_t *ids, float *dists, int64_t *n_out)
{
    *n_out = 0;
    if (a->k == 0)
        return COPSE_OK;
    if (a->f)
        return run_filtered(a, exact, ids, dists, n_out);
    if (exact)
        return rank(a, NULL, a->rd->v->n_items, ids, dists, n_out);
    int rc = scratch_begin(a->s, a->rd->v->n_items);
    uint64_t n_cand = 0;
    if (!a->rd->v->graph) {
        if (rc == COPSE_OK)
            rc = gather(a, &n_cand);
        if (rc == COPSE_OK)
            rc = rank(a, a->s->cand, n_cand, ids, dists, n_out);
        return rc;
    }
    /* With a graph, search_k is the walk's width (ef: the nearest items kept while walking);
     * the forest gathers k seeds (at most half of ef), the nearest leaf or two: the graph is
     * navigable, so on GloVe one seed reached the same recall as ef / 2 of them at ef 80-500,
     * and every seed costs a distance. search_k = 0 gathers nothing, as without a graph. */
    uint64_t ef = a->search_k > a->k ? a->search_k : a->k, len = 0;
    query_args seeds = *a;
    seeds.search_k = a->search_k ? (a->k < (ef + 1) / 2 ? a->k : (ef + 1) / 2) : 0;
    if (ef > a->rd->v->n_items)
        ef = a->rd->v->n_items;
    if (rc == COPSE_OK)
        rc = gather(&seeds, &n_cand);
    if (rc == COPSE_OK)
        rc = add_entry(a, &n_cand);
    if (rc == COPSE_OK)
        rc = graph_walk(a, n_cand, ef, &len);
    if (rc == COPSE_OK) {
        rerank(a, &len);
        emit(a, len, ids, dists, n_out);
    }
    return rc;
}

/* ---- argument checks shared by every entry point ---- */

static int check_query(const cp_reader *rd, copse_scratch *s, int64_t k, int64_t search_k,
                       const void *out, const char *what)
{
    if (!rd || !out)
        return cp_fail(&s->err, COPSE_ERR_ARG, "%s: NULL %s", what, rd ? "output" : "index");
    if (!rd->v)
        return cp_fail(&s->err, COPSE_ERR_STATE, "%s: the index is not built or loaded", what);
    if (k < 0)
        return cp_fail(&s->err, COPSE_ERR_ARG, "%s: k = %lld is negative", what, (long long)k);
    if (search_k < -1)
        return cp_fail(&s->err, COPSE_ERR_ARG, "%s: search_k = %lld; want -1 (automatic) or >= 0",
                       what, (long long)search_k);
    return COPSE_OK;
}

/* -1 is Annoy's k * n_trees, and with a graph at least 3 k: the forest then has one tree (it
 * only seeds the walk), and a walk k wide found 6 of the 10 nearest words for "chinese river"
 * (make demo-words), 3 k all 10. No value is larger than the forest can deliver (every leaf
 * item; with a graph, twice the items, so that the seeds, half of it, can be every item), so
 * a huge value means "all". */
#define GRAPH_DEFAULT_WIDTH 3
uint64_t cp_search_k(const cp_view *v, int64_t k, int64_t search_k)
{
    uint64_t sk, most = v->graph ? 2 * v->n_items : v->n_leaf_items;
    uint64_t per_k = v->graph && v->n_trees < GRAPH_DEFAULT_WIDTH ? GRAPH_DEFAULT_WIDTH : v->n_trees;
    if (search_k >= 0)
        sk = (uint64_t)search_k;
    else if (!cp_mul_add((uint64_t)k, per_k, 0, &sk))
        sk = UINT64_MAX;
    return sk < most ? sk : most;
}

/* s->qbuf: room for a query's stored form (hamming's packed bits, or an item's decoded
 * vector) and, for 8-bit codes, its prepared floats (cp_query_codes) after that. */
static int query_room(const cp_reader *rd, copse_scratch *s)
{
    if (!cp_grow((void **)&s->qbuf, (uint64_t *)&s->qbuf_cap, 2 * rd->g->row_bytes, 1))
        return cp_fail(&s->err, COPSE_ERR_NOMEM, "search: no memory");
    return COPSE_OK;
}

/* Stored form of a user vector in s->qbuf (hamming packs; others point at the input). */
static int prepare_vector(const cp_reader *rd, copse_scratch *s, const float *q, cp_query *out)
{
    const cp_geom *g = rd->g;
    int rc = g->metric == COPSE_HAMMING || rd->v->quant.storage == COPSE_STORAGE_I8
                 ? query_room(rd, s) : COPSE_OK;
    if (rc != COPSE_OK)
        return rc;
    if (g->metric == COPSE_HAMMING) {
        cp_encode(g, q, s->qbuf);
        out->row = s->qbuf;
    } else {
        out->row = q;
    }
    out->norm = g->metric == COPSE_ANGULAR ? rd->k->dot(q, q, (size_t)g->dim) : 0;
    cp_query_codes(g, rd->k, &rd->v->quant, out, (float *)(s->qbuf + g->row_bytes));
    return COPSE_OK;
}

/* An item's own vector as the query: its stored row, or decoded from its codes (the query
 * side of every distance is float). */
static int prepare_item(const cp_reader *rd, copse_scratch *s, int64_t id, cp_query *out)
{
    const cp_view *v = rd->v;
    uint64_t slot;
    if (!cp_view_slot(v, id, &slot))
        return cp_fail(&s->err, COPSE_ERR_NOTFOUND, "search: item %lld is not in the index",
                       (long long)id);
    out->row = v->vectors + slot * v->quant.stride;
    out->norm = rd->g->metric == COPSE_ANGULAR ? v->norms[slot] : 0;
    if (v->quant.storage == COPSE_STORAGE_F32)
        return COPSE_OK;
    int rc = query_room(rd, s);
    if (rc != COPSE_OK)
        return rc;
    cp_quant_decode(rd->g, &v->quant, out->row, (float *)s->qbuf);
    out->row = s->qbuf;
    cp_query_codes(rd->g, rd->k, &v->quant, out, (float *)(s->qbuf + rd->g->row_bytes));
    return COPSE_OK;
}

int cp_search(const cp_reader *rd, copse_scratch *scratch, const float *qv, int64_t id,
              int64_t k, int64_t search_k, int exact, const copse_filter *f, int64_t *ids,
              float *dists, int64_t *n_out)
{
    copse_scratch tmp_s, *s = scratch;
    if (!s) {
        memset(&tmp_s, 0, sizeof tmp_s);
        s = &tmp_s;
    }
    int64_t dummy_n;
    if (!n_out)
        n_out = &dummy_n;
    *n_out = 0;
    const char *what = exact ? "exact" : "search";
    int rc = check_query(rd, s, k, search_k, ids, what);
    query_args a = {rd, s, {NULL, 0, NULL, 0, 0}, (uint64_t)k, 0, NULL};
    copse_filter bound;
    if (rc == COPSE_OK && f)
        rc = cp_filter_bind(f, rd->v, &bound, &a.f, &s->err, what);
    if (rc == COPSE_OK) {
        a.search_k = cp_search_k(rd->v, k, search_k);
        if (a.k > rd->v->n_items) /* no more results than items: bounds every buffer */
            a.k = rd->v->n_items;
        if (qv)
            rc = cp_check_finite(qv, rd->g->dim, &s->err, what);
        if (rc == COPSE_OK)
            rc = qv ? prepare_vector(rd, s, qv, &a.q) : prepare_item(rd, s, id, &a.q);
    }
    if (rc == COPSE_OK)
        rc = run_query(&a, exact, ids, dists, n_out);
    if (s == &tmp_s)
        scratch_release(&tmp_s);
    return rc;
}

/* ---- batches ---- */

/* The first failure a worker met: workers take queries in increasing order, so the batch's
 * first failing query is the least of these, whichever thread ran it. */
typedef struct batch_fail {
    int64_t at; /* -1: none */
    int rc;
} batch_fail;

typedef struct batch {
    const cp_reader *rd;
    cp_query_fn fn;
    const void *fn_ctx;
    const float *qs;
    uint64_t k;
    int64_t search_k;
    int exact;
    const copse_filter *f;
    int64_t *ids;
    float *dists;
    int64_t *counts;
    copse_scratch **scratch; /* one per worker */
    batch_fail *fail;        /* one per worker */
} batch;

static void batch_one(void *ctx, uint64_t i, int worker)
{
    batch *b = ctx;
    int64_t *ids = b->ids + i * b->k;
    float *dists = b->dists ? b->dists + i * b->k : NULL;
    int64_t n = 0;
    copse_scratch *s = b->scratch[worker];
    batch_fail *f = &b->fail[worker];
    cp_err saved = s->err;
    int rc = b->fn(b->fn_ctx, s, b->qs + i * (uint64_t)b->rd->g->dim, (int64_t)b->k,
                   b->search_k, b->exact, b->f, ids, dists, &n);
    for (uint64_t j = (uint64_t)n; j < b->k; j++) {
        ids[j] = -1;
        if (dists)
            dists[j] = NAN;
    }
    if (b->counts)
        b->counts[i] = n;
    if (rc != COPSE_OK && f->at < 0)
        *f = (batch_fail){(int64_t)i, rc};
    else if (f->at >= 0)
        s->err = saved; /* keep the message of this worker's first failure */
}

/* Worker scratches in s, made on the first batch that needs them and kept. */
static int batch_workers(copse_scratch *s, int nt)
{
    if (s->n_workers >= nt)
        return COPSE_OK;
    copse_scratch **w = cp_reallocarray(s->workers, (size_t)nt, sizeof *w);
    if (!w)
        return COPSE_ERR_NOMEM;
    s->workers = w;
    while (s->n_workers < nt) {
        if (copse_scratch_new(&w[s->n_workers]) != COPSE_OK)
            return COPSE_ERR_NOMEM;
        s->n_workers++;
    }
    return COPSE_OK;
}

int cp_search_batch(const cp_reader *rd, cp_query_fn fn, const void *fn_ctx,
                    copse_scratch *scratch, const float *qs, int64_t nq, int64_t k,
                    int64_t search_k, int exact, int n_threads, const copse_filter *f,
                    int64_t *ids, float *dists, int64_t *counts)
{
    copse_scratch dummy = {0};
    copse_scratch *s = scratch ? scratch : &dummy;
    int rc = check_query(rd, s, k, search_k, ids, "search_batch");
    if (rc != COPSE_OK)
        return rc;
    if (nq < 0 || (nq > 0 && !qs))
        return cp_fail(&s->err, COPSE_ERR_ARG, "search_batch: %lld queries at %p", (long long)nq,
                       (const void *)qs);
    size_t dim = (size_t)rd->g->dim;
    for (int64_t i = 0; i < nq; i++) {
        char what[48];
        snprintf(what, sizeof what, "search_batch: query %lld", (long long)i);
        if ((rc = cp_check_finite(qs + (size_t)i * dim, rd->g->dim, &s->err, what)) != COPSE_OK)
            return rc;
    }
    int nt = cp_thread_count(n_threads, (uint64_t)nq);
    batch b = {rd, fn, fn_ctx, qs, (uint64_t)k, search_k, exact, f, ids, dists, counts, NULL, NULL};
    b.fail = cp_mallocarray((size_t)nt, sizeof *b.fail);
    if (!b.fail || batch_workers(s, nt) != COPSE_OK)
        rc = cp_fail(&s->err, COPSE_ERR_NOMEM, "search_batch: no memory");
    if (rc == COPSE_OK) {
        b.scratch = s->workers;
        for (int t = 0; t < nt; t++)
            b.fail[t] = (batch_fail){-1, COPSE_OK};
        cp_parallel_for(nt, (uint64_t)nq, batch_one, &b);
        int first = -1;
        for (int t = 0; t < nt; t++)
            if (b.fail[t].at >= 0 && (first < 0 || b.fail[t].at < b.fail[first].at))
                first = t;
        if (first >= 0) {
            rc = b.fail[first].rc;
            s->err = s->workers[first]->err;
        }
    }
    cp_free(b.fail);
    if (s == &dummy)
        scratch_release(&dummy);
    return rc;
}
