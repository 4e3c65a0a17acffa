/*
 * bad_input.c: a table of bad calls on the C API, in every state. Each call must return its
 * documented status (with a message), change nothing, and leave the index answering exactly
 * as before. Run under ASan+UBSan by tests/hardening/run.sh.
 *
 *   bad_input [--full DIR] [--readonly DIR]
 * --full names a folder on a small tmpfs (a full disk), --readonly a read-only mount; the
 * cases that need them are skipped (and say so) without.
 * Prints one line per group of cases and "N passed, N failed".
 */
#include <errno.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copse.h"

static int passed, failed, group_bad;
static char group_name[256];

static void group(const char *name)
{
    if (group_name[0]) {
        printf("%s %s\n", group_bad ? "FAIL" : "ok  ", group_name);
        fflush(stdout);
        if (group_bad)
            failed++;
        else
            passed++;
    }
    snprintf(group_name, sizeof group_name, "%s", name ? name : "");
    group_bad = 0;
}

#define EXPECT(cond)                                                                         \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "  %s:%d: %s\n", __FILE__, __LINE__, #cond);                      \
            group_bad = 1;                                                                    \
        }                                                                                     \
    } while (0)

/* A bad call on ix: the status, and a message on the handle. */
#define BAD(ix, expr, want)                                                                   \
    do {                                                                                      \
        int rc_ = (expr);                                                                     \
        if (rc_ != (want)) {                                                                  \
            fprintf(stderr, "  %s:%d: %s returned %d (%s), wanted %d (%s) [%s]\n", __FILE__,  \
                    __LINE__, #expr, rc_, copse_strerror(rc_), (int)(want),                   \
                    copse_strerror(want), copse_errmsg(ix));                                  \
            group_bad = 1;                                                                    \
        } else if (copse_errmsg(ix)[0] == '\0') {                                             \
            fprintf(stderr, "  %s:%d: %s: no message\n", __FILE__, __LINE__, #expr);          \
            group_bad = 1;                                                                    \
        }                                                                                     \
    } while (0)

/* A bad query: the status and a message on the scratch. */
#define BADQ(s, expr, want)                                                                   \
    do {                                                                                      \
        int rc_ = (expr);                                                                     \
        if (rc_ != (want)) {                                                                  \
            fprintf(stderr, "  %s:%d: %s returned %d (%s), wanted %d (%s) [%s]\n", __FILE__,  \
                    __LINE__, #expr, rc_, copse_strerror(rc_), (int)(want),                   \
                    copse_strerror(want), copse_scratch_errmsg(s));                           \
            group_bad = 1;                                                                    \
        } else if ((want) != COPSE_OK && copse_scratch_errmsg(s)[0] == '\0') {               \
            fprintf(stderr, "  %s:%d: %s: no message\n", __FILE__, __LINE__, #expr);          \
            group_bad = 1;                                                                    \
        }                                                                                     \
    } while (0)

#define OK(expr) BADQ(s, expr, COPSE_OK)

enum { DIM = 4, N = 300, K = 10 };
static float X[N * DIM];
static copse_scratch *s;
static char dir[512];

static const char *path(const char *name)
{
    static char p[4][1024];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
    return p[i];
}

/* The reference answers of an index: ids and distances of a few queries. */
typedef struct answers {
    int64_t ids[8][K], n[8];
    float d[8][K];
} answers;

static void answer(const copse_index *ix, answers *a)
{
    memset(a, 0, sizeof *a);
    for (int q = 0; q < 8; q++)
        EXPECT(copse_search_vector(ix, s, X + q * 31 % N * DIM, K, -1, a->ids[q], a->d[q],
                                   &a->n[q]) == COPSE_OK);
}

/* Still answers exactly as before. */
static void same(const copse_index *ix, const answers *ref)
{
    answers a;
    answer(ix, &a);
    EXPECT(memcmp(&a, ref, sizeof a) == 0);
}

static int temp_files(void)
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

static copse_index *built(copse_metric m, int n)
{
    copse_index *ix;
    EXPECT(copse_new(DIM, m, &ix) == COPSE_OK);
    EXPECT(copse_add_items(ix, n, NULL, 0, X) == COPSE_OK);
    EXPECT(copse_build(ix, 4, 2) == COPSE_OK);
    return ix;
}

static void test_new(void)
{
    group("new: dimension and metric out of range");
    copse_index *ix = NULL;
    const int dims[] = {0, -1, -2147483647 - 1, COPSE_MAX_DIM + 1, 2147483647};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
        BAD(ix, copse_new(dims[i], COPSE_EUCLIDEAN, &ix), COPSE_ERR_DIM);
        copse_free(ix);
        ix = NULL;
    }
    const int metrics[] = {-1, 5, 1000};
    for (size_t i = 0; i < sizeof metrics / sizeof *metrics; i++) {
        BAD(ix, copse_new(3, (copse_metric)metrics[i], &ix), COPSE_ERR_METRIC);
        copse_free(ix);
        ix = NULL;
    }
    copse_metric m;
    EXPECT(copse_metric_from_name("cosinus", &m) == COPSE_ERR_METRIC);
    EXPECT(copse_metric_from_name("", &m) == COPSE_ERR_METRIC);
    EXPECT(copse_metric_name((copse_metric)9) == NULL);
    EXPECT(copse_new(COPSE_MAX_DIM, COPSE_HAMMING, &ix) == COPSE_OK);
    copse_free(ix);
}

static void test_adding(void)
{
    group("adding: NaN, infinities, bad ids, bad batches, bad labels and settings");
    copse_index *ix;
    EXPECT(copse_new(DIM, COPSE_EUCLIDEAN, &ix) == COPSE_OK);
    EXPECT(copse_add_items(ix, 10, NULL, 0, X) == COPSE_OK);
    float v[DIM];
    const float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    for (size_t b = 0; b < 4; b++)
        for (int at = 0; at < DIM; at++) {
            memcpy(v, X, sizeof v);
            v[at] = bad[b];
            BAD(ix, copse_add_item(ix, 100, v), COPSE_ERR_VALUE);
            BAD(ix, copse_add_item(ix, 3, v), COPSE_ERR_VALUE); /* replacing must not either */
        }
    float got[DIM];
    EXPECT(copse_get_item(ix, 3, got) == COPSE_OK && memcmp(got, X + 3 * DIM, sizeof got) == 0);
    BAD(ix, copse_add_item(ix, -1, X), COPSE_ERR_ID);
    BAD(ix, copse_add_item(ix, INT64_MIN, X), COPSE_ERR_ID);
    BAD(ix, copse_add_item(ix, 5, NULL), COPSE_ERR_ARG);
    BAD(ix, copse_add_items(ix, -1, NULL, 0, X), COPSE_ERR_ARG);
    BAD(ix, copse_add_items(ix, 3, NULL, -1, X), COPSE_ERR_ID);
    BAD(ix, copse_add_items(ix, 3, NULL, INT64_MAX - 1, X), COPSE_ERR_ID); /* ids overflow */
    BAD(ix, copse_add_items(ix, 2, NULL, 0, NULL), COPSE_ERR_ARG);
    int64_t ids[3] = {50, 51, INT64_MIN};
    BAD(ix, copse_add_items(ix, 3, ids, 0, X), COPSE_ERR_ID);
    float rows[3 * DIM];
    memcpy(rows, X, sizeof rows);
    rows[2 * DIM + 1] = INFINITY;
    BAD(ix, copse_add_items(ix, 3, NULL, 20, rows), COPSE_ERR_VALUE);
    EXPECT(copse_n_items(ix) == 10 && !copse_has_item(ix, 20) && !copse_has_item(ix, 50));
    EXPECT(copse_add_items(ix, 0, NULL, 0, X) == COPSE_OK && copse_n_items(ix) == 10);
    /* The largest id is an id like any other. */
    EXPECT(copse_add_item(ix, INT64_MAX, X) == COPSE_OK && copse_max_id(ix) == INT64_MAX);
    BAD(ix, copse_set_label(ix, 999, "x"), COPSE_ERR_NOTFOUND);
    BAD(ix, copse_set_label(ix, -1, "x"), COPSE_ERR_NOTFOUND);
    char *longlabel = malloc(70000);
    memset(longlabel, 'a', 69999);
    longlabel[69999] = 0;
    BAD(ix, copse_set_label(ix, 1, longlabel), COPSE_ERR_ARG);
    free(longlabel);
    EXPECT(copse_set_label(ix, 1, "") == COPSE_OK || copse_set_label(ix, 1, "") == COPSE_ERR_ARG);
    /* NULL: refused or taken as "no label" (the header does not say); never a crash. */
    int lrc = copse_set_label(ix, 1, NULL);
    EXPECT(lrc == COPSE_OK || lrc == COPSE_ERR_ARG);
    BAD(ix, copse_set_leaf_size(ix, 1), COPSE_ERR_ARG);
    BAD(ix, copse_set_leaf_size(ix, -1), COPSE_ERR_ARG);
    BAD(ix, copse_set_leaf_size(ix, 65536), COPSE_ERR_ARG);
    BAD(ix, copse_set_kernels(ix, NULL), COPSE_ERR_ARG);
    BAD(ix, copse_set_kernels(ix, "avx9000"), COPSE_ERR_ARG);
    /* Calls that need a built index. */
    int64_t out[K], n;
    BADQ(s, copse_search_vector(ix, s, X, K, -1, out, NULL, &n), COPSE_ERR_STATE);
    BADQ(s, copse_search_batch(ix, s, X, 1, K, -1, 0, 1, out, NULL, NULL), COPSE_ERR_STATE);
    BAD(ix, copse_save(ix, path("adding.copse")), COPSE_ERR_STATE);
    BAD(ix, copse_verify(ix), COPSE_ERR_STATE);
    BAD(ix, copse_unload(ix), COPSE_ERR_STATE);
    BAD(ix, copse_unbuild(ix), COPSE_ERR_STATE);
    BAD(ix, copse_build(ix, 0, 1), COPSE_ERR_ARG);
    BAD(ix, copse_build(ix, -2, 1), COPSE_ERR_ARG);
    BAD(ix, copse_build(ix, COPSE_MAX_TREES + 1, 1), COPSE_ERR_ARG);
    BAD(ix, copse_build(ix, -2147483647 - 1, 1), COPSE_ERR_ARG);
    EXPECT(access(path("adding.copse"), F_OK) != 0);
    /* Still usable: builds, finds the huge id, round-trips it. */
    EXPECT(copse_n_items(ix) == 11);
    EXPECT(copse_build(ix, 3, 64) == COPSE_OK); /* more threads than work */
    EXPECT(copse_search_item(ix, s, INT64_MAX, 1, -1, out, NULL, &n) == COPSE_OK && n == 1);
    EXPECT(copse_save(ix, path("maxid.copse")) == COPSE_OK);
    copse_index *ld;
    EXPECT(copse_open(path("maxid.copse"), 0, &ld) == COPSE_OK && copse_max_id(ld) == INT64_MAX &&
           copse_has_item(ld, INT64_MAX) && copse_verify(ld) == COPSE_OK);
    copse_free(ld);
    copse_free(ix);
}

static void test_queries(copse_metric m, const char *name)
{
    char title[128];
    snprintf(title, sizeof title, "queries (%s): k, search_k, NaN, infinities, ids, batches", name);
    group(title);
    copse_index *ix = built(m, N);
    answers ref;
    answer(ix, &ref);
    int64_t ids[N + 5], n, counts[4];
    float d[N + 5], q[DIM];
    /* k */
    BADQ(s, copse_search_vector(ix, s, X, -1, -1, ids, d, &n), COPSE_ERR_ARG);
    BADQ(s, copse_search_vector(ix, s, X, INT64_MIN, -1, ids, d, &n), COPSE_ERR_ARG);
    OK(copse_search_vector(ix, s, X, 0, -1, ids, d, &n));
    EXPECT(n == 0);
    /* k larger than the index: every item at most once; the buffer needs only n_items. */
    OK(copse_search_vector(ix, s, X, N + 5, 1000000, ids, d, &n));
    EXPECT(n == N);
    OK(copse_exact_vector(ix, s, X, INT64_MAX, ids, d, &n));
    EXPECT(n == N);
    /* Huge k and search_k mean "everything" (found here: until 24edbc8 a query hung in
     * src/search.c reserve() when search_k + leaf size passed 2^63, returned
     * COPSE_ERR_NOMEM for search_k >= 2^62 or k >= 2^61, and nothing for k = INT64_MAX with
     * search_k = -1). */
    OK(copse_search_vector(ix, s, X, INT64_MAX, INT64_MAX, ids, d, &n));
    EXPECT(n == N);
    OK(copse_search_vector(ix, s, X, INT64_MAX, -1, ids, d, &n));
    EXPECT(n == N);
    OK(copse_search_vector(ix, s, X, K, INT64_MAX / 2, ids, d, &n));
    EXPECT(n == K);
    OK(copse_search_vector(ix, s, X, INT64_MAX / 4, -1, ids, d, &n));
    EXPECT(n == N);
    OK(copse_search_item(ix, s, 3, K, INT64_MAX, ids, d, &n));
    EXPECT(n == K);
    /* search_k */
    BADQ(s, copse_search_vector(ix, s, X, K, -2, ids, d, &n), COPSE_ERR_ARG);
    BADQ(s, copse_search_vector(ix, s, X, K, INT64_MIN, ids, d, &n), COPSE_ERR_ARG);
    OK(copse_search_vector(ix, s, X, K, 0, ids, d, &n));
    EXPECT(n == 0);
    OK(copse_search_vector(ix, s, X, K, 1, ids, d, &n));
    EXPECT(n >= 1 && n <= K);
    /* NaN and infinities anywhere in the query. */
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++)
        for (int at = 0; at < DIM; at++) {
            memcpy(q, X, sizeof q);
            q[at] = bad[b];
            BADQ(s, copse_search_vector(ix, s, q, K, -1, ids, d, &n), COPSE_ERR_VALUE);
            BADQ(s, copse_exact_vector(ix, s, q, K, ids, d, &n), COPSE_ERR_VALUE);
            BADQ(s, copse_search_vector(ix, NULL, q, K, -1, ids, d, &n), COPSE_ERR_VALUE);
        }
    /* Finite but huge components: no NaN may come back as a distance. */
    for (int j = 0; j < DIM; j++)
        q[j] = j % 2 ? 3.0e38f : -3.0e38f;
    int rc = copse_search_vector(ix, s, q, K, -1, ids, d, &n);
    EXPECT(rc == COPSE_OK || rc == COPSE_ERR_VALUE);
    /* NULL pointers */
    BADQ(s, copse_search_vector(ix, s, NULL, K, -1, ids, d, &n), COPSE_ERR_ARG);
    BADQ(s, copse_search_vector(ix, s, X, K, -1, NULL, d, &n), COPSE_ERR_ARG);
    /* (n_out NULL is accepted: the library counts into a dummy) */
    BADQ(s, copse_search_vector(NULL, s, X, K, -1, ids, d, &n), COPSE_ERR_ARG);
    /* ids */
    const int64_t missing[] = {-1, INT64_MIN, N, INT64_MAX};
    for (int i = 0; i < 4; i++) {
        BADQ(s, copse_search_item(ix, s, missing[i], K, -1, ids, d, &n), COPSE_ERR_NOTFOUND);
        BADQ(s, copse_exact_item(ix, s, missing[i], K, ids, d, &n), COPSE_ERR_NOTFOUND);
        EXPECT(copse_get_item(ix, missing[i], q) == COPSE_ERR_NOTFOUND);
        EXPECT(copse_get_distance(ix, 0, missing[i], d) == COPSE_ERR_NOTFOUND);
        EXPECT(copse_has_item(ix, missing[i]) == 0);
    }
    int64_t id;
    EXPECT(copse_item_id_at(ix, -1, &id) == COPSE_ERR_ARG);
    EXPECT(copse_item_id_at(ix, N, &id) == COPSE_ERR_ARG);
    EXPECT(copse_item_id_at(ix, INT64_MAX, &id) == COPSE_ERR_ARG);
    memcpy(q, X, sizeof q);
    q[1] = NAN;
    float dist;
    /* (until 24edbc8 a NaN gave rc 0 and a finite distance: 0 for euclidean) */
    EXPECT(copse_distance(ix, X, q, &dist) == COPSE_ERR_VALUE);
    EXPECT(copse_distance(ix, q, X, &dist) == COPSE_ERR_VALUE);
    /* Batches: empty, negative, a bad row anywhere, thread counts. */
    float qs[4 * DIM];
    memcpy(qs, X, sizeof qs);
    OK(copse_search_batch(ix, s, qs, 0, K, -1, 0, 2, ids, d, counts));
    BADQ(s, copse_search_batch(ix, s, qs, -1, K, -1, 0, 2, ids, d, counts), COPSE_ERR_ARG);
    BADQ(s, copse_search_batch(ix, s, qs, 4, -1, -1, 0, 2, ids, d, counts), COPSE_ERR_ARG);
    BADQ(s, copse_search_batch(ix, s, qs, 4, K, -3, 0, 2, ids, d, counts), COPSE_ERR_ARG);
    BADQ(s, copse_search_batch(ix, s, NULL, 4, K, -1, 0, 2, ids, d, counts), COPSE_ERR_ARG);
    BADQ(s, copse_search_batch(ix, s, qs, 4, K, -1, 0, 2, NULL, d, counts), COPSE_ERR_ARG);
    qs[3 * DIM + 2] = -INFINITY;
    BADQ(s, copse_search_batch(ix, s, qs, 4, K, -1, 0, 2, ids, d, counts), COPSE_ERR_VALUE);
    EXPECT(strstr(copse_scratch_errmsg(s), "3") != NULL);
    BADQ(s, copse_search_batch(ix, s, qs, 4, K, -1, 1, 2, ids, d, counts), COPSE_ERR_VALUE);
    qs[3 * DIM + 2] = 0;
    OK(copse_search_batch(ix, s, qs, 4, K, -1, 0, 1000, ids, d, counts));
    OK(copse_search_batch(ix, s, qs, 4, K, -1, 0, -7, ids, d, counts));
    OK(copse_search_batch(ix, s, qs, 4, 0, -1, 0, 2, ids, d, counts));
    EXPECT(counts[0] == 0 && counts[3] == 0);
    /* Bad changes refused in the BUILT state (good ones are tests/test_live.c's). */
    float nan_row[DIM];
    memcpy(nan_row, X, sizeof nan_row);
    nan_row[1] = NAN;
    BAD(ix, copse_add_item(ix, N + 1, nan_row), COPSE_ERR_VALUE);
    BAD(ix, copse_add_item(ix, -4, X), COPSE_ERR_ID);
    BAD(ix, copse_delete_item(ix, N + 7), COPSE_ERR_NOTFOUND);
    BAD(ix, copse_set_seed(ix, 1), COPSE_ERR_STATE);
    BAD(ix, copse_set_leaf_size(ix, 8), COPSE_ERR_STATE);
    BAD(ix, copse_build(ix, 2, 1), COPSE_ERR_STATE);
    BAD(ix, copse_load(ix, path("none.copse"), 0), COPSE_ERR_STATE);
    BAD(ix, copse_on_disk_build(ix, path("late.copse")), COPSE_ERR_STATE);
    same(ix, &ref);
    copse_free(ix);
}

