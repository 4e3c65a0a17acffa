/*
 * demo.c: `copse demo`, the Fashion-MNIST demonstration behind `make demo`.
 *
 * Indexes the training images (euclidean distance on raw pixels), answers the test images
 * with the forest and with exhaustive search (copse_search_batch with exact = 1, the same
 * code path users get), and prints recall@k, throughput of both, the speed-up, the build time
 * and the index size side by side. Then it draws some queries with their neighbours into a
 * PNG, each neighbour framed green when it has the query's class and red when not.
 *
 * Everything goes through the public API and the same readers as `copse build`, so running
 * it on a small synthetic directory in the tests exercises the real path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "measure.h"
#include "readers/reader.h"
#include "tiles.h"

#define DEMO_SIDE 28       /* Fashion-MNIST images are 28 x 28 */
#define DEMO_SCALE 2
#define DEMO_MAX_ROWS 100

typedef struct demo_opts {
    const char *dir;
    const char *png;
    const char *index_out;
    int n_trees;
    int64_t search_k;
    int n_threads;
    int64_t k;
    int64_t train_limit;
    int64_t test_limit;
    int64_t exact_limit;
    int rows;
    int quiet;
} demo_opts;

typedef struct demo_data {
    cli_matrix train, test;
    cli_matrix train_labels, test_labels;   /* n == 0 when the label files are absent */
} demo_data;

typedef struct demo_results {
    double build_seconds;
    uint64_t index_bytes;
    batch_run approx, exact;
    int64_t n_exact;            /* queries also answered exhaustively */
    double recall;
    double class_approx, class_exact;   /* share of neighbours with the query's class */
} demo_results;

static const char demo_help[] =
    "usage: copse demo DIR [options]\n"
    "\n"
    "Indexes the Fashion-MNIST training images in DIR (train-images-idx3-ubyte[.gz] and\n"
    "t10k-images-idx3-ubyte[.gz], with the label files when present), answers every test\n"
    "image with copse and with exhaustive search, prints recall@k, queries per second, the\n"
    "speed-up, build time and index size, and draws queries with their nearest neighbours\n"
    "into a PNG (green frame: same class as the query, red: another class).\n"
    "\n"
    TILES_PNG_HELP
    "  -t, --trees N        trees (default 4)\n"
    "      --search-k N     search effort per query: the graph walk's width (default 40)\n"
    "  -k N                 neighbours (default 10)\n"
    "  -j, --threads N      threads for building and querying (default 0: one per CPU)\n"
    "      --train-limit N  index only the first N training images\n"
    "      --test-limit N   query only the first N test images\n"
    "      --exact-limit N  search exhaustively for the first N queries only (recall is\n"
    "                       measured on those; default: all)\n"
    "      --rows N         queries drawn in the picture (default 10)\n"
    "      --index FILE     also save the index\n"
    "  -q, --quiet          no progress lines on stderr\n";

enum {
    OPT_PNG = 1,
    OPT_TREES,
    OPT_SEARCH_K,
    OPT_K,
    OPT_THREADS,
    OPT_TRAIN_LIMIT,
    OPT_TEST_LIMIT,
    OPT_EXACT_LIMIT,
    OPT_ROWS,
    OPT_INDEX,
    OPT_QUIET
};

static const cli_opt demo_options[] = {
    {"png", 'o', 1, OPT_PNG},
    {"trees", 't', 1, OPT_TREES},
    {"search-k", 0, 1, OPT_SEARCH_K},
    {"k", 'k', 1, OPT_K},
    {"threads", 'j', 1, OPT_THREADS},
    {"train-limit", 0, 1, OPT_TRAIN_LIMIT},
    {"test-limit", 0, 1, OPT_TEST_LIMIT},
    {"exact-limit", 0, 1, OPT_EXACT_LIMIT},
    {"rows", 0, 1, OPT_ROWS},
    {"index", 0, 1, OPT_INDEX},
    {"quiet", 'q', 0, OPT_QUIET},
    {NULL, 0, 0, 0},
};

