/*
 * harness.c: the runner and helpers for the C tests.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tests.h"

float *t_uniform(t_ctx *t, int64_t n, int dim)
{
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)dim);
    for (int64_t i = 0; i < n * dim; i++)
        x[i] = (float)(t_unif(t) * 2 - 1);
    return x;
}

float *t_clustered(t_ctx *t, int64_t n, int dim, int n_clusters, double sigma)
{
    float *c = malloc(sizeof(float) * (size_t)n_clusters * (size_t)dim);
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)dim);
    for (int64_t i = 0; i < (int64_t)n_clusters * dim; i++)
        c[i] = (float)t_gauss(t);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = (int64_t)(t_next(t) % (uint64_t)n_clusters);
        for (int d = 0; d < dim; d++)
            x[i * dim + d] = c[k * dim + d] + (float)(sigma * t_gauss(t));
    }
    free(c);
    return x;
}

float *t_bits(t_ctx *t, int64_t n, int dim, int n_clusters, double flip)
{
    float *c = malloc(sizeof(float) * (size_t)n_clusters * (size_t)dim);
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)dim);
    for (int64_t i = 0; i < (int64_t)n_clusters * dim; i++)
        c[i] = (float)(t_next(t) >> 63);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = (int64_t)(t_next(t) % (uint64_t)n_clusters);
        for (int d = 0; d < dim; d++)
            x[i * dim + d] = t_unif(t) < flip ? 1 - c[k * dim + d] : c[k * dim + d];
    }
    free(c);
    return x;
}

double t_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void t_step(t_ctx *t, int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  %s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (!ok)
        t->failed = 1;
}

uint32_t t_crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = ~crc;
    while (len--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

const char *t_dir(t_ctx *t)
{
    static char dir[256];
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/copse-test-%d-%s", base, (int)getpid(), t->name);
    for (char *p = dir + strlen(base) + 1; *p; p++)
        if (*p == '/')
            *p = '_';
    mkdir(dir, 0777);
    return dir;
}

const char *t_path(t_ctx *t, const char *file)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", t_dir(t), file);
    return path;
}

double t_recall(const float *approx_d, const float *exact_d, int64_t nq, int64_t k,
                int larger_is_nearer)
{
    int64_t hits = 0;
    double sign = larger_is_nearer ? -1 : 1;
    for (int64_t q = 0; q < nq; q++) {
        double kth = sign * exact_d[q * k + k - 1];
        for (int64_t i = 0; i < k; i++) {
            double d = sign * approx_d[q * k + i];
            hits += !isnan(d) && d <= kth + 1e-5 * fabs(kth);
        }
    }
    return nq && k ? (double)hits / (double)(nq * k) : 1.0;
}

copse_index *t_index(t_ctx *t, int dim, copse_metric m, const float *x, int64_t n, int n_trees,
                     int threads)
{
    copse_index *ix = NULL;
    if (copse_new(dim, m, &ix) != COPSE_OK || copse_add_items(ix, n, NULL, 0, x) != COPSE_OK ||
        copse_build(ix, n_trees, threads) != COPSE_OK) {
        fprintf(stderr, "  t_index: %s\n", copse_errmsg(ix));
        t->failed = 1;
        copse_free(ix);
        return NULL;
    }
    return ix;
}

unsigned char *t_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

void t_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

static const t_case *all_cases[] = {basic_cases, error_cases, recall_cases, file_cases,
                                    kernel_cases, checksum_cases, thread_cases, alloc_cases,
                                    io_cases, filter_cases, live_cases, storage_cases};
/* Cases that need minutes and gigabytes (`make test-big`): run only when an argument names
 * at least their group with its slash ("big/"), so "b" for basic/ cannot start them; never
 * in a run of everything, and without the time limit. */
static const t_case *named_only_cases[] = {big_cases};

/* Every argument but --seed S is a name prefix ("kernels/", "io/modes"); none runs all
 * (but the named-only cases). */
static int wanted(const char *name, int named_only, int argc, char **argv)
{
    int any = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0) {
            i++;
            continue;
        }
        size_t len = strlen(argv[i]);
        if (strncmp(name, argv[i], len) == 0 && (!named_only || len > strcspn(name, "/")))
            return 1;
        any = 1;
    }
    return !any && !named_only;
}

/* A case that hangs (a query that never returns, a child never reaped) fails with its name
 * instead of stopping the whole run: ten minutes each, far beyond any case under ASan. */
#define CASE_SECONDS 600
#define STR_(x) #x
#define STR(x) STR_(x)
static const char *running;

static void on_alarm(int sig)
{
    (void)sig;
    static const char head[] = "FAIL ", tail[] = ": still running after " STR(CASE_SECONDS) " s\n";
    /* Only async-signal-safe calls here. Exit 4: a case hung (5: and it could not be said). */
    int said = write(STDOUT_FILENO, head, sizeof head - 1) >= 0 &&
               write(STDOUT_FILENO, running, strlen(running)) >= 0 &&
               write(STDOUT_FILENO, tail, sizeof tail - 1) >= 0;
    _exit(said ? 4 : 5);
}

int main(int argc, char **argv)
{
    uint64_t seed = 0;
    int have_seed = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
            have_seed = 1;
        }
    }
    if (!have_seed)
        seed = getenv("COPSE_TEST_SEED") ? strtoull(getenv("COPSE_TEST_SEED"), NULL, 0) : 20261122;
    /* Before any handle exists: afterwards the allocator is fixed. */
    if (t_install_allocator() != COPSE_OK) {
        fprintf(stderr, "copse_set_allocator refused\n");
        return 2;
    }
    if (copse_version_number() != COPSE_VERSION_NUMBER) {
        fprintf(stderr, "library version %d, header %d\n", copse_version_number(), COPSE_VERSION_NUMBER);
        return 2;
    }
    signal(SIGALRM, on_alarm);
    int passed = 0, failed = 0;
    const size_t n_all = sizeof all_cases / sizeof *all_cases;
    for (size_t g = 0; g < n_all + sizeof named_only_cases / sizeof *named_only_cases; g++) {
        int named_only = g >= n_all;
        for (const t_case *c = named_only ? named_only_cases[g - n_all] : all_cases[g]; c->name;
             c++) {
            if (!wanted(c->name, named_only, argc, argv))
                continue;
            t_ctx t = {seed, seed, 0, c->name};
            running = c->name;
            alarm(named_only ? 0 : CASE_SECONDS);
            c->fn(&t);
            alarm(0);
            printf("%s %s (seed %llu)\n", t.failed ? "FAIL" : "ok  ", c->name,
                   (unsigned long long)seed);
            fflush(stdout);
            if (t.failed)
                failed++;
            else
                passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : (passed ? 0 : 3);
}