static void test_empty(void)
{
    group("empty index: builds, saves, loads, answers nothing");
    copse_index *ix;
    EXPECT(copse_new(DIM, COPSE_ANGULAR, &ix) == COPSE_OK);
    EXPECT(copse_build(ix, 5, 1) == COPSE_OK);
    int64_t ids[K], n = -1, counts[2];
    float d[K];
    OK(copse_search_vector(ix, s, X, K, -1, ids, d, &n));
    EXPECT(n == 0);
    OK(copse_exact_vector(ix, s, X, K, ids, d, &n));
    EXPECT(n == 0);
    BADQ(s, copse_search_item(ix, s, 0, K, -1, ids, d, &n), COPSE_ERR_NOTFOUND);
    OK(copse_search_batch(ix, s, X, 2, 3, -1, 0, 2, ids, d, counts));
    EXPECT(counts[0] == 0 && counts[1] == 0 && ids[0] == -1 && isnan(d[0]) && ids[5] == -1);
    EXPECT(copse_max_id(ix) == -1 && copse_n_items(ix) == 0 && copse_n_sections(ix) == 0);
    EXPECT(copse_verify(ix) == COPSE_OK);
    EXPECT(copse_save(ix, path("empty.copse")) == COPSE_OK);
    copse_index *ld;
    EXPECT(copse_open(path("empty.copse"), 1, &ld) == COPSE_OK && copse_verify(ld) == COPSE_OK);
    OK(copse_search_vector(ld, s, X, K, -1, ids, d, &n));
    EXPECT(n == 0);
    int64_t id;
    EXPECT(copse_item_id_at(ld, 0, &id) == COPSE_ERR_ARG);
    EXPECT(copse_find_label(ld, "x", &id) == COPSE_ERR_NOTFOUND);
    copse_free(ld);
    copse_free(ix);
}

