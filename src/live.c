/*
 * live.c: a living index, the changes made to a built or loaded one.
 *
 * The base (a built forest and graph, or a mapped file) never changes: files stay mapped
 * read-only and shared. Changes live beside it, as FreshDiskANN keeps them: a tombstone bit
 * per base slot, and a delta of the items added since the base was built. Adding an id that
 * exists tombstones its old slot (in the base or the delta) and appends the new vector: slots
 * are never rewritten, so no graph list ever describes a vector it was not built for.
 *
 * One graph (graph.c, cp_graph_live) holds the base's lists and the added items: at the first
 * change the base's lists are copied into it (link_base), and each added item is inserted by
 * the same insert path that builds a base's graph, searching base and added items alike; its
 * reverse edges go into base items' lists too. So a query walks base and added items in one
 * walk from the forest's seeds, the work a fresh build of them does at the same search_k
 * (two walks, one per part, each needing k results, cost 0.36-0.68x a fresh build's QPS after
 * 50% churn in bench/churn.cc). Slot n_base + i of the graph is added item i; a query sees it
 * through a view of both parts (whole_view, cp_view.added_from) and a filter per part (PARTS).
 * Deleted items stay in the lists as waypoints (queries walk through them, never return
 * them) until the lists naming them are repaired around them, once enough are deleted
 * (repair_base), or copse_compact rebuilds. A save writes the base's part as GRAPH and the
 * added items' as DELTA_GRAPH (format 2.2: both name items of either part).
 *
 * A base without a graph (built without one, an Annoy file, one item) cannot be walked into:
 * its added items get a graph of their own (slots 0.. of the same cp_graph), walked beside the
 * base's forest, and the two answers merged; for a small delta an exact scan is both exact and
 * cheaper than a walk.
 *
 * A saved delta comes back as it was saved, read where the file is mapped: queries walk its
 * lists and the base's GRAPH as saved and read its norms (open_linked), as they read a base's
 * sections; the first change that writes them checks them and takes them (take_lists,
 * cp_graph_take), not recomputed, so a loaded file answers at once and takes inserts without
 * a search. Its vectors and ids are read where mapped until the first add copies them
 * (cp_builder_borrow), and so is its filing in the forest's leaves (file_added: the forest
 * holds only the base, and a walk seeds from the leaf a query opens), saved as DELTA_LEAVES
 * (2.3); a 2.2 file, saved without them, has its items filed by the first query or change
 * (file_late). A 2.0 or 2.1 file's delta, which had a graph of its own, is linked into the
 * base's at load by the insert path.
 *
 * Tags change in place: a delta item's in the delta's own tag array, a base item's in a copy
 * of the base's tags made at the first change (a mapped file is never written), which the
 * base's view then points at, so a tag filter reads one array per part either way. Replacing
 * an item keeps its tags, as re-adding one does before build.
 *
 * Threads: one writer, any number of readers. Every reader holds the read lock for one query;
 * the writer takes the write lock per delete call, and per chunk of LIVE_CHUNK inserted items,
 * so a query waits at most for one chunk (and for the copy of the base's lists into the
 * graph, once, at the first add). Everything a reader reads is written under the write lock,
 * so a query sees each change entirely or not at all.
 *
 * Dot product: the graph's distance 2 (R^2 - a.b) takes the items' extra components e of
 * vectors augmented onto a sphere of radius R at least the largest norm (metric.c, graph.c).
 * The added items take the base's sphere, or twice the largest norm added when one exceeds it
 * (doubling again when an item exceeds that, a logarithmic number of times); the base's extra
 * components are lifted onto the same sphere (graph.c) and the lists' distances, which the
 * radius shifts, recomputed when next pruned.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LIVE_CHUNK 64      /* items inserted per hold of the write lock */
#define LIVE_SCAN_BELOW 512 /* a delta this small is scanned exactly */
#define LIVE_REPAIR_SHARE 32 /* lists are repaired once 1/32 of the live items are newly dead */
#define LIVE_REPAIR_MIN 64   /* ... and at least this many */
#define LIVE_REPAIR_TAKE 12  /* a deleted neighbour's nearest live neighbours offered in its
                              * place (4 lost recall; 12 kept it as 32 did: docs/DESIGN.md) */

struct cp_live {
    const cp_geom *g;
    const cp_kernels *k;
    void *lock;
    uint64_t n_base;
    uint64_t *dead;       /* base slots deleted or replaced: n_base bits; NULL until the first */
    uint64_t *base_tags;  /* the base's tags once one has changed (n_base masks), else NULL */
    uint64_t n_dead;
    cp_builder delta;     /* rows, ids and the id -> newest slot map of the added items */
    float *norms;         /* per delta slot, as the NORMS section's (angular, dot) */
    uint64_t norms_cap;
    uint64_t *delta_dead; /* delta slots deleted or replaced */
    uint64_t delta_dead_words;
    uint64_t n_delta_dead;
    float radius;         /* dot: the delta's sphere */
    uint32_t degree;      /* of the graph; 0: none */
    /* The graph of the added items (slots from graph.split on), and once active (link_base)
     * the base's lists too (slots below graph.split), repaired and linked to the added items:
     * queries then walk it in place of the base's. */
    cp_graph graph;
    int active;
    /* A loaded 2.2 or 2.3 file's added items' lists and norms, read where they are mapped
     * (with the base's GRAPH, which holds the base's lists as saved) until the first change
     * checks them and takes them into the graph (take_lists); NULL otherwise. */
    const uint32_t *file_lists;
    const float *file_norms;
    uint32_t file_entry;
    /* Once linked: the added items filed in the base forest's leaves (cp_view.added_leaf_head),
     * n_leaves chain heads, then n_trees links per added item, in one block (room for
     * chains_cap entries), as section DELTA_LEAVES holds them; or a loaded file's section,
     * read where mapped until the first change copies it. */
    uint32_t *chains;
    uint64_t chains_cap;
    const uint32_t *file_chains;
    /* Whether every added item is filed: not yet after loading a 2.2 file, which leaves it to
     * the first query or change (filing took 22 ms of a 60 ms load of bench/churn.cc's
     * churned file). The first query files them under file_lock, which only that filing
     * takes. */
    atomic_int filed;
    void *file_lock;
    uint64_t repaired_at; /* dead items (base and added) when the lists were last repaired */
    double compact_at;    /* copse_set_compact_threshold */
};

