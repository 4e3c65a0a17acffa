/*
 * test_storage.c: quantized storage (copse_set_storage). Recall of float16 and 8-bit indexes
 * against exact brute force on the float data, for every metric that takes them; files that
 * save, load, verify and answer alike; the living index on a quantized base; bad input.
 * The kernels on codes are compared with the scalar reference in test_kernels.c.
 */
#include "tests.h"

enum { DIM = 32, N = 10000, NQ = 200, K = 10 };

static copse_index *build(t_ctx *t, copse_metric m, copse_storage st, const float *x, int64_t n)
{
    copse_index *ix = NULL;
    if (copse_new(DIM, m, &ix) != COPSE_OK)
        return NULL;
    CHECK_OK(t, copse_set_storage(ix, st));
    CHECK_OK(t, copse_add_items(ix, n, NULL, 0, x));
    CHECK_OK(t, copse_build(ix, -1, 2));
    return ix;
}

/* Share of the true top-k ids (on the float data) that the results hold. */
static double id_recall(const int64_t *got, const int64_t *truth, int64_t nq)
{
    int64_t hit = 0;
    for (int64_t q = 0; q < nq; q++)
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++)
                if (got[q * K + i] >= 0 && got[q * K + i] == truth[q * K + j]) {
                    hit++;
                    break;
                }
    return (double)hit / (double)(nq * K);
}

typedef struct storage_case {
    copse_metric metric;
    copse_storage storage;
    double min_walk20, min_walk100, min_exact;
    double norm_spread; /* > 0: each vector scaled by exp(norm_spread * gaussian) */
} storage_case;

/* Thresholds, on 10,000 clustered items of 32 dimensions (40 clusters, noise 0.35), queries
 * drawn apart, recall@10 against the float data's exact top 10: float16 must be within a
 * point of float32 at each width (measured: within 0.002); 8-bit must reach 0.93 at
 * search_k 20 and 0.95 at 100 (measured 0.956-0.961 and 0.966-0.976), and its exact search
 * over the codes 0.96 (measured 0.966-0.976): the rest is the codes' error, which no search
 * width removes. The log line prints each figure.
 * Word vectors' norms spread widely (GloVe's from 0.04 to 12, median 3.8), and a few long
 * rows then set every dimension's range: the *_norms cases scale each vector by a log-normal
 * factor (sigma 0.6). There 8-bit angular codes with one range per dimension gave exact recall
 * 0.868 and codes with each row's own range 0.982 (dot: 0.996 and 1.000). */
static const storage_case cases[] = {
    {COPSE_ANGULAR, COPSE_STORAGE_F16, -1, -1, 0.99, 0},
    {COPSE_EUCLIDEAN, COPSE_STORAGE_F16, -1, -1, 0.99, 0},
    {COPSE_MANHATTAN, COPSE_STORAGE_F16, -1, -1, 0.99, 0},
    {COPSE_DOT, COPSE_STORAGE_F16, -1, -1, 0.99, 0},
    {COPSE_ANGULAR, COPSE_STORAGE_I8, 0.93, 0.95, 0.96, 0},
    {COPSE_EUCLIDEAN, COPSE_STORAGE_I8, 0.93, 0.95, 0.96, 0},
    {COPSE_MANHATTAN, COPSE_STORAGE_I8, 0.93, 0.95, 0.96, 0},
    {COPSE_DOT, COPSE_STORAGE_I8, 0.93, 0.95, 0.96, 0},
    {COPSE_ANGULAR, COPSE_STORAGE_I8, 0.93, 0.95, 0.96, 0.6},
    {COPSE_DOT, COPSE_STORAGE_I8, 0.93, 0.95, 0.96, 0.6},
};

