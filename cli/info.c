/*
 * info.c: `copse info`, what an index file holds, read from its header (the file is mapped,
 * not read: info on a 100 GB index is instant).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "output.h"

static const char info_help[] =
    "usage: copse info INDEX [--json]\n"
    "\n"
    "Prints the index's format version, metric, dimension, live items, items added and\n"
    "deleted since build, trees, nodes, leaf size, graph degree, storage of the vectors, seed,\n"
    "file size and sections\n"
    "(offset, length, CRC32C), as aligned text or as one JSON object.\n"
    "\n"
    "      --json         one JSON object\n";

enum { OPT_JSON = 1 };

static const cli_opt info_options[] = {
    {"json", 0, 0, OPT_JSON},
    {NULL, 0, 0, 0},
};

typedef struct info_opts {
    const char *path;
    int json;
} info_opts;

typedef struct index_facts {
    int major, minor;
    int64_t n_split, n_leaves;
} index_facts;

static void print_text(const char *path, const copse_index *ix, const index_facts *f)
{
    char size[32];
    printf("file            %s\n", path);
    printf("format version  %d.%d\n", f->major, f->minor);
    printf("metric          %s\n", copse_metric_name(copse_get_metric(ix)));
    printf("dimension       %d\n", copse_dim(ix));
    printf("items           %lld live\n", (long long)copse_n_items(ix));
    printf("changes         %lld added, %lld deleted since build%s\n", (long long)copse_n_added(ix),
           (long long)copse_n_deleted(ix),
           copse_n_added(ix) + copse_n_deleted(ix) ? " (copse compact folds them in)" : "");
    printf("largest id      %lld\n", (long long)copse_max_id(ix));
    printf("labels          %s\n", copse_has_labels(ix) ? "yes" : "no");
    printf("trees           %d\n", copse_n_trees(ix));
    printf("split nodes     %lld\n", (long long)f->n_split);
    printf("leaves          %lld\n", (long long)f->n_leaves);
    printf("leaf size       %d\n", copse_leaf_size(ix));
    printf("graph degree    %d%s\n", copse_graph_degree(ix),
           copse_graph_degree(ix) == 0 ? " (no graph: the forest alone)" : "");
    printf("storage         %s%s\n", copse_storage_name(copse_get_storage(ix)),
           copse_get_storage(ix) == COPSE_STORAGE_F32 ? "" : " (quantized vectors)");
    printf("seed            %llu\n", (unsigned long long)copse_seed(ix));
    printf("file size       %llu bytes (%s)\n", (unsigned long long)copse_file_size(ix),
           cli_human_bytes(copse_file_size(ix), size, sizeof size));
    printf("sections        %d\n", copse_n_sections(ix));
    for (int i = 0; i < copse_n_sections(ix); i++) {
        const char *name;
        uint64_t off, len;
        uint32_t crc;
        copse_section_info(ix, i, &name, &off, &len, &crc);
        printf("  %-14s at %12llu  %14llu bytes  crc32c %08x\n", name, (unsigned long long)off,
               (unsigned long long)len, crc);
    }
}

static void print_json(const char *path, const copse_index *ix, const index_facts *f)
{
    fputs("{\"file\": ", stdout);
    out_json_string(stdout, path);
    printf(", \"format_version\": \"%d.%d\", \"metric\": \"%s\", \"dimension\": %d, "
           "\"items\": %lld, \"added\": %lld, \"deleted\": %lld, \"largest_id\": %lld, "
           "\"labels\": %s, \"trees\": %d, "
           "\"split_nodes\": %lld, \"leaves\": %lld, \"leaf_size\": %d, \"graph_degree\": %d, "
           "\"storage\": \"%s\", \"seed\": %llu, "
           "\"file_size\": %llu",
           f->major, f->minor, copse_metric_name(copse_get_metric(ix)), copse_dim(ix),
           (long long)copse_n_items(ix), (long long)copse_n_added(ix),
           (long long)copse_n_deleted(ix), (long long)copse_max_id(ix),
           copse_has_labels(ix) ? "true" : "false", copse_n_trees(ix), (long long)f->n_split,
           (long long)f->n_leaves, copse_leaf_size(ix), copse_graph_degree(ix),
           copse_storage_name(copse_get_storage(ix)), (unsigned long long)copse_seed(ix),
           (unsigned long long)copse_file_size(ix));
    fputs(", \"sections\": [", stdout);
    for (int i = 0; i < copse_n_sections(ix); i++) {
        const char *name;
        uint64_t off, len;
        uint32_t crc;
        copse_section_info(ix, i, &name, &off, &len, &crc);
        printf("%s{\"name\": \"%s\", \"offset\": %llu, \"length\": %llu, \"crc32c\": \"%08x\"}",
               i ? ", " : "", name, (unsigned long long)off, (unsigned long long)len, crc);
    }
    fputs("]}\n", stdout);
}

static int run_info(const char *path, int json, cli_err *err)
{
    copse_index *ix = NULL;
    int st = copse_open(path, 0, &ix);
    if (st != COPSE_OK) {
        cli_fail_status(err, st, ix, path);
        copse_free(ix);
        return err->code;
    }
    index_facts f;
    copse_file_version(ix, &f.major, &f.minor);
    copse_n_nodes(ix, &f.n_split, &f.n_leaves);
    if (json)
        print_json(path, ix, &f);
    else
        print_text(path, ix, &f);
    copse_free(ix);
    return 0;
}

static int apply_option(void *ctx, int key, const char *v, cli_err *err)
{
    info_opts *o = ctx;
    if (key != OPT_JSON)
        return cli_take_argument(&o->path, v, err);
    o->json = 1;
    return 0;
}

int cmd_info(int argc, char **argv)
{
    cli_err err = {0, ""};
    info_opts o = {NULL, 0};
    const cli_command cmd = {info_help, info_options, apply_option, &o, NULL};
    int rc = cli_parse(&cmd, argc, argv, &err);
    if (rc == 0 && o.path == NULL)
        rc = cli_fail(&err, EXIT_USAGE, "no INDEX given (see copse info --help)");
    if (rc == 0)
        rc = run_info(o.path, o.json, &err);
    return cli_finish("info", rc, &err);
}
