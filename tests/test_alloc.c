/*
 * test_alloc.c: every allocation failing in turn. A scenario (add, label, tags, build with a
 * graph on one and two threads, and with 8-bit storage on one, save, load, queries, batch,
 * filters, verify, unbuild) runs
 * once per allocation it makes, with exactly that allocation refused. Each call must fail
 * cleanly (COPSE_ERR_NOMEM, or the error of a call whose input an earlier failure left
 * missing), never crash, and leave what it had intact: an index whose build failed still
 * holds its items and builds once memory is back. ASan and LeakSanitizer (make test) check
 * that no error path leaks or touches freed memory; alloc/leaks repeats every call that
 * allocates, maps or opens a file for rounds and counts what is left.
 */
#include <dirent.h>
#include <malloc.h>
#include <stdatomic.h>
#include <unistd.h>

#include "tests.h"

static atomic_long countdown = -1; /* allocations left before the refused one; -1: none */
static atomic_long refused;
static atomic_long made; /* allocations granted */

static void *t_malloc(void *ctx, size_t size)
{
    (void)ctx;
    if (atomic_load(&countdown) >= 0 && atomic_fetch_sub(&countdown, 1) == 0) {
        atomic_fetch_add(&refused, 1);
        return NULL;
    }
    atomic_fetch_add(&made, 1);
    return malloc(size);
}

static void *t_realloc(void *ctx, void *p, size_t size)
{
    (void)ctx;
    if (atomic_load(&countdown) >= 0 && atomic_fetch_sub(&countdown, 1) == 0) {
        atomic_fetch_add(&refused, 1);
        return NULL;
    }
    atomic_fetch_add(&made, 1);
    return realloc(p, size);
}

static void t_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

int t_install_allocator(void)
{
    copse_allocator a = {t_malloc, t_realloc, t_free, NULL};
    return copse_set_allocator(&a);
}

static int ok_or_nomem(int rc) { return rc == COPSE_OK || rc == COPSE_ERR_NOMEM; }

static int allow_even(void *ctx, int64_t id)
{
    (void)ctx;
    return id % 2 == 0;
}

