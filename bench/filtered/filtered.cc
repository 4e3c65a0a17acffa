// bench/filtered/filtered.cc: filtered search on Fashion-MNIST (issue 12), every library in
// one process on the same queries and the same allow-lists.
//
//   filtered OUTDIR [--nq N] [--only "copse post hnswlib faiss"]
//
// Items: the 60,000 training images (784 bytes each, as floats), euclidean. Queries: the first
// N test images (default 500), one at a time on one thread. Allow-lists at 0.1%, 1%, 10% and
// 50% of the items:
//   random   a fixed pseudo-random set of ids (the same for every query);
//   class    items of other classes than the query's own (per query: the 50% list is the
//            five classes after the query's, the 10% list the class five after it, 1% and
//            0.1% a random tenth and hundredth of that class): the allowed items sit away
//            from the query, the hard case.
// Truth: copse_exact_vector_filtered (every allowed item ranked; tests/test_filter.c checks
// it against an independent brute force). Methods and their knobs:
//   copse    copse_search_vector_filtered with an id filter; knob search_k
//   post     copse unfiltered with k' = f * 10 / selectivity (search_k = k'), then the first
//            10 allowed: how Annoy users filter today; knob f
//   hnswlib  Debian's hnswlib 0.6.2 has no filter functor (it came in 0.7.0), so the same
//            over-fetch and post-filter with ef = k'; knob f
//   faiss    IndexHNSWFlat (M 16, efConstruction 200) with an IDSelectorBitmap in
//            SearchParametersHNSW (faiss 1.7.3); knob efSearch
// Output: one line per (list, selectivity, method, knob): recall@10, QPS, and the share of
// queries that got fewer than 10 results; also OUTDIR/filtered.csv.
// Indexes are built once (2 threads) and cached in OUTDIR.
#include <copse.h>

#include <faiss/IndexHNSW.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_io.h>
#include <hnswlib/hnswlib.h>
#include <omp.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

static const char *FM = "/usr/share/datasets/fashion-mnist";
enum { K = 10, DIM = 784, CLASSES = 10 };

[[noreturn]] static void die(const char *what)
{
    fprintf(stderr, "filtered: %s\n", what);
    exit(1);
}

static double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static std::vector<unsigned char> gunzip(const std::string &path)
{
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f)
        die(("cannot open " + path + " (apt-get install dataset-fashion-mnist)").c_str());
    std::vector<unsigned char> out;
    unsigned char buf[1 << 16];
    int got;
    while ((got = gzread(f, buf, sizeof buf)) > 0)
        out.insert(out.end(), buf, buf + got);
    gzclose(f);
    return out;
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static std::vector<float> images(const char *name, int *n)
{
    std::vector<unsigned char> raw = gunzip(std::string(FM) + "/" + name);
    if (raw.size() < 16 || be32(raw.data()) != 0x803)
        die("not an IDX image file");
    *n = (int)be32(raw.data() + 4);
    std::vector<float> x((size_t)*n * DIM);
    for (size_t i = 0; i < x.size(); i++)
        x[i] = raw[16 + i];
    return x;
}

static std::vector<int> labels(const char *name)
{
    std::vector<unsigned char> raw = gunzip(std::string(FM) + "/" + name);
    if (raw.size() < 8 || be32(raw.data()) != 0x801)
        die("not an IDX label file");
    return std::vector<int>(raw.begin() + 8, raw.end());
}

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unit(uint64_t z) { return (double)(mix(z) >> 11) / 9007199254740992.0; }

static bool exists(const std::string &p)
{
    struct stat st;
    return stat(p.c_str(), &st) == 0;
}

// One allow-list: a byte per item plus what each library needs to use it.
struct Allow {
    std::vector<uint8_t> ok;
    std::vector<uint8_t> bits; // faiss's bitmap, LSB first
    copse_filter *filter = nullptr;
    faiss::IDSelectorBitmap *sel = nullptr;
    int64_t count = 0;
};

static void make_allow(Allow &a, copse_index *ix)
{
    std::vector<int64_t> ids;
    a.bits.assign((a.ok.size() + 7) / 8, 0);
    for (size_t i = 0; i < a.ok.size(); i++)
        if (a.ok[i]) {
            ids.push_back((int64_t)i);
            a.bits[i / 8] |= (uint8_t)(1u << (i % 8));
        }
    a.count = (int64_t)ids.size();
    if (copse_filter_new_ids(ix, ids.data(), a.count, &a.filter) != COPSE_OK)
        die("copse_filter_new_ids");
    a.sel = new faiss::IDSelectorBitmap(a.bits.size(), a.bits.data());
}

