/*
 * add.c: the ADDING state. Items live in slots numbered in the order they were first added;
 * an open-addressing map takes an id to its slot, so ids may be sparse and memory grows with
 * the item count, never with the largest id (Annoy allocates max(id) + 1 nodes: its #99).
 * Re-adding an id overwrites its slot, as Annoy does.
 *
 * For an on-disk build the rows go straight to a temporary file, at the offset they will have
 * in the finished index, so build only appends the forest and the file never needs copying.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void cp_builder_init(cp_builder *b)
{
    memset(b, 0, sizeof *b);
    b->max_id = -1;
    b->disk_fd = -1;
}

void cp_builder_free(cp_builder *b)
{
    if (b->labels)
        for (uint64_t s = 0; s < b->n; s++)
            cp_free(b->labels[s]);
    cp_free(b->labels);
    cp_free(b->tags);
    if (!b->borrowed) {
        cp_free(b->rows);
        cp_free(b->ids);
    }
    cp_free(b->map_keys);
    cp_free(b->map_slots);
    if (b->disk_fd >= 0)
        cp_io_discard(b->disk_fd, b->disk_tmp);
    cp_free(b->disk_tmp);
    cp_free(b->disk_path);
    cp_builder_init(b);
}

static uint64_t map_find_pos(const cp_builder *b, int64_t id)
{
    uint64_t key = (uint64_t)id + 1, mask = b->map_cap - 1;
    uint64_t pos = mix64(key) & mask;
    while (b->map_keys[pos] != 0 && b->map_keys[pos] != key)
        pos = (pos + 1) & mask;
    return pos;
}

/* Maps id to slot at pos (map_find_pos's answer for id). */
static void map_put(cp_builder *b, uint64_t pos, int64_t id, uint64_t slot)
{
    b->map_keys[pos] = (uint64_t)id + 1;
    b->map_slots[pos] = (uint32_t)slot;
    if (id > b->max_id)
        b->max_id = id;
}

/* Maps ids[s] to slot s for every s < n, into a map with room for them; an id listed twice
 * maps to its later slot. */
static void map_all(cp_builder *b, const int64_t *ids, uint64_t n)
{
    for (uint64_t s = 0; s < n; s++)
        map_put(b, map_find_pos(b, ids[s]), ids[s], s);
}

int cp_builder_slot(const cp_builder *b, int64_t id, uint64_t *slot)
{
    if (id < 0 || b->map_cap == 0)
        return 0;
    uint64_t pos = map_find_pos(b, id);
    if (b->map_keys[pos] == 0)
        return 0;
    *slot = b->map_slots[pos];
    return 1;
}

static int map_grow(cp_builder *b, uint64_t want_items)
{
    uint64_t cap = b->map_cap ? b->map_cap : 64;
    while (cap < want_items * 2)
        cap *= 2;
    if (cap == b->map_cap)
        return COPSE_OK;
    uint64_t *keys = cp_calloc(cap, sizeof *keys);
    uint32_t *slots = cp_mallocarray(cap, sizeof *slots);
    if (!keys || !slots) {
        cp_free(keys);
        cp_free(slots);
        return COPSE_ERR_NOMEM;
    }
    cp_builder old = *b;
    b->map_keys = keys;
    b->map_slots = slots;
    b->map_cap = cap;
    for (uint64_t i = 0; i < old.map_cap; i++) {
        if (old.map_keys[i] == 0)
            continue;
        uint64_t pos = map_find_pos(b, (int64_t)(old.map_keys[i] - 1));
        b->map_keys[pos] = old.map_keys[i];
        b->map_slots[pos] = old.map_slots[i];
    }
    cp_free(old.map_keys);
    cp_free(old.map_slots);
    return COPSE_OK;
}

