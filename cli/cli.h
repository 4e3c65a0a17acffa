/*
 * cli.h: what the subcommands of the `copse` command share: exit codes, the error record,
 * the command-line parser, number parsing, clocks and the mapping of library status codes.
 *
 * Errors travel as a cli_err filled in where the fault is found (which knows the file and the
 * line or record) and printed once by the subcommand's entry point, so nothing below prints.
 */
#ifndef COPSE_CLI_H
#define COPSE_CLI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "copse.h"

/* Exit codes: documented in `copse --help` and copse(1). */
#define EXIT_OK 0
#define EXIT_FAIL 1     /* out of memory, a thread could not start, anything else */
#define EXIT_USAGE 2    /* bad command line */
#define EXIT_DATA 3     /* input readable but wrong: malformed row, NaN, dimension, unknown id */
#define EXIT_IO 4       /* a file cannot be opened, read or written, or is not a copse index */
#define EXIT_DAMAGED 5  /* an index file is damaged (failed verification or a structure check) */

typedef struct cli_err {
    int code;        /* one of the EXIT_* values; EXIT_OK when no error was recorded */
    char msg[1024];
} cli_err;

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* Records an error and returns its exit code, so callers can `return cli_fail(...)`. */
int cli_fail(cli_err *err, int code, const char *fmt, ...) CLI_PRINTF(3, 4);
/* Records a library failure on ix (NULL for none): the exit code follows the status, the
 * message is "<context>: <library detail or status text>". */
int cli_fail_status(cli_err *err, int status, const copse_index *ix, const char *context);
/* Same for a failure reported on a scratch handle. */
int cli_fail_scratch(cli_err *err, int status, const copse_scratch *s, const char *context);
/* Exit code for a library status. */
int cli_exit_code(int status);
/* Prints "copse CMD: MSG" on stderr and returns err->code. */
int cli_report(const char *cmd, const cli_err *err);
/* A subcommand's exit status from what it returned: EXIT_OK for 0 and CLI_HELP_SHOWN,
 * else the error, reported by cli_report. */
int cli_finish(const char *cmd, int rc, const cli_err *err);

/* ---- options ---------------------------------------------------------------------------- */

typedef struct cli_opt {
    const char *name;  /* long name without "--" */
    char short_name;   /* 0 when there is none */
    int takes_value;
    int key;           /* handed to the command's apply function: 1..999 */
} cli_opt;

typedef struct reader_options reader_options; /* readers/reader.h */

/* A subcommand's command line: cli_parse walks argv and hands each option and positional
 * argument to apply; it answers -h/--help itself, and for a command that reads vectors
 * (input != NULL) it applies the input options (-f/--format, --header, --ids, ...) to
 * *input and lists them in the help. */
typedef struct cli_command {
    const char *help;        /* usage, description and the command's own options */
    const cli_opt *opts;     /* the command's options, ending with {NULL, 0, 0, 0} */
    /* Applies one option (or, with key CLI_POSITIONAL, an argument): 0 or an exit code. */
    int (*apply)(void *ctx, int key, const char *value, cli_err *err);
    void *ctx;
    reader_options *input;   /* NULL when the command reads no vectors */
} cli_command;

#define CLI_POSITIONAL 0
#define CLI_HELP_SHOWN (-1)

/* Parses argv (argv[0] is the subcommand's name): returns 0, CLI_HELP_SHOWN after printing
 * the help on stdout, or an exit code with err set. Accepts --name=value, --name value,
 * -x value, -xvalue, and "--" to end the options; options and arguments may be mixed. */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_err *err);
/* For a command's one positional argument (INDEX, DIR): stores v in *slot, or fails with
 * EXIT_USAGE when *slot is already set. */
int cli_take_argument(const char **slot, const char *v, cli_err *err);

/* Number parsing: whole string, range-checked; err names what was being parsed. */
int cli_parse_i64(const char *s, int64_t lo, int64_t hi, const char *what, int64_t *out,
                  cli_err *err);
int cli_parse_int(const char *s, int lo, int hi, const char *what, int *out, cli_err *err);
int cli_parse_u64(const char *s, const char *what, uint64_t *out, cli_err *err);
/* Comma- or space-separated floats ("0.5, 1,2"). *out is malloc'ed; *n gets the count. */
int cli_parse_floats(const char *s, const char *what, float **out, int64_t *n, cli_err *err);
/* Comma-separated integers (search_k lists). *out is malloc'ed. */
int cli_parse_i64_list(const char *s, int64_t lo, int64_t hi, const char *what, int64_t **out,
                       int64_t *n, cli_err *err);

/* Tags (0..COPSE_MAX_TAG) separated by commas, semicolons, spaces or tabs ("3,5", "3;5",
 * "3 5"), ORed into *mask (bit t for tag t); "" gives none. 0, or -1 with *bad (may be
 * NULL) at the token that is not a tag. */
int cli_tag_mask(const char *s, uint64_t *mask, const char **bad);
/* A mask's tags into list (room for COPSE_MAX_TAG + 1): returns their count. */
int cli_tag_list(uint64_t mask, uint32_t *list);

/* Calls line(ctx, text, name, number, err) for each line of path ("-": standard input) that
 * holds more than blanks and does not start with '#', with its line ending removed; name is
 * what messages call the file. Stops at the first nonzero return, which it returns; EXIT_IO
 * when the file cannot be read. */
typedef int (*cli_line_fn)(void *ctx, char *text, const char *name, int64_t number,
                           cli_err *err);
int cli_each_line(const char *path, cli_line_fn line, void *ctx, cli_err *err);
/* The non-negative id that starts text: 0 with *id and *rest (what follows it), or -1. */
int cli_line_id(char *text, int64_t *id, char **rest);
/* Gives items the tags a tags file lists (build --tags, tag --tags): one item a line, its id
 * then its tags ("17 3 5"; an id alone clears them); items names where the ids come from in
 * messages. *lines (may be NULL) gets the lines applied. Stops at the first bad line:
 * EXIT_DATA for a malformed line, a tag beyond COPSE_MAX_TAG or an id not in the index. */
int cli_apply_tags_file(copse_index *ix, const char *path, const char *items, int64_t *lines,
                        cli_err *err);

/* ---- misc ------------------------------------------------------------------------------- */

/* Seconds on a monotonic clock. */
double cli_now(void);
/* "12.3 MB", "512 B": writes into buf (at least 32 bytes) and returns it. */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t size);
/* malloc of n * size bytes with the product checked; NULL on overflow or failure. */
void *cli_alloc_array(size_t n, size_t size);
/* strdup without relying on POSIX. */
char *cli_strdup(const char *s);
/* Prints text wrapped to width columns: the first line starts with lead, the others with
 * indent spaces (help texts whose lists come from tables). */
void cli_print_wrapped(FILE *f, const char *lead, int indent, const char *text, int width);
/* Whether stderr is a terminal (progress and status lines are drawn only then). */
int cli_stderr_tty(void);
/* Number of online CPUs, at least 1. */
int cli_cpu_count(void);

/* ---- subcommands ------------------------------------------------------------------------ */

int cmd_build(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_demo_words(int argc, char **argv);
int cmd_add(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_tag(int argc, char **argv);

#endif /* COPSE_CLI_H */
