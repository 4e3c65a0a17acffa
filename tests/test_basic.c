/*
 * test_basic.c: exact answers on tiny hand-made cases, one per metric, and the life of an
 * index: sparse ids, replacement, labels, unbuild, automatic tree count.
 */
#include "tests.h"

static copse_index *small_index(t_ctx *t, copse_metric m, int dim, const float *x, int n)
{
    copse_index *ix = NULL;
    CHECK_OK(t, copse_new(dim, m, &ix));
    for (int i = 0; i < n; i++)
        CHECK_OK(t, copse_add_item(ix, i, x + i * dim));
    CHECK_OK(t, copse_build(ix, 3, 1));
    return ix;
}

/* Query q, expect ids in order and distances within 1e-5. */
static void expect(t_ctx *t, copse_index *ix, const float *q, int n, const int64_t *ids,
                   const double *dists)
{
    int64_t got[8], nn = -1;
    float d[8];
    CHECK_OK(t, copse_search_vector(ix, NULL, q, n, -1, got, d, &nn));
    CHECK(t, nn == n);
    for (int i = 0; i < n && i < nn; i++) {
        if (got[i] != ids[i] || fabs(d[i] - dists[i]) > 1e-5) {
            fprintf(stderr, "  %s rank %d: got id %lld at %g, want %lld at %g\n",
                    copse_metric_name(copse_get_metric(ix)), i, (long long)got[i], d[i],
                    (long long)ids[i], dists[i]);
            t->failed = 1;
        }
    }
    /* Brute force must agree on such tiny sets. */
    CHECK_OK(t, copse_exact_vector(ix, NULL, q, n, got, d, &nn));
    for (int i = 0; i < n && i < nn; i++)
        CHECK(t, got[i] == ids[i]);
}

static void test_euclidean(t_ctx *t)
{
    const float x[] = {0, 0, 1, 0, 0, 2, 3, 3};
    const float q[] = {0.9f, 0.1f};
    copse_index *ix = small_index(t, COPSE_EUCLIDEAN, 2, x, 4);
    const int64_t ids[] = {1, 0, 2, 3};
    const double d[] = {sqrt(0.02), sqrt(0.82), sqrt(0.81 + 3.61), sqrt(4.41 + 8.41)};
    expect(t, ix, q, 4, ids, d);
    copse_free(ix);
}

static void test_manhattan(t_ctx *t)
{
    const float x[] = {0, 0, 1, 0, 0, 2, 3, 3};
    const float q[] = {0.9f, 0.1f};
    copse_index *ix = small_index(t, COPSE_MANHATTAN, 2, x, 4);
    const int64_t ids[] = {1, 0, 2, 3};
    const double d[] = {0.2, 1.0, 2.8, 5.0};
    expect(t, ix, q, 4, ids, d);
    copse_free(ix);
}

static double ang(double ax, double ay, double bx, double by)
{
    double c = (ax * bx + ay * by) / (sqrt(ax * ax + ay * ay) * sqrt(bx * bx + by * by));
    return sqrt(2 - 2 * c);
}

static void test_angular(t_ctx *t)
{
    const float x[] = {1, 0, 0, 1, 1, 1, -1, 0};
    const float q[] = {1.0f, 0.1f};
    copse_index *ix = small_index(t, COPSE_ANGULAR, 2, x, 4);
    const int64_t ids[] = {0, 2, 1, 3};
    const double d[] = {ang(1, .1, 1, 0), ang(1, .1, 1, 1), ang(1, .1, 0, 1), ang(1, .1, -1, 0)};
    expect(t, ix, q, 4, ids, d);
    float dd;
    CHECK_OK(t, copse_get_distance(ix, 0, 3, &dd));
    CHECK(t, fabs(dd - 2.0) < 1e-6);
    copse_free(ix);
}

static void test_dot(t_ctx *t)
{
    const float x[] = {1, 0, 2, 0, 0, 3, -1, -1};
    const float q[] = {1, 1};
    copse_index *ix = small_index(t, COPSE_DOT, 2, x, 4);
    const int64_t ids[] = {2, 1, 0, 3};
    const double d[] = {3, 2, 1, -2};
    expect(t, ix, q, 4, ids, d);
    copse_free(ix);
}

