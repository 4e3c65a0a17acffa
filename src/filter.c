/*
 * filter.c: the filters a query can take (which items it may return), and what search.c asks
 * of them: may this slot be returned, about how many slots are allowed, and all of them.
 *
 * An id or tag filter is resolved once, when it is made, into a set of slots of the index it
 * was made for: a sorted array when that is no larger than a bitmap (count * 32 <=
 * n_items bits), else a bitmap. Resolving once keeps queries free of id lookups, and the exact count
 * it gives is what lets search.c choose, per query, between scanning only the allowed items
 * (a true top-k, cheap when few pass) and walking the graph through disallowed items.
 *
 * The set describes one binding of the view (its generation) and, for tags, the tags as they
 * were (the base's tags_changes). Each query binds the filter to the view it searches
 * (cp_filter_bind): while the set still describes it, the set is used; when the view is a
 * later one of the same index (a compaction rebinds the base; the delta of items added after
 * build is a view of its own) or a tag changed since, the query reads the condition per slot
 * instead: the slot's id among the ids asked for (IDS, a binary search), or the slot's tags
 * now (TAGS, one array read). So tag changes show at once and a compaction breaks no filter;
 * a filter of another index (its lineage, the build or load the view descends from) is
 * refused instead of naming the wrong items.
 *
 * A callback filter, or a condition read per slot, has no size until asked:
 * cp_filter_estimate tries it on a fixed sample of slots spread by a hash over the whole
 * index. A callback is the caller's predicate, called on the querying threads, possibly at
 * once from a batch's workers.
 *
 * Changes after build (live.c) wrap the bound filter, per query, in a LIVE filter that also
 * refuses deleted slots; where base and added items are walked as one view, a PARTS filter
 * holds one such filter per part and hands each slot to its part's.
 *
 * Rejected: binding an id list lazily to each index it meets (a cache in the filter would be
 * written by concurrent queries, needing a lock on the query path, and a per-query binding
 * costs a lookup per id for every query).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SAMPLE 256 /* callback slots sampled to estimate its size: +-3% at one sigma */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* A set filter from count distinct ascending slots: kept as they are when the array is the
 * smaller form, else turned into a bitmap (slots is then freed). */
