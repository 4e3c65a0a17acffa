/*
 * copse.h: approximate nearest neighbour search with a forest of random-projection trees.
 *
 * The whole public C API. One opaque handle (copse_index), one scratch handle for queries
 * (copse_scratch), status codes plus messages for every failure, no struct bodies exposed.
 *
 * Life of an index
 *   copse_new() -> ADDING: copse_add_item() as often as needed (re-adding an id replaces its
 *   vector); optionally copse_set_seed(), copse_set_leaf_size(), copse_on_disk_build().
 *   copse_build() -> BUILT: queries allowed. copse_save() writes a file.
 *   copse_load() / copse_load_buffer() -> LOADED: a view of a file or buffer, which stays
 *   mapped read-only and is never written.
 *   A BUILT or LOADED index is living: copse_add_item() adds or replaces items,
 *   copse_delete_item() removes them, without a rebuild; copse_compact() rebuilds it from its
 *   live items when the changes have grown (see "Changes after build").
 *   copse_unbuild() takes a BUILT index back to ADDING; copse_unload() takes a LOADED or BUILT
 *   index back to an empty ADDING state with the same dimension and metric.
 *   Every call checks the state it needs and returns COPSE_ERR_STATE when it is wrong.
 *
 * Status codes and messages
 *   Every fallible call returns int: COPSE_OK (0) or a negative COPSE_ERR_* code.
 *   copse_strerror(code) gives static text for a code. copse_errmsg(index) gives the detail
 *   of the last failed non-const call on that index ("add_item: vector component 3 is NaN");
 *   copse_scratch_errmsg(scratch) the detail of the last failed query made with that scratch.
 *   Both strings stay valid until the next call on the same handle.
 *   The library never prints, exits or aborts on a caller's error.
 *
 * Threads
 *   Any number of threads may query a BUILT or LOADED index at once, each with its own
 *   copse_scratch (or NULL, which allocates a temporary one per call), while one other thread
 *   changes it: copse_add_item(s), copse_delete_item(s), copse_set_tags(), copse_compact() and
 *   copse_save() may run beside queries; a query sees each change entirely or not at all, and waits at most for
 *   one small step of a change (a delete, or 64 inserted items). Every other call that changes
 *   an index (build, load, unload, unbuild, setters) needs exclusive access, and so do two
 *   changing calls at once.
 *
 * Ids
 *   Items are named by non-negative 64-bit ids, which need not be dense: memory and file size
 *   grow with the number of items, not the largest id. At most COPSE_MAX_ITEMS items.
 *
 * Distances reported
 *   angular   sqrt(2 - 2 cos(u, v))  (0 for identical directions, 2 for opposite)
 *   euclidean |u - v|_2  (not squared)
 *   manhattan |u - v|_1
 *   dot       u . v  (an inner product: larger is closer; results sorted by decreasing value)
 *   hamming   number of differing bits; vectors are given as floats, a component > 0.5 is a
 *             set bit, and are stored bit-packed in 64-bit words
 */
#ifndef COPSE_H
#define COPSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(COPSE_BUILDING) && defined(__GNUC__)
#define COPSE_API __attribute__((visibility("default")))
#else
#define COPSE_API
#endif

/* Library version (of this code) and file-format version (of the files it writes) are
 * separate numbers. A file with the same major format version and any minor is readable. */
#define COPSE_VERSION_MAJOR 0
#define COPSE_VERSION_MINOR 1
#define COPSE_VERSION_PATCH 0
#define COPSE_VERSION_NUMBER \
    (COPSE_VERSION_MAJOR * 10000 + COPSE_VERSION_MINOR * 100 + COPSE_VERSION_PATCH)
/* The newest file format this library reads and writes. An index with changes after build
 * (added or deleted items) is saved as 2.0, which 1.x readers refuse; any other (tags changed
 * after build included) is saved as 1.2 (1.1: the neighbour graph section; 1.2: item tags),
 * which 1.x readers read. Quantized vectors (copse_set_storage) make either one minor later,
 * 1.3 or 2.1, which older readers refuse. Added items linked into the base's graph (a base
 * with a graph) make a changed file 2.2, which older readers refuse, and 2.3 with them filed in
 * the forest's leaves (a 2.2 reader skips that section and files them itself). */
#define COPSE_FORMAT_MAJOR 2
#define COPSE_FORMAT_MINOR 3

/* Status codes. Library codes sit in a reserved negative range so they never collide with
 * errno values or with a caller's own codes. */
