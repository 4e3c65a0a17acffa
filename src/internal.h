/*
 * internal.h: the types every module of the library shares. Nothing here is public.
 *
 * An index is a cp_view (pointers to the sections the queries read, wherever they live: the
 * builder's memory, a mapped file, a caller's buffer) plus what owns that memory. Queries only
 * ever see the view, so a freshly built index and a loaded file take the same code path.
 */
#ifndef COPSE_INTERNAL_H
#define COPSE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "copse.h"
#include "kernels/kernels.h"

#define CP_ERRMSG_SIZE 320
#define CP_ALIGN 64           /* section alignment in files, for SIMD loads */
#define CP_HEADER_SIZE 512    /* fixed header + section table; vectors start here */
#define CP_DEFAULT_SEED 1234567890987654321ull
#define CP_LEAF_FLAG (1ull << 63) /* a node reference with this bit names a leaf */
#define CP_MAX_LABEL 65535
#define CP_DEFAULT_GRAPH_DEGREE 32
#define CP_WIDE_GRAPH_ITEMS 200000 /* sets this large may get a wider graph (cp_auto_graph_degree) */
#define CP_GRAPH_WIDTH 200  /* beam of a build search (HNSW's efConstruction) */
#define CP_GRAPH_ALPHA 1.0f /* the alpha-RNG rule's factor on (unsquared) distances */
#define CP_GRAPH_STEPS 16   /* progress units of a graph build */
#define CP_MAX_GRAPH_DEGREE 255

/* ---- errors ---- */
typedef struct cp_err {
    char msg[CP_ERRMSG_SIZE];
} cp_err;

/* Records a formatted detail message and returns status, so callers can write
 * `return cp_fail(err, COPSE_ERR_ARG, "k = %lld is negative", k);`. err may be NULL. */
