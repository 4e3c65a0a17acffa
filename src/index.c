/*
 * index.c: the handle, its state machine (ADDING -> BUILT, or LOADED) and the calls that only
 * read facts. Item lookups work in every state: through the builder's map while adding, and
 * through the view (slots sorted by id, binary search) once built or loaded.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

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
    cp_kernels_best(&ix->kern);
    ix->seed = CP_DEFAULT_SEED;
    ix->graph_degree = CP_DEFAULT_GRAPH_DEGREE;
    ix->v.max_id = -1;
    ix->state = COPSE_STATE_ADDING;
    cp_geom_init(&ix->g, COPSE_EUCLIDEAN, 1);
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
    cp_release_view(ix);
    cp_builder_free(&ix->b);
    cp_free(ix);
}

int copse_unload(copse_index *ix)
{
    if (!ix)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "unload: nothing is built or loaded");
    cp_release_view(ix);
    cp_builder_free(&ix->b);
    ix->state = COPSE_STATE_ADDING;
    ix->built_leaf_size = 0;
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

int copse_graph_degree(const copse_index *ix)
{
    if (!ix)
        return 0;
    return ix->state == COPSE_STATE_ADDING ? ix->graph_degree : (int)ix->v.graph_degree;
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
uint64_t copse_seed(const copse_index *ix) { return ix ? ix->seed : 0; }

int copse_leaf_size(const copse_index *ix)
{
    if (!ix)
        return 0;
    return ix->state == COPSE_STATE_ADDING ? ix->leaf_size : ix->built_leaf_size;
}

int64_t copse_n_items(const copse_index *ix)
{
    if (!ix)
        return 0;
    return (int64_t)(ix->state == COPSE_STATE_ADDING ? ix->b.n : ix->v.n_items);
}

int64_t copse_max_id(const copse_index *ix)
{
    if (!ix)
        return -1;
    return ix->state == COPSE_STATE_ADDING ? ix->b.max_id : ix->v.max_id;
}

void copse_n_nodes(const copse_index *ix, int64_t *n_split, int64_t *n_leaves)
{
    if (n_split)
        *n_split = ix ? (int64_t)ix->v.n_split : 0;
    if (n_leaves)
        *n_leaves = ix ? (int64_t)ix->v.n_leaves : 0;
}

uint64_t copse_file_size(const copse_index *ix)
{
    if (!ix || ix->state == COPSE_STATE_ADDING)
        return 0;
    if (ix->image)
        return ix->image_len;
    cp_layout lay;
    cp_layout_compute(&ix->v, &lay);
    return lay.file_size;
}

void copse_file_version(const copse_index *ix, int *major, int *minor)
{
    int from_file = ix && ix->from_file;
    if (major)
        *major = from_file ? ix->file_major : COPSE_FORMAT_MAJOR;
    if (minor)
        *minor = from_file ? ix->file_minor : COPSE_FORMAT_MINOR;
}

/* ---- ids ---- */

int64_t cp_view_id(const cp_view *v, uint64_t slot)
{
    return v->slot_ids ? v->slot_ids[slot] : (int64_t)slot;
}

int cp_view_slot(const cp_view *v, int64_t id, uint64_t *slot)
{
    if (id < 0)
        return 0;
    if (!v->slot_ids) {
        if ((uint64_t)id >= v->n_items)
            return 0;
        *slot = (uint64_t)id;
        return 1;
    }
    uint64_t lo = 0, hi = v->n_items;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, s = v->id_order[mid];
        if (s >= v->n_items)
            return 0; /* damaged id index: not found rather than a wild read */
        if (v->slot_ids[s] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= v->n_items || v->id_order[lo] >= v->n_items || v->slot_ids[v->id_order[lo]] != id)
        return 0;
    *slot = v->id_order[lo];
    return 1;
}

/* Slot of id in any state, with a message when it is missing. */
static int find_slot(const copse_index *ix, int64_t id, uint64_t *slot)
{
    int found = ix->state == COPSE_STATE_ADDING ? cp_builder_slot(&ix->b, id, slot)
                                                : cp_view_slot(&ix->v, id, slot);
    return found ? COPSE_OK : COPSE_ERR_NOTFOUND;
}

int copse_has_item(const copse_index *ix, int64_t id)
{
    uint64_t slot;
    return ix && find_slot(ix, id, &slot) == COPSE_OK;
}

int copse_item_id_at(const copse_index *ix, int64_t pos, int64_t *id)
{
    if (!ix || !id || pos < 0 || pos >= copse_n_items(ix))
        return COPSE_ERR_ARG;
    *id = ix->state == COPSE_STATE_ADDING ? ix->b.ids[pos] : cp_view_id(&ix->v, (uint64_t)pos);
    return COPSE_OK;
}

/* Stored row of a slot: in the view, the builder's memory, or read into tmp (on-disk). */
static const void *slot_row(const copse_index *ix, uint64_t slot, void *tmp)
{
    if (ix->state != COPSE_STATE_ADDING)
        return ix->v.vectors + slot * ix->g.row_bytes;
    return cp_builder_row((copse_index *)ix, slot, tmp);
}

int copse_get_item(const copse_index *ix, int64_t id, float *out)
{
    uint64_t slot;
    if (!ix || !out)
        return COPSE_ERR_ARG;
    if (find_slot(ix, id, &slot) != COPSE_OK)
        return COPSE_ERR_NOTFOUND;
    void *tmp = cp_malloc(ix->g.row_bytes);
    if (!tmp)
        return COPSE_ERR_NOMEM;
    const void *row = slot_row(ix, slot, tmp);
    if (row)
        cp_decode(&ix->g, row, out);
    cp_free(tmp);
    return row ? COPSE_OK : COPSE_ERR_IO;
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
    uint64_t sa, sb;
    if (!ix || !out)
        return COPSE_ERR_ARG;
    if (find_slot(ix, a, &sa) != COPSE_OK || find_slot(ix, b, &sb) != COPSE_OK)
        return COPSE_ERR_NOTFOUND;
    unsigned char *tmp = cp_mallocarray(2, ix->g.row_bytes);
    if (!tmp)
        return COPSE_ERR_NOMEM;
    const void *ra = slot_row(ix, sa, tmp), *rb = slot_row(ix, sb, tmp + ix->g.row_bytes);
    if (ra && rb)
        *out = row_distance(ix, ra, rb);
    cp_free(tmp);
    return ra && rb ? COPSE_OK : COPSE_ERR_IO;
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
