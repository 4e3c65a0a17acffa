#!/usr/bin/env python3
"""Batch queries with numpy: index the rows of a matrix, answer many query rows in one call
on every core (get_nns_by_vectors releases the GIL), and check recall@k against an exact
answer computed with numpy, for a few search efforts (search_k).

    python3 examples/batch_queries.py                      # clustered random data, 20,000 x 64
    python3 examples/batch_queries.py DATA.npy QUERIES.npy --search-k -1,100,1000

Both .npy files hold float32 or float64 rows of one width.
"""
import argparse
import time

import numpy as np
from copse import AnnoyIndex


def exact_neighbours(data, queries, k):
    """Exact euclidean k nearest, by ||q||^2 - 2 q.x + ||x||^2, a block of queries at a time."""
    norms = (data * data).sum(axis=1)
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 256):
        q = queries[start:start + 256]
        d = norms[None, :] - 2.0 * q @ data.T
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(d, part, axis=1).argsort(axis=1)
        out[start:start + 256] = np.take_along_axis(part, order, axis=1)
    return out


def main():
    ap = argparse.ArgumentParser(description="batch queries with copse and numpy")
    ap.add_argument("data", nargs="?", help=".npy rows to index (default: random)")
    ap.add_argument("queries", nargs="?", help=".npy query rows (default: random)")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--n", type=int, default=20000, help="random rows (default 20000)")
    ap.add_argument("--search-k", default="10,-1,100",
                    help="comma-separated search efforts (default 10,-1,100)")
    args = ap.parse_args()

    if args.data:
        data = np.load(args.data).astype(np.float32)
        queries = np.load(args.queries).astype(np.float32)
    else:
        # Points around 100 centres, as real embeddings cluster; queries drawn the same way.
        rng = np.random.default_rng(1)
        centres = rng.standard_normal((100, 64), dtype=np.float32) * 4
        def sample(n):
            return centres[rng.integers(0, 100, n)] + rng.standard_normal((n, 64), dtype=np.float32)
        data, queries = sample(args.n), sample(1000)

    index = AnnoyIndex(data.shape[1], "euclidean")
    index.add_items(None, data)                   # ids 0..n-1, one call
    t0 = time.perf_counter()
    index.build(-1)
    print("built %d items in %.2f s" % (len(index), time.perf_counter() - t0))

    truth = exact_neighbours(data, queries, args.k)
    for search_k in (int(s) for s in args.search_k.split(",")):
        t0 = time.perf_counter()
        ids, dists = index.get_nns_by_vectors(queries, args.k, search_k=search_k,
                                              include_distances=True)  # (m, k) arrays
        seconds = time.perf_counter() - t0
        recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(ids, truth)])
        print("search_k %6d: %d queries in %.3f s (%.0f queries/s, every core), recall@%d %.4f"
              % (search_k, len(queries), seconds, len(queries) / seconds, args.k, recall))
    print("first query: ids %s, distances %s"
          % (ids[0][:5].tolist(), [round(float(d), 3) for d in dists[0][:5]]))


if __name__ == "__main__":
    main()
