/*
 * common.h: what every benchmark driver shares (C11, also compiles as C++).
 *
 * Each driver (peers/annoy.cc, peers/hnswlib.cc, peers/faiss.cc, copse_bench.c) is one small
 * main() around one library. It runs in two modes, always as a fresh process so peak RSS and
 * load time belong to one phase only:
 *   build: read base vectors, build the index with N threads, save it, time the build and
 *          write one CSV row (kind=build).
 *   query: load the saved index, then for each value of the query knob answer the queries one
 *          at a time on one thread, time them, and write one CSV row per value (kind=query).
 * Recall is computed here, after the timed loop, against the cached exact top-100.
 *
 * Data files (written by tools/prepare.c under bench/out/data/<dataset>/):
 *   base.fbin, query.fbin   int32 n, int32 dim, then n * dim float32, row-major
 *   gt.ibin                 int32 nq, int32 100, then nq * 100 int32 ids, nearest first
 *   gt_dist.fbin            int32 nq, int32 100, then the matching exact distances
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#define BENCH_GT_K 100

static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Peak resident set of this process so far, in KiB. */
static inline long bench_peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Current resident set, in KiB (from /proc/self/statm). */
static inline long bench_rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * 4;
}

static inline long long bench_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (long long)st.st_size;
}

/* Reads a whole file once so that the timed load finds it in the page cache, as the method
 * says: this VM's page cache drops files it has not touched for a while, and a load that
 * faulted a few pages in from disk measured the disk (2-12 ms), not the library. */
static inline void bench_cache_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        bench_die("cannot open %s: %s", path, strerror(errno));
    size_t cap = (size_t)1 << 20;
    char *buf = (char *)malloc(cap);
    if (!buf)
        bench_die("out of memory");
    while (fread(buf, 1, cap, f) == cap) {
    }
    free(buf);
    fclose(f);
}

/* Reads an .fbin / .ibin file: 4-byte count, 4-byte dim, then count * dim 4-byte values.
 * max_rows > 0 reads only the first max_rows rows. */
static inline void *bench_read_bin(const char *path, int max_rows, int *rows, int *dim)
{
    int32_t hdr[2];
    FILE *f = fopen(path, "rb");
    if (!f)
        bench_die("cannot open %s: %s", path, strerror(errno));
    if (fread(hdr, 4, 2, f) != 2 || hdr[0] <= 0 || hdr[1] <= 0)
        bench_die("%s: bad header", path);
    int n = hdr[0];
    if (max_rows > 0 && max_rows < n)
        n = max_rows;
    size_t count = (size_t)n * (size_t)hdr[1];
    void *data = malloc(count * 4);
    if (!data)
        bench_die("out of memory reading %s", path);
    if (fread(data, 4, count, f) != count)
        bench_die("%s: short file", path);
    fclose(f);
    *rows = n;
    *dim = hdr[1];
    return data;
}

/* ---- command line ---------------------------------------------------------------------- */

typedef struct bench_args {
    const char *mode;    /* "build" or "query" */
    const char *data;    /* folder holding base.fbin, query.fbin, gt.ibin, gt_dist.fbin */
    const char *dataset; /* name written to the CSV */
    const char *metric;  /* "euclidean", "angular" or "dot" (maximum inner product) */
    const char *params;  /* build parameters, "key=value;key=value" */
    const char *index;   /* index file path */
    const char *knobs;   /* query knob values, "v1,v2,..." (query mode) */
    const char *out;     /* CSV file to append to */
    int threads;         /* build threads */
    int nq;              /* queries to time (0: all) */
    int k;               /* neighbours per query */
    int rep;             /* repetition number, written to the CSV */
    int batch;           /* > 0: also time the library's batch call with 1..batch threads */
} bench_args;

static inline void bench_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s build|query --data DIR --dataset NAME --metric euclidean|angular|dot\n"
            "          --params 'k=v;k=v' --index FILE --out CSV [--threads N] [--knobs v1,v2]\n"
            "          [--nq N] [--k 10] [--rep R] [--batch MAX_THREADS]\n",
            prog);
    exit(2);
}

