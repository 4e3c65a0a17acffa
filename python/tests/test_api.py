"""Every method of copse.AnnoyIndex: Annoy's defaults, return types and exceptions."""
import array
import inspect
import os

import numpy as np
import pytest

import copse
from copse import AnnoyIndex

METRICS = ["angular", "euclidean", "manhattan", "dot", "hamming"]


def filled(f=8, n=100, metric="euclidean", rng=None, trees=5):
    rng = rng or np.random.default_rng(0)
    t = AnnoyIndex(f, metric)
    for i in range(n):
        t.add_item(i, rng.normal(size=f))
    if trees:
        t.build(trees)
    return t


# ---- construction --------------------------------------------------------------------------

def test_module_facts():
    assert copse.__version__ == copse.LIBRARY_VERSION
    assert isinstance(copse.FORMAT_VERSION, tuple) and len(copse.FORMAT_VERSION) == 2


@pytest.mark.parametrize("metric", METRICS)
def test_metrics_and_f(metric):
    t = AnnoyIndex(7, metric)
    assert t.f == 7
    assert t.metric == metric
    t2 = AnnoyIndex(f=3, metric=metric)
    assert t2.f == 3


def test_missing_metric_warns_and_is_angular():
    with pytest.warns(FutureWarning, match="metric='angular'"):
        t = AnnoyIndex(4)
    assert t.metric == "angular"


def test_unknown_metric_is_value_error():
    with pytest.raises(ValueError, match="No such metric"):
        AnnoyIndex(10, "banana")


@pytest.mark.parametrize("f", [0, -1])
def test_bad_dimension(f):
    with pytest.raises(ValueError):
        AnnoyIndex(f, "angular")


def test_f_is_read_only():
    t = AnnoyIndex(3, "angular")
    with pytest.raises(AttributeError):
        t.f = 4


def test_no_stray_attributes():
    t = AnnoyIndex(3, "angular")
    with pytest.raises(AttributeError):
        t.something = 1


def test_repr_and_len():
    t = AnnoyIndex(3, "euclidean")
    assert repr(t) == "<copse.AnnoyIndex f=3 metric='euclidean' adding: 0 items, 0 trees>"
    t.add_item(5, [1, 2, 3])
    t.add_item(9, [1, 2, 4])
    assert len(t) == 2 and t.get_n_items() == 10
    assert 5 in t and 6 not in t and -1 not in t and "5" not in t
    t.build(3)
    assert repr(t) == "<copse.AnnoyIndex f=3 metric='euclidean' built: 2 items, 3 trees>"


def test_docstrings_and_signatures():
    for name in ["add_item", "add_items", "build", "unbuild", "save", "load", "unload",
                 "on_disk_build", "get_nns_by_item", "get_nns_by_vector", "get_nns_by_vectors",
                 "get_item_vector", "get_distance", "get_n_items", "get_n_trees", "verbose",
                 "set_seed", "serialize", "deserialize", "set_graph_degree"]:
        method = getattr(AnnoyIndex, name)
        assert method.__doc__ and len(method.__doc__) > 20, name
        inspect.signature(method)  # text signatures parse
    sig = inspect.signature(AnnoyIndex.get_nns_by_item)
    assert sig.parameters["search_k"].default == -1
    assert sig.parameters["include_distances"].default is False
    assert inspect.signature(AnnoyIndex.build).parameters["n_jobs"].default == -1
    assert inspect.signature(AnnoyIndex.save).parameters["prefault"].default is False


# ---- adding --------------------------------------------------------------------------------

def test_vector_types_are_equivalent():
    ref = [0.5, -1.25, 3.0, 4.5]
    kinds = [ref, tuple(ref), array.array("f", ref), array.array("d", ref),
             np.array(ref, dtype=np.float32), np.array(ref, dtype=np.float64),
             np.repeat(np.array(ref), 2)[::2],  # strided view
             np.array(ref, dtype=np.float16), memoryview(array.array("d", ref))]
    for k, v in enumerate(kinds):
        t = AnnoyIndex(4, "euclidean")
        t.add_item(0, v)
        assert t.get_item_vector(0) == ref, k


