/*
 * demo_words.c: `copse demo-words`, the "chinese river" demonstration behind
 * `make demo-words`, after the one that introduced Annoy: an index of word vectors answers
 * "chinese river" with the words of exhaustive search, hundreds of times faster, from a file
 * that a fresh process maps instantly; and a larger search effort gives exactly the
 * exhaustive answer, still many times faster.
 *
 * The index comes from `copse build -i vectors.bin -m angular` (scripts/demo-words.sh builds
 * it once from GloVe-derived vectors); this command only opens it, so the time it prints for
 * opening is that of a fresh process mapping the file. A query is formed as `copse query
 * --words` forms it (words.c). Each time printed is the median of repeated runs after one
 * untimed run, so the first touch of the mapped pages is not counted against either side;
 * the exhaustive side is copse_exact_vector, a brute-force scan of every vector with the same
 * SIMD kernels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "words.h"

#define MAX_QUERIES 32
#define MIN_RUNS 3
#define MAX_RUNS 1000
#define MIN_SECONDS 0.2   /* each timing repeats its query for at least this long */
#define EXHAUSTIVE (-2)   /* the search_k of search_once that means copse_exact_vector */

typedef struct demo_words_opts {
    const char *index;
    const char *queries[MAX_QUERIES];
    int n_queries;
    int64_t k;
    int64_t search_k;
    int64_t max_search_k;
    int knob;
} demo_words_opts;

/* The answer to one query: k results after the query words are dropped. */
typedef struct answer {
    int64_t *ids;
    int64_t n;
    double seconds;    /* median of the timed runs */
} answer;

typedef struct demo_ctx {
    const demo_words_opts *o;
    copse_index *ix;
    copse_scratch *s;
    int64_t *buf;      /* k + words results of one run */
    float *dists;
    answer knob;       /* the knob's answers */
} demo_ctx;

static const char *const default_queries[] = {"chinese river", "king queen", "paris france",
                                              "spotify"};

static const char demo_words_help[] =
    "usage: copse demo-words INDEX [options]\n"
    "\n"
    "The \"chinese river\" demonstration on an angular index of word vectors whose labels are\n"
    "the words (copse build -i vectors.bin -m angular -o INDEX). Opens INDEX (memory-mapped:\n"
    "the time printed is that of a fresh process), then for each query, the sum of its words'\n"
    "unit vectors with the words left out as in word2vec's distance tool, prints the k\n"
    "nearest words by copse beside the k by exhaustive search, the time of each (the median\n"
    "of repeated runs), the speed-up and how many of the k agree; then the accuracy knob: when\n"
    "copse's answer is not exactly the exhaustive one, the query again with a doubling search\n"
    "effort until it is.\n"
    "\n"
    "      --query \"W1 W2\" a query (repeatable; default: \"chinese river\", \"king queen\",\n"
    "                     \"paris france\", \"spotify\")\n"
    "  -k N               neighbours (default 10)\n"
    "      --search-k N   search effort of the comparisons (default -1: k times the trees)\n"
    "      --max-search-k N\n"
    "                     where the knob stops if no effort gives the exhaustive answer\n"
    "                     (default: the number of words)\n"
    "      --no-knob      only the comparisons\n";

enum { OPT_QUERY = 1, OPT_K, OPT_SEARCH_K, OPT_MAX_SEARCH_K, OPT_NO_KNOB };

static const cli_opt demo_words_options[] = {
    {"query", 0, 1, OPT_QUERY},
    {"k", 'k', 1, OPT_K},
    {"search-k", 0, 1, OPT_SEARCH_K},
    {"max-search-k", 0, 1, OPT_MAX_SEARCH_K},
    {"no-knob", 0, 0, OPT_NO_KNOB},
    {NULL, 0, 0, 0},
};

static int apply_option(void *ctx, int key, const char *v, cli_err *err)
{
    demo_words_opts *o = ctx;
    switch (key) {
    case OPT_QUERY:
        if (o->n_queries == MAX_QUERIES)
            return cli_fail(err, EXIT_USAGE, "--query: at most %d queries", MAX_QUERIES);
        o->queries[o->n_queries++] = v;
        return 0;
    case OPT_K:
        return cli_parse_i64(v, 1, 1000, "-k", &o->k, err);
    case OPT_SEARCH_K:
        return cli_parse_i64(v, -1, INT64_MAX / 2, "--search-k", &o->search_k, err);
    case OPT_MAX_SEARCH_K:
        return cli_parse_i64(v, 1, INT64_MAX / 2, "--max-search-k", &o->max_search_k, err);
    case OPT_NO_KNOB:
        o->knob = 0;
        return 0;
    default: /* CLI_POSITIONAL */
        return cli_take_argument(&o->index, v, err);
    }
}