static void test_hamming(void)
{
    group("hamming: NaN, infinities and values around the 0.5 threshold");
    copse_index *ix;
    EXPECT(copse_new(70, COPSE_HAMMING, &ix) == COPSE_OK);
    float v[70] = {0};
    v[3] = NAN;
    BAD(ix, copse_add_item(ix, 0, v), COPSE_ERR_VALUE);
    v[3] = -INFINITY;
    BAD(ix, copse_add_item(ix, 0, v), COPSE_ERR_VALUE);
    v[3] = 0.5f;  /* not set */
    v[4] = 0.51f; /* set */
    v[69] = 1e30f;
    v[68] = -1e30f;
    EXPECT(copse_add_item(ix, 0, v) == COPSE_OK);
    float got[70];
    EXPECT(copse_get_item(ix, 0, got) == COPSE_OK && got[3] == 0 && got[4] == 1 && got[69] == 1 &&
           got[68] == 0);
    for (int i = 1; i < 50; i++) {
        v[i % 70] = 1;
        EXPECT(copse_add_item(ix, i, v) == COPSE_OK);
    }
    EXPECT(copse_build(ix, 3, 1) == COPSE_OK);
    int64_t ids[K], n;
    v[10] = NAN;
    BADQ(s, copse_search_vector(ix, s, v, K, -1, ids, NULL, &n), COPSE_ERR_VALUE);
    copse_free(ix);
}

