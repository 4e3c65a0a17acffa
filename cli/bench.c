/*
 * bench.c: `copse bench`, recall@k and throughput of an index for a list of search_k values,
 * against a ground-truth file (ivecs, as the ANN benchmarks ship) or exact search.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "measure.h"
#include "readers/reader.h"

typedef struct bench_opts {
    const char *index;
    const char *queries;
    const char *truth;
    reader_options in;
    int exact;
    int64_t k;
    int64_t *search_k;    /* NULL: a default list from k and the tree count */
    int64_t n_search_k;
    int n_threads;
    int csv;
    int prefault;
} bench_opts;

static const char bench_help[] =
    "usage: copse bench INDEX -q QUERIES [--truth FILE | --exact] [options]\n"
    "\n"
    "Answers every query in QUERIES once per search_k value and prints recall@k and\n"
    "queries per second. The ground truth is the first k ids of each row of FILE (ivecs, or\n"
    "any input format holding whole numbers), or exact search when no FILE is given; the\n"
    "exact search is then timed and shown as the last row.\n"
    "\n"
    "  -q, --queries FILE query vectors (any input format)\n"
    "      --truth FILE   true neighbour ids, one row per query\n"
    "      --exact        ground truth by brute force (the default without --truth)\n"
    "  -k N               neighbours per query (default 10)\n"
    "      --search-k L   comma-separated search_k values (default: k times the number of\n"
    "                     trees, times 1, 2, 4, 8 and 16)\n"
    "  -j, --threads N    query threads (default 1, so queries/s is per core)\n"
    "      --csv          comma-separated output with a header line\n"
    "      --prefault     read the whole index into memory first\n";

enum {
    OPT_QUERIES = 1,
    OPT_TRUTH,
    OPT_EXACT,
    OPT_K,
    OPT_SEARCH_K,
    OPT_THREADS,
    OPT_CSV,
    OPT_PREFAULT
};

static const cli_opt bench_options[] = {
    {"queries", 'q', 1, OPT_QUERIES},
    {"truth", 0, 1, OPT_TRUTH},
    {"exact", 0, 0, OPT_EXACT},
    {"k", 'k', 1, OPT_K},
    {"search-k", 0, 1, OPT_SEARCH_K},
    {"threads", 'j', 1, OPT_THREADS},
    {"csv", 0, 0, OPT_CSV},
    {"prefault", 0, 0, OPT_PREFAULT},
    {NULL, 0, 0, 0},
};

static int apply_option(void *ctx, int key, const char *v, cli_err *err)
{
    bench_opts *o = ctx;
    switch (key) {
    case OPT_QUERIES:
        o->queries = v;
        return 0;
    case OPT_TRUTH:
        o->truth = v;
        return 0;
    case OPT_EXACT:
        o->exact = 1;
        return 0;
    case OPT_K:
        return cli_parse_i64(v, 1, 100000, "-k", &o->k, err);
    case OPT_SEARCH_K:
        free(o->search_k);
        o->search_k = NULL;
        return cli_parse_i64_list(v, -1, INT64_MAX, "--search-k", &o->search_k,
                                  &o->n_search_k, err);
    case OPT_THREADS:
        return cli_parse_int(v, 0, 4096, "--threads", &o->n_threads, err);
    case OPT_CSV:
        o->csv = 1;
        return 0;
    case OPT_PREFAULT:
        o->prefault = 1;
        return 0;
    default: /* CLI_POSITIONAL */
        return cli_take_argument(&o->index, v, err);
    }
}

static int parse_bench_args(int argc, char **argv, bench_opts *o, cli_err *err)
{
    const cli_command cmd = {bench_help, bench_options, apply_option, o, &o->in};
    int rc = cli_parse(&cmd, argc, argv, err);
    if (rc != 0)
        return rc;
    if (o->index == NULL || o->queries == NULL)
        return cli_fail(err, EXIT_USAGE, "INDEX and -q QUERIES are required (see copse bench "
                                         "--help)");
    if (o->truth != NULL && o->exact)
        return cli_fail(err, EXIT_USAGE, "give --truth or --exact, not both");
    return 0;
}

/* ---- ground truth ------------------------------------------------------------------------- */

typedef struct truth_table {
    int64_t *ids;
    int64_t k;        /* ids per row */
} truth_table;

