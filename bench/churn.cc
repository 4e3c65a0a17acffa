// churn.cc: the living-index benchmark of issue 11, copse beside hnswlib in one run.
//
// Fashion-MNIST (784 pixels, euclidean). Of its 60,000 training images, the first B (40,000)
// are the base and the next B / 2 (20,000) the items added later; ids are the image numbers.
// Churn, in rounds of --batch (1,000): delete that many random base items, then add as many
// new ones. After B / 2 deletes and B / 2 adds half the live set has changed (50% churn), every
// vector is a distinct real image and the live set is as large as the base. A base of 50,000
// would need 75,000 distinct images for the same churn; Fashion-MNIST has 60,000 besides the
// queries, so 40,000 is the largest base for which no vector is repeated (a repeated vector
// would leave a deleted twin beside a live item and flatter the walk).
//
// Measured, all in one process so every ratio compares figures of one run:
//   - recall@10 and QPS (one thread, one query at a time) at each search_k for: copse churned
//     with 1 and with 2 change threads, the churned index saved and loaded, the same compacted,
//     a fresh copse build of exactly the live set, and hnswlib (M=16, ef_construction=200)
//     churned the same way and built fresh on the live set (ef = search_k). The rounds of
//     timing rotate the order of the indexes; QPS is the median over rounds.
//   - throughput of the churn: items added per second after build (copse with 1 and 2 change
//     threads, hnswlib's addPoint on 1 and 2 threads the way its Python add_items spreads rows
//     over std::threads), deletes per second (copse_delete_items / copse_delete_item against
//     hnswlib's markDelete).
//   - copse_file_size before and after compact, against a fresh build and hnswlib's saveIndex.
//   - where a churned query's time goes: copse's base alone, with the churn's deletes only and
//     with its adds only, each against the exact answer over its own live set.
// The exact top-10 over the live set is computed here by brute force on the integer pixels
// (exact distances, so ties are decided exactly): a returned item counts as a hit when its
// distance is at most the 10th true distance. Every answer is also checked: no deleted id, no
// repeated id, k results.
//
// Usage: churn [--nq N] [--nq-time N] [--reps R] [--base B] [--batch N] [--data DIR] [--work DIR]
//              [--csv FILE]
//   --nq: queries for recall (10,000, all the test images); --nq-time: the first of them timed
//   in each of --reps rounds (2,000 and 3, which keeps the run near 5 minutes on a quiet machine).
//   --csv: also write the figures the targets are judged on as rows measure,subject,param,value
//   (bench/summarize.py reads them for RESULTS.md).
// Prints markdown tables on stdout and progress on stderr (bench/churn.sh writes CHURN.md).
#include <copse.h>
#include <hnswlib/hnswlib.h>
#include <zlib.h>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

const int K = 10;
const int DIM = 784;
const int THREADS = 2; // builds, compaction and the brute force: the machine's two cores
const int64_t SEARCH_KS[] = {10, 20, 40, 80, 160}; // recall reaches 0.998 at 160
const int N_KS = sizeof SEARCH_KS / sizeof SEARCH_KS[0];
const int WARMUP = 100; // untimed queries before each timed pass

[[noreturn]] void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("churn: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[churn] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

std::string loadavg()
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            strcpy(buf, "?");
        fclose(f);
    }
    std::string s(buf);
    // the 1-, 5- and 15-minute averages are the first three fields
    size_t cut = 0;
    for (int field = 0; field < 3 && cut != std::string::npos; field++)
        cut = s.find(' ', cut + (field ? 1 : 0));
    return cut == std::string::npos ? s : s.substr(0, cut);
}

// Runs worker on n_threads threads, this one among them, and waits for them all.
template <class F> void on_threads(int n_threads, F worker)
{
    std::vector<std::thread> pool;
    for (int t = 1; t < n_threads; t++)
        pool.emplace_back(worker);
    worker();
    for (auto &t : pool)
        t.join();
}

// ---- data ----------------------------------------------------------------------------------

// Pixels of an IDX image file (gzip), as int16 for the exact brute force; *n images of *d.
std::vector<int16_t> read_idx_gz(const std::string &path, int *n, int *d)
{
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f)
        die("cannot open %s", path.c_str());
    unsigned char h[16];
    if (gzread(f, h, 16) != 16)
        die("%s: short header", path.c_str());
    auto be32 = [&](int at) {
        return (uint32_t)h[at] << 24 | (uint32_t)h[at + 1] << 16 | (uint32_t)h[at + 2] << 8 | h[at + 3];
    };
    if (be32(0) != 0x803)
        die("%s: not an IDX file of unsigned bytes in 3 dimensions", path.c_str());
    *n = (int)be32(4);
    *d = (int)(be32(8) * be32(12));
    std::vector<unsigned char> raw((size_t)*n * *d);
    size_t got = 0;
    while (got < raw.size()) {
        int chunk = (int)std::min<size_t>(raw.size() - got, 1 << 30);
        int r = gzread(f, raw.data() + got, chunk);
        if (r <= 0)
            die("%s: short data", path.c_str());
        got += (size_t)r;
    }
    gzclose(f);
    return std::vector<int16_t>(raw.begin(), raw.end());
}

