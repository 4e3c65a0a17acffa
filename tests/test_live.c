/*
 * test_live.c: a living index (adds, deletes and replacements after build and on a loaded
 * file, save, load, compact) against a model of its live set, checked by brute force.
 *
 * Each case replays a seeded random interleaving of changes and queries. After every step:
 * the item count is the model's; a deleted id is never returned and is COPSE_ERR_NOTFOUND to
 * copse_get_item; a replaced id returns its new vector; every query returns min(k, live)
 * results, no id twice, each with its exact distance; exact queries equal the model's brute
 * force; recall@10 at search_k 100 stays above the threshold stated in each case. The
 * threaded case (threads/live_writer, run under TSan) queries from three threads while one
 * thread adds and deletes.
 */
#include <pthread.h>

#include "tests.h"
#include "../src/internal.h" /* cp_scratch_walked: what a query's graph walk costs */

enum { K = 10 };

/* The live set as the test knows it: ids and their vectors. */
typedef struct model {
    int dim;
    int64_t n, cap;
    int64_t *ids;
    float *x;
} model;

static void model_put(model *m, int64_t id, const float *v)
{
    for (int64_t i = 0; i < m->n; i++)
        if (m->ids[i] == id) {
            memcpy(m->x + i * m->dim, v, (size_t)m->dim * sizeof(float));
            return;
        }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 1024;
        m->ids = realloc(m->ids, (size_t)m->cap * sizeof *m->ids);
        m->x = realloc(m->x, (size_t)m->cap * m->dim * sizeof(float));
    }
    m->ids[m->n] = id;
    memcpy(m->x + m->n * m->dim, v, (size_t)m->dim * sizeof(float));
    m->n++;
}

static void model_drop(model *m, int64_t at)
{
    m->n--;
    m->ids[at] = m->ids[m->n];
    memcpy(m->x + at * m->dim, m->x + m->n * m->dim, (size_t)m->dim * sizeof(float));
}

static int model_has(const model *m, int64_t id)
{
    for (int64_t i = 0; i < m->n; i++)
        if (m->ids[i] == id)
            return 1;
    return 0;
}

static void random_vector(t_ctx *t, copse_metric metric, int dim, float *v)
{
    for (int d = 0; d < dim; d++)
        v[d] = metric == COPSE_HAMMING ? (float)(t_next(t) & 1) : (float)t_gauss(t);
}

/* The k nearest of the model by brute force: reported distances, nearest first. */
static int64_t brute(const copse_index *ix, const model *m, const float *q, float *best)
{
    int64_t n = 0;
    int dot = copse_get_metric(ix) == COPSE_DOT;
    for (int64_t i = 0; i < m->n; i++) {
        float d;
        copse_distance(ix, q, m->x + i * m->dim, &d);
        int64_t j = n < K ? n++ : K;
        if (j == K && !(dot ? d > best[K - 1] : d < best[K - 1]))
            continue;
        if (j == K)
            j = K - 1;
        while (j > 0 && (dot ? d > best[j - 1] : d < best[j - 1])) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = d;
    }
    return n;
}

typedef struct live_case {
    copse_metric metric;
    int dim;
    double min_recall;
} live_case;

/* Queries against the model: returns recall@K of nq queries at search_k 100. */
static double check_queries(t_ctx *t, const copse_index *ix, const model *m, int nq)
{
    copse_scratch *s;
    CHECK_OK(t, copse_scratch_new(&s));
    float *q = malloc((size_t)m->dim * sizeof *q);
    float *exact = malloc((size_t)nq * K * sizeof *exact), *approx = malloc((size_t)nq * K * sizeof *approx);
    int64_t want = m->n < K ? m->n : K;
    for (int i = 0; i < nq; i++) {
        random_vector(t, copse_get_metric(ix), m->dim, q);
        int64_t ids[K], n = -1;
        float d[K], truth[K];
        for (int j = 0; j < K; j++)
            exact[i * K + j] = approx[i * K + j] = NAN;
        brute(ix, m, q, truth);
        memcpy(exact + i * K, truth, (size_t)want * sizeof *truth);
        for (int mode = 0; mode < 2; mode++) {
            int rc = mode ? copse_exact_vector(ix, s, q, K, ids, d, &n)
                          : copse_search_vector(ix, s, q, K, 100, ids, d, &n);
            CHECK_OK(t, rc);
            CHECK(t, n == want);
            for (int64_t j = 0; j < n; j++) {
                CHECK(t, model_has(m, ids[j]));
                for (int64_t h = 0; h < j; h++)
                    CHECK(t, ids[h] != ids[j]);
                float v[64], e;
                CHECK_OK(t, copse_get_item(ix, ids[j], v));
                copse_distance(ix, q, v, &e);
                CHECK(t, fabsf(e - d[j]) <= 1e-3f * (1 + fabsf(e)));
                if (mode)
                    CHECK(t, fabsf(d[j] - truth[j]) <= 1e-3f * (1 + fabsf(truth[j])));
            }
            if (!mode)
                memcpy(approx + i * K, d, (size_t)n * sizeof *d);
        }
    }
    double r = want ? t_recall(approx, exact, nq, want < K ? want : K, copse_get_metric(ix) == COPSE_DOT) : 1;
    free(q);
    free(exact);
    free(approx);
    copse_scratch_free(s);
    return r;
}

