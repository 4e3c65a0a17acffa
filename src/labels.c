/*
 * labels.c: optional strings attached to items (word2vec words, file names). Stored as one
 * blob with per-slot offsets, plus the labelled slots sorted by (label, id) so a label is
 * found by binary search in the mapped file without building anything at load.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct label_key {
    const char *s;
    int64_t id;
    uint32_t slot;
} label_key;

static int cmp_label(const void *a, const void *b)
{
    const label_key *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

static int labels_fail(copse_index *ix, uint64_t *off, char *data, uint32_t *order, label_key *keys)
{
    cp_free(off);
    cp_free(data);
    cp_free(order);
    cp_free(keys);
    return cp_fail(&ix->err, COPSE_ERR_NOMEM, "build: no memory for labels");
}

int cp_labels_build(copse_index *ix)
{
    const cp_builder *b = &ix->b;
    if (!b->labels)
        return COPSE_OK;
    uint64_t n = b->n, total = 0, m = 0;
    for (uint64_t s = 0; s < n; s++)
        if (b->labels[s]) {
            total += strlen(b->labels[s]) + 1;
            m++;
        }
    if (m == 0)
        return COPSE_OK;
    uint64_t *off = cp_mallocarray(n + 1, sizeof *off);
    char *data = cp_malloc(total);
    uint32_t *order = cp_mallocarray(m, sizeof *order);
    label_key *keys = cp_mallocarray(m, sizeof *keys);
    if (!off || !data || !order || !keys)
        return labels_fail(ix, off, data, order, keys);
    uint64_t pos = 0, j = 0;
    for (uint64_t s = 0; s < n; s++) {
        off[s] = pos;
        if (!b->labels[s])
            continue;
        size_t len = strlen(b->labels[s]) + 1;
        memcpy(data + pos, b->labels[s], len);
        keys[j++] = (label_key){data + pos, b->ids[s], (uint32_t)s};
        pos += len;
    }
    off[n] = pos;
    qsort(keys, m, sizeof *keys, cmp_label);
    for (j = 0; j < m; j++)
        order[j] = keys[j].slot;
    cp_free(keys);
    cp_view *v = &ix->v;
    ix->built_mem[CP_SEC_LABEL_OFFSETS] = off;
    ix->built_mem[CP_SEC_LABEL_DATA] = data;
    ix->built_mem[CP_SEC_LABEL_ORDER] = order;
    v->label_offsets = off;
    v->label_data = data;
    v->label_data_len = total;
    v->label_order = order;
    v->n_labelled = m;
    v->sec[CP_SEC_LABEL_OFFSETS] = (cp_section){off, (n + 1) * sizeof *off};
    v->sec[CP_SEC_LABEL_DATA] = (cp_section){data, total};
    v->sec[CP_SEC_LABEL_ORDER] = (cp_section){order, m * sizeof *order};
    return COPSE_OK;
}

/* Label of a slot in the view, or NULL. Offsets come from a file: checked before use. */
static const char *view_label(const cp_view *v, uint64_t slot, size_t *len)
{
    if (!v->label_offsets || slot >= v->n_items)
        return NULL;
    uint64_t a = v->label_offsets[slot], e = v->label_offsets[slot + 1];
    if (e <= a + 1 || e > v->label_data_len || v->label_data[e - 1] != '\0')
        return NULL;
    *len = (size_t)(e - a - 1);
    return v->label_data + a;
}

int cp_labels_find(const cp_view *v, const char *label, uint64_t *slot)
{
    uint64_t lo = 0, hi = v->n_labelled;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, s = v->label_order[mid];
        size_t len;
        const char *l = view_label(v, s, &len);
        if (!l)
            return 0;
        if (strcmp(l, label) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo >= v->n_labelled)
        return 0;
    size_t len;
    const char *l = view_label(v, v->label_order[lo], &len);
    if (!l || strcmp(l, label) != 0)
        return 0;
    *slot = v->label_order[lo];
    return 1;
}

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
    if (ix->state == COPSE_STATE_ADDING) {
        if (!cp_builder_slot(&ix->b, id, &slot))
            return COPSE_ERR_NOTFOUND;
        if (ix->b.labels && ix->b.labels[slot]) {
            *label = ix->b.labels[slot];
            l = strlen(*label);
        }
    } else {
        if (!cp_view_slot(&ix->v, id, &slot))
            return COPSE_ERR_NOTFOUND;
        *label = view_label(&ix->v, slot, &l);
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
    if (!ix->v.label_offsets || !cp_labels_find(&ix->v, label, &slot) || slot >= ix->v.n_items)
        return COPSE_ERR_NOTFOUND;
    *id = cp_view_id(&ix->v, slot);
    return COPSE_OK;
}
