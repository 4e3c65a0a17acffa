/*
 * retag.c: what a filter costs once the index has changed under it (bench/FILTERED.md,
 * "Filters after changes"). Fashion-MNIST, 60,000 x 784, euclidean, k = 10, 500 test images
 * one at a time on one thread, on the index file bench/filtered/run.sh builds (made here if
 * missing).
 *
 * Tags: tag t on a random share of the items (0.1%, 1%, 10%, 50% for t = 0..3), set on the
 * loaded file. A tag filter made after the last change uses the slot set it was made with
 * (exact count, the fast collect); one made before a change reads each item's tags as it is
 * now (copse.h). Ids: the same allowed items as an id filter, made before a compaction (then
 * matched by id per item) and after it. Each pair is timed in alternation on the same
 * queries; recall@10 is against the exact filtered answer.
 *
 *   bash bench/filtered/run.sh --retag    (builds this against the Release library, runs it
 *                                          under the bench lock)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "copse.h"

enum { K = 10, DIM = 784, NQ = 500, N_SEL = 4, REPS = 3 };
static const double sels[N_SEL] = {0.001, 0.01, 0.1, 0.5};
static const int64_t knobs[] = {10, 40, 160};
#define N_KNOBS (int)(sizeof knobs / sizeof *knobs)

static void die(const char *what)
{
    fprintf(stderr, "retag: %s\n", what);
    exit(1);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* An IDX image file (gzipped) as floats. */
