/*
 * test_errors.c: every bad call returns its status with a message, changes nothing, and the
 * index stays usable afterwards. The bad-input table (the errors/table/ cases) goes through
 * every state, every component and every edge value; its full-disk and read-only cases mount
 * a small tmpfs in a private mount namespace (root only; skipped, and said, elsewhere).
 */
#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

/* ---- helpers; the bad-input table (the errors/table/ cases) is at the end: every state,
 * every component, every edge value. Each bad call must return its documented status with a
 * message, change nothing, and leave the index answering exactly as before. */

/* A call's status, and when it fails, a message (msg, read after the call). */
#define CHECK_SAYS(t, msg, expr, want)                                                        \
    do {                                                                                      \
        int rc_ = (expr);                                                                     \
        if (rc_ != (want)) {                                                                  \
            fprintf(stderr, "  %s:%d: %s returned %d (%s), wanted %d (%s) [%s]\n", __FILE__,  \
                    __LINE__, #expr, rc_, copse_strerror(rc_), (int)(want),                   \
                    copse_strerror(want), (msg));                                             \
            (t)->failed = 1;                                                                  \
        } else if ((want) != COPSE_OK && (msg)[0] == '\0') {                                  \
            fprintf(stderr, "  %s:%d: %s: no message\n", __FILE__, __LINE__, #expr);          \
            (t)->failed = 1;                                                                  \
        }                                                                                     \
    } while (0)

/* A bad call on ix (the message on the handle), a query (the message on its scratch). */
#define CHECK_BAD(t, ix, expr, want) CHECK_SAYS(t, copse_errmsg(ix), expr, want)
#define CHECK_BADQ(t, s, expr, want) CHECK_SAYS(t, copse_scratch_errmsg(s), expr, want)
#define CHECK_QOK(t, s, expr) CHECK_BADQ(t, s, expr, COPSE_OK)

enum { TDIM = 4, TN = 300, TK = 10 };

/* The table's rows: five groups along the diagonal, the same in every case and every run. */
static float TX[TN * TDIM];

static void table_rows(void)
{
    uint64_t r = 42;
    for (int i = 0; i < TN * TDIM; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        TX[i] = (float)(r >> 40) / 16777216.0f * 2 - 1 + (float)(i / TDIM % 5);
    }
}

/* Every case of the table starts here: the rows, and a scratch for its queries. */
static copse_scratch *table_scratch(t_ctx *t)
{
    table_rows();
    copse_scratch *s = NULL;
    if (copse_scratch_new(&s) != COPSE_OK)
        t->failed = 1;
    return s;
}

/* A path in this case's folder; four at a time stay valid (t_path keeps one). */
static const char *bpath(t_ctx *t, const char *name)
{
    static char p[4][1024];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s", t_path(t, name));
    return p[i];
}

/* The reference answers of an index: ids and distances of a few queries. */
typedef struct answers {
    int64_t ids[8][TK], n[8];
    float d[8][TK];
} answers;

static void answer(t_ctx *t, copse_scratch *s, const copse_index *ix, answers *a)
{
    memset(a, 0, sizeof *a);
    for (int q = 0; q < 8; q++)
        CHECK(t, copse_search_vector(ix, s, TX + q * 31 % TN * TDIM, TK, -1, a->ids[q], a->d[q],
                                     &a->n[q]) == COPSE_OK);
}

/* Still answers exactly as before. */
static void same(t_ctx *t, copse_scratch *s, const copse_index *ix, const answers *ref)
{
    answers a;
    answer(t, s, ix, &a);
    CHECK(t, memcmp(&a, ref, sizeof a) == 0);
}

/* Temporary files (NAME.tmp-XXXXXX) in a folder. */
static int temp_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp-") != NULL;
    if (d)
        closedir(d);
    return n;
}

static copse_index *built(t_ctx *t, copse_metric m, int n)
{
    copse_index *ix;
    table_rows();
    CHECK(t, copse_new(TDIM, m, &ix) == COPSE_OK);
    CHECK(t, copse_add_items(ix, n, NULL, 0, TX) == COPSE_OK);
    CHECK(t, copse_build(ix, 4, 2) == COPSE_OK);
    return ix;
}

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
    const int dims[] = {-1, -2147483647 - 1, 2147483647};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
        CHECK_RC(t, copse_new(dims[i], COPSE_EUCLIDEAN, &ix), COPSE_ERR_DIM);
        CHECK(t, ix && copse_errmsg(ix)[0] != '\0');
        copse_free(ix);
    }
    const int metrics[] = {-1, 5, 1000};
    for (size_t i = 0; i < sizeof metrics / sizeof *metrics; i++) {
        CHECK_RC(t, copse_new(3, (copse_metric)metrics[i], &ix), COPSE_ERR_METRIC);
        CHECK(t, ix && copse_errmsg(ix)[0] != '\0');
        copse_free(ix);
    }
    copse_metric m;
    CHECK_RC(t, copse_metric_from_name("cosinus", &m), COPSE_ERR_METRIC);
    CHECK_RC(t, copse_metric_from_name("", &m), COPSE_ERR_METRIC);
    CHECK(t, copse_metric_name((copse_metric)9) == NULL);
    CHECK_OK(t, copse_new(COPSE_MAX_DIM, COPSE_HAMMING, &ix));
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