static int apply_option(void *ctx, int key, const char *v, cli_err *err)
{
    demo_opts *o = ctx;
    switch (key) {
    case OPT_PNG:
        o->png = v;
        return 0;
    case OPT_TREES:
        return cli_parse_int(v, 1, COPSE_MAX_TREES, "--trees", &o->n_trees, err);
    case OPT_SEARCH_K:
        return cli_parse_i64(v, -1, INT64_MAX, "--search-k", &o->search_k, err);
    case OPT_K:
        return cli_parse_i64(v, 1, 1000, "-k", &o->k, err);
    case OPT_THREADS:
        return cli_parse_int(v, 0, 4096, "--threads", &o->n_threads, err);
    case OPT_TRAIN_LIMIT:
        return cli_parse_i64(v, 1, INT64_MAX, "--train-limit", &o->train_limit, err);
    case OPT_TEST_LIMIT:
        return cli_parse_i64(v, 1, INT64_MAX, "--test-limit", &o->test_limit, err);
    case OPT_EXACT_LIMIT:
        return cli_parse_i64(v, 1, INT64_MAX, "--exact-limit", &o->exact_limit, err);
    case OPT_ROWS:
        return cli_parse_int(v, 0, DEMO_MAX_ROWS, "--rows", &o->rows, err);
    case OPT_INDEX:
        o->index_out = v;
        return 0;
    case OPT_QUIET:
        o->quiet = 1;
        return 0;
    default: /* CLI_POSITIONAL */
        return cli_take_argument(&o->dir, v, err);
    }
}

static int parse_demo_args(int argc, char **argv, demo_opts *o, cli_err *err)
{
    memset(o, 0, sizeof *o);
    o->png = "fashion-mnist-neighbours.png";
    o->n_trees = 4;
    o->search_k = 40;
    o->k = 10;
    o->train_limit = o->test_limit = o->exact_limit = -1;
    o->rows = 10;
    const cli_command cmd = {demo_help, demo_options, apply_option, o, NULL};
    int rc = cli_parse(&cmd, argc, argv, err);
    if (rc != 0)
        return rc;
    if (o->dir == NULL)
        return cli_fail(err, EXIT_USAGE, "no DIR given (see copse demo --help)");
    return 0;
}

static void say(const demo_opts *o, const char *what)
{
    if (!o->quiet) {
        fprintf(stderr, "demo: %s\n", what);
        fflush(stderr);
    }
}

/* ---- data --------------------------------------------------------------------------------- */

