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
#define CP_GRAPH_WIDTH 100  /* beam of a build search (HNSW's efConstruction) */
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

/* ---- checksums ---- */
uint32_t cp_crc32c(uint32_t crc, const void *data, size_t len);

/* ---- file sections ---- */
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
    CP_SEC_KIND_MAX = 12
};
#define CP_MAX_SECTIONS 16

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

/* What queries read. All pointers refer to memory owned elsewhere (see copse_index). */
typedef struct cp_view {
    uint64_t n_items;
    uint64_t n_split, n_leaves, n_leaf_items, n_trees;
    uint64_t n_labelled;
    int64_t max_id;
    const unsigned char *vectors;
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
    /* Annoy files only (never saved): search_k counts repeated candidates, as Annoy does, and
     * queue ties go to the larger Annoy node index, as in Annoy's std::priority_queue. */
    int count_repeats;
    const uint32_t *split_keys, *leaf_keys;
    cp_section sec[CP_SEC_KIND_MAX + 1]; /* by kind, as written to / read from the file */
} cp_view;

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
} cp_query;

/* Angular internal distance 2 - 2 cos from a dot product and two squared norms. */
float cp_angular(float pq, float pp, float qq);

/* Internal distance: smaller is nearer, monotone in the reported one. */
float cp_dist_internal(const cp_geom *g, const cp_kernels *k, const cp_view *v,
                       const cp_query *q, uint64_t slot);
/* Internal distance between two items (slots) as the graph sees them: for dot, between the
 * augmented vectors, so that neighbourhoods are symmetric. */
float cp_dist_items(const cp_geom *g, const cp_kernels *k, const unsigned char *rows,
                    const float *norms, uint32_t a, uint32_t b);
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
void cp_progress_step(cp_progress *p);
void cp_progress_end(cp_progress *p);

/* ---- the builder (ADDING state) ---- */
typedef struct cp_builder {
    unsigned char *rows;   /* in memory: cap rows; NULL for on-disk */
    int64_t *ids;          /* slot -> id */
    char **labels;         /* slot -> label or NULL; NULL until the first label */
    uint64_t n, cap;
    uint64_t *map_keys;    /* open addressing id -> slot; key = id + 1, 0 = empty */
    uint32_t *map_slots;
    uint64_t map_cap;
    int64_t max_id;
    int disk_fd;           /* on-disk build: the temporary file, else -1 */
    char *disk_path;       /* final path */
    char *disk_tmp;        /* temporary path */
} cp_builder;

/* ---- the handle ---- */
struct copse_index {
    cp_geom g;
    cp_kernels kern;
    copse_state_t state;
    uint64_t seed;
    int leaf_size;          /* as set (0 = auto) */
    int graph_degree;       /* as set for the next build (0 = no graph) */
    cp_progress progress;   /* build progress callback and its counters */
    int built_leaf_size;    /* as used by the forest in the view */
    cp_builder b;
    cp_view v;
    /* Ownership of the view's memory: exactly one of these holds it. */
    void *built_mem[CP_SEC_KIND_MAX + 1]; /* built in memory: one block per section */
    uint32_t *annoy_keys[2];  /* an Annoy file's split and leaf keys (cp_view) */
    void *map_addr;         /* loaded or on-disk built: the mapping */
    size_t map_len;
    void *buf_copy;         /* loaded from an unaligned buffer: our aligned copy */
    int from_file;          /* the view came from a file image (checksums exist) */
    const unsigned char *image;  /* that file image (mapping or buffer) */
    uint64_t image_len;
    int file_major, file_minor;
    cp_err err;
};

/* ---- module entry points ---- */
int cp_builder_init(cp_builder *b);
void cp_builder_free(cp_builder *b);
int cp_builder_slot(const cp_builder *b, int64_t id, uint64_t *slot);
const void *cp_builder_row(copse_index *ix, uint64_t slot, void *tmp);
int cp_builder_from_view(copse_index *ix);

int cp_view_slot(const cp_view *v, int64_t id, uint64_t *slot);
int64_t cp_view_id(const cp_view *v, uint64_t slot);

