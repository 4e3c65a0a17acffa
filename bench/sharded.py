#!/usr/bin/env python3
"""bench/sharded.py: copse.dask on Fashion-MNIST split into 4 shards, 1 and 2 Dask workers.

    flock /tmp/copse-bench.lock /usr/bin/python3 bench/sharded.py [--reps 3] [--batch 1000]

Measures, in one run (so the figures compare with each other, not with other runs):
  - one copse index of the 60,000 training images (euclidean) built and queried in this
    process with 1 and 2 threads: the peer every sharded figure is a ratio to;
  - 4 shards split by row range and 4 split by k-means, built as Dask tasks on 2 workers;
  - throughput of the 10,000 test images sent in batches of --batch queries through
    ShardedIndex.search on a LocalCluster of 1 and of 2 worker processes (one thread each),
    every shard asked (range, kmeans) or only the n_probe nearest (kmeans, 1 and 2 of 4);
    both clusters stay up and are timed in turn within each repetition (the single index
    too), so outside load on this shared machine falls on every contender alike;
  - recall@10 of each against exact brute force (computed once, cached);
  - the cost of one shard alone (15,000 items) against the whole index (60,000), one thread,
    which docs/SCALING.md extrapolates from.
Writes bench/out/sharded/results.json and prints a Markdown table. Needs Debian's
dataset-fashion-mnist, python3-distributed and python3-dask (scripts/deps.sh bench test).
"""
import argparse
import collections
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "sharded"
PACKAGE = "dataset-fashion-mnist"
SHARDS = 4
K = 10


def fashion_mnist_dir():
    """The folder of Debian's Fashion-MNIST files, found as bench/run.sh finds it."""
    try:
        listing = subprocess.run(["dpkg", "-L", PACKAGE], capture_output=True, text=True,
                                 check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        sys.exit("sharded.py: %s is not installed (bash scripts/deps.sh bench)" % PACKAGE)
    for f in listing:
        if f.endswith("/train-images-idx3-ubyte.gz"):
            return Path(f).parent
    sys.exit("sharded.py: %s has no train-images-idx3-ubyte.gz" % PACKAGE)


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051:
        sys.exit("sharded.py: %s is not an IDX image file" % path)
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, rows * cols).astype(np.float32)


def import_copse():
    """The module built in place from python/ (as python/run-tests.sh builds it)."""
    py = ROOT / "python"
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=py,
                   check=True, stdout=subprocess.DEVNULL)
    sys.path.insert(0, str(py))
    os.environ["PYTHONPATH"] = str(py) + os.pathsep + os.environ.get("PYTHONPATH", "")


def local_cluster(workers):
    """Worker processes of one thread each, no dashboard, the scheduler's HTTP server on a
    free port (other programs on this machine may run clusters too)."""
    from distributed import LocalCluster
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                        silence_logs=50)