static int bit(const uint64_t *bits, uint64_t i) { return bits && ((bits[i >> 6] >> (i & 63)) & 1); }
static void set_bit(uint64_t *bits, uint64_t i) { bits[i >> 6] |= 1ull << (i & 63); }
static uint64_t words_for(uint64_t n) { return (n + 63) / 64; }
/* The added items' norms: the file's until the first change takes them. */
static const float *delta_norms(const cp_live *l) { return l->file_lists ? l->file_norms : l->norms; }
/* Their filing in the forest's leaves: the file's until the first change copies it; NULL when
 * none is made. */
static const uint32_t *leaf_chains(const cp_live *l) { return l->chains ? l->chains : l->file_chains; }

/* The graph of added items only, until link_base gives it the base's lists. */
static void graph_init(cp_live *l)
{
    static const cp_quant f32 = {COPSE_STORAGE_F32, 0, NULL, NULL, NULL};
    l->active = 0;
    if (!l->degree)
        return;
    cp_graph_init(&l->graph, l->g, l->k, l->degree, CP_GRAPH_WIDTH, CP_GRAPH_ALPHA);
    cp_graph_live(&l->graph, 0, NULL, &f32, NULL, NULL, UINT32_MAX, 0); /* cannot fail: no room */
}

int cp_live_new(cp_live **out, const cp_geom *g, const cp_kernels *k, uint64_t n_base,
                uint32_t degree, cp_err *err)
{
    cp_live *l = cp_calloc(1, sizeof *l);
    *out = NULL;
    if (!l || cp_rwlock_new(&l->lock) != COPSE_OK || cp_rwlock_new(&l->file_lock) != COPSE_OK) {
        if (l && l->lock)
            cp_rwlock_free(l->lock);
        cp_free(l);
        return cp_fail(err, COPSE_ERR_NOMEM, "no memory for the index's change set");
    }
    l->g = g;
    l->k = k;
    l->n_base = n_base;
    l->degree = degree;
    cp_builder_init(&l->delta);
    atomic_store(&l->filed, 1); /* no added item */
    graph_init(l);
    *out = l;
    return COPSE_OK;
}

void cp_live_free(cp_live *l)
{
    if (!l)
        return;
    cp_live_reset(l, 0, 0);
    cp_rwlock_free(l->lock);
    cp_rwlock_free(l->file_lock);
    cp_free(l);
}

void cp_live_read(const cp_live *l) { cp_read_lock(l->lock); }
void cp_live_done(const cp_live *l) { cp_unlock(l->lock); }
void cp_live_write_lock(cp_live *l) { cp_write_lock(l->lock); }
void cp_live_write_unlock(cp_live *l) { cp_unlock(l->lock); }

int cp_live_changed(const cp_live *l) { return l->n_dead > 0 || l->delta.n > 0; }
int cp_live_tags_changed(const cp_live *l) { return l->base_tags != NULL; }
uint64_t cp_live_count(const cp_live *l)
{
    return l->n_base - l->n_dead + l->delta.n - l->n_delta_dead;
}
uint64_t cp_live_n_deleted(const cp_live *l) { return l->n_dead + l->n_delta_dead; }
uint64_t cp_live_n_delta(const cp_live *l) { return l->delta.n; }
int64_t cp_live_max_id(const cp_live *l) { return l->delta.max_id; }

void cp_live_set_threshold(cp_live *l, double fraction) { l->compact_at = fraction; }

int cp_live_wants_compaction(const cp_live *l)
{
    double held = (double)(l->n_dead + l->delta.n), base = (double)(l->n_base ? l->n_base : 1);
    return l->compact_at > 0 && held >= l->compact_at * base;
}

/* ---- where an id lives ---- */

int cp_live_find(const cp_live *l, const cp_view *base, int64_t id, cp_place *at)
{
    uint64_t slot;
    if (cp_builder_slot(&l->delta, id, &slot) && !bit(l->delta_dead, slot)) {
        *at = (cp_place){1, slot};
        return 1;
    }
    if (cp_view_slot(base, id, &slot) && !bit(l->dead, slot)) {
        *at = (cp_place){0, slot};
        return 1;
    }
    return 0;
}

const void *cp_live_row(const cp_live *l, const cp_view *base, cp_place at)
{
    return at.delta ? l->delta.rows + at.slot * l->g->row_bytes
                    : base->vectors + at.slot * base->quant.stride;
}

int64_t cp_live_id_at(const cp_live *l, const cp_view *base, uint64_t pos, int64_t *id)
{
    /* The live items in order: base slots, then delta slots. Counting whole words first keeps
     * this a scan of the bitmaps, not of the items. */
    uint64_t words = words_for(l->n_base);
    for (uint64_t w = 0; w < words; w++) {
        uint64_t valid = w + 1 < words || l->n_base % 64 == 0 ? ~0ull : (1ull << (l->n_base % 64)) - 1;
        uint64_t live = valid & ~(l->dead ? l->dead[w] : 0);
        uint64_t c = (uint64_t)__builtin_popcountll(live);
        if (pos >= c) {
            pos -= c;
            continue;
        }
        for (; pos; pos--)
            live &= live - 1;
        *id = cp_view_id(base, w * 64 + (uint64_t)__builtin_ctzll(live));
        return 1;
    }
    for (uint64_t s = 0; s < l->delta.n; s++)
        if (!bit(l->delta_dead, s) && pos-- == 0) {
            *id = l->delta.ids[s];
            return 1;
        }
    return 0;
}

/* ---- the writer ---- */

static int grow_words(uint64_t **bits, uint64_t *have, uint64_t want)
{
    if (want <= *have)
        return 1;
    uint64_t cap = *have ? *have : 4;
    while (cap < want)
        cap *= 2;
    uint64_t *b = cp_reallocarray(*bits, cap, sizeof *b);
    if (!b)
        return 0;
    memset(b + *have, 0, (cap - *have) * sizeof *b);
    *bits = b;
    *have = cap;
    return 1;
}

/* The slot an id holds now is retired (write lock held). */
static void retire(cp_live *l, cp_place at)
{
    if (at.delta) {
        set_bit(l->delta_dead, at.slot);
        l->n_delta_dead++;
    } else {
        set_bit(l->dead, at.slot);
        l->n_dead++;
    }
}

static float norm_entry(const cp_live *l, const float *x)
{
    float sq = l->k->dot(x, x, (size_t)l->g->dim);
    if (l->g->metric == COPSE_DOT)
        return sqrtf(l->radius * l->radius - sq > 0 ? l->radius * l->radius - sq : 0);
    return sq;
}