def test_integer_vectors():
    for dtype in [np.uint8, np.int16, np.int32, np.int64, np.uint64, np.bool_]:
        t = AnnoyIndex(3, "euclidean")
        t.add_item(0, np.array([1, 0, 1], dtype=dtype))
        assert t.get_item_vector(0) == [1.0, 0.0, 1.0]
    t = AnnoyIndex(3, "euclidean")
    t.add_item(0, array.array("b", [-1, 2, -3]))
    t.add_item(1, bytes([1, 2, 255]))
    assert t.get_item_vector(0) == [-1.0, 2.0, -3.0]
    assert t.get_item_vector(1) == [1.0, 2.0, 255.0]


def test_add_item_errors():
    t = AnnoyIndex(3, "euclidean")
    with pytest.raises(IndexError, match="wrong length"):
        t.add_item(0, [1, 2])
    with pytest.raises(IndexError, match="wrong length"):
        t.add_item(0, np.zeros(4))
    with pytest.raises(IndexError, match="wrong length"):
        t.add_item(0, np.zeros((1, 3)))
    with pytest.raises(IndexError, match="negative"):
        t.add_item(-1, [1, 2, 3])
    with pytest.raises(TypeError, match="must be real number, not str"):
        t.add_item(0, ["1", "2", "3"])
    with pytest.raises(TypeError):
        t.add_item(0, 5)
    with pytest.raises(ValueError):
        t.add_item(0, [1, float("nan"), 3])
    with pytest.raises(ValueError):
        t.add_item(0, [1, float("inf"), 3])
    with pytest.raises(OverflowError):
        t.add_item(2**63, [1, 2, 3])
    assert len(t) == 0


def test_add_item_error_messages_match_annoy():
    class NoLen:
        pass

    class NoGetItem:
        def __len__(self):
            return 5

    class Short:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            raise IndexError

    with pytest.raises(TypeError) as e:
        AnnoyIndex(10, "euclidean").add_item(1, NoLen())
    assert str(e.value) == "object of type 'NoLen' has no len()"
    with pytest.raises(TypeError) as e:
        AnnoyIndex(5, "euclidean").add_item(1, NoGetItem())
    assert str(e.value) == "'NoGetItem' object is not subscriptable"
    with pytest.raises(IndexError):
        AnnoyIndex(3, "euclidean").add_item(1, Short())


def test_replacing_an_item():
    t = AnnoyIndex(2, "euclidean")
    t.add_item(3, [1, 1])
    t.add_item(3, [2, 2])
    assert len(t) == 1
    assert t.get_item_vector(3) == [2, 2]


def test_large_sparse_ids():
    t = AnnoyIndex(3, "angular")
    big = 2**40
    t.add_item(big, [1, 0, 0])
    t.add_item(7, [0, 1, 0])
    t.build(4)
    assert t.get_n_items() == big + 1
    assert len(t) == 2
    assert t.get_nns_by_item(big, 5) == [big, 7]
    assert t.get_nns_by_vector([0, 1, 0.1], 1) == [7]


def test_add_items(rng):
    X = rng.normal(size=(50, 6)).astype(np.float32)
    a = AnnoyIndex(6, "euclidean")
    a.add_items(np.arange(100, 150), X)
    b = AnnoyIndex(6, "euclidean")
    for i, row in enumerate(X):
        b.add_item(100 + i, row)
    assert len(a) == len(b) == 50
    for i in (100, 120, 149):
        assert a.get_item_vector(i) == b.get_item_vector(i)
    c = AnnoyIndex(6, "euclidean")
    c.add_items(None, X[:10])               # numbered from max id + 1 = 0
    c.add_items(None, X[10:20].tolist())    # from 10, sequence of lists
    c.add_items(range(20, 30), X[20:30].astype(np.float64)[:, ::-1][:, ::-1])  # strided
    assert len(c) == 30 and c.get_n_items() == 30
    assert c.get_item_vector(15) == [float(x) for x in X[15]]
    c.add_items([], np.zeros((0, 6), dtype=np.float32))
    assert len(c) == 30