static inline bench_args bench_parse(int argc, char **argv)
{
    bench_args a;
    memset(&a, 0, sizeof a);
    a.threads = 1;
    a.k = 10;
    a.params = "";
    a.knobs = "";
    if (argc < 2)
        bench_usage(argv[0]);
    a.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        if (i + 1 >= argc)
            bench_usage(argv[0]);
        const char *v = argv[++i];
        if (!strcmp(o, "--data")) a.data = v;
        else if (!strcmp(o, "--dataset")) a.dataset = v;
        else if (!strcmp(o, "--metric")) a.metric = v;
        else if (!strcmp(o, "--params")) a.params = v;
        else if (!strcmp(o, "--index")) a.index = v;
        else if (!strcmp(o, "--knobs")) a.knobs = v;
        else if (!strcmp(o, "--out")) a.out = v;
        else if (!strcmp(o, "--threads")) a.threads = atoi(v);
        else if (!strcmp(o, "--nq")) a.nq = atoi(v);
        else if (!strcmp(o, "--k")) a.k = atoi(v);
        else if (!strcmp(o, "--rep")) a.rep = atoi(v);
        else if (!strcmp(o, "--batch")) a.batch = atoi(v);
        else bench_usage(argv[0]);
    }
    if (strcmp(a.mode, "build") && strcmp(a.mode, "query"))
        bench_usage(argv[0]);
    if (!a.data || !a.dataset || !a.metric || !a.index || !a.out)
        bench_usage(argv[0]);
    if (strcmp(a.metric, "euclidean") && strcmp(a.metric, "angular") && strcmp(a.metric, "dot"))
        bench_die("metric must be euclidean, angular or dot, not %s", a.metric);
    if (a.k < 1 || a.k > BENCH_GT_K)
        bench_die("k must be 1..%d", BENCH_GT_K);
    return a;
}

static inline int bench_is_angular(const bench_args *a) { return strcmp(a->metric, "angular") == 0; }
static inline int bench_is_dot(const bench_args *a) { return strcmp(a->metric, "dot") == 0; }

/* Integer value of key in "k=v;k=v", or def when absent. */
static inline long bench_param(const char *params, const char *key, long def)
{
    size_t kl = strlen(key);
    const char *p = params;
    while (p && *p) {
        if (!strncmp(p, key, kl) && p[kl] == '=')
            return strtol(p + kl + 1, NULL, 10);
        p = strchr(p, ';');
        if (p)
            p++;
    }
    return def;
}

/* Splits "v1,v2,..." into at most max longs; returns the count. */
static inline int bench_knobs(const char *s, long *out, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        char *end;
        out[n++] = strtol(s, &end, 10);
        s = (*end == ',') ? end + 1 : NULL;
    }
    return n;
}

/* ---- data ------------------------------------------------------------------------------ */

typedef struct bench_data {
    float *base;
    int n, dim;
    float *queries;
    int nq;
    int32_t *gt;   /* nq * BENCH_GT_K */
    float *gt_dist;
} bench_data;

static inline void bench_path(char *buf, size_t len, const char *dir, const char *file)
{
    if ((size_t)snprintf(buf, len, "%s/%s", dir, file) >= len)
        bench_die("path too long: %s/%s", dir, file);
}

static inline void bench_load_base(const bench_args *a, bench_data *d)
{
    char p[4096];
    bench_path(p, sizeof p, a->data, "base.fbin");
    d->base = (float *)bench_read_bin(p, 0, &d->n, &d->dim);
}

static inline void bench_load_queries(const bench_args *a, bench_data *d)
{
    char p[4096];
    int dim, gk, gq;
    bench_path(p, sizeof p, a->data, "query.fbin");
    d->queries = (float *)bench_read_bin(p, a->nq, &d->nq, &dim);
    d->dim = dim;
    bench_path(p, sizeof p, a->data, "gt.ibin");
    d->gt = (int32_t *)bench_read_bin(p, a->nq, &gq, &gk);
    if (gk != BENCH_GT_K || gq != d->nq)
        bench_die("%s: expected %d x %d", p, d->nq, BENCH_GT_K);
    bench_path(p, sizeof p, a->data, "gt_dist.fbin");
    d->gt_dist = (float *)bench_read_bin(p, a->nq, &gq, &gk);
}

/* The first nq queries of data (a data set's directory) and their exact top-100, for the
 * tools in bench/tools, which take no bench_args of their own. */
static inline void bench_tool_queries(const char *data, int nq, bench_data *d)
{
    bench_args a;
    memset(&a, 0, sizeof a);
    a.data = data;
    a.nq = nq;
    memset(d, 0, sizeof *d);
    bench_load_queries(&a, d);
}

/* Mean recall@k over nq queries: a returned id counts when it is one of the true nearest
 * items at distance <= the true k-th distance (ties at the k-th place all count, as in
 * ann-benchmarks; the exact top-100 holds every such tie in practice). Duplicates in one
 * answer count once. ids is nq * k, -1 for an empty slot. */
