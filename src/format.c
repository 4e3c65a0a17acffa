/*
 * format.c: the index file (docs/FORMAT.md is the byte-level spec; keep the two together).
 *
 * A 512-byte little-endian header (magic, byte-order mark, format version, geometry, counts,
 * a table of up to 16 sections and its own CRC32C) followed by 64-byte-aligned sections.
 * Loading checks everything that can be checked without reading the sections: the header's
 * checksum, every section's bounds against the real length, every size against the counts,
 * and the roots. What the sections contain is checked during queries wherever a value is
 * used as an index (search.c), and completely by copse_verify (verify.c).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const unsigned char magic[8] = {0x89, 'C', 'O', 'P', 'S', 'E', '\r', '\n'};
#define BYTE_ORDER_MARK 0x0A0B0C0Du
#define TABLE_AT 128
#define ENTRY_SIZE 24

static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint32_t cp_table_count(const unsigned char *img) { return get32(img + 104); }

cp_table_entry cp_table_get(const unsigned char *img, uint32_t i)
{
    const unsigned char *e = img + TABLE_AT + i * ENTRY_SIZE;
    return (cp_table_entry){get32(e), get32(e + 4), get64(e + 8), get64(e + 16)};
}

void cp_layout_compute(const cp_view *v, cp_layout *lay)
{
    uint64_t pos = CP_HEADER_SIZE;
    memset(lay, 0, sizeof *lay);
    for (int k = 1; k <= CP_SEC_KIND_MAX; k++) {
        if (v->sec[k].length == 0)
            continue;
        pos = cp_align_up(pos);
        lay->offset[k] = pos;
        pos += v->sec[k].length;
    }
    lay->file_size = pos;
}

void cp_header_encode(const copse_index *ix, const cp_layout *lay, const uint32_t *crcs,
                      unsigned char *h)
{
    const cp_view *v = &ix->v;
    memset(h, 0, CP_HEADER_SIZE);
    memcpy(h, magic, 8);
    put32(h + 8, BYTE_ORDER_MARK);
    put16(h + 12, COPSE_FORMAT_MAJOR);
    put16(h + 14, COPSE_FORMAT_MINOR);
    put32(h + 16, CP_HEADER_SIZE);
    put32(h + 24, (uint32_t)ix->g.metric);
    put32(h + 28, (uint32_t)ix->g.dim);
    put32(h + 32, (uint32_t)ix->built_leaf_size);
    put32(h + 36, (uint32_t)ix->g.node_stride);
    put64(h + 40, v->n_items);
    put64(h + 48, v->n_trees);
    put64(h + 56, v->n_split);
    put64(h + 64, v->n_leaves);
    put64(h + 72, v->n_leaf_items);
    put64(h + 80, ix->seed);
    put64(h + 88, (uint64_t)v->max_id);
    put64(h + 96, lay->file_size);
    put64(h + 112, v->n_labelled);
    put32(h + 120, v->graph_degree);
    uint32_t n = 0;
    for (int k = 1; k <= CP_SEC_KIND_MAX; k++) {
        if (v->sec[k].length == 0)
            continue;
        unsigned char *e = h + TABLE_AT + n++ * ENTRY_SIZE;
        put32(e, (uint32_t)k);
        put32(e + 4, crcs[k]);
        put64(e + 8, lay->offset[k]);
        put64(e + 16, v->sec[k].length);
    }
    put32(h + 104, n);
    put32(h + 20, cp_crc32c(0, h, CP_HEADER_SIZE));
}

/* Where an image goes: a file (pwrite) or a caller's buffer (memcpy). The gaps between
 * sections must read as zeros: a new file's holes do, a buffer is cleared first. */
typedef struct image_sink {
    int fd;
    const char *name;
    unsigned char *buf;
} image_sink;

