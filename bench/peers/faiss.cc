// faiss.cc: benchmark driver for faiss (Debian's libfaiss-dev, a static library built for
// generic x86-64: its distance loops run without AVX2, about 4x below an optimised build).
//   build params: type=flat (IndexFlatL2, the exhaustive baseline; knob ignored)
//                 type=hnsw;M=16;efc=200 (IndexHNSWFlat; knob efSearch)
//                 type=ivf;nlist=256 (IndexIVFFlat over a flat quantizer; knob nprobe)
//   angular = inner product on unit vectors (METRIC_INNER_PRODUCT); dot = the same on the raw
//   vectors (type=flat then is exact maximum inner product search: the brute-force baseline).
// Library names in the CSV: faiss-flat, faiss-hnsw, faiss-ivf.
#include "../common.h"

#include <memory>
#include <string>
#include <vector>

#include <omp.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/index_io.h>

static std::string param_type(const char *params)
{
    const char *p = strstr(params, "type=");
    if (!p)
        bench_die("faiss params need type=flat|hnsw|ivf");
    p += 5;
    return std::string(p, strcspn(p, ";"));
}

int main(int argc, char **argv)
{
    bench_args a = bench_parse(argc, argv);
    int angular = bench_is_angular(&a);
    faiss::MetricType metric =
        angular || bench_is_dot(&a) ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
    std::string type = param_type(a.params);
    std::string lib = "faiss-" + type;
    bench_data d;
    memset(&d, 0, sizeof d);
    if (!strcmp(a.mode, "build")) {
        omp_set_num_threads(a.threads);
        bench_load_base(&a, &d);
        double t0 = bench_now();
        const float *vecs = d.base;
        float *normed = NULL;
        if (angular)
            vecs = normed = bench_normalized(d.base, d.n, d.dim);
        std::unique_ptr<faiss::Index> ix;
        faiss::IndexFlat *quantizer = NULL;
        if (type == "flat") {
            ix.reset(new faiss::IndexFlat(d.dim, metric));
        } else if (type == "hnsw") {
            faiss::IndexHNSWFlat *h =
                new faiss::IndexHNSWFlat(d.dim, (int)bench_param(a.params, "M", 16), metric);
            h->hnsw.efConstruction = (int)bench_param(a.params, "efc", 200);
            ix.reset(h);
        } else if (type == "ivf") {
            quantizer = new faiss::IndexFlat(d.dim, metric);
            faiss::IndexIVFFlat *ivf = new faiss::IndexIVFFlat(
                quantizer, d.dim, (size_t)bench_param(a.params, "nlist", 256), metric);
            ivf->own_fields = true;
            ivf->train(d.n, vecs);
            ix.reset(ivf);
        } else {
            bench_die("unknown faiss type %s", type.c_str());
        }
        ix->add(d.n, vecs);
        double build_s = bench_now() - t0;
        faiss::write_index(ix.get(), a.index);
        bench_write_build(&a, lib.c_str(), build_s);
        free(normed);
        return 0;
    }
    omp_set_num_threads(1);
    bench_load_queries(&a, &d);
    long knobs[64];
    int nk = bench_knobs(a.knobs, knobs, 64);
    if (nk == 0)
        bench_die("no --knobs given");
    bench_cache_file(a.index);
    long rss0 = bench_rss_kb();
    double t0 = bench_now();
    std::unique_ptr<faiss::Index> ix(faiss::read_index(a.index));
    double load_ms = (bench_now() - t0) * 1e3;
    faiss::IndexHNSW *hnsw = dynamic_cast<faiss::IndexHNSW *>(ix.get());
    faiss::IndexIVF *ivf = dynamic_cast<faiss::IndexIVF *>(ix.get());
    auto set_knob = [&](long v) {
        if (hnsw)
            hnsw->hnsw.efSearch = (int)v;
        if (ivf)
            ivf->nprobe = (size_t)v;
    };
    std::vector<float> qn(d.dim), dist(a.k);
    std::vector<faiss::Index::idx_t> res(a.k);
    auto search = [&](int q) {
        const float *v = d.queries + (size_t)q * d.dim;
        if (angular) {
            bench_unit(v, d.dim, qn.data());
            v = qn.data();
        }
        ix->search(1, v, a.k, dist.data(), res.data());
    };
    long max_knob = knobs[0];
    for (int i = 0; i < nk; i++)
        if (knobs[i] > max_knob) max_knob = knobs[i];
    set_knob(max_knob);
    for (int q = 0; q < d.nq && q < BENCH_WARMUP / 10; q++)
        search(q);
    std::vector<int64_t> ids((size_t)d.nq * a.k);
    for (int i = 0; i < nk; i++) {
        std::fill(ids.begin(), ids.end(), -1);
        set_knob(knobs[i]);
        double t1 = bench_now();
        for (int q = 0; q < d.nq; q++) {
            search(q);
            for (int j = 0; j < a.k; j++)
                ids[(size_t)q * a.k + j] = (int64_t)res[j];
        }
        double qps = d.nq / (bench_now() - t1);
        char query[64];
        if (hnsw)
            snprintf(query, sizeof query, "efSearch=%ld", knobs[i]);
        else if (ivf)
            snprintf(query, sizeof query, "nprobe=%ld", knobs[i]);
        else
            snprintf(query, sizeof query, "exhaustive");
        bench_write_query(&a, lib.c_str(), query, load_ms, bench_rss_kb() - rss0,
                          bench_recall(&d, ids.data(), a.k), qps, d.nq);
        if (!hnsw && !ivf)
            break;
    }
    return 0;
}
