// annoy.cc: benchmark driver for Spotify Annoy (annoylib.h 1.17 from Debian's r-cran-rcppannoy,
// unpacked by run.sh into bench/peers/vendor/annoy/). Built with the flags of Annoy's own
// setup.py: -O3 -march=native -ffast-math -fno-associative-math -DANNOYLIB_MULTITHREADED_BUILD.
//   metrics: Angular, Euclidean, DotProduct (dot: Annoy's own reduction to angular)
//   build params: n_trees=N (seed fixed at Annoy's default)
//   query knob:   search_k (-1 means Annoy's default, n_trees * k)
#include "../common.h"

#include <vector>

#include "annoylib.h"
#include "kissrandom.h"

template <typename Distance>
static int run(const bench_args &a)
{
    typedef AnnoyIndex<int32_t, float, Distance, Kiss64Random, AnnoyIndexMultiThreadedBuildPolicy>
        Index;
    bench_data d;
    memset(&d, 0, sizeof d);
    char *err = NULL;
    if (!strcmp(a.mode, "build")) {
        bench_load_base(&a, &d);
        int n_trees = (int)bench_param(a.params, "n_trees", 100);
        double t0 = bench_now();
        Index ix(d.dim);
        for (int i = 0; i < d.n; i++)
            if (!ix.add_item(i, d.base + (size_t)i * d.dim, &err))
                bench_die("annoy add_item: %s", err);
        if (!ix.build(n_trees, a.threads, &err))
            bench_die("annoy build: %s", err);
        double build_s = bench_now() - t0;
        if (!ix.save(a.index, false, &err))
            bench_die("annoy save: %s", err);
        bench_write_build(&a, "annoy", build_s);
        return 0;
    }
    bench_load_queries(&a, &d);
    long knobs[64];
    int nk = bench_knobs(a.knobs, knobs, 64);
    if (nk == 0)
        bench_die("no --knobs given");
    bench_cache_file(a.index);
    long rss0 = bench_rss_kb();
    Index ix(d.dim);
    double t0 = bench_now();
    if (!ix.load(a.index, false, &err))
        bench_die("annoy load: %s", err);
    double load_ms = (bench_now() - t0) * 1e3;
    std::vector<int32_t> res;
    res.reserve(a.k);
    long max_knob = knobs[0];
    for (int i = 0; i < nk; i++)
        if (knobs[i] > max_knob) max_knob = knobs[i];
    for (int q = 0; q < d.nq && q < BENCH_WARMUP; q++) {
        res.clear();
        ix.get_nns_by_vector(d.queries + (size_t)q * d.dim, a.k, (int)max_knob, &res, NULL);
    }
    std::vector<int64_t> ids((size_t)d.nq * a.k);
    for (int i = 0; i < nk; i++) {
        std::fill(ids.begin(), ids.end(), -1);
        double t1 = bench_now();
        for (int q = 0; q < d.nq; q++) {
            res.clear();
            ix.get_nns_by_vector(d.queries + (size_t)q * d.dim, a.k, (int)knobs[i], &res, NULL);
            for (size_t j = 0; j < res.size() && j < (size_t)a.k; j++)
                ids[(size_t)q * a.k + j] = res[j];
        }
        double qps = d.nq / (bench_now() - t1);
        char query[64];
        snprintf(query, sizeof query, "search_k=%ld", knobs[i]);
        bench_write_query(&a, "annoy", query, load_ms, bench_rss_kb() - rss0,
                          bench_recall(&d, ids.data(), a.k), qps, d.nq);
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_args a = bench_parse(argc, argv);
    if (bench_is_dot(&a))
        return run<DotProduct>(a);
    return bench_is_angular(&a) ? run<Angular>(a) : run<Euclidean>(a);
}