static int sink_put(copse_index *ix, const image_sink *out, const void *data, size_t len, uint64_t off)
{
    if (out->buf) {
        memcpy(out->buf + off, data, len);
        return COPSE_OK;
    }
    return cp_io_pwrite_all(out->fd, data, len, off, out->name, &ix->err);
}

static int emit_image(copse_index *ix, const image_sink *out, int vectors_in_place)
{
    cp_layout lay;
    uint32_t crcs[CP_SEC_KIND_MAX + 1] = {0};
    unsigned char hdr[CP_HEADER_SIZE];
    cp_layout_compute(&ix->v, &lay);
    for (int k = 1; k <= CP_SEC_KIND_MAX; k++) {
        const cp_section *s = &ix->v.sec[k];
        if (s->length == 0)
            continue;
        crcs[k] = cp_crc32c(0, s->data, s->length);
        if (k == CP_SEC_VECTORS && vectors_in_place)
            continue;
        int rc = sink_put(ix, out, s->data, s->length, lay.offset[k]);
        if (rc != COPSE_OK)
            return rc;
    }
    if (!out->buf) {
        int rc = cp_io_truncate(out->fd, lay.file_size, out->name, &ix->err);
        if (rc != COPSE_OK)
            return rc;
    }
    cp_header_encode(ix, &lay, crcs, hdr);
    return sink_put(ix, out, hdr, sizeof hdr, 0);
}

int cp_write_image(copse_index *ix, int fd, const char *name, int vectors_in_place)
{
    image_sink out = {fd, name, NULL};
    return emit_image(ix, &out, vectors_in_place);
}

/* ---- reading ---- */

typedef struct hdr_fields {
    uint32_t metric, dim, leaf_size, node_stride, n_sections, graph_degree;
    uint64_t n_items, n_trees, n_split, n_leaves, n_leaf_items, seed, file_size, n_labelled;
    int64_t max_id;
    uint16_t major, minor;
} hdr_fields;

static int check_header(copse_index *ix, const unsigned char *h, uint64_t len, hdr_fields *f)
{
    cp_err *err = &ix->err;
    if (len < 8 || memcmp(h, magic, 8) != 0)
        return cp_fail(err, COPSE_ERR_NOTCOPSE, "not a copse index (no copse magic number)");
    if (len < CP_HEADER_SIZE)
        return cp_fail(err, COPSE_ERR_CORRUPT, "truncated: %llu bytes, less than the %d-byte "
                       "header", (unsigned long long)len, CP_HEADER_SIZE);
    uint32_t bom = get32(h + 8);
    if (bom == __builtin_bswap32(BYTE_ORDER_MARK))
        return cp_fail(err, COPSE_ERR_VERSION, "index written in big-endian byte order; this "
                       "library reads little-endian files");
    if (bom != BYTE_ORDER_MARK)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: bad byte-order mark 0x%08x", bom);
    f->major = get16(h + 12);
    f->minor = get16(h + 14);
    if (f->major > COPSE_FORMAT_MAJOR)
        return cp_fail(err, COPSE_ERR_VERSION, "format version %u.%u is newer than this "
                       "library's %d.%d", f->major, f->minor, COPSE_FORMAT_MAJOR, COPSE_FORMAT_MINOR);
    if (f->major == 0 || get32(h + 16) != CP_HEADER_SIZE)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: bad version %u or header size %u",
                       f->major, get32(h + 16));
    unsigned char copy[CP_HEADER_SIZE];
    memcpy(copy, h, CP_HEADER_SIZE);
    put32(copy + 20, 0);
    if (cp_crc32c(0, copy, CP_HEADER_SIZE) != get32(h + 20))
        return cp_fail(err, COPSE_ERR_CORRUPT, "header checksum mismatch");
    f->metric = get32(h + 24);
    f->dim = get32(h + 28);
    f->leaf_size = get32(h + 32);
    f->node_stride = get32(h + 36);
    f->n_items = get64(h + 40);
    f->n_trees = get64(h + 48);
    f->n_split = get64(h + 56);
    f->n_leaves = get64(h + 64);
    f->n_leaf_items = get64(h + 72);
    f->seed = get64(h + 80);
    f->max_id = (int64_t)get64(h + 88);
    f->file_size = get64(h + 96);
    f->n_sections = get32(h + 104);
    f->n_labelled = get64(h + 112);
    f->graph_degree = get32(h + 120);
    if (!cp_metric_valid((int)f->metric) || f->dim < 1 || f->dim > COPSE_MAX_DIM)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: metric %u, dimension %u", f->metric, f->dim);
    /* An empty index has no trees and no sections; any other has both. */
    int empty = f->n_items == 0;
    if (f->n_items > COPSE_MAX_ITEMS || (f->n_trees == 0) != empty || f->n_trees > COPSE_MAX_TREES ||
        f->n_sections > CP_MAX_SECTIONS || (f->n_sections == 0) != empty ||
        f->max_id < (empty ? -1 : 0) || (empty && f->max_id != -1) || f->n_labelled > f->n_items)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: %llu items, %llu trees, %u sections",
                       (unsigned long long)f->n_items, (unsigned long long)f->n_trees, f->n_sections);
    if (f->file_size != len)
        return cp_fail(err, COPSE_ERR_CORRUPT, "%s: the file has %llu bytes, its header says %llu",
                       f->file_size > len ? "truncated" : "trailing bytes",
                       (unsigned long long)len, (unsigned long long)f->file_size);
    return COPSE_OK;
}

