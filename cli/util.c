/*
 * util.c: error records, the mapping from library status codes to exit codes, clocks and
 * small allocation helpers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cli_fail(cli_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

int cli_exit_code(int status)
{
    switch (status) {
    case COPSE_OK:
        return EXIT_OK;
    case COPSE_ERR_ARG:
        return EXIT_USAGE;
    case COPSE_ERR_DIM:
    case COPSE_ERR_VALUE:
    case COPSE_ERR_ID:
    case COPSE_ERR_NOTFOUND:
    case COPSE_ERR_METRIC:
        return EXIT_DATA;
    case COPSE_ERR_IO:
    case COPSE_ERR_NOTCOPSE:
    case COPSE_ERR_VERSION:
        return EXIT_IO;
    case COPSE_ERR_CORRUPT:
        return EXIT_DAMAGED;
    default:
        return EXIT_FAIL;
    }
}

static int fail_with_detail(cli_err *err, int status, const char *detail, const char *context)
{
    const char *text = detail != NULL && detail[0] != '\0' ? detail : copse_strerror(status);
    return cli_fail(err, cli_exit_code(status), "%s: %s", context, text);
}

int cli_fail_status(cli_err *err, int status, const copse_index *ix, const char *context)
{
    return fail_with_detail(err, status, ix != NULL ? copse_errmsg(ix) : NULL, context);
}

int cli_fail_scratch(cli_err *err, int status, const copse_scratch *s, const char *context)
{
    return fail_with_detail(err, status, s != NULL ? copse_scratch_errmsg(s) : NULL, context);
}

int cli_report(const char *cmd, const cli_err *err)
{
    fflush(stdout);
    fprintf(stderr, "copse %s: %s\n", cmd, err->msg);
    return err->code;
}

int cli_finish(const char *cmd, int rc, const cli_err *err)
{
    return rc == 0 || rc == CLI_HELP_SHOWN ? EXIT_OK : cli_report(cmd, err);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *cli_human_bytes(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

void *cli_alloc_array(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return malloc(n * size > 0 ? n * size : 1);
}

char *cli_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

void cli_print_wrapped(FILE *f, const char *lead, int indent, const char *text, int width)
{
    int col = (int)strlen(lead);
    fputs(lead, f);
    const char *p = text;
    int first = 1;
    while (*p != '\0') {
        size_t word = strcspn(p, " ");
        if (!first && col + 1 + (int)word > width) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (!first) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, word, f);
        col += (int)word;
        first = 0;
        p += word;
        p += strspn(p, " ");
    }
    fputc('\n', f);
}

int cli_stderr_tty(void)
{
    return isatty(STDERR_FILENO);
}

int cli_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cli_each_line(const char *path, cli_line_fn line, void *ctx, cli_err *err)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    if (f == NULL)
        return cli_fail(err, EXIT_IO, "%s: %s", path, strerror(errno));
    const char *name = is_stdin ? "standard input" : path;
    char *text = NULL;
    size_t cap = 0;
    int64_t n = 0;
    int rc = 0;
    while (rc == 0 && getline(&text, &cap, f) >= 0) {
        n++;
        text[strcspn(text, "\r\n")] = '\0';
        char *p = text + strspn(text, " \t");
        if (*p != '\0' && *p != '#')
            rc = line(ctx, p, name, n, err);
    }
    if (rc == 0 && ferror(f))
        rc = cli_fail(err, EXIT_IO, "%s: %s", name, strerror(errno));
    free(text);
    if (!is_stdin)
        fclose(f);
    return rc;
}

int cli_line_id(char *text, int64_t *id, char **rest)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || v < 0 || errno == ERANGE || (*end != '\0' && *end != ' ' && *end != '\t'))
        return -1;
    *id = (int64_t)v;
    *rest = end;
    return 0;
}

/* ---- tags (query and build options, and the CSV reader's tags column) ---- */

static int is_tag_separator(char c)
{
    return c == ',' || c == ';' || c == ' ' || c == '\t';
}

int cli_tag_mask(const char *s, uint64_t *mask, const char **bad)
{
    for (const char *p = s;;) {
        while (is_tag_separator(*p))
            p++;
        if (*p == '\0')
            return 0;
        const char *start = p;
        long t = 0;
        while (*p >= '0' && *p <= '9' && t <= COPSE_MAX_TAG)
            t = t * 10 + (*p++ - '0');
        if (p == start || t > COPSE_MAX_TAG || (*p != '\0' && !is_tag_separator(*p))) {
            if (bad != NULL)
                *bad = start;
            return -1;
        }
        *mask |= 1ull << t;
    }
}

int cli_tag_list(uint64_t mask, uint32_t *list)
{
    int n = 0;
    for (uint32_t t = 0; t <= COPSE_MAX_TAG; t++)
        if (mask >> t & 1)
            list[n++] = t;
    return n;
}

typedef struct tags_ctx {
    copse_index *ix;
    const char *items;
    int64_t lines;
} tags_ctx;

/* One line of a --tags file: "ID TAG TAG ...". */
static int apply_tags_line(void *ctx, char *text, const char *name, int64_t n, cli_err *err)
{
    tags_ctx *c = ctx;
    int64_t id;
    char *rest;
    if (cli_line_id(text, &id, &rest) != 0)
        return cli_fail(err, EXIT_DATA, "%s:%lld: '%.40s' is not an item id", name,
                        (long long)n, text);
    uint64_t mask = 0;
    const char *bad = NULL;
    if (cli_tag_mask(rest, &mask, &bad) != 0)
        return cli_fail(err, EXIT_DATA, "%s:%lld: '%.20s' is not a tag 0..%d", name,
                        (long long)n, bad, COPSE_MAX_TAG);
    uint32_t tags[COPSE_MAX_TAG + 1];
    int st = copse_set_tags(c->ix, id, tags, cli_tag_list(mask, tags));
    if (st == COPSE_ERR_NOTFOUND)
        return cli_fail(err, EXIT_DATA, "%s:%lld: no item %lld in %s", name, (long long)n,
                        (long long)id, c->items);
    if (st != COPSE_OK)
        return cli_fail(err, cli_exit_code(st), "%s:%lld: %s", name, (long long)n,
                        copse_errmsg(c->ix));
    c->lines++;
    return 0;
}

int cli_apply_tags_file(copse_index *ix, const char *path, const char *items, int64_t *lines,
                        cli_err *err)
{
    tags_ctx c = {ix, items, 0};
    int rc = cli_each_line(path, apply_tags_line, &c, err);
    if (lines)
        *lines = c.lines;
    return rc;
}
