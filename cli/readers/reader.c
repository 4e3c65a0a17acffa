/*
 * reader.c: format detection, the reader's lifecycle, the conversion of rows to floats and
 * whole-file loading.
 *
 * Detection trusts an explicit --format first, then the extension (after a trailing ".gz"),
 * then the first bytes: .npy and IDX have magic numbers; text is told apart by its first line.
 * fvecs/bvecs/ivecs have no magic, so they are recognised by extension only.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reader_impl.h"

static const struct {
    const char *name;
    cli_format format;
} format_names[] = {
    {"fvecs", CLI_FMT_FVECS},     {"bvecs", CLI_FMT_BVECS},
    {"ivecs", CLI_FMT_IVECS},     {"npy", CLI_FMT_NPY},
    {"idx", CLI_FMT_IDX},         {"csv", CLI_FMT_CSV},
    {"tsv", CLI_FMT_TSV},         {"word2vec", CLI_FMT_W2V_TEXT},
    {"word2vec-bin", CLI_FMT_W2V_BIN},
};

#define N_FORMATS (sizeof format_names / sizeof format_names[0])

int reader_format_from_name(const char *name, cli_format *out, cli_err *err)
{
    for (size_t i = 0; i < N_FORMATS; i++) {
        if (strcmp(name, format_names[i].name) == 0) {
            *out = format_names[i].format;
            return 0;
        }
    }
    char names[READER_FORMAT_LIST_SIZE];
    return cli_fail(err, EXIT_USAGE, "unknown format '%s' (known: %s)", name,
                    reader_format_names(names));
}

const char *reader_format_name(cli_format format)
{
    for (size_t i = 0; i < N_FORMATS; i++)
        if (format_names[i].format == format)
            return format_names[i].name;
    return "auto";
}

const char *reader_format_names(char buf[READER_FORMAT_LIST_SIZE])
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_FORMATS; i++) {
        int n = snprintf(buf + at, READER_FORMAT_LIST_SIZE - at, "%s%s", i > 0 ? ", " : "",
                         format_names[i].name);
        if (n < 0 || (size_t)n >= READER_FORMAT_LIST_SIZE - at)
            break; /* the size holds the table above; a longer one would be cut short */
        at += (size_t)n;
    }
    return buf;
}

const cli_opt reader_cli_options[] = {
    {"format", 'f', 1, READER_OPT_FORMAT},
    {"header", 0, 0, READER_OPT_HEADER},
    {"no-header", 0, 0, READER_OPT_NO_HEADER},
    {"ids", 0, 0, READER_OPT_IDS},
    {"no-ids", 0, 0, READER_OPT_NO_IDS},
    {NULL, 0, 0, 0},
};

void reader_print_help(FILE *f)
{
    char names[READER_FORMAT_LIST_SIZE];
    char text[READER_FORMAT_LIST_SIZE + 96];
    snprintf(text, sizeof text, "input format: %s (default: from the extension, then the "
                                "content)",
             reader_format_names(names));
    cli_print_wrapped(f, "  -f, --format F     ", 21, text, 91);
    fputs("      --header, --no-header\n"
          "                     CSV/TSV: the first line is (not) a header (default: detected)\n"
          "      --ids, --no-ids\n"
          "                     CSV/TSV: the first column is (not) the item id (default: when the\n"
          "                     header names it \"id\"); a column headed \"tags\" holds\n"
          "                     item tags for build (0..63, \"3;5\" or \"3 5\")\n",
          f);
}

void reader_options_init(reader_options *o)
{
    o->format = CLI_FMT_AUTO;
    o->header = -1;
    o->ids = -1;
}

int reader_apply_option(reader_options *o, int key, const char *value, cli_err *err)
{
    switch (key) {
    case READER_OPT_FORMAT:
        return reader_format_from_name(value, &o->format, err);
    case READER_OPT_HEADER:
    case READER_OPT_NO_HEADER:
        o->header = key == READER_OPT_HEADER;
        return 0;
    default: /* READER_OPT_IDS, READER_OPT_NO_IDS */
        o->ids = key == READER_OPT_IDS;
        return 0;
    }
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s[len - n + i]) != suffix[i])
            return 0;
    return 1;
}

