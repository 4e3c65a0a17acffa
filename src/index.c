/*
 * index.c: the handle. The only file that sees struct copse_index or changes its state
 * (ADDING -> BUILT, or LOADED; back by unbuild or unload): every public call on a handle is a
 * wrapper here that checks the state it needs and hands the work to the layer below
 * (the builder, the build, the format and the view, the readers of the view), passing only
 * what that layer needs. Item lookups work in every state: through the builder's map while
 * adding, and through the view (slots sorted by id, binary search) once built or loaded.
 *
 * Calls that take a const handle may run on many threads at once, so they never write the
 * handle's message: they report by status alone (queries have their scratch's message).
 */
#include <math.h>
#include <string.h>

#include "internal.h"

struct copse_index {
    cp_geom g;
    cp_kernels kern;
    /* Atomic because compaction turns LOADED into BUILT beside queries, which only ever ask
     * whether it is ADDING (which a compaction never makes it). */
    _Atomic(copse_state_t) state;
    uint64_t seed;          /* for the next build, or the built or loaded index's */
    int leaf_size;          /* as set for the next build (0 = auto) */
    int graph_degree;       /* as set for the next build (0 = no graph, -1 = automatic) */
    copse_storage storage;  /* as set for the next build */
    cp_progress progress;   /* build progress callback and its counters */
    cp_builder b;           /* ADDING */
    cp_view v;              /* BUILT, LOADED: the base */
    cp_live *live;          /* BUILT, LOADED: the changes since the base was built */
    int change_threads;     /* threads an add after build inserts with */
    cp_err err;
};

/* Calls that read a BUILT or LOADED index hold the changes' read lock, so a writer adding or
 * deleting at the same time is seen entirely or not at all. */
static void read_begin(const copse_index *ix)
{
    if (ix->state != COPSE_STATE_ADDING)
        cp_live_read(ix->live);
}

static void read_end(const copse_index *ix)
{
    if (ix->state != COPSE_STATE_ADDING)
        cp_live_done(ix->live);
}

/* The base is new (built, loaded, compacted): no changes yet. */
static void base_changed(copse_index *ix)
{
    uint32_t deg = ix->v.graph_degree ? ix->v.graph_degree : CP_DEFAULT_GRAPH_DEGREE;
    cp_live_reset(ix->live, ix->v.n_items, deg);
}

int copse_version_number(void) { return COPSE_VERSION_NUMBER; }

const char *copse_version_string(void)
{
#define CP_STR2(x) #x
#define CP_STR(x) CP_STR2(x)
    return CP_STR(COPSE_VERSION_MAJOR) "." CP_STR(COPSE_VERSION_MINOR) "." CP_STR(COPSE_VERSION_PATCH);
}

void copse_format_version(int *major, int *minor)
{
    if (major)
        *major = COPSE_FORMAT_MAJOR;
    if (minor)
        *minor = COPSE_FORMAT_MINOR;
}

int copse_new(int dim, copse_metric metric, copse_index **out)
{
    if (!out)
        return COPSE_ERR_ARG;
    cp_allocator_fix();
    copse_index *ix = cp_calloc(1, sizeof *ix);
    *out = ix;
    if (!ix)
        return COPSE_ERR_NOMEM;
    cp_builder_init(&ix->b);
    cp_view_init(&ix->v);
    cp_kernels_best(&ix->kern);
    ix->seed = CP_DEFAULT_SEED;
    ix->graph_degree = -1; /* automatic: cp_auto_graph_degree at build */
    ix->state = COPSE_STATE_ADDING;
    cp_geom_init(&ix->g, COPSE_EUCLIDEAN, 1);
    ix->change_threads = 1;
    if (cp_live_new(&ix->live, &ix->g, &ix->kern, 0, 0, &ix->err) != COPSE_OK)
        return COPSE_ERR_NOMEM;
    if (!cp_metric_valid((int)metric))
        return cp_fail(&ix->err, COPSE_ERR_METRIC, "unknown metric %d", (int)metric);
    if (dim < 1 || dim > COPSE_MAX_DIM)
        return cp_fail(&ix->err, COPSE_ERR_DIM, "dimension %d is outside 1..%d", dim, COPSE_MAX_DIM);
    cp_geom_init(&ix->g, metric, dim);
    return COPSE_OK;
}

void copse_free(copse_index *ix)
{
    if (!ix)
        return;
    cp_view_release(&ix->v);
    cp_builder_free(&ix->b);
    cp_live_free(ix->live);
    cp_free(ix);
}

int copse_unload(copse_index *ix)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "unload: nothing is built or loaded");
    cp_view_release(&ix->v);
    cp_builder_free(&ix->b);
    cp_live_reset(ix->live, 0, 0);
    ix->state = COPSE_STATE_ADDING;
    return COPSE_OK;
}

int copse_set_seed(copse_index *ix, uint64_t seed)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state != COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "set_seed: the index is already built or loaded");
    ix->seed = seed;
    return COPSE_OK;
}

int copse_set_leaf_size(copse_index *ix, int leaf_size)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state != COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "set_leaf_size: the index is already built or loaded");
    if (leaf_size != 0 && (leaf_size < 2 || leaf_size > 65535))
        return cp_fail(&ix->err, COPSE_ERR_ARG, "set_leaf_size: %d is outside 2..65535", leaf_size);
    ix->leaf_size = leaf_size;
    return COPSE_OK;
}

int copse_set_progress(copse_index *ix, copse_progress_fn fn, void *ctx)
{
    if (!ix)
        return COPSE_ERR_ARG;
    ix->progress.fn = fn;
    ix->progress.ctx = ctx;
    return COPSE_OK;
}

int copse_set_graph_degree(copse_index *ix, int degree)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state != COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "set_graph_degree: the index is already built or loaded");
    if (degree < 0 || degree > CP_MAX_GRAPH_DEGREE)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "set_graph_degree: %d is outside 0..%d", degree,
                       CP_MAX_GRAPH_DEGREE);
    ix->graph_degree = degree;
    return COPSE_OK;
}

static int check_adding(copse_index *ix, const char *what);

