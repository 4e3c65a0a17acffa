/*
 * format.c: the index file (docs/FORMAT.md is the byte-level spec; keep the two together).
 * It only turns a file image into sections and sections into an image: it knows nothing of
 * handles or of who produced the sections.
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

static const char *const section_names[CP_SEC_KIND_MAX + 1] = {
    NULL, "vectors", "norms", "slot_ids", "id_order", "nodes", "leaves", "leaf_items", "roots",
    "label_offsets", "label_data", "label_order", "graph", "quant", NULL, NULL, "tags",
    "tombstones", "delta_meta", "delta_vectors", "delta_ids", "delta_norms", "delta_graph",
    "delta_dead", "delta_tags", "delta_leaves"};

/* A file with changes after build is format 2: a 1024-byte header with room for more
 * sections, and a major version 1.x readers refuse (they would return deleted items). */
static int has_changes(const cp_section *sec)
{
    for (int k = CP_FIRST_CHANGE_KIND; k <= CP_SEC_KIND_MAX; k++)
        if (sec[k].length)
            return 1;
    return 0;
}

static uint32_t header_size(const cp_section *sec) { return has_changes(sec) ? CP_HEADER_SIZE_2 : CP_HEADER_SIZE; }

const char *cp_section_name(int kind)
{
    return kind > 0 && kind <= CP_SEC_KIND_MAX ? section_names[kind] : NULL; /* NULL: reserved */
}

uint64_t cp_format_layout(const cp_section *sec, uint64_t *offset)
{
    uint64_t pos = header_size(sec);
    for (int k = 1; k <= CP_SEC_KIND_MAX; k++) {
        if (offset)
            offset[k] = 0;
        if (sec[k].length == 0)
            continue;
        pos = cp_align_up(pos);
        if (offset)
            offset[k] = pos;
        pos += sec[k].length;
    }
    return pos;
}

static void put_delta_meta(const cp_meta *m, unsigned char *p)
{
    memset(p, 0, CP_DELTA_META_SIZE);
    put64(p, m->n_delta);
    put32(p + 8, m->delta_degree);
    put32(p + 12, m->delta_entry);
    uint32_t r;
    memcpy(&r, &m->delta_radius, 4);
    put32(p + 16, r);
    put64(p + 24, m->n_dead);
    put64(p + 32, m->n_delta_dead);
}

void cp_format_delta_meta(const cp_meta *m, unsigned char *out) { put_delta_meta(m, out); }

static void header_encode(const cp_meta *m, const cp_section *sec, const uint64_t *offset,
                          uint64_t file_size, const uint32_t *crcs, cp_crc32c_fn crc,
                          unsigned char *h)
{
    cp_geom g;
    uint32_t size = header_size(sec);
    cp_geom_init(&g, (copse_metric)m->metric, (int)m->dim);
    memset(h, 0, size);
    memcpy(h, magic, 8);
    put32(h + 8, BYTE_ORDER_MARK);
    /* Quantized vectors make a file one minor later (1.3, 2.1), added items linked into the
     * base's graph make it 2.2, and filed in the forest's leaves too 2.3: without them a file
     * is byte for byte what the previous minor wrote. */
    int quant = sec[CP_SEC_QUANT].length != 0;
    put16(h + 12, size == CP_HEADER_SIZE ? 1 : 2);
    int minor = size == CP_HEADER_SIZE          ? CP_FORMAT1_MINOR + quant
                : sec[CP_SEC_DELTA_LEAVES].length ? CP_FORMAT2_FILED_MINOR
                : m->delta_linked                 ? CP_FORMAT2_LINKED_MINOR
                                                  : CP_FORMAT2_MINOR + quant;
    put16(h + 14, (uint16_t)minor);
    put32(h + 16, size);
    put32(h + 24, m->metric);
    put32(h + 28, m->dim);
    put32(h + 32, m->leaf_size);
    put32(h + 36, (uint32_t)g.node_stride);
    put64(h + 40, m->n_items);
    put64(h + 48, m->n_trees);
    put64(h + 56, m->n_split);
    put64(h + 64, m->n_leaves);
    put64(h + 72, m->n_leaf_items);
    put64(h + 80, m->seed);
    put64(h + 88, (uint64_t)m->max_id);
    put64(h + 96, file_size);
    put32(h + 108, (quant ? CP_FLAG_QUANT : 0) | (m->delta_linked ? CP_FLAG_LINKED : 0));
    put64(h + 112, m->n_labelled);
    put32(h + 120, m->graph_degree);
    uint32_t n = 0;
    for (int k = 1; k <= CP_SEC_KIND_MAX; k++) {
        if (sec[k].length == 0)
            continue;
        unsigned char *e = h + TABLE_AT + n++ * ENTRY_SIZE;
        put32(e, (uint32_t)k);
        put32(e + 4, crcs[k]);
        put64(e + 8, offset[k]);
        put64(e + 16, sec[k].length);
    }
    put32(h + 104, n);
    put32(h + 20, crc(0, h, size));
}