/* Dot: what lifts the base's extra components onto the added items' sphere (graph.c). */
static void set_lift(cp_live *l)
{
    float lift = l->radius * l->radius - l->graph.base_r2;
    l->graph.lift = l->graph.split && lift > 0 ? lift : 0;
}

/* A new radius for the added items (dot): their norm entries again, the base's extra
 * components lifted onto the same sphere (graph.c), and the lists' distances forgotten, so a
 * prune computes them on the new sphere. The lists themselves stay: built on a smaller
 * sphere, they are still a navigable graph, and a rebuild would stall the writer. */
static void respread(cp_live *l, float radius)
{
    l->radius = radius;
    for (uint64_t s = 0; cp_metric_has_norms(l->g->metric) && s < l->delta.n; s++)
        l->norms[s] = norm_entry(l, (const float *)(l->delta.rows + s * l->g->row_bytes));
    if (!l->degree)
        return;
    set_lift(l);
    cp_graph_forget_distances(&l->graph);
}

/* The delta's saved norms, checked (cp_check_delta_norms), into l->norms. */
static int check_norms(cp_live *l, const cp_view *v, cp_err *err)
{
    cp_reader rd = {l->g, l->k, v};
    int rc = cp_check_delta_norms(&rd, err);
    if (rc != COPSE_OK)
        return rc;
    if (cp_metric_has_norms(l->g->metric))
        memcpy(l->norms, v->delta_norms, v->meta.n_delta * sizeof *l->norms);
    else
        memset(l->norms, 0, v->meta.n_delta * sizeof *l->norms);
    l->radius = v->meta.delta_radius;
    return COPSE_OK;
}

/* Whether the added items are linked into the base's graph: one walk answers a query. A base
 * without a graph (built without one, an Annoy file, a single item) is searched beside the
 * added items' own graph instead. */
static int linked(const cp_live *l, const cp_view *base)
{
    return l->degree && base->graph && base->graph_degree == l->degree;
}

/* The base's lists (of slots below bound) into the graph, which queries do not read yet: the
 * caller makes it active under the write lock. entry: where inserts start (UINT32_MAX: the
 * base item nearest its centroid). */
static int link_base(cp_live *l, const cp_view *base, uint64_t bound, uint32_t entry, cp_err *err)
{
    int rc = cp_check_lists(base->graph, l->n_base, l->degree, bound, "graph", err);
    if (rc != COPSE_OK)
        return rc;
    if (cp_graph_live(&l->graph, (uint32_t)l->n_base, base->vectors, &base->quant, base->norms,
                      base->graph, entry, l->n_base + l->delta.cap) != COPSE_OK)
        return cp_fail(err, COPSE_ERR_NOMEM, "no memory for a copy of the base's graph");
    /* Dot: the added items go on a sphere at least the base's (but for a float sum's
     * rounding: a saved radius computed with another kernel set stays, with its norms). */
    float r = sqrtf(l->graph.base_r2);
    if (l->g->metric == COPSE_DOT && l->radius < r * 0.999f)
        respread(l, r);
    set_lift(l);
    return COPSE_OK;
}

/* A loaded file's leaf chains, checked (cp_check_chains) and copied: later adds file into
 * them. */
static int take_chains(cp_live *l, const cp_view *base, cp_err *err)
{
    uint64_t cells = base->n_leaves + l->delta.n * base->n_trees;
    int rc = cp_check_chains(l->file_chains, base->n_leaves, l->delta.n * base->n_trees, err);
    if (rc != COPSE_OK)
        return rc;
    if (!cp_grow((void **)&l->chains, &l->chains_cap, cells, sizeof *l->chains))
        return cp_fail(err, COPSE_ERR_NOMEM, "no memory for the added items' leaf chains");
    memcpy(l->chains, l->file_chains, cells * sizeof *l->chains);
    return COPSE_OK;
}

/* The graph as the first change that writes it needs it: the base's lists copied in
 * (link_base), and a loaded file's added items' lists and norms, read where mapped until now,
 * checked and taken (with no search). The caller makes it active (activate) under the write
 * lock; until then queries read the lists and norms as they were. */
static int take_lists(cp_live *l, const cp_view *base, cp_err *err)
{
    if (!l->file_lists)
        return link_base(l, base, l->n_base, UINT32_MAX, err);
    uint64_t n = l->delta.n;
    if (!cp_grow((void **)&l->norms, &l->norms_cap, n, sizeof *l->norms))
        return cp_fail(err, COPSE_ERR_NOMEM, "no memory for the norms of %llu added items",
                       (unsigned long long)n);
    int rc = check_norms(l, base, err);
    if (rc == COPSE_OK)
        rc = cp_check_lists(l->file_lists, n, l->degree, l->n_base + n, "delta_graph", err);
    if (rc == COPSE_OK && l->file_chains)
        rc = take_chains(l, base, err);
    if (rc == COPSE_OK)
        rc = link_base(l, base, l->n_base + n, l->file_entry, err);
    if (rc != COPSE_OK)
        return rc;
    cp_graph *gr = &l->graph;
    gr->rows = l->delta.rows;
    gr->norms = l->norms;
    cp_graph_take(gr, gr->split, l->file_lists, n);
    gr->n_inserted = gr->split + n;
    return COPSE_OK;
}

static void activate(cp_live *l)
{
    l->active = 1;
    l->file_lists = NULL;
    l->file_norms = NULL;
    l->file_chains = NULL;
}

/* The leaf of tree t that a query equal to row would open first: the forest's descent. A
 * damaged reference (a file's, met here first) files nothing: UINT64_MAX, and queries, which
 * check every reference, report the damage. */
static uint64_t leaf_of(const cp_live *l, const cp_view *base, uint64_t t, const void *row)
{
    uint64_t ref = base->roots[t];
    for (uint64_t steps = 0; !(ref & CP_LEAF_FLAG); steps++) {
        if (ref >= base->n_split || steps > base->n_split)
            return UINT64_MAX;
        const cp_node *nd = (const cp_node *)(base->nodes + ref * l->g->node_stride);
        ref = nd->child[cp_margin(l->g, l->k, nd, row) > 0];
    }
    ref &= ~CP_LEAF_FLAG;
    return ref < base->n_leaves ? ref : UINT64_MAX;
}

/* Files delta slots first.. in the base forest's leaves, so that queries take them as seeds
 * as they take base items: the forest holds only the base, and after 50% churn half of a
 * leaf's items were deleted and none of the added ones could seed a walk, which then needed
 * 1.3x a fresh build's distances for its recall (bench/churn.cc, search_k 10). A replaced or
 * deleted item stays filed (its tombstone keeps it out of answers) until compaction. Under
 * the write lock. Out of memory, nothing stays filed (the chains are freed) and queries seed
 * from the base's items alone, as right and slower. */
