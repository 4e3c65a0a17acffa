/*
 * change.c: `copse add`, `copse delete`, `copse tag` and `copse compact`: changes to an index
 * file.
 *
 * Each opens INDEX, makes its change through the library (copse_add_items, copse_delete_items,
 * copse_set_tags, copse_compact) and writes INDEX again with copse_save, which renames a complete temporary
 * file over it: a failure at any point leaves INDEX as it was, and processes that have it
 * mapped keep reading the old file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "readers/reader.h"

typedef struct change_opts {
    const char *cmd;
    const char *index;
    const char *input;
    const char *ids;
    const char *tags;
    reader_options in;
    int n_threads;
    int quiet;
} change_opts;

enum { OPT_INPUT = 1, OPT_IDS, OPT_TAGS, OPT_THREADS, OPT_QUIET };

static const cli_opt change_options[] = {
    {"input", 'i', 1, OPT_INPUT},
    {"ids", 0, 1, OPT_IDS},
    {"tags", 0, 1, OPT_TAGS},
    {"threads", 'j', 1, OPT_THREADS},
    {"quiet", 'q', 0, OPT_QUIET},
    {NULL, 0, 0, 0},
};

static const char add_help[] =
    "usage: copse add INDEX -i INPUT [--ids FILE] [options]\n"
    "\n"
    "Adds the vectors of INPUT to the index file INDEX without rebuilding it, and writes INDEX\n"
    "again (atomically). An id that is in the index already gets its new vector. Ids are, in\n"
    "this order: the lines of --ids FILE (one whole number a line, as many as INPUT has\n"
    "records), INPUT's own (a CSV id column), or consecutive numbers after the largest id.\n"
    "\n"
    "  -i, --input FILE   vectors to add\n"
    "      --ids FILE     their ids, one a line (\"-\" for standard input)\n"
    "  -j, --threads N    threads that link the new items into the graph (default 1)\n"
    "  -q, --quiet        no summary\n";

static const char delete_help[] =
    "usage: copse delete INDEX --ids FILE [options]\n"
    "\n"
    "Deletes the items whose ids FILE lists (one whole number a line; \"-\" for standard\n"
    "input) and writes INDEX again (atomically). Every id must be in the index: if one is not,\n"
    "nothing is deleted.\n"
    "\n"
    "      --ids FILE     the ids to delete\n"
    "  -q, --quiet        no summary\n";

static const char tag_help[] =
    "usage: copse tag INDEX --tags FILE [options]\n"
    "\n"
    "Gives items of INDEX new tags (0..63, for query --tags) and writes INDEX again\n"
    "(atomically). FILE (\"-\" for standard input) is as for copse build --tags: one item a\n"
    "line, its id then its tags (\"17 3 5\"); an id alone clears the item's tags; lines\n"
    "starting with '#' are skipped. Each listed item's tags are replaced, other items keep\n"
    "theirs. Every id must be in the index: if one is not (or a tag is out of range), INDEX\n"
    "is left as it was.\n"
    "\n"
    "      --tags FILE    the items and their tags\n"
    "  -q, --quiet        no summary\n";

static const char compact_help[] =
    "usage: copse compact INDEX [options]\n"
    "\n"
    "Rebuilds INDEX from its live items, folding in every item added and dropping every item\n"
    "deleted since it was built, and writes it again (atomically). Worth it once the changes\n"
    "reach about a quarter of the index (`copse info` counts them).\n"
    "\n"
    "  -j, --threads N    build threads (default 0: one per CPU)\n"
    "  -q, --quiet        no summary\n";

static int apply_option(void *ctx, int key, const char *v, cli_err *err)
{
    change_opts *o = ctx;
    switch (key) {
    case OPT_INPUT:
        o->input = v;
        return 0;
    case OPT_IDS:
        o->ids = v;
        return 0;
    case OPT_TAGS:
        o->tags = v;
        return 0;
    case OPT_THREADS:
        return cli_parse_int(v, 0, 4096, "--threads", &o->n_threads, err);
    case OPT_QUIET:
        o->quiet = 1;
        return 0;
    default: /* CLI_POSITIONAL */
        if (o->index)
            return cli_fail(err, EXIT_USAGE, "unexpected argument '%s' (one INDEX)", v);
        o->index = v;
        return 0;
    }
}