static int parse_args(int argc, char **argv, demo_words_opts *o, cli_err *err)
{
    memset(o, 0, sizeof *o);
    o->k = 10;
    o->search_k = -1;
    o->knob = 1;
    const cli_command cmd = {demo_words_help, demo_words_options, apply_option, o, NULL};
    int rc = cli_parse(&cmd, argc, argv, err);
    if (rc != 0)
        return rc;
    if (o->index == NULL)
        return cli_fail(err, EXIT_USAGE, "no INDEX given (see copse demo-words --help)");
    if (o->n_queries == 0) {
        o->n_queries = (int)(sizeof default_queries / sizeof default_queries[0]);
        for (int i = 0; i < o->n_queries; i++)
            o->queries[i] = default_queries[i];
    }
    return 0;
}

/* ---- timing ----------------------------------------------------------------------------- */

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One search of w (search_k EXHAUSTIVE: by brute force) into c->buf; *n gets the count. */
static int search_once(demo_ctx *c, const word_query *w, int64_t search_k, int64_t *n,
                       cli_err *err)
{
    int64_t want = c->o->k + w->n;
    int st = search_k == EXHAUSTIVE
                 ? copse_exact_vector(c->ix, c->s, w->sum, want, c->buf, c->dists, n)
                 : copse_search_vector(c->ix, c->s, w->sum, want, search_k, c->buf, c->dists, n);
    return st == COPSE_OK ? 0 : cli_fail_scratch(err, st, c->s, "search");
}

/* Answers w once untimed, then times it until MIN_SECONDS have passed (at least MIN_RUNS,
 * at most MAX_RUNS runs) and keeps the median; a->ids gets the k results without the
 * query words. */
static int timed_answer(demo_ctx *c, const word_query *w, int64_t search_k, answer *a,
                        cli_err *err)
{
    double runs[MAX_RUNS];
    int64_t n = 0;
    int rc = search_once(c, w, search_k, &n, err);
    int count = 0;
    double start = cli_now();
    while (rc == 0 && count < MAX_RUNS &&
           (count < MIN_RUNS || cli_now() - start < MIN_SECONDS)) {
        double t0 = cli_now();
        rc = search_once(c, w, search_k, &n, err);
        runs[count++] = cli_now() - t0;
    }
    if (rc != 0)
        return rc;
    qsort(runs, (size_t)count, sizeof runs[0], compare_doubles);
    a->seconds = count % 2 ? runs[count / 2] : (runs[count / 2 - 1] + runs[count / 2]) / 2;
    a->n = words_drop(w, c->buf, NULL, n, c->o->k);
    memcpy(a->ids, c->buf, (size_t)a->n * sizeof *a->ids);
    return 0;
}

/* How many of a's ids are among b's. */
static int64_t agreement(const answer *a, const answer *b)
{
    int64_t same = 0;
    for (int64_t i = 0; i < a->n; i++)
        for (int64_t j = 0; j < b->n; j++)
            same += a->ids[i] == b->ids[j];
    return same;
}

/* The same words in the same order. */
static int identical(const answer *a, const answer *b)
{
    return a->n == b->n && memcmp(a->ids, b->ids, (size_t)a->n * sizeof *a->ids) == 0;
}

/* ---- report ----------------------------------------------------------------------------- */

static const char *word_of(const copse_index *ix, const answer *a, int64_t i)
{
    const char *label = NULL;
    size_t len = 0;
    if (i >= a->n || copse_get_label(ix, a->ids[i], &label, &len) != COPSE_OK || label == NULL)
        return "";
    return label;
}

static void print_ms(double seconds, char *buf, size_t size)
{
    if (seconds < 0.01)
        snprintf(buf, size, "%.3f ms", seconds * 1e3);
    else
        snprintf(buf, size, "%.1f ms", seconds * 1e3);
}

static void print_comparison(const demo_ctx *c, const char *query, const answer *approx,
                             const answer *exact)
{
    char ta[32], te[32];
    print_ms(approx->seconds, ta, sizeof ta);
    print_ms(exact->seconds, te, sizeof te);
    printf("\n\"%s\"\n", query);
    printf("  %4s  %-22s %s\n", "rank", "copse", "exhaustive");
    int64_t rows = approx->n > exact->n ? approx->n : exact->n;
    for (int64_t i = 0; i < rows; i++)
        printf("  %4lld  %-22s %s\n", (long long)(i + 1), word_of(c->ix, approx, i),
               word_of(c->ix, exact, i));
    printf("  copse %s, exhaustive %s: %.0fx faster; %lld of %lld agree\n", ta, te,
           exact->seconds / approx->seconds, (long long)agreement(approx, exact),
           (long long)exact->n);
}

/* The accuracy knob: when the comparison's answer was not exactly the exhaustive one, the
 * query again with its search effort doubled (from the comparison's, k counting the query
 * words too) until it is, or until the effort reaches max_search_k. */
