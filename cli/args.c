/*
 * args.c: the option parser and number parsing shared by the subcommands.
 *
 * A small parser of our own instead of getopt_long: getopt keeps its cursor in globals
 * (optind, optarg), and the subcommands here each parse their own argv slice. Every
 * subcommand describes its command line as a cli_command and calls cli_parse once, which
 * also answers --help and applies the input options shared by the commands that read
 * vectors (readers/reader.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "readers/reader.h"

/* Where cli_parse is in argv. */
typedef struct cli_args {
    int argc;
    char **argv;
    int next;          /* index of the next argv element to look at */
    int only_positional;
} cli_args;

/* --help belongs to every subcommand; the parser answers it itself. */
#define KEY_HELP (-1)
static const cli_opt help_options[] = {
    {"help", 'h', 0, KEY_HELP},
    {NULL, 0, 0, 0},
};

/* The tables an option is looked up in: the command's own, the input options of a command
 * that reads vectors, --help. */
typedef struct opt_tables {
    const cli_opt *t[3];
    int n;
} opt_tables;

static const cli_opt *find_long(const opt_tables *ts, const char *name, size_t len)
{
    for (int i = 0; i < ts->n; i++)
        for (const cli_opt *o = ts->t[i]; o->name != NULL; o++)
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                return o;
    return NULL;
}

static const cli_opt *find_short(const opt_tables *ts, char c)
{
    for (int i = 0; i < ts->n; i++)
        for (const cli_opt *o = ts->t[i]; o->name != NULL; o++)
            if (o->short_name != 0 && o->short_name == c)
                return o;
    return NULL;
}

/* Takes the option's value from inline text (after '=' or the short letter) or from the
 * next argv element. */
static int take_value(cli_args *a, const cli_opt *o, const char *inline_value,
                      const char **value, cli_err *err)
{
    if (!o->takes_value) {
        if (inline_value != NULL)
            return cli_fail(err, EXIT_USAGE, "option --%s takes no value", o->name);
        *value = NULL;
        return 0;
    }
    if (inline_value != NULL) {
        *value = inline_value;
        return 0;
    }
    if (a->next >= a->argc)
        return cli_fail(err, EXIT_USAGE, "option --%s needs a value", o->name);
    *value = a->argv[a->next++];
    return 0;
}

static int parse_long(cli_args *a, const opt_tables *ts, const char *arg, const cli_opt **o,
                      const char **value, cli_err *err)
{
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    *o = find_long(ts, name, len);
    if (*o == NULL)
        return cli_fail(err, EXIT_USAGE, "unknown option '--%.*s' (see --help)", (int)len,
                        name);
    return take_value(a, *o, eq != NULL ? eq + 1 : NULL, value, err);
}

static int parse_short(cli_args *a, const opt_tables *ts, const char *arg, const cli_opt **o,
                       const char **value, cli_err *err)
{
    *o = find_short(ts, arg[1]);
    if (*o == NULL)
        return cli_fail(err, EXIT_USAGE, "unknown option '-%c' (see --help)", arg[1]);
    if (arg[2] != '\0' && !(*o)->takes_value)
        return cli_fail(err, EXIT_USAGE, "option -%c takes no value", arg[1]);
    return take_value(a, *o, arg[2] != '\0' ? arg + 2 : NULL, value, err);
}

/* Next option or positional argument: 1 with *o (NULL for a positional argument) and *value
 * (the option's value or the argument, NULL for a flag), 0 at the end, or an exit code. */
static int next_opt(cli_args *a, const opt_tables *ts, const cli_opt **o, const char **value,
                    cli_err *err)
{
    if (a->next >= a->argc)
        return 0;
    const char *arg = a->argv[a->next++];
    if (!a->only_positional && strcmp(arg, "--") == 0) {
        a->only_positional = 1;
        return next_opt(a, ts, o, value, err);
    }
    /* "-" alone is a positional argument (standard input); so is a negative number. */
    int is_option = !a->only_positional && arg[0] == '-' && arg[1] != '\0' &&
                    !(arg[1] >= '0' && arg[1] <= '9') && arg[1] != '.';
    if (!is_option) {
        *o = NULL;
        *value = arg;
        return 1;
    }
    int rc = arg[1] == '-' ? parse_long(a, ts, arg, o, value, err)
                           : parse_short(a, ts, arg, o, value, err);
    return rc == 0 ? 1 : rc;
}

