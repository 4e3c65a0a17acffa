"""Annoy .ann files, written by Annoy's own annoylib.h, loaded by copse.AnnoyIndex.

annoy_ref (tests/annoy_ref.cpp) builds each index with Annoy 1.17's header and records
Annoy's answers to the same queries; copse must load the file and give the same neighbours.
"""
import subprocess

import numpy as np
import pytest

from copse import AnnoyIndex

N, NQ, K, TREES, SEED = 1000, 25, 10, 10, 42


def dims(metric):
    return 70 if metric == "hamming" else 12


def make_data(metric, rng):
    f = dims(metric)
    if metric == "hamming":
        return ((rng.random((N, f)) < 0.5).astype(np.float32),
                (rng.random((NQ, f)) < 0.5).astype(np.float32))
    return (rng.normal(size=(N, f)).astype(np.float32),
            rng.normal(size=(NQ, f)).astype(np.float32))


def annoy_build(annoy_ref, folder, metric, X, Q, search_k=-1):
    """Runs Annoy on X; returns the .ann path and Annoy's (ids, dists) per query."""
    X.tofile(folder / "items.f32")
    Q.tofile(folder / "queries.f32")
    ann, res = folder / ("%s.ann" % metric), folder / ("%s.res" % metric)
    subprocess.run([str(annoy_ref), metric, str(X.shape[1]), str(TREES), str(SEED),
                    str(folder / "items.f32"), str(len(X)), str(ann), str(folder / "queries.f32"),
                    str(len(Q)), str(K), str(search_k), str(res)], check=True)
    raw = np.fromfile(res, dtype=np.uint8).reshape(len(Q), 4 + 8 * K)
    counts = raw[:, :4].copy().view(np.int32)[:, 0]
    ids = raw[:, 4:4 + 4 * K].copy().view(np.int32)
    dists = raw[:, 4 + 4 * K:].copy().view(np.float32)
    return ann, [(ids[q, :c].tolist(), dists[q, :c].tolist()) for q, c in enumerate(counts)]


@pytest.mark.parametrize("kernels", ["default", "scalar"])
@pytest.mark.parametrize("metric", ["angular", "euclidean", "manhattan", "dot", "hamming"])
def test_annoy_file_gives_annoys_neighbours(metric, kernels, annoy_ref, tmp_path, rng):
    X, Q = make_data(metric, rng)
    ann, expected = annoy_build(annoy_ref, tmp_path, metric, X, Q)
    t = AnnoyIndex(X.shape[1], metric)
    assert t.load(str(ann)) is True
    if kernels != "default":
        t._set_kernels(kernels)
    assert t.get_n_items() == N and len(t) == N
    assert t.get_n_trees() == TREES
    for i in (0, 1, N // 2, N - 1):
        assert t.get_item_vector(i) == X[i].tolist()
    for q, (want_ids, want_d) in zip(Q, expected):
        ids, d = t.get_nns_by_vector(q, K, include_distances=True)
        if metric == "hamming":  # ties at equal bit counts may be ordered either way
            assert d == want_d
        else:
            assert ids == want_ids
            assert d == pytest.approx(want_d, rel=1e-4, abs=1e-4)
    batch = t.get_nns_by_vectors(Q, K)
    assert batch.tolist() == [t.get_nns_by_vector(q, K) for q in Q]


def test_annoy_file_dimension_mismatch_is_os_error(annoy_ref, tmp_path, rng):
    X, Q = make_data("euclidean", rng)
    ann, _ = annoy_build(annoy_ref, tmp_path, "euclidean", X, Q)
    for f in (X.shape[1] + 1, X.shape[1] * 2):
        with pytest.raises(OSError):
            AnnoyIndex(f, "euclidean").load(str(ann))


def test_annoy_file_load_unload_repeatedly(annoy_ref, tmp_path, rng):
    X, Q = make_data("angular", rng)
    ann, expected = annoy_build(annoy_ref, tmp_path, "angular", X, Q)
    t = AnnoyIndex(X.shape[1], "angular")
    for _ in range(200):
        t.load(str(ann), prefault=True)
        t.unload()
    t.load(str(ann))
    assert t.get_nns_by_vector(Q[0], K) == expected[0][0]


def test_annoy_file_items_and_distances(annoy_ref, tmp_path, rng):
    X, Q = make_data("euclidean", rng)
    ann, _ = annoy_build(annoy_ref, tmp_path, "euclidean", X, Q)
    t = AnnoyIndex(X.shape[1], "euclidean")
    t.load(str(ann))
    assert t.state == "loaded"
    for i, j in [(0, 1), (5, 900), (999, 999)]:
        want = float(np.linalg.norm(X[i].astype(np.float64) - X[j]))
        assert t.get_distance(i, j) == pytest.approx(want, rel=1e-5, abs=1e-6)
    ids, d = t.get_nns_by_item(7, 5, include_distances=True)
    assert ids[0] == 7 and d[0] == 0.0
    with pytest.raises(IndexError):
        t.get_item_vector(N)
    with pytest.raises(Exception):
        t.unbuild()
    with pytest.raises(Exception):
        t.add_item(N, X[0])


def test_annoy_file_saved_as_copse(annoy_ref, tmp_path, rng):
    """An Annoy file converted by save(): a copse file with the same items and trees."""
    X, Q = make_data("angular", rng)
    ann, expected = annoy_build(annoy_ref, tmp_path, "angular", X, Q)
    t = AnnoyIndex(X.shape[1], "angular")
    t.load(str(ann))
    t.save(str(tmp_path / "converted.copse"))
    u = AnnoyIndex(X.shape[1], "angular")
    u.load(str(tmp_path / "converted.copse"))
    assert u.get_n_items() == N and u.get_n_trees() == TREES
    assert u.get_item_vector(123) == X[123].tolist()
    found = [set(u.get_nns_by_vector(q, K, search_k=N)) for q in Q]
    exact = np.argsort(-(Q / np.linalg.norm(Q, axis=1, keepdims=True)) @
                       (X / np.linalg.norm(X, axis=1, keepdims=True)).T, axis=1)[:, :K]
    assert np.mean([len(f & set(e)) / K for f, e in zip(found, exact)]) >= 0.99