static void run_recall(t_ctx *t, const storage_case *c)
{
    float *all = t_clustered(t, N + NQ, DIM, 40, 0.35);
    for (int64_t i = 0; c->norm_spread > 0 && i < N + NQ; i++) {
        float f = (float)exp(c->norm_spread * t_gauss(t));
        for (int j = 0; j < DIM; j++)
            all[i * DIM + j] *= f;
    }
    const float *qs = all + (size_t)N * DIM;
    copse_index *f32 = build(t, c->metric, COPSE_STORAGE_F32, all, N);
    copse_index *ix = build(t, c->metric, c->storage, all, N);
    REQUIRE(t, f32 && ix);
    CHECK(t, copse_get_storage(ix) == c->storage);
    int64_t *truth = malloc(sizeof(int64_t) * NQ * K), *got = malloc(sizeof(int64_t) * NQ * K);
    CHECK_OK(t, copse_search_batch(f32, NULL, qs, NQ, K, -1, 1, 2, truth, NULL, NULL));
    double r[3], rf[2];
    int64_t widths[2] = {20, 100};
    for (int w = 0; w < 2; w++) {
        CHECK_OK(t, copse_search_batch(ix, NULL, qs, NQ, K, widths[w], 0, 2, got, NULL, NULL));
        r[w] = id_recall(got, truth, NQ);
        CHECK_OK(t, copse_search_batch(f32, NULL, qs, NQ, K, widths[w], 0, 2, got, NULL, NULL));
        rf[w] = id_recall(got, truth, NQ);
    }
    CHECK_OK(t, copse_search_batch(ix, NULL, qs, NQ, K, -1, 1, 2, got, NULL, NULL));
    r[2] = id_recall(got, truth, NQ);
    printf("  %-9s %s%s: recall@10 %.3f at search_k 20, %.3f at 100 (f32 %.3f, %.3f), exact over "
           "the codes %.3f\n", copse_metric_name(c->metric), copse_storage_name(c->storage),
           c->norm_spread > 0 ? " (norms spread)" : "", r[0], r[1], rf[0], rf[1], r[2]);
    for (int w = 0; w < 2; w++) {
        double min = (w ? c->min_walk100 : c->min_walk20) < 0 ? rf[w] - 0.01
                                                              : (w ? c->min_walk100 : c->min_walk20);
        CHECK(t, r[w] >= min);
    }
    CHECK(t, r[2] >= c->min_exact);
    free(truth);
    free(got);
    free(all);
    copse_free(f32);
    copse_free(ix);
}

static void r_f16_ang(t_ctx *t) { run_recall(t, &cases[0]); }
static void r_f16_euc(t_ctx *t) { run_recall(t, &cases[1]); }
static void r_f16_man(t_ctx *t) { run_recall(t, &cases[2]); }
static void r_f16_dot(t_ctx *t) { run_recall(t, &cases[3]); }
static void r_i8_ang(t_ctx *t) { run_recall(t, &cases[4]); }
static void r_i8_euc(t_ctx *t) { run_recall(t, &cases[5]); }
static void r_i8_man(t_ctx *t) { run_recall(t, &cases[6]); }
static void r_i8_dot(t_ctx *t) { run_recall(t, &cases[7]); }
static void r_i8_ang_norms(t_ctx *t) { run_recall(t, &cases[8]); }
static void r_i8_dot_norms(t_ctx *t) { run_recall(t, &cases[9]); }

/* Largest gap between an item's vector as added and as the index returns it. */
static double item_error(t_ctx *t, const copse_index *ix, const float *x, int64_t n)
{
    float got[DIM];
    double worst = 0;
    for (int64_t i = 0; i < n; i += 97) {
        CHECK_OK(t, copse_get_item(ix, i, got));
        for (int d = 0; d < DIM; d++) {
            /* A plain compare: gcc 12 for aarch64 crashed vectorizing an fmax reduction here. */
            double e = fabs((double)got[d] - x[i * DIM + d]);
            if (e > worst)
                worst = e;
        }
    }
    return worst;
}

/* Saved, loaded, verified: the same answers, the format's minor one later, the file smaller
 * by what the codes save; items decode within the code's error. */