struct Row {
    std::string list, method, knob;
    double sel, recall, qps, short_share;
};

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: filtered OUTDIR [--nq N] [--only \"copse post hnswlib faiss\"]");
    std::string out = argv[1];
    int nq = 500;
    std::string only = "copse post hnswlib faiss";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--nq"))
            nq = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only"))
            only = argv[i + 1];
    }
    auto want = [&](const char *m) { return (" " + only + " ").find(std::string(" ") + m + " ") != std::string::npos; };
    mkdir(out.c_str(), 0777);
    int n = 0, nt = 0;
    std::vector<float> base = images("train-images-idx3-ubyte.gz", &n);
    std::vector<float> test = images("t10k-images-idx3-ubyte.gz", &nt);
    std::vector<int> base_class = labels("train-labels-idx1-ubyte.gz");
    std::vector<int> query_class = labels("t10k-labels-idx1-ubyte.gz");
    nq = std::min(nq, nt);
    const float *qs = test.data();

    // ---- indexes (built once, 2 threads) ----
    std::string cpath = out + "/copse-fashion-mnist-euclidean.copse";
    copse_index *ix = nullptr;
    if (!exists(cpath)) {
        fprintf(stderr, "building copse (defaults, 2 threads)\n");
        double t0 = now();
        if (copse_new(DIM, COPSE_EUCLIDEAN, &ix) || copse_add_items(ix, n, nullptr, 0, base.data()) ||
            copse_build(ix, -1, 2) || copse_save(ix, cpath.c_str()))
            die(copse_errmsg(ix));
        fprintf(stderr, "  %.1f s\n", now() - t0);
        copse_free(ix);
    }
    if (copse_open(cpath.c_str(), 1, &ix) != COPSE_OK)
        die(copse_errmsg(ix));
    hnswlib::L2Space space(DIM);
    hnswlib::HierarchicalNSW<float> *hn = nullptr;
    std::string hpath = out + "/hnswlib-M16-efc200.bin";
    if (want("hnswlib")) {
        if (!exists(hpath)) {
            fprintf(stderr, "building hnswlib (M 16, efConstruction 200, 2 threads)\n");
            double t0 = now();
            hn = new hnswlib::HierarchicalNSW<float>(&space, n, 16, 200, 100);
            std::atomic<int> next(0);
            auto worker = [&]() {
                for (int i; (i = next.fetch_add(1)) < n;)
                    hn->addPoint(base.data() + (size_t)i * DIM, (hnswlib::labeltype)i);
            };
            std::thread other(worker);
            worker();
            other.join();
            hn->saveIndex(hpath);
            fprintf(stderr, "  %.1f s\n", now() - t0);
            delete hn;
        }
        hn = new hnswlib::HierarchicalNSW<float>(&space, hpath);
    }
    faiss::Index *fx = nullptr;
    std::string fpath = out + "/faiss-hnsw-M16-efc200.bin";
    if (want("faiss")) {
        if (!exists(fpath)) {
            fprintf(stderr, "building faiss IndexHNSWFlat (M 16, efConstruction 200, 2 threads)\n");
            double t0 = now();
            omp_set_num_threads(2);
            faiss::IndexHNSWFlat *h = new faiss::IndexHNSWFlat(DIM, 16);
            h->hnsw.efConstruction = 200;
            h->add(n, base.data());
            faiss::write_index(h, fpath.c_str());
            fprintf(stderr, "  %.1f s\n", now() - t0);
            delete h;
        }
        fx = faiss::read_index(fpath.c_str());
    }
    omp_set_num_threads(1);

    // ---- allow-lists ----
    static const double sels[] = {0.001, 0.01, 0.1, 0.5};
    std::vector<Row> rows;
    FILE *csv = fopen((out + "/filtered.csv").c_str(), "w");
    if (!csv)
        die("cannot write filtered.csv");
    fprintf(csv, "list,selectivity,method,knob,recall10,qps,short_share\n");
    printf("%-7s %7s %-8s %-12s %8s %10s %8s\n", "list", "sel", "method", "knob", "recall", "QPS", "short");
    copse_scratch *s = nullptr;
    copse_scratch_new(&s);
    for (int kind = 0; kind < 2; kind++)
        for (double sel : sels) {
            // random: one list; class: one list per query class.
            int lists = kind == 0 ? 1 : CLASSES;
            std::vector<Allow> allow(lists);
            for (int c = 0; c < lists; c++) {
                allow[c].ok.assign(n, 0);
                for (int i = 0; i < n; i++) {
                    if (kind == 0) {
                        allow[c].ok[i] = unit((uint64_t)i) < sel;
                    } else if (sel >= 0.5) {
                        allow[c].ok[i] = (base_class[i] - c + CLASSES) % CLASSES >= 1 &&
                                         (base_class[i] - c + CLASSES) % CLASSES <= 5;
                    } else {
                        allow[c].ok[i] = base_class[i] == (c + 5) % CLASSES &&
                                         unit((uint64_t)i + 7777777) < sel * CLASSES;
                    }
                }
                make_allow(allow[c], ix);
            }
            auto list_of = [&](int q) -> Allow & { return allow[kind == 0 ? 0 : query_class[q]]; };
            // Truth.
            std::vector<int64_t> truth((size_t)nq * K, -1);
            std::vector<int64_t> tn(nq);
            for (int q = 0; q < nq; q++) {
                float d[K];
                if (copse_exact_vector_filtered(ix, s, qs + (size_t)q * DIM, K, list_of(q).filter,
                                                &truth[(size_t)q * K], d, &tn[q]) != COPSE_OK)
                    die(copse_scratch_errmsg(s));
            }
            double mean_count = 0;
            for (int c = 0; c < lists; c++)
                mean_count += (double)allow[c].count / lists;
            const char *lname = kind == 0 ? "random" : "class";
            auto record = [&](const char *method, const std::string &knob, double secs,
                              const std::vector<int64_t> &res, const std::vector<int64_t> &cnt) {
                double hits = 0, want_total = 0;
                int short_q = 0;
                for (int q = 0; q < nq; q++) {
                    want_total += (double)tn[q];
                    short_q += cnt[q] < std::min<int64_t>(K, tn[q]);
                    for (int j = 0; j < cnt[q]; j++)
                        for (int t = 0; t < tn[q]; t++)
                            hits += res[(size_t)q * K + j] == truth[(size_t)q * K + t];
                }
                Row r{lname, method, knob, sel, hits / want_total, nq / secs, (double)short_q / nq};
                printf("%-7s %6.1f%% %-8s %-12s %8.4f %10.1f %8.3f\n", r.list.c_str(), 100 * sel,
                       method, knob.c_str(), r.recall, r.qps, r.short_share);
                fprintf(csv, "%s,%g,%s,%s,%.4f,%.1f,%.3f\n", r.list.c_str(), sel, method, knob.c_str(),
                        r.recall, r.qps, r.short_share);
                fflush(stdout);
                rows.push_back(r);
            };
            fprintf(stderr, "-- %s %.1f%%: %.0f allowed items on average\n", lname, 100 * sel, mean_count);
            std::vector<int64_t> res((size_t)nq * K), cnt(nq);
            if (want("copse"))
                for (int64_t sk : {10, 20, 40, 80, 160, 320}) {
                    double t0 = now();
                    for (int q = 0; q < nq; q++)
                        if (copse_search_vector_filtered(ix, s, qs + (size_t)q * DIM, K, sk, list_of(q).filter,
                                                         &res[(size_t)q * K], nullptr, &cnt[q]) != COPSE_OK)
                            die(copse_scratch_errmsg(s));
                    record("copse", "search_k=" + std::to_string(sk), now() - t0, res, cnt);
                }
            for (int f : {1, 2, 4}) {
                int64_t kk = std::min<int64_t>(n, (int64_t)std::ceil(f * K / sel));
                std::vector<int64_t> big((size_t)kk);
                if (want("post")) {
                    double t0 = now();
                    for (int q = 0; q < nq; q++) {
                        int64_t got = 0;
                        if (copse_search_vector(ix, s, qs + (size_t)q * DIM, kk, kk, big.data(), nullptr, &got))
                            die(copse_scratch_errmsg(s));
                        Allow &a = list_of(q);
                        cnt[q] = 0;
                        for (int64_t j = 0; j < got && cnt[q] < K; j++)
                            if (a.ok[big[j]])
                                res[(size_t)q * K + cnt[q]++] = big[j];
                    }
                    record("post", "f=" + std::to_string(f) + ";k=" + std::to_string(kk), now() - t0, res, cnt);
                }
                if (hn) {
                    hn->setEf((size_t)kk);
                    double t0 = now();
                    for (int q = 0; q < nq; q++) {
                        auto pq = hn->searchKnn(qs + (size_t)q * DIM, (size_t)kk);
                        std::vector<int64_t> order;
                        order.reserve(pq.size());
                        for (; !pq.empty(); pq.pop())
                            order.push_back((int64_t)pq.top().second);
                        Allow &a = list_of(q);
                        cnt[q] = 0;
                        for (size_t j = order.size(); j-- > 0 && cnt[q] < K;)
                            if (a.ok[order[j]])
                                res[(size_t)q * K + cnt[q]++] = order[j];
                    }
                    record("hnswlib", "f=" + std::to_string(f) + ";ef=" + std::to_string(kk), now() - t0, res, cnt);
                }
            }
            if (fx)
                for (int ef : {16, 64, 256, 1024}) {
                    faiss::SearchParametersHNSW p;
                    p.efSearch = ef;
                    // faiss 1.7.3 reads efSearch from the index, not from the parameters
                    // (measured: recall did not move with p.efSearch alone).
                    dynamic_cast<faiss::IndexHNSW *>(fx)->hnsw.efSearch = ef;
                    std::vector<float> d(K);
                    std::vector<faiss::Index::idx_t> lab(K);
                    double t0 = now();
                    for (int q = 0; q < nq; q++) {
                        p.sel = list_of(q).sel;
                        fx->search(1, qs + (size_t)q * DIM, K, d.data(), lab.data(), &p);
                        cnt[q] = 0;
                        for (int j = 0; j < K; j++)
                            if (lab[j] >= 0)
                                res[(size_t)q * K + cnt[q]++] = lab[j];
                    }
                    record("faiss", "efSearch=" + std::to_string(ef), now() - t0, res, cnt);
                }
            for (auto &a : allow) {
                copse_filter_free(a.filter);
                delete a.sel;
            }
        }
    fclose(csv);
    copse_scratch_free(s);
    copse_free(ix);
    delete hn;
    delete fx;
    return 0;
}