/* On-disk builds aimed at a missing folder, NULL or a folder in the way, or started late. */
static void test_on_disk_errors(t_ctx *t)
{
    copse_index *ix;
    float v[2] = {1, 2};
    CHECK_OK(t, copse_new(2, COPSE_EUCLIDEAN, &ix));
    CHECK_BAD(t, ix, copse_on_disk_build(ix, "/nonexistent-copse-dir/x.copse"), COPSE_ERR_IO);
    CHECK_BAD(t, ix, copse_on_disk_build(ix, NULL), COPSE_ERR_ARG);
    CHECK_OK(t, copse_add_item(ix, 0, v));
    CHECK_BAD(t, ix, copse_on_disk_build(ix, t_path(t, "late.copse")), COPSE_ERR_STATE);
    copse_free(ix);
    /* Aimed at a directory: refused at the start or at the end, never replacing it. */
    const char *dir = t_dir(t);
    char adir[1100];
    snprintf(adir, sizeof adir, "%s/adir", dir);
    mkdir(adir, 0777);
    table_rows();
    CHECK_OK(t, copse_new(TDIM, COPSE_EUCLIDEAN, &ix));
    int rc = copse_on_disk_build(ix, adir);
    if (rc == COPSE_OK) {
        CHECK_OK(t, copse_add_items(ix, 50, NULL, 0, TX));
        CHECK_BAD(t, ix, copse_build(ix, 2, 1), COPSE_ERR_IO);
    } else {
        CHECK_RC(t, rc, COPSE_ERR_IO);
    }
    copse_free(ix);
    struct stat st;
    CHECK(t, stat(adir, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(t, temp_files(dir) == 0);
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

/* Adding: NaN and infinities at every component (adds and replacements), bad ids, batches,
 * labels and settings, the calls that need a built index; then it still builds and answers. */
static void test_adding_table(t_ctx *t)
{
    copse_scratch *s = table_scratch(t);
    copse_index *ix;
    CHECK(t, copse_new(TDIM, COPSE_EUCLIDEAN, &ix) == COPSE_OK);
    CHECK(t, copse_add_items(ix, 10, NULL, 0, TX) == COPSE_OK);
    float v[TDIM];
    const float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    for (size_t b = 0; b < 4; b++)
        for (int at = 0; at < TDIM; at++) {
            memcpy(v, TX, sizeof v);
            v[at] = bad[b];
            CHECK_BAD(t, ix, copse_add_item(ix, 100, v), COPSE_ERR_VALUE);
            CHECK_BAD(t, ix, copse_add_item(ix, 3, v), COPSE_ERR_VALUE); /* replacing must not either */
        }
    float got[TDIM];
    CHECK(t, copse_get_item(ix, 3, got) == COPSE_OK && memcmp(got, TX + 3 * TDIM, sizeof got) == 0);
    CHECK_BAD(t, ix, copse_add_item(ix, -1, TX), COPSE_ERR_ID);
    CHECK_BAD(t, ix, copse_add_item(ix, INT64_MIN, TX), COPSE_ERR_ID);
    CHECK_BAD(t, ix, copse_add_item(ix, 5, NULL), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_add_items(ix, -1, NULL, 0, TX), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_add_items(ix, 3, NULL, -1, TX), COPSE_ERR_ID);
    CHECK_BAD(t, ix, copse_add_items(ix, 3, NULL, INT64_MAX - 1, TX), COPSE_ERR_ID); /* ids overflow */
    CHECK_BAD(t, ix, copse_add_items(ix, 2, NULL, 0, NULL), COPSE_ERR_ARG);
    int64_t ids[3] = {50, 51, INT64_MIN};
    CHECK_BAD(t, ix, copse_add_items(ix, 3, ids, 0, TX), COPSE_ERR_ID);
    float rows[3 * TDIM];
    memcpy(rows, TX, sizeof rows);
    rows[2 * TDIM + 1] = INFINITY;
    CHECK_BAD(t, ix, copse_add_items(ix, 3, NULL, 20, rows), COPSE_ERR_VALUE);
    CHECK(t, copse_n_items(ix) == 10 && !copse_has_item(ix, 20) && !copse_has_item(ix, 50));
    CHECK(t, copse_add_items(ix, 0, NULL, 0, TX) == COPSE_OK && copse_n_items(ix) == 10);
    /* The largest id is an id like any other. */
    CHECK(t, copse_add_item(ix, INT64_MAX, TX) == COPSE_OK && copse_max_id(ix) == INT64_MAX);
    CHECK_BAD(t, ix, copse_set_label(ix, 999, "x"), COPSE_ERR_NOTFOUND);
    CHECK_BAD(t, ix, copse_set_label(ix, -1, "x"), COPSE_ERR_NOTFOUND);
    char *longlabel = malloc(70000);
    memset(longlabel, 'a', 69999);
    longlabel[69999] = 0;
    CHECK_BAD(t, ix, copse_set_label(ix, 1, longlabel), COPSE_ERR_ARG);
    free(longlabel);
    CHECK(t, copse_set_label(ix, 1, "") == COPSE_OK || copse_set_label(ix, 1, "") == COPSE_ERR_ARG);
    /* NULL: refused or taken as "no label" (the header does not say); never a crash. */
    int lrc = copse_set_label(ix, 1, NULL);
    CHECK(t, lrc == COPSE_OK || lrc == COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_set_leaf_size(ix, 1), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_set_leaf_size(ix, -1), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_set_leaf_size(ix, 65536), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_set_kernels(ix, NULL), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_set_kernels(ix, "avx9000"), COPSE_ERR_ARG);
    /* Calls that need a built index. */
    int64_t out[TK], n;
    CHECK_BADQ(t, s, copse_search_vector(ix, s, TX, TK, -1, out, NULL, &n), COPSE_ERR_STATE);
    CHECK_BADQ(t, s, copse_search_batch(ix, s, TX, 1, TK, -1, 0, 1, out, NULL, NULL), COPSE_ERR_STATE);
    CHECK_BAD(t, ix, copse_save(ix, bpath(t, "adding.copse")), COPSE_ERR_STATE);
    CHECK_BAD(t, ix, copse_verify(ix), COPSE_ERR_STATE);
    CHECK_BAD(t, ix, copse_unload(ix), COPSE_ERR_STATE);
    CHECK_BAD(t, ix, copse_unbuild(ix), COPSE_ERR_STATE);
    CHECK_BAD(t, ix, copse_build(ix, 0, 1), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_build(ix, -2, 1), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_build(ix, COPSE_MAX_TREES + 1, 1), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_build(ix, -2147483647 - 1, 1), COPSE_ERR_ARG);
    CHECK(t, access(bpath(t, "adding.copse"), F_OK) != 0);
    /* Still usable: builds, finds the huge id, round-trips it. */
    CHECK(t, copse_n_items(ix) == 11);
    CHECK(t, copse_build(ix, 3, 64) == COPSE_OK); /* more threads than work */
    CHECK(t, copse_search_item(ix, s, INT64_MAX, 1, -1, out, NULL, &n) == COPSE_OK && n == 1);
    CHECK(t, copse_save(ix, bpath(t, "maxid.copse")) == COPSE_OK);
    copse_index *ld;
    CHECK(t, copse_open(bpath(t, "maxid.copse"), 0, &ld) == COPSE_OK && copse_max_id(ld) == INT64_MAX &&
           copse_has_item(ld, INT64_MAX) && copse_verify(ld) == COPSE_OK);
    copse_free(ld);
    copse_free(ix);
    copse_scratch_free(s);
}

/* Queries: k and search_k at every edge, NaN and infinities at every component, missing
 * ids, NULL pointers, batches; bad changes in the BUILT state; the answers stay the same. */
static void queries_table(t_ctx *t, copse_metric m)
{
    copse_scratch *s = table_scratch(t);
    copse_index *ix = built(t, m, TN);
    answers ref;
    answer(t, s, ix, &ref);
    int64_t ids[TN + 5], n, counts[4];
    float d[TN + 5], q[TDIM];
    /* k */
    CHECK_BADQ(t, s, copse_search_vector(ix, s, TX, -1, -1, ids, d, &n), COPSE_ERR_ARG);
    CHECK_BADQ(t, s, copse_search_vector(ix, s, TX, INT64_MIN, -1, ids, d, &n), COPSE_ERR_ARG);
    CHECK_QOK(t, s, copse_search_vector(ix, s, TX, 0, -1, ids, d, &n));
    CHECK(t, n == 0);
    /* k larger than the index: every item at most once; the buffer needs only n_items. */
    CHECK_QOK(t, s, copse_search_vector(ix, s, TX, TN + 5, 1000000, ids, d, &n));
    CHECK(t, n == TN);
    CHECK_QOK(t, s, copse_exact_vector(ix, s, TX, INT64_MAX, ids, d, &n));
    CHECK(t, n == TN);
    /* Huge k and search_k mean "everything" (found here: until 24edbc8 a query hung in
     * src/search.c reserve() when search_k + leaf size passed 2^63, returned
     * COPSE_ERR_NOMEM for search_k >= 2^62 or k >= 2^61, and nothing for k = INT64_MAX with
     * search_k = -1). */
    CHECK_QOK(t, s, copse_search_vector(ix, s, TX, INT64_MAX, INT64_MAX, ids, d, &n));
    CHECK(t, n == TN);
    CHECK_QOK(t, s, copse_search_vector(ix, s, TX, INT64_MAX, -1, ids, d, &n));
    CHECK(t, n == TN);
    CHECK_QOK(t, s, copse_search_vector(ix, s, TX, TK, INT64_MAX / 2, ids, d, &n));
    CHECK(t, n == TK);
    CHECK_QOK(t, s, copse_search_vector(ix, s, TX, INT64_MAX / 4, -1, ids, d, &n));
    CHECK(t, n == TN);
    CHECK_QOK(t, s, copse_search_item(ix, s, 3, TK, INT64_MAX, ids, d, &n));
    CHECK(t, n == TK);
    /* search_k */
    CHECK_BADQ(t, s, copse_search_vector(ix, s, TX, TK, -2, ids, d, &n), COPSE_ERR_ARG);
    CHECK_BADQ(t, s, copse_search_vector(ix, s, TX, TK, INT64_MIN, ids, d, &n), COPSE_ERR_ARG);
    CHECK_QOK(t, s, copse_search_vector(ix, s, TX, TK, 0, ids, d, &n));
    CHECK(t, n == 0);
    CHECK_QOK(t, s, copse_search_vector(ix, s, TX, TK, 1, ids, d, &n));
    CHECK(t, n >= 1 && n <= TK);
    /* NaN and infinities anywhere in the query. */
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++)
        for (int at = 0; at < TDIM; at++) {
            memcpy(q, TX, sizeof q);
            q[at] = bad[b];
            CHECK_BADQ(t, s, copse_search_vector(ix, s, q, TK, -1, ids, d, &n), COPSE_ERR_VALUE);
            CHECK_BADQ(t, s, copse_exact_vector(ix, s, q, TK, ids, d, &n), COPSE_ERR_VALUE);
            CHECK_BADQ(t, s, copse_search_vector(ix, NULL, q, TK, -1, ids, d, &n), COPSE_ERR_VALUE);
        }
    /* Finite but huge components: no NaN may come back as a distance. */
    for (int j = 0; j < TDIM; j++)
        q[j] = j % 2 ? 3.0e38f : -3.0e38f;
    int rc = copse_search_vector(ix, s, q, TK, -1, ids, d, &n);
    CHECK(t, rc == COPSE_OK || rc == COPSE_ERR_VALUE);
    /* NULL pointers */
    CHECK_BADQ(t, s, copse_search_vector(ix, s, NULL, TK, -1, ids, d, &n), COPSE_ERR_ARG);
    CHECK_BADQ(t, s, copse_search_vector(ix, s, TX, TK, -1, NULL, d, &n), COPSE_ERR_ARG);
    /* (n_out NULL is accepted: the library counts into a dummy) */
    CHECK_BADQ(t, s, copse_search_vector(NULL, s, TX, TK, -1, ids, d, &n), COPSE_ERR_ARG);
    /* ids */
    const int64_t missing[] = {-1, INT64_MIN, TN, INT64_MAX};
    for (int i = 0; i < 4; i++) {
        CHECK_BADQ(t, s, copse_search_item(ix, s, missing[i], TK, -1, ids, d, &n), COPSE_ERR_NOTFOUND);
        CHECK_BADQ(t, s, copse_exact_item(ix, s, missing[i], TK, ids, d, &n), COPSE_ERR_NOTFOUND);
        CHECK(t, copse_get_item(ix, missing[i], q) == COPSE_ERR_NOTFOUND);
        CHECK(t, copse_get_distance(ix, 0, missing[i], d) == COPSE_ERR_NOTFOUND);
        CHECK(t, copse_has_item(ix, missing[i]) == 0);
    }
    int64_t id;
    CHECK(t, copse_item_id_at(ix, -1, &id) == COPSE_ERR_ARG);
    CHECK(t, copse_item_id_at(ix, TN, &id) == COPSE_ERR_ARG);
    CHECK(t, copse_item_id_at(ix, INT64_MAX, &id) == COPSE_ERR_ARG);
    memcpy(q, TX, sizeof q);
    q[1] = NAN;
    float dist;
    /* (until 24edbc8 a NaN gave rc 0 and a finite distance: 0 for euclidean) */
    CHECK(t, copse_distance(ix, TX, q, &dist) == COPSE_ERR_VALUE);
    CHECK(t, copse_distance(ix, q, TX, &dist) == COPSE_ERR_VALUE);
    /* Batches: empty, negative, a bad row anywhere, thread counts. */
    float qs[4 * TDIM];
    memcpy(qs, TX, sizeof qs);
    CHECK_QOK(t, s, copse_search_batch(ix, s, qs, 0, TK, -1, 0, 2, ids, d, counts));
    CHECK_BADQ(t, s, copse_search_batch(ix, s, qs, -1, TK, -1, 0, 2, ids, d, counts), COPSE_ERR_ARG);
    CHECK_BADQ(t, s, copse_search_batch(ix, s, qs, 4, -1, -1, 0, 2, ids, d, counts), COPSE_ERR_ARG);
    CHECK_BADQ(t, s, copse_search_batch(ix, s, qs, 4, TK, -3, 0, 2, ids, d, counts), COPSE_ERR_ARG);
    CHECK_BADQ(t, s, copse_search_batch(ix, s, NULL, 4, TK, -1, 0, 2, ids, d, counts), COPSE_ERR_ARG);
    CHECK_BADQ(t, s, copse_search_batch(ix, s, qs, 4, TK, -1, 0, 2, NULL, d, counts), COPSE_ERR_ARG);
    qs[3 * TDIM + 2] = -INFINITY;
    CHECK_BADQ(t, s, copse_search_batch(ix, s, qs, 4, TK, -1, 0, 2, ids, d, counts), COPSE_ERR_VALUE);
    CHECK(t, strstr(copse_scratch_errmsg(s), "3") != NULL);
    CHECK_BADQ(t, s, copse_search_batch(ix, s, qs, 4, TK, -1, 1, 2, ids, d, counts), COPSE_ERR_VALUE);
    qs[3 * TDIM + 2] = 0;
    CHECK_QOK(t, s, copse_search_batch(ix, s, qs, 4, TK, -1, 0, 1000, ids, d, counts));
    CHECK_QOK(t, s, copse_search_batch(ix, s, qs, 4, TK, -1, 0, -7, ids, d, counts));
    CHECK_QOK(t, s, copse_search_batch(ix, s, qs, 4, 0, -1, 0, 2, ids, d, counts));
    CHECK(t, counts[0] == 0 && counts[3] == 0);
    /* Bad changes refused in the BUILT state (good ones are tests/test_live.c's). */
    float nan_row[TDIM];
    memcpy(nan_row, TX, sizeof nan_row);
    nan_row[1] = NAN;
    CHECK_BAD(t, ix, copse_add_item(ix, TN + 1, nan_row), COPSE_ERR_VALUE);
    CHECK_BAD(t, ix, copse_add_item(ix, -4, TX), COPSE_ERR_ID);
    CHECK_BAD(t, ix, copse_delete_item(ix, TN + 7), COPSE_ERR_NOTFOUND);
    CHECK_BAD(t, ix, copse_set_seed(ix, 1), COPSE_ERR_STATE);
    CHECK_BAD(t, ix, copse_set_leaf_size(ix, 8), COPSE_ERR_STATE);
    CHECK_BAD(t, ix, copse_build(ix, 2, 1), COPSE_ERR_STATE);
    CHECK_BAD(t, ix, copse_load(ix, bpath(t, "none.copse"), 0), COPSE_ERR_STATE);
    CHECK_BAD(t, ix, copse_on_disk_build(ix, bpath(t, "late.copse")), COPSE_ERR_STATE);
    same(t, s, ix, &ref);
    copse_free(ix);
    copse_scratch_free(s);
}

static void test_queries_angular(t_ctx *t) { queries_table(t, COPSE_ANGULAR); }
static void test_queries_euclidean(t_ctx *t) { queries_table(t, COPSE_EUCLIDEAN); }
static void test_queries_manhattan(t_ctx *t) { queries_table(t, COPSE_MANHATTAN); }
static void test_queries_dot(t_ctx *t) { queries_table(t, COPSE_DOT); }

/* The empty index builds, verifies, saves, loads and answers nothing. */
static void test_empty(t_ctx *t)
{
    copse_scratch *s = table_scratch(t);
    copse_index *ix;
    CHECK(t, copse_new(TDIM, COPSE_ANGULAR, &ix) == COPSE_OK);
    CHECK(t, copse_build(ix, 5, 1) == COPSE_OK);
    int64_t ids[TK], n = -1, counts[2];
    float d[TK];
    CHECK_QOK(t, s, copse_search_vector(ix, s, TX, TK, -1, ids, d, &n));
    CHECK(t, n == 0);
    CHECK_QOK(t, s, copse_exact_vector(ix, s, TX, TK, ids, d, &n));
    CHECK(t, n == 0);
    CHECK_BADQ(t, s, copse_search_item(ix, s, 0, TK, -1, ids, d, &n), COPSE_ERR_NOTFOUND);
    CHECK_QOK(t, s, copse_search_batch(ix, s, TX, 2, 3, -1, 0, 2, ids, d, counts));
    CHECK(t, counts[0] == 0 && counts[1] == 0 && ids[0] == -1 && isnan(d[0]) && ids[5] == -1);
    CHECK(t, copse_max_id(ix) == -1 && copse_n_items(ix) == 0 && copse_n_sections(ix) == 0);
    CHECK(t, copse_verify(ix) == COPSE_OK);
    CHECK(t, copse_save(ix, bpath(t, "empty.copse")) == COPSE_OK);
    copse_index *ld;
    CHECK(t, copse_open(bpath(t, "empty.copse"), 1, &ld) == COPSE_OK && copse_verify(ld) == COPSE_OK);
    CHECK_QOK(t, s, copse_search_vector(ld, s, TX, TK, -1, ids, d, &n));
    CHECK(t, n == 0);
    int64_t id;
    CHECK(t, copse_item_id_at(ld, 0, &id) == COPSE_ERR_ARG);
    CHECK(t, copse_find_label(ld, "x", &id) == COPSE_ERR_NOTFOUND);
    copse_free(ld);
    copse_free(ix);
    copse_scratch_free(s);
}

/* Hamming: NaN and infinities refused, values around the 0.5 threshold. */
static void test_hamming(t_ctx *t)
{
    copse_scratch *s = table_scratch(t);
    copse_index *ix;
    CHECK(t, copse_new(70, COPSE_HAMMING, &ix) == COPSE_OK);
    float v[70] = {0};
    v[3] = NAN;
    CHECK_BAD(t, ix, copse_add_item(ix, 0, v), COPSE_ERR_VALUE);
    v[3] = -INFINITY;
    CHECK_BAD(t, ix, copse_add_item(ix, 0, v), COPSE_ERR_VALUE);
    v[3] = 0.5f;  /* not set */
    v[4] = 0.51f; /* set */
    v[69] = 1e30f;
    v[68] = -1e30f;
    CHECK(t, copse_add_item(ix, 0, v) == COPSE_OK);
    float got[70];
    CHECK(t, copse_get_item(ix, 0, got) == COPSE_OK && got[3] == 0 && got[4] == 1 && got[69] == 1 &&
           got[68] == 0);
    for (int i = 1; i < 50; i++) {
        v[i % 70] = 1;
        CHECK(t, copse_add_item(ix, i, v) == COPSE_OK);
    }
    CHECK(t, copse_build(ix, 3, 1) == COPSE_OK);
    int64_t ids[TK], n;
    v[10] = NAN;
    CHECK_BADQ(t, s, copse_search_vector(ix, s, v, TK, -1, ids, NULL, &n), COPSE_ERR_VALUE);
    copse_free(ix);
    copse_scratch_free(s);
}

/* Loads of missing files, folders, devices, empty paths and buffers, wrong dimension or
 * metric; saves to an empty path, a folder, a missing folder, /proc, a path under a file,
 * and a loaded index over its own file. The handles stay usable, nothing is left behind. */
static void test_loads_and_saves(t_ctx *t)
{
    copse_scratch *s = table_scratch(t);
    const char *dir = t_dir(t);
    copse_index *src = built(t, COPSE_EUCLIDEAN, TN);
    answers ref;
    answer(t, s, src, &ref);
    CHECK(t, copse_save(src, bpath(t, "good.copse")) == COPSE_OK);
    copse_index *ix;
    CHECK(t, copse_new(TDIM, COPSE_EUCLIDEAN, &ix) == COPSE_OK);
    CHECK_BAD(t, ix, copse_load(ix, bpath(t, "missing.copse"), 0), COPSE_ERR_IO);
    CHECK_BAD(t, ix, copse_load(ix, dir, 0), COPSE_ERR_IO);
    CHECK_BAD(t, ix, copse_load(ix, "/dev/null", 0), COPSE_ERR_IO);
    CHECK_BAD(t, ix, copse_load(ix, "/dev/zero", 0), COPSE_ERR_IO);
    CHECK_BAD(t, ix, copse_load(ix, "", 0), COPSE_ERR_IO);
    CHECK_BAD(t, ix, copse_load(ix, NULL, 0), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_load_buffer(ix, NULL, 5), COPSE_ERR_ARG);
    CHECK_BAD(t, ix, copse_load_buffer(ix, "", 0), COPSE_ERR_NOTCOPSE);
    CHECK_BAD(t, ix, copse_load_annoy(ix, bpath(t, "good.copse")),
              copse_load_annoy(ix, bpath(t, "good.copse")));
    CHECK(t, copse_state(ix) == COPSE_STATE_ADDING || copse_unload(ix) == COPSE_OK);
    copse_index *other = NULL;
    CHECK(t, copse_open(dir, 0, &other) == COPSE_ERR_IO);
    copse_free(other);
    CHECK(t, copse_open(bpath(t, "good.copse"), 0, NULL) == COPSE_ERR_ARG);
    CHECK(t, copse_new(TDIM + 1, COPSE_EUCLIDEAN, &other) == COPSE_OK);
    CHECK_BAD(t, other, copse_load(other, bpath(t, "good.copse"), 0), COPSE_ERR_DIM);
    copse_free(other);
    CHECK(t, copse_new(TDIM, COPSE_MANHATTAN, &other) == COPSE_OK);
    CHECK_BAD(t, other, copse_load(other, bpath(t, "good.copse"), 0), COPSE_ERR_METRIC);
    copse_free(other);
    /* The handle that failed all those loads still loads the good file. */
    CHECK(t, copse_load(ix, bpath(t, "good.copse"), 1) == COPSE_OK);
    same(t, s, ix, &ref);
    CHECK_BAD(t, ix, copse_load(ix, bpath(t, "good.copse"), 0), COPSE_ERR_STATE);
    same(t, s, ix, &ref);

    CHECK_BAD(t, src, copse_save(src, ""), COPSE_ERR_ARG);
    CHECK_BAD(t, src, copse_save(src, NULL), COPSE_ERR_ARG);
    mkdir(bpath(t, "adir"), 0777);
    CHECK_BAD(t, src, copse_save(src, bpath(t, "adir")), COPSE_ERR_IO);
    struct stat st;
    CHECK(t, stat(bpath(t, "adir"), &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_BAD(t, src, copse_save(src, bpath(t, "no-such-folder/x.copse")), COPSE_ERR_IO);
    CHECK_BAD(t, src, copse_save(src, "/proc/copse-cannot-write-here.copse"), COPSE_ERR_IO);
    CHECK_BAD(t, src, copse_save(src, bpath(t, "good.copse/inside")), COPSE_ERR_IO);
    CHECK(t, temp_files(dir) == 0);
    /* A loaded index saved over its own file: the mapping must stay valid. */
    CHECK(t, copse_save(ix, bpath(t, "good.copse")) == COPSE_OK);
    same(t, s, ix, &ref);
    same(t, s, src, &ref);
    copse_free(ix);
    copse_free(src);
    copse_scratch_free(s);
}

/* Runs fn(t, dir) in a child process, in a private mount namespace where dir is a fresh
 * tmpfs (mount flags and options given): a full disk or a read-only file system without
 * touching the machine's. Needs root; elsewhere the case passes and says it was skipped.
 * The child ends with exit(), so under ASan LeakSanitizer checks it too. */
static void on_tmpfs(t_ctx *t, unsigned long flags, const char *opts,
                     void (*fn)(t_ctx *, const char *))
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", t_path(t, "mnt"));
    mkdir(dir, 0777);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(t, pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", dir, "tmpfs", flags, opts) != 0)
            _exit(77);
        fn(t, dir);
        fflush(NULL);
        exit(t->failed ? 1 : 0);
    }
    int st;
    REQUIRE(t, waitpid(pid, &st, 0) == pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        printf("  skipped: cannot mount a tmpfs in a private mount namespace here (needs root)\n");
        return;
    }
    CHECK(t, WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* On a 1 MB tmpfs: a save and an on-disk build larger than the disk fail with COPSE_ERR_IO,
 * the index already there stays whole, no temporary file is left, and the disk is usable
 * again; the index whose save failed still answers and saves elsewhere. */
static void full_disk(t_ctx *t, const char *full)
{
    char target[1100], small[1100];
    snprintf(target, sizeof target, "%s/big.copse", full);
    snprintf(small, sizeof small, "%s/small.copse", full);
    copse_index *tiny = built(t, COPSE_EUCLIDEAN, 20);
    CHECK(t, copse_save(tiny, target) == COPSE_OK);
    int64_t nbig = 40000;
    float *xb = malloc(sizeof(float) * (size_t)nbig * 16);
    for (int64_t i = 0; i < nbig * 16; i++)
        xb[i] = (float)((i * 7919) % 1000) / 1000.0f;
    copse_index *big;
    CHECK(t, copse_new(16, COPSE_EUCLIDEAN, &big) == COPSE_OK);
    CHECK(t, copse_add_items(big, nbig, NULL, 0, xb) == COPSE_OK);
    CHECK(t, copse_build(big, 4, 2) == COPSE_OK);
    CHECK_BAD(t, big, copse_save(big, target), COPSE_ERR_IO);
    copse_index *chk;
    CHECK(t, copse_open(target, 0, &chk) == COPSE_OK && copse_verify(chk) == COPSE_OK &&
                 copse_n_items(chk) == 20);
    copse_free(chk);
    CHECK(t, temp_files(full) == 0);
    CHECK(t, copse_save(tiny, small) == COPSE_OK);
    unlink(small);
    copse_index *od;
    CHECK(t, copse_new(16, COPSE_EUCLIDEAN, &od) == COPSE_OK);
    CHECK(t, copse_on_disk_build(od, target) == COPSE_OK);
    int arc = COPSE_OK;
    for (int64_t i = 0; i < nbig && arc == COPSE_OK; i++)
        arc = copse_add_item(od, i, xb + i * 16);
    if (arc == COPSE_OK)
        arc = copse_build(od, 4, 1);
    CHECK(t, arc == COPSE_ERR_IO);
    CHECK(t, copse_errmsg(od)[0] != '\0');
    copse_free(od);
    CHECK(t, copse_open(target, 0, &chk) == COPSE_OK && copse_verify(chk) == COPSE_OK &&
                 copse_n_items(chk) == 20);
    copse_free(chk);
    CHECK(t, temp_files(full) == 0);
    CHECK(t, copse_save(big, bpath(t, "big-elsewhere.copse")) == COPSE_OK);
    copse_free(big);
    copse_free(tiny);
    free(xb);
}

static void test_full_disk(t_ctx *t)
{
    on_tmpfs(t, 0, "size=1m", full_disk);
}

/* On a read-only file system a save and an on-disk build fail with COPSE_ERR_IO; the
 * on-disk builder stays usable in memory and the saved index answers as before. */
static void read_only_fs(t_ctx *t, const char *ro)
{
    copse_scratch *s = table_scratch(t);
    copse_index *src = built(t, COPSE_EUCLIDEAN, TN);
    answers ref;
    answer(t, s, src, &ref);
    char target[1100];
    snprintf(target, sizeof target, "%s/x.copse", ro);
    CHECK_BAD(t, src, copse_save(src, target), COPSE_ERR_IO);
    copse_index *od;
    CHECK(t, copse_new(TDIM, COPSE_EUCLIDEAN, &od) == COPSE_OK);
    CHECK_BAD(t, od, copse_on_disk_build(od, target), COPSE_ERR_IO);
    CHECK(t, copse_add_items(od, 10, NULL, 0, TX) == COPSE_OK);
    CHECK(t, copse_build(od, 2, 1) == COPSE_OK);
    copse_free(od);
    same(t, s, src, &ref);
    copse_free(src);
    copse_scratch_free(s);
}

static void test_read_only_fs(t_ctx *t)
{
    on_tmpfs(t, MS_RDONLY, "size=64k", read_only_fs);
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
    {"errors/table/adding", test_adding_table},
    {"errors/table/queries_angular", test_queries_angular},
    {"errors/table/queries_euclidean", test_queries_euclidean},
    {"errors/table/queries_manhattan", test_queries_manhattan},
    {"errors/table/queries_dot", test_queries_dot},
    {"errors/table/empty_index", test_empty},
    {"errors/table/hamming", test_hamming},
    {"errors/table/loads_and_saves", test_loads_and_saves},
    {"errors/table/full_disk", test_full_disk},
    {"errors/table/read_only_fs", test_read_only_fs},
    {NULL, NULL},
};