/* Expected length of each section kind given the header, or UINT64_MAX for "any". */
static int expected_lengths(const cp_geom *g, const hdr_fields *f, uint64_t *want)
{
    int ok = cp_mul_add(f->n_items, g->row_bytes, 0, &want[CP_SEC_VECTORS]) &&
             cp_mul_add(f->n_items, 4, 0, &want[CP_SEC_NORMS]) &&
             cp_mul_add(f->n_items, 8, 0, &want[CP_SEC_SLOT_IDS]) &&
             cp_mul_add(f->n_items, 4, 0, &want[CP_SEC_ID_ORDER]) &&
             cp_mul_add(f->n_split, g->node_stride, 0, &want[CP_SEC_NODES]) &&
             cp_mul_add(f->n_leaves, sizeof(cp_leaf), 0, &want[CP_SEC_LEAVES]) &&
             cp_mul_add(f->n_leaf_items, 4, 0, &want[CP_SEC_LEAF_ITEMS]) &&
             cp_mul_add(f->n_trees, 8, 0, &want[CP_SEC_ROOTS]) &&
             cp_mul_add(f->n_items + 1, 8, 0, &want[CP_SEC_LABEL_OFFSETS]) &&
             cp_mul_add(f->n_labelled, 4, 0, &want[CP_SEC_LABEL_ORDER]) &&
             cp_mul_add(f->n_items, (uint64_t)f->graph_degree * 4, 0, &want[CP_SEC_GRAPH]);
    want[CP_SEC_LABEL_DATA] = UINT64_MAX;
    return ok;
}

