// annoy_ref: writes an Annoy .ann file and Annoy's own answers, for the compatibility tests.
//
// Compiled by tests/conftest.py against the annoylib.h that Debian's r-cran-rcppannoy ships
// (Annoy 1.17's header), so copse's Annoy loader is checked against the real thing rather
// than against our reading of Annoy's format.
//
// usage: annoy_ref METRIC F N_TREES SEED VECTORS N OUT_ANN QUERIES NQ K SEARCH_K OUT_RESULTS
//   VECTORS: N*F float32, item i is row i. QUERIES: NQ*F float32.
//   OUT_RESULTS: per query, int32 count, K int32 ids (-1 past count), K float32 distances.
// Annoy's Python module is mirrored: float metrics index floats; hamming packs each float
// > 0.5 into a bit of 64-bit words, as annoymodule.cc's HammingWrapper does.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "annoylib.h"
#include "kissrandom.h"

using std::vector;

typedef AnnoyIndexSingleThreadedBuildPolicy Policy;

static vector<float> read_floats(const char *path, size_t count)
{
    vector<float> v(count);
    FILE *fp = fopen(path, "rb");
    if (!fp || fread(v.data(), sizeof(float), count, fp) != count) {
        fprintf(stderr, "annoy_ref: cannot read %zu floats from %s\n", count, path);
        exit(2);
    }
    fclose(fp);
    return v;
}

struct Results {
    vector<int32_t> count, ids;
    vector<float> dists;
};

static void write_results(const char *path, const Results &r)
{
    FILE *fp = fopen(path, "wb");
    size_t nq = r.count.size(), k = nq ? r.ids.size() / nq : 0;
    for (size_t q = 0; fp && q < nq; q++) {
        fwrite(&r.count[q], sizeof(int32_t), 1, fp);
        fwrite(&r.ids[q * k], sizeof(int32_t), k, fp);
        fwrite(&r.dists[q * k], sizeof(float), k, fp);
    }
    if (!fp || fclose(fp) != 0) {
        fprintf(stderr, "annoy_ref: cannot write %s\n", path);
        exit(2);
    }
}

struct Args {
    int f, n_trees, n, nq, k, search_k;
    uint64_t seed;
    const char *out_ann, *out_results;
    vector<float> items, queries;
};

// Builds, saves, reloads (as a user of the file would) and answers the queries. Items and
// queries are given to Annoy as T after `convert` (identity, or bit-packing for hamming).
template <typename Index, typename T, typename Convert>
static void run(Index &ix, int width, const Args &a, Convert convert)
{
    vector<T> w(width);
    for (int i = 0; i < a.n; i++) {
        convert(&a.items[(size_t)i * a.f], w.data());
        ix.add_item(i, w.data());
    }
    ix.set_seed(a.seed);
    char *err = NULL;
    if (!ix.build(a.n_trees, 1, &err) || !ix.save(a.out_ann, false, &err)) {
        fprintf(stderr, "annoy_ref: %s\n", err ? err : "build or save failed");
        exit(2);
    }
    Results r;
    for (int q = 0; q < a.nq; q++) {
        vector<int32_t> ids;
        vector<T> dists;
        convert(&a.queries[(size_t)q * a.f], w.data());
        ix.get_nns_by_vector(w.data(), a.k, a.search_k, &ids, &dists);
        r.count.push_back((int32_t)ids.size());
        for (int j = 0; j < a.k; j++) {
            r.ids.push_back(j < (int)ids.size() ? ids[j] : -1);
            r.dists.push_back(j < (int)ids.size() ? (float)dists[j] : 0.0f);
        }
    }
    write_results(a.out_results, r);
}

template <typename Metric>
static void run_float(const Args &a)
{
    AnnoyIndex<int32_t, float, Metric, Kiss64Random, Policy> ix(a.f);
    run<decltype(ix), float>(ix, a.f, a, [&](const float *src, float *dst) {
        memcpy(dst, src, sizeof(float) * a.f);
    });
}

static void run_hamming(const Args &a)
{
    int words = (a.f + 63) / 64;
    AnnoyIndex<int32_t, uint64_t, Hamming, Kiss64Random, Policy> ix(words);
    run<decltype(ix), uint64_t>(ix, words, a, [&](const float *src, uint64_t *dst) {
        for (int i = 0; i < words; i++) {
            dst[i] = 0;
            for (int j = 0; j < 64 && i * 64 + j < a.f; j++)
                dst[i] |= (uint64_t)(src[i * 64 + j] > 0.5) << j;
        }
    });
}

int main(int argc, char **argv)
{
    if (argc != 13) {
        fprintf(stderr, "usage: annoy_ref METRIC F N_TREES SEED VECTORS N OUT_ANN QUERIES NQ K "
                        "SEARCH_K OUT_RESULTS\n");
        return 2;
    }
    Args a;
    std::string metric = argv[1];
    a.f = atoi(argv[2]);
    a.n_trees = atoi(argv[3]);
    a.seed = strtoull(argv[4], NULL, 10);
    a.n = atoi(argv[6]);
    a.out_ann = argv[7];
    a.nq = atoi(argv[9]);
    a.k = atoi(argv[10]);
    a.search_k = atoi(argv[11]);
    a.out_results = argv[12];
    a.items = read_floats(argv[5], (size_t)a.n * a.f);
    a.queries = read_floats(argv[8], (size_t)a.nq * a.f);
    if (metric == "angular")
        run_float<Angular>(a);
    else if (metric == "euclidean")
        run_float<Euclidean>(a);
    else if (metric == "manhattan")
        run_float<Manhattan>(a);
    else if (metric == "dot")
        run_float<DotProduct>(a);
    else if (metric == "hamming")
        run_hamming(a);
    else {
        fprintf(stderr, "annoy_ref: unknown metric %s\n", metric.c_str());
        return 2;
    }
    return 0;
}
