"""The storage keyword: quantized vectors (f16, i8) from AnnoyIndex and copse.Index."""
import numpy as np
import pytest

import copse
from copse import AnnoyIndex


def clustered(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    return (centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def recall(got, truth):
    return np.mean([len(set(g) & set(t)) / len(t) for g, t in zip(got, truth)])


@pytest.mark.parametrize("metric", ["angular", "euclidean", "manhattan", "dot"])
@pytest.mark.parametrize("storage,floor", [("f16", 0.97), ("i8", 0.93)])
def test_recall_against_float_data(metric, storage, floor):
    x = clustered(3100, 24)
    base, qs = x[:3000], x[3000:]
    exact = AnnoyIndex(24, metric)
    exact.add_items(None, base)
    exact.build(5)
    truth = exact.get_nns_by_vectors(qs, 10, exact=True)
    t = AnnoyIndex(24, metric, storage=storage)
    assert t.storage == storage
    t.add_items(None, base)
    t.build(-1)
    assert t.storage == storage
    got = t.get_nns_by_vectors(qs, 10, search_k=100)
    assert recall(got, truth) >= floor


def test_round_trip_and_sizes(tmp_path):
    x = clustered(2000, 32)
    sizes = {}
    for storage in ("f32", "f16", "i8"):
        t = AnnoyIndex(32, "euclidean", storage=storage)
        t.add_items(None, x)
        t.build(-1)
        path = str(tmp_path / ("%s.copse" % storage))
        t.save(path)
        u = AnnoyIndex(32, "euclidean")
        u.load(path)
        assert u.storage == storage
        assert u.get_nns_by_item(7, 5) == t.get_nns_by_item(7, 5)
        v = np.asarray(u.get_item_vector(7), dtype=np.float32)
        tol = {"f32": 0, "f16": 2e-3, "i8": 0.03}[storage]
        assert np.max(np.abs(v - x[7])) <= tol
        data = t.serialize()
        sizes[storage] = len(data)
        w = AnnoyIndex(32, "euclidean")
        w.deserialize(data)
        assert w.storage == storage
    assert sizes["i8"] < sizes["f16"] < sizes["f32"]


def test_bad_storage():
    with pytest.raises(ValueError, match="storage"):
        AnnoyIndex(8, "euclidean", storage="int4")
    with pytest.raises(ValueError, match="hamming"):
        AnnoyIndex(64, "hamming", storage="i8")
    with pytest.raises(TypeError):
        AnnoyIndex(8, "euclidean", "i8")  # keyword only: Annoy's third argument is none
    assert AnnoyIndex(8, "euclidean").storage == "f32"


def test_living_index_keeps_storage(tmp_path):
    x = clustered(1500, 16, seed=3)
    ix = copse.Index(16, "angular", storage="i8")
    ix.add(x[:1000])
    ix.build()
    ix.add(x[1000:])
    assert ix.storage == "i8"
    ids, _ = ix.search(x[1200], 3)
    assert ids[0][0] == 1200
    path = tmp_path / "live.copse"
    ix.save(path)
    back = copse.open(path)
    assert back.storage == "i8" and len(back) == 1500
    back.compact()
    assert back.storage == "i8"