/* DIR/NAME.gz, else DIR/NAME; 0 when neither exists. */
static int find_file(const char *dir, const char *name, char *path, size_t size)
{
    struct stat st;
    snprintf(path, size, "%s/%s.gz", dir, name);
    if (stat(path, &st) == 0)
        return 1;
    snprintf(path, size, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static int load_idx(const char *dir, const char *name, int64_t limit, int required,
                    cli_matrix *m, cli_err *err)
{
    char path[4096];
    memset(m, 0, sizeof *m);
    if (!find_file(dir, name, path, sizeof path))
        return required ? cli_fail(err, EXIT_IO, "%s: no %s or %s.gz there", dir, name, name)
                        : 0;
    reader_options in;
    reader_options_init(&in);
    in.format = CLI_FMT_IDX;
    return reader_load(path, &in, limit, m, err);
}

static int check_shapes(const demo_opts *o, const demo_data *d, cli_err *err)
{
    if (d->train.dim != d->test.dim)
        return cli_fail(err, EXIT_DATA, "%s: training images have %d pixels, test images %d",
                        o->dir, d->train.dim, d->test.dim);
    if (d->train_labels.n > 0 &&
        (d->train_labels.n < d->train.n || d->test_labels.n < d->test.n))
        return cli_fail(err, EXIT_DATA, "%s: fewer labels than images", o->dir);
    return 0;
}

static int load_data(const demo_opts *o, demo_data *d, cli_err *err)
{
    say(o, "reading the images");
    int rc = load_idx(o->dir, "train-images-idx3-ubyte", o->train_limit, 1, &d->train, err);
    if (rc == 0)
        rc = load_idx(o->dir, "t10k-images-idx3-ubyte", o->test_limit, 1, &d->test, err);
    if (rc == 0)
        rc = load_idx(o->dir, "train-labels-idx1-ubyte", o->train_limit, 0, &d->train_labels,
                      err);
    if (rc == 0)
        rc = load_idx(o->dir, "t10k-labels-idx1-ubyte", o->test_limit, 0, &d->test_labels,
                      err);
    if (rc == 0 && (d->train_labels.n == 0 || d->test_labels.n == 0)) {
        matrix_free(&d->train_labels);
        matrix_free(&d->test_labels);
    }
    return rc == 0 ? check_shapes(o, d, err) : rc;
}

static void free_data(demo_data *d)
{
    matrix_free(&d->train);
    matrix_free(&d->test);
    matrix_free(&d->train_labels);
    matrix_free(&d->test_labels);
}

/* ---- index and queries -------------------------------------------------------------------- */

static int build_index(const demo_opts *o, const demo_data *d, copse_index **ix,
                       demo_results *res, cli_err *err)
{
    char line[128];
    snprintf(line, sizeof line, "building %d trees over %lld images", o->n_trees,
             (long long)d->train.n);
    say(o, line);
    double t0 = cli_now();
    int st = copse_new(d->train.dim, COPSE_EUCLIDEAN, ix);
    if (st == COPSE_OK)
        st = copse_add_items(*ix, d->train.n, NULL, 0, d->train.data);
    if (st == COPSE_OK)
        st = copse_build(*ix, o->n_trees, o->n_threads);
    res->build_seconds = cli_now() - t0;
    if (st != COPSE_OK)
        return cli_fail_status(err, st, *ix, "build");
    res->index_bytes = copse_file_size(*ix);
    if (o->index_out != NULL && (st = copse_save(*ix, o->index_out)) != COPSE_OK)
        return cli_fail_status(err, st, *ix, o->index_out);
    return 0;
}

/* Share of (query, neighbour) pairs where the neighbour has the query's class. */
static double class_agreement(const demo_data *d, const int64_t *ids, int64_t nq, int64_t k)
{
    int64_t same = 0, pairs = 0;
    for (int64_t q = 0; q < nq; q++) {
        for (int64_t j = 0; j < k; j++) {
            int64_t id = ids[q * k + j];
            if (id < 0)
                continue;
            same += d->train_labels.data[id] == d->test_labels.data[q];
            pairs++;
        }
    }
    return pairs > 0 ? (double)same / (double)pairs : 0.0;
}

static int run_queries(const demo_opts *o, const demo_data *d, const copse_index *ix,
                       copse_scratch *s, demo_results *res, cli_err *err)
{
    int64_t nq = d->test.n, k = o->k;
    res->n_exact = o->exact_limit >= 0 && o->exact_limit < nq ? o->exact_limit : nq;
    res->approx = (batch_run){o->search_k, 0, o->n_threads, NULL, 0.0};
    res->exact = (batch_run){0, 1, o->n_threads, NULL, 0.0};
    res->approx.ids = cli_alloc_array((size_t)nq, (size_t)k * sizeof(int64_t));
    res->exact.ids = cli_alloc_array((size_t)res->n_exact, (size_t)k * sizeof(int64_t));
    if (res->approx.ids == NULL || res->exact.ids == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    char line[128];
    snprintf(line, sizeof line, "answering %lld queries with copse", (long long)nq);
    say(o, line);
    int rc = timed_batch(ix, s, d->test.data, nq, k, &res->approx, err);
    if (rc != 0)
        return rc;
    snprintf(line, sizeof line, "answering %lld queries by exhaustive search",
             (long long)res->n_exact);
    say(o, line);
    rc = timed_batch(ix, s, d->test.data, res->n_exact, k, &res->exact, err);
    if (rc != 0)
        return rc;
    res->recall = recall_at_k(res->approx.ids, k, res->exact.ids, k, res->n_exact);
    if (d->train_labels.n > 0) {
        res->class_approx = class_agreement(d, res->approx.ids, nq, k);
        res->class_exact = class_agreement(d, res->exact.ids, res->n_exact, k);
    }
    return 0;
}

/* ---- report ------------------------------------------------------------------------------- */

static void print_report(const demo_opts *o, const demo_data *d, const demo_results *r)
{
    double qps_a = (double)d->test.n / r->approx.seconds;
    double qps_e = (double)r->n_exact / r->exact.seconds;
    char rk[32], qs[48], size[32], raw[32];
    int threads = o->n_threads > 0 ? o->n_threads : cli_cpu_count();
    snprintf(rk, sizeof rk, "recall@%lld", (long long)o->k);
    snprintf(qs, sizeof qs, "queries/s (%d thread%s)", threads, threads == 1 ? "" : "s");
    printf("\nFashion-MNIST: %lld images indexed, %lld queries (%lld also exhaustively), "
           "%d dimensions, euclidean\n\n",
           (long long)d->train.n, (long long)d->test.n, (long long)r->n_exact, d->train.dim);
    printf("%-24s %16s %16s\n", "", "copse", "exhaustive");
    printf("%-24s %16.4f %16.4f\n", rk, r->recall, 1.0);
    printf("%-24s %16.1f %16.1f\n", qs, qps_a, qps_e);
    printf("%-24s %15.1fx %15.1fx\n", "speed-up", qps_a / qps_e, 1.0);
    if (d->train_labels.n > 0)
        printf("%-24s %15.1f%% %15.1f%%\n", "same class as query", 100.0 * r->class_approx,
               100.0 * r->class_exact);
    printf("%-24s %14.2f s %16s\n", "build time", r->build_seconds, "none");
    char raw_note[48];
    snprintf(raw_note, sizeof raw_note, "%s (raw)",
             cli_human_bytes((uint64_t)d->train.n * (uint64_t)d->train.dim * 4, raw, sizeof raw));
    printf("%-24s %16s %16s\n", "index size", cli_human_bytes(r->index_bytes, size, sizeof size),
           raw_note);
    printf("\ncopse: %d trees, search_k %lld; exhaustive: every image compared, the raw float "
           "vectors in memory\n",
           o->n_trees, (long long)o->search_k);
}

/* ---- picture ------------------------------------------------------------------------------ */

/* The queries to draw: the first test image of each class in turn, or the first ones. */
static int pick_queries(const demo_data *d, int rows, int64_t *picked)
{
    if (d->test_labels.n == 0) {
        int n = 0;
        for (; n < rows && n < d->test.n; n++)
            picked[n] = n;
        return n;
    }
    int n = 0;
    for (int cls = 0; n < rows && cls < 256; cls++)
        for (int64_t q = 0; q < d->test.n; q++)
            if (d->test_labels.data[q] == (float)cls) {
                picked[n++] = q;
                break;
            }
    for (int64_t q = 0; n < rows && q < d->test.n; q++)
        if (d->test_labels.data[q] >= 256.0f)
            picked[n++] = q;
    return n;
}

static const uint8_t frame_query[3] = {60, 90, 200};
static const uint8_t frame_same[3] = {40, 170, 60};
static const uint8_t frame_other[3] = {210, 50, 40};
static const uint8_t frame_plain[3] = {200, 200, 200};

static void draw_row(tile_grid *g, int row, int64_t q, const demo_data *d,
                     const int64_t *ids, int64_t k)
{
    int labelled = d->train_labels.n > 0;
    grid_draw(g, row, 0, d->test.data + q * d->test.dim, frame_query);
    for (int64_t j = 0; j < k; j++) {
        int64_t id = ids[q * k + j];
        if (id < 0)
            continue;
        const uint8_t *frame = !labelled ? frame_plain
                               : d->train_labels.data[id] == d->test_labels.data[q]
                                   ? frame_same
                                   : frame_other;
        grid_draw(g, row, (int)j + 1, d->train.data + id * d->train.dim, frame);
    }
}

static int draw_picture(const demo_opts *o, const demo_data *d, const demo_results *r,
                        cli_err *err)
{
    if (o->rows == 0)
        return 0;
    if (!grid_can_write_png()) {
        printf("\nno picture: this copse was built without libpng\n");
        return 0;
    }
    if (d->train.dim != DEMO_SIDE * DEMO_SIDE)
        return cli_fail(err, EXIT_DATA, "%s: images of %d pixels are not 28x28", o->dir,
                        d->train.dim);
    int64_t picked[DEMO_MAX_ROWS];
    int rows = pick_queries(d, o->rows, picked);
    tile_grid g;
    int rc = grid_new(&g, rows, (int)o->k + 1, DEMO_SIDE, DEMO_SIDE, DEMO_SCALE, 0, err);
    for (int i = 0; rc == 0 && i < rows; i++)
        draw_row(&g, i, picked[i], d, r->approx.ids, o->k);
    if (rc == 0)
        rc = grid_write_png(&g, o->png, err);
    if (rc == 0)
        printf("\nqueries (blue) and their %lld nearest neighbours by copse: %s\n",
               (long long)o->k, o->png);
    grid_free(&g);
    return rc;
}

static int run_demo(const demo_opts *o, cli_err *err)
{
    demo_data d;
    memset(&d, 0, sizeof d);
    demo_results res;
    memset(&res, 0, sizeof res);
    copse_index *ix = NULL;
    copse_scratch *s = NULL;
    int rc = load_data(o, &d, err);
    if (rc == 0)
        rc = build_index(o, &d, &ix, &res, err);
    int st = rc == 0 ? copse_scratch_new(&s) : COPSE_OK;
    if (st != COPSE_OK)
        rc = cli_fail_status(err, st, NULL, "scratch");
    if (rc == 0)
        rc = run_queries(o, &d, ix, s, &res, err);
    if (rc == 0)
        print_report(o, &d, &res);
    if (rc == 0)
        rc = draw_picture(o, &d, &res, err);
    free(res.approx.ids);
    free(res.exact.ids);
    copse_scratch_free(s);
    copse_free(ix);
    free_data(&d);
    return rc;
}

int cmd_demo(int argc, char **argv)
{
    cli_err err = {0, ""};
    demo_opts o;
    int rc = parse_demo_args(argc, argv, &o, &err);
    if (rc == 0)
        rc = run_demo(&o, &err);
    return cli_finish("demo", rc, &err);
}