std::vector<float> to_float(const std::vector<int16_t> &v) { return std::vector<float>(v.begin(), v.end()); }

int32_t l2_exact(const int16_t *a, const int16_t *b)
{
    int32_t s = 0;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < DIM; j++) {
        int16_t t = (int16_t)(a[j] - b[j]);
        s += (int32_t)t * t;
    }
    return s;
}

// The 10th smallest exact squared distance from each query to the live set, by brute force
// in blocks of queries (so a block's rows stay in cache while the items stream past), on
// THREADS threads.
std::vector<int32_t> kth_distances(const std::vector<int16_t> &items, const std::vector<int64_t> &live,
                                   const std::vector<int16_t> &queries, int nq)
{
    std::vector<int32_t> kth((size_t)nq);
    const int BLOCK = 32;
    std::atomic<int> next(0);
    auto worker = [&]() {
        std::vector<int32_t> top((size_t)BLOCK * K);
        for (int b; (b = next.fetch_add(1)) * BLOCK < nq;) {
            int q0 = b * BLOCK, nb = std::min(BLOCK, nq - q0);
            std::fill(top.begin(), top.end(), INT32_MAX);
            for (int64_t id : live) {
                const int16_t *x = &items[(size_t)id * DIM];
                for (int j = 0; j < nb; j++) {
                    int32_t d = l2_exact(&queries[(size_t)(q0 + j) * DIM], x);
                    int32_t *t = &top[(size_t)j * K];
                    if (d >= t[K - 1])
                        continue;
                    int p = K - 1;
                    for (; p > 0 && t[p - 1] > d; p--)
                        t[p] = t[p - 1];
                    t[p] = d;
                }
            }
            for (int j = 0; j < nb; j++)
                kth[(size_t)(q0 + j)] = top[(size_t)j * K + K - 1];
        }
    };
    on_threads(THREADS, worker);
    return kth;
}

// ---- the plan ------------------------------------------------------------------------------

struct Plan {
    int64_t n_base, n_new, batch;
    std::vector<int64_t> deletes; // base ids in the order they are deleted
};

Plan make_plan(int64_t n_base, int64_t batch)
{
    Plan p;
    p.n_base = n_base;
    p.n_new = n_base / 2;
    p.batch = batch;
    std::vector<int64_t> order((size_t)n_base);
    for (int64_t i = 0; i < n_base; i++)
        order[(size_t)i] = i;
    std::mt19937_64 rng(20261201);
    std::shuffle(order.begin(), order.end(), rng);
    p.deletes.assign(order.begin(), order.begin() + p.n_new);
    return p;
}

// The items an index should hold, and the exact answer over them.
struct LiveSet {
    std::vector<char> in;      // by id (0 .. n_base + n_new - 1): live
    std::vector<int64_t> live; // ascending
    std::vector<int32_t> kth;  // per query: the exact 10th squared distance
};

// The base, with the plan's deletes applied or not, and its adds or not.
LiveSet make_set(const Plan &p, bool deleted, bool added)
{
    LiveSet s;
    s.in.assign((size_t)(p.n_base + p.n_new), 0);
    for (int64_t id = 0; id < p.n_base + (added ? p.n_new : 0); id++)
        s.in[(size_t)id] = 1;
    for (int64_t id : p.deletes)
        s.in[(size_t)id] = !deleted;
    for (int64_t id = 0; id < (int64_t)s.in.size(); id++)
        if (s.in[(size_t)id])
            s.live.push_back(id);
    return s;
}

struct ChurnTimes {
    double add_s = 0, del_s = 0;
};

// ---- copse ---------------------------------------------------------------------------------

void check(int rc, const copse_index *ix, const char *what)
{
    if (rc != COPSE_OK)
        die("%s: %s (%s)", what, copse_strerror(rc), copse_errmsg(ix));
}