/* One pass; returns 1 when every step succeeded. */
static int scenario(t_ctx *t, const float *x, const char *path, int threads, copse_storage st)
{
    enum { N = 300, D = 8 };
    int all = 1, rc;
    copse_index *ix = NULL, *ld = NULL;
    copse_scratch *s = NULL;
    rc = copse_new(D, COPSE_ANGULAR, &ix);
    CHECK(t, ok_or_nomem(rc));
    if (rc != COPSE_OK) {
        copse_free(ix);
        return 0;
    }
    CHECK_OK(t, copse_set_storage(ix, st)); /* allocates nothing */
    int64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = 3 * i; /* sparse: the id sections are made too */
    rc = copse_add_items(ix, N, ids, 0, x);
    CHECK(t, ok_or_nomem(rc));
    all &= rc == COPSE_OK;
    int64_t added = copse_n_items(ix);
    rc = copse_set_label(ix, 3, "three");
    CHECK(t, rc == COPSE_OK || rc == COPSE_ERR_NOMEM || (rc == COPSE_ERR_NOTFOUND && added == 0));
    all &= rc == COPSE_OK;
    uint32_t tags[] = {1, 5};
    rc = copse_set_tags(ix, 6, tags, 2);
    CHECK(t, rc == COPSE_OK || rc == COPSE_ERR_NOMEM || (rc == COPSE_ERR_NOTFOUND && added == 0));
    all &= rc == COPSE_OK;
    rc = copse_build(ix, 3, threads);
    CHECK(t, ok_or_nomem(rc) || (rc == COPSE_OK && added == 0));
    if (rc != COPSE_OK) {
        /* Nothing lost: still adding, every item there. */
        CHECK(t, copse_state(ix) == COPSE_STATE_ADDING && copse_n_items(ix) == added);
        all = 0;
    }
    if (copse_state(ix) == COPSE_STATE_BUILT) {
        rc = copse_save(ix, path);
        CHECK(t, ok_or_nomem(rc));
        all &= rc == COPSE_OK;
        rc = copse_open(path, 0, &ld);
        CHECK(t, rc == COPSE_OK || rc == COPSE_ERR_NOMEM || rc == COPSE_ERR_IO);
        all &= rc == COPSE_OK;
        rc = copse_scratch_new(&s);
        CHECK(t, ok_or_nomem(rc));
        all &= rc == COPSE_OK;
        int64_t got[10], n, batch[3 * 10];
        float d[10];
        rc = copse_search_vector(ix, s, x, 10, 50, got, d, &n);
        CHECK(t, ok_or_nomem(rc));
        all &= rc == COPSE_OK;
        rc = copse_search_batch(ix, s, x, 3, 10, -1, 0, threads, batch, NULL, NULL);
        CHECK(t, ok_or_nomem(rc));
        all &= rc == COPSE_OK;
        rc = copse_exact_item(ix, NULL, 0, 10, got, d, &n);
        CHECK(t, ok_or_nomem(rc) || (rc == COPSE_ERR_NOTFOUND && added == 0));
        all &= rc == COPSE_OK;
        /* Filters: made, used approximately, exactly and in a batch, freed. */
        copse_filter *f[3] = {NULL, NULL, NULL};
        rc = copse_filter_new_ids(ix, ids, N / 2, &f[0]);
        CHECK(t, ok_or_nomem(rc) && (rc == COPSE_OK) == (f[0] != NULL));
        all &= rc == COPSE_OK;
        rc = copse_filter_new_tags(ix, 1u << 5, 0, &f[1]);
        CHECK(t, ok_or_nomem(rc));
        all &= rc == COPSE_OK;
        rc = copse_filter_new_callback(allow_even, NULL, &f[2]);
        CHECK(t, ok_or_nomem(rc));
        all &= rc == COPSE_OK;
        for (int i = 0; i < 3; i++) {
            if (!f[i])
                continue;
            rc = copse_search_vector_filtered(ix, s, x, 10, 50, f[i], got, d, &n);
            CHECK(t, ok_or_nomem(rc));
            all &= rc == COPSE_OK;
            rc = copse_exact_vector_filtered(ix, NULL, x, 10, f[i], got, d, &n);
            CHECK(t, ok_or_nomem(rc));
            all &= rc == COPSE_OK;
            rc = copse_search_batch_filtered(ix, s, x, 3, 10, -1, 0, threads, f[i], batch, NULL, NULL);
            CHECK(t, ok_or_nomem(rc));
            all &= rc == COPSE_OK;
            copse_filter_free(f[i]);
        }
        rc = copse_verify(ix);
        CHECK(t, ok_or_nomem(rc));
        all &= rc == COPSE_OK;
        rc = copse_unbuild(ix);
        CHECK(t, ok_or_nomem(rc));
        all &= rc == COPSE_OK;
        if (rc != COPSE_OK)
            CHECK(t, copse_state(ix) == COPSE_STATE_BUILT && copse_n_items(ix) == added);
    }
    copse_scratch_free(s);
    copse_free(ld);
    copse_free(ix);
    return all;
}

static void test_each_allocation_fails(t_ctx *t)
{
    float *x = t_uniform(t, 300, 8);
    char path[512];
    snprintf(path, sizeof path, "%s", t_path(t, "alloc.copse"));
    /* One and two threads with float32 rows; one thread with 8-bit codes (their training,
     * the decoded norms, the prepared queries and the decoding unbuild). */
    for (int pass = 0; pass < 3; pass++) {
        int threads = pass == 1 ? 2 : 1;
        copse_storage st = pass == 2 ? COPSE_STORAGE_I8 : COPSE_STORAGE_F32;
        long n;
        int done = 0;
        for (n = 0; n < 100000 && !done && !t->failed; n++) {
            atomic_store(&refused, 0);
            atomic_store(&countdown, n);
            done = scenario(t, x, path, threads, st) && atomic_load(&refused) == 0;
            atomic_store(&countdown, -1);
        }
        printf("  %d thread(s), %s: every one of %ld allocations refused in turn\n", threads,
               copse_storage_name(st), n - 1);
        CHECK(t, done && n > 50);
        /* Memory back: the same scenario succeeds. */
        CHECK(t, scenario(t, x, path, threads, st));
    }
    free(x);
}