/* Whole numbers, one a line, from path ("-": standard input). */
static int read_ids(const char *path, int64_t **out, int64_t *n, cli_err *err)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f)
        return cli_fail(err, EXIT_IO, "%s: cannot open", path);
    int64_t cap = 1024, len = 0, line = 0;
    int64_t *ids = malloc((size_t)cap * sizeof *ids);
    char buf[128];
    int rc = ids ? 0 : cli_fail(err, EXIT_FAIL, "out of memory");
    while (rc == 0 && fgets(buf, sizeof buf, f)) {
        line++;
        size_t l = strcspn(buf, "\r\n");
        if (buf[l] == '\0' && !feof(f)) {
            rc = cli_fail(err, EXIT_DATA, "%s:%lld: line too long for an id", path, (long long)line);
            break;
        }
        buf[l] = '\0';
        if (l == 0)
            continue;
        char what[64];
        snprintf(what, sizeof what, "line %lld", (long long)line);
        int64_t id;
        if ((rc = cli_parse_i64(buf, 0, INT64_MAX, what, &id, err)) != 0) {
            err->code = EXIT_DATA;
            break;
        }
        if (len == cap) {
            int64_t *bigger = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
            if (!bigger) {
                rc = cli_fail(err, EXIT_FAIL, "out of memory");
                break;
            }
            ids = bigger;
        }
        ids[len++] = id;
    }
    if (rc == 0 && ferror(f))
        rc = cli_fail(err, EXIT_IO, "%s: read error", path);
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        free(ids);
        return rc;
    }
    *out = ids;
    *n = len;
    return 0;
}

/* Every record of the input, and the ids they get. */
static int read_input(const change_opts *o, const copse_index *ix, float **rows, int64_t **ids,
                      int64_t *n, cli_err *err)
{
    cli_reader *r = NULL;
    int rc = reader_open(o->input, &o->in, &r, err);
    if (rc != 0)
        return rc;
    int dim = reader_dim(r);
    if (dim != copse_dim(ix)) {
        reader_close(r);
        return cli_fail(err, EXIT_DATA, "%s: vectors of dimension %d, the index has %d", o->input,
                        dim, copse_dim(ix));
    }
    int64_t cap = 1024, len = 0;
    float *x = malloc((size_t)cap * dim * sizeof *x);
    int64_t *own = malloc((size_t)cap * sizeof *own);
    rc = x && own ? 0 : cli_fail(err, EXIT_FAIL, "out of memory");
    int got = 0;
    while (rc == 0 && (got = reader_next(r, x + len * dim, err)) == 1) {
        own[len] = reader_has_ids(r) ? reader_id(r) : copse_max_id(ix) + 1 + len;
        if (++len == cap) {
            float *bx = realloc(x, (size_t)(cap * 2) * dim * sizeof *x);
            int64_t *bi = realloc(own, (size_t)(cap * 2) * sizeof *own);
            x = bx ? bx : x;
            own = bi ? bi : own;
            if (!bx || !bi)
                rc = cli_fail(err, EXIT_FAIL, "out of memory");
            cap *= 2;
        }
    }
    reader_close(r);
    if (rc == 0 && got < 0)
        rc = err->code;
    if (rc == 0 && o->ids) {
        int64_t *listed = NULL, n_listed = 0;
        if ((rc = read_ids(o->ids, &listed, &n_listed, err)) == 0 && n_listed != len)
            rc = cli_fail(err, EXIT_DATA, "%s lists %lld ids for %lld vectors", o->ids,
                          (long long)n_listed, (long long)len);
        if (rc == 0) {
            free(own);
            own = listed;
        } else {
            free(listed);
        }
    }
    if (rc != 0) {
        free(x);
        free(own);
        return rc;
    }
    *rows = x;
    *ids = own;
    *n = len;
    return 0;
}

