/*
 * csv.c: comma- and tab-separated values, one vector per line.
 *
 * A header line is detected when the first line has a field that is not a number (or forced
 * with --header / --no-header). The first column holds item ids with --ids, or when the
 * header names it "id". A column the header names "tags" holds each item's tags (0..63,
 * separated by ';' or spaces: "3;5", as one field of a CSV line cannot hold a comma
 * unquoted), which are not vector components. Fields may be quoted ("1.5") as spreadsheets write them; quoted
 * fields cannot span lines. Blank lines are skipped but still counted, so line numbers in
 * messages match an editor's.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reader_impl.h"

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static int push_col(cli_reader *r, size_t *n, char *field, cli_err *err)
{
    if (*n == r->cols_cap) {
        size_t cap = r->cols_cap == 0 ? 64 : r->cols_cap * 2;
        char **grown = realloc(r->cols, cap * sizeof *grown);
        if (grown == NULL)
            return cli_fail(err, EXIT_FAIL, "out of memory");
        r->cols = grown;
        r->cols_cap = cap;
    }
    r->cols[(*n)++] = field;
    return 0;
}

/* Removes the quotes of a quoted field in place ("a""b" -> a"b); returns the end of the
 * field (at the delimiter or the line's end) or NULL when the closing quote is missing. */
static char *unquote(char *start)
{
    char *in = start + 1, *out = start;
    for (;;) {
        if (*in == '\0')
            return NULL;
        if (*in == '"' && in[1] == '"') {
            *out++ = '"';
            in += 2;
        } else if (*in == '"') {
            *out = '\0';
            return in + 1;
        } else {
            *out++ = *in++;
        }
    }
}

/* Splits r->buf in place into r->cols; *n gets the field count. */
static int split_line(cli_reader *r, size_t *n, cli_err *err)
{
    *n = 0;
    char *p = r->buf;
    for (;;) {
        while (*p == ' ' || (*p == '\t' && r->delim != '\t'))
            p++;
        char *field = p;
        if (*p == '"') {
            p = unquote(p);
            if (p == NULL)
                return reader_fail_line(r, err, EXIT_DATA, "field %zu: unterminated quote",
                                        *n + 1);
            while (*p != '\0' && *p != r->delim)
                p++;
        } else {
            while (*p != '\0' && *p != r->delim)
                p++;
        }
        char end = *p;
        *p = '\0';
        if (push_col(r, n, trim(field), err) != 0)
            return err->code;
        if (end == '\0')
            return 0;
        p++;
    }
}

static int is_blank(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '\0';
}

/* Next non-blank line split into fields: 1, 0 at the end, -1 on error. */
static int next_fields(cli_reader *r, size_t *n, cli_err *err)
{
    int rc;
    while ((rc = reader_getline(r, err)) == 1 && is_blank(r->buf)) {
    }
    if (rc != 1)
        return rc;
    return split_line(r, n, err) == 0 ? 1 : -1;
}

static int parse_id(cli_reader *r, const char *s, cli_err *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < 0)
        return reader_fail_line(r, err, EXIT_DATA,
                                "id '%s' is not a non-negative integer", s);
    r->id = (int64_t)v;
    return 0;
}

static int parse_row(cli_reader *r, size_t n, double *row, cli_err *err)
{
    if ((int)n != r->fields)
        return reader_fail_line(r, err, EXIT_DATA, "%zu field%s, expected %d as on the first "
                                                   "line",
                                n, n == 1 ? "" : "s", r->fields);
    size_t first = 0, j = 0;
    if (r->has_ids) {
        if (parse_id(r, r->cols[0], err) != 0)
            return err->code;
        first = 1;
    }
    for (size_t i = first; i < n; i++) {
        const char *s = r->cols[i];
        if (r->has_tags && (int)i == r->tags_col) {
            const char *bad = NULL;
            r->tags = 0;
            if (cli_tag_mask(s, &r->tags, &bad) != 0)
                return reader_fail_line(r, err, EXIT_DATA, "field %zu: '%.20s' is not a tag "
                                        "0..%d", i + 1, bad, COPSE_MAX_TAG);
            continue;
        }
        if (s[0] == '\0')
            return reader_fail_line(r, err, EXIT_DATA, "field %zu is empty", i + 1);
        if (reader_parse_number(s, &row[j++]) != 0)
            return reader_fail_line(r, err, EXIT_DATA, "field %zu ('%.40s') is not a number",
                                    i + 1, s);
    }
    return 0;
}

static int csv_next(cli_reader *r, double *row, cli_err *err)
{
    size_t n = (size_t)r->fields;
    if (r->pending) {
        r->pending = 0;
    } else {
        int rc = next_fields(r, &n, err);
        if (rc != 1)
            return rc;
    }
    if (parse_row(r, n, row, err) != 0)
        return -1;
    if (!r->has_ids)
        r->id = r->record;
    return 1;
}

static const reader_ops csv_ops = {csv_next};

static int all_numbers(cli_reader *r, size_t n)
{
    double v;
    for (size_t i = 0; i < n; i++)
        if (reader_parse_number(r->cols[i], &v) != 0)
            return 0;
    return 1;
}

int csv_open(cli_reader *r, const reader_options *o, cli_err *err)
{
    r->delim = r->format == CLI_FMT_TSV ? '\t' : ',';
    size_t n = 0;
    int rc = next_fields(r, &n, err);
    if (rc == 0)
        return reader_fail(r, err, EXIT_DATA, "the file is empty");
    if (rc < 0)
        return err->code;
    int header = o->header >= 0 ? o->header : !all_numbers(r, n);
    r->has_ids = o->ids >= 0 ? o->ids : header && strcasecmp(r->cols[0], "id") == 0;
    r->fields = (int)n;
    for (size_t i = r->has_ids ? 1 : 0; header && i < n && !r->has_tags; i++)
        if (strcasecmp(r->cols[i], "tags") == 0) {
            r->has_tags = 1;
            r->tags_col = (int)i;
        }
    r->dim = (int)n - (r->has_ids ? 1 : 0) - (r->has_tags ? 1 : 0);
    if (r->dim < 1)
        return reader_fail_line(r, err, EXIT_DATA, "no vector components after the id column");
    if (r->dim > COPSE_MAX_DIM)
        return reader_fail_line(r, err, EXIT_DATA, "more than %d fields", COPSE_MAX_DIM);
    r->pending = !header;
    r->ops = &csv_ops;
    return 0;
}