#define COPSE_OK 0
#define COPSE_ERR_ARG (-30901)       /* an argument is out of range (k < 0, search_k < -1, ...) */
#define COPSE_ERR_DIM (-30902)       /* a vector or file has the wrong dimension */
#define COPSE_ERR_VALUE (-30903)     /* a vector component is NaN or infinite */
#define COPSE_ERR_ID (-30904)        /* an id is negative or beyond COPSE_MAX_ID */
#define COPSE_ERR_STATE (-30905)     /* the call is not allowed in the index's current state */
#define COPSE_ERR_NOTFOUND (-30906)  /* the item id (or label) is not in the index */
#define COPSE_ERR_NOMEM (-30907)     /* memory could not be allocated, or a size overflows */
#define COPSE_ERR_IO (-30908)        /* a file could not be opened, read, written or mapped */
#define COPSE_ERR_NOTCOPSE (-30909)  /* the file or buffer is not a copse index */
#define COPSE_ERR_VERSION (-30910)   /* the file's format version is newer than this library's */
#define COPSE_ERR_CORRUPT (-30911)   /* the file is damaged: checksum, bounds or structure */
#define COPSE_ERR_METRIC (-30912)    /* unknown metric, or a file's metric is not the expected */

typedef enum copse_metric {
    COPSE_ANGULAR = 0,
    COPSE_EUCLIDEAN = 1,
    COPSE_MANHATTAN = 2,
    COPSE_DOT = 3,
    COPSE_HAMMING = 4
} copse_metric;

/* How an index stores its vectors (copse_set_storage). */
typedef enum copse_storage {
    COPSE_STORAGE_F32 = 0, /* float32, exactly as added (the default) */
    COPSE_STORAGE_F16 = 1, /* IEEE half: 2 bytes a component, about 3 significant digits */
    COPSE_STORAGE_I8 = 2   /* 8-bit codes, 1 byte a component: 256 levels per dimension */
} copse_storage;

/* States, as copse_state() reports them. */
typedef enum copse_state_t {
    COPSE_STATE_ADDING = 0,
    COPSE_STATE_BUILT = 1,
    COPSE_STATE_LOADED = 2
} copse_state_t;

#define COPSE_MAX_ID INT64_MAX
#define COPSE_MAX_ITEMS 4294967294u /* items are numbered internally by 32-bit slots */
#define COPSE_MAX_DIM 1000000
#define COPSE_MAX_TREES 100000

#define COPSE_MAX_TAG 63 /* item tags are 0..COPSE_MAX_TAG */

typedef struct copse_index copse_index;
typedef struct copse_scratch copse_scratch;
typedef struct copse_filter copse_filter;

/* ---- versions and messages ------------------------------------------------------------ */

/* COPSE_VERSION_NUMBER of the library actually linked (tools compare it with the header's). */
COPSE_API int copse_version_number(void);
/* "0.1.0": static storage. */
COPSE_API const char *copse_version_string(void);
/* Writes the newest file-format version this library reads and writes. Either may be NULL. */
COPSE_API void copse_format_version(int *major, int *minor);
/* Static text for a status code; never NULL ("unknown status code" for foreign values). */
COPSE_API const char *copse_strerror(int status);
/* Detail of the last failed non-const call on ix ("" if none). NULL ix gives "".
 * Valid until the next call on ix. Calls that take a const index (queries, lookups,
 * distances) may run on many threads at once and never change it: when one fails, its status
 * says why (copse_strerror), and a query's detail is in its scratch (copse_scratch_errmsg). */
COPSE_API const char *copse_errmsg(const copse_index *ix);

/* ---- memory ------------------------------------------------------------------------------ */

/* The functions every allocation of the library goes through (the C library's by default).
 * Process-wide, like sqlite3_config: call it before the first copse_new, copse_open or
 * copse_scratch_new; from then on it returns COPSE_ERR_STATE. NULL restores the default. The
 * functions must be thread-safe (builds and batches allocate on worker threads) and behave as
 * malloc, realloc and free; ctx is passed back to them. (qsort inside the C library may still
 * allocate with malloc.) Errors: COPSE_ERR_STATE, COPSE_ERR_ARG (a NULL function). */