static void test_hamming(t_ctx *t)
{
    /* 70 bits, so vectors span two 64-bit words. */
    enum { D = 70 };
    float x[3 * D] = {0}, q[D] = {0};
    for (int i = 0; i < D; i++) {
        x[0 * D + i] = (i % 2) ? 1.0f : 0.0f;         /* odd bits */
        x[1 * D + i] = 1.0f;                          /* all bits */
        x[2 * D + i] = (i >= 64) ? 1.0f : 0.0f;       /* the top 6 bits */
    }
    for (int i = 60; i < D; i++)
        q[i] = 1.0f; /* bits 60..69 */
    copse_index *ix = small_index(t, COPSE_HAMMING, D, x, 3);
    /* to x2: bits 60..63 differ: 4. to x0: odd bits outside 60..69 are 30, even bits inside
     * are 5: 35. to x1: 60 zero bits of q: 60. */
    const int64_t ids[] = {2, 0, 1};
    const double d[] = {4, 35, 60};
    expect(t, ix, q, 3, ids, d);
    float back[D];
    CHECK_OK(t, copse_get_item(ix, 0, back));
    CHECK(t, memcmp(back, x, sizeof back) == 0);
    copse_free(ix);
}

static void test_sparse_ids(t_ctx *t)
{
    copse_index *ix;
    const int64_t ids[] = {5, 1000000007, 3, INT64_MAX};
    const float x[] = {0, 0, 10, 10, 1, 1, -5, -5};
    CHECK_OK(t, copse_new(2, COPSE_EUCLIDEAN, &ix));
    CHECK_OK(t, copse_add_items(ix, 4, ids, 0, x));
    CHECK(t, copse_n_items(ix) == 4);
    CHECK(t, copse_max_id(ix) == INT64_MAX);
    CHECK_OK(t, copse_build(ix, 2, 1));
    CHECK(t, copse_has_item(ix, 1000000007) && !copse_has_item(ix, 4) && !copse_has_item(ix, 0));
    int64_t got[4], nn;
    const float q[] = {9, 9};
    CHECK_OK(t, copse_search_vector(ix, NULL, q, 4, -1, got, NULL, &nn));
    CHECK(t, nn == 4 && got[0] == 1000000007 && got[1] == 3 && got[2] == 5 && got[3] == INT64_MAX);
    float v[2];
    CHECK_OK(t, copse_get_item(ix, INT64_MAX, v));
    CHECK(t, v[0] == -5 && v[1] == -5);
    CHECK_RC(t, copse_get_item(ix, 4, v), COPSE_ERR_NOTFOUND);
    /* A sparse index costs memory per item, not per id. */
    CHECK(t, copse_file_size(ix) < 4096);
    copse_free(ix);
}

static void test_replace_and_item_queries(t_ctx *t)
{
    copse_index *ix;
    const float a[] = {1, 1}, b[] = {7, 7}, c[] = {2, 2};
    CHECK_OK(t, copse_new(2, COPSE_EUCLIDEAN, &ix));
    CHECK_OK(t, copse_add_item(ix, 0, a));
    CHECK_OK(t, copse_add_item(ix, 1, b));
    CHECK_OK(t, copse_add_item(ix, 0, c)); /* replaces item 0, as Annoy does */
    CHECK(t, copse_n_items(ix) == 2);
    CHECK_OK(t, copse_build(ix, 1, 1));
    float v[2];
    CHECK_OK(t, copse_get_item(ix, 0, v));
    CHECK(t, v[0] == 2 && v[1] == 2);
    int64_t got[5], nn;
    float d[5];
    CHECK_OK(t, copse_search_item(ix, NULL, 1, 5, -1, got, d, &nn));
    CHECK(t, nn == 2 && got[0] == 1 && d[0] == 0 && got[1] == 0); /* k > n gives n */
    CHECK_OK(t, copse_search_item(ix, NULL, 1, 0, -1, got, d, &nn));
    CHECK(t, nn == 0);
    CHECK_OK(t, copse_get_distance(ix, 0, 1, &d[0]));
    CHECK(t, fabs(d[0] - sqrt(50.0)) < 1e-5);
    copse_free(ix);
}

