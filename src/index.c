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
    copse_state_t state;
    uint64_t seed;          /* for the next build, or the built or loaded index's */
    int leaf_size;          /* as set for the next build (0 = auto) */
    int graph_degree;       /* as set for the next build (0 = no graph) */
    cp_progress progress;   /* build progress callback and its counters */
    cp_builder b;           /* ADDING */
    cp_view v;              /* BUILT, LOADED */
    cp_err err;
};

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
    ix->graph_degree = CP_DEFAULT_GRAPH_DEGREE;
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
    cp_view_release(&ix->v);
    cp_builder_free(&ix->b);
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
    return ix->state == COPSE_STATE_ADDING ? ix->leaf_size : (int)ix->v.leaf_size;
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
    return cp_view_file_size(&ix->v);
}

void copse_file_version(const copse_index *ix, int *major, int *minor)
{
    int from_file = ix && ix->state != COPSE_STATE_ADDING && ix->v.image;
    if (major)
        *major = from_file ? ix->v.file_major : COPSE_FORMAT_MAJOR;
    if (minor)
        *minor = from_file ? ix->v.file_minor : COPSE_FORMAT_MINOR;
}

/* ---- ids ---- */

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
    return cp_builder_row(&ix->b, &ix->g, slot, tmp, NULL);
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

const char *copse_errmsg(const copse_index *ix) { return ix ? ix->err.msg : ""; }

/* ---- adding ---- */

static int check_adding(copse_index *ix, const char *what)
{
    if (ix->state != COPSE_STATE_ADDING)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "%s: the index is %s; items can only be added "
                       "before build (unbuild or unload first)", what,
                       ix->state == COPSE_STATE_BUILT ? "built" : "loaded");
    return COPSE_OK;
}

int copse_add_item(copse_index *ix, int64_t id, const float *v)
{
    if (!ix)
        return COPSE_ERR_ARG;
    int rc = check_adding(ix, "add_item");
    return rc == COPSE_OK ? cp_builder_add(&ix->b, &ix->g, id, v, &ix->err) : rc;
}

int copse_add_items(copse_index *ix, int64_t n, const int64_t *ids, int64_t first_id,
                    const float *vs)
{
    if (!ix)
        return COPSE_ERR_ARG;
    int rc = check_adding(ix, "add_items");
    return rc == COPSE_OK ? cp_builder_add_many(&ix->b, &ix->g, n, ids, first_id, vs, &ix->err) : rc;
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
    int rc = check_adding(ix, "set_tags");
    if (rc != COPSE_OK)
        return rc;
    if (n < 0 || (n > 0 && !tags))
        return cp_fail(&ix->err, COPSE_ERR_ARG, "set_tags: %d tags at %p", n, (const void *)tags);
    uint64_t mask = 0;
    for (int i = 0; i < n; i++) {
        if (tags[i] > COPSE_MAX_TAG)
            return cp_fail(&ix->err, COPSE_ERR_ARG, "set_tags: tag %u is outside 0..%d", tags[i],
                           COPSE_MAX_TAG);
        mask |= 1ull << tags[i];
    }
    return cp_builder_set_tags(&ix->b, id, mask, &ix->err);
}

int copse_get_tags(const copse_index *ix, int64_t id, uint64_t *mask)
{
    uint64_t slot;
    if (!ix || !mask)
        return COPSE_ERR_ARG;
    if (find_slot(ix, id, &slot) != COPSE_OK)
        return COPSE_ERR_NOTFOUND;
    const uint64_t *tags = ix->state == COPSE_STATE_ADDING ? ix->b.tags : ix->v.tags;
    *mask = tags ? tags[slot] : 0;
    return COPSE_OK;
}

int copse_on_disk_build(copse_index *ix, const char *path)
{
    if (!ix)
        return COPSE_ERR_ARG;
    int rc = check_adding(ix, "on_disk_build");
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
    uint64_t slot;
    size_t l = 0;
    *label = NULL;
    if (find_slot(ix, id, &slot) != COPSE_OK)
        return COPSE_ERR_NOTFOUND;
    if (ix->state != COPSE_STATE_ADDING) {
        *label = cp_view_label(&ix->v, slot, &l);
    } else if (ix->b.labels && ix->b.labels[slot]) {
        *label = ix->b.labels[slot];
        l = strlen(*label);
    }
    if (len)
        *len = *label ? l : 0;
    return COPSE_OK;
}

