/*
 * vecs.c: the TEXMEX formats of the ANN benchmarks (SIFT, GIST): fvecs, bvecs and ivecs.
 * Each record is a little-endian int32 dimension followed by that many float32 (fvecs),
 * uint8 (bvecs) or int32 (ivecs) values. There is no file header, so the dimension comes from
 * the first record and every later record must repeat it.
 */
#include <string.h>

#include "reader_impl.h"

static int32_t le32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

/* Reads a record's dimension field: 1, 0 at a clean end, -1 on error. */
static int read_dim(cli_reader *r, int32_t *dim, cli_err *err)
{
    unsigned char b[4];
    int rc = reader_read_exact(r, b, sizeof b, "the dimension field", err);
    if (rc == 1)
        *dim = le32(b);
    return rc;
}

static int vecs_next(cli_reader *r, double *row, cli_err *err)
{
    int64_t record = r->record + 1;
    if (r->pending) {
        r->pending = 0;
    } else {
        int32_t dim = 0;
        int rc = read_dim(r, &dim, err);
        if (rc != 1)
            return rc;
        if (dim != r->dim) {
            reader_fail_record(r, record, err, EXIT_DATA,
                               "dimension %ld, but the first record's is %d", (long)dim,
                               r->dim);
            return -1;
        }
    }
    size_t bytes = (size_t)r->dim * reader_elem_size(r->elem);
    int rc = reader_read_exact(r, r->raw, bytes, "the vector", err);
    if (rc == 0) {
        reader_fail_record(r, record, err, EXIT_DATA,
                           "truncated: the file ends after the dimension field");
        return -1;
    }
    if (rc < 0)
        return -1;
    reader_decode(r->elem, 0, r->raw, (size_t)r->dim, row);
    return 1;
}

static const reader_ops vecs_ops = {vecs_next};

int vecs_open(cli_reader *r, cli_err *err)
{
    r->elem = r->format == CLI_FMT_FVECS   ? ELEM_F32
              : r->format == CLI_FMT_BVECS ? ELEM_U8
                                           : ELEM_I32;
    int32_t dim = 0;
    int rc = read_dim(r, &dim, err);
    if (rc < 0)
        return err->code;
    if (rc == 0)
        return reader_fail(r, err, EXIT_DATA, "the file is empty");
    if (dim < 1 || dim > COPSE_MAX_DIM)
        return reader_fail_record(r, 1, err, EXIT_DATA,
                                  "dimension %ld is outside 1..%d (is this really %s?)",
                                  (long)dim, COPSE_MAX_DIM, reader_format_name(r->format));
    r->dim = dim;
    r->pending = 1;
    size_t record_bytes = 4 + (size_t)dim * reader_elem_size(r->elem);
    if (gzdirect(r->gz) && r->file_size > 0 && r->file_size % record_bytes == 0)
        r->count = (int64_t)(r->file_size / record_bytes);
    r->ops = &vecs_ops;
    return reader_reserve_raw(r, record_bytes, err);
}