static void test_labels(t_ctx *t)
{
    copse_index *ix;
    const float x[] = {0, 0, 1, 1, 2, 2};
    CHECK_OK(t, copse_new(2, COPSE_EUCLIDEAN, &ix));
    CHECK_OK(t, copse_add_items(ix, 3, NULL, 10, x));
    CHECK_OK(t, copse_set_label(ix, 10, "river"));
    CHECK_OK(t, copse_set_label(ix, 12, "chinese"));
    CHECK_RC(t, copse_set_label(ix, 11 + 100, "x"), COPSE_ERR_NOTFOUND);
    CHECK(t, copse_has_labels(ix));
    CHECK_OK(t, copse_build(ix, 2, 1));
    const char *l;
    size_t len;
    CHECK_OK(t, copse_get_label(ix, 12, &l, &len));
    CHECK(t, l && len == 7 && strcmp(l, "chinese") == 0);
    CHECK_OK(t, copse_get_label(ix, 11, &l, &len));
    CHECK(t, l == NULL && len == 0);
    int64_t id = -1;
    CHECK_OK(t, copse_find_label(ix, "river", &id));
    CHECK(t, id == 10);
    CHECK_RC(t, copse_find_label(ix, "rive", &id), COPSE_ERR_NOTFOUND);
    CHECK_RC(t, copse_find_label(ix, "zzz", &id), COPSE_ERR_NOTFOUND);
    copse_free(ix);
}

static void test_unbuild_rebuild(t_ctx *t)
{
    float *x = t_uniform(t, 300, 8);
    copse_index *ix;
    CHECK_OK(t, copse_new(8, COPSE_EUCLIDEAN, &ix));
    CHECK_OK(t, copse_add_items(ix, 200, NULL, 0, x));
    CHECK_OK(t, copse_set_label(ix, 150, "kept"));
    CHECK_OK(t, copse_build(ix, 4, 1));
    CHECK_OK(t, copse_unbuild(ix));
    const char *l = NULL;
    CHECK_OK(t, copse_get_label(ix, 150, &l, NULL));
    CHECK(t, l && strcmp(l, "kept") == 0);
    CHECK(t, copse_state(ix) == COPSE_STATE_ADDING && copse_n_items(ix) == 200);
    CHECK_OK(t, copse_add_items(ix, 100, NULL, 200, x + 200 * 8));
    CHECK_OK(t, copse_build(ix, 4, 2));
    CHECK(t, copse_n_items(ix) == 300 && copse_n_trees(ix) == 4);
    float v[8];
    CHECK_OK(t, copse_get_item(ix, 250, v));
    CHECK(t, memcmp(v, x + 250 * 8, sizeof v) == 0);
    int64_t id = -1;
    CHECK_OK(t, copse_find_label(ix, "kept", &id));
    CHECK(t, id == 150);
    CHECK_OK(t, copse_verify(ix));
    copse_free(ix);
    free(x);
}

static void test_auto_trees(t_ctx *t)
{
    /* Without a graph the forest (nodes, leaves, their items, roots) is sized to about half
     * the vectors (checked within a factor of two); with one it is a single tree, which only
     * seeds the walk. */
    float *x = t_uniform(t, 4000, 16);
    uint64_t raw = 4000ull * 16 * 4;
    for (int graph = 0; graph <= 24; graph += 24) {
        copse_index *ix;
        CHECK_OK(t, copse_new(16, COPSE_ANGULAR, &ix));
        CHECK_OK(t, copse_set_graph_degree(ix, graph));
        CHECK_OK(t, copse_add_items(ix, 4000, NULL, 0, x));
        CHECK(t, copse_search_effort(ix, 10, -1) == 0); /* ADDING */
        CHECK_OK(t, copse_build(ix, -1, 2));
        uint64_t forest = 0, target = raw / 2;
        CHECK(t, graph ? copse_n_trees(ix) == 1 : copse_n_trees(ix) >= 1 && copse_n_trees(ix) <= 1000);
        /* The default effort: k * n_trees as Annoy, at least 3 k beside a graph's one tree;
         * a given one as it is, up to what the index can deliver. */
        CHECK(t, copse_search_effort(ix, 10, -1) == (graph ? 30 : 10 * copse_n_trees(ix)));
        CHECK(t, copse_search_effort(ix, 10, 77) == 77);
        CHECK(t, copse_search_effort(ix, 10, INT64_MAX) == (graph ? 8000 : 4000ll * copse_n_trees(ix)));
        CHECK(t, copse_search_effort(ix, 0, -1) == 0 && copse_search_effort(ix, 10, -2) == 0);
        for (int i = 0; i < copse_n_sections(ix); i++) {
            const char *name;
            uint64_t len;
            CHECK_OK(t, copse_section_info(ix, i, &name, NULL, &len, NULL));
            if (!strcmp(name, "nodes") || !strcmp(name, "leaves") || !strcmp(name, "leaf_items") ||
                !strcmp(name, "roots"))
                forest += len;
        }
        CHECK(t, graph || (forest > target / 2 && forest < target * 2));
        CHECK_OK(t, copse_verify(ix));
        copse_free(ix);
    }
    free(x);
}