// A copse index of rows[id] for the given ids, built with the default settings.
copse_index *copse_fresh(const std::vector<float> &rows, const std::vector<int64_t> &ids, double *build_s)
{
    copse_index *ix = nullptr;
    int rc = copse_new(DIM, COPSE_EUCLIDEAN, &ix);
    check(rc, ix, "copse_new");
    std::vector<float> packed(ids.size() * DIM);
    for (size_t i = 0; i < ids.size(); i++)
        memcpy(&packed[i * DIM], &rows[(size_t)ids[i] * DIM], DIM * sizeof(float));
    double t0 = now();
    check(copse_add_items(ix, (int64_t)ids.size(), ids.data(), 0, packed.data()), ix, "copse_add_items");
    check(copse_build(ix, -1, THREADS), ix, "copse_build");
    *build_s = now() - t0;
    return ix;
}

// The churn on a built copse index: per round, delete a batch of base items (one
// copse_delete_items call, or one copse_delete_item per id), then add a batch of new items
// (one copse_add_items call). deletes / adds false leave that half out.
ChurnTimes copse_churn(copse_index *ix, const Plan &p, const std::vector<float> &rows, int change_threads,
                       bool one_by_one, bool deletes = true, bool adds = true)
{
    check(copse_set_change_threads(ix, change_threads), ix, "copse_set_change_threads");
    ChurnTimes t;
    for (int64_t at = 0; at < p.n_new; at += p.batch) {
        int64_t n = std::min(p.batch, p.n_new - at);
        double t0 = now();
        if (deletes && one_by_one)
            for (int64_t i = 0; i < n; i++)
                check(copse_delete_item(ix, p.deletes[(size_t)(at + i)]), ix, "copse_delete_item");
        else if (deletes)
            check(copse_delete_items(ix, n, &p.deletes[(size_t)at]), ix, "copse_delete_items");
        double t1 = now();
        int64_t first = p.n_base + at;
        if (adds)
            check(copse_add_items(ix, n, nullptr, first, &rows[(size_t)first * DIM]), ix, "copse_add_items");
        double t2 = now();
        t.del_s += t1 - t0;
        t.add_s += t2 - t1;
    }
    int64_t n_del = deletes ? p.n_new : 0, n_add = adds ? p.n_new : 0;
    if (copse_n_items(ix) != p.n_base - n_del + n_add || copse_n_deleted(ix) != n_del || copse_n_added(ix) != n_add)
        die("after the churn: %lld items, %lld deleted, %lld added; expected %lld, %lld, %lld",
            (long long)copse_n_items(ix), (long long)copse_n_deleted(ix), (long long)copse_n_added(ix),
            (long long)(p.n_base - n_del + n_add), (long long)n_del, (long long)n_add);
    return t;
}

// A copse index loaded from bytes (which must outlive it).
copse_index *copse_from_bytes(const std::vector<unsigned char> &bytes, double *load_s)
{
    copse_index *ix = nullptr;
    check(copse_new(DIM, COPSE_EUCLIDEAN, &ix), ix, "copse_new");
    double t0 = now();
    check(copse_load_buffer(ix, bytes.data(), bytes.size()), ix, "copse_load_buffer");
    *load_s = now() - t0;
    return ix;
}

std::vector<unsigned char> copse_bytes(copse_index *ix)
{
    std::vector<unsigned char> b((size_t)copse_file_size(ix));
    check(copse_save_buffer(ix, b.data(), b.size()), ix, "copse_save_buffer");
    return b;
}

// ---- hnswlib -------------------------------------------------------------------------------

typedef hnswlib::HierarchicalNSW<float> Hnsw;

// addPoint for rows[ids[i]] on n_threads threads sharing the rows by an atomic counter, as
// hnswlib's Python add_items does.
void hnsw_add(Hnsw &h, const std::vector<float> &rows, const int64_t *ids, int64_t n, int n_threads)
{
    std::atomic<int64_t> next(0);
    auto worker = [&]() {
        for (int64_t i; (i = next.fetch_add(1)) < n;)
            h.addPoint(&rows[(size_t)ids[i] * DIM], (hnswlib::labeltype)ids[i]);
    };
    on_threads(n_threads, worker);
}

Hnsw *hnsw_fresh(hnswlib::L2Space &space, const std::vector<float> &rows, const std::vector<int64_t> &ids,
                 size_t capacity, double *build_s)
{
    Hnsw *h = new Hnsw(&space, capacity, 16, 200);
    double t0 = now();
    hnsw_add(*h, rows, ids.data(), (int64_t)ids.size(), THREADS);
    *build_s = now() - t0;
    return h;
}