def test_add_items_errors(rng):
    t = AnnoyIndex(4, "euclidean")
    X = rng.normal(size=(5, 4))
    with pytest.raises(ValueError, match="5 vectors"):
        t.add_items([1, 2, 3], X)
    with pytest.raises(IndexError, match="wrong length"):
        t.add_items(range(5), rng.normal(size=(5, 3)))
    with pytest.raises(ValueError, match="2-D"):
        t.add_items(range(4), np.zeros(4))
    with pytest.raises(TypeError):
        t.add_items(np.arange(5, dtype=np.float64), X)
    with pytest.raises(IndexError):
        t.add_items([0, 1, -2, 3, 4], X)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError):
        t.add_items(range(5), bad)
    assert len(t) == 0  # every row is checked before any is added


# ---- building --------------------------------------------------------------------------------

def test_build_returns_true_and_counts_trees():
    t = filled(trees=0)
    assert t.build(7) is True
    assert t.get_n_trees() == 7
    assert t.state == "built"


def test_build_n_jobs():
    a, b = filled(trees=0), filled(trees=0)
    assert a.build(8, n_jobs=1) and b.build(8, n_jobs=2)
    v = [0.1] * 8
    assert a.get_nns_by_vector(v, 20) == b.get_nns_by_vector(v, 20)


def test_build_auto_trees():
    t = filled(trees=0)
    assert t.build(-1)
    assert t.get_n_trees() >= 1


def test_build_errors():
    t = filled()
    with pytest.raises(Exception):
        t.build(10)  # twice
    t = filled(trees=0)
    with pytest.raises(ValueError):
        t.build(0)
    with pytest.raises(ValueError):
        t.build(-2)


def test_add_after_build_raises():
    t = filled()
    with pytest.raises(Exception):
        t.add_item(1000, [0] * 8)
    with pytest.raises(Exception):
        t.add_items(None, np.zeros((2, 8)))


def test_unbuild():
    t = filled(n=20)
    assert t.unbuild() is True
    assert t.get_n_trees() == 0
    t.add_item(20, [1] * 8)
    t.build(3)
    assert t.get_n_items() == 21
    assert t.get_nns_by_item(20, 1) == [20]


def test_unbuild_errors(in_tmp):
    with pytest.raises(Exception):
        filled(trees=0).unbuild()
    filled().save("x.ann")
    t = AnnoyIndex(8, "euclidean")
    t.load("x.ann")
    with pytest.raises(Exception):
        t.unbuild()


def test_seed_gives_reproducible_trees(rng):
    X = rng.normal(size=(300, 10))
    Q = rng.normal(size=(20, 10))
    answers = []
    for seed in (42, 42, 43):
        t = AnnoyIndex(10, "angular")
        assert t.set_seed(seed) is None
        for i, x in enumerate(X):
            t.add_item(i, x)
        t.build(3)
        answers.append([t.get_nns_by_vector(q, 10, search_k=10) for q in Q])
    assert answers[0] == answers[1]


def test_set_seed_values_and_states(in_tmp):
    t = AnnoyIndex(3, "euclidean")
    t.set_seed(-1)
    t.set_seed(2**64 + 5)
    t.set_seed(np.int64(7))
    with pytest.raises(TypeError):
        t.set_seed(1.5)
    filled(3).save("x.ann")
    t.load("x.ann")
    t.set_seed(42)  # allowed and harmless on a loaded index, as in Annoy


def test_verbose(capfd):
    t = filled(trees=0)
    assert t.verbose(True) is True
    t.build(2)
    assert "built 2 trees" in capfd.readouterr().err
    t.verbose(False)
    t.unbuild()
    t.build(2)
    assert capfd.readouterr().err == ""


# ---- queries ---------------------------------------------------------------------------------