static void test_duplicates(t_ctx *t)
{
    /* All items identical: splits cannot separate them; build must still end, with bounded
     * leaves, and every item must be found. */
    float *x = calloc(1000 * 4, sizeof(float));
    copse_index *ix = t_index(t, 4, COPSE_EUCLIDEAN, x, 1000, 3, 1);
    REQUIRE(t, ix);
    CHECK_OK(t, copse_verify(ix));
    int64_t got[1000], nn;
    CHECK_OK(t, copse_search_vector(ix, NULL, x, 1000, 3000, got, NULL, &nn));
    CHECK(t, nn == 1000);
    copse_free(ix);
    free(x);
}

static void test_empty(t_ctx *t)
{
    for (int on_disk = 0; on_disk < 2; on_disk++) {
        copse_index *ix, *ld;
        CHECK_OK(t, copse_new(5, COPSE_ANGULAR, &ix));
        if (on_disk)
            CHECK_OK(t, copse_on_disk_build(ix, t_path(t, "empty-disk.copse")));
        CHECK_OK(t, copse_build(ix, 10, 1));
        CHECK(t, copse_n_items(ix) == 0 && copse_n_trees(ix) == 0 && copse_max_id(ix) == -1);
        CHECK_OK(t, copse_verify(ix));
        CHECK_OK(t, copse_save(ix, t_path(t, "empty.copse")));
        CHECK_OK(t, copse_open(t_path(t, "empty.copse"), 0, &ld));
        CHECK_OK(t, copse_verify(ld));
        float q[5] = {1, 2, 3, 4, 5};
        int64_t ids[3], n = -1;
        CHECK_OK(t, copse_search_vector(ld, NULL, q, 3, -1, ids, NULL, &n));
        CHECK(t, n == 0);
        CHECK_OK(t, copse_exact_vector(ix, NULL, q, 3, ids, NULL, &n));
        CHECK(t, n == 0);
        CHECK(t, copse_n_items(ld) == 0 && copse_max_id(ld) == -1);
        copse_free(ld);
        copse_free(ix);
    }
}

static void test_angular_self(t_ctx *t)
{
    /* An item's angular distance to itself is exactly 0, in queries and get_distance. */
    for (int dim = 1; dim < 200; dim += 13) {
        float *x = t_uniform(t, 3, dim);
        copse_index *ix = t_index(t, dim, COPSE_ANGULAR, x, 3, 2, 1);
        REQUIRE(t, ix);
        int64_t ids[3], n;
        float d[3], dd;
        for (int i = 0; i < 3; i++) {
            CHECK_OK(t, copse_search_item(ix, NULL, i, 3, -1, ids, d, &n));
            int self = 0; /* first, or tied at 0 with a parallel item (dim 1) */
            for (int j = 0; j < n; j++)
                self |= ids[j] == i && d[j] == 0.0f && d[0] == 0.0f;
            CHECK(t, self);
            CHECK_OK(t, copse_get_distance(ix, i, i, &dd));
            CHECK(t, dd == 0.0f);
        }
        copse_free(ix);
        free(x);
    }
}

static void test_auto_degree(t_ctx *t)
{
    /* Unset, the degree is 32 until a set of short rows reaches 200,000 items, then 0.44 of
     * the dimension, between 32 and 44, or with quantized storage 0.64 of it, between 32 and
     * 64 (cp_auto_graph_degree); a set degree is kept. The items are added, not built:
     * copse_graph_degree tells what a build would use, with the storage set at that time. */
    enum { CHUNK = 10000 };
    float *x = calloc((size_t)CHUNK * 100, sizeof *x);
    REQUIRE(t, x);
    for (int i = 0; i < CHUNK * 100; i++)
        x[i] = (float)(i % 7) - 3;
    const struct { int dim, set; copse_storage st; int want; } c[] = {
        {100, -1, COPSE_STORAGE_F32, 44}, {80, -1, COPSE_STORAGE_F32, 35},
        {64, -1, COPSE_STORAGE_F32, 32},  {100, 16, COPSE_STORAGE_F32, 16},
        {100, -1, COPSE_STORAGE_F16, 64}, {100, -1, COPSE_STORAGE_I8, 64},
        {80, -1, COPSE_STORAGE_F16, 51},  {48, -1, COPSE_STORAGE_I8, 32},
        {100, 16, COPSE_STORAGE_I8, 16}};
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        copse_index *ix;
        CHECK_OK(t, copse_new(c[i].dim, COPSE_ANGULAR, &ix));
        if (c[i].set >= 0)
            CHECK_OK(t, copse_set_graph_degree(ix, c[i].set));
        CHECK_OK(t, copse_set_storage(ix, c[i].st));
        CHECK_OK(t, copse_add_items(ix, CHUNK, NULL, 0, x));
        CHECK(t, copse_graph_degree(ix) == (c[i].set >= 0 ? c[i].set : 32));
        for (int64_t n = CHUNK; n < 200000; n += CHUNK)
            CHECK_OK(t, copse_add_items(ix, CHUNK, NULL, n, x));
        CHECK(t, copse_graph_degree(ix) == c[i].want);
        if (c[i].set < 0 && c[i].dim == 100) {
            /* The storage counts as it stands when build runs: switching it moves the degree. */
            int other = c[i].st == COPSE_STORAGE_F32;
            CHECK_OK(t, copse_set_storage(ix, other ? COPSE_STORAGE_F16 : COPSE_STORAGE_F32));
            CHECK(t, copse_graph_degree(ix) == (other ? 64 : 44));
        }
        copse_free(ix);
    }
    free(x);
}