static void round_trip(t_ctx *t)
{
    enum { n = 3000 };
    float *x = t_clustered(t, n + 20, DIM, 10, 0.3);
    for (int st = COPSE_STORAGE_F32; st <= COPSE_STORAGE_I8; st++) {
        copse_index *ix = build(t, COPSE_EUCLIDEAN, (copse_storage)st, x, n), *back = NULL;
        REQUIRE(t, ix);
        CHECK_OK(t, copse_verify(ix));
        const char *path = t_path(t, "q.copse");
        CHECK_OK(t, copse_save(ix, path));
        CHECK_OK(t, copse_open(path, 0, &back));
        REQUIRE(t, back);
        CHECK(t, copse_get_storage(back) == (copse_storage)st);
        CHECK_OK(t, copse_verify(back));
        int major, minor;
        copse_file_version(back, &major, &minor);
        CHECK(t, major == 1 && minor == (st ? 3 : 2));
        copse_file_version(ix, &major, &minor);
        CHECK(t, major == 1 && minor == (st ? 3 : 2));
        int found = 0;
        for (int i = 0; i < copse_n_sections(back); i++) {
            const char *name;
            uint64_t len;
            CHECK_OK(t, copse_section_info(back, i, &name, NULL, &len, NULL));
            if (strcmp(name, "vectors") == 0)
                CHECK(t, len == (uint64_t)n * DIM * (st == 0 ? 4 : st == 1 ? 2 : 1));
            found += strcmp(name, "quant") == 0;
        }
        CHECK(t, found == (st != 0));
        for (int q = 0; q < 20; q++) {
            int64_t a[K], b[K], na, nb;
            float da[K], db[K];
            const float *qv = x + (size_t)(n + q) * DIM;
            CHECK_OK(t, copse_search_vector(ix, NULL, qv, K, 50, a, da, &na));
            CHECK_OK(t, copse_search_vector(back, NULL, qv, K, 50, b, db, &nb));
            CHECK(t, na == nb && memcmp(a, b, sizeof a) == 0 && memcmp(da, db, sizeof da) == 0);
            /* By item: the item itself comes first, at (about) distance 0. */
            CHECK_OK(t, copse_search_item(back, NULL, q * 7, K, 50, b, db, &nb));
            CHECK(t, nb == K && b[0] == q * 7 && db[0] < 1e-3f);
        }
        double err = item_error(t, back, x, n);
        printf("  %s: largest component error of copse_get_item %.2g\n",
               copse_storage_name((copse_storage)st), err);
        CHECK(t, st == 0 ? err == 0 : st == 1 ? err < 2e-3 : err < 0.02);
        float d;
        CHECK_OK(t, copse_get_distance(back, 1, 2, &d));
        float xa[DIM], xb[DIM], want;
        CHECK_OK(t, copse_get_item(back, 1, xa));
        CHECK_OK(t, copse_get_item(back, 2, xb));
        CHECK_OK(t, copse_distance(back, xa, xb, &want));
        CHECK(t, d == want); /* between the decoded vectors, as queries report */
        copse_free(back);
        copse_free(ix);
    }
    free(x);
}

/* Changes after build on a quantized base: added items stay float beside the codes, a save
 * is format 2.1, compaction keeps the storage, unbuild gives back the decoded vectors. */