/* Room for `more` new items in the slot arrays and the map. */
static int builder_reserve(cp_builder *b, const cp_geom *g, uint64_t more, cp_err *err)
{
    uint64_t want = b->n + more;
    if (want > COPSE_MAX_ITEMS || want < b->n)
        return cp_fail(err, COPSE_ERR_NOMEM, "more than %u items", COPSE_MAX_ITEMS);
    if (map_grow(b, want) != COPSE_OK)
        return cp_fail(err, COPSE_ERR_NOMEM, "no memory for the id map of %llu items",
                       (unsigned long long)want);
    if (want <= b->cap && !b->borrowed)
        return COPSE_OK;
    uint64_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap += cap / 2;
    if (b->borrowed) { /* the file's rows and ids, copied: the arrays are ours from here on */
        int64_t *ids = cp_mallocarray(cap, sizeof *ids);
        unsigned char *rows = cp_mallocarray(cap, g->row_bytes);
        if (!ids || !rows) {
            cp_free(ids);
            cp_free(rows);
            return cp_fail(err, COPSE_ERR_NOMEM, "no memory for %llu items", (unsigned long long)cap);
        }
        memcpy(ids, b->ids, b->n * sizeof *ids);
        memcpy(rows, b->rows, b->n * g->row_bytes);
        b->ids = ids;
        b->rows = rows;
        b->borrowed = 0;
    }
    int64_t *ids = cp_reallocarray(b->ids, cap, sizeof *ids);
    if (!ids)
        return cp_fail(err, COPSE_ERR_NOMEM, "no memory for %llu items", (unsigned long long)cap);
    b->ids = ids;
    if (b->labels) {
        char **labels = cp_reallocarray(b->labels, cap, sizeof *labels);
        if (!labels)
            return cp_fail(err, COPSE_ERR_NOMEM, "no memory for labels");
        memset(labels + b->cap, 0, (cap - b->cap) * sizeof *labels);
        b->labels = labels;
    }
    if (b->tags) {
        uint64_t *tags = cp_reallocarray(b->tags, cap, sizeof *tags);
        if (!tags)
            return cp_fail(err, COPSE_ERR_NOMEM, "no memory for tags");
        memset(tags + b->cap, 0, (cap - b->cap) * sizeof *tags);
        b->tags = tags;
    }
    if (b->disk_fd < 0) {
        unsigned char *rows = cp_reallocarray(b->rows, cap, g->row_bytes);
        if (!rows)
            return cp_fail(err, COPSE_ERR_NOMEM, "no memory for %llu vectors of %zu bytes",
                           (unsigned long long)cap, g->row_bytes);
        b->rows = rows;
    }
    b->cap = cap;
    return COPSE_OK;
}

static int write_row(cp_builder *b, const cp_geom *g, uint64_t slot, const float *v, cp_err *err)
{
    if (b->disk_fd < 0) {
        cp_encode(g, v, b->rows + slot * g->row_bytes);
        return COPSE_OK;
    }
    unsigned char stackbuf[4096];
    unsigned char *buf = g->row_bytes <= sizeof stackbuf ? stackbuf : cp_malloc(g->row_bytes);
    if (!buf)
        return cp_fail(err, COPSE_ERR_NOMEM, "no memory for one vector");
    cp_encode(g, v, buf);
    int rc = cp_io_pwrite_all(b->disk_fd, buf, g->row_bytes, CP_HEADER_SIZE + slot * g->row_bytes,
                              b->disk_tmp, err);
    if (buf != stackbuf)
        cp_free(buf);
    return rc;
}

/* Stores one checked row; room has been reserved. */
static int put_item(cp_builder *b, const cp_geom *g, int64_t id, const float *v, cp_err *err)
{
    uint64_t pos = map_find_pos(b, id);
    uint64_t slot = b->map_keys[pos] ? b->map_slots[pos] : b->n;
    int rc = write_row(b, g, slot, v, err);
    if (rc != COPSE_OK)
        return rc;
    if (slot == b->n) {
        map_put(b, pos, id, slot);
        b->ids[slot] = id;
        if (b->labels)
            b->labels[slot] = NULL;
        if (b->tags)
            b->tags[slot] = 0;
        b->n++;
    }
    return COPSE_OK;
}

int cp_builder_add(cp_builder *b, const cp_geom *g, int64_t id, const float *v, cp_err *err)
{
    if (!v)
        return cp_fail(err, COPSE_ERR_ARG, "add_item: vector is NULL");
    if (id < 0)
        return cp_fail(err, COPSE_ERR_ID, "add_item: id %lld is negative", (long long)id);
    int rc = cp_check_finite(v, g->dim, err, "add_item");
    if (rc == COPSE_OK)
        rc = builder_reserve(b, g, 1, err);
    return rc == COPSE_OK ? put_item(b, g, id, v, err) : rc;
}

