"""copse.dask: sharded indexes built and queried on a Dask cluster of worker processes.

The cluster is a distributed.LocalCluster with 3 worker processes of one thread each. Results
are checked against answers computed here without Dask: each shard file opened as a plain
AnnoyIndex, and brute force over all the data.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import dask.array as da
from distributed import Client, LocalCluster

import copse
from copse import AnnoyIndex
from copse.dask import MANIFEST, ShardedIndex, ShardError, build_sharded, _open_counts

# Debian's tornado 6.2 warns about a call distributed 2022.12 makes when a cluster starts.
pytestmark = pytest.mark.filterwarnings("ignore:make_current is deprecated:DeprecationWarning")

DIM = 16
N = 6000
SHARDS = 3


def start_cluster():
    # No dashboard; the scheduler's HTTP server (health checks) on a free port, so that
    # clusters of other programs on this machine never clash with it.
    cluster = LocalCluster(n_workers=3, threads_per_worker=1, processes=True,
                           dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                           silence_logs=50)
    return cluster, Client(cluster)


@pytest.fixture(scope="module")
def client():
    cluster, c = start_cluster()
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20261201)
    # Clustered data, so that kmeans routing has clusters to find.
    centres = rng.normal(scale=4, size=(12, DIM))
    X = (centres[rng.integers(12, size=N)] + rng.normal(size=(N, DIM))).astype(np.float32)
    Q = (centres[rng.integers(12, size=300)] + rng.normal(size=(300, DIM))).astype(np.float32)
    return X, Q


def per_shard_merge(path, Q, k, search_k, metric="euclidean"):
    """The reference: each shard file queried as a plain AnnoyIndex, merged by (dist, id)."""
    with open(os.path.join(path, MANIFEST)) as f:
        manifest = json.load(f)
    shards = []
    for rec in manifest["shards"]:
        t = AnnoyIndex(DIM, metric)
        t.load(os.path.join(path, rec["file"]))
        shards.append(t)
    ids, dists = [], []
    for q in Q:
        cand = []
        for t in shards:
            if len(t):
                i, d = t.get_nns_by_vector(q, k, search_k, include_distances=True)
                cand += [(np.float32(x), y) for x, y in zip(d, i)]
        cand.sort()
        ids.append([y for _, y in cand[:k]])
        dists.append([x for x, _ in cand[:k]])
    return np.array(ids), np.array(dists, dtype=np.float32)


def recall(got, truth):
    k = truth.shape[1]
    return np.mean([len(set(g) & set(t)) / k for g, t in zip(got, truth)])


def single_index(X, metric="euclidean"):
    t = AnnoyIndex(DIM, metric)
    t.add_items(None, X)
    t.build(-1)
    return t


# ---- answers --------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["range", "kmeans"])
def test_cluster_answers_equal_merged_shards_and_keep_recall(client, data, tmp_path, split):
    X, Q = data
    path = tmp_path / "ix"
    manifest = build_sharded(X, SHARDS, path, "euclidean", client=client, split=split, n_jobs=1)
    assert sum(r["n_items"] for r in manifest["shards"]) == N
    ix = ShardedIndex(path, client=client)
    assert len(ix) == N and ix.n_shards == SHARDS
    k, search_k = 10, 40
    ids, dists = ix.search(Q, k, search_k)
    want_ids, want_dists = per_shard_merge(path, Q, k, search_k)
    assert (ids == want_ids).all()
    assert np.array_equal(dists, want_dists)

    single = single_index(X)
    truth, truth_d = single.get_nns_by_vectors(Q, k, include_distances=True, exact=True)
    exact_ids, exact_d = ix.search(Q, k, exact=True)
    assert np.array_equal(exact_d, truth_d)
    assert (exact_ids == truth).mean() > 0.999  # equal distances may swap ids
    # Same per-shard effort: each shard holds a third of the items, so recall is at least the
    # single index's (within 0.5 points).
    r_sharded = recall(ids, truth)
    r_single = recall(single.get_nns_by_vectors(Q, k, search_k), truth)
    assert r_sharded >= r_single - 0.005, (r_sharded, r_single)


def test_in_process_equals_cluster_and_files_are_identical(client, data, tmp_path):
    X, Q = data
    a = build_sharded(X, SHARDS, tmp_path / "a", "angular", client=client, n_jobs=1)
    b = build_sharded(X, SHARDS, tmp_path / "b", "angular")  # no client
    # An iterable of blocks and a dask array (chunks unlike the shards) give the same files.
    c = build_sharded((X[i:i + 700] for i in range(0, N, 700)), SHARDS, tmp_path / "c",
                      "angular")
    d = build_sharded(da.from_array(X, chunks=(1100, DIM)), SHARDS, tmp_path / "d", "angular",
                      client=client)
    digests = [[r["sha256"] for r in m["shards"]] for m in (a, b, c, d)]
    assert digests[0] == digests[1] == digests[2] == digests[3]
    local = ShardedIndex(tmp_path / "b").search(Q, 7, 30)
    remote = ShardedIndex(tmp_path / "a", client=client).search(Q, 7, 30)
    assert (local[0] == remote[0]).all() and np.array_equal(local[1], remote[1])


def test_quantized_shards(client, data, tmp_path):
    """storage= reaches every shard: the files are the smaller ones of that storage, answers
    are the merge of the shards' own, and recall against brute force holds."""
    X, Q = data
    f32 = build_sharded(X, SHARDS, tmp_path / "f32", "euclidean", n_jobs=1)
    i8 = build_sharded(X, SHARDS, tmp_path / "i8", "euclidean", client=client, n_jobs=1,
                       storage="i8")
    assert i8["storage"] == "i8" and f32["storage"] == "f32"
    for a, b in zip(f32["shards"], i8["shards"]):  # 1 byte a value instead of 4
        assert b["bytes"] <= a["bytes"] - 2 * DIM * a["n_items"], (a["bytes"], b["bytes"])
    for rec in i8["shards"]:
        t = AnnoyIndex(DIM, "euclidean")
        t.load(str(tmp_path / "i8" / rec["file"]))
        assert t.storage == "i8"
    ix = ShardedIndex(tmp_path / "i8", client=client)
    k, search_k = 10, 40
    ids, _ = ix.search(Q, k, search_k)
    want_ids, _ = per_shard_merge(tmp_path / "i8", Q, k, search_k)
    assert (ids == want_ids).all()
    truth = single_index(X).get_nns_by_vectors(Q, k, exact=True)
    assert recall(ids, truth) >= 0.95
    with pytest.raises(ValueError, match="storage"):
        build_sharded(X, SHARDS, tmp_path / "bad", "euclidean", storage="f8")
    with pytest.raises(ValueError):
        build_sharded(X, SHARDS, tmp_path / "bad", "hamming", storage="i8")


