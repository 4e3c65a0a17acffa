/*
 * test_kernels.c: every SIMD kernel this CPU runs against the scalar reference, on lengths
 * that exercise every tail, and whole searches with each kernel set.
 */
#include "tests.h"
#include "../src/kernels/kernels.h" /* the kernel tables themselves, for blend */

static const char *const sets[] = {"avx2", "avx512", "neon"};

static void test_distances(t_ctx *t)
{
    float *a = t_uniform(t, 1, 1100), *b = t_uniform(t, 1, 1100);
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        copse_index *ref, *simd;
        for (int m = COPSE_ANGULAR; m <= COPSE_HAMMING; m++) {
            for (int n = 1; n <= 1100; n += (n < 70 ? 1 : 37)) {
                CHECK_OK(t, copse_new(n, (copse_metric)m, &ref));
                CHECK_OK(t, copse_new(n, (copse_metric)m, &simd));
                CHECK_OK(t, copse_set_kernels(ref, "scalar"));
                if (copse_set_kernels(simd, sets[s]) != COPSE_OK) {
                    copse_free(ref);
                    copse_free(simd);
                    goto next_set; /* this CPU lacks the set: nothing to compare */
                }
                float dr, ds;
                CHECK_OK(t, copse_distance(ref, a, b, &dr));
                CHECK_OK(t, copse_distance(simd, a, b, &ds));
                double tol = m == COPSE_HAMMING ? 0 : 1e-5 * (fabs(dr) + n);
                if (fabs(dr - ds) > tol) {
                    fprintf(stderr, "  %s %s n=%d: scalar %.9g, simd %.9g\n", sets[s],
                            copse_metric_name((copse_metric)m), n, dr, ds);
                    t->failed = 1;
                }
                copse_free(ref);
                copse_free(simd);
            }
        }
    next_set:;
    }
    free(a);
    free(b);
}

/* blend (two-means centroid updates) has no public entry point: call each table directly. */
static void test_blend(t_ctx *t)
{
    cp_kernels ref, simd;
    REQUIRE(t, cp_kernels_by_name("scalar", &ref));
    float *x = t_uniform(t, 1, 1100), *y0 = t_uniform(t, 1, 1100);
    float *a = malloc(1100 * sizeof(float)), *b = malloc(1100 * sizeof(float));
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        if (!cp_kernels_by_name(sets[s], &simd))
            continue;
        for (size_t n = 1; n <= 1100; n += (n < 70 ? 1 : 37)) {
            memcpy(a, y0, 1100 * sizeof(float));
            memcpy(b, y0, 1100 * sizeof(float));
            ref.blend(a, 0.75f, x, 0.3f, n);
            simd.blend(b, 0.75f, x, 0.3f, n);
            for (size_t i = 0; i < n; i++)
                CHECK(t, fabsf(a[i] - b[i]) <= 1e-6f * (fabsf(a[i]) + 1));
            CHECK(t, n == 1100 || b[n] == y0[n]); /* nothing written past n */
        }
    }
    free(a);
    free(b);
    free(x);
    free(y0);
}

/* l2u8 (the graph build's code distance) is exact: every set must equal a plain integer sum,
 * including the extremes 0 and 255 in every lane and every tail. */
static void test_l2u8(t_ctx *t)
{
    static const char *const names[] = {"scalar", "avx2", "avx512", "neon"};
    cp_kernels k;
    REQUIRE(t, cp_kernels_by_name("scalar", &k));
    enum { N = 1100 };
    unsigned char *a = malloc(N), *b = malloc(N);
    REQUIRE(t, a && b);
    uint64_t r = 12345;
    for (size_t i = 0; i < N; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = i % 7 == 0 ? 255 : (unsigned char)(r >> 56);
        b[i] = i % 7 == 0 ? 0 : (unsigned char)(r >> 48);
    }
    for (size_t s = 0; s < sizeof names / sizeof *names; s++) {
        if (!cp_kernels_by_name(names[s], &k))
            continue; /* a set this CPU lacks */
        for (size_t n = 0; n <= N; n += (n < 70 ? 1 : 37))
            for (size_t off = 0; off < 3; off++) {
                uint64_t want = 0;
                for (size_t i = 0; i + off < n; i++) {
                    int d = (int)a[i + off] - (int)b[i];
                    want += (uint64_t)(d * d);
                }
                uint32_t got = k.l2u8(a + off, b, n > off ? n - off : 0);
                if (got != want) {
                    fprintf(stderr, "  %s l2u8 n=%zu off=%zu: %u, want %llu\n", k.name, n, off,
                            got, (unsigned long long)want);
                    t->failed = 1;
                }
            }
    }
    free(a);
    free(b);
}

/* The kernels on stored codes (copse_set_storage), each set against scalar on every tail:
 * random halves (finite) and bytes, queries and scales as the metric code prepares them. */