static inline double bench_recall(const bench_data *d, const int64_t *ids, int k)
{
    double total = 0;
    for (int q = 0; q < d->nq; q++) {
        const int32_t *g = d->gt + (size_t)q * BENCH_GT_K;
        const float *gd = d->gt_dist + (size_t)q * BENCH_GT_K;
        float thr = gd[k - 1];
        thr += fabsf(thr) * 1e-6f + 1e-6f;
        int hit = 0;
        for (int i = 0; i < k; i++) {
            int64_t id = ids[(size_t)q * k + i];
            if (id < 0)
                continue;
            int dup = 0;
            for (int j = 0; j < i; j++)
                if (ids[(size_t)q * k + j] == id)
                    dup = 1;
            if (dup)
                continue;
            for (int j = 0; j < BENCH_GT_K && gd[j] <= thr; j++)
                if (g[j] == id) {
                    hit++;
                    break;
                }
        }
        total += (double)(hit > k ? k : hit) / k;
    }
    return total / d->nq;
}

/* out = v scaled to unit length (a zero row stays zero): cosine as an inner product, for
 * the peers that take it so; their queries are scaled inside the timed loop, as their Python
 * APIs do. */
static inline void bench_unit(const float *v, int dim, float *out)
{
    double s = 0;
    for (int j = 0; j < dim; j++)
        s += (double)v[j] * v[j];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.f;
    for (int j = 0; j < dim; j++)
        out[j] = v[j] * inv;
}

/* Unit-length copy of n rows. */
static inline float *bench_normalized(const float *v, int n, int dim)
{
    float *out = (float *)malloc((size_t)n * dim * sizeof(float));
    if (!out)
        bench_die("out of memory");
    for (size_t i = 0; i < (size_t)n; i++)
        bench_unit(v + i * dim, dim, out + i * dim);
    return out;
}

/* ---- CSV --------------------------------------------------------------------------------- */

#define BENCH_CSV_HEADER                                                                     \
    "kind,dataset,library,params,query,rep,build_threads,build_s,index_bytes,load_ms,"       \
    "peak_rss_kb,index_rss_kb,recall10,qps,nq,k,loadavg1\n"

/* The 1-minute load average when a row is written: near 1 while one single-threaded driver
 * runs alone, above that when other work shares the machine (written with each row so a
 * noisy figure can be told from a real one). */
static inline double bench_loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

static inline FILE *bench_csv_open(const char *path)
{
    FILE *f = fopen(path, "a");
    if (!f)
        bench_die("cannot open %s: %s", path, strerror(errno));
    if (ftell(f) == 0)
        fputs(BENCH_CSV_HEADER, f);
    return f;
}

static inline void bench_write_build(const bench_args *a, const char *lib, double build_s)
{
    FILE *f = bench_csv_open(a->out);
    fprintf(f, "build,%s,%s,%s,,%d,%d,%.4f,%lld,,%ld,,,,,,%.2f\n", a->dataset, lib, a->params,
            a->rep, a->threads, build_s, bench_file_size(a->index), bench_peak_rss_kb(),
            bench_loadavg());
    fclose(f);
    fprintf(stderr, "%-8s %-22s build threads=%d %.2fs file=%.1fMB peak_rss=%.0fMB\n", lib,
            a->params, a->threads, build_s, bench_file_size(a->index) / 1e6,
            bench_peak_rss_kb() / 1024.0);
}

/* kind is "query" (one query at a time, one thread) or "batch" (a library's own batch call,
 * with the thread count in the query column). */
static inline void bench_write_row(const bench_args *a, const char *kind, const char *lib,
                            const char *query, double load_ms, long index_rss_kb, double recall,
                            double qps, int nq)
{
    FILE *f = bench_csv_open(a->out);
    fprintf(f, "%s,%s,%s,%s,%s,%d,,,%lld,%.4f,%ld,%ld,%.5f,%.1f,%d,%d,%.2f\n", kind,
            a->dataset, lib, a->params, query, a->rep, bench_file_size(a->index), load_ms,
            bench_peak_rss_kb(), index_rss_kb, recall, qps, nq, a->k, bench_loadavg());
    fclose(f);
    fprintf(stderr, "%-8s %-22s %-14s recall=%.4f qps=%8.1f load=%.3fms\n", lib, a->params,
            query, recall, qps, load_ms);
}

static inline void bench_write_query(const bench_args *a, const char *lib, const char *query,
                              double load_ms, long index_rss_kb, double recall, double qps,
                              int nq)
{
    bench_write_row(a, "query", lib, query, load_ms, index_rss_kb, recall, qps, nq);
}

/* Queries are timed in one pass over all of them; before the first knob a warm-up pass over
 * up to 200 queries (at the largest knob) touches the pages a mapped index needs, so QPS
 * measures steady state and load_ms measures only the load call. */
#define BENCH_WARMUP 200

#endif /* BENCH_COMMON_H */