static int sink_put(const cp_sink *out, const void *data, size_t len, uint64_t off, cp_err *err)
{
    if (out->buf) {
        memcpy(out->buf + off, data, len);
        return COPSE_OK;
    }
    return cp_io_pwrite_all(out->fd, data, len, off, out->name, err);
}

int cp_format_emit(const cp_meta *m, const cp_section *sec, const cp_sink *out,
                   int vectors_in_place, cp_err *err)
{
    uint64_t offset[CP_SEC_KIND_MAX + 1];
    uint32_t crcs[CP_SEC_KIND_MAX + 1] = {0};
    unsigned char hdr[CP_HEADER_SIZE_2];
    uint64_t file_size = cp_format_layout(sec, offset);
    for (int k = 1; k <= CP_SEC_KIND_MAX; k++) {
        if (sec[k].length == 0)
            continue;
        crcs[k] = out->crc(0, sec[k].data, sec[k].length);
        if (k == CP_SEC_VECTORS && vectors_in_place)
            continue;
        int rc = sink_put(out, sec[k].data, sec[k].length, offset[k], err);
        if (rc != COPSE_OK)
            return rc;
    }
    if (!out->buf) {
        int rc = cp_io_truncate(out->fd, file_size, out->name, err);
        if (rc != COPSE_OK)
            return rc;
    }
    header_encode(m, sec, offset, file_size, crcs, out->crc, hdr);
    return sink_put(out, hdr, header_size(sec), 0, err);
}