static void test_codes(t_ctx *t)
{
    enum { MAX = 1100 };
    cp_kernels ref, simd;
    REQUIRE(t, cp_kernels_by_name("scalar", &ref));
    float *a = t_uniform(t, 1, MAX), *sc = t_uniform(t, 1, MAX);
    uint16_t *h = malloc(MAX * sizeof *h);
    uint8_t *c = malloc(MAX);
    for (int i = 0; i < MAX; i++) {
        sc[i] = fabsf(sc[i]) * 0.01f;
        c[i] = (uint8_t)(t_next(t) >> 56);
        h[i] = cp_float_to_half((float)(t_gauss(t) * 3));
    }
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        if (!cp_kernels_by_name(sets[s], &simd))
            continue;
        for (size_t n = 1; n <= MAX; n += (n < 70 ? 1 : 37)) {
            float r[6] = {ref.dot_f16(a, h, n), ref.l2sq_f16(a, h, n), ref.l1_f16(a, h, n),
                          ref.dot_u8(a, c, n), ref.l2sq_u8(a, sc, c, n), ref.l1_u8(a, sc, c, n)};
            float v[6] = {simd.dot_f16(a, h, n), simd.l2sq_f16(a, h, n), simd.l1_f16(a, h, n),
                          simd.dot_u8(a, c, n), simd.l2sq_u8(a, sc, c, n), simd.l1_u8(a, sc, c, n)};
            for (int k = 0; k < 6; k++) {
                /* Sums of n terms of size up to ~3 (halves), ~255 (bytes): rounding grows with n. */
                double scale = k < 3 ? 3.0 * n : 255.0 * n;
                if (fabs(r[k] - v[k]) > 2e-6 * scale + 1e-5 * fabs(r[k])) {
                    fprintf(stderr, "  %s code kernel %d n=%zu: scalar %.9g, simd %.9g\n", sets[s],
                            k, n, r[k], v[k]);
                    t->failed = 1;
                }
            }
        }
    }
    free(a);
    free(sc);
    free(h);
    free(c);
}

/* Half precision: every finite half converts to a float and back to itself; a set's
 * hardware conversion (the f16 dot kernel with a query of 1) gives the same float; and
 * float -> half rounds to the nearest half, ties to even, overflowing at 65520. */
static void test_half(t_ctx *t)
{
    cp_kernels simd[3];
    int n_sets = 0;
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++)
        n_sets += cp_kernels_by_name(sets[s], &simd[n_sets]);
    float one = 1.0f;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        if ((h & 0x7c00u) == 0x7c00u)
            continue; /* infinities and NaNs: never stored */
        float f = cp_half_to_float(h);
        CHECK(t, cp_float_to_half(f) == h || (f == 0 && (cp_float_to_half(f) & 0x7fffu) == 0));
        for (int s = 0; s < n_sets; s++)
            CHECK(t, simd[s].dot_f16(&one, &h, 1) == f);
        /* The midpoint to the next half rounds to the even one of the two. */
        if ((h & 0x7fffu) < 0x7bffu) {
            double mid = ((double)f + (double)cp_half_to_float((uint16_t)(h + 1))) / 2;
            uint16_t even = (h & 1u) ? (uint16_t)(h + 1) : h;
            CHECK(t, cp_float_to_half((float)mid) == even);
        }
    }
    CHECK(t, cp_float_to_half(65504.0f) == 0x7bffu && cp_float_to_half(65519.0f) == 0x7bffu);
    CHECK(t, cp_float_to_half(65520.0f) == 0x7c00u && cp_float_to_half(-1e6f) == 0xfc00u);
    CHECK(t, cp_float_to_half(1e-9f) == 0 && cp_float_to_half(3e-8f) == 1); /* 2^-24 = 5.96e-8 */
}

static void test_search_per_kernel(t_ctx *t)
{
    float *x = t_clustered(t, 2100, 40, 10, 0.3);
    for (int m = COPSE_ANGULAR; m <= COPSE_DOT; m++) {
        copse_index *ref = NULL;
        CHECK_OK(t, copse_new(40, (copse_metric)m, &ref));
        CHECK_OK(t, copse_set_kernels(ref, "scalar"));
        CHECK_OK(t, copse_add_items(ref, 2000, NULL, 0, x));
        CHECK_OK(t, copse_build(ref, 5, 1));
        for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
            /* Same forest, other kernels: exact answers agree up to rounding ties. */
            if (copse_set_kernels(ref, sets[s]) != COPSE_OK)
                continue;
            int64_t ids[10], ide[10], n, ne;
            float d[10], de[10];
            int agree = 0;
            for (int q = 0; q < 100; q++) {
                const float *qv = x + (2000 + q % 100) * 40;
                CHECK_OK(t, copse_set_kernels(ref, "scalar"));
                CHECK_OK(t, copse_exact_vector(ref, NULL, qv, 10, ide, de, &ne));
                CHECK_OK(t, copse_set_kernels(ref, sets[s]));
                CHECK_OK(t, copse_exact_vector(ref, NULL, qv, 10, ids, d, &n));
                agree += n == ne && memcmp(ids, ide, sizeof ids) == 0;
                for (int i = 0; i < n; i++)
                    CHECK(t, fabs(d[i] - de[i]) <= 1e-4 * (fabs(de[i]) + 1));
            }
            CHECK(t, agree >= 98);
        }
        copse_free(ref);
    }
    free(x);
}

/* Which sets the comparisons below cover on this CPU (they skip a set it cannot run). NEON
 * is part of every AArch64 CPU, so there it must be there and be the default. */
static void test_sets(t_ctx *t)
{
    cp_kernels k;
    printf("  kernel sets compared with scalar:");
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++)
        if (cp_kernels_by_name(sets[s], &k))
            printf(" %s", sets[s]);
    printf("\n");
    cp_kernels_best(&k);
    CHECK(t, !CP_KERNELS_ARM || strcmp(k.name, "neon") == 0);
}

const t_case kernel_cases[] = {
    {"kernels/sets", test_sets},
    {"kernels/distances", test_distances},
    {"kernels/blend", test_blend},
    {"kernels/l2u8", test_l2u8},
    {"kernels/codes", test_codes},
    {"kernels/half", test_half},
    {"kernels/search", test_search_per_kernel},
    {NULL, NULL},
};
