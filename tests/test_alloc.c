/*
 * test_alloc.c: every allocation failing in turn. A scenario (add, label, tags, build with a
 * graph on one and two threads, and with 8-bit storage on one, save, load, queries, batch,
 * filters, verify, unbuild) runs
 * once per allocation it makes, with exactly that allocation refused. Each call must fail
 * cleanly (COPSE_ERR_NOMEM, or the error of a call whose input an earlier failure left
 * missing), never crash, and leave what it had intact: an index whose build failed still
 * holds its items and builds once memory is back. ASan and LeakSanitizer (make test) check
 * that no error path leaks or touches freed memory.
 */
#include <stdatomic.h>

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

const t_case alloc_cases[] = {
    {"alloc/each_allocation_fails", test_each_allocation_fails},
    {"alloc/batch_reuses_scratch", test_batch_reuses_scratch},
    {NULL, NULL},
};