static int read_truth_rows(cli_reader *r, int64_t nq, truth_table *t, cli_err *err)
{
    t->k = reader_dim(r);
    t->ids = cli_alloc_array((size_t)nq, (size_t)t->k * sizeof *t->ids);
    if (t->ids == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    for (int64_t i = 0; i < nq; i++) {
        int rc = reader_next_ints(r, t->ids + i * t->k, err);
        if (rc < 0)
            return err->code;
        if (rc == 0)
            return cli_fail(err, EXIT_DATA, "%s: %lld rows for %lld queries", reader_path(r),
                            (long long)i, (long long)nq);
    }
    return 0;
}

static int load_truth(const bench_opts *o, int64_t nq, truth_table *t, cli_err *err)
{
    reader_options in;
    reader_options_init(&in);
    cli_reader *r = NULL;
    int rc = reader_open(o->truth, &in, &r, err);
    if (rc == 0)
        rc = read_truth_rows(r, nq, t, err);
    reader_close(r);
    return rc;
}

/* ---- runs --------------------------------------------------------------------------------- */

typedef struct bench_ctx {
    const bench_opts *o;
    copse_index *ix;
    copse_scratch *scratch;
    cli_matrix queries;
    truth_table truth;
    batch_run exact_run;     /* seconds < 0 when the truth came from a file */
    int64_t *found;
} bench_ctx;

static void print_header(const bench_ctx *c)
{
    if (c->o->csv)
        printf("search_k,recall,queries_per_second,ms_per_query\n");
    else
        printf("%10s  %9s  %11s  %11s\n", "search_k", "recall@k", "queries/s", "ms/query");
}

static void print_row(const bench_ctx *c, const char *name, double recall, double seconds)
{
    double nq = (double)c->queries.n;
    double qps = seconds > 0 ? nq / seconds : 0.0;
    double ms = seconds * 1000.0 / nq;
    if (c->o->csv)
        printf("%s,%.4f,%.1f,%.4f\n", name, recall, qps, ms);
    else
        printf("%10s  %9.4f  %11.1f  %11.4f\n", name, recall, qps, ms);
}

static int exact_truth(bench_ctx *c, cli_err *err)
{
    int64_t nq = c->queries.n, k = c->o->k;
    c->truth.k = k;
    c->truth.ids = cli_alloc_array((size_t)nq, (size_t)k * sizeof(int64_t));
    if (c->truth.ids == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    c->exact_run.exact = 1;
    c->exact_run.n_threads = c->o->n_threads;
    c->exact_run.ids = c->truth.ids;
    return timed_batch(c->ix, c->scratch, c->queries.data, nq, k, &c->exact_run, err);
}

static int run_one(bench_ctx *c, int64_t search_k, cli_err *err)
{
    batch_run run = {search_k, 0, c->o->n_threads, c->found, 0.0};
    int rc = timed_batch(c->ix, c->scratch, c->queries.data, c->queries.n, c->o->k, &run, err);
    if (rc != 0)
        return rc;
    char name[32];
    snprintf(name, sizeof name, "%lld", (long long)search_k);
    print_row(c, name, recall_at_k(c->found, c->o->k, c->truth.ids, c->truth.k, c->queries.n),
              run.seconds);
    return 0;
}

static int run_all(bench_ctx *c, cli_err *err)
{
    const bench_opts *o = c->o;
    int64_t base = o->k * (int64_t)copse_n_trees(c->ix);
    int64_t defaults[] = {base, 2 * base, 4 * base, 8 * base, 16 * base};
    const int64_t *list = o->search_k != NULL ? o->search_k : defaults;
    int64_t n = o->search_k != NULL ? o->n_search_k : 5;
    c->found = cli_alloc_array((size_t)c->queries.n, (size_t)o->k * sizeof(int64_t));
    if (c->found == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    print_header(c);
    for (int64_t i = 0; i < n; i++) {
        int rc = run_one(c, list[i], err);
        if (rc != 0)
            return rc;
        fflush(stdout);
    }
    if (o->truth == NULL)
        print_row(c, "exact", 1.0, c->exact_run.seconds);
    return 0;
}

static int prepare(bench_ctx *c, cli_err *err)
{
    const bench_opts *o = c->o;
    int st = copse_open(o->index, o->prefault, &c->ix);
    if (st != COPSE_OK)
        return cli_fail_status(err, st, c->ix, o->index);
    if ((st = copse_scratch_new(&c->scratch)) != COPSE_OK)
        return cli_fail_status(err, st, NULL, "scratch");
    int rc = reader_load(o->queries, &o->in, -1, &c->queries, err);
    if (rc != 0)
        return rc;
    if (c->queries.dim != copse_dim(c->ix))
        return cli_fail(err, EXIT_DATA, "%s has dimension %d, the index %s has %d", o->queries,
                        c->queries.dim, o->index, copse_dim(c->ix));
    if (o->truth != NULL)
        return load_truth(o, c->queries.n, &c->truth, err);
    return exact_truth(c, err);
}

static int run_bench(const bench_opts *o, cli_err *err)
{
    bench_ctx c;
    memset(&c, 0, sizeof c);
    c.o = o;
    int rc = prepare(&c, err);
    if (rc == 0)
        rc = run_all(&c, err);
    free(c.found);
    free(c.truth.ids);
    matrix_free(&c.queries);
    copse_scratch_free(c.scratch);
    copse_free(c.ix);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    cli_err err = {0, ""};
    bench_opts o;
    memset(&o, 0, sizeof o);
    reader_options_init(&o.in);
    o.k = 10;
    o.n_threads = 1;
    int rc = parse_bench_args(argc, argv, &o, &err);
    if (rc == 0)
        rc = run_bench(&o, &err);
    free(o.search_k);
    return cli_finish("bench", rc, &err);
}
