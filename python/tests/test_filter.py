"""Filtered search from Python: filter= with allowed ids, a callable and copse.Tags on
copse.AnnoyIndex and copse.Index, checked against numpy brute force over the allowed items at
selectivities from 0.1% to 100%; never a disallowed id; bad input."""
import threading

import numpy as np
import pytest

import copse
from test_living import brute, recall

N, DIM, K = 3000, 12, 10
SELECTIVITIES = [0.001, 0.01, 0.1, 0.5, 1.0]
METRICS = ["euclidean", "angular", "dot"]


def data(rng, n=N):
    return rng.standard_normal((n, DIM)).astype(np.float32)


def check(got_ids, X, ids, allowed, Q, metric, min_recall):
    """got_ids: (m, K) results, -1 padded. Only allowed ids, as many as min(K, allowed), and
    recall against brute force over the allowed items at least min_recall."""
    allowed = np.asarray(sorted(allowed), dtype=np.int64)
    keep = np.isin(ids, allowed)
    want = brute(X[keep], ids[keep], Q, K, metric) if keep.any() else np.zeros((len(Q), 0), int)
    for row in got_ids:
        row = [i for i in row if i != -1]
        assert set(row) <= set(allowed.tolist()), "a disallowed id was returned"
        assert len(row) == min(K, len(allowed))
        assert len(set(row)) == len(row)
    if want.shape[1]:
        got = [[i for i in row if i != -1] for row in got_ids]
        r = recall(got, want)
        assert r >= min_recall, "recall %.3f below %.3f" % (r, min_recall)
    return want


def min_recall_for(sel):
    # Few allowed items are ranked exactly (copse.h: m^2 <= 8 * max(k, search_k) * n);
    # otherwise the filtered walk must keep the unfiltered walk's recall.
    return 1.0 if sel <= 0.01 else 0.95


def annoy_index(X, metric):
    a = copse.AnnoyIndex(DIM, metric)
    a.set_seed(7)
    a.add_items(None, X)
    return a


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("sel", SELECTIVITIES)
@pytest.mark.parametrize("kind", ["ids", "callable"])
def test_annoy_ids_and_callables(rng, metric, sel, kind):
    X, Q = data(rng), data(rng, 20)
    a = annoy_index(X, metric)
    a.build(10)
    ids = np.arange(N, dtype=np.int64)
    allowed = rng.choice(N, max(1, int(sel * N)), replace=False)
    allowed_set = set(allowed.tolist())
    if kind == "ids":
        f = allowed                      # numpy array; below also a list and a set
    else:
        calls = []

        def f(i):
            calls.append(i)
            return i in allowed_set
    single = np.array([a.get_nns_by_vector(q, K, filter=f) + [-1] * K for q in Q])[:, :K]
    check(single, X, ids, allowed_set, Q, metric, min_recall_for(sel))
    batch = a.get_nns_by_vectors(Q, K, filter=f)
    check(batch, X, ids, allowed_set, Q, metric, min_recall_for(sel))
    if kind == "ids":
        assert a.get_nns_by_vectors(Q, K, filter=allowed.tolist()).tolist() == batch.tolist()
        assert a.get_nns_by_vectors(Q, K, filter=allowed_set).tolist() == batch.tolist()
    else:
        assert all(type(i) is int for i in calls)
    # By item: the item itself is returned only when allowed.
    for item in rng.choice(N, 5, replace=False).tolist():
        got, dists = a.get_nns_by_item(item, K, include_distances=True, filter=f)
        assert set(got) <= allowed_set
        assert dists == sorted(dists, reverse=metric == "dot")
        assert len(got) == min(K, len(allowed_set))
        if item in allowed_set and metric != "dot":
            assert got[0] == item


