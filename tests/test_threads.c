/*
 * test_threads.c: batch queries and many threads on one index give exactly the answers of one
 * thread (run under TSan by `make test`).
 */
#include <pthread.h>

#include "tests.h"

enum { N = 4000, D = 24, NQ = 300, K = 10 };

typedef struct worker {
    const copse_index *ix;
    const float *qs;
    int64_t ids[NQ * K];
    float dists[NQ * K];
    int rc;
} worker;

static void *query_all(void *arg)
{
    worker *w = arg;
    copse_scratch *s;
    w->rc = copse_scratch_new(&s);
    for (int q = 0; q < NQ && w->rc == COPSE_OK; q++) {
        int64_t n;
        w->rc = copse_search_vector(w->ix, s, w->qs + q * D, K, 400, w->ids + q * K,
                                    w->dists + q * K, &n);
    }
    copse_scratch_free(s);
    return NULL;
}

static void test_many_threads(t_ctx *t)
{
    float *x = t_clustered(t, N + NQ, D, 12, 0.4);
    copse_index *ix = t_index(t, D, COPSE_EUCLIDEAN, x, N, 8, 2);
    REQUIRE(t, ix);
    static worker w[6];
    pthread_t tid[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (worker){.ix = ix, .qs = x + N * D};
        pthread_create(&tid[i], NULL, query_all, &w[i]);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < 6; i++) {
        CHECK_OK(t, w[i].rc);
        CHECK(t, memcmp(w[i].ids, w[0].ids, sizeof w[0].ids) == 0);
        CHECK(t, memcmp(w[i].dists, w[0].dists, sizeof w[0].dists) == 0);
    }
    /* Batches with any thread count give the same rows. */
    static int64_t ids[NQ * K];
    static float d[NQ * K];
    static int64_t counts[NQ];
    for (int threads = 1; threads <= 4; threads++) {
        CHECK_OK(t, copse_search_batch(ix, NULL, x + N * D, NQ, K, 400, 0, threads, ids, d, counts));
        CHECK(t, memcmp(ids, w[0].ids, sizeof ids) == 0 && memcmp(d, w[0].dists, sizeof d) == 0);
        for (int q = 0; q < NQ; q++)
            CHECK(t, counts[q] == K);
    }
    /* Exact batch equals exact single queries; rows past n are padded. */
    CHECK_OK(t, copse_search_batch(ix, NULL, x + N * D, NQ, K, -1, 1, 3, ids, d, NULL));
    for (int q = 0; q < NQ; q += 37) {
        int64_t e[K], n;
        CHECK_OK(t, copse_exact_vector(ix, NULL, x + (N + q) * D, K, e, NULL, &n));
        CHECK(t, memcmp(e, ids + q * K, sizeof e) == 0);
    }
    copse_free(ix);
    free(x);
}

typedef struct progress_log {
    int calls, inside, overlapped, backwards;
    double last;
} progress_log;

static void on_progress(void *ctx, double f)
{
    progress_log *p = ctx;
    if (__atomic_fetch_add(&p->inside, 1, __ATOMIC_SEQ_CST) != 0)
        p->overlapped = 1;
    p->backwards |= f < p->last || f > 1.0;
    p->last = f;
    p->calls++;
    __atomic_fetch_sub(&p->inside, 1, __ATOMIC_SEQ_CST);
}

static void test_progress(t_ctx *t)
{
    /* Build progress rises from 0 to 1, once per unit of work, never two calls at once. */
    float *x = t_clustered(t, 3000, 16, 8, 0.3);
    const int trees[] = {6, -1};
    for (int graph = 0; graph <= 24; graph += 24)
        for (int i = 0; i < 2; i++) {
            progress_log log = {0, 0, 0, 0, 0.0};
            copse_index *ix;
            CHECK_OK(t, copse_new(16, COPSE_EUCLIDEAN, &ix));
            CHECK_OK(t, copse_set_graph_degree(ix, graph));
            CHECK_OK(t, copse_set_progress(ix, on_progress, &log));
            CHECK_OK(t, copse_add_items(ix, 3000, NULL, 0, x));
            CHECK_OK(t, copse_build(ix, trees[i], 2));
            CHECK(t, !log.overlapped && !log.backwards && log.last == 1.0);
            CHECK(t, log.calls >= copse_n_trees(ix) + (graph ? 17 : 0));
            copse_free(ix);
        }
    free(x);
}