static int read_sections(copse_index *ix, const unsigned char *img, uint64_t len,
                         const hdr_fields *f, const cp_geom *g)
{
    cp_err *err = &ix->err;
    uint64_t want[CP_SEC_KIND_MAX + 1] = {0};
    if (!expected_lengths(g, f, want))
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: counts overflow");
    cp_view *v = &ix->v;
    for (uint32_t i = 0; i < f->n_sections; i++) {
        cp_table_entry e = cp_table_get(img, i);
        uint32_t kind = e.kind;
        uint64_t off = e.offset, slen = e.length;
        /* Every entry, known or not, must lie in the file: verify checksums them all. */
        if (off % CP_ALIGN || off < CP_HEADER_SIZE || off > len || slen > len - off)
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %u at offset %llu, %llu bytes, "
                           "is outside the %llu-byte file or misaligned", kind,
                           (unsigned long long)off, (unsigned long long)slen, (unsigned long long)len);
        if (kind == 0 || kind > CP_SEC_KIND_MAX) {
            if (f->minor > COPSE_FORMAT_MINOR)
                continue; /* a section from a newer minor version: readable without it */
            return cp_fail(err, COPSE_ERR_CORRUPT, "section table entry %u: unknown kind %u", i, kind);
        }
        if (v->sec[kind].length)
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %u appears twice", kind);
        if (want[kind] != UINT64_MAX && slen != want[kind])
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %u has %llu bytes, expected %llu",
                           kind, (unsigned long long)slen, (unsigned long long)want[kind]);
        if (slen == 0)
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %u is empty", kind);
        v->sec[kind] = (cp_section){img + off, slen};
    }
    static const int required[] = {CP_SEC_VECTORS, CP_SEC_LEAVES, CP_SEC_LEAF_ITEMS, CP_SEC_ROOTS};
    for (size_t i = 0; f->n_items && i < sizeof required / sizeof *required; i++)
        if (!v->sec[required[i]].length)
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %d is missing", required[i]);
    if (f->n_split && !v->sec[CP_SEC_NODES].length)
        return cp_fail(err, COPSE_ERR_CORRUPT, "split node section is missing");
    if (f->n_items && cp_metric_has_norms(g->metric) != (v->sec[CP_SEC_NORMS].length != 0))
        return cp_fail(err, COPSE_ERR_CORRUPT, "norm section %s for metric %s",
                       v->sec[CP_SEC_NORMS].length ? "present" : "missing", copse_metric_name(g->metric));
    if (!v->sec[CP_SEC_SLOT_IDS].length != !v->sec[CP_SEC_ID_ORDER].length)
        return cp_fail(err, COPSE_ERR_CORRUPT, "id sections incomplete");
    int nl = !!v->sec[CP_SEC_LABEL_OFFSETS].length + !!v->sec[CP_SEC_LABEL_DATA].length +
             !!v->sec[CP_SEC_LABEL_ORDER].length;
    if (nl != 0 && nl != 3)
        return cp_fail(err, COPSE_ERR_CORRUPT, "label sections incomplete");
    if (nl == 0 && f->n_labelled)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header counts labels but there are none");
    if (f->graph_degree > CP_MAX_GRAPH_DEGREE || (f->graph_degree != 0) != (v->sec[CP_SEC_GRAPH].length != 0))
        return cp_fail(err, COPSE_ERR_CORRUPT, "graph degree %u with %s graph section", f->graph_degree,
                       v->sec[CP_SEC_GRAPH].length ? "a" : "no");
    return COPSE_OK;
}

static void fill_view(cp_view *v, const hdr_fields *f)
{
    v->n_items = f->n_items;
    v->n_split = f->n_split;
    v->n_leaves = f->n_leaves;
    v->n_leaf_items = f->n_leaf_items;
    v->n_trees = f->n_trees;
    v->n_labelled = f->n_labelled;
    v->max_id = f->max_id;
    v->vectors = v->sec[CP_SEC_VECTORS].data;
    v->norms = v->sec[CP_SEC_NORMS].data;
    v->slot_ids = v->sec[CP_SEC_SLOT_IDS].data;
    v->id_order = v->sec[CP_SEC_ID_ORDER].data;
    v->nodes = v->sec[CP_SEC_NODES].data;
    v->leaves = v->sec[CP_SEC_LEAVES].data;
    v->leaf_items = v->sec[CP_SEC_LEAF_ITEMS].data;
    v->roots = v->sec[CP_SEC_ROOTS].data;
    v->label_offsets = v->sec[CP_SEC_LABEL_OFFSETS].data;
    v->label_data = v->sec[CP_SEC_LABEL_DATA].data;
    v->label_data_len = v->sec[CP_SEC_LABEL_DATA].length;
    v->label_order = v->sec[CP_SEC_LABEL_ORDER].data;
    v->graph = v->sec[CP_SEC_GRAPH].data;
    v->graph_degree = f->graph_degree;
}

