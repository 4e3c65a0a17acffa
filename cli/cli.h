/*
 * cli.h: what the subcommands of the `copse` command share: exit codes, the error record,
 * the option parser, number parsing, clocks and the mapping of library status codes.
 *
 * Errors travel as a cli_err filled in where the fault is found (which knows the file and the
 * line or record) and printed once by the subcommand's entry point, so nothing below prints.
 */
#ifndef COPSE_CLI_H
#define COPSE_CLI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- options ---------------------------------------------------------------------------- */

typedef struct cli_opt {
    const char *name;  /* long name without "--" */
    char short_name;   /* 0 when there is none */
    int takes_value;
    int key;           /* returned by cli_next_opt; must not be 0 */
} cli_opt;

typedef struct cli_args {
    int argc;
    char **argv;
    int next;          /* index of the next argv element to look at */
    int only_positional;
} cli_args;

#define CLI_POSITIONAL 0

void cli_args_init(cli_args *a, int argc, char **argv);
/* Next option or positional argument: returns 1 with *key (CLI_POSITIONAL for a positional
 * argument) and *value (the option's value or the argument, NULL for a flag), 0 at the end,
 * or -1 with err filled in (EXIT_USAGE). Accepts --name=value, --name value, -x value, -xvalue,
 * and "--" to end the options. Options and positional arguments may be mixed. */
int cli_next_opt(cli_args *a, const cli_opt *opts, int *key, const char **value, cli_err *err);

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

/* ---- misc ------------------------------------------------------------------------------- */

/* Seconds on a monotonic clock. */
double cli_now(void);
/* "12.3 MB", "512 B": writes into buf (at least 32 bytes) and returns it. */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t size);
/* malloc of n * size bytes with the product checked; NULL on overflow or failure. */
void *cli_alloc_array(size_t n, size_t size);
/* strdup without relying on POSIX. */
char *cli_strdup(const char *s);
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

#endif /* COPSE_CLI_H */