int copse_set_storage(copse_index *ix, copse_storage storage)
{
    if (!ix)
        return COPSE_ERR_ARG;
    int rc = check_adding(ix, "set_storage");
    if (rc != COPSE_OK)
        return rc;
    if (!cp_storage_name((uint32_t)storage))
        return cp_fail(&ix->err, COPSE_ERR_ARG, "set_storage: unknown storage %d", (int)storage);
    if (storage != COPSE_STORAGE_F32 && ix->g.metric == COPSE_HAMMING)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "set_storage: hamming vectors are packed bits "
                       "already (1 bit a component); only f32 storage applies");
    if (storage != COPSE_STORAGE_F32 && ix->b.disk_fd >= 0)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "set_storage: an on-disk build writes float32 "
                       "rows into the file as they are added; %s storage needs an in-memory "
                       "build", cp_storage_name((uint32_t)storage));
    ix->storage = storage;
    return COPSE_OK;
}

copse_storage copse_get_storage(const copse_index *ix)
{
    if (!ix)
        return COPSE_STORAGE_F32;
    return ix->state == COPSE_STATE_ADDING ? ix->storage : (copse_storage)ix->v.quant.storage;
}

/* The degree a build would use now: the one set, or the automatic one for the items so far. */
static int adding_degree(const copse_index *ix)
{
    return ix->graph_degree >= 0 ? ix->graph_degree
                                 : cp_auto_graph_degree(&ix->g, ix->b.n, (uint32_t)ix->storage);
}

int copse_graph_degree(const copse_index *ix)
{
    if (!ix)
        return 0;
    return ix->state == COPSE_STATE_ADDING ? adding_degree(ix) : (int)ix->v.graph_degree;
}

int copse_set_kernels(copse_index *ix, const char *name)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (!cp_kernels_by_name(name, &ix->kern))
        return cp_fail(&ix->err, COPSE_ERR_ARG, "kernels \"%s\" are unknown or this CPU cannot run "
                       "them", name ? name : "(null)");
    return COPSE_OK;
}

const char *copse_kernels_name(const copse_index *ix) { return ix ? ix->kern.name : ""; }

/* ---- facts ---- */

int copse_dim(const copse_index *ix) { return ix ? ix->g.dim : 0; }
copse_metric copse_get_metric(const copse_index *ix) { return ix ? ix->g.metric : COPSE_ANGULAR; }
copse_state_t copse_state(const copse_index *ix) { return ix ? ix->state : COPSE_STATE_ADDING; }
int copse_n_trees(const copse_index *ix) { return ix ? (int)ix->v.n_trees : 0; }

int64_t copse_search_effort(const copse_index *ix, int64_t k, int64_t search_k)
{
    if (!ix || ix->state == COPSE_STATE_ADDING || k < 1 || search_k < -1)
        return 0;
    uint64_t sk = cp_search_k(&ix->v, k, search_k);
    return sk > INT64_MAX ? INT64_MAX : (int64_t)sk;
}
uint64_t copse_seed(const copse_index *ix) { return ix ? ix->seed : 0; }

int copse_leaf_size(const copse_index *ix)
{
    if (!ix)
        return 0;
    return ix->state == COPSE_STATE_ADDING ? ix->leaf_size : (int)ix->v.leaf_size;
}

int64_t copse_n_items(const copse_index *ix)
{
    if (!ix)
        return 0;
    if (ix->state == COPSE_STATE_ADDING)
        return (int64_t)ix->b.n;
    read_begin(ix);
    int64_t n = (int64_t)cp_live_count(ix->live);
    read_end(ix);
    return n;
}

/* A count of the changes since build, read under the lock (0 while adding). */
static int64_t change_count(const copse_index *ix, uint64_t (*count)(const cp_live *))
{
    if (!ix || ix->state == COPSE_STATE_ADDING)
        return 0;
    read_begin(ix);
    int64_t n = (int64_t)count(ix->live);
    read_end(ix);
    return n;
}

int64_t copse_n_deleted(const copse_index *ix) { return change_count(ix, cp_live_n_deleted); }
int64_t copse_n_added(const copse_index *ix) { return change_count(ix, cp_live_n_delta); }

int64_t copse_max_id(const copse_index *ix)
{
    if (!ix)
        return -1;
    if (ix->state == COPSE_STATE_ADDING)
        return ix->b.max_id;
    read_begin(ix);
    int64_t max = ix->v.max_id, added = cp_live_max_id(ix->live);
    max = added > max ? added : max;
    read_end(ix);
    return max;
}

void copse_n_nodes(const copse_index *ix, int64_t *n_split, int64_t *n_leaves)
{
    if (n_split)
        *n_split = ix ? (int64_t)ix->v.n_split : 0;
    if (n_leaves)
        *n_leaves = ix ? (int64_t)ix->v.n_leaves : 0;
}

static int image_is_file(const copse_index *ix);

void copse_file_version(const copse_index *ix, int *major, int *minor)
{
    /* A loaded file's own version while save would write it as it is; else what save writes. */
    int ma = 1, mi = CP_FORMAT1_MINOR;
    if (ix && ix->state != COPSE_STATE_ADDING) {
        read_begin(ix);
        int quant = ix->v.quant.storage != COPSE_STORAGE_F32;
        if (image_is_file(ix)) {
            ma = ix->v.file_major;
            mi = ix->v.file_minor;
        } else if (cp_live_changed(ix->live)) {
            ma = 2;
            /* (filed, unless the filing could not be made: out of memory, or more than 2^32
             * links; save then writes 2.2) */
            mi = !cp_live_linked(ix->live) ? CP_FORMAT2_MINOR + quant
                 : ix->v.n_trees           ? CP_FORMAT2_FILED_MINOR
                                           : CP_FORMAT2_LINKED_MINOR;
        } else {
            mi = CP_FORMAT1_MINOR + quant;
        }
        read_end(ix);
    }
    if (major)
        *major = ma;
    if (minor)
        *minor = mi;
}

/* ---- ids ---- */

/* Where id's vector is in any state (ADDING: a builder slot); the caller holds the read
 * lock (read_begin) when the index is built or loaded. */
static int find_place(const copse_index *ix, int64_t id, cp_place *at)
{
    if (ix->state == COPSE_STATE_ADDING) {
        at->delta = 0;
        return cp_builder_slot(&ix->b, id, &at->slot);
    }
    return cp_live_find(ix->live, &ix->v, id, at);
}

