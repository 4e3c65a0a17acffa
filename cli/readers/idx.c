/*
 * idx.c: the IDX format of MNIST and Fashion-MNIST, usually gzipped. A big-endian header:
 * two zero bytes, an element type code, the number of dimensions, then each dimension as a
 * uint32. The first dimension counts records; the others are flattened into one vector (a
 * 28x28 image becomes 784 components). A one-dimensional file (labels) gives vectors of one.
 */
#include "reader_impl.h"

static int type_from_code(unsigned code, elem_type *out)
{
    switch (code) {
    case 0x08:
        *out = ELEM_U8;
        return 0;
    case 0x09:
        *out = ELEM_I8;
        return 0;
    case 0x0B:
        *out = ELEM_I16;
        return 0;
    case 0x0C:
        *out = ELEM_I32;
        return 0;
    case 0x0D:
        *out = ELEM_F32;
        return 0;
    case 0x0E:
        *out = ELEM_F64;
        return 0;
    default:
        return -1;
    }
}

static int idx_next(cli_reader *r, double *row, cli_err *err)
{
    if (r->record == r->count) {
        if (reader_expect_end(r, err) != 0)
            return -1;
        return 0;
    }
    size_t bytes = (size_t)r->dim * reader_elem_size(r->elem);
    int rc = reader_read_exact(r, r->raw, bytes, "the vector", err);
    if (rc == 0) {
        reader_fail(r, err, EXIT_DATA,
                    "truncated: the header declares %lld records, the data ends after %lld",
                    (long long)r->count, (long long)r->record);
        return -1;
    }
    if (rc < 0)
        return -1;
    reader_decode(r->elem, 1, r->raw, (size_t)r->dim, row);
    return 1;
}

static const reader_ops idx_ops = {idx_next};

static int read_dims(cli_reader *r, int ndim, cli_err *err)
{
    int64_t dim = 1;
    for (int i = 0; i < ndim; i++) {
        unsigned char b[4];
        if (reader_read_exact(r, b, 4, "the header", err) != 1)
            return reader_fail(r, err, EXIT_DATA, "truncated IDX header");
        int64_t size = (int64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                                 (uint32_t)b[2] << 8 | (uint32_t)b[3]);
        if (i == 0) {
            r->count = size;
            continue;
        }
        if (size == 0 || dim > COPSE_MAX_DIM / size)
            return reader_fail(r, err, EXIT_DATA,
                               "IDX dimension %d is %lld: vectors must have 1..%d components",
                               i + 1, (long long)size, COPSE_MAX_DIM);
        dim *= size;
    }
    r->dim = (int)dim;
    return 0;
}

int idx_open(cli_reader *r, cli_err *err)
{
    unsigned char magic[4];
    int rc = reader_read_exact(r, magic, sizeof magic, "the header", err);
    if (rc == 0)
        return reader_fail(r, err, EXIT_DATA, "the file is empty");
    if (rc < 0)
        return err->code;
    if (magic[0] != 0 || magic[1] != 0 || magic[3] < 1 ||
        type_from_code(magic[2], &r->elem) != 0)
        return reader_fail(r, err, EXIT_DATA,
                           "not an IDX file (bad magic %02x %02x %02x %02x)", magic[0],
                           magic[1], magic[2], magic[3]);
    rc = read_dims(r, magic[3], err);
    if (rc != 0)
        return rc;
    r->ops = &idx_ops;
    return reader_reserve_raw(r, (size_t)r->dim * reader_elem_size(r->elem), err);
}
