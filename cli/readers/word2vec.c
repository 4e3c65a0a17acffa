/*
 * word2vec.c: word vectors as word2vec writes them, text (also fastText's .vec and GloVe's
 * header-less .txt) and binary. Each record is a word and its vector; the words become item
 * labels, the ids count records from 0.
 *
 * Text: an optional header line "COUNT DIM", then "word x1 x2 ... xDIM" per line.
 * Binary: the header line "COUNT DIM\n", then per word its bytes up to a space, DIM
 * little-endian float32, and (as word2vec writes it) a newline that we skip as whitespace.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader_impl.h"

#define W2V_MAX_WORD 65535

/* "COUNT DIM" with both positive integers. */
static int parse_header(const char *s, int64_t *count, int64_t *dim)
{
    long long c = 0, d = 0;
    char tail = 0;
    if (sscanf(s, "%lld %lld %c", &c, &d, &tail) != 2 || c < 0 || d < 1)
        return -1;
    *count = (int64_t)c;
    *dim = (int64_t)d;
    return 0;
}

static int check_header(cli_reader *r, int64_t count, int64_t dim, cli_err *err)
{
    if (dim > COPSE_MAX_DIM)
        return reader_fail_line(r, err, EXIT_DATA, "dimension %lld is above %d",
                                (long long)dim, COPSE_MAX_DIM);
    r->count = count;
    r->dim = (int)dim;
    return 0;
}

/* Checks that a header's count was honoured when the data ends (or runs on). */
static int check_count(cli_reader *r, int more, cli_err *err)
{
    if (r->count < 0)
        return 0;
    if (more)
        return reader_fail_line(r, err, EXIT_DATA, "more words than the header's %lld",
                                (long long)r->count);
    if (r->record < r->count)
        return reader_fail(r, err, EXIT_DATA,
                           "truncated: the header declares %lld words, the file has %lld",
                           (long long)r->count, (long long)r->record);
    return 0;
}

static int parse_text_row(cli_reader *r, double *row, cli_err *err)
{
    char *p = r->buf;
    while (*p == ' ' || *p == '\t')
        p++;
    char *word = p;
    while (*p != '\0' && *p != ' ' && *p != '\t')
        p++;
    if (reader_set_label(r, word, (size_t)(p - word), err) != 0)
        return err->code;
    int i = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        char *end = NULL;
        double v = strtod(p, &end);
        if (end == p || (*end != '\0' && *end != ' ' && *end != '\t'))
            return reader_fail_line(r, err, EXIT_DATA, "'%s': component %d is not a number",
                                    r->label, i + 1);
        if (i < r->dim)
            row[i] = v;
        i++;
        p = end;
    }
    if (i != r->dim)
        return reader_fail_line(r, err, EXIT_DATA, "'%s' has %d components, expected %d",
                                r->label, i, r->dim);
    return 0;
}

static int w2v_text_next(cli_reader *r, double *row, cli_err *err)
{
    if (r->pending) {
        r->pending = 0;
    } else {
        int rc;
        while ((rc = reader_getline(r, err)) == 1 && r->buf[strspn(r->buf, " \t")] == '\0') {
        }
        if (rc < 0)
            return -1;
        if (r->count >= 0 && (rc == 0 || r->record == r->count))
            return check_count(r, rc == 1, err) == 0 ? 0 : -1;
        if (rc == 0)
            return 0;
    }
    if (parse_text_row(r, row, err) != 0)
        return -1;
    r->id = r->record;
    return 1;
}

static const reader_ops w2v_text_ops = {w2v_text_next};

/* Components on a header-less first line: the words after the first. */
static int count_tokens(const char *s)
{
    int n = 0;
    while (*s != '\0') {
        s += strspn(s, " \t");
        if (*s == '\0')
            break;
        n++;
        s += strcspn(s, " \t");
    }
    return n;
}

int w2v_text_open(cli_reader *r, cli_err *err)
{
    r->has_labels = 1;
    r->ops = &w2v_text_ops;
    int rc = reader_getline(r, err);
    if (rc == 0)
        return reader_fail(r, err, EXIT_DATA, "the file is empty");
    if (rc < 0)
        return err->code;
    int64_t count, dim;
    if (parse_header(r->buf, &count, &dim) == 0)
        return check_header(r, count, dim, err);
    int tokens = count_tokens(r->buf);
    if (tokens < 2)
        return reader_fail_line(r, err, EXIT_DATA,
                                "expected \"COUNT DIM\" or \"word x1 x2 ...\"");
    r->dim = tokens - 1;
    r->pending = 1;
    return 0;
}

/* ---- binary ----------------------------------------------------------------------------- */

/* Appends byte c to the label being read. */
static int label_push(cli_reader *r, size_t len, int c, cli_err *err)
{
    if (len + 1 >= r->label_cap) {
        size_t cap = r->label_cap == 0 ? 64 : r->label_cap * 2;
        char *grown = realloc(r->label, cap);
        if (grown == NULL)
            return cli_fail(err, EXIT_FAIL, "out of memory");
        r->label = grown;
        r->label_cap = cap;
    }
    r->label[len] = (char)c;
    r->label[len + 1] = '\0';
    return 0;
}

/* Reads the next word into the label: 1, 0 at the end of the data, -1 on error. */
static int read_word(cli_reader *r, cli_err *err)
{
    int c;
    while ((c = gzgetc(r->gz)) == '\n' || c == ' ' || c == '\r' || c == '\t') {
    }
    if (c == -1)
        return 0;
    size_t len = 0;
    for (; c != -1 && c != ' ' && c != '\t' && c != '\n'; c = gzgetc(r->gz)) {
        if (len == W2V_MAX_WORD) {
            reader_fail_record(r, r->record + 1, err, EXIT_DATA, "word longer than %d bytes",
                               W2V_MAX_WORD);
            return -1;
        }
        if (label_push(r, len++, c, err) != 0)
            return -1;
    }
    if (c != ' ' && c != '\t') {
        reader_fail_record(r, r->record + 1, err, EXIT_DATA,
                           "truncated: the word '%s' has no vector after it", r->label);
        return -1;
    }
    return 1;
}

static int w2v_bin_next(cli_reader *r, double *row, cli_err *err)
{
    int rc = 0;
    if (r->record < r->count)
        rc = read_word(r, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return check_count(r, 0, err) == 0 ? 0 : -1;
    size_t bytes = (size_t)r->dim * 4;
    rc = reader_read_exact(r, r->raw, bytes, "the vector", err);
    if (rc == 0) {
        reader_fail_record(r, r->record + 1, err, EXIT_DATA,
                           "truncated: the file ends after the word '%s'", r->label);
        return -1;
    }
    if (rc < 0)
        return -1;
    reader_decode(ELEM_F32, 0, r->raw, (size_t)r->dim, row);
    r->id = r->record;
    return 1;
}

static const reader_ops w2v_bin_ops = {w2v_bin_next};

int w2v_bin_open(cli_reader *r, cli_err *err)
{
    r->has_labels = 1;
    r->ops = &w2v_bin_ops;
    int rc = reader_getline(r, err);
    if (rc == 0)
        return reader_fail(r, err, EXIT_DATA, "the file is empty");
    if (rc < 0)
        return err->code;
    int64_t count, dim;
    if (parse_header(r->buf, &count, &dim) != 0)
        return reader_fail_line(r, err, EXIT_DATA,
                                "expected the word2vec header \"COUNT DIM\" (is this the text "
                                "format? use --format word2vec)");
    rc = check_header(r, count, dim, err);
    return rc != 0 ? rc : reader_reserve_raw(r, (size_t)r->dim * 4, err);
}
