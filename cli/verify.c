/*
 * verify.c: `copse verify`, the full check of one or more index files: every checksum, every
 * node and leaf reference, every tree walked once. The exit status is the answer, so scripts
 * can run `copse verify x.copse && deploy x.copse`.
 */
#include <stdio.h>

#include "cli.h"

static const char verify_help[] =
    "usage: copse verify INDEX...\n"
    "\n"
    "Checks every section checksum and every tree of each INDEX and prints \"INDEX: ok\" or\n"
    "what is wrong. Exit status 0 when all hold, 5 when one is damaged, 4 when one cannot be\n"
    "read or is not a copse index.\n"
    "\n"
    "  -q, --quiet        print nothing; only the exit status tells\n";

enum { OPT_QUIET = 1 };

static const cli_opt verify_options[] = {
    {"quiet", 'q', 0, OPT_QUIET},
    {NULL, 0, 0, 0},
};

typedef struct verify_opts {
    char **paths; /* the positional arguments, compacted into argv */
    int n;
    int quiet;
} verify_opts;

/* Checks one file: 0 when it holds, else an exit code with err set. */
static int verify_one(const char *path, cli_err *err)
{
    copse_index *ix = NULL;
    int st = copse_open(path, 0, &ix);
    if (st == COPSE_OK)
        st = copse_verify(ix);
    int rc = st == COPSE_OK ? 0 : cli_fail_status(err, st, ix, path);
    copse_free(ix);
    return rc;
}

/* Worst of two exit codes: damage outranks unreadable files, which outrank the rest. */
static int worse(int a, int b)
{
    if (a == EXIT_DAMAGED || b == EXIT_DAMAGED)
        return EXIT_DAMAGED;
    return a > b ? a : b;
}

static int verify_all(char **paths, int n, int quiet)
{
    int status = EXIT_OK;
    for (int i = 0; i < n; i++) {
        cli_err err = {0, ""};
        int rc = verify_one(paths[i], &err);
        if (rc == 0 && !quiet)
            printf("%s: ok\n", paths[i]);
        else if (rc != 0 && !quiet)
            cli_report("verify", &err);
        status = worse(status, rc);
    }
    return status;
}

static int apply_option(void *ctx, int key, const char *v, cli_err *err)
{
    (void)err;
    verify_opts *o = ctx;
    if (key == OPT_QUIET)
        o->quiet = 1;
    else
        o->paths[o->n++] = (char *)v; /* argv compacted in place: n never overtakes the parser */
    return 0;
}

int cmd_verify(int argc, char **argv)
{
    cli_err err = {0, ""};
    verify_opts o = {argv + 1, 0, 0};
    const cli_command cmd = {verify_help, verify_options, apply_option, &o, NULL};
    int rc = cli_parse(&cmd, argc, argv, &err);
    if (rc == 0 && o.n == 0)
        rc = cli_fail(&err, EXIT_USAGE, "no INDEX given (see copse verify --help)");
    return rc == 0 ? verify_all(o.paths, o.n, o.quiet) : cli_finish("verify", rc, &err);
}