int copse_has_item(const copse_index *ix, int64_t id)
{
    if (!ix)
        return 0;
    cp_place at;
    read_begin(ix);
    int found = find_place(ix, id, &at);
    read_end(ix);
    return found;
}

int copse_item_id_at(const copse_index *ix, int64_t pos, int64_t *id)
{
    if (!ix || !id || pos < 0)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING) {
        if ((uint64_t)pos >= ix->b.n)
            return COPSE_ERR_ARG;
        *id = ix->b.ids[pos];
        return COPSE_OK;
    }
    read_begin(ix);
    int found = cp_live_id_at(ix->live, &ix->v, (uint64_t)pos, id) != 0;
    read_end(ix);
    return found ? COPSE_OK : COPSE_ERR_ARG;
}

/* Stored row of an item: in the base or the delta, the builder's memory, or read into tmp
 * (on-disk). */
static const void *place_row(const copse_index *ix, cp_place at, void *tmp)
{
    if (ix->state != COPSE_STATE_ADDING)
        return cp_live_row(ix->live, &ix->v, at);
    return cp_builder_row(&ix->b, &ix->g, at.slot, tmp, NULL);
}

/* How the row place_row gives is stored: the base's storage, or float32 (the builder's rows
 * and the items added after build). */
static const cp_quant *place_quant(const copse_index *ix, cp_place at, cp_quant *f32)
{
    if (ix->state != COPSE_STATE_ADDING && !at.delta)
        return &ix->v.quant;
    *f32 = (cp_quant){COPSE_STORAGE_F32, ix->g.row_bytes, NULL, NULL, NULL};
    return f32;
}

/* An item's vector as floats into out; COPSE_ERR_IO when an on-disk row cannot be read. */
static int place_vector(const copse_index *ix, cp_place at, void *tmp, float *out)
{
    cp_quant f32;
    const void *row = place_row(ix, at, tmp);
    if (!row)
        return COPSE_ERR_IO;
    cp_quant_decode(&ix->g, place_quant(ix, at, &f32), row, out);
    return COPSE_OK;
}

int copse_get_item(const copse_index *ix, int64_t id, float *out)
{
    if (!ix || !out)
        return COPSE_ERR_ARG;
    void *tmp = cp_malloc(ix->g.row_bytes);
    if (!tmp)
        return COPSE_ERR_NOMEM;
    cp_place at;
    int rc = COPSE_ERR_NOTFOUND;
    read_begin(ix);
    if (find_place(ix, id, &at))
        rc = place_vector(ix, at, tmp, out);
    read_end(ix);
    cp_free(tmp);
    return rc;
}

/* Distance between two stored rows, as reported. */
static float row_distance(const copse_index *ix, const void *a, const void *b)
{
    const cp_geom *g = &ix->g;
    const cp_kernels *k = &ix->kern;
    size_t n = (size_t)g->dim;
    switch (g->metric) {
    case COPSE_ANGULAR: return cp_dist_report(g, cp_angular(k->dot(a, b, n), k->dot(a, a, n), k->dot(b, b, n)));
    case COPSE_EUCLIDEAN: return cp_dist_report(g, k->l2sq(a, b, n));
    case COPSE_MANHATTAN: return k->l1(a, b, n);
    case COPSE_DOT: return k->dot(a, b, n);
    case COPSE_HAMMING: return (float)k->hamming(a, b, g->words);
    }
    return 0;
}

int copse_get_distance(const copse_index *ix, int64_t a, int64_t b, float *out)
{
    if (!ix || !out)
        return COPSE_ERR_ARG;
    size_t rb = ix->g.row_bytes;
    unsigned char *tmp = cp_mallocarray(4, rb);
    if (!tmp)
        return COPSE_ERR_NOMEM;
    cp_place pa, pb;
    int rc = COPSE_ERR_NOTFOUND;
    read_begin(ix);
    if (find_place(ix, a, &pa) && find_place(ix, b, &pb)) {
        if (ix->g.metric == COPSE_HAMMING) { /* packed bits, never quantized */
            const void *ra = place_row(ix, pa, tmp), *rr = place_row(ix, pb, tmp + rb);
            if (ra && rr)
                *out = row_distance(ix, ra, rr);
            rc = ra && rr ? COPSE_OK : COPSE_ERR_IO;
        } else {
            /* Floats, decoded from quantized storage: the distance queries report. */
            float *xa = (float *)(tmp + 2 * rb), *xb = (float *)(tmp + 3 * rb);
            rc = place_vector(ix, pa, tmp, xa);
            if (rc == COPSE_OK)
                rc = place_vector(ix, pb, tmp + rb, xb);
            if (rc == COPSE_OK)
                *out = row_distance(ix, xa, xb);
        }
    }
    read_end(ix);
    cp_free(tmp);
    return rc;
}

int copse_distance(const copse_index *ix, const float *a, const float *b, float *out)
{
    if (!ix || !a || !b || !out)
        return COPSE_ERR_ARG;
    /* ix is const (safe from many threads), so the detail has nowhere to go: the code says it. */
    if (cp_check_finite(a, ix->g.dim, NULL, "") != COPSE_OK ||
        cp_check_finite(b, ix->g.dim, NULL, "") != COPSE_OK)
        return COPSE_ERR_VALUE;
    if (ix->g.metric != COPSE_HAMMING) {
        *out = row_distance(ix, a, b);
        return COPSE_OK;
    }
    unsigned char *tmp = cp_mallocarray(2, ix->g.row_bytes);
    if (!tmp)
        return COPSE_ERR_NOMEM;
    cp_encode(&ix->g, a, tmp);
    cp_encode(&ix->g, b, tmp + ix->g.row_bytes);
    *out = row_distance(ix, tmp, tmp + ix->g.row_bytes);
    cp_free(tmp);
    return COPSE_OK;
}

const char *copse_errmsg(const copse_index *ix) { return ix ? ix->err.msg : ""; }

/* ---- adding ---- */

static int check_adding(copse_index *ix, const char *what)
{
    if (ix->state != COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "%s: the index is %s; this can only be done "
                       "before build (unbuild or unload first)", what,
                       ix->state == COPSE_STATE_BUILT ? "built" : "loaded");
    return COPSE_OK;
}