static cli_format format_from_extension(const char *path)
{
    size_t len = strlen(path);
    if (ends_with(path, len, ".gz"))
        len -= 3;
    static const struct {
        const char *suffix;
        cli_format format;
    } by_ext[] = {
        {".fvecs", CLI_FMT_FVECS}, {".bvecs", CLI_FMT_BVECS},   {".ivecs", CLI_FMT_IVECS},
        {".npy", CLI_FMT_NPY},     {".idx", CLI_FMT_IDX},       {"-ubyte", CLI_FMT_IDX},
        {".idx1", CLI_FMT_IDX},    {".idx3", CLI_FMT_IDX},      {".csv", CLI_FMT_CSV},
        {".tsv", CLI_FMT_TSV},     {".tab", CLI_FMT_TSV},       {".vec", CLI_FMT_W2V_TEXT},
        {".txt", CLI_FMT_W2V_TEXT}, {".bin", CLI_FMT_W2V_BIN},
    };
    for (size_t i = 0; i < sizeof by_ext / sizeof by_ext[0]; i++)
        if (ends_with(path, len, by_ext[i].suffix))
            return by_ext[i].format;
    return CLI_FMT_AUTO;
}

static int looks_like_idx(const unsigned char *b, int n)
{
    if (n < 4 || b[0] != 0 || b[1] != 0 || b[3] < 1 || b[3] > 8)
        return 0;
    return b[2] == 0x08 || b[2] == 0x09 || b[2] == 0x0B || b[2] == 0x0C || b[2] == 0x0D ||
           b[2] == 0x0E;
}

/* Text: a first line "N D" of two integers is word2vec's header; otherwise tabs mean TSV,
 * commas CSV, and a line whose first field is a word followed by numbers is word2vec. */
static cli_format sniff_text(const unsigned char *b, int n)
{
    int tabs = 0, commas = 0, spaces = 0, i = 0;
    for (; i < n && b[i] != '\n'; i++) {
        tabs += b[i] == '\t';
        commas += b[i] == ',';
        spaces += b[i] == ' ';
    }
    if (tabs > 0)
        return CLI_FMT_TSV;
    if (commas > 0)
        return CLI_FMT_CSV;
    if (spaces > 0)
        return CLI_FMT_W2V_TEXT;
    return CLI_FMT_AUTO;
}

static int sniff_format(const char *path, cli_format *out, cli_err *err)
{
    gzFile gz = gzopen(path, "rb");
    if (gz == NULL)
        return cli_fail(err, EXIT_IO, "%s: %s", path, strerror(errno));
    unsigned char b[4096];
    int n = gzread(gz, b, sizeof b);
    gzclose(gz);
    if (n <= 0)
        return cli_fail(err, n == 0 ? EXIT_DATA : EXIT_IO, "%s: %s", path,
                        n == 0 ? "the file is empty" : "cannot read the file");
    if (n >= 6 && memcmp(b, "\x93NUMPY", 6) == 0)
        *out = CLI_FMT_NPY;
    else if (looks_like_idx(b, n))
        *out = CLI_FMT_IDX;
    else
        *out = sniff_text(b, n);
    if (*out != CLI_FMT_AUTO)
        return 0;
    char names[READER_FORMAT_LIST_SIZE];
    return cli_fail(err, EXIT_USAGE,
                    "%s: cannot tell the format from the name or the content; give --format "
                    "(%s)",
                    path, reader_format_names(names));
}

static int open_stream(cli_reader *r, cli_err *err)
{
    if (strcmp(r->path, "-") == 0) {
        int fd = dup(STDIN_FILENO);
        r->gz = fd >= 0 ? gzdopen(fd, "rb") : NULL;
        if (r->gz == NULL) {
            if (fd >= 0)
                close(fd);
            return cli_fail(err, EXIT_IO, "standard input: cannot read");
        }
    } else {
        struct stat st;
        if (stat(r->path, &st) == 0 && S_ISDIR(st.st_mode))
            return cli_fail(err, EXIT_IO, "%s: is a directory", r->path);
        r->gz = gzopen(r->path, "rb");
        if (r->gz == NULL)
            return cli_fail(err, EXIT_IO, "%s: %s", r->path, strerror(errno));
        if (stat(r->path, &st) == 0 && S_ISREG(st.st_mode))
            r->file_size = (uint64_t)st.st_size;
    }
    gzbuffer(r->gz, 1u << 17);
    return 0;
}