// The same churn on hnswlib: per round, markDelete a batch of base items one by one (it has no
// batch call), then addPoint a batch of new items on n_threads threads.
ChurnTimes hnsw_churn(Hnsw &h, const Plan &p, const std::vector<float> &rows, int n_threads)
{
    ChurnTimes t;
    std::vector<int64_t> fresh_ids((size_t)p.n_new);
    for (int64_t i = 0; i < p.n_new; i++)
        fresh_ids[(size_t)i] = p.n_base + i;
    for (int64_t at = 0; at < p.n_new; at += p.batch) {
        int64_t n = std::min(p.batch, p.n_new - at);
        double t0 = now();
        for (int64_t i = 0; i < n; i++)
            h.markDelete((hnswlib::labeltype)p.deletes[(size_t)(at + i)]);
        double t1 = now();
        hnsw_add(h, rows, &fresh_ids[(size_t)at], n, n_threads);
        double t2 = now();
        t.del_s += t1 - t0;
        t.add_s += t2 - t1;
    }
    return t;
}

uint64_t file_bytes(const std::string &path)
{
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? (uint64_t)st.st_size : 0;
}

// ---- queries -------------------------------------------------------------------------------

// An index under test (copse or hnswlib) with the live set it should hold and its results.
struct Subject {
    Subject(const char *n, copse_index *c, Hnsw *h, const LiveSet *s) : name(n), copse(c), hnsw(h), set(s), qps(N_KS) {}
    std::string name;
    copse_index *copse;
    Hnsw *hnsw;
    const LiveSet *set;
    std::vector<std::vector<double>> qps; // [search_k][round]
    double recall[N_KS] = {};
    int64_t faults[N_KS] = {}; // answers with a deleted or repeated id, or fewer than K results
};

// Answers queries [0, nq) one at a time at one search_k; ids gets K per query (-1 past the
// end of a short answer). Returns the queries per second.
double run_queries(Subject &s, copse_scratch *scratch, const std::vector<float> &queries, int nq,
                   int64_t search_k, std::vector<int64_t> &ids)
{
    std::fill(ids.begin(), ids.end(), -1);
    auto one = [&](int q, int64_t *out) {
        const float *v = &queries[(size_t)q * DIM];
        if (s.copse) {
            int64_t n_out = 0;
            int rc = copse_search_vector(s.copse, scratch, v, K, search_k, out, nullptr, &n_out);
            if (rc != COPSE_OK)
                die("%s: search: %s (%s)", s.name.c_str(), copse_strerror(rc), copse_scratch_errmsg(scratch));
            return;
        }
        auto res = s.hnsw->searchKnn(v, K); // farthest first
        for (int j = (int)res.size() - 1; j >= 0; j--) {
            out[j] = (int64_t)res.top().second;
            res.pop();
        }
    };
    if (s.hnsw)
        s.hnsw->setEf((size_t)search_k);
    std::vector<int64_t> sink(K);
    for (int q = 0; q < WARMUP && q < nq; q++)
        one(q, sink.data());
    double t0 = now();
    for (int q = 0; q < nq; q++)
        one(q, &ids[(size_t)q * K]);
    return nq / (now() - t0);
}

// recall@10 of ids (K per query) against the exact 10th distances; counts faulty answers.
double score(const std::vector<int64_t> &ids, int nq, const LiveSet &set, const std::vector<int16_t> &items,
             const std::vector<int16_t> &queries, int64_t *faults)
{
    double total = 0;
    *faults = 0;
    for (int q = 0; q < nq; q++) {
        const int64_t *r = &ids[(size_t)q * K];
        int hit = 0, bad = 0;
        for (int i = 0; i < K; i++) {
            int64_t id = r[i];
            bool repeated = std::find(r, r + i, id) != r + i;
            if (id < 0 || id >= (int64_t)set.in.size() || !set.in[(size_t)id] || repeated) {
                bad = 1;
                continue;
            }
            hit += l2_exact(&queries[(size_t)q * DIM], &items[(size_t)id * DIM]) <= set.kth[(size_t)q];
        }
        total += (double)hit / K;
        *faults += bad;
    }
    return total / nq;
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A markdown table: one row per search_k, one column "recall@10 / QPS" per chosen subject.
void print_table(const std::vector<Subject> &subjects, std::initializer_list<int> cols)
{
    printf("| search_k |");
    for (int c : cols)
        printf(" %s |", subjects[(size_t)c].name.c_str());
    printf("\n|---|");
    for (size_t i = 0; i < cols.size(); i++)
        printf("---|");
    printf("\n");
    for (int ki = 0; ki < N_KS; ki++) {
        printf("| %lld |", (long long)SEARCH_KS[ki]);
        for (int c : cols)
            printf(" %.4f / %.0f |", subjects[(size_t)c].recall[ki], median(subjects[(size_t)c].qps[(size_t)ki]));
        printf("\n");
    }
    printf("\n");
}

std::string mb(uint64_t bytes)
{
    char b[32];
    snprintf(b, sizeof b, "%.1f MB", bytes / 1e6);
    return b;
}

} // namespace