/* Builds n_trees throwaway trees (random streams first_stream, first_stream + 1, ...) with
 * leaves of at most leaf_size items, and calls fn for every leaf: tree after tree, the leaves
 * of one tree in parallel. Each item is in one leaf per tree, so fn may update state of the
 * items it is given without locks, and the result does not depend on the thread count. */
int cp_for_each_leaf(copse_index *ix, const unsigned char *rows, int n_trees, int leaf_size,
                     uint64_t first_stream, int n_threads,
                     void (*fn)(void *ctx, const uint32_t *items, uint32_t count, int worker),
                     void *ctx);
/* ---- the neighbour graph (graph.c) ---- */
typedef struct cp_graph_worker cp_graph_worker;
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
    float *unit;            /* angular: each inserted row scaled to length 1 */
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
void cp_graph_free(cp_graph *gr);
/* The graph's distance between two items: never negative, squared for angular, euclidean and
 * dot (on the augmented vectors), in the order of cp_dist_items. */
float cp_graph_dist(const cp_graph *gr, uint32_t a, uint32_t b);
/* A graph of n items inserted in a seeded random order from the item nearest the centroid:
 * *adj_out gets n x degree slots (UINT32_MAX after each list's end), the caller's to free. */
int cp_graph_construct(const cp_geom *g, const cp_kernels *k, const unsigned char *rows,
                       const float *norms, uint64_t n, uint32_t degree, uint64_t seed,
                       int n_threads, cp_progress *progress, uint32_t **adj_out);
/* The adapter from the handle: builds the graph section of ix->v from the rows. */
int cp_graph_build(copse_index *ix, const unsigned char *rows, int n_threads);
void cp_release_view(copse_index *ix);

/* Layout of the file for the view: offsets of each section. */
typedef struct cp_layout {
    uint64_t offset[CP_SEC_KIND_MAX + 1];
    uint64_t file_size;
} cp_layout;
void cp_layout_compute(const cp_view *v, cp_layout *lay);
/* Builds the 512-byte header for the view; crcs[kind] are the section checksums. */
void cp_header_encode(const copse_index *ix, const cp_layout *lay, const uint32_t *crcs,
                      unsigned char *hdr);
/* Checks an image and fills ix->v from it (dimension and metric must match ix->g unless
 * adopt, in which case ix->g is set from the file). */
int cp_image_open(copse_index *ix, const unsigned char *img, uint64_t len, int adopt);
/* The section table of a file image (its header already checked): entry count, and entry i. */
typedef struct cp_table_entry {
    uint32_t kind, crc;
    uint64_t offset, length;
} cp_table_entry;
uint32_t cp_table_count(const unsigned char *img);
cp_table_entry cp_table_get(const unsigned char *img, uint32_t i);
/* Writes the view's sections (all, or all but the vectors already in place) and the header
 * to fd, sized to the finished file. */
int cp_write_image(copse_index *ix, int fd, const char *name, int vectors_in_place);

/* Labels: sections from the builder's labels (NULL when there are none). */
int cp_labels_build(copse_index *ix);
int cp_labels_find(const cp_view *v, const char *label, uint64_t *slot);

/* ---- io ---- */
int cp_io_map_file(const char *path, int prefault, void **addr, size_t *len, cp_err *err);
int cp_io_map_fd(int fd, uint64_t len, void **addr, size_t *out_len, const char *name, cp_err *err);
void cp_io_unmap(void *addr, size_t len);
/* Creates a unique temporary file beside path, returning its fd and name. */
int cp_io_temp_beside(const char *path, int *fd, char **tmp_name, cp_err *err);
int cp_io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *name,
                     cp_err *err);
int cp_io_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *name, cp_err *err);
/* fsync, close and rename tmp to path, then fsync the folder. Closes fd in every case. */
int cp_io_commit(int fd, const char *tmp, const char *path, cp_err *err);
void cp_io_discard(int fd, const char *tmp);
int cp_io_truncate(int fd, uint64_t size, const char *name, cp_err *err);

#endif
