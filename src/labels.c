/*
 * labels.c: the producer of the label sections: optional strings attached to items (word2vec
 * words, file names), stored as one blob with per-slot offsets, plus the labelled slots sorted
 * by (label, id) so a label is found by binary search in the mapped file (view.c) without
 * building anything at load.
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

static int labels_fail(cp_err *err, uint64_t *off, char *data, uint32_t *order, label_key *keys)
{
    cp_free(off);
    cp_free(data);
    cp_free(order);
    cp_free(keys);
    return cp_fail(err, COPSE_ERR_NOMEM, "build: no memory for labels");
}

int cp_labels_build(const cp_builder *b, cp_sections *out, cp_err *err)
{
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
        return labels_fail(err, off, data, order, keys);
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
    cp_emit(out, CP_SEC_LABEL_OFFSETS, off, (n + 1) * sizeof *off);
    cp_emit(out, CP_SEC_LABEL_DATA, data, total);
    cp_emit(out, CP_SEC_LABEL_ORDER, order, m * sizeof *order);
    out->meta.n_labelled = m;
    return COPSE_OK;
}