def recall(got, truth):
    return float(np.mean([len(set(g) & set(t)) / truth.shape[1] for g, t in zip(got, truth)]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--search-k", default="10,30,100", help="per-shard efforts, comma-separated")
    args = ap.parse_args()
    search_ks = [int(s) for s in args.search_k.split(",")]
    import_copse()
    from copse import AnnoyIndex
    from copse.dask import ShardedIndex, build_sharded
    from distributed import Client, get_task_stream

    data = fashion_mnist_dir()
    X = read_idx_images(data / "train-images-idx3-ubyte.gz")
    Q = read_idx_images(data / "t10k-images-idx3-ubyte.gz")
    OUT.mkdir(parents=True, exist_ok=True)
    res = {"n": len(X), "dim": X.shape[1], "queries": len(Q), "batch": args.batch,
           "reps": args.reps, "shards": SHARDS, "cpus": os.cpu_count(), "rows": []}

    def row(**kw):
        res["rows"].append(kw)
        print(json.dumps(kw), flush=True)

    # The peer: one index over everything, in this process.
    t0 = time.perf_counter()
    single = AnnoyIndex(X.shape[1], "euclidean")
    single.add_items(None, X)
    single.build(-1, n_jobs=2)
    res["single_build_s"] = time.perf_counter() - t0
    single.save(str(OUT / "single.copse"))
    res["single_bytes"] = os.path.getsize(OUT / "single.copse")
    truth_file = OUT / "truth.npy"
    if truth_file.exists():
        truth = np.load(truth_file)
    else:
        truth = single.get_nns_by_vectors(Q, K, exact=True, n_threads=2)
        np.save(truth_file, truth)
    # One shard alone against the whole: how a query's cost grows with the items per shard.
    shard_rows = X[: len(X) // SHARDS]
    one = AnnoyIndex(X.shape[1], "euclidean")
    one.add_items(None, shard_rows)
    one.build(-1, n_jobs=2)
    one.save(str(OUT / "one-shard.copse"))
    res["shard_bytes"] = os.path.getsize(OUT / "one-shard.copse")

    # Build the shards as Dask tasks on 2 workers.
    cluster = local_cluster(2)
    client = Client(cluster)
    for split in ("range", "kmeans"):
        path = OUT / split
        shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        m = build_sharded(X, SHARDS, path, "euclidean", client=client, split=split, n_jobs=1)
        row(kind="build", split=split, workers=2, seconds=time.perf_counter() - t0,
            shard_items=[r["n_items"] for r in m["shards"]],
            shard_bytes=[r["bytes"] for r in m["shards"]])
    client.close()
    cluster.close()

    # Every contender of one configuration is timed in turn within each repetition, so that
    # load from outside (the machine is shared) falls on all of them alike.
    batches = [Q[i:i + args.batch] for i in range(0, len(Q), args.batch)]

    def run(ix, sk, n_probe):
        return np.vstack([ix.search(b, K, sk, n_probe=n_probe)[0] for b in batches])

    clusters = {w: local_cluster(w) for w in (1, 2)}
    clients = {w: Client(c) for w, c in clusters.items()}
    splits = ("range", "kmeans")
    opened = {(w, sp): ShardedIndex(OUT / sp, client=clients[w]) for w in (1, 2) for sp in splits}
    # Opening checks every shard's sha256 (pages already cached from the build): its speed.
    t0 = time.perf_counter()
    in_process = {sp: ShardedIndex(OUT / sp) for sp in splits}
    row(kind="open", seconds=time.perf_counter() - t0,
        bytes=sum(r["bytes"] for ix in in_process.values() for r in ix.shards))
    res["load_before"] = os.getloadavg()

    def contest(contenders):
        """Median seconds of each contender (name -> call) over the repetitions, and its
        last result; one warm-up call each first."""
        times = {name: [] for name in contenders}
        last = {name: fn() for name, fn in contenders.items()}
        for _ in range(args.reps):
            for name, fn in contenders.items():
                t0 = time.perf_counter()
                last[name] = fn()
                times[name].append(time.perf_counter() - t0)
        return {name: statistics.median(t) for name, t in times.items()}, last

    for sk in search_ks:
        secs, got = contest({
            "single-1": lambda: single.get_nns_by_vectors(Q, K, sk, n_threads=1),
            "single-2": lambda: single.get_nns_by_vectors(Q, K, sk, n_threads=2),
            "shard-1": lambda: one.get_nns_by_vectors(Q, K, sk, n_threads=1)})
        for threads in (1, 2):
            row(kind="single", workers=threads, search_k=sk,
                qps=len(Q) / secs["single-%d" % threads],
                recall=recall(got["single-%d" % threads], truth))
        row(kind="per-query cost", search_k=sk, shard_us=secs["shard-1"] / len(Q) * 1e6,
            whole_us=secs["single-1"] / len(Q) * 1e6)
        for split, n_probe in [("range", None), ("kmeans", None), ("kmeans", 2), ("kmeans", 1)]:
            secs, got = contest({w: (lambda w=w: run(opened[(w, split)], sk, n_probe))
                                 for w in (1, 2)})
            want = run(in_process[split], sk, n_probe)
            for w in (1, 2):
                assert (got[w] == want).all(), "the cluster's answers differ from in-process"
                row(kind="sharded", split=split, n_probe=n_probe or SHARDS, workers=w,
                    search_k=sk, qps=len(Q) / secs[w], recall=recall(got[w], truth))
    # Dask's cost of one round trip: a batch of one query through every shard.
    secs, _ = contest({w: (lambda w=w: opened[(w, "range")].search(Q[:1], K, search_ks[0]))
                       for w in (1, 2)})
    for w in (1, 2):
        row(kind="round trip", workers=w, ms=secs[w] * 1e3)
    # Where the shard queries of one batch ran on 2 workers, and how far they overlapped
    # (mean number running at once, from Dask's task stream): parallelism that does not
    # depend on how loaded the machine is.
    with get_task_stream(client=clients[2]) as stream:
        opened[(2, "range")].search(batches[0], K, search_ks[-1])
    spans = [(t["worker"], ss["start"], ss["stop"]) for t in stream.data
             if "_search_shard" in t["key"] for ss in t["startstops"]
             if ss["action"] == "compute"]
    busy = sum(stop - start for _, start, stop in spans)
    wall = max(stop for *_, stop in spans) - min(start for _, start, _ in spans)
    row(kind="task stream", workers=2, search_k=search_ks[-1],
        tasks_per_worker=sorted(collections.Counter(w for w, *_ in spans).values()),
        mean_running=busy / wall)
    res["load_after"] = os.getloadavg()
    for w in (1, 2):
        clients[w].close()
        clusters[w].close()

    (OUT / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    print_table(res)


def print_table(res):
    print("\nFashion-MNIST %d x %d euclidean, %d queries in batches of %d, %d shards, k=%d"
          % (res["n"], res["dim"], res["queries"], res["batch"], res["shards"], K))
    print("single index: %.1f s build (2 threads), %.1f MB; one shard of %d items: %.1f MB"
          % (res["single_build_s"], res["single_bytes"] / 1e6, res["n"] // res["shards"],
             res["shard_bytes"] / 1e6))
    print("load average before and after the measurements: %.1f, %.1f (%d CPUs)\n"
          % (res["load_before"][0], res["load_after"][0], res["cpus"]))
    print("| what | search_k | shards asked | workers | QPS | recall@10 |")
    print("|---|---|---|---|---|---|")
    for r in res["rows"]:
        if r["kind"] == "single":
            print("| single index, %d thread(s) | %d | - | - | %.0f | %.4f |"
                  % (r["workers"], r["search_k"], r["qps"], r["recall"]))
        elif r["kind"] == "sharded":
            print("| %s split | %d | %d | %d | %.0f | %.4f |"
                  % (r["split"], r["search_k"], r["n_probe"], r["workers"], r["qps"],
                     r["recall"]))
    for r in res["rows"]:
        if r["kind"] == "per-query cost":
            print("\nsearch_k %d, one thread: %.1f us a query on one shard (%d items), %.1f us "
                  "on the whole index (%d)" % (r["search_k"], r["shard_us"],
                                               res["n"] // res["shards"], r["whole_us"],
                                               res["n"]))
        elif r["kind"] == "open":
            print("opening both sharded indexes in-process (sha256 of every shard, then map): "
                  "%.2f s for %.0f MB" % (r["seconds"], r["bytes"] / 1e6))
        elif r["kind"] == "task stream":
            print("one batch on 2 workers (search_k %d): shard queries per worker %s, %.2f "
                  "running at once on average" % (r["search_k"], r["tasks_per_worker"],
                                                  r["mean_running"]))
        elif r["kind"] == "round trip":
            print("one query through every shard, %d worker(s): %.1f ms" % (r["workers"], r["ms"]))
        elif r["kind"] == "build":
            print("%s split built on 2 workers in %.1f s; items per shard %s"
                  % (r["split"], r["seconds"], r["shard_items"]))


if __name__ == "__main__":
    main()
