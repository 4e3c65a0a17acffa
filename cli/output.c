/*
 * output.c: result tables and JSON. Labels are arbitrary bytes, so JSON output validates
 * UTF-8 and escapes control characters; text output prints labels as they are.
 */
#include <math.h>
#include <string.h>

#include "output.h"

/* Length of the valid UTF-8 sequence at s, or 0 when the bytes there are not one. */
static size_t utf8_length(const unsigned char *s)
{
    size_t n;
    uint32_t min;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0) {
        n = 2;
        min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3;
        min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    uint32_t cp = s[0] & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static void put_escaped(FILE *f, unsigned char c)
{
    switch (c) {
    case '"':
        fputs("\\\"", f);
        break;
    case '\\':
        fputs("\\\\", f);
        break;
    case '\n':
        fputs("\\n", f);
        break;
    case '\t':
        fputs("\\t", f);
        break;
    case '\r':
        fputs("\\r", f);
        break;
    default:
        if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

void out_json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p != '\0') {
        size_t n = utf8_length(p);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
        } else if (n == 1) {
            put_escaped(f, *p++);
        } else {
            fwrite(p, 1, n, f);
            p += n;
        }
    }
    fputc('"', f);
}

/* Floats in JSON: %.9g reads back as the same float; null for NaN and infinities, which
 * JSON cannot write. */
static void json_float(FILE *f, double v)
{
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    fprintf(f, "%.9g", v);
}

static const char *label_of(const copse_index *ix, int64_t id)
{
    const char *label = NULL;
    size_t len = 0;
    if (copse_get_label(ix, id, &label, &len) != COPSE_OK || label == NULL)
        return NULL;
    return label;
}

static int digits(int64_t v)
{
    int n = v < 0 ? 2 : 1;
    for (v = v < 0 ? -v : v; v >= 10; v /= 10)
        n++;
    return n;
}

void out_results_text(FILE *f, const copse_index *ix, const query_result *q)
{
    int labels = copse_has_labels(ix);
    int w_rank = digits(q->n) > 4 ? digits(q->n) : 4;
    int w_id = 2, w_dist = 8;
    char buf[64];
    for (int64_t i = 0; i < q->n; i++) {
        if (digits(q->ids[i]) > w_id)
            w_id = digits(q->ids[i]);
        int len = snprintf(buf, sizeof buf, "%.6g", (double)q->dists[i]);
        if (len > w_dist)
            w_dist = len;
    }
    fprintf(f, "query: %s\n", q->title);
    fprintf(f, "%*s  %*s  %*s%s\n", w_rank, "rank", w_id, "id", w_dist, "distance",
            labels ? "  label" : "");
    for (int64_t i = 0; i < q->n; i++) {
        fprintf(f, "%*lld  %*lld  %*.6g", w_rank, (long long)(i + 1), w_id,
                (long long)q->ids[i], w_dist, (double)q->dists[i]);
        const char *label = labels ? label_of(ix, q->ids[i]) : NULL;
        if (label != NULL)
            fprintf(f, "  %s", label);
        fputc('\n', f);
    }
}

void out_results_json(FILE *f, const copse_index *ix, const query_result *q)
{
    int labels = copse_has_labels(ix);
    fputs("{\"query\": ", f);
    out_json_string(f, q->title);
    fputs(", \"results\": [", f);
    for (int64_t i = 0; i < q->n; i++) {
        fprintf(f, "%s{\"id\": %lld, \"distance\": ", i > 0 ? ", " : "", (long long)q->ids[i]);
        json_float(f, q->dists[i]);
        const char *label = labels ? label_of(ix, q->ids[i]) : NULL;
        if (label != NULL) {
            fputs(", \"label\": ", f);
            out_json_string(f, label);
        }
        fputc('}', f);
    }
    fputs("]}\n", f);
}
