/* walk_stats.c: how much a copse graph walk computes per query, and what each distance costs.
 *   walk_stats DATA_DIR INDEX search_k,... [NQ [file|collapse|huge|small]]
 * For each search_k: recall@10, distances per query (the scratch's walk counter, seeds
 * included), QPS over NQ queries (default 1,000) one at a time on one thread, and the time
 * per distance (1 / (QPS x distances)), the figure to compare with hnswlib's (hnsw_stats.cc).
 * Diagnostic only (run.sh does not use it); time it under the bench lock. Build:
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -o bench/out/bin/walk_stats \
 *     bench/tools/walk_stats.c bench/out/copse-build/libcopse.a -lpthread -lm
 * cp_scratch_walked is internal (hidden in the shared library), so this links the static one. */
#include "../common.h"

#include <sys/mman.h>

#include "copse.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* mode "huge" or "small": the file read into a 2 MB-aligned buffer with (or without)
 * transparent huge pages, loaded with copse_load_buffer; "collapse": the file mapped as
 * copse_open maps it, then MADV_COLLAPSE on that mapping (found in /proc/self/maps). The
 * buffer modes assume an angular index (GloVe). */
static void *load_mode(const char *mode, const char *path, int dim, copse_index **ix)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        bench_die("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f), cap = (len + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    fseek(f, 0, SEEK_SET);
    void *buf = aligned_alloc(2u << 20, cap);
    if (!buf)
        bench_die("out of memory");
    madvise(buf, cap, !strcmp(mode, "huge") ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    if (fread(buf, 1, len, f) != len)
        bench_die("short read");
    fclose(f);
    if (copse_new(dim, COPSE_ANGULAR, ix) != COPSE_OK || copse_load_buffer(*ix, buf, len) != COPSE_OK)
        bench_die("load_buffer failed");
    return buf;
}

static void collapse(const char *path)
{
    FILE *m = fopen("/proc/self/maps", "r");
    char line[4096];
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    while (m && fgets(line, sizeof line, m)) {
        unsigned long lo, hi;
        if (strstr(line, base) && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
            fprintf(stderr, "collapse %lx-%lx: %d\n", lo, hi,
                    madvise((void *)lo, hi - lo, MADV_COLLAPSE));
    }
    if (m)
        fclose(m);
}

uint64_t cp_scratch_walked(const copse_scratch *s);

int main(int argc, char **argv)
{
    if (argc < 4)
        bench_die("usage: walk_stats DATA_DIR INDEX search_k,... [NQ]");
    bench_data d;
    bench_tool_queries(argv[1], argc > 4 ? atoi(argv[4]) : 1000, &d);
    long knobs[64];
    int nk = bench_knobs(argv[3], knobs, 64);
    bench_cache_file(argv[2]);
    copse_index *ix = NULL;
    const char *mode = argc > 5 ? argv[5] : "file";
    void *buf = NULL;
    if (!strcmp(mode, "huge") || !strcmp(mode, "small"))
        buf = load_mode(mode, argv[2], d.dim, &ix);
    else if (copse_open(argv[2], 0, &ix) != COPSE_OK)
        bench_die("cannot open %s", argv[2]);
    if (!strcmp(mode, "collapse"))
        collapse(argv[2]);
    copse_scratch *s = NULL;
    if (copse_scratch_new(&s) != COPSE_OK)
        bench_die("scratch_new failed");
    int64_t *ids = (int64_t *)malloc(sizeof(int64_t) * (size_t)d.nq * 10);
    if (!ids)
        bench_die("out of memory");
    for (int q = 0; q < d.nq && q < BENCH_WARMUP; q++) {
        int64_t n_out;
        copse_search_vector(ix, s, d.queries + (size_t)q * d.dim, 10, knobs[nk - 1], ids, NULL,
                            &n_out);
    }
    for (int i = 0; i < nk; i++) {
        uint64_t w0 = cp_scratch_walked(s);
        double t0 = bench_now();
        for (int q = 0; q < d.nq; q++) {
            int64_t n_out;
            int rc = copse_search_vector(ix, s, d.queries + (size_t)q * d.dim, 10, knobs[i],
                                         ids + (size_t)q * 10, NULL, &n_out);
            if (rc != COPSE_OK)
                bench_die("search: %s", copse_scratch_errmsg(s));
        }
        double secs = bench_now() - t0;
        double dist = (double)(cp_scratch_walked(s) - w0) / d.nq;
        double qps = d.nq / secs;
        printf("copse search_k=%-5ld recall %.4f  distances/query %7.0f  QPS %7.0f  ns/distance "
               "%5.1f\n", knobs[i], bench_recall(&d, ids, 10), dist, qps, 1e9 / (qps * dist));
    }
    free(ids);
    copse_scratch_free(s);
    copse_free(ix);
    free(buf);
    return 0;
}