static int check_roots(copse_index *ix)
{
    const cp_view *v = &ix->v;
    for (uint64_t t = 0; t < v->n_trees; t++) {
        uint64_t r = v->roots[t];
        int ok = (r & CP_LEAF_FLAG) ? (r & ~CP_LEAF_FLAG) < v->n_leaves : r < v->n_split;
        if (!ok)
            return cp_fail(&ix->err, COPSE_ERR_CORRUPT, "tree %llu: root reference 0x%llx out of "
                           "bounds", (unsigned long long)t, (unsigned long long)r);
    }
    if (v->label_offsets && v->label_offsets[v->n_items] != v->label_data_len)
        return cp_fail(&ix->err, COPSE_ERR_CORRUPT, "label offsets end at %llu, data has %llu bytes",
                       (unsigned long long)v->label_offsets[v->n_items],
                       (unsigned long long)v->label_data_len);
    return COPSE_OK;
}

int cp_image_open(copse_index *ix, const unsigned char *img, uint64_t len, int adopt)
{
    hdr_fields f = {0};
    cp_geom g;
    int rc = check_header(ix, img, len, &f);
    if (rc != COPSE_OK)
        return rc;
    cp_geom_init(&g, (copse_metric)f.metric, (int)f.dim);
    if (!adopt && (int)f.dim != ix->g.dim)
        return cp_fail(&ix->err, COPSE_ERR_DIM, "the index file has dimension %u, this index %d",
                       f.dim, ix->g.dim);
    if (!adopt && (copse_metric)f.metric != ix->g.metric)
        return cp_fail(&ix->err, COPSE_ERR_METRIC, "the index file uses metric %s, this index %s",
                       copse_metric_name((copse_metric)f.metric), copse_metric_name(ix->g.metric));
    if (f.node_stride != g.node_stride || f.leaf_size < 1 || f.leaf_size > 65535)
        return cp_fail(&ix->err, COPSE_ERR_CORRUPT, "header: node size %u (expected %zu), leaf "
                       "size %u", f.node_stride, g.node_stride, f.leaf_size);
    memset(&ix->v, 0, sizeof ix->v);
    if ((rc = read_sections(ix, img, len, &f, &g)) != COPSE_OK)
        return rc;
    fill_view(&ix->v, &f);
    if ((rc = check_roots(ix)) != COPSE_OK)
        return rc;
    ix->g = g;
    ix->seed = f.seed;
    ix->built_leaf_size = (int)f.leaf_size;
    ix->from_file = 1;
    ix->image = img;
    ix->image_len = len;
    ix->file_major = f.major;
    ix->file_minor = f.minor;
    return COPSE_OK;
}

/* ---- the public calls ---- */

static const char *const section_names[CP_SEC_KIND_MAX + 1] = {
    NULL, "vectors", "norms", "slot_ids", "id_order", "nodes", "leaves", "leaf_items", "roots",
    "label_offsets", "label_data", "label_order", "graph"};

/* Kind of the i-th present section in file order, or 0. */
static int nth_section(const cp_view *v, int i)
{
    for (int k = 1; k <= CP_SEC_KIND_MAX; k++)
        if (v->sec[k].length && i-- == 0)
            return k;
    return 0;
}

int copse_n_sections(const copse_index *ix)
{
    int n = 0;
    while (ix && ix->state != COPSE_STATE_ADDING && nth_section(&ix->v, n))
        n++;
    return n;
}

