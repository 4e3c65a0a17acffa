/*
 * build.c: `copse build`, vectors from a file into an index file.
 *
 * Nothing half-written: an in-memory build writes the index with copse_save, which renames a
 * complete temporary file into place; an --on-disk build streams into the library's temporary
 * file, which it renames on success and removes when the index is freed unfinished. So when
 * reading fails on record 9,000,000, the output path is as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "progress.h"
#include "readers/reader.h"

typedef struct build_opts {
    const char *input;
    const char *output;
    const char *tags;     /* --tags FILE */
    reader_options in;
    copse_metric metric;
    int have_metric;
    int n_trees;
    int n_threads;
    int leaf_size;
    int graph_degree;
    int have_graph;
    copse_storage storage;
    uint64_t seed;
    int have_seed;
    int on_disk;
    int quiet;
} build_opts;

static const char build_help[] =
    "usage: copse build -i INPUT -m METRIC -o INDEX [options]\n"
    "\n"
    "Reads vectors from INPUT and writes an index to INDEX (atomically: on any failure INDEX\n"
    "is left as it was). Item ids are the record numbers from 0, or the CSV id column; the\n"
    "words of word2vec files become item labels. Items get tags (0..63, for query --tags)\n"
    "from a CSV/TSV column headed \"tags\" (\"3;5\" or \"3 5\") or from --tags.\n"
    "\n"
    "  -i, --input FILE   vectors to index (\"-\" for standard input, with --format)\n"
    "  -m, --metric M     angular (or cosine), euclidean, manhattan, dot, hamming\n"
    "  -o, --output FILE  the index file to write\n"
    "      --tags FILE    item tags, one item a line: its id, then its tags (\"17 3 5\";\n"
    "                     blank lines and lines starting with # are skipped)\n"
    "  -t, --trees N      number of trees (default -1: one with the graph, as many as take\n"
    "                     half the vectors' space without it)\n"
    "  -j, --threads N    build threads (default 0: one per CPU)\n"
    "      --seed S       seed of the random splits (default: the library's fixed seed)\n"
    "      --leaf-size N  most items in one leaf, 2..65535 (default 0: from the dimension)\n"
    "      --graph N      neighbours listed per item in the neighbour graph, 0..255\n"
    "                     (default 32; for 200,000 items or more, 0.44 of the dimension,\n"
    "                     32..44, or with --storage f16 or i8 0.64 of it, 32..64; 0: the\n"
    "                     forest alone, as Annoy)\n"
    "      --storage S    how the vectors are stored: f32 (default, as read), f16 (IEEE half,\n"
    "                     half the bytes), i8 (8-bit codes per dimension, a quarter); the\n"
    "                     trees and graph are built from the full vectors either way\n"
    "      --on-disk      build in the output file instead of memory (data larger than RAM)\n"
    "  -q, --quiet        no progress bar and no summary\n";

enum {
    OPT_INPUT = 1,
    OPT_OUTPUT,
    OPT_METRIC,
    OPT_TREES,
    OPT_THREADS,
    OPT_SEED,
    OPT_LEAF,
    OPT_GRAPH,
    OPT_ON_DISK,
    OPT_QUIET,
    OPT_TAGS,
    OPT_STORAGE
};

static const cli_opt build_options[] = {
    {"input", 'i', 1, OPT_INPUT},
    {"output", 'o', 1, OPT_OUTPUT},
    {"metric", 'm', 1, OPT_METRIC},
    {"trees", 't', 1, OPT_TREES},
    {"threads", 'j', 1, OPT_THREADS},
    {"seed", 0, 1, OPT_SEED},
    {"leaf-size", 0, 1, OPT_LEAF},
    {"graph", 0, 1, OPT_GRAPH},
    {"on-disk", 0, 0, OPT_ON_DISK},
    {"quiet", 'q', 0, OPT_QUIET},
    {"tags", 0, 1, OPT_TAGS},
    {"storage", 0, 1, OPT_STORAGE},
    {NULL, 0, 0, 0},
};