static void living(t_ctx *t)
{
    enum { n = 2000, extra = 700 };
    float *x = t_clustered(t, n + extra, DIM, 10, 0.3);
    copse_index *ix = build(t, COPSE_ANGULAR, COPSE_STORAGE_I8, x, n), *back = NULL;
    REQUIRE(t, ix);
    CHECK_OK(t, copse_add_items(ix, extra, NULL, n, x + (size_t)n * DIM));
    CHECK_OK(t, copse_delete_item(ix, 5));
    int64_t ids[K], nn;
    float d[K], got[DIM];
    CHECK_OK(t, copse_search_item(ix, NULL, n + 3, K, 50, ids, d, &nn));
    CHECK(t, nn == K && ids[0] == n + 3);
    CHECK_OK(t, copse_get_item(ix, n + 3, got));
    CHECK(t, memcmp(got, x + (size_t)(n + 3) * DIM, sizeof got) == 0); /* the delta is exact */
    CHECK_RC(t, copse_get_item(ix, 5, got), COPSE_ERR_NOTFOUND);
    const char *path = t_path(t, "live.copse");
    CHECK_OK(t, copse_save(ix, path));
    CHECK_OK(t, copse_open(path, 0, &back));
    REQUIRE(t, back);
    int major, minor;
    copse_file_version(back, &major, &minor);
    CHECK(t, major == 2 && minor == 3); /* added items linked into the base's graph, filed in its leaves */
    CHECK(t, copse_get_storage(back) == COPSE_STORAGE_I8);
    CHECK(t, copse_n_items(back) == n + extra - 1);
    CHECK_OK(t, copse_search_item(back, NULL, n + 3, K, 50, ids, d, &nn));
    CHECK(t, nn == K && ids[0] == n + 3);
    CHECK_OK(t, copse_compact(back, 2));
    CHECK(t, copse_get_storage(back) == COPSE_STORAGE_I8 && copse_n_added(back) == 0);
    CHECK_OK(t, copse_search_item(back, NULL, n + 3, K, 50, ids, d, &nn));
    CHECK(t, nn == K && ids[0] == n + 3);
    copse_file_version(back, &major, &minor);
    CHECK(t, major == 1 && minor == 3);
    /* Unbuild: the builder gets the decoded vectors, and a rebuild as f32 keeps them. */
    copse_index *u = build(t, COPSE_EUCLIDEAN, COPSE_STORAGE_F16, x, n);
    REQUIRE(t, u);
    float before[DIM];
    CHECK_OK(t, copse_get_item(u, 17, before));
    CHECK_OK(t, copse_unbuild(u));
    CHECK_OK(t, copse_get_item(u, 17, got));
    CHECK(t, memcmp(got, before, sizeof got) == 0);
    CHECK_OK(t, copse_set_storage(u, COPSE_STORAGE_F32));
    CHECK_OK(t, copse_build(u, -1, 1));
    CHECK_OK(t, copse_get_item(u, 17, got));
    CHECK(t, memcmp(got, before, sizeof got) == 0);
    copse_free(u);
    copse_free(back);
    copse_free(ix);
    free(x);
}

