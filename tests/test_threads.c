/*
 * test_threads.c: batch queries and many threads on one index, built or loaded, give exactly
 * the answers of one thread (run under TSan by `make test`).
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


/* ---- many threads on one LOADED (mapped) index, every metric -----------------------------
 * Every query call mixed (by vector, by item, exact, a batch inside a thread, item and label
 * lookups), each thread with its own scratch or none; each must get exactly the answers one
 * thread got first. threads/many_threads covers a BUILT index and one kind of query. */
enum { LD_DIM = 16, LD_N = 1500, LD_NQ = 40, LD_K = 8, LD_THREADS = 6 };

typedef struct loaded_result {
    int64_t ids[4][LD_NQ][LD_K];
    float d[4][LD_NQ][LD_K];
    int64_t lab[LD_NQ];
    int rc;
} loaded_result;

typedef struct loaded_job {
    const copse_index *ix;
    const float *qs;
    int use_scratch;
    loaded_result r;
} loaded_job;

static void *query_loaded(void *arg)
{
    loaded_job *j = arg;
    loaded_result *r = &j->r;
    copse_scratch *s = NULL;
    memset(r, 0, sizeof *r);
    if (j->use_scratch && copse_scratch_new(&s) != COPSE_OK) {
        r->rc = -1;
        return NULL;
    }
    for (int q = 0; q < LD_NQ && !r->rc; q++) {
        int64_t n;
        const float *v = j->qs + q * LD_DIM;
        r->rc |= copse_search_vector(j->ix, s, v, LD_K, 200, r->ids[0][q], r->d[0][q], &n);
        r->rc |= copse_search_item(j->ix, s, q * 17, LD_K, -1, r->ids[1][q], r->d[1][q], &n);
        r->rc |= copse_exact_vector(j->ix, s, v, LD_K, r->ids[2][q], r->d[2][q], &n);
        const char *label;
        size_t len;
        char want[32];
        snprintf(want, sizeof want, "item-%d", q * 5);
        r->rc |= copse_find_label(j->ix, want, &r->lab[q]);
        r->rc |= copse_get_label(j->ix, r->lab[q], &label, &len);
        r->rc |= label && strcmp(label, want) == 0 ? 0 : 1;
        float got[LD_DIM];
        r->rc |= copse_get_item(j->ix, q, got);
    }
    r->rc |= copse_search_batch(j->ix, s, j->qs, LD_NQ, LD_K, 200, 0, 2, &r->ids[3][0][0],
                                &r->d[3][0][0], NULL);
    copse_scratch_free(s);
    return NULL;
}

static void test_loaded_index(t_ctx *t)
{
    const char *path = t_path(t, "loaded.copse");
    float *x = malloc(sizeof(float) * (LD_N + LD_NQ) * LD_DIM);
    uint64_t z = 3;
    for (int i = 0; i < (LD_N + LD_NQ) * LD_DIM; i++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)(z >> 40) / 16777216.0f + (float)(i / LD_DIM % 6);
    }
    static loaded_job one, many[LD_THREADS];
    for (int m = COPSE_ANGULAR; m <= COPSE_HAMMING; m++) {
        copse_index *b;
        CHECK_OK(t, copse_new(LD_DIM, (copse_metric)m, &b));
        CHECK_OK(t, copse_add_items(b, LD_N, NULL, 0, x));
        for (int i = 0; i < LD_N; i += 5) {
            char l[32];
            snprintf(l, sizeof l, "item-%d", i);
            CHECK_OK(t, copse_set_label(b, i, l));
        }
        CHECK_OK(t, copse_build(b, 5, 2));
        CHECK_OK(t, copse_save(b, path));
        copse_free(b);
        copse_index *ld = NULL;
        CHECK_OK(t, copse_open(path, 0, &ld));
        REQUIRE(t, ld);
        one = (loaded_job){.ix = ld, .qs = x + LD_N * LD_DIM, .use_scratch = 1};
        query_loaded(&one);
        CHECK(t, one.r.rc == 0);
        pthread_t th[LD_THREADS];
        for (int i = 0; i < LD_THREADS; i++) {
            many[i] = (loaded_job){.ix = ld, .qs = x + LD_N * LD_DIM, .use_scratch = i & 1};
            pthread_create(&th[i], NULL, query_loaded, &many[i]);
        }
        for (int i = 0; i < LD_THREADS; i++)
            pthread_join(th[i], NULL);
        int same = 1;
        for (int i = 0; i < LD_THREADS; i++)
            same &= many[i].r.rc == 0 && memcmp(&many[i].r, &one.r, sizeof one.r) == 0;
        printf("  %s: %d threads on the loaded index answer %s one thread\n",
               copse_metric_name((copse_metric)m), LD_THREADS, same ? "exactly as" : "NOT as");
        CHECK(t, same);
        copse_free(ld);
    }
    free(x);
}

