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
    "Prints the index's format version, metric, dimension, items, trees, nodes, leaf size,\n"
    "seed, file size and sections (offset, length, CRC32C), as aligned text or as one JSON\n"
    "object.\n"
    "\n"
    "      --json         one JSON object\n"
    "  -h, --help         this help\n";

enum { OPT_JSON = 1, OPT_HELP };

static const cli_opt info_options[] = {
    {"json", 0, 0, OPT_JSON},
    {"help", 'h', 0, OPT_HELP},
    {NULL, 0, 0, 0},
};

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
    printf("items           %lld\n", (long long)copse_n_items(ix));
    printf("largest id      %lld\n", (long long)copse_max_id(ix));
    printf("labels          %s\n", copse_has_labels(ix) ? "yes" : "no");
    printf("trees           %d\n", copse_n_trees(ix));
    printf("split nodes     %lld\n", (long long)f->n_split);
    printf("leaves          %lld\n", (long long)f->n_leaves);
    printf("leaf size       %d\n", copse_leaf_size(ix));
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
           "\"items\": %lld, \"largest_id\": %lld, \"labels\": %s, \"trees\": %d, "
           "\"split_nodes\": %lld, \"leaves\": %lld, \"leaf_size\": %d, \"seed\": %llu, "
           "\"file_size\": %llu",
           f->major, f->minor, copse_metric_name(copse_get_metric(ix)), copse_dim(ix),
           (long long)copse_n_items(ix), (long long)copse_max_id(ix),
           copse_has_labels(ix) ? "true" : "false", copse_n_trees(ix), (long long)f->n_split,
           (long long)f->n_leaves, copse_leaf_size(ix), (unsigned long long)copse_seed(ix),
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

/* Returns 0, an exit code, or -1 after printing help. */
static int parse_info_args(int argc, char **argv, const char **path, int *json, cli_err *err)
{
    cli_args a;
    cli_args_init(&a, argc, argv);
    const char *v;
    int key, rc;
    while ((rc = cli_next_opt(&a, info_options, &key, &v, err)) == 1) {
        if (key == OPT_HELP) {
            fputs(info_help, stdout);
            return -1;
        }
        if (key == OPT_JSON)
            *json = 1;
        else if (*path == NULL)
            *path = v;
        else
            return cli_fail(err, EXIT_USAGE, "unexpected argument '%s'", v);
    }
    if (rc < 0)
        return err->code;
    if (*path == NULL)
        return cli_fail(err, EXIT_USAGE, "no INDEX given (see copse info --help)");
    return 0;
}

int cmd_info(int argc, char **argv)
{
    cli_err err = {0, ""};
    const char *path = NULL;
    int json = 0;
    int rc = parse_info_args(argc, argv, &path, &json, &err);
    if (rc == -1)
        return EXIT_OK;
    if (rc == 0)
        rc = run_info(path, json, &err);
    return rc == 0 ? EXIT_OK : cli_report("info", &err);
}