int cp_check_rows(const cp_geom *g, int64_t n, const int64_t *ids, int64_t first_id,
                  const float *vs, cp_err *err)
{
    if (n < 0 || (n > 0 && !vs))
        return cp_fail(err, COPSE_ERR_ARG, "add_items: n = %lld with %s vectors",
                       (long long)n, vs ? "" : "NULL");
    if (!ids && (first_id < 0 || first_id > INT64_MAX - n))
        return cp_fail(err, COPSE_ERR_ID, "add_items: ids %lld + %lld out of range",
                       (long long)first_id, (long long)n);
    size_t dim = (size_t)g->dim;
    for (int64_t i = 0; i < n; i++) {
        if (ids && ids[i] < 0)
            return cp_fail(err, COPSE_ERR_ID, "add_items: row %lld: id %lld is negative",
                           (long long)i, (long long)ids[i]);
        const float *row = vs + (size_t)i * dim;
        for (size_t j = 0; j < dim; j++)
            if (!(row[j] - row[j] == 0.0f)) /* false for NaN and infinities */
                return cp_fail(err, COPSE_ERR_VALUE, "add_items: row %lld: component %zu "
                               "is NaN or infinite", (long long)i, j);
    }
    return COPSE_OK;
}

int cp_builder_add_many(cp_builder *b, const cp_geom *g, int64_t n, const int64_t *ids,
                        int64_t first_id, const float *vs, cp_err *err)
{
    size_t dim = (size_t)g->dim;
    int rc = cp_check_rows(g, n, ids, first_id, vs, err);
    if (rc == COPSE_OK)
        rc = builder_reserve(b, g, (uint64_t)n, err);
    for (int64_t i = 0; i < n && rc == COPSE_OK; i++)
        rc = put_item(b, g, ids ? ids[i] : first_id + i, vs + (size_t)i * dim, err);
    return rc;
}

int cp_builder_borrow(cp_builder *b, const unsigned char *rows, const int64_t *ids, uint64_t n,
                      cp_err *err)
{
    if (map_grow(b, n) != COPSE_OK)
        return cp_fail(err, COPSE_ERR_NOMEM, "no memory for the id map of %llu items",
                       (unsigned long long)n);
    map_all(b, ids, n);
    /* Never written while borrowed: builder_reserve copies them first. */
    b->rows = (unsigned char *)rows;
    b->ids = (int64_t *)ids;
    b->n = b->cap = n;
    b->borrowed = 1;
    return COPSE_OK;
}

int cp_builder_append(cp_builder *b, const cp_geom *g, int64_t id, const float *v,
                      uint64_t *old_slot, cp_err *err)
{
    int rc = builder_reserve(b, g, 1, err);
    if (rc != COPSE_OK)
        return rc;
    uint64_t pos = map_find_pos(b, id), slot = b->n;
    *old_slot = b->map_keys[pos] ? b->map_slots[pos] : UINT64_MAX;
    if ((rc = write_row(b, g, slot, v, err)) != COPSE_OK)
        return rc;
    map_put(b, pos, id, slot);
    b->ids[slot] = id;
    if (b->labels)
        b->labels[slot] = NULL;
    b->n++;
    return COPSE_OK;
}

int cp_builder_set_label(cp_builder *b, int64_t id, const char *label, cp_err *err)
{
    uint64_t slot;
    if (!cp_builder_slot(b, id, &slot))
        return cp_fail(err, COPSE_ERR_NOTFOUND, "set_label: item %lld was not added", (long long)id);
    size_t len = label ? strlen(label) : 0;
    if (len > CP_MAX_LABEL)
        return cp_fail(err, COPSE_ERR_ARG, "set_label: label of %zu bytes is longer than %d",
                       len, CP_MAX_LABEL);
    if (!b->labels && !(b->labels = cp_calloc(b->cap, sizeof *b->labels)))
        return cp_fail(err, COPSE_ERR_NOMEM, "set_label: no memory");
    char *copy = NULL;
    if (len && !(copy = cp_malloc(len + 1)))
        return cp_fail(err, COPSE_ERR_NOMEM, "set_label: no memory");
    if (copy)
        memcpy(copy, label, len + 1);
    cp_free(b->labels[slot]);
    b->labels[slot] = copy;
    return COPSE_OK;
}