static void file_added(cp_live *l, const cp_view *base, uint64_t first)
{
    uint64_t nt = base->n_trees, n = l->delta.n, heads = base->n_leaves;
    int fresh = !l->chains;
    if (n * nt > UINT32_MAX ||
        !cp_grow((void **)&l->chains, &l->chains_cap, heads + n * nt, sizeof *l->chains)) {
        cp_free(l->chains);
        l->chains = NULL;
        l->chains_cap = 0;
        return;
    }
    if (fresh)
        memset(l->chains, 0xff, heads * sizeof *l->chains);
    uint32_t *head = l->chains, *next = l->chains + heads;
    /* An entry links to an earlier one (a smaller number), so a chain ends: queries rely on
     * it (search.c). */
    for (uint64_t s = first; s < n; s++)
        for (uint64_t t = 0; t < nt; t++) {
            uint64_t leaf = leaf_of(l, base, t, l->delta.rows + s * l->g->row_bytes);
            uint32_t e = (uint32_t)(s * nt + t);
            next[e] = leaf == UINT64_MAX ? UINT32_MAX : head[leaf];
            if (leaf != UINT64_MAX)
                head[leaf] = e;
        }
}

/* A loaded file's added items filed by its first query, which holds the read lock (so the
 * writer waits) and file_lock (so other first queries wait): the chains are the query's only
 * writes, and no reader reads them before filed says they are whole. */
static void file_late(cp_live *l, const cp_view *base)
{
    cp_write_lock(l->file_lock);
    if (!atomic_load_explicit(&l->filed, memory_order_relaxed)) {
        file_added(l, base, 0);
        atomic_store_explicit(&l->filed, 1, memory_order_release);
    }
    cp_unlock(l->file_lock);
}

/* Room for tags in the delta: its builder grows them with its rows from then on. */
static int delta_tags_ready(cp_live *l)
{
    if (!l->delta.tags)
        l->delta.tags = cp_calloc(l->delta.cap ? l->delta.cap : 1, sizeof *l->delta.tags);
    return l->delta.tags != NULL;
}

/* One chunk of checked rows, under the write lock. */
static int add_chunk(cp_live *l, const cp_view *base, int64_t n, const int64_t *ids,
                     int64_t first_id, const float *vs, int n_threads, cp_err *err)
{
    const cp_geom *g = l->g;
    size_t dim = (size_t)g->dim;
    uint64_t first = l->delta.n;
    if (base->n_items && !l->dead && !(l->dead = cp_calloc(words_for(l->n_base), sizeof *l->dead)))
        return cp_fail(err, COPSE_ERR_NOMEM, "add: no memory for tombstones");
    if (linked(l, base) && !l->active) {
        int rc = take_lists(l, base, err);
        if (rc != COPSE_OK)
            return rc;
        activate(l);
    }
    if (!grow_words(&l->delta_dead, &l->delta_dead_words, words_for(l->delta.n + (uint64_t)n)) ||
        !cp_grow((void **)&l->norms, &l->norms_cap, l->delta.n + (uint64_t)n, sizeof *l->norms))
        return cp_fail(err, COPSE_ERR_NOMEM, "add: no memory for %lld items", (long long)n);
    float widest = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *x = vs + (size_t)i * dim;
        int64_t id = ids ? ids[i] : first_id + i;
        cp_place at;
        int had = cp_live_find(l, base, id, &at);
        uint64_t old, tags = had ? cp_live_tags(l, base, at) : 0;
        if (tags && !delta_tags_ready(l))
            return cp_fail(err, COPSE_ERR_NOMEM, "add: no memory for tags");
        int rc = cp_builder_append(&l->delta, g, id, x, &old, err);
        if (rc != COPSE_OK)
            return rc;
        if (tags)
            l->delta.tags[l->delta.n - 1] = tags;
        if (had)
            retire(l, at);
        if (g->metric == COPSE_DOT) {
            float nx = sqrtf(l->k->dot(x, x, dim));
            widest = nx > widest ? nx : widest;
        }
    }
    if (g->metric == COPSE_DOT && widest > l->radius)
        respread(l, 2 * widest);
    for (uint64_t s = first; s < l->delta.n; s++)
        l->norms[s] = cp_metric_has_norms(g->metric)
                          ? norm_entry(l, (const float *)(l->delta.rows + s * g->row_bytes)) : 0;
    if (l->active && base->n_trees) {
        file_added(l, base, atomic_load(&l->filed) ? first : 0);
        atomic_store(&l->filed, 1);
    }
    uint64_t split = l->graph.split;
    if (!l->degree || l->graph.n_inserted == split + l->delta.n)
        return COPSE_OK;
    uint32_t fresh[LIVE_CHUNK];
    uint64_t m = 0;
    for (uint64_t s = l->graph.n_inserted; s < split + l->delta.n; s++)
        fresh[m++] = (uint32_t)s;
    if (!cp_graph_reserve(&l->graph, split + l->delta.cap))
        return cp_fail(err, COPSE_ERR_NOMEM, "add: no memory for the graph");
    int rc = cp_graph_insert(&l->graph, l->delta.rows, l->norms, fresh, m, n_threads);
    return rc == COPSE_OK ? rc : cp_fail(err, rc, "add: no memory for the graph");
}

/* ---- repairing the lists around deleted items ---- */

typedef struct repair_ctx {
    const cp_live *l;
    uint32_t *out;          /* a copy of the graph's lists, repaired here */
    unsigned char *changed; /* per slot: its list in out differs */
} repair_ctx;

/* Whether a slot of the graph (base, then added items) is deleted. */
static int gone(const cp_live *l, uint32_t slot)
{
    uint32_t split = l->graph.split;
    return slot < split ? bit(l->dead, slot) : bit(l->delta_dead, slot - split);
}

/* Slot p's list without its deleted entries, refilled with the nearest to p of the first
 * LIVE_REPAIR_TAKE live entries of each deleted one's own list (nearest to it first, as the
 * insert path writes a list). Dead slots are repaired too: the forest still offers them as
 * seeds, and a seed should lead to live items. */
