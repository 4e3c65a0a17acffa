"""Annoy .ann files, written by Annoy's own annoylib.h, loaded by copse.AnnoyIndex.

annoy_ref (tests/annoy_ref.cpp) builds each index with Annoy 1.17's header and records
Annoy's answers to the same queries; copse must load the file and give the same neighbours.
"""
import subprocess

import numpy as np
import pytest

import copse
from copse import AnnoyIndex

N, NQ, K, TREES, SEED = 1000, 25, 10, 10, 42

needs_annoy_loader = pytest.mark.skipif(
    not copse.CAN_LOAD_ANNOY,
    reason="this library has no copse_load_annoy (Annoy file support not built in)")


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


@needs_annoy_loader
@pytest.mark.parametrize("metric", ["angular", "euclidean", "manhattan", "dot", "hamming"])
def test_annoy_file_gives_annoys_neighbours(metric, annoy_ref, tmp_path, rng):
    X, Q = make_data(metric, rng)
    ann, expected = annoy_build(annoy_ref, tmp_path, metric, X, Q)
    t = AnnoyIndex(X.shape[1], metric)
    assert t.load(str(ann)) is True
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


@needs_annoy_loader
def test_annoy_file_dimension_mismatch_is_os_error(annoy_ref, tmp_path, rng):
    X, Q = make_data("euclidean", rng)
    ann, _ = annoy_build(annoy_ref, tmp_path, "euclidean", X, Q)
    for f in (X.shape[1] + 1, X.shape[1] * 2):
        with pytest.raises(OSError):
            AnnoyIndex(f, "euclidean").load(str(ann))


@needs_annoy_loader
def test_annoy_file_load_unload_repeatedly(annoy_ref, tmp_path, rng):
    X, Q = make_data("angular", rng)
    ann, expected = annoy_build(annoy_ref, tmp_path, "angular", X, Q)
    t = AnnoyIndex(X.shape[1], "angular")
    for _ in range(200):
        t.load(str(ann), prefault=True)
        t.unload()
    t.load(str(ann))
    assert t.get_nns_by_vector(Q[0], K) == expected[0][0]


@pytest.mark.skipif(copse.CAN_LOAD_ANNOY, reason="this library reads Annoy files")
def test_annoy_file_without_support_is_os_error(annoy_ref, tmp_path, rng):
    X, Q = make_data("angular", rng)
    ann, _ = annoy_build(annoy_ref, tmp_path, "angular", X, Q)
    with pytest.raises(OSError):
        AnnoyIndex(X.shape[1], "angular").load(str(ann))