/* A scratch keeps its batch workers' memory: a second batch allocates only its small
 * per-call bookkeeping, not fresh query scratches (each of which clears 4 bytes per item:
 * 64 MB per call at 1M items and 16 threads, before 2026-12). One worker, so that which
 * worker met which query cannot change the count. */
static void test_batch_reuses_scratch(t_ctx *t)
{
    enum { N = 2000, D = 8, NQ = 64 };
    float *x = t_uniform(t, N + NQ, D);
    copse_index *ix = t_index(t, D, COPSE_EUCLIDEAN, x, N, 4, 1);
    REQUIRE(t, ix);
    copse_scratch *s;
    CHECK_OK(t, copse_scratch_new(&s));
    int64_t *ids = malloc(NQ * 10 * sizeof *ids);
    CHECK_OK(t, copse_search_batch(ix, s, x + N * D, NQ, 10, 100, 0, 1, ids, NULL, NULL));
    long before = atomic_load(&made);
    CHECK_OK(t, copse_search_batch(ix, s, x + N * D, NQ, 10, 100, 0, 1, ids, NULL, NULL));
    long second = atomic_load(&made) - before;
    printf("  second batch of %d queries: %ld allocations\n", NQ, second);
    CHECK(t, second <= 1);
    free(ids);
    copse_scratch_free(s);
    copse_free(ix);
    free(x);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n++;
    if (d)
        closedir(d);
    return n;
}