static void repair_one(void *ctx, uint64_t i, int worker)
{
    const repair_ctx *r = ctx;
    const cp_live *l = r->l;
    const cp_graph *gr = &l->graph;
    uint32_t deg = l->degree, p = (uint32_t)i, len = 0, kept = 0, n_dead = 0;
    const uint32_t *nb = gr->adj + i * deg;
    uint32_t *o = r->out + i * deg;
    while (len < deg && nb[len] != UINT32_MAX)
        n_dead += (uint32_t)gone(l, nb[len++]);
    if (!n_dead)
        return; /* out already holds the list */
    cp_cand room[CP_MAX_GRAPH_DEGREE * LIVE_REPAIR_TAKE];
    uint64_t n = 0;
    for (uint32_t j = 0; j < len; j++)
        if (!gone(l, nb[j]))
            o[kept++] = nb[j];
    for (uint32_t j = 0; j < len; j++) {
        if (!gone(l, nb[j]))
            continue;
        const uint32_t *dn = gr->adj + (uint64_t)nb[j] * deg;
        for (uint32_t t = 0, took = 0; t < deg && dn[t] != UINT32_MAX && took < LIVE_REPAIR_TAKE; t++) {
            uint32_t c = dn[t];
            if (c == p || gone(l, c))
                continue;
            took++;
            int seen = 0;
            for (uint32_t q = 0; q < kept && !seen; q++)
                seen = o[q] == c;
            for (uint64_t q = 0; q < n && !seen; q++)
                seen = room[q].slot == c;
            if (!seen)
                room[n++] = (cp_cand){cp_graph_dist(gr, worker, p, c), c};
        }
    }
    qsort(room, n, sizeof *room, cp_cand_cmp);
    /* Up to halfway from the old length to the degree: lists that only shed entries lost
     * recall on dot (0.993 to 0.968 in live/interleavings); filled to the degree, they cost 7%
     * more distances than this for the same recall (bench/churn.cc's churn, 300 queries).
     * The other rules tried at equal search_k, none better at search_k 10 and 20: docs/DESIGN.md
     * ("A living index"). */
    for (uint64_t q = 0; q < n && kept < (len + deg) / 2; q++)
        o[kept++] = room[q].slot;
    for (uint32_t j = kept; j < deg; j++)
        o[j] = UINT32_MAX;
    r->changed[i] = 1;
}

/* Deleted items stay in the lists as waypoints, which a query walks through and never
 * returns: with half the base deleted, a walk computed as many distances as an unchanged
 * graph's at twice the width (bench/churn.cc). So once enough are newly dead, every list
 * naming one is repaired (FreshDiskANN's delete consolidation, with the dead item's nearest
 * live neighbours offered in its place instead of a full prune, so a pass costs a few
 * distances per dead entry), in a copy built outside the lock while queries read the lists
 * as they are, then published under the write lock. The base itself is never written: a
 * mapped file stays shared and read-only, and the graph holds a copy of its lists
 * (link_base). Out of memory, nothing changes: the lists stay as they were, still right, only
 * slower to walk (and the next delete tries again). */
static void repair_base(cp_live *l, const cp_view *base, int n_threads)
{
    uint64_t dead = l->n_dead + l->n_delta_dead, want = cp_live_count(l) / LIVE_REPAIR_SHARE;
    if (!linked(l, base) || !dead ||
        dead - l->repaired_at < (want > LIVE_REPAIR_MIN ? want : LIVE_REPAIR_MIN))
        return;
    if (!l->active) {
        if (take_lists(l, base, NULL) != COPSE_OK)
            return;
        cp_write_lock(l->lock);
        activate(l);
        cp_unlock(l->lock);
    }
    cp_graph *gr = &l->graph;
    uint64_t n = gr->split + l->delta.n, cells = n * l->degree;
    int nt = cp_thread_count(n_threads, n);
    uint32_t *out = cp_mallocarray(cells, sizeof *out);
    unsigned char *changed = cp_calloc(n, 1);
    gr->rows = l->delta.rows;
    gr->norms = l->norms;
    if (out && changed && cp_graph_workers(gr, nt)) {
        memcpy(out, gr->adj, cells * sizeof *out);
        repair_ctx r = {l, out, changed};
        cp_parallel_for(nt, n, repair_one, &r);
        cp_write_lock(l->lock);
        for (uint64_t i = 0; i < n; i++)
            if (changed[i])
                cp_graph_take(gr, i, out + i * l->degree, 1);
        l->repaired_at = dead;
        cp_unlock(l->lock);
    }
    cp_free(out);
    cp_free(changed);
}

int cp_live_add(cp_live *l, const cp_view *base, int64_t n, const int64_t *ids, int64_t first_id,
                const float *vs, int n_threads, cp_err *err)
{
    int rc = cp_check_rows(l->g, n, ids, first_id, vs, err);
    if (rc == COPSE_OK && l->delta.n + (uint64_t)n > COPSE_MAX_ITEMS)
        rc = cp_fail(err, COPSE_ERR_NOMEM, "add: more than %u added items", COPSE_MAX_ITEMS);
    for (int64_t i = 0; rc == COPSE_OK && i < n; i += LIVE_CHUNK) {
        int64_t m = n - i < LIVE_CHUNK ? n - i : LIVE_CHUNK;
        cp_write_lock(l->lock);
        rc = add_chunk(l, base, m, ids ? ids + i : NULL, first_id + i, vs + (size_t)i * l->g->dim,
                       n_threads, err);
        cp_unlock(l->lock);
    }
    if (rc == COPSE_OK) /* replacements retire base slots */
        repair_base(l, base, n_threads);
    return rc;
}

int cp_live_delete(cp_live *l, const cp_view *base, int64_t n, const int64_t *ids, int n_threads,
                   cp_err *err)
{
    if (n < 0 || (n > 0 && !ids))
        return cp_fail(err, COPSE_ERR_ARG, "delete: n = %lld with %s ids", (long long)n,
                       ids ? "" : "NULL");
    /* All or nothing: every id must be there before anything is deleted (an id listed twice
     * is deleted once). */
    for (int64_t i = 0; i < n; i++) {
        cp_place at;
        if (!cp_live_find(l, base, ids[i], &at))
            return cp_fail(err, COPSE_ERR_NOTFOUND, "delete: item %lld is not in the index%s",
                           (long long)ids[i], n > 1 ? " (nothing was deleted)" : "");
    }
    if (base->n_items && !l->dead && !(l->dead = cp_calloc(words_for(l->n_base), sizeof *l->dead)))
        return cp_fail(err, COPSE_ERR_NOMEM, "delete: no memory for tombstones");
    cp_write_lock(l->lock);
    for (int64_t i = 0; i < n; i++) {
        cp_place at;
        if (cp_live_find(l, base, ids[i], &at))
            retire(l, at);
    }
    cp_unlock(l->lock);
    repair_base(l, base, n_threads);
    return COPSE_OK;
}