def test_sparse_ids_and_padding(data, tmp_path):
    X, Q = data
    ids = np.arange(N, dtype=np.int64) * 1000 + 7
    build_sharded(X[:5], 4, tmp_path, "euclidean", ids=ids[:5])  # shards of 2, 1, 1, 1 items
    ix = ShardedIndex(tmp_path)
    got, d = ix.search(Q[:3], 8)
    assert got.shape == (3, 8) and (got[:, 5:] == -1).all() and np.isnan(d[:, 5:]).all()
    assert set(got[0, :5]) == set(ids[:5].tolist())
    empty = tmp_path / "empty"
    build_sharded(np.zeros((0, DIM), np.float32), 2, empty, "euclidean")
    assert (ShardedIndex(empty).search(Q[:2], 3)[0] == -1).all()


def test_routing_probes_nearest_shards(data, tmp_path):
    X, Q = data
    build_sharded(X, 4, tmp_path, "euclidean", split="kmeans")
    ix = ShardedIndex(tmp_path)
    truth = single_index(X).get_nns_by_vectors(Q, 10, exact=True)
    full = recall(ix.search(Q, 10, 40)[0], truth)
    probed = [recall(ix.search(Q, 10, 40, n_probe=p)[0], truth) for p in (1, 2, 4)]
    assert probed[0] <= probed[1] <= probed[2] == full
    assert probed[1] > 0.9  # clustered data: the two nearest clusters hold most neighbours
    route = ix.route(Q, 2)
    assert route.shape == (len(Q), 2)
    with pytest.raises(ValueError):
        ix.search(Q, 10, n_probe=0)


# ---- shards mapped once per worker ------------------------------------------------------------

def test_each_shard_mapped_once_per_worker(client, data, tmp_path):
    X, Q = data
    build_sharded(X, SHARDS, tmp_path, "euclidean", client=client, n_jobs=1)
    ix = ShardedIndex(tmp_path, client=client)
    for _ in range(5):
        ix.search(Q, 5)
    counts = client.run(_open_counts, ix.path)
    opened = [n for per_worker in counts.values() for n in per_worker.values()]
    assert opened and max(opened) == 1
    assert sorted(f for w in counts.values() for f in w) == sorted(
        r["file"] for r in ix.shards)  # each shard on one worker
    ix.close()
    assert all(not w for w in client.run(_open_counts, ix.path).values())
    with pytest.raises(ValueError, match="closed"):
        ix.search(Q, 5)


# ---- faults -----------------------------------------------------------------------------------