/* ---- reading ---- */

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static int check_header(const unsigned char *h, uint64_t len, cp_crc32c_fn crc, cp_meta *m,
                        uint32_t *n_sections, int *major, int *minor, cp_err *err)
{
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
    *major = get16(h + 12);
    *minor = get16(h + 14);
    if (*major > COPSE_FORMAT_MAJOR)
        return cp_fail(err, COPSE_ERR_VERSION, "format version %d.%d is newer than this "
                       "library's %d.%d", *major, *minor, COPSE_FORMAT_MAJOR, COPSE_FORMAT_MINOR);
    uint32_t size = *major == 1 ? CP_HEADER_SIZE : CP_HEADER_SIZE_2;
    if (*major == 0 || get32(h + 16) != size)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: bad version %d or header size %u",
                       *major, get32(h + 16));
    if (len < size)
        return cp_fail(err, COPSE_ERR_CORRUPT, "truncated: %llu bytes, less than the %u-byte "
                       "header", (unsigned long long)len, size);
    unsigned char copy[CP_HEADER_SIZE_2];
    memcpy(copy, h, size);
    put32(copy + 20, 0);
    if (crc(0, copy, size) != get32(h + 20))
        return cp_fail(err, COPSE_ERR_CORRUPT, "header checksum mismatch");
    /* A flag is a promise of a newer writer that changes how the file reads: unknown, it
     * cannot be skipped as an unknown section can. The flags known: quantized vectors, which
     * came with 1.3 and 2.1, and linked added items, with 2.2; in an older minor each is as
     * unknown as any other. */
    uint32_t flags = get32(h + 108);
    int quant_minor = *minor > (*major == 1 ? CP_FORMAT1_MINOR : CP_FORMAT2_MINOR);
    int linked_minor = *major == 2 && *minor >= CP_FORMAT2_LINKED_MINOR;
    if (flags & ~((quant_minor ? CP_FLAG_QUANT : 0u) | (linked_minor ? CP_FLAG_LINKED : 0u)))
        return cp_fail(err, COPSE_ERR_VERSION, "header flags 0x%08x in a format %d.%d file: a "
                       "feature of a newer library", flags, *major, *minor);
    m->storage = flags & CP_FLAG_QUANT; /* until the QUANT section says which */
    m->delta_linked = (flags & CP_FLAG_LINKED) != 0;
    if (get32(h + 124) != 0)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: reserved field at offset 124 is 0x%08x, "
                       "not 0", get32(h + 124));
    m->metric = get32(h + 24);
    m->dim = get32(h + 28);
    m->leaf_size = get32(h + 32);
    m->n_items = get64(h + 40);
    m->n_trees = get64(h + 48);
    m->n_split = get64(h + 56);
    m->n_leaves = get64(h + 64);
    m->n_leaf_items = get64(h + 72);
    m->seed = get64(h + 80);
    m->max_id = (int64_t)get64(h + 88);
    m->n_labelled = get64(h + 112);
    m->graph_degree = get32(h + 120);
    *n_sections = get32(h + 104);
    uint64_t file_size = get64(h + 96);
    if (!cp_metric_valid((int)m->metric) || m->dim < 1 || m->dim > COPSE_MAX_DIM)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: metric %u, dimension %u", m->metric, m->dim);
    /* An empty index has no trees and no sections; any other has both. */
    int empty = m->n_items == 0;
    if (m->n_items > COPSE_MAX_ITEMS || (m->n_trees == 0) != empty || m->n_trees > COPSE_MAX_TREES ||
        *n_sections > (size == CP_HEADER_SIZE ? CP_MAX_SECTIONS : CP_MAX_SECTIONS_2) ||
        (size == CP_HEADER_SIZE && (*n_sections == 0) != empty) ||
        m->max_id < (empty ? -1 : 0) || (empty && m->max_id != -1) || m->n_labelled > m->n_items)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: %llu items, %llu trees, %u sections",
                       (unsigned long long)m->n_items, (unsigned long long)m->n_trees, *n_sections);
    if (!all_zero(h + TABLE_AT + *n_sections * ENTRY_SIZE, size - TABLE_AT - *n_sections * ENTRY_SIZE))
        return cp_fail(err, COPSE_ERR_CORRUPT, "section table: an unused entry after the %u used "
                       "is not zero", *n_sections);
    if (file_size != len)
        return cp_fail(err, COPSE_ERR_CORRUPT, "%s: the file has %llu bytes, its header says %llu",
                       file_size > len ? "truncated" : "trailing bytes",
                       (unsigned long long)len, (unsigned long long)file_size);
    return COPSE_OK;
}

/* Expected length of each section kind given the header, or UINT64_MAX for "any". */
static int expected_lengths(const cp_geom *g, const cp_meta *m, uint64_t *want)
{
    int ok = cp_mul_add(m->n_items, g->row_bytes, 0, &want[CP_SEC_VECTORS]) &&
             cp_mul_add(m->n_items, 4, 0, &want[CP_SEC_NORMS]) &&
             cp_mul_add(m->n_items, 8, 0, &want[CP_SEC_SLOT_IDS]) &&
             cp_mul_add(m->n_items, 4, 0, &want[CP_SEC_ID_ORDER]) &&
             cp_mul_add(m->n_split, g->node_stride, 0, &want[CP_SEC_NODES]) &&
             cp_mul_add(m->n_leaves, sizeof(cp_leaf), 0, &want[CP_SEC_LEAVES]) &&
             cp_mul_add(m->n_leaf_items, 4, 0, &want[CP_SEC_LEAF_ITEMS]) &&
             cp_mul_add(m->n_trees, 8, 0, &want[CP_SEC_ROOTS]) &&
             cp_mul_add(m->n_items + 1, 8, 0, &want[CP_SEC_LABEL_OFFSETS]) &&
             cp_mul_add(m->n_labelled, 4, 0, &want[CP_SEC_LABEL_ORDER]) &&
             cp_mul_add(m->n_items, (uint64_t)m->graph_degree * 4, 0, &want[CP_SEC_GRAPH]) &&
             cp_mul_add(m->n_items, 8, 0, &want[CP_SEC_TAGS]);
    want[CP_SEC_LABEL_DATA] = UINT64_MAX;
    /* Quantized rows: their length follows from the QUANT section (check_quant). */
    if (m->storage) {
        want[CP_SEC_VECTORS] = UINT64_MAX;
        want[CP_SEC_QUANT] = UINT64_MAX;
    } else {
        want[CP_SEC_QUANT] = 0; /* never without the flag */
    }
    /* The changes' lengths follow from DELTA_META: check_changes. */
    for (int k = CP_FIRST_CHANGE_KIND; k <= CP_SEC_KIND_MAX; k++)
        want[k] = UINT64_MAX;
    return ok;
}