int copse_find_label(const copse_index *ix, const char *label, int64_t *id)
{
    if (!ix || !label || !id)
        return COPSE_ERR_ARG;
    if (ix->state == COPSE_STATE_ADDING)
        return COPSE_ERR_STATE;
    uint64_t slot;
    if (!cp_view_find_label(&ix->v, label, &slot) || slot >= ix->v.n_items)
        return COPSE_ERR_NOTFOUND;
    *id = cp_view_id(&ix->v, slot);
    return COPSE_OK;
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
    int graph = ix->graph_degree > 0 && ix->b.n >= 2;
    cp_build_args a = {&ix->g, &ix->kern, ix->seed, n_trees,
                       ix->leaf_size ? ix->leaf_size : cp_auto_leaf_size(&ix->g, ix->graph_degree > 0),
                       graph ? ix->graph_degree : 0, n_threads, &ix->progress};
    /* Units: each forest tree, and with a graph each throwaway tree built and its leaves
     * paired, and the final lists. */
    uint64_t units = (n_trees > 0 ? (uint64_t)n_trees : 1) + (graph ? 2 * CP_GRAPH_TREES + 1 : 0);
    int rc = cp_progress_begin(&ix->progress, units);
    if (rc != COPSE_OK)
        return cp_fail(&ix->err, rc, "build: no memory");
    int on_disk = ix->b.disk_fd >= 0;
    rc = on_disk ? cp_build_on_disk(&a, &ix->b, &ix->v, &ix->err)
                 : cp_build_in_memory(&a, &ix->b, &ix->v, &ix->err);
    cp_progress_end(&ix->progress);
    if (rc == COPSE_OK)
        ix->state = COPSE_STATE_BUILT;
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
    int rc = cp_builder_from_view(&ix->b, &ix->v, &ix->err);
    if (rc != COPSE_OK)
        return rc;
    cp_view_release(&ix->v);
    ix->state = COPSE_STATE_ADDING;
    return COPSE_OK;
}

/* ---- files ---- */

int copse_n_sections(const copse_index *ix)
{
    int n = 0;
    for (int k = 1; ix && ix->state != COPSE_STATE_ADDING && k <= CP_SEC_KIND_MAX; k++)
        n += ix->v.sec[k].length != 0;
    return n;
}

/* Kind of the i-th present section in file order, or 0. */
static int nth_section(const cp_view *v, int i)
{
    for (int k = 1; k <= CP_SEC_KIND_MAX; k++)
        if (v->sec[k].length && i-- == 0)
            return k;
    return 0;
}

int copse_section_info(const copse_index *ix, int i, const char **name, uint64_t *offset,
                       uint64_t *length, uint32_t *checksum)
{
    if (!ix || i < 0 || i >= copse_n_sections(ix))
        return COPSE_ERR_ARG;
    const cp_view *v = &ix->v;
    int kind = nth_section(v, i);
    const cp_section *s = &v->sec[kind];
    uint64_t off[CP_SEC_KIND_MAX + 1];
    cp_format_layout(v->sec, off);
    if (name)
        *name = cp_section_name(kind);
    /* A loaded file's table is the truth (a newer minor may have placed sections elsewhere). */
    if (offset)
        *offset = v->image ? (uint64_t)((const unsigned char *)s->data - v->image) : off[kind];
    if (length)
        *length = s->length;
    if (checksum) {
        *checksum = v->image ? 0 : cp_crc32c(0, s->data, s->length);
        for (uint32_t e = 0; v->image && e < cp_table_count(v->image); e++)
            if (cp_table_get(v->image, e).kind == (uint32_t)kind)
                *checksum = cp_table_get(v->image, e).crc;
    }
    return COPSE_OK;
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
    cp_sink sink = {fd, tmp, NULL};
    if (ix->v.image)
        rc = cp_io_pwrite_all(fd, ix->v.image, ix->v.image_len, 0, tmp, &ix->err);
    else
        rc = cp_format_emit(&ix->v.meta, ix->v.sec, &sink, 0, &ix->err);
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
    if (ix->v.image) {
        memcpy(buf, ix->v.image, ix->v.image_len);
        return COPSE_OK;
    }
    memset(buf, 0, size);
    cp_sink sink = {-1, NULL, buf};
    return cp_format_emit(&ix->v.meta, ix->v.sec, &sink, 0, &ix->err);
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
    int rc = cp_view_open_image(v, img, len, map, map_len, buf_copy, &ix->err);
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

static int search(const copse_index *ix, copse_scratch *s, const float *q, int64_t id,
                  int64_t k, int64_t search_k, int exact, const copse_filter *f, int64_t *ids,
                  float *dists, int64_t *n_out)
{
    cp_reader rd;
    if (ix)
        rd = reader_of(ix);
    return cp_search(ix ? &rd : NULL, s, q, id, k, search_k, exact, f, ids, dists, n_out);
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
    return cp_search_batch(ix ? &rd : NULL, scratch, qs, nq, k, search_k, exact, n_threads,
                           filter, ids, dists, counts);
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
    return rc == COPSE_OK ? cp_filter_new_ids(&ix->v, ids, n, out) : rc;
}

int copse_filter_new_tags(const copse_index *ix, uint64_t any_mask, uint64_t all_mask,
                          copse_filter **out)
{
    int rc = filter_start(ix, out);
    return rc == COPSE_OK ? cp_filter_new_tags(&ix->v, any_mask, all_mask, out) : rc;
}