static int change(const change_opts *o, cli_err *err)
{
    copse_index *ix = NULL;
    int st = copse_open(o->index, 0, &ix), rc = 0;
    if (st != COPSE_OK)
        rc = cli_fail_status(err, st, ix, o->index);
    float *rows = NULL;
    int64_t *ids = NULL, n = 0;
    double t0 = cli_now();
    if (rc == 0 && !strcmp(o->cmd, "add")) {
        copse_set_change_threads(ix, o->n_threads ? o->n_threads : 1);
        if ((rc = read_input(o, ix, &rows, &ids, &n, err)) == 0 &&
            (st = copse_add_items(ix, n, ids, 0, rows)) != COPSE_OK)
            rc = cli_fail_status(err, st, ix, o->input);
    } else if (rc == 0 && !strcmp(o->cmd, "delete")) {
        if ((rc = read_ids(o->ids, &ids, &n, err)) == 0 &&
            (st = copse_delete_items(ix, n, ids)) != COPSE_OK)
            rc = cli_fail_status(err, st, ix, o->ids);
    } else if (rc == 0 && !strcmp(o->cmd, "tag")) {
        rc = cli_apply_tags_file(ix, o->tags, o->index, &n, err);
    } else if (rc == 0 && !strcmp(o->cmd, "compact") &&
               (st = copse_compact(ix, o->n_threads)) != COPSE_OK) {
        rc = cli_fail_status(err, st, ix, o->index);
    }
    double t1 = cli_now();
    if (rc == 0 && (st = copse_save(ix, o->index)) != COPSE_OK)
        rc = cli_fail_status(err, st, ix, o->index);
    if (rc == 0 && !o->quiet) {
        char size[32], what[48];
        if (!strcmp(o->cmd, "tag"))
            snprintf(what, sizeof what, "%lld item%s retagged", (long long)n, n == 1 ? "" : "s");
        else
            snprintf(what, sizeof what, "%s", !strcmp(o->cmd, "compact") ? "rebuilt" :
                     n == 1 ? "1 item" : "items");
        fprintf(stderr, "copse %s: %s in %.2f s; %s now holds %lld items (%lld added, %lld "
                "deleted since build), %s\n", o->cmd, what, t1 - t0, o->index, (long long)copse_n_items(ix), (long long)copse_n_added(ix),
                (long long)copse_n_deleted(ix), cli_human_bytes(copse_file_size(ix), size, sizeof size));
    }
    free(rows);
    free(ids);
    copse_free(ix);
    return rc;
}

static int run(const char *name, const char *help, int argc, char **argv)
{
    change_opts o;
    cli_err err = {EXIT_OK, ""};
    memset(&o, 0, sizeof o);
    o.cmd = name;
    reader_options_init(&o.in);
    int takes_input = !strcmp(name, "add");
    const cli_command cmd = {help, change_options, apply_option, &o, takes_input ? &o.in : NULL};
    int rc = cli_parse(&cmd, argc, argv, &err);
    if (rc == CLI_HELP_SHOWN)
        return EXIT_OK;
    if (rc == 0 && !o.index)
        rc = cli_fail(&err, EXIT_USAGE, "INDEX is required (see copse %s --help)", name);
    if (rc == 0 && takes_input && !o.input)
        rc = cli_fail(&err, EXIT_USAGE, "-i INPUT is required (see copse add --help)");
    if (rc == 0 && !strcmp(name, "delete") && !o.ids)
        rc = cli_fail(&err, EXIT_USAGE, "--ids FILE is required (see copse delete --help)");
    if (rc == 0 && !takes_input && o.input)
        rc = cli_fail(&err, EXIT_USAGE, "-i: copse %s reads no vectors", name);
    if (rc == 0 && !strcmp(name, "compact") && o.ids)
        rc = cli_fail(&err, EXIT_USAGE, "--ids: copse compact takes no ids");
    if (rc == 0 && !strcmp(name, "tag") && o.ids)
        rc = cli_fail(&err, EXIT_USAGE, "--ids: copse tag reads ids and tags from --tags FILE");
    if (rc == 0 && !strcmp(name, "tag") && !o.tags)
        rc = cli_fail(&err, EXIT_USAGE, "--tags FILE is required (see copse tag --help)");
    if (rc == 0 && strcmp(name, "tag") && o.tags)
        rc = cli_fail(&err, EXIT_USAGE, "--tags: copse %s takes no tags (see copse tag)", name);
    if (rc == 0)
        rc = change(&o, &err);
    return rc ? cli_report(name, &err) : EXIT_OK;
}

int cmd_add(int argc, char **argv) { return run("add", add_help, argc, argv); }
int cmd_delete(int argc, char **argv) { return run("delete", delete_help, argc, argv); }
int cmd_compact(int argc, char **argv) { return run("compact", compact_help, argc, argv); }
int cmd_tag(int argc, char **argv) { return run("tag", tag_help, argc, argv); }