static float *images(const char *path, int64_t *n)
{
    gzFile f = gzopen(path, "rb");
    unsigned char h[16];
    if (!f || gzread(f, h, 16) != 16 || h[2] != 8 || h[3] != 3)
        die("cannot read the Fashion-MNIST images (apt-get install dataset-fashion-mnist)");
    *n = (int64_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
    size_t len = (size_t)*n * DIM;
    unsigned char *raw = malloc(len);
    float *x = malloc(len * sizeof *x);
    if (!raw || !x || gzread(f, raw, (unsigned)len) != (int)len)
        die("short image file");
    for (size_t i = 0; i < len; i++)
        x[i] = raw[i];
    free(raw);
    gzclose(f);
    return x;
}

static double unit(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

/* Whether item i carries tag t (on sels[t] of the items). */
static int tagged(int64_t i, int t) { return unit((uint64_t)i * N_SEL + (uint64_t)t) < sels[t]; }

/* The ids of the items carrying tag t, but item 0 (retagged below), into list. */
static int64_t tag_ids(int64_t n, int t, int64_t *list)
{
    int64_t m = 0;
    for (int64_t i = 1; i < n; i++)
        if (tagged(i, t))
            list[m++] = i;
    return m;
}

typedef struct run {
    double qps, recall;
} run;

/* One pass over the queries with f at search_k; recall against truth (NQ x K ids). */
static run pass(const copse_index *ix, copse_scratch *s, const float *qs, const copse_filter *f,
                int64_t sk, const int64_t *truth, int64_t want)
{
    int64_t ids[K], n, hits = 0;
    float d[K];
    double t0 = now();
    for (int q = 0; q < NQ; q++) {
        if (copse_search_vector_filtered(ix, s, qs + (size_t)q * DIM, K, sk, f, ids, d, &n))
            die(copse_scratch_errmsg(s));
        for (int64_t j = 0; j < n; j++)
            for (int64_t t = 0; t < want; t++)
                hits += ids[j] == truth[q * K + t];
    }
    run r = {NQ / (now() - t0), want ? (double)hits / (double)(NQ * want) : 1};
    return r;
}

/* The pair (a, b) timed in alternation, best of REPS each. */
static void compare(const char *what, double sel, const copse_index *ix, copse_scratch *s,
                    const float *qs, const copse_filter *a, const copse_filter *b,
                    const char *a_name, const char *b_name)
{
    int64_t *truth = malloc(sizeof *truth * NQ * K), want = 0;
    float d[K];
    for (int q = 0; q < NQ; q++)
        if (copse_exact_vector_filtered(ix, s, qs + (size_t)q * DIM, K, a, truth + q * K, d, &want))
            die(copse_scratch_errmsg(s));
    for (int k = 0; k < N_KNOBS; k++) {
        run best[2] = {{0, 0}, {0, 0}};
        for (int rep = 0; rep < REPS; rep++)
            for (int w = 0; w < 2; w++) {
                run r = pass(ix, s, qs, w ? b : a, knobs[k], truth, want);
                if (r.qps > best[w].qps)
                    best[w] = r;
            }
        printf("%-5s %6.1f%% search_k %4lld  %-16s %9.0f QPS recall %.3f   %-16s %9.0f QPS "
               "recall %.3f   ratio %.2f\n", what, 100 * sel, (long long)knobs[k], a_name,
               best[0].qps, best[0].recall, b_name, best[1].qps, best[1].recall,
               best[1].qps / best[0].qps);
    }
    free(truth);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: retag OUTDIR");
    const char *fm = "/usr/share/datasets/fashion-mnist";
    char path[4096], ipath[4096];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", fm);
    int64_t n, nt;
    float *base = images(path, &n);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", fm);
    float *qs = images(path, &nt);
    snprintf(ipath, sizeof ipath, "%s/copse-fashion-mnist-euclidean.copse", argv[1]);
    copse_index *ix = NULL;
    struct stat st;
    if (stat(ipath, &st) != 0) {
        fprintf(stderr, "building copse (defaults, 2 threads)\n");
        if (copse_new(DIM, COPSE_EUCLIDEAN, &ix) || copse_add_items(ix, n, NULL, 0, base) ||
            copse_build(ix, -1, 2) || copse_save(ix, ipath))
            die(copse_errmsg(ix));
        copse_free(ix);
    }
    if (copse_open(ipath, 1, &ix) != COPSE_OK)
        die(copse_errmsg(ix));
    copse_scratch *s = NULL;
    copse_scratch_new(&s);
    /* Tag t on sels[t] of the items, set on the loaded file. */
    for (int64_t i = 0; i < n; i++) {
        uint32_t tags[N_SEL];
        int m = 0;
        for (int t = 0; t < N_SEL; t++)
            if (tagged(i, t))
                tags[m++] = (uint32_t)t;
        if (m && copse_set_tags(ix, i, tags, m) != COPSE_OK)
            die(copse_errmsg(ix));
    }
    copse_filter *before[N_SEL], *after[N_SEL];
    for (int t = 0; t < N_SEL; t++)
        if (copse_filter_new_tags(ix, 1ull << t, 0, &before[t]))
            die("filter_new_tags");
    /* One change after those filters were made (a tag no filter asks for). */
    uint32_t other = 9;
    if (copse_set_tags(ix, 0, &other, 1) != COPSE_OK)
        die(copse_errmsg(ix));
    for (int t = 0; t < N_SEL; t++)
        if (copse_filter_new_tags(ix, 1ull << t, 0, &after[t]))
            die("filter_new_tags");
    printf("# tags: a filter made after the last change (its slot set) against one made before "
           "it (tags read per item)\n");
    for (int t = 0; t < N_SEL; t++)
        compare("tags", sels[t], ix, s, qs, after[t], before[t], "made after", "made before");
    /* Ids: the items of each tag as an id list, made before a compaction and after it. */
    copse_filter *ids_before[N_SEL], *ids_after[N_SEL];
    int64_t *list = malloc(sizeof *list * (size_t)n);
    for (int t = 0; t < N_SEL; t++)
        if (copse_filter_new_ids(ix, list, tag_ids(n, t, list), &ids_before[t]))
            die("filter_new_ids");
    double t0 = now();
    if (copse_compact(ix, 2) != COPSE_OK)
        die(copse_errmsg(ix));
    fprintf(stderr, "compacted in %.1f s\n", now() - t0);
    for (int t = 0; t < N_SEL; t++)
        if (copse_filter_new_ids(ix, list, tag_ids(n, t, list), &ids_after[t]))
            die("filter_new_ids");
    printf("# ids: a filter made after a compaction (its slot set) against one made before it "
           "(ids matched per item)\n");
    for (int t = 0; t < N_SEL; t++)
        compare("ids", sels[t], ix, s, qs, ids_after[t], ids_before[t], "made after", "made before");
    for (int t = 0; t < N_SEL; t++) {
        copse_filter_free(before[t]);
        copse_filter_free(after[t]);
        copse_filter_free(ids_before[t]);
        copse_filter_free(ids_after[t]);
    }
    free(list);
    free(base);
    free(qs);
    copse_scratch_free(s);
    copse_free(ix);
    return 0;
}
