/*
 * test_errors.c: every bad call returns its status with a message, changes nothing, and the
 * index stays usable afterwards.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "tests.h"

static void test_new(t_ctx *t)
{
    copse_index *ix = NULL;
    CHECK_RC(t, copse_new(0, COPSE_EUCLIDEAN, &ix), COPSE_ERR_DIM);
    CHECK(t, ix && strstr(copse_errmsg(ix), "dimension 0"));
    copse_free(ix);
    CHECK_RC(t, copse_new(COPSE_MAX_DIM + 1, COPSE_EUCLIDEAN, &ix), COPSE_ERR_DIM);
    copse_free(ix);
    CHECK_RC(t, copse_new(3, (copse_metric)17, &ix), COPSE_ERR_METRIC);
    CHECK(t, ix && strstr(copse_errmsg(ix), "metric"));
    copse_free(ix);
    CHECK_RC(t, copse_new(3, COPSE_EUCLIDEAN, NULL), COPSE_ERR_ARG);
    copse_free(NULL);
    copse_scratch_free(NULL);
    CHECK(t, strcmp(copse_errmsg(NULL), "") == 0);
}

static void test_strerror(t_ctx *t)
{
    const int codes[] = {COPSE_OK, COPSE_ERR_ARG, COPSE_ERR_DIM, COPSE_ERR_VALUE, COPSE_ERR_ID,
                         COPSE_ERR_STATE, COPSE_ERR_NOTFOUND, COPSE_ERR_NOMEM, COPSE_ERR_IO,
                         COPSE_ERR_NOTCOPSE, COPSE_ERR_VERSION, COPSE_ERR_CORRUPT,
                         COPSE_ERR_METRIC};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        CHECK(t, strcmp(copse_strerror(codes[i]), "unknown status code") != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(t, strcmp(copse_strerror(codes[i]), copse_strerror(codes[j])) != 0);
    }
    CHECK(t, strcmp(copse_strerror(12345), "unknown status code") == 0);
}

static void test_add(t_ctx *t)
{
    copse_index *ix;
    float v[3] = {1, 2, 3};
    CHECK_OK(t, copse_new(3, COPSE_EUCLIDEAN, &ix));
    CHECK_RC(t, copse_add_item(ix, -1, v), COPSE_ERR_ID);
    CHECK(t, strstr(copse_errmsg(ix), "-1") != NULL);
    v[1] = NAN;
    CHECK_RC(t, copse_add_item(ix, 0, v), COPSE_ERR_VALUE);
    CHECK(t, strstr(copse_errmsg(ix), "component 1 is NaN") != NULL);
    v[1] = INFINITY;
    CHECK_RC(t, copse_add_item(ix, 0, v), COPSE_ERR_VALUE);
    v[1] = -INFINITY;
    CHECK_RC(t, copse_add_item(ix, 0, v), COPSE_ERR_VALUE);
    CHECK_RC(t, copse_add_item(ix, 0, NULL), COPSE_ERR_ARG);
    CHECK(t, copse_n_items(ix) == 0);
    /* A batch with one bad row adds nothing. */
    float rows[9] = {1, 2, 3, 4, 5, 6, 7, NAN, 9};
    CHECK_RC(t, copse_add_items(ix, 3, NULL, 0, rows), COPSE_ERR_VALUE);
    CHECK(t, strstr(copse_errmsg(ix), "row 2") != NULL);
    int64_t ids[3] = {0, -5, 2};
    rows[7] = 8;
    CHECK_RC(t, copse_add_items(ix, 3, ids, 0, rows), COPSE_ERR_ID);
    CHECK_RC(t, copse_add_items(ix, 2, NULL, INT64_MAX, rows), COPSE_ERR_ID);
    CHECK_RC(t, copse_add_items(ix, -1, NULL, 0, rows), COPSE_ERR_ARG);
    CHECK(t, copse_n_items(ix) == 0);
    /* Still usable. */
    CHECK_OK(t, copse_add_items(ix, 3, NULL, 0, rows));
    CHECK(t, copse_n_items(ix) == 3);
    CHECK_RC(t, copse_set_leaf_size(ix, 1), COPSE_ERR_ARG);
    CHECK_RC(t, copse_set_graph_degree(ix, -1), COPSE_ERR_ARG);
    CHECK_RC(t, copse_set_graph_degree(ix, 256), COPSE_ERR_ARG);
    CHECK(t, copse_graph_degree(ix) == 32);
    CHECK_RC(t, copse_set_kernels(ix, "no-such-kernels"), COPSE_ERR_ARG);
    CHECK_OK(t, copse_set_kernels(ix, "scalar"));
    CHECK(t, strcmp(copse_kernels_name(ix), "scalar") == 0);
    CHECK_OK(t, copse_build(ix, 2, 1));
    /* Adds after build are changes (test_live.c); bad input is refused as before build. */
    CHECK_RC(t, copse_add_item(ix, 7, v), COPSE_ERR_VALUE);
    CHECK_RC(t, copse_set_seed(ix, 3), COPSE_ERR_STATE);
    CHECK_RC(t, copse_set_label(ix, 0, "x"), COPSE_ERR_STATE);
    CHECK_RC(t, copse_set_graph_degree(ix, 8), COPSE_ERR_STATE);
    CHECK(t, copse_n_items(ix) == 3);
    copse_free(ix);
}