/* Every entry, known or not, must lie in the file, aligned, and apart from every other
 * (verify checksums them all; two sections sharing bytes would be two readings of one). */
static int check_extents(const unsigned char *img, uint64_t len, uint32_t n, cp_err *err)
{
    for (uint32_t i = 0; i < n; i++) {
        cp_table_entry e = cp_table_get(img, i);
        if (e.offset % CP_ALIGN || e.offset < get32(img + 16) || e.offset > len || e.length > len - e.offset)
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %u at offset %llu, %llu bytes, "
                           "is outside the %llu-byte file or misaligned", e.kind,
                           (unsigned long long)e.offset, (unsigned long long)e.length,
                           (unsigned long long)len);
        for (uint32_t j = 0; j < i; j++) {
            cp_table_entry o = cp_table_get(img, j);
            if (e.offset < o.offset + o.length && o.offset < e.offset + e.length)
                return cp_fail(err, COPSE_ERR_CORRUPT, "sections of kinds %u and %u overlap",
                               o.kind, e.kind);
        }
    }
    return COPSE_OK;
}

/* A kind this reader knows in a file of this version. */
static int known_kind(uint32_t kind, int major, int minor)
{
    return kind > 0 && kind <= CP_SEC_KIND_MAX && section_names[kind] &&
           (kind < CP_FIRST_CHANGE_KIND || major >= 2) &&
           (kind != CP_SEC_DELTA_LEAVES || minor >= CP_FORMAT2_FILED_MINOR);
}

static int read_table(const unsigned char *img, uint64_t len, uint32_t n, int major, int minor,
                      const cp_meta *m, const cp_geom *g, cp_section *sec, cp_err *err)
{
    uint64_t want[CP_SEC_KIND_MAX + 1] = {0};
    if (!expected_lengths(g, m, want))
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: counts overflow");
    int rc = check_extents(img, len, n, err);
    if (rc != COPSE_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        cp_table_entry e = cp_table_get(img, i);
        uint32_t kind = e.kind;
        if (!known_kind(kind, major, minor)) {
            if (minor > (major == 1 ? CP_FORMAT1_MINOR + 1 : COPSE_FORMAT_MINOR))
                continue; /* a section from a newer minor version: readable without it */
            return cp_fail(err, COPSE_ERR_CORRUPT, "section table entry %u: unknown kind %u", i, kind);
        }
        if (sec[kind].length)
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %u appears twice", kind);
        if (kind == CP_SEC_QUANT && !m->storage)
            return cp_fail(err, COPSE_ERR_CORRUPT, "a quant section without the header's flag");
        if (want[kind] != UINT64_MAX && e.length != want[kind])
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %u has %llu bytes, expected %llu",
                           kind, (unsigned long long)e.length, (unsigned long long)want[kind]);
        if (e.length == 0)
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %u is empty", kind);
        sec[kind] = (cp_section){img + e.offset, e.length};
    }
    return COPSE_OK;
}

/* Which sections must come together, given the header. */
static int check_presence(const cp_meta *m, const cp_geom *g, const cp_section *sec, cp_err *err)
{
    static const int required[] = {CP_SEC_VECTORS, CP_SEC_LEAVES, CP_SEC_LEAF_ITEMS, CP_SEC_ROOTS};
    for (size_t i = 0; m->n_items && i < sizeof required / sizeof *required; i++)
        if (!sec[required[i]].length)
            return cp_fail(err, COPSE_ERR_CORRUPT, "section kind %d is missing", required[i]);
    if (m->n_split && !sec[CP_SEC_NODES].length)
        return cp_fail(err, COPSE_ERR_CORRUPT, "split node section is missing");
    if (m->n_items && cp_metric_has_norms(g->metric) != (sec[CP_SEC_NORMS].length != 0))
        return cp_fail(err, COPSE_ERR_CORRUPT, "norm section %s for metric %s",
                       sec[CP_SEC_NORMS].length ? "present" : "missing", copse_metric_name(g->metric));
    if (!sec[CP_SEC_SLOT_IDS].length != !sec[CP_SEC_ID_ORDER].length)
        return cp_fail(err, COPSE_ERR_CORRUPT, "id sections incomplete");
    int nl = !!sec[CP_SEC_LABEL_OFFSETS].length + !!sec[CP_SEC_LABEL_DATA].length +
             !!sec[CP_SEC_LABEL_ORDER].length;
    if (nl != 0 && nl != 3)
        return cp_fail(err, COPSE_ERR_CORRUPT, "label sections incomplete");
    if (nl == 0 && m->n_labelled)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header counts labels but there are none");
    if (m->graph_degree > CP_MAX_GRAPH_DEGREE || (m->graph_degree != 0) != (sec[CP_SEC_GRAPH].length != 0))
        return cp_fail(err, COPSE_ERR_CORRUPT, "graph degree %u with %s graph section", m->graph_degree,
                       sec[CP_SEC_GRAPH].length ? "a" : "no");
    return COPSE_OK;
}