def test_query_return_types():
    t = filled()
    r = t.get_nns_by_item(0, 5)
    assert isinstance(r, list) and len(r) == 5 and all(type(i) is int for i in r)
    assert r[0] == 0
    ids, dists = t.get_nns_by_item(0, 5, include_distances=True)
    assert ids == r and all(type(d) is float for d in dists)
    assert dists == sorted(dists) and dists[0] == pytest.approx(0)
    res = t.get_nns_by_item(0, 5, -1, True)
    assert isinstance(res, tuple) and res[0] == r
    v = t.get_item_vector(0)
    assert t.get_nns_by_vector(v, 5) == r
    assert t.get_nns_by_vector(vector=v, n=5, search_k=1000, include_distances=False)[0] == 0


def test_n_larger_than_index():
    t = filled(n=10)
    assert sorted(t.get_nns_by_item(3, 10**9)) == list(range(10))
    assert t.get_nns_by_item(3, 0) == []
    assert t.get_nns_by_vector([0] * 8, 0, include_distances=True) == ([], [])


def test_query_errors():
    t = filled(n=10)
    for bad in (-1, -1000):
        with pytest.raises(IndexError):
            t.get_nns_by_item(bad, 1)
        with pytest.raises(IndexError):
            t.get_item_vector(bad)
        with pytest.raises(IndexError):
            t.get_distance(0, bad)
    for bad in (10, 1000):
        with pytest.raises(IndexError, match="larger than the largest"):
            t.get_nns_by_item(bad, 1)
        with pytest.raises(IndexError):
            t.get_item_vector(bad)
        with pytest.raises(IndexError):
            t.get_distance(bad, 0)
    with pytest.raises(IndexError, match="wrong length"):
        t.get_nns_by_vector([0] * 7, 1)
    with pytest.raises(ValueError):
        t.get_nns_by_vector([float("nan")] * 8, 1)
    with pytest.raises(ValueError):
        t.get_nns_by_item(0, -1)
    with pytest.raises(ValueError):
        t.get_nns_by_item(0, 1, search_k=-5)


def test_holes_are_index_errors():
    t = AnnoyIndex(2, "euclidean")
    t.add_item(0, [0, 0])
    t.add_item(5, [1, 1])
    t.build(2)
    assert t.get_n_items() == 6
    with pytest.raises(IndexError, match="never added"):
        t.get_item_vector(3)
    with pytest.raises(IndexError, match="never added"):
        t.get_nns_by_item(3, 1)
    assert sorted(t.get_nns_by_vector([0, 0], 10)) == [0, 5]


def test_query_before_build_raises():
    t = filled(trees=0)
    with pytest.raises(RuntimeError, match="not built"):
        t.get_nns_by_item(0, 3)
    with pytest.raises(RuntimeError, match="not built"):
        t.get_nns_by_vectors(np.zeros((2, 8)), 3)


def test_item_vector_and_distance_before_build():
    t = AnnoyIndex(2, "euclidean")
    t.add_item(0, [0, 1])
    t.add_item(1, [1, 1])
    assert t.get_item_vector(1) == [1.0, 1.0]
    assert t.get_distance(0, 1) == pytest.approx(1.0)
    assert type(t.get_distance(0, 1)) is float


@pytest.mark.parametrize("metric, expected", [
    ("angular", (2 * (1 - 2**-0.5)) ** 0.5),
    ("euclidean", 1.0),
    ("manhattan", 1.0),
    ("dot", 1.0),
    ("hamming", 1.0),
])
def test_distance_per_metric(metric, expected):
    t = AnnoyIndex(2, metric)
    t.add_item(0, [0, 1])
    t.add_item(1, [1, 1])
    assert t.get_distance(0, 1) == pytest.approx(expected, rel=1e-5)
    t.build(1)
    ids, dists = t.get_nns_by_item(0, 2, include_distances=True)
    assert dists[ids.index(1)] == pytest.approx(expected, rel=1e-5)


def test_dot_orders_by_largest_product():
    t = AnnoyIndex(2, "dot")
    for i, v in enumerate([[2, 2], [3, 2], [3, 3]]):
        t.add_item(i, v)
    t.build(5)
    assert t.get_nns_by_vector([1, 1], 3) == [2, 1, 0]
    ids, d = t.get_nns_by_vector([2, 2], 3, include_distances=True)
    assert d == pytest.approx([12, 10, 8])