int cp_builder_set_tags(cp_builder *b, int64_t id, uint64_t mask, cp_err *err)
{
    uint64_t slot;
    if (!cp_builder_slot(b, id, &slot))
        return cp_fail(err, COPSE_ERR_NOTFOUND, "set_tags: item %lld was not added", (long long)id);
    if (!b->tags && !mask)
        return COPSE_OK; /* no tags yet, none set: nothing to keep */
    if (!b->tags && !(b->tags = cp_calloc(b->cap, sizeof *b->tags)))
        return cp_fail(err, COPSE_ERR_NOMEM, "set_tags: no memory");
    b->tags[slot] = mask;
    return COPSE_OK;
}

int cp_builder_on_disk(cp_builder *b, const char *path, cp_err *err)
{
    if (!path || !*path)
        return cp_fail(err, COPSE_ERR_ARG, "on_disk_build: empty path");
    if (b->n > 0 || b->disk_fd >= 0)
        return cp_fail(err, COPSE_ERR_STATE, "on_disk_build: must come before the first "
                       "add_item and only once");
    size_t plen = strlen(path);
    char *dup = cp_malloc(plen + 1);
    if (!dup)
        return cp_fail(err, COPSE_ERR_NOMEM, "on_disk_build: no memory");
    memcpy(dup, path, plen + 1);
    int fd;
    char *tmp;
    int rc = cp_io_temp_beside(path, &fd, &tmp, err);
    if (rc != COPSE_OK) {
        cp_free(dup);
        return rc;
    }
    cp_free(b->rows);
    b->rows = NULL;
    b->cap = 0;
    b->disk_fd = fd;
    b->disk_tmp = tmp;
    b->disk_path = dup;
    return COPSE_OK;
}

const void *cp_builder_row(const cp_builder *b, const cp_geom *g, uint64_t slot, void *tmp,
                           cp_err *err)
{
    if (b->disk_fd < 0)
        return b->rows + slot * g->row_bytes;
    if (cp_io_pread_all(b->disk_fd, tmp, g->row_bytes, CP_HEADER_SIZE + slot * g->row_bytes,
                        b->disk_tmp, err) != COPSE_OK)
        return NULL;
    return tmp;
}

int cp_builder_from_view(cp_builder *b, const cp_geom *g, cp_view *v, cp_err *err)
{
    uint64_t n = v->n_items;
    cp_builder_free(b);
    /* Quantized rows come back decoded: the floats they stand for. */
    unsigned char *decoded = NULL;
    if (v->quant.storage != COPSE_STORAGE_F32 && n) {
        if (!(decoded = cp_mallocarray(n, g->row_bytes)))
            return cp_fail(err, COPSE_ERR_NOMEM, "unbuild: no memory for the decoded vectors");
        for (uint64_t s = 0; s < n; s++)
            cp_quant_decode(g, &v->quant, v->vectors + s * v->quant.stride,
                            (float *)(decoded + s * g->row_bytes));
    }
    int64_t *ids = cp_mallocarray(n ? n : 1, sizeof *ids);
    char **labels = v->label_offsets ? cp_calloc(n, sizeof *labels) : NULL;
    uint64_t *tags = v->tags ? cp_mallocarray(n, sizeof *tags) : NULL;
    if (!ids || (v->label_offsets && !labels) || (v->tags && !tags) || map_grow(b, n) != COPSE_OK) {
        cp_free(ids);
        cp_free(labels);
        cp_free(tags);
        cp_free(decoded);
        return cp_fail(err, COPSE_ERR_NOMEM, "unbuild: no memory");
    }
    for (uint64_t s = 0; s < n; s++)
        ids[s] = cp_view_id(v, s);
    map_all(b, ids, n);
    b->ids = ids;
    b->labels = labels;
    if (tags)
        memcpy(tags, v->tags, n * sizeof *tags);
    b->tags = tags;
    b->n = n; /* from here cp_builder_free releases what was copied */
    for (uint64_t s = 0; labels && s < n; s++) {
        uint64_t a = v->label_offsets[s], e = v->label_offsets[s + 1];
        if (e <= a + 1)
            continue;
        if (!(labels[s] = cp_malloc(e - a))) {
            cp_builder_free(b);
            cp_free(decoded);
            return cp_fail(err, COPSE_ERR_NOMEM, "unbuild: no memory for labels");
        }
        memcpy(labels[s], v->label_data + a, e - a);
    }
    b->rows = decoded ? decoded : cp_sections_take(v->block, v->n_blocks, v->vectors);
    b->cap = n;
    return COPSE_OK;
}
