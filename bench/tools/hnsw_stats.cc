// hnsw_stats.cc: how many distances hnswlib computes per query, and what each one costs.
//   hnsw_stats DATA_DIR INDEX angular|dot|euclidean ef,... [NQ]
// For each ef: recall@10, distances per query (counted by a space that wraps hnswlib's own
// distance function: real distances, not the neighbour entries its metric_distance_computations
// adds up), QPS over NQ queries (default 1,000) timed with hnswlib's own space, and the time per
// distance, to compare with copse's (walk_stats.c). Angular normalises the query in the timed
// loop, as bench/peers/hnswlib.cc does. Diagnostic only; time it under the bench lock. Build:
//   g++ -O3 -march=native -std=c++14 -o bench/out/bin/hnsw_stats bench/tools/hnsw_stats.cc -lpthread
#include "../common.h"

#include <vector>

#include <hnswlib/hnswlib.h>

namespace {
struct counted {
    hnswlib::DISTFUNC<float> f;
    void *param;
    size_t n;
};

float counted_dist(const void *a, const void *b, const void *p)
{
    counted *c = (counted *)p;
    c->n++;
    return c->f(a, b, c->param);
}

class CountingSpace : public hnswlib::SpaceInterface<float> {
  public:
    explicit CountingSpace(hnswlib::SpaceInterface<float> *in) : in_(in)
    {
        c_.f = in->get_dist_func();
        c_.param = in->get_dist_func_param();
        c_.n = 0;
    }
    size_t get_data_size() { return in_->get_data_size(); }
    hnswlib::DISTFUNC<float> get_dist_func() { return counted_dist; }
    void *get_dist_func_param() { return &c_; }
    size_t count() const { return c_.n; }

  private:
    hnswlib::SpaceInterface<float> *in_;
    counted c_;
};
} // namespace

int main(int argc, char **argv)
{
    if (argc < 5)
        bench_die("usage: hnsw_stats DATA_DIR INDEX angular|dot|euclidean ef,... [NQ]");
    int angular = !strcmp(argv[3], "angular");
    bench_data d;
    bench_tool_queries(argv[1], argc > 5 ? atoi(argv[5]) : 1000, &d);
    long knobs[64];
    int nk = bench_knobs(argv[4], knobs, 64);
    hnswlib::SpaceInterface<float> *space;
    if (strcmp(argv[3], "euclidean"))
        space = new hnswlib::InnerProductSpace(d.dim);
    else
        space = new hnswlib::L2Space(d.dim);
    CountingSpace counting(space);
    hnswlib::HierarchicalNSW<float> ix(space, argv[2]);
    hnswlib::HierarchicalNSW<float> cx(&counting, argv[2]);
    std::vector<float> qn(d.dim);
    std::vector<int64_t> ids((size_t)d.nq * 10, -1);
    auto search = [&](hnswlib::HierarchicalNSW<float> &h, int q) {
        const float *v = d.queries + (size_t)q * d.dim;
        if (angular) {
            bench_unit(v, d.dim, qn.data());
            v = qn.data();
        }
        return h.searchKnn(v, 10);
    };
    ix.setEf(knobs[nk - 1]);
    for (int q = 0; q < d.nq && q < BENCH_WARMUP; q++)
        search(ix, q);
    for (int i = 0; i < nk; i++) {
        ix.setEf(knobs[i]);
        cx.setEf(knobs[i]);
        size_t c0 = counting.count();
        for (int q = 0; q < d.nq; q++)
            search(cx, q);
        double dist = (double)(counting.count() - c0) / d.nq;
        double t0 = bench_now();
        for (int q = 0; q < d.nq; q++) {
            auto r = search(ix, q);
            for (int j = (int)r.size() - 1; j >= 0; j--) {
                ids[(size_t)q * 10 + j] = (int64_t)r.top().second;
                r.pop();
            }
        }
        double qps = d.nq / (bench_now() - t0);
        printf("hnswlib ef=%-5ld recall %.4f  distances/query %7.0f  QPS %7.0f  ns/distance %5.1f\n",
               knobs[i], bench_recall(&d, ids.data(), 10), dist, qps, 1e9 / (qps * dist));
    }
    return 0;
}