static int compact(copse_index *ix, int n_threads);

/* After a change: the caller's threshold may call for a compaction. */
static int changed(copse_index *ix, int rc)
{
    if (rc == COPSE_OK && cp_live_wants_compaction(ix->live))
        rc = compact(ix, ix->change_threads);
    return rc;
}

int copse_add_item(copse_index *ix, int64_t id, const float *v)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return cp_builder_add(&ix->b, &ix->g, id, v, &ix->err);
    if (!v)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "add_item: vector is NULL");
    return copse_add_items(ix, 1, &id, 0, v);
}

int copse_add_items(copse_index *ix, int64_t n, const int64_t *ids, int64_t first_id,
                    const float *vs)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return cp_builder_add_many(&ix->b, &ix->g, n, ids, first_id, vs, &ix->err);
    return changed(ix, cp_live_add(ix->live, &ix->v, n, ids, first_id, vs, ix->change_threads,
                                   &ix->err));
}

int copse_delete_items(copse_index *ix, int64_t n, const int64_t *ids)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "delete: the index is not built or loaded "
                       "(before build, leave the item out)");
    return changed(ix, cp_live_delete(ix->live, &ix->v, n, ids, ix->change_threads, &ix->err));
}

int copse_delete_item(copse_index *ix, int64_t id) { return copse_delete_items(ix, 1, &id); }

int copse_set_change_threads(copse_index *ix, int n_threads)
{
    if (!ix)
        return COPSE_ERR_ARG;
    ix->change_threads = n_threads;
    return COPSE_OK;
}

int copse_set_compact_threshold(copse_index *ix, double fraction)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (!(fraction >= 0) || fraction > 1e6)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "set_compact_threshold: %g; want 0 (never) or "
                       "a positive fraction of the base", fraction);
    cp_live_set_threshold(ix->live, fraction);
    return COPSE_OK;
}

int copse_set_label(copse_index *ix, int64_t id, const char *label)
{
    if (!ix)
        return COPSE_ERR_ARG;
    int rc = check_adding(ix, "set_label");
    return rc == COPSE_OK ? cp_builder_set_label(&ix->b, id, label, &ix->err) : rc;
}

int copse_set_tags(copse_index *ix, int64_t id, const uint32_t *tags, int n)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (n < 0 || (n > 0 && !tags))
        return cp_fail(&ix->err, COPSE_ERR_ARG, "set_tags: %d tags at %p", n, (const void *)tags);
    uint64_t mask = 0;
    for (int i = 0; i < n; i++) {
        if (tags[i] > COPSE_MAX_TAG)
            return cp_fail(&ix->err, COPSE_ERR_ARG, "set_tags: tag %u is outside 0..%d", tags[i],
                           COPSE_MAX_TAG);
        mask |= 1ull << tags[i];
    }
    if (ix->state == COPSE_STATE_ADDING)
        return cp_builder_set_tags(&ix->b, id, mask, &ix->err);
    return cp_live_set_tags(ix->live, &ix->v, id, mask, &ix->err);
}

int copse_get_tags(const copse_index *ix, int64_t id, uint64_t *mask)
{
    if (!ix || !mask)
        return COPSE_ERR_ARG;
    cp_place at;
    read_begin(ix);
    int found = find_place(ix, id, &at);
    if (!found)
        *mask = 0;
    else if (ix->state == COPSE_STATE_ADDING)
        *mask = ix->b.tags ? ix->b.tags[at.slot] : 0;
    else
        *mask = cp_live_tags(ix->live, &ix->v, at);
    read_end(ix);
    return found ? COPSE_OK : COPSE_ERR_NOTFOUND;
}

int copse_on_disk_build(copse_index *ix, const char *path)
{
    if (!ix)
        return COPSE_ERR_ARG;
    int rc = check_adding(ix, "on_disk_build");
    if (rc == COPSE_OK && ix->storage != COPSE_STORAGE_F32)
        rc = cp_fail(&ix->err, COPSE_ERR_ARG, "on_disk_build: %s storage needs an in-memory "
                     "build (an on-disk build writes float32 rows into the file as they are "
                     "added)", cp_storage_name((uint32_t)ix->storage));
    return rc == COPSE_OK ? cp_builder_on_disk(&ix->b, path, &ix->err) : rc;
}

/* ---- labels ---- */

int copse_has_labels(const copse_index *ix)
{
    if (!ix)
        return 0;
    if (ix->state == COPSE_STATE_ADDING)
        return ix->b.labels != NULL;
    return ix->v.label_offsets != NULL;
}

int copse_get_label(const copse_index *ix, int64_t id, const char **label, size_t *len)
{
    if (!ix || !label)
        return COPSE_ERR_ARG;
    cp_place at;
    size_t l = 0;
    *label = NULL;
    read_begin(ix);
    int found = find_place(ix, id, &at);
    /* Items added after build carry no label. */
    if (found && ix->state != COPSE_STATE_ADDING && !at.delta) {
        *label = cp_view_label(&ix->v, at.slot, &l);
    } else if (found && ix->state == COPSE_STATE_ADDING && ix->b.labels && ix->b.labels[at.slot]) {
        *label = ix->b.labels[at.slot];
        l = strlen(*label);
    }
    read_end(ix);
    if (len)
        *len = *label ? l : 0;
    return found ? COPSE_OK : COPSE_ERR_NOTFOUND;
}

int copse_find_label(const copse_index *ix, const char *label, int64_t *id)
{
    if (!ix || !label || !id)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return COPSE_ERR_STATE;
    uint64_t slot;
    cp_place at;
    int rc = COPSE_ERR_NOTFOUND;
    read_begin(ix);
    /* A deleted or replaced item's label is gone with it. */
    if (cp_view_find_label(&ix->v, label, &slot) && slot < ix->v.n_items &&
        cp_live_find(ix->live, &ix->v, cp_view_id(&ix->v, slot), &at) && !at.delta) {
        *id = cp_view_id(&ix->v, slot);
        rc = COPSE_OK;
    }
    read_end(ix);
    return rc;
}

/* ---- building ---- */