static void check_items(t_ctx *t, const copse_index *ix, const model *m, const int64_t *gone,
                        int64_t n_gone)
{
    CHECK(t, copse_n_items(ix) == m->n);
    float v[64];
    for (int64_t i = 0; i < n_gone; i++)
        if (!model_has(m, gone[i])) {
            CHECK_RC(t, copse_get_item(ix, gone[i], v), COPSE_ERR_NOTFOUND);
            CHECK(t, !copse_has_item(ix, gone[i]));
        }
    for (int64_t i = 0; i < m->n; i += 7) {
        CHECK_OK(t, copse_get_item(ix, m->ids[i], v));
        CHECK(t, memcmp(v, m->x + i * m->dim, (size_t)m->dim * sizeof(float)) == 0);
    }
    /* copse_item_id_at walks exactly the live items. */
    int64_t seen = 0, id;
    while (copse_item_id_at(ix, seen, &id) == COPSE_OK) {
        if (seen % 97 == 0)
            CHECK(t, model_has(m, id));
        seen++;
    }
    CHECK(t, seen == m->n);
}

static void run_case(t_ctx *t, const live_case *c)
{
    enum { N0 = 2000, ROUNDS = 7, STEP = 250 };
    model m = {c->dim, 0, 0, NULL, NULL};
    int64_t *gone = malloc(ROUNDS * STEP * 2 * sizeof *gone), n_gone = 0, next_id = 0;
    float *v = malloc((size_t)c->dim * sizeof *v);
    copse_index *ix;
    CHECK_OK(t, copse_new(c->dim, c->metric, &ix));
    for (int i = 0; i < N0; i++) {
        random_vector(t, c->metric, c->dim, v);
        CHECK_OK(t, copse_add_item(ix, next_id, v));
        model_put(&m, next_id++, v);
    }
    CHECK_OK(t, copse_build(ix, 8, 2));
    const char *path = t_path(t, "live.copse");
    double worst = 1;
    for (int round = 0; round < ROUNDS; round++) {
        /* Adds: new ids, and every fifth one replaces a live id. */
        float *batch = malloc((size_t)STEP * c->dim * sizeof *batch);
        int64_t ids[STEP];
        for (int i = 0; i < STEP; i++) {
            random_vector(t, c->metric, c->dim, batch + i * c->dim);
            ids[i] = i % 5 == 0 && m.n ? m.ids[t_next(t) % (uint64_t)m.n] : next_id++;
            for (int j = 0; j < i; j++)
                if (ids[j] == ids[i])
                    ids[i] = next_id++;
        }
        CHECK_OK(t, copse_add_items(ix, STEP, ids, 0, batch));
        for (int i = 0; i < STEP; i++)
            model_put(&m, ids[i], batch + i * c->dim);
        free(batch);
        /* Deletes: random live ids, one at a time and as a batch. */
        int64_t del[STEP / 2];
        for (int i = 0; i < STEP / 2 && m.n; i++) {
            int64_t at = (int64_t)(t_next(t) % (uint64_t)m.n);
            del[i] = m.ids[at];
            gone[n_gone++] = del[i];
            model_drop(&m, at);
        }
        CHECK_OK(t, copse_delete_item(ix, del[0]));
        CHECK_OK(t, copse_delete_items(ix, STEP / 2 - 1, del + 1));
        CHECK_RC(t, copse_delete_item(ix, del[0]), COPSE_ERR_NOTFOUND);
        check_items(t, ix, &m, gone, n_gone);
        double r = check_queries(t, ix, &m, 40);
        worst = r < worst ? r : worst;
        if (round == 2) { /* the changes survive a save and a load, into a fresh handle */
            CHECK_OK(t, copse_save(ix, path));
            copse_index *ld;
            CHECK_OK(t, copse_open(path, 0, &ld));
            int major = 0;
            copse_file_version(ld, &major, NULL);
            CHECK(t, major == 2);
            CHECK(t, copse_n_deleted(ld) == copse_n_deleted(ix) && copse_n_added(ld) == copse_n_added(ix));
            /* The loader takes the delta's norms and lists as saved (no search): saving again
             * writes the very bytes it read. Later rounds add to the lists it took. */
            size_t len = (size_t)copse_file_size(ix);
            unsigned char *a = malloc(len), *b = malloc(len);
            CHECK(t, (size_t)copse_file_size(ld) == len);
            CHECK_OK(t, copse_save_buffer(ix, a, len));
            CHECK_OK(t, copse_save_buffer(ld, b, len));
            CHECK(t, memcmp(a, b, len) == 0);
            free(a);
            free(b);
            copse_free(ix);
            ix = ld;
            check_items(t, ix, &m, gone, n_gone);
            CHECK_OK(t, copse_verify(ix));
        }
        if (round == 4) {
            CHECK_OK(t, copse_compact(ix, 2));
            CHECK(t, copse_n_deleted(ix) == 0 && copse_n_added(ix) == 0);
            CHECK(t, copse_state(ix) == COPSE_STATE_BUILT);
            check_items(t, ix, &m, gone, n_gone);
            /* A compacted index saves as a plain 1.x file. */
            CHECK_OK(t, copse_save(ix, path));
            copse_index *ld;
            CHECK_OK(t, copse_open(path, 0, &ld));
            int major = 0;
            copse_file_version(ld, &major, NULL);
            CHECK(t, major == 1);
            copse_free(ld);
        }
    }
    printf("  %-9s dim=%d: %lld live after %d rounds, worst recall@10 at search_k 100: %.3f "
           "(min %.2f)\n", copse_metric_name(c->metric), c->dim, (long long)m.n, ROUNDS, worst,
           c->min_recall);
    CHECK(t, worst >= c->min_recall);
    copse_free(ix);
    free(m.ids);
    free(m.x);
    free(gone);
    free(v);
}