/* ---- tags ---- */

uint64_t cp_live_tags(const cp_live *l, const cp_view *base, cp_place at)
{
    const uint64_t *tags = at.delta ? l->delta.tags : base->tags;
    return tags ? tags[at.slot] : 0;
}

int cp_live_set_tags(cp_live *l, cp_view *base, int64_t id, uint64_t mask, cp_err *err)
{
    cp_place at;
    if (!cp_live_find(l, base, id, &at))
        return cp_fail(err, COPSE_ERR_NOTFOUND, "set_tags: item %lld is not in the index",
                       (long long)id);
    if (cp_live_tags(l, base, at) == mask)
        return COPSE_OK; /* nothing changes: no copy of the base's tags for it */
    uint64_t *copy = NULL;
    if (!at.delta && !l->base_tags) {
        /* Copied outside the lock: only this writer changes tags, readers only read them. */
        if (!(copy = cp_calloc(l->n_base, sizeof *copy)))
            return cp_fail(err, COPSE_ERR_NOMEM, "set_tags: no memory for the base's tags");
        if (base->tags)
            memcpy(copy, base->tags, l->n_base * sizeof *copy);
    }
    cp_write_lock(l->lock);
    int ok = 1;
    if (at.delta && (ok = delta_tags_ready(l)))
        l->delta.tags[at.slot] = mask;
    if (!at.delta) {
        if (copy)
            base->tags = l->base_tags = copy;
        l->base_tags[at.slot] = mask;
        base->tags_changes++; /* tag sets made before now no longer describe the base */
    }
    cp_unlock(l->lock);
    return ok ? COPSE_OK : cp_fail(err, COPSE_ERR_NOMEM, "set_tags: no memory");
}

/* ---- queries ---- */

typedef struct found {
    float d; /* reported distance */
    int64_t id;
} found;

/* a before b in results: nearer (for dot, larger), then the smaller id. */
static int before(const cp_geom *g, found a, found b)
{
    if (a.d != b.d)
        return g->metric == COPSE_DOT ? a.d > b.d : a.d < b.d;
    return a.id < b.id;
}

/* The delta as a view the readers can walk: no forest, its graph entered at its entry. */
static void delta_view(const cp_live *l, cp_view *v)
{
    cp_view_init(v);
    v->n_items = l->delta.n;
    v->max_id = l->delta.max_id;
    v->vectors = l->delta.rows;
    /* Items added after build stay float32 beside a quantized base (copse_set_storage). */
    v->quant = (cp_quant){COPSE_STORAGE_F32, l->g->row_bytes, NULL, NULL, NULL};
    v->norms = delta_norms(l);
    v->slot_ids = l->delta.ids;
    v->tags = l->delta.tags;
    if (l->degree && l->delta.n > LIVE_SCAN_BELOW) {
        v->graph = l->graph.adj;
        v->graph_degree = l->degree;
        v->graph_entry = l->graph.entry;
    }
}

/* The base and the added items as one view, once they are linked: the base's forest and the
 * graph's lists, slots from n_base on naming added items. */
static void whole_view(const cp_live *l, const cp_view *base, cp_view *v)
{
    *v = *base;
    v->n_items = l->n_base + l->delta.n;
    if (l->active)
        v->graph = l->graph.adj;
    v->added_from = l->n_base;
    v->added_graph = l->active ? l->graph.adj + l->n_base * l->degree : l->file_lists;
    v->added_vectors = l->delta.rows;
    v->added_quant = (cp_quant){COPSE_STORAGE_F32, l->g->row_bytes, NULL, NULL, NULL};
    v->added_norms = delta_norms(l);
    v->added_ids = l->delta.ids;
    const uint32_t *chains = leaf_chains(l);
    if (chains) {
        v->added_leaf_head = chains;
        v->added_leaf_next = chains + base->n_leaves;
    }
}

/* The filter a part of the query takes: the caller's, bound to the part's view (f, may be
 * NULL), past the part's tombstones. NULL when neither would refuse anything. */
static const copse_filter *part_filter(copse_filter *room, const copse_filter *f,
                                       const uint64_t *dead, uint64_t live)
{
    if (!dead)
        return f;
    memset(room, 0, sizeof *room);
    room->kind = CP_FILTER_LIVE;
    room->inner = f;
    room->dead = dead;
    room->count = live;
    return room;
}

