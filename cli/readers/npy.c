/*
 * npy.c: NumPy's .npy files (format versions 1, 2 and 3). The header is a Python dict
 * literal; we read its three keys without a general parser. Arrays must be float32 or float64
 * in C order with at least two dimensions: the first counts vectors, the rest are flattened
 * into one (as for images). Anything else is refused with the conversion to make.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader_impl.h"

#define NPY_MAX_HEADER (1u << 20)
#define NPY_MAX_NDIM 32

typedef struct npy_header {
    char descr[32];
    int fortran;
    int ndim;
    int64_t shape[NPY_MAX_NDIM];
} npy_header;

/* Points just past "'key':" (spaces allowed), or NULL. */
static const char *find_key(const char *dict, const char *key)
{
    char quoted[32];
    const char *p = NULL;
    for (int q = 0; q < 2 && p == NULL; q++) {
        snprintf(quoted, sizeof quoted, q == 0 ? "'%s'" : "\"%s\"", key);
        p = strstr(dict, quoted);
    }
    if (p == NULL)
        return NULL;
    p += strlen(key) + 2;
    while (isspace((unsigned char)*p))
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static int parse_descr(cli_reader *r, const char *dict, npy_header *h, cli_err *err)
{
    const char *p = find_key(dict, "descr");
    if (p == NULL)
        return reader_fail(r, err, EXIT_DATA, "npy header has no 'descr'");
    if (*p != '\'' && *p != '"')
        return reader_fail(r, err, EXIT_DATA,
                           "structured dtypes are not supported: save a plain float32 or "
                           "float64 array");
    char quote = *p++;
    const char *end = strchr(p, quote);
    if (end == NULL || (size_t)(end - p) >= sizeof h->descr)
        return reader_fail(r, err, EXIT_DATA, "npy header: malformed 'descr'");
    memcpy(h->descr, p, (size_t)(end - p));
    h->descr[end - p] = '\0';
    return 0;
}

static int parse_shape(cli_reader *r, const char *dict, npy_header *h, cli_err *err)
{
    const char *p = find_key(dict, "shape");
    if (p == NULL || *p != '(')
        return reader_fail(r, err, EXIT_DATA, "npy header: missing or malformed 'shape'");
    p++;
    h->ndim = 0;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (*p == ')')
            return 0;
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || h->ndim == NPY_MAX_NDIM)
            return reader_fail(r, err, EXIT_DATA, "npy header: malformed 'shape'");
        h->shape[h->ndim++] = (int64_t)v;
        p = end;
    }
}

static int parse_header(cli_reader *r, const char *dict, npy_header *h, cli_err *err)
{
    int rc = parse_descr(r, dict, h, err);
    if (rc == 0)
        rc = parse_shape(r, dict, h, err);
    if (rc != 0)
        return rc;
    const char *p = find_key(dict, "fortran_order");
    if (p == NULL)
        return reader_fail(r, err, EXIT_DATA, "npy header has no 'fortran_order'");
    h->fortran = strncmp(p, "True", 4) == 0;
    return 0;
}

static int check_dtype(cli_reader *r, const npy_header *h, cli_err *err)
{
    const char *d = h->descr;
    int little = d[0] == '<' || d[0] == '=';
    if ((little || d[0] == '>') && strcmp(d + 1, "f4") == 0)
        r->elem = ELEM_F32;
    else if ((little || d[0] == '>') && strcmp(d + 1, "f8") == 0)
        r->elem = ELEM_F64;
    else
        return reader_fail(r, err, EXIT_DATA,
                           "dtype '%s' is not supported: copse reads float32 and float64 "
                           "arrays (convert with a.astype(numpy.float32))",
                           d);
    r->big_endian = d[0] == '>';
    return 0;
}

static int check_layout(cli_reader *r, const npy_header *h, cli_err *err)
{
    if (h->ndim < 2)
        return reader_fail(r, err, EXIT_DATA,
                           "a %d-dimensional array; expected rows of vectors (shape (n, dim))",
                           h->ndim);
    int64_t dim = 1;
    for (int i = 1; i < h->ndim; i++) {
        if (h->shape[i] != 0 && dim > COPSE_MAX_DIM / h->shape[i])
            return reader_fail(r, err, EXIT_DATA, "vectors longer than %d components",
                               COPSE_MAX_DIM);
        dim *= h->shape[i];
    }
    if (dim < 1)
        return reader_fail(r, err, EXIT_DATA, "vectors of dimension 0");
    if (h->fortran && h->shape[0] > 1 && dim > 1)
        return reader_fail(r, err, EXIT_DATA,
                           "the array is in Fortran order; save numpy.ascontiguousarray(a)");
    r->dim = (int)dim;
    r->count = h->shape[0];
    return 0;
}

static int npy_next(cli_reader *r, double *row, cli_err *err)
{
    if (r->record == r->count) {
        if (reader_expect_end(r, err) != 0)
            return -1;
        return 0;
    }
    size_t bytes = (size_t)r->dim * reader_elem_size(r->elem);
    int rc = reader_read_exact(r, r->raw, bytes, "the vector", err);
    if (rc == 0) {
        reader_fail(r, err, EXIT_DATA, "truncated: the header declares %lld rows, the data "
                                       "ends after %lld",
                    (long long)r->count, (long long)r->record);
        return -1;
    }
    if (rc < 0)
        return -1;
    reader_decode(r->elem, r->big_endian, r->raw, (size_t)r->dim, row);
    return 1;
}

static const reader_ops npy_ops = {npy_next};

/* Reads the magic, the version and the header length; leaves the dict text in r->buf. */
static int read_dict(cli_reader *r, cli_err *err)
{
    unsigned char pre[12];
    int rc = reader_read_exact(r, pre, 8, "the header", err);
    if (rc == 0)
        return reader_fail(r, err, EXIT_DATA, "the file is empty");
    if (rc < 0)
        return err->code;
    if (memcmp(pre, "\x93NUMPY", 6) != 0)
        return reader_fail(r, err, EXIT_DATA, "not a .npy file (no \\x93NUMPY magic)");
    int major = pre[6];
    if (major < 1 || major > 3)
        return reader_fail(r, err, EXIT_DATA, ".npy format version %d is not supported",
                           major);
    size_t len_bytes = major == 1 ? 2 : 4;
    if (reader_read_exact(r, pre + 8, len_bytes, "the header", err) != 1)
        return reader_fail(r, err, EXIT_DATA, "truncated .npy header");
    uint32_t len = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    if (major > 1)
        len |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    if (len == 0 || len > NPY_MAX_HEADER)
        return reader_fail(r, err, EXIT_DATA, ".npy header length %lu is implausible",
                           (unsigned long)len);
    free(r->buf);
    r->buf = malloc(len + 1u);
    if (r->buf == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    r->buf_cap = len + 1u;
    if (reader_read_exact(r, r->buf, len, "the header", err) != 1)
        return reader_fail(r, err, EXIT_DATA, "truncated .npy header");
    r->buf[len] = '\0';
    return 0;
}

int npy_open(cli_reader *r, cli_err *err)
{
    npy_header h;
    memset(&h, 0, sizeof h);
    int rc = read_dict(r, err);
    if (rc == 0)
        rc = parse_header(r, r->buf, &h, err);
    if (rc == 0)
        rc = check_dtype(r, &h, err);
    if (rc == 0)
        rc = check_layout(r, &h, err);
    if (rc != 0)
        return rc;
    r->ops = &npy_ops;
    return reader_reserve_raw(r, (size_t)r->dim * reader_elem_size(r->elem), err);
}