static void test_build(t_ctx *t)
{
    copse_index *ix;
    float v[2] = {1, 2};
    CHECK_OK(t, copse_new(2, COPSE_ANGULAR, &ix));
    CHECK_OK(t, copse_add_item(ix, 0, v));
    CHECK_RC(t, copse_build(ix, 0, 1), COPSE_ERR_ARG);
    CHECK_RC(t, copse_build(ix, -2, 1), COPSE_ERR_ARG);
    CHECK_RC(t, copse_build(ix, COPSE_MAX_TREES + 1, 1), COPSE_ERR_ARG);
    CHECK_RC(t, copse_unbuild(ix), COPSE_ERR_STATE);
    CHECK_RC(t, copse_unload(ix), COPSE_ERR_STATE);
    CHECK_RC(t, copse_save(ix, t_path(t, "x.copse")), COPSE_ERR_STATE);
    CHECK_RC(t, copse_verify(ix), COPSE_ERR_STATE);
    CHECK_OK(t, copse_build(ix, 3, 1));
    CHECK_RC(t, copse_build(ix, 3, 1), COPSE_ERR_STATE);
    CHECK(t, copse_n_trees(ix) == 3);
    copse_free(ix);
}

static void test_query(t_ctx *t)
{
    copse_index *ix;
    copse_scratch *s;
    float *x = t_uniform(t, 100, 4), q[4] = {0, 0, 0, 0};
    int64_t ids[10], nn;
    float d[10];
    CHECK_OK(t, copse_scratch_new(&s));
    CHECK_OK(t, copse_new(4, COPSE_EUCLIDEAN, &ix));
    CHECK_OK(t, copse_add_items(ix, 100, NULL, 0, x));
    CHECK_RC(t, copse_search_vector(ix, s, q, 5, -1, ids, d, &nn), COPSE_ERR_STATE);
    CHECK(t, strstr(copse_scratch_errmsg(s), "not built") != NULL);
    CHECK_RC(t, copse_exact_item(ix, s, 0, 5, ids, d, &nn), COPSE_ERR_STATE);
    CHECK_OK(t, copse_build(ix, 2, 1));
    CHECK_RC(t, copse_search_vector(ix, s, q, -1, -1, ids, d, &nn), COPSE_ERR_ARG);
    CHECK_RC(t, copse_search_vector(ix, s, q, 5, -2, ids, d, &nn), COPSE_ERR_ARG);
    CHECK_RC(t, copse_search_vector(ix, s, NULL, 5, -1, ids, d, &nn), COPSE_ERR_ARG);
    CHECK_RC(t, copse_search_vector(ix, s, q, 5, -1, NULL, d, &nn), COPSE_ERR_ARG);
    q[2] = NAN;
    CHECK_RC(t, copse_search_vector(ix, s, q, 5, -1, ids, d, &nn), COPSE_ERR_VALUE);
    CHECK(t, strstr(copse_scratch_errmsg(s), "component 2") != NULL);
    q[2] = INFINITY;
    CHECK_RC(t, copse_exact_vector(ix, NULL, q, 5, ids, d, &nn), COPSE_ERR_VALUE);
    q[2] = 0;
    CHECK_RC(t, copse_search_item(ix, s, 100, 5, -1, ids, d, &nn), COPSE_ERR_NOTFOUND);
    CHECK_RC(t, copse_search_item(ix, s, -3, 5, -1, ids, d, &nn), COPSE_ERR_NOTFOUND);
    CHECK_RC(t, copse_get_distance(ix, 0, 100, d), COPSE_ERR_NOTFOUND);
    CHECK_RC(t, copse_search_batch(ix, s, q, 1, 5, -1, 0, 1, ids, d, NULL), COPSE_OK);
    float qs[8] = {0, 0, 0, 0, 0, NAN, 0, 0};
    CHECK_RC(t, copse_search_batch(ix, s, qs, 2, 5, -1, 0, 2, ids, d, NULL), COPSE_ERR_VALUE);
    CHECK(t, strstr(copse_scratch_errmsg(s), "query 1") != NULL);
    /* Still answers. */
    CHECK_OK(t, copse_search_vector(ix, s, q, 5, 0, ids, d, &nn));
    CHECK(t, nn == 0); /* search_k = 0 gathers nothing */
    CHECK_OK(t, copse_search_vector(ix, s, q, 5, -1, ids, d, &nn));
    CHECK(t, nn == 5);
    copse_free(ix);
    copse_scratch_free(s);
    free(x);
}