/* A loaded file with changes files its added items in the forest's leaves at its first
 * query (live.c, file_late): several threads' first queries at once, one of them filing while
 * the others wait, answer as a copy queried from one thread, and never with a deleted item. */
enum { LC_N = 3000, LC_DIM = 8, LC_NQ = 100, LC_K = 10 };

typedef struct changed_job {
    copse_index *ix;
    const float *qs;
    int64_t ids[LC_NQ][LC_K];
    int rc;
} changed_job;

static void *query_changed(void *arg)
{
    changed_job *j = arg;
    copse_scratch *s = NULL;
    j->rc = copse_scratch_new(&s);
    for (int q = 0; q < LC_NQ && !j->rc; q++) {
        int64_t n = 0;
        j->rc |= copse_search_vector(j->ix, s, j->qs + q * LC_DIM, LC_K, 20, j->ids[q], NULL, &n);
        j->rc |= n != LC_K;
    }
    copse_scratch_free(s);
    return NULL;
}

static void test_loaded_changes(t_ctx *t)
{
    float *x = t_clustered(t, LC_N + LC_N / 2 + LC_NQ, LC_DIM, 20, 0.5);
    copse_index *ix;
    CHECK_OK(t, copse_new(LC_DIM, COPSE_EUCLIDEAN, &ix));
    CHECK_OK(t, copse_add_items(ix, LC_N, NULL, 0, x));
    CHECK_OK(t, copse_build(ix, -1, 2));
    int64_t del[LC_N / 2];
    for (int i = 0; i < LC_N / 2; i++)
        del[i] = 2 * i;
    CHECK_OK(t, copse_delete_items(ix, LC_N / 2, del));
    CHECK_OK(t, copse_add_items(ix, LC_N / 2, NULL, LC_N, x + LC_N * LC_DIM));
    size_t len = (size_t)copse_file_size(ix);
    unsigned char *buf = malloc(len);
    REQUIRE(t, buf != NULL);
    CHECK_OK(t, copse_save_buffer(ix, buf, len));
    copse_free(ix);
    static changed_job one, many[LD_THREADS];
    const float *qs = x + (LC_N + LC_N / 2) * LC_DIM;
    copse_index *a, *b;
    CHECK_OK(t, copse_new(LC_DIM, COPSE_EUCLIDEAN, &a));
    CHECK_OK(t, copse_new(LC_DIM, COPSE_EUCLIDEAN, &b));
    CHECK_OK(t, copse_load_buffer(a, buf, len));
    CHECK_OK(t, copse_load_buffer(b, buf, len));
    one = (changed_job){.ix = a, .qs = qs};
    query_changed(&one);
    CHECK(t, one.rc == 0);
    pthread_t th[LD_THREADS];
    for (int i = 0; i < LD_THREADS; i++) {
        many[i] = (changed_job){.ix = b, .qs = qs};
        pthread_create(&th[i], NULL, query_changed, &many[i]);
    }
    for (int i = 0; i < LD_THREADS; i++)
        pthread_join(th[i], NULL);
    int same = 1, deleted = 0;
    for (int i = 0; i < LD_THREADS; i++) {
        same &= many[i].rc == 0 && memcmp(many[i].ids, one.ids, sizeof one.ids) == 0;
        for (int q = 0; q < LC_NQ; q++)
            for (int k = 0; k < LC_K; k++)
                deleted += many[i].ids[q][k] < LC_N && many[i].ids[q][k] % 2 == 0;
    }
    printf("  %d threads' first queries on a loaded file with changes: %s one thread's, "
           "%d deleted ids\n", LD_THREADS, same ? "the same as" : "NOT as", deleted);
    CHECK(t, same);
    CHECK(t, deleted == 0);
    copse_free(a);
    copse_free(b);
    free(buf);
    free(x);
}

const t_case thread_cases[] = {
    {"threads/many_threads", test_many_threads},
    {"threads/padding", test_padding},
    {"threads/progress", test_progress},
    {"threads/batch_first_error", test_batch_first_error},
    {"threads/loaded_index", test_loaded_index},
    {"threads/loaded_changes", test_loaded_changes},
    {NULL, NULL},
};
