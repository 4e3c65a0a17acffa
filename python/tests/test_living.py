"""copse.Index, the living index: adds, deletes and replacements after build and on a loaded
file, checked against brute force over the live set; errors; queries beside changes."""
import os
import threading

import numpy as np
import pytest

import copse


def brute(X, ids, Q, k, metric):
    if metric == "euclidean":
        d = ((Q[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    elif metric == "angular":
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        d = -(Qn @ Xn.T)
    else:  # dot
        d = -(Q @ X.T)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return ids[order]


def recall(got, want):
    return np.mean([len(set(g) & set(w)) / len(w) for g, w in zip(got, want)])


class Model:
    def __init__(self):
        self.vec = {}

    def arrays(self):
        ids = np.array(sorted(self.vec), dtype=np.int64)
        return ids, np.array([self.vec[i] for i in ids], dtype=np.float32)


@pytest.mark.parametrize("metric", ["euclidean", "angular", "dot"])
def test_changes_against_brute_force(tmp_path, metric):
    rng = np.random.default_rng(5)
    dim = 12
    ix = copse.Index(dim, metric)
    m = Model()
    X = rng.standard_normal((1500, dim)).astype(np.float32)
    ids = ix.add(X)
    assert ids.tolist() == list(range(1500))
    m.vec.update(zip(ids.tolist(), X))
    ix.build()
    for step in range(4):
        new = rng.standard_normal((200, dim)).astype(np.float32)
        got_ids = ix.add(new)                        # consecutive after the largest
        assert got_ids[0] == max(m.vec) + 1
        m.vec.update(zip(got_ids.tolist(), new))
        repl = rng.choice(sorted(m.vec), 30, replace=False)
        rv = rng.standard_normal((30, dim)).astype(np.float32)
        ix.add(rv, ids=repl)                         # replacements
        m.vec.update(zip(repl.tolist(), rv))
        gone = rng.choice(sorted(m.vec), 100, replace=False)
        ix.delete(gone)
        for g in gone.tolist():
            del m.vec[g]
            assert g not in ix
        assert len(ix) == len(m.vec)
        live_ids, live_x = m.arrays()
        Q = rng.standard_normal((50, dim)).astype(np.float32)
        I, D = ix.search(Q, k=10, search_k=200)
        assert I.shape == (50, 10) and D.shape == (50, 10)
        assert not set(I.ravel().tolist()) & set(gone.tolist())
        r = recall(I, brute(live_x, live_ids, Q, 10, metric))
        assert r >= 0.95, (step, r)
        if step == 1:
            path = tmp_path / "live.copse"
            ix.save(path)
            ix = copse.open(path)
            assert ix.state == "loaded" and len(ix) == len(m.vec)
            assert ix.n_added > 0 and ix.n_deleted > 0
        for i in rng.choice(live_ids, 5).tolist():
            np.testing.assert_array_equal(ix.get_vector(i), m.vec[i])
    ix.compact()
    assert ix.n_added == 0 and ix.n_deleted == 0 and len(ix) == len(m.vec)
    live_ids, live_x = m.arrays()
    Q = rng.standard_normal((50, dim)).astype(np.float32)
    I, _ = ix.search(Q, 10, search_k=200)
    assert recall(I, brute(live_x, live_ids, Q, 10, metric)) >= 0.95


def test_shapes_and_padding():
    ix = copse.Index(4, "euclidean")
    ix.add(np.eye(4, dtype=np.float32))
    ix.build()
    I, D = ix.search([1, 0, 0, 0], k=6)              # one vector: shape (1, k)
    assert I.shape == (1, 6) and I[0, 0] == 0 and D[0, 0] == 0
    assert (I[0, 4:] == -1).all() and np.isnan(D[0, 4:]).all()
    ix.delete([0])
    I, _ = ix.search([1, 0, 0, 0], k=2)
    assert 0 not in I


def test_errors(tmp_path):
    ix = copse.Index(3, "euclidean")
    with pytest.raises(ValueError):
        ix.add(np.zeros((2, 4)))                     # wrong dimension
    with pytest.raises(ValueError):
        ix.add([[0, np.nan, 0]])
    with pytest.raises(ValueError):
        ix.add(np.zeros((1, 3)), ids=[-1])
    with pytest.raises(ValueError):
        ix.add(np.zeros((2, 3)), ids=[1])             # ids of the wrong length
    with pytest.raises(RuntimeError):
        ix.delete([0])                               # not built yet
    ix.add(np.ones((5, 3), dtype=np.float32))
    ix.build()
    with pytest.raises(KeyError):
        ix.delete([1, 99])                           # all or nothing
    assert len(ix) == 5 and 1 in ix
    ix.delete(1)
    with pytest.raises(KeyError):
        ix.delete(1)                                 # deleted already
    with pytest.raises(KeyError):
        ix.get_vector(1)
    with pytest.raises(ValueError):
        ix.search(np.zeros((1, 2)))
    with pytest.raises(OSError):
        ix.save(tmp_path / "no" / "such" / "dir.copse")
    with pytest.raises(OSError):
        copse.open(tmp_path / "missing.copse")


def test_annoy_index_keeps_annoys_behaviour():
    a = copse.AnnoyIndex(3, "euclidean")
    a.add_item(0, [1, 2, 3])
    a.build(2)
    with pytest.raises(RuntimeError):
        a.add_item(1, [1, 2, 3])


def test_queries_beside_changes():
    """One thread adds and deletes while others query: every answer is live and exact."""
    rng = np.random.default_rng(9)
    dim = 8
    base = rng.random((3000, dim), dtype=np.float32)
    ix = copse.Index(dim, "euclidean")
    ix.add(base)
    ix.build()
    never = set(range(0, 3000, 3))
    ix.delete(sorted(never))
    stop = threading.Event()
    bad = []

    def reader():
        r = np.random.default_rng(threading.get_ident() % 1000)
        while not stop.is_set():
            I, D = ix.search(r.random((16, dim), dtype=np.float32), k=10, n_threads=1)
            if (I < 0).any() or set(I.ravel().tolist()) & never:
                bad.append(I)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(20):
        ix.add(rng.random((50, dim), dtype=np.float32))
    ix.compact()
    stop.set()
    for t in threads:
        t.join()
    assert not bad
    assert len(ix) == 3000 - len(never) + 1000