int cp_fail(cp_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- memory: overflow-checked helpers ---- */
void *cp_malloc(size_t size);
void *cp_calloc(size_t n, size_t size);
void *cp_mallocarray(size_t n, size_t size);
void *cp_reallocarray(void *p, size_t n, size_t size);
void cp_free(void *p);
/* Makes *p hold at least need elements of elem bytes, doubling *cap; 0 when out of memory
 * (the old block stays). */
int cp_grow(void **p, uint64_t *cap, uint64_t need, size_t elem);
/* Called when the first handle is made: copse_set_allocator refuses from then on. */
void cp_allocator_fix(void);
/* a * b + c without overflow; 0 on overflow, else 1 with the result in *out. */
int cp_mul_add(uint64_t a, uint64_t b, uint64_t c, uint64_t *out);
static inline uint64_t cp_align_up(uint64_t x) { return (x + CP_ALIGN - 1) & ~(uint64_t)(CP_ALIGN - 1); }

/* Checksums: the kernel table's crc32c (kernels/), passed to whoever computes one. */

/* ---- file sections (the format's table of kinds lives in format.c) ---- */
enum cp_section_kind {
    CP_SEC_VECTORS = 1,     /* n_items rows of row_bytes */
    CP_SEC_NORMS = 2,       /* n_items floats: |x| (angular), extra component (dot) */
    CP_SEC_SLOT_IDS = 3,    /* n_items int64: slot -> id (absent when id == slot) */
    CP_SEC_ID_ORDER = 4,    /* n_items uint32: slots sorted by id (absent likewise) */
    CP_SEC_NODES = 5,       /* n_split split nodes of node_stride bytes */
    CP_SEC_LEAVES = 6,      /* n_leaves cp_leaf */
    CP_SEC_LEAF_ITEMS = 7,  /* uint32 slots, leaf after leaf */
    CP_SEC_ROOTS = 8,       /* n_trees uint64 node references */
    CP_SEC_LABEL_OFFSETS = 9,  /* n_items + 1 uint64 offsets into LABEL_DATA */
    CP_SEC_LABEL_DATA = 10,    /* label bytes, each followed by a NUL */
    CP_SEC_LABEL_ORDER = 11,   /* uint32 slots of labelled items sorted by (label, id) */
    CP_SEC_GRAPH = 12,         /* n_items x graph_degree uint32 neighbour slots */
    CP_SEC_QUANT = 13,         /* how VECTORS is stored when quantized (copse_set_storage) */
    /* 14..15: kept for the graph's codes and entry points. */
    CP_SEC_TAGS = 16,          /* n_items uint64 tag masks (absent when no item has a tag) */
    /* Changes after build (format 2): a file that has them is refused by 1.x readers. */
    CP_SEC_TOMBSTONES = 17,    /* bit per base slot: deleted or replaced */
    CP_SEC_DELTA_META = 18,    /* 64 bytes: counts of the delta (cp_meta's delta fields) */
    CP_SEC_DELTA_VECTORS = 19, /* n_delta rows of row_bytes */
    CP_SEC_DELTA_IDS = 20,     /* n_delta int64 */
    CP_SEC_DELTA_NORMS = 21,   /* n_delta floats, as NORMS (angular, dot) */
    CP_SEC_DELTA_GRAPH = 22,   /* n_delta x delta degree uint32 */
    CP_SEC_DELTA_DEAD = 23,    /* bit per delta slot: deleted or replaced */
    CP_SEC_DELTA_TAGS = 24,    /* n_delta uint64 tag masks (absent when no added item has one) */
    CP_SEC_DELTA_LEAVES = 25,  /* linked added items filed in the forest's leaves: n_leaves
                                * chain heads, then n_delta x n_trees links (format 2.3) */
    CP_SEC_KIND_MAX = 25
};
#define CP_FIRST_CHANGE_KIND CP_SEC_TOMBSTONES
#define CP_FORMAT1_MINOR 2 /* what a file without changes is written as: 1.2 */
#define CP_FORMAT2_MINOR 0 /* and one with changes: 2.0 */
#define CP_FORMAT2_LINKED_MINOR 2 /* changes whose added items are linked into the base's
                                   * graph (CP_FLAG_LINKED): 2.2 */
#define CP_FORMAT2_FILED_MINOR 3  /* ... and filed in the forest's leaves (DELTA_LEAVES): 2.3 */
/* A file whose vectors are quantized (a QUANT section) is one minor later (1.3, 2.1) and sets
 * a header flag, so that older readers refuse it as a newer feature instead of misreading
 * VECTORS. */
#define CP_FLAG_QUANT 1u
/* The added items are linked into the base's graph: GRAPH lists may name added items (slot
 * n_items + i) and DELTA_GRAPH lists name base slots and added ones alike (format 2.2). A
 * reader that took these lists as a 2.0 file's would walk past the ends of its arrays. */
#define CP_FLAG_LINKED 2u
#define CP_QUANT_HEADER 64
#define CP_MAX_SECTIONS 16      /* format 1: a 512-byte header */
#define CP_MAX_SECTIONS_2 37    /* format 2: a 1024-byte header */
#define CP_HEADER_SIZE_2 1024
#define CP_DELTA_META_SIZE 64

/* A split node: two child references, the hyperplane's offset and its normal.
 * For hamming, `bit` is the bit tested and there is no normal. */
typedef struct cp_node {
    uint64_t child[2];
    float offset;
    uint32_t bit;
    float plane[];
} cp_node;
#define CP_NODE_HEADER 24

typedef struct cp_leaf {
    uint64_t start; /* index into leaf items */
    uint32_t count;
    uint32_t reserved;
} cp_leaf;

typedef struct cp_section {
    const void *data;
    uint64_t length;
} cp_section;

/* The facts a file's header carries besides its section table: the same for an index just
 * built and one loaded, so one bind serves both. */
typedef struct cp_meta {
    uint32_t metric, dim, leaf_size, graph_degree;
    uint32_t storage; /* COPSE_STORAGE_*: from the QUANT section (F32 without one) */
    uint64_t n_items, n_trees, n_split, n_leaves, n_leaf_items, n_labelled, seed;
    int64_t max_id;
    /* Changes after build (DELTA_META; all 0 without it). */
    uint64_t n_delta, n_dead, n_delta_dead;
    uint32_t delta_degree, delta_entry;
    float delta_radius;
    int delta_linked; /* CP_FLAG_LINKED */
} cp_meta;

/* What producers emit: sections by kind, the memory blocks behind them (owned here until a
 * view adopts them) and the header's facts. An Annoy file adds its queue keys, never saved. */
#define CP_MAX_BLOCKS (CP_SEC_KIND_MAX + 3)
typedef struct cp_sections {
    cp_meta meta;
    cp_section sec[CP_SEC_KIND_MAX + 1];
    void *block[CP_MAX_BLOCKS];
    int n_blocks;
    const uint32_t *split_keys, *leaf_keys;
} cp_sections;

/* Records section kind over len bytes at data and takes ownership of data (an owned block is
 * freed by cp_sections_free, or passes to the view); data may be NULL only when len is 0. */
void cp_emit(cp_sections *out, int kind, void *data, uint64_t len);
/* Takes ownership of a block that backs no section (Annoy's keys). */
void cp_emit_block(cp_sections *out, void *block);
/* Takes one owned block back out (the builder reclaims its vectors on unbuild). */
void *cp_sections_take(void **blocks, int n_blocks, const void *block);
void cp_sections_free(cp_sections *s);

/* How a view's VECTORS rows are stored (copse_set_storage): float32 as added, IEEE half, or
 * 8-bit codes (metric.c): c standing for mean[i] + lo + step * c[i] with each row's lo and
 * step after its codes (built for angular and dot), or for min[i] + scale[i] * c[i]. */
typedef struct cp_quant {
    uint32_t storage;     /* COPSE_STORAGE_* */
    size_t stride;        /* bytes of one stored row */
    const float *min, *scale; /* I8 per dimension: dim floats each, inside the QUANT section */
    const float *mean;        /* I8 per row: dim floats, inside the QUANT section */
} cp_quant;

/* ---- the view: what queries read, and the memory it owns ---- */
typedef struct cp_view {
    uint64_t n_items;
    uint64_t n_split, n_leaves, n_leaf_items, n_trees;
    uint64_t n_labelled;
    int64_t max_id;
    uint32_t leaf_size;
    const unsigned char *vectors;
    cp_quant quant;             /* how vectors are stored */
    const float *norms;
    const int64_t *slot_ids;    /* NULL: slot == id */
    const uint32_t *id_order;
    const unsigned char *nodes;
    const cp_leaf *leaves;
    const uint32_t *leaf_items;
    const uint64_t *roots;
    const uint64_t *label_offsets; /* NULL: no labels */
    const char *label_data;
    uint64_t label_data_len;
    const uint32_t *label_order;
    const uint32_t *graph;   /* NULL: no graph */
    uint32_t graph_degree;
    /* The base items' tags as they are now: the TAGS section, or the living index's copy
     * once one has changed (live.c swaps it in, and counts tags_changes, under the write
     * lock). NULL: no item has a tag. */
    const uint64_t *tags;
    uint64_t tags_changes;
    /* Unique to each binding, process-wide: a filter's set of slots describes this binding
     * only. lineage is the generation of the build or load the binding descends from, kept
     * by compaction, so a filter made for one index is refused by any other (another index,
     * or this one rebuilt or reloaded) but keeps working after a compaction. */
    uint64_t generation, lineage;
    uint32_t graph_entry;    /* a slot the walk also starts from; UINT32_MAX: none */
    /* A living index's view of its base and added items as one index (live.c): slots from
     * added_from on are the added items, rows of added_quant (float32) in added_vectors, with
     * their norms and ids. UINT64_MAX in every other view. */
    uint64_t added_from;
    const uint32_t *added_graph; /* their lists (graph_degree each), as graph's are the base's */
    const unsigned char *added_vectors;
    cp_quant added_quant;
    const float *added_norms;
    const int64_t *added_ids;
    /* ... and the added items filed in the forest's leaves, so that a query's seeds include
     * them as a fresh build's leaves would: added_leaf_head[leaf] is the first entry of that
     * leaf's chain (UINT32_MAX: none), an entry e standing for added item e / n_trees in tree
     * e % n_trees, followed by added_leaf_next[e]. NULL: none filed. */
    const uint32_t *added_leaf_head, *added_leaf_next;
    /* A file's changes after build (format 2), bound but not read by queries: cp_live_open
     * checks them and takes them. */
    const uint64_t *tombstones, *delta_dead;
    const unsigned char *delta_vectors;
    const int64_t *delta_ids;
    const uint64_t *delta_tags;
    const float *delta_norms;
    const uint32_t *delta_graph;
    const uint32_t *delta_leaves;
    /* Annoy files only (never saved): search_k counts repeated candidates, as Annoy does, and
     * queue ties go to the larger Annoy node index, as in Annoy's std::priority_queue. */
    int count_repeats;
    const uint32_t *split_keys, *leaf_keys;
    cp_meta meta;
    cp_section sec[CP_SEC_KIND_MAX + 1]; /* by kind, as written to / read from the file */
    /* The memory behind the sections: blocks (built, Annoy), or a file image (a mapping, a
     * caller's buffer, or an aligned copy of one). */
    void *block[CP_MAX_BLOCKS];
    int n_blocks;
    void *map;
    size_t map_len;
    void *buf_copy;
    const unsigned char *image; /* a file image: its table holds the sections' checksums */
    uint64_t image_len;
    int file_major, file_minor;
} cp_view;

/* An empty view (no items, max_id -1). */
void cp_view_init(cp_view *v);
/* Frees or unmaps what the view owns and empties it. */
void cp_view_release(cp_view *v);
/* Takes the producers' sections and blocks (s is left empty). */
void cp_view_adopt(cp_view *v, cp_sections *s);
/* Checks a file image and binds the view to it. The view owns map (a mapping of map_len
 * bytes) and buf_copy from here on, also when this fails (it releases them then). */
int cp_view_open_image(cp_view *v, const unsigned char *img, uint64_t len, void *map,
                       size_t map_len, void *buf_copy, cp_crc32c_fn crc, cp_err *err);
int cp_view_slot(const cp_view *v, int64_t id, uint64_t *slot);
int64_t cp_view_id(const cp_view *v, uint64_t slot);
/* Label of a slot (NULL when none; offsets from a file are checked before use). */
const char *cp_view_label(const cp_view *v, uint64_t slot, size_t *len);
int cp_view_find_label(const cp_view *v, const char *label, uint64_t *slot);

/* ---- metrics ---- */
typedef struct cp_geom {
    copse_metric metric;
    int dim;            /* as the user sees it (bits for hamming) */
    size_t row_bytes;   /* bytes of one stored vector */
    int plane_dim;      /* floats in a split normal: dim, dim + 1 for dot, 0 for hamming */
    size_t node_stride; /* bytes of one split node */
    size_t words;       /* hamming: 64-bit words per vector */
} cp_geom;

void cp_geom_init(cp_geom *g, copse_metric metric, int dim);
int cp_metric_valid(int metric);
/* Packs or copies a user vector into its stored form (row_bytes at dst). */
void cp_encode(const cp_geom *g, const float *src, void *dst);
/* Unpacks a stored row back to the user's floats. */
void cp_decode(const cp_geom *g, const void *src, float *dst);
/* COPSE_OK, or COPSE_ERR_VALUE naming the first non-finite component. */
int cp_check_finite(const float *v, int dim, cp_err *err, const char *what);
/* Norm section entry for a row: |x| for angular, |x|^2 for dot (turned into the extra
 * component once the largest norm is known), unused otherwise. */
int cp_metric_has_norms(copse_metric m);

/* A query in stored form with what the metric needs precomputed. */
typedef struct cp_query {
    const void *row;   /* stored form (floats, or packed words for hamming) */
    float norm;        /* |q|^2 for angular */
    /* Against 8-bit codes (cp_query_codes): with per-row ranges q itself, with q . mean in qc
     * and sum(q) in qs; else q * scale for angular and dot, with q . min in qc, and q - min
     * for euclidean and manhattan. */
    const float *qa;
    float qc, qs;
} cp_query;

/* ---- stored vectors: float32, float16 or 8-bit codes (metric.c) ---- */
const char *cp_storage_name(uint32_t storage);
/* Bytes of one stored row. */
size_t cp_stride(const cp_geom *g, uint32_t storage);
/* Length of the QUANT section for this storage (0 for float32). */
uint64_t cp_quant_length(const cp_geom *g, uint32_t storage);
/* Trains the codes' parameters on n float rows and writes the QUANT section's bytes into sec
 * (cp_quant_length of them); *z then describes them. */
void cp_quant_train(const cp_geom *g, uint32_t storage, const unsigned char *rows, uint64_t n,
                    unsigned char *sec, cp_quant *z);
/* Points *z at a QUANT section's bytes, already checked, of this storage (NULL for float32). */
void cp_quant_bind(const cp_geom *g, uint32_t storage, const unsigned char *sec, cp_quant *z);
/* Reads a QUANT section's bytes into *z; 0 with the reason in err when they are malformed
 * (COPSE_ERR_VERSION for a storage this library does not know, else COPSE_ERR_CORRUPT). */
int cp_quant_parse(const cp_geom *g, const unsigned char *sec, uint64_t len, cp_quant *z,
                   cp_err *err);
/* One float row into its code: COPSE_ERR_VALUE when a component is out of the code's range
 * (float16's 65504; 8-bit codes clip to their trained range instead). */
int cp_quant_encode(const cp_geom *g, const cp_quant *z, const float *src, void *dst);
/* An 8-bit row's own range (z->mean set): lo and step, after its dim codes. */
void cp_quant_row_range(const unsigned char *row, size_t dim, float *lo, float *step);
/* A stored row back to floats (exact for float32, the code's value otherwise). */
void cp_quant_decode(const cp_geom *g, const cp_quant *z, const void *src, float *dst);
/* Fills the query's 8-bit fields (qa in room, dim floats); nothing for other storage. */
void cp_query_codes(const cp_geom *g, const cp_kernels *k, const cp_quant *z, cp_query *q,
                    float *room);
/* q . x for the stored row x (angular and dot), whatever the storage. */
float cp_query_dot(const cp_geom *g, const cp_kernels *k, const cp_quant *z, const cp_query *q,
                   const void *row);

/* Angular internal distance 2 - 2 cos from a dot product and two squared norms. */
float cp_angular(float pq, float pp, float qq);

/* Internal distance from a query to a stored row (rows of z's storage): smaller is nearer,
 * monotone in the reported one. */
float cp_dist_internal(const cp_geom *g, const cp_kernels *k, const cp_quant *z,
                       const unsigned char *rows, const float *norms, const cp_query *q,
                       uint64_t slot);
/* Reported distance from the internal one. */
float cp_dist_report(const cp_geom *g, float internal);
/* Signed distance of q from a split node: > 0 means child[1]'s side. */
float cp_margin(const cp_geom *g, const cp_kernels *k, const cp_node *node, const void *qrow);

/* ---- threads ---- */
#define CP_MAX_THREADS 256
/* Threads cp_parallel_for will use for n items: n_threads <= 0 means one per online CPU. */
int cp_thread_count(int n_threads, uint64_t n);
/* Runs fn(ctx, i, worker) for i in [0, n) on cp_thread_count() threads (the caller's among
 * them, as worker 0); work is handed out one index at a time, so uneven items balance.
 * Threads the system refuses are done without. */
void cp_parallel_for(int n_threads, uint64_t n, void (*fn)(void *ctx, uint64_t i, int worker),
                     void *ctx);
int cp_online_cpus(void);

/* Build progress: units of work done out of a total, reported to the user's callback under a
 * lock so it is never called twice at once (threads.c). */
typedef struct cp_progress {
    copse_progress_fn fn;
    void *ctx;
    uint64_t done, total; /* total may grow once the automatic tree count is known */
    double shown;         /* the last fraction reported: reports never go back */
    void *lock;           /* a pthread mutex, made by cp_progress_begin */
} cp_progress;
int cp_progress_begin(cp_progress *p, uint64_t total);
/* A readers-writer lock (a pthread rwlock that prefers the writer). */
int cp_rwlock_new(void **lock);
void cp_rwlock_free(void *lock);
void cp_read_lock(void *lock);
void cp_write_lock(void *lock);
void cp_unlock(void *lock);
void cp_progress_step(cp_progress *p);
void cp_progress_end(cp_progress *p);

/* ---- the format: file images <-> sections (format.c) ---- */
/* The section table of a file image (its header already checked): entry count, and entry i. */
typedef struct cp_table_entry {
    uint32_t kind, crc;
    uint64_t offset, length;
} cp_table_entry;
uint32_t cp_table_count(const unsigned char *img);
cp_table_entry cp_table_get(const unsigned char *img, uint32_t i);
/* Name of a section kind ("vectors", ...), NULL for an unknown one. */
const char *cp_section_name(int kind);
/* Offsets the present sections get in a file (offset[kind], 0 when absent; may be NULL) and
 * the file's size. */
uint64_t cp_format_layout(const cp_section *sec, uint64_t *offset);
/* Checks an image (header, table, every bound, reserved zeros, roots) and gives its facts,
 * its sections by kind and its version; crc is the kernels' CRC32C. */
int cp_format_parse(const unsigned char *img, uint64_t len, cp_crc32c_fn crc, cp_meta *m,
                    cp_section *sec, int *major, int *minor, cp_err *err);
/* Where an image goes: a file (pwrite, at its final size) or a caller's buffer (memcpy; the
 * buffer must be cleared: gaps between sections read as zeros, as a new file's holes do). */
typedef struct cp_sink {
    int fd;
    const char *name;
    unsigned char *buf;
    cp_crc32c_fn crc; /* the kernels' CRC32C, for the checksums written */
} cp_sink;
/* The DELTA_META section's 64 bytes for m's delta fields. */
void cp_format_delta_meta(const cp_meta *m, unsigned char *out);
/* Writes header and sections (all, or all but the vectors already in place) to the sink. */
int cp_format_emit(const cp_meta *m, const cp_section *sec, const cp_sink *out,
                   int vectors_in_place, cp_err *err);

/* ---- filters (filter.c): which items a query may return ---- */
/* A filter made for an index (ids, tags) is a set of slots of one binding of its view: a
 * sorted array when small (4 bytes an item), else a bitmap (1 bit a slot), whichever is
 * smaller. A callback filter is a predicate on ids and fits any index. Filters are immutable
 * once made, so any number of queries on any threads may share one.
 * A query binds the caller's filter to the view it searches (cp_filter_bind): a set that no
 * longer describes that view's slots (the view was compacted since, its tags changed, or it
 * is the delta of added items) becomes, for that query, the same condition read per slot:
 * IDS (the slot's id among the ids asked for) or TAGS (the slot's current tags). */
enum cp_filter_kind {
    CP_FILTER_SLOTS, CP_FILTER_BITMAP, CP_FILTER_CALLBACK, CP_FILTER_LIVE, CP_FILTER_IDS,
    CP_FILTER_TAGS, CP_FILTER_PARTS
};
struct copse_filter {
    enum cp_filter_kind kind;
    /* SLOTS, BITMAP: the view binding the set describes (cp_view.generation), and for a tag
     * set the base's tags_changes then; lineage: the index it was made for (cp_view.lineage). */
    uint64_t generation, tags_changes, lineage;
    uint64_t count;      /* SLOTS, BITMAP: the items allowed (LIVE: see below) */
    const uint32_t *slots; /* SLOTS: count distinct slots, ascending */
    const uint64_t *bits;  /* BITMAP: bit s % 64 of word s / 64 for slot s */
    int (*allow)(void *ctx, int64_t id); /* CALLBACK */
    void *ctx;
    /* The condition itself, for binding to another view: an id filter keeps the ids asked
     * for (ascending, distinct), a tag filter its masks. */
    const int64_t *ids;
    uint64_t n_ids;
    int is_tags;
    uint64_t any_mask, all_mask;
    /* LIVE: made for one query by live.c, never by a caller: the bound filter (NULL: every
     * item) over the slots dead does not mark; count is then the slots dead does not mark. */
    const copse_filter *inner;
    const uint64_t *dead;
    /* PARTS: made for one query by live.c over a view of base and added items as one (the
     * view's added_from is split): slots below split go to part[0] over part_view[0], the
     * others, less split, to part[1] over part_view[1]; a NULL part allows all its items. */
    const copse_filter *part[2];
    const cp_view *part_view[2];
    uint64_t split;
};
int cp_filter_new_ids(const cp_view *v, const int64_t *ids, int64_t n, copse_filter **out);
int cp_filter_new_tags(const cp_view *v, uint64_t any_mask, uint64_t all_mask, copse_filter **out);
/* The filter a query over v applies for f: f itself while it fits v, else room made into f's
 * condition read per slot (see above). COPSE_ERR_ARG, with the reason in err, for a filter
 * made for another index (or this one before a rebuild or reload). */
int cp_filter_bind(const copse_filter *f, const cp_view *v, copse_filter *room,
                   const copse_filter **out, cp_err *err, const char *what);
/* The number of items f allows: exact for a set, estimated from a fixed sample of slots for a
 * callback or a condition read per slot. */
uint64_t cp_filter_estimate(const copse_filter *f, const cp_view *v);
/* Writes the allowed slots, ascending, to out (room for v->n_items) and returns their count. */
uint64_t cp_filter_collect(const copse_filter *f, const cp_view *v, uint32_t *out);

static inline int cp_tags_match(uint64_t tags, uint64_t any_mask, uint64_t all_mask)
{
    return (any_mask == 0 || (tags & any_mask) != 0) && (tags & all_mask) == all_mask;
}

/* Whether id is among f's ids (IDS: ascending, distinct). */
static inline int cp_filter_has_id(const copse_filter *f, int64_t id)
{
    uint64_t lo = 0, hi = f->n_ids;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (f->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n_ids && f->ids[lo] == id;
}

static inline int cp_filter_allows_slot(const copse_filter *f, const cp_view *v, uint32_t slot)
{
    switch (f->kind) {
    case CP_FILTER_BITMAP:
        return (int)(f->bits[slot >> 6] >> (slot & 63)) & 1;
    case CP_FILTER_SLOTS: {
        uint64_t lo = 0, hi = f->count;
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (f->slots[mid] < slot)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo < f->count && f->slots[lo] == slot;
    }
    case CP_FILTER_CALLBACK:
        return f->allow(f->ctx, cp_view_id(v, slot)) != 0;
    case CP_FILTER_TAGS:
        return cp_tags_match(v->tags ? v->tags[slot] : 0, f->any_mask, f->all_mask);
    case CP_FILTER_IDS:
        return cp_filter_has_id(f, cp_view_id(v, slot));
    case CP_FILTER_LIVE:
    case CP_FILTER_PARTS:
        break;
    }
    return 0;
}

/* Whether a CP_FILTER_LIVE filter's tombstones mark slot. */
static inline int cp_filter_dead(const copse_filter *f, uint32_t slot)
{
    return f->dead && ((f->dead[slot >> 6] >> (slot & 63)) & 1);
}

static inline int cp_filter_allows_one(const copse_filter *f, const cp_view *v, uint32_t slot)
{
    if (f->kind != CP_FILTER_LIVE)
        return cp_filter_allows_slot(f, v, slot);
    if (cp_filter_dead(f, slot))
        return 0;
    return !f->inner || cp_filter_allows_slot(f->inner, v, slot);
}

/* Which part of a CP_FILTER_PARTS filter holds *slot (0 the base, 1 the added items);
 * *slot becomes the slot within it. */
static inline int cp_filter_part_of(const copse_filter *f, uint32_t *slot)
{
    int p = *slot >= f->split;
    if (p)
        *slot = (uint32_t)(*slot - f->split);
    return p;
}

static inline int cp_filter_allows(const copse_filter *f, const cp_view *v, uint32_t slot)
{
    if (f->kind != CP_FILTER_PARTS)
        return cp_filter_allows_one(f, v, slot);
    int p = cp_filter_part_of(f, &slot);
    const copse_filter *t = f->part[p];
    return !t || cp_filter_allows_one(t, f->part_view[p], slot);
}

/* Whether f refuses slot for its tombstones (a deleted item of a living index), whatever
 * else it says: never an answer, and the graph's lists are repaired around it. */
static inline int cp_filter_buried(const copse_filter *f, uint32_t slot)
{
    if (f->kind == CP_FILTER_PARTS)
        f = f->part[cp_filter_part_of(f, &slot)];
    return f && f->kind == CP_FILTER_LIVE && cp_filter_dead(f, slot);
}

/* ---- readers of the view: queries (search.c) and the full check (verify.c) ---- */
typedef struct cp_reader {
    const cp_geom *g;
    const cp_kernels *k;
    const cp_view *v;      /* NULL: nothing built or loaded */
} cp_reader;
/* One query by vector (qv) or by item (id), approximate or exact, returning only what f
 * allows (NULL: everything). rd may be NULL. */
/* The search_k a query of k items runs with (copse_search_effort). */
uint64_t cp_search_k(const cp_view *v, int64_t k, int64_t search_k);
int cp_search(const cp_reader *rd, copse_scratch *s, const float *qv, int64_t id, int64_t k,
              int64_t search_k, int exact, const copse_filter *f, int64_t *ids, float *dists,
              int64_t *n_out);
/* One query of a batch by vector, as the caller runs it (ctx is the caller's). */
typedef int (*cp_query_fn)(const void *ctx, copse_scratch *s, const float *q, int64_t k,
                           int64_t search_k, int exact, const copse_filter *f, int64_t *ids,
                           float *dists, int64_t *n_out);
/* Checks the batch against rd, then runs fn for every query on n_threads threads, each with a
 * worker scratch kept in s. */
int cp_search_batch(const cp_reader *rd, cp_query_fn fn, const void *fn_ctx,
                    copse_scratch *s, const float *qs, int64_t nq, int64_t k,
                    int64_t search_k, int exact, int n_threads, const copse_filter *f,
                    int64_t *ids, float *dists, int64_t *counts);
int cp_verify(const cp_reader *rd, cp_err *err);
/* Lists of n items, deg slots each: slots below bound, then UINT32_MAX to each list's end (the
 * insert path follows them without bounds checks). what names the section in the message. */
int cp_check_lists(const uint32_t *lists, uint64_t n, uint32_t deg, uint64_t bound,
                   const char *what, cp_err *err);
/* A file's added items' saved norms (DELTA_NORMS, angular and dot): finite, >= 0, and what
 * their vectors give at the saved radius. */
int cp_check_delta_norms(const cp_reader *rd, cp_err *err);
/* Leaf chains (DELTA_LEAVES): heads chain heads, then links entries, each UINT32_MAX or an
 * entry number (below links), a link always to an earlier entry, so every chain ends. */
int cp_check_chains(const uint32_t *chains, uint64_t heads, uint64_t links, cp_err *err);
/* Where a scratch keeps its message (NULL for a NULL scratch: cp_fail then only returns). */
cp_err *cp_scratch_err(copse_scratch *s);
/* Distances computed by the graph walks of every query made with s so far. */
uint64_t cp_scratch_walked(const copse_scratch *s);

/* ---- a living index: changes after build (live.c) ---- */
typedef struct cp_live cp_live;
/* Where an id's vector is now: a base slot or a delta slot. */
typedef struct cp_place {
    int delta;
    uint64_t slot;
} cp_place;
int cp_live_new(cp_live **out, const cp_geom *g, const cp_kernels *k, uint64_t n_base,
                uint32_t degree, cp_err *err);
void cp_live_free(cp_live *l);
/* Queries hold the read lock while they read the base and the changes. */
void cp_live_read(const cp_live *l);
void cp_live_done(const cp_live *l);
/* The writer swaps the base under the write lock (compaction). */
void cp_live_write_lock(cp_live *l);
void cp_live_write_unlock(cp_live *l);
int cp_live_changed(const cp_live *l);
uint64_t cp_live_count(const cp_live *l);
uint64_t cp_live_n_deleted(const cp_live *l);
uint64_t cp_live_n_delta(const cp_live *l);
/* The largest id ever added after build (-1: none). */
int64_t cp_live_max_id(const cp_live *l);
void cp_live_set_threshold(cp_live *l, double fraction);
int cp_live_wants_compaction(const cp_live *l);
int cp_live_find(const cp_live *l, const cp_view *base, int64_t id, cp_place *at);
const void *cp_live_row(const cp_live *l, const cp_view *base, cp_place at);
/* Id of the pos-th live item (base slots first, then the delta's); 0 past the end. */
int64_t cp_live_id_at(const cp_live *l, const cp_view *base, uint64_t pos, int64_t *id);
int cp_live_add(cp_live *l, const cp_view *base, int64_t n, const int64_t *ids, int64_t first_id,
                const float *vs, int n_threads, cp_err *err);
/* Deletes ids (all or none), then, past a share of newly deleted base items, repairs the
 * base's lists around them on n_threads threads (in a copy: the base is never written). */
int cp_live_delete(cp_live *l, const cp_view *base, int64_t n, const int64_t *ids, int n_threads,
                   cp_err *err);
/* Gives the live item id the tag mask: in the delta's tags, or in the base's, which are first
 * copied into memory; base->tags then points at that copy (and base->tags_changes counts). */
int cp_live_set_tags(cp_live *l, cp_view *base, int64_t id, uint64_t mask, cp_err *err);
/* The tags of the item at a place (0: none). */
uint64_t cp_live_tags(const cp_live *l, const cp_view *base, cp_place at);
/* Whether some base item's tags changed (base->tags is then the live copy). */
int cp_live_tags_changed(const cp_live *l);
/* A query by vector over the base past its tombstones and the delta, merged. */
int cp_live_search(const cp_live *l, const cp_reader *base, copse_scratch *s, const float *q,
                   int64_t k, int64_t search_k, int exact, const copse_filter *f, int64_t *ids,
                   float *dists, int64_t *n_out);
/* The change sections, pointing into the live memory (valid until the next change), and the
 * DELTA_META block they need (owned by the caller, 64 bytes). */
void cp_live_sections(const cp_live *l, const cp_view *base, cp_section *sec, cp_meta *m,
                      unsigned char *meta);
/* Whether a save writes the added items linked into the base's graph (format 2.2, or 2.3
 * with their filing in the forest's leaves). */
int cp_live_linked(const cp_live *l);
/* Forgets every change: a base of n_base items, a delta graph of this degree. */
void cp_live_reset(cp_live *l, uint64_t n_base, uint32_t degree);
/* Takes the changes a file's view carries (copies: the file stays read-only), its delta's
 * neighbour lists as saved once they pass the checks: no search. */
int cp_live_open(cp_live *l, const cp_view *v, cp_err *err);

/* ---- producers: the builder (add.c) ---- */
typedef struct cp_builder {
    unsigned char *rows;   /* in memory: cap rows; NULL for on-disk */
    int64_t *ids;          /* slot -> id */
    char **labels;         /* slot -> label or NULL; NULL until the first label */
    uint64_t *tags;        /* slot -> tag mask; NULL until the first tag */
    uint64_t n, cap;
    uint64_t *map_keys;    /* open addressing id -> slot; key = id + 1, 0 = empty */
    uint32_t *map_slots;
    uint64_t map_cap;
    int64_t max_id;
    int disk_fd;           /* on-disk build: the temporary file, else -1 */
    char *disk_path;       /* final path */
    char *disk_tmp;        /* temporary path */
    /* rows and ids are a loaded file's (cp_builder_borrow), read only: the first append
     * copies them into memory of the builder's own. */
    int borrowed;
} cp_builder;

void cp_builder_init(cp_builder *b);
void cp_builder_free(cp_builder *b);
int cp_builder_slot(const cp_builder *b, int64_t id, uint64_t *slot);
/* Makes an empty in-memory builder hold n stored rows and their ids in a loaded file's
 * memory, which must outlive it or its first append: only the id map is built (an id listed
 * twice maps to its later slot). COPSE_ERR_NOMEM. */
int cp_builder_borrow(cp_builder *b, const unsigned char *rows, const int64_t *ids, uint64_t n,
                      cp_err *err);
int cp_builder_add(cp_builder *b, const cp_geom *g, int64_t id, const float *v, cp_err *err);
/* Checks rows for add_items: n, ids (>= 0, or first_id + n in range), finite components. */
int cp_check_rows(const cp_geom *g, int64_t n, const int64_t *ids, int64_t first_id,
                  const float *vs, cp_err *err);
int cp_builder_add_many(cp_builder *b, const cp_geom *g, int64_t n, const int64_t *ids,
                        int64_t first_id, const float *vs, cp_err *err);
int cp_builder_set_label(cp_builder *b, int64_t id, const char *label, cp_err *err);
int cp_builder_set_tags(cp_builder *b, int64_t id, uint64_t mask, cp_err *err);
/* Stores v (checked) in a new slot, even when id has one: the id then names the new slot, and
 * *old_slot is the one it named before (UINT64_MAX when none). */
int cp_builder_append(cp_builder *b, const cp_geom *g, int64_t id, const float *v,
                      uint64_t *old_slot, cp_err *err);
int cp_builder_on_disk(cp_builder *b, const char *path, cp_err *err);
/* Stored row of a slot: in memory, or read into tmp (on-disk); NULL on a read error. */
const void *cp_builder_row(const cp_builder *b, const cp_geom *g, uint64_t slot, void *tmp,
                           cp_err *err);
/* Back from a view built in memory: its vectors block (decoded when quantized), ids and labels
 * return to the builder. */
int cp_builder_from_view(cp_builder *b, const cp_geom *g, cp_view *v, cp_err *err);

/* ---- producers: the forest (forest.c), the graph (graph.c), labels and tags ---- */
/* What tree building reads. */
typedef struct cp_rows {
    const cp_geom *g;
    const cp_kernels *k;
    const unsigned char *rows;
    const float *norms; /* the NORMS section (angular, dot), else NULL */
    uint64_t n;
    uint64_t seed;
    int n_threads;
    cp_progress *progress;
} cp_rows;

/* Grows the stored forest (random streams 0, 1, ...) and emits its four sections. n_trees
 * == -1 sizes it from tree 0 until it takes about target_bytes. */
int cp_forest_grow(const cp_rows *in, int n_trees, int leaf_size, uint64_t target_bytes,
                   cp_sections *out, cp_err *err);
/* ---- the neighbour graph (graph.c) ---- */
typedef struct cp_graph_worker cp_graph_worker;
/* A candidate for a list: an item's slot and its graph distance from the list's owner. */
typedef struct cp_cand {
    float d;
    uint32_t slot;
} cp_cand;
/* qsort order of candidates: nearest first, ties by slot (so lists do not depend on the
 * order candidates were found in). */
int cp_cand_cmp(const void *a, const void *b);
/* A graph that grows by inserts: lists of up to degree slots (and their distances) for cap
 * items. It reads item rows and norms through the pointers given to each insert. */
typedef struct cp_graph {
    const cp_geom *g;
    const cp_kernels *kern;
    const unsigned char *rows;
    const float *norms;
    uint32_t degree, width; /* list size; beam of an insert's search */
    uint32_t insert_degree; /* list size an item starts with */
    float alpha;            /* the rule's factor on the graph's distances */
    uint64_t cap, n_inserted;
    uint32_t entry;         /* where every search starts; UINT32_MAX while empty */
    uint32_t *adj;          /* cap x degree slots */
    float *adj_d;           /* the distance of each listed item */
    uint32_t *len;          /* items listed, per slot */
    float *unit;            /* angular without codes: each inserted row scaled to length 1 */
    /* code_step > 0 (set before the first reserve): distances between byte codes of the rows
     * (of the unit rows for angular), a code c standing for code_lo + c * code_step in every
     * dimension; codes holds cap rows of code_stride bytes (dim of them used), aligned to
     * a cache line in codes_mem. */
    float code_lo, code_step;
    unsigned char *codes, *codes_mem;
    size_t code_stride;
    /* A living index's graph (cp_graph_live): slots below split are the base's items, read
     * from base_rows as the base stores them (base_quant) with base_norms; slot split + i is
     * added item i, of rows and norms. lift (dot): what takes a base item's extra component
     * onto the added items' sphere, e^2 + lift; base_r2 is the base's own radius squared. */
    int live;
    uint32_t split;
    const unsigned char *base_rows;
    cp_quant base_quant;
    const float *base_norms;
    float lift, base_r2;
    cp_graph_worker *workers;
    int n_workers;
    uint64_t stamp_cap;
    cp_progress *progress;  /* optional: CP_GRAPH_STEPS steps over progress_of inserts */
    uint64_t progress_of;
    uint32_t progress_next;
} cp_graph;
int cp_graph_init(cp_graph *gr, const cp_geom *g, const cp_kernels *k, uint32_t degree,
                  uint32_t width, float alpha);
/* Room for slots below cap; 0 when out of memory (the graph is unchanged) or cap > 2^32 - 1. */
int cp_graph_reserve(cp_graph *gr, uint64_t cap);
/* Inserts items (slots below the reserved capacity, not yet in the graph) in batches, on
 * n_threads threads; the result depends on the items and their order, not on the threads.
 * COPSE_ERR_ARG for a slot beyond the capacity, COPSE_ERR_NOMEM. */
int cp_graph_insert(cp_graph *gr, const unsigned char *rows, const float *norms,
                    const uint32_t *items, uint64_t count, int n_threads);
/* Takes n lists (n x degree slots, each list's entries below the capacity and then
 * UINT32_MAX, as the caller has checked) as those of slots first..first+n-1 (reserved), with
 * their distances left to be computed when a list is next pruned. */
void cp_graph_take(cp_graph *gr, uint64_t first, const uint32_t *lists, uint64_t n);
/* Makes an empty graph (just made by cp_graph_init) a living index's: split base items of
 * rows stored as z with norms, their lists (checked as for cp_graph_take) taken, entered at
 * entry, or at the base item nearest the base's centroid for UINT32_MAX. Added items are
 * inserted as slots split + i. COPSE_ERR_NOMEM. */
int cp_graph_live(cp_graph *gr, uint32_t split, const unsigned char *rows, const cp_quant *z,
                  const float *norms, const uint32_t *lists, uint32_t entry, uint64_t cap);
/* Every list's distances are computed again when next pruned (the distance changed). */
void cp_graph_forget_distances(cp_graph *gr);
/* Scratch for n_threads workers (cp_graph_dist's worker): 0 when out of memory. */
int cp_graph_workers(cp_graph *gr, int n_threads);
void cp_graph_free(cp_graph *gr);
/* The graph's distance between two items, computed in worker's scratch: never negative,
 * squared for angular and euclidean; for dot 2 (R^2 - a.b), R the radius of the items' norm
 * entries. */
float cp_graph_dist(const cp_graph *gr, int worker, uint32_t a, uint32_t b);
/* A graph of n items inserted in a seeded random order from the item nearest the centroid:
 * *adj_out gets n x degree slots (UINT32_MAX after each list's end), the caller's to free. */
int cp_graph_construct(const cp_geom *g, const cp_kernels *k, const unsigned char *rows,
                       const float *norms, uint64_t n, uint32_t degree, uint64_t seed,
                       int n_threads, cp_progress *progress, uint32_t **adj_out);
/* Builds the neighbour graph over the rows and emits its section. */
int cp_graph_build(const cp_rows *in, uint32_t degree, cp_sections *out, cp_err *err);
/* Emits the label sections from the builder's labels (none when there are none). */
int cp_labels_build(const cp_builder *b, cp_sections *out, cp_err *err);
/* Emits the tag section from the builder's masks (none when no item has a tag). */
int cp_tags_build(const cp_builder *b, cp_sections *out, cp_err *err);

/* ---- producers: the whole build (build.c) and the Annoy reader (annoy.c) ---- */
typedef struct cp_build_args {
    const cp_geom *g;
    const cp_kernels *k;
    uint64_t seed;
    int n_trees;       /* -1: automatic */
    int leaf_size;     /* resolved, never 0 */
    int graph_degree;  /* 0: no graph */
    uint32_t storage;  /* COPSE_STORAGE_*: how VECTORS is emitted */
    int n_threads;
    cp_progress *progress;
} cp_build_args;
/* The leaf size a build uses when the caller set none. */
int cp_auto_leaf_size(const cp_geom *g, int degree);
/* The graph degree a build uses when the caller set none, for n items stored as storage. */
int cp_auto_graph_degree(const cp_geom *g, uint64_t n, uint32_t storage);
/* Builds an in-memory builder's index into v; the builder is emptied on success. */
int cp_build_in_memory(const cp_build_args *a, cp_builder *b, cp_view *v, cp_err *err);
/* Finishes an on-disk build: the file is completed, mapped, then renamed into place, and v
 * bound to it. Before the rename nothing is lost (the builder keeps its file, so the build
 * can be retried); after it the builder is emptied, so the handle is usable whatever
 * happens. */
int cp_build_on_disk(const cp_build_args *a, cp_builder *b, cp_view *v, cp_err *err);
/* Reads an Annoy file of geometry g into sections. */
int cp_annoy_read(const cp_geom *g, const cp_kernels *k, const unsigned char *img, size_t len,
                  const char *path, cp_sections *out, cp_err *err);

/* ---- io ---- */
int cp_io_map_file(const char *path, int prefault, void **addr, size_t *len, cp_err *err);
int cp_io_map_fd(int fd, uint64_t len, void **addr, size_t *out_len, const char *name, cp_err *err);
void cp_io_unmap(void *addr, size_t len);
/* Creates a unique temporary file beside path, returning its fd and name. */
int cp_io_temp_beside(const char *path, int *fd, char **tmp_name, cp_err *err);
int cp_io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *name,
                     cp_err *err);
int cp_io_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *name, cp_err *err);
/* fsync and rename tmp to path, then close fd and fsync the folder. On failure fd stays open
 * and tmp in place: the caller discards them or tries again. */
int cp_io_commit(int fd, const char *tmp, const char *path, cp_err *err);
void cp_io_discard(int fd, const char *tmp);
int cp_io_truncate(int fd, uint64_t size, const char *name, cp_err *err);

#endif