int copse_section_info(const copse_index *ix, int i, const char **name, uint64_t *offset,
                       uint64_t *length, uint32_t *checksum)
{
    if (!ix || i < 0 || i >= copse_n_sections(ix))
        return COPSE_ERR_ARG;
    int kind = nth_section(&ix->v, i);
    const cp_section *s = &ix->v.sec[kind];
    cp_layout lay;
    cp_layout_compute(&ix->v, &lay);
    if (name)
        *name = section_names[kind];
    /* A loaded file's table is the truth (a newer minor may have placed sections elsewhere). */
    uint64_t off = ix->image ? (uint64_t)((const unsigned char *)s->data - ix->image) : lay.offset[kind];
    if (offset)
        *offset = off;
    if (length)
        *length = s->length;
    if (checksum) {
        *checksum = 0;
        for (uint32_t e = 0; ix->image && e < cp_table_count(ix->image); e++)
            if (cp_table_get(ix->image, e).kind == (uint32_t)kind)
                *checksum = cp_table_get(ix->image, e).crc;
        if (!ix->image)
            *checksum = cp_crc32c(0, s->data, s->length);
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
    if (ix->image)
        rc = cp_io_pwrite_all(fd, ix->image, ix->image_len, 0, tmp, &ix->err);
    else
        rc = cp_write_image(ix, fd, tmp, 0);
    if (rc == COPSE_OK)
        rc = cp_io_commit(fd, tmp, path, &ix->err);
    else
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
    if (ix->image) {
        memcpy(buf, ix->image, ix->image_len);
        return COPSE_OK;
    }
    memset(buf, 0, size);
    image_sink out = {-1, NULL, buf};
    return emit_image(ix, &out, 0);
}

static int check_loadable(copse_index *ix, const char *what)
{
    if (ix->state != COPSE_STATE_ADDING || ix->b.n > 0 || ix->b.disk_fd >= 0)
        return cp_fail(&ix->err, COPSE_ERR_STATE, "%s: the index must be empty (unload first)", what);
    return COPSE_OK;
}

static int load_mapped(copse_index *ix, void *map, size_t len, int adopt)
{
    ix->map_addr = map;
    ix->map_len = len;
    int rc = cp_image_open(ix, map, len, adopt);
    if (rc != COPSE_OK) {
        cp_release_view(ix);
        return rc;
    }
    ix->state = COPSE_STATE_LOADED;
    return COPSE_OK;
}

int copse_load(copse_index *ix, const char *path, int prefault)
{
    if (!ix)
        return COPSE_ERR_ARG;
    int rc = check_loadable(ix, "load");
    if (rc != COPSE_OK)
        return rc;
    if (!path)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "load: path is NULL");
    void *map;
    size_t len;
    if ((rc = cp_io_map_file(path, prefault, &map, &len, &ix->err)) != COPSE_OK)
        return rc;
    return load_mapped(ix, map, len, 0);
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
    const unsigned char *img = buf;
    if ((uintptr_t)buf % 8) {
        /* Sections start at multiples of 64 in the image; their 64-bit fields need the image
         * itself 8-byte aligned (SIMD loads are unaligned anyway). */
        if (!(ix->buf_copy = cp_malloc(len)))
            return cp_fail(&ix->err, COPSE_ERR_NOMEM, "load_buffer: no memory to align %zu bytes", len);
        memcpy(ix->buf_copy, buf, len);
        img = ix->buf_copy;
    }
    rc = cp_image_open(ix, img ? img : (const unsigned char *)"", len, 0);
    if (rc != COPSE_OK) {
        cp_release_view(ix);
        return rc;
    }
    ix->state = COPSE_STATE_LOADED;
    return COPSE_OK;
}

int copse_open(const char *path, int prefault, copse_index **out)
{
    if (!out)
        return COPSE_ERR_ARG;
    int rc = copse_new(1, COPSE_EUCLIDEAN, out);
    if (rc != COPSE_OK)
        return rc;
    copse_index *ix = *out;
    if (!path)
        return cp_fail(&ix->err, COPSE_ERR_ARG, "open: path is NULL");
    void *map;
    size_t len;
    if ((rc = cp_io_map_file(path, prefault, &map, &len, &ix->err)) != COPSE_OK)
        return rc;
    return load_mapped(ix, map, len, 1);
}