static int make_set(const cp_view *v, uint32_t *slots, uint64_t count, copse_filter **out)
{
    copse_filter *f = cp_calloc(1, sizeof *f);
    if (!f) {
        cp_free(slots);
        return COPSE_ERR_NOMEM;
    }
    f->generation = v->generation;
    f->lineage = v->lineage;
    f->tags_changes = v->tags_changes;
    f->count = count;
    if (count * 32 <= v->n_items) {
        f->kind = CP_FILTER_SLOTS;
        f->slots = slots;
        *out = f;
        return COPSE_OK;
    }
    uint64_t *bits = cp_calloc((size_t)((v->n_items + 63) / 64), sizeof *bits);
    if (!bits) {
        cp_free(slots);
        cp_free(f);
        return COPSE_ERR_NOMEM;
    }
    for (uint64_t i = 0; i < count; i++)
        bits[slots[i] >> 6] |= 1ull << (slots[i] & 63);
    cp_free(slots);
    f->kind = CP_FILTER_BITMAP;
    f->bits = bits;
    *out = f;
    return COPSE_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The ids asked for, ascending and distinct: what items added after build are matched by. */
static int64_t *sorted_ids(const int64_t *ids, int64_t n, uint64_t *n_out)
{
    int64_t *c = cp_mallocarray(n > 0 ? (size_t)n : 1, sizeof *c);
    if (!c)
        return NULL;
    if (n > 0)
        memcpy(c, ids, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_i64);
    uint64_t j = 0;
    for (int64_t i = 0; i < n; i++)
        if (j == 0 || c[i] != c[j - 1])
            c[j++] = c[i];
    *n_out = j;
    return c;
}

int cp_filter_new_ids(const cp_view *v, const int64_t *ids, int64_t n, copse_filter **out)
{
    uint64_t n_ids = 0;
    int64_t *asked = sorted_ids(ids, n, &n_ids);
    uint32_t *slots = cp_mallocarray(n > 0 ? (size_t)n : 1, sizeof *slots);
    if (!slots || !asked) {
        cp_free(slots);
        cp_free(asked);
        return COPSE_ERR_NOMEM;
    }
    uint64_t count = 0, slot;
    int sorted = 1;
    for (int64_t i = 0; i < n; i++) {
        if (!cp_view_slot(v, ids[i], &slot))
            continue; /* not in this index: allows nothing (copse.h says so) */
        if (count && slot <= slots[count - 1])
            sorted = 0;
        slots[count++] = (uint32_t)slot;
    }
    if (!sorted) {
        qsort(slots, count, sizeof *slots, cmp_u32);
        uint64_t j = 0;
        for (uint64_t i = 0; i < count; i++)
            if (j == 0 || slots[i] != slots[j - 1])
                slots[j++] = slots[i];
        count = j;
    }
    int rc = make_set(v, slots, count, out);
    if (rc != COPSE_OK) {
        cp_free(asked);
        return rc;
    }
    (*out)->ids = asked;
    (*out)->n_ids = n_ids;
    return COPSE_OK;
}

int cp_filter_new_tags(const cp_view *v, uint64_t any_mask, uint64_t all_mask, copse_filter **out)
{
    uint64_t count = 0, n = v->n_items;
    for (uint64_t s = 0; s < n; s++)
        count += cp_tags_match(v->tags ? v->tags[s] : 0, any_mask, all_mask);
    uint32_t *slots = cp_mallocarray(count ? count : 1, sizeof *slots);
    if (!slots)
        return COPSE_ERR_NOMEM;
    for (uint64_t s = 0, j = 0; s < n; s++)
        if (cp_tags_match(v->tags ? v->tags[s] : 0, any_mask, all_mask))
            slots[j++] = (uint32_t)s;
    int rc = make_set(v, slots, count, out);
    if (rc == COPSE_OK) {
        (*out)->is_tags = 1;
        (*out)->any_mask = any_mask;
        (*out)->all_mask = all_mask;
    }
    return rc;
}

int copse_filter_new_callback(int (*allow)(void *ctx, int64_t id), void *ctx, copse_filter **out)
{
    if (!out)
        return COPSE_ERR_ARG;
    *out = NULL;
    if (!allow)
        return COPSE_ERR_ARG;
    cp_allocator_fix();
    copse_filter *f = cp_calloc(1, sizeof *f);
    if (!f)
        return COPSE_ERR_NOMEM;
    f->kind = CP_FILTER_CALLBACK;
    f->allow = allow;
    f->ctx = ctx;
    *out = f;
    return COPSE_OK;
}

void copse_filter_free(copse_filter *f)
{
    if (!f)
        return;
    cp_free((void *)f->slots);
    cp_free((void *)f->bits);
    cp_free((void *)f->ids);
    cp_free(f);
}

int64_t copse_filter_count(const copse_filter *f)
{
    return f && f->kind != CP_FILTER_CALLBACK ? (int64_t)f->count : -1;
}

int cp_filter_bind(const copse_filter *f, const cp_view *v, copse_filter *room,
                   const copse_filter **out, cp_err *err, const char *what)
{
    *out = f;
    if (f->kind != CP_FILTER_SLOTS && f->kind != CP_FILTER_BITMAP)
        return COPSE_OK; /* a callback fits any index; the others are bound already */
    if (f->lineage != v->lineage)
        return cp_fail(err, COPSE_ERR_ARG, "%s: the filter was made for another index, or for "
                       "this one before it was rebuilt or reloaded", what);
    if (f->generation == v->generation && (!f->is_tags || f->tags_changes == v->tags_changes))
        return COPSE_OK;
    *room = *f;
    room->kind = f->is_tags ? CP_FILTER_TAGS : CP_FILTER_IDS;
    *out = room;
    return COPSE_OK;
}

/* Hits of f among SAMPLE slots of v spread by a hash (all of them when there are fewer),
 * scaled to v's size. */
static uint64_t sample(const copse_filter *f, const cp_view *v)
{
    uint64_t n = v->n_items, hits = 0;
    if (n <= SAMPLE) {
        for (uint64_t s = 0; s < n; s++)
            hits += cp_filter_allows(f, v, (uint32_t)s);
        return hits;
    }
    /* Fibonacci hashing of 0, 1, ... into [0, n): spread over the whole index without
     * following a stride, as ids often follow a pattern of the insertion order. */
    for (uint64_t i = 1; i <= SAMPLE; i++) {
        uint64_t h = i * 0x9e3779b97f4a7c15ull;
        hits += cp_filter_allows(f, v, (uint32_t)(((unsigned __int128)h * n) >> 64));
    }
    return hits * n / SAMPLE;
}

/* An upper bound of the items f allows, when f lists them (a set, ids, or tombstones over
 * either: they only take items away); 0 when only a sample can tell. */
static int listed_count(const copse_filter *f, const cp_view *v, uint64_t *count)
{
    switch (f->kind) {
    case CP_FILTER_SLOTS:
    case CP_FILTER_BITMAP:
        *count = f->count;
        return 1;
    case CP_FILTER_IDS:
        /* Distinct ids: no more of them can be allowed, and when they are few a sample
         * would mostly miss them. */
        *count = f->n_ids;
        return f->n_ids < v->n_items;
    case CP_FILTER_LIVE: /* tombstones alone: their part's live items, exactly */
        if (!f->inner)
            *count = f->count;
        return !f->inner || listed_count(f->inner, v, count);
    case CP_FILTER_CALLBACK:
    case CP_FILTER_TAGS:
    case CP_FILTER_PARTS:
        break;
    }
    return 0;
}

uint64_t cp_filter_estimate(const copse_filter *f, const cp_view *v)
{
    uint64_t count;
    if (f->kind == CP_FILTER_PARTS) {
        uint64_t sum = 0;
        for (int p = 0; p < 2; p++)
            sum += f->part[p] ? cp_filter_estimate(f->part[p], f->part_view[p])
                              : f->part_view[p]->n_items;
        return sum;
    }
    return listed_count(f, v, &count) ? count : sample(f, v);
}

/* The allowed slots, ascending, when f lists them so that not every slot needs a test: a set,
 * few ids in a view that can look ids up, or tombstones over either; 0 otherwise. */
static int collect_listed(const copse_filter *f, const cp_view *v, uint32_t *out, uint64_t *count)
{
    uint64_t c = 0, slot;
    switch (f->kind) {
    case CP_FILTER_SLOTS:
        memcpy(out, f->slots, f->count * sizeof *out);
        c = f->count;
        break;
    case CP_FILTER_BITMAP:
        for (uint64_t w = 0; w < (v->n_items + 63) / 64; w++)
            for (uint64_t bits = f->bits[w]; bits; bits &= bits - 1)
                out[c++] = (uint32_t)(w * 64 + (uint64_t)__builtin_ctzll(bits));
        break;
    case CP_FILTER_IDS:
        if ((v->slot_ids && !v->id_order) || f->n_ids >= v->n_items / 16)
            return 0;
        for (uint64_t i = 0; i < f->n_ids; i++)
            if (cp_view_slot(v, f->ids[i], &slot))
                out[c++] = (uint32_t)slot;
        qsort(out, c, sizeof *out, cmp_u32); /* distinct ids: distinct slots */
        break;
    case CP_FILTER_LIVE: {
        uint64_t listed;
        if (!f->inner || !collect_listed(f->inner, v, out, &listed))
            return 0;
        for (uint64_t i = 0; i < listed; i++)
            if (!cp_filter_dead(f, out[i]))
                out[c++] = out[i];
        break;
    }
    case CP_FILTER_CALLBACK:
    case CP_FILTER_TAGS:
    case CP_FILTER_PARTS:
        return 0;
    }
    *count = c;
    return 1;
}

/* TAGS, alone or past tombstones (dead, may be NULL): one pass over the tag array with the
 * test inlined and no branch per slot. The generic loop below, a call through the kinds per
 * slot, made the exact road of a retagged index 3 to 100 times slower than the slot set's on
 * Fashion-MNIST (bench/FILTERED.md). */
static uint64_t collect_tags(const copse_filter *f, const uint64_t *dead, const cp_view *v,
                             uint32_t *out)
{
    uint64_t count = 0, any = f->any_mask, all = f->all_mask;
    const uint64_t *tags = v->tags;
    for (uint64_t s = 0; s < v->n_items; s++) {
        out[count] = (uint32_t)s;
        count += (uint64_t)(cp_tags_match(tags[s], any, all) &
                            !(dead && ((dead[s >> 6] >> (s & 63)) & 1)));
    }
    return count;
}

uint64_t cp_filter_collect(const copse_filter *f, const cp_view *v, uint32_t *out)
{
    uint64_t count = 0;
    if (f->kind == CP_FILTER_PARTS) { /* each part's slots, the second's after split */
        for (int p = 0; p < 2; p++) {
            const cp_view *pv = f->part_view[p];
            uint64_t at = count;
            if (f->part[p])
                count += cp_filter_collect(f->part[p], pv, out + at);
            else
                for (uint64_t s = 0; s < pv->n_items; s++)
                    out[count++] = (uint32_t)s;
            for (uint64_t i = at; p && i < count; i++)
                out[i] += (uint32_t)f->split;
        }
        return count;
    }
    if (collect_listed(f, v, out, &count))
        return count;
    const copse_filter *t = f->kind == CP_FILTER_LIVE ? f->inner : f;
    if (v->tags && t && t->kind == CP_FILTER_TAGS)
        return collect_tags(t, f->kind == CP_FILTER_LIVE ? f->dead : NULL, v, out);
    for (uint64_t s = 0; s < v->n_items; s++)
        if (cp_filter_allows(f, v, (uint32_t)s))
            out[count++] = (uint32_t)s;
    return count;
}