static void test_padding(t_ctx *t)
{
    float *x = t_uniform(t, 5, 3);
    copse_index *ix = t_index(t, 3, COPSE_MANHATTAN, x, 3, 2, 1);
    REQUIRE(t, ix);
    int64_t ids[2 * 5], counts[2];
    float d[2 * 5];
    CHECK_OK(t, copse_search_batch(ix, NULL, x + 3 * 3, 2, 5, -1, 0, 2, ids, d, counts));
    for (int q = 0; q < 2; q++) {
        CHECK(t, counts[q] == 3);
        CHECK(t, ids[q * 5 + 3] == -1 && ids[q * 5 + 4] == -1 && isnan(d[q * 5 + 4]));
    }
    copse_free(ix);
    free(x);
}

/* A batch whose queries fail on different workers reports its first failing query, with
 * that query's own message, whichever thread ran it (until 2026-12 the status came from the
 * first to fail in time and the message from the last worker in the list). Two items' first
 * graph neighbours are damaged with different values; querying their own vectors reaches
 * each one's damage first. */
static void test_batch_first_error(t_ctx *t)
{
    enum { BN = 500, BD = 8 };
    float *x = t_uniform(t, BN, BD);
    copse_index *ix = t_index(t, BD, COPSE_EUCLIDEAN, x, BN, 4, 1);
    REQUIRE(t, ix && copse_graph_degree(ix) > 0);
    size_t len = (size_t)copse_file_size(ix);
    unsigned char *img = malloc(len);
    REQUIRE(t, img && copse_save_buffer(ix, img, len) == COPSE_OK);
    uint64_t graph_off = 0;
    for (int i = 0; i < copse_n_sections(ix); i++) {
        const char *name;
        uint64_t off;
        if (copse_section_info(ix, i, &name, &off, NULL, NULL) == COPSE_OK && !strcmp(name, "graph"))
            graph_off = off;
    }
    REQUIRE(t, graph_off > 0);
    uint32_t deg = (uint32_t)copse_graph_degree(ix);
    uint32_t bad[2] = {0x7ffffff0u, 0x7ffffff1u};
    int item[2] = {7, 300}; /* dense ids: slot == id */
    for (int i = 0; i < 2; i++)
        memcpy(img + graph_off + (uint64_t)item[i] * deg * 4, &bad[i], 4);
    copse_index *ld;
    CHECK_OK(t, copse_new(BD, COPSE_EUCLIDEAN, &ld));
    REQUIRE(t, copse_load_buffer(ld, img, len) == COPSE_OK);
    float qs[2 * BD];
    memcpy(qs, x + item[0] * BD, BD * sizeof(float));
    memcpy(qs + BD, x + item[1] * BD, BD * sizeof(float));
    copse_scratch *s;
    CHECK_OK(t, copse_scratch_new(&s));
    int64_t ids[2 * 10];
    for (int round = 0; round < 40; round++) {
        CHECK_RC(t, copse_search_batch(ld, s, qs, 2, 10, 50, 0, 2, ids, NULL, NULL), COPSE_ERR_CORRUPT);
        CHECK(t, strstr(copse_scratch_errmsg(s), "0x7ffffff0") != NULL);
    }
    copse_scratch_free(s);
    copse_free(ld);
    copse_free(ix);
    free(img);
    free(x);
}

const t_case thread_cases[] = {
    {"threads/many_threads", test_many_threads},
    {"threads/padding", test_padding},
    {"threads/progress", test_progress},
    {"threads/batch_first_error", test_batch_first_error},
    {NULL, NULL},
};