static void print_help(const cli_command *cmd)
{
    fputs(cmd->help, stdout);
    if (cmd->input != NULL)
        reader_print_help(stdout);
    fputs("  -h, --help         this help\n", stdout);
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_err *err)
{
    opt_tables ts = {{cmd->opts, help_options, NULL}, 2};
    if (cmd->input != NULL)
        ts.t[ts.n++] = reader_cli_options;
    cli_args a = {argc, argv, 1, 0}; /* argv[0] is the subcommand's name */
    const cli_opt *o;
    const char *v;
    int rc;
    while ((rc = next_opt(&a, &ts, &o, &v, err)) == 1) {
        int key = o != NULL ? o->key : CLI_POSITIONAL;
        if (key == KEY_HELP) {
            print_help(cmd);
            return CLI_HELP_SHOWN;
        }
        rc = key >= READER_OPT_FIRST && cmd->input != NULL
                 ? reader_apply_option(cmd->input, key, v, err)
                 : cmd->apply(cmd->ctx, key, v, err);
        if (rc != 0)
            return rc;
    }
    return rc;
}

int cli_take_argument(const char **slot, const char *v, cli_err *err)
{
    if (*slot != NULL)
        return cli_fail(err, EXIT_USAGE, "unexpected argument '%s'", v);
    *slot = v;
    return 0;
}

/* ---- numbers ---------------------------------------------------------------------------- */

int cli_parse_i64(const char *s, int64_t lo, int64_t hi, const char *what, int64_t *out,
                  cli_err *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return cli_fail(err, EXIT_USAGE, "%s: '%s' is not an integer", what, s);
    if (v < lo || v > hi)
        return cli_fail(err, EXIT_USAGE, "%s: %lld is out of range %lld..%lld", what, v,
                        (long long)lo, (long long)hi);
    *out = (int64_t)v;
    return 0;
}

int cli_parse_int(const char *s, int lo, int hi, const char *what, int *out, cli_err *err)
{
    int64_t v;
    int rc = cli_parse_i64(s, lo, hi, what, &v, err);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

int cli_parse_u64(const char *s, const char *what, uint64_t *out, cli_err *err)
{
    char *end = NULL;
    errno = 0;
    if (s[0] == '-')
        return cli_fail(err, EXIT_USAGE, "%s: '%s' is negative", what, s);
    unsigned long long v = strtoull(s, &end, 0);
    if (end == s || *end != '\0' || errno == ERANGE)
        return cli_fail(err, EXIT_USAGE, "%s: '%s' is not an unsigned integer", what, s);
    *out = (uint64_t)v;
    return 0;
}

static int is_separator(char c)
{
    return c == ',' || c == ' ' || c == '\t';
}

int cli_parse_floats(const char *s, const char *what, float **out, int64_t *n, cli_err *err)
{
    size_t cap = 16, count = 0;
    float *v = malloc(cap * sizeof *v);
    if (v == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    const char *p = s;
    for (;;) {
        while (is_separator(*p))
            p++;
        if (*p == '\0')
            break;
        char *end = NULL;
        double d = strtod(p, &end);
        if (end == p || (*end != '\0' && !is_separator(*end))) {
            free(v);
            return cli_fail(err, EXIT_USAGE, "%s: component %zu is not a number", what, count);
        }
        if (count == cap) {
            float *grown = cli_alloc_array(cap * 2, sizeof *v);
            if (grown == NULL) {
                free(v);
                return cli_fail(err, EXIT_FAIL, "out of memory");
            }
            memcpy(grown, v, count * sizeof *v);
            free(v);
            v = grown;
            cap *= 2;
        }
        v[count++] = (float)d;
        p = end;
    }
    if (count == 0) {
        free(v);
        return cli_fail(err, EXIT_USAGE, "%s: no numbers given", what);
    }
    *out = v;
    *n = (int64_t)count;
    return 0;
}

int cli_parse_i64_list(const char *s, int64_t lo, int64_t hi, const char *what, int64_t **out,
                       int64_t *n, cli_err *err)
{
    size_t count = 1;
    for (const char *p = s; *p != '\0'; p++)
        count += *p == ',';
    int64_t *v = cli_alloc_array(count, sizeof *v);
    char *copy = cli_strdup(s);
    if (v == NULL || copy == NULL) {
        free(v);
        free(copy);
        return cli_fail(err, EXIT_FAIL, "out of memory");
    }
    size_t i = 0;
    char *item = copy;
    int rc = 0;
    while (rc == 0 && item != NULL) {
        char *comma = strchr(item, ',');
        if (comma != NULL)
            *comma = '\0';
        rc = cli_parse_i64(item, lo, hi, what, &v[i++], err);
        item = comma != NULL ? comma + 1 : NULL;
    }
    free(copy);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = (int64_t)count;
    return 0;
}
