/*
 * common.c: the byte- and line-level reading that the format modules share, and the
 * location-prefixed error messages.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader_impl.h"

static int vfail(cli_err *err, int code, const char *prefix, const char *fmt, va_list ap)
{
    char detail[768];
    vsnprintf(detail, sizeof detail, fmt, ap);
    return cli_fail(err, code, "%s%s", prefix, detail);
}

int reader_fail(const cli_reader *r, cli_err *err, int code, const char *fmt, ...)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s: ", r->path);
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, prefix, fmt, ap);
    va_end(ap);
    return code;
}

int reader_fail_line(const cli_reader *r, cli_err *err, int code, const char *fmt, ...)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s:%lld: ", r->path, (long long)r->line);
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, prefix, fmt, ap);
    va_end(ap);
    return code;
}

int reader_fail_record(const cli_reader *r, int64_t record, cli_err *err, int code,
                       const char *fmt, ...)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s: record %lld: ", r->path, (long long)record);
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, prefix, fmt, ap);
    va_end(ap);
    return code;
}

/* The zlib error text (which zlib prefixes with the path; we add our own), or errno's when
 * zlib says the fault was a system one. */
static const char *gz_error_text(const cli_reader *r)
{
    int zerr = Z_OK;
    const char *text = gzerror(r->gz, &zerr);
    if (zerr == Z_ERRNO)
        return strerror(errno);
    if (text == NULL || text[0] == '\0')
        return "read error";
    size_t n = strlen(r->path);
    if (strncmp(text, r->path, n) == 0 && strncmp(text + n, ": ", 2) == 0)
        text += n + 2;
    return text;
}

int reader_read_exact(cli_reader *r, void *dst, size_t n, const char *what, cli_err *err)
{
    unsigned char *p = dst;
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got < (size_t)INT_MAX ? n - got : (size_t)INT_MAX;
        int k = gzread(r->gz, p + got, (unsigned)chunk);
        if (k < 0) {
            reader_fail(r, err, EXIT_IO, "%s", gz_error_text(r));
            return -1;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    if (got == n)
        return 1;
    int zerr = Z_OK;
    gzerror(r->gz, &zerr);
    if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
        reader_fail(r, err, EXIT_IO, "%s", gz_error_text(r));
        return -1;
    }
    if (got == 0)
        return 0;
    reader_fail_record(r, r->record + 1, err, EXIT_DATA,
                       "truncated: %s needs %zu bytes, the file ends after %zu", what, n, got);
    return -1;
}

int reader_reserve_raw(cli_reader *r, size_t n, cli_err *err)
{
    if (n <= r->raw_cap)
        return 0;
    unsigned char *grown = realloc(r->raw, n);
    if (grown == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory (%zu bytes for one record)", n);
    r->raw = grown;
    r->raw_cap = n;
    return 0;
}

int reader_expect_end(cli_reader *r, cli_err *err)
{
    unsigned char extra;
    int k = gzread(r->gz, &extra, 1);
    if (k < 0)
        return reader_fail(r, err, EXIT_IO, "%s", gz_error_text(r));
    if (k > 0)
        return reader_fail(r, err, EXIT_DATA,
                           "unexpected data after the %lld records the header declares",
                           (long long)r->count);
    return 0;
}

static int grow_buf(cli_reader *r, cli_err *err)
{
    size_t cap = r->buf_cap == 0 ? 4096 : r->buf_cap * 2;
    if (cap > (size_t)INT_MAX)
        return reader_fail_line(r, err, EXIT_DATA, "line longer than %d bytes", INT_MAX / 2);
    char *grown = realloc(r->buf, cap);
    if (grown == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    r->buf = grown;
    r->buf_cap = cap;
    return 0;
}

int reader_getline(cli_reader *r, cli_err *err)
{
    size_t len = 0;
    if (r->buf_cap == 0 && grow_buf(r, err) != 0)
        return -1;
    r->buf[0] = '\0';
    for (;;) {
        if (gzgets(r->gz, r->buf + len, (int)(r->buf_cap - len)) == NULL) {
            int zerr = Z_OK;
            gzerror(r->gz, &zerr);
            if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
                reader_fail(r, err, EXIT_IO, "%s", gz_error_text(r));
                return -1;
            }
            if (len == 0)
                return 0;
            break;
        }
        len += strlen(r->buf + len);
        if (len > 0 && r->buf[len - 1] == '\n')
            break;
        if (len + 1 < r->buf_cap)
            break; /* the last line, without a newline */
        if (grow_buf(r, err) != 0)
            return -1;
    }
    r->line++;
    while (len > 0 && (r->buf[len - 1] == '\n' || r->buf[len - 1] == '\r'))
        r->buf[--len] = '\0';
    return 1;
}

int reader_set_label(cli_reader *r, const char *s, size_t len, cli_err *err)
{
    if (len + 1 > r->label_cap) {
        char *grown = realloc(r->label, len + 1);
        if (grown == NULL)
            return cli_fail(err, EXIT_FAIL, "out of memory");
        r->label = grown;
        r->label_cap = len + 1;
    }
    memcpy(r->label, s, len);
    r->label[len] = '\0';
    return 0;
}

size_t reader_elem_size(elem_type t)
{
    switch (t) {
    case ELEM_U8:
    case ELEM_I8:
        return 1;
    case ELEM_I16:
        return 2;
    case ELEM_I32:
    case ELEM_F32:
        return 4;
    case ELEM_F64:
        return 8;
    }
    return 1;
}

/* Assembles an unsigned integer of size bytes in the file's byte order. */
static uint64_t load_uint(const unsigned char *p, size_t size, int big_endian)
{
    uint64_t v = 0;
    for (size_t i = 0; i < size; i++) {
        size_t at = big_endian ? i : size - 1 - i;
        v = (v << 8) | p[at];
    }
    return v;
}

static double decode_one(elem_type t, int big_endian, const unsigned char *p)
{
    switch (t) {
    case ELEM_U8:
        return (double)p[0];
    case ELEM_I8:
        return (double)(int8_t)p[0];
    case ELEM_I16:
        return (double)(int16_t)(uint16_t)load_uint(p, 2, big_endian);
    case ELEM_I32:
        return (double)(int32_t)(uint32_t)load_uint(p, 4, big_endian);
    case ELEM_F32: {
        uint32_t bits = (uint32_t)load_uint(p, 4, big_endian);
        float f;
        memcpy(&f, &bits, sizeof f);
        return (double)f;
    }
    case ELEM_F64: {
        uint64_t bits = load_uint(p, 8, big_endian);
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    }
    return 0.0;
}

void reader_decode(elem_type t, int big_endian, const unsigned char *src, size_t n, double *dst)
{
    size_t size = reader_elem_size(t);
    for (size_t i = 0; i < n; i++)
        dst[i] = decode_one(t, big_endian, src + i * size);
}

int reader_parse_number(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s)
        return -1;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end != '\0')
        return -1;
    *out = v;
    return 0;
}