def test_hamming_vectors_are_bits():
    t = AnnoyIndex(70, "hamming")
    u = np.zeros(70)
    u[[0, 5, 64, 69]] = 1
    t.add_item(0, u)
    t.add_item(1, np.zeros(70))
    assert t.get_item_vector(0) == u.tolist()
    assert t.get_distance(0, 1) == 4.0


# ---- batch queries -------------------------------------------------------------------------

def test_get_nns_by_vectors_matches_single_queries(rng):
    t = filled(n=500, rng=rng)
    Q = rng.normal(size=(40, 8)).astype(np.float32)
    ids = t.get_nns_by_vectors(Q, 10)
    assert isinstance(ids, np.ndarray) and ids.dtype == np.int64 and ids.shape == (40, 10)
    ids2, dists = t.get_nns_by_vectors(Q.tolist(), 10, include_distances=True, n_threads=2)
    assert dists.dtype == np.float32 and dists.shape == (40, 10)
    assert (ids == ids2).all()
    assert (t.get_nns_by_vectors(np.asfortranarray(Q.astype(np.float64)), 10) == ids).all()
    for q, row, drow in zip(Q, ids, dists):
        want, wd = t.get_nns_by_vector(q, 10, include_distances=True)
        assert row.tolist() == want
        assert drow.tolist() == pytest.approx(wd, rel=1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_get_nns_by_vectors_exact_is_brute_force(metric, rng):
    X = rng.normal(size=(300, 8)).astype(np.float32)
    if metric == "hamming":
        X = (X > 0).astype(np.float32)
    t = AnnoyIndex(8, metric)
    t.add_items(None, X)
    t.build(2)
    Q = X[:20] + np.float32(0.01)
    ids, dists = t.get_nns_by_vectors(Q, 7, search_k=1, include_distances=True, exact=True)
    for q, row, drow in zip(Q, ids, dists):
        d = np.array([_distance(t, q, x) for x in X])
        best = -np.sort(-d)[:7] if metric == "dot" else np.sort(d)[:7]
        assert drow == pytest.approx(best, rel=1e-4, abs=1e-4)
        assert d[row] == pytest.approx(best, rel=1e-4, abs=1e-4)


def _distance(t, q, x):
    """Distance between two vectors under t's metric, through a two-item index."""
    u = AnnoyIndex(t.f, t.metric)
    u.add_item(0, q)
    u.add_item(1, x)
    return u.get_distance(0, 1)


def test_get_nns_by_vectors_padding_and_shapes():
    t = filled(n=5)
    ids, d = t.get_nns_by_vectors(np.zeros((3, 8)), 100, include_distances=True)
    assert ids.shape == (3, 5)  # never wider than the index
    empty = t.get_nns_by_vectors(np.zeros((0, 8), dtype=np.float32), 4)
    assert empty.shape == (0, 4)
    none, none_d = t.get_nns_by_vectors(np.zeros((2, 8)), 0, include_distances=True)
    assert none.shape == none_d.shape == (2, 0)
    ids, d = t.get_nns_by_vectors(np.zeros((2, 8)), 3, search_k=3, include_distances=True)
    assert ((ids == -1) == np.isnan(d)).all()  # padding, if any, is consistent
    with pytest.raises(IndexError):
        t.get_nns_by_vectors(np.zeros((2, 7)), 3)
    with pytest.raises(ValueError):
        t.get_nns_by_vectors(np.zeros(8), 3)
    with pytest.raises(ValueError):
        t.get_nns_by_vectors(np.zeros((2, 8)), -1)


def test_get_nns_by_vectors_without_numpy(monkeypatch):
    t = filled(n=30)
    monkeypatch.setattr(copse, "_np", None)
    ids, dists = t.get_nns_by_vectors([[0] * 8, [1] * 8], 4, include_distances=True)
    assert isinstance(ids, list) and ids[0] == t.get_nns_by_vector([0] * 8, 4)
    assert len(dists[1]) == 4 and type(dists[1][0]) is float
    assert t.get_nns_by_vectors([[0] * 8], 4) == [t.get_nns_by_vector([0] * 8, 4)]


def test_import_without_numpy():
    import subprocess
    import sys
    code = ("import sys; sys.modules['numpy'] = None; import copse; "
            "t = copse.AnnoyIndex(2, 'euclidean'); t.add_item(0, [1, 2]); t.build(1); "
            "assert copse._np is None; print(t.get_nns_by_vectors([[1, 2]], 1))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(copse.__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[[0]]"


# ---- files -----------------------------------------------------------------------------------

def test_save_load_roundtrip(in_tmp, rng):
    t = filled(n=200, rng=rng)
    assert t.save("a.ann") is True
    u = AnnoyIndex(8, "euclidean")
    assert u.load("a.ann") is True
    assert u.state == "loaded"
    assert u.get_n_items() == 200 and len(u) == 200 and u.get_n_trees() == 5
    for i in (0, 57, 199):
        assert u.get_item_vector(i) == t.get_item_vector(i)
        assert u.get_nns_by_item(i, 10) == t.get_nns_by_item(i, 10)
    v = AnnoyIndex(8, "euclidean")
    v.load(in_tmp / "a.ann", prefault=True)  # path-like objects work too
    assert v.get_nns_by_item(3, 10) == t.get_nns_by_item(3, 10)


def test_save_keeps_index_usable(in_tmp):
    t = filled()
    before = t.get_nns_by_item(1, 10)
    t.save("a.ann", prefault=True)
    assert t.get_nns_by_item(1, 10) == before
    with pytest.raises(Exception):
        t.add_item(500, [0] * 8)


def test_save_errors(in_tmp):
    with pytest.raises(OSError):
        AnnoyIndex(40, "angular").save("")
    with pytest.raises(OSError):
        filled(trees=0).save("unbuilt.ann")
    with pytest.raises(OSError):
        filled().save("/nonexistent-dir/x/y.ann")


def test_load_errors(in_tmp):
    t = AnnoyIndex(8, "euclidean")
    with pytest.raises(OSError):
        t.load("missing.ann")
    with open("junk.ann", "wb") as fp:
        fp.write(os.urandom(1000))
    with pytest.raises(OSError):
        t.load("junk.ann")
    open("empty.ann", "wb").close()
    with pytest.raises(OSError):
        t.load("empty.ann")
    filled().save("good.ann")
    with pytest.raises(OSError):
        AnnoyIndex(9, "euclidean").load("good.ann")   # dimension mismatch
    with pytest.raises(OSError):
        AnnoyIndex(8, "angular").load("good.ann")     # metric mismatch
    data = open("good.ann", "rb").read()
    with open("truncated.ann", "wb") as fp:
        fp.write(data[: len(data) // 2])
    with pytest.raises(OSError):
        t.load("truncated.ann")


def test_failed_load_keeps_previous_contents(in_tmp):
    t = filled()
    before = t.get_nns_by_item(2, 5)
    with pytest.raises(OSError):
        t.load("missing.ann")
    assert t.get_nns_by_item(2, 5) == before


def test_load_replaces_contents(in_tmp):
    filled(n=50).save("a.ann")
    t = AnnoyIndex(8, "euclidean")
    t.add_item(999, [0] * 8)
    t.load("a.ann")
    assert t.get_n_items() == 50


def test_unload(in_tmp):
    filled(n=50).save("a.ann")
    t = AnnoyIndex(8, "euclidean")
    t.load("a.ann")
    assert t.unload() is True
    assert t.get_n_items() == 0 and t.get_n_trees() == 0 and t.state == "adding"
    t.add_item(0, [1] * 8)  # usable again
    assert AnnoyIndex(8, "euclidean").unload() is True


def test_overwrite_loaded_file(in_tmp, rng):
    t = filled(n=300, rng=rng)
    t.save("a.ann")
    u = AnnoyIndex(8, "euclidean")
    u.load("a.ann")
    want = u.get_nns_by_item(0, 20)
    filled(n=100, rng=rng).save("a.ann")  # replaced by rename: u keeps its old view
    assert u.get_nns_by_item(0, 20) == want
    u.get_nns_by_vector(rng.normal(size=8), 1000)


def test_on_disk_build(in_tmp):
    t = AnnoyIndex(2, "euclidean")
    assert t.on_disk_build("disk.ann") is True
    for i, v in enumerate([[2, 2], [3, 2], [3, 3]]):
        t.add_item(i, v)
    t.build(10)
    assert os.path.exists("disk.ann")
    assert t.get_nns_by_vector([4, 4], 3) == [2, 1, 0]
    u = AnnoyIndex(2, "euclidean")
    u.load("disk.ann")
    assert u.get_nns_by_vector([1, 1], 3) == [0, 1, 2]


def test_on_disk_build_errors(in_tmp):
    t = AnnoyIndex(2, "euclidean")
    t.add_item(0, [1, 1])
    with pytest.raises(OSError):
        t.on_disk_build("late.ann")
    with pytest.raises(OSError):
        AnnoyIndex(2, "euclidean").on_disk_build("/nonexistent-dir/x.ann")


# ---- edge cases Annoy's own tests pin -----------------------------------------------------------

@pytest.mark.parametrize("f", [10, 40, 100])
def test_angular_self_distance_is_zero(f):
    rng = np.random.default_rng(f)
    worst = 0.0
    for _ in range(20):
        t = AnnoyIndex(f, "angular")
        v = rng.normal(size=f)
        t.add_item(0, v)
        t.add_item(1, -v)
        t.build(2)
        ids, d = t.get_nns_by_item(0, 2, include_distances=True)
        worst = max(worst, d[0], t.get_distance(0, 0))
    assert worst == 0.0  # Annoy's own tests compare with pytest.approx(0.0), i.e. 1e-12


def test_empty_index_builds_saves_and_loads(in_tmp):
    t = AnnoyIndex(10, "angular")
    t.build(10)
    assert t.get_nns_by_vector([1.0] * 10, 10) == []
    with pytest.raises(IndexError):
        t.get_nns_by_item(0, 10)
    t.save("empty.ann")
    u = AnnoyIndex(10, "angular")
    u.load("empty.ann")
    assert u.get_n_items() == 0 and len(u) == 0
    assert u.get_nns_by_vector([1.0] * 10, 50) == []
    assert u.get_nns_by_vectors(np.ones((3, 10)), 5).shape == (3, 0)
    with pytest.raises(IndexError):
        u.get_nns_by_item(0, 1)


def test_annoy_keyword_names(in_tmp):
    t = AnnoyIndex(f=2, metric="euclidean")
    t.add_item(i=0, vector=[0, 0])
    t.add_item(i=1, vector=[1, 1])
    assert t.build(n_trees=2, n_jobs=1)
    assert t.save(fn="k.ann", prefault=False)
    u = AnnoyIndex(2, "euclidean")
    assert u.load(fn="k.ann", prefault=True)
    assert u.get_nns_by_item(i=0, n=2, search_k=-1, include_distances=False) == [0, 1]
    assert u.get_nns_by_vector(vector=[1, 1], n=1, search_k=-1, include_distances=True) == (
        [1], [0.0])
    d = AnnoyIndex(2, "euclidean")
    assert d.on_disk_build(fn="d.ann")


def test_serialize_deserialize(in_tmp, rng):
    t = filled(n=300, rng=rng)
    data = t.serialize()
    assert isinstance(data, bytes)
    t.save("same.ann")
    assert data == open("same.ann", "rb").read()
    for kind in (bytes, bytearray, memoryview, lambda b: np.frombuffer(b, dtype=np.uint8)):
        u = AnnoyIndex(8, "euclidean")
        assert u.deserialize(kind(data)) is True
        assert u.state == "loaded" and len(u) == 300
        assert u.get_nns_by_item(5, 10) == t.get_nns_by_item(5, 10)
    buf = bytearray(data)
    u = AnnoyIndex(8, "euclidean")
    u.deserialize(buf, prefault=True)
    with pytest.raises(BufferError):
        buf.extend(b"x")  # held while the index reads from it
    u.unload()
    buf.extend(b"x")      # released by unload
    del buf
    v = AnnoyIndex(8, "euclidean")
    v.deserialize(bytes(data))
    assert v.get_nns_by_vector([0] * 8, 3) == t.get_nns_by_vector([0] * 8, 3)


def test_deserialize_errors(rng):
    t = AnnoyIndex(8, "euclidean")
    with pytest.raises(OSError):
        t.deserialize(b"not an index at all" * 10)
    with pytest.raises(OSError):
        AnnoyIndex(9, "euclidean").deserialize(filled(rng=rng).serialize())
    with pytest.raises(TypeError):
        t.deserialize("a str is not bytes")
    with pytest.raises(OSError):
        filled(trees=0).serialize()
    data = filled(rng=rng).serialize()
    with pytest.raises(OSError):
        t.deserialize(data[: len(data) // 2])
    assert t.state == "adding"


def test_graph_degree(in_tmp, rng):
    X = rng.normal(size=(2000, 8)).astype(np.float32)
    sizes = {}
    for degree in (0, 8, 32):
        t = AnnoyIndex(8, "euclidean")
        assert t.set_graph_degree(degree) is None
        assert t.graph_degree == degree
        t.add_items(None, X)
        t.build(5)
        assert t.graph_degree == degree
        t.save("g%d.ann" % degree)
        sizes[degree] = os.path.getsize("g%d.ann" % degree)
        u = AnnoyIndex(8, "euclidean")
        u.load("g%d.ann" % degree)
        assert u.graph_degree == degree
        assert u.get_nns_by_item(17, 10) == t.get_nns_by_item(17, 10)
    assert sizes[0] < sizes[8] < sizes[32]
    assert sizes[32] - sizes[8] >= 24 * 4 * 2000 * 0.9  # ~4 bytes per item per degree
    with pytest.raises(ValueError):
        AnnoyIndex(8, "euclidean").set_graph_degree(-1)
    with pytest.raises(ValueError):
        AnnoyIndex(8, "euclidean").set_graph_degree(256)
    with pytest.raises(RuntimeError):
        filled().set_graph_degree(4)  # built already


def test_build_settings_survive_unload(rng):
    X = rng.normal(size=(500, 8)).astype(np.float32)
    a = AnnoyIndex(8, "euclidean")
    a.set_seed(7)
    a.set_graph_degree(0)
    a.add_items(None, X[:10])
    a.unload()
    assert a.graph_degree == 0
    a.add_items(None, X)
    a.build(4)
    b = AnnoyIndex(8, "euclidean")
    b.set_seed(7)
    b.set_graph_degree(0)
    b.add_items(None, X)
    b.build(4)
    assert a.serialize() == b.serialize()


def test_const_call_failure_shows_no_stale_message():
    """get_item_vector and get_distance call the library on a const index, which has nowhere
    to write a message: the error must not repeat the message of an earlier failed call."""
    _testcapi = pytest.importorskip("_testcapi")
    t = AnnoyIndex(3, "euclidean")
    t.add_item(0, [1, 2, 3])
    t.add_item(1, [3, 2, 1])
    with pytest.raises(ValueError, match="NaN"):
        t.add_item(2, [float("nan"), 0, 0])  # leaves "add_item: component 0 is NaN"
    for call in (lambda: t.get_item_vector(0), lambda: t.get_distance(0, 1)):
        from_library = 0
        # Fail each allocation of the call in turn; one of them is the library's own.
        for n in range(12):
            _testcapi.set_nomemory(n, n + 1)
            try:
                call()
            except MemoryError as e:
                assert "NaN" not in str(e)
                from_library += "out of memory" in str(e)
            finally:
                _testcapi.remove_mem_hooks()
        assert from_library == 1
