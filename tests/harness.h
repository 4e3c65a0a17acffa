/*
 * harness.h: the C test harness. Tests register in a table; each runs with a seed that is
 * printed, and `copse_tests NAME --seed S` replays one (several NAMEs, each a prefix, run
 * each group they name). Output ends with the summary line
 * "N passed, N failed" that CI reads.
 */
#ifndef COPSE_TEST_HARNESS_H
#define COPSE_TEST_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copse.h"

/* T_ASAN: 1 in a build under AddressSanitizer (gcc or clang). */
#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#ifndef T_ASAN
#define T_ASAN 0
#endif
/* Returns from a case under ASan, saying so: for cases about processes seen from outside
 * (killed, or their pages counted), where a sanitizer adds no check and minutes of run time;
 * the release run of copse_tests has them. */
#define T_NOT_UNDER_ASAN()                                                                  \
    do {                                                                                      \
        if (T_ASAN) {                                                                         \
            printf("  skipped under ASan (the release run has it)\n");                       \
            return;                                                                           \
        }                                                                                     \
    } while (0)

typedef struct t_ctx {
    uint64_t seed;
    uint64_t rng;
    int failed;
    const char *name;
} t_ctx;

typedef struct t_case {
    const char *name;
    void (*fn)(t_ctx *t);
} t_case;

#define CHECK(t, cond)                                                                       \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);        \
            (t)->failed = 1;                                                                  \
        }                                                                                     \
    } while (0)

#define CHECK_RC(t, expr, want)                                                               \
    do {                                                                                      \
        int rc_ = (expr);                                                                     \
        if (rc_ != (want)) {                                                                  \
            fprintf(stderr, "  %s:%d: %s returned %d (%s), wanted %d (%s)\n", __FILE__,       \
                    __LINE__, #expr, rc_, copse_strerror(rc_), (int)(want),                   \
                    copse_strerror(want));                                                    \
            (t)->failed = 1;                                                                  \
        }                                                                                     \
    } while (0)

#define CHECK_OK(t, expr) CHECK_RC(t, expr, COPSE_OK)

/* Stops the test when cond fails (for setup whose failure makes the rest meaningless). */
#define REQUIRE(t, cond)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "  %s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond);  \
            (t)->failed = 1;                                                                  \
            return;                                                                           \
        }                                                                                     \
    } while (0)

static inline uint64_t t_next(t_ctx *t)
{
    uint64_t z = (t->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline double t_unif(t_ctx *t) { return (double)(t_next(t) >> 11) * (1.0 / 9007199254740992.0); }

static inline double t_gauss(t_ctx *t)
{
    double u = t_unif(t), v = t_unif(t);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/* n x dim floats: uniform in [-1, 1). */
float *t_uniform(t_ctx *t, int64_t n, int dim);
/* n x dim floats around n_clusters gaussian centres (spread 1, noise sigma). */
float *t_clustered(t_ctx *t, int64_t n, int dim, int n_clusters, double sigma);
/* n x dim of 0/1 floats: n_clusters random bit patterns, each bit flipped with p = flip
 * (flip 0.5 gives uniform bits). */
float *t_bits(t_ctx *t, int64_t n, int dim, int n_clusters, double flip);
/* A temporary folder for this test's files (made on first use), and a path inside it. Each
 * returns a buffer the next call overwrites. */
const char *t_dir(t_ctx *t);
const char *t_path(t_ctx *t, const char *file);
/* recall@k of approximate results against exact ones (both nq x k, NaN padded): a result
 * counts when it is as near as the k-th true neighbour, so ties (frequent with hamming) do
 * not depend on which of equal items the brute force listed. larger_is_nearer for dot. */
double t_recall(const float *approx_d, const float *exact_d, int64_t nq, int64_t k,
                int larger_is_nearer);
/* Builds an index of n rows with ids 0..n-1. */
copse_index *t_index(t_ctx *t, int dim, copse_metric m, const float *x, int64_t n, int n_trees,
                     int threads);
/* Seconds on the monotonic clock. */
double t_now(void);
/* One named step of a long case: prints "  ok   WHAT" or "  FAIL WHAT" (printf format) and
 * marks the case failed when ok is 0. */
void t_step(t_ctx *t, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* CRC32C by its definition, a bit at a time: the reference for the library's CRCs and the
 * checksum of hand-made files. Continues crc like the library's (0 to start). */
uint32_t t_crc32c(uint32_t crc, const void *data, size_t len);
/* Whole file into memory. */
unsigned char *t_read_file(const char *path, size_t *len);
void t_write_file(const char *path, const void *data, size_t len);

#endif