static int apply_option(void *ctx, int key, const char *v, cli_err *err)
{
    build_opts *o = ctx;
    switch (key) {
    case OPT_INPUT:
        o->input = v;
        return 0;
    case OPT_OUTPUT:
        o->output = v;
        return 0;
    case OPT_METRIC:
        o->have_metric = 1;
        if (copse_metric_from_name(v, &o->metric) != COPSE_OK)
            return cli_fail(err, EXIT_USAGE, "unknown metric '%s' (angular, euclidean, "
                                             "manhattan, dot, hamming)",
                            v);
        return 0;
    case OPT_TREES:
        return cli_parse_int(v, -1, COPSE_MAX_TREES, "--trees", &o->n_trees, err);
    case OPT_THREADS:
        return cli_parse_int(v, 0, 4096, "--threads", &o->n_threads, err);
    case OPT_SEED:
        o->have_seed = 1;
        return cli_parse_u64(v, "--seed", &o->seed, err);
    case OPT_LEAF:
        return cli_parse_int(v, 0, 65535, "--leaf-size", &o->leaf_size, err);
    case OPT_GRAPH:
        o->have_graph = 1;
        return cli_parse_int(v, 0, 255, "--graph", &o->graph_degree, err);
    case OPT_ON_DISK:
        o->on_disk = 1;
        return 0;
    case OPT_QUIET:
        o->quiet = 1;
        return 0;
    case OPT_TAGS:
        o->tags = v;
        return 0;
    case OPT_STORAGE:
        if (copse_storage_from_name(v, &o->storage) != COPSE_OK)
            return cli_fail(err, EXIT_USAGE, "--storage: unknown storage '%s' (f32, f16, i8)", v);
        return 0;
    default: /* CLI_POSITIONAL */
        return cli_fail(err, EXIT_USAGE, "unexpected argument '%s' (the input is given with "
                                         "-i)",
                        v);
    }
}

/* Returns 0, an exit code, or CLI_HELP_SHOWN. */
static int parse_build_args(int argc, char **argv, build_opts *o, cli_err *err)
{
    memset(o, 0, sizeof *o);
    reader_options_init(&o->in);
    o->n_trees = -1;
    const cli_command cmd = {build_help, build_options, apply_option, o, &o->in};
    int rc = cli_parse(&cmd, argc, argv, err);
    if (rc != 0)
        return rc;
    if (o->input == NULL || o->output == NULL || !o->have_metric)
        return cli_fail(err, EXIT_USAGE, "-i INPUT, -m METRIC and -o INDEX are required "
                                         "(see copse build --help)");
    if (o->n_trees == 0)
        return cli_fail(err, EXIT_USAGE, "--trees: 0 trees; give a count or -1 for automatic");
    return 0;
}

static int configure_index(const build_opts *o, int dim, copse_index **out, cli_err *err)
{
    int st = copse_new(dim, o->metric, out);
    if (st != COPSE_OK)
        return cli_fail_status(err, st, *out, o->input);
    if (o->have_seed && (st = copse_set_seed(*out, o->seed)) != COPSE_OK)
        return cli_fail_status(err, st, *out, "--seed");
    if (o->leaf_size != 0 && (st = copse_set_leaf_size(*out, o->leaf_size)) != COPSE_OK)
        return cli_fail_status(err, st, *out, "--leaf-size");
    if (o->have_graph && (st = copse_set_graph_degree(*out, o->graph_degree)) != COPSE_OK)
        return cli_fail_status(err, st, *out, "--graph");
    if ((st = copse_set_storage(*out, o->storage)) != COPSE_OK)
        return cli_fail_status(err, st, *out, "--storage");
    if (o->on_disk && (st = copse_on_disk_build(*out, o->output)) != COPSE_OK)
        return cli_fail_status(err, st, *out, o->output);
    return 0;
}

