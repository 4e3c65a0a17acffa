/*
 * reader.h: vectors from files, one record at a time, whatever the format.
 *
 * Every format reads through zlib's gzFile, which passes plain files through unchanged, so
 * any input may also be gzip-compressed (MNIST's IDX files usually are). Records stream: a
 * reader never holds more than one row, so `copse build --on-disk` can index files larger
 * than memory.
 *
 * Faults are reported with the file name and, where there is one, the line (text formats) or
 * the record (binary formats), both counted from 1.
 */
#ifndef COPSE_CLI_READER_H
#define COPSE_CLI_READER_H

#include <stdint.h>
#include <stdio.h>

#include "../cli.h"

typedef enum cli_format {
    CLI_FMT_AUTO = 0,
    CLI_FMT_FVECS,
    CLI_FMT_BVECS,
    CLI_FMT_IVECS,
    CLI_FMT_NPY,
    CLI_FMT_IDX,
    CLI_FMT_CSV,
    CLI_FMT_TSV,
    CLI_FMT_W2V_TEXT,
    CLI_FMT_W2V_BIN
} cli_format;

typedef struct reader_options {
    cli_format format;  /* CLI_FMT_AUTO: from the extension, else from the first bytes */
    int header;         /* CSV/TSV: -1 detect, 0 none, 1 the first line is a header */
    int ids;            /* CSV/TSV: -1 detect (a header whose first field is "id"), 0, 1 */
} reader_options;

typedef struct cli_reader cli_reader;

/* The input options of every subcommand that reads vectors; cli_parse looks them up after
 * the command's own and applies them with reader_apply_option. Keys from READER_OPT_FIRST
 * on, above every command's own. */
enum {
    READER_OPT_FIRST = 1000,
    READER_OPT_FORMAT = READER_OPT_FIRST,
    READER_OPT_HEADER,
    READER_OPT_NO_HEADER,
    READER_OPT_IDS,
    READER_OPT_NO_IDS
};
extern const cli_opt reader_cli_options[];

void reader_options_init(reader_options *o);
/* Applies one of the READER_OPT_* keys: 0, or EXIT_USAGE with err set for a bad value. */
int reader_apply_option(reader_options *o, int key, const char *value, cli_err *err);
/* The help lines of those options, with the format list from the table of formats. */
void reader_print_help(FILE *f);

/* "fvecs", "npy", "word2vec-bin", ... Returns 0 or EXIT_USAGE. */
int reader_format_from_name(const char *name, cli_format *out, cli_err *err);
const char *reader_format_name(cli_format format);
/* "fvecs, bvecs, ..., word2vec-bin": every format name, from the table, into buf. */
#define READER_FORMAT_LIST_SIZE 160
const char *reader_format_names(char buf[READER_FORMAT_LIST_SIZE]);

/* Opens path ("-" for standard input, which needs an explicit format) and reads its header,
 * so reader_dim() is known on success. */
int reader_open(const char *path, const reader_options *o, cli_reader **out, cli_err *err);
void reader_close(cli_reader *r);

const char *reader_path(const cli_reader *r);
int reader_dim(const cli_reader *r);
/* Records the file declares, or -1 when only its end tells. */
int64_t reader_count(const cli_reader *r);
/* Records returned so far. */
int64_t reader_records(const cli_reader *r);
/* Fraction of the file consumed, 0..1, or -1 when unknown (standard input). */
double reader_progress(const cli_reader *r);

/* Next row as floats (reader_dim() of them): returns 1, 0 at the end, or -1 with err set.
 * Rejects NaN, infinities and values beyond float's range, naming the record. */
int reader_next(cli_reader *r, float *row, cli_err *err);
/* Next row as integers, for ground-truth files: every value must be a whole number. */
int reader_next_ints(cli_reader *r, int64_t *row, cli_err *err);
/* Whether records carry ids (a CSV id column) or labels (word2vec words), and those of the
 * last record read; the label stays valid until the next read. */
int reader_has_ids(const cli_reader *r);
int64_t reader_id(const cli_reader *r);
int reader_has_labels(const cli_reader *r);
/* Whether records carry tags (a CSV/TSV column headed "tags"), and the last record's as a
 * mask (bit t for tag t). */
int reader_has_tags(const cli_reader *r);
uint64_t reader_tags(const cli_reader *r);
const char *reader_label(const cli_reader *r);
/* Records a fault at the last record read ("file.csv:7: ..." or "file.fvecs: record 3: ..."),
 * for callers that find a record's content unacceptable. Returns code. */
int reader_fail_here(const cli_reader *r, cli_err *err, int code, const char *fmt, ...)
    CLI_PRINTF(4, 5);

/* A whole file in memory: for query files and the demo. */
typedef struct cli_matrix {
    int dim;
    int64_t n;
    float *data;    /* n * dim floats, row-major */
    int64_t *ids;   /* NULL when the file has no ids */
    char **labels;  /* NULL when the file has no labels */
} cli_matrix;

/* Reads every record of path; at most limit records when limit >= 0. */
int reader_load(const char *path, const reader_options *o, int64_t limit, cli_matrix *m,
                cli_err *err);
void matrix_free(cli_matrix *m);

#endif /* COPSE_CLI_READER_H */