static void test_graph_degree(t_ctx *t)
{
    /* Degree 0 saves no graph section; a degree d lists at most d distinct others per item. */
    float *x = t_clustered(t, 500, 8, 5, 0.3);
    for (int deg = 0; deg <= 12; deg += 6) {
        copse_index *ix;
        CHECK_OK(t, copse_new(8, COPSE_EUCLIDEAN, &ix));
        CHECK_OK(t, copse_set_graph_degree(ix, deg));
        CHECK_OK(t, copse_add_items(ix, 500, NULL, 0, x));
        CHECK_OK(t, copse_build(ix, 3, 2));
        CHECK(t, copse_graph_degree(ix) == deg);
        int has = 0;
        for (int i = 0; i < copse_n_sections(ix); i++) {
            const char *name;
            uint64_t len;
            CHECK_OK(t, copse_section_info(ix, i, &name, NULL, &len, NULL));
            if (!strcmp(name, "graph")) {
                has = 1;
                CHECK(t, len == 500ull * (uint64_t)deg * 4);
            }
        }
        CHECK(t, has == (deg > 0));
        CHECK_OK(t, copse_verify(ix));
        /* Exhaustive effort finds the exact answer with or without a graph. */
        int64_t a[10], e[10], n;
        CHECK_OK(t, copse_search_vector(ix, NULL, x, 10, 100000, a, NULL, &n));
        CHECK_OK(t, copse_exact_vector(ix, NULL, x, 10, e, NULL, &n));
        CHECK(t, memcmp(a, e, sizeof a) == 0);
        copse_free(ix);
    }
    free(x);
}

static void test_versions(t_ctx *t)
{
    int ma = -1, mi = -1;
    CHECK(t, copse_version_number() == COPSE_VERSION_NUMBER);
    CHECK(t, strcmp(copse_version_string(), "0.1.0") == 0);
    copse_format_version(&ma, &mi);
    CHECK(t, ma == COPSE_FORMAT_MAJOR && mi == COPSE_FORMAT_MINOR);
    copse_metric m;
    CHECK_OK(t, copse_metric_from_name("cosine", &m));
    CHECK(t, m == COPSE_ANGULAR);
    CHECK_RC(t, copse_metric_from_name("euclid", &m), COPSE_ERR_METRIC);
    CHECK(t, strcmp(copse_metric_name(COPSE_HAMMING), "hamming") == 0);
    CHECK(t, copse_metric_name((copse_metric)9) == NULL);
}

const t_case basic_cases[] = {
    {"basic/euclidean", test_euclidean},
    {"basic/manhattan", test_manhattan},
    {"basic/angular", test_angular},
    {"basic/dot", test_dot},
    {"basic/hamming", test_hamming},
    {"basic/sparse_ids", test_sparse_ids},
    {"basic/replace_and_item_queries", test_replace_and_item_queries},
    {"basic/labels", test_labels},
    {"basic/unbuild_rebuild", test_unbuild_rebuild},
    {"basic/auto_trees", test_auto_trees},
    {"basic/auto_degree", test_auto_degree},
    {"basic/duplicates", test_duplicates},
    {"basic/empty", test_empty},
    {"basic/angular_self", test_angular_self},
    {"basic/graph_degree", test_graph_degree},
    {"basic/versions", test_versions},
    {NULL, NULL},
};
