"""copse.dask: one index split into shards, built and queried as Dask tasks.

Annoy's answer to data past one machine was to pass static index files around in Hadoop jobs.
This module keeps that spirit on Dask distributed: every shard is an ordinary copse file, built
by one task; a query batch goes to every shard (or to the shards routing picks) as one task per
shard, and the per-shard top-k lists are merged into the global top-k. Scheduling, retries,
worker loss and data movement are Dask's; this module supplies the shard files, the manifest
and the merge. Without a client everything runs in this process (no Dask needed then, except
to read a dask array).

Layout of a sharded index (a folder):
    shard-00000.copse ...   ordinary copse files; items keep their global ids
    manifest.json           written last, atomically (temporary file, fsync, rename, fsync of
                            the folder): metric, dimension, item counts, the format version,
                            each shard's file name, size and sha256. A build first removes an
                            old manifest, so a build that dies half way never looks complete.

Splitting (``split=``):
    "range"   contiguous runs of rows (id ranges when ids ascend): shards of equal size, every
              query goes to every shard.
    "kmeans"  rows go to the nearest of n_shards centroids (k-means on a sample; spherical for
              angular), so ``search(..., n_probe=p)`` can ask only the p shards whose
              centroids are nearest each query. docs/SCALING.md says what that buys.

Design notes
- Shards are mapped once per worker process: a module-level cache keyed by (folder, file,
  sha256) holds the loaded copse index, so query tasks reuse it. Ordinary tasks, not actors:
  when a worker dies, Dask reruns its tasks elsewhere, and the new worker maps the shard on
  first use. Each shard prefers one worker (a loose restriction, so the scheduler may still
  run it anywhere), which keeps the number of mappings near one per shard.
- A shard is checked when it is mapped: present, the size and sha256 the manifest names
  (read through the same open file that copse then maps, via /proc/self/fd, so the bytes
  checked are the bytes loaded), the manifest's dimension, metric and item count. A failure
  raises ShardError naming the shard; Dask does not retry ordinary exceptions, so the caller
  sees it.
- The query batch is scattered to every worker (broadcast), so losing one worker loses no
  input: retried tasks read it from another.
- Merging sorts each row's candidates by (distance, id): the order is the same whatever the
  order shard answers arrive in.
"""

import errno
import hashlib
import json
import os
import re
import threading

import numpy as np

from . import FORMAT_VERSION, LIBRARY_VERSION, AnnoyIndex

__all__ = ["build_sharded", "ShardedIndex", "ShardError", "MANIFEST"]

MANIFEST = "manifest.json"
_FORMAT = "copse-sharded"
_VERSION = 1
_SPLITS = ("range", "kmeans")
_KMEANS_METRICS = ("euclidean", "angular")
_DEFAULT_SEED = 1234567890987654321
# Rows per block handed to one split task when X is a numpy array (about 64 MB of floats).
_BLOCK_BYTES = 64 << 20


class ShardError(OSError):
    """A shard file is missing, damaged, or does not match the manifest. ``shard`` is its
    number and ``file`` its path."""

    def __init__(self, shard, file, detail):
        super().__init__("shard %d (%s): %s" % (shard, file, detail))
        self.shard, self.file, self.detail = shard, file, detail

    def __reduce__(self):  # raised on a worker, re-raised in the client
        return (ShardError, (self.shard, self.file, self.detail))


# ---- files ---------------------------------------------------------------------------------

def _shard_name(shard):
    return "shard-%05d.copse" % shard


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_fd(fd):
    h = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        b = os.read(fd, 1 << 22)
        if not b:
            return h.hexdigest()
        h.update(b)