static void test_files(const char *full, const char *ro)
{
    group("files: missing, directories, devices, text, wrong dimension or metric");
    copse_index *src = built(COPSE_EUCLIDEAN, N);
    answers ref;
    answer(src, &ref);
    EXPECT(copse_save(src, path("good.copse")) == COPSE_OK);
    copse_index *ix;
    EXPECT(copse_new(DIM, COPSE_EUCLIDEAN, &ix) == COPSE_OK);
    BAD(ix, copse_load(ix, path("missing.copse"), 0), COPSE_ERR_IO);
    BAD(ix, copse_load(ix, dir, 0), COPSE_ERR_IO);
    BAD(ix, copse_load(ix, "/dev/null", 0), COPSE_ERR_IO);
    BAD(ix, copse_load(ix, "/dev/zero", 0), COPSE_ERR_IO);
    BAD(ix, copse_load(ix, "", 0), COPSE_ERR_IO);
    BAD(ix, copse_load(ix, NULL, 0), COPSE_ERR_ARG);
    BAD(ix, copse_load_buffer(ix, NULL, 5), COPSE_ERR_ARG);
    BAD(ix, copse_load_buffer(ix, "", 0), COPSE_ERR_NOTCOPSE);
    BAD(ix, copse_load_annoy(ix, path("good.copse")), copse_load_annoy(ix, path("good.copse")));
    EXPECT(copse_state(ix) == COPSE_STATE_ADDING || copse_unload(ix) == COPSE_OK);
    copse_index *other = NULL;
    EXPECT(copse_open(dir, 0, &other) == COPSE_ERR_IO);
    copse_free(other);
    EXPECT(copse_open(path("good.copse"), 0, NULL) == COPSE_ERR_ARG);
    EXPECT(copse_new(DIM + 1, COPSE_EUCLIDEAN, &other) == COPSE_OK);
    BAD(other, copse_load(other, path("good.copse"), 0), COPSE_ERR_DIM);
    copse_free(other);
    EXPECT(copse_new(DIM, COPSE_MANHATTAN, &other) == COPSE_OK);
    BAD(other, copse_load(other, path("good.copse"), 0), COPSE_ERR_METRIC);
    copse_free(other);
    /* The handle that failed all those loads still loads the good file. */
    EXPECT(copse_load(ix, path("good.copse"), 1) == COPSE_OK);
    same(ix, &ref);
    BAD(ix, copse_load(ix, path("good.copse"), 0), COPSE_ERR_STATE);
    same(ix, &ref);

    group("saves: empty path, a directory, no folder, /proc, and the source stays usable");
    BAD(src, copse_save(src, ""), COPSE_ERR_ARG);
    BAD(src, copse_save(src, NULL), COPSE_ERR_ARG);
    mkdir(path("adir"), 0777);
    BAD(src, copse_save(src, path("adir")), COPSE_ERR_IO);
    struct stat st;
    EXPECT(stat(path("adir"), &st) == 0 && S_ISDIR(st.st_mode));
    BAD(src, copse_save(src, path("no-such-folder/x.copse")), COPSE_ERR_IO);
    BAD(src, copse_save(src, "/proc/copse-cannot-write-here.copse"), COPSE_ERR_IO);
    BAD(src, copse_save(src, path("good.copse/inside")), COPSE_ERR_IO);
    EXPECT(temp_files() == 0);
    /* A loaded index saved over its own file: the mapping must stay valid. */
    EXPECT(copse_save(ix, path("good.copse")) == COPSE_OK);
    same(ix, &ref);
    same(src, &ref);

    group("on-disk builds: a directory, no folder, state");
    copse_index *od;
    EXPECT(copse_new(DIM, COPSE_EUCLIDEAN, &od) == COPSE_OK);
    BAD(od, copse_on_disk_build(od, path("no-such-folder/x.copse")), COPSE_ERR_IO);
    BAD(od, copse_on_disk_build(od, NULL), COPSE_ERR_ARG);
    /* Aimed at a directory: refused at the start or at the end, never replacing it. */
    int rc = copse_on_disk_build(od, path("adir"));
    if (rc == COPSE_OK) {
        EXPECT(copse_add_items(od, 50, NULL, 0, X) == COPSE_OK);
        BAD(od, copse_build(od, 2, 1), COPSE_ERR_IO);
    } else {
        EXPECT(rc == COPSE_ERR_IO);
    }
    copse_free(od);
    EXPECT(stat(path("adir"), &st) == 0 && S_ISDIR(st.st_mode));
    EXPECT(temp_files() == 0);

    if (full) {
        group("full disk (small tmpfs): save and on-disk build fail with IO, old file intact");
        char target[1024], small[1024];
        snprintf(target, sizeof target, "%s/big.copse", full);
        snprintf(small, sizeof small, "%s/small.copse", full);
        copse_index *tiny = built(COPSE_EUCLIDEAN, 20);
        EXPECT(copse_save(tiny, target) == COPSE_OK);
        struct stat before;
        stat(target, &before);
        /* Bigger than the file system. */
        int64_t nbig = 40000;
        float *xb = malloc(sizeof(float) * (size_t)nbig * 16);
        for (int64_t i = 0; i < nbig * 16; i++)
            xb[i] = (float)((i * 7919) % 1000) / 1000.0f;
        copse_index *big;
        EXPECT(copse_new(16, COPSE_EUCLIDEAN, &big) == COPSE_OK);
        EXPECT(copse_add_items(big, nbig, NULL, 0, xb) == COPSE_OK);
        EXPECT(copse_build(big, 4, 2) == COPSE_OK);
        BAD(big, copse_save(big, target), COPSE_ERR_IO);
        copse_index *chk;
        EXPECT(copse_open(target, 0, &chk) == COPSE_OK && copse_verify(chk) == COPSE_OK &&
               copse_n_items(chk) == 20);
        copse_free(chk);
        /* Nothing left behind, and the disk is usable again: a small save works. */
        DIR *d = opendir(full);
        struct dirent *e;
        int left = 0;
        while (d && (e = readdir(d)))
            left += strstr(e->d_name, ".tmp-") != NULL;
        if (d)
            closedir(d);
        EXPECT(left == 0);
        EXPECT(copse_save(tiny, small) == COPSE_OK);
        unlink(small);
        /* On-disk build into the full file system. */
        copse_index *od2;
        EXPECT(copse_new(16, COPSE_EUCLIDEAN, &od2) == COPSE_OK);
        EXPECT(copse_on_disk_build(od2, target) == COPSE_OK);
        int arc = COPSE_OK;
        for (int64_t i = 0; i < nbig && arc == COPSE_OK; i++)
            arc = copse_add_item(od2, i, xb + i * 16);
        if (arc == COPSE_OK)
            arc = copse_build(od2, 4, 1);
        EXPECT(arc == COPSE_ERR_IO);
        EXPECT(copse_errmsg(od2)[0] != '\0');
        copse_free(od2);
        EXPECT(copse_open(target, 0, &chk) == COPSE_OK && copse_verify(chk) == COPSE_OK &&
               copse_n_items(chk) == 20);
        copse_free(chk);
        d = opendir(full);
        left = 0;
        while (d && (e = readdir(d)))
            left += strstr(e->d_name, ".tmp-") != NULL;
        if (d)
            closedir(d);
        EXPECT(left == 0);
        /* The index whose save failed still answers and saves elsewhere. */
        EXPECT(copse_save(big, path("big-elsewhere.copse")) == COPSE_OK);
        copse_free(big);
        copse_free(tiny);
        free(xb);
    } else {
        printf("skip full disk: no small tmpfs given (--full)\n");
    }
    if (ro) {
        group("read-only file system: save and on-disk build fail with IO");
        char target[1024];
        snprintf(target, sizeof target, "%s/x.copse", ro);
        BAD(src, copse_save(src, target), COPSE_ERR_IO);
        copse_index *od3;
        EXPECT(copse_new(DIM, COPSE_EUCLIDEAN, &od3) == COPSE_OK);
        BAD(od3, copse_on_disk_build(od3, target), COPSE_ERR_IO);
        EXPECT(copse_add_items(od3, 10, NULL, 0, X) == COPSE_OK); /* still usable in memory */
        EXPECT(copse_build(od3, 2, 1) == COPSE_OK);
        copse_free(od3);
        same(src, &ref);
    } else {
        printf("skip read-only file system: none given (--readonly)\n");
    }
    copse_free(ix);
    copse_free(src);
}

int main(int argc, char **argv)
{
    const char *full = NULL, *ro = NULL;
    alarm(300); /* a hang is a failure, not a stuck test run */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--full") == 0)
            full = argv[i + 1];
        else if (strcmp(argv[i], "--readonly") == 0)
            ro = argv[i + 1];
    }
    snprintf(dir, sizeof dir, "%s/copse-bad-input-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    mkdir(dir, 0777);
    uint64_t r = 42;
    for (int i = 0; i < N * DIM; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        X[i] = (float)(r >> 40) / 16777216.0f * 2 - 1 + (float)(i / DIM % 5);
    }
    copse_scratch_new(&s);
    test_new();
    test_adding();
    test_queries(COPSE_EUCLIDEAN, "euclidean");
    test_queries(COPSE_ANGULAR, "angular");
    test_queries(COPSE_DOT, "dot");
    test_queries(COPSE_MANHATTAN, "manhattan");
    test_empty();
    test_hamming();
    test_files(full, ro);
    group(NULL);
    copse_scratch_free(s);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