/* The QUANT section says how VECTORS is stored; the header's flag promises it. */
static int check_quant(cp_meta *m, const cp_geom *g, const cp_section *sec, cp_err *err)
{
    if (!m->storage)
        return COPSE_OK;
    cp_quant z;
    if (!sec[CP_SEC_QUANT].length)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header flags quantized vectors, but there is no "
                       "quant section");
    int rc = cp_quant_parse(g, sec[CP_SEC_QUANT].data, sec[CP_SEC_QUANT].length, &z, err);
    if (rc != COPSE_OK)
        return rc;
    m->storage = z.storage;
    uint64_t want;
    if (!cp_mul_add(m->n_items, z.stride, 0, &want) || sec[CP_SEC_VECTORS].length != want)
        return cp_fail(err, COPSE_ERR_CORRUPT, "section vectors has %llu bytes, expected %llu "
                       "for %s storage", (unsigned long long)sec[CP_SEC_VECTORS].length,
                       (unsigned long long)want, cp_storage_name(z.storage));
    return COPSE_OK;
}

static uint64_t bitmap_bytes(uint64_t n) { return (n + 63) / 64 * 8; }

/* The change sections against DELTA_META (format 2): all or none, each of its length. */
static int check_changes(cp_meta *m, const cp_geom *g, const cp_section *sec, cp_err *err)
{
    const cp_section *dm = &sec[CP_SEC_DELTA_META];
    int any = 0;
    for (int k = CP_FIRST_CHANGE_KIND; k <= CP_SEC_KIND_MAX; k++)
        any |= sec[k].length != 0;
    if (!any && m->delta_linked)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header flags linked added items, but there are "
                       "no changes");
    if (!any)
        return COPSE_OK;
    if (dm->length != CP_DELTA_META_SIZE)
        return cp_fail(err, COPSE_ERR_CORRUPT, "changes without a %d-byte delta_meta section",
                       CP_DELTA_META_SIZE);
    const unsigned char *p = dm->data;
    m->n_delta = get64(p);
    m->delta_degree = get32(p + 8);
    m->delta_entry = get32(p + 12);
    uint32_t r = get32(p + 16);
    memcpy(&m->delta_radius, &r, 4);
    m->n_dead = get64(p + 24);
    m->n_delta_dead = get64(p + 32);
    uint64_t n = m->n_delta, want[CP_SEC_KIND_MAX + 1] = {0};
    /* Linked: the added items are in the base's graph, of its degree, entered at any slot of
     * either part; else in their own, entered at one of theirs. */
    uint64_t entries = m->delta_linked ? m->n_items + n : n;
    if (m->delta_linked && (!n || !m->graph_degree || m->delta_degree != m->graph_degree))
        return cp_fail(err, COPSE_ERR_CORRUPT, "delta_meta: %llu items linked at degree %u into a "
                       "graph of degree %u", (unsigned long long)n, m->delta_degree,
                       m->graph_degree);
    if (n > COPSE_MAX_ITEMS || m->delta_degree > CP_MAX_GRAPH_DEGREE || m->n_dead > m->n_items ||
        m->n_delta_dead > n || (n && m->delta_entry >= entries) || !all_zero(p + 20, 4) ||
        !all_zero(p + 40, CP_DELTA_META_SIZE - 40) || !(m->delta_radius >= 0))
        return cp_fail(err, COPSE_ERR_CORRUPT, "delta_meta: %llu items, degree %u, entry %u",
                       (unsigned long long)n, m->delta_degree, m->delta_entry);
    want[CP_SEC_TOMBSTONES] = m->n_dead ? bitmap_bytes(m->n_items) : 0;
    want[CP_SEC_DELTA_META] = CP_DELTA_META_SIZE;
    want[CP_SEC_DELTA_VECTORS] = n * g->row_bytes;
    want[CP_SEC_DELTA_IDS] = n * 8;
    want[CP_SEC_DELTA_NORMS] = cp_metric_has_norms(g->metric) ? n * 4 : 0;
    want[CP_SEC_DELTA_GRAPH] = n * (uint64_t)m->delta_degree * 4;
    want[CP_SEC_DELTA_DEAD] = n ? bitmap_bytes(n) : 0;
    /* Optional: written when some added item has a tag. */
    want[CP_SEC_DELTA_TAGS] = sec[CP_SEC_DELTA_TAGS].length ? n * 8 : 0;
    /* Optional: linked added items filed in a forest's leaves, a head per leaf and a link
     * per added item and tree (numbered in 32 bits: a longer delta is not filed). */
    uint64_t links;
    if (sec[CP_SEC_DELTA_LEAVES].length) {
        if (!m->delta_linked || !m->n_trees || !cp_mul_add(n, m->n_trees, 0, &links) ||
            links > UINT32_MAX)
            return cp_fail(err, COPSE_ERR_CORRUPT, "a delta_leaves section without %s",
                           m->delta_linked && m->n_trees ? "room for its links"
                                                         : "linked added items and a forest");
        want[CP_SEC_DELTA_LEAVES] = (m->n_leaves + links) * 4;
    }
    for (int k = CP_FIRST_CHANGE_KIND; k <= CP_SEC_KIND_MAX; k++)
        if (sec[k].length != want[k])
            return cp_fail(err, COPSE_ERR_CORRUPT, "section %s has %llu bytes, expected %llu",
                           section_names[k], (unsigned long long)sec[k].length,
                           (unsigned long long)want[k]);
    return COPSE_OK;
}