def _write_manifest(path, manifest):
    """Writes manifest.json atomically: a reader sees the old state or the whole new one."""
    final = os.path.join(path, MANIFEST)
    tmp = "%s.tmp-%d" % (final, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_dir(path)


def _remove_manifest(path):
    try:
        os.unlink(os.path.join(path, MANIFEST))
    except FileNotFoundError:
        return
    _fsync_dir(path)


def _read_manifest(path):
    file = os.path.join(path, MANIFEST)
    try:
        with open(file, encoding="utf-8") as f:
            m = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no manifest: not a sharded copse index, or its "
                                "build did not finish", file) from None
    except ValueError as e:
        raise OSError("%s: not a valid manifest (%s)" % (file, e)) from None
    if not isinstance(m, dict) or m.get("format") != _FORMAT:
        raise OSError("%s: not a copse sharded-index manifest" % file)
    if m.get("version") != _VERSION:
        raise OSError("%s: manifest version %r; this copse reads version %d"
                      % (file, m.get("version"), _VERSION))
    fmt = m.get("file_format")
    if not isinstance(fmt, list) or len(fmt) != 2 or fmt[0] != FORMAT_VERSION[0]:
        raise OSError("%s: shard file format %r; this copse reads %d.x"
                      % (file, fmt, FORMAT_VERSION[0]))
    try:
        shards = m["shards"]
        ok = (isinstance(m["dim"], int) and m["dim"] >= 1 and isinstance(m["metric"], str) and
              m["split"] in _SPLITS and isinstance(shards, list) and len(shards) >= 1 and
              all(s["shard"] == i and isinstance(s["file"], str) and "/" not in s["file"] and
                  isinstance(s["bytes"], int) and isinstance(s["sha256"], str) and
                  isinstance(s["n_items"], int) for i, s in enumerate(shards)) and
              sum(s["n_items"] for s in shards) == m["n_items"])
        if ok and m["split"] == "kmeans":
            c = np.asarray(m["centroids"], dtype=np.float32)
            ok = c.shape == (len(shards), m["dim"])
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise OSError("%s: manifest fields are missing or inconsistent" % file)
    return m


# ---- building ------------------------------------------------------------------------------

def _kmeans(sample, k, metric, seed, iters=20):
    """k centroids of sample (k-means++ start, Lloyd iterations; unit length for angular)."""
    rng = np.random.default_rng(seed)
    x = _route_space(sample, metric)
    n = len(x)
    centers = np.empty((k, x.shape[1]), dtype=np.float64)
    centers[0] = x[rng.integers(n)]
    d2 = ((x - centers[0]) ** 2).sum(1)
    for j in range(1, k):
        total = d2.sum()
        pick = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centers[j] = x[pick]
        d2 = np.minimum(d2, ((x - centers[j]) ** 2).sum(1))
    for _ in range(iters):
        labels = _nearest_centroids(x, centers, 1)[:, 0]
        for j in range(k):
            members = x[labels == j]
            if len(members):  # an empty cluster keeps its centre
                centers[j] = members.mean(0)
        if metric == "angular":
            centers /= np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-30)
    return centers.astype(np.float32)


def _route_space(x, metric):
    """Rows as routing compares them: unit length for angular, as they are for euclidean."""
    x = np.asarray(x, dtype=np.float64)
    if metric == "angular":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    return x


def _nearest_centroids(x, centers, p):
    """Indices of the p centroids nearest each row of x (already in routing space)."""
    score = (centers * centers).sum(1)[None, :] - 2.0 * (x @ centers.T)
    if p >= centers.shape[0]:
        return np.argsort(score, axis=1, kind="stable")
    part = np.argpartition(score, p - 1, axis=1)[:, :p]
    order = np.argsort(np.take_along_axis(score, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _split_block(block, ids, first_row, n_total, n_shards, centers, metric):
    """One block's rows and ids cut into n_shards parts: [(rows, ids), ...]."""
    block = np.ascontiguousarray(block, dtype=np.float32)
    if block.ndim != 2:
        raise ValueError("a block of X has shape %r; want (rows, dim)" % (block.shape,))
    n = len(block)
    ids = (np.arange(first_row, first_row + n, dtype=np.int64) if ids is None
           else np.asarray(ids, dtype=np.int64))
    if centers is None:
        labels = (np.arange(first_row, first_row + n, dtype=np.int64) * n_shards) // max(n_total, 1)
    else:
        labels = _nearest_centroids(_route_space(block, metric), centers.astype(np.float64), 1)[:, 0]
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_shards + 1))
    return [(block[order[bounds[s]:bounds[s + 1]]], ids[order[bounds[s]:bounds[s + 1]]])
            for s in range(n_shards)]