int copse_build(copse_index *ix, int n_trees, int n_threads)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state != COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "build: the index is already %s",
                       ix->state == COPSE_STATE_BUILT ? "built (unbuild first)" : "loaded");
    if (n_trees == 0 || n_trees < -1 || n_trees > COPSE_MAX_TREES)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "build: n_trees = %d; want -1 (automatic) or "
                       "1..%d", n_trees, COPSE_MAX_TREES);
    int degree = adding_degree(ix), graph = degree > 0 && ix->b.n >= 2;
    cp_build_args a = {&ix->g, &ix->kern, ix->seed, n_trees,
                       ix->leaf_size ? ix->leaf_size : cp_auto_leaf_size(&ix->g, graph ? degree : 0),
                       graph ? degree : 0, (uint32_t)ix->storage, n_threads,
                       &ix->progress};
    /* Units: each forest tree, and with a graph CP_GRAPH_STEPS shares of its inserts. */
    uint64_t units = (n_trees > 0 ? (uint64_t)n_trees : 1) + (graph ? CP_GRAPH_STEPS : 0);
    int rc = cp_progress_begin(&ix->progress, units);
    if (rc != COPSE_OK)
        return cp_fail(&ix->err, rc, "build: no memory");
    int on_disk = ix->b.disk_fd >= 0;
    rc = on_disk ? cp_build_on_disk(&a, &ix->b, &ix->v, &ix->err)
                 : cp_build_in_memory(&a, &ix->b, &ix->v, &ix->err);
    cp_progress_end(&ix->progress);
    if (rc == COPSE_OK) {
        base_changed(ix);
        ix->state = COPSE_STATE_BUILT;
    }
    return rc;
}

int copse_unbuild(copse_index *ix)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state != COPSE_STATE_BUILT || ix->v.map)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "unbuild: only an index built in memory can be "
                       "unbuilt (this one is %s)", ix->state == COPSE_STATE_ADDING ? "not built" :
                       ix->state == COPSE_STATE_LOADED ? "loaded" : "built on disk");
    if (cp_live_changed(ix->live))
        return cp_fail(&ix->err, COPSE_ERR_STATE, "unbuild: the index has changed since build "
                       "(copse_compact first)");
    int rc = cp_builder_from_view(&ix->b, &ix->g, &ix->v, &ix->err);
    if (rc != COPSE_OK)
        return rc;
    cp_view_release(&ix->v);
    cp_live_reset(ix->live, 0, 0);
    ix->state = COPSE_STATE_ADDING;
    return COPSE_OK;
}

/* Every live item into a fresh builder, labels and tags and all, in base order then delta
 * order. */
static int gather_live(copse_index *ix, cp_builder *b)
{
    cp_section sec[CP_SEC_KIND_MAX + 1] = {{0}};
    cp_meta m = {0};
    unsigned char meta[CP_DELTA_META_SIZE];
    cp_live_sections(ix->live, &ix->v, sec, &m, meta);
    const uint64_t *dead = sec[CP_SEC_TOMBSTONES].data, *ddead = sec[CP_SEC_DELTA_DEAD].data;
    float *x = cp_mallocarray((size_t)ix->g.dim, sizeof *x);
    int rc = x ? COPSE_OK : cp_fail(&ix->err, COPSE_ERR_NOMEM, "compact: no memory");
    for (uint64_t s = 0; rc == COPSE_OK && s < ix->v.n_items; s++) {
        if (dead && ((dead[s >> 6] >> (s & 63)) & 1))
            continue;
        int64_t id = cp_view_id(&ix->v, s);
        size_t len;
        const char *label = cp_view_label(&ix->v, s, &len);
        cp_quant_decode(&ix->g, &ix->v.quant, ix->v.vectors + s * ix->v.quant.stride, x);
        rc = cp_builder_add(b, &ix->g, id, x, &ix->err);
        if (rc == COPSE_OK && label)
            rc = cp_builder_set_label(b, id, label, &ix->err);
        if (rc == COPSE_OK && ix->v.tags && ix->v.tags[s])
            rc = cp_builder_set_tags(b, id, ix->v.tags[s], &ix->err);
    }
    const unsigned char *rows = sec[CP_SEC_DELTA_VECTORS].data;
    const int64_t *ids = sec[CP_SEC_DELTA_IDS].data;
    const uint64_t *tags = sec[CP_SEC_DELTA_TAGS].data;
    for (uint64_t s = 0; rc == COPSE_OK && s < m.n_delta; s++) {
        if (ddead && ((ddead[s >> 6] >> (s & 63)) & 1))
            continue;
        cp_decode(&ix->g, rows + s * ix->g.row_bytes, x);
        rc = cp_builder_add(b, &ix->g, ids[s], x, &ix->err);
        if (rc == COPSE_OK && tags && tags[s])
            rc = cp_builder_set_tags(b, ids[s], tags[s], &ix->err);
    }
    cp_free(x);
    return rc;
}

/* A fresh base from the live items, with the base's own settings; the old one is released
 * once no query reads it. A failure changes nothing. */
static int compact(copse_index *ix, int n_threads)
{
    cp_builder b;
    cp_view fresh;
    cp_builder_init(&b);
    cp_view_init(&fresh);
    int rc = gather_live(ix, &b);
    int graph = ix->v.graph_degree > 0 && b.n >= 2;
    int degree = graph ? (int)ix->v.graph_degree : 0;
    int leaf = ix->v.leaf_size && !ix->v.count_repeats ? (int)ix->v.leaf_size
                                                        : cp_auto_leaf_size(&ix->g, degree);
    cp_build_args a = {&ix->g, &ix->kern, ix->seed, ix->v.n_trees ? (int)ix->v.n_trees : -1, leaf,
                       degree, ix->v.quant.storage, n_threads,
                       &ix->progress};
    if (rc == COPSE_OK && (rc = cp_progress_begin(&ix->progress, (uint64_t)(a.n_trees > 0 ? a.n_trees : 1) +
                                                  (graph ? CP_GRAPH_STEPS : 0))) == COPSE_OK) {
        rc = cp_build_in_memory(&a, &b, &fresh, &ix->err);
        cp_progress_end(&ix->progress);
    }
    cp_builder_free(&b);
    if (rc != COPSE_OK) {
        cp_view_release(&fresh);
        return rc;
    }
    cp_view old = ix->v;
    fresh.lineage = old.lineage; /* the same index: its filters keep working (filter.c) */
    cp_live_write_lock(ix->live);
    ix->v = fresh;
    base_changed(ix);
    ix->state = COPSE_STATE_BUILT;
    cp_live_write_unlock(ix->live);
    cp_view_release(&old);
    return COPSE_OK;
}