int main(int argc, char **argv)
{
    int nq = 10000, nq_time = 2000, reps = 3;
    int64_t n_base = 40000, batch = 1000;
    std::string data = "/usr/share/datasets/fashion-mnist", work = "/tmp", csv_path;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (!v)
            die("%s needs a value", a.c_str());
        if (a == "--nq")
            nq = atoi(v);
        else if (a == "--nq-time")
            nq_time = atoi(v);
        else if (a == "--reps")
            reps = atoi(v);
        else if (a == "--base")
            n_base = atoll(v);
        else if (a == "--batch")
            batch = atoll(v);
        else if (a == "--data")
            data = v;
        else if (a == "--work")
            work = v;
        else if (a == "--csv")
            csv_path = v;
        else
            die("unknown option %s", a.c_str());
        i++;
    }
    if (copse_version_number() != COPSE_VERSION_NUMBER)
        die("copse.h is %d but the library is %d", COPSE_VERSION_NUMBER, copse_version_number());

    std::string load_start = loadavg();
    double t_start = now();
    int n_train, d_train, n_test, d_test;
    std::vector<int16_t> items = read_idx_gz(data + "/train-images-idx3-ubyte.gz", &n_train, &d_train);
    std::vector<int16_t> queries = read_idx_gz(data + "/t10k-images-idx3-ubyte.gz", &n_test, &d_test);
    if (d_train != DIM || d_test != DIM)
        die("expected %d pixels per image", DIM);
    nq_time = std::min(nq_time, nq);
    if (nq < 1 || nq > n_test || nq_time < 1 || reps < 1 || batch < 1 || n_base < 2 ||
        n_base + n_base / 2 > n_train)
        die("need 1 <= nq <= %d, nq-time >= 1, reps >= 1, batch >= 1, 2 <= base <= %d", n_test,
            n_train * 2 / 3);
    std::vector<float> rows = to_float(items), qrows = to_float(queries);
    Plan p = make_plan(n_base, batch);
    say("base %lld, churn %lld deletes + %lld adds in batches of %lld, %d queries, %d timed in %d rounds",
        (long long)p.n_base, (long long)p.n_new, (long long)p.n_new, (long long)batch, nq, nq_time, reps);

    std::vector<int64_t> base_ids((size_t)p.n_base);
    for (int64_t i = 0; i < p.n_base; i++)
        base_ids[(size_t)i] = i;

    // -- the bases: two identical copse builds (one per change-thread count), and one hnswlib
    //    build, saved and loaded once for each of its churns
    say("bases: copse twice, hnswlib once");
    double base_build_s, build2_s, hnsw_base_s;
    copse_index *churned = copse_fresh(rows, base_ids, &base_build_s);
    uint64_t base_file = copse_file_size(churned);
    std::vector<unsigned char> base_bytes = copse_bytes(churned);
    copse_index *churned2 = copse_fresh(rows, base_ids, &build2_s);
    hnswlib::L2Space space(DIM);
    size_t capacity = (size_t)(p.n_base + p.n_new);
    Hnsw *hb = hnsw_fresh(space, rows, base_ids, capacity, &hnsw_base_s);
    std::string base_path = work + "/churn-hnswlib-base.bin", churned_path = work + "/churn-hnswlib-churned.bin",
                fresh_path = work + "/churn-hnswlib-fresh.bin";
    hb->saveIndex(base_path);
    delete hb;
    Hnsw *h1 = new Hnsw(&space, base_path, false, capacity);
    Hnsw *hchurned = new Hnsw(&space, base_path, false, capacity);
    remove(base_path.c_str());

    // -- the churns, copse's and hnswlib's one after the other, so that each pair meets about
    //    the same load on the machine
    say("churn: copse with 1 change thread (batch deletes), hnswlib on 1 thread");
    ChurnTimes c1 = copse_churn(churned, p, rows, 1, false);
    ChurnTimes hc1 = hnsw_churn(*h1, p, rows, 1);
    delete h1;
    say("churn: copse with 2 change threads (one delete call per id), hnswlib on 2 threads");
    ChurnTimes c2 = copse_churn(churned2, p, rows, 2, true);
    ChurnTimes hc2 = hnsw_churn(*hchurned, p, rows, 2);
    uint64_t churned_file = copse_file_size(churned);

    // Where the churned index's time goes: the base alone, with the deletes only, with the
    // adds only (each loaded from the base's bytes, then changed as in the churn).
    say("copse: the base alone, with the deletes only, with the adds only");
    double unused_s;
    copse_index *base_only = copse_from_bytes(base_bytes, &unused_s);
    copse_index *del_only = copse_from_bytes(base_bytes, &unused_s);
    copse_churn(del_only, p, rows, 1, false, true, false);
    copse_index *add_only = copse_from_bytes(base_bytes, &unused_s);
    copse_churn(add_only, p, rows, 1, false, false, true);

    say("copse: save the churned index, load it twice, compact one copy");
    std::vector<unsigned char> churned_bytes = copse_bytes(churned);
    double load_s, load2_s;
    copse_index *loaded = copse_from_bytes(churned_bytes, &load_s);
    copse_index *compacted = copse_from_bytes(churned_bytes, &load2_s);
    double t0 = now();
    check(copse_compact(compacted, THREADS), compacted, "copse_compact");
    double compact_s = now() - t0;
    uint64_t compacted_file = copse_file_size(compacted);

    say("copse: fresh build of the live set");
    double fresh_build_s;
    LiveSet churn_set = make_set(p, true, true), base_set = make_set(p, false, false),
            del_set = make_set(p, true, false), add_set = make_set(p, false, true);
    copse_index *fresh = copse_fresh(rows, churn_set.live, &fresh_build_s);
    uint64_t fresh_file = copse_file_size(fresh);
    bool same_bytes = copse_bytes(compacted) == copse_bytes(fresh);

    hchurned->saveIndex(churned_path);
    say("hnswlib: fresh build of the live set");
    double hnsw_fresh_s;
    Hnsw *hfresh = hnsw_fresh(space, rows, churn_set.live, churn_set.live.size(), &hnsw_fresh_s);
    hfresh->saveIndex(fresh_path);
    uint64_t hnsw_churned_file = file_bytes(churned_path), hnsw_fresh_file = file_bytes(fresh_path);
    remove(base_path.c_str());
    remove(churned_path.c_str());
    remove(fresh_path.c_str());

    say("exact top-10 over each live set (brute force, %d queries)", nq);
    t0 = now();
    for (LiveSet *set : {&churn_set, &base_set, &del_set, &add_set})
        set->kth = kth_distances(items, set->live, queries, nq);
    double truth_s = now() - t0;

    // The library's own exact answer over the churned index must be the brute force's.
    copse_scratch *scratch = nullptr;
    if (copse_scratch_new(&scratch) != COPSE_OK)
        die("copse_scratch_new failed");
    int n_exact = std::min(nq, 1000);
    std::vector<int64_t> exact_ids((size_t)n_exact * K);
    check(copse_search_batch(churned, scratch, qrows.data(), n_exact, K, -1, 1, THREADS, exact_ids.data(),
                             nullptr, nullptr),
          churned, "copse_search_batch (exact)");
    int64_t exact_faults;
    double exact_recall = score(exact_ids, n_exact, churn_set, items, queries, &exact_faults);

    std::vector<Subject> subjects = {{"copse churned", churned, nullptr, &churn_set},
        {"copse churned, 2 change threads", churned2, nullptr, &churn_set},
        {"copse churned, saved + loaded", loaded, nullptr, &churn_set},
        {"copse compacted", compacted, nullptr, &churn_set},
        {"copse fresh", fresh, nullptr, &churn_set},
        {"hnswlib churned", nullptr, hchurned, &churn_set},
        {"hnswlib fresh", nullptr, hfresh, &churn_set},
        {"copse base alone", base_only, nullptr, &base_set},
        {"copse base + deletes only", del_only, nullptr, &del_set},
        {"copse base + adds only", add_only, nullptr, &add_set}};
    const int CHURNED = 0, FRESH = 4, H_CHURNED = 5, H_FRESH = 6;

    say("queries: recall, then %d timed rounds x %d search_k x %zu indexes", reps, N_KS, subjects.size());
    std::vector<int64_t> ids((size_t)nq * K);
    for (auto &s : subjects)
        for (int ki = 0; ki < N_KS; ki++) {
            run_queries(s, scratch, qrows, nq, SEARCH_KS[ki], ids);
            s.recall[ki] = score(ids, nq, *s.set, items, queries, &s.faults[ki]);
        }
    for (int r = 0; r < reps; r++)
        for (int ki = 0; ki < N_KS; ki++)
            for (size_t o = 0; o < subjects.size(); o++) {
                Subject &s = subjects[(o + (size_t)r) % subjects.size()];
                s.qps[(size_t)ki].push_back(run_queries(s, scratch, qrows, nq_time, SEARCH_KS[ki], ids));
            }
    std::string load_end = loadavg();
    double total_s = now() - t_start;

    // ---- report ----
    printf("## Setup\n\n");
    printf("Base: Fashion-MNIST training images 0..%lld (ids = image numbers), built with "
           "`copse_build(ix, -1, %d)` (default settings: %d trees, graph degree %d, leaf size %d; "
           "kernels %s).\n"
           "Churn: %lld rounds of `copse_delete_items` of %lld random base ids, then `copse_add_items` "
           "of the next %lld training images (ids %lld..%lld), until %lld base items are deleted and "
           "%lld added: half the live set is new, live = %zu items. Queries: k = %d, one thread, one "
           "query at a time; recall@10 over the first %d test images against an exact brute force "
           "over the live set (ties counted as hits); QPS over the first %d, the median of %d rounds "
           "(index order rotated each round).\n\n",
           (long long)p.n_base - 1, THREADS, copse_n_trees(fresh), copse_graph_degree(fresh),
           copse_leaf_size(fresh), copse_kernels_name(fresh), (long long)((p.n_new + batch - 1) / batch), (long long)batch,
           (long long)batch, (long long)p.n_base, (long long)(p.n_base + p.n_new - 1), (long long)p.n_new,
           (long long)p.n_new, churn_set.live.size(), K, nq, nq_time, reps);

    printf("## Recall@10 and QPS at equal search_k (hnswlib: ef = search_k)\n\n");
    print_table(subjects, {0, 1, 2, 3, 4, 5, 6});
    printf("Each cell: recall@10 / QPS. Every index here holds the same live set.\n\n");
    int64_t total_faults = 0;
    for (auto &s : subjects)
        for (int ki = 0; ki < N_KS; ki++)
            total_faults += s.faults[ki];
    printf("Checks: %lld of %lld answers had a deleted or repeated id or fewer than %d results; "
           "copse's exact search (`copse_search_batch`, exact) over the churned index on %d queries: "
           "recall %.4f against the brute force, %lld faulty answers. Compacted and fresh copse "
           "indexes are %s.\n\n",
           (long long)total_faults, (long long)nq * N_KS * (long long)subjects.size(), K, n_exact,
           exact_recall, (long long)exact_faults,
           same_bytes ? "byte-identical (`copse_save_buffer`)" : "NOT byte-identical");

    printf("## Where the churned index's time goes (copse, each against its own live set)\n\n");
    print_table(subjects, {7, 8, 9, CHURNED, FRESH});
    printf("Base alone: the %lld items as built. Deletes only: the same with the churn's %lld deletes "
           "(live %zu). Adds only: the same with its %lld adds (live %zu). Churned: both (live %zu).\n\n",
           (long long)p.n_base, (long long)p.n_new, del_set.live.size(), (long long)p.n_new,
           add_set.live.size(), churn_set.live.size());

    printf("## Targets (copse churned before compaction against copse fresh)\n\n");
    printf("| search_k | recall fresh | recall churned | difference (pp) | within 0.5 pp | QPS churned / fresh | "
           ">= 0.8x | hnswlib: churned - fresh (pp), QPS ratio |\n|---|---|---|---|---|---|---|---|\n");
    int recall_ok = 0, qps_ok = 0;
    for (int ki = 0; ki < N_KS; ki++) {
        double rf = subjects[FRESH].recall[ki], rc = subjects[CHURNED].recall[ki];
        double qr = median(subjects[CHURNED].qps[(size_t)ki]) / median(subjects[FRESH].qps[(size_t)ki]);
        double hd = (subjects[H_CHURNED].recall[ki] - subjects[H_FRESH].recall[ki]) * 100;
        double hq = median(subjects[H_CHURNED].qps[(size_t)ki]) / median(subjects[H_FRESH].qps[(size_t)ki]);
        bool rok = rf - rc <= 0.005, qok = qr >= 0.8;
        recall_ok += rok;
        qps_ok += qok;
        printf("| %lld | %.4f | %.4f | %+.2f | %s | %.2fx | %s | %+.2f, %.2fx |\n", (long long)SEARCH_KS[ki], rf,
               rc, (rc - rf) * 100, rok ? "yes" : "**no**", qr, qok ? "yes" : "**no**", hd, hq);
    }
    printf("\nRecall within 0.5 pp at %d of %d search_k values; QPS at least 0.8x at %d of %d.\n\n", recall_ok,
           N_KS, qps_ok, N_KS);

    printf("## Changes per second (the churn above: %lld adds and %lld deletes, batches of %lld)\n\n",
           (long long)p.n_new, (long long)p.n_new, (long long)batch);
    printf("| | threads | adds/s | deletes/s | copse / hnswlib (adds) |\n|---|---|---|---|---|\n");
    double n = (double)p.n_new;
    printf("| copse, `copse_set_change_threads(ix, 1)`; deletes by `copse_delete_items` | 1 | %.0f | %.0f | "
           "%.2fx |\n",
           n / c1.add_s, n / c1.del_s, hc1.add_s / c1.add_s);
    printf("| copse, `copse_set_change_threads(ix, 2)`; deletes by `copse_delete_item` | 2 | %.0f | %.0f | "
           "%.2fx |\n",
           n / c2.add_s, n / c2.del_s, hc2.add_s / c2.add_s);
    printf("| hnswlib `addPoint` (M=16, ef_construction=200), `markDelete` | 1 | %.0f | %.0f | |\n",
           n / hc1.add_s, n / hc1.del_s);
    printf("| hnswlib `addPoint` on 2 std::threads, `markDelete` | 2 | %.0f | %.0f | |\n\n", n / hc2.add_s,
           n / hc2.del_s);
    printf("For scale, whole builds on %d threads: copse base (%lld items) %.2f s (%.0f items/s), "
           "copse fresh (%zu) %.2f s, hnswlib base %.2f s (%.0f items/s), hnswlib fresh %.2f s; "
           "`copse_compact` of the loaded churned index %.2f s; `copse_load_buffer` of the "
           "churned file %.3f ms (its lists, norms and leaf chains are read where they lie until the "
           "first change).\n\n",
           THREADS, (long long)p.n_base, base_build_s, p.n_base / base_build_s, churn_set.live.size(), fresh_build_s,
           hnsw_base_s, p.n_base / hnsw_base_s, hnsw_fresh_s, compact_s, load_s * 1e3);

    printf("## File size\n\n| index | items held | file |\n|---|---|---|\n");
    printf("| copse base, as built | %lld | %s |\n", (long long)p.n_base, mb(base_file).c_str());
    printf("| copse churned, before `copse_compact` (`copse_file_size`) | %lld (%lld deleted) | %s |\n",
           (long long)(p.n_base + p.n_new), (long long)p.n_new, mb(churned_file).c_str());
    printf("| copse after `copse_compact` | %zu | %s |\n", churn_set.live.size(), mb(compacted_file).c_str());
    printf("| copse fresh build of the live set | %zu | %s |\n", churn_set.live.size(), mb(fresh_file).c_str());
    printf("| hnswlib churned (`saveIndex`; marks never free) | %lld (%lld marked) | %s |\n",
           (long long)(p.n_base + p.n_new), (long long)p.n_new, mb(hnsw_churned_file).c_str());
    printf("| hnswlib fresh build of the live set | %zu | %s |\n\n", churn_set.live.size(), mb(hnsw_fresh_file).c_str());

    printf("Run: %.0f s in all (brute force %.1f s); load average (1, 5, 15 min) %s at the start, %s "
           "at the end.\n",
           total_s, truth_s, load_start.c_str(), load_end.c_str());

    if (!csv_path.empty()) {
        FILE *f = fopen(csv_path.c_str(), "w");
        if (!f)
            die("cannot write %s", csv_path.c_str());
        fprintf(f, "measure,subject,param,value\n");
        for (int si : {CHURNED, FRESH, H_CHURNED, H_FRESH})
            for (int ki = 0; ki < N_KS; ki++)
                fprintf(f, "recall,%s,%lld,%.4f\nqps,%s,%lld,%.0f\n", subjects[(size_t)si].name.c_str(),
                        (long long)SEARCH_KS[ki], subjects[(size_t)si].recall[ki],
                        subjects[(size_t)si].name.c_str(), (long long)SEARCH_KS[ki],
                        median(subjects[(size_t)si].qps[(size_t)ki]));
        fprintf(f, "adds_per_s,copse,1,%.0f\nadds_per_s,copse,2,%.0f\nadds_per_s,hnswlib,1,%.0f\n"
                   "adds_per_s,hnswlib,2,%.0f\n", n / c1.add_s, n / c2.add_s, n / hc1.add_s, n / hc2.add_s);
        fprintf(f, "load_s,copse churned,,%.6f\ncompact_s,copse churned,,%.2f\nfaults,all,,%lld\n", load_s,
                compact_s, (long long)total_faults);
        fprintf(f, "loadavg,start,,%s\nloadavg,end,,%s\n", load_start.c_str(), load_end.c_str());
        if (fclose(f) != 0)
            die("cannot write %s", csv_path.c_str());
    }

    copse_scratch_free(scratch);
    for (copse_index *ix : {churned, churned2, loaded, compacted, fresh, base_only, del_only, add_only})
        copse_free(ix);
    delete hchurned;
    delete hfresh;
    return 0;
}
