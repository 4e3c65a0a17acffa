/*
 * test_big.c: `make test-big` (big/, run only when named: `copse_tests big/`). An index
 * past the 32-bit limits: more than 2^31 vector components (so every element offset, and
 * byte offsets past 4 GiB, need 64-bit arithmetic) in a file over 4 GiB. Built in memory, saved, freed, loaded (mapped), verified and queried; items
 * whose rows lie past 2^31 components are read back bit for bit and must find themselves.
 *
 * BIG_DIR names the folder (default $TMPDIR or /tmp); BIG_N and BIG_DIM override the size,
 * BIG_TREES the tree count (default 2). Needs about 2.2x the vectors' size in RAM + page
 * cache and once that on disk; the file is removed at the end. Prints each step and its time.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"

static long max_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* Row i is a pure function of i: 8 clusters plus noise, so any row can be regenerated. */
static void row(int64_t i, int dim, float *out)
{
    uint64_t s = (uint64_t)i * 0x9e3779b97f4a7c15ull + 12345;
    int c = (int)(i % 8);
    for (int d = 0; d < dim; d++) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        float noise = (float)((double)(z >> 40) / 16777216.0 - 0.5);
        out[d] = (float)(((c * 31 + d * 17) % 13) - 6) * 0.5f + noise;
    }
}