static int open_format(cli_reader *r, const reader_options *o, cli_err *err)
{
    switch (r->format) {
    case CLI_FMT_FVECS:
    case CLI_FMT_BVECS:
    case CLI_FMT_IVECS:
        return vecs_open(r, err);
    case CLI_FMT_NPY:
        return npy_open(r, err);
    case CLI_FMT_IDX:
        return idx_open(r, err);
    case CLI_FMT_CSV:
    case CLI_FMT_TSV:
        return csv_open(r, o, err);
    case CLI_FMT_W2V_TEXT:
        return w2v_text_open(r, err);
    case CLI_FMT_W2V_BIN:
        return w2v_bin_open(r, err);
    case CLI_FMT_AUTO:
        break;
    }
    return cli_fail(err, EXIT_USAGE, "%s: no format", r->path);
}

static int choose_format(const char *path, const reader_options *o, cli_format *out,
                         cli_err *err)
{
    *out = o->format != CLI_FMT_AUTO ? o->format : format_from_extension(path);
    if (*out != CLI_FMT_AUTO)
        return 0;
    if (strcmp(path, "-") == 0) {
        char names[READER_FORMAT_LIST_SIZE];
        return cli_fail(err, EXIT_USAGE, "standard input: give --format (%s)",
                        reader_format_names(names));
    }
    return sniff_format(path, out, err);
}