static int check_roots(const cp_meta *m, const cp_section *sec, cp_err *err)
{
    const uint64_t *roots = sec[CP_SEC_ROOTS].data;
    for (uint64_t t = 0; t < m->n_trees; t++) {
        uint64_t r = roots[t];
        int ok = (r & CP_LEAF_FLAG) ? (r & ~CP_LEAF_FLAG) < m->n_leaves : r < m->n_split;
        if (!ok)
            return cp_fail(err, COPSE_ERR_CORRUPT, "tree %llu: root reference 0x%llx out of "
                           "bounds", (unsigned long long)t, (unsigned long long)r);
    }
    const uint64_t *off = sec[CP_SEC_LABEL_OFFSETS].data;
    if (off && off[m->n_items] != sec[CP_SEC_LABEL_DATA].length)
        return cp_fail(err, COPSE_ERR_CORRUPT, "label offsets end at %llu, data has %llu bytes",
                       (unsigned long long)off[m->n_items],
                       (unsigned long long)sec[CP_SEC_LABEL_DATA].length);
    return COPSE_OK;
}

int cp_format_parse(const unsigned char *img, uint64_t len, cp_crc32c_fn crc, cp_meta *m,
                    cp_section *sec, int *major, int *minor, cp_err *err)
{
    uint32_t n_sections = 0;
    cp_geom g;
    memset(m, 0, sizeof *m);
    memset(sec, 0, (CP_SEC_KIND_MAX + 1) * sizeof *sec);
    int rc = check_header(img, len, crc, m, &n_sections, major, minor, err);
    if (rc != COPSE_OK)
        return rc;
    cp_geom_init(&g, (copse_metric)m->metric, (int)m->dim);
    if (get32(img + 36) != g.node_stride || m->leaf_size < 1 || m->leaf_size > 65535)
        return cp_fail(err, COPSE_ERR_CORRUPT, "header: node size %u (expected %zu), leaf "
                       "size %u", get32(img + 36), g.node_stride, m->leaf_size);
    if ((rc = read_table(img, len, n_sections, *major, *minor, m, &g, sec, err)) != COPSE_OK ||
        (rc = check_presence(m, &g, sec, err)) != COPSE_OK ||
        (rc = check_quant(m, &g, sec, err)) != COPSE_OK ||
        (rc = check_changes(m, &g, sec, err)) != COPSE_OK)
        return rc;
    return check_roots(m, sec, err);
}