@pytest.mark.parametrize("metric", METRICS)
def test_annoy_tags(rng, metric, tmp_path):
    X, Q = data(rng), data(rng, 20)
    a = annoy_index(X, metric)
    # Tag t is carried by about 2**-(t % 8) of the items: selectivities from 100% down.
    tags = [[t for t in range(16) if rng.random() < 2.0 ** -(t % 8)] for _ in range(N)]
    for i, t in enumerate(tags):
        a.set_tags(i, t)
    assert a.get_tags(0) == sorted(set(tags[0]))
    a.build(10)
    path = str(tmp_path / "tags.copse")
    a.save(path)
    b = copse.AnnoyIndex(DIM, metric)
    b.load(path)
    ids = np.arange(N, dtype=np.int64)
    masks = np.array([sum(1 << t for t in ts) for ts in tags], dtype=np.uint64)
    for any_, all_ in [([], []), ([0], []), ([7], []), ([6, 15], []), ([], [1, 2]),
                       ([3, 4], [9]), ([7, 15], [6, 14]), ([], [7, 15, 6])]:
        am = np.uint64(sum(1 << t for t in any_))
        lm = np.uint64(sum(1 << t for t in all_))
        ok = ((masks & am) != 0) | (am == 0)
        ok &= (masks & lm) == lm
        allowed = set(ids[ok].tolist())
        sel = len(allowed) / N
        for ix in (a, b):
            got = ix.get_nns_by_vectors(Q, K, filter=copse.Tags(any=any_, all=all_))
            check(got, X, ids, allowed, Q, metric, min_recall_for(sel))
    assert b.get_tags(5) == sorted(set(tags[5]))


def test_living_index_filters_after_changes(rng):
    metric = "euclidean"
    ix = copse.Index(DIM, metric)
    X = data(rng)
    tags = [[int(rng.integers(0, 4))] for _ in range(N)]
    ix.add(X, tags=tags)
    ix.build()
    vec = dict(zip(range(N), X))
    tagged = {i: t[0] for i, t in enumerate(tags)}     # each live item's one tag
    Q = data(rng, 50)

    def live_arrays():
        ids = np.array(sorted(vec), dtype=np.int64)
        return ids, np.array([vec[i] for i in ids], dtype=np.float32)

    for step in range(3):
        new = data(rng, 300)
        new_tags = [[int(rng.integers(0, 4))] for _ in range(300)]
        for i, v, t in zip(ix.add(new, tags=new_tags).tolist(), new, new_tags):
            vec[i] = v
            tagged[i] = t[0]
        repl = rng.choice(sorted(vec), 40, replace=False).tolist()
        rv = data(rng, 40)
        ix.add(rv, ids=repl)                             # replaced: the tags stay
        for i, v in zip(repl, rv):
            vec[i] = v
        for i in rng.choice(sorted(vec), 200, replace=False).tolist():
            tagged[i] = int(rng.integers(0, 4))          # retagged, base and added items
            ix.set_tags(i, [tagged[i]])
        gone = rng.choice(sorted(vec), 100, replace=False).tolist()
        ix.delete(gone)
        for i in gone:
            del vec[i]
            del tagged[i]
        ids, Xl = live_arrays()
        # Changes cost the walk some recall (test_living's concern); a filter must cost none
        # beyond that (0.04: the two truths differ, over 50 queries), the exact small-filter
        # path none at all.
        got, _ = ix.search(Q, K)
        unfiltered = recall(got.tolist(), brute(Xl, ids, Q, K, metric))

        def floor(sel):
            return 1.0 if sel <= 0.01 else min(0.95, unfiltered - 0.04)
        for sel in SELECTIVITIES:
            asked = rng.choice(ids.max() + 1, max(1, int(sel * len(ids))), replace=False)
            allowed = set(asked.tolist()) & set(vec)
            got, _ = ix.search(Q, K, filter=asked)
            check(got, Xl, ids, allowed, Q, metric, floor(sel))
            got, _ = ix.search(Q, K, filter=lambda i, s=set(asked.tolist()): i in s)
            check(got, Xl, ids, allowed, Q, metric, floor(sel))
        allowed = {i for i, t in tagged.items() if t in (1, 2)}
        got, _ = ix.search(Q, K, filter=copse.Tags(any=[1, 2]))
        check(got, Xl, ids, allowed, Q, metric, floor(0.5))
    # After compact the base is new, with every item's tags; the floor as above, from the
    # compacted index's own unfiltered recall.
    ix.compact()
    ids, Xl = live_arrays()
    got, _ = ix.search(Q, K)
    unfiltered = recall(got.tolist(), brute(Xl, ids, Q, K, metric))
    got, _ = ix.search(Q, K, filter=ids[::3])
    check(got, Xl, ids, set(ids[::3].tolist()), Q, metric, floor(1 / 3))
    got, _ = ix.search(Q, K, filter=copse.Tags(any=[1, 2]))
    check(got, Xl, ids, {i for i, t in tagged.items() if t in (1, 2)}, Q, metric, floor(0.5))
    assert ix.get_tags(next(iter(tagged))) == [tagged[next(iter(tagged))]]