typedef struct copse_allocator {
    void *(*malloc)(void *ctx, size_t size);
    void *(*realloc)(void *ctx, void *ptr, size_t size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} copse_allocator;
COPSE_API int copse_set_allocator(const copse_allocator *a);

/* ---- metrics --------------------------------------------------------------------------- */

/* Parses "angular" (also "cosine"), "euclidean", "manhattan", "dot", "hamming".
 * Returns COPSE_OK or COPSE_ERR_METRIC. */
COPSE_API int copse_metric_from_name(const char *name, copse_metric *out);
/* Canonical name, or NULL for a value outside the enum. Static storage. */
COPSE_API const char *copse_metric_name(copse_metric metric);

/* ---- lifecycle ------------------------------------------------------------------------- */

/* Creates an empty index in the ADDING state for vectors of dimension dim (for hamming: dim
 * bits). *out is set even on failure when memory allows, so copse_errmsg(*out) can explain;
 * the caller frees it with copse_free() in every case.
 * Errors: COPSE_ERR_DIM (dim < 1 or > COPSE_MAX_DIM), COPSE_ERR_METRIC, COPSE_ERR_NOMEM. */
COPSE_API int copse_new(int dim, copse_metric metric, copse_index **out);
/* Releases everything the index owns (unmapping a loaded file). NULL is accepted.
 * An on-disk build that was never completed removes its temporary file. */
COPSE_API void copse_free(copse_index *ix);

/* Seed of the random streams used by build (default 1234567890987654321, so builds are
 * reproducible unless a seed is set). For one seed and the same items added in the same order,
 * the saved file is byte-identical whatever the thread count. ADDING only. */
COPSE_API int copse_set_seed(copse_index *ix, uint64_t seed);
/* Largest number of items in one leaf, 2..65535; 0 (the default) picks one from the
 * dimension at build: clamp(dim + 2, 16, 32) beside a graph of degree 32 or less,
 * clamp(dim + 2, 16, 64) beside a wider one, clamp(dim + 2, 16, 1024) without a graph
 * (copse_set_graph_degree; Annoy's leaves hold dim + 2 items too), 32 for hamming.
 * Larger leaves make smaller files and faster builds; smaller leaves make each probe of the
 * forest more selective. ADDING only. */
COPSE_API int copse_set_leaf_size(copse_index *ix, int leaf_size);

/* Progress of copse_build: fn(ctx, fraction) with fraction rising from 0 to 1, once per tree
 * and per graph step (a few dozen to a few thousand calls), from the building threads but
 * never two at once. fn must not call the library on this index. NULL turns it off.
 * Any state. */
typedef void (*copse_progress_fn)(void *ctx, double fraction);
COPSE_API int copse_set_progress(copse_index *ix, copse_progress_fn fn, void *ctx);

/* Degree of the neighbour graph built beside the forest: each item lists up to this many items
 * near it, and queries walk those lists from the forest's candidates, which reaches high
 * recall with far fewer distance computations than the forest alone. 0 builds no graph (the
 * forest alone, as Annoy); at most 255. Costs 4 bytes per item per degree in the file.
 * Unset, the build picks it: 32, or for 200,000 items or more 0.44 of the dimension clamped to
 * 32..44 (a large set navigates better with longer lists; ids of at most 0.44 of a float row
 * keep the file within 1.5x the raw vectors), and with quantized storage (f16, i8:
 * copse_set_storage, as set when build runs) 0.64 of the dimension clamped to 32..64, since
 * the smaller rows leave room for longer lists. ADDING only. */
COPSE_API int copse_set_graph_degree(copse_index *ix, int degree);
/* Degree of the built or loaded graph (0: none), or while ADDING the one a build would use
 * now (the setting, or the automatic degree for the items added so far). */
COPSE_API int copse_graph_degree(const copse_index *ix);

/* How build stores the vectors, for a smaller file and less memory to read per distance:
 *   COPSE_STORAGE_F32  float32 as added (the default);
 *   COPSE_STORAGE_F16  IEEE half precision, half the bytes; build fails with COPSE_ERR_VALUE
 *                      when a component's magnitude is 65520 or more (beyond half's range);
 *   COPSE_STORAGE_I8   8-bit scalar codes, a quarter of the bytes: each dimension's range
 *                      over the items is cut into 255 equal steps (trained at build).
 * The forest and the graph are built from the full-precision vectors; only the stored
 * vectors are quantized, and queries (which stay float) rank items by their distance to the
 * stored codes. So, with F16 or I8: copse_get_item returns the decoded vector (an
 * approximation of the one added); reported distances, copse_get_distance and the exact
 * queries (copse_exact_*, search_batch's exact flag) use the decoded vectors, so "exact" means
 * exact over what is stored; an item's distance to itself may be a rounding error above 0.
 * Items added after build (copse_add_item on a BUILT or LOADED index) are kept at full
 * precision beside the quantized base until copse_compact, which rebuilds everything, the
 * base's decoded vectors included, with the same storage. copse_unbuild gives the builder the
 * decoded vectors. A file with quantized vectors is format 1.3 (2.1 with changes after
 * build), which older readers refuse (COPSE_ERR_VERSION); an index with no items stores
 * nothing and saves as float32.
 * ADDING only (any time before build). Errors: COPSE_ERR_STATE (built or loaded),
 * COPSE_ERR_ARG (an unknown storage; F16 or I8 for hamming, whose bits are packed already;
 * F16 or I8 with copse_on_disk_build, which writes float32 rows into the file as they are
 * added). */
COPSE_API int copse_set_storage(copse_index *ix, copse_storage storage);
/* The storage of the built or loaded index, or the setting while ADDING. */
COPSE_API copse_storage copse_get_storage(const copse_index *ix);
/* "f32", "f16", "i8"; NULL for an unknown value. */
COPSE_API const char *copse_storage_name(copse_storage storage);
/* The storage named "f32", "f16" or "i8". Errors: COPSE_ERR_ARG (unknown or NULL). */
COPSE_API int copse_storage_from_name(const char *name, copse_storage *out);

/* Sends items to a file instead of memory, so data larger than RAM can be indexed: vectors
 * go to a temporary file beside path as they are added, build writes the forest there, and
 * the finished file is renamed to path (atomically, after fsync). Afterwards the index is
 * BUILT and maps that file. Must be called before the first copse_add_item.
 * Errors: COPSE_ERR_STATE, COPSE_ERR_IO (the folder is not writable), COPSE_ERR_ARG (a
 * quantized storage is set: see copse_set_storage). */
COPSE_API int copse_on_disk_build(copse_index *ix, const char *path);

/* Distance and checksum kernels are chosen at copse_new from the CPU's features: "avx512",
 * "avx2" (x86-64), "neon" (AArch64) or "scalar" (the reference, always available; its
 * CRC32C is slicing-by-8). copse_set_kernels forces one set, for tests and
 * comparisons; COPSE_ERR_ARG when the name is unknown or this CPU cannot run it. Any state. */
COPSE_API int copse_set_kernels(copse_index *ix, const char *name);
COPSE_API const char *copse_kernels_name(const copse_index *ix);

/* ---- adding ---------------------------------------------------------------------------- */

/* Adds (or replaces) item id with vector v of copse_dim() floats, copied.
 * Errors: COPSE_ERR_STATE (not ADDING), COPSE_ERR_ID (id < 0), COPSE_ERR_VALUE (NaN or
 * infinite component), COPSE_ERR_NOMEM (also past COPSE_MAX_ITEMS), COPSE_ERR_IO (on-disk). */
COPSE_API int copse_add_item(copse_index *ix, int64_t id, const float *v);
/* Adds n items: ids[i] with the row vs[i * dim .. i * dim + dim - 1]. All rows are checked
 * before any is added, so on error nothing was added. ids may be NULL: ids first_id + i then
 * (first_id is ignored otherwise). */
COPSE_API int copse_add_items(copse_index *ix, int64_t n, const int64_t *ids, int64_t first_id,
                              const float *vs);
/* Attaches a label (any bytes, NUL-terminated here, at most 65535 bytes) to an added item; it
 * is saved in the index and can be looked up both ways. ADDING only.
 * Errors: COPSE_ERR_STATE, COPSE_ERR_NOTFOUND (id not added), COPSE_ERR_ARG (too long). */
COPSE_API int copse_set_label(copse_index *ix, int64_t id, const char *label);

/* Gives an item the set of n tags (each 0..COPSE_MAX_TAG; repeats are harmless), replacing
 * any it had; n = 0 clears them. Tags are saved in the index (a section written only when
 * some item has one: 8 bytes per item) and queries can be restricted to items carrying any
 * or all of a set of tags (copse_filter_new_tags). Re-adding an item (before or after build)
 * replaces its vector and keeps its tags; an item deleted and added again starts with none.
 * Every state. On a BUILT or LOADED index this is a change like an add or a delete (see
 * "Threads"): queries running beside it see the item's old tags or its new ones, and every
 * query started after it returns sees the new ones, also through tag filters made before
 * it. The first change to an item of the base copies the base's tags into memory (8 bytes
 * per item; a loaded file is never written) and saving writes them; changing only tags of
 * the base keeps the file at format 1.2.
 * Errors: COPSE_ERR_NOTFOUND (no such item: never added, or deleted), COPSE_ERR_ARG (a tag
 * out of range, n < 0, or tags NULL with n > 0), COPSE_ERR_NOMEM. */
COPSE_API int copse_set_tags(copse_index *ix, int64_t id, const uint32_t *tags, int n);
/* Item id's tags as they are now, as a mask: bit t set for tag t (0 when it has none).
 * Every state. Errors: COPSE_ERR_NOTFOUND (never added, or deleted), COPSE_ERR_ARG (NULL). */
COPSE_API int copse_get_tags(const copse_index *ix, int64_t id, uint64_t *mask);

/* ---- building ---------------------------------------------------------------------------- */

/* Builds n_trees trees with n_threads worker threads (n_threads <= 0: one per online CPU;
 * if the system refuses a thread, the others do its share).
 * n_trees = -1 picks the count: without a graph, trees are added until the forest (split
 * nodes, leaves and their items) takes half the space of the vectors (estimated from the first
 * tree), at least 1, at most 1000, so the file stays near 1.5x the raw vectors; with a graph it
 * is one tree, which only seeds the graph's walk (the file stays within 1.5x the raw float32
 * vectors with the automatic degree). ADDING -> BUILT. An index with no items builds to an
 * empty forest (no trees), saves and loads, and answers every query with no results, as
 * Annoy's does.
 * A failed build leaves the index ADDING with every item it had, so it can be built again
 * (for an on-disk build: whatever failed before the finished file is renamed into place,
 * a full disk, no memory, something in the way at the path, keeps the temporary file).
 * Errors: COPSE_ERR_STATE, COPSE_ERR_ARG (n_trees 0, < -1 or > COPSE_MAX_TREES),
 * COPSE_ERR_NOMEM, COPSE_ERR_IO (on-disk). */
COPSE_API int copse_build(copse_index *ix, int n_trees, int n_threads);
/* Drops the trees of a BUILT in-memory index and returns to ADDING with its items kept.
 * Errors: COPSE_ERR_STATE (LOADED, on-disk, not built, or changed since build: compact first). */
COPSE_API int copse_unbuild(copse_index *ix);

/* ---- changes after build ------------------------------------------------------------------
 *
 * copse_add_item() and copse_add_items() also work on a BUILT or LOADED index: a new id is
 * added, an existing one gets the new vector (the old is deleted). Items added after build
 * are linked into the base's neighbour graph as they arrive (in memory: a loaded file is
 * never written), so a query walks base and added items in one walk, as a fresh build's
 * would (a base without a graph: the added items get a graph of their own, walked beside
 * the base's forest); deleted items never appear in any result (by vector, by item, exact,
 * batch), and queries still return k results whenever k live items exist. copse_n_items()
 * counts the live items; copse_get_item() of a deleted id is COPSE_ERR_NOTFOUND. Items added
 * after build carry no label; their tags are set with copse_set_tags, as every item's.
 * copse_save() writes the base and its changes as one file (format 2.0, or 2.2 and 2.3 with added
 * items linked into the base's graph, which 1.x readers refuse rather than return deleted
 * items); loading it brings the changes back. A loaded file is never written: changes live
 * in memory until saved.
 *
 * Deleted items keep their place (they still guide the walk, and lists are repaired around
 * them) and added ones hold memory beside the base (their rows, and a copy of the base's
 * lists): each costs memory and a little speed.
 * copse_compact() rebuilds the index from its live items alone, which frees both and brings
 * recall and speed back to a fresh build's. It pays off once deleted plus added items reach
 * about a quarter of the base (measured in bench/RESULTS.md); copse_set_compact_threshold()
 * makes adds and deletes compact by themselves past a fraction of the base. */

/* Deletes items: all of them, or none when one is not in the index (COPSE_ERR_NOTFOUND naming
 * it); an id listed twice is deleted once. BUILT or LOADED.
 * Errors: COPSE_ERR_STATE (ADDING), COPSE_ERR_NOTFOUND, COPSE_ERR_ARG (n < 0, NULL ids). */
COPSE_API int copse_delete_item(copse_index *ix, int64_t id);
COPSE_API int copse_delete_items(copse_index *ix, int64_t n, const int64_t *ids);
/* Rebuilds a BUILT or LOADED index from its live items with the same seed, tree count, leaf
 * size and graph degree (n_threads as in copse_build), leaving it BUILT in memory with no
 * changes; a loaded file stays as it was until copse_save. On failure nothing changes.
 * Errors: COPSE_ERR_STATE, COPSE_ERR_NOMEM. */
COPSE_API int copse_compact(copse_index *ix, int n_threads);
/* Adds and deletes compact the index by themselves once deleted plus added items reach
 * fraction x the base's items (0, the default: never). Errors: COPSE_ERR_ARG (negative). */
COPSE_API int copse_set_compact_threshold(copse_index *ix, double fraction);
/* Threads an add after build links its items with (default 1; <= 0: one per online CPU). */
COPSE_API int copse_set_change_threads(copse_index *ix, int n_threads);
/* Items deleted or replaced since the base was built, still held until copse_compact. */
COPSE_API int64_t copse_n_deleted(const copse_index *ix);
/* Items added (or replaced) since the base was built. */
COPSE_API int64_t copse_n_added(const copse_index *ix);

/* ---- files ----------------------------------------------------------------------------- */

/* Writes a BUILT or LOADED index to path atomically: a temporary file in the same folder is
 * written, fsynced and renamed over path, so a crash or a full disk never leaves a partial
 * file under path (and an existing file there stays intact until the rename). Something at
 * path that is not a regular file (a directory, a device) is never replaced.
 * Errors: COPSE_ERR_STATE, COPSE_ERR_IO (with errno's text in copse_errmsg). */
COPSE_API int copse_save(copse_index *ix, const char *path);

/* Writes the bytes copse_save would write into buf, which must hold copse_file_size(ix)
 * bytes (the rest of a larger buffer is left as it was). BUILT or LOADED.
 * Errors: COPSE_ERR_STATE, COPSE_ERR_ARG (buf NULL or too small). */
COPSE_API int copse_save_buffer(copse_index *ix, void *buf, size_t len);

/* Maps path read-only and shared (MAP_SHARED: every process that loads one file shares its
 * pages) and checks its header, section table and sizes (not every checksum: see
 * copse_verify). prefault != 0 reads every page in now. The index must be in the ADDING
 * state with no items; its dimension and metric must match the file's (COPSE_ERR_DIM,
 * COPSE_ERR_METRIC). copse_open() makes the index from the file instead. Pointers into the
 * file (labels) stay valid until unload or free. The file must not be truncated or rewritten
 * in place while loaded (the mapping would fault); copse_save never does that: it renames a
 * new file over the old, and processes that loaded the old one keep reading it.
 * Errors: COPSE_ERR_IO, COPSE_ERR_NOTCOPSE, COPSE_ERR_VERSION, COPSE_ERR_CORRUPT,
 * COPSE_ERR_DIM, COPSE_ERR_METRIC, COPSE_ERR_STATE. */
COPSE_API int copse_load(copse_index *ix, const char *path, int prefault);
/* As copse_load, from a caller's buffer of len bytes, which must stay valid and unchanged
 * until the index is unloaded or freed. The buffer need not be aligned (an unaligned one is
 * copied once). */
COPSE_API int copse_load_buffer(copse_index *ix, const void *buf, size_t len);
/* Reads an Annoy (1.17) .ann file written with this index's dimension and metric (Annoy files
 * have no header, so these must match what the file was built with). The result is LOADED and
 * keeps Annoy's trees node for node; search_k counts candidates with repeats, as Annoy does,
 * so queries give Annoy's neighbours. The file is read into memory, not mapped; copse_save
 * then writes an ordinary copse file (whose queries count distinct candidates).
 * Errors: COPSE_ERR_IO, COPSE_ERR_NOTCOPSE (an empty file), COPSE_ERR_DIM (the size is not a
 * whole number of nodes for this dimension and metric, or the trees do not fit them),
 * COPSE_ERR_CORRUPT (a reference out of bounds), COPSE_ERR_STATE. */
COPSE_API int copse_load_annoy(copse_index *ix, const char *path);
/* Opens path as a new LOADED index whose dimension and metric come from the file. *out is
 * set even on failure when memory allows (free it with copse_free). */
COPSE_API int copse_open(const char *path, int prefault, copse_index **out);
/* Returns a LOADED or BUILT index to an empty ADDING state (dimension and metric kept). */
COPSE_API int copse_unload(copse_index *ix);

/* Full check of a BUILT or LOADED index: every section checksum (for a file or buffer), every
 * node and leaf reference, every tree reached from its root once, every item in every tree.
 * Returns COPSE_OK or COPSE_ERR_CORRUPT with the first fault in copse_errmsg
 * ("tree 3: split node 812 child 91234 >= node count 90000"). */
COPSE_API int copse_verify(copse_index *ix);

/* ---- facts ----------------------------------------------------------------------------- */

COPSE_API int copse_dim(const copse_index *ix);
COPSE_API copse_metric copse_get_metric(const copse_index *ix);
COPSE_API copse_state_t copse_state(const copse_index *ix);
/* Number of distinct items added (not the largest id + 1). */
COPSE_API int64_t copse_n_items(const copse_index *ix);
/* Largest id added, or -1 when there is none. */
COPSE_API int64_t copse_max_id(const copse_index *ix);
/* Trees in the forest (0 while ADDING). */
COPSE_API int copse_n_trees(const copse_index *ix);
/* The search effort a query of k items given search_k runs with: search_k itself, or for -1
 * the default (see copse_search_vector), either capped at what the index can deliver. 0 while
 * ADDING, for a NULL index, or for k < 1 or search_k < -1. */
COPSE_API int64_t copse_search_effort(const copse_index *ix, int64_t k, int64_t search_k);
/* Split nodes and leaves in the whole forest (0 while ADDING). Either may be NULL. */
COPSE_API void copse_n_nodes(const copse_index *ix, int64_t *n_split, int64_t *n_leaves);
/* Leaf size used by the forest (or set for the next build). */
COPSE_API int copse_leaf_size(const copse_index *ix);
COPSE_API uint64_t copse_seed(const copse_index *ix);
/* Size in bytes of the file copse_save would write (BUILT or LOADED), else 0. */
COPSE_API uint64_t copse_file_size(const copse_index *ix);
/* Format version of a LOADED file (for BUILT: the version save writes). Either may be NULL. */
COPSE_API void copse_file_version(const copse_index *ix, int *major, int *minor);
/* Sections of the file a BUILT or LOADED index has or would save (0 while ADDING, and for an
 * empty index). */
COPSE_API int copse_n_sections(const copse_index *ix);
/* Section i (0 <= i < copse_n_sections), in file order: *name is static ("vectors", "norms",
 * "slot_ids", "id_order", "nodes", "leaves", "leaf_items", "roots", "label_offsets",
 * "label_data", "label_order", "graph", "quant", "tags"), with its offset and length in bytes
 * in the file and its CRC32C (read from the file when loaded, computed otherwise).
 * Out-parameters may be NULL.
 * Errors: COPSE_ERR_ARG (i out of range). */
COPSE_API int copse_section_info(const copse_index *ix, int i, const char **name,
                                 uint64_t *offset, uint64_t *length, uint32_t *checksum);
/* 1 when id was added, 0 otherwise. */
COPSE_API int copse_has_item(const copse_index *ix, int64_t id);
/* Id of the item at position pos (0 <= pos < copse_n_items) in the index's internal order,
 * for walking all items. Errors: COPSE_ERR_ARG. */
COPSE_API int copse_item_id_at(const copse_index *ix, int64_t pos, int64_t *id);

/* Copies item id's vector into out (copse_dim() floats), exactly as added (hamming: 0 or 1);
 * with quantized storage (copse_set_storage), the decoded stored vector: an approximation.
 * Errors: COPSE_ERR_NOTFOUND. Works in every state. */
COPSE_API int copse_get_item(const copse_index *ix, int64_t id, float *out);
/* Distance between two items, as reported by queries. Errors: COPSE_ERR_NOTFOUND. */
COPSE_API int copse_get_distance(const copse_index *ix, int64_t a, int64_t b, float *out);
/* Distance between two vectors of copse_dim() floats under the index's metric.
 * Errors: COPSE_ERR_VALUE (a NaN or infinite component; no detail message, as ix is const). */
COPSE_API int copse_distance(const copse_index *ix, const float *a, const float *b, float *out);
/* Label of item id: *label points at *len bytes (NUL-terminated) inside the index, valid
 * until the index is unloaded, unbuilt or freed; NULL and 0 when the item has none.
 * Errors: COPSE_ERR_NOTFOUND. */
COPSE_API int copse_get_label(const copse_index *ix, int64_t id, const char **label,
                              size_t *len);
/* Id of the item with this label (the lowest such id when labels repeat).
 * BUILT or LOADED. Errors: COPSE_ERR_NOTFOUND, COPSE_ERR_STATE. */
COPSE_API int copse_find_label(const copse_index *ix, const char *label, int64_t *id);
/* 1 when the index has labels. */
COPSE_API int copse_has_labels(const copse_index *ix);

/* ---- queries ----------------------------------------------------------------------------- */

/* Scratch memory for queries: one per thread, reused across queries and indexes.
 * Holds that thread's last query error message. */
COPSE_API int copse_scratch_new(copse_scratch **out);
COPSE_API void copse_scratch_free(copse_scratch *s);
COPSE_API const char *copse_scratch_errmsg(const copse_scratch *s);

/* Approximate k nearest items to vector q (copse_dim() floats). search_k sets the effort;
 * larger is slower and more accurate; -1 means k * n_trees (as Annoy), and with a graph at
 * least 3 * k (the forest then has one tree by default, which only seeds the walk). Without a graph it is
 * the number of distinct candidate items gathered from the forest before they are ranked
 * exactly. With a graph (copse_graph_degree) it is the width of the graph walk: the forest
 * gathers about search_k / 2 seeds, and the walk keeps the max(k, search_k) nearest items it
 * has seen, expanding the nearest unexpanded one until none can improve them. 0 finds nothing. Results are sorted nearest first
 * (for dot: largest inner product first); ids[i] and, when dists is not NULL, dists[i] are
 * written for i < *n_out, where *n_out = min(k, items found) (fewer than k when the index
 * holds fewer items). scratch may be NULL. BUILT or LOADED.
 * Errors: COPSE_ERR_STATE, COPSE_ERR_ARG (k < 0, search_k < -1), COPSE_ERR_VALUE (NaN or
 * infinite component), COPSE_ERR_NOMEM, COPSE_ERR_CORRUPT (a node reference out of bounds
 * met on the way: a damaged file). */
COPSE_API int copse_search_vector(const copse_index *ix, copse_scratch *scratch, const float *q,
                                  int64_t k, int64_t search_k, int64_t *ids, float *dists,
                                  int64_t *n_out);
/* As copse_search_vector with item id's own vector as the query (the item itself is among the
 * results, at distance 0). Errors also: COPSE_ERR_NOTFOUND. */
COPSE_API int copse_search_item(const copse_index *ix, copse_scratch *scratch, int64_t id,
                                int64_t k, int64_t search_k, int64_t *ids, float *dists,
                                int64_t *n_out);
/* Exact k nearest by brute force over every item: the ground truth for recall. */
COPSE_API int copse_exact_vector(const copse_index *ix, copse_scratch *scratch, const float *q,
                                 int64_t k, int64_t *ids, float *dists, int64_t *n_out);
COPSE_API int copse_exact_item(const copse_index *ix, copse_scratch *scratch, int64_t id,
                               int64_t k, int64_t *ids, float *dists, int64_t *n_out);

/* Answers nq queries (rows of qs, nq * copse_dim() floats) with n_threads threads
 * (<= 0: one per online CPU). Row i's results go to ids[i * k ..] and dists[i * k ..] (dists
 * may be NULL); slots past a row's result count hold id -1 and distance NaN; counts (may be
 * NULL) gets each row's count. exact != 0 answers by brute force (search_k is then ignored).
 * Every row is checked before any work starts. scratch (may be NULL) receives the error
 * message. Errors: as copse_search_vector. */
COPSE_API int copse_search_batch(const copse_index *ix, copse_scratch *scratch, const float *qs,
                                 int64_t nq, int64_t k, int64_t search_k, int exact,
                                 int n_threads, int64_t *ids, float *dists, int64_t *counts);

/* ---- filtered queries --------------------------------------------------------------------- */

/* A filter says which items a query may return. It is made once and reused by any number of
 * queries, on any threads at once (it is never changed after it is made); free it with
 * copse_filter_free (NULL is accepted).
 *
 * Filters by id and by tag are made for one BUILT or LOADED index and resolved then into that
 * index's items (a sorted array of 4 bytes per allowed item, or a bitmap of one bit per item
 * when that is smaller), so queries do no id lookups. They keep working through the index's
 * changes: items added after build are matched by id or by their tags, a tag filter sees
 * tags changed after it was made at once, and a compaction breaks no filter. Where the set
 * made no longer describes the index (items added after build; after a tag change, for tag
 * filters; after a compaction), queries test the condition per item instead: for tags as
 * fast in the graph walk (one 8-byte read per item), but with no list of the allowed items,
 * so their count is estimated from 256 sampled items (as a callback's) and a query that ranks
 * the few allowed items finds them with a pass over every item's tags (0.08 of a new
 * filter's speed at 0.1% of Fashion-MNIST, bench/FILTERED.md); for ids at the cost of a
 * binary search among them per item the walk reaches. A new filter is the fast one again. Using a filter with another
 * index, or with the same index after it was unbuilt, rebuilt, unloaded or loaded again,
 * fails with COPSE_ERR_ARG; make a new filter then. The filter does not refer to the index's
 * memory: it may be freed before or after the index.
 *
 * Errors of the makers: COPSE_ERR_ARG (a NULL argument, n < 0), COPSE_ERR_STATE (the index is
 * ADDING), COPSE_ERR_NOMEM. *out is NULL on failure; there is no detail message (the index is
 * const, so filters may be made from many threads). */

/* Allows the items whose ids are among ids[0 .. n): in any order, repeats harmless. Ids that
 * are not in the index (negative ones included) are ignored: an allow-list may name a whole
 * catalogue of which the index holds a part. n = 0 allows nothing. */
COPSE_API int copse_filter_new_ids(const copse_index *ix, const int64_t *ids, int64_t n,
                                   copse_filter **out);
/* Allows the items whose tags (copse_set_tags) include at least one of any_mask's and all of
 * all_mask's (bit t for tag t; any_mask = 0 puts no "any" condition, so any_mask = all_mask
 * = 0 allows every item). In an index without tags every item has none. */
COPSE_API int copse_filter_new_tags(const copse_index *ix, uint64_t any_mask, uint64_t all_mask,
                                    copse_filter **out);
/* Allows the items for which allow(ctx, id) returns nonzero. Fits any index. allow is called
 * by the querying thread, during the query, at most once per item reached plus 256 times
 * per approximate query to estimate how many items pass (by every worker of a batch at once, so it must
 * be thread-safe then), and must not call the library on the queried index. Its answers must
 * not change during a query. Errors: COPSE_ERR_ARG (allow or out NULL), COPSE_ERR_NOMEM. */
COPSE_API int copse_filter_new_callback(int (*allow)(void *ctx, int64_t id), void *ctx,
                                        copse_filter **out);
COPSE_API void copse_filter_free(copse_filter *filter);
/* Items an id or tag filter allowed when it was made (ids not in the index are not counted);
 * -1 for a callback filter or NULL. */
COPSE_API int64_t copse_filter_count(const copse_filter *filter);

/* The queries above, returning only items the filter allows (filter NULL: every item, exactly
 * as the unfiltered call). Results are sorted as usual, and *n_out = min(k, allowed items)
 * whenever the effort reaches that many: a filter that allows nothing gives COPSE_OK with
 * *n_out = 0. How each query is answered depends on how many items pass:
 *   - few (roughly m^2 <= 8 * max(k, search_k) * n for m allowed of n items, and always for
 *     the exact calls): every allowed item is ranked, so the answer is the true top-k;
 *   - more: the graph walk (or, without a graph, the forest) passes through disallowed items
 *     without returning them, so they still lead to allowed ones, and keeps going until
 *     max(k, search_k) allowed items are found; when that would cost more than ranking
 *     every allowed item, or finds fewer than k, the allowed items are ranked instead.
 * A callback filter's count is estimated per query from 256 sampled items.
 * Errors: as the unfiltered calls, and COPSE_ERR_ARG for a filter made for another index or
 * for this one before it was rebuilt or reloaded (the detail is in the scratch). */
COPSE_API int copse_search_vector_filtered(const copse_index *ix, copse_scratch *scratch,
                                           const float *q, int64_t k, int64_t search_k,
                                           const copse_filter *filter, int64_t *ids,
                                           float *dists, int64_t *n_out);
COPSE_API int copse_search_item_filtered(const copse_index *ix, copse_scratch *scratch,
                                         int64_t id, int64_t k, int64_t search_k,
                                         const copse_filter *filter, int64_t *ids, float *dists,
                                         int64_t *n_out);
COPSE_API int copse_exact_vector_filtered(const copse_index *ix, copse_scratch *scratch,
                                          const float *q, int64_t k, const copse_filter *filter,
                                          int64_t *ids, float *dists, int64_t *n_out);
COPSE_API int copse_exact_item_filtered(const copse_index *ix, copse_scratch *scratch, int64_t id,
                                        int64_t k, const copse_filter *filter, int64_t *ids,
                                        float *dists, int64_t *n_out);
/* As copse_search_batch, every row with the same filter; rows past their count are filled
 * with id -1 and distance NaN as there. */
COPSE_API int copse_search_batch_filtered(const copse_index *ix, copse_scratch *scratch,
                                          const float *qs, int64_t nq, int64_t k,
                                          int64_t search_k, int exact, int n_threads,
                                          const copse_filter *filter, int64_t *ids, float *dists,
                                          int64_t *counts);

#ifdef __cplusplus
}
#endif
#endif /* COPSE_H */