int reader_open(const char *path, const reader_options *o, cli_reader **out, cli_err *err)
{
    *out = NULL;
    cli_format format;
    int rc = choose_format(path, o, &format, err);
    if (rc != 0)
        return rc;
    cli_reader *r = calloc(1, sizeof *r);
    if (r == NULL || (r->path = cli_strdup(path)) == NULL) {
        free(r);
        return cli_fail(err, EXIT_FAIL, "out of memory");
    }
    r->format = format;
    r->count = -1;
    rc = open_stream(r, err);
    if (rc == 0)
        rc = open_format(r, o, err);
    if (rc == 0 && (r->row = cli_alloc_array((size_t)r->dim, sizeof *r->row)) == NULL)
        rc = cli_fail(err, EXIT_FAIL, "out of memory");
    if (rc != 0) {
        reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void reader_close(cli_reader *r)
{
    if (r == NULL)
        return;
    if (r->gz != NULL)
        gzclose(r->gz);
    free(r->path);
    free(r->row);
    free(r->label);
    free(r->buf);
    free(r->raw);
    free(r->cols);
    free(r);
}

const char *reader_path(const cli_reader *r) { return r->path; }
int reader_dim(const cli_reader *r) { return r->dim; }
int64_t reader_count(const cli_reader *r) { return r->count; }
int64_t reader_records(const cli_reader *r) { return r->record; }
int reader_has_ids(const cli_reader *r) { return r->has_ids; }
int64_t reader_id(const cli_reader *r) { return r->id; }
int reader_has_labels(const cli_reader *r) { return r->has_labels; }
int reader_has_tags(const cli_reader *r) { return r->has_tags; }
uint64_t reader_tags(const cli_reader *r) { return r->tags; }
const char *reader_label(const cli_reader *r) { return r->label != NULL ? r->label : ""; }

double reader_progress(const cli_reader *r)
{
    if (r->file_size == 0)
        return -1.0;
    z_off_t at = gzoffset(r->gz);
    if (at < 0)
        return -1.0;
    double f = (double)at / (double)r->file_size;
    return f > 1.0 ? 1.0 : f;
}

/* Text formats name the line, binary ones the record. */
static int is_text(cli_format f)
{
    return f == CLI_FMT_CSV || f == CLI_FMT_TSV || f == CLI_FMT_W2V_TEXT;
}

int reader_fail_here(const cli_reader *r, cli_err *err, int code, const char *fmt, ...)
{
    char detail[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (is_text(r->format))
        return reader_fail_line(r, err, code, "%s", detail);
    return reader_fail_record(r, r->record, err, code, "%s", detail);
}

static int next_row(cli_reader *r, cli_err *err)
{
    int rc = r->ops->next(r, r->row, err);
    if (rc == 1)
        r->record++;
    return rc;
}

int reader_next(cli_reader *r, float *row, cli_err *err)
{
    int rc = next_row(r, err);
    if (rc != 1)
        return rc;
    for (int i = 0; i < r->dim; i++) {
        double v = r->row[i];
        if (isnan(v) || isinf(v) || fabs(v) > FLT_MAX) {
            reader_fail_here(r, err, EXIT_DATA, "component %d is %s", i + 1,
                             isnan(v) ? "NaN" : isinf(v) ? "infinite" : "beyond float range");
            return -1;
        }
        row[i] = (float)v;
    }
    return 1;
}

int reader_next_ints(cli_reader *r, int64_t *row, cli_err *err)
{
    int rc = next_row(r, err);
    if (rc != 1)
        return rc;
    for (int i = 0; i < r->dim; i++) {
        double v = r->row[i];
        if (!(v == floor(v)) || fabs(v) > 9.0e15) {
            reader_fail_here(r, err, EXIT_DATA, "component %d is not a whole number", i + 1);
            return -1;
        }
        row[i] = (int64_t)v;
    }
    return 1;
}

/* ---- whole files ------------------------------------------------------------------------ */

void matrix_free(cli_matrix *m)
{
    if (m->labels != NULL)
        for (int64_t i = 0; i < m->n; i++)
            free(m->labels[i]);
    free(m->labels);
    free(m->ids);
    free(m->data);
    memset(m, 0, sizeof *m);
}

/* Doubles the row capacity of m (data, ids, labels alike). */
static int grow_matrix(cli_matrix *m, int64_t *cap, cli_err *err)
{
    size_t want = *cap == 0 ? 1024 : (size_t)*cap * 2;
    if ((size_t)m->dim > SIZE_MAX / sizeof(float) / want)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    float *data = realloc(m->data, want * (size_t)m->dim * sizeof(float));
    if (data == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    m->data = data;
    if (m->ids != NULL) {
        int64_t *ids = realloc(m->ids, want * sizeof *ids);
        if (ids == NULL)
            return cli_fail(err, EXIT_FAIL, "out of memory");
        m->ids = ids;
    }
    if (m->labels != NULL) {
        char **labels = realloc(m->labels, want * sizeof *labels);
        if (labels == NULL)
            return cli_fail(err, EXIT_FAIL, "out of memory");
        m->labels = labels;
    }
    *cap = (int64_t)want;
    return 0;
}

static int keep_extras(cli_reader *r, cli_matrix *m, cli_err *err)
{
    if (m->ids != NULL)
        m->ids[m->n] = r->id;
    if (m->labels != NULL) {
        m->labels[m->n] = cli_strdup(reader_label(r));
        if (m->labels[m->n] == NULL)
            return cli_fail(err, EXIT_FAIL, "out of memory");
    }
    return 0;
}

static int load_rows(cli_reader *r, int64_t limit, cli_matrix *m, cli_err *err)
{
    int64_t cap = 0;
    m->dim = r->dim;
    if (r->has_ids && (m->ids = malloc(sizeof *m->ids)) == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    if (r->has_labels && (m->labels = malloc(sizeof *m->labels)) == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    while (limit < 0 || m->n < limit) {
        if (m->n == cap && grow_matrix(m, &cap, err) != 0)
            return err->code;
        int rc = reader_next(r, m->data + (size_t)m->n * (size_t)m->dim, err);
        if (rc < 0)
            return err->code;
        if (rc == 0)
            break;
        if (keep_extras(r, m, err) != 0)
            return err->code;
        m->n++;
    }
    if (m->n == 0)
        return reader_fail(r, err, EXIT_DATA, "no vectors in the file");
    return 0;
}

int reader_load(const char *path, const reader_options *o, int64_t limit, cli_matrix *m,
                cli_err *err)
{
    memset(m, 0, sizeof *m);
    cli_reader *r = NULL;
    int rc = reader_open(path, o, &r, err);
    if (rc == 0)
        rc = load_rows(r, limit, m, err);
    reader_close(r);
    if (rc != 0)
        matrix_free(m);
    return rc;
}