int cp_live_search(const cp_live *l, const cp_reader *base, copse_scratch *s, const float *q,
                   int64_t k, int64_t search_k, int exact, const copse_filter *f, int64_t *ids,
                   float *dists, int64_t *n_out)
{
    int64_t dummy;
    n_out = n_out ? n_out : &dummy;
    *n_out = 0;
    if (k <= 0 || !ids)
        return cp_search(base, s, q, 0, k, search_k, exact, f, ids, dists, n_out);
    int rc = COPSE_OK;
    cp_view dv;
    delta_view(l, &dv);
    dv.lineage = base->v->lineage; /* the caller's filter fits the delta as it fits the base */
    copse_filter bound[2], room[2];
    const copse_filter *pf[2] = {NULL, NULL};
    const uint64_t *dead[2] = {l->n_dead ? l->dead : NULL, l->n_delta_dead ? l->delta_dead : NULL};
    uint64_t live[2] = {l->n_base - l->n_dead, l->delta.n - l->n_delta_dead};
    for (int part = 0; part < 2 && rc == COPSE_OK; part++) {
        const copse_filter *inner = NULL;
        if (f)
            rc = cp_filter_bind(f, part ? &dv : base->v, &bound[part], &inner, cp_scratch_err(s),
                                exact ? "exact" : "search");
        pf[part] = part_filter(&room[part], inner, dead[part], live[part]);
    }
    if (rc != COPSE_OK)
        return rc;
    if (linked(l, base->v)) {
        if (!atomic_load_explicit(&l->filed, memory_order_acquire))
            file_late((cp_live *)l, base->v);
        /* One walk over base and added items, as a fresh build of them would walk: the
         * parts' filters (tombstones, the caller's filter bound to each part) as one. */
        cp_view wv;
        whole_view(l, base->v, &wv);
        cp_reader rw = {base->g, base->k, &wv};
        copse_filter parts = {.kind = CP_FILTER_PARTS, .part = {pf[0], pf[1]},
                              .part_view = {base->v, &dv}, .split = l->n_base};
        return cp_search(&rw, s, q, 0, k, search_k, exact, pf[0] || pf[1] ? &parts : NULL, ids,
                         dists, n_out);
    }
    /* Both parts get the effort the base would: Annoy's k * n_trees for -1. */
    if (search_k < 0)
        search_k = k * (int64_t)(base->v->n_trees ? base->v->n_trees : 1);
    enum { ON_STACK = 64 };
    int64_t stack_id[2 * ON_STACK];
    float stack_d[2 * ON_STACK];
    int big = k > ON_STACK;
    int64_t *rid = big ? cp_mallocarray(2 * (size_t)k, sizeof *rid) : stack_id;
    float *rdist = big ? cp_mallocarray(2 * (size_t)k, sizeof *rdist) : stack_d;
    if (!rid || !rdist)
        rc = cp_fail(cp_scratch_err(s), COPSE_ERR_NOMEM, "search: no memory");
    cp_reader rd = {base->g, base->k, &dv};
    int64_t got[2] = {0, 0};
    /* Tombstones and filters are the filtered search's business (search.c): it walks through
     * refused items, and answers exactly when the walk cannot fill k. */
    /* Each part walks with its share of the effort (by live items): a fresh build of the same
     * items spends search_k in one walk, and two full walks would spend twice. Not below 2k
     * (or search_k when smaller): a floor of k lost half a point of recall@10 in
     * bench/churn.cc at search_k 20, before the base's lists were repaired and after (0.65 pp:
     * 0.9750 against a fresh build's 0.9815). */
    uint64_t total = live[0] + live[1] ? live[0] + live[1] : 1;
    for (int part = 0; part < 2 && rc == COPSE_OK; part++) {
        if (part && l->delta.n == 0)
            break;
        int64_t share = (int64_t)(((unsigned __int128)search_k * live[part] + total - 1) / total);
        int64_t floor = search_k < 2 * k ? search_k : 2 * k;
        rc = cp_search(part ? &rd : base, s, q, 0, k, share > floor ? share : floor,
                       exact || (part && !dv.graph), pf[part], rid + part * k, rdist + part * k,
                       &got[part]);
    }
    /* Merge the two sorted lists (an id is live in one part only). */
    int64_t i = 0, j = 0, m = 0;
    while (rc == COPSE_OK && m < k && (i < got[0] || j < got[1])) {
        int from_delta = i == got[0] ||
                         (j < got[1] && before(base->g, (found){rdist[k + j], rid[k + j]},
                                               (found){rdist[i], rid[i]}));
        int64_t at = from_delta ? k + j++ : i++;
        ids[m] = rid[at];
        if (dists)
            dists[m] = rdist[at];
        m++;
    }
    *n_out = m;
    if (big) {
        cp_free(rid);
        cp_free(rdist);
    }
    return rc;
}

/* ---- saving and opening ---- */

void cp_live_sections(const cp_live *l, const cp_view *base, cp_section *sec, cp_meta *m,
                      unsigned char *meta)
{
    uint64_t n = l->delta.n;
    m->n_delta = n;
    m->n_dead = l->n_dead;
    m->n_delta_dead = l->n_delta_dead;
    m->delta_degree = n && l->degree ? l->degree : 0;
    m->delta_entry = !n || !l->degree ? 0 : l->file_lists ? l->file_entry : l->graph.entry;
    m->delta_radius = l->radius;
    m->delta_linked = cp_live_linked(l);
    cp_format_delta_meta(m, meta);
    sec[CP_SEC_DELTA_META] = (cp_section){meta, CP_DELTA_META_SIZE};
    sec[CP_SEC_TOMBSTONES] = (cp_section){l->dead, l->n_dead ? words_for(l->n_base) * 8 : 0};
    sec[CP_SEC_DELTA_VECTORS] = (cp_section){l->delta.rows, n * l->g->row_bytes};
    sec[CP_SEC_DELTA_IDS] = (cp_section){l->delta.ids, n * 8};
    sec[CP_SEC_DELTA_NORMS] = (cp_section){delta_norms(l), cp_metric_has_norms(l->g->metric) ? n * 4 : 0};
    const uint32_t *lists = l->file_lists ? l->file_lists
                            : l->degree   ? l->graph.adj + l->graph.split * l->degree : NULL;
    sec[CP_SEC_DELTA_GRAPH] = (cp_section){lists, n * (uint64_t)m->delta_degree * 4};
    sec[CP_SEC_DELTA_DEAD] = (cp_section){l->delta_dead, n ? words_for(n) * 8 : 0};
    sec[CP_SEC_DELTA_TAGS] = (cp_section){l->delta.tags, l->delta.tags ? n * 8 : 0};
    if (l->active) /* same length: the base's lists, repaired and linked to added items */
        sec[CP_SEC_GRAPH].data = l->graph.adj;
    /* A loaded file's chains as they were, else filed now if a load left them to the first
     * query (as a query does: file_late), so that a save writes the same file either way. */
    if (m->delta_linked && base->n_trees && !atomic_load_explicit(&l->filed, memory_order_acquire))
        file_late((cp_live *)l, base);
    const uint32_t *chains = leaf_chains(l);
    if (m->delta_linked && chains)
        sec[CP_SEC_DELTA_LEAVES] = (cp_section){chains, (base->n_leaves + n * base->n_trees) * 4};
}

int cp_live_linked(const cp_live *l)
{
    return l->delta.n && (l->file_lists || (l->active && l->graph.split));
}

void cp_live_reset(cp_live *l, uint64_t n_base, uint32_t degree)
{
    cp_free(l->dead);
    cp_free(l->base_tags);
    cp_builder_free(&l->delta);
    cp_free(l->norms);
    cp_free(l->delta_dead);
    cp_free(l->chains);
    l->chains = NULL;
    l->chains_cap = 0;
    l->file_chains = NULL;
    l->file_lists = NULL;
    l->file_norms = NULL;
    atomic_store(&l->filed, 1); /* no added item */
    if (l->degree)
        cp_graph_free(&l->graph);
    l->repaired_at = 0;
    l->dead = NULL;
    l->base_tags = NULL;
    l->n_dead = 0;
    l->norms = NULL;
    l->norms_cap = 0;
    l->delta_dead = NULL;
    l->delta_dead_words = 0;
    l->n_delta_dead = 0;
    l->radius = 0;
    l->n_base = n_base;
    l->degree = degree;
    graph_init(l);
}

