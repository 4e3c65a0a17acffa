"""Recall against an exact numpy search, for every metric, through both query paths."""
import numpy as np
import pytest

from copse import AnnoyIndex

N, F, NQ, K = 3000, 24, 60, 10


def brute_force(metric, X, Q, k):
    """Ids of the k best items for each query, and their distances as copse reports them."""
    X64, Q64 = X.astype(np.float64), Q.astype(np.float64)
    if metric == "angular":
        Xn = X64 / np.linalg.norm(X64, axis=1, keepdims=True)
        Qn = Q64 / np.linalg.norm(Q64, axis=1, keepdims=True)
        d = np.sqrt(np.maximum(2 - 2 * Qn @ Xn.T, 0))
    elif metric == "euclidean":
        d = np.sqrt(np.maximum((Q64**2).sum(1)[:, None] + (X64**2).sum(1)[None] - 2 * Q64 @ X64.T,
                               0))
    elif metric == "manhattan":
        d = np.abs(Q64[:, None, :] - X64[None, :, :]).sum(2)
    elif metric == "dot":
        d = -(Q64 @ X64.T)
    else:  # hamming
        d = ((Q64[:, None, :] > 0.5) != (X64[None, :, :] > 0.5)).sum(2)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    dist = np.take_along_axis(d, order, axis=1)
    return order, (-dist if metric == "dot" else dist)


def data(metric, rng):
    if metric == "hamming":
        X = (rng.random((N, 64)) < 0.5).astype(np.float32)
        Q = (rng.random((NQ, 64)) < 0.5).astype(np.float32)
        return X, Q
    # Clustered data: neighbours that are meaningfully closer than the rest.
    centers = rng.normal(size=(30, F)) * 3
    X = (centers[rng.integers(0, 30, N)] + rng.normal(size=(N, F))).astype(np.float32)
    Q = (centers[rng.integers(0, 30, NQ)] + rng.normal(size=(NQ, F))).astype(np.float32)
    return X, Q


def recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)])


@pytest.mark.parametrize("metric", ["angular", "euclidean", "manhattan", "dot", "hamming"])
def test_recall(metric, rng):
    X, Q = data(metric, rng)
    t = AnnoyIndex(X.shape[1], metric)
    t.add_items(None, X)
    t.build(20)
    truth, truth_d = brute_force(metric, X, Q, K)
    search_k = 200 * K
    single = [t.get_nns_by_vector(q, K, search_k=search_k) for q in Q]
    batch, batch_d = t.get_nns_by_vectors(Q, K, search_k=search_k, include_distances=True)
    assert batch.tolist() == single
    if metric == "hamming":
        # Many items tie at each integer distance: compare distances, not ids.
        found = np.sort(batch_d, axis=1)
        assert np.mean(found[:, -1] <= truth_d[:, -1] + 1) >= 0.95
        return
    r = recall(batch, truth)
    assert r >= 0.9, "recall@%d for %s is %.3f" % (K, metric, r)
    # Where copse found the true neighbour, it reports the true distance.
    hit = batch[:, 0] == truth[:, 0]
    assert np.allclose(batch_d[hit, 0], truth_d[hit, 0], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("metric", ["angular", "euclidean", "manhattan", "dot"])
def test_more_search_k_never_hurts_much(metric, rng):
    X, Q = data(metric, rng)
    t = AnnoyIndex(F, metric)
    t.add_items(None, X)
    t.build(10)
    truth, _ = brute_force(metric, X, Q, K)
    low = recall(t.get_nns_by_vectors(Q, K, search_k=K), truth)
    high = recall(t.get_nns_by_vectors(Q, K, search_k=N), truth)
    assert high >= low - 0.02
    assert high >= 0.99  # search_k = every item: exact up to ties


def test_get_nns_by_item_finds_itself_first(rng):
    X, _ = data("euclidean", rng)
    t = AnnoyIndex(F, "euclidean")
    t.add_items(None, X)
    t.build(10)
    for i in rng.integers(0, N, 50):
        ids, d = t.get_nns_by_item(int(i), 5, include_distances=True)
        assert ids[0] == i and d[0] == pytest.approx(0, abs=1e-4)
