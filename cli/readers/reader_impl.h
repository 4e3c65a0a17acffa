/*
 * reader_impl.h: what the format modules share inside readers/. Each format supplies an open
 * function that reads its header and sets dim, count and ops; rows come back as doubles,
 * which hold every value of every supported element type exactly, and reader.c converts them.
 */
#ifndef COPSE_CLI_READER_IMPL_H
#define COPSE_CLI_READER_IMPL_H

#include <stddef.h>
#include <zlib.h>

#include "reader.h"

typedef struct reader_ops {
    /* 1 row read into row (dim doubles), 0 at the end of the data, -1 with err set. */
    int (*next)(cli_reader *r, double *row, cli_err *err);
} reader_ops;

/* Element types of binary formats. */
typedef enum elem_type {
    ELEM_U8,
    ELEM_I8,
    ELEM_I16,
    ELEM_I32,
    ELEM_F32,
    ELEM_F64
} elem_type;

struct cli_reader {
    const reader_ops *ops;
    gzFile gz;
    char *path;
    cli_format format;
    int dim;
    int64_t count;
    int64_t record;        /* records returned so far */
    int64_t line;          /* text formats: number of the line in buf */
    uint64_t file_size;    /* 0 when unknown */
    double *row;           /* dim doubles handed to ops->next */

    int has_ids;
    int64_t id;
    int has_tags;          /* CSV/TSV: a header column named "tags" */
    int tags_col;
    uint64_t tags;         /* the last record's tags */
    int has_labels;
    char *label;
    size_t label_cap;

    char *buf;             /* text formats: the current line, NUL-terminated */
    size_t buf_cap;
    int pending;           /* opening already consumed the start of the first record */

    unsigned char *raw;    /* binary formats: one record's bytes */
    size_t raw_cap;
    elem_type elem;
    int big_endian;

    char delim;            /* CSV/TSV: ',' or '\t'; word2vec text: ' ' */
    int fields;            /* CSV/TSV: fields per row */
    char **cols;           /* CSV/TSV: the current line's fields, pointing into buf */
    size_t cols_cap;
};

/* Location-prefixed faults: "path: msg", "path:LINE: msg" (text) or "path: record N: msg". */
int reader_fail(const cli_reader *r, cli_err *err, int code, const char *fmt, ...)
    CLI_PRINTF(4, 5);
int reader_fail_line(const cli_reader *r, cli_err *err, int code, const char *fmt, ...)
    CLI_PRINTF(4, 5);
int reader_fail_record(const cli_reader *r, int64_t record, cli_err *err, int code,
                       const char *fmt, ...) CLI_PRINTF(5, 6);

/* Reads exactly n bytes: 1, 0 when the data ends before the first byte, -1 with err set
 * (a short read is reported as the record being truncated; what names the part). */
int reader_read_exact(cli_reader *r, void *dst, size_t n, const char *what, cli_err *err);
/* Ensures r->raw holds at least n bytes. */
int reader_reserve_raw(cli_reader *r, size_t n, cli_err *err);
/* Checks that nothing follows the declared data. */
int reader_expect_end(cli_reader *r, cli_err *err);
/* Next line into r->buf without its line ending: 1, 0 at the end, -1 with err set. */
int reader_getline(cli_reader *r, cli_err *err);
/* Stores a label for the current record. */
int reader_set_label(cli_reader *r, const char *s, size_t len, cli_err *err);
/* Decodes n elements of type t from src into dst. */
void reader_decode(elem_type t, int big_endian, const unsigned char *src, size_t n, double *dst);
size_t reader_elem_size(elem_type t);
/* Parses a whole string as a number; 0 on success. */
int reader_parse_number(const char *s, double *out);

/* Format openers: read the header, set dim / count / ops / has_ids / has_labels. */
int vecs_open(cli_reader *r, cli_err *err);
int npy_open(cli_reader *r, cli_err *err);
int idx_open(cli_reader *r, cli_err *err);
int csv_open(cli_reader *r, const reader_options *o, cli_err *err);
int w2v_text_open(cli_reader *r, cli_err *err);
int w2v_bin_open(cli_reader *r, cli_err *err);

#endif /* COPSE_CLI_READER_IMPL_H */