def _build_shard(parts, path, shard, dim, metric, storage, n_trees, seed, n_jobs):
    """Builds and saves one shard from its parts [(rows, ids), ...]; returns its record."""
    rows = [p[0] for p in parts if len(p[0])]
    ids = [p[1] for p in parts if len(p[1])]
    t = AnnoyIndex(dim, metric, storage=storage)
    t.set_seed(seed + shard)
    if rows:
        t.add_items(np.concatenate(ids), np.concatenate(rows))
    t.build(n_trees, n_jobs)
    name = _shard_name(shard)
    file = os.path.join(path, name)
    t.save(file)  # atomic: temporary file, fsync, rename
    fd = os.open(file, os.O_RDONLY)
    try:
        digest = _sha256_fd(fd)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    all_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    return {"shard": shard, "file": name, "bytes": size, "sha256": digest,
            "n_items": len(t), "n_trees": t.get_n_trees(),
            "id_min": int(all_ids.min()) if len(all_ids) else None,
            "id_max": int(all_ids.max()) if len(all_ids) else None}


def _is_dask_array(x):
    return type(x).__module__.startswith("dask.array")


def _blocks(X, n_shards):
    """X as a list of row blocks: numpy views, or a dask array's delayed blocks."""
    if _is_dask_array(X):
        if X.ndim != 2:
            raise ValueError("X has shape %r; want (n, dim)" % (X.shape,))
        X = X.rechunk({1: -1})
        return list(X.to_delayed().ravel()), list(X.chunks[0]), X.shape[1]
    if isinstance(X, np.ndarray) or hasattr(X, "__array_interface__"):
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError("X has shape %r; want (n, dim)" % (X.shape,))
        n, dim = X.shape
        per = max(1, min(-(-n // n_shards) if n else 1, _BLOCK_BYTES // (4 * max(dim, 1))))
        blocks = [X[i:i + per] for i in range(0, n, per)]
        return blocks, [len(b) for b in blocks], dim
    blocks = [np.asarray(b) for b in X]
    dims = {b.shape[1] for b in blocks if b.ndim == 2}
    if any(b.ndim != 2 for b in blocks) or len(dims) > 1:
        raise ValueError("every block of X must be 2-D with the same number of columns")
    if not dims:
        raise ValueError("X has no blocks: the dimension is unknown")
    return blocks, [len(b) for b in blocks], dims.pop()


def _sample_rows(blocks, sizes, m, seed, compute):
    """A uniform sample of m rows (all when there are fewer) for k-means."""
    n = sum(sizes)
    take = np.sort(np.random.default_rng(seed).choice(n, size=min(m, n), replace=False))
    out, start = [], 0
    for b, size in zip(blocks, sizes):
        sel = take[(take >= start) & (take < start + size)] - start
        if len(sel):
            out.append(np.asarray(compute(b))[sel])
        start += size
    return np.concatenate(out).astype(np.float32)


def build_sharded(X, n_shards, path, metric, n_trees=-1, ids=None, client=None, split="range",
                  seed=_DEFAULT_SEED, n_jobs=-1, sample_size=20000, storage="f32"):
    """Builds a sharded index of the rows of ``X`` in the folder ``path``; returns the manifest.

    ``X``: a dask array, a numpy array (n, dim) or an iterable of 2-D blocks. ``ids``: n
    distinct non-negative integers (row i gets ``ids[i]``), or None for 0..n-1. Each of the
    ``n_shards`` shards is an ordinary copse file built with ``n_trees`` trees (-1: copse picks)
    on ``n_jobs`` threads, as a Dask task on ``client``'s cluster, or in this process when
    ``client`` is None. ``split``: "range" or "kmeans" (see the module's notes; kmeans needs
    metric euclidean or angular and trains on ``sample_size`` rows). ``storage``: how each
    shard stores its vectors, as ``AnnoyIndex``'s keyword ('f32', 'f16' or 'i8'). The manifest
    is written last and atomically; an old one at ``path`` is removed first.
    """
    n_shards = int(n_shards)
    if n_shards < 1:
        raise ValueError("n_shards must be at least 1, got %d" % n_shards)
    if split not in _SPLITS:
        raise ValueError("split must be one of %s, got %r" % (", ".join(_SPLITS), split))
    # the canonical names; "No such metric" or a bad storage before any work
    probe = AnnoyIndex(1, metric, storage=storage)
    metric, storage = probe.metric, probe.storage
    if split == "kmeans" and metric not in _KMEANS_METRICS:
        raise ValueError("split='kmeans' routes by euclidean or angular distance; metric %r "
                         "needs split='range'" % (metric,))
    blocks, sizes, dim = _blocks(X, n_shards)
    n = sum(sizes)
    if ids is not None:
        ids = np.asarray(ids)
        if ids.shape != (n,) or ids.dtype.kind not in "iu":
            raise ValueError("ids must be %d integers, one per row of X" % n)
        ids = ids.astype(np.int64)
        if n and ids.min() < 0:
            raise IndexError("Item index can not be negative")
        if len(np.unique(ids)) != n:
            raise ValueError("ids must be distinct: an id in two shards would be found twice")
    path = os.path.abspath(os.fspath(path))
    os.makedirs(path, exist_ok=True)
    _remove_manifest(path)
    _remove_temporaries(path)

    if client is None:
        def compute(b):
            return b.compute(scheduler="sync") if hasattr(b, "compute") else b
    else:
        def compute(b):
            return client.compute(b).result() if hasattr(b, "compute") else b
    centers = None
    if split == "kmeans" and n:
        centers = _kmeans(_sample_rows(blocks, sizes, sample_size, seed, compute), n_shards,
                          metric, seed)

    starts = np.cumsum([0] + sizes[:-1]).tolist()
    block_ids = [None if ids is None else ids[s:s + size] for s, size in zip(starts, sizes)]
    build_args = (dim, metric, storage, n_trees, seed, n_jobs)
    if client is None:
        parts = [[] for _ in range(n_shards)]
        for b, bid, start in zip(blocks, block_ids, starts):
            for s, part in enumerate(_split_block(compute(b), bid, start, n, n_shards, centers,
                                                  metric)):
                parts[s].append(part)
        records = [_build_shard(parts[s], path, s, *build_args) for s in range(n_shards)]
    else:
        records = _build_on_cluster(client, blocks, block_ids, starts, n, n_shards, centers,
                                    path, build_args)
    manifest = {
        "format": _FORMAT, "version": _VERSION, "file_format": list(FORMAT_VERSION),
        "library": LIBRARY_VERSION, "metric": metric, "dim": dim, "n_items": n,
        "split": split, "seed": seed, "storage": storage,
        "centroids": centers.tolist() if centers is not None else None,
        "shards": records,
    }
    if split == "kmeans" and centers is None:  # no rows: any centroids route correctly
        manifest["centroids"] = np.zeros((n_shards, dim)).tolist()
    _write_manifest(path, manifest)
    _remove_unlisted_shards(path, {r["file"] for r in records})
    return manifest


def _remove_temporaries(path):
    """Removes the temporary files a killed build left (copse's save and the manifest's own
    write cannot remove theirs after SIGKILL). One build at a time per folder: another
    build's temporaries would go too."""
    pattern = re.compile(r"(shard-\d{5}\.copse|%s)\.tmp-.+" % re.escape(MANIFEST))
    for f in os.listdir(path):
        if pattern.fullmatch(f):
            os.unlink(os.path.join(path, f))


def _remove_unlisted_shards(path, keep):
    """Removes the shard files of an earlier build with more shards, which the new manifest
    does not list."""
    for f in os.listdir(path):
        if re.fullmatch(r"shard-\d{5}\.copse", f) and f not in keep:
            os.unlink(os.path.join(path, f))


def _build_on_cluster(client, blocks, block_ids, starts, n, n_shards, centers, path,
                      build_args):
    """One split task per block and one build task per shard, gathering part s of every
    block: Dask moves the rows from the workers that split them to the one that builds."""
    import operator
    metric = build_args[1]
    delayed = [b for b in blocks if hasattr(b, "compute")]
    computed = iter(client.compute(delayed)) if delayed else iter(())
    splits = []
    for b, bid, start in zip(blocks, block_ids, starts):
        src = next(computed) if hasattr(b, "compute") else client.scatter(b, hash=False)
        splits.append(client.submit(_split_block, src, bid, start, n, n_shards, centers, metric,
                                    pure=False))
    builds = [client.submit(_build_shard,
                            [client.submit(operator.getitem, sp, s, pure=False) for sp in splits],
                            path, s, *build_args, pure=False)
              for s in range(n_shards)]
    return client.gather(builds)


# ---- opening shards, once per process --------------------------------------------------------

_cache = {}
_cache_lock = threading.Lock()
_opens = {}  # how often each shard was mapped in this process (tests check: once)


def _open_shard(path, rec, dim, metric):
    """Maps one shard after checking it against its manifest record; ShardError otherwise."""
    shard, file = rec["shard"], os.path.join(path, rec["file"])
    try:
        fd = os.open(file, os.O_RDONLY)
    except FileNotFoundError:
        raise ShardError(shard, file, "the file is missing") from None
    except OSError as e:
        raise ShardError(shard, file, "cannot be opened: %s" % e.strerror) from None
    try:
        size = os.fstat(fd).st_size
        if size != rec["bytes"]:
            raise ShardError(shard, file, "the file has %d bytes, the manifest says %d: damaged, "
                             "or not the file this build wrote" % (size, rec["bytes"]))
        digest = _sha256_fd(fd)
        if digest != rec["sha256"]:
            raise ShardError(shard, file, "sha256 %s does not match the manifest's %s: the file "
                             "is damaged or was replaced" % (digest, rec["sha256"]))
        t = AnnoyIndex(dim, metric)
        try:
            t.load("/proc/self/fd/%d" % fd)  # the very file whose bytes were checked
        except OSError as e:
            raise ShardError(shard, file, "does not load: %s" % e) from None
    finally:
        os.close(fd)
    if len(t) != rec["n_items"]:
        raise ShardError(shard, file, "holds %d items, the manifest says %d"
                         % (len(t), rec["n_items"]))
    return t


def _shard_index(path, rec, dim, metric):
    key = (path, rec["file"], rec["sha256"])
    with _cache_lock:
        t = _cache.get(key)
        if t is None:
            t = _open_shard(path, rec, dim, metric)
            _cache[key] = t
            _opens[key] = _opens.get(key, 0) + 1
        return t


def _forget(path):
    """Drops this process's mappings of the shards under path."""
    with _cache_lock:
        for key in [k for k in _cache if k[0] == path]:
            del _cache[key]


def _open_counts(path):
    """{file: times this process mapped it} for the shards under path mapped now."""
    with _cache_lock:
        return {k[1]: _opens[k] for k in _cache if k[0] == path}


def _warm(path, rec, dim, metric):
    _shard_index(path, rec, dim, metric)
    return rec["shard"]


def _search_shard(path, rec, dim, metric, Q, rows, k, search_k, exact, n_threads):
    """Top-k of one shard for the rows of Q it was given (all when rows is None)."""
    t = _shard_index(path, rec, dim, metric)
    q = Q if rows is None else Q[rows]
    if len(t) == 0 or k == 0:
        return (np.full((len(q), 0), -1, np.int64), np.zeros((len(q), 0), np.float32))
    return t.get_nns_by_vectors(q, k, search_k, include_distances=True, n_threads=n_threads,
                                exact=exact)


def _merge(m, k, metric, answers):
    """Global top-k of m queries from [(rows or None, ids, dists), ...]: each row's candidates
    sorted by (distance, id), padded with id -1 and distance nan past the candidates found."""
    width = sum(a[1].shape[1] for a in answers)
    ids = np.full((m, width), -1, np.int64)
    dists = np.full((m, width), np.nan, np.float32)
    col = 0
    for rows, i, d in answers:
        w = i.shape[1]
        sel = slice(None) if rows is None else rows
        ids[sel, col:col + w] = i
        dists[sel, col:col + w] = d
        col += w
    key = -dists if metric == "dot" else dists
    key = np.where(ids < 0, np.inf, key)
    order = np.lexsort((ids, key), axis=-1)[:, :k]
    ids = np.take_along_axis(ids, order, axis=1)
    dists = np.take_along_axis(dists, order, axis=1)
    dists[ids < 0] = np.nan
    if ids.shape[1] < k:
        pad = k - ids.shape[1]
        ids = np.hstack([ids, np.full((m, pad), -1, np.int64)])
        dists = np.hstack([dists, np.full((m, pad), np.nan, np.float32)])
    return ids, dists


class ShardedIndex:
    """A sharded index built by build_sharded, opened from its folder ``path``.

    With ``client`` (a distributed.Client), each shard is mapped on a worker (once per worker
    process) and queries run there; without one, every shard is mapped in this process.
    Opening checks every shard (present, size and sha256 as the manifest says, loads, item
    count): ShardError names the first bad one.
    """

    def __init__(self, path, client=None):
        self.path = os.path.abspath(os.fspath(path))
        self.manifest = _read_manifest(self.path)
        self.client = client
        self.dim = self.manifest["dim"]
        self.metric = self.manifest["metric"]
        self.shards = self.manifest["shards"]
        c = self.manifest.get("centroids")
        self._centers = None if c is None else np.asarray(c, dtype=np.float64)
        self._placement = {}
        self._local = None
        self._closed = False
        if client is None:
            self._local = [_open_shard(self.path, r, self.dim, self.metric) for r in self.shards]
        else:
            self._place()
            futures = [self._submit(_warm, r) for r in self.shards]
            client.gather(futures)

    def __len__(self):
        return self.manifest["n_items"]

    @property
    def n_shards(self):
        return len(self.shards)

    def __repr__(self):
        return "<copse.dask.ShardedIndex %s: %d items, %d shards, f=%d metric=%r%s>" % (
            self.path, len(self), self.n_shards, self.dim, self.metric,
            "" if self.client is None else ", on a Dask cluster")

    def _place(self):
        """The worker each shard prefers: kept while it lives, so the shard stays mapped
        there; a shard whose worker left goes to the worker preferred by the fewest."""
        workers = sorted(self.client.scheduler_info()["workers"])
        if not workers:
            return
        load = {w: 0 for w in workers}
        for w in self._placement.values():
            if w in load:
                load[w] += 1
        for rec in self.shards:
            if self._placement.get(rec["shard"]) not in load:
                w = min(workers, key=lambda x: (load[x], x))
                self._placement[rec["shard"]] = w
                load[w] += 1

    def _submit(self, fn, rec, *args):
        w = self._placement.get(rec["shard"])
        return self.client.submit(fn, self.path, rec, self.dim, self.metric, *args,
                                  workers=[w] if w else None, allow_other_workers=True,
                                  pure=False)

    def route(self, Q, n_probe):
        """For each query, the n_probe shards whose centroids are nearest (kmeans split)."""
        if self._centers is None:
            raise ValueError("n_probe needs an index built with split='kmeans'")
        p = min(int(n_probe), self.n_shards)
        if p < 1:
            raise ValueError("n_probe must be at least 1, got %d" % p)
        return _nearest_centroids(_route_space(Q, self.metric), self._centers, p)

    def search(self, Q, k, search_k=-1, n_probe=None, exact=False, n_threads=None):
        """The ``k`` nearest items to each row of ``Q`` over all shards: (ids, dists), arrays
        of shape (m, k) (int64 global ids, float32 distances), nearest first; a row with
        fewer than k results is padded with id -1 and distance nan.

        ``search_k`` is the per-shard effort, as in AnnoyIndex. ``n_probe`` (kmeans split
        only) asks only the n_probe shards nearest each query; None asks all. ``exact``
        answers by brute force. ``n_threads``: threads per shard query (default: every CPU
        without a client, 1 on workers, whose own threads run shards side by side).
        """
        if self._closed:
            raise ValueError("the sharded index is closed")
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        if Q.ndim != 2 or Q.shape[1] != self.dim:
            raise IndexError("Q has shape %r; want (m, %d)" % (Q.shape, self.dim))
        k = int(k)
        if k < 0:
            raise ValueError("k must be non-negative, got %d" % k)
        m = len(Q)
        picks = None
        if n_probe is not None:
            route = self.route(Q, n_probe)
            picks = [np.flatnonzero((route == s).any(axis=1)) for s in range(self.n_shards)]
        asked = [s for s in range(self.n_shards) if picks is None or len(picks[s])]
        if self.client is None:
            nt = -1 if n_threads is None else n_threads
            answers = []
            for s in asked:
                t = self._local[s]
                q = Q if picks is None else Q[picks[s]]
                i, d = (t.get_nns_by_vectors(q, k, search_k, include_distances=True,
                                             n_threads=nt, exact=exact)
                        if len(t) and k else (np.zeros((len(q), 0), np.int64),
                                              np.zeros((len(q), 0), np.float32)))
                answers.append((None if picks is None else picks[s], i, d))
            return _merge(m, k, self.metric, answers)
        nt = 1 if n_threads is None else n_threads
        self._place()
        qf = self.client.scatter(Q, broadcast=True, hash=False)
        futures = [self._submit(_search_shard, self.shards[s], qf,
                                None if picks is None else picks[s], k, search_k, exact, nt)
                   for s in asked]
        got = self.client.gather(futures)
        answers = [(None if picks is None else picks[s], i, d) for s, (i, d) in zip(asked, got)]
        return _merge(m, k, self.metric, answers)

    def close(self):
        """Drops the shards' mappings (on every worker, with a client)."""
        if self.client is not None:
            self.client.run(_forget, self.path)
        self._local = None
        self._closed = True