static uint64_t popcount_words(const uint64_t *w, uint64_t n)
{
    uint64_t c = 0;
    for (uint64_t i = 0; w && i < n; i++)
        c += (uint64_t)__builtin_popcountll(w[i]);
    return c;
}

/* n bits with count of them set and none past the n-th. */
static int bits_agree(const uint64_t *bits, uint64_t n, uint64_t count)
{
    return popcount_words(bits, words_for(n)) == count && !(n % 64 && bits[n / 64] >> (n % 64));
}

/* A 2.2 or 2.3 file's added items, linked into the base's graph: queries read both sets of lists
 * and the norms where they are mapped, as they read a base's sections, until the first change
 * that writes them takes them (take_lists: checked, copied; most of a load's time before, 6 ms
 * of bench/churn.cc's churned file). */
static int open_linked(cp_live *l, const cp_view *v, cp_err *err)
{
    if (l->g->metric == COPSE_DOT && !isfinite(v->meta.delta_radius))
        return cp_fail(err, COPSE_ERR_CORRUPT, "delta: radius %g", (double)v->meta.delta_radius);
    l->radius = v->meta.delta_radius;
    l->file_lists = v->delta_graph;
    l->file_norms = v->delta_norms;
    l->file_entry = v->meta.delta_entry;
    l->file_chains = v->delta_leaves;
    if (v->n_trees && !l->file_chains)
        atomic_store(&l->filed, 0); /* a 2.2 file: at the first query or change */
    return COPSE_OK;
}

int cp_live_open(cp_live *l, const cp_view *v, cp_err *err)
{
    const cp_meta *m = &v->meta;
    uint64_t n = m->n_delta;
    /* A base with a graph has its added items linked into it (the file's, or linked here);
     * else they have their own graph, of the degree saved. */
    uint32_t deg = v->graph ? v->graph_degree : n && m->delta_degree ? m->delta_degree : l->degree;
    cp_live_reset(l, v->n_items, deg);
    if (!v->sec[CP_SEC_DELTA_META].length)
        return COPSE_OK;
    /* Counts are checked against the bits, so a damaged file cannot make them disagree. */
    if ((v->n_items && v->tombstones && !bits_agree(v->tombstones, v->n_items, m->n_dead)) ||
        (n && !bits_agree(v->delta_dead, n, m->n_delta_dead)))
        return cp_fail(err, COPSE_ERR_CORRUPT, "tombstones: the bits do not match the counts");
    if (v->tombstones) {
        if (!(l->dead = cp_mallocarray(words_for(l->n_base), sizeof *l->dead)))
            return cp_fail(err, COPSE_ERR_NOMEM, "load: no memory for tombstones");
        memcpy(l->dead, v->tombstones, words_for(l->n_base) * sizeof *l->dead);
        l->n_dead = m->n_dead;
    }
    if (n == 0)
        return COPSE_OK; /* deletes only: GRAPH holds the lists as repaired, of base slots */
    for (uint64_t s = 0; s < n; s++)
        if (v->delta_ids[s] < 0)
            return cp_fail(err, COPSE_ERR_CORRUPT, "delta: item %lld has id %lld",
                           (long long)s, (long long)v->delta_ids[s]);
    if (!grow_words(&l->delta_dead, &l->delta_dead_words, words_for(n)) ||
        !cp_grow((void **)&l->norms, &l->norms_cap, n, sizeof *l->norms))
        return cp_fail(err, COPSE_ERR_NOMEM, "load: no memory for %llu added items", (unsigned long long)n);
    memcpy(l->delta_dead, v->delta_dead, words_for(n) * sizeof *l->delta_dead);
    l->n_delta_dead = m->n_delta_dead;
    /* The file's vectors are stored rows (floats, or packed bits for hamming), as the
     * builder's: they are read where they are mapped until the first add copies them (a copy
     * here was most of a load: 35 ms of 60 for bench/churn.cc's churned file, 250 ms the
     * first time, in page faults). */
    int rc = cp_builder_borrow(&l->delta, v->delta_vectors, v->delta_ids, n, err);
    if (rc == COPSE_OK && v->delta_tags && !delta_tags_ready(l))
        rc = cp_fail(err, COPSE_ERR_NOMEM, "load: no memory for the added items' tags");
    if (rc != COPSE_OK)
        return rc;
    if (v->delta_tags)
        memcpy(l->delta.tags, v->delta_tags, n * sizeof *l->delta.tags);
    if (l->degree && m->delta_linked)
        return open_linked(l, v, err);
    if ((rc = check_norms(l, v, err)) != COPSE_OK || !l->degree)
        return rc;
    if (!m->delta_degree)
        return cp_fail(err, COPSE_ERR_CORRUPT, "delta: %llu items without neighbour lists",
                       (unsigned long long)n);
    cp_graph *gr = &l->graph;
    if (!linked(l, v)) { /* the added items' own graph, as saved */
        if ((rc = cp_check_lists(v->delta_graph, n, l->degree, n, "delta_graph", err)) != COPSE_OK)
            return rc;
        if (!cp_graph_reserve(gr, l->delta.cap))
            return cp_fail(err, COPSE_ERR_NOMEM, "load: no memory for the added items' graph");
        cp_graph_take(gr, 0, v->delta_graph, n);
        gr->entry = m->delta_entry;
        gr->n_inserted = n;
        return COPSE_OK;
    }
    /* A 2.0 or 2.1 file: its added items had their own graph, checked as any section is
     * though it is not taken: they are linked into the base's now, by the insert path (what
     * adding them does since). */
    if ((rc = link_base(l, v, l->n_base, UINT32_MAX, err)) != COPSE_OK)
        return rc;
    l->active = 1;
    gr->rows = l->delta.rows;
    gr->norms = l->norms;
    if (v->n_trees)
        atomic_store(&l->filed, 0); /* at the first query or change */
    if ((rc = cp_check_lists(v->delta_graph, n, m->delta_degree, n, "delta_graph", err)) != COPSE_OK)
        return rc;
    uint32_t *all = cp_mallocarray(n, sizeof *all);
    if (!all)
        return cp_fail(err, COPSE_ERR_NOMEM, "load: no memory");
    for (uint64_t s = 0; s < n; s++)
        all[s] = (uint32_t)(gr->split + s);
    rc = cp_graph_insert(gr, l->delta.rows, l->norms, all, n, 0);
    cp_free(all);
    return rc == COPSE_OK ? rc : cp_fail(err, rc, "load: no memory for the graph");
}
