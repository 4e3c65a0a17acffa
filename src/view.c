/*
 * view.c: the read model of an index, and the memory behind it.
 *
 * Producers (the builder's build, the Annoy reader) emit sections into a cp_sections list with
 * the blocks they allocated; a file image (a mapping or a buffer) is parsed into the same
 * sections by format.c. Either way one bind turns sections into the typed pointers queries
 * read, so a freshly built index and a loaded file take the same code path, and a new section
 * kind is a line in bind, not a change in every producer.
 *
 * Ownership: the view owns exactly what it was given (blocks, a mapping, an aligned copy of a
 * buffer) and releases it in one place. Id and label lookups live here because they read only
 * the view; everything they read from a file is bounds-checked first.
 */
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

/* ---- the producers' list ---- */

void cp_emit(cp_sections *out, int kind, void *data, uint64_t len)
{
    out->sec[kind] = (cp_section){data, len};
    cp_emit_block(out, data);
}

void cp_emit_block(cp_sections *out, void *block)
{
    /* CP_MAX_BLOCKS covers every kind once plus the two Annoy keys, so this always fits. */
    if (block && out->n_blocks < CP_MAX_BLOCKS)
        out->block[out->n_blocks++] = block;
}

void *cp_sections_take(void **blocks, int n_blocks, const void *block)
{
    for (int i = 0; block && i < n_blocks; i++)
        if (blocks[i] == block) {
            blocks[i] = NULL;
            return (void *)block;
        }
    return NULL;
}

void cp_sections_free(cp_sections *s)
{
    for (int i = 0; i < s->n_blocks; i++)
        cp_free(s->block[i]);
    memset(s, 0, sizeof *s);
}

/* ---- binding ---- */

void cp_view_init(cp_view *v)
{
    memset(v, 0, sizeof *v);
    v->max_id = -1;
    v->meta.max_id = -1;
    v->graph_entry = UINT32_MAX;
    v->added_from = UINT64_MAX;
}

void cp_view_release(cp_view *v)
{
    for (int i = 0; i < v->n_blocks; i++)
        cp_free(v->block[i]);
    if (v->map)
        cp_io_unmap(v->map, v->map_len);
    cp_free(v->buf_copy);
    cp_view_init(v);
}

/* Typed pointers and counts from the sections and the header's facts. */
static void bind(cp_view *v, const cp_meta *m, const cp_section *sec)
{
    const cp_section *s = v->sec;
    memcpy(v->sec, sec, sizeof v->sec);
    v->meta = *m;
    v->n_items = m->n_items;
    v->n_split = m->n_split;
    v->n_leaves = m->n_leaves;
    v->n_leaf_items = m->n_leaf_items;
    v->n_trees = m->n_trees;
    v->n_labelled = m->n_labelled;
    v->max_id = m->max_id;
    v->leaf_size = m->leaf_size;
    v->graph_degree = m->graph_degree;
    v->vectors = s[CP_SEC_VECTORS].data;
    /* The format checked the QUANT section (or the producer wrote it): this only points. */
    cp_geom g;
    cp_geom_init(&g, (copse_metric)m->metric, (int)m->dim);
    cp_quant_bind(&g, m->storage, s[CP_SEC_QUANT].data, &v->quant);
    v->norms = s[CP_SEC_NORMS].data;
    v->slot_ids = s[CP_SEC_SLOT_IDS].data;
    v->id_order = s[CP_SEC_ID_ORDER].data;
    v->nodes = s[CP_SEC_NODES].data;
    v->leaves = s[CP_SEC_LEAVES].data;
    v->leaf_items = s[CP_SEC_LEAF_ITEMS].data;
    v->roots = s[CP_SEC_ROOTS].data;
    v->label_offsets = s[CP_SEC_LABEL_OFFSETS].data;
    v->label_data = s[CP_SEC_LABEL_DATA].data;
    v->label_data_len = s[CP_SEC_LABEL_DATA].length;
    v->label_order = s[CP_SEC_LABEL_ORDER].data;
    v->graph = s[CP_SEC_GRAPH].data;
    v->tags = s[CP_SEC_TAGS].data;
    /* Relaxed is enough: the number only has to differ between bindings, and a handle is
     * bound under the exclusive access its state changes need. */
    static _Atomic uint64_t generations;
    v->generation = atomic_fetch_add_explicit(&generations, 1, memory_order_relaxed) + 1;
    v->lineage = v->generation; /* a compaction passes its old base's on (index.c) */
    v->tombstones = s[CP_SEC_TOMBSTONES].data;
    v->delta_dead = s[CP_SEC_DELTA_DEAD].data;
    v->delta_vectors = s[CP_SEC_DELTA_VECTORS].data;
    v->delta_ids = s[CP_SEC_DELTA_IDS].data;
    v->delta_tags = s[CP_SEC_DELTA_TAGS].data;
    v->delta_norms = s[CP_SEC_DELTA_NORMS].data;
    v->delta_graph = s[CP_SEC_DELTA_GRAPH].data;
    v->delta_leaves = s[CP_SEC_DELTA_LEAVES].data;
}

void cp_view_adopt(cp_view *v, cp_sections *s)
{
    cp_view_release(v);
    bind(v, &s->meta, s->sec);
    memcpy(v->block, s->block, sizeof v->block);
    v->n_blocks = s->n_blocks;
    v->split_keys = s->split_keys;
    v->leaf_keys = s->leaf_keys;
    v->count_repeats = s->split_keys != NULL;
    memset(s, 0, sizeof *s);
}

int cp_view_open_image(cp_view *v, const unsigned char *img, uint64_t len, void *map,
                       size_t map_len, void *buf_copy, cp_crc32c_fn crc, cp_err *err)
{
    cp_meta m;
    cp_section sec[CP_SEC_KIND_MAX + 1];
    int major = 0, minor = 0;
    cp_view_release(v);
    v->map = map;
    v->map_len = map_len;
    v->buf_copy = buf_copy;
    int rc = cp_format_parse(img, len, crc, &m, sec, &major, &minor, err);
    if (rc != COPSE_OK) {
        cp_view_release(v);
        return rc;
    }
    bind(v, &m, sec);
    v->image = img;
    v->image_len = len;
    v->file_major = major;
    v->file_minor = minor;
    return COPSE_OK;
}

/* ---- ids ---- */

int64_t cp_view_id(const cp_view *v, uint64_t slot)
{
    if (slot >= v->added_from)
        return v->added_ids[slot - v->added_from];
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

/* ---- labels ---- */

const char *cp_view_label(const cp_view *v, uint64_t slot, size_t *len)
{
    if (!v->label_offsets || slot >= v->n_items)
        return NULL;
    uint64_t a = v->label_offsets[slot], e = v->label_offsets[slot + 1];
    /* From a file: a may be anything, so a + 1 could wrap; compare without adding. */
    if (e <= a || e - a < 2 || e > v->label_data_len || v->label_data[e - 1] != '\0')
        return NULL;
    *len = (size_t)(e - a - 1);
    return v->label_data + a;
}

int cp_view_find_label(const cp_view *v, const char *label, uint64_t *slot)
{
    if (!v->label_offsets)
        return 0;
    uint64_t lo = 0, hi = v->n_labelled;
    size_t len;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        const char *l = cp_view_label(v, v->label_order[mid], &len);
        if (!l)
            return 0;
        if (strcmp(l, label) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= v->n_labelled)
        return 0;
    const char *l = cp_view_label(v, v->label_order[lo], &len);
    if (!l || strcmp(l, label) != 0)
        return 0;
    *slot = v->label_order[lo];
    return 1;
}