static void bad_input(t_ctx *t)
{
    copse_index *ix = NULL;
    float v[DIM] = {0};
    REQUIRE(t, copse_new(DIM, COPSE_EUCLIDEAN, &ix) == COPSE_OK);
    CHECK_RC(t, copse_set_storage(ix, (copse_storage)3), COPSE_ERR_ARG);
    CHECK_RC(t, copse_set_storage(ix, (copse_storage)-1), COPSE_ERR_ARG);
    CHECK_RC(t, copse_set_storage(NULL, COPSE_STORAGE_I8), COPSE_ERR_ARG);
    CHECK(t, copse_get_storage(NULL) == COPSE_STORAGE_F32);
    CHECK(t, copse_get_storage(ix) == COPSE_STORAGE_F32); /* the default */
    /* Settable any time before build, also after adds. */
    CHECK_OK(t, copse_add_item(ix, 0, v));
    CHECK_OK(t, copse_set_storage(ix, COPSE_STORAGE_I8));
    CHECK(t, copse_get_storage(ix) == COPSE_STORAGE_I8);
    CHECK_OK(t, copse_build(ix, 1, 1));
    CHECK_RC(t, copse_set_storage(ix, COPSE_STORAGE_F16), COPSE_ERR_STATE);
    CHECK(t, strstr(copse_errmsg(ix), "built") != NULL);
    copse_free(ix);
    /* Hamming's bits are packed already. */
    REQUIRE(t, copse_new(64, COPSE_HAMMING, &ix) == COPSE_OK);
    CHECK_RC(t, copse_set_storage(ix, COPSE_STORAGE_I8), COPSE_ERR_ARG);
    CHECK_RC(t, copse_set_storage(ix, COPSE_STORAGE_F16), COPSE_ERR_ARG);
    CHECK(t, strstr(copse_errmsg(ix), "hamming") != NULL);
    CHECK_OK(t, copse_set_storage(ix, COPSE_STORAGE_F32));
    copse_free(ix);
    /* An on-disk build writes float rows as they come: refused either way round. */
    REQUIRE(t, copse_new(DIM, COPSE_EUCLIDEAN, &ix) == COPSE_OK);
    CHECK_OK(t, copse_on_disk_build(ix, t_path(t, "disk.copse")));
    CHECK_RC(t, copse_set_storage(ix, COPSE_STORAGE_F16), COPSE_ERR_ARG);
    copse_free(ix);
    REQUIRE(t, copse_new(DIM, COPSE_EUCLIDEAN, &ix) == COPSE_OK);
    CHECK_OK(t, copse_set_storage(ix, COPSE_STORAGE_I8));
    CHECK_RC(t, copse_on_disk_build(ix, t_path(t, "disk2.copse")), COPSE_ERR_ARG);
    copse_free(ix);
    /* Beyond half's range: build refuses, names the item, and the index can build otherwise. */
    REQUIRE(t, copse_new(DIM, COPSE_EUCLIDEAN, &ix) == COPSE_OK);
    CHECK_OK(t, copse_set_storage(ix, COPSE_STORAGE_F16));
    CHECK_OK(t, copse_add_item(ix, 0, v));
    v[3] = 70000.0f;
    CHECK_OK(t, copse_add_item(ix, 41, v));
    CHECK_RC(t, copse_build(ix, 1, 1), COPSE_ERR_VALUE);
    CHECK(t, strstr(copse_errmsg(ix), "item 41 component 3") != NULL);
    CHECK(t, copse_state(ix) == COPSE_STATE_ADDING);
    v[3] = 65504.0f; /* half's largest: fine */
    CHECK_OK(t, copse_add_item(ix, 41, v));
    CHECK_OK(t, copse_build(ix, 1, 1));
    CHECK_OK(t, copse_unbuild(ix));
    v[3] = 70000.0f;
    CHECK_OK(t, copse_add_item(ix, 41, v));
    CHECK_OK(t, copse_set_storage(ix, COPSE_STORAGE_I8));
    CHECK_OK(t, copse_build(ix, 1, 1));
    copse_free(ix);
    /* Names. */
    copse_storage st;
    CHECK(t, strcmp(copse_storage_name(COPSE_STORAGE_I8), "i8") == 0);
    CHECK(t, copse_storage_name((copse_storage)7) == NULL);
    CHECK_OK(t, copse_storage_from_name("f16", &st));
    CHECK(t, st == COPSE_STORAGE_F16);
    CHECK_RC(t, copse_storage_from_name("int8", &st), COPSE_ERR_ARG);
    CHECK_RC(t, copse_storage_from_name(NULL, &st), COPSE_ERR_ARG);
    /* An empty index stores nothing: it builds, saves and loads as float32. */
    REQUIRE(t, copse_new(DIM, COPSE_DOT, &ix) == COPSE_OK);
    CHECK_OK(t, copse_set_storage(ix, COPSE_STORAGE_I8));
    CHECK_OK(t, copse_build(ix, -1, 1));
    CHECK(t, copse_get_storage(ix) == COPSE_STORAGE_F32);
    copse_free(ix);
}

const t_case storage_cases[] = {
    {"storage/recall/f16_angular", r_f16_ang},
    {"storage/recall/f16_euclidean", r_f16_euc},
    {"storage/recall/f16_manhattan", r_f16_man},
    {"storage/recall/f16_dot", r_f16_dot},
    {"storage/recall/i8_angular", r_i8_ang},
    {"storage/recall/i8_euclidean", r_i8_euc},
    {"storage/recall/i8_manhattan", r_i8_man},
    {"storage/recall/i8_dot", r_i8_dot},
    {"storage/recall/i8_angular_norms", r_i8_ang_norms},
    {"storage/recall/i8_dot_norms", r_i8_dot_norms},
    {"storage/round_trip", round_trip},
    {"storage/living", living},
    {"storage/bad_input", bad_input},
    {NULL, NULL},
};
