// peer_stats.cc: how much work the peers do per query, to read their QPS figures by.
//   peer_stats annoy DATA_DIR INDEX_FILE search_k,...     leaf sizes, tree depth, candidates
//   peer_stats hnswlib DATA_DIR INDEX_FILE ef,...         distance computations per query
// Euclidean only; 1,000 queries. Annoy's candidate walk below is a copy of annoylib.h 1.17's
// _get_all_nns (the part before distances), reached through a subclass; hnswlib counts its
// own work in metric_distance_computations (neighbour-list entries scanned, an upper bound
// on distances computed: already visited entries are skipped without a distance).
// Diagnostic only: run.sh does not use it. Build (after run.sh has fetched annoylib.h):
//   g++ -O3 -march=native -ffast-math -fno-associative-math -std=c++14 \
//     -Ibench/peers/vendor/annoy -o bench/out/bin/peer_stats bench/tools/peer_stats.cc -lpthread
#include "../common.h"

#include <algorithm>
#include <queue>
#include <vector>

#include "annoylib.h"
#include "kissrandom.h"
#include <hnswlib/hnswlib.h>

typedef AnnoyIndex<int32_t, float, Euclidean, Kiss64Random, AnnoyIndexSingleThreadedBuildPolicy>
    Annoy;

struct AnnoyPeek : public Annoy {
    explicit AnnoyPeek(int f) : Annoy(f) {}
    typedef Euclidean::Node<int32_t, float> Node;
    Node *node(int32_t i) const { return (Node *)((uint8_t *)_nodes + (size_t)_s * i); }
    void shape() const {
        long leaves = 0, leaf_items = 0, splits = 0, max_leaf = 0;
        for (int32_t i = _n_items; i < _n_nodes; i++) {
            Node *nd = node(i);
            if (nd->n_descendants <= _K && nd->n_descendants > 1) {
                leaves++;
                leaf_items += nd->n_descendants;
                max_leaf = std::max(max_leaf, (long)nd->n_descendants);
            } else if (nd->n_descendants > _K) {
                splits++;
            }
        }
        printf("annoy: dim %d, K (largest leaf) %d, %zu trees, %ld split nodes, %ld leaves, "
               "mean leaf %.0f items, largest %ld\n",
               _f, _K, _roots.size(), splits, leaves, (double)leaf_items / leaves, max_leaf);
    }
    // Annoy's walk up to the candidate list: (raw list length, distinct items, leaves opened)
    void walk(const float *v, int search_k, size_t *raw, size_t *distinct, size_t *nleaves) const {
        std::priority_queue<std::pair<float, int32_t> > q;
        for (size_t i = 0; i < _roots.size(); i++)
            q.push(std::make_pair(Euclidean::pq_initial_value<float>(), _roots[i]));
        std::vector<int32_t> nns;
        size_t leaves = 0;
        while (nns.size() < (size_t)search_k && !q.empty()) {
            float d = q.top().first;
            int32_t i = q.top().second;
            q.pop();
            Node *nd = node(i);
            if (nd->n_descendants == 1 && i < _n_items) {
                nns.push_back(i);
            } else if (nd->n_descendants <= _K) {
                nns.insert(nns.end(), nd->children, nd->children + nd->n_descendants);
                leaves++;
            } else {
                float margin = Euclidean::margin(nd, v, _f);
                q.push(std::make_pair(Euclidean::pq_distance(d, margin, 1), nd->children[1]));
                q.push(std::make_pair(Euclidean::pq_distance(d, margin, 0), nd->children[0]));
            }
        }
        *raw = nns.size();
        std::sort(nns.begin(), nns.end());
        *distinct = std::unique(nns.begin(), nns.end()) - nns.begin();
        *nleaves = leaves;
    }
};

int main(int argc, char **argv)
{
    if (argc != 5)
        bench_die("usage: peer_stats annoy|hnswlib DATA_DIR INDEX knob,knob,...");
    bench_data d;
    bench_tool_queries(argv[2], 1000, &d);
    long knobs[64];
    int nk = bench_knobs(argv[4], knobs, 64);
    std::vector<int64_t> ids((size_t)d.nq * 10, -1);
    if (!strcmp(argv[1], "annoy")) {
        AnnoyPeek ix(d.dim);
        if (!ix.load(argv[3]))
            bench_die("cannot load %s", argv[3]);
        ix.shape();
        std::vector<int32_t> res;
        for (int k = 0; k < nk; k++) {
            double raw = 0, distinct = 0, leaves = 0;
            for (int q = 0; q < d.nq; q++) {
                size_t r, u, l;
                ix.walk(d.queries + (size_t)q * d.dim, (int)knobs[k], &r, &u, &l);
                raw += r; distinct += u; leaves += l;
                res.clear();
                ix.get_nns_by_vector(d.queries + (size_t)q * d.dim, 10, (int)knobs[k], &res, NULL);
                for (size_t j = 0; j < res.size(); j++)
                    ids[(size_t)q * 10 + j] = res[j];
            }
            printf("annoy search_k=%-6ld recall %.4f  leaves opened %6.1f  candidates %7.0f  "
                   "distinct (= full distances) %7.0f\n", knobs[k], bench_recall(&d, ids.data(), 10),
                   leaves / d.nq, raw / d.nq, distinct / d.nq);
        }
    } else {
        hnswlib::L2Space space(d.dim);
        hnswlib::HierarchicalNSW<float> ix(&space, argv[3]);
        for (int k = 0; k < nk; k++) {
            ix.setEf(knobs[k]);
            ix.metric_distance_computations = 0;
            ix.metric_hops = 0;
            for (int q = 0; q < d.nq; q++) {
                auto r = ix.searchKnn(d.queries + (size_t)q * d.dim, 10);
                for (int j = (int)r.size() - 1; j >= 0; j--) {
                    ids[(size_t)q * 10 + j] = (int64_t)r.top().second;
                    r.pop();
                }
            }
            printf("hnswlib ef=%-4ld recall %.4f  hops %6.1f  neighbour entries scanned (>= "
                   "distances) %6.0f\n", knobs[k], bench_recall(&d, ids.data(), 10),
                   (double)ix.metric_hops / d.nq, (double)ix.metric_distance_computations / d.nq);
        }
    }
    return 0;
}
