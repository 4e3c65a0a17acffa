/*
 * copse_bench.c: benchmark driver for copse, using only the public header copse.h (like the
 * peers' drivers in peers/, it shares ../common.h for data, timing, recall and CSV rows).
 *   build params: n_trees=N (-1: copse picks the count); leaf=L (0: copse's default)
 *   query knob:   search_k (-1: n_trees * k, as Annoy)
 *   --batch T:    after the one-at-a-time sweep, also times copse_search_batch over all the
 *                 queries with 1..T threads at each knob value (rows of kind "batch").
 */
#include "common.h"

#include "copse.h"

static void check(int rc, const copse_index *ix, const char *what)
{
    if (rc != COPSE_OK)
        bench_die("copse %s: %s (%s)", what, copse_strerror(rc), copse_errmsg(ix));
}

int main(int argc, char **argv)
{
    bench_args a = bench_parse(argc, argv);
    copse_metric metric = bench_is_angular(&a) ? COPSE_ANGULAR
                          : bench_is_dot(&a)   ? COPSE_DOT
                                               : COPSE_EUCLIDEAN;
    bench_data d;
    memset(&d, 0, sizeof d);
    if (copse_version_number() != COPSE_VERSION_NUMBER)
        bench_die("copse.h is %d but the linked library is %d", COPSE_VERSION_NUMBER,
                  copse_version_number());
    if (!strcmp(a.mode, "build")) {
        bench_load_base(&a, &d);
        int n_trees = (int)bench_param(a.params, "n_trees", -1);
        int leaf = (int)bench_param(a.params, "leaf", 0);
        int graph = (int)bench_param(a.params, "graph", -1); /* -1: the library's default */
        copse_index *ix = NULL;
        double t0 = bench_now();
        check(copse_new(d.dim, metric, &ix), ix, "new");
        if (leaf)
            check(copse_set_leaf_size(ix, leaf), ix, "set_leaf_size");
        if (graph >= 0)
            check(copse_set_graph_degree(ix, graph), ix, "set_graph_degree");
        /* storage=f16 or storage=i8: quantized vectors (copse_set_storage). */
        const char *st = strstr(a.params, "storage=");
        if (st) {
            char name[8] = {0};
            copse_storage storage;
            for (size_t i = 0; i + 1 < sizeof name && st[8 + i] && st[8 + i] != ';'; i++)
                name[i] = st[8 + i];
            if (copse_storage_from_name(name, &storage) != COPSE_OK)
                bench_die("copse: unknown storage '%s'", name);
            check(copse_set_storage(ix, storage), ix, "set_storage");
        }
        check(copse_add_items(ix, d.n, NULL, 0, d.base), ix, "add_items");
        check(copse_build(ix, n_trees, a.threads), ix, "build");
        double build_s = bench_now() - t0;
        check(copse_save(ix, a.index), ix, "save");
        bench_write_build(&a, "copse", build_s);
        int64_t n_split = 0, n_leaves = 0;
        copse_n_nodes(ix, &n_split, &n_leaves);
        fprintf(stderr, "copse    trees=%d leaf_size=%d graph=%d storage=%s split_nodes=%lld "
                "leaves=%lld\n", copse_n_trees(ix), copse_leaf_size(ix), copse_graph_degree(ix),
                copse_storage_name(copse_get_storage(ix)), (long long)n_split, (long long)n_leaves);
        copse_free(ix);
        return 0;
    }
    bench_load_queries(&a, &d);
    long knobs[64];
    int nk = bench_knobs(a.knobs, knobs, 64);
    if (nk == 0)
        bench_die("no --knobs given");
    bench_cache_file(a.index);
    long rss0 = bench_rss_kb();
    copse_index *ix = NULL;
    double t0 = bench_now();
    int rc = copse_open(a.index, 0, &ix);
    double load_ms = (bench_now() - t0) * 1e3;
    check(rc, ix, "open");
    copse_scratch *s = NULL;
    if (copse_scratch_new(&s) != COPSE_OK)
        bench_die("copse scratch_new failed");
    int64_t *ids = (int64_t *)malloc(sizeof(int64_t) * (size_t)d.nq * a.k);
    if (!ids)
        bench_die("out of memory");
    long max_knob = knobs[0];
    for (int i = 0; i < nk; i++)
        if (knobs[i] > max_knob)
            max_knob = knobs[i];
    for (int q = 0; q < d.nq && q < BENCH_WARMUP; q++) {
        int64_t n_out;
        rc = copse_search_vector(ix, s, d.queries + (size_t)q * d.dim, a.k, max_knob, ids,
                                 NULL, &n_out);
        if (rc != COPSE_OK)
            bench_die("copse search: %s (%s)", copse_strerror(rc), copse_scratch_errmsg(s));
    }
    for (int i = 0; i < nk; i++) {
        for (size_t j = 0; j < (size_t)d.nq * a.k; j++)
            ids[j] = -1;
        double t1 = bench_now();
        for (int q = 0; q < d.nq; q++) {
            int64_t n_out;
            rc = copse_search_vector(ix, s, d.queries + (size_t)q * d.dim, a.k, knobs[i],
                                     ids + (size_t)q * a.k, NULL, &n_out);
            if (rc != COPSE_OK)
                bench_die("copse search: %s (%s)", copse_strerror(rc), copse_scratch_errmsg(s));
        }
        double qps = d.nq / (bench_now() - t1);
        char query[64];
        snprintf(query, sizeof query, "search_k=%ld", knobs[i]);
        bench_write_query(&a, "copse", query, load_ms, bench_rss_kb() - rss0,
                          bench_recall(&d, ids, a.k), qps, d.nq);
    }
    for (int i = 0; a.batch > 0 && i < nk; i++) {
        for (int t = 1; t <= a.batch; t++) {
            double t1 = bench_now();
            rc = copse_search_batch(ix, s, d.queries, d.nq, a.k, knobs[i], 0, t, ids, NULL,
                                    NULL);
            double qps = d.nq / (bench_now() - t1);
            if (rc != COPSE_OK)
                bench_die("copse search_batch: %s (%s)", copse_strerror(rc),
                          copse_scratch_errmsg(s));
            char query[64];
            snprintf(query, sizeof query, "search_k=%ld;threads=%d", knobs[i], t);
            bench_write_row(&a, "batch", "copse", query, load_ms, bench_rss_kb() - rss0,
                            bench_recall(&d, ids, a.k), qps, d.nq);
        }
    }
    free(ids);
    copse_scratch_free(s);
    copse_free(ix);
    return 0;
}