static int add_record(copse_index *ix, cli_reader *r, const float *row, cli_err *err)
{
    int64_t id = reader_has_ids(r) ? reader_id(r) : reader_records(r) - 1;
    int st = copse_add_item(ix, id, row);
    if (st == COPSE_OK && reader_has_labels(r))
        st = copse_set_label(ix, id, reader_label(r));
    if (st == COPSE_OK && reader_has_tags(r)) {
        uint32_t tags[COPSE_MAX_TAG + 1];
        st = copse_set_tags(ix, id, tags, cli_tag_list(reader_tags(r), tags));
    }
    if (st != COPSE_OK)
        return reader_fail_here(r, err, cli_exit_code(st), "%s", copse_errmsg(ix));
    return 0;
}

static int add_all(copse_index *ix, cli_reader *r, const build_opts *o, cli_err *err)
{
    float *row = cli_alloc_array((size_t)reader_dim(r), sizeof *row);
    if (row == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    cli_progress bar;
    progress_start(&bar, "reading", "vectors", !o->quiet);
    int rc;
    while ((rc = reader_next(r, row, err)) == 1) {
        if (add_record(ix, r, row, err) != 0)
            break;
        progress_update(&bar, reader_progress(r), reader_records(r));
    }
    progress_end(&bar);
    free(row);
    if (rc < 0 || err->code != EXIT_OK)
        return err->code;
    if (reader_records(r) == 0)
        return cli_fail(err, EXIT_DATA, "%s: no vectors in the file", o->input);
    return 0;
}

/* Tells a terminal user what the silent build phase is doing. */
static void announce(const build_opts *o, const char *what)
{
    if (!o->quiet && cli_stderr_tty())
        fprintf(stderr, "%s...", what);
}

static void announce_done(const build_opts *o)
{
    if (!o->quiet && cli_stderr_tty())
        fputs("\r\033[K", stderr);
}

/* The library reports build progress from its threads, one call at a time. */
static void on_build_progress(void *ctx, double fraction)
{
    progress_update(ctx, fraction, -1);
}

static int build_and_save(copse_index *ix, const build_opts *o, cli_err *err)
{
    cli_progress bar;
    progress_start(&bar, "building", NULL, !o->quiet);
    copse_set_progress(ix, on_build_progress, &bar);
    int st = copse_build(ix, o->n_trees, o->n_threads);
    copse_set_progress(ix, NULL, NULL);
    progress_end(&bar);
    if (st != COPSE_OK)
        return cli_fail_status(err, st, ix, "build");
    if (o->on_disk)
        return 0;
    announce(o, "saving");
    st = copse_save(ix, o->output);
    announce_done(o);
    if (st != COPSE_OK)
        return cli_fail_status(err, st, ix, o->output);
    return 0;
}

static void print_summary(const copse_index *ix, const build_opts *o, double t_read,
                          double t_build)
{
    char size[32];
    printf("%s: %lld items, dimension %d, %s, %d trees, %s; read in %.2f s, built in %.2f s\n",
           o->output, (long long)copse_n_items(ix), copse_dim(ix),
           copse_metric_name(copse_get_metric(ix)), copse_n_trees(ix),
           cli_human_bytes(copse_file_size(ix), size, sizeof size), t_read, t_build);
}

static int run_build(const build_opts *o, cli_err *err)
{
    cli_reader *r = NULL;
    copse_index *ix = NULL;
    int rc = reader_open(o->input, &o->in, &r, err);
    if (rc == 0)
        rc = configure_index(o, reader_dim(r), &ix, err);
    double t0 = cli_now();
    if (rc == 0)
        rc = add_all(ix, r, o, err);
    reader_close(r);
    if (rc == 0 && o->tags != NULL) /* replaces the input's tags */
        rc = cli_apply_tags_file(ix, o->tags, o->input, NULL, err);
    double t1 = cli_now();
    if (rc == 0)
        rc = build_and_save(ix, o, err);
    if (rc == 0 && !o->quiet)
        print_summary(ix, o, t1 - t0, cli_now() - t1);
    copse_free(ix);
    return rc;
}

int cmd_build(int argc, char **argv)
{
    cli_err err = {0, ""};
    build_opts o;
    int rc = parse_build_args(argc, argv, &o, &err);
    if (rc == 0)
        rc = run_build(&o, &err);
    return cli_finish("build", rc, &err);
}