static int run_knob(demo_ctx *c, const word_query *w, const answer *first, const answer *exact,
                    answer *a, cli_err *err)
{
    const demo_words_opts *o = c->o;
    int64_t effort = copse_search_effort(c->ix, o->k + w->n, o->search_k);
    int64_t limit = o->max_search_k > 0 ? o->max_search_k : copse_n_items(c->ix);
    if (identical(first, exact)) {
        printf("  the accuracy knob is not needed: search_k %lld already gives exactly the "
               "exhaustive answer\n",
               (long long)effort);
        return 0;
    }
    printf("  the accuracy knob: a larger search effort, until copse's %lld are exactly the "
           "exhaustive %lld\n",
           (long long)o->k, (long long)exact->n);
    printf("  %10s  %6s  %10s  %9s\n", "search_k", "agree", "time", "speed-up");
    while (effort < limit) {
        effort = effort < 1 ? 1 : effort > limit / 2 ? limit : effort * 2;
        int rc = timed_answer(c, w, effort, a, err);
        if (rc != 0)
            return rc;
        char t[32];
        print_ms(a->seconds, t, sizeof t);
        int same = identical(a, exact);
        printf("  %10lld  %3lld/%-2lld  %10s  %8.0fx%s\n", (long long)effort,
               (long long)agreement(a, exact), (long long)exact->n, t,
               exact->seconds / a->seconds, same ? "  exactly the exhaustive answer" : "");
        if (same)
            return 0;
    }
    printf("  (no search_k up to %lld gives exactly the exhaustive answer)\n", (long long)limit);
    return 0;
}

static void print_index(const demo_ctx *c, double open_seconds)
{
    char size[32], t[32];
    print_ms(open_seconds, t, sizeof t);
    printf("%s: %lld words, %d dimensions, %s, %d trees, graph degree %d, %s\n", c->o->index,
           (long long)copse_n_items(c->ix), copse_dim(c->ix),
           copse_metric_name(copse_get_metric(c->ix)), copse_n_trees(c->ix),
           copse_graph_degree(c->ix), cli_human_bytes(copse_file_size(c->ix), size, sizeof size));
    printf("opened in %s by this fresh process (memory-mapped: pages are read when a query "
           "first touches them)\n",
           t);
    printf("times: median of repeated runs, one thread; exhaustive = every word's vector "
           "compared\n");
}

/* ---- the demo ----------------------------------------------------------------------------- */

static int run_query(demo_ctx *c, int q, answer *approx, answer *exact, cli_err *err)
{
    const char *query = c->o->queries[q];
    word_query w;
    int rc = words_prepare(c->ix, c->o->index, query, &w, err);
    if (rc == 0)
        words_print_folds(&w, "demo-words", c->o->index, stdout);
    int64_t want = c->o->k + (rc == 0 ? w.n : 0);
    free(c->buf);
    free(c->dists);
    c->buf = cli_alloc_array((size_t)want, sizeof *c->buf);
    c->dists = cli_alloc_array((size_t)want, sizeof *c->dists);
    if (rc == 0 && (c->buf == NULL || c->dists == NULL))
        rc = cli_fail(err, EXIT_FAIL, "out of memory");
    if (rc == 0)
        rc = timed_answer(c, &w, c->o->search_k, approx, err);
    if (rc == 0)
        rc = timed_answer(c, &w, EXHAUSTIVE, exact, err);
    if (rc == 0)
        print_comparison(c, query, approx, exact);
    if (rc == 0 && c->o->knob)
        rc = run_knob(c, &w, approx, exact, &c->knob, err);
    words_free(&w);
    return rc;
}

static int run_demo(const demo_words_opts *o, cli_err *err)
{
    demo_ctx c = {o, NULL, NULL, NULL, NULL, {NULL, 0, 0.0}};
    answer approx = {NULL, 0, 0.0}, exact = {NULL, 0, 0.0};
    double t0 = cli_now();
    int st = copse_open(o->index, 0, &c.ix);
    double open_seconds = cli_now() - t0;
    int rc = st == COPSE_OK ? 0 : cli_fail_status(err, st, c.ix, o->index);
    if (rc == 0 && (st = copse_scratch_new(&c.s)) != COPSE_OK)
        rc = cli_fail_status(err, st, NULL, "scratch");
    approx.ids = cli_alloc_array((size_t)o->k, sizeof *approx.ids);
    exact.ids = cli_alloc_array((size_t)o->k, sizeof *exact.ids);
    c.knob.ids = cli_alloc_array((size_t)o->k, sizeof *c.knob.ids);
    if (rc == 0 && (approx.ids == NULL || exact.ids == NULL || c.knob.ids == NULL))
        rc = cli_fail(err, EXIT_FAIL, "out of memory");
    if (rc == 0)
        print_index(&c, open_seconds);
    for (int q = 0; rc == 0 && q < o->n_queries; q++)
        rc = run_query(&c, q, &approx, &exact, err);
    free(approx.ids);
    free(exact.ids);
    free(c.knob.ids);
    free(c.buf);
    free(c.dists);
    copse_scratch_free(c.s);
    copse_free(c.ix);
    return rc;
}

int cmd_demo_words(int argc, char **argv)
{
    cli_err err = {0, ""};
    demo_words_opts o;
    int rc = parse_args(argc, argv, &o, &err);
    if (rc == 0)
        rc = run_demo(&o, &err);
    return cli_finish("demo-words", rc, &err);
}