static void test_big_index(t_ctx *t)
{
    const char *dir = getenv("BIG_DIR") ? getenv("BIG_DIR") : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int dim = getenv("BIG_DIM") ? atoi(getenv("BIG_DIM")) : 512;
    int64_t n = getenv("BIG_N") ? atoll(getenv("BIG_N")) : ((1ll << 31) / dim) * 101 / 100 + 1;
    int trees = getenv("BIG_TREES") ? atoi(getenv("BIG_TREES")) : 2;
    char path[1024];
    snprintf(path, sizeof path, "%s/copse-big-%d.copse", dir, (int)getpid());
    printf("  %lld items x %d dims = %lld components (2^31 = %lld), %d trees, file %s\n",
           (long long)n, dim, (long long)n * dim, 1ll << 31, trees, path);
    fflush(stdout);

    copse_index *ix;
    double t0 = t_now();
    t_step(t, copse_new(dim, COPSE_EUCLIDEAN, &ix) == COPSE_OK, "new");
    enum { CHUNK = 8192 };
    float *buf = malloc(sizeof(float) * (size_t)CHUNK * (size_t)dim);
    int rc = COPSE_OK;
    for (int64_t at = 0; at < n && rc == COPSE_OK; at += CHUNK) {
        int64_t m = n - at < CHUNK ? n - at : CHUNK;
        for (int64_t i = 0; i < m; i++)
            row(at + i, dim, buf + i * dim);
        rc = copse_add_items(ix, m, NULL, at, buf);
    }
    t_step(t, rc == COPSE_OK && copse_n_items(ix) == n, "add every item");
    if (rc != COPSE_OK)
        printf("  %s\n", copse_errmsg(ix));
    printf("  add: %.1f s\n", t_now() - t0);
    t0 = t_now();
    rc = copse_build(ix, trees, 0);
    t_step(t, rc == COPSE_OK, "build");
    if (rc != COPSE_OK)
        printf("  %s\n", copse_errmsg(ix));
    int64_t ns, nl;
    copse_n_nodes(ix, &ns, &nl);
    printf("  build: %.1f s (%lld split nodes, %lld leaves)\n", t_now() - t0, (long long)ns,
           (long long)nl);
    t0 = t_now();
    rc = copse_save(ix, path);
    t_step(t, rc == COPSE_OK, "save");
    if (rc != COPSE_OK)
        printf("  %s\n", copse_errmsg(ix));
    uint64_t expect_size = copse_file_size(ix);
    printf("  save: %.1f s, peak RSS %ld MB\n", t_now() - t0, max_rss_mb());
    copse_free(ix);

    struct stat st;
    t_step(t, stat(path, &st) == 0 && (uint64_t)st.st_size == expect_size, "file size as announced");
    t_step(t, (uint64_t)st.st_size > (4ull << 30), "file over 4 GiB");
    printf("  file: %llu bytes (%.2f GiB)\n", (unsigned long long)st.st_size,
           (double)st.st_size / (1 << 30));

    t0 = t_now();
    rc = copse_open(path, 0, &ix);
    t_step(t, rc == COPSE_OK, "load (map)");
    printf("  load: %.3f s\n", t_now() - t0);
    if (rc != COPSE_OK) {
        printf("  %s\n", copse_errmsg(ix));
        goto out;
    }
    t_step(t, copse_n_items(ix) == n && copse_dim(ix) == dim && copse_n_trees(ix) == trees,
          "loaded facts");
    int last = copse_n_sections(ix) - 1;
    uint64_t off, len;
    const char *name;
    copse_section_info(ix, last, &name, &off, &len, NULL);
    printf("  last section %s at %llu\n", name, (unsigned long long)off);
    t_step(t, off > (4ull << 30), "sections past 4 GiB");
    t0 = t_now();
    rc = copse_verify(ix);
    t_step(t, rc == COPSE_OK, "verify");
    if (rc != COPSE_OK)
        printf("  %s\n", copse_errmsg(ix));
    printf("  verify: %.1f s\n", t_now() - t0);

    /* Items on both sides of 2^31 components and 4 GiB of vectors, and the last. */
    int64_t probes[] = {0, 1, (1ll << 30) / dim, (1ll << 30) / dim + 1, (1ll << 31) / dim - 1,
                        (1ll << 31) / dim, (1ll << 31) / dim + 1, n / 2, n - 2, n - 1};
    float *want = malloc(sizeof(float) * (size_t)dim), *got = malloc(sizeof(float) * (size_t)dim);
    int exact_rows = 1, self_found = 1, self_exact = 1;
    double tq = 0, te = 0;
    for (size_t p = 0; p < sizeof probes / sizeof *probes; p++) {
        int64_t id = probes[p];
        if (id < 0 || id >= n)
            continue;
        row(id, dim, want);
        exact_rows &= copse_get_item(ix, id, got) == COPSE_OK &&
                      memcmp(want, got, sizeof(float) * (size_t)dim) == 0;
        int64_t ids[10], k;
        float d[10];
        t0 = t_now();
        rc = copse_search_vector(ix, NULL, want, 10, 20000, ids, d, &k);
        tq += t_now() - t0;
        int hit = 0;
        for (int64_t j = 0; rc == COPSE_OK && j < k; j++)
            hit |= ids[j] == id && d[j] == 0.0f;
        if (!hit)
            printf("  item %lld: not found by its own vector (rc %d)\n", (long long)id, rc);
        self_found &= hit;
        rc = copse_search_item(ix, NULL, id, 10, 20000, ids, d, &k);
        self_found &= rc == COPSE_OK && k == 10;
        if (p % 3 == 0) {
            t0 = t_now();
            rc = copse_exact_vector(ix, NULL, want, 5, ids, d, &k);
            te += t_now() - t0;
            self_exact &= rc == COPSE_OK && k == 5 && d[0] == 0.0f;
            int found = 0;
            for (int64_t j = 0; j < k; j++)
                found |= ids[j] == id;
            self_exact &= found;
        }
    }
    t_step(t, exact_rows, "rows past 2^31 components read back bit for bit");
    t_step(t, self_found, "approximate queries find each probe item");
    t_step(t, self_exact, "exact queries find each probe item at distance 0");
    printf("  queries: %.3f s for %zu approximate (search_k 20000), %.1f s for 4 exact\n", tq,
           sizeof probes / sizeof *probes, te);
    free(want);
    free(got);
    copse_free(ix);
out:
    free(buf);
    unlink(path);
    printf("  peak RSS %ld MB\n", max_rss_mb());
}

const t_case big_cases[] = {
    {"big/index", test_big_index},
    {NULL, NULL},
};