def test_edge_filters(rng):
    X = data(rng, 500)
    a = annoy_index(X, "euclidean")
    a.build(5)
    q = X[3]
    assert a.get_nns_by_vector(q, K, filter=[]) == []
    assert a.get_nns_by_vector(q, K, filter=lambda i: False) == []
    assert a.get_nns_by_vector(q, K, filter=[10**12, -1, 7]) == [7]   # ids not held: ignored
    assert a.get_nns_by_vector(q, K, filter=None) == a.get_nns_by_vector(q, K)
    assert a.get_nns_by_vector(q, K, filter=copse.Tags()) == a.get_nns_by_vector(q, K)
    assert a.get_nns_by_vector(q, K, filter=copse.Tags(any=5)) == []  # no item has tags
    ids = a.get_nns_by_vectors(X[:4], K, filter=[1, 2])
    assert ids[:, 2:].tolist() == [[-1] * (K - 2)] * 4
    ix = copse.Index(DIM, "euclidean")
    ix.add(X)
    ix.build()
    got, dists = ix.search(X[:2], K, filter=np.array([4, 9], dtype=np.uint32))
    assert sorted(got[0, :2].tolist()) == [4, 9] and (got[:, 2:] == -1).all()
    assert np.isnan(dists[:, 2:]).all()
    # A random callable: whatever it answers, only items it allowed come back.
    seen = {}

    def coin(i):
        seen.setdefault(i, bool(rng.random() < 0.3))
        return seen[i]
    for row in a.get_nns_by_vectors(X[:10], K, filter=coin).tolist():
        assert all(seen[i] for i in row if i != -1)


def test_bad_filter_input(rng):
    X = data(rng, 200)
    a = annoy_index(X, "euclidean")
    for i in range(200):
        a.set_tags(i, i % 3)
    with pytest.raises(ValueError, match="outside 0..63"):
        a.set_tags(0, [64])
    with pytest.raises(TypeError):
        a.set_tags(0, ["a"])
    with pytest.raises(IndexError):
        a.set_tags(999, [1])
    a.build(5)
    with pytest.raises(ValueError, match="outside 0..63"):
        a.set_tags(0, [64])
    with pytest.raises(IndexError):
        a.set_tags(999, [1])
    assert a.get_tags(0) == [0]                       # the bad calls changed nothing
    q = X[0]
    for bad in ["12", 3, 2.5, {"a": 1}, b"ab", object()]:
        with pytest.raises(TypeError):
            a.get_nns_by_vector(q, K, filter=bad)
    with pytest.raises(TypeError):
        a.get_nns_by_vector(q, K, filter=[1.5])
    with pytest.raises(TypeError):
        a.get_nns_by_vectors(X[:2], K, filter=np.array([1.0, 2.0]))
    with pytest.raises(ValueError):
        a.get_nns_by_vector(q, K, filter=np.zeros((2, 2), dtype=np.int64))
    for bad in ([64], [-1], 100):
        with pytest.raises(ValueError, match="outside 0..63"):
            copse.Tags(any=bad)
        with pytest.raises(ValueError):
            copse.Tags(all=bad)
    for bad in (["a"], [True], 1.0, "3"):
        with pytest.raises(TypeError):
            copse.Tags(any=bad)
    assert repr(copse.Tags(any=[5, 3], all=2)) == "copse.Tags(any=[3, 5], all=[2])"
    # The callable's exception reaches the caller, from single and batch queries.

    def boom(i):
        raise KeyError("no such item %d" % i)
    with pytest.raises(KeyError, match="no such item"):
        a.get_nns_by_vector(q, K, filter=boom)
    with pytest.raises(KeyError):
        a.get_nns_by_vectors(X[:3], K, filter=boom)
    with pytest.raises(ZeroDivisionError):
        a.get_nns_by_item(0, K, filter=lambda i: 1 / 0)
    # The callable may not use the index it filters.
    with pytest.raises(RuntimeError, match="must not use the index"):
        a.get_nns_by_vector(q, K, filter=lambda i: a.get_nns_by_item(i, 1) == [i])
    assert a.get_nns_by_vector(q, 3) == a.get_nns_by_vector(q, 3)   # still usable

    ix = copse.Index(DIM, "euclidean")
    with pytest.raises(ValueError, match="one tag list per row"):
        ix.add(X[:3], tags=[[1]])
    with pytest.raises(ValueError, match="outside"):
        ix.add(X[:3], tags=[[1], [2], [70]])
    assert len(ix) == 0                               # nothing added on a bad tag
    ix.add(X, tags=[[i % 5] for i in range(200)])
    ix.build()
    with pytest.raises(ValueError, match="one tag list per row"):
        ix.add(X[:3], tags=[[1]])
    with pytest.raises(ValueError, match="outside"):
        ix.set_tags(3, [70])
    ix.delete([7])
    for gone in (7, 12345):
        with pytest.raises(KeyError):
            ix.set_tags(gone, [1])
        with pytest.raises(KeyError):
            ix.get_tags(gone)
    assert len(ix) == 199 and ix.get_tags(3) == [3]