int copse_compact(copse_index *ix, int n_threads)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "compact: the index is not built or loaded");
    return compact(ix, n_threads);
}

/* ---- files ---- */

/* The sections a save writes: the base's, and the changes' when there are any (meta is the
 * DELTA_META block's room). */
static void file_sections(const copse_index *ix, cp_section *sec, cp_meta *m, unsigned char *meta)
{
    memcpy(sec, ix->v.sec, (CP_SEC_KIND_MAX + 1) * sizeof *sec);
    /* The base's tags as they are now (changed ones are in the living index's copy). */
    sec[CP_SEC_TAGS] = (cp_section){ix->v.tags, ix->v.tags ? ix->v.n_items * 8 : 0};
    *m = ix->v.meta;
    for (int k = CP_FIRST_CHANGE_KIND; k <= CP_SEC_KIND_MAX; k++)
        sec[k] = (cp_section){NULL, 0};
    if (cp_live_changed(ix->live))
        cp_live_sections(ix->live, &ix->v, sec, m, meta);
}

/* A loaded file's image is what save writes, unless the index has changed since. */
static int image_is_file(const copse_index *ix)
{
    return ix->v.image && !cp_live_changed(ix->live) && !cp_live_tags_changed(ix->live);
}

int copse_n_sections(const copse_index *ix)
{
    if (!ix || ix->state == COPSE_STATE_ADDING)
        return 0;
    cp_section sec[CP_SEC_KIND_MAX + 1];
    cp_meta m;
    unsigned char meta[CP_DELTA_META_SIZE];
    int n = 0;
    read_begin(ix);
    file_sections(ix, sec, &m, meta);
    read_end(ix);
    for (int k = 1; k <= CP_SEC_KIND_MAX; k++)
        n += sec[k].length != 0;
    return n;
}

int copse_section_info(const copse_index *ix, int i, const char **name, uint64_t *offset,
                       uint64_t *length, uint32_t *checksum)
{
    if (!ix || i < 0 || ix->state == COPSE_STATE_ADDING)
        return COPSE_ERR_ARG;
    cp_section sec[CP_SEC_KIND_MAX + 1];
    cp_meta m;
    unsigned char meta[CP_DELTA_META_SIZE];
    uint64_t off[CP_SEC_KIND_MAX + 1];
    read_begin(ix);
    file_sections(ix, sec, &m, meta);
    int kind = 0;
    for (int k = 1, left = i; k <= CP_SEC_KIND_MAX && !kind; k++)
        if (sec[k].length && left-- == 0)
            kind = k;
    const cp_section *s = &sec[kind];
    int from_image = image_is_file(ix);
    cp_format_layout(sec, off);
    if (kind && name)
        *name = cp_section_name(kind);
    /* A loaded file's table is the truth (a newer minor may have placed sections elsewhere). */
    if (kind && offset)
        *offset = from_image ? (uint64_t)((const unsigned char *)s->data - ix->v.image) : off[kind];
    if (kind && length)
        *length = s->length;
    if (kind && checksum) {
        *checksum = from_image ? 0 : ix->kern.crc32c(0, s->data, s->length);
        for (uint32_t e = 0; from_image && e < cp_table_count(ix->v.image); e++)
            if (cp_table_get(ix->v.image, e).kind == (uint32_t)kind)
                *checksum = cp_table_get(ix->v.image, e).crc;
    }
    read_end(ix);
    return kind ? COPSE_OK : COPSE_ERR_ARG;
}

uint64_t copse_file_size(const copse_index *ix)
{
    if (!ix || ix->state == COPSE_STATE_ADDING)
        return 0;
    cp_section sec[CP_SEC_KIND_MAX + 1];
    cp_meta m;
    unsigned char meta[CP_DELTA_META_SIZE];
    read_begin(ix);
    file_sections(ix, sec, &m, meta);
    uint64_t size = image_is_file(ix) ? ix->v.image_len : cp_format_layout(sec, NULL);
    read_end(ix);
    return size;
}

/* The file's bytes into a sink: the loaded image as it is, or the sections. */
static int write_file(copse_index *ix, const cp_sink *sink)
{
    cp_section sec[CP_SEC_KIND_MAX + 1];
    cp_meta m;
    unsigned char meta[CP_DELTA_META_SIZE];
    if (image_is_file(ix)) {
        if (sink->buf) {
            memcpy(sink->buf, ix->v.image, ix->v.image_len);
            return COPSE_OK;
        }
        return cp_io_pwrite_all(sink->fd, ix->v.image, ix->v.image_len, 0, sink->name, &ix->err);
    }
    file_sections(ix, sec, &m, meta);
    return cp_format_emit(&m, sec, sink, 0, &ix->err);
}

int copse_save(copse_index *ix, const char *path)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "save: the index is not built");
    if (!path || !*path)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "save: empty path");
    int fd;
    char *tmp;
    int rc = cp_io_temp_beside(path, &fd, &tmp, &ix->err);
    if (rc != COPSE_OK)
        return rc;
    cp_sink sink = {fd, tmp, NULL, ix->kern.crc32c};
    rc = write_file(ix, &sink);
    if (rc == COPSE_OK)
        rc = cp_io_commit(fd, tmp, path, &ix->err);
    if (rc != COPSE_OK)
        cp_io_discard(fd, tmp);
    cp_free(tmp);
    return rc;
}

int copse_save_buffer(copse_index *ix, void *buf, size_t len)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "save_buffer: the index is not built");
    uint64_t size = copse_file_size(ix);
    if (!buf || len < size)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "save_buffer: a buffer of %zu bytes; the index "
                       "needs %llu (copse_file_size)", buf ? len : 0, (unsigned long long)size);
    memset(buf, 0, size);
    cp_sink sink = {-1, NULL, buf, ix->kern.crc32c};
    return write_file(ix, &sink);
}