static void test_interleavings(t_ctx *t)
{
    static const live_case cases[] = {
        {COPSE_ANGULAR, 16, 0.90},   {COPSE_EUCLIDEAN, 16, 0.90}, {COPSE_MANHATTAN, 12, 0.85},
        {COPSE_DOT, 16, 0.85},       {COPSE_HAMMING, 64, 0.80},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_case(t, &cases[i]);
}

/* Changes before any query, on an empty base, and bad input after build. */
static void test_edges(t_ctx *t)
{
    copse_index *ix;
    float v[4] = {1, 2, 3, 4}, nan4[4] = {1, NAN, 0, 0};
    CHECK_OK(t, copse_new(4, COPSE_EUCLIDEAN, &ix));
    CHECK_RC(t, copse_delete_item(ix, 0), COPSE_ERR_STATE);
    CHECK_OK(t, copse_build(ix, 1, 1)); /* empty */
    CHECK_RC(t, copse_delete_item(ix, 0), COPSE_ERR_NOTFOUND);
    CHECK_RC(t, copse_add_item(ix, -1, v), COPSE_ERR_ID);
    CHECK_RC(t, copse_add_item(ix, 3, nan4), COPSE_ERR_VALUE);
    CHECK_RC(t, copse_add_item(ix, 3, NULL), COPSE_ERR_ARG);
    CHECK_RC(t, copse_delete_items(ix, -1, NULL), COPSE_ERR_ARG);
    CHECK(t, copse_n_items(ix) == 0);
    CHECK_OK(t, copse_add_item(ix, 3, v));
    CHECK(t, copse_n_items(ix) == 1 && copse_has_item(ix, 3) && copse_max_id(ix) == 3);
    int64_t ids[2], n;
    float d[2];
    CHECK_OK(t, copse_search_vector(ix, NULL, v, 2, -1, ids, d, &n));
    CHECK(t, n == 1 && ids[0] == 3 && d[0] == 0);
    CHECK_OK(t, copse_search_item(ix, NULL, 3, 2, -1, ids, d, &n));
    CHECK(t, n == 1 && ids[0] == 3);
    /* All or nothing: one unknown id deletes nothing. */
    int64_t two[2] = {3, 77};
    CHECK_RC(t, copse_delete_items(ix, 2, two), COPSE_ERR_NOTFOUND);
    CHECK(t, strstr(copse_errmsg(ix), "77") != NULL && copse_has_item(ix, 3));
    CHECK_RC(t, copse_unbuild(ix), COPSE_ERR_STATE);
    CHECK_OK(t, copse_delete_item(ix, 3));
    CHECK_OK(t, copse_search_vector(ix, NULL, v, 2, -1, ids, d, &n));
    CHECK(t, n == 0);
    CHECK_RC(t, copse_search_item(ix, NULL, 3, 2, -1, ids, d, &n), COPSE_ERR_NOTFOUND);
    /* A file with changes on an empty base round-trips through a buffer. */
    CHECK_OK(t, copse_add_item(ix, 5, v));
    size_t len = (size_t)copse_file_size(ix);
    unsigned char *img = malloc(len);
    CHECK_OK(t, copse_save_buffer(ix, img, len));
    copse_index *ld;
    CHECK_OK(t, copse_new(4, COPSE_EUCLIDEAN, &ld));
    CHECK_OK(t, copse_load_buffer(ld, img, len));
    CHECK(t, copse_n_items(ld) == 1 && copse_has_item(ld, 5) && !copse_has_item(ld, 3));
    CHECK_OK(t, copse_verify(ld));
    copse_free(ld);
    free(img);
    CHECK_RC(t, copse_set_compact_threshold(ix, -1), COPSE_ERR_ARG);
    copse_free(ix);
}

static int even_id(void *ctx, int64_t id)
{
    (void)ctx;
    return id % 2 == 0;
}

/* Filters on a changed index: items added after build are matched by id (an id filter, a
 * callback), deleted ones are never returned, and the exact filtered answer is brute force
 * over the allowed live items. */
static void test_filters(t_ctx *t)
{
    enum { N = 3000, D = 8, ADD = 800 };
    float *x = t_clustered(t, N + ADD + 20, D, 10, 0.3);
    copse_index *ix = t_index(t, D, COPSE_EUCLIDEAN, x, N, 4, 1);
    REQUIRE(t, ix);
    CHECK_OK(t, copse_add_items(ix, ADD, NULL, N, x + N * D));
    int64_t del[300];
    for (int i = 0; i < 300; i++)
        del[i] = (int64_t)i * 11; /* base and added items alike */
    CHECK_OK(t, copse_delete_items(ix, 300, del));
    model m = {D, 0, 0, NULL, NULL};
    for (int64_t id = 0; id < N + ADD; id++)
        if (id % 11 != 0 || id / 11 >= 300)
            model_put(&m, id, x + id * D);
    copse_filter *cb, *set;
    CHECK_OK(t, copse_filter_new_callback(even_id, NULL, &cb));
    int64_t chosen[400];
    for (int i = 0; i < 400; i++)
        chosen[i] = N - 200 + i * 2; /* half in the base, half added after build */
    CHECK_OK(t, copse_filter_new_ids(ix, chosen, 400, &set));
    for (int which = 0; which < 2; which++) {
        const copse_filter *f = which ? set : cb;
        model allowed = {D, 0, 0, NULL, NULL};
        for (int64_t i = 0; i < m.n; i++) {
            int ok = which ? (m.ids[i] >= N - 200 && m.ids[i] < N + 600 && m.ids[i] % 2 == 0)
                           : m.ids[i] % 2 == 0;
            if (ok)
                model_put(&allowed, m.ids[i], m.x + i * D);
        }
        float *q = x + (N + ADD) * D;
        for (int r = 0; r < 20; r++) {
            int64_t ids[K], n;
            float d[K], truth[K];
            copse_index *dummy = ix;
            brute(dummy, &allowed, q + r * D, truth);
            CHECK_OK(t, copse_exact_vector_filtered(ix, NULL, q + r * D, K, f, ids, d, &n));
            CHECK(t, n == K);
            for (int j = 0; j < K; j++)
                CHECK(t, model_has(&allowed, ids[j]) && fabsf(d[j] - truth[j]) <= 1e-4f);
            CHECK_OK(t, copse_search_vector_filtered(ix, NULL, q + r * D, K, 100, f, ids, d, &n));
            CHECK(t, n == K);
            for (int j = 0; j < K; j++)
                CHECK(t, model_has(&allowed, ids[j]));
        }
        free(allowed.ids);
        free(allowed.x);
    }
    copse_filter_free(cb);
    copse_filter_free(set);
    copse_free(ix);
    free(m.ids);
    free(m.x);
    free(x);
}

/* The automatic compaction: past the threshold an add compacts by itself. */
static void test_auto_compact(t_ctx *t)
{
    enum { N = 400, D = 8 };
    float *x = t_uniform(t, 2 * N, D);
    copse_index *ix = t_index(t, D, COPSE_EUCLIDEAN, x, N, 4, 1);
    REQUIRE(t, ix);
    CHECK_OK(t, copse_set_compact_threshold(ix, 0.25));
    CHECK_OK(t, copse_add_items(ix, N / 8, NULL, N, x + N * D));
    CHECK(t, copse_n_added(ix) == N / 8);
    CHECK_OK(t, copse_add_items(ix, N / 8, NULL, N + N / 8, x + (N + N / 8) * D));
    CHECK(t, copse_n_added(ix) == 0 && copse_n_items(ix) == N + N / 4);
    copse_free(ix);
    free(x);
}

/* One writer, three readers. The writer adds items whose vector is a function of the id and
 * deletes some; readers check every answer: distances exact for the id's vector, sorted, no
 * id twice, k results. */
enum { LW_DIM = 8, LW_BASE = 1500, LW_ADDS = 1500, LW_READERS = 3 };

static void lw_vector(int64_t id, float *v)
{
    uint64_t z = (uint64_t)id * 0x9e3779b97f4a7c15ull + 1;
    for (int d = 0; d < LW_DIM; d++) {
        z ^= z >> 31;
        z *= 0xbf58476d1ce4e5b9ull;
        v[d] = (float)((z >> 40) % 1000) / 1000.0f;
    }
}

typedef struct lw_shared {
    copse_index *ix;
    _Atomic int done;
    _Atomic long bad, queries;
} lw_shared;

static void *lw_reader(void *arg)
{
    lw_shared *sh = arg;
    copse_scratch *s;
    if (copse_scratch_new(&s) != COPSE_OK)
        return NULL;
    uint64_t z = (uint64_t)(uintptr_t)&s;
    while (!sh->done) {
        float q[LW_DIM], v[LW_DIM];
        lw_vector((int64_t)(z++ % 100000) + 500000, q);
        int64_t ids[K], n = 0;
        float d[K];
        int rc = copse_search_vector(sh->ix, s, q, K, 60, ids, d, &n);
        int ok = rc == COPSE_OK && n == K;
        for (int64_t j = 0; ok && j < n; j++) {
            float e = 0;
            lw_vector(ids[j], v);
            for (int k = 0; k < LW_DIM; k++)
                e += (q[k] - v[k]) * (q[k] - v[k]);
            ok = fabsf(sqrtf(e) - d[j]) < 1e-4f && (j == 0 || d[j - 1] <= d[j]) &&
                 (j == 0 || ids[j - 1] != ids[j]) && ids[j] % 3 != 1; /* id % 3 == 1: deleted at once */
        }
        if (!ok)
            sh->bad++;
        sh->queries++;
    }
    copse_scratch_free(s);
    return NULL;
}

static void test_live_writer(t_ctx *t)
{
    lw_shared sh = {0};
    CHECK_OK(t, copse_new(LW_DIM, COPSE_EUCLIDEAN, &sh.ix));
    float v[LW_DIM];
    for (int64_t id = 0; id < LW_BASE; id++) {
        lw_vector(id, v);
        CHECK_OK(t, copse_add_item(sh.ix, id, v));
    }
    CHECK_OK(t, copse_build(sh.ix, 4, 1));
    /* Items the readers must never see: deleted before they start. */
    for (int64_t id = 1; id < LW_BASE; id += 3)
        CHECK_OK(t, copse_delete_item(sh.ix, id));
    /* The readers start on a loaded changed file, whose lists and norms are read where they
     * are mapped until the writer's first add takes them. */
    enum { SAVED = 100 };
    for (int64_t id = LW_BASE; id < LW_BASE + SAVED; id++) {
        lw_vector(id, v);
        if (id % 3 != 1)
            CHECK_OK(t, copse_add_item(sh.ix, id, v));
    }
    size_t len = (size_t)copse_file_size(sh.ix);
    unsigned char *buf = malloc(len);
    REQUIRE(t, buf != NULL);
    CHECK_OK(t, copse_save_buffer(sh.ix, buf, len));
    copse_free(sh.ix);
    CHECK_OK(t, copse_new(LW_DIM, COPSE_EUCLIDEAN, &sh.ix));
    CHECK_OK(t, copse_load_buffer(sh.ix, buf, len));
    pthread_t tid[LW_READERS];
    for (int i = 0; i < LW_READERS; i++)
        pthread_create(&tid[i], NULL, lw_reader, &sh);
    for (int64_t id = LW_BASE + SAVED; id < LW_BASE + LW_ADDS; id++) {
        lw_vector(id, v);
        if (id % 3 == 1)
            continue;
        CHECK_OK(t, copse_add_item(sh.ix, id, v));
        if (id % 3 == 2 && id % 9 == 8)
            CHECK_OK(t, copse_delete_item(sh.ix, id));
        if (id == LW_BASE + LW_ADDS / 2)
            CHECK_OK(t, copse_compact(sh.ix, 1));
    }
    sh.done = 1;
    for (int i = 0; i < LW_READERS; i++)
        pthread_join(tid[i], NULL);
    printf("  %ld queries on a loaded file beside %d adds, deletes and a compaction: %ld wrong\n",
           (long)sh.queries, LW_ADDS - SAVED, (long)sh.bad);
    CHECK(t, sh.queries > 0 && sh.bad == 0);
    copse_free(sh.ix);
    free(buf);
}

/* A large share of a built index deleted at once: the base's lists are repaired around the
 * deleted items, so the saved GRAPH (which is that repaired copy) names none of them and
 * keeps every list as long as it was; queries stay right over the live set, before and
 * after a save and load. */
static void test_repair(t_ctx *t)
{
    enum { N = 3000, D = 8, DEL = 1200 };
    model m = {D, 0, 0, NULL, NULL};
    float v[D];
    copse_index *ix;
    CHECK_OK(t, copse_new(D, COPSE_EUCLIDEAN, &ix));
    for (int64_t i = 0; i < N; i++) {
        random_vector(t, COPSE_EUCLIDEAN, D, v);
        CHECK_OK(t, copse_add_item(ix, i, v));
        model_put(&m, i, v);
    }
    CHECK_OK(t, copse_build(ix, 4, 2));
    uint64_t deg = (uint64_t)copse_graph_degree(ix);
    size_t len = (size_t)copse_file_size(ix);
    unsigned char *before = malloc(len);
    CHECK_OK(t, copse_save_buffer(ix, before, len));
    char *dead = calloc(N, 1);
    int64_t del[DEL];
    for (int i = 0; i < DEL; i++) {
        int64_t at = (int64_t)(t_next(t) % (uint64_t)m.n);
        del[i] = m.ids[at];
        dead[del[i]] = 1;
        model_drop(&m, at);
    }
    CHECK_OK(t, copse_delete_items(ix, DEL, del));
    double r = check_queries(t, ix, &m, 40);
    size_t len2 = (size_t)copse_file_size(ix);
    unsigned char *after = malloc(len2);
    CHECK_OK(t, copse_save_buffer(ix, after, len2));
    /* GRAPH in both images, by the table copse_section_info reads. */
    uint64_t at[2] = {0, 0}, glen[2] = {0, 0};
    for (int which = 0; which < 2; which++) {
        copse_index *ld;
        CHECK_OK(t, copse_new(D, COPSE_EUCLIDEAN, &ld));
        CHECK_OK(t, copse_load_buffer(ld, which ? after : before, which ? len2 : len));
        for (int i = 0; i < copse_n_sections(ld); i++) {
            const char *name;
            uint64_t off, l;
            CHECK_OK(t, copse_section_info(ld, i, &name, &off, &l, NULL));
            if (!strcmp(name, "graph"))
                at[which] = off, glen[which] = l;
        }
        if (which)
            r = fmin(r, check_queries(t, ld, &m, 40));
        copse_free(ld);
    }
    CHECK(t, glen[0] == N * deg * 4 && glen[1] == glen[0]);
    uint64_t changed = 0;
    for (uint64_t s = 0; glen[1] && s < N; s++) {
        const uint32_t *a = (const uint32_t *)(before + at[0]) + s * deg;
        const uint32_t *b = (const uint32_t *)(after + at[1]) + s * deg;
        uint64_t na = 0, nb = 0;
        while (na < deg && a[na] != UINT32_MAX)
            na++;
        while (nb < deg && b[nb] != UINT32_MAX) {
            CHECK(t, b[nb] < N && !dead[b[nb]]);
            nb++;
        }
        for (uint64_t j = nb; j < deg; j++)
            CHECK(t, b[j] == UINT32_MAX);
        CHECK(t, nb > 0);
        changed += memcmp(a, b, deg * 4) != 0;
    }
    printf("  %d of %d deleted: %llu of %d lists repaired, worst recall@10 at search_k 100 %.3f\n",
           DEL, N, (unsigned long long)changed, N, r);
    CHECK(t, changed > N / 2 && r >= 0.9);
    free(before);
    free(after);
    free(dead);
    free(m.ids);
    free(m.x);
    copse_free(ix);
}

/* After 50% churn (half the base deleted in rounds, as many new items added), a query's graph
 * walk over base and added items costs about what a fresh build of the same live set spends
 * at the same search_k, counted in distances (cp_scratch_walked), at the same recall. A walk
 * of the base past its tombstones beside a walk of the added items' own graph, each needing
 * k results (as before the added items were linked into the base's graph), cost 2.1x here;
 * one walk seeded by the base's items alone, deleted ones among them, 1.17x (1.08x with the
 * added items filed in the forest's leaves and deleted seeds dropped). The same file saved
 * and loaded walks exactly as the index it was saved from (the load files the added items
 * again, in the same order). */
static void test_one_walk(t_ctx *t)
{
    enum { N = 4000, D = 16, ROUNDS = 10, NQ = 200, SK = 20 };
    model m = {D, 0, 0, NULL, NULL};
    float *x = t_clustered(t, N + N / 2, D, 40, 0.5);
    copse_index *ix, *fresh;
    CHECK_OK(t, copse_new(D, COPSE_EUCLIDEAN, &ix));
    for (int64_t i = 0; i < N; i++) {
        CHECK_OK(t, copse_add_item(ix, i, x + i * D));
        model_put(&m, i, x + i * D);
    }
    CHECK_OK(t, copse_build(ix, -1, 2));
    int64_t next = N, del[N / 2 / ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        int n_del = 0;
        while (n_del < N / 2 / ROUNDS) { /* base items only: the churn of bench/churn.cc */
            int64_t at = (int64_t)(t_next(t) % (uint64_t)m.n);
            if (m.ids[at] >= N)
                continue;
            del[n_del++] = m.ids[at];
            model_drop(&m, at);
        }
        CHECK_OK(t, copse_delete_items(ix, n_del, del));
        CHECK_OK(t, copse_add_items(ix, n_del, NULL, next, x + next * D));
        for (int i = 0; i < n_del; i++, next++)
            model_put(&m, next, x + next * D);
    }
    CHECK_OK(t, copse_new(D, COPSE_EUCLIDEAN, &fresh));
    CHECK_OK(t, copse_add_items(fresh, m.n, m.ids, 0, m.x));
    CHECK_OK(t, copse_build(fresh, -1, 2));
    REQUIRE(t, copse_n_items(ix) == N && copse_n_items(fresh) == N);
    copse_scratch *s[2];
    CHECK_OK(t, copse_scratch_new(&s[0]));
    CHECK_OK(t, copse_scratch_new(&s[1]));
    float q[D], truth[K], *exact = malloc(NQ * K * sizeof *exact), *approx[2];
    approx[0] = malloc(NQ * K * sizeof *approx[0]);
    approx[1] = malloc(NQ * K * sizeof *approx[1]);
    for (int i = 0; i < NQ; i++) {
        /* near the data: a query among the items, not in the empty space between clusters */
        const float *near = m.x + (int64_t)(t_next(t) % (uint64_t)m.n) * D;
        for (int d = 0; d < D; d++)
            q[d] = near[d] + 0.2f * (float)t_gauss(t);
        CHECK(t, brute(ix, &m, q, truth) == K);
        memcpy(exact + i * K, truth, sizeof truth);
        for (int which = 0; which < 2; which++) {
            int64_t ids[K], n = 0;
            CHECK_OK(t, copse_search_vector(which ? fresh : ix, s[which], q, K, SK, ids,
                                            approx[which] + i * K, &n));
            CHECK(t, n == K);
            for (int j = 0; j < n; j++)
                CHECK(t, model_has(&m, ids[j]));
        }
    }
    double r[2] = {t_recall(approx[0], exact, NQ, K, 0), t_recall(approx[1], exact, NQ, K, 0)};
    double walked[2] = {(double)cp_scratch_walked(s[0]) / NQ, (double)cp_scratch_walked(s[1]) / NQ};
    printf("  %d base items, %d deleted and %d added: at search_k %d a query's walk computes %.0f "
           "distances (fresh build of the live set: %.0f, %.2fx), recall@10 %.3f (fresh %.3f)\n",
           N, N / 2, N / 2, SK, walked[0], walked[1], walked[0] / walked[1], r[0], r[1]);
    CHECK(t, walked[0] <= 1.12 * walked[1]);
    CHECK(t, r[0] >= r[1] - 0.01);
    size_t len = (size_t)copse_file_size(ix);
    unsigned char *buf = malloc(len);
    copse_index *loaded;
    copse_scratch *ls;
    REQUIRE(t, buf != NULL);
    CHECK_OK(t, copse_save_buffer(ix, buf, len));
    CHECK_OK(t, copse_new(D, COPSE_EUCLIDEAN, &loaded));
    CHECK_OK(t, copse_load_buffer(loaded, buf, len));
    CHECK_OK(t, copse_scratch_new(&ls));
    uint64_t before = cp_scratch_walked(s[0]);
    int same = 1;
    for (int i = 0; i < NQ; i++) {
        int64_t a[K], b[K], na = 0, nb = 0;
        const float *near = m.x + (int64_t)i * D; /* any queries: the two must agree */
        CHECK_OK(t, copse_search_vector(ix, s[0], near, K, SK, a, NULL, &na));
        CHECK_OK(t, copse_search_vector(loaded, ls, near, K, SK, b, NULL, &nb));
        same &= na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
    }
    CHECK(t, same);
    CHECK(t, cp_scratch_walked(ls) == cp_scratch_walked(s[0]) - before);
    /* Until then the loaded index read its lists and norms in buf; the first change takes them
     * as saved, so the same insert into both leaves them answering alike. */
    CHECK_OK(t, copse_add_item(ix, next + 1, x + 11 * D));
    CHECK_OK(t, copse_add_item(loaded, next + 1, x + 11 * D));
    for (int i = 0; i < NQ; i++) {
        int64_t a[K], b[K], na = 0, nb = 0;
        const float *near = m.x + (int64_t)i * D;
        CHECK_OK(t, copse_search_vector(ix, s[0], near, K, SK, a, NULL, &na));
        CHECK_OK(t, copse_search_vector(loaded, ls, near, K, SK, b, NULL, &nb));
        same &= na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
    }
    CHECK(t, same);
    /* The loaded index reads the added items' vectors and ids in buf until a change copies
     * them: changes after that leave buf as saved, replacing an added item included. */
    unsigned char *saved = malloc(len);
    REQUIRE(t, saved != NULL);
    memcpy(saved, buf, len);
    float moved[D], got[D];
    for (int d = 0; d < D; d++)
        moved[d] = x[d] + 100.0f;
    CHECK_OK(t, copse_add_item(loaded, N + 1, moved)); /* an added item, replaced */
    CHECK_OK(t, copse_add_item(loaded, next, x + 7 * D)); /* a new id */
    CHECK_OK(t, copse_delete_item(loaded, N + 2));
    CHECK(t, memcmp(saved, buf, len) == 0);
    CHECK_OK(t, copse_get_item(loaded, N + 1, got));
    CHECK(t, memcmp(got, moved, sizeof got) == 0);
    CHECK_OK(t, copse_get_item(loaded, N + 3, got));
    CHECK(t, memcmp(got, x + (N + 3) * D, sizeof got) == 0);
    CHECK(t, copse_get_item(loaded, N + 2, got) == COPSE_ERR_NOTFOUND);
    CHECK(t, copse_n_items(loaded) == N + 1); /* two new, one replaced, one deleted */
    int64_t top[K], n_top = 0;
    CHECK_OK(t, copse_search_vector(loaded, ls, moved, K, SK, top, NULL, &n_top));
    CHECK(t, n_top == K && top[0] == N + 1);
    free(saved);
    copse_scratch_free(ls);
    copse_free(loaded);
    free(buf);
    free(exact);
    free(approx[0]);
    free(approx[1]);
    copse_scratch_free(s[0]);
    copse_scratch_free(s[1]);
    free(x);
    free(m.ids);
    free(m.x);
    copse_free(ix);
    copse_free(fresh);
}

const t_case live_cases[] = {
    {"live/interleavings", test_interleavings},
    {"live/edges", test_edges},
    {"live/filters", test_filters},
    {"live/auto_compact", test_auto_compact},
    {"live/repair", test_repair},
    {"live/one_walk", test_one_walk},
    {"threads/live_writer", test_live_writer},
    {NULL, NULL},
};