def test_worker_killed_mid_query(data, tmp_path):
    """SIGKILL the worker running a shard's query: Dask reruns it elsewhere and the answer is
    the whole, right one."""
    X, Q = data
    cluster, client = start_cluster()
    try:
        build_sharded(X, SHARDS, tmp_path, "euclidean", client=client, n_jobs=1)
        ix = ShardedIndex(tmp_path, client=client)
        big = np.repeat(Q, 25, axis=0)  # 7,500 exact queries: a few tenths of a second a shard
        want = ShardedIndex(tmp_path).search(big, 10, exact=True)
        pids = client.run(os.getpid)
        out = {}
        th = threading.Thread(target=lambda: out.update(r=ix.search(big, 10, exact=True)))
        th.start()
        victim = kill_worker_running(client, pids, "_search_shard", th.is_alive)
        th.join(60)
        assert not th.is_alive()
        ids, dists = out["r"]
        assert (ids == want[0]).all() and np.array_equal(dists, want[1])
        assert victim not in client.scheduler_info()["workers"]
        # The next query goes on with the workers left (or the nanny's restarted one).
        again = ix.search(Q, 10, exact=True)
        assert (again[0] == want[0][::25]).all()
    finally:
        client.close()
        cluster.close()


def kill_worker_running(client, pids, task, alive):
    """SIGKILLs the worker the scheduler has given a task named task, once there is one
    (while alive() holds); returns its address."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and alive():
        busy = [w for w, keys in client.processing().items() if any(task in k for k in keys)]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            return busy[0]
        time.sleep(0.005)
    raise AssertionError("no %s task was seen running" % task)


def test_worker_killed_mid_build(data, tmp_path):
    """SIGKILL the worker building a shard of a dask array: Dask reruns what it lost and
    the shard files are byte for byte those of an undisturbed build."""
    X, _ = data
    want = build_sharded(X, SHARDS, tmp_path / "quiet", "euclidean")
    cluster, client = start_cluster()
    try:
        pids = client.run(os.getpid)
        out = {}

        def build():
            try:
                out["m"] = build_sharded(da.from_array(X, chunks=(1000, DIM)), SHARDS,
                                         tmp_path / "ix", "euclidean", client=client, n_jobs=1)
            except BaseException as e:  # re-raised below, in the test's thread
                out["error"] = e

        th = threading.Thread(target=build)
        th.start()
        victim = kill_worker_running(client, pids, "_build_shard", th.is_alive)
        th.join(60)
        assert not th.is_alive() and "error" not in out, out.get("error")
        assert victim not in client.scheduler_info()["workers"]
        assert [r["sha256"] for r in out["m"]["shards"]] == [r["sha256"] for r in want["shards"]]
        assert ShardedIndex(tmp_path / "ix").search(X[:5], 1)[0][:, 0].tolist() == list(range(5))
    finally:
        client.close()
        cluster.close()


def damage(path, shard, how):
    file = path / ("shard-%05d.copse" % shard)
    if how == "missing":
        file.unlink()
    elif how == "flipped":
        b = bytearray(file.read_bytes())
        b[len(b) // 2] ^= 0x40
        file.write_bytes(bytes(b))
    elif how == "truncated":
        file.write_bytes(file.read_bytes()[:-64])
    elif how == "replaced":  # a valid copse file, not the one the build wrote
        file.write_bytes((path / "shard-00000.copse").read_bytes())
    return str(file)


@pytest.mark.parametrize("how", ["missing", "flipped", "truncated", "replaced"])
@pytest.mark.parametrize("with_client", [False, True])
def test_bad_shard_is_named(client, data, tmp_path, how, with_client):
    X, _ = data
    build_sharded(X[:900], SHARDS, tmp_path, "euclidean")
    file = damage(tmp_path, 2, how)
    with pytest.raises(ShardError) as e:
        ShardedIndex(tmp_path, client=client if with_client else None)
    assert e.value.shard == 2 and e.value.file == file
    assert "shard 2 (%s)" % file in str(e.value)
    words = {"missing": "missing", "flipped": "sha256", "truncated": "bytes",
             "replaced": "bytes"}
    assert words[how] in str(e.value)


def test_manifest_mismatch(data, tmp_path):
    X, _ = data
    build_sharded(X[:300], 2, tmp_path, "euclidean")
    mf = tmp_path / MANIFEST
    good = json.loads(mf.read_text())
    for change, word in [({"metric": "manhattan"}, "shard 0"), ({"dim": DIM + 1}, "shard 0"),
                         ({"version": 99}, "version"), ({"n_items": 1}, "inconsistent")]:
        mf.write_text(json.dumps(dict(good, **change)))
        with pytest.raises(OSError, match=word):
            ShardedIndex(tmp_path)
    bad = json.loads(json.dumps(good))
    bad["shards"][1]["n_items"] += 1
    bad["n_items"] += 1
    mf.write_text(json.dumps(bad))
    with pytest.raises(ShardError, match="holds 150 items, the manifest says 151"):
        ShardedIndex(tmp_path)
    mf.write_text("{not json")
    with pytest.raises(OSError, match="not a valid manifest"):
        ShardedIndex(tmp_path)


def test_kill_during_build_leaves_no_manifest(tmp_path):
    """SIGKILL a build over a complete older one: the old manifest is gone before the first
    shard is replaced, and no new one appears, so the folder never looks complete."""
    path = tmp_path / "ix"
    rng = np.random.default_rng(5)
    np.save(tmp_path / "X.npy", rng.normal(size=(40000, 32)).astype(np.float32))
    build_sharded(np.load(tmp_path / "X.npy")[:1000], 4, path, "euclidean")
    assert (path / MANIFEST).exists()
    script = ("import numpy as np; from copse.dask import build_sharded; "
              "build_sharded(np.load(%r), 4, %r, 'euclidean', n_jobs=1)"
              % (str(tmp_path / "X.npy"), str(path)))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(copse.__file__)))
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    first = path / "shard-00000.copse"
    try:
        # Kill once the first new shard is saved: the build is half done.
        while proc.poll() is None and first.stat().st_mtime < started:
            time.sleep(0.005)
        assert proc.poll() is None, "the build finished before it could be killed"
        assert not (path / MANIFEST).exists()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (path / MANIFEST).exists()
    with pytest.raises(FileNotFoundError, match="did not finish"):
        ShardedIndex(path)


def test_manifest_is_written_last(data, tmp_path):
    X, _ = data
    m = build_sharded(X, SHARDS, tmp_path, "euclidean")
    mf = os.stat(tmp_path / MANIFEST).st_mtime_ns
    assert all(os.stat(tmp_path / r["file"]).st_mtime_ns <= mf for r in m["shards"])
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    assert m["dim"] == DIM and m["metric"] == "euclidean"
    assert m["file_format"] == list(copse.FORMAT_VERSION)
    assert all(len(r["sha256"]) == 64 and r["bytes"] > 0 for r in m["shards"])


# ---- bad calls --------------------------------------------------------------------------------

def test_bad_arguments(data, tmp_path):
    X, Q = data
    with pytest.raises(ValueError):
        build_sharded(X, 0, tmp_path, "euclidean")
    with pytest.raises(ValueError, match="split"):
        build_sharded(X, 2, tmp_path, "euclidean", split="hash")
    with pytest.raises(ValueError, match="kmeans"):
        build_sharded(X, 2, tmp_path, "dot", split="kmeans")
    with pytest.raises(ValueError, match="No such metric"):
        build_sharded(X, 2, tmp_path, "cosine-ish")
    with pytest.raises(ValueError, match="distinct"):
        build_sharded(X[:4], 2, tmp_path, "euclidean", ids=[1, 2, 2, 3])
    with pytest.raises(IndexError):
        build_sharded(X[:2], 2, tmp_path, "euclidean", ids=[-1, 2])
    with pytest.raises(ValueError, match="ids"):
        build_sharded(X[:4], 2, tmp_path, "euclidean", ids=[1, 2])
    with pytest.raises(ValueError):
        build_sharded(X[0], 2, tmp_path, "euclidean")
    with pytest.raises(ValueError):
        build_sharded(X[:10, :, None], 2, tmp_path, "euclidean")
    with pytest.raises(ValueError, match="NaN"):
        build_sharded(np.full((3, DIM), np.nan, np.float32), 1, tmp_path, "euclidean")
    assert not (tmp_path / MANIFEST).exists()
    build_sharded(X[:100], 2, tmp_path, "euclidean")
    ix = ShardedIndex(tmp_path)
    with pytest.raises(IndexError):
        ix.search(Q[:, :3], 3)
    with pytest.raises(ValueError):
        ix.search(Q, -1)
    with pytest.raises(ValueError, match="kmeans"):
        ix.search(Q, 3, n_probe=1)
    with pytest.raises(FileNotFoundError):
        ShardedIndex(tmp_path / "nothing here")


def test_rebuild_cleans_the_folder(data, tmp_path):
    """A rebuild with fewer shards removes the ones the new manifest does not list, and the
    temporary files a killed build left."""
    X, Q = data
    build_sharded(X[:400], 5, tmp_path, "euclidean")
    (tmp_path / "shard-00001.copse.tmp-Ab12Cd").write_bytes(b"left by a killed save")
    (tmp_path / (MANIFEST + ".tmp-4242")).write_text("{")
    (tmp_path / "notes.txt").write_text("not ours")
    m = build_sharded(X[:400], 2, tmp_path, "cosine", split="kmeans")
    assert m["metric"] == "angular"
    assert sorted(os.listdir(tmp_path)) == [MANIFEST, "notes.txt", "shard-00000.copse",
                                             "shard-00001.copse"]
    assert ShardedIndex(tmp_path).search(Q[:3], 4, n_probe=1)[0].shape == (3, 4)