static int check_loadable(copse_index *ix, const char *what)
{
    if (ix->state != COPSE_STATE_ADDING || ix->b.n > 0 || ix->b.disk_fd >= 0)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "%s: the index must be empty (unload first)", what);
    return COPSE_OK;
}

/* Binds the view to a file image; the handle takes the file's geometry when adopt, else the
 * file must have the handle's. */
static int open_image(copse_index *ix, const unsigned char *img, uint64_t len, void *map,
                      size_t map_len, void *buf_copy, int adopt)
{
    cp_view *v = &ix->v;
    int rc = cp_view_open_image(v, img, len, map, map_len, buf_copy, ix->kern.crc32c, &ix->err);
    if (rc != COPSE_OK)
        return rc;
    if (!adopt && (int)v->meta.dim != ix->g.dim)
        rc = cp_fail(&ix->err, COPSE_ERR_DIM, "the index file has dimension %u, this index %d",
                     v->meta.dim, ix->g.dim);
    else if (!adopt && (copse_metric)v->meta.metric != ix->g.metric)
        rc = cp_fail(&ix->err, COPSE_ERR_METRIC, "the index file uses metric %s, this index %s",
                     copse_metric_name((copse_metric)v->meta.metric), copse_metric_name(ix->g.metric));
    if (rc != COPSE_OK) {
        cp_view_release(v);
        return rc;
    }
    cp_geom_init(&ix->g, (copse_metric)v->meta.metric, (int)v->meta.dim);
    base_changed(ix);
    if ((rc = cp_live_open(ix->live, v, &ix->err)) != COPSE_OK) {
        cp_live_reset(ix->live, 0, 0);
        cp_view_release(v);
        return rc;
    }
    ix->seed = v->meta.seed;
    ix->state = COPSE_STATE_LOADED;
    return COPSE_OK;
}

static int load_path(copse_index *ix, const char *path, int prefault, int adopt)
{
    void *map;
    size_t len;
    if (!path)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "load: path is NULL");
    int rc = cp_io_map_file(path, prefault, &map, &len, &ix->err);
    return rc == COPSE_OK ? open_image(ix, map, len, map, len, NULL, adopt) : rc;
}

int copse_load(copse_index *ix, const char *path, int prefault)
{
    if (!ix)
        return COPSE_ERR_ARG;
    int rc = check_loadable(ix, "load");
    return rc == COPSE_OK ? load_path(ix, path, prefault, 0) : rc;
}

int copse_load_buffer(copse_index *ix, const void *buf, size_t len)
{
    if (!ix)
        return COPSE_ERR_ARG;
    int rc = check_loadable(ix, "load_buffer");
    if (rc != COPSE_OK)
        return rc;
    if (!buf && len)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "load_buffer: NULL buffer");
    const unsigned char *img = buf ? buf : (const unsigned char *)"";
    void *copy = NULL;
    if ((uintptr_t)buf % 8) {
        /* Sections start at multiples of 64 in the image; their 64-bit fields need the image
         * itself 8-byte aligned (SIMD loads are unaligned anyway). */
        if (!(copy = cp_malloc(len)))
            return cp_fail(&ix->err, COPSE_ERR_NOMEM, "load_buffer: no memory to align %zu bytes", len);
        memcpy(copy, buf, len);
        img = copy;
    }
    return open_image(ix, img, len, NULL, 0, copy, 0);
}

int copse_open(const char *path, int prefault, copse_index **out)
{
    if (!out)
        return COPSE_ERR_ARG;
    int rc = copse_new(1, COPSE_EUCLIDEAN, out);
    return rc == COPSE_OK ? load_path(*out, path, prefault, 1) : rc;
}

int copse_load_annoy(copse_index *ix, const char *path)
{
    if (!ix)
        return COPSE_ERR_ARG;
    int rc = check_loadable(ix, "load_annoy");
    if (rc != COPSE_OK)
        return rc;
    if (!path)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "load_annoy: path is NULL");
    void *map;
    size_t len;
    if ((rc = cp_io_map_file(path, 0, &map, &len, &ix->err)) != COPSE_OK)
        return rc;
    cp_sections out;
    rc = cp_annoy_read(&ix->g, &ix->kern, map, len, path, &out, &ix->err);
    cp_io_unmap(map, len);
    if (rc != COPSE_OK)
        return rc;
    out.meta.seed = ix->seed;
    cp_view_adopt(&ix->v, &out);
    base_changed(ix);
    ix->state = COPSE_STATE_LOADED;
    return COPSE_OK;
}

int copse_verify(copse_index *ix)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "verify: the index is not built or loaded");
    cp_reader rd = {&ix->g, &ix->kern, &ix->v};
    return cp_verify(&rd, &ix->err);
}

/* ---- queries ---- */

/* What queries read; no view while adding, so they refuse with COPSE_ERR_STATE. */
static cp_reader reader_of(const copse_index *ix)
{
    return (cp_reader){&ix->g, &ix->kern, ix->state == COPSE_STATE_ADDING ? NULL : &ix->v};
}

/* One query under the read lock: the base alone, or the base and its changes. By item, the
 * item's vector is looked up first, wherever it lives now. */
static int search(const copse_index *ix, copse_scratch *s, const float *q, int64_t id,
                  int64_t k, int64_t search_k, int exact, const copse_filter *f, int64_t *ids,
                  float *dists, int64_t *n_out)
{
    if (!ix)
        return cp_search(NULL, s, q, id, k, search_k, exact, f, ids, dists, n_out);
    cp_reader rd = reader_of(ix);
    if (ix->state == COPSE_STATE_ADDING)
        return cp_search(&rd, s, q, id, k, search_k, exact, f, ids, dists, n_out);
    read_begin(ix);
    int rc;
    if (!cp_live_changed(ix->live)) {
        rc = cp_search(&rd, s, q, id, k, search_k, exact, f, ids, dists, n_out);
    } else if (q) {
        rc = cp_live_search(ix->live, &rd, s, q, k, search_k, exact, f, ids, dists, n_out);
    } else {
        cp_place at;
        float *x = cp_mallocarray((size_t)ix->g.dim, sizeof *x);
        if (!x) {
            rc = cp_fail(cp_scratch_err(s), COPSE_ERR_NOMEM, "search: no memory");
        } else if (!cp_live_find(ix->live, &ix->v, id, &at)) {
            rc = cp_fail(cp_scratch_err(s), COPSE_ERR_NOTFOUND, "search: item %lld is not in "
                         "the index", (long long)id);
        } else {
            place_vector(ix, at, NULL, x); /* BUILT or LOADED: the row is in memory */
            /* A stored vector is finite unless the file is damaged: say that, not "bad query". */
            rc = cp_check_finite(x, ix->g.dim, NULL, "") == COPSE_OK
                     ? cp_live_search(ix->live, &rd, s, x, k, search_k, exact, f, ids, dists, n_out)
                     : cp_fail(cp_scratch_err(s), COPSE_ERR_CORRUPT, "search: item %lld's stored "
                               "vector is not finite (damaged index)", (long long)id);
        }
        cp_free(x);
    }
    read_end(ix);
    return rc;
}

