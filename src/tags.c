/*
 * tags.c: the producer of the tag section: each item's set of small integer tags (0..63) as
 * one 64-bit mask per slot, bit t for tag t, so a tag filter (filter.c) tests an item with
 * two ANDs and the section maps straight from the file. Written only when some item has a
 * tag: an index without tags pays nothing, and files without tags stay readable by readers
 * of format 1.1.
 */
#include <string.h>

#include "internal.h"

int cp_tags_build(const cp_builder *b, cp_sections *out, cp_err *err)
{
    uint64_t n = b->n, s = 0;
    while (b->tags && s < n && b->tags[s] == 0)
        s++;
    if (!b->tags || s == n)
        return COPSE_OK;
    uint64_t *tags = cp_mallocarray(n, sizeof *tags);
    if (!tags)
        return cp_fail(err, COPSE_ERR_NOMEM, "build: no memory for tags");
    memcpy(tags, b->tags, n * sizeof *tags);
    cp_emit(out, CP_SEC_TAGS, tags, n * sizeof *tags);
    return COPSE_OK;
}