@pytest.mark.parametrize("opener", ["annoy", "index"])
def test_tags_changed_after_build_and_on_a_loaded_file(rng, tmp_path, opener):
    """set_tags on a built index and on a loaded file: queries see it at once, save keeps it,
    the file loaded from is never written; AnnoyIndex (a copse extension there) as Index."""
    X, Q = data(rng), data(rng, 20)
    path = str(tmp_path / "retag.copse")
    ids = np.arange(N, dtype=np.int64)
    tags = rng.integers(0, 8, N)                     # one tag per item, 0..7
    a = annoy_index(X, "euclidean")
    for i in range(0, N, 2):                          # half tagged before build
        a.set_tags(i, [int(tags[i])])
    tags[1::2] = -1
    a.build(10)
    for i in rng.choice(N, 300, replace=False).tolist():     # retagged once built
        tags[i] = int(rng.integers(0, 8))
        a.set_tags(i, [int(tags[i])])
    a.save(path)
    with open(path, "rb") as fh:
        saved = fh.read()
    if opener == "annoy":
        b = copse.AnnoyIndex(DIM, "euclidean")
        b.load(path)
    else:
        b = copse.open(path)
    query = (lambda f: b.get_nns_by_vectors(Q, K, filter=f)) if opener == "annoy" else \
        (lambda f: b.search(Q, K, filter=f)[0])
    for t in (0, 3):
        check(query(copse.Tags(any=[t])), X, ids, set(ids[tags == t].tolist()), Q,
              "euclidean", 0.95)
    for i in rng.choice(N, 600, replace=False).tolist():     # retagged on the loaded file
        tags[i] = int(rng.integers(0, 8))
        b.set_tags(i, [int(tags[i])])
    assert b.get_tags(int(i)) == [int(tags[i])]
    for t in (0, 3):
        check(query(copse.Tags(any=[t])), X, ids, set(ids[tags == t].tolist()), Q,
              "euclidean", 0.95)
    with open(path, "rb") as fh:
        assert fh.read() == saved                     # mapped read-only, never written
    out = str(tmp_path / "retag2.copse")
    b.save(out)
    c = copse.open(out)
    assert [c.get_tags(i) for i in range(N)] == [[int(t)] if t >= 0 else [] for t in tags]
    check(c.search(Q, K, filter=copse.Tags(any=[5]))[0], X, ids, set(ids[tags == 5].tolist()),
          Q, "euclidean", 0.95)


def test_tags_changed_beside_queries(rng):
    """One thread retags while others query with a tag filter: only even ids ever carry tag
    1, and the first 20 even ids always do, so every answer is K even ids."""
    X = data(rng)
    ix = copse.Index(DIM, "euclidean")
    ix.add(X, tags=[[1] if i % 2 == 0 and i < 40 else [] for i in range(N)])
    ix.build()
    stop = threading.Event()
    bad = []

    def reader():
        Q = data(np.random.default_rng(1), 8)
        while not stop.is_set():
            got, _ = ix.search(Q, K, filter=copse.Tags(any=[1]))
            if (got == -1).any() or (got % 2).any():
                bad.append(got)
    threads = [threading.Thread(target=reader) for _ in range(2)]
    for th in threads:
        th.start()
    try:
        for i in rng.integers(40, N, 3000).tolist():
            ix.set_tags(i, [1, 2] if i % 2 == 0 and rng.random() < 0.5 else [2])
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert not bad


def test_callable_query_and_changes_exclude_each_other(rng):
    X = data(rng, 300)
    ix = copse.Index(DIM, "euclidean")
    ix.add(X)
    ix.build()
    errors = []

    def change():
        try:
            ix.add(X[:1])
        except RuntimeError as e:
            errors.append(str(e))

    def allow(i):
        if not errors:          # a change from another thread while this query runs
            t = threading.Thread(target=change)
            t.start()
            t.join()
        return True
    got, _ = ix.search(X[:2], K, filter=allow)
    assert (got != -1).all()
    assert errors and "callable filter" in errors[0]
    ix.add(X[:1])                                      # after the query, changes work again
