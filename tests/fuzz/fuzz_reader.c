/*
 * fuzz_reader.c: libFuzzer target for one of the `copse` command's input readers
 * (cli/readers/), compiled once per format with -DFUZZ_FORMAT="csv" (or "auto" for detection
 * from the content). The readers stream from a path through zlib, so each input is written to
 * a private temporary file (gzip-compressed inputs are therefore covered too) and read:
 * row by row as floats (what `copse build` does), as whole numbers (ground-truth files), and
 * whole through reader_load (query files).
 *
 * For CSV/TSV the first byte picks the --header/--ids options (-1, 0 or 1 each).
 * A reader must end every input with rows, a clean end, or an error with an exit code and a
 * message, never a crash or out-of-bounds access; the checks below abort otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../cli/readers/reader.h"

#ifndef FUZZ_FORMAT
#define FUZZ_FORMAT "csv"
#endif

#define FUZZ_CHECK(cond)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_reader(%s): invariant failed at %s:%d: %s\n", FUZZ_FORMAT,  \
                    __FILE__, __LINE__, #cond);                                               \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

enum { MAX_ROWS = 20000 };

static int valid_code(int code)
{
    return code == EXIT_FAIL || code == EXIT_USAGE || code == EXIT_DATA || code == EXIT_IO;
}

static void check_failure(int rc, const cli_err *err)
{
    FUZZ_CHECK(valid_code(rc) && err->code == rc && err->msg[0] != '\0');
}

static const char *input_path(void)
{
    static char path[512];
    if (!path[0]) {
        const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(path, sizeof path, "%s/copse-fuzz-reader-%d-input", dir, (int)getpid());
    }
    return path;
}

static void read_rows(const reader_options *o, int as_ints)
{
    cli_reader *r = NULL;
    cli_err err = {0};
    int rc = reader_open(input_path(), o, &r, &err);
    if (rc != 0) {
        check_failure(rc, &err);
        FUZZ_CHECK(r == NULL);
        return;
    }
    int dim = reader_dim(r);
    FUZZ_CHECK(dim >= 1);
    float *row = malloc(sizeof(float) * (size_t)dim);
    int64_t *irow = malloc(sizeof(int64_t) * (size_t)dim);
    FUZZ_CHECK(row && irow);
    int64_t n = 0;
    for (;;) {
        err.code = 0;
        int got = as_ints ? reader_next_ints(r, irow, &err) : reader_next(r, row, &err);
        if (got == 1) {
            n++;
            FUZZ_CHECK(reader_records(r) == n);
            (void)reader_id(r);
            FUZZ_CHECK(reader_label(r) != NULL);
            (void)reader_progress(r);
            if (n >= MAX_ROWS)
                break;
            continue;
        }
        if (got < 0)
            FUZZ_CHECK(valid_code(err.code) && err.msg[0] != '\0');
        else
            FUZZ_CHECK(got == 0);
        break;
    }
    FUZZ_CHECK(reader_count(r) >= -1);
    free(row);
    free(irow);
    reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader_options o;
    reader_options_init(&o);
    cli_err err = {0};
    if (strcmp(FUZZ_FORMAT, "auto") != 0)
        FUZZ_CHECK(reader_format_from_name(FUZZ_FORMAT, &o.format, &err) == 0);
    if (o.format == CLI_FMT_CSV || o.format == CLI_FMT_TSV) {
        if (size == 0)
            return 0;
        o.header = data[0] % 3 - 1;
        o.ids = data[0] / 3 % 3 - 1;
        data++;
        size--;
    }
    FILE *f = fopen(input_path(), "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size || size == 0);
    fclose(f);

    read_rows(&o, 0);
    read_rows(&o, 1);
    cli_matrix m;
    int rc = reader_load(input_path(), &o, MAX_ROWS, &m, &err);
    if (rc == 0) {
        FUZZ_CHECK(m.n >= 1 && m.n <= MAX_ROWS && m.dim >= 1 && m.data != NULL);
        matrix_free(&m);
    } else {
        check_failure(rc, &err);
    }
    unlink(input_path());
    return 0;
}