/* A batch's query: the same road as one query. */
static int batch_query(const void *ctx, copse_scratch *s, const float *q, int64_t k,
                       int64_t search_k, int exact, const copse_filter *f, int64_t *ids,
                       float *dists, int64_t *n_out)
{
    return search(ctx, s, q, 0, k, search_k, exact, f, ids, dists, n_out);
}

static int null_query(copse_scratch *scratch, const char *what)
{
    return scratch ? cp_fail(cp_scratch_err(scratch), COPSE_ERR_ARG, "%s: NULL query", what)
                   : COPSE_ERR_ARG;
}

int copse_search_vector(const copse_index *ix, copse_scratch *scratch, const float *q, int64_t k,
                        int64_t search_k, int64_t *ids, float *dists, int64_t *n_out)
{
    return copse_search_vector_filtered(ix, scratch, q, k, search_k, NULL, ids, dists, n_out);
}

int copse_search_item(const copse_index *ix, copse_scratch *scratch, int64_t id, int64_t k,
                      int64_t search_k, int64_t *ids, float *dists, int64_t *n_out)
{
    return search(ix, scratch, NULL, id, k, search_k, 0, NULL, ids, dists, n_out);
}

int copse_exact_vector(const copse_index *ix, copse_scratch *scratch, const float *q, int64_t k,
                       int64_t *ids, float *dists, int64_t *n_out)
{
    return copse_exact_vector_filtered(ix, scratch, q, k, NULL, ids, dists, n_out);
}

int copse_exact_item(const copse_index *ix, copse_scratch *scratch, int64_t id, int64_t k,
                     int64_t *ids, float *dists, int64_t *n_out)
{
    return search(ix, scratch, NULL, id, k, -1, 1, NULL, ids, dists, n_out);
}

int copse_search_batch(const copse_index *ix, copse_scratch *scratch, const float *qs, int64_t nq,
                       int64_t k, int64_t search_k, int exact, int n_threads, int64_t *ids,
                       float *dists, int64_t *counts)
{
    return copse_search_batch_filtered(ix, scratch, qs, nq, k, search_k, exact, n_threads, NULL,
                                       ids, dists, counts);
}

/* ---- filtered queries and filters ---- */

int copse_search_vector_filtered(const copse_index *ix, copse_scratch *scratch, const float *q,
                                 int64_t k, int64_t search_k, const copse_filter *filter,
                                 int64_t *ids, float *dists, int64_t *n_out)
{
    if (!q)
        return null_query(scratch, "search");
    return search(ix, scratch, q, 0, k, search_k, 0, filter, ids, dists, n_out);
}

int copse_search_item_filtered(const copse_index *ix, copse_scratch *scratch, int64_t id,
                               int64_t k, int64_t search_k, const copse_filter *filter,
                               int64_t *ids, float *dists, int64_t *n_out)
{
    return search(ix, scratch, NULL, id, k, search_k, 0, filter, ids, dists, n_out);
}

int copse_exact_vector_filtered(const copse_index *ix, copse_scratch *scratch, const float *q,
                                int64_t k, const copse_filter *filter, int64_t *ids,
                                float *dists, int64_t *n_out)
{
    if (!q)
        return null_query(scratch, "exact");
    return search(ix, scratch, q, 0, k, -1, 1, filter, ids, dists, n_out);
}

int copse_exact_item_filtered(const copse_index *ix, copse_scratch *scratch, int64_t id,
                              int64_t k, const copse_filter *filter, int64_t *ids, float *dists,
                              int64_t *n_out)
{
    return search(ix, scratch, NULL, id, k, -1, 1, filter, ids, dists, n_out);
}

int copse_search_batch_filtered(const copse_index *ix, copse_scratch *scratch, const float *qs,
                                int64_t nq, int64_t k, int64_t search_k, int exact,
                                int n_threads, const copse_filter *filter, int64_t *ids,
                                float *dists, int64_t *counts)
{
    cp_reader rd;
    if (ix)
        rd = reader_of(ix);
    return cp_search_batch(ix ? &rd : NULL, batch_query, ix, scratch, qs, nq, k, search_k, exact,
                           n_threads, filter, ids, dists, counts);
}

/* The view a filter is made for: a BUILT or LOADED index. */
static int filter_start(const copse_index *ix, copse_filter **out)
{
    if (!out)
        return COPSE_ERR_ARG;
    *out = NULL;
    if (!ix)
        return COPSE_ERR_ARG;
    return ix->state == COPSE_STATE_ADDING ? COPSE_ERR_STATE : COPSE_OK;
}

int copse_filter_new_ids(const copse_index *ix, const int64_t *ids, int64_t n,
                         copse_filter **out)
{
    int rc = filter_start(ix, out);
    if (rc == COPSE_OK && (n < 0 || (n > 0 && !ids)))
        rc = COPSE_ERR_ARG;
    if (rc != COPSE_OK)
        return rc;
    read_begin(ix);
    rc = cp_filter_new_ids(&ix->v, ids, n, out);
    read_end(ix);
    return rc;
}

int copse_filter_new_tags(const copse_index *ix, uint64_t any_mask, uint64_t all_mask,
                          copse_filter **out)
{
    int rc = filter_start(ix, out);
    if (rc != COPSE_OK)
        return rc;
    read_begin(ix);
    rc = cp_filter_new_tags(&ix->v, any_mask, all_mask, out);
    read_end(ix);
    return rc;
}
