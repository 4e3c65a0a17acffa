// hnswlib.cc: benchmark driver for hnswlib (Debian's libhnswlib-dev, header-only), built with
// the flags of hnswlib's own setup.py: -O3 -march=native.
//   build params: M=16;efc=200 (efConstruction); angular = inner product on unit vectors, as
//                 hnswlib's Python "cosine" space does; dot = its "ip" space on the raw
//                 vectors (maximum inner product; distance 1 - q.x)
//   query knob:   ef
#include "../common.h"

#include <atomic>
#include <thread>
#include <vector>

#include <hnswlib/hnswlib.h>

int main(int argc, char **argv)
{
    bench_args a = bench_parse(argc, argv);
    int angular = bench_is_angular(&a);
    bench_data d;
    memset(&d, 0, sizeof d);
    if (!strcmp(a.mode, "build")) {
        bench_load_base(&a, &d);
        int M = (int)bench_param(a.params, "M", 16);
        int efc = (int)bench_param(a.params, "efc", 200);
        double t0 = bench_now();
        const float *vecs = d.base;
        float *normed = NULL;
        if (angular)
            vecs = normed = bench_normalized(d.base, d.n, d.dim);
        hnswlib::SpaceInterface<float> *space;
        if (angular || bench_is_dot(&a))
            space = new hnswlib::InnerProductSpace(d.dim);
        else
            space = new hnswlib::L2Space(d.dim);
        hnswlib::HierarchicalNSW<float> ix(space, d.n, M, efc, 100);
        // As hnswlib's Python add_items: the rows are shared among the threads by an atomic
        // counter.
        std::atomic<int> next(0);
        auto worker = [&]() {
            for (int i; (i = next.fetch_add(1)) < d.n;)
                ix.addPoint(vecs + (size_t)i * d.dim, (hnswlib::labeltype)i);
        };
        std::vector<std::thread> pool;
        for (int t = 1; t < a.threads; t++)
            pool.emplace_back(worker);
        worker();
        for (auto &t : pool)
            t.join();
        double build_s = bench_now() - t0;
        ix.saveIndex(a.index);
        bench_write_build(&a, "hnswlib", build_s);
        free(normed);
        return 0;
    }
    bench_load_queries(&a, &d);
    long knobs[64];
    int nk = bench_knobs(a.knobs, knobs, 64);
    if (nk == 0)
        bench_die("no --knobs given");
    hnswlib::SpaceInterface<float> *space;
    if (angular || bench_is_dot(&a))
        space = new hnswlib::InnerProductSpace(d.dim);
    else
        space = new hnswlib::L2Space(d.dim);
    bench_cache_file(a.index);
    long rss0 = bench_rss_kb();
    double t0 = bench_now();
    hnswlib::HierarchicalNSW<float> ix(space, a.index);
    double load_ms = (bench_now() - t0) * 1e3;
    std::vector<float> qn(d.dim);
    auto search = [&](int q) {
        const float *v = d.queries + (size_t)q * d.dim;
        if (angular) {  // the query is normalised inside the timed loop, as the Python API does
            bench_unit(v, d.dim, qn.data());
            v = qn.data();
        }
        return ix.searchKnn(v, a.k);
    };
    long max_knob = knobs[0];
    for (int i = 0; i < nk; i++)
        if (knobs[i] > max_knob) max_knob = knobs[i];
    ix.setEf(max_knob);
    for (int q = 0; q < d.nq && q < BENCH_WARMUP; q++)
        search(q);
    std::vector<int64_t> ids((size_t)d.nq * a.k);
    for (int i = 0; i < nk; i++) {
        std::fill(ids.begin(), ids.end(), -1);
        ix.setEf(knobs[i]);
        double t1 = bench_now();
        for (int q = 0; q < d.nq; q++) {
            auto res = search(q);
            // the queue pops farthest first
            for (int j = (int)res.size() - 1; j >= 0; j--) {
                if (j < a.k)
                    ids[(size_t)q * a.k + j] = (int64_t)res.top().second;
                res.pop();
            }
        }
        double qps = d.nq / (bench_now() - t1);
        char query[64];
        snprintf(query, sizeof query, "ef=%ld", knobs[i]);
        bench_write_query(&a, "hnswlib", query, load_ms, bench_rss_kb() - rss0,
                          bench_recall(&d, ids.data(), a.k), qps, d.nq);
    }
    return 0;
}
