// annoy_recall.cc: recall@10 of Annoy 1.17's own code on the data sets of tests/test_recall.c,
// so the thresholds there are the recall Annoy reaches, measured, not guessed.
//   annoy_recall METRIC N_TREES SEARCH_K BASE.fvecs QUERY.fvecs
// Exact neighbours are found by brute force in double precision here. Benchmark-only: built by
// bench/reference/run.sh against annoylib.h from Debian's r-cran-rcppannoy.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <string>
#include <vector>

#include "annoylib.h"
#include "kissrandom.h"

using std::vector;

static vector<float> read_fvecs(const char *path, int *dim, int *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    vector<float> out;
    int d = 0, rows = 0;
    while (fread(&d, 4, 1, f) == 1) {
        size_t at = out.size();
        out.resize(at + d);
        if (fread(&out[at], 4, d, f) != (size_t)d)
            exit(2);
        rows++;
    }
    fclose(f);
    *dim = d;
    *n = rows;
    return out;
}

// Smaller is nearer.
static double exact_dist(const std::string &m, const float *a, const float *b, int d)
{
    double s = 0, na = 0, nb = 0;
    for (int i = 0; i < d; i++) {
        if (m == "euclidean") s += (double)(a[i] - b[i]) * (a[i] - b[i]);
        else if (m == "manhattan") s += std::fabs((double)a[i] - b[i]);
        else if (m == "hamming") s += ((a[i] > 0.5f) != (b[i] > 0.5f));
        else { s += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
    }
    if (m == "dot") return -s;
    if (m == "angular") return (na > 0 && nb > 0) ? -s / std::sqrt(na * nb) : 0;
    return s;
}

template <typename T, typename Distance>
static double run(const std::string &m, int n_trees, int search_k, const vector<float> &base,
                  const vector<float> &qs, int dim, int n, int nq)
{
    const int K = 10;
    int f = dim;
    vector<T> tmp;
    auto pack = [&](const float *v) -> const T * {
        if (m != "hamming")
            return (const T *)v;
        f = (dim + 63) / 64;
        tmp.assign(f, 0);
        for (int i = 0; i < dim; i++)
            if (v[i] > 0.5f)
                ((uint64_t *)tmp.data())[i / 64] |= (uint64_t)1 << (i % 64);
        return tmp.data();
    };
    int fi = m == "hamming" ? (dim + 63) / 64 : dim;
    AnnoyIndex<int32_t, T, Distance, Kiss64Random, AnnoyIndexSingleThreadedBuildPolicy> ix(fi);
    for (int i = 0; i < n; i++)
        ix.add_item(i, pack(&base[(size_t)i * dim]));
    ix.build(n_trees, 1);
    long hits = 0;
    for (int q = 0; q < nq; q++) {
        const float *qv = &qs[(size_t)q * dim];
        vector<std::pair<double, int>> all(n);
        for (int i = 0; i < n; i++)
            all[i] = {exact_dist(m, qv, &base[(size_t)i * dim], dim), i};
        std::partial_sort(all.begin(), all.begin() + K, all.end());
        vector<int32_t> got;
        ix.get_nns_by_vector(pack(qv), K, search_k, &got, nullptr);
        // A result counts when it is as near as the k-th true neighbour, so ties (frequent
        // with hamming) do not depend on which of equal items the brute force listed.
        double kth = all[K - 1].first;
        for (int32_t id : got)
            hits += exact_dist(m, qv, &base[(size_t)id * dim], dim) <= kth + 1e-6 * std::fabs(kth);
    }
    return (double)hits / ((double)nq * K);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: annoy_recall METRIC N_TREES SEARCH_K BASE.fvecs QUERY.fvecs\n");
        return 2;
    }
    std::string m = argv[1];
    int n_trees = atoi(argv[2]), search_k = atoi(argv[3]), dim, n, qd, nq;
    vector<float> base = read_fvecs(argv[4], &dim, &n), qs = read_fvecs(argv[5], &qd, &nq);
    double r;
    if (m == "angular") r = run<float, Angular>(m, n_trees, search_k, base, qs, dim, n, nq);
    else if (m == "euclidean") r = run<float, Euclidean>(m, n_trees, search_k, base, qs, dim, n, nq);
    else if (m == "manhattan") r = run<float, Manhattan>(m, n_trees, search_k, base, qs, dim, n, nq);
    else if (m == "dot") r = run<float, DotProduct>(m, n_trees, search_k, base, qs, dim, n, nq);
    else r = run<uint64_t, Hamming>(m, n_trees, search_k, base, qs, dim, n, nq);
    printf("%.3f\n", r);
    return 0;
}