/* Mappings of the index files in dir (ASan's own mappings come and go). */
static int count_maps(const char *dir)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, dir) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* 0 under ASan: mallinfo2 sees no heap there, ASan replaces malloc. */
static size_t heap_in_use(void)
{
#if T_ASAN
    return 0;
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

enum { LEAK_DIM = 12, LEAK_N = 400 };

/* One round of every call that allocates or maps, failing calls mixed in; 1 when a call
 * returned what it should not. */
static int round_trip(const float *x, const char *dir, int r)
{
    int bad = 0;
    char path[512], disk[512];
    snprintf(path, sizeof path, "%s/leaks.copse", dir);
    snprintf(disk, sizeof disk, "%s/leaks-disk.copse", dir);
    copse_metric m = (copse_metric)(r % 5);
    copse_index *ix = NULL, *ld = NULL;
    copse_scratch *s = NULL;
    bad |= copse_scratch_new(&s) != COPSE_OK;
    bad |= copse_new(LEAK_DIM, m, &ix) != COPSE_OK;
    bad |= copse_set_seed(ix, (uint64_t)r) != COPSE_OK;
    bad |= copse_add_items(ix, LEAK_N, NULL, 0, x) != COPSE_OK;
    for (int i = 0; i < LEAK_N; i += 3) {
        char label[32];
        snprintf(label, sizeof label, "w%d-%d", i, r);
        bad |= copse_set_label(ix, i, label) != COPSE_OK;
    }
    /* Error paths allocate messages and scratch too. */
    float nanv[LEAK_DIM] = {0};
    nanv[2] = 0.0f / 0.0f;
    bad |= copse_add_item(ix, 5, nanv) != COPSE_ERR_VALUE;
    bad |= copse_build(ix, r % 2 ? -1 : 4, 2) != COPSE_OK;
    int64_t ids[20], n, counts[5];
    float d[20];
    bad |= copse_search_vector(ix, s, x, 10, -1, ids, d, &n) != COPSE_OK;
    bad |= copse_search_vector(ix, NULL, x, 10, 100, ids, d, &n) != COPSE_OK;
    bad |= copse_search_vector(ix, s, nanv, 10, -1, ids, d, &n) != COPSE_ERR_VALUE;
    bad |= copse_search_batch(ix, NULL, x, 5, 4, -1, r % 2, 3, ids, d, counts) != COPSE_OK;
    if (r % 7 == 0) { /* unbuild and build again */
        bad |= copse_unbuild(ix) != COPSE_OK;
        bad |= copse_build(ix, 3, 1) != COPSE_OK;
    }
    bad |= copse_save(ix, path) != COPSE_OK;
    bad |= copse_save(ix, "/nonexistent-copse-dir/x.copse") != COPSE_ERR_IO;
    /* Load three ways; failed loads on the way. */
    bad |= copse_open(path, r % 2, &ld) != COPSE_OK;
    bad |= copse_verify(ld) != COPSE_OK;
    bad |= copse_search_item(ld, s, 3, 10, -1, ids, d, &n) != COPSE_OK;
    int64_t id;
    bad |= copse_find_label(ld, "w3-0", &id) == COPSE_ERR_STATE;
    bad |= copse_unload(ld) != COPSE_OK;
    bad |= copse_load(ld, "/nonexistent-copse-dir/x.copse", 0) != COPSE_ERR_IO;
    size_t len = (size_t)copse_file_size(ix);
    unsigned char *buf = malloc(len + 1);
    FILE *f = fopen(path, "rb");
    bad |= !f || fread(buf + 1, 1, len, f) != len;
    if (f)
        fclose(f);
    bad |= copse_load_buffer(ld, buf + 1, len - 1) != COPSE_ERR_CORRUPT; /* truncated */
    bad |= copse_load_buffer(ld, buf + 1, len) != COPSE_OK;               /* unaligned: copied */
    bad |= copse_search_vector(ld, s, x, 10, -1, ids, d, &n) != COPSE_OK;
    copse_free(ld); /* frees a loaded-from-buffer index without unload */
    ld = NULL;
    copse_index *other = NULL;
    bad |= copse_open("/nonexistent-copse-dir/x.copse", 0, &other) != COPSE_ERR_IO;
    copse_free(other);
    free(buf);
    /* On-disk builds: one finished, one abandoned. */
    copse_index *od = NULL;
    bad |= copse_new(LEAK_DIM, m, &od) != COPSE_OK;
    bad |= copse_on_disk_build(od, disk) != COPSE_OK;
    bad |= copse_add_items(od, LEAK_N / 2, NULL, 0, x) != COPSE_OK;
    if (r % 3)
        bad |= copse_build(od, 2, 1) != COPSE_OK;
    copse_free(od);
    copse_free(ix);
    copse_scratch_free(s);
    unlink(path);
    unlink(disk);
    return bad;
}

/* Long loops of new / add / label / build / unbuild / save / open / load_buffer (aligned and
 * not) / verify / query / batch / unload / on-disk build (finished and abandoned) / free,
 * with failing calls mixed in. Under ASan, LeakSanitizer reports any block left at exit (make
 * test runs it so); every build also checks that file descriptors and mappings of index files
 * do not grow (LeakSanitizer sees neither), and a build without ASan that the heap in use
 * (mallinfo2) does not grow between the 20th and the last round. */
static void test_leaks(t_ctx *t)
{
    int rounds = T_ASAN ? 80 : 200;
    char dir[256];
    snprintf(dir, sizeof dir, "%s", t_dir(t));
    float *x = malloc(sizeof(float) * LEAK_N * LEAK_DIM);
    for (int i = 0; i < LEAK_N * LEAK_DIM; i++)
        x[i] = (float)((i * 7919 + i / LEAK_DIM * 31) % 1000) / 500.0f - 1.0f;
    int bad = 0, fds0 = 0, maps0 = 0;
    size_t heap0 = 0;
    for (int r = 0; r < rounds; r++) {
        bad |= round_trip(x, dir, r);
        if (r == 19) {
            fds0 = count_fds();
            maps0 = count_maps(dir);
            heap0 = heap_in_use();
        }
    }
    CHECK(t, !bad); /* every call in every round returned what it should */
    int fds1 = count_fds(), maps1 = count_maps(dir);
    size_t heap1 = heap_in_use();
    printf("  after round 20 / %d: %d / %d fds, %d / %d mappings, %zu / %zu heap bytes\n",
           rounds, fds0, fds1, maps0, maps1, heap0, heap1);
    CHECK(t, fds1 <= fds0);
    CHECK(t, maps1 == 0 && maps0 == 0);
    CHECK(t, T_ASAN || heap1 <= heap0 + 64 * 1024);
    free(x);
}

const t_case alloc_cases[] = {
    {"alloc/each_allocation_fails", test_each_allocation_fails},
    {"alloc/batch_reuses_scratch", test_batch_reuses_scratch},
    {"alloc/leaks", test_leaks},
    {NULL, NULL},
};