static copse_index *saved_index(t_ctx *t, const char *path)
{
    float *x = t_uniform(t, 200, 6);
    copse_index *ix = t_index(t, 6, COPSE_EUCLIDEAN, x, 200, 3, 1);
    free(x);
    if (ix && copse_save(ix, path) != COPSE_OK)
        t->failed = 1;
    return ix;
}

static void test_files(t_ctx *t)
{
    char good[512];
    snprintf(good, sizeof good, "%s", t_path(t, "good.copse"));
    copse_index *src = saved_index(t, good);
    REQUIRE(t, src);
    copse_index *ix;
    CHECK_OK(t, copse_new(6, COPSE_EUCLIDEAN, &ix));
    CHECK_RC(t, copse_load(ix, t_path(t, "missing.copse"), 0), COPSE_ERR_IO);
    CHECK(t, strstr(copse_errmsg(ix), "missing.copse") != NULL);
    CHECK_RC(t, copse_load(ix, "/", 0), COPSE_ERR_IO);
    const char *text = "this is not an index, only some words\n";
    t_write_file(t_path(t, "text.copse"), text, strlen(text));
    CHECK_RC(t, copse_load(ix, t_path(t, "text.copse"), 0), COPSE_ERR_NOTCOPSE);
    t_write_file(t_path(t, "empty.copse"), "", 0);
    CHECK_RC(t, copse_load(ix, t_path(t, "empty.copse"), 0), COPSE_ERR_NOTCOPSE);
    /* Unwritable destinations: no folder, a folder in the way. The source stays usable. */
    CHECK_RC(t, copse_save(src, "/nonexistent-copse-dir/x.copse"), COPSE_ERR_IO);
    CHECK(t, strstr(copse_errmsg(src), "nonexistent-copse-dir") != NULL);
    mkdir(t_path(t, "adir"), 0777);
    CHECK_RC(t, copse_save(src, t_path(t, "adir")), COPSE_ERR_IO);
    struct stat st;
    CHECK(t, stat(t_path(t, "adir"), &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_RC(t, copse_save(src, ""), COPSE_ERR_ARG);
    /* A device in the way is refused, never replaced by the index. */
    CHECK_RC(t, copse_save(src, "/dev/null"), COPSE_ERR_IO);
    CHECK(t, stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    /* Wrong dimension or metric for this handle. */
    copse_index *other;
    CHECK_OK(t, copse_new(7, COPSE_EUCLIDEAN, &other));
    CHECK_RC(t, copse_load(other, good, 0), COPSE_ERR_DIM);
    copse_free(other);
    CHECK_OK(t, copse_new(6, COPSE_ANGULAR, &other));
    CHECK_RC(t, copse_load(other, good, 0), COPSE_ERR_METRIC);
    CHECK(t, copse_state(other) == COPSE_STATE_ADDING);
    copse_free(other);
    /* Loading into a non-empty handle is refused; after all this, the good file loads. */
    CHECK_OK(t, copse_load(ix, good, 1));
    CHECK_RC(t, copse_load(ix, good, 0), COPSE_ERR_STATE);
    CHECK_OK(t, copse_add_item(ix, 1000, (float[6]){0})); /* a change in memory, not in the file */
    CHECK_RC(t, copse_unbuild(ix), COPSE_ERR_STATE);
    CHECK_OK(t, copse_unload(ix));
    CHECK_OK(t, copse_load(ix, good, 0));
    CHECK_OK(t, copse_verify(ix));
    copse_free(ix);
    copse_free(src);
}

static void test_on_disk_errors(t_ctx *t)
{
    copse_index *ix;
    float v[2] = {1, 2};
    CHECK_OK(t, copse_new(2, COPSE_EUCLIDEAN, &ix));
    CHECK_RC(t, copse_on_disk_build(ix, "/nonexistent-copse-dir/x.copse"), COPSE_ERR_IO);
    CHECK_OK(t, copse_add_item(ix, 0, v));
    CHECK_RC(t, copse_on_disk_build(ix, t_path(t, "late.copse")), COPSE_ERR_STATE);
    copse_free(ix);
}

/* The rename that finishes an on-disk build fails (a non-empty folder is in the way). The
 * handle must stay usable with nothing lost: until 2026-12 it kept ADDING with no rows, and
 * the next add or build dereferenced NULL. Now the builder keeps its file: adds go on, and
 * the build succeeds once the way is clear. */
static void test_on_disk_commit_fails(t_ctx *t)
{
    enum { N = 200, D = 4 };
    copse_index *ix;
    const char *path = t_path(t, "blocked.copse");
    char inner[1100];
    snprintf(inner, sizeof inner, "%s/x", path);
    CHECK_OK(t, copse_new(D, COPSE_EUCLIDEAN, &ix));
    CHECK_OK(t, copse_on_disk_build(ix, path));
    float v[D];
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < D; d++)
            v[d] = (float)t_unif(t);
        CHECK_OK(t, copse_add_item(ix, i, v));
    }
    CHECK(t, mkdir(path, 0777) == 0 && mkdir(inner, 0777) == 0);
    CHECK_RC(t, copse_build(ix, 4, 1), COPSE_ERR_IO);
    CHECK(t, strstr(copse_errmsg(ix), "rename") != NULL);
    CHECK(t, copse_state(ix) == COPSE_STATE_ADDING);
    CHECK(t, copse_n_items(ix) == N);
    float got[D];
    CHECK_OK(t, copse_get_item(ix, N - 1, got));
    CHECK(t, memcmp(got, v, sizeof v) == 0);
    CHECK_OK(t, copse_add_item(ix, N, v));
    CHECK_RC(t, copse_build(ix, 4, 1), COPSE_ERR_IO);
    CHECK(t, rmdir(inner) == 0 && rmdir(path) == 0);
    CHECK_OK(t, copse_build(ix, 4, 1));
    CHECK(t, copse_n_items(ix) == N + 1);
    CHECK_OK(t, copse_verify(ix));
    int64_t ids[3];
    int64_t n = 0;
    CHECK_OK(t, copse_search_vector(ix, NULL, v, 3, -1, ids, NULL, &n));
    CHECK(t, n == 3 && (ids[0] == N || ids[0] == N - 1));
    copse_free(ix);
    copse_index *ld;
    CHECK_OK(t, copse_open(path, 0, &ld));
    CHECK(t, copse_n_items(ld) == N + 1);
    copse_free(ld);
}

const t_case error_cases[] = {
    {"errors/new", test_new},
    {"errors/strerror", test_strerror},
    {"errors/add", test_add},
    {"errors/build", test_build},
    {"errors/query", test_query},
    {"errors/files", test_files},
    {"errors/on_disk", test_on_disk_errors},
    {"errors/on_disk_commit_fails", test_on_disk_commit_fails},
    {NULL, NULL},
};
